//! At the server hosting the groups (a partner of the user's serving server): §10.8.3.2
//! steps 4–7, §10.8.4.3 steps 4–6, §10.8.5.2.1 steps 4–8.

use mcx_model::flows::affiliation::*;
use mcx_model::flows::partner::PartnerResponse;
use mcx_model::{McService, McServiceGroupId, McServiceId, SystemDomain, TransactionId};

use super::McServiceServer;
use super::host_plan::{HostedGroupFacts, HostedRequest, plan_hosted_change};
use crate::error::Result;
use crate::ports::Effects;

use super::*;

impl McServiceServer {
    // ---- the server hosting the groups (a partner of the user's serving server) ----

    /// §10.8.3.2 steps 4–7 at the partner hosting the groups.
    pub(crate) async fn host_affiliation(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        request: &ServerGroupAffiliationRequest,
    ) -> Result<PartnerResponse> {
        let (user, list, service) = (
            &request.mc_service_id,
            &request.mc_service_group_id_list,
            request.mc_service,
        );
        let asked = (list, service, request.generation);
        self.host_request(
            from,
            transaction,
            user,
            asked,
            AffiliationChangeAction::Affiliate,
            |statuses| {
                PartnerResponse::GroupAffiliation(ServerGroupAffiliationResponse {
                    mc_service_id: user.clone(),
                    mc_service_group_id_list: list.clone(),
                    status_per_mc_service_group_id: statuses,
                    mc_service: service,
                })
            },
        )
        .await
    }

    /// §10.8.4.3 steps 4–6 at the partner hosting the groups.
    pub(crate) async fn host_deaffiliation(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        request: &ServerGroupDeaffiliationRequest,
    ) -> Result<PartnerResponse> {
        let (user, list, service) = (
            &request.mc_service_id,
            &request.mc_service_group_id_list,
            request.mc_service,
        );
        let asked = (list, service, request.generation);
        self.host_request(
            from,
            transaction,
            user,
            asked,
            AffiliationChangeAction::Deaffiliate,
            |statuses| {
                PartnerResponse::GroupDeaffiliation(ServerGroupDeaffiliationResponse {
                    mc_service_id: user.clone(),
                    mc_service_group_id_list: list.clone(),
                    status_per_mc_service_group_id: statuses,
                    mc_service: service,
                })
            },
        )
        .await
    }

    /// A user's own (de-)affiliation request at the host: planned first without reading
    /// the generation the host applied last (the commit's guard finds an overtaken
    /// request, and it is planned again with the read), committed with its answer.
    async fn host_request(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        user: &McServiceId,
        (groups, service, generation): (&NonEmpty<McServiceGroupId>, McService, Option<u64>),
        action: AffiliationChangeAction,
        answer: impl Fn(Vec<GroupAffiliationStatus>) -> PartnerResponse,
    ) -> Result<PartnerResponse> {
        let groups: Vec<_> = groups.iter().cloned().collect();
        for checked in [false, true, true, true] {
            let mut effects = Effects::none();
            let statuses = self
                .host_change(
                    &mut effects,
                    from,
                    user,
                    service,
                    &groups,
                    action,
                    (generation, checked),
                )
                .await?;
            if let Some(answer) = self
                .commit_hosted(from, transaction, effects, answer(statuses))
                .await?
            {
                return Ok(answer);
            }
        }
        Err(kept_changing(user))
    }

    /// §10.8.5.2.1 steps 4–8 at the partner hosting the groups: a mandatory remote change.
    pub(crate) async fn host_affiliation_change(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        request: &GroupAffiliationChangeRequest,
    ) -> Result<PartnerResponse> {
        for checked in [false, true, true, true] {
            let mut effects = Effects::none();
            let answer = self
                .plan_hosted_change(&mut effects, from, request, checked)
                .await?;
            if let Some(answer) = self
                .commit_hosted(from, transaction, effects, answer)
                .await?
            {
                return Ok(answer);
            }
        }
        Err(kept_changing(request.mc_service_id_list.first()))
    }

