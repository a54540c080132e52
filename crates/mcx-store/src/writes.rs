//! Writing a commit's effects inside its transaction: client events, outbox rows with
//! their audiences resolved, partner records, primary links, the answer to a partner.

use mcx_core::ports::{
    Audience, Committed, Effects, PartnerAudience, PartnerRecordChange, PartnerRecordUpdate,
    QueuedRequest, StoreError, StoreResult,
};
use mcx_model::SystemDomain;

use crate::db::{Db, query};
use crate::sql_store::*;

/// The PostgreSQL channel on which commits name the sessions they stored events for.
pub(crate) const WAKE_CHANNEL: &str = "mcx_stream_wakeups";
/// The PostgreSQL channel on which commits name the groups whose stored configuration
/// they changed (other nodes drop their cached policy of it).
pub(crate) const GROUP_CHANNEL: &str = "mcx_group_changes";
/// The PostgreSQL channel on which commits name the answer waits they answered (the node
/// where the request waits takes the answer).
pub(crate) const WAIT_CHANNEL: &str = "mcx_answer_waits";

/// Tells the other nodes (PostgreSQL), when `tx` commits, that `group` is now at
/// `version` (`None`: deleted). The payload is `<version> <group ID>` or
/// `deleted <group ID>`.
pub(crate) async fn notify_group<D: Db>(
    tx: &mut D,
    group: &mcx_model::McServiceGroupId,
    version: Option<u64>,
) -> StoreResult<()> {
    if !tx.is_postgres() {
        return Ok(());
    }
    query(tx, "SELECT pg_notify($1, $2)")
        .bind(GROUP_CHANNEL)
        .bind(match version {
            Some(version) => format!("{version} {group}"),
            None => format!("deleted {group}"),
        })
        .execute()
        .await
        .map_err(failed("notifying other nodes of a group change"))?;
    Ok(())
}

/// Notifies the other nodes (PostgreSQL) that these sessions have something new, inside
/// `tx`: PostgreSQL delivers the notification when, and only if, `tx` commits. Payloads
/// stay under its 8,000-byte limit by sending the list in parts.
pub(crate) async fn notify_sessions<D: Db>(tx: &mut D, sessions: &[String]) -> StoreResult<()> {
    if sessions.is_empty() || !tx.is_postgres() {
        return Ok(());
    }
    let mut part = String::new();
    for (i, session) in sessions.iter().enumerate() {
        if !part.is_empty() {
            part.push(',');
        }
        part.push_str(session);
        if part.len() > 7_000 || i + 1 == sessions.len() {
            query(tx, "SELECT pg_notify($1, $2)")
                .bind(WAKE_CHANNEL)
                .bind(std::mem::take(&mut part))
                .execute()
                .await
                .map_err(failed("notifying other nodes of new events"))?;
        }
    }
    Ok(())
}

/// Tells the nodes (PostgreSQL), when `tx` commits, that the answer for the request
/// waiting under `key` is stored.
async fn notify_answer_wait<D: Db>(tx: &mut D, key: &str) -> StoreResult<()> {
    if !tx.is_postgres() {
        return Ok(());
    }
    query(tx, "SELECT pg_notify($1, $2)")
        .bind(WAIT_CHANNEL)
        .bind(key)
        .execute()
        .await
        .map_err(failed("notifying the nodes of a host's answer"))?;
    Ok(())
}

impl SqlStore {
    /// Opens and answers requests' waits for hosts' answers: false, with an answer not
    /// written, if its request no longer waits (the caller keeps nothing then).
    async fn write_answer_waits<D: Db>(
        tx: &mut D,
        waits: &[mcx_core::ports::AnswerWaitWrite],
        now: i64,
    ) -> StoreResult<bool> {
        use mcx_core::ports::AnswerWaitWrite;
        for wait in waits {
            match wait {
                AnswerWaitWrite::Open { key, until } => {
                    query(
                        tx,
                        "INSERT INTO answer_waits (wait_key, answer, until_at) VALUES ($1, NULL, $2) \
                         ON CONFLICT (wait_key) DO UPDATE SET answer = NULL, until_at = excluded.until_at",
                    )
                    .bind(key.as_str())
                    .bind(millis(*until))
                    .execute()
                    .await
                    .map_err(failed("recording a request's wait for a host's answer"))?;
                }
                AnswerWaitWrite::Answer { key, answer } => {
                    let ctx = "storing a host's answer for a waiting request";
                    let json = serde_json::to_string(answer).map_err(|e| corrupt(ctx, e))?;
                    let answered = query(
                        tx,
                        "UPDATE answer_waits SET answer = $1 \
                         WHERE wait_key = $2 AND answer IS NULL AND until_at > $3",
                    )
                    .bind(json)
                    .bind(key.as_str())
                    .bind(now)
                    .execute()
                    .await
                    .map_err(failed(ctx))?;
                    if answered.rows_affected() == 0 {
                        return Ok(false);
                    }
                    notify_answer_wait(tx, key).await?;
                }
            }
        }
        Ok(true)
    }

