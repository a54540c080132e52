//! Which clients a regroup reaches, their affiliation to the regroup group, and clients
//! joining or leaving while it is in effect.

use std::collections::{BTreeMap, BTreeSet};

use mcx_model::api::{RegroupMember, RegroupState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::{
    AffiliationStatus, ServerGroupAffiliationRequest, ServerGroupDeaffiliationRequest,
};
use mcx_model::flows::partner::PartnerRequest;
use mcx_model::flows::regroup::*;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty};

use super::Change;
use crate::error::Result;
use crate::mc_service_server::McServiceServer;
use crate::ports::{
    AffiliationWrite, Audience, ClientAffiliation, Effects, GmsStatusUpdate, PartnerAudience,
    RegroupWrite,
};

impl McServiceServer {
    /// Steps 6, 7 and 10 for this system: the clients it serves that are affiliated to
    /// any listed group, other than those `already` members, are told and affiliated to
    /// the regroup group.
    pub(super) async fn affected_clients(
        &self,
        regroup: &McServiceGroupId,
        groups: &[McServiceGroupId],
        service: McService,
        preconfigured: &McServiceGroupId,
        already: &[RegroupMember],
    ) -> Result<(Effects, Vec<RegroupMember>)> {
        let mut per_client: BTreeMap<(McServiceId, ClientId), BTreeSet<McServiceGroupId>> =
            BTreeMap::new();
        // Each affected client's session, read once per group rather than once per user.
        let mut sessions: BTreeMap<(McServiceId, ClientId), String> = BTreeMap::new();
        for group in groups {
            for session in self.sessions.sessions_affiliated_to(group).await? {
                sessions.insert(
                    (session.mc_service_id.clone(), session.client_id.clone()),
                    session.session_id,
                );
            }
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
            if already
                .iter()
                .any(|m| m.mc_service_id == user && m.client_id == client)
            {
                continue;
            }
            let Some(session_id) = sessions.remove(&(user.clone(), client.clone())) else {
                continue;
            };
            effects.service.regroups.push(RegroupWrite::Join {
                regroup: regroup.clone(),
                user: user.clone(),
                client: client.clone(),
            });
            self.regroup_affiliation(&user, &client, service, regroup, Change::Join, &mut effects);
            effects.client_events.push((
                Audience::Session(session_id),
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
    pub(super) fn regroup_affiliation(
        &self,
        user: &McServiceId,
        client: &ClientId,
        service: McService,
        regroup: &McServiceGroupId,
        change: Change,
        effects: &mut Effects,
    ) {
        let joining = change == Change::Join;
        effects.service.affiliations.push(if joining {
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
            effects.service.affiliations.push(if joining {
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
            effects.gms.status_update(GmsStatusUpdate {
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

    /// A client affiliated to regrouped groups: it joins each regroup in effect that one
    /// of them is part of (what users expect of a regroup in effect).
    pub(in crate::mc_service_server) async fn join_regroups(
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
                effects.service.regroups.push(RegroupWrite::Join {
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
        if !effects.service.regroups.is_empty() {
            self.commit_regroup_effects(&effects).await?;
        }
        Ok(())
    }

    /// Clients that left regrouped groups: a client no longer affiliated to any group of
    /// a regroup leaves it and is told (with `tell`; not at log-off).
    pub(in crate::mc_service_server) async fn leave_regroups(
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
                effects.service.regroups.push(RegroupWrite::Leave {
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
        if !effects.service.regroups.is_empty() {
            self.commit_regroup_effects(&effects).await?;
        }
        Ok(())
    }
}
