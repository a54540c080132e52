//! Affiliation and de-affiliation (TS 23.280 §10.8.3, §10.8.4), for groups defined here
//! and groups defined in partner systems.
//!
//! The user's serving server records which of the user's clients hold each affiliation;
//! the user is affiliated to a group while any of them does. It checks the user's profile
//! and N2 for every group, and the group policy for groups defined here; it asks the
//! partner server hosting a partner group (server to server) only when the user as a whole
//! affiliates or de-affiliates. N2 counts distinct groups of one MC service across all the
//! user's clients and all systems; a partner group counts from the moment it is requested
//! (a pending reservation), so concurrent requests can never exceed it.
//!
//! The server hosting a group records the users affiliated to it (served here or by a
//! partner) and updates its GMS with their status in the same commit.

use std::collections::{BTreeMap, BTreeSet};

use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::*;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::interconnection::Capability;
use mcx_model::profile::UserProfile;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};

use super::McServiceServer;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::identity::Requester;
use crate::ports::{
    AffiliationWrite, Audience, ClientAffiliation, Effects, GmsStatusUpdate, LinkError,
    PartnerAudience, SessionRecord, UserAffiliationState,
};

/// How a partner host is asked to affiliate a user.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via<'a> {
    /// The user's own request: MC service group affiliation request (server–server).
    Own,
    /// An authorised user's mandatory remote change: MC service group affiliation change
    /// request to the group's host (§10.8.5.2.1 step 3).
    Remote(&'a McServiceId),
}

fn status(
    group: &McServiceGroupId,
    status: AffiliationStatus,
    cause: Option<AffiliationCause>,
) -> GroupAffiliationStatus {
    GroupAffiliationStatus {
        mc_service_group_id: group.clone(),
        status,
        cause,
    }
}

fn refused(group: &McServiceGroupId, cause: AffiliationCause) -> GroupAffiliationStatus {
    status(group, AffiliationStatus::NotAffiliated, Some(cause))
}

/// The groups of a list, without repeats, in first-seen order.
fn distinct(groups: &[McServiceGroupId]) -> Vec<McServiceGroupId> {
    let mut seen = BTreeSet::new();
    groups
        .iter()
        .filter(|g| seen.insert((*g).clone()))
        .cloned()
        .collect()
}

/// What affiliating `clients` of `user` to `candidates` does, given the rows the user
/// holds: the N2 check and the writes of step 4 (a pending reservation for a partner
/// group). Pure, so it is the same whatever the transport and measurable on its own.
#[derive(Debug, Clone, Default)]
pub struct AffiliationPlan {
    /// Rows to write, in one commit with the GMS update.
    pub writes: Vec<AffiliationWrite>,
    /// The status of each candidate decided here (groups defined here, refusals).
    pub outcome: BTreeMap<McServiceGroupId, GroupAffiliationStatus>,
    /// Partner groups reserved: their hosts are asked next.
    pub pending: Vec<McServiceGroupId>,
    /// Groups defined here the user now holds: the GMS learns them (step 5b).
    pub newly_local: Vec<McServiceGroupId>,
}

/// A client's affiliation row at the serving server.
fn served(
    user: &McServiceId,
    service: McService,
    group: &McServiceGroupId,
    client: &ClientId,
    pending: Option<u64>,
) -> AffiliationWrite {
    AffiliationWrite::Served {
        user: user.clone(),
        row: ClientAffiliation {
            mc_service: service,
            group: group.clone(),
            client: client.clone(),
            pending,
        },
    }
}

/// The group policy's refusal of an affiliation for `service`, if any (step 3).
fn policy_refusal(
    config: &mcx_model::group::GroupConfiguration,
    service: McService,
) -> Option<AffiliationCause> {
    if config.on_network_disabled {
        Some(AffiliationCause::GroupDisabled)
    } else if !config.supports(service) {
        Some(AffiliationCause::ServiceNotSupported)
    } else if config.preconfigured_group_use_only {
        Some(AffiliationCause::PreconfiguredGroupUseOnly)
    } else {
        None
    }
}

/// Plans an affiliation from the user's state as read; see [`AffiliationPlan`]. `n2` is
/// the user's limit for `service`. A partner group's reservation carries the generation
/// the plan's commit gives the user: only the answer to that request settles it.
pub fn plan_affiliation(
    system: &SystemDomain,
    user: &McServiceId,
    state: &UserAffiliationState,
    clients: &[ClientId],
    service: McService,
    candidates: &[McServiceGroupId],
    n2: usize,
) -> AffiliationPlan {
    let rows = &state.rows;
    let generation = state.generation + 1;
    let mut writes = Vec::new();
    let mut outcome = BTreeMap::new();
    let mut pending = Vec::new();
    let mut held: BTreeSet<&McServiceGroupId> = rows
        .iter()
        .filter(|r| r.mc_service == service)
        .map(|r| &r.group)
        .collect();
    let mut newly_local = Vec::new();
    for group in candidates {
        let held_rows: Vec<_> = rows
            .iter()
            .filter(|r| r.mc_service == service && &r.group == group)
            .collect();
        let missing: Vec<&ClientId> = clients
            .iter()
            .filter(|c| !held_rows.iter().any(|r| &r.client == *c))
            .collect();
        if !held_rows.is_empty() {
            if held_rows.iter().all(|r| r.pending.is_some()) {
                outcome.insert(group.clone(), refused(group, AffiliationCause::InProgress));
                continue;
            }
            // The user holds it already: the missing clients join, no N2 change.
            for client in missing {
                writes.push(served(user, service, group, client, None));
            }
            outcome.insert(
                group.clone(),
                status(group, AffiliationStatus::Affiliated, None),
            );
            continue;
        }
        if held.len() >= n2 {
            outcome.insert(
                group.clone(),
                refused(group, AffiliationCause::N2LimitReached),
            );
            continue;
        }
        held.insert(group);
        let is_local = group.home_system() == *system;
        for client in clients {
            writes.push(served(
                user,
                service,
                group,
                client,
                (!is_local).then_some(generation),
            ));
        }
        if is_local {
            writes.push(AffiliationWrite::Hosted {
                user: user.clone(),
                mc_service: service,
                group: group.clone(),
            });
            newly_local.push(group.clone());
            outcome.insert(
                group.clone(),
                status(group, AffiliationStatus::Affiliated, None),
            );
        } else {
            pending.push(group.clone());
        }
    }
    AffiliationPlan {
        writes,
        outcome,
        pending,
        newly_local,
    }
}