    /// Writes the effects inside `tx`: client events, outbox entries (audiences resolved
    /// now), partner records, the primary link, the completed outbox entry. Returns the
    /// sessions that got events.
    pub(crate) async fn write_effects<D: Db>(
        tx: &mut D,
        effects: &Effects,
        writing: &crate::sql_store::Writing,
    ) -> StoreResult<Committed> {
        if !Self::write_inbound_answer(tx, effects, writing).await? {
            return Ok(Committed::conflicted());
        }
        Self::write_effects_after_answer(tx, effects, writing).await
    }

    /// The answer to a partner's transaction whose effects these are, under its unique
    /// key, written before anything else: false if a copy of the transaction that
    /// committed first owns it (on PostgreSQL this insert waits for that copy's commit),
    /// and then the caller keeps nothing.
    pub(crate) async fn write_inbound_answer<D: Db>(
        tx: &mut D,
        effects: &Effects,
        writing: &crate::sql_store::Writing,
    ) -> StoreResult<bool> {
        let now = writing.now();
        if let Some(answered) = &effects.inbound_answer {
            let ctx = "recording an answer given to a partner";
            let text = writing.seal(answered.answer.to_stored().map_err(|e| corrupt(ctx, e))?)?;
            let recorded = query(tx,
                "INSERT INTO inbound_answers (partner, transaction_id, answer, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (partner, transaction_id) DO UPDATE SET answer = excluded.answer \
                 WHERE inbound_answers.answer = ''",
            )
            .bind(answered.partner.as_str())
            .bind(answered.transaction.to_string())
            .bind(text)
            .bind(now)
            .execute()
            .await
            .map_err(failed(ctx))?;
            return Ok(recorded.rows_affected() > 0);
        }
        Ok(true)
    }

