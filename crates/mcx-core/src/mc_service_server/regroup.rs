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

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use mcx_model::api::{RegroupList, RegroupMember, RegroupRecord, RegroupState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::{
    AffiliationStatus, ServerGroupAffiliationRequest, ServerGroupDeaffiliationRequest,
};
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::flows::regroup::*;
use mcx_model::flows::{FailureCause, FlowResult};
use mcx_model::group::GroupOrigin;
use mcx_model::interconnection::Capability;
use mcx_model::profile::Permission;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};

use super::McServiceServer;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::identity::Requester;
use crate::ports::{
    AffiliationWrite, Audience, ClientAffiliation, Effects, GmsStatusUpdate, LinkError,
    PartnerAudience, RegroupWrite,
};

/// A regrouped client's affiliation to the regroup group changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// It joins.
    Join,
    /// It leaves; another client of the user stays.
    Leave,
    /// It leaves, and with it the user.
    LeaveLast,
}

fn reject(kind: ErrorKind, code: &'static str, detail: String) -> Error {
    Error::refused(kind, code, detail)
}

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
    async fn regroup_group_id(
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

    /// Steps 6, 7 and 10 for this system: the clients it serves that are affiliated to
    /// any listed group are told and affiliated to the regroup group.
    async fn affected_clients(
        &self,
        regroup: &McServiceGroupId,
        groups: &[McServiceGroupId],
        service: McService,
        preconfigured: &McServiceGroupId,
    ) -> Result<(Effects, Vec<RegroupMember>)> {
        let mut per_client: BTreeMap<(McServiceId, ClientId), BTreeSet<McServiceGroupId>> =
            BTreeMap::new();
        for group in groups {
            for (user, row) in self.store.served_affiliations_to(group).await? {
                if row.mc_service == service && row.pending.is_none() {
                    per_client
                        .entry((user, row.client))
                        .or_default()
                        .insert(group.clone());
                }
            }
        }
        let mut effects = Effects::none();
        let mut members = Vec::new();
        for ((user, client), affiliated) in per_client {
            let Some(session) = self
                .sessions
                .sessions_of(&user)
                .await?
                .into_iter()
                .find(|s| s.client_id == client)
            else {
                continue;
            };
            effects.regroups.push(RegroupWrite::Join {
                regroup: regroup.clone(),
                user: user.clone(),
                client: client.clone(),
            });
            self.regroup_affiliation(&user, &client, service, regroup, Change::Join, &mut effects);
            effects.client_events.push((
                Audience::Session(session.session_id),
                ClientEvent::RegroupRequested {
                    request: ClientPreconfiguredRegroupRequest {
                        mc_service_id: user.clone(),
                        regroup_group_id: regroup.clone(),
                        preconfigured_group_id: preconfigured.clone(),
                        mc_service_group_id_list: NonEmpty::new(affiliated.into_iter().collect())
                            .unwrap_or_else(|_| NonEmpty::one(regroup.clone())),
                        mc_service: service,
                    },
                },
            ));
            members.push(RegroupMember {
                mc_service_id: user,
                client_id: client,
                acknowledged: false,
            });
        }
        Ok((effects, members))
    }

    /// Step 10: a regrouped client's affiliation to the regroup group, recorded like any
    /// other (§10.8.3.1 step 5b): the serving row (it counts toward N2), and at the regroup
    /// group's primary the hosted row and the GMS's view; a partner tells the primary
    /// durably (§10.8.3.2 step 3, §10.8.4.3 step 3). `Change::LeaveLast` when no other
    /// client of the user stays in the regroup.
    fn regroup_affiliation(
        &self,
        user: &McServiceId,
        client: &ClientId,
        service: McService,
        regroup: &McServiceGroupId,
        change: Change,
        effects: &mut Effects,
    ) {
        let joining = change == Change::Join;
        effects.affiliations.push(if joining {
            AffiliationWrite::Served {
                user: user.clone(),
                row: ClientAffiliation {
                    mc_service: service,
                    group: regroup.clone(),
                    client: client.clone(),
                    pending: None,
                },
            }
        } else {
            AffiliationWrite::ServedRemoved {
                user: user.clone(),
                mc_service: service,
                group: regroup.clone(),
                client: client.clone(),
            }
        });
        if change == Change::Leave {
            return;
        }
        let list = NonEmpty::one(regroup.clone());
        if regroup.home_system() == self.system {
            effects.affiliations.push(if joining {
                AffiliationWrite::Hosted {
                    user: user.clone(),
                    mc_service: service,
                    group: regroup.clone(),
                }
            } else {
                AffiliationWrite::HostedRemoved {
                    user: user.clone(),
                    mc_service: service,
                    group: regroup.clone(),
                }
            });
            effects.gms_status.push(GmsStatusUpdate {
                user: user.clone(),
                mc_service: service,
                statuses: vec![(
                    regroup.clone(),
                    if joining {
                        AffiliationStatus::Affiliated
                    } else {
                        AffiliationStatus::NotAffiliated
                    },
                )],
            });
        } else if joining {
            effects.send(
                PartnerAudience::Partner(regroup.home_system()),
                PartnerRequest::GroupAffiliation(ServerGroupAffiliationRequest {
                    mc_service_id: user.clone(),
                    mc_service_group_id_list: list,
                    mc_service: service,
                    generation: None,
                }),
            );
        } else {
            effects.send(
                PartnerAudience::Partner(regroup.home_system()),
                PartnerRequest::GroupDeaffiliation(ServerGroupDeaffiliationRequest {
                    mc_service_id: user.clone(),
                    mc_service_group_id_list: list,
                    mc_service: service,
                    generation: None,
                }),
            );
        }
    }

    /// Commits regroup effects; `false` if a claim among them found a group held by
    /// another regroup (nothing kept).
    async fn commit_regroup_effects(&self, effects: &Effects) -> Result<bool> {
        crate::events::commit_and_wake(&*self.commits, &self.wakers, &self.outbox, effects).await
    }

    /// Commits regroup writes with their events; `false` if a claim among them found a
    /// group held by another regroup (nothing kept).
    async fn commit_regroup(
        &self,
        writes: Vec<RegroupWrite>,
        events: Vec<(Audience, ClientEvent)>,
    ) -> Result<bool> {
        let effects = Effects {
            regroups: writes,
            client_events: events,
            ..Effects::default()
        };
        self.commit_regroup_effects(&effects).await
    }

    /// Step 4a, preconfigured regroup reject: the flow to the initiator's client (traced;
    /// it travels as the refusal of the request) and the refusal itself.
    fn reject_4a(
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
    async fn already_regrouped(&self, claimed: &[McServiceGroupId]) -> (&'static str, String) {
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
    async fn undo_regroup(
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

    /// Steps 6–11 at a partner system.
    pub(crate) async fn host_regroup(
        &self,
        from: &SystemDomain,
        request: &ServerPreconfiguredRegroupRequest,
    ) -> Result<ServerPreconfiguredRegroupResponse> {
        let regroup = &request.regroup_group_id;
        let respond = |result, count| ServerPreconfiguredRegroupResponse {
            mc_service_id: request.mc_service_id.clone(),
            regroup_group_id: regroup.clone(),
            result,
            affiliated_member_count: count,
        };
        if &regroup.home_system() != from {
            return Ok(respond(
                FlowResult::failure(
                    FailureCause::NotAuthorized,
                    format!(
                        "a regroup group of '{}' cannot be formed by '{from}'",
                        regroup.home_system()
                    ),
                ),
                0,
            ));
        }
        if let Some(existing) = self.regroups.regroup(regroup).await? {
            return Ok(respond(FlowResult::Success, existing.members.len() as u64));
        }
        // Step 6: the groups this system hosts exist and are not regrouped already.
        let hosted: Vec<_> = request
            .mc_service_group_id_list
            .iter()
            .filter(|g| g.home_system() == self.system)
            .cloned()
            .collect();
        for group in &hosted {
            match self.gms.group_for_server(group).await? {
                None => {
                    return Ok(respond(
                        FlowResult::failure(
                            FailureCause::UnknownGroup,
                            format!("there is no group '{group}' in {}", self.system),
                        ),
                        0,
                    ));
                }
                Some(g) if g.configuration.regrouped_into.is_some() => {
                    return Ok(respond(
                        FlowResult::failure(
                            FailureCause::Other("already-regrouped".into()),
                            format!("group '{group}' is already regrouped"),
                        ),
                        0,
                    ));
                }
                Some(_) => {}
            }
        }
        let groups: Vec<_> = request.mc_service_group_id_list.iter().cloned().collect();
        let (mut effects, members) = self
            .affected_clients(
                regroup,
                &groups,
                request.mc_service,
                &request.preconfigured_group_id,
            )
            .await?;
        let record = RegroupRecord {
            regroup_group_id: regroup.clone(),
            primary_system: from.clone(),
            initiator: request.mc_service_id.clone(),
            preconfigured_group_id: request.preconfigured_group_id.clone(),
            mc_service_group_id_list: groups,
            mc_service: request.mc_service,
            state: RegroupState::Active,
            members: Vec::new(),
            request_return: None,
            response: None,
        };
        let mut claimed = hosted.clone();
        claimed.push(regroup.clone());
        effects.regroups.splice(
            0..0,
            [
                RegroupWrite::Put(Box::new(record)),
                RegroupWrite::Claim {
                    regroup: regroup.clone(),
                    groups: claimed.clone(),
                },
            ],
        );
        if !self.commit_regroup_effects(&effects).await? {
            let (code, detail) = self.already_regrouped(&claimed).await;
            return Ok(respond(
                FlowResult::failure(FailureCause::Other(code.into()), detail),
                0,
            ));
        }
        for group in &hosted {
            self.gms.set_regrouped(group, regroup, true).await?;
        }
        tracing::info!(%regroup, %from, members = members.len(), "took part in a partner's regroup");
        // Its members get the regroup group from this system's GMS: if the primary did not
        // provide it, the GMS asks for it (§10.2.7.3 step 1).
        match self.gms.request_configuration(regroup).await {
            Ok(true) => self.trace.record(crate::trace::Flow {
                entity: "MC service server",
                direction: crate::trace::Direction::Sent,
                peer: "GMS".into(),
                flow: "Group configuration request",
                correlation: regroup.to_string(),
                elements: serde_json::json!({"mc-service-group-id": regroup}),
            }),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%regroup, error = %e, "cannot request the regroup group's configuration")
            }
        }
        Ok(respond(FlowResult::Success, members.len() as u64))
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

    /// Cancellation at a partner.
    pub(crate) async fn host_cancel(
        &self,
        from: &SystemDomain,
        request: &PreconfiguredRegroupCancelRequest,
    ) -> Result<PreconfiguredRegroupCancelResponse> {
        let respond = |result| PreconfiguredRegroupCancelResponse {
            mc_service_id: request.mc_service_id.clone(),
            regroup_group_id: request.regroup_group_id.clone(),
            result,
        };
        match self.regroups.regroup(&request.regroup_group_id).await? {
            None => Ok(respond(FlowResult::Success)),
            Some(record) if &record.primary_system != from => Ok(respond(FlowResult::failure(
                FailureCause::NotAuthorized,
                format!(
                    "regroup '{}' was not made by '{from}'",
                    request.regroup_group_id
                ),
            ))),
            Some(record) => {
                self.end_regroup_here(&record, request, Vec::new()).await?;
                Ok(respond(FlowResult::Success))
            }
        }
    }

    /// Ends a regroup's part in this system: members de-affiliated from the regroup group
    /// and told, groups hosted here no longer regrouped, the record gone.
    async fn end_regroup_here(
        &self,
        record: &RegroupRecord,
        cancel: &PreconfiguredRegroupCancelRequest,
        undelivered: Vec<(SystemDomain, PartnerRequest)>,
    ) -> Result<()> {
        let mut effects = Effects::none();
        for member in &record.members {
            // The serving rows go here; the primary deletes the regroup group, and with it
            // its hosted affiliations and the GMS's view, in every system.
            self.regroup_affiliation(
                &member.mc_service_id,
                &member.client_id,
                record.mc_service,
                &record.regroup_group_id,
                Change::Leave,
                &mut effects,
            );
            if let Some(session) = self
                .sessions
                .sessions_of(&member.mc_service_id)
                .await?
                .into_iter()
                .find(|s| s.client_id == member.client_id)
            {
                effects.client_events.push((
                    Audience::Session(session.session_id),
                    ClientEvent::RegroupCancelled {
                        request: PreconfiguredRegroupCancelRequest {
                            mc_service_id: member.mc_service_id.clone(),
                            regroup_group_id: record.regroup_group_id.clone(),
                            mc_service: cancel.mc_service,
                        },
                    },
                ));
            }
        }
        for (partner, request) in undelivered {
            effects.send(PartnerAudience::Partner(partner), request);
        }
        effects
            .regroups
            .push(RegroupWrite::Delete(record.regroup_group_id.clone()));
        for group in &record.mc_service_group_id_list {
            if group.home_system() == self.system {
                self.gms
                    .set_regrouped(group, &record.regroup_group_id, false)
                    .await?;
            }
        }
        let committed = self.commits.commit(&effects).await?;
        self.wakers.wake(&committed.woken_sessions);
        if !effects.outbox.is_empty() {
            self.outbox.notify_one();
        }
        Ok(())
    }

    async fn regroup_record(&self, regroup: &McServiceGroupId) -> Result<RegroupRecord> {
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

    /// A client affiliated to regrouped groups: it joins each regroup in effect that one
    /// of them is part of (what users expect of a regroup in effect).
    pub(super) async fn join_regroups(
        &self,
        user: &McServiceId,
        clients: &[ClientId],
        service: McService,
        affiliated: &[McServiceGroupId],
    ) -> Result<()> {
        if affiliated.is_empty() {
            return Ok(());
        }
        let regroups = self.regroups.regroups().await?;
        if regroups.is_empty() {
            return Ok(());
        }
        let sessions = self.sessions.sessions_of(user).await?;
        let mut effects = Effects::none();
        for regroup in regroups
            .iter()
            .filter(|r| r.state == RegroupState::Active && r.mc_service == service)
        {
            let hit: Vec<_> = affiliated
                .iter()
                .filter(|g| regroup.mc_service_group_id_list.contains(g))
                .cloned()
                .collect();
            let Ok(hit) = NonEmpty::new(hit) else {
                continue;
            };
            for client in clients {
                if regroup
                    .members
                    .iter()
                    .any(|m| &m.mc_service_id == user && &m.client_id == client)
                {
                    continue;
                }
                let Some(session) = sessions.iter().find(|s| &s.client_id == client) else {
                    continue;
                };
                effects.regroups.push(RegroupWrite::Join {
                    regroup: regroup.regroup_group_id.clone(),
                    user: user.clone(),
                    client: client.clone(),
                });
                self.regroup_affiliation(
                    user,
                    client,
                    service,
                    &regroup.regroup_group_id,
                    Change::Join,
                    &mut effects,
                );
                effects.client_events.push((
                    Audience::Session(session.session_id.clone()),
                    ClientEvent::RegroupRequested {
                        request: ClientPreconfiguredRegroupRequest {
                            mc_service_id: user.clone(),
                            regroup_group_id: regroup.regroup_group_id.clone(),
                            preconfigured_group_id: regroup.preconfigured_group_id.clone(),
                            mc_service_group_id_list: hit.clone(),
                            mc_service: service,
                        },
                    },
                ));
            }
        }
        if !effects.regroups.is_empty() {
            self.commit_regroup_effects(&effects).await?;
        }
        Ok(())
    }

    /// Clients that left regrouped groups: a client no longer affiliated to any group of
    /// a regroup leaves it and is told (with `tell`; not at log-off).
    pub(super) async fn leave_regroups(
        &self,
        user: &McServiceId,
        clients: &[ClientId],
        tell: bool,
    ) -> Result<()> {
        let regroups = self.regroups.regroups().await?;
        if regroups.is_empty() {
            return Ok(());
        }
        let state = self.store.user_affiliations(user).await?;
        let sessions = self.sessions.sessions_of(user).await?;
        let mut effects = Effects::none();
        for regroup in &regroups {
            let mut staying: Vec<&ClientId> = regroup
                .members
                .iter()
                .filter(|m| &m.mc_service_id == user)
                .map(|m| &m.client_id)
                .collect();
            for client in clients {
                if !regroup
                    .members
                    .iter()
                    .any(|m| &m.mc_service_id == user && &m.client_id == client)
                {
                    continue;
                }
                let still = state.rows.iter().any(|r| {
                    &r.client == client
                        && r.mc_service == regroup.mc_service
                        && r.pending.is_none()
                        && regroup.mc_service_group_id_list.contains(&r.group)
                });
                if still && tell {
                    continue;
                }
                effects.regroups.push(RegroupWrite::Leave {
                    regroup: regroup.regroup_group_id.clone(),
                    user: user.clone(),
                    client: client.clone(),
                });
                staying.retain(|c| *c != client);
                // At log-off the client's affiliations, this one included, ended already.
                if tell {
                    let change = if staying.is_empty() {
                        Change::LeaveLast
                    } else {
                        Change::Leave
                    };
                    self.regroup_affiliation(
                        user,
                        client,
                        regroup.mc_service,
                        &regroup.regroup_group_id,
                        change,
                        &mut effects,
                    );
                }
                if let Some(session) = sessions
                    .iter()
                    .find(|s| &s.client_id == client)
                    .filter(|_| tell)
                {
                    effects.client_events.push((
                        Audience::Session(session.session_id.clone()),
                        ClientEvent::RegroupCancelled {
                            request: PreconfiguredRegroupCancelRequest {
                                mc_service_id: user.clone(),
                                regroup_group_id: regroup.regroup_group_id.clone(),
                                mc_service: regroup.mc_service,
                            },
                        },
                    ));
                }
            }
        }
        if !effects.regroups.is_empty() {
            self.commit_regroup_effects(&effects).await?;
        }
        Ok(())
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
