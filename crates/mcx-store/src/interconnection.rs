//! Interconnection state: outbox, partner records, primary links, partner copies of
//! groups, and answers already given to partners.

use async_trait::async_trait;
use mcx_core::ports::{
    Committed, CopyOutcome, Effects, InterconnectionStore, OutboxMessage, StoreResult,
};
use mcx_model::api::{DeliveryState, PartnerDelivery, PrimaryLink, PrimaryLinkState};
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::group::{GroupOrigin, GroupRecord};
use mcx_model::{McServiceGroupId, SystemDomain, TransactionId};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::sql_store::{SqlStore, corrupt, failed, from_millis, millis, version_i64};

fn parse_enum<T: serde::de::DeserializeOwned>(ctx: &str, text: &str) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| corrupt(ctx, e))
}

fn primary_version(group: &GroupRecord) -> Option<u64> {
    match group.origin {
        GroupOrigin::Partner { primary_version } => Some(primary_version),
        GroupOrigin::Local => None,
    }
}

impl SqlStore {
    /// An outbox message from its row (its request unsealed and decoded).
    fn outbox_row(&self, ctx: &str, row: &sqlx::any::AnyRow) -> StoreResult<OutboxMessage> {
        let partner: String = row.try_get("partner").map_err(failed(ctx))?;
        let txn: String = row.try_get("transaction_id").map_err(failed(ctx))?;
        let request: String = row.try_get("request").map_err(failed(ctx))?;
        let request = self.writing.open(request)?;
        let attempts: i64 = row.try_get("attempts").map_err(failed(ctx))?;
        Ok(OutboxMessage {
            id: row.try_get("outbox_id").map_err(failed(ctx))?,
            partner: SystemDomain::parse(&partner).map_err(|e| corrupt(ctx, e))?,
            transaction_id: TransactionId(txn.parse().map_err(|e| corrupt(ctx, e))?),
            request: PartnerRequest::from_stored(&request).map_err(|e| corrupt(ctx, e))?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        })
    }
}

#[async_trait]
impl InterconnectionStore for SqlStore {
    async fn outbox_heads(&self, now: OffsetDateTime) -> StoreResult<Vec<OutboxMessage>> {
        let ctx = "reading the outbox";
        let rows = sqlx::query(
            "SELECT outbox_id, partner, transaction_id, request, attempts FROM outbox \
             WHERE outbox_id IN (SELECT MIN(outbox_id) FROM outbox GROUP BY partner, lane) \
             AND next_attempt_at <= $1 ORDER BY outbox_id",
        )
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        rows.iter().map(|row| self.outbox_row(ctx, row)).collect()
    }

    async fn outbox_lane_heads(&self) -> StoreResult<Vec<mcx_core::ports::LaneHead>> {
        let ctx = "reading the outbox";
        let rows = sqlx::query(
            "SELECT outbox_id, partner, lane, next_attempt_at FROM outbox \
             WHERE outbox_id IN (SELECT MIN(outbox_id) FROM outbox GROUP BY partner, lane) \
             ORDER BY outbox_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        rows.iter()
            .map(|row| {
                let partner: String = row.try_get("partner").map_err(failed(ctx))?;
                Ok(mcx_core::ports::LaneHead {
                    id: row.try_get("outbox_id").map_err(failed(ctx))?,
                    partner: SystemDomain::parse(&partner).map_err(|e| corrupt(ctx, e))?,
                    lane: row.try_get("lane").map_err(failed(ctx))?,
                    due: crate::sql_store::from_millis(
                        row.try_get("next_attempt_at").map_err(failed(ctx))?,
                    ),
                })
            })
            .collect()
    }

    async fn outbox_message(&self, id: i64) -> StoreResult<Option<OutboxMessage>> {
        let ctx = "reading an outbox message";
        let row = sqlx::query(
            "SELECT outbox_id, partner, transaction_id, request, attempts FROM outbox WHERE outbox_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(ctx))?;
        row.map(|row| self.outbox_row(ctx, &row)).transpose()
    }

    async fn outbox_lane_head(
        &self,
        partner: &SystemDomain,
        lane: &str,
    ) -> StoreResult<Option<(OutboxMessage, OffsetDateTime)>> {
        let ctx = "reading an outbox lane";
        let row = sqlx::query(
            "SELECT outbox_id, partner, transaction_id, request, attempts, next_attempt_at FROM outbox \
             WHERE partner = $1 AND lane = $2 ORDER BY outbox_id LIMIT 1",
        )
        .bind(partner.as_str())
        .bind(lane)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(ctx))?;
        row.map(|row| {
            let due: i64 = row.try_get("next_attempt_at").map_err(failed(ctx))?;
            Ok((self.outbox_row(ctx, &row)?, from_millis(due)))
        })
        .transpose()
    }

    async fn outbox_next_due(&self) -> StoreResult<Option<OffsetDateTime>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS due FROM outbox \
             WHERE outbox_id IN (SELECT MIN(outbox_id) FROM outbox GROUP BY partner, lane)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(failed("reading the outbox"))?;
        let due: Option<i64> = row.try_get("due").map_err(failed("reading the outbox"))?;
        Ok(due.map(from_millis))
    }

