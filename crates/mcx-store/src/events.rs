//! Each session's stream of client events, and effects-only commits.

use async_trait::async_trait;
use mcx_core::ports::{Committed, Effects, EventStore, SessionEvents, StoreResult};
use mcx_model::events::{ClientEvent, DeliveredEvent};
use sqlx::Row as _;

use crate::sql_store::*;

#[async_trait]
impl EventStore for SqlStore {
    async fn commit(&self, effects: &Effects) -> StoreResult<Committed> {
        let committed = self
            .commit_write(crate::group_commit::Write::Effects(effects.clone()))
            .await?;
        // A guarded change record that moved on: nothing was kept.
        Ok(committed.unwrap_or(Committed::conflicted()))
    }

    async fn events_of_sessions(
        &self,
        wanted: &[(String, i64)],
        limit: u32,
    ) -> StoreResult<Vec<SessionEvents>> {
        let ctx = "reading events of several sessions";
        if self.is_sqlite_here() {
            return self.events_of_each_session(wanted, limit).await;
        }
        let mut out = vec![SessionEvents::default(); wanted.len()];
        if wanted.is_empty() {
            return Ok(out);
        }
        // wanted(idx, session, after) as a VALUES list; each session's next `limit`
        // events by rank; then which sessions exist.
        let mut values = String::new();
        for i in 0..wanted.len() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!(
                "(CAST(${} AS BIGINT), ${}, CAST(${} AS BIGINT))",
                3 * i + 1,
                3 * i + 2,
                3 * i + 3
            ));
        }
        let limit_param = 3 * wanted.len() + 1;
        let sql = format!(
            "WITH wanted (idx, session_id, after_id) AS (VALUES {values}), \
             ranked AS (SELECT w.idx, e.event_id, e.event, \
               ROW_NUMBER() OVER (PARTITION BY w.idx ORDER BY e.event_id) AS n \
               FROM wanted w JOIN client_events e ON e.session_id = w.session_id AND e.event_id > w.after_id) \
             SELECT idx, event_id, event FROM ranked WHERE n <= ${limit_param} ORDER BY idx, event_id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, (session, after)) in wanted.iter().enumerate() {
            query = query
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .bind(session.clone())
                .bind(*after);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed(ctx))?;
        for row in &rows {
            let idx: i64 = row.try_get("idx").map_err(failed(ctx))?;
            let id: i64 = row.try_get("event_id").map_err(failed(ctx))?;
            let text: String = row.try_get("event").map_err(failed(ctx))?;
            let text = self.writing.open(text)?;
            let event: ClientEvent = serde_json::from_str(&text).map_err(|e| corrupt(ctx, e))?;
            let slot = usize::try_from(idx)
                .ok()
                .and_then(|i| out.get_mut(i))
                .ok_or_else(|| corrupt(ctx, format!("index {idx} out of range")))?;
            slot.events.push(DeliveredEvent { id, event });
            slot.exists = true;
        }
        // Sessions with events exist (their events go when they end); ask for the rest.
        let unknown: Vec<&str> = wanted
            .iter()
            .zip(&out)
            .filter(|(_, found)| !found.exists)
            .map(|((session, _), _)| session.as_str())
            .collect();
        if !unknown.is_empty() {
            let placeholders: Vec<String> = (1..=unknown.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT session_id FROM sessions WHERE session_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for session in &unknown {
                query = query.bind(session.to_string());
            }
            let existing: std::collections::HashSet<String> = query
                .fetch_all(&self.pool)
                .await
                .map_err(failed(ctx))?
                .iter()
                .map(|row| row.try_get::<String, _>("session_id"))
                .collect::<Result<_, _>>()
                .map_err(failed(ctx))?;
            for ((session, _), found) in wanted.iter().zip(out.iter_mut()) {
                if existing.contains(session) {
                    found.exists = true;
                }
            }
        }
        Ok(out)
    }

    async fn discard_events_through(&self, session_id: &str, through: i64) -> StoreResult<()> {
        let _guard = self.write_guard().await;
        sqlx::query("DELETE FROM client_events WHERE session_id = $1 AND event_id <= $2")
            .bind(session_id)
            .bind(through)
            .execute(&self.pool)
            .await
            .map_err(failed(format!(
                "discarding delivered events of session {session_id}"
            )))?;
        Ok(())
    }
}

impl SqlStore {
    /// On SQLite, one indexed read per session over the readers, each a prepared
    /// statement run at once: microseconds each. The one batched statement that
    /// PostgreSQL gets (saving round trips) cost here sqlx's worker-thread hand-off and
    /// hundreds of bound parameters, about a third of a partner's CPU in a fan-out.
    async fn events_of_each_session(
        &self,
        wanted: &[(String, i64)],
        limit: u32,
    ) -> StoreResult<Vec<SessionEvents>> {
        let ctx = "reading a session's events";
        let mut out = Vec::with_capacity(wanted.len());
        // A change to many sessions is stored as one text in each session's row: the
        // sessions of a batch mostly hold the same one, opened and decoded once.
        let mut last: Option<(String, ClientEvent)> = None;
        for (session, after) in wanted {
            let rows = self
                .fetch(
                    ctx,
                    "SELECT event_id, event FROM client_events \
                     WHERE session_id = $1 AND event_id > $2 ORDER BY event_id LIMIT $3",
                    vec![session.into(), (*after).into(), i64::from(limit).into()],
                )
                .await?;
            let mut found = SessionEvents::default();
            for row in &rows {
                let id = row.int("event_id").map_err(failed(ctx))?;
                let stored = row.text("event").map_err(failed(ctx))?;
                let event = match &last {
                    Some((text, event)) if *text == stored => event.clone(),
                    _ => {
                        let text = self.writing.open(stored.clone())?;
                        let event: ClientEvent =
                            serde_json::from_str(&text).map_err(|e| corrupt(ctx, e))?;
                        last = Some((stored, event.clone()));
                        event
                    }
                };
                found.events.push(DeliveredEvent { id, event });
            }
            // Sessions with events exist (their events go when they end).
            found.exists = !found.events.is_empty()
                || !self
                    .fetch(
                        ctx,
                        "SELECT 1 AS found FROM sessions WHERE session_id = $1",
                        vec![session.into()],
                    )
                    .await?
                    .is_empty();
            out.push(found);
        }
        Ok(out)
    }
}
