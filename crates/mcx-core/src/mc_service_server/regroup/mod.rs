//! Preconfigured group regroup formation in multiple MC systems (TS 23.280 §10.15.3.3.1)
//! and its cancellation. Step numbers follow the figure: 1, 2, 3, 4a/4b, 5 … 12.
//!
//! At the initiator's system (the primary of the regroup group): authorise and resolve
//! (3), reject an already regrouped group (4a), return the authorisation and the regroup
//! group ID (4b), define the regroup group from the preconfigured group and share it with
//! the partners' GMSs, mark the regrouped groups defined here, ask every partner
//! authorised for regroup (5), then affiliate this system's own affected clients and
//! answer with the combined result (12). A partner homing a listed group must take part:
//! if it refuses or cannot be reached, everything done is undone and the initiator is
//! told why; a partner that only serves members may fail without stopping the regroup
//! (its part is reported as failed).
//!
//! At a partner: check the groups it hosts (6), mark them regrouped, find the clients it
//! serves that are affiliated to any listed group (6), tell them (7), affiliate them to the
//! regroup group (10) and answer (11). A client's part ends when it leaves every
//! regrouped group or logs off; a client affiliating to a regrouped group joins.

use mcx_model::McServiceGroupId;
use mcx_model::api::{RegroupList, RegroupRecord};
use mcx_model::events::ClientEvent;
use mcx_model::profile::Permission;

use super::McServiceServer;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::identity::Requester;
use crate::ports::{Audience, Effects, RegroupWrite};

/// A regrouped client's affiliation to the regroup group changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// It joins.
    Join,
    /// It leaves; another client of the user stays.
    Leave,
    /// It leaves, and with it the user.
    LeaveLast,
}

pub(super) fn reject(kind: ErrorKind, code: &'static str, detail: String) -> Error {
    Error::refused(kind, code, detail)
}

mod initiate;
mod membership;
mod partner;
mod verdict;

impl McServiceServer {
    /// Commits regroup effects; `false` if a claim among them found a group held by
    /// another regroup (nothing kept).
    pub(super) async fn commit_regroup_effects(&self, effects: &Effects) -> Result<bool> {
        crate::events::commit_and_wake(&*self.commits, &self.wakers, &self.outbox, effects).await
    }

    /// Commits regroup writes with their events; `false` if a claim among them found a
    /// group held by another regroup (nothing kept).
    pub(super) async fn commit_regroup(
        &self,
        writes: Vec<RegroupWrite>,
        events: Vec<(Audience, ClientEvent)>,
    ) -> Result<bool> {
        let mut effects = Effects::event_list(events);
        effects.service.regroups = writes;
        self.commit_regroup_effects(&effects).await
    }

    pub(super) async fn regroup_record(&self, regroup: &McServiceGroupId) -> Result<RegroupRecord> {
        self.regroups.regroup(regroup).await?.ok_or_else(|| {
            reject(
                ErrorKind::NotFound,
                codes::UNKNOWN_REGROUP,
                format!("no regroup with regroup group '{regroup}' is in effect here"),
            )
        })
    }

    /// The regroups this system takes part in (users authorised for regroup).
    pub async fn regroups(&self, requester: &Requester) -> Result<RegroupList> {
        requester.require(Permission::Regroup, "see regroups")?;
        let regroups = self.regroups.regroups().await?;
        Ok(RegroupList { regroups })
    }

    /// One regroup: to users authorised for regroup, and to its members.
    pub async fn regroup_status(
        &self,
        requester: &Requester,
        regroup: &McServiceGroupId,
    ) -> Result<RegroupRecord> {
        let record = self.regroup_record(regroup).await?;
        let member = record
            .members
            .iter()
            .any(|m| m.mc_service_id == requester.mc_service_id);
        if !member {
            requester.require(Permission::Regroup, "see regroups")?;
        }
        Ok(record)
    }

    /// Step 9: a member's client acknowledges the regroup.
    pub async fn acknowledge_regroup(
        &self,
        requester: &Requester,
        regroup: &McServiceGroupId,
    ) -> Result<RegroupRecord> {
        let record = self.regroup_record(regroup).await?;
        if !record.members.iter().any(|m| {
            m.mc_service_id == requester.mc_service_id && m.client_id == requester.client_id
        }) {
            return Err(reject(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "this client of {} is not affiliated to regroup group '{regroup}'",
                    requester.mc_service_id
                ),
            ));
        }
        self.commit_regroup(
            vec![RegroupWrite::Acknowledge {
                regroup: regroup.clone(),
                user: requester.mc_service_id.clone(),
                client: requester.client_id.clone(),
            }],
            Vec::new(),
        )
        .await?;
        self.regroup_record(regroup).await
    }
}
