//! Regroups and their members.

use async_trait::async_trait;
use mcx_core::ports::{RegroupStore, RegroupWrite, StoreResult};
use mcx_model::api::{RegroupMember, RegroupRecord};
use mcx_model::{ClientId, McServiceGroupId, McServiceId};
use sqlx::Row as _;

use crate::db::{Db, query};
use crate::sql_store::{SqlStore, corrupt, failed};

/// Applies one regroup write inside a transaction. `false`: a claim found a group held
/// by another regroup, and the transaction must not be kept.
pub(crate) async fn write_regroup<D: Db>(
    tx: &mut D,
    write: &RegroupWrite,
    now: i64,
) -> StoreResult<bool> {
    let ctx = "recording a regroup";
    match write {
        RegroupWrite::Put(record) => {
            let mut stored = record.clone();
            stored.members.clear();
            let json = serde_json::to_string(&stored).map_err(|e| corrupt(ctx, e))?;
            query(tx,
                "INSERT INTO regroups (regroup_group_id, record, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (regroup_group_id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
            )
            .bind(record.regroup_group_id.as_str())
            .bind(json)
            .bind(now)
            .execute()
            .await
            .map_err(failed(ctx))?;
        }
        RegroupWrite::Delete(regroup) => {
            for sql in [
                "DELETE FROM regroup_members WHERE regroup_group_id = $1",
                "DELETE FROM regroup_claims WHERE regroup_group_id = $1",
                "DELETE FROM regroups WHERE regroup_group_id = $1",
            ] {
                query(tx, sql)
                    .bind(regroup.as_str())
                    .execute()
                    .await
                    .map_err(failed(ctx))?;
            }
        }
        RegroupWrite::Claim { regroup, groups } => {
            for group in groups {
                // On PostgreSQL a simultaneous insert of the same key waits for the other
                // transaction and then does nothing; either way one regroup holds the row.
                query(
                    tx,
                    "INSERT INTO regroup_claims (group_id, regroup_group_id) VALUES ($1, $2) \
                     ON CONFLICT (group_id) DO NOTHING",
                )
                .bind(group.as_str())
                .bind(regroup.as_str())
                .execute()
                .await
                .map_err(failed(ctx))?;
                let holder = query(
                    tx,
                    "SELECT regroup_group_id FROM regroup_claims WHERE group_id = $1",
                )
                .bind(group.as_str())
                .fetch_optional()
                .await
                .map_err(failed(ctx))?
                .map(|row| row.text("regroup_group_id"))
                .transpose()
                .map_err(failed(ctx))?;
                if holder.as_deref() != Some(regroup.as_str()) {
                    return Ok(false);
                }
            }
        }
        RegroupWrite::Join {
            regroup,
            user,
            client,
        } => {
            query(tx,
                "INSERT INTO regroup_members (regroup_group_id, mc_service_id, client_id, acknowledged) \
                 VALUES ($1, $2, $3, 0) ON CONFLICT (regroup_group_id, mc_service_id, client_id) DO NOTHING",
            )
            .bind(regroup.as_str())
            .bind(user.as_str())
            .bind(client.as_str())
            .execute()
            .await
            .map_err(failed(ctx))?;
        }
        RegroupWrite::Leave {
            regroup,
            user,
            client,
        } => {
            query(tx,
                "DELETE FROM regroup_members WHERE regroup_group_id = $1 AND mc_service_id = $2 AND client_id = $3",
            )
            .bind(regroup.as_str())
            .bind(user.as_str())
            .bind(client.as_str())
            .execute()
            .await
            .map_err(failed(ctx))?;
        }
        RegroupWrite::Acknowledge {
            regroup,
            user,
            client,
        } => {
            query(
                tx,
                "UPDATE regroup_members SET acknowledged = 1 \
                 WHERE regroup_group_id = $1 AND mc_service_id = $2 AND client_id = $3",
            )
            .bind(regroup.as_str())
            .bind(user.as_str())
            .bind(client.as_str())
            .execute()
            .await
            .map_err(failed(ctx))?;
        }
    }
    Ok(true)
}

impl SqlStore {
    async fn members_of(&self, regroup: &McServiceGroupId) -> StoreResult<Vec<RegroupMember>> {
        let ctx = "reading a regroup's members";
        let rows = self
            .fetch(
                ctx,
                "SELECT mc_service_id, client_id, acknowledged FROM regroup_members WHERE regroup_group_id = $1 \
                 ORDER BY mc_service_id, client_id",
                vec![regroup.as_str().into()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let user = row.text("mc_service_id").map_err(failed(ctx))?;
                let client = row.text("client_id").map_err(failed(ctx))?;
                let acknowledged = row.int("acknowledged").map_err(failed(ctx))?;
                Ok(RegroupMember {
                    mc_service_id: McServiceId::parse(&user).map_err(|e| corrupt(ctx, e))?,
                    client_id: ClientId::parse(&client).map_err(|e| corrupt(ctx, e))?,
                    acknowledged: acknowledged != 0,
                })
            })
            .collect()
    }

    fn regroup_from_text(text: &str) -> StoreResult<RegroupRecord> {
        serde_json::from_str(text).map_err(|e| corrupt("reading a regroup", e))
    }
}

#[async_trait]
impl RegroupStore for SqlStore {
    async fn regroup(&self, regroup: &McServiceGroupId) -> StoreResult<Option<RegroupRecord>> {
        let row = sqlx::query("SELECT record FROM regroups WHERE regroup_group_id = $1")
            .bind(regroup.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("reading a regroup"))?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("record").map_err(failed("reading a regroup"))?;
        let mut record = Self::regroup_from_text(&text)?;
        record.members = self.members_of(regroup).await?;
        Ok(Some(record))
    }

    async fn regroups(&self) -> StoreResult<Vec<RegroupRecord>> {
        let ctx = "listing regroups";
        let rows = self
            .fetch(
                ctx,
                "SELECT record FROM regroups ORDER BY regroup_group_id",
                vec![],
            )
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.text("record").map_err(failed(ctx))?;
            let mut record = Self::regroup_from_text(&text)?;
            record.members = self.members_of(&record.regroup_group_id).await?;
            out.push(record);
        }
        Ok(out)
    }

    async fn regroup_holding(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Option<McServiceGroupId>> {
        let ctx = "reading which regroup holds a group";
        let holder: Option<String> =
            sqlx::query_scalar("SELECT regroup_group_id FROM regroup_claims WHERE group_id = $1")
                .bind(group.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(failed(ctx))?;
        holder
            .map(|h| McServiceGroupId::parse(&h).map_err(|e| corrupt(ctx, e)))
            .transpose()
    }
}
