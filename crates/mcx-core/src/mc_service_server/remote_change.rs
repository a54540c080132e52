//! Remote change of affiliation (TS 23.280 §10.8.5): an authorised user changes other
//! users' affiliations.
//!
//! - **Mandatory mode** (§10.8.5.1.1, §10.8.5.2.1): the server checks the requester's
//!   permission and each target's authorisation and N2, makes the change for every
//!   logged-on client of the target (asking the partner hosting a partner group with an
//!   affiliation change request), updates the GMS, tells the target's clients (step 7a)
//!   and answers the requester; the targets' confirmations (7b) are forwarded to the
//!   requester as they come.
//! - **Negotiated mode** (§10.8.5.1.2): the target's clients are asked; the first answer
//!   of a target decides for it; acceptance runs the ordinary (de-)affiliation procedures
//!   for the answering client, partner systems included; a target that does not answer
//!   before the deadline is given up (NOTE 1). The requester gets the response when every
//!   target has answered or timed out (NOTE 3).
//!
//! The change is a stored record, so it survives restarts and its deadline is honoured by
//! [`McServiceServer::expire_changes`].

use mcx_model::api::{
    AffiliationChangeRecord, AffiliationChangeState, ChangeAnswer, ChangeDecision, TargetProgress,
    TargetState,
};
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::*;
use mcx_model::profile::Permission;
use mcx_model::{ClientId, McServiceGroupId, McServiceId};

use super::McServiceServer;
use super::affiliation::Via;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::identity::Requester;
use crate::ports::{Audience, ChangeRecordWrite, Effects, StoredChange};

fn groups_for(
    request: &GroupAffiliationChangeRequest,
    action: AffiliationChangeAction,
) -> Vec<McServiceGroupId> {
    request
        .mc_service_group_id_list
        .iter()
        .filter(|c| c.action == action)
        .map(|c| c.mc_service_group_id.clone())
        .collect()
}

fn target_statuses(
    target: &McServiceId,
    statuses: Vec<GroupAffiliationStatus>,
) -> impl Iterator<Item = TargetAffiliationStatus> + '_ {
    statuses.into_iter().map(move |s| TargetAffiliationStatus {
        mc_service_id: target.clone(),
        mc_service_group_id: s.mc_service_group_id,
        status: s.status,
        cause: s.cause,
    })
}

impl McServiceServer {
    /// A mandatory change that makes `target`'s affiliations for `service` exactly
    /// `groups` (the complete-set form a SIP PUBLISH carries, TS 24.379 §9.2.1.4):
    /// groups listed and not held are affiliated, groups held and not listed are
    /// de-affiliated. `None` when the target already holds exactly those groups.
    pub async fn request_change_to_set(
        &self,
        requester: &Requester,
        target: &McServiceId,
        groups: &[McServiceGroupId],
        service: mcx_model::McService,
    ) -> Result<Option<AffiliationChangeRecord>> {
        // The permission first: nothing about the target is read for a requester who
        // may not change it.
        requester.require(
            Permission::AffiliationChangeMandatory,
            "change other users' affiliations in this mode",
        )?;
        let held: Vec<McServiceGroupId> = if target.domain() == self.system {
            let mut held: Vec<_> = self
                .store
                .user_affiliations(target)
                .await?
                .rows
                .into_iter()
                .filter(|row| row.mc_service == service)
                .map(|row| row.group)
                .collect();
            held.sort();
            held.dedup();
            held
        } else {
            // Another system's user: only additions can be named (step 2 refuses them
            // as not served here, with the cause).
            Vec::new()
        };
        let changes: Vec<GroupAffiliationChange> =
            groups
                .iter()
                .filter(|g| !held.contains(g))
                .map(|g| GroupAffiliationChange {
                    mc_service_group_id: g.clone(),
                    action: AffiliationChangeAction::Affiliate,
                })
                .chain(held.iter().filter(|g| !groups.contains(g)).map(|g| {
                    GroupAffiliationChange {
                        mc_service_group_id: g.clone(),
                        action: AffiliationChangeAction::Deaffiliate,
                    }
                }))
                .collect();
        let Ok(changes) = mcx_model::NonEmpty::new(changes) else {
            return Ok(None);
        };
        let request = GroupAffiliationChangeRequest {
            mc_service_id: requester.mc_service_id.clone(),
            mc_service_id_list: mcx_model::NonEmpty::one(target.clone()),
            mc_service_group_id_list: changes,
            change_request_type: ChangeRequestType::Mandatory,
            mc_service: service,
            generation: None,
        };
        self.request_change(requester, request).await.map(Some)
    }

