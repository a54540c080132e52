//! At the initiator's system: steps 2–5 and 12, the partners' answers combined, the
//! regroup abandoned when a partner homing a group does not take part, cancellation.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use mcx_model::api::{RegroupRecord, RegroupState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::flows::regroup::*;
use mcx_model::flows::{FailureCause, FlowResult};
use mcx_model::group::GroupOrigin;
use mcx_model::interconnection::Capability;
use mcx_model::profile::Permission;
use mcx_model::{McServiceGroupId, NonEmpty, SystemDomain};

use super::reject;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::identity::Requester;
use crate::mc_service_server::McServiceServer;
use crate::ports::{Audience, Effects, LinkError, PartnerAudience, RegroupWrite};

impl McServiceServer {
    /// Steps 2–12 at the initiator's system.
    pub async fn regroup(
        &self,
        requester: &Requester,
        request: PreconfiguredRegroupRequest,
    ) -> Result<RegroupRecord> {
        // Step 3: authorisation (4b "not authorized" is this refusal).
        if requester.mc_service_id != request.mc_service_id {
            return Err(reject(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "the request names {} as requester, but {} is logged on",
                    request.mc_service_id, requester.mc_service_id
                ),
            ));
        }
        requester.require(Permission::Regroup, "regroup groups")?;
        if let RegroupTargets::McServiceGroupIdList(list) = &request.targets {
            self.gms
                .limits()
                .list("mc-service-group-id-list", list.len())?;
        }
        let groups = match &request.targets {
            RegroupTargets::McServiceGroupIdList(list) => {
                let mut seen = BTreeSet::new();
                list.iter()
                    .filter(|g| seen.insert((*g).clone()))
                    .cloned()
                    .collect::<Vec<_>>()
            }
            RegroupTargets::McServiceUserIdList(_) => {
                return Err(reject(
                    ErrorKind::Invalid,
                    codes::USER_REGROUP_NOT_SUPPORTED,
                    "user regroup (a list of users) is not supported; list the groups to regroup"
                        .into(),
                ));
            }
        };
        let service = request.mc_service;
        // The preconfigured group, from the GMS (it must be defined here to be shared).
        let preconfigured = match self
            .gms
            .group_for_server(&request.preconfigured_group_id)
            .await?
        {
            Some(g) if g.origin == GroupOrigin::Local => g,
            _ => {
                return Err(reject(
                    ErrorKind::NotFound,
                    codes::UNKNOWN_GROUP,
                    format!(
                        "the preconfigured group '{}' is not defined in {}",
                        request.preconfigured_group_id, self.system
                    ),
                ));
            }
        };
        // Resolve the groups; none defined here may be regrouped already (4a).
        let mut required = BTreeSet::new();
        for group in &groups {
            if group.home_system() == self.system {
                let Some(record) = self.gms.group_for_server(group).await? else {
                    return Err(reject(
                        ErrorKind::NotFound,
                        codes::UNKNOWN_GROUP,
                        format!("there is no group '{group}' in {}", self.system),
                    ));
                };
                if let Some(into) = &record.configuration.regrouped_into {
                    return Err(self.reject_4a(
                        requester,
                        RegroupCause::AlreadyRegrouped,
                        Some(group),
                        format!(
                            "preconfigured regroup reject: group '{group}' is already regrouped into '{into}'"
                        ),
                    ));
                }
                if record.configuration.on_network_regrouped.is_some() {
                    return Err(self.reject_4a(
                        requester,
                        RegroupCause::AlreadyRegrouped,
                        Some(group),
                        format!(
                            "preconfigured regroup reject: '{group}' is itself a regroup group"
                        ),
                    ));
                }
            } else {
                let home = group.home_system();
                if !self.partners.may_send(&home, Capability::Regroup) {
                    return Err(reject(
                        ErrorKind::Forbidden,
                        codes::PARTNER_NOT_AUTHORIZED,
                        format!(
                            "group '{group}' is defined in '{home}', which is not a partner authorised for regroup"
                        ),
                    ));
                }
                required.insert(home);
            }
        }
        // The regroup group ID: the one asked for if acceptable, else one assigned.
        let regroup_id = self
            .regroup_group_id(request.regroup_group_id.as_ref())
            .await?;
        let request_return = PreconfiguredRegroupRequestReturn {
            mc_service_id: request.mc_service_id.clone(),
            authorization: RegroupAuthorization::Authorized {
                regroup_group_id: regroup_id.clone(),
            },
        };
        let partners: Vec<SystemDomain> = self
            .partners
            .all()
            .filter(|p| p.outbound.contains(&Capability::Regroup))
            .map(|p| p.domain.clone())
            .collect();
        let mut record = RegroupRecord {
            regroup_group_id: regroup_id.clone(),
            primary_system: self.system.clone(),
            initiator: request.mc_service_id.clone(),
            preconfigured_group_id: request.preconfigured_group_id.clone(),
            mc_service_group_id_list: groups.clone(),
            mc_service: service,
            state: RegroupState::Forming,
            members: Vec::new(),
            request_return: Some(request_return),
            response: None,
        };
        // Stored as forming first, so a crash part-way is undone at the next start; step 4b
        // goes to the initiator's client in the same commit.
        let mut events = Vec::new();
        if let Some(request_return) = &record.request_return {
            events.push((
                Audience::Session(requester.session_id.clone()),
                ClientEvent::RegroupRequestReturn(request_return.clone()),
            ));
            self.trace.record(crate::trace::Flow {
                entity: "MC service server",
                direction: crate::trace::Direction::Sent,
                peer: format!("{} ({})", requester.mc_service_id, requester.client_id),
                flow: "Preconfigured regroup request return",
                correlation: regroup_id.to_string(),
                elements: serde_json::to_value(request_return).unwrap_or_default(),
            });
        }
        let home_groups: Vec<_> = groups
            .iter()
            .filter(|g| g.home_system() == self.system)
            .cloned()
            .collect();
        // Step 4a made atomic: the record, the claim of every group homed here (and of the
        // regroup group ID) and 4b are one commit; of simultaneous requests one claims.
        let mut claimed = home_groups.clone();
        claimed.push(regroup_id.clone());
        let kept = self
            .commit_regroup(
                vec![
                    RegroupWrite::Put(Box::new(record.clone())),
                    RegroupWrite::Claim {
                        regroup: regroup_id.clone(),
                        groups: claimed.clone(),
                    },
                ],
                events,
            )
            .await?;
        if !kept {
            let (code, detail) = self.already_regrouped(&claimed).await;
            let cause = if code == codes::REGROUP_GROUP_ID_IN_USE {
                RegroupCause::RegroupGroupIdInUse
            } else {
                RegroupCause::AlreadyRegrouped
            };
            return Err(self.reject_4a(requester, cause, None, detail));
        }
        self.gms
            .create_regroup_group(&regroup_id, &preconfigured, &groups, &partners)
            .await?;
        for group in &home_groups {
            self.gms.set_regrouped(group, &regroup_id, true).await?;
        }
        tracing::info!(regroup = %regroup_id, initiator = %request.mc_service_id, groups = groups.len(), "preconfigured regroup authorised");

