//! ACM exchanges and profile additions.

use async_trait::async_trait;
use mcx_core::ports::{AcmRole, AcmStore, AcmWrite, ProfileAddition, StoreResult};
use mcx_model::api::{AcmExchange, AcmState};
use mcx_model::profile::UserProfile;
use mcx_model::{McService, McServiceGroupId, McServiceId};
use sqlx::{AnyPool, Row as _};

use crate::db::{Db, query};
use crate::sql_store::{SqlStore, corrupt, failed};

/// Stores (or replaces) an ACM exchange inside a transaction. `false`: a guarded write
/// found the exchange in another state, and the transaction must not be kept.
pub(crate) async fn write_exchange<D: Db>(
    tx: &mut D,
    write: &AcmWrite,
    now: i64,
) -> StoreResult<bool> {
    let ctx = "storing an ACM exchange";
    let request_id = write
        .exchange
        .request
        .request_id
        .ok_or_else(|| corrupt(ctx, "an exchange without a request ID"))?
        .to_string();
    let text = |state: AcmState| {
        serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let record = serde_json::to_string(&write.exchange).map_err(|e| corrupt(ctx, e))?;
    // A guarded write replaces the stored exchange only in the expected state.
    let written = query(tx,
        "INSERT INTO acm_exchanges (request_id, role, owner, state, pending, record, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (request_id, role) DO UPDATE SET owner = excluded.owner, state = excluded.state, \
         pending = excluded.pending, record = excluded.record, updated_at = excluded.updated_at \
         WHERE CAST($8 AS TEXT) IS NULL OR acm_exchanges.state = $8",
    )
    .bind(request_id)
    .bind(write.role.as_str())
    .bind(write.owner.as_str())
    .bind(text(write.exchange.state))
    .bind(i64::from(write.pending))
    .bind(record)
    .bind(now)
    .bind(write.only_if.map(text))
    .execute()
    .await
    .map_err(failed(ctx))?;
    Ok(written.rows_affected() > 0)
}

/// Adds a group to a user's profile inside a transaction.
pub(crate) async fn write_profile_addition<D: Db>(
    tx: &mut D,
    addition: &ProfileAddition,
) -> StoreResult<()> {
    query(
        tx,
        "INSERT INTO profile_additions (mc_service_id, mc_service, group_id) VALUES ($1, $2, $3) \
         ON CONFLICT (mc_service_id, mc_service, group_id) DO NOTHING",
    )
    .bind(addition.user.as_str())
    .bind(addition.mc_service.as_str())
    .bind(addition.group.as_str())
    .execute()
    .await
    .map_err(failed("adding a group to a profile"))?;
    Ok(())
}

/// Adds the profile additions of the user to the configured profile.
pub(crate) async fn merge_profile_additions(
    pool: &AnyPool,
    profile: &mut UserProfile,
) -> StoreResult<()> {
    let ctx = "reading a profile's additions";
    let rows = sqlx::query("SELECT mc_service, group_id FROM profile_additions WHERE mc_service_id = $1 ORDER BY group_id")
        .bind(profile.mc_service_id.as_str())
        .fetch_all(pool)
        .await
        .map_err(failed(ctx))?;
    for row in rows {
        let service: String = row.try_get("mc_service").map_err(failed(ctx))?;
        let group: String = row.try_get("group_id").map_err(failed(ctx))?;
        add_to_profile(ctx, profile, &service, &group)?;
    }
    Ok(())
}

/// Adds one stored profile addition (service and group as stored) to a profile.
pub(crate) fn add_to_profile(
    ctx: &str,
    profile: &mut UserProfile,
    service: &str,
    group: &str,
) -> StoreResult<()> {
    let service: McService = service.parse().map_err(|e| corrupt(ctx, e))?;
    let group = McServiceGroupId::parse(group).map_err(|e| corrupt(ctx, e))?;
    let entry = profile.services.entry(service).or_default();
    if !entry.groups.contains(&group) {
        entry.groups.push(group);
    }
    Ok(())
}

fn exchange_from(ctx: &str, row: &sqlx::any::AnyRow) -> StoreResult<AcmExchange> {
    let text: String = row.try_get("record").map_err(failed(ctx))?;
    serde_json::from_str(&text).map_err(|e| corrupt(ctx, e))
}

#[async_trait]
impl AcmStore for SqlStore {
    async fn acm_exchange(
        &self,
        role: AcmRole,
        request_id: uuid::Uuid,
    ) -> StoreResult<Option<AcmExchange>> {
        let ctx = "reading an ACM exchange";
        sqlx::query("SELECT record FROM acm_exchanges WHERE request_id = $1 AND role = $2")
            .bind(request_id.to_string())
            .bind(role.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(failed(ctx))?
            .as_ref()
            .map(|row| exchange_from(ctx, row))
            .transpose()
    }

    async fn acm_exchanges(
        &self,
        role: AcmRole,
        owner: &McServiceId,
    ) -> StoreResult<Vec<AcmExchange>> {
        let ctx = "listing ACM exchanges";
        sqlx::query("SELECT record FROM acm_exchanges WHERE owner = $1 AND role = $2 ORDER BY request_id DESC")
            .bind(owner.as_str())
            .bind(role.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(failed(ctx))?
            .iter()
            .map(|row| exchange_from(ctx, row))
            .collect()
    }

    async fn acm_pending(&self, owner: &McServiceId) -> StoreResult<Vec<(AcmRole, AcmExchange)>> {
        let ctx = "listing pending ACM data";
        let rows = sqlx::query("SELECT role, record FROM acm_exchanges WHERE owner = $1 AND pending = 1 ORDER BY request_id")
            .bind(owner.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(failed(ctx))?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role").map_err(failed(ctx))?;
                let role = if role == "incoming" {
                    AcmRole::Incoming
                } else {
                    AcmRole::Outgoing
                };
                Ok((role, exchange_from(ctx, row)?))
            })
            .collect()
    }
}
