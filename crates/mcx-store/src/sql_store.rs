//! The sqlx implementation of the storage ports.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use mcx_core::ports::{
    Audience, Committed, Credential, Effects, EventStore, GroupStore, PartnerAudience,
    PartnerRecordChange, PartnerRecordUpdate, SessionEvents, SessionRecord, SessionStore,
    StoreError, StoreResult, UserRecord, UserStore, WriteOutcome,
};
use mcx_model::events::{ClientEvent, DeliveredEvent};
use mcx_model::group::GroupRecord;
use mcx_model::{ClientId, McServiceGroupId, McServiceId};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};
use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;

use tokio::sync::{Mutex, mpsc, oneshot};

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
    /// SQLite allows one writer at a time; writers queue here instead of failing with
    /// "database is locked" when a read transaction would need to upgrade.
    write_lock: Option<Arc<Mutex<()>>>,
    /// SQLite only: the queue of affiliation changes committed together.
    user_commits: OnceLock<mpsc::UnboundedSender<crate::group_commit::Queued>>,
    /// Seals key material in what is stored.
    pub(crate) writing: Arc<crate::sql_store::Writing>,
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

pub(crate) fn failed(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
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
fn decode_credential(text: &str) -> Option<Credential> {
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
        let store = Self {
            pool,
            postgres,
            write_lock: (!postgres).then(|| Arc::new(Mutex::new(()))),
            user_commits: OnceLock::new(),
            writing: Arc::new(Writing {
                sealer: crate::sealing::Sealer::new(options.storage_key.as_ref())?,
                clock: world.clock,
                entropy: world.entropy,
            }),
        };
        store.seal_stored_groups().await?;
        // Claims of partner transactions still open belong to a process that is gone (one
        // node per store): retransmissions are handled afresh instead of waiting out the
        // lease.
        sqlx::query("DELETE FROM inbound_answers WHERE answer = ''")
            .execute(&store.pool)
            .await
            .map_err(failed("releasing claims of an earlier run"))?;
        Ok(store)
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
        let Some(write_lock) = &self.write_lock else {
            return crate::group_commit::commit_one(&self.pool, &write, &self.writing).await;
        };
        let queue = self.user_commits.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(crate::group_commit::run(
                self.pool.clone(),
                write_lock.clone(),
                rx,
                self.writing.clone(),
            ));
            tx
        });
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

    fn session_from_row(row: &AnyRow) -> StoreResult<SessionRecord> {
        let ctx = "reading a session";
        let get = |col: &str| -> StoreResult<String> { row.try_get(col).map_err(failed(ctx)) };
        Ok(SessionRecord {
            session_id: get("session_id")?,
            token_hash: get("token_hash")?,
            mc_service_id: McServiceId::parse(&get("mc_service_id")?)
                .map_err(|e| corrupt(ctx, e))?,
            client_id: ClientId::parse(&get("client_id")?).map_err(|e| corrupt(ctx, e))?,
            logged_on_at: from_millis(row.try_get("logged_on_at").map_err(failed(ctx))?),
            expires_at: from_millis(row.try_get("expires_at").map_err(failed(ctx))?),
        })
    }

    /// Writes the effects inside `tx`: client events, outbox entries (audiences resolved
    /// now), partner records, the primary link, the completed outbox entry. Returns the
    /// sessions that got events.
    pub(crate) async fn write_effects(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        effects: &Effects,
        writing: &crate::sql_store::Writing,
    ) -> StoreResult<Committed> {
        let now = writing.now();
        // Removals come before the audiences they change are resolved.
        for (group, user) in &effects.ended_subscriptions {
            sqlx::query(
                "DELETE FROM group_subscriptions WHERE group_id = $1 \
                 AND session_id IN (SELECT session_id FROM sessions WHERE mc_service_id = $2)",
            )
            .bind(group.as_str())
            .bind(user.as_str())
            .execute(&mut **tx)
            .await
            .map_err(failed("ending subscriptions of a former member"))?;
        }
        for update in &effects.partner_records {
            if let PartnerRecordUpdate::Dropped { partner, group } = update {
                sqlx::query("DELETE FROM partner_records WHERE group_id = $1 AND partner = $2")
                    .bind(group.as_str())
                    .bind(partner.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err(failed("forgetting a partner of a group"))?;
            }
        }
        let mut woken = Vec::new();
        for (audience, event) in &effects.client_events {
            let json = serde_json::to_string(event).map_err(|e| StoreError {
                context: "encoding a client event".into(),
                message: e.to_string(),
            })?;
            let json = writing.seal(json)?;
            // One copy per session the audience names, each reporting its session.
            let (sql, key) = match audience {
                Audience::Session(session) => (
                    "INSERT INTO client_events (session_id, event, created_at) \
                     SELECT session_id, $1, $2 FROM sessions WHERE session_id = $3 \
                     RETURNING session_id",
                    session.as_str(),
                ),
                Audience::User(user) => (
                    "INSERT INTO client_events (session_id, event, created_at) \
                     SELECT session_id, $1, $2 FROM sessions WHERE mc_service_id = $3 \
                     RETURNING session_id",
                    user.as_str(),
                ),
                Audience::GroupSubscribers(group) => (
                    "INSERT INTO client_events (session_id, event, created_at) \
                     SELECT session_id, $1, $2 FROM group_subscriptions WHERE group_id = $3 \
                     RETURNING session_id",
                    group.as_str(),
                ),
            };
            let rows = sqlx::query(sql)
                .bind(&json)
                .bind(now)
                .bind(key)
                .fetch_all(&mut **tx)
                .await
                .map_err(failed("storing client events"))?;
            for row in rows {
                woken.push(
                    row.try_get::<String, _>("session_id")
                        .map_err(failed("storing client events"))?,
                );
            }
        }
        woken.sort();
        woken.dedup();
        for entry in &effects.outbox {
            Self::write_outbox_entry(tx, entry, now, writing).await?;
        }
        for update in &effects.partner_records {
            Self::write_partner_record(tx, update, now).await?;
        }
        if let Some(update) = &effects.primary_link {
            Self::write_primary_link(tx, update, now).await?;
        }
        if let Some(answered) = &effects.inbound_answer {
            // The claim taken before handling becomes the answer, with the effects.
            let ctx = "recording an answer given to a partner";
            let text = writing
                .seal(serde_json::to_string(&answered.answer).map_err(|e| corrupt(ctx, e))?)?;
            sqlx::query(
                "INSERT INTO inbound_answers (partner, transaction_id, answer, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (partner, transaction_id) DO UPDATE SET answer = excluded.answer \
                 WHERE inbound_answers.answer = ''",
            )
            .bind(answered.partner.as_str())
            .bind(answered.transaction.to_string())
            .bind(text)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(failed(ctx))?;
        }
        if let Some(id) = effects.complete_outbox {
            sqlx::query("DELETE FROM outbox WHERE outbox_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(failed("completing an outbox entry"))?;
        }
        for write in &effects.affiliations {
            crate::affiliation::write_affiliation(tx, write, now).await?;
        }
        for update in &effects.gms_status {
            crate::affiliation::write_gms_status(tx, update, now).await?;
        }
        for write in &effects.acm {
            if !crate::acm::write_exchange(tx, write, now).await? {
                return Ok(Committed {
                    woken_sessions: Vec::new(),
                    conflict: true,
                });
            }
        }
        for addition in &effects.profile_additions {
            crate::acm::write_profile_addition(tx, addition).await?;
        }
        for write in &effects.regroups {
            if !crate::regroup::write_regroup(tx, write, now).await? {
                return Ok(Committed {
                    woken_sessions: Vec::new(),
                    conflict: true,
                });
            }
        }
        if let Some(write) = &effects.change_record
            && !crate::affiliation::write_change_record(tx, write).await?
        {
            return Ok(Committed {
                woken_sessions: Vec::new(),
                conflict: true,
            });
        }
        Ok(Committed {
            woken_sessions: woken,
            conflict: false,
        })
    }

    async fn write_outbox_entry(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        entry: &mcx_core::ports::OutboxEntry,
        now: i64,
        writing: &crate::sql_store::Writing,
    ) -> StoreResult<()> {
        let ctx = "queueing a request to partners";
        let request =
            writing.seal(serde_json::to_string(&entry.request).map_err(|e| corrupt(ctx, e))?)?;
        let txn = writing
            .entropy
            .transaction_id(writing.clock.now())
            .to_string();
        let now = now.saturating_add(i64::try_from(entry.delay.as_millis()).unwrap_or(i64::MAX));
        // $1 names the partner or the group whose partners receive a copy.
        let (sql, key) = match &entry.audience {
            PartnerAudience::Partner(partner) => (
                "INSERT INTO outbox (partner, transaction_id, request, attempts, next_attempt_at, created_at, lane) \
                 VALUES ($1, $2, $3, 0, $4, $4, $5)",
                partner.as_str(),
            ),
            PartnerAudience::SubscribedPartners(group) => (
                "INSERT INTO outbox (partner, transaction_id, request, attempts, next_attempt_at, created_at, lane) \
                 SELECT partner, $2, $3, 0, $4, $4, $5 FROM partner_records WHERE group_id = $1 AND subscribed = 1 \
                 ORDER BY partner",
                group.as_str(),
            ),
            PartnerAudience::KnownPartners(group) => (
                "INSERT INTO outbox (partner, transaction_id, request, attempts, next_attempt_at, created_at, lane) \
                 SELECT partner, $2, $3, 0, $4, $4, $5 FROM partner_records WHERE group_id = $1 \
                 ORDER BY partner",
                group.as_str(),
            ),
        };
        sqlx::query(sql)
            .bind(key)
            .bind(&txn)
            .bind(&request)
            .bind(now)
            .bind(entry.request.ordering_lane())
            .execute(&mut **tx)
            .await
            .map_err(failed(ctx))?;
        Ok(())
    }

    async fn write_partner_record(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        update: &PartnerRecordUpdate,
        now: i64,
    ) -> StoreResult<()> {
        let ctx = "recording a partner's delivery state";
        match update {
            PartnerRecordUpdate::One { partner, group, change } => {
                let (group, partner) = (group.as_str(), partner.as_str());
                match change {
                    PartnerRecordChange::Pending { version } => sqlx::query(
                        "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
                         VALUES ($1, $2, 'pending', $3, NULL, 0, 0, $4) \
                         ON CONFLICT (group_id, partner) DO UPDATE SET state = 'pending', version = excluded.version, \
                         detail = NULL, updated_at = excluded.updated_at",
                    )
                    .bind(group)
                    .bind(partner)
                    .bind(version_i64(*version))
                    .bind(now)
                    .execute(&mut **tx)
                    .await,
                    PartnerRecordChange::Delivered { version } => sqlx::query(
                        "UPDATE partner_records SET state = 'delivered', version = $1, detail = NULL, updated_at = $2 \
                         WHERE group_id = $3 AND partner = $4 AND version <= $1",
                    )
                    .bind(version_i64(*version))
                    .bind(now)
                    .bind(group)
                    .bind(partner)
                    .execute(&mut **tx)
                    .await,
                    PartnerRecordChange::Failed { version, detail } => sqlx::query(
                        "UPDATE partner_records SET state = 'failed', version = $1, detail = $2, updated_at = $3 \
                         WHERE group_id = $4 AND partner = $5 AND version <= $1",
                    )
                    .bind(version_i64(*version))
                    .bind(detail)
                    .bind(now)
                    .bind(group)
                    .bind(partner)
                    .execute(&mut **tx)
                    .await,
                    PartnerRecordChange::Shared => sqlx::query(
                        "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
                         VALUES ($1, $2, 'pending', 0, NULL, 0, 1, $3) \
                         ON CONFLICT (group_id, partner) DO UPDATE SET shared = 1, updated_at = excluded.updated_at",
                    )
                    .bind(group)
                    .bind(partner)
                    .bind(now)
                    .execute(&mut **tx)
                    .await,
                    PartnerRecordChange::Subscribed(on) => sqlx::query(
                        "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
                         VALUES ($1, $2, 'pending', 0, NULL, $3, 0, $4) \
                         ON CONFLICT (group_id, partner) DO UPDATE SET subscribed = excluded.subscribed, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(group)
                    .bind(partner)
                    .bind(i64::from(*on))
                    .bind(now)
                    .execute(&mut **tx)
                    .await,
                }
            }
            PartnerRecordUpdate::SubscribedPending { group, version } => sqlx::query(
                "UPDATE partner_records SET state = 'pending', version = $1, detail = NULL, updated_at = $2 \
                 WHERE group_id = $3 AND subscribed = 1",
            )
            .bind(version_i64(*version))
            .bind(now)
            .bind(group.as_str())
            .execute(&mut **tx)
            .await,
            PartnerRecordUpdate::Forget(group) => sqlx::query("DELETE FROM partner_records WHERE group_id = $1")
                .bind(group.as_str())
                .execute(&mut **tx)
                .await,
            // Applied before the outbox (see `write_effects`).
            PartnerRecordUpdate::Dropped { .. } => return Ok(()),
        }
        .map_err(failed(ctx))?;
        Ok(())
    }

    async fn write_primary_link(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        update: &mcx_core::ports::PrimaryLinkUpdate,
        now: i64,
    ) -> StoreResult<()> {
        let ctx = "recording the link to a group's primary";
        let (group, detail) = (&update.group, &update.detail);
        match &update.state {
            Some(state) => {
                let state = serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                sqlx::query(
                    "INSERT INTO primary_links (group_id, state, detail, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (group_id) DO UPDATE SET state = excluded.state, detail = excluded.detail, \
                     updated_at = excluded.updated_at",
                )
                .bind(group.as_str())
                .bind(state)
                .bind(detail.as_deref())
                .bind(now)
                .execute(&mut **tx)
                .await
            }
            None => sqlx::query("DELETE FROM primary_links WHERE group_id = $1")
                .bind(group.as_str())
                .execute(&mut **tx)
                .await,
        }
        .map_err(failed(ctx))?;
        Ok(())
    }

    async fn delete_session_rows(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        session_id: &str,
    ) -> StoreResult<bool> {
        let ctx = || failed(format!("ending session {session_id}"));
        sqlx::query("DELETE FROM client_events WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut **tx)
            .await
            .map_err(ctx())?;
        sqlx::query("DELETE FROM group_subscriptions WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut **tx)
            .await
            .map_err(ctx())?;
        let done = sqlx::query("DELETE FROM sessions WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut **tx)
            .await
            .map_err(ctx())?;
        Ok(done.rows_affected() > 0)
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

#[async_trait]
impl UserStore for SqlStore {
    async fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        let id = user.profile.mc_service_id.as_str();
        let ctx = format!("storing user '{id}'");
        let profile = serde_json::to_string(&user.profile).map_err(|e| corrupt(&ctx, e))?;
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO users (mc_service_id, profile, credential) VALUES ($1, $2, $3) \
             ON CONFLICT (mc_service_id) DO UPDATE SET profile = excluded.profile, credential = excluded.credential",
        )
        .bind(id)
        .bind(profile)
        .bind(encode_credential(&user.credential))
        .execute(&self.pool)
        .await
        .map_err(failed(ctx))?;
        Ok(())
    }

    async fn user(&self, id: &McServiceId) -> StoreResult<Option<UserRecord>> {
        let ctx = format!("reading user '{id}'");
        let row = sqlx::query("SELECT profile, credential FROM users WHERE mc_service_id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(ctx.clone()))?;
        let Some(row) = row else { return Ok(None) };
        let profile: String = row.try_get("profile").map_err(failed(ctx.clone()))?;
        let credential: String = row.try_get("credential").map_err(failed(ctx.clone()))?;
        let mut profile: mcx_model::profile::UserProfile =
            serde_json::from_str(&profile).map_err(|e| corrupt(&ctx, e))?;
        crate::acm::merge_profile_additions(&self.pool, &mut profile).await?;
        Ok(Some(UserRecord {
            profile,
            credential: decode_credential(&credential)
                .ok_or_else(|| corrupt(&ctx, "unknown credential kind"))?,
        }))
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn start_session(&self, session: &SessionRecord) -> StoreResult<Option<SessionRecord>> {
        let ctx = format!("starting a session for '{}'", session.mc_service_id);
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        let previous =
            sqlx::query("SELECT * FROM sessions WHERE mc_service_id = $1 AND client_id = $2")
                .bind(session.mc_service_id.as_str())
                .bind(session.client_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed(ctx.clone()))?;
        let previous = match previous {
            Some(row) => {
                let old = Self::session_from_row(&row)?;
                Self::delete_session_rows(&mut tx, &old.session_id).await?;
                Some(old)
            }
            None => None,
        };
        sqlx::query(
            "INSERT INTO sessions (session_id, token_hash, mc_service_id, client_id, logged_on_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.session_id)
        .bind(&session.token_hash)
        .bind(session.mc_service_id.as_str())
        .bind(session.client_id.as_str())
        .bind(millis(session.logged_on_at))
        .bind(millis(session.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(failed(ctx.clone()))?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(previous)
    }

    async fn session_and_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRecord, Option<UserRecord>)>> {
        // One round trip: the session, its user, and the user's profile additions (one
        // row per addition; a single row of NULLs when there is none).
        let ctx = "authenticating a request";
        let rows = sqlx::query(
            "SELECT s.session_id, s.token_hash, s.mc_service_id, s.client_id, s.logged_on_at, s.expires_at, \
             u.profile, u.credential, pa.mc_service AS added_service, pa.group_id AS added_group \
             FROM sessions s \
             LEFT JOIN users u ON u.mc_service_id = s.mc_service_id \
             LEFT JOIN profile_additions pa ON pa.mc_service_id = s.mc_service_id \
             WHERE s.token_hash = $1 ORDER BY pa.group_id",
        )
        .bind(token_hash)
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let session = Self::session_from_row(first)?;
        let profile: Option<String> = first.try_get("profile").map_err(failed(ctx))?;
        let credential: Option<String> = first.try_get("credential").map_err(failed(ctx))?;
        let (Some(profile), Some(credential)) = (profile, credential) else {
            return Ok(Some((session, None)));
        };
        let mut profile: mcx_model::profile::UserProfile =
            serde_json::from_str(&profile).map_err(|e| corrupt(ctx, e))?;
        for row in &rows {
            let service: Option<String> = row.try_get("added_service").map_err(failed(ctx))?;
            let group: Option<String> = row.try_get("added_group").map_err(failed(ctx))?;
            if let (Some(service), Some(group)) = (service, group) {
                crate::acm::add_to_profile(ctx, &mut profile, &service, &group)?;
            }
        }
        let user = UserRecord {
            profile,
            credential: decode_credential(&credential)
                .ok_or_else(|| corrupt(ctx, "unknown credential kind"))?,
        };
        Ok(Some((session, Some(user))))
    }

    async fn end_session(&self, session_id: &str) -> StoreResult<bool> {
        let ctx = format!("ending session {session_id}");
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        let ended = Self::delete_session_rows(&mut tx, session_id).await?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(ended)
    }

    async fn expired_sessions(&self, now: OffsetDateTime) -> StoreResult<Vec<SessionRecord>> {
        sqlx::query("SELECT * FROM sessions WHERE expires_at <= $1 ORDER BY expires_at")
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("listing expired sessions"))?
            .iter()
            .map(Self::session_from_row)
            .collect()
    }

    async fn sessions_of(&self, user: &McServiceId) -> StoreResult<Vec<SessionRecord>> {
        sqlx::query("SELECT * FROM sessions WHERE mc_service_id = $1 ORDER BY client_id")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(failed(format!("listing the sessions of '{user}'")))?
            .iter()
            .map(Self::session_from_row)
            .collect()
    }

    async fn session_exists(&self, session_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT session_id FROM sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(format!("looking up session {session_id}")))?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl EventStore for SqlStore {
    async fn commit(&self, effects: &Effects) -> StoreResult<Committed> {
        let committed = self
            .commit_write(crate::group_commit::Write::Effects(effects.clone()))
            .await?;
        // A guarded change record that moved on: nothing was kept.
        Ok(committed.unwrap_or(Committed {
            woken_sessions: Vec::new(),
            conflict: true,
        }))
    }

    async fn events_of_sessions(
        &self,
        wanted: &[(String, i64)],
        limit: u32,
    ) -> StoreResult<Vec<SessionEvents>> {
        let ctx = "reading events of several sessions";
        let mut out = vec![SessionEvents::default(); wanted.len()];
        if wanted.is_empty() {
            return Ok(out);
        }
        // wanted(idx, session, after) as a VALUES list; each session's next `limit`
        // events by rank; then which sessions exist.
        let mut values = String::new();
        for i in 0..wanted.len() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!(
                "(CAST(${} AS BIGINT), ${}, CAST(${} AS BIGINT))",
                3 * i + 1,
                3 * i + 2,
                3 * i + 3
            ));
        }
        let limit_param = 3 * wanted.len() + 1;
        let sql = format!(
            "WITH wanted (idx, session_id, after_id) AS (VALUES {values}), \
             ranked AS (SELECT w.idx, e.event_id, e.event, \
               ROW_NUMBER() OVER (PARTITION BY w.idx ORDER BY e.event_id) AS n \
               FROM wanted w JOIN client_events e ON e.session_id = w.session_id AND e.event_id > w.after_id) \
             SELECT idx, event_id, event FROM ranked WHERE n <= ${limit_param} ORDER BY idx, event_id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, (session, after)) in wanted.iter().enumerate() {
            query = query
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .bind(session.clone())
                .bind(*after);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed(ctx))?;
        for row in &rows {
            let idx: i64 = row.try_get("idx").map_err(failed(ctx))?;
            let id: i64 = row.try_get("event_id").map_err(failed(ctx))?;
            let text: String = row.try_get("event").map_err(failed(ctx))?;
            let text = self.writing.open(text)?;
            let event: ClientEvent = serde_json::from_str(&text).map_err(|e| corrupt(ctx, e))?;
            let slot = usize::try_from(idx)
                .ok()
                .and_then(|i| out.get_mut(i))
                .ok_or_else(|| corrupt(ctx, format!("index {idx} out of range")))?;
            slot.events.push(DeliveredEvent { id, event });
            slot.exists = true;
        }
        // Sessions with events exist (their events go when they end); ask for the rest.
        let unknown: Vec<&str> = wanted
            .iter()
            .zip(&out)
            .filter(|(_, found)| !found.exists)
            .map(|((session, _), _)| session.as_str())
            .collect();
        if !unknown.is_empty() {
            let placeholders: Vec<String> = (1..=unknown.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT session_id FROM sessions WHERE session_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for session in &unknown {
                query = query.bind(session.to_string());
            }
            let existing: std::collections::HashSet<String> = query
                .fetch_all(&self.pool)
                .await
                .map_err(failed(ctx))?
                .iter()
                .map(|row| row.try_get::<String, _>("session_id"))
                .collect::<Result<_, _>>()
                .map_err(failed(ctx))?;
            for ((session, _), found) in wanted.iter().zip(out.iter_mut()) {
                if existing.contains(session) {
                    found.exists = true;
                }
            }
        }
        Ok(out)
    }

    async fn discard_events_through(&self, session_id: &str, through: i64) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("DELETE FROM client_events WHERE session_id = $1 AND event_id <= $2")
            .bind(session_id)
            .bind(through)
            .execute(&self.pool)
            .await
            .map_err(failed(format!(
                "discarding delivered events of session {session_id}"
            )))?;
        Ok(())
    }
}

#[async_trait]
impl GroupStore for SqlStore {
    async fn group(&self, id: &McServiceGroupId) -> StoreResult<Option<GroupRecord>> {
        sqlx::query("SELECT record FROM groups WHERE group_id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(format!("reading group '{id}'")))?
            .as_ref()
            .map(|row| self.group_from_row(row))
            .transpose()
    }

    async fn groups(&self) -> StoreResult<Vec<GroupRecord>> {
        sqlx::query("SELECT record FROM groups ORDER BY group_id")
            .fetch_all(&self.pool)
            .await
            .map_err(failed("listing groups"))?
            .iter()
            .map(|row| self.group_from_row(row))
            .collect()
    }

    async fn insert_group(
        &self,
        group: &GroupRecord,
        effects: &Effects,
    ) -> StoreResult<WriteOutcome> {
        let id = &group.mc_service_group_id;
        let ctx = format!("creating group '{id}'");
        let record = self.group_text(group, &ctx)?;
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        let inserted = sqlx::query(
            "INSERT INTO groups (group_id, version, record) VALUES ($1, $2, $3) \
             ON CONFLICT (group_id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(version_i64(group.version))
        .bind(record)
        .execute(&mut *tx)
        .await
        .map_err(failed(ctx.clone()))?;
        if inserted.rows_affected() == 0 {
            return Ok(WriteOutcome::AlreadyExists);
        }
        let committed = Self::write_effects(&mut tx, effects, &self.writing).await?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(WriteOutcome::Done(committed))
    }

    async fn replace_group(
        &self,
        group: &GroupRecord,
        expected_version: u64,
        effects: &Effects,
    ) -> StoreResult<WriteOutcome> {
        let id = &group.mc_service_group_id;
        let ctx = format!("updating group '{id}'");
        let record = self.group_text(group, &ctx)?;
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        let updated = sqlx::query(
            "UPDATE groups SET version = $1, record = $2 WHERE group_id = $3 AND version = $4",
        )
        .bind(version_i64(group.version))
        .bind(record)
        .bind(id.as_str())
        .bind(version_i64(expected_version))
        .execute(&mut *tx)
        .await
        .map_err(failed(ctx.clone()))?;
        if updated.rows_affected() == 0 {
            let current = sqlx::query("SELECT version FROM groups WHERE group_id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed(ctx.clone()))?;
            return Ok(match current {
                Some(row) => WriteOutcome::VersionMismatch {
                    current: u64::try_from(row.try_get::<i64, _>("version").map_err(failed(ctx))?)
                        .unwrap_or(0),
                },
                None => WriteOutcome::NotFound,
            });
        }
        let committed = Self::write_effects(&mut tx, effects, &self.writing).await?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(WriteOutcome::Done(committed))
    }

    async fn delete_group(
        &self,
        id: &McServiceGroupId,
        expected_version: Option<u64>,
        effects: &Effects,
    ) -> StoreResult<WriteOutcome> {
        let ctx = format!("deleting group '{id}'");
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        // The group's row is locked first (on PostgreSQL), as every other writer of a
        // group and its partner records does: the same order everywhere, no deadlock.
        let current = sqlx::query(
            "UPDATE groups SET version = version WHERE group_id = $1 RETURNING version",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed(ctx.clone()))?;
        let Some(row) = current else {
            return Ok(WriteOutcome::NotFound);
        };
        let current = u64::try_from(
            row.try_get::<i64, _>("version")
                .map_err(failed(ctx.clone()))?,
        )
        .unwrap_or(0);
        if expected_version.is_some_and(|v| v != current) {
            return Ok(WriteOutcome::VersionMismatch { current });
        }
        // Subscribers are told before their subscriptions go.
        let committed = Self::write_effects(&mut tx, effects, &self.writing).await?;
        crate::affiliation::forget_group(&mut tx, id).await?;
        sqlx::query("DELETE FROM group_subscriptions WHERE group_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed(ctx.clone()))?;
        sqlx::query("DELETE FROM groups WHERE group_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed(ctx.clone()))?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(WriteOutcome::Done(committed))
    }

    async fn subscribe(&self, session_id: &str, group: &McServiceGroupId) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO group_subscriptions (session_id, group_id) VALUES ($1, $2) \
             ON CONFLICT (session_id, group_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(group.as_str())
        .execute(&self.pool)
        .await
        .map_err(failed(format!("subscribing to group '{group}'")))?;
        Ok(())
    }

    async fn unsubscribe(&self, session_id: &str, group: &McServiceGroupId) -> StoreResult<bool> {
        let _guard = self.write_guard().await;
        let done =
            sqlx::query("DELETE FROM group_subscriptions WHERE session_id = $1 AND group_id = $2")
                .bind(session_id)
                .bind(group.as_str())
                .execute(&self.pool)
                .await
                .map_err(failed(format!("unsubscribing from group '{group}'")))?;
        Ok(done.rows_affected() > 0)
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
