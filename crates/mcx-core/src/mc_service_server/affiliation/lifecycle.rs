//! A client's affiliations end with its session, here and at partner hosts.

use mcx_model::McService;

use super::McServiceServer;
use crate::error::Result;
use crate::ports::{Effects, SessionRecord};

use super::*;

impl McServiceServer {
    /// A client's session ended: all its affiliations cease, here and at partner hosts
    /// (through the outbox, in the same commit, so nothing is lost if the partner is away).
    /// Returns how many client affiliations ended.
    pub(in crate::mc_service_server) async fn end_client(
        &self,
        session: &SessionRecord,
    ) -> Result<usize> {
        let user = &session.mc_service_id;
        let _guard = self.user_locks.lock(user).await;
        for _ in 0..16 {
            let state = self.store.user_affiliations(user).await?;
            let mine: Vec<_> = state
                .rows
                .iter()
                .filter(|r| r.client == session.client_id)
                .collect();
            if mine.is_empty() {
                self.store.client_ended(user, &session.client_id).await?;
                return Ok(0);
            }
            let mut effects = Effects::none();
            for service in McService::ALL {
                let groups: Vec<_> = mine
                    .iter()
                    .filter(|r| r.mc_service == service)
                    .map(|r| r.group.clone())
                    .collect();
                if groups.is_empty() {
                    continue;
                }
                let (part, _, _) = self.release(
                    user,
                    std::slice::from_ref(&session.client_id),
                    service,
                    &groups,
                    &state.rows,
                    Some((Via::Own, state.generation + 1)),
                );
                merge(&mut effects, part);
            }
            if let Some(committed) = self
                .store
                .commit_for_user(user, Some(state.generation), &effects)
                .await?
            {
                self.trace_gms_status(&effects);
                self.wakers.wake(&committed.woken_sessions);
                self.outbox.committed(&committed);
                tracing::info!(%user, client = %session.client_id, groups = mine.len(), "client logged off: affiliations ended");
                // Its affiliation to regroup groups ends too (§10.15.3.3.1, last paragraph).
                self.leave_regroups(user, std::slice::from_ref(&session.client_id), false)
                    .await?;
                self.store.client_ended(user, &session.client_id).await?;
                return Ok(mine.len());
            }
        }
        Err(kept_changing(user))
    }

    /// At start: affiliations of clients whose sessions ended while the server was down,
    /// and reservations a crash interrupted, are ended as at log-off.
    pub async fn end_stale_affiliations(&self) -> Result<usize> {
        let mut ended = 0;
        for (user, client, logged_on_again) in self.store.ending_clients().await? {
            if logged_on_again {
                // The client's affiliations are its new session's now.
                self.store.client_ended(&user, &client).await?;
                continue;
            }
            let now = self.clock.now();
            let session = SessionRecord {
                session_id: String::new(),
                token_hash: String::new(),
                mc_service_id: user,
                client_id: client,
                logged_on_at: now,
                expires_at: now,
            };
            ended += self.end_client(&session).await?;
        }
        Ok(ended)
    }
}
