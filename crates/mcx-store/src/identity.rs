//! Users and sessions (identity management's tables).

use async_trait::async_trait;
use mcx_core::ports::{SessionRecord, SessionStore, StoreResult, UserRecord, UserStore};
use mcx_model::{ClientId, McServiceId};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::sql_store::*;

impl SqlStore {
    pub(crate) fn session_from_row(row: &AnyRow) -> StoreResult<SessionRecord> {
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

    pub(crate) async fn delete_session_rows(
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
        // The client's affiliations end after this commit (the MC service server's
        // part): if the process dies first, the next start finds the client here.
        sqlx::query(
            "INSERT INTO ending_clients (mc_service_id, client_id) \
             SELECT mc_service_id, client_id FROM sessions WHERE session_id = $1 \
             ON CONFLICT (mc_service_id, client_id) DO NOTHING",
        )
        .bind(session_id)
        .execute(&mut *tx)
        .await
        .map_err(failed(ctx.clone()))?;
        let ended = Self::delete_session_rows(&mut tx, session_id).await?;
        // Its streams on other nodes end too.
        crate::writes::notify_sessions(&mut tx, &[session_id.to_string()]).await?;
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

    async fn sessions_affiliated_to(
        &self,
        group: &mcx_model::McServiceGroupId,
    ) -> StoreResult<Vec<SessionRecord>> {
        sqlx::query(
            "SELECT DISTINCT s.* FROM affiliations a JOIN sessions s \
             ON s.mc_service_id = a.mc_service_id AND s.client_id = a.client_id \
             WHERE a.group_id = $1 ORDER BY s.mc_service_id, s.client_id",
        )
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(failed(format!(
            "listing the sessions affiliated to '{group}'"
        )))?
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
