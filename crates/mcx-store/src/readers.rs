//! Reads on the hot path, over SQLite's own connections on the caller's thread. sqlx's
//! SQLite driver hands each statement to a worker thread and back (a channel send, a
//! wake-up, another channel send, another wake-up): for a point read that costs several
//! times the read itself. A read of a few rows by key takes microseconds in WAL mode and
//! never waits for the writer, so it runs where it is asked, over a connection taken
//! from a small set. PostgreSQL reads keep going through sqlx's pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::db::{Arg, DbError, DbRow, Direct};

/// Read connections kept open between reads; more are opened when all are in use (one
/// per tokio worker at most in practice) and closed when returned beyond this.
const IDLE_READERS: usize = 8;

/// A set of read connections to one SQLite database file.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl Readers {
    /// Opens the first reader of the database at `path` (which must exist: the pool
    /// created it and ran the migrations).
    pub(crate) fn open(path: &Path) -> Result<Self, DbError> {
        let first = connect(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            idle: Mutex::new(vec![first]),
        })
    }

    /// Runs one statement and returns its rows. The statement is its own read
    /// transaction: it sees every commit made before it started.
    pub(crate) fn fetch_all(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<DbRow>, DbError> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let rows = Direct { conn: &mut conn }.fetch_now(sql, args);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        rows
    }
}

fn connect(path: &Path) -> Result<rusqlite::Connection, DbError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| DbError(format!("opening a reader of '{}': {e}", path.display())))?;
    // Read-write so that WAL's shared memory works as for the other connections, but
    // refusing any write: writes go through the writer thread only.
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA busy_timeout = 10000;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_what_another_connection_committed_and_writes_nothing() {
        let dir = std::env::temp_dir().join(format!("mcx-readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT, v INTEGER);")
            .unwrap();
        let readers = Readers::open(&path).unwrap();
        writer.execute("INSERT INTO t VALUES ('a', 1)", []).unwrap();
        let rows = readers
            .fetch_all("SELECT v FROM t WHERE k = $1", &["a".into()])
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].int("v").unwrap(), 1);
        let refused = readers.fetch_all("INSERT INTO t VALUES ('b', 2) RETURNING v", &[]);
        assert!(refused.is_err(), "a reader must not write");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