    /// Step 1–2 (and the rest, in mandatory mode): an authorised user's change request.
    pub async fn request_change(
        &self,
        requester: &Requester,
        request: GroupAffiliationChangeRequest,
    ) -> Result<AffiliationChangeRecord> {
        if requester.mc_service_id != request.mc_service_id {
            return Err(Error::refused(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "the request names {} as originator, but {} is logged on",
                    request.mc_service_id, requester.mc_service_id
                ),
            ));
        }
        let mode = request.change_request_type;
        let permission = match mode {
            ChangeRequestType::Mandatory => Permission::AffiliationChangeMandatory,
            ChangeRequestType::Negotiated => Permission::AffiliationChangeNegotiated,
        };
        requester.require(permission, "change other users' affiliations in this mode")?;
        let limits = self.gms.limits();
        limits.list("mc-service-id-list", request.mc_service_id_list.len())?;
        limits.list(
            "mc-service-group-id-list",
            request.mc_service_group_id_list.len(),
        )?;
        let change_id = self.entropy.uuid_v7(self.clock.now()).to_string();
        let mut targets = Vec::new();
        let mut results = Vec::new();
        let mut effects = Effects::none();
        let all_groups: Vec<McServiceGroupId> = request
            .mc_service_group_id_list
            .iter()
            .map(|c| c.mc_service_group_id.clone())
            .collect();
        for target in request.mc_service_id_list.iter() {
            // Step 2: the target is a user of this system, authorised, and logged on.
            let refusal = if target.domain() != self.system {
                Some(AffiliationCause::UserNotServedHere)
            } else {
                match self.users.user(target).await? {
                    None => Some(AffiliationCause::NotAuthorized),
                    Some(_) if self.sessions.sessions_of(target).await?.is_empty() => {
                        Some(AffiliationCause::TargetNotLoggedOn)
                    }
                    Some(_) => None,
                }
            };
            if let Some(cause) = refusal {
                targets.push(TargetProgress {
                    mc_service_id: target.clone(),
                    state: TargetState::Refused,
                    reason: None,
                });
                results.extend(all_groups.iter().map(|g| TargetAffiliationStatus {
                    mc_service_id: target.clone(),
                    mc_service_group_id: g.clone(),
                    status: AffiliationStatus::NotAffiliated,
                    cause: Some(cause.clone()),
                }));
                continue;
            }
            let sessions = self.sessions.sessions_of(target).await?;
            let clients: Vec<ClientId> = sessions.iter().map(|s| s.client_id.clone()).collect();
            // What reaches the target: in mandatory mode what was changed (steps 3–6, and
            // 3–9 for partner groups), in negotiated mode what step 2 allows to ask for.
            let (told, refusals) = if mode == ChangeRequestType::Mandatory {
                let statuses = self
                    .apply_change(
                        target,
                        &clients,
                        &request,
                        Via::Remote(&request.mc_service_id),
                    )
                    .await?;
                let made = request
                    .mc_service_group_id_list
                    .iter()
                    .filter(|c| {
                        statuses.iter().any(|s| {
                            s.mc_service_group_id == c.mc_service_group_id && s.cause.is_none()
                        })
                    })
                    .cloned()
                    .collect::<Vec<_>>();
                results.extend(statuses.iter().cloned());
                let refusals: Vec<_> = statuses.into_iter().filter(|s| s.cause.is_some()).collect();
                (made, refusals)
            } else {
                let (allowed, refusals) = self.askable(target, &clients, &request).await?;
                results.extend(refusals.iter().cloned());
                (allowed, refusals)
            };
            let Ok(told) = mcx_model::NonEmpty::new(told) else {
                // Nothing was changed (or nothing may be asked): the target hears nothing.
                targets.push(TargetProgress {
                    mc_service_id: target.clone(),
                    state: TargetState::Refused,
                    reason: Some(nothing_done(mode, &refusals)),
                });
                continue;
            };
            targets.push(TargetProgress {
                mc_service_id: target.clone(),
                state: if mode == ChangeRequestType::Mandatory {
                    TargetState::Applied
                } else {
                    TargetState::Asked
                },
                reason: None,
            });
            let to_target = GroupAffiliationChangeRequest {
                mc_service_group_id_list: told,
                ..request.clone()
            };
            // Step 7a (mandatory) / step 3 (negotiated): the target's clients are told.
            for session in sessions {
                effects.client_events.push((
                    Audience::Session(session.session_id),
                    ClientEvent::AffiliationChangeRequested {
                        change_id: change_id.clone(),
                        request: to_target.clone(),
                    },
                ));
            }
        }
        let pending = targets.iter().any(|t| t.state == TargetState::Asked);
        let mut record = AffiliationChangeRecord {
            change_id: change_id.clone(),
            state: if pending {
                AffiliationChangeState::Pending
            } else {
                AffiliationChangeState::Completed
            },
            request: request.clone(),
            targets,
            deadline: self.clock.now() + self.change_timeout,
            response: None,
        };
        if !pending {
            record.response = Some(self.response(&request, results));
        } else {
            // Results of refused targets are kept until the record completes.
            record.response = Some(self.response(&request, results));
        }
        effects.service.change_record = Some(ChangeRecordWrite {
            record: record.clone(),
            expected_version: None,
            requester_session: Some(requester.session_id.clone()),
        });
        let committed = self.commits.commit(&effects).await?;
        self.wakers.wake(&committed.woken_sessions);
        if pending {
            self.changes.notify_one();
        }
        tracing::info!(change = %change_id, requester = %requester.mc_service_id, ?mode, "remote change of affiliation requested");
        if pending {
            // The partial response is not the requester's yet.
            record.response = None;
        }
        Ok(record)
    }

    /// Step 2 of §10.8.5.1.2 for one target: which changes of the request the target may
    /// be asked for (user subscription, group policy, N2 for the affiliations together,
    /// a de-affiliation only from a group held), and the refusals of the rest.
    async fn askable(
        &self,
        target: &McServiceId,
        clients: &[ClientId],
        request: &GroupAffiliationChangeRequest,
    ) -> Result<(Vec<GroupAffiliationChange>, Vec<TargetAffiliationStatus>)> {
        let service = request.mc_service;
        let Some(user) = self.users.user(target).await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let state = self.store.user_affiliations(target).await?;
        let holds = |group: &McServiceGroupId| {
            state
                .rows
                .iter()
                .any(|r| r.mc_service == service && &r.group == group && r.pending.is_none())
        };
        let mut causes: Vec<(McServiceGroupId, AffiliationCause)> = Vec::new();
        let mut affiliate = Vec::new();
        for change in request.mc_service_group_id_list.iter() {
            let group = &change.mc_service_group_id;
            match change.action {
                AffiliationChangeAction::Affiliate => {
                    match self
                        .affiliation_refusal(&user.profile, service, group)
                        .await?
                    {
                        Some(cause) => causes.push((group.clone(), cause)),
                        None => affiliate.push(group.clone()),
                    }
                }
                AffiliationChangeAction::Deaffiliate if !holds(group) => {
                    causes.push((group.clone(), AffiliationCause::NotAffiliated));
                }
                AffiliationChangeAction::Deaffiliate => {}
            }
        }
        let n2 = user
            .profile
            .services
            .get(&service)
            .map_or(0, |p| p.max_affiliations_n2 as usize);
        let plan = super::plan_affiliation(
            &self.system,
            target,
            &state,
            clients,
            service,
            &affiliate,
            n2,
        );
        for (group, status) in plan.outcome {
            if let Some(cause) = status.cause {
                causes.push((group, cause));
            }
        }
        let allowed = request
            .mc_service_group_id_list
            .iter()
            .filter(|c| !causes.iter().any(|(g, _)| g == &c.mc_service_group_id))
            .cloned()
            .collect();
        let refusals = causes
            .into_iter()
            .map(|(group, cause)| TargetAffiliationStatus {
                mc_service_id: target.clone(),
                status: if holds(&group) {
                    AffiliationStatus::Affiliated
                } else {
                    AffiliationStatus::NotAffiliated
                },
                mc_service_group_id: group,
                cause: Some(cause),
            })
            .collect();
        Ok((allowed, refusals))
    }

    /// Makes the change for `clients` of `target`: affiliations first, then
    /// de-affiliations, partner hosts asked as `via` says.
    async fn apply_change(
        &self,
        target: &McServiceId,
        clients: &[ClientId],
        request: &GroupAffiliationChangeRequest,
        via: Via<'_>,
    ) -> Result<Vec<TargetAffiliationStatus>> {
        let service = request.mc_service;
        let mut out = Vec::new();
        let to_affiliate = groups_for(request, AffiliationChangeAction::Affiliate);
        if !to_affiliate.is_empty() {
            let Some(user) = self.users.user(target).await? else {
                return Ok(Vec::new());
            };
            let statuses = self
                .affiliate_clients(&user.profile, clients, service, &to_affiliate, via)
                .await?;
            out.extend(target_statuses(target, statuses));
        }
        let to_leave = groups_for(request, AffiliationChangeAction::Deaffiliate);
        if !to_leave.is_empty() {
            let statuses = self
                .deaffiliate_clients(target, clients, service, &to_leave, via)
                .await?;
            out.extend(target_statuses(target, statuses));
        }
        Ok(out)
    }

    fn response(
        &self,
        request: &GroupAffiliationChangeRequest,
        statuses: Vec<TargetAffiliationStatus>,
    ) -> GroupAffiliationChangeResponse {
        GroupAffiliationChangeResponse {
            mc_service_id: request.mc_service_id.clone(),
            mc_service_id_list: request.mc_service_id_list.clone(),
            mc_service_group_id_list: request.mc_service_group_id_list.clone(),
            affiliation_status_per_mc_service_group_id: statuses,
            mc_service: request.mc_service,
        }
    }

    /// A remote change, to its requester or one of its targets.
    pub async fn change(
        &self,
        requester: &Requester,
        change_id: &str,
    ) -> Result<AffiliationChangeRecord> {
        let stored = self.stored_change(change_id).await?;
        let record = stored.record;
        let involved = record.request.mc_service_id == requester.mc_service_id
            || record
                .targets
                .iter()
                .any(|t| t.mc_service_id == requester.mc_service_id)
            || requester.profile.may(Permission::AffiliationMonitoring);
        if !involved {
            return Err(Error::refused(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "{} is neither the requester nor a target of change {change_id}",
                    requester.mc_service_id
                ),
            ));
        }
        Ok(public(record))
    }

    async fn stored_change(&self, change_id: &str) -> Result<StoredChange> {
        self.affiliations.change(change_id).await?.ok_or_else(|| {
            Error::refused(
                ErrorKind::NotFound,
                codes::CHANGE_NOT_FOUND,
                format!("there is no remote change '{change_id}'"),
            )
        })
    }

    /// A target client's answer: step 5 (negotiated: accept or reject) or step 7b
    /// (mandatory: acknowledge).
    pub async fn answer_change(
        &self,
        requester: &Requester,
        change_id: &str,
        answer: ChangeAnswer,
    ) -> Result<AffiliationChangeRecord> {
        for _ in 0..16 {
            let stored = self.stored_change(change_id).await?;
            let mut record = stored.record.clone();
            let me = &requester.mc_service_id;
            let Some(index) = record.targets.iter().position(|t| &t.mc_service_id == me) else {
                return Err(Error::refused(
                    ErrorKind::Forbidden,
                    codes::NOT_AUTHORIZED,
                    format!("change {change_id} is not addressed to {me}"),
                ));
            };
            let mode = record.request.change_request_type;
            let state = record.targets[index].state;
            let mut effects = Effects::none();
            let mut new_statuses = Vec::new();
            let Some(next) = target_transition(mode, answer.decision, state) else {
                return Err(Error::refused(
                    ErrorKind::Conflict,
                    codes::CHANGE_ALREADY_ANSWERED,
                    format!(
                        "change {change_id} cannot take '{}' from {me} now: its mode is {} and {me} is {}",
                        code_of(answer.decision),
                        code_of(mode),
                        code_of(state),
                    ),
                ));
            };
            match next {
                TargetState::Acknowledged => effects.client_events.push((
                    Audience::Session(stored.requester_session.clone()),
                    ClientEvent::AffiliationChangeAcknowledged {
                        change_id: change_id.to_string(),
                        mc_service_id: me.clone(),
                    },
                )),
                // Step 5: acceptance runs the ordinary procedures, partner systems
                // included, for the client that accepted (NOTE 2).
                TargetState::Accepted => {
                    if let Some(asked) = asked_of(&record, me) {
                        new_statuses = self
                            .apply_change(
                                me,
                                std::slice::from_ref(&requester.client_id),
                                &asked,
                                Via::Own,
                            )
                            .await?;
                    }
                }
                TargetState::Rejected => {
                    if let Some(asked) = asked_of(&record, me) {
                        let held = self.store.user_affiliations(me).await?;
                        new_statuses =
                            unchanged(&held, me, &asked, AffiliationCause::TargetRejected);
                    }
                }
                _ => {}
            }
            record.targets[index].state = next;
            record.targets[index].reason = answer.reason.clone();
            if let Some(response) = record.response.as_mut() {
                response
                    .affiliation_status_per_mc_service_group_id
                    .extend(new_statuses);
            }
            complete_if_done(&mut record, &stored.requester_session, &mut effects);
            effects.service.change_record = Some(ChangeRecordWrite {
                record: record.clone(),
                expected_version: Some(stored.version),
                requester_session: None,
            });
            let committed = self.commits.commit(&effects).await?;
            if !committed.conflict {
                self.wakers.wake(&committed.woken_sessions);
                tracing::info!(change = %change_id, target = %me, ?next, "remote change answered");
                return Ok(public(record));
            }
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("change {change_id} kept changing concurrently; retry"),
        ))
    }

    /// NOTE 1: targets that did not answer in time are given up; their changes are not
    /// made. Returns when the next pending change falls due, if any.
    pub async fn expire_changes(&self) -> Result<Option<time::OffsetDateTime>> {
        let (due, next) = self.affiliations.due_changes(self.clock.now()).await?;
        for change_id in due {
            let Some(stored) = self.affiliations.change(&change_id).await? else {
                continue;
            };
            let mut record = stored.record.clone();
            let mut statuses = Vec::new();
            for target in record
                .targets
                .iter_mut()
                .filter(|t| t.state == TargetState::Asked)
            {
                target.state = TargetState::NoAnswer;
                if let Some(asked) = asked_of(&stored.record, &target.mc_service_id) {
                    let held = self.store.user_affiliations(&target.mc_service_id).await?;
                    statuses.extend(unchanged(
                        &held,
                        &target.mc_service_id,
                        &asked,
                        AffiliationCause::TargetNoAnswer,
                    ));
                }
            }
            if let Some(response) = record.response.as_mut() {
                response
                    .affiliation_status_per_mc_service_group_id
                    .extend(statuses);
            }
            let mut effects = Effects::none();
            complete_if_done(&mut record, &stored.requester_session, &mut effects);
            effects.service.change_record = Some(ChangeRecordWrite {
                record,
                expected_version: Some(stored.version),
                requester_session: None,
            });
            let committed = self.commits.commit(&effects).await?;
            self.wakers.wake(&committed.woken_sessions);
            tracing::info!(change = %change_id, "remote change timed out waiting for targets");
        }
        Ok(next)
    }
}