impl McServiceServer {
    /// Step 3 of §10.8.3.1 (and step 5 at a partner host) for a group defined here: the
    /// group is enabled, supports the service, may be used for calls, and lists the user.
    pub(super) async fn check_hosted_group(
        &self,
        user: &McServiceId,
        service: McService,
        group: &McServiceGroupId,
    ) -> Result<Option<AffiliationCause>> {
        // Steps 2a/2b: from the cache, or from the GMS with a subscription.
        let Some(policy) = self.policy.policy(group).await? else {
            return Ok(Some(AffiliationCause::UnknownGroup));
        };
        let config = &policy.configuration;
        if let Some(cause) = policy_refusal(config, service) {
            return Ok(Some(cause));
        }
        Ok(
            (!config.is_member(user) && !self.shared_with_users_system(group, user).await?)
                .then_some(AffiliationCause::NotAuthorized),
        )
    }

    /// Step 2 of §10.8.3.1 / §10.8.3.2 (and step 2 of §10.8.5.1) for one group: the
    /// user's subscription, and the group policy as this system holds it. For a group
    /// defined here that is the GMS's configuration; for a partner's group it is the copy
    /// this system's GMS stored after its local policy (§10.2.7.1): what the copy does
    /// not offer is refused here and never reaches the group's host.
    pub(super) async fn affiliation_refusal(
        &self,
        profile: &UserProfile,
        service: McService,
        group: &McServiceGroupId,
    ) -> Result<Option<AffiliationCause>> {
        let user = &profile.mc_service_id;
        if !profile.lists_group(service, group) {
            return Ok(Some(AffiliationCause::NotAuthorized));
        }
        if group.home_system() == self.system {
            return self.check_hosted_group(user, service, group).await;
        }
        if !self
            .partners
            .may_send(&group.home_system(), Capability::Affiliation)
        {
            return Ok(Some(AffiliationCause::PartnerRefused));
        }
        // No copy yet: the host decides (the copy is requested at log-on, §10.2.7.3).
        let Some(copy) = self.policy.policy(group).await? else {
            return Ok(None);
        };
        Ok(policy_refusal(&copy.configuration, service))
    }

    /// §10.8.3.1 / §10.8.3.2: the requester's client affiliates to groups.
    pub async fn affiliate(
        &self,
        requester: &Requester,
        request: GroupAffiliationRequest,
    ) -> Result<GroupAffiliationResponse> {
        self.require_self(requester, &request.mc_service_id, "affiliate")?;
        self.gms.limits().list(
            "mc-service-group-id-list",
            request.mc_service_group_id_list.len(),
        )?;
        let service = request.mc_service;
        let groups: Vec<_> = request.mc_service_group_id_list.iter().cloned().collect();
        let statuses = self
            .affiliate_clients(
                &requester.profile,
                std::slice::from_ref(&requester.client_id),
                service,
                &groups,
                Via::Own,
            )
            .await?;
        Ok(build_response(
            request.mc_service_id,
            service,
            &groups,
            statuses,
        ))
    }

    /// §10.8.4.2 / §10.8.4.3: the requester's client de-affiliates from groups.
    pub async fn deaffiliate(
        &self,
        requester: &Requester,
        request: GroupDeaffiliationRequest,
    ) -> Result<GroupDeaffiliationResponse> {
        self.require_self(requester, &request.mc_service_id, "de-affiliate")?;
        self.gms.limits().list(
            "mc-service-group-id-list",
            request.mc_service_group_id_list.len(),
        )?;
        let service = request.mc_service;
        let groups: Vec<_> = request.mc_service_group_id_list.iter().cloned().collect();
        let statuses = self
            .deaffiliate_clients(
                &requester.mc_service_id,
                std::slice::from_ref(&requester.client_id),
                service,
                &groups,
                Via::Own,
            )
            .await?;
        let response = build_response(request.mc_service_id, service, &groups, statuses);
        Ok(GroupDeaffiliationResponse {
            mc_service_id: response.mc_service_id,
            mc_service_group_id_list: response.mc_service_group_id_list,
            status_per_mc_service_group_id: response.status_per_mc_service_group_id,
            mc_service: response.mc_service,
        })
    }

