//! At a partner system: steps 6–11, and cancellation there.

use mcx_model::api::{RegroupRecord, RegroupState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::flows::regroup::*;
use mcx_model::flows::{FailureCause, FlowResult};
use mcx_model::{McService, SystemDomain};

use super::Change;
use crate::error::Result;
use crate::events::{Given, Inbound};
use crate::mc_service_server::McServiceServer;
use crate::ports::{Audience, Effects, PartnerAudience, RegroupWrite};

impl McServiceServer {
    /// Steps 6–11 at a partner system.
    pub(crate) async fn host_regroup(
        &self,
        (from, transaction): Inbound<'_>,
        request: &ServerPreconfiguredRegroupRequest,
    ) -> Result<PartnerResponse> {
        let regroup = &request.regroup_group_id;
        let respond = |result, count| {
            PartnerResponse::PreconfiguredRegroup(ServerPreconfiguredRegroupResponse {
                mc_service_id: request.mc_service_id.clone(),
                regroup_group_id: regroup.clone(),
                result,
                affiliated_member_count: count,
            })
        };
        let inbound = (from, transaction);
        if &regroup.home_system() != from {
            return self
                .answer_alone(
                    inbound,
                    respond(
                        FlowResult::failure(
                            FailureCause::NotAuthorized,
                            format!(
                                "a regroup group of '{}' cannot be formed by '{from}'",
                                regroup.home_system()
                            ),
                        ),
                        0,
                    ),
                )
                .await;
        }
        if let Some(existing) = self.regroups.regroup(regroup).await? {
            return self
                .answer_alone(
                    inbound,
                    respond(FlowResult::Success, existing.members.len() as u64),
                )
                .await;
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
                    return self
                        .answer_alone(
                            inbound,
                            respond(
                                FlowResult::failure(
                                    FailureCause::UnknownGroup,
                                    format!("there is no group '{group}' in {}", self.system),
                                ),
                                0,
                            ),
                        )
                        .await;
                }
                Some(g) if g.configuration.regrouped_into.is_some() => {
                    return self
                        .answer_alone(
                            inbound,
                            respond(
                                FlowResult::failure(
                                    FailureCause::Other("already-regrouped".into()),
                                    format!("group '{group}' is already regrouped"),
                                ),
                                0,
                            ),
                        )
                        .await;
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
                &[],
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
            answers: Vec::new(),
            answers_due: None,
        };
        let mut claimed = hosted.clone();
        claimed.push(regroup.clone());
        effects.service.regroups.splice(
            0..0,
            [
                RegroupWrite::Put(Box::new(record)),
                RegroupWrite::Claim {
                    regroup: regroup.clone(),
                    groups: claimed.clone(),
                },
            ],
        );
        let ours = respond(FlowResult::Success, members.len() as u64);
        let Some(given) = self.commit_answer(effects, inbound, ours.clone()).await? else {
            let (code, detail) = self.already_regrouped(&claimed).await;
            return self
                .answer_alone(
                    inbound,
                    respond(
                        FlowResult::failure(FailureCause::Other(code.into()), detail),
                        0,
                    ),
                )
                .await;
        };
        if let Given::Before(given) = given {
            // A copy of this transaction committed first and did the rest.
            return Ok(given);
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
        Ok(ours)
    }

    /// Cancellation at a partner.
    pub(crate) async fn host_cancel(
        &self,
        (from, transaction): Inbound<'_>,
        request: &PreconfiguredRegroupCancelRequest,
    ) -> Result<PartnerResponse> {
        let respond = |result| {
            PartnerResponse::PreconfiguredRegroupCancel(PreconfiguredRegroupCancelResponse {
                mc_service_id: request.mc_service_id.clone(),
                regroup_group_id: request.regroup_group_id.clone(),
                result,
            })
        };
        let inbound = (from, transaction);
        match self.regroups.regroup(&request.regroup_group_id).await? {
            None => {
                self.answer_alone(inbound, respond(FlowResult::Success))
                    .await
            }
            Some(record) if &record.primary_system != from => {
                let why = format!(
                    "regroup '{}' was not made by '{from}'",
                    request.regroup_group_id
                );
                self.answer_alone(
                    inbound,
                    respond(FlowResult::failure(FailureCause::NotAuthorized, why)),
                )
                .await
            }
            Some(record) => {
                let answer = (inbound, respond(FlowResult::Success));
                let given = self
                    .end_regroup_here(&record, request, Vec::new(), Some(answer))
                    .await?;
                match given {
                    Some(given) => Ok(given.answer()),
                    None => {
                        self.answer_alone(inbound, respond(FlowResult::Success))
                            .await
                    }
                }
            }
        }
    }

    /// Ends a regroup's part in this system: members de-affiliated from the regroup group
    /// and told, groups hosted here no longer regrouped, the record gone.
    pub(super) async fn end_regroup_here(
        &self,
        record: &RegroupRecord,
        cancel: &PreconfiguredRegroupCancelRequest,
        undelivered: Vec<(SystemDomain, PartnerRequest)>,
        answer: Option<(Inbound<'_>, PartnerResponse)>,
    ) -> Result<Option<Given>> {
        let mut effects = Effects::none();
        self.members_leave(record, cancel.mc_service, &mut effects)
            .await?;
        for (partner, request) in undelivered {
            effects.send(PartnerAudience::Partner(partner), request);
        }
        effects
            .service
            .regroups
            .push(RegroupWrite::Delete(record.regroup_group_id.clone()));
        for group in &record.mc_service_group_id_list {
            if group.home_system() == self.system {
                self.gms
                    .set_regrouped(group, &record.regroup_group_id, false)
                    .await?;
            }
        }
        // At a partner, with the answer to the primary's cancel request.
        if let Some((inbound, answer)) = answer {
            return self.commit_answer(effects, inbound, answer).await;
        }
        let committed = self.commits.commit(&effects).await?;
        self.wakers.wake(&committed.woken_sessions);
        self.outbox.committed(&committed);
        Ok(None)
    }

    /// The members of a regroup in this system leave it: their serving rows for the
    /// regroup group go, and each is told. (At the regroup group's primary, deleting the
    /// regroup group removes its hosted affiliations and the GMS's view, in every system.)
    pub(super) async fn members_leave(
        &self,
        record: &RegroupRecord,
        service: McService,
        effects: &mut Effects,
    ) -> Result<()> {
        // The members' sessions, read once (a join), not once per member.
        let sessions: std::collections::BTreeMap<_, _> = self
            .sessions
            .sessions_affiliated_to(&record.regroup_group_id)
            .await?
            .into_iter()
            .map(|s| ((s.mc_service_id, s.client_id), s.session_id))
            .collect();
        for member in &record.members {
            // The serving rows go here; the primary deletes the regroup group, and with it
            // its hosted affiliations and the GMS's view, in every system.
            self.regroup_affiliation(
                &member.mc_service_id,
                &member.client_id,
                record.mc_service,
                &record.regroup_group_id,
                Change::Leave,
                effects,
            );
            // A member whose row went meanwhile (its host refused the join) is looked up
            // on its own.
            let session_id =
                match sessions.get(&(member.mc_service_id.clone(), member.client_id.clone())) {
                    Some(id) => Some(id.clone()),
                    None => self
                        .sessions
                        .sessions_of(&member.mc_service_id)
                        .await?
                        .into_iter()
                        .find(|s| s.client_id == member.client_id)
                        .map(|s| s.session_id),
                };
            if let Some(session_id) = session_id {
                effects.client_events.push((
                    Audience::Session(session_id),
                    ClientEvent::RegroupCancelled {
                        request: PreconfiguredRegroupCancelRequest {
                            mc_service_id: member.mc_service_id.clone(),
                            regroup_group_id: record.regroup_group_id.clone(),
                            mc_service: service,
                        },
                    },
                ));
            }
        }
        Ok(())
    }
}
