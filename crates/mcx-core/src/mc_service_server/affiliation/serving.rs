//! At the user's serving server: §10.8.3.1/.2 and §10.8.4.1/.2, the request to the
//! partner host through the outbox, the bounded wait, and the host's answer stored.

use std::collections::BTreeMap;

use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::*;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::interconnection::Capability;
use mcx_model::profile::UserProfile;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId};

use super::McServiceServer;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::identity::Requester;
use crate::ports::{
    AffiliationWrite, Audience, ClientAffiliation, Effects, GmsStatusUpdate, LinkError,
    PartnerAudience,
};

use super::*;

use super::plan::{plan_affiliation, policy_refusal};

/// How long past its request's own bound a stored answer wait still counts.
const WAIT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl McServiceServer {
    /// Step 3 of §10.8.3.1 (and step 5 at a partner host) for a group defined here: the
    /// group is enabled, supports the service, may be used for calls, and lists the user.
    pub(in crate::mc_service_server) async fn check_hosted_group(
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
    pub(in crate::mc_service_server) async fn affiliation_refusal(
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
        let response = build_response(request.mc_service_id, service, &groups, statuses);
        count_answers("affiliate", &response.status_per_mc_service_group_id);
        Ok(response)
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
        count_answers("deaffiliate", &response.status_per_mc_service_group_id);
        Ok(GroupDeaffiliationResponse {
            mc_service_id: response.mc_service_id,
            mc_service_group_id_list: response.mc_service_group_id_list,
            status_per_mc_service_group_id: response.status_per_mc_service_group_id,
            mc_service: response.mc_service,
        })
    }

    pub(super) fn require_self(
        &self,
        requester: &Requester,
        user: &McServiceId,
        to_do: &str,
    ) -> Result<()> {
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
    pub(in crate::mc_service_server) async fn affiliate_clients(
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
            self.plan_into(user, service, via, generation, &plan, &mut effects);
            if let Some(opened) = self
                .commit_plan(user, service, &state, &plan, &mut effects)
                .await?
            {
                waits = opened;
                decided.extend(plan.outcome);
                pending = plan.pending;
                break;
            }
        }
        drop(guard);
        if decided.len() + pending.len() < groups.len() {
            return Err(kept_changing(user));
        }
        self.settle_affiliation(
            profile,
            clients,
            service,
            &groups,
            via,
            Asked {
                decided,
                pending,
                waits,
            },
        )
        .await
    }

    /// An affiliation plan's part of a commit: its rows, the GMS's update for the groups
    /// defined here (step 5b), and one request per partner host (step 3 of §10.8.3.2).
    pub(super) fn plan_into(
        &self,
        user: &McServiceId,
        service: McService,
        via: Via<'_>,
        generation: u64,
        plan: &super::AffiliationPlan,
        effects: &mut Effects,
    ) {
        effects
            .service
            .affiliations
            .extend(plan.writes.iter().cloned());
        if !plan.newly_local.is_empty() {
            effects.gms.status_update(GmsStatusUpdate {
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
    }

    /// Commits an affiliation plan's `effects` if the user's affiliations are still at
    /// `read`'s generation, with the waits for the hosts' answers opened in the same
    /// commit (an answer cannot overtake its wait). The waits opened, or `None` when the
    /// user's affiliations changed meanwhile (nothing was committed).
    pub(super) async fn commit_plan(
        &self,
        user: &McServiceId,
        service: McService,
        read: &crate::ports::UserAffiliationState,
        plan: &super::AffiliationPlan,
        effects: &mut Effects,
    ) -> Result<Option<Vec<super::answer_waits::Wait>>> {
        let generation = read.generation + 1;
        let keys: Vec<_> = plan
            .pending
            .iter()
            .map(|g| (user.clone(), service, g.clone(), generation))
            .collect();
        let waits = self.open_answer_waits(&keys, effects);
        let committed = self
            .store
            .commit_for_user(user, Some(read.generation), effects)
            .await;
        if !matches!(committed, Ok(Some(_))) {
            self.waiting.abandon(&keys);
        }
        let Some(committed) = committed? else {
            return Ok(None);
        };
        self.trace_gms_status(effects);
        self.wakers.wake(&committed.woken_sessions);
        self.outbox.committed(&committed);
        Ok(Some(waits))
    }

    /// The waits of a request for its hosts' answers, opened in `effects` (none when
    /// requests do not wait).
    pub(super) fn open_answer_waits(
        &self,
        keys: &[super::WaitKey],
        effects: &mut Effects,
    ) -> Vec<super::answer_waits::Wait> {
        if self.answer_wait.is_zero() {
            return Vec::new();
        }
        // A stored wait outlives the request's own bound a little: past it, a node that
        // never ended the wait is taken for gone.
        let until = self.clock.now() + self.answer_wait + WAIT_GRACE;
        self.waiting.open(keys, until, effects)
    }

    /// After an affiliation's commit: the hosts' answers it waits for (up to the bound),
    /// the groups refused for N2 planned again once if a host's refusal freed a place,
    /// and the regroups in effect joined. One status per group of `groups`, in order.
    pub(super) async fn settle_affiliation(
        &self,
        profile: &UserProfile,
        clients: &[ClientId],
        service: McService,
        groups: &[McServiceGroupId],
        via: Via<'_>,
        asked: Asked,
    ) -> Result<Vec<GroupAffiliationStatus>> {
        let user = &profile.mc_service_id;
        let Asked {
            mut decided,
            pending,
            waits,
        } = asked;
        // The client waits for the hosts' answers up to a bound; what is still open is
        // `affiliating`, and its final state reaches the client as an event.
        let mut answered: BTreeMap<McServiceGroupId, GroupAffiliationStatus> = BTreeMap::new();
        if !waits.is_empty() {
            answered = self
                .waiting
                .answers(waits, self.clock.sleep(self.answer_wait), &*self.store)
                .await?;
        }
        let freed = answered
            .values()
            .any(|a| a.status != AffiliationStatus::Affiliated);
        let confirmed: Vec<McServiceGroupId> = answered
            .values()
            .filter(|a| a.status == AffiliationStatus::Affiliated)
            .map(|a| a.mc_service_group_id.clone())
            .collect();
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
            .filter(|s| {
                !pending.contains(&s.mc_service_group_id)
                    || confirmed.contains(&s.mc_service_group_id)
            })
            .map(|s| s.mc_service_group_id.clone())
            .collect();
        // A client affiliating to a regrouped group joins the regroup in effect (a
        // partner group once its host's answer is stored: here if this request heard
        // it, otherwise where the answer is handled).
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
        if let Some(generation) = generation
            && self
                .confirm_to_waiters(outbox_id, &user, service, &groups, generation, answered)
                .await?
        {
            return Ok(());
        }
        for _ in 0..16 {
            let state = self.store.user_affiliations(&user).await?;
            // Read only when some client must be told by an event (no request waits).
            let mut sessions: Option<Vec<crate::ports::SessionRecord>> = None;
            let mut effects = Effects {
                complete_outbox: Some(outbox_id),
                ..Effects::default()
            };
            let mut settled = Vec::new();
            let mut waiters = Vec::new();
            let keys: Vec<_> = groups
                .iter()
                .map(|g| {
                    (
                        user.clone(),
                        service,
                        g.clone(),
                        generation.unwrap_or_default(),
                    )
                })
                .collect();
            let mut taken = if generation.is_some() {
                self.waiting
                    .take(&keys, self.clock.now(), &*self.store)
                    .await?
            } else {
                Vec::new()
            };
            for (i, group) in groups.iter().enumerate() {
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
                let waiter = taken.get_mut(i).and_then(Option::take);
                if let Some(waiter) = &waiter {
                    waiter.answer_in(&answer, &mut effects);
                }
                if waiter.is_none() && sessions.is_none() {
                    sessions = Some(self.sessions.sessions_of(&user).await?);
                }
                for row in &rows {
                    effects.service.affiliations.push(
                        if answer.status == AffiliationStatus::Affiliated {
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
                        },
                    );
                    for session in sessions
                        .iter()
                        .flatten()
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
                // The request that waits joins the regroups in effect itself.
                if let Some(waiter) = waiter {
                    waiters.push((waiter, answer));
                } else {
                    let clients: Vec<ClientId> = rows.iter().map(|r| r.client.clone()).collect();
                    settled.push((answer, clients));
                }
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
                waiter.deliver(answer);
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
        Err(kept_changing(&user))
    }

    /// The common case of a host's answer: it affiliated the user to every group asked
    /// and the request waits for it. One guarded write confirms the reservations the
    /// request made, without reading the user's state (a confirmation changes no count
    /// N2 is checked against); the waiting request tells the client and joins the
    /// regroups in effect. False, with nothing changed, in any other case.
    async fn confirm_to_waiters(
        &self,
        outbox_id: i64,
        user: &McServiceId,
        service: McService,
        groups: &[McServiceGroupId],
        generation: u64,
        answered: &std::result::Result<PartnerResponse, LinkError>,
    ) -> Result<bool> {
        let answers: Vec<_> = groups
            .iter()
            .map(|g| status_from_host(user, g, answered))
            .collect();
        if answers
            .iter()
            .any(|a| a.status != AffiliationStatus::Affiliated)
        {
            return Ok(false);
        }
        let keys: Vec<_> = groups
            .iter()
            .map(|g| (user.clone(), service, g.clone(), generation))
            .collect();
        let taken: Vec<_> = keys
            .iter()
            .cloned()
            .zip(
                self.waiting
                    .take(&keys, self.clock.now(), &*self.store)
                    .await?,
            )
            .filter_map(|(key, waiter)| waiter.map(|w| (key, w)))
            .collect();
        let mut effects = Effects {
            complete_outbox: Some(outbox_id),
            service: crate::ports::ServiceEffects {
                confirmations: groups
                    .iter()
                    .map(|group| crate::ports::Confirmation {
                        user: user.clone(),
                        mc_service: service,
                        group: group.clone(),
                        generation,
                    })
                    .collect(),
                ..Default::default()
            },
            ..Effects::default()
        };
        for ((_, waiter), answer) in taken.iter().zip(&answers) {
            waiter.answer_in(answer, &mut effects);
        }
        let committed = if taken.len() == groups.len() {
            Some(self.commits.commit(&effects).await)
        } else {
            None
        };
        match committed {
            Some(Ok(committed)) if !committed.conflict => {
                for ((_, waiter), answer) in taken.into_iter().zip(answers) {
                    waiter.deliver(answer);
                }
                Ok(true)
            }
            other => {
                // The general path answers them.
                for (key, waiter) in taken {
                    self.waiting.put_back(key, waiter);
                }
                other.transpose()?;
                Ok(false)
            }
        }
    }

    pub(in crate::mc_service_server) async fn complete_outbox(&self, outbox_id: i64) -> Result<()> {
        let effects = Effects {
            complete_outbox: Some(outbox_id),
            ..Effects::default()
        };
        self.commits.commit(&effects).await?;
        Ok(())
    }

    /// De-affiliates `clients` of the user from `groups`. A group the user stays
    /// affiliated to through another client is only released for these clients.
    pub(in crate::mc_service_server) async fn deaffiliate_clients(
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
                self.outbox.committed(&committed);
                // A client no longer affiliated to any regrouped group leaves the regroup.
                self.leave_regroups(user, clients, true).await?;
                return Ok(statuses);
            }
        }
        Err(kept_changing(user))
    }

    /// What removing `clients`' affiliations to `groups` does: the effects (served rows
    /// removed; hosted rows and GMS updates for local groups the user leaves; with
    /// `durable`, queued requests to partner hosts), one status per group, and the partner
    /// groups the user leaves.
    pub(super) fn release(
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
                effects
                    .service
                    .affiliations
                    .push(AffiliationWrite::ServedRemoved {
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
                effects
                    .service
                    .affiliations
                    .push(AffiliationWrite::HostedRemoved {
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
            effects.gms.status_update(GmsStatusUpdate {
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
}

/// What an affiliation's commit decided: the statuses decided here, the partner groups
/// reserved, and the waits for their hosts' answers.
pub(super) struct Asked {
    pub(super) decided: BTreeMap<McServiceGroupId, GroupAffiliationStatus>,
    pub(super) pending: Vec<McServiceGroupId>,
    pub(super) waits: Vec<super::answer_waits::Wait>,
}

/// Counts a client's (de-)affiliation answers by status and cause (`/metrics`: N2
/// refusals are `cause="n2-limit-reached"`).
pub(super) fn count_answers(
    request: &'static str,
    statuses: &[mcx_model::flows::affiliation::GroupAffiliationStatus],
) {
    for status in statuses {
        let text = |v: serde_json::Result<serde_json::Value>| {
            v.ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let state = text(serde_json::to_value(status.status));
        let cause = status
            .cause
            .as_ref()
            .map(|c| text(serde_json::to_value(c)))
            .unwrap_or_else(|| "none".to_string());
        metrics::counter!("mcx_affiliation_answers_total", "request" => request, "status" => state, "cause" => cause)
            .increment(1);
    }
}