    fn require_self(&self, requester: &Requester, user: &McServiceId, to_do: &str) -> Result<()> {
        if &requester.mc_service_id != user {
            return Err(Error::refused(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "{} may {to_do} only itself, not {user}: use a remote change of affiliation",
                    requester.mc_service_id
                ),
            ));
        }
        Ok(())
    }

    /// Affiliates `clients` of the user to `groups`: profile, policy and N2 checks,
    /// reservation, partner hosts asked in parallel (one request per partner), results
    /// merged per group. Returns one status per distinct group, in order.
    pub(super) async fn affiliate_clients(
        &self,
        profile: &UserProfile,
        clients: &[ClientId],
        service: McService,
        groups: &[McServiceGroupId],
        via: Via<'_>,
    ) -> Result<Vec<GroupAffiliationStatus>> {
        let user = &profile.mc_service_id;
        let groups = distinct(groups);
        let mut decided: BTreeMap<McServiceGroupId, GroupAffiliationStatus> = BTreeMap::new();
        let n2 = profile
            .services
            .get(&service)
            .map(|p| p.max_affiliations_n2);
        // Step 2 (and 3 for groups defined here): user subscription and group policy.
        for group in &groups {
            if let Some(cause) = self.affiliation_refusal(profile, service, group).await? {
                decided.insert(group.clone(), refused(group, cause));
            }
        }
        let candidates: Vec<_> = groups
            .iter()
            .filter(|g| !decided.contains_key(*g))
            .cloned()
            .collect();
        let n2 = n2.unwrap_or(0) as usize;

        // N2 check and step 4 (store), or a reservation for partner groups, atomically;
        // the hosts of reserved groups are asked through the outbox in the same commit
        // (step 3 of §10.8.3.2: one request per host), so a crash loses neither.
        let mut waits = Vec::new();
        let mut pending = Vec::new();
        let guard = self.user_locks.lock(user).await;
        for _ in 0..16 {
            let state = self.store.user_affiliations(user).await?;
            // The commit moves the user's generation one on: the requests carry it.
            let generation = state.generation + 1;
            let plan = plan_affiliation(
                &self.system,
                user,
                &state,
                clients,
                service,
                &candidates,
                n2,
            );
            let mut effects = Effects::none();
            effects.affiliations = plan.writes;
            if !plan.newly_local.is_empty() {
                // Step 5b: the GMS learns the affiliation, in the same commit.
                effects.gms_status.push(GmsStatusUpdate {
                    user: user.clone(),
                    mc_service: service,
                    statuses: plan
                        .newly_local
                        .iter()
                        .map(|g| (g.clone(), AffiliationStatus::Affiliated))
                        .collect(),
                });
            }
            for (host, list) in by_host(&plan.pending) {
                if let Some(request) = ask_host(via, user, list, service, generation) {
                    effects.send(PartnerAudience::Partner(host), request);
                }
            }
            // Registered before the commit: an answer cannot overtake the wait for it.
            let keys: Vec<_> = plan
                .pending
                .iter()
                .map(|g| (user.clone(), service, g.clone(), generation))
                .collect();
            waits = if self.answer_wait.is_zero() {
                Vec::new()
            } else {
                self.waiting.register_all(&keys)
            };
            let committed = self
                .store
                .commit_for_user(user, Some(state.generation), &effects)
                .await;
            if !matches!(committed, Ok(Some(_))) {
                self.waiting.forget_all(&keys);
            }
            if let Some(committed) = committed? {
                self.trace_gms_status(&effects);
                self.wakers.wake(&committed.woken_sessions);
                if !effects.outbox.is_empty() {
                    self.outbox.notify_one();
                }
                decided.extend(plan.outcome);
                pending = plan.pending;
                break;
            }
        }
        drop(guard);
        if decided.len() + pending.len() < groups.len() {
            return Err(Error::refused(
                ErrorKind::Unavailable,
                codes::STORAGE_FAILURE,
                format!("the affiliations of {user} kept changing concurrently; retry"),
            ));
        }

        // The client waits for the hosts' answers up to a bound; what is still open is
        // `affiliating`, and its final state reaches the client as an event.
        let mut answered: BTreeMap<McServiceGroupId, GroupAffiliationStatus> = BTreeMap::new();
        if !waits.is_empty() {
            let mut waited = self.clock.sleep(self.answer_wait);
            for (key, mut answer) in waits {
                let got = tokio::select! {
                    _ = &mut waited => {
                        // Given up: unless the answer is already being stored for this
                        // wait, it comes as an event instead.
                        if self.waiting.forget(&key) {
                            None
                        } else {
                            (&mut answer).await.ok()
                        }
                    }
                    got = &mut answer => got.ok(),
                };
                if let Some(status) = got {
                    answered.insert(key.2, status);
                }
            }
        }
        let freed = answered
            .values()
            .any(|a| a.status != AffiliationStatus::Affiliated);
        for group in &pending {
            let status = answered
                .remove(group)
                .unwrap_or_else(|| status(group, AffiliationStatus::Affiliating, None));
            decided.insert(group.clone(), status);
        }
        // A host's refusal freed a place that a reservation held while N2 was checked:
        // the groups refused for N2 are planned again, once, in the same request.
        let short: Vec<_> = groups
            .iter()
            .filter(|g| {
                decided
                    .get(*g)
                    .is_some_and(|s| s.cause == Some(AffiliationCause::N2LimitReached))
            })
            .cloned()
            .collect();
        if freed && !short.is_empty() {
            let again =
                Box::pin(self.affiliate_clients(profile, clients, service, &short, via)).await?;
            for status in again {
                decided.insert(status.mc_service_group_id.clone(), status);
            }
        }
        let statuses: Vec<_> = groups.iter().filter_map(|g| decided.remove(g)).collect();
        let affiliated: Vec<_> = statuses
            .iter()
            .filter(|s| s.status == AffiliationStatus::Affiliated)
            .filter(|s| !pending.contains(&s.mc_service_group_id))
            .map(|s| s.mc_service_group_id.clone())
            .collect();
        // A client affiliating to a regrouped group joins the regroup in effect (a
        // partner group when its host's answer is stored).
        self.join_regroups(user, clients, service, &affiliated)
            .await?;
        Ok(statuses)
    }

    /// §10.8.3.2 step 8: the serving server stores a host's answer to an affiliation
    /// request (or its final refusal) in the same commit that completes the request's
    /// outbox entry. Only the reservations the request made are settled: a row since
    /// removed, or reserved again by a newer request, is left as it is (the newer request
    /// is queued behind this one and its answer settles it). The clients whose
    /// affiliation changed are told; a request still waiting hears it in process.
    pub(crate) async fn on_host_affiliation_answer(
        &self,
        outbox_id: i64,
        request: &PartnerRequest,
        answered: &std::result::Result<PartnerResponse, LinkError>,
    ) -> Result<()> {
        let Some((user, service, groups, generation)) = asked_of_host(request) else {
            return self.complete_outbox(outbox_id).await;
        };
        let _guard = self.user_locks.lock(&user).await;
        for _ in 0..16 {
            let state = self.store.user_affiliations(&user).await?;
            let sessions = self.sessions.sessions_of(&user).await?;
            let mut effects = Effects {
                complete_outbox: Some(outbox_id),
                ..Effects::default()
            };
            let mut settled = Vec::new();
            let mut waiters = Vec::new();
            for group in &groups {
                let rows: Vec<_> = state
                    .rows
                    .iter()
                    .filter(|r| {
                        r.mc_service == service && &r.group == group && r.pending == generation
                    })
                    .collect();
                if rows.is_empty() || generation.is_none() {
                    continue;
                }
                let answer = status_from_host(&user, group, answered);
                // The request still waiting for this answer gets it; otherwise the
                // clients are told by an event stored with the answer.
                let key = (
                    user.clone(),
                    service,
                    group.clone(),
                    generation.unwrap_or_default(),
                );
                let waiter = self.waiting.take(&key);
                for row in &rows {
                    effects
                        .affiliations
                        .push(if answer.status == AffiliationStatus::Affiliated {
                            AffiliationWrite::ServedConfirmed {
                                user: user.clone(),
                                mc_service: service,
                                group: group.clone(),
                                client: row.client.clone(),
                            }
                        } else {
                            AffiliationWrite::ServedRemoved {
                                user: user.clone(),
                                mc_service: service,
                                group: group.clone(),
                                client: row.client.clone(),
                            }
                        });
                    for session in sessions
                        .iter()
                        .filter(|s| s.client_id == row.client && waiter.is_none())
                    {
                        effects.client_events.push((
                            Audience::Session(session.session_id.clone()),
                            ClientEvent::AffiliationStatusChanged {
                                mc_service: service,
                                status: answer.clone(),
                            },
                        ));
                    }
                }
                let clients: Vec<ClientId> = rows.iter().map(|r| r.client.clone()).collect();
                if let Some(waiter) = waiter {
                    waiters.push((waiter, answer.clone()));
                }
                settled.push((answer, clients));
            }
            // A waiter dropped here (the commit failed) reports `affiliating`; the
            // answer is handled again when the outbox resends, then with an event.
            let Some(committed) = self
                .store
                .commit_for_user(&user, Some(state.generation), &effects)
                .await?
            else {
                continue;
            };
            for (waiter, answer) in waiters {
                let _ = waiter.send(answer);
            }
            self.wakers.wake(&committed.woken_sessions);
            for (answer, clients) in settled {
                if answer.status == AffiliationStatus::Affiliated {
                    let group = answer.mc_service_group_id.clone();
                    self.join_regroups(&user, &clients, service, std::slice::from_ref(&group))
                        .await?;
                }
            }
            return Ok(());
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("the affiliations of {user} kept changing concurrently"),
        ))
    }

    pub(super) async fn complete_outbox(&self, outbox_id: i64) -> Result<()> {
        let effects = Effects {
            complete_outbox: Some(outbox_id),
            ..Effects::default()
        };
        self.commits.commit(&effects).await?;
        Ok(())
    }

    /// De-affiliates `clients` of the user from `groups`. A group the user stays
    /// affiliated to through another client is only released for these clients.
    pub(super) async fn deaffiliate_clients(
        &self,
        user: &McServiceId,
        clients: &[ClientId],
        service: McService,
        groups: &[McServiceGroupId],
        via: Via<'_>,
    ) -> Result<Vec<GroupAffiliationStatus>> {
        let groups = distinct(groups);
        let guard = self.user_locks.lock(user).await;
        for _ in 0..16 {
            let state = self.store.user_affiliations(user).await?;
            // §10.8.4.3 step 3: the partner hosts are told through the outbox, committed
            // with the local change: a crash cannot leave a host holding the user.
            let (effects, statuses, _released) = self.release(
                user,
                clients,
                service,
                &groups,
                &state.rows,
                Some((via, state.generation + 1)),
            );
            if let Some(committed) = self
                .store
                .commit_for_user(user, Some(state.generation), &effects)
                .await?
            {
                self.trace_gms_status(&effects);
                drop(guard);
                self.wakers.wake(&committed.woken_sessions);
                if !effects.outbox.is_empty() {
                    self.outbox.notify_one();
                }
                // A client no longer affiliated to any regrouped group leaves the regroup.
                self.leave_regroups(user, clients, true).await?;
                return Ok(statuses);
            }
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("the affiliations of {user} kept changing concurrently; retry"),
        ))
    }

    /// What removing `clients`' affiliations to `groups` does: the effects (served rows
    /// removed; hosted rows and GMS updates for local groups the user leaves; with
    /// `durable`, queued requests to partner hosts), one status per group, and the partner
    /// groups the user leaves.
    fn release(
        &self,
        user: &McServiceId,
        clients: &[ClientId],
        service: McService,
        groups: &[McServiceGroupId],
        rows: &[ClientAffiliation],
        queue: Option<(Via<'_>, u64)>,
    ) -> (Effects, Vec<GroupAffiliationStatus>, Vec<McServiceGroupId>) {
        let mut effects = Effects::none();
        let mut statuses = Vec::new();
        let mut released = Vec::new();
        let mut left_local = Vec::new();
        for group in groups {
            let group_rows: Vec<_> = rows
                .iter()
                .filter(|r| r.mc_service == service && &r.group == group)
                .collect();
            let (mine, others): (Vec<_>, Vec<_>) = group_rows
                .into_iter()
                .partition(|r| clients.contains(&r.client));
            if mine.is_empty() {
                statuses.push(refused(group, AffiliationCause::NotAffiliated));
                continue;
            }
            for row in &mine {
                effects.affiliations.push(AffiliationWrite::ServedRemoved {
                    user: user.clone(),
                    mc_service: service,
                    group: group.clone(),
                    client: row.client.clone(),
                });
            }
            statuses.push(status(group, AffiliationStatus::NotAffiliated, None));
            if !others.is_empty() {
                continue;
            }
            if group.home_system() == self.system {
                effects.affiliations.push(AffiliationWrite::HostedRemoved {
                    user: user.clone(),
                    mc_service: service,
                    group: group.clone(),
                });
                left_local.push(group.clone());
            } else {
                released.push(group.clone());
            }
        }
        if !left_local.is_empty() {
            // Step 4b: the GMS learns the de-affiliation, in the same commit.
            effects.gms_status.push(GmsStatusUpdate {
                user: user.clone(),
                mc_service: service,
                statuses: left_local
                    .iter()
                    .map(|g| (g.clone(), AffiliationStatus::NotAffiliated))
                    .collect(),
            });
        }
        if let Some((via, generation)) = queue {
            for (host, list) in by_host(&released) {
                let request = match via {
                    Via::Own => {
                        PartnerRequest::GroupDeaffiliation(ServerGroupDeaffiliationRequest {
                            mc_service_id: user.clone(),
                            mc_service_group_id_list: list,
                            mc_service: service,
                            generation: Some(generation),
                        })
                    }
                    Via::Remote(requester) => match change_to_host(
                        requester,
                        user,
                        list.as_slice(),
                        AffiliationChangeAction::Deaffiliate,
                        service,
                        generation,
                    ) {
                        Some(change) => PartnerRequest::GroupAffiliationChange(change),
                        None => continue,
                    },
                };
                effects.send(PartnerAudience::Partner(host), request);
            }
        }
        (effects, statuses, released)
    }

    /// A client's session ended: all its affiliations cease, here and at partner hosts
    /// (through the outbox, in the same commit, so nothing is lost if the partner is away).
    pub(super) async fn end_client(&self, session: &SessionRecord) -> Result<()> {
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
                return Ok(());
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
                if !effects.outbox.is_empty() {
                    self.outbox.notify_one();
                }
                tracing::info!(%user, client = %session.client_id, groups = mine.len(), "client logged off: affiliations ended");
                // Its affiliation to regroup groups ends too (§10.15.3.3.1, last paragraph).
                self.leave_regroups(user, std::slice::from_ref(&session.client_id), false)
                    .await?;
                return Ok(());
            }
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("the affiliations of {user} kept changing concurrently"),
        ))
    }

    /// At start: affiliations of clients whose sessions ended while the server was down,
    /// and reservations a crash interrupted, are ended as at log-off.
    pub async fn end_stale_affiliations(&self) -> Result<usize> {
        let stale = self.store.stale_affiliations().await?;
        let mut by_client: BTreeSet<(McServiceId, ClientId)> = BTreeSet::new();
        for (user, row) in &stale {
            by_client.insert((user.clone(), row.client.clone()));
        }
        for (user, client) in &by_client {
            let now = self.clock.now();
            let session = SessionRecord {
                session_id: String::new(),
                token_hash: String::new(),
                mc_service_id: user.clone(),
                client_id: client.clone(),
                logged_on_at: now,
                expires_at: now,
            };
            self.end_client(&session).await?;
        }
        Ok(stale.len())
    }

    // ---- the server hosting the groups (a partner of the user's serving server) ----

    fn check_sender(&self, from: &SystemDomain, user: &McServiceId) -> Option<AffiliationCause> {
        (user.domain() != *from).then_some(AffiliationCause::NotAuthorized)
    }

    /// §10.8.3.2 steps 4–7 at the partner hosting the groups.
    pub(crate) async fn host_affiliation(
        &self,
        from: &SystemDomain,
        request: &ServerGroupAffiliationRequest,
    ) -> Result<ServerGroupAffiliationResponse> {
        let groups: Vec<_> = request.mc_service_group_id_list.iter().cloned().collect();
        let statuses = self
            .host_change(
                from,
                &request.mc_service_id,
                request.mc_service,
                &groups,
                AffiliationChangeAction::Affiliate,
                request.generation,
            )
            .await?;
        Ok(ServerGroupAffiliationResponse {
            mc_service_id: request.mc_service_id.clone(),
            mc_service_group_id_list: request.mc_service_group_id_list.clone(),
            status_per_mc_service_group_id: statuses,
            mc_service: request.mc_service,
        })
    }

    /// §10.8.4.3 steps 4–6 at the partner hosting the groups.
    pub(crate) async fn host_deaffiliation(
        &self,
        from: &SystemDomain,
        request: &ServerGroupDeaffiliationRequest,
    ) -> Result<ServerGroupDeaffiliationResponse> {
        let groups: Vec<_> = request.mc_service_group_id_list.iter().cloned().collect();
        let statuses = self
            .host_change(
                from,
                &request.mc_service_id,
                request.mc_service,
                &groups,
                AffiliationChangeAction::Deaffiliate,
                request.generation,
            )
            .await?;
        Ok(ServerGroupDeaffiliationResponse {
            mc_service_id: request.mc_service_id.clone(),
            mc_service_group_id_list: request.mc_service_group_id_list.clone(),
            status_per_mc_service_group_id: statuses,
            mc_service: request.mc_service,
        })
    }

    /// §10.8.5.2.1 steps 4–8 at the partner hosting the groups: a mandatory remote change.
    pub(crate) async fn host_affiliation_change(
        &self,
        from: &SystemDomain,
        request: &GroupAffiliationChangeRequest,
    ) -> Result<GroupAffiliationChangeResponse> {
        let mut results = Vec::new();
        for target in request.mc_service_id_list.iter() {
            for action in [
                AffiliationChangeAction::Affiliate,
                AffiliationChangeAction::Deaffiliate,
            ] {
                let groups: Vec<_> = request
                    .mc_service_group_id_list
                    .iter()
                    .filter(|c| c.action == action)
                    .map(|c| c.mc_service_group_id.clone())
                    .collect();
                if groups.is_empty() {
                    continue;
                }
                let statuses = if request.change_request_type == ChangeRequestType::Mandatory {
                    self.host_change(from, target, request.mc_service, &groups, action, None)
                        .await?
                } else {
                    // A negotiated change reaches the host as ordinary (de-)affiliations
                    // once the target accepted; it is never sent to a host as such.
                    groups
                        .iter()
                        .map(|g| refused(g, AffiliationCause::PartnerRefused))
                        .collect()
                };
                results.extend(statuses.into_iter().map(|s| TargetAffiliationStatus {
                    mc_service_id: target.clone(),
                    mc_service_group_id: s.mc_service_group_id,
                    status: s.status,
                    cause: s.cause,
                }));
            }
        }
        Ok(GroupAffiliationChangeResponse {
            mc_service_id: request.mc_service_id.clone(),
            mc_service_id_list: request.mc_service_id_list.clone(),
            mc_service_group_id_list: request.mc_service_group_id_list.clone(),
            affiliation_status_per_mc_service_group_id: results,
            mc_service: request.mc_service,
        })
    }

    /// The host's part: checks the group policy, stores or removes the user's
    /// affiliation to each group and updates the GMS, in one commit. A request decided
    /// at an older `generation` than the last one applied for the user and a group is
    /// ignored for that group (it was overtaken), answered with the state held.
    async fn host_change(
        &self,
        from: &SystemDomain,
        user: &McServiceId,
        service: McService,
        groups: &[McServiceGroupId],
        action: AffiliationChangeAction,
        generation: Option<u64>,
    ) -> Result<Vec<GroupAffiliationStatus>> {
        let mut statuses = Vec::new();
        let mut effects = Effects::none();
        let mut gms = Vec::new();
        for group in distinct(groups) {
            if let Some(generation) = generation {
                let last = self.store.hosted_generation(user, service, &group).await?;
                if last.is_some_and(|last| generation < last) {
                    let held = self
                        .store
                        .hosted_affiliations(&group)
                        .await?
                        .iter()
                        .any(|(u, s)| u == user && *s == service);
                    tracing::info!(%user, %group, generation, ?last, "ignored an overtaken request from a partner");
                    statuses.push(status(
                        &group,
                        if held {
                            AffiliationStatus::Affiliated
                        } else {
                            AffiliationStatus::NotAffiliated
                        },
                        None,
                    ));
                    continue;
                }
                if self.check_sender(from, user).is_none() && group.home_system() == self.system {
                    effects
                        .affiliations
                        .push(AffiliationWrite::HostedGeneration {
                            user: user.clone(),
                            mc_service: service,
                            group: group.clone(),
                            generation,
                        });
                }
            }
            let cause = if let Some(cause) = self.check_sender(from, user) {
                Some(cause)
            } else if group.home_system() != self.system {
                Some(AffiliationCause::UnknownGroup)
            } else if action == AffiliationChangeAction::Affiliate {
                self.check_hosted_group(user, service, &group).await?
            } else {
                None
            };
            if let Some(cause) = cause {
                statuses.push(refused(&group, cause));
                continue;
            }
            match action {
                AffiliationChangeAction::Affiliate => {
                    effects.affiliations.push(AffiliationWrite::Hosted {
                        user: user.clone(),
                        mc_service: service,
                        group: group.clone(),
                    });
                    gms.push((group.clone(), AffiliationStatus::Affiliated));
                    statuses.push(status(&group, AffiliationStatus::Affiliated, None));
                }
                AffiliationChangeAction::Deaffiliate => {
                    effects.affiliations.push(AffiliationWrite::HostedRemoved {
                        user: user.clone(),
                        mc_service: service,
                        group: group.clone(),
                    });
                    gms.push((group.clone(), AffiliationStatus::NotAffiliated));
                    statuses.push(status(&group, AffiliationStatus::NotAffiliated, None));
                }
            }
        }
        if !gms.is_empty() {
            // Step 7b (and 6b of de-affiliation): the host's GMS learns the status.
            effects.gms_status.push(GmsStatusUpdate {
                user: user.clone(),
                mc_service: service,
                statuses: gms,
            });
            self.commits.commit(&effects).await?;
            self.trace_gms_status(&effects);
            tracing::info!(%user, %from, ?action, groups = statuses.len(), "partner user's affiliation recorded at the host");
        }
        Ok(statuses)
    }
}

