//! Affiliation records: the serving server's client affiliations guarded by a per-user
//! generation, the hosting server's affiliated users, the GMS's view, remote changes.

use async_trait::async_trait;
use mcx_core::ports::{
    AffiliationStore, AffiliationWrite, ChangeRecordWrite, ClientAffiliation, Committed, Effects,
    GmsStatusUpdate, StoreResult, StoredChange, UserAffiliationState,
};
use mcx_model::api::{AffiliatedMember, AffiliationChangeRecord, AffiliationChangeState};
use mcx_model::flows::affiliation::{AffiliationStatus, GroupAffiliationStatus};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::db::{Db, DbRow, query};
use crate::sql_store::{SqlStore, corrupt, failed, from_millis, millis};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

fn service_of(ctx: &str, text: &str) -> StoreResult<McService> {
    text.parse().map_err(|e| corrupt(ctx, e))
}

fn client_affiliation(ctx: &str, row: &DbRow) -> StoreResult<(McServiceId, ClientAffiliation)> {
    let get = |col: &str| -> StoreResult<String> { row.text(col).map_err(failed(ctx)) };
    let pending = row.int("pending").map_err(failed(ctx))?;
    Ok((
        McServiceId::parse(&get("mc_service_id")?).map_err(|e| corrupt(ctx, e))?,
        ClientAffiliation {
            mc_service: service_of(ctx, &get("mc_service")?)?,
            group: McServiceGroupId::parse(&get("group_id")?).map_err(|e| corrupt(ctx, e))?,
            client: ClientId::parse(&get("client_id")?).map_err(|e| corrupt(ctx, e))?,
            pending: u64::try_from(pending).ok().filter(|g| *g != 0),
        },
    ))
}

/// Applies one affiliation write inside a transaction.
/// Records the generation of a request the host applies for a user and group, unless a
/// newer one was applied already: then false, and the commit must keep nothing.
pub(crate) async fn write_applied_generation<D: Db>(
    tx: &mut D,
    write: &AffiliationWrite,
) -> StoreResult<bool> {
    let AffiliationWrite::HostedGeneration {
        user,
        mc_service,
        group,
        generation,
    } = write
    else {
        return Ok(true);
    };
    let applied = query(tx,
        "INSERT INTO hosted_generations (group_id, mc_service, mc_service_id, generation) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id, mc_service, mc_service_id) DO UPDATE SET generation = excluded.generation \
         WHERE hosted_generations.generation <= excluded.generation",
    )
    .bind(group.as_str())
    .bind(mc_service.as_str())
    .bind(user.as_str())
    .bind(i64::try_from(*generation).unwrap_or(i64::MAX))
    .execute()
    .await
    .map_err(failed("recording the generation applied for a user"))?;
    Ok(applied.rows_affected() > 0)
}

pub(crate) async fn write_affiliation<D: Db>(
    tx: &mut D,
    write: &AffiliationWrite,
    now: i64,
) -> StoreResult<()> {
    let ctx = "recording an affiliation";
    match write {
        AffiliationWrite::Served { user, row } => query(tx,
            "INSERT INTO affiliations (mc_service_id, mc_service, group_id, client_id, pending, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (mc_service_id, mc_service, group_id, client_id) DO UPDATE SET pending = excluded.pending",
        )
        .bind(user.as_str())
        .bind(row.mc_service.as_str())
        .bind(row.group.as_str())
        .bind(row.client.as_str())
        // 0: confirmed; otherwise the generation of the request awaiting its answer.
        .bind(row.pending.map_or(0, |g| i64::try_from(g).unwrap_or(i64::MAX)))
        .bind(now)
        .execute()
        .await,
        AffiliationWrite::ServedConfirmed { user, mc_service, group, client } => query(tx,
            "UPDATE affiliations SET pending = 0 \
             WHERE mc_service_id = $1 AND mc_service = $2 AND group_id = $3 AND client_id = $4",
        )
        .bind(user.as_str())
        .bind(mc_service.as_str())
        .bind(group.as_str())
        .bind(client.as_str())
        .execute()
        .await,
        AffiliationWrite::ServedRemoved { user, mc_service, group, client } => query(tx,
            "DELETE FROM affiliations WHERE mc_service_id = $1 AND mc_service = $2 AND group_id = $3 AND client_id = $4",
        )
        .bind(user.as_str())
        .bind(mc_service.as_str())
        .bind(group.as_str())
        .bind(client.as_str())
        .execute()
        .await,
        AffiliationWrite::Hosted { user, mc_service, group } => query(tx,
            "INSERT INTO hosted_affiliations (group_id, mc_service, mc_service_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, mc_service, mc_service_id) DO NOTHING",
        )
        .bind(group.as_str())
        .bind(mc_service.as_str())
        .bind(user.as_str())
        .bind(now)
        .execute()
        .await,
        // Written first, guarded (see `write_applied_generation`).
        AffiliationWrite::HostedGeneration { .. } => return Ok(()),
        AffiliationWrite::HostedRemoved { user, mc_service, group } => query(tx,
            "DELETE FROM hosted_affiliations WHERE group_id = $1 AND mc_service = $2 AND mc_service_id = $3",
        )
        .bind(group.as_str())
        .bind(mc_service.as_str())
        .bind(user.as_str())
        .execute()
        .await,
    }
    .map_err(failed(ctx))?;
    Ok(())
}

