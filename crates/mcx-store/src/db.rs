//! The statements a commit runs, over either database driver: sqlx (PostgreSQL, and
//! SQLite outside the group committer) or the SQLite writer thread's own `rusqlite`
//! connection (`sqlite_writer`), which runs a whole batch of writes in one hand-off
//! instead of one hand-off to sqlx's worker thread per statement. The write functions
//! are written once, generic over [`Db`].

use std::borrow::Cow;
use std::future::Future;

use sqlx::Row as _;

/// An error of either driver, as text (the store reports errors as context + message).
#[derive(Debug)]
pub(crate) struct DbError(pub(crate) String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// A bound value. Nulls keep their type: PostgreSQL refuses a text NULL for a bigint.
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}
impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}
impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(Cow::Owned))
    }
}

/// A row read inside a commit.
pub(crate) enum DbRow {
    Sqlx(sqlx::any::AnyRow),
    Owned {
        columns: std::sync::Arc<[String]>,
        values: Vec<rusqlite::types::Value>,
    },
}

impl DbRow {
    fn owned(&self, column: &str) -> Result<Option<&rusqlite::types::Value>, DbError> {
        match self {
            DbRow::Sqlx(_) => Ok(None),
            DbRow::Owned { columns, values } => columns
                .iter()
                .position(|c| c == column)
                .and_then(|i| values.get(i))
                .map(Some)
                .ok_or_else(|| DbError(format!("no column '{column}' in the row"))),
        }
    }

    /// A text column that may be NULL.
    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, DbError> {
        use rusqlite::types::Value;
        match self {
            DbRow::Sqlx(row) => Ok(row.try_get(column)?),
            DbRow::Owned { .. } => match self.owned(column)? {
                Some(Value::Text(text)) => Ok(Some(text.clone())),
                Some(Value::Null) | None => Ok(None),
                Some(other) => Err(DbError(format!(
                    "column '{column}' holds {:?}, not text",
                    other.data_type()
                ))),
            },
        }
    }

    /// A text column.
    pub(crate) fn text(&self, column: &str) -> Result<String, DbError> {
        self.opt_text(column)?
            .ok_or_else(|| DbError(format!("column '{column}' is NULL")))
    }

    /// An integer column.
    pub(crate) fn int(&self, column: &str) -> Result<i64, DbError> {
        use rusqlite::types::Value;
        match self {
            DbRow::Sqlx(row) => Ok(row.try_get(column)?),
            DbRow::Owned { .. } => match self.owned(column)? {
                Some(Value::Integer(v)) => Ok(*v),
                other => Err(DbError(format!(
                    "column '{column}' holds {:?}, not an integer",
                    other.map(|v| v.data_type())
                ))),
            },
        }
    }
}

/// A statement's outcome.
pub(crate) struct Done(u64);

impl Done {
    /// Rows inserted, updated or deleted.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// What runs a commit's statements: a transaction of either driver. Placeholders are
/// `$1`, `$2`, …, as PostgreSQL writes them (SQLite accepts them too).
pub(crate) trait Db: Send {
    /// Whether this is PostgreSQL (else SQLite).
    fn is_postgres(&self) -> bool;

    fn execute<'a>(
        &'a mut self,
        sql: &'static str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = Result<Done, DbError>> + Send + 'a;

    fn fetch_all<'a>(
        &'a mut self,
        sql: &'static str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = Result<Vec<DbRow>, DbError>> + Send + 'a;
}

/// A statement being built, as with `sqlx::query(sql).bind(..)`.
pub(crate) struct Query<'a, D: Db> {
    db: &'a mut D,
    sql: &'static str,
    args: Vec<Arg<'a>>,
}

/// Starts a statement on `db`.
pub(crate) fn query<'a, D: Db>(db: &'a mut D, sql: &'static str) -> Query<'a, D> {
    Query {
        db,
        sql,
        args: Vec::new(),
    }
}

impl<'a, D: Db> Query<'a, D> {
    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, value: impl Into<Arg<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    pub(crate) async fn execute(self) -> Result<Done, DbError> {
        self.db.execute(self.sql, self.args).await
    }

    pub(crate) async fn fetch_all(self) -> Result<Vec<DbRow>, DbError> {
        self.db.fetch_all(self.sql, self.args).await
    }

    pub(crate) async fn fetch_optional(self) -> Result<Option<DbRow>, DbError> {
        Ok(self
            .db
            .fetch_all(self.sql, self.args)
            .await?
            .into_iter()
            .next())
    }
}

fn sqlx_query<'a>(
    sql: &'static str,
    args: Vec<Arg<'a>>,
) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v.map(Cow::into_owned)),
        };
    }
    query
}