fn by_host(groups: &[McServiceGroupId]) -> BTreeMap<SystemDomain, NonEmpty<McServiceGroupId>> {
    let mut map: BTreeMap<SystemDomain, Vec<McServiceGroupId>> = BTreeMap::new();
    for group in groups {
        map.entry(group.home_system())
            .or_default()
            .push(group.clone());
    }
    map.into_iter()
        .filter_map(|(host, list)| NonEmpty::new(list).ok().map(|l| (host, l)))
        .collect()
}

/// A reservation whose host's answer a client's request waits for: user, service, group
/// and the generation of the request.
pub(super) type WaitKey = (McServiceId, McService, McServiceGroupId, u64);

/// The request asking a host to affiliate the user to `groups` (§10.8.3.2 step 3, or
/// §10.8.5.2.1 step 3 for a mandatory remote change).
fn ask_host(
    via: Via<'_>,
    user: &McServiceId,
    groups: NonEmpty<McServiceGroupId>,
    service: McService,
    generation: u64,
) -> Option<PartnerRequest> {
    Some(match via {
        Via::Own => PartnerRequest::GroupAffiliation(ServerGroupAffiliationRequest {
            mc_service_id: user.clone(),
            mc_service_group_id_list: groups,
            mc_service: service,
            generation: Some(generation),
        }),
        Via::Remote(requester) => PartnerRequest::GroupAffiliationChange(change_to_host(
            requester,
            user,
            groups.as_slice(),
            AffiliationChangeAction::Affiliate,
            service,
            generation,
        )?),
    })
}