    /// [`Self::write_effects`] once [`Self::write_inbound_answer`] has been written.
    pub(crate) async fn write_effects_after_answer<D: Db>(
        tx: &mut D,
        effects: &Effects,
        writing: &crate::sql_store::Writing,
    ) -> StoreResult<Committed> {
        let now = writing.now();
        // Guarded confirmations next, also before anything is written.
        for confirmation in &effects.service.confirmations {
            let confirmed = query(
                tx,
                "UPDATE affiliations SET pending = 0 \
                 WHERE mc_service_id = $1 AND mc_service = $2 AND group_id = $3 AND pending = $4",
            )
            .bind(confirmation.user.as_str())
            .bind(confirmation.mc_service.as_str())
            .bind(confirmation.group.as_str())
            .bind(i64::try_from(confirmation.generation).unwrap_or(i64::MAX))
            .execute()
            .await
            .map_err(failed("confirming a pending affiliation"))?;
            if confirmed.rows_affected() == 0 {
                return Ok(Committed::conflicted());
            }
        }
        // Answers for requests still waiting (several nodes), guarded the same way.
        if !Self::write_answer_waits(tx, &effects.service.answer_waits, now).await? {
            return Ok(Committed::conflicted());
        }
        // And a host's guard against overtaken requests, also before anything is written.
        for write in &effects.service.affiliations {
            if !crate::affiliation::write_applied_generation(tx, write).await? {
                return Ok(Committed::conflicted());
            }
        }
        // Removals come before the audiences they change are resolved.
        for (group, user) in &effects.gms.ended_subscriptions {
            query(
                tx,
                "DELETE FROM group_subscriptions WHERE group_id = $1 \
                 AND session_id IN (SELECT session_id FROM sessions WHERE mc_service_id = $2)",
            )
            .bind(group.as_str())
            .bind(user.as_str())
            .execute()
            .await
            .map_err(failed("ending subscriptions of a former member"))?;
        }
        for update in &effects.gms.partner_records {
            if let PartnerRecordUpdate::Dropped { partner, group } = update {
                query(
                    tx,
                    "DELETE FROM partner_records WHERE group_id = $1 AND partner = $2",
                )
                .bind(group.as_str())
                .bind(partner.as_str())
                .execute()
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
            let rows = query(tx, sql)
                .bind(&json)
                .bind(now)
                .bind(key)
                .fetch_all()
                .await
                .map_err(failed("storing client events"))?;
            for row in rows {
                woken.push(
                    row.text("session_id")
                        .map_err(failed("storing client events"))?,
                );
            }
        }
        woken.sort();
        woken.dedup();
        notify_sessions(tx, &woken).await?;
        let mut queued = Vec::new();
        for entry in &effects.outbox {
            Self::write_outbox_entry(tx, entry, now, writing, &mut queued).await?;
        }
        for update in &effects.gms.partner_records {
            Self::write_partner_record(tx, update, now).await?;
        }
        if let Some(update) = &effects.gms.primary_link {
            Self::write_primary_link(tx, update, now).await?;
        }
        if let Some(id) = effects.complete_outbox {
            query(tx, "DELETE FROM outbox WHERE outbox_id = $1")
                .bind(id)
                .execute()
                .await
                .map_err(failed("completing an outbox entry"))?;
        }
        for write in &effects.service.affiliations {
            crate::affiliation::write_affiliation(tx, write, now).await?;
        }
        for update in &effects.gms.affiliation_status {
            crate::affiliation::write_gms_status(tx, update, now).await?;
        }
        for write in &effects.acm.exchanges {
            if !crate::acm::write_exchange(tx, write, now).await? {
                return Ok(Committed::conflicted());
            }
        }
        for addition in &effects.identity.profile_additions {
            crate::acm::write_profile_addition(tx, addition).await?;
        }
        for write in &effects.service.regroups {
            if !crate::regroup::write_regroup(tx, write, now).await? {
                return Ok(Committed::conflicted());
            }
        }
        if let Some(write) = &effects.service.change_record
            && !crate::affiliation::write_change_record(tx, write).await?
        {
            return Ok(Committed::conflicted());
        }
        for change in &effects.door {
            crate::group_commit::write_sip_state(tx, &crate::sip_state::op(change.clone())).await?;
        }
        Ok(Committed {
            woken_sessions: woken,
            conflict: false,
            queued,
        })
    }

    pub(crate) async fn write_outbox_entry<D: Db>(
        tx: &mut D,
        entry: &mcx_core::ports::OutboxEntry,
        now: i64,
        writing: &crate::sql_store::Writing,
        queued: &mut Vec<QueuedRequest>,
    ) -> StoreResult<()> {
        let ctx = "queueing a request to partners";
        let request = writing.seal(entry.request.to_stored().map_err(|e| corrupt(ctx, e))?)?;
        let transaction_id = writing.entropy.transaction_id(writing.clock.now());
        let txn = transaction_id.to_string();
        let now = now.saturating_add(i64::try_from(entry.delay.as_millis()).unwrap_or(i64::MAX));
        // $1 names the partner or the group whose partners receive a copy. Each row
        // reports whether an older row of its lane waits before it.
        macro_rules! with_heads {
            ($insert:literal) => {
                concat!(
                    $insert,
                    " RETURNING outbox_id, partner, \
                     (SELECT COUNT(*) FROM outbox older WHERE older.partner = outbox.partner \
                      AND older.lane = outbox.lane AND older.outbox_id < outbox.outbox_id) AS ahead"
                )
            };
        }
        let sql = match &entry.audience {
            PartnerAudience::Partner(_) => with_heads!(
                "INSERT INTO outbox (partner, transaction_id, request, attempts, next_attempt_at, created_at, lane) \
                 VALUES ($1, $2, $3, 0, $4, $4, $5)"
            ),
            PartnerAudience::SubscribedPartners(_) => with_heads!(
                "INSERT INTO outbox (partner, transaction_id, request, attempts, next_attempt_at, created_at, lane) \
                 SELECT partner, $2, $3, 0, $4, $4, $5 FROM partner_records WHERE group_id = $1 AND subscribed = 1 \
                 ORDER BY partner"
            ),
            PartnerAudience::KnownPartners(_) => with_heads!(
                "INSERT INTO outbox (partner, transaction_id, request, attempts, next_attempt_at, created_at, lane) \
                 SELECT partner, $2, $3, 0, $4, $4, $5 FROM partner_records WHERE group_id = $1 \
                 ORDER BY partner"
            ),
        };
        let key = match &entry.audience {
            PartnerAudience::Partner(partner) => partner.as_str(),
            PartnerAudience::SubscribedPartners(group) | PartnerAudience::KnownPartners(group) => {
                group.as_str()
            }
        };
        let lane = entry.request.ordering_lane();
        let rows = query(tx, sql)
            .bind(key)
            .bind(&txn)
            .bind(&request)
            .bind(now)
            .bind(&lane)
            .fetch_all()
            .await
            .map_err(failed(ctx))?;
        for row in rows {
            let partner = row.text("partner").map_err(failed(ctx))?;
            let ahead = row.int("ahead").map_err(failed(ctx))?;
            queued.push(QueuedRequest {
                message: mcx_core::ports::OutboxMessage {
                    id: row.int("outbox_id").map_err(failed(ctx))?,
                    partner: SystemDomain::parse(&partner).map_err(|e| corrupt(ctx, e))?,
                    transaction_id,
                    request: entry.request.clone(),
                    attempts: 0,
                },
                lane: lane.clone(),
                ahead: u64::try_from(ahead).unwrap_or(u64::MAX),
                delayed: !entry.delay.is_zero(),
            });
        }
        Ok(())
    }

    pub(crate) async fn write_partner_record<D: Db>(
        tx: &mut D,
        update: &PartnerRecordUpdate,
        now: i64,
    ) -> StoreResult<()> {
        let ctx = "recording a partner's delivery state";
        match update {
            PartnerRecordUpdate::One { partner, group, change } => {
                let (group, partner) = (group.as_str(), partner.as_str());
                match change {
                    PartnerRecordChange::Pending { version } => query(tx,
                        "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
                         VALUES ($1, $2, 'pending', $3, NULL, 0, 0, $4) \
                         ON CONFLICT (group_id, partner) DO UPDATE SET state = 'pending', version = excluded.version, \
                         detail = NULL, updated_at = excluded.updated_at",
                    )
                    .bind(group)
                    .bind(partner)
                    .bind(version_i64(*version))
                    .bind(now)
                    .execute()
                    .await,
                    PartnerRecordChange::Delivered { version } => query(tx,
                        "UPDATE partner_records SET state = 'delivered', version = $1, detail = NULL, updated_at = $2 \
                         WHERE group_id = $3 AND partner = $4 AND version <= $1",
                    )
                    .bind(version_i64(*version))
                    .bind(now)
                    .bind(group)
                    .bind(partner)
                    .execute()
                    .await,
                    PartnerRecordChange::Failed { version, detail } => query(tx,
                        "UPDATE partner_records SET state = 'failed', version = $1, detail = $2, updated_at = $3 \
                         WHERE group_id = $4 AND partner = $5 AND version <= $1",
                    )
                    .bind(version_i64(*version))
                    .bind(detail)
                    .bind(now)
                    .bind(group)
                    .bind(partner)
                    .execute()
                    .await,
                    PartnerRecordChange::Shared => query(tx,
                        "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
                         VALUES ($1, $2, 'pending', 0, NULL, 0, 1, $3) \
                         ON CONFLICT (group_id, partner) DO UPDATE SET shared = 1, updated_at = excluded.updated_at",
                    )
                    .bind(group)
                    .bind(partner)
                    .bind(now)
                    .execute()
                    .await,
                    PartnerRecordChange::Subscribed(on) => query(tx,
                        "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
                         VALUES ($1, $2, 'pending', 0, NULL, $3, 0, $4) \
                         ON CONFLICT (group_id, partner) DO UPDATE SET subscribed = excluded.subscribed, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(group)
                    .bind(partner)
                    .bind(i64::from(*on))
                    .bind(now)
                    .execute()
                    .await,
                }
            }
            PartnerRecordUpdate::SubscribedPending { group, version } => query(tx,
                "UPDATE partner_records SET state = 'pending', version = $1, detail = NULL, updated_at = $2 \
                 WHERE group_id = $3 AND subscribed = 1",
            )
            .bind(version_i64(*version))
            .bind(now)
            .bind(group.as_str())
            .execute()
            .await,
            PartnerRecordUpdate::Forget(group) => query(tx, "DELETE FROM partner_records WHERE group_id = $1")
                .bind(group.as_str())
                .execute()
                .await,
            // Applied before the outbox (see `write_effects`).
            PartnerRecordUpdate::Dropped { .. } => return Ok(()),
        }
        .map_err(failed(ctx))?;
        Ok(())
    }

    pub(crate) async fn write_primary_link<D: Db>(
        tx: &mut D,
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
                query(tx,
                    "INSERT INTO primary_links (group_id, state, detail, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (group_id) DO UPDATE SET state = excluded.state, detail = excluded.detail, \
                     updated_at = excluded.updated_at",
                )
                .bind(group.as_str())
                .bind(state)
                .bind(detail.as_deref())
                .bind(now)
                .execute()
                .await
            }
            None => query(tx, "DELETE FROM primary_links WHERE group_id = $1")
                .bind(group.as_str())
                .execute()
                .await,
        }
        .map_err(failed(ctx))?;
        Ok(())
    }
}
