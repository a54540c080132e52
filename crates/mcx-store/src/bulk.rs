//! Loading a store in bulk: logged-on users with their affiliations, written straight into
//! the tables the procedures keep (served affiliations and the GMS's view), as a system
//! that had been running for a long time would hold them. `mcx bench` uses it to measure
//! how cost grows with stored state; a test lab can use it to stage a large system.
//! Rows go in multi-row statements inside one transaction per call, so a million
//! affiliations load in seconds rather than the hours one procedure per row would take.

use mcx_core::ports::{SessionRecord, StoreResult, UserRecord};
use mcx_model::{McService, McServiceGroupId};

use crate::sql_store::{SqlStore, encode_credential, failed, millis};

/// One logged-on user with affiliations, all held by the session's client.
#[derive(Debug, Clone)]
pub struct BulkAffiliatedUser {
    /// The user (profile and credential).
    pub user: UserRecord,
    /// The user's session; its client holds the affiliations.
    pub session: SessionRecord,
    /// The groups the client is affiliated to, per MC service; groups of this system.
    pub affiliations: Vec<(McService, McServiceGroupId)>,
}

/// Rows per statement: well under both backends' bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 400;

impl SqlStore {
    /// Stores the users, their sessions and their affiliations (at the serving server and
    /// in the GMS's view) in one transaction. Existing rows with the same keys are an
    /// error: the load is meant for a fresh or previously bulk-loaded store.
    pub async fn load_affiliated_users(&self, users: &[BulkAffiliatedUser]) -> StoreResult<()> {
        let ctx = "loading affiliated users in bulk";
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx))?;
        for chunk in users.chunks(ROWS_PER_STATEMENT) {
            let mut statement = sqlx::query(insert(
                "users",
                &["mc_service_id", "profile", "credential"],
                chunk.len(),
            ));
            for entry in chunk {
                let profile = serde_json::to_string(&entry.user.profile).map_err(|e| {
                    crate::sql_store::corrupt(ctx, format!("encoding a profile: {e}"))
                })?;
                statement = statement
                    .bind(entry.user.profile.mc_service_id.as_str().to_string())
                    .bind(profile)
                    .bind(encode_credential(&entry.user.credential));
            }
            statement.execute(&mut *tx).await.map_err(failed(ctx))?;

            let mut statement = sqlx::query(insert(
                "sessions",
                &[
                    "session_id",
                    "token_hash",
                    "mc_service_id",
                    "client_id",
                    "logged_on_at",
                    "expires_at",
                ],
                chunk.len(),
            ));
            for entry in chunk {
                let session = &entry.session;
                statement = statement
                    .bind(session.session_id.clone())
                    .bind(session.token_hash.clone())
                    .bind(session.mc_service_id.as_str().to_string())
                    .bind(session.client_id.as_str().to_string())
                    .bind(millis(session.logged_on_at))
                    .bind(millis(session.expires_at));
            }
            statement.execute(&mut *tx).await.map_err(failed(ctx))?;
        }

        let now = self.writing.now();
        let rows: Vec<(&BulkAffiliatedUser, &McService, &McServiceGroupId)> = users
            .iter()
            .flat_map(|entry| {
                entry
                    .affiliations
                    .iter()
                    .map(move |(service, group)| (entry, service, group))
            })
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut statement = sqlx::query(insert(
                "affiliations",
                &[
                    "mc_service_id",
                    "mc_service",
                    "group_id",
                    "client_id",
                    "pending",
                    "created_at",
                ],
                chunk.len(),
            ));
            for (entry, service, group) in chunk {
                statement = statement
                    .bind(entry.session.mc_service_id.as_str().to_string())
                    .bind(service.as_str())
                    .bind(group.as_str().to_string())
                    .bind(entry.session.client_id.as_str().to_string())
                    .bind(0_i64)
                    .bind(now);
            }
            statement.execute(&mut *tx).await.map_err(failed(ctx))?;

            let mut statement = sqlx::query(insert(
                "gms_affiliations",
                &["group_id", "mc_service", "mc_service_id", "updated_at"],
                chunk.len(),
            ));
            for (entry, service, group) in chunk {
                statement = statement
                    .bind(group.as_str().to_string())
                    .bind(service.as_str())
                    .bind(entry.session.mc_service_id.as_str().to_string())
                    .bind(now);
            }
            statement.execute(&mut *tx).await.map_err(failed(ctx))?;
        }
        tx.commit().await.map_err(failed(ctx))?;
        Ok(())
    }

    /// How many client affiliations the serving server holds.
    pub async fn affiliation_count(&self) -> StoreResult<u64> {
        use sqlx::Row as _;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM affiliations")
            .fetch_one(&self.pool)
            .await
            .map_err(failed("counting affiliations"))?;
        let n: i64 = row.try_get("n").map_err(failed("counting affiliations"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// `INSERT INTO table (a, b) VALUES ($1, $2), ($3, $4), ...` for `rows` rows. Safe: the
/// table and columns are literals of this module; every value is bound.
fn insert(
    table: &'static str,
    columns: &[&'static str],
    rows: usize,
) -> sqlx::AssertSqlSafe<String> {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns.len() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
    sqlx::AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::insert;

    #[test]
    fn placeholders_number_every_value_in_order() {
        assert_eq!(
            insert("t", &["a", "b"], 2).0,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }
}