/// Whom and what an affiliation request to a host was about: the user, the service, the
/// groups to affiliate and the request's generation. `None` for other flows.
fn asked_of_host(
    request: &PartnerRequest,
) -> Option<(McServiceId, McService, Vec<McServiceGroupId>, Option<u64>)> {
    match request {
        PartnerRequest::GroupAffiliation(r) => Some((
            r.mc_service_id.clone(),
            r.mc_service,
            r.mc_service_group_id_list.iter().cloned().collect(),
            r.generation,
        )),
        PartnerRequest::GroupAffiliationChange(r) => Some((
            r.mc_service_id_list.first().clone(),
            r.mc_service,
            r.mc_service_group_id_list
                .iter()
                .filter(|c| c.action == AffiliationChangeAction::Affiliate)
                .map(|c| c.mc_service_group_id.clone())
                .collect(),
            r.generation,
        )),
        _ => None,
    }
}

fn change_to_host(
    requester: &McServiceId,
    target: &McServiceId,
    groups: &[McServiceGroupId],
    action: AffiliationChangeAction,
    service: McService,
    generation: u64,
) -> Option<GroupAffiliationChangeRequest> {
    let changes: Vec<_> = groups
        .iter()
        .map(|g| GroupAffiliationChange {
            mc_service_group_id: g.clone(),
            action,
        })
        .collect();
    Some(GroupAffiliationChangeRequest {
        mc_service_id: requester.clone(),
        mc_service_id_list: NonEmpty::one(target.clone()),
        mc_service_group_id_list: NonEmpty::new(changes).ok()?,
        change_request_type: ChangeRequestType::Mandatory,
        mc_service: service,
        generation: Some(generation),
    })
}