/// Runs one statement on a connection of `pool` and returns its rows.
pub(crate) async fn fetch_pooled(
    pool: &sqlx::AnyPool,
    sql: &'static str,
    args: Vec<Arg<'_>>,
) -> Result<Vec<DbRow>, DbError> {
    let rows = sqlx_query(sql, args).fetch_all(pool).await?;
    Ok(rows.into_iter().map(DbRow::Sqlx).collect())
}

impl Db for sqlx::Transaction<'_, sqlx::Any> {
    fn is_postgres(&self) -> bool {
        (**self).backend_name() == "PostgreSQL"
    }

    async fn execute<'a>(
        &'a mut self,
        sql: &'static str,
        args: Vec<Arg<'a>>,
    ) -> Result<Done, DbError> {
        let done = sqlx_query(sql, args).execute(&mut **self).await?;
        Ok(Done(done.rows_affected()))
    }

    async fn fetch_all<'a>(
        &'a mut self,
        sql: &'static str,
        args: Vec<Arg<'a>>,
    ) -> Result<Vec<DbRow>, DbError> {
        let rows = sqlx_query(sql, args).fetch_all(&mut **self).await?;
        Ok(rows.into_iter().map(DbRow::Sqlx).collect())
    }
}

/// The SQLite writer thread's connection, inside its transaction. Each statement runs at
/// once on the calling thread (the writer's own): its future is ready when returned.
pub(crate) struct Direct<'c> {
    pub(crate) conn: &'c mut rusqlite::Connection,
}

impl Direct<'_> {
    fn prepared<'s>(
        conn: &'s rusqlite::Connection,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<rusqlite::CachedStatement<'s>, DbError> {
        let mut statement = conn.prepare_cached(sql)?;
        // `$N` is a named parameter to SQLite, numbered by first appearance (so `$2`
        // before `$1` would swap them): bind each by the number in its name.
        for index in 1..=statement.parameter_count() {
            let number = match statement.parameter_name(index) {
                Some(name) => name
                    .trim_start_matches(['$', '?'])
                    .parse::<usize>()
                    .map_err(|_| DbError(format!("placeholder '{name}' is not $N")))?,
                None => index,
            };
            let arg = args
                .get(number - 1)
                .ok_or_else(|| DbError(format!("no value bound for ${number}")))?;
            match arg {
                Arg::Int(v) => statement.raw_bind_parameter(index, v)?,
                Arg::Text(v) => statement.raw_bind_parameter(index, v.as_deref())?,
            }
        }
        Ok(statement)
    }

    fn execute_now(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Done, DbError> {
        let mut statement = Self::prepared(self.conn, sql, args)?;
        let changed = statement.raw_execute()?;
        Ok(Done(u64::try_from(changed).unwrap_or(u64::MAX)))
    }

    pub(crate) fn fetch_now(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<DbRow>, DbError> {
        use rusqlite::types::{Value, ValueRef};
        let mut statement = Self::prepared(self.conn, sql, args)?;
        let columns: std::sync::Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Integer(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Value::Blob(v.to_vec()),
                });
            }
            out.push(DbRow::Owned {
                columns: columns.clone(),
                values,
            });
        }
        Ok(out)
    }
}

impl Db for Direct<'_> {
    fn is_postgres(&self) -> bool {
        false
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'static str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = Result<Done, DbError>> + Send + 'a {
        std::future::ready(self.execute_now(sql, &args))
    }

    fn fetch_all<'a>(
        &'a mut self,
        sql: &'static str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = Result<Vec<DbRow>, DbError>> + Send + 'a {
        std::future::ready(self.fetch_now(sql, &args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct_rows(sql: &'static str, args: Vec<Arg<'_>>) -> Vec<DbRow> {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Direct { conn: &mut conn };
        db.fetch_now(sql, &args).unwrap()
    }

    #[test]
    fn placeholders_bind_by_their_number_not_their_place() {
        let rows = direct_rows(
            "SELECT $2 || '/' || $1 AS joined, $1 AS again, $3 AS missing",
            vec!["one".into(), "two".into(), Arg::Int(None)],
        );
        assert_eq!(rows[0].text("joined").unwrap(), "two/one");
        assert_eq!(rows[0].text("again").unwrap(), "one");
        assert_eq!(rows[0].opt_text("missing").unwrap(), None);
    }

    #[test]
    fn a_missing_value_or_column_is_an_error_not_a_guess() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Direct { conn: &mut conn };
        assert!(db.fetch_now("SELECT $2 AS x", &["only".into()]).is_err());
        let rows = direct_rows("SELECT 7 AS n", vec![]);
        assert_eq!(rows[0].int("n").unwrap(), 7);
        assert!(rows[0].int("m").is_err());
        assert!(rows[0].text("n").is_err());
    }
}