/// The part of a negotiated change a target was asked for: the request without the
/// groups refused for that target at step 2 (their refusals are in the response already).
fn asked_of(
    record: &AffiliationChangeRecord,
    target: &McServiceId,
) -> Option<GroupAffiliationChangeRequest> {
    let refused: Vec<&McServiceGroupId> = record
        .response
        .iter()
        .flat_map(|r| r.affiliation_status_per_mc_service_group_id.iter())
        .filter(|s| &s.mc_service_id == target && s.cause.is_some())
        .map(|s| &s.mc_service_group_id)
        .collect();
    let asked: Vec<_> = record
        .request
        .mc_service_group_id_list
        .iter()
        .filter(|c| !refused.contains(&&c.mc_service_group_id))
        .cloned()
        .collect();
    Some(GroupAffiliationChangeRequest {
        mc_service_group_id_list: mcx_model::NonEmpty::new(asked).ok()?,
        ..record.request.clone()
    })
}

/// Why a target was not told anything, for its progress record.
fn nothing_done(mode: ChangeRequestType, refusals: &[TargetAffiliationStatus]) -> String {
    let causes: Vec<String> = refusals
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s.mc_service_group_id,
                s.cause.as_ref().map_or("refused", |c| c.as_str())
            )
        })
        .collect();
    let what = match mode {
        ChangeRequestType::Mandatory => "nothing was changed",
        ChangeRequestType::Negotiated => "nothing could be asked",
    };
    format!("{what} ({})", causes.join(", "))
}