/// A group's status from a host's answer (or from the failure to get one).
fn status_from_host(
    user: &McServiceId,
    group: &McServiceGroupId,
    answered: &std::result::Result<PartnerResponse, LinkError>,
) -> GroupAffiliationStatus {
    match answered {
        Ok(PartnerResponse::GroupAffiliation(r)) => r
            .status_per_mc_service_group_id
            .iter()
            .find(|s| &s.mc_service_group_id == group)
            .cloned()
            .unwrap_or_else(|| refused(group, AffiliationCause::PartnerRefused)),
        Ok(PartnerResponse::GroupAffiliationChange(r)) => r
            .affiliation_status_per_mc_service_group_id
            .iter()
            .find(|s| &s.mc_service_group_id == group && &s.mc_service_id == user)
            .map(|s| status(group, s.status, s.cause.clone()))
            .unwrap_or_else(|| refused(group, AffiliationCause::PartnerRefused)),
        Ok(_) => refused(group, AffiliationCause::PartnerRefused),
        Err(LinkError::Unreachable { .. }) => refused(group, AffiliationCause::PartnerUnreachable),
        Err(LinkError::Refused { .. }) => refused(group, AffiliationCause::PartnerRefused),
    }
}

fn build_response(
    user: McServiceId,
    service: McService,
    requested: &[McServiceGroupId],
    statuses: Vec<GroupAffiliationStatus>,
) -> GroupAffiliationResponse {
    let list = NonEmpty::new(distinct(requested))
        .unwrap_or_else(|_| unreachable!("requests list one group or more"));
    GroupAffiliationResponse {
        mc_service_id: user,
        mc_service_group_id_list: list,
        status_per_mc_service_group_id: statuses,
        mc_service: service,
    }
}

