//! The SIP door's table (`sip_state`): its publications and subscription dialogs.

use async_trait::async_trait;
use mcx_core::ports::{SipStateStore, StoreResult};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::sql_store::*;

#[async_trait]
impl SipStateStore for SqlStore {
    async fn put_sip_state(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO sip_state (kind, state_key, value, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, state_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(kind)
        .bind(key)
        .bind(value)
        .bind(millis(expires_at))
        .execute(&self.pool)
        .await
        .map_err(failed(format!("storing the SIP {kind} {key}")))?;
        Ok(())
    }

    async fn delete_sip_state(&self, kind: &str, key: &str) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("DELETE FROM sip_state WHERE kind = $1 AND state_key = $2")
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(failed(format!("deleting the SIP {kind} {key}")))?;
        Ok(())
    }

    async fn sip_state(
        &self,
        kind: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<(String, String)>> {
        let ctx = format!("reading the SIP {kind}s");
        {
            let _guard = self.write_guard().await;
            sqlx::query("DELETE FROM sip_state WHERE kind = $1 AND expires_at <= $2")
                .bind(kind)
                .bind(millis(now))
                .execute(&self.pool)
                .await
                .map_err(failed(ctx.clone()))?;
        }
        let rows = sqlx::query(
            "SELECT state_key, value FROM sip_state WHERE kind = $1 ORDER BY state_key",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(failed(ctx.clone()))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("state_key").map_err(failed(ctx.clone()))?,
                    row.try_get("value").map_err(failed(ctx.clone()))?,
                ))
            })
            .collect()
    }
}