/// The record as shown to users: the response only once final.
fn public(mut record: AffiliationChangeRecord) -> AffiliationChangeRecord {
    if record.state != AffiliationChangeState::Completed {
        record.response = None;
    }
    record
}

/// Completes the record once no target is still asked: step 6, the response to the
/// requester.
fn complete_if_done(
    record: &mut AffiliationChangeRecord,
    requester_session: &str,
    effects: &mut Effects,
) {
    if record.state == AffiliationChangeState::Completed
        || record.targets.iter().any(|t| t.state == TargetState::Asked)
    {
        return;
    }
    record.state = AffiliationChangeState::Completed;
    if let Some(response) = &record.response {
        effects.client_events.push((
            Audience::Session(requester_session.to_string()),
            ClientEvent::AffiliationChangeCompleted {
                change_id: record.change_id.clone(),
                response: response.clone(),
            },
        ));
    }
}

/// How a target's answer moves its part of a change: a mandatory change is
/// acknowledged once applied (step 7b); a negotiated one is accepted or rejected while
/// asked (steps 4–5). `None`: the answer does not fit the change's mode or the target's
/// state (answered already, or given up on).
fn target_transition(
    mode: ChangeRequestType,
    decision: ChangeDecision,
    state: TargetState,
) -> Option<TargetState> {
    match (mode, decision, state) {
        (ChangeRequestType::Mandatory, ChangeDecision::Acknowledge, TargetState::Applied) => {
            Some(TargetState::Acknowledged)
        }
        (ChangeRequestType::Negotiated, ChangeDecision::Accept, TargetState::Asked) => {
            Some(TargetState::Accepted)
        }
        (ChangeRequestType::Negotiated, ChangeDecision::Reject, TargetState::Asked) => {
            Some(TargetState::Rejected)
        }
        _ => None,
    }
}

