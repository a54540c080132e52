//! Group commit on SQLite. SQLite has one writer, and each statement is a round trip to
//! the connection's worker thread, so a transaction per write makes concurrent writes
//! queue behind each other's `BEGIN`, `COMMIT` and fsync. Here the writes that queue while
//! one commit runs go into the next transaction together: each in its own savepoint where
//! it may need undoing, each answered only after the shared `COMMIT` is durable. If that
//! transaction fails, each write is retried alone, so one write's error is never
//! another's. On PostgreSQL (several writers) each write keeps its own transaction.

use std::sync::Arc;

use mcx_core::ports::{Committed, Effects, StoreError, StoreResult};
use mcx_model::McServiceId;
use sqlx::AnyPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db::{Db, Direct, query};
use crate::sql_store::{SqlStore, failed};

/// A write the committer takes.
pub(crate) enum Write {
    /// A change of one user's affiliations, kept only if the user's generation is still
    /// `expected`.
    User {
        user: McServiceId,
        expected: Option<u64>,
        effects: Effects,
    },
    /// Effects with no other change.
    Effects(Effects),
    /// The SIP door's own rows (`sip_state`), put or deleted together.
    SipState(Vec<SipStateOp>),
}

/// One change of a `sip_state` row.
pub(crate) enum SipStateOp {
    /// Insert or replace.
    Put {
        kind: String,
        key: String,
        value: String,
        expires_at: i64,
    },
    /// Delete.
    Delete { kind: String, key: String },
}

impl Write {
    /// Whether part of the write may have to be undone after it started: a guard that can
    /// fail after something of the write is already written.
    fn may_undo(&self) -> bool {
        use mcx_core::ports::{AffiliationWrite, AnswerWaitWrite, RegroupWrite};
        let (effects, bumps_generation) = match self {
            Write::SipState(_) => return false,
            Write::User { effects, .. } => (effects, true),
            Write::Effects(effects) => (effects, false),
        };
        let service = &effects.service;
        // Written before the guards below: the user's generation, the answer to a
        // partner's transaction (itself a guard against copies), a stored wait.
        let written_first = bumps_generation
            || effects.inbound_answer.is_some()
            || service
                .answer_waits
                .iter()
                .any(|w| matches!(w, AnswerWaitWrite::Open { .. }));
        // Checked before the effects' own rows, one after another.
        let checked_first = service.confirmations.len()
            + service
                .answer_waits
                .iter()
                .filter(|w| matches!(w, AnswerWaitWrite::Answer { .. }))
                .count()
            + service
                .affiliations
                .iter()
                .filter(|w| matches!(w, AffiliationWrite::HostedGeneration { .. }))
                .count()
            + usize::from(bumps_generation && effects.inbound_answer.is_some());
        // Checked after some of the effects' rows are written.
        let checked_later = service.change_record.is_some()
            || service
                .regroups
                .iter()
                .any(|w| matches!(w, RegroupWrite::Claim { .. }))
            || effects.acm.exchanges.iter().any(|w| w.only_if.is_some());
        checked_later || checked_first > 1 || (checked_first == 1 && written_first)
    }
}

/// A queued write and whom to answer.
pub(crate) struct Queued {
    pub(crate) write: Write,
    pub(crate) reply: oneshot::Sender<StoreResult<Option<Committed>>>,
}

/// Writes per transaction at most.
const WRITES_PER_COMMIT: usize = 64;

/// Starts the SQLite writer: a thread of its own owning a connection to the database at
/// `path`, committing what is queued until the queue closes (the store is dropped). A
/// batch costs one hand-off to this thread, however many statements it runs; sqlx's
/// SQLite driver would hand each statement to its worker thread and back.
pub(crate) fn start_sqlite_writer(
    path: &std::path::Path,
    write_lock: Arc<Mutex<()>>,
    writing: Arc<crate::sql_store::Writing>,
) -> StoreResult<mpsc::UnboundedSender<Queued>> {
    let ctx = format!("opening the SQLite writer on '{}'", path.display());
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed(ctx.as_str()))?;
    // As the pool's connections: WAL, every commit durable before it is acknowledged.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
    )
    .map_err(failed(ctx.as_str()))?;
    conn.set_prepared_statement_cache_capacity(256);
    let (queue, mut rx) = mpsc::unbounded_channel::<Queued>();
    std::thread::Builder::new()
        .name("mcx-sqlite-writer".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < WRITES_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                metrics::histogram!("mcx_group_commit_writes").record(batch.len() as f64);
                let together = {
                    let _writer = write_lock.blocking_lock();
                    in_transaction(
                        &mut conn,
                        |db| commit_together(db, &batch, &writing),
                        |_| true,
                    )
                };
                match together {
                    Ok(results) => {
                        for (queued, result) in batch.into_iter().zip(results) {
                            let _ = queued.reply.send(Ok(result));
                        }
                    }
                    Err(_) => {
                        // One write's error must not be another's: each alone.
                        for queued in batch {
                            let alone = {
                                let _writer = write_lock.blocking_lock();
                                in_transaction(
                                    &mut conn,
                                    |db| ready(write_one(db, &queued.write, &writing)),
                                    Option::is_some,
                                )
                            };
                            let _ = queued.reply.send(alone);
                        }
                    }
                }
            }
        })
        .map_err(|e| StoreError {
            context: ctx,
            message: e.to_string(),
        })?;
    Ok(queue)
}