/// Applies a group affiliation status update to the GMS's view.
pub(crate) async fn write_gms_status<D: Db>(
    tx: &mut D,
    update: &GmsStatusUpdate,
    now: i64,
) -> StoreResult<()> {
    let ctx = "updating the GMS with an affiliation status";
    for (group, status) in &update.statuses {
        match status {
            AffiliationStatus::Affiliated => query(tx,
                "INSERT INTO gms_affiliations (group_id, mc_service, mc_service_id, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (group_id, mc_service, mc_service_id) DO UPDATE SET updated_at = excluded.updated_at",
            )
            .bind(group.as_str())
            .bind(update.mc_service.as_str())
            .bind(update.user.as_str())
            .bind(now)
            .execute()
            .await,
            // The GMS never holds a reservation: only a host's answer reaches it.
            AffiliationStatus::NotAffiliated | AffiliationStatus::Affiliating => query(tx,
                "DELETE FROM gms_affiliations WHERE group_id = $1 AND mc_service = $2 AND mc_service_id = $3",
            )
            .bind(group.as_str())
            .bind(update.mc_service.as_str())
            .bind(update.user.as_str())
            .execute()
            .await,
        }
        .map_err(failed(ctx))?;
    }
    Ok(())
}

/// Stores a remote change record; false if it was expected at a version it is not at.
pub(crate) async fn write_change_record<D: Db>(
    tx: &mut D,
    write: &ChangeRecordWrite,
) -> StoreResult<bool> {
    let ctx = "storing a remote change";
    let record = &write.record;
    let json = serde_json::to_string(record).map_err(|e| corrupt(ctx, e))?;
    let state = match record.state {
        AffiliationChangeState::Pending => "pending",
        AffiliationChangeState::Completed => "completed",
    };
    let done = match write.expected_version {
        None => query(tx,
            "INSERT INTO affiliation_changes (change_id, requester_session, state, deadline, record, version) \
             VALUES ($1, $2, $3, $4, $5, 1)",
        )
        .bind(&record.change_id)
        .bind(write.requester_session.as_deref().unwrap_or_default())
        .bind(state)
        .bind(millis(record.deadline))
        .bind(&json)
        .execute()
        .await,
        Some(version) => query(tx,
            "UPDATE affiliation_changes SET state = $1, deadline = $2, record = $3, version = version + 1 \
             WHERE change_id = $4 AND version = $5",
        )
        .bind(state)
        .bind(millis(record.deadline))
        .bind(&json)
        .bind(&record.change_id)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .execute()
        .await,
    }
    .map_err(failed(ctx))?;
    Ok(done.rows_affected() == 1)
}

/// A deleted (or withdrawn) group takes its affiliations with it.
pub(crate) async fn forget_group(tx: &mut Tx<'_>, group: &McServiceGroupId) -> StoreResult<()> {
    for sql in [
        "DELETE FROM affiliations WHERE group_id = $1",
        "DELETE FROM hosted_affiliations WHERE group_id = $1",
        "DELETE FROM gms_affiliations WHERE group_id = $1",
        "DELETE FROM hosted_generations WHERE group_id = $1",
    ] {
        sqlx::query(sql)
            .bind(group.as_str())
            .execute(&mut **tx)
            .await
            .map_err(failed(format!("forgetting the affiliations to '{group}'")))?;
    }
    Ok(())
}

