//! The sqlx implementation of the storage ports.

use std::str::FromStr;
use std::time::Duration;

use mcx_core::ports::{Committed, Credential, StoreError, StoreResult};
use mcx_model::group::GroupRecord;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};
use std::sync::Arc;
use time::OffsetDateTime;

use tokio::sync::{Mutex, mpsc, oneshot};

/// What another node of the system committed (see [`SqlStore::relay_node_news`]).
#[derive(Debug, Clone)]
pub enum NodeNews {
    /// These sessions have new events, or ended.
    Sessions(Vec<String>),
    /// This group's stored configuration is now at this version (`None`: deleted).
    GroupChanged(mcx_model::McServiceGroupId, Option<u64>),
    /// A partner host's answer is stored for the request waiting under this key.
    HostAnswerStored(String),
    /// Notifications may have been missed: re-read everything.
    MayHaveMissed,
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH?mode=rwc` or `postgres://USER@HOST/DB`.
    pub url: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// The key that seals group key material at rest (see `sealing`); without one it is
    /// stored as it comes.
    pub storage_key: Option<[u8; 32]>,
}

impl StoreOptions {
    /// The embedded default: a SQLite file in the data directory, created if missing.
    pub fn sqlite_in(data_dir: &std::path::Path) -> Self {
        Self {
            url: format!(
                "sqlite://{}?mode=rwc",
                data_dir.join(crate::SQLITE_FILE).display()
            ),
            max_connections: 8,
            storage_key: None,
        }
    }
}

/// The store: a pool of connections to SQLite or PostgreSQL.
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    postgres: bool,
    /// Where the store is (PostgreSQL: the wake-up listener connects there too).
    url: String,
    /// SQLite allows one writer at a time; writers queue here instead of failing with
    /// "database is locked" when a read transaction would need to upgrade.
    write_lock: Option<Arc<Mutex<()>>>,
    /// SQLite only: the queue of the writer thread, which commits writes together.
    user_commits: Option<mpsc::UnboundedSender<crate::group_commit::Queued>>,
    /// Seals key material in what is stored.
    pub(crate) writing: Arc<crate::sql_store::Writing>,
    /// SQLite only: connections for the hot path's reads, used on the caller's thread.
    readers: Option<crate::readers::Readers>,
}

/// What every write needs besides its transaction: the sealer for key material, and the
/// time and randomness the store writes (timestamps, transaction IDs of requests to
/// partners), from the same ports the core uses, so a simulated run replays exactly.
pub(crate) struct Writing {
    sealer: crate::sealing::Sealer,
    /// Time.
    pub(crate) clock: Arc<dyn mcx_core::ports::Clock>,
    /// Randomness.
    pub(crate) entropy: Arc<dyn mcx_core::ports::Entropy>,
}

impl std::ops::Deref for Writing {
    type Target = crate::sealing::Sealer;
    fn deref(&self) -> &Self::Target {
        &self.sealer
    }
}

impl Writing {
    /// Now, in Unix milliseconds.
    pub(crate) fn now(&self) -> i64 {
        millis(self.clock.now())
    }
}

/// The time and randomness a store uses: the system's in a server, simulated ones in
/// the simulation.
#[derive(Clone)]
pub struct StoreWorld {
    /// Time.
    pub clock: Arc<dyn mcx_core::ports::Clock>,
    /// Randomness.
    pub entropy: Arc<dyn mcx_core::ports::Entropy>,
}

pub(crate) fn failed<E: std::fmt::Display>(
    context: impl Into<String>,
) -> impl FnOnce(E) -> StoreError {
    let context = context.into();
    move |e| StoreError {
        context,
        message: e.to_string(),
    }
}

pub(crate) fn corrupt(context: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError {
        context: context.to_string(),
        message: format!("stored data is not readable: {what}"),
    }
}

pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn version_i64(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

pub(crate) fn encode_credential(credential: &Credential) -> String {
    match credential {
        Credential::PasswordHash(phc) => format!("argon2:{phc}"),
    }
}

/// `None` for a credential of an older kind (a plain-text password stored by an earlier
/// version): it matches nothing until the configuration is loaded again at start.
pub(crate) fn decode_credential(text: &str) -> Option<Credential> {
    text.strip_prefix("argon2:")
        .map(|phc| Credential::PasswordHash(phc.to_string()))
}

impl SqlStore {
    /// Opens the store and brings its schema up to date.
    pub async fn open(options: &StoreOptions, world: StoreWorld) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let connect = AnyConnectOptions::from_str(&options.url).map_err(failed(format!(
            "parsing the storage URL '{}'",
            redact(&options.url)
        )))?;
        let postgres = options.url.starts_with("postgres");
        let sqlite_path = if postgres {
            None
        } else {
            let sqlite =
                sqlx::sqlite::SqliteConnectOptions::from_str(&options.url).map_err(failed(
                    format!("parsing the storage URL '{}'", redact(&options.url)),
                ))?;
            Some(sqlite.get_filename().to_path_buf())
        };
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every use doubles the round trips to SQLite's worker thread
            // for nothing: the file cannot go away. A PostgreSQL connection can.
            .test_before_acquire(postgres)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        // WAL lets readers run beside the writer; FULL makes every commit
                        // durable before it is acknowledged.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(failed(format!(
                "opening the database at '{}'",
                redact(&options.url)
            )))?;
        crate::migrations::migrator(postgres)
            .run(&pool)
            .await
            .map_err(|e| StoreError {
                context: "bringing the database schema up to date".into(),
                message: e.to_string(),
            })?;
        let writing = Arc::new(Writing {
            sealer: crate::sealing::Sealer::new(options.storage_key.as_ref())?,
            clock: world.clock,
            entropy: world.entropy,
        });
        let write_lock = (!postgres).then(|| Arc::new(Mutex::new(())));
        let user_commits = match (&sqlite_path, &write_lock) {
            (Some(path), Some(lock)) => Some(crate::group_commit::start_sqlite_writer(
                path,
                lock.clone(),
                writing.clone(),
            )?),
            _ => None,
        };
        let readers = match &sqlite_path {
            Some(path) => Some(
                crate::readers::Readers::open(path)
                    .map_err(failed("opening the SQLite readers"))?,
            ),
            None => None,
        };
        let store = Self {
            pool,
            postgres,
            url: options.url.clone(),
            write_lock,
            user_commits,
            writing,
            readers,
        };
        store.seal_stored_groups().await?;
        // Claims of partner transactions (rows with an empty answer), left by an earlier
        // release that claimed a transaction before handling it: dropped, so a
        // retransmission is handled afresh.
        sqlx::query("DELETE FROM inbound_answers WHERE answer = ''")
            .execute(&store.pool)
            .await
            .map_err(failed("releasing claims of an earlier run"))?;
        // Waits for hosts' answers left by a node that stopped (long past their bound).
        sqlx::query("DELETE FROM answer_waits WHERE until_at < $1")
            .bind(store.writing.now().saturating_sub(60_000))
            .execute(&store.pool)
            .await
            .map_err(failed("sweeping answer waits of stopped nodes"))?;
        Ok(store)
    }

    /// Relays what other nodes of one system commit (PostgreSQL only): every commit that
    /// stores client events, every session's end and every change of a stored group
    /// notifies a channel in its transaction, so a notification exists exactly when its
    /// commit does; each node listens and hands each to `on`. On every (re)connection of
    /// the listener `on` gets [`NodeNews::MayHaveMissed`]: what was sent while it was away
    /// is not lost, only late. Returns when `shutdown` turns true.
    pub async fn relay_node_news(
        &self,
        on: impl Fn(NodeNews) + Send + Sync,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        if !self.postgres {
            return;
        }
        let channels = [
            crate::writes::WAKE_CHANNEL,
            crate::writes::GROUP_CHANNEL,
            crate::writes::WAIT_CHANNEL,
        ];
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect(&self.url).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!(error = %e, "node news: cannot connect to listen; retrying in 1 s");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = shutdown.wait_for(|down| *down) => return,
                    }
                }
            };
            if let Err(e) = listener.listen_all(channels).await {
                tracing::error!(error = %e, "node news: cannot listen; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = shutdown.wait_for(|down| *down) => return,
                }
            }
            on(NodeNews::MayHaveMissed);
            loop {
                let next = tokio::select! {
                    next = listener.try_recv() => next,
                    _ = shutdown.wait_for(|down| *down) => return,
                };
                match next {
                    Ok(Some(notification))
                        if notification.channel() == crate::writes::GROUP_CHANNEL =>
                    {
                        let (version, group) =
                            notification.payload().split_once(' ').unwrap_or(("", ""));
                        match (version, mcx_model::McServiceGroupId::parse(group)) {
                            ("deleted", Ok(group)) => on(NodeNews::GroupChanged(group, None)),
                            (version, Ok(group)) => match version.parse::<u64>() {
                                Ok(version) => on(NodeNews::GroupChanged(group, Some(version))),
                                Err(_) => on(NodeNews::MayHaveMissed),
                            },
                            (_, Err(_)) => on(NodeNews::MayHaveMissed),
                        }
                    }
                    Ok(Some(notification))
                        if notification.channel() == crate::writes::WAIT_CHANNEL =>
                    {
                        on(NodeNews::HostAnswerStored(
                            notification.payload().to_string(),
                        ))
                    }
                    Ok(Some(notification)) => on(NodeNews::Sessions(
                        notification
                            .payload()
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )),
                    // The connection was lost and made again: some may have been missed.
                    Ok(None) => on(NodeNews::MayHaveMissed),
                    Err(e) => {
                        tracing::warn!(error = %e, "node news: listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    /// A read on the hot path: one statement, its rows. On SQLite it runs at once on the
    /// calling thread (see `readers`); on PostgreSQL through the pool.
    pub(crate) async fn fetch(
        &self,
        ctx: &str,
        sql: &'static str,
        args: Vec<crate::db::Arg<'_>>,
    ) -> StoreResult<Vec<crate::db::DbRow>> {
        match &self.readers {
            Some(readers) => readers.fetch_all(sql, &args).map_err(failed(ctx)),
            None => crate::db::fetch_pooled(&self.pool, sql, args)
                .await
                .map_err(failed(ctx)),
        }
    }

    /// Whether reads run on this thread over SQLite's own connections (see `readers`).
    pub(crate) fn is_sqlite_here(&self) -> bool {
        self.readers.is_some()
    }

    /// Whether this store is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Commits a write: on PostgreSQL in its own transaction; on SQLite together with
    /// the writes queued meanwhile (see `group_commit`). Answers once it is durable;
    /// `None` when its guard failed and nothing was kept.
    pub(crate) async fn commit_write(
        &self,
        write: crate::group_commit::Write,
    ) -> StoreResult<Option<Committed>> {
        let Some(queue) = &self.user_commits else {
            return crate::group_commit::commit_one(&self.pool, &write, &self.writing).await;
        };
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError {
            context: "committing a write".into(),
            message: "the store's committer has stopped".into(),
        };
        queue
            .send(crate::group_commit::Queued { write, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    pub(crate) fn group_from_row(&self, row: &AnyRow) -> StoreResult<GroupRecord> {
        let text: String = row.try_get("record").map_err(failed("reading a group"))?;
        let text = self.writing.open(text)?;
        serde_json::from_str(&text).map_err(|e| corrupt("reading a group", e))
    }

    /// A group record as stored: JSON with its key material sealed.
    pub(crate) fn group_text(&self, group: &GroupRecord, ctx: &str) -> StoreResult<String> {
        self.writing
            .seal(serde_json::to_string(group).map_err(|e| corrupt(ctx, e))?)
    }

    /// Group records stored before key material was sealed are sealed now.
    async fn seal_stored_groups(&self) -> StoreResult<()> {
        let ctx = "sealing stored key material";
        let rows = sqlx::query(
            "SELECT group_id, record FROM groups WHERE record LIKE '%\"key-material\"%'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        for row in rows {
            let id: String = row.try_get("group_id").map_err(failed(ctx))?;
            let text: String = row.try_get("record").map_err(failed(ctx))?;
            let sealed = self.writing.seal(text.clone())?;
            if sealed != text {
                sqlx::query("UPDATE groups SET record = $1 WHERE group_id = $2")
                    .bind(sealed)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(failed(ctx))?;
            }
        }
        Ok(())
    }
}

/// Hides a password in a storage URL before it reaches an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact("postgres://mcx:secret@127.0.0.1/mcx"),
            "postgres://mcx:***@127.0.0.1/mcx"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn time_round_trips_in_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        assert_eq!(from_millis(millis(t)), t);
    }
}
