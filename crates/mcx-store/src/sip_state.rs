//! The SIP door's table (`sip_state`): its publications and subscription dialogs.

use async_trait::async_trait;
use mcx_core::ports::{SipStateChange, SipStateStore, StoreResult};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::group_commit::{SipStateOp, Write};
use crate::sql_store::*;

#[async_trait]
impl SipStateStore for SqlStore {
    async fn change_sip_state(&self, changes: Vec<SipStateChange>) -> StoreResult<()> {
        let ops = changes.into_iter().map(op).collect();
        self.commit_write(Write::SipState(ops)).await?;
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

/// The committer's form of a change.
pub(crate) fn op(change: SipStateChange) -> SipStateOp {
    match change {
        SipStateChange::Put {
            kind,
            key,
            value,
            expires_at,
        } => SipStateOp::Put {
            kind,
            key,
            value,
            expires_at: millis(expires_at),
        },
        SipStateChange::Delete { kind, key } => SipStateOp::Delete { kind, key },
    }
}