fn merge(into: &mut Effects, part: Effects) {
    into.client_events.extend(part.client_events);
    into.outbox.extend(part.outbox);
    into.affiliations.extend(part.affiliations);
    into.gms_status.extend(part.gms_status);
    into.partner_records.extend(part.partner_records);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gid(text: &str) -> McServiceGroupId {
        McServiceGroupId::parse(text).expect("a valid group ID")
    }

    fn held(group: &str, client: &ClientId, pending: Option<u64>) -> ClientAffiliation {
        ClientAffiliation {
            mc_service: McService::Mcptt,
            group: gid(group),
            client: client.clone(),
            pending,
        }
    }

    #[test]
    fn n2_counts_held_and_reserved_groups_and_a_held_group_costs_nothing() {
        let system = SystemDomain::parse("police.example").expect("a valid domain");
        let user = McServiceId::parse("sip:bob@police.example").expect("a valid user ID");
        let phone = ClientId::parse("phone").expect("a valid client ID");
        let radio = ClientId::parse("radio").expect("a valid client ID");
        // Bob holds ops (from his radio) and a reservation for a partner group: N2 = 3
        // leaves room for one more distinct group.
        let rows = vec![
            held("sip:ops@police.example", &radio, None),
            held("sip:harbour@fire.example", &radio, Some(4)),
        ];
        let plan = plan_affiliation(
            &system,
            &user,
            &UserAffiliationState {
                generation: 4,
                rows,
            },
            std::slice::from_ref(&phone),
            McService::Mcptt,
            &[
                gid("sip:ops@police.example"),
                gid("sip:dock@fire.example"),
                gid("sip:patrol@police.example"),
            ],
            3,
        );
        let cause = |g: &str| plan.outcome.get(&gid(g)).and_then(|s| s.cause.clone());
        // ops is held: the phone joins without using N2.
        assert_eq!(
            plan.outcome[&gid("sip:ops@police.example")].status,
            AffiliationStatus::Affiliated
        );
        // dock takes the last place, as a reservation to confirm with fire.example.
        assert_eq!(plan.pending, vec![gid("sip:dock@fire.example")]);
        assert!(!plan.outcome.contains_key(&gid("sip:dock@fire.example")));
        // patrol would be a fourth group.
        assert_eq!(
            cause("sip:patrol@police.example"),
            Some(AffiliationCause::N2LimitReached)
        );
        assert!(plan.newly_local.is_empty());
    }

    #[test]
    fn a_group_only_reserved_is_in_progress() {
        let system = SystemDomain::parse("police.example").expect("a valid domain");
        let user = McServiceId::parse("sip:bob@police.example").expect("a valid user ID");
        let radio = ClientId::parse("radio").expect("a valid client ID");
        let rows = vec![held("sip:harbour@fire.example", &radio, Some(4))];
        let plan = plan_affiliation(
            &system,
            &user,
            &UserAffiliationState {
                generation: 4,
                rows,
            },
            std::slice::from_ref(&radio),
            McService::Mcptt,
            &[
                gid("sip:harbour@fire.example"),
                gid("sip:ops@police.example"),
            ],
            4,
        );
        assert_eq!(
            plan.outcome[&gid("sip:harbour@fire.example")].cause,
            Some(AffiliationCause::InProgress)
        );
        assert_eq!(plan.newly_local, vec![gid("sip:ops@police.example")]);
        assert!(
            plan.writes
                .iter()
                .any(|w| matches!(w, AffiliationWrite::Hosted { .. }))
        );
    }
}