#[async_trait]
impl AffiliationStore for SqlStore {
    async fn hosted_generation(
        &self,
        user: &McServiceId,
        service: McService,
        group: &McServiceGroupId,
    ) -> StoreResult<Option<u64>> {
        let generation: Option<i64> = sqlx::query_scalar(
            "SELECT generation FROM hosted_generations WHERE group_id = $1 AND mc_service = $2 AND mc_service_id = $3",
        )
        .bind(group.as_str())
        .bind(service.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("reading the last generation applied for a user"))?;
        Ok(generation.map(|g| u64::try_from(g).unwrap_or(0)))
    }

    async fn user_affiliations(&self, user: &McServiceId) -> StoreResult<UserAffiliationState> {
        let ctx = "reading a user's affiliations";
        // One round trip for the generation and the rows (a single row of NULLs from the
        // affiliations side when the user holds none).
        let joined = self
            .fetch(
                ctx,
                "SELECT u.affiliation_generation, a.mc_service_id, a.mc_service, a.group_id, a.client_id, a.pending \
                 FROM users u LEFT JOIN affiliations a ON a.mc_service_id = u.mc_service_id \
                 WHERE u.mc_service_id = $1 ORDER BY a.mc_service, a.group_id, a.client_id",
                vec![user.as_str().into()],
            )
            .await?;
        if let Some(first) = joined.first() {
            let generation = first.int("affiliation_generation").map_err(failed(ctx))?;
            let mut rows = Vec::with_capacity(joined.len());
            for row in &joined {
                if row.opt_text("group_id").map_err(failed(ctx))?.is_some() {
                    rows.push(client_affiliation(ctx, row)?.1);
                }
            }
            return Ok(UserAffiliationState {
                generation: u64::try_from(generation).unwrap_or(0),
                rows,
            });
        }
        // A user not stored here (not configured any more) may still hold rows.
        let rows = self
            .fetch(
                ctx,
                "SELECT * FROM affiliations WHERE mc_service_id = $1 ORDER BY mc_service, group_id, client_id",
                vec![user.as_str().into()],
            )
            .await?;
        Ok(UserAffiliationState {
            generation: 0,
            rows: rows
                .iter()
                .map(|row| client_affiliation(ctx, row).map(|(_, a)| a))
                .collect::<StoreResult<_>>()?,
        })
    }

    async fn commit_for_user(
        &self,
        user: &McServiceId,
        expected: Option<u64>,
        effects: &Effects,
    ) -> StoreResult<Option<Committed>> {
        self.commit_write(crate::group_commit::Write::User {
            user: user.clone(),
            expected,
            effects: effects.clone(),
        })
        .await
    }

