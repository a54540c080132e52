//! At the initiator's system: steps 2–5 and 12, the partners' answers combined, the
//! regroup abandoned when a partner homing a group does not take part, cancellation.

use std::collections::BTreeSet;

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
use super::verdict::{Verdict, abandoned_error, regroup_verdict};
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
        let partners = self.regroup_partners();
        let record = RegroupRecord {
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
            answers: Vec::new(),
            answers_due: Some(self.clock.now() + self.change_timeout),
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

        // Step 5: every partner authorised for regroup is asked, through the outbox; their
        // answers are combined as they arrive (`on_regroup_answer`). The client waits for
        // the combination up to a bound, and otherwise hears it as an event.
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
        if partners.is_empty() {
            return self.settle_regroup(record, Effects::none(), false).await?;
        }
        let wait = (!self.answer_wait.is_zero()).then(|| self.regroup_waits.register(&regroup_id));
        // The partners' answers are combined under the regroup's lock: it is held until
        // this system's own part is committed, so settling sees its members.
        let guard = self.regroup_locks.lock(&regroup_id).await;
        let mut effects = Effects::none();
        for partner in &partners {
            effects.send(
                PartnerAudience::Partner(partner.clone()),
                PartnerRequest::PreconfiguredRegroup(to_partner.clone()),
            );
        }
        if let Err(e) = self.commit_regroup_effects(&effects).await {
            self.regroup_waits.forget(&regroup_id);
            return Err(e);
        }
        // Steps 6–10 for this system's own clients, while the partners do theirs (off the
        // path of the answer). If this fails or the process stops here, settling does it.
        match self
            .affected_clients(
                &regroup_id,
                &groups,
                service,
                &request.preconfigured_group_id,
                &[],
            )
            .await
        {
            Ok((own, _)) => {
                if let Err(e) = self.commit_regroup_effects(&own).await {
                    tracing::warn!(regroup = %regroup_id, error = %e, "regroup: own part left to settling");
                }
            }
            Err(e) => {
                tracing::warn!(regroup = %regroup_id, error = %e, "regroup: own part left to settling");
            }
        }
        drop(guard);
        // Its deadline is watched from now.
        self.changes.notify_one();
        let Some(mut outcome) = wait else {
            return Ok(record);
        };
        let settled = tokio::select! {
            _ = self.clock.sleep(self.answer_wait) => {
                if self.regroup_waits.forget(&regroup_id) {
                    None
                } else {
                    (&mut outcome).await.ok()
                }
            }
            settled = &mut outcome => settled.ok(),
        };
        match settled {
            Some(outcome) => outcome,
            // Still forming: the answers come, or the deadline gives up on them.
            None => Ok(self.regroups.regroup(&regroup_id).await?.unwrap_or(record)),
        }
    }

    /// §10.15.3.3.1 step 11 arriving at the initiator's system: a partner's answer (or
    /// the final refusal of the request) is stored with the regroup, in the commit that
    /// completes the request's outbox entry. When every partner asked has answered, the
    /// regroup is settled: made, or abandoned if a partner homing a regrouped group did
    /// not take part.
    pub(crate) async fn on_regroup_answer(
        &self,
        outbox_id: i64,
        partner: &SystemDomain,
        request: &PartnerRequest,
        answered: &std::result::Result<PartnerResponse, LinkError>,
    ) -> Result<()> {
        let PartnerRequest::PreconfiguredRegroup(asked) = request else {
            return self.complete_outbox(outbox_id).await;
        };
        let regroup = &asked.regroup_group_id;
        let _guard = self.regroup_locks.lock(regroup).await;
        let mut effects = Effects {
            complete_outbox: Some(outbox_id),
            ..Effects::default()
        };
        let record = self.regroups.regroup(regroup).await?;
        let Some(mut record) = record.filter(|r| {
            r.state == RegroupState::Forming
                && r.primary_system == self.system
                && !r.answers.iter().any(|a| &a.system == partner)
        }) else {
            // Settled already (given up on, abandoned, cancelled) or a repeat: a partner
            // that took part late is told to cancel by the abandonment's own request.
            return self.complete_outbox(outbox_id).await;
        };
        let (result, count) = partner_result(answered);
        record.answers.push(SystemRegroupResult {
            system: partner.clone(),
            result,
            affiliated_member_count: count,
        });
        let asked_of = self.regroup_partners();
        if regroup_verdict(&self.system, &record, &asked_of, false) != Verdict::Waiting {
            // The outcome is the initiator's answer; nothing more to wait for.
            let _ = self.settle_regroup(record, effects, true).await?;
            return Ok(());
        }
        effects
            .service
            .regroups
            .push(RegroupWrite::Put(Box::new(record)));
        self.commit_regroup_effects(&effects).await?;
        Ok(())
    }

    /// A partner confirmed (or finally refused) a regroup's cancellation: the exchange
    /// ends, and a cancellation request still waiting hears it.
    pub(crate) async fn on_cancel_answer(
        &self,
        outbox_id: i64,
        partner: &SystemDomain,
        request: &PartnerRequest,
    ) -> Result<()> {
        self.complete_outbox(outbox_id).await?;
        if let PartnerRequest::PreconfiguredRegroupCancel(cancel) = request
            && let Some(waiter) = self
                .cancel_waits
                .take(&(cancel.regroup_group_id.clone(), partner.clone()))
        {
            let _ = waiter.send(());
        }
        Ok(())
    }

    /// Gives up on partners that did not answer forming regroups by their deadline.
    /// Returns when the next deadline falls due, if any.
    pub async fn expire_regroups(&self) -> Result<Option<time::OffsetDateTime>> {
        let now = self.clock.now();
        let mut next = None;
        for record in self.regroups.regroups().await? {
            if record.state != RegroupState::Forming || record.primary_system != self.system {
                continue;
            }
            let Some(due) = record.answers_due else {
                continue;
            };
            if due > now {
                next = Some(next.map_or(due, |n: time::OffsetDateTime| n.min(due)));
                continue;
            }
            let _guard = self.regroup_locks.lock(&record.regroup_group_id).await;
            let Some(mut current) = self
                .regroups
                .regroup(&record.regroup_group_id)
                .await?
                .filter(|r| r.state == RegroupState::Forming)
            else {
                continue;
            };
            for partner in self.regroup_partners() {
                if !current.answers.iter().any(|a| a.system == partner) {
                    current.answers.push(SystemRegroupResult {
                        system: partner,
                        result: FlowResult::failure(
                            FailureCause::Other("partner-unreachable".into()),
                            "no answer by the deadline",
                        ),
                        affiliated_member_count: 0,
                    });
                }
            }
            tracing::warn!(regroup = %current.regroup_group_id, "regroup: partners did not answer in time");
            let _ = self.settle_regroup(current, Effects::none(), true).await?;
        }
        Ok(next)
    }

    /// The partners a regroup is asked of: those authorised for regroup.
    fn regroup_partners(&self) -> Vec<SystemDomain> {
        self.partners
            .all()
            .filter(|p| p.outbound.contains(&Capability::Regroup))
            .map(|p| p.domain.clone())
            .collect()
    }

    /// Settles a forming regroup whose answers are in (or given up on), committing with
    /// `effects` (the completed outbox entry): steps 6–10 here and step 12 if every
    /// partner homing a group took part, else everything undone. The initiator learns
    /// the outcome from its waiting request, or (`late`) as an event.
    async fn settle_regroup(
        &self,
        mut record: RegroupRecord,
        mut effects: Effects,
        late: bool,
    ) -> Result<std::result::Result<RegroupRecord, Error>> {
        let regroup_id = record.regroup_group_id.clone();
        let waiter = if late {
            self.regroup_waits.take(&regroup_id)
        } else {
            None
        };
        let tell = |effects: &mut Effects, response: &PreconfiguredRegroupResponse| {
            if late && waiter.is_none() {
                effects.client_events.push((
                    Audience::User(record.initiator.clone()),
                    ClientEvent::RegroupCompleted {
                        response: response.clone(),
                    },
                ));
            }
        };
        if let Verdict::Abandon { cause, why } =
            regroup_verdict(&self.system, &record, &self.regroup_partners(), true)
        {
            // Nothing half-done: every partner asked is told to cancel (one that did not
            // answer may have taken part; a cancel of a regroup it never made is a no-op),
            // the groups are restored.
            let response = PreconfiguredRegroupResponse {
                mc_service_id: record.initiator.clone(),
                regroup_group_id: regroup_id.clone(),
                result: FlowResult::failure(
                    FailureCause::Other(cause.as_str().into()),
                    why.clone(),
                ),
                systems: record.answers.clone(),
            };
            tell(&mut effects, &response);
            let home_groups: Vec<_> = record
                .mc_service_group_id_list
                .iter()
                .filter(|g| g.home_system() == self.system)
                .cloned()
                .collect();
            self.undo_regroup(&record, &home_groups, &self.regroup_partners(), effects)
                .await?;
            tracing::warn!(regroup = %regroup_id, %cause, why, "preconfigured regroup abandoned");
            let (kind, code) = abandoned_error(&cause);
            let outcome = Err(reject(
                kind,
                code,
                format!("the regroup was not made and nothing was changed: {why}"),
            ));
            return Ok(match waiter {
                Some(waiter) => {
                    let _ = waiter.send(outcome);
                    Err(reject(kind, code, "abandoned".into()))
                }
                None => outcome,
            });
        }
        // Steps 6–10 for this system's own clients: done when the partners were asked;
        // here for those that affiliated to a regrouped group since (and all of them
        // when there was no partner to ask).
        let (mut own, joined) = self
            .affected_clients(
                &regroup_id,
                &record.mc_service_group_id_list,
                record.mc_service,
                &record.preconfigured_group_id,
                &record.members,
            )
            .await?;
        let mut members = std::mem::take(&mut record.members);
        members.extend(joined);
        let mut systems = vec![SystemRegroupResult {
            system: self.system.clone(),
            result: FlowResult::Success,
            affiliated_member_count: members.len() as u64,
        }];
        systems.extend(std::mem::take(&mut record.answers));
        record.state = RegroupState::Active;
        record.answers_due = None;
        let response = PreconfiguredRegroupResponse {
            mc_service_id: record.initiator.clone(),
            regroup_group_id: regroup_id.clone(),
            result: FlowResult::Success,
            systems,
        };
        record.response = Some(response.clone());
        tell(&mut own, &response);
        own.service
            .regroups
            .insert(0, RegroupWrite::Put(Box::new(record.clone())));
        own.complete_outbox = effects.complete_outbox.take();
        own.client_events.append(&mut effects.client_events);
        self.commit_regroup_effects(&own).await?;
        record.members = members;
        tracing::info!(regroup = %regroup_id, "preconfigured regroup in effect");
        Ok(match waiter {
            Some(waiter) => {
                let _ = waiter.send(Ok(record.clone()));
                Ok(record)
            }
            None => Ok(record),
        })
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

    /// Undoes a regroup being formed: partners that took part cancel (durably), this
    /// system's members leave and are told, the groups defined here are no longer
    /// regrouped, the regroup group and record go.
    pub(super) async fn undo_regroup(
        &self,
        record: &RegroupRecord,
        home_groups: &[McServiceGroupId],
        partners: &[SystemDomain],
        mut effects: Effects,
    ) -> Result<()> {
        self.members_leave(record, record.mc_service, &mut effects)
            .await?;
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
            .service
            .regroups
            .push(RegroupWrite::Delete(record.regroup_group_id.clone()));
        let committed = self.commits.commit(&effects).await?;
        self.wakers.wake(&committed.woken_sessions);
        self.outbox.committed(&committed);
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
        // Every partner is told through the outbox, in the commit that ends it here.
        let undelivered: Vec<_> = self
            .regroup_partners()
            .into_iter()
            .map(|partner| {
                (
                    partner,
                    PartnerRequest::PreconfiguredRegroupCancel(cancel.clone()),
                )
            })
            .collect();
        // The client waits, up to the bound, for the partners to confirm; the cancellation
        // stands either way (the outbox delivers it).
        let keys: Vec<_> = undelivered
            .iter()
            .map(|(partner, _)| (regroup.clone(), partner.clone()))
            .collect();
        let waits = if self.answer_wait.is_zero() {
            Vec::new()
        } else {
            self.cancel_waits.register_all(&keys)
        };
        if let Err(e) = self
            .end_regroup_here(&record, &cancel, undelivered, None)
            .await
        {
            self.cancel_waits.forget_all(&keys);
            return Err(e);
        }
        self.gms.delete_regroup_group(regroup).await?;
        tracing::info!(%regroup, by = %requester.mc_service_id, "preconfigured regroup cancelled");
        let mut waited = self.clock.sleep(self.answer_wait);
        for (key, mut confirmed) in waits {
            tokio::select! {
                _ = &mut waited => {
                    self.cancel_waits.forget(&key);
                }
                _ = &mut confirmed => {}
            }
        }
        Ok(PreconfiguredRegroupCancelResponse {
            mc_service_id: requester.mc_service_id.clone(),
            regroup_group_id: regroup.clone(),
            result: FlowResult::Success,
        })
    }

    /// At start: regroups a crash left half-formed by an earlier version (with no answer
    /// deadline) are undone; the others are settled by their partners' answers, which the
    /// outbox still delivers, or at their deadline.
    pub async fn undo_unfinished_regroups(&self) -> Result<usize> {
        let mut undone = 0;
        for record in self.regroups.regroups().await? {
            if record.state == RegroupState::Forming
                && record.primary_system == self.system
                && record.answers_due.is_none()
            {
                let home: Vec<_> = record
                    .mc_service_group_id_list
                    .iter()
                    .filter(|g| g.home_system() == self.system)
                    .cloned()
                    .collect();
                self.undo_regroup(&record, &home, &self.regroup_partners(), Effects::none())
                    .await?;
                undone += 1;
            }
        }
        Ok(undone)
    }
}

/// A partner's part from its answer, or from the refusal of the request.
fn partner_result(answered: &std::result::Result<PartnerResponse, LinkError>) -> (FlowResult, u64) {
    match answered {
        Ok(PartnerResponse::PreconfiguredRegroup(r)) => {
            (r.result.clone(), r.affiliated_member_count)
        }
        Ok(_) => (
            FlowResult::failure(FailureCause::InvalidRequest, "answered with another flow"),
            0,
        ),
        Err(LinkError::Unreachable { message, .. }) => (
            FlowResult::failure(
                FailureCause::Other("partner-unreachable".into()),
                message.clone(),
            ),
            0,
        ),
        Err(LinkError::Refused { message, .. }) => (
            FlowResult::failure(FailureCause::NotAuthorized, message.clone()),
            0,
        ),
    }
}