/// The statuses of a target whose change was not made: its current state per group,
/// from the target's affiliations as read.
fn unchanged(
    state: &crate::ports::UserAffiliationState,
    target: &McServiceId,
    request: &GroupAffiliationChangeRequest,
    cause: AffiliationCause,
) -> Vec<TargetAffiliationStatus> {
    request
        .mc_service_group_id_list
        .iter()
        .map(|c| {
            let held = state.rows.iter().any(|r| {
                r.mc_service == request.mc_service
                    && r.group == c.mc_service_group_id
                    && r.pending.is_none()
            });
            TargetAffiliationStatus {
                mc_service_id: target.clone(),
                mc_service_group_id: c.mc_service_group_id.clone(),
                status: if held {
                    AffiliationStatus::Affiliated
                } else {
                    AffiliationStatus::NotAffiliated
                },
                cause: Some(cause.clone()),
            }
        })
        .collect()
}

/// A code enum's wire spelling, for a sentence.
fn code_of(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_answers_once_and_only_as_its_mode_allows() {
        use ChangeDecision::*;
        use ChangeRequestType::*;
        use TargetState::*;
        assert_eq!(target_transition(Negotiated, Accept, Asked), Some(Accepted));
        assert_eq!(target_transition(Negotiated, Reject, Asked), Some(Rejected));
        assert_eq!(
            target_transition(Mandatory, Acknowledge, Applied),
            Some(Acknowledged)
        );
        // A second answer, an answer after the deadline, or one of the other mode.
        assert_eq!(target_transition(Negotiated, Reject, Accepted), None);
        assert_eq!(target_transition(Negotiated, Accept, NoAnswer), None);
        assert_eq!(target_transition(Mandatory, Accept, Applied), None);
        assert_eq!(target_transition(Negotiated, Acknowledge, Asked), None);
        assert_eq!(
            target_transition(Mandatory, Acknowledge, Acknowledged),
            None
        );
    }
}