    /// The host's part of a remote change, added to `effects`, and its answer.
    async fn plan_hosted_change(
        &self,
        effects: &mut Effects,
        from: &SystemDomain,
        request: &GroupAffiliationChangeRequest,
        checked: bool,
    ) -> Result<PartnerResponse> {
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
                    self.host_change(
                        effects,
                        from,
                        target,
                        request.mc_service,
                        &groups,
                        action,
                        (request.generation, checked),
                    )
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
        let response = GroupAffiliationChangeResponse {
            mc_service_id: request.mc_service_id.clone(),
            mc_service_id_list: request.mc_service_id_list.clone(),
            mc_service_group_id_list: request.mc_service_group_id_list.clone(),
            affiliation_status_per_mc_service_group_id: results,
            mc_service: request.mc_service,
        };
        Ok(PartnerResponse::GroupAffiliationChange(response))
    }

    /// Commits the host's part with its answer to the partner's transaction: one effect
    /// per transaction, whatever crashes or retransmissions come. Of copies of one
    /// transaction the first to commit wins; the others keep nothing and give its
    /// answer. `None`: nothing was kept because a newer request about the user was
    /// applied meanwhile; the caller plans again, reading the generations.
    async fn commit_hosted(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        effects: Effects,
        answer: PartnerResponse,
    ) -> Result<Option<PartnerResponse>> {
        let mut traced = Effects::none();
        traced.gms.affiliation_status = effects.gms.affiliation_status.clone();
        let given = self
            .commit_answer(effects, (from, transaction), answer)
            .await?;
        if let Some(crate::events::Given::Now(_)) = &given {
            self.trace_gms_status(&traced);
        }
        Ok(given.map(crate::events::Given::answer))
    }

    /// The host's part: reads what the decision needs for each group, decides
    /// ([`plan_hosted_change`]) and adds the plan's writes to `effects`; the caller
    /// commits them with the answer. Unless `checked` (the second of `generation`), the
    /// last generation applied is not read: the commit's guard finds an overtaken
    /// request, and the caller plans again, checked.
    #[allow(clippy::too_many_arguments)] // the flow's elements, one by one
    async fn host_change(
        &self,
        effects: &mut Effects,
        from: &SystemDomain,
        user: &McServiceId,
        service: McService,
        groups: &[McServiceGroupId],
        action: AffiliationChangeAction,
        (generation, checked): (Option<u64>, bool),
    ) -> Result<Vec<GroupAffiliationStatus>> {
        let request = HostedRequest {
            system: &self.system,
            from,
            user,
            service,
            action,
            generation,
        };
        let mut facts = Vec::new();
        for group in distinct(groups) {
            facts.push(self.hosted_facts(&request, group, checked).await?);
        }
        let plan = plan_hosted_change(&request, &facts);
        for group in &plan.overtaken {
            tracing::info!(%user, %group, ?generation, "ignored an overtaken request from a partner");
        }
        effects.service.affiliations.extend(plan.writes);
        if let Some(update) = plan.gms {
            effects.gms.status_update(update);
            tracing::info!(%user, %from, ?action, groups = plan.statuses.len(), "partner user's affiliation recorded at the host");
        }
        Ok(plan.statuses)
    }

    /// What the host's decision needs to know about one group of a request.
    async fn hosted_facts(
        &self,
        request: &HostedRequest<'_>,
        group: McServiceGroupId,
        checked: bool,
    ) -> Result<HostedGroupFacts> {
        let (user, service) = (request.user, request.service);
        let last_generation = match request.generation {
            Some(_) if checked => self.store.hosted_generation(user, service, &group).await?,
            _ => None,
        };
        let held = last_generation.is_some()
            && self
                .store
                .hosted_affiliations(&group)
                .await?
                .iter()
                .any(|(u, s)| u == user && *s == service);
        let refusal = if request.action == AffiliationChangeAction::Affiliate
            && request.sender_refusal().is_none()
            && group.home_system() == self.system
        {
            self.check_hosted_group(user, service, &group).await?
        } else {
            None
        };
        Ok(HostedGroupFacts {
            group,
            last_generation,
            held,
            refusal,
        })
    }
}
