//! Group documents and clients' subscriptions (the GMS's tables).

use async_trait::async_trait;
use mcx_core::ports::{Effects, GroupStore, StoreResult, WriteOutcome};
use mcx_model::McServiceGroupId;
use mcx_model::group::GroupRecord;
use sqlx::Row as _;

use crate::sql_store::*;

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
        crate::writes::notify_group(&mut tx, id, Some(group.version)).await?;
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
        crate::writes::notify_group(&mut tx, id, Some(group.version)).await?;
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
        crate::writes::notify_group(&mut tx, id, None).await?;
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