/// The outcome of a write future on the writer thread, whose statements all run at
/// once: it never waits, so it is polled once.
fn ready<T>(future: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    futures_util::FutureExt::now_or_never(future).unwrap_or_else(|| {
        Err(StoreError {
            context: "committing on the SQLite writer".into(),
            message: "a write waited for something other than its statements".into(),
        })
    })
}

/// Runs `work` in one transaction of the writer's connection: committed if it succeeds
/// and `keep` says so (a write whose guard failed is not kept), else rolled back.
fn in_transaction<T>(
    conn: &mut rusqlite::Connection,
    work: impl FnOnce(&mut Direct<'_>) -> StoreResult<T>,
    keep: impl FnOnce(&T) -> bool,
) -> StoreResult<T> {
    let ctx = "committing writes";
    conn.execute_batch("BEGIN IMMEDIATE").map_err(failed(ctx))?;
    let outcome = work(&mut Direct { conn: &mut *conn });
    match outcome {
        Ok(value) if !keep(&value) => {
            conn.execute_batch("ROLLBACK").map_err(failed(ctx))?;
            Ok(value)
        }
        Ok(value) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(failed(ctx)(e))
            }
        },
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The writes of a batch in the writer's open transaction, each that may need undoing in
/// a savepoint of its own.
fn commit_together(
    db: &mut Direct<'_>,
    batch: &[Queued],
    writing: &crate::sql_store::Writing,
) -> StoreResult<Vec<Option<Committed>>> {
    let ctx = "committing writes together";
    let mut results = Vec::with_capacity(batch.len());
    for queued in batch {
        if queued.write.may_undo() {
            db.conn
                .execute_batch("SAVEPOINT one_write")
                .map_err(failed(ctx))?;
            let written = ready(write_one(db, &queued.write, writing))?;
            let end = if written.is_some() {
                "RELEASE one_write"
            } else {
                "ROLLBACK TO one_write; RELEASE one_write"
            };
            db.conn.execute_batch(end).map_err(failed(ctx))?;
            results.push(written);
        } else {
            // Writes nothing when it answers `None` (a stale generation): nothing to undo.
            results.push(ready(write_one(db, &queued.write, writing))?);
        }
    }
    Ok(results)
}

/// One write in its own transaction; `None` (nothing kept) when its guard failed.
pub(crate) async fn commit_one(
    pool: &AnyPool,
    write: &Write,
    writing: &crate::sql_store::Writing,
) -> StoreResult<Option<Committed>> {
    let ctx = "committing a write";
    let mut tx = pool.begin().await.map_err(failed(ctx))?;
    let Some(committed) = write_one(&mut tx, write, writing).await? else {
        return Ok(None);
    };
    tx.commit().await.map_err(failed(ctx))?;
    Ok(Some(committed))
}

/// Writes inside `tx`. `None`: the user's generation or a guarded change record moved
/// on, and what was written must not be kept.
async fn write_one<D: Db>(
    tx: &mut D,
    write: &Write,
    writing: &crate::sql_store::Writing,
) -> StoreResult<Option<Committed>> {
    match write {
        Write::User {
            user,
            expected,
            effects,
        } => {
            if !bump_generation(tx, user, *expected).await? {
                return Ok(None);
            }
            let committed = SqlStore::write_effects(tx, effects, writing).await?;
            Ok((!committed.conflict).then_some(committed))
        }
        Write::Effects(effects) => {
            let committed = SqlStore::write_effects(tx, effects, writing).await?;
            Ok((!committed.conflict).then_some(committed))
        }
        Write::SipState(ops) => {
            for op in ops {
                write_sip_state(tx, op).await?;
            }
            Ok(Some(Committed::default()))
        }
    }
}

pub(crate) async fn write_sip_state<D: Db>(tx: &mut D, op: &SipStateOp) -> StoreResult<()> {
    match op {
        SipStateOp::Put {
            kind,
            key,
            value,
            expires_at,
        } => query(tx,
            "INSERT INTO sip_state (kind, state_key, value, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, state_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(kind.as_str())
        .bind(key.as_str())
        .bind(value.as_str())
        .bind(*expires_at)
        .execute()
        .await
        .map_err(failed(format!("storing the SIP {kind} {key}")))?,
        SipStateOp::Delete { kind, key } => {
            query(tx, "DELETE FROM sip_state WHERE kind = $1 AND state_key = $2")
                .bind(kind.as_str())
                .bind(key.as_str())
                .execute()
                .await
                .map_err(failed(format!("deleting the SIP {kind} {key}")))?
        }
    };
    Ok(())
}

/// Bumps the user's affiliation generation if it is still `expected` (any, without).
async fn bump_generation<D: Db>(
    tx: &mut D,
    user: &McServiceId,
    expected: Option<u64>,
) -> StoreResult<bool> {
    let ctx = format!("changing the affiliations of '{user}'");
    // Bumping the generation first also locks the user's row (on PostgreSQL), so
    // concurrent changes of one user's affiliations are serialised across nodes.
    let bumped = match expected {
        Some(generation) => query(tx,
            "UPDATE users SET affiliation_generation = affiliation_generation + 1 \
             WHERE mc_service_id = $1 AND affiliation_generation = $2",
        )
        .bind(user.as_str())
        .bind(i64::try_from(generation).unwrap_or(i64::MAX))
        .execute()
        .await,
        None => query(tx,
            "UPDATE users SET affiliation_generation = affiliation_generation + 1 WHERE mc_service_id = $1",
        )
        .bind(user.as_str())
        .execute()
        .await,
    }
    .map_err(failed(ctx))?;
    Ok(expected.is_none() || bumped.rows_affected() > 0)
}