    async fn served_affiliations_to(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<(McServiceId, ClientAffiliation)>> {
        let ctx = "reading a group's served affiliations";
        crate::db::fetch_pooled(
            &self.pool,
            "SELECT * FROM affiliations WHERE group_id = $1 ORDER BY mc_service_id, client_id",
            vec![group.as_str().into()],
        )
        .await
        .map_err(failed(ctx))?
        .iter()
        .map(|row| client_affiliation(ctx, row))
        .collect()
    }

    async fn ending_clients(&self) -> StoreResult<Vec<(McServiceId, ClientId, bool)>> {
        let ctx = "listing clients whose session ended";
        // Only clients whose session ended are candidates: a start costs what was left
        // unfinished, not a pass over every stored affiliation.
        sqlx::query(
            "SELECT e.mc_service_id, e.client_id, \
             CASE WHEN EXISTS (SELECT 1 FROM sessions s \
                 WHERE s.mc_service_id = e.mc_service_id AND s.client_id = e.client_id) \
             THEN 1 ELSE 0 END AS logged_on \
             FROM ending_clients e ORDER BY e.mc_service_id, e.client_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?
        .iter()
        .map(|row| {
            let user: String = row.try_get("mc_service_id").map_err(failed(ctx))?;
            let client: String = row.try_get("client_id").map_err(failed(ctx))?;
            let logged_on: i32 = row.try_get("logged_on").map_err(failed(ctx))?;
            Ok((
                McServiceId::parse(&user).map_err(|e| corrupt(ctx, e))?,
                ClientId::parse(&client).map_err(|e| corrupt(ctx, e))?,
                logged_on != 0,
            ))
        })
        .collect()
    }

    async fn client_ended(&self, user: &McServiceId, client: &ClientId) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("DELETE FROM ending_clients WHERE mc_service_id = $1 AND client_id = $2")
            .bind(user.as_str())
            .bind(client.as_str())
            .execute(&self.pool)
            .await
            .map_err(failed(format!(
                "forgetting the ended client {client} of {user}"
            )))?;
        Ok(())
    }

    async fn hosted_affiliations(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<(McServiceId, McService)>> {
        let ctx = "reading a group's affiliated users";
        let rows = sqlx::query(
            "SELECT mc_service_id, mc_service FROM hosted_affiliations WHERE group_id = $1 ORDER BY mc_service_id, mc_service",
        )
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        rows.iter()
            .map(|row| {
                let user: String = row.try_get("mc_service_id").map_err(failed(ctx))?;
                let service: String = row.try_get("mc_service").map_err(failed(ctx))?;
                Ok((
                    McServiceId::parse(&user).map_err(|e| corrupt(ctx, e))?,
                    service_of(ctx, &service)?,
                ))
            })
            .collect()
    }

    async fn gms_affiliations(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<AffiliatedMember>> {
        let ctx = "reading the GMS's view of a group's affiliations";
        let rows = sqlx::query(
            "SELECT mc_service_id, mc_service, updated_at FROM gms_affiliations WHERE group_id = $1 \
             ORDER BY mc_service_id, mc_service",
        )
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?;
        rows.iter()
            .map(|row| {
                let user: String = row.try_get("mc_service_id").map_err(failed(ctx))?;
                let service: String = row.try_get("mc_service").map_err(failed(ctx))?;
                Ok(AffiliatedMember {
                    mc_service_id: McServiceId::parse(&user).map_err(|e| corrupt(ctx, e))?,
                    mc_service: service_of(ctx, &service)?,
                    updated_at: from_millis(row.try_get("updated_at").map_err(failed(ctx))?),
                })
            })
            .collect()
    }

    async fn change(&self, change_id: &str) -> StoreResult<Option<StoredChange>> {
        let ctx = "reading a remote change";
        let Some(row) = sqlx::query("SELECT record, version, requester_session FROM affiliation_changes WHERE change_id = $1")
            .bind(change_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(ctx))?
        else {
            return Ok(None);
        };
        let text: String = row.try_get("record").map_err(failed(ctx))?;
        let version: i64 = row.try_get("version").map_err(failed(ctx))?;
        Ok(Some(StoredChange {
            record: serde_json::from_str::<AffiliationChangeRecord>(&text)
                .map_err(|e| corrupt(ctx, e))?,
            version: u64::try_from(version).unwrap_or(0),
            requester_session: row.try_get("requester_session").map_err(failed(ctx))?,
        }))
    }

    async fn due_changes(
        &self,
        now: OffsetDateTime,
    ) -> StoreResult<(Vec<String>, Option<OffsetDateTime>)> {
        let ctx = "finding remote changes past their deadline";
        let due = sqlx::query(
            "SELECT change_id FROM affiliation_changes WHERE state = 'pending' AND deadline <= $1 ORDER BY deadline",
        )
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx))?
        .iter()
        .map(|row| row.try_get::<String, _>("change_id").map_err(failed(ctx)))
        .collect::<StoreResult<Vec<_>>>()?;
        let next = sqlx::query(
            "SELECT MIN(deadline) AS next FROM affiliation_changes WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(failed(ctx))?;
        let next: Option<i64> = next.try_get("next").map_err(failed(ctx))?;
        Ok((due, next.map(from_millis)))
    }

    async fn open_answer_waits(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        let mut open = Vec::new();
        for key in keys {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT wait_key FROM answer_waits WHERE wait_key = $1 AND answer IS NULL AND until_at > $2",
            )
            .bind(key)
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("looking for a request waiting for a host's answer"))?;
            open.extend(found);
        }
        Ok(open)
    }

    async fn end_answer_wait(
        &self,
        key: &str,
        give_up: bool,
    ) -> StoreResult<Option<GroupAffiliationStatus>> {
        let ctx = "ending a wait for a host's answer";
        let sql = if give_up {
            "DELETE FROM answer_waits WHERE wait_key = $1 RETURNING answer"
        } else {
            "DELETE FROM answer_waits WHERE wait_key = $1 AND answer IS NOT NULL RETURNING answer"
        };
        let answer: Option<Option<String>> = sqlx::query_scalar(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(ctx))?;
        answer
            .flatten()
            .map(|json| serde_json::from_str(&json).map_err(|e| corrupt(ctx, e)))
            .transpose()
    }
}