        // Step 5: every partner authorised for regroup is asked, in parallel.
        let Ok(list) = NonEmpty::new(groups.clone()) else {
            return Err(reject(
                ErrorKind::Invalid,
                codes::INVALID_REQUEST,
                "no group to regroup".into(),
            ));
        };
        let to_partner = ServerPreconfiguredRegroupRequest {
            mc_service_id: request.mc_service_id.clone(),
            regroup_group_id: regroup_id.clone(),
            preconfigured_group_id: request.preconfigured_group_id.clone(),
            mc_service_group_id_list: list,
            mc_service: service,
        };
        let asks = partners.iter().map(|partner| {
            let request = PartnerRequest::PreconfiguredRegroup(to_partner.clone());
            async move {
                (
                    partner.clone(),
                    self.link
                        .send(
                            partner,
                            self.entropy.transaction_id(self.clock.now()),
                            &request,
                        )
                        .await,
                )
            }
        });
        let answers = join_all(asks).await;
        let mut systems = Vec::new();
        let mut failure: Option<(RegroupCause, String)> = None;
        for (partner, answer) in answers {
            let (result, count) = match answer {
                Ok(PartnerResponse::PreconfiguredRegroup(r)) => {
                    (r.result, r.affiliated_member_count)
                }
                Ok(_) => (
                    FlowResult::failure(FailureCause::InvalidRequest, "answered with another flow"),
                    0,
                ),
                Err(LinkError::Unreachable { message, .. }) => (
                    FlowResult::failure(FailureCause::Other("partner-unreachable".into()), message),
                    0,
                ),
                Err(LinkError::Refused { message, .. }) => {
                    (FlowResult::failure(FailureCause::NotAuthorized, message), 0)
                }
            };
            if !result.is_success() && required.contains(&partner) && failure.is_none() {
                let (cause, reason) = match &result {
                    FlowResult::Failure { cause, reason } => (cause.clone(), reason.clone()),
                    FlowResult::Success => (FailureCause::Other(String::new()), String::new()),
                };
                let regroup_cause = match cause.as_str() {
                    "partner-unreachable" => RegroupCause::PartnerUnreachable,
                    "unknown-group" => RegroupCause::UnknownGroup,
                    "already-regrouped" => RegroupCause::AlreadyRegrouped,
                    _ => RegroupCause::PartnerRefused,
                };
                failure = Some((
                    regroup_cause,
                    format!("partner '{partner}' did not take part ({cause}): {reason}"),
                ));
            }
            systems.push(SystemRegroupResult {
                system: partner,
                result,
                affiliated_member_count: count,
            });
        }
        if let Some((cause, why)) = failure {
            // Nothing half-done: every partner asked is told to cancel (one that did not
            // answer may have taken part; a cancel of a regroup it never made is a no-op),
            // the group is restored.
            self.undo_regroup(&record, &home_groups, &partners).await?;
            tracing::warn!(regroup = %regroup_id, %cause, why, "preconfigured regroup abandoned");
            let code = match cause {
                RegroupCause::PartnerUnreachable => codes::PARTNER_UNREACHABLE,
                RegroupCause::UnknownGroup => codes::UNKNOWN_GROUP,
                RegroupCause::AlreadyRegrouped => codes::ALREADY_REGROUPED,
                _ => codes::PARTNER_REFUSED,
            };
            let kind = match code {
                codes::PARTNER_UNREACHABLE => ErrorKind::Unavailable,
                codes::UNKNOWN_GROUP => ErrorKind::NotFound,
                _ => ErrorKind::Conflict,
            };
            return Err(reject(
                kind,
                code,
                format!("the regroup was not made and nothing was changed: {why}"),
            ));
        }