    fn shared_by_nodes(&self) -> bool {
        self.is_postgres()
    }

    async fn claim_lane(
        &self,
        partner: &SystemDomain,
        lane: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        if !self.is_postgres() {
            return Ok(true);
        }
        // One statement: a concurrent claim of the same lane waits for this one's row
        // lock, then sees it held and takes nothing.
        let held = sqlx::query(
            "INSERT INTO outbox_leases (partner, lane, holder, held_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (partner, lane) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until \
             WHERE outbox_leases.holder = excluded.holder OR outbox_leases.held_until < $5 \
             RETURNING holder",
        )
        .bind(partner.as_str())
        .bind(lane)
        .bind(holder)
        .bind(millis(until))
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("claiming an outbox lane"))?;
        Ok(held.is_some())
    }

    async fn release_lane(
        &self,
        partner: &SystemDomain,
        lane: &str,
        holder: &str,
    ) -> StoreResult<()> {
        if !self.is_postgres() {
            return Ok(());
        }
        sqlx::query("DELETE FROM outbox_leases WHERE partner = $1 AND lane = $2 AND holder = $3")
            .bind(partner.as_str())
            .bind(lane)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(failed("releasing an outbox lane"))?;
        Ok(())
    }

    async fn release_lanes_of(&self, holder: &str) -> StoreResult<()> {
        if !self.is_postgres() {
            return Ok(());
        }
        sqlx::query("DELETE FROM outbox_leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(failed("releasing the outbox lanes of a stopping node"))?;
        sqlx::query("DELETE FROM duty_leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(failed("releasing the duties of a stopping node"))?;
        Ok(())
    }

    async fn claim_duty(
        &self,
        duty: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        if !self.is_postgres() {
            return Ok(true);
        }
        // As a lane's claim: one statement, a concurrent claim waits for the row lock.
        let held = sqlx::query(
            "INSERT INTO duty_leases (duty, holder, held_until) VALUES ($1, $2, $3) \
             ON CONFLICT (duty) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until \
             WHERE duty_leases.holder = excluded.holder OR duty_leases.held_until < $4 \
             RETURNING holder",
        )
        .bind(duty)
        .bind(holder)
        .bind(millis(until))
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("claiming a duty"))?;
        Ok(held.is_some())
    }

    async fn outbox_backlog(&self) -> StoreResult<Vec<mcx_core::ports::OutboxBacklog>> {
        let ctx = "reading the outbox backlog";
        let rows = sqlx::query(
            "SELECT partner, COUNT(*) AS depth, MIN(created_at) AS oldest, MAX(attempts) AS attempts, \
             (SELECT failed.last_error FROM outbox failed WHERE failed.partner = outbox.partner \
              AND failed.last_error IS NOT NULL ORDER BY failed.outbox_id DESC LIMIT 1) AS last_error \
             FROM outbox GROUP BY partner ORDER BY partner",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        rows.iter()
            .map(|row| {
                let partner: String = row.try_get("partner").map_err(failed(ctx))?;
                let depth: i64 = row.try_get("depth").map_err(failed(ctx))?;
                let oldest: i64 = row.try_get("oldest").map_err(failed(ctx))?;
                let attempts: i64 = row.try_get("attempts").map_err(failed(ctx))?;
                let last_error: Option<String> = row.try_get("last_error").map_err(failed(ctx))?;
                Ok(mcx_core::ports::OutboxBacklog {
                    partner: SystemDomain::parse(&partner).map_err(|e| corrupt(ctx, e))?,
                    depth: u64::try_from(depth).unwrap_or(0),
                    oldest: from_millis(oldest),
                    failing: attempts > 0,
                    last_error,
                })
            })
            .collect()
    }

    async fn affiliations_held(&self) -> StoreResult<u64> {
        let ctx = "counting affiliations";
        let row = sqlx::query("SELECT COUNT(*) AS held FROM affiliations WHERE pending = 0")
            .fetch_one(&self.pool)
            .await
            .map_err(failed(ctx))?;
        let held: i64 = row.try_get("held").map_err(failed(ctx))?;
        Ok(u64::try_from(held).unwrap_or(0))
    }

    async fn reschedule_outbox(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "UPDATE outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE outbox_id = $4",
        )
        .bind(i64::from(attempts))
        .bind(millis(next_attempt_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(failed("rescheduling an outbox entry"))?;
        Ok(())
    }

    async fn partner_records(&self, group: &McServiceGroupId) -> StoreResult<Vec<PartnerDelivery>> {
        let ctx = "reading a group's partner records";
        let rows = sqlx::query(
            "SELECT partner, state, version, detail, subscribed, updated_at FROM partner_records \
             WHERE group_id = $1 ORDER BY partner",
        )
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        rows.iter()
            .map(|row| {
                let partner: String = row.try_get("partner").map_err(failed(ctx))?;
                let state: String = row.try_get("state").map_err(failed(ctx))?;
                let version: i64 = row.try_get("version").map_err(failed(ctx))?;
                let subscribed: i64 = row.try_get("subscribed").map_err(failed(ctx))?;
                Ok(PartnerDelivery {
                    partner: SystemDomain::parse(&partner).map_err(|e| corrupt(ctx, e))?,
                    state: parse_enum::<DeliveryState>(ctx, &state)?,
                    version: u64::try_from(version).unwrap_or(0),
                    detail: row.try_get("detail").map_err(failed(ctx))?,
                    subscribed: subscribed != 0,
                    updated_at: from_millis(row.try_get("updated_at").map_err(failed(ctx))?),
                })
            })
            .collect()
    }

    async fn shared_with(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
    ) -> StoreResult<bool> {
        let row =
            sqlx::query("SELECT shared FROM partner_records WHERE group_id = $1 AND partner = $2")
                .bind(group.as_str())
                .bind(partner.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(failed("reading a partner record"))?;
        Ok(match row {
            Some(row) => {
                row.try_get::<i64, _>("shared")
                    .map_err(failed("reading a partner record"))?
                    != 0
            }
            None => false,
        })
    }

    async fn record_share(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
        effects: &Effects,
    ) -> StoreResult<Committed> {
        let ctx = format!("sharing group '{group}' with '{partner}'");
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        sqlx::query(
            "INSERT INTO partner_records (group_id, partner, state, version, detail, subscribed, shared, updated_at) \
             VALUES ($1, $2, 'pending', 0, NULL, 0, 1, $3) \
             ON CONFLICT (group_id, partner) DO UPDATE SET shared = 1, updated_at = excluded.updated_at",
        )
        .bind(group.as_str())
        .bind(partner.as_str())
        .bind(self.writing.now())
        .execute(&mut *tx)
        .await
        .map_err(failed(ctx.clone()))?;
        let committed = Self::write_effects(&mut tx, effects, &self.writing).await?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(committed)
    }

    async fn subscribe_partner(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
        version: u64,
        effects: &Effects,
    ) -> StoreResult<Option<Committed>> {
        let ctx = format!("subscribing '{partner}' to group '{group}'");
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        // A partner's answer first: a copy of its transaction answered already wins.
        if !Self::write_inbound_answer(&mut tx, effects, &self.writing).await? {
            return Ok(Some(Committed::conflicted()));
        }
        // Locks the group's row (on PostgreSQL) and checks it is still at `version`, so a
        // concurrent change either precedes this subscription or notifies it.
        let locked =
            sqlx::query("UPDATE groups SET version = version WHERE group_id = $1 AND version = $2")
                .bind(group.as_str())
                .bind(version_i64(version))
                .execute(&mut *tx)
                .await
                .map_err(failed(ctx.clone()))?;
        if locked.rows_affected() == 0 {
            return Ok(None);
        }
        let committed = Self::write_effects_after_answer(&mut tx, effects, &self.writing).await?;
        if committed.conflict {
            // Dropped without committing: nothing is kept.
            return Ok(Some(committed));
        }
        tx.commit().await.map_err(failed(ctx))?;
        Ok(Some(committed))
    }

    async fn primary_link(&self, group: &McServiceGroupId) -> StoreResult<Option<PrimaryLink>> {
        let ctx = "reading the link to a group's primary";
        let row =
            sqlx::query("SELECT state, detail, updated_at FROM primary_links WHERE group_id = $1")
                .bind(group.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(failed(ctx))?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.try_get("state").map_err(failed(ctx))?;
        Ok(Some(PrimaryLink {
            state: parse_enum::<PrimaryLinkState>(ctx, &state)?,
            detail: row.try_get("detail").map_err(failed(ctx))?,
            updated_at: from_millis(row.try_get("updated_at").map_err(failed(ctx))?),
        }))
    }

    async fn store_partner_copy(
        &self,
        group: &GroupRecord,
        effects: &Effects,
    ) -> StoreResult<CopyOutcome> {
        let id = &group.mc_service_group_id;
        let ctx = format!("storing the partner copy of group '{id}'");
        let Some(incoming) = primary_version(group) else {
            return Err(corrupt(&ctx, "a partner copy must come from a primary"));
        };
        let record = self.group_text(group, &ctx)?;
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        // A partner's answer first: a copy of its transaction answered already wins.
        if !Self::write_inbound_answer(&mut tx, effects, &self.writing).await? {
            return Ok(CopyOutcome::Stored(Committed::conflicted()));
        }
        let existing = sqlx::query("SELECT record FROM groups WHERE group_id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed(ctx.clone()))?;
        match existing
            .as_ref()
            .map(|row| self.group_from_row(row))
            .transpose()?
        {
            Some(stored) => {
                let Some(stored_primary) = primary_version(&stored) else {
                    return Err(corrupt(&ctx, "a group defined here has a partner's ID"));
                };
                if stored_primary == incoming {
                    return Ok(CopyOutcome::Duplicate);
                }
                if stored_primary > incoming {
                    return Ok(CopyOutcome::Stale {
                        stored: stored_primary,
                    });
                }
                if stored.version + 1 != group.version {
                    return Ok(CopyOutcome::Conflict);
                }
                sqlx::query("UPDATE groups SET version = $1, record = $2 WHERE group_id = $3 AND version = $4")
                    .bind(version_i64(group.version))
                    .bind(&record)
                    .bind(id.as_str())
                    .bind(version_i64(stored.version))
                    .execute(&mut *tx)
                    .await
                    .map_err(failed(ctx.clone()))?;
            }
            None => {
                if group.version != 1 {
                    return Ok(CopyOutcome::Conflict);
                }
                sqlx::query("INSERT INTO groups (group_id, version, record) VALUES ($1, $2, $3)")
                    .bind(id.as_str())
                    .bind(version_i64(group.version))
                    .bind(&record)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed(ctx.clone()))?;
            }
        }
        crate::writes::notify_group(&mut tx, id, Some(group.version)).await?;
        let committed = Self::write_effects_after_answer(&mut tx, effects, &self.writing).await?;
        if committed.conflict {
            // Dropped without committing: nothing is kept.
            return Ok(CopyOutcome::Stored(committed));
        }
        tx.commit().await.map_err(failed(ctx))?;
        Ok(CopyOutcome::Stored(committed))
    }

    async fn remove_partner_copy(
        &self,
        group: &McServiceGroupId,
        version: u64,
        effects: &Effects,
    ) -> StoreResult<Option<Committed>> {
        let ctx = format!("removing the partner copy of group '{group}'");
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(failed(ctx.clone()))?;
        // A partner's answer first: a copy of its transaction answered already wins.
        if !Self::write_inbound_answer(&mut tx, effects, &self.writing).await? {
            return Ok(Some(Committed::conflicted()));
        }
        let existing = sqlx::query("SELECT record FROM groups WHERE group_id = $1")
            .bind(group.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed(ctx.clone()))?;
        let Some(stored) = existing
            .as_ref()
            .map(|row| self.group_from_row(row))
            .transpose()?
        else {
            return Ok(None);
        };
        match primary_version(&stored) {
            Some(v) if v <= version => {}
            _ => return Ok(None),
        }
        // Subscribers are told before their subscriptions go.
        let committed = Self::write_effects_after_answer(&mut tx, effects, &self.writing).await?;
        if committed.conflict {
            // Dropped without committing: nothing is kept.
            return Ok(Some(committed));
        }
        crate::affiliation::forget_group(&mut tx, group).await?;
        sqlx::query("DELETE FROM group_subscriptions WHERE group_id = $1")
            .bind(group.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed(ctx.clone()))?;
        crate::writes::notify_group(&mut tx, group, None).await?;
        sqlx::query("DELETE FROM groups WHERE group_id = $1")
            .bind(group.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed(ctx.clone()))?;
        tx.commit().await.map_err(failed(ctx))?;
        Ok(Some(committed))
    }

    async fn inbound_answer(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
    ) -> StoreResult<Option<PartnerResponse>> {
        let ctx = "reading an answer given to a partner";
        let row = sqlx::query(
            "SELECT answer FROM inbound_answers WHERE partner = $1 AND transaction_id = $2",
        )
        .bind(partner.as_str())
        .bind(transaction.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(failed(ctx))?;
        match row {
            Some(row) => {
                let text: String = row.try_get("answer").map_err(failed(ctx))?;
                if text.is_empty() {
                    // Claimed, not answered yet.
                    return Ok(None);
                }
                let text = self.writing.open(text)?;
                Ok(Some(
                    PartnerResponse::from_stored(&text).map_err(|e| corrupt(ctx, e))?,
                ))
            }
            None => Ok(None),
        }
    }
}