        // Steps 6–10 for this system's own clients.
        let (mut effects, members) = self
            .affected_clients(
                &regroup_id,
                &groups,
                service,
                &request.preconfigured_group_id,
            )
            .await?;
        systems.insert(
            0,
            SystemRegroupResult {
                system: self.system.clone(),
                result: FlowResult::Success,
                affiliated_member_count: members.len() as u64,
            },
        );
        record.state = RegroupState::Active;
        record.response = Some(PreconfiguredRegroupResponse {
            mc_service_id: request.mc_service_id.clone(),
            regroup_group_id: regroup_id.clone(),
            result: FlowResult::Success,
            systems,
        });
        effects
            .regroups
            .insert(0, RegroupWrite::Put(Box::new(record.clone())));
        self.commit_regroup_effects(&effects).await?;
        record.members = members;
        tracing::info!(regroup = %regroup_id, "preconfigured regroup in effect");
        Ok(record)
    }

    /// The regroup group ID: the one requested if it is in this system's domain and
    /// neither an existing group nor an active regroup's; else `sip:regroup-<n>@<domain>`.
    pub(super) async fn regroup_group_id(
        &self,
        wanted: Option<&McServiceGroupId>,
    ) -> Result<McServiceGroupId> {
        if let Some(wanted) = wanted {
            if self.regroups.regroup(wanted).await?.is_some() {
                return Err(reject(
                    ErrorKind::Conflict,
                    codes::REGROUP_GROUP_ID_IN_USE,
                    format!(
                        "preconfigured regroup reject: the regroup group ID '{wanted}' is in use by a regroup in effect"
                    ),
                ));
            }
            if wanted.home_system() == self.system
                && self.gms.group_for_server(wanted).await?.is_none()
            {
                return Ok(wanted.clone());
            }
        }
        loop {
            let candidate = McServiceGroupId::parse(&format!(
                "sip:regroup-{}@{}",
                &format!("{:016x}", self.entropy.next_u64())[..8],
                self.system
            ))
            .map_err(|e| reject(ErrorKind::Invalid, codes::INVALID_REQUEST, e.to_string()))?;
            if self.gms.group_for_server(&candidate).await?.is_none() {
                return Ok(candidate);
            }
        }
    }

    /// Step 4a, preconfigured regroup reject: the flow to the initiator's client (traced;
    /// it travels as the refusal of the request) and the refusal itself.
    pub(super) fn reject_4a(
        &self,
        requester: &Requester,
        cause: RegroupCause,
        group: Option<&McServiceGroupId>,
        reason: String,
    ) -> Error {
        let flow = PreconfiguredRegroupReject {
            mc_service_id: requester.mc_service_id.clone(),
            cause: cause.clone(),
            regrouped_group_id: group.cloned(),
            reason: reason.clone(),
        };
        self.trace.record(crate::trace::Flow {
            entity: "MC service server",
            direction: crate::trace::Direction::Sent,
            peer: format!("{} ({})", requester.mc_service_id, requester.client_id),
            flow: "Preconfigured regroup reject",
            correlation: requester.mc_service_id.to_string(),
            elements: serde_json::to_value(&flow).unwrap_or_default(),
        });
        let code = match cause {
            RegroupCause::RegroupGroupIdInUse => codes::REGROUP_GROUP_ID_IN_USE,
            _ => codes::ALREADY_REGROUPED,
        };
        reject(ErrorKind::Conflict, code, reason)
    }

    /// Why a claim was lost (step 4a): the code, and the group and the regroup holding it.
    /// `claimed` ends with the regroup group ID itself.
    pub(super) async fn already_regrouped(
        &self,
        claimed: &[McServiceGroupId],
    ) -> (&'static str, String) {
        let own = claimed.last();
        for group in claimed {
            if let Ok(Some(holder)) = self.regroups.regroup_holding(group).await {
                if Some(group) == own && &holder == group {
                    return (
                        codes::REGROUP_GROUP_ID_IN_USE,
                        format!(
                            "preconfigured regroup reject: the regroup group ID '{group}' is in use by a regroup in effect"
                        ),
                    );
                }
                return (
                    codes::ALREADY_REGROUPED,
                    format!(
                        "preconfigured regroup reject: group '{group}' is already regrouped into '{holder}'"
                    ),
                );
            }
        }
        (
            codes::ALREADY_REGROUPED,
            "preconfigured regroup reject: a group of the request was regrouped by a simultaneous request".into(),
        )
    }

    /// Undoes a regroup being formed: partners that took part cancel (durably), the
    /// groups defined here are no longer regrouped, the regroup group and record go.
    pub(super) async fn undo_regroup(
        &self,
        record: &RegroupRecord,
        home_groups: &[McServiceGroupId],
        partners: &[SystemDomain],
    ) -> Result<()> {
        let mut effects = Effects::none();
        for partner in partners {
            effects.send(
                PartnerAudience::Partner(partner.clone()),
                PartnerRequest::PreconfiguredRegroupCancel(PreconfiguredRegroupCancelRequest {
                    mc_service_id: record.initiator.clone(),
                    regroup_group_id: record.regroup_group_id.clone(),
                    mc_service: record.mc_service,
                }),
            );
        }
        for group in home_groups {
            self.gms
                .set_regrouped(group, &record.regroup_group_id, false)
                .await?;
        }
        self.gms
            .delete_regroup_group(&record.regroup_group_id)
            .await?;
        effects
            .regroups
            .push(RegroupWrite::Delete(record.regroup_group_id.clone()));
        let committed = self.commits.commit(&effects).await?;
        self.wakers.wake(&committed.woken_sessions);
        self.outbox.notify_one();
        Ok(())
    }

    /// Cancellation at the initiator's system (any user authorised for regroup).
    pub async fn cancel_regroup(
        &self,
        requester: &Requester,
        regroup: &McServiceGroupId,
    ) -> Result<PreconfiguredRegroupCancelResponse> {
        requester.require(Permission::Regroup, "cancel regroups")?;
        let record = self.regroup_record(regroup).await?;
        if record.primary_system != self.system {
            return Err(reject(
                ErrorKind::Conflict,
                codes::GROUP_NOT_HOMED_HERE,
                format!(
                    "regroup '{regroup}' was made in {}; cancel it there",
                    record.primary_system
                ),
            ));
        }
        let cancel = PreconfiguredRegroupCancelRequest {
            mc_service_id: requester.mc_service_id.clone(),
            regroup_group_id: regroup.clone(),
            mc_service: record.mc_service,
        };
        // Partners now; one that cannot be reached gets it from the outbox.
        let partners: Vec<SystemDomain> = self
            .partners
            .all()
            .filter(|p| p.outbound.contains(&Capability::Regroup))
            .map(|p| p.domain.clone())
            .collect();
        let asks = partners.iter().map(|partner| {
            let request = PartnerRequest::PreconfiguredRegroupCancel(cancel.clone());
            async move {
                match self
                    .link
                    .send(
                        partner,
                        self.entropy.transaction_id(self.clock.now()),
                        &request,
                    )
                    .await
                {
                    Err(LinkError::Unreachable { .. }) => Some((partner.clone(), request)),
                    _ => None,
                }
            }
        });
        let undelivered: Vec<_> = join_all(asks).await.into_iter().flatten().collect();
        self.end_regroup_here(&record, &cancel, undelivered).await?;
        self.gms.delete_regroup_group(regroup).await?;
        tracing::info!(%regroup, by = %requester.mc_service_id, "preconfigured regroup cancelled");
        Ok(PreconfiguredRegroupCancelResponse {
            mc_service_id: requester.mc_service_id.clone(),
            regroup_group_id: regroup.clone(),
            result: FlowResult::Success,
        })
    }

    /// At start: regroups a crash left half-formed are undone.
    pub async fn undo_unfinished_regroups(&self) -> Result<usize> {
        let mut undone = 0;
        for record in self.regroups.regroups().await? {
            if record.state == RegroupState::Forming && record.primary_system == self.system {
                let home: Vec<_> = record
                    .mc_service_group_id_list
                    .iter()
                    .filter(|g| g.home_system() == self.system)
                    .cloned()
                    .collect();
                let partners: Vec<SystemDomain> = self
                    .partners
                    .all()
                    .filter(|p| p.outbound.contains(&Capability::Regroup))
                    .map(|p| p.domain.clone())
                    .collect();
                self.undo_regroup(&record, &home, &partners).await?;
                undone += 1;
            }
        }
        Ok(undone)
    }
}
