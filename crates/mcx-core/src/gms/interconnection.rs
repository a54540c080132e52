//! Group configuration for interconnection (TS 23.280 §10.2.7): the GMS of a group's
//! primary system provides the configuration to partner GMSs (§10.2.7.2), answers their
//! requests (§10.2.7.3) and subscriptions (§10.2.7.4) and notifies them of every change
//! and every new key (§10.2.7.5). A partner GMS modifies what it receives by local
//! policy, stores it, notifies its MC service servers and subscribed clients, and serves
//! it to its own users; its modifications never flow back.
//!
//! Requests to partners leave through the outbox in the same commit as the change that
//! causes them; answers come back through [`crate::interconnection_gateway`].

use std::collections::BTreeSet;
use std::sync::Arc;

use mcx_model::api::{InterconnectionStatus, PrimaryLinkState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::group_configuration::*;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::flows::{FailureCause, FlowResult};
use mcx_model::group::{GroupConfiguration, GroupOrigin, GroupRecord};
use mcx_model::interconnection::Capability;
use mcx_model::profile::Permission;
use mcx_model::{McServiceGroupId, McServiceId, SystemDomain};

use super::policy::apply_local_policy;
use super::{
    GroupConfigurationNotification, GroupManagementServer, generate_key_material, not_found,
};
use crate::error::{Error, ErrorKind, Result, codes};
use crate::events::{Inbound, Reply};
use crate::identity::Requester;
use crate::ports::{
    Audience, CopyOutcome, Effects, GmsEffects, PartnerAudience, PartnerRecordChange,
    PartnerRecordUpdate, PrimaryLinkUpdate,
};

/// How a partner copy arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Group information provision request (§10.2.7.2).
    Provision,
    /// Group information response (§10.2.7.3).
    Response,
    /// Group information notify request (§10.2.7.5).
    Notify,
}

/// The "MC service group configuration information" of a stored group, as sent to partners.
fn information(record: &GroupRecord, with_key: bool) -> GroupConfigurationInformation {
    GroupConfigurationInformation {
        configuration: record.configuration.clone(),
        version: record.version,
        key_material: if with_key {
            record.key_material.clone()
        } else {
            None
        },
    }
}

impl GroupManagementServer {
    /// The partner systems among the members' home systems to which this system may
    /// provide configuration.
    fn member_partners(&self, config: &GroupConfiguration) -> BTreeSet<SystemDomain> {
        config
            .list
            .iter()
            .map(|m| m.uri.domain())
            .filter(|d| d != &self.system)
            .filter(|d| {
                self.partners
                    .may_send(d, Capability::ProvideGroupConfiguration)
            })
            .collect()
    }

    /// What a new version of a local group sends to partners: a notify to every
    /// subscribed partner (§10.2.7.5, with the key when it changed), and a provision to
    /// every partner whose users became members (§10.2.7.2).
    pub(super) fn effects_of_local_change(
        &self,
        previous: Option<&GroupConfiguration>,
        record: &GroupRecord,
        key_changed: bool,
        effects: &mut Effects,
    ) {
        let id = &record.mc_service_group_id;
        if previous.is_some() {
            effects.send(
                PartnerAudience::SubscribedPartners(id.clone()),
                PartnerRequest::GroupInformationNotify(GroupInformationNotifyRequest {
                    mc_service_group_id: id.clone(),
                    mc_service_group_configuration_information: information(record, key_changed),
                }),
            );
            effects
                .gms
                .partner_records
                .push(PartnerRecordUpdate::SubscribedPending {
                    group: id.clone(),
                    version: record.version,
                });
        }
        let before = previous
            .map(|c| self.member_partners(c))
            .unwrap_or_default();
        for partner in self
            .member_partners(&record.configuration)
            .difference(&before)
        {
            self.provide(record, partner, effects);
        }
    }

    /// Members removed by a change of a local group: their subscriptions here end in the
    /// same commit, and a partner system left without a member that was not given the
    /// group by an administrator is no longer notified and its copy is withdrawn.
    pub(super) async fn effects_of_leaving_members(
        &self,
        previous: &GroupConfiguration,
        record: &GroupRecord,
        effects: &mut Effects,
    ) -> Result<()> {
        let id = &record.mc_service_group_id;
        effects.gms.ended_subscriptions.extend(removed_members(
            id,
            previous,
            &record.configuration,
            &self.system,
        ));
        let after = self.member_partners(&record.configuration);
        for partner in self.member_partners(previous).difference(&after) {
            if self.links.shared_with(id, partner).await? {
                continue;
            }
            effects
                .gms
                .partner_records
                .push(PartnerRecordUpdate::Dropped {
                    partner: partner.clone(),
                    group: id.clone(),
                });
            effects.send(
                PartnerAudience::Partner(partner.clone()),
                PartnerRequest::GroupInformationWithdraw(GroupInformationWithdrawRequest {
                    mc_service_group_id: id.clone(),
                    version: record.version,
                }),
            );
            tracing::info!(group = %id, %partner, "partner no longer serves a member: its copy is withdrawn");
        }
        Ok(())
    }

    pub(super) fn provide(
        &self,
        record: &GroupRecord,
        partner: &SystemDomain,
        effects: &mut Effects,
    ) {
        let id = &record.mc_service_group_id;
        effects.send(
            PartnerAudience::Partner(partner.clone()),
            PartnerRequest::GroupInformationProvision(GroupInformationProvisionRequest {
                mc_service_group_id: id.clone(),
                mc_service_group_configuration_information: information(record, true),
            }),
        );
        effects.gms.partner_records.push(PartnerRecordUpdate::One {
            partner: partner.clone(),
            group: id.clone(),
            change: PartnerRecordChange::Pending {
                version: record.version,
            },
        });
    }

    async fn local_group_for_admin(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
        to_do: &str,
    ) -> Result<GroupRecord> {
        requester.require(Permission::GroupAdministration, &format!("{to_do} groups"))?;
        let group = self.store.group(id).await?.ok_or_else(|| not_found(id))?;
        self.require_local(&group, to_do)?;
        Ok(group)
    }

    /// §10.2.7.2 triggered by an administrator: provides the group's configuration to a
    /// partner system. Delivery is durable and retried; its state shows in the status.
    pub async fn share_group(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
        partner: &SystemDomain,
    ) -> Result<InterconnectionStatus> {
        let group = self.local_group_for_admin(requester, id, "share").await?;
        self.partners
            .check_outbound(partner, Capability::ProvideGroupConfiguration)?;
        let mut effects = Effects::none();
        self.provide(&group, partner, &mut effects);
        let committed = self.links.record_share(id, partner, &effects).await?;
        self.after_commit(&committed, None);
        tracing::info!(group = %id, %partner, version = group.version, "group shared with partner");
        self.status(&group).await
    }

    /// Generates new key material for a local group (group administrators). The new key
    /// is a new version; subscribed partners are notified with the key (§10.2.7.5).
    pub async fn rekey_group(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
    ) -> Result<GroupRecord> {
        let current = self.local_group_for_admin(requester, id, "rekey").await?;
        let generation = current
            .key_material
            .as_ref()
            .map_or(1, |k| k.generation + 1);
        let now = self.clock.now();
        let record = GroupRecord {
            key_material: Some(generate_key_material(
                generation,
                now,
                self.entropy.as_ref(),
            )),
            version: current.version + 1,
            updated_at: now,
            ..current.clone()
        };
        self.replace(&record, &current, true).await?;
        tracing::info!(group = %id, generation, "group rekeyed");
        Ok(record)
    }

    /// How a group is shared: at the primary, its partners; at a partner, its link to the
    /// primary. Group administrators only.
    pub async fn interconnection_status(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
    ) -> Result<InterconnectionStatus> {
        requester.require(Permission::GroupAdministration, "see how groups are shared")?;
        match self.store.group(id).await? {
            Some(group) => self.status(&group).await,
            None => match self.links.primary_link(id).await? {
                Some(link) => Ok(InterconnectionStatus {
                    mc_service_group_id: id.clone(),
                    home_system: id.home_system(),
                    partners: Vec::new(),
                    primary: Some(link),
                    // The TLS edge adds what it refused; the core does not see handshakes.
                    certificate_refusals: Vec::new(),
                }),
                None => Err(not_found(id)),
            },
        }
    }

    async fn status(&self, group: &GroupRecord) -> Result<InterconnectionStatus> {
        let id = &group.mc_service_group_id;
        Ok(InterconnectionStatus {
            mc_service_group_id: id.clone(),
            home_system: id.home_system(),
            partners: self.links.partner_records(id).await?,
            primary: match group.origin {
                GroupOrigin::Local => None,
                GroupOrigin::Partner { .. } => self.links.primary_link(id).await?,
            },
            certificate_refusals: Vec::new(),
        })
    }

    /// Whether a partner may have a local group's configuration: its users are members, or
    /// an administrator shared the group with it.
    async fn partner_may_use(&self, group: &GroupRecord, partner: &SystemDomain) -> Result<bool> {
        if group
            .configuration
            .list
            .iter()
            .any(|m| &m.uri.domain() == partner)
        {
            return Ok(true);
        }
        Ok(self
            .links
            .shared_with(&group.mc_service_group_id, partner)
            .await?)
    }

    /// Why a local group cannot be given to a partner, if it cannot.
    async fn refusal_for_partner(
        &self,
        id: &McServiceGroupId,
        from: &SystemDomain,
    ) -> Result<std::result::Result<GroupRecord, FailureReason>> {
        let refuse = |cause, reason: String| Ok(Err(FailureReason { cause, reason }));
        let Some(group) = self.store.group(id).await? else {
            return refuse(
                FailureCause::UnknownGroup,
                format!("there is no group '{id}' in {}", self.system),
            );
        };
        if group.origin != GroupOrigin::Local {
            return refuse(
                FailureCause::GroupNotHomedHere,
                format!(
                    "group '{id}' is not defined in {}: ask its primary system, {}",
                    self.system,
                    id.home_system()
                ),
            );
        }
        if !self.partner_may_use(&group, from).await? {
            return refuse(
                FailureCause::NotAuthorized,
                format!(
                    "no member of group '{id}' is served by {from}, and it was not shared with {from}"
                ),
            );
        }
        Ok(Ok(group))
    }

    /// §10.2.7.3 step 3 at the primary: answers a partner's group information request with
    /// the configuration (NOTE 1) or the reason it cannot (NOTE 2).
    pub(crate) async fn answer_group_information_request(
        &self,
        from: &SystemDomain,
        request: &GroupInformationRequest,
    ) -> Result<GroupInformationResponse> {
        let id = &request.mc_service_group_id;
        let outcome = match self.refusal_for_partner(id, from).await? {
            Ok(group) => GroupInformationOutcome::Provided(Box::new(information(&group, true))),
            Err(reason) => GroupInformationOutcome::NotProvided(reason),
        };
        Ok(GroupInformationResponse {
            mc_service_group_id: id.clone(),
            outcome,
        })
    }

    /// §10.2.7.4 step 2 at the primary: records a partner's subscription. The current
    /// version is notified to it at once, so a change made between its request and its
    /// subscription is not lost (a duplicate is acknowledged without effect).
    pub(crate) async fn answer_subscribe(
        &self,
        (from, transaction): Inbound<'_>,
        request: &GroupInformationSubscribeRequest,
    ) -> Result<Reply> {
        let id = &request.mc_service_group_id;
        let respond = |result| GroupInformationSubscribeResponse {
            mc_service_group_id: id.clone(),
            result,
        };
        for _ in 0..5 {
            let group = match self.refusal_for_partner(id, from).await? {
                Ok(group) => group,
                Err(reason) => {
                    return Ok(Reply::Unrecorded(
                        PartnerResponse::GroupInformationSubscribe(respond(FlowResult::failure(
                            reason.cause,
                            reason.reason,
                        ))),
                    ));
                }
            };
            let mut effects = Effects::none();
            // §10.2.7.4 step 2 (this response) comes before §10.2.7.5 (the first notify):
            // the notify waits until the response has gone.
            effects.send_after(
                PartnerAudience::Partner(from.clone()),
                PartnerRequest::GroupInformationNotify(GroupInformationNotifyRequest {
                    mc_service_group_id: id.clone(),
                    mc_service_group_configuration_information: information(&group, true),
                }),
                std::time::Duration::from_millis(100),
            );
            effects.gms.partner_records.push(PartnerRecordUpdate::One {
                partner: from.clone(),
                group: id.clone(),
                change: PartnerRecordChange::Subscribed(true),
            });
            effects.gms.partner_records.push(PartnerRecordUpdate::One {
                partner: from.clone(),
                group: id.clone(),
                change: PartnerRecordChange::Pending {
                    version: group.version,
                },
            });
            let answer = PartnerResponse::GroupInformationSubscribe(respond(FlowResult::Success));
            effects.inbound_answer = Some(crate::ports::InboundAnswer {
                partner: from.clone(),
                transaction,
                answer: answer.clone(),
            });
            if let Some(committed) = self
                .links
                .subscribe_partner(id, from, group.version, &effects)
                .await?
            {
                if committed.conflict {
                    return self
                        .recorded((from, transaction))
                        .await
                        .map(Reply::Recorded);
                }
                self.after_commit(&committed, None);
                tracing::info!(group = %id, partner = %from, "partner subscribed to group configuration");
                return Ok(Reply::Recorded(answer));
            }
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("group '{id}' kept changing while subscribing {from}; retry"),
        ))
    }

    /// The partner's answer to a provision or notify: the primary records, per partner,
    /// what was delivered (§10.2.7.2 "the primary records per partner what was delivered").
    pub(crate) async fn on_delivery_answer(
        &self,
        partner: &SystemDomain,
        outbox_id: i64,
        group: &McServiceGroupId,
        version: u64,
        result: &FlowResult,
    ) -> Result<()> {
        let change = match result {
            FlowResult::Success => PartnerRecordChange::Delivered { version },
            FlowResult::Failure { cause, reason } => {
                tracing::warn!(%group, %partner, version, %cause, reason, "partner did not store group configuration");
                PartnerRecordChange::Failed {
                    version,
                    detail: format!("{cause}: {reason}"),
                }
            }
        };
        let effects = Effects {
            complete_outbox: Some(outbox_id),
            gms: GmsEffects {
                partner_records: vec![PartnerRecordUpdate::One {
                    partner: partner.clone(),
                    group: group.clone(),
                    change,
                }],
                ..GmsEffects::default()
            },
            ..Effects::default()
        };
        self.links_commit(&effects).await
    }

    async fn links_commit(&self, effects: &Effects) -> Result<()> {
        let committed = self.event_store_commit(effects).await?;
        self.after_commit(&committed, None);
        Ok(())
    }

    // ---- the partner side ----

    /// §10.2.7.2 steps 2–5, §10.2.7.3 steps 4–6 and §10.2.7.5 at a partner: modifies the
    /// received configuration by local policy, stores it, notifies the MC service servers
    /// and subscribed clients, and subscribes at the primary if not yet subscribed.
    pub(crate) async fn receive_configuration(
        &self,
        from: &SystemDomain,
        id: &McServiceGroupId,
        info: &GroupConfigurationInformation,
        arrival: Arrival,
        mut extra: Effects,
        answer_to: Option<AnswerTo<'_>>,
    ) -> Result<Answered> {
        let refuse =
            |cause, reason: String| Ok(Answered::later(FlowResult::failure(cause, reason)));
        if &id.home_system() != from {
            return refuse(
                FailureCause::NotAuthorized,
                format!(
                    "group '{id}' is defined in {}; only its primary system provides its configuration",
                    id.home_system()
                ),
            );
        }
        if info.configuration.validate().is_err() || id.home_system() == self.system {
            return refuse(
                FailureCause::InvalidRequest,
                format!("the configuration of group '{id}' is not valid"),
            );
        }
        // Held to the bounds of a client's document, whichever flow brought it.
        if let Err(e) = self.limits.members(info.configuration.list.len()) {
            return refuse(FailureCause::InvalidRequest, e.to_string());
        }
        if let Some(Err(why)) = info.key_material.as_ref().map(|k| k.validate()) {
            return refuse(
                FailureCause::InvalidRequest,
                format!("the key material of group '{id}' is not valid: {why}"),
            );
        }
        let Some(partner) = self.partners.get(from) else {
            return refuse(
                FailureCause::NotAuthorized,
                format!("'{from}' is not a partner of {}", self.system),
            );
        };
        let configuration = match apply_local_policy(&partner.policy, &info.configuration) {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(group = %id, %from, why, "local policy refused received group configuration");
                if let Some(copy) = self.store.group(id).await? {
                    // The copy in use here is now behind its primary: its members are told
                    // and the link shows it.
                    let mut effects = Effects::none();
                    let members: std::collections::BTreeSet<_> = copy
                        .configuration
                        .list
                        .iter()
                        .map(|entry| entry.uri.clone())
                        .filter(|m| m.domain() == self.system)
                        .collect();
                    for member in members {
                        effects.client_events.push((
                            Audience::User(member),
                            ClientEvent::GroupCopyBehind {
                                mc_service_group_id: id.clone(),
                                primary_version: info.version,
                                reason: why.clone(),
                            },
                        ));
                    }
                    effects.gms.primary_link = Some(PrimaryLinkUpdate::to(
                        id,
                        PrimaryLinkState::Behind,
                        Some(format!(
                            "version {} of the primary was refused by local policy: {why}",
                            info.version
                        )),
                    ));
                    effects.complete_outbox = extra.complete_outbox.take();
                    let result = FlowResult::failure(
                        FailureCause::PolicyRejected,
                        format!("{} cannot use group '{id}': {why}", self.system),
                    );
                    let answer = answer_to.map(|to| to.with(&mut effects, id, result.clone()));
                    let committed = self.event_store_commit(&effects).await?;
                    return self.answered(committed, result, answer_to, answer).await;
                }
                return refuse(
                    FailureCause::PolicyRejected,
                    format!("{} cannot use group '{id}': {why}", self.system),
                );
            }
        };
        let link = self.links.primary_link(id).await?;
        let subscribed = link.as_ref().is_some_and(|l| {
            matches!(
                l.state,
                PrimaryLinkState::Subscribed
                    | PrimaryLinkState::Subscribing
                    | PrimaryLinkState::Behind
            )
        });
        for _ in 0..5 {
            let existing = self.store.group(id).await?;
            let key_material = info
                .key_material
                .clone()
                .or_else(|| existing.as_ref().and_then(|g| g.key_material.clone()));
            let record = GroupRecord {
                mc_service_group_id: id.clone(),
                configuration: configuration.clone(),
                key_material,
                version: existing.as_ref().map_or(1, |g| g.version + 1),
                origin: GroupOrigin::Partner {
                    primary_version: info.version,
                },
                updated_at: self.clock.now(),
            };
            let mut effects = Effects::none();
            if let Some(existing) = &existing {
                // Former members here are no longer notified (nor given the new key).
                effects.gms.ended_subscriptions = removed_members(
                    id,
                    &existing.configuration,
                    &record.configuration,
                    &self.system,
                );
            }
            effects.client_events.push((
                Audience::GroupSubscribers(id.clone()),
                ClientEvent::GroupConfigurationChanged {
                    group: Box::new(record.clone()),
                    etag: record.etag(),
                },
            ));
            if arrival == Arrival::Notify || subscribed {
                if link
                    .as_ref()
                    .is_none_or(|l| l.state != PrimaryLinkState::Subscribed)
                    && arrival == Arrival::Notify
                {
                    effects.gms.primary_link = Some(PrimaryLinkUpdate::to(
                        id,
                        PrimaryLinkState::Subscribed,
                        None,
                    ));
                }
            } else if self
                .partners
                .may_send(from, Capability::SubscribeGroupConfiguration)
            {
                // §10.2.7.4: once it holds the configuration, the partner GMS subscribes.
                effects.send_after(
                    PartnerAudience::Partner(from.clone()),
                    PartnerRequest::GroupInformationSubscribe(GroupInformationSubscribeRequest {
                        mc_service_group_id: id.clone(),
                    }),
                    // After the provision response has gone (§10.2.7.2 step 5 precedes §10.2.7.4).
                    std::time::Duration::from_millis(100),
                );
                effects.gms.primary_link = Some(PrimaryLinkUpdate::to(
                    id,
                    PrimaryLinkState::Subscribing,
                    None,
                ));
            }
            effects.complete_outbox = extra.complete_outbox.take();
            let answer = answer_to.map(|to| to.with(&mut effects, id, FlowResult::Success));
            match self.links.store_partner_copy(&record, &effects).await? {
                CopyOutcome::Stored(committed) if committed.conflict => {
                    return self
                        .answered(committed, FlowResult::Success, answer_to, answer)
                        .await;
                }
                CopyOutcome::Stored(committed) => {
                    tracing::info!(group = %id, %from, primary_version = info.version, version = record.version, ?arrival, "stored partner group configuration");
                    self.after_commit(
                        &committed,
                        Some(GroupConfigurationNotification::Changed(Arc::new(record))),
                    );
                    return Ok(Answered {
                        result: FlowResult::Success,
                        recorded: answer,
                    });
                }
                CopyOutcome::Duplicate => {
                    self.finish_exchange(&mut extra, &effects).await?;
                    return Ok(Answered::later(FlowResult::Success));
                }
                CopyOutcome::Stale { stored } => {
                    self.finish_exchange(&mut extra, &effects).await?;
                    return refuse(
                        FailureCause::StaleVersion,
                        format!(
                            "ignored: the stored copy of '{id}' derives from the newer version {stored}"
                        ),
                    );
                }
                // The local copy changed between read and write: read again.
                CopyOutcome::Conflict => extra.complete_outbox = effects.complete_outbox,
            }
        }
        Err(Error::refused(
            ErrorKind::Unavailable,
            codes::STORAGE_FAILURE,
            format!("the copy of group '{id}' kept changing while storing it; retry"),
        ))
    }

    /// After a commit that carried `answer` to a partner's transaction: a conflict means
    /// a copy of the transaction was answered first, and its answer is the one given.
    async fn answered(
        &self,
        committed: crate::ports::Committed,
        result: FlowResult,
        answer_to: Option<AnswerTo<'_>>,
        answer: Option<PartnerResponse>,
    ) -> Result<Answered> {
        if committed.conflict {
            let recorded = match answer_to {
                Some(to) => Some(self.recorded(to.inbound).await?),
                None => None,
            };
            return Ok(Answered { result, recorded });
        }
        self.after_commit(&committed, None);
        Ok(Answered {
            result,
            recorded: answer,
        })
    }

    /// The answer a copy of a partner's transaction committed first.
    async fn recorded(&self, inbound: Inbound<'_>) -> Result<PartnerResponse> {
        crate::events::recorded_answer(&*self.links, inbound).await
    }

    /// Completes an exchange whose answer changed nothing but the outbox (and perhaps the
    /// link state, when a response or notify confirms it).
    async fn finish_exchange(&self, extra: &mut Effects, attempted: &Effects) -> Result<()> {
        let effects = Effects {
            complete_outbox: attempted.complete_outbox.or(extra.complete_outbox.take()),
            ..Effects::default()
        };
        if effects.complete_outbox.is_some() {
            self.links_commit(&effects).await?;
        }
        Ok(())
    }

    /// A deleted group's withdrawal at a partner: the copy goes, servers and subscribed
    /// clients are told.
    pub(crate) async fn receive_withdraw(
        &self,
        (from, transaction): Inbound<'_>,
        request: &GroupInformationWithdrawRequest,
    ) -> Result<Reply> {
        let id = &request.mc_service_group_id;
        let respond = |result| {
            PartnerResponse::GroupInformationWithdraw(GroupInformationWithdrawResponse {
                mc_service_group_id: id.clone(),
                result,
            })
        };
        if &id.home_system() != from {
            return Ok(Reply::Unrecorded(respond(FlowResult::failure(
                FailureCause::NotAuthorized,
                format!(
                    "group '{id}' is defined in {}; only its primary system withdraws it",
                    id.home_system()
                ),
            ))));
        }
        let mut effects = Effects::event(
            Audience::GroupSubscribers(id.clone()),
            ClientEvent::GroupDeleted {
                mc_service_group_id: id.clone(),
            },
        );
        effects.gms.primary_link = Some(PrimaryLinkUpdate::forget(id));
        let answer = respond(FlowResult::Success);
        effects.inbound_answer = Some(crate::ports::InboundAnswer {
            partner: from.clone(),
            transaction,
            answer: answer.clone(),
        });
        match self
            .links
            .remove_partner_copy(id, request.version, &effects)
            .await?
        {
            Some(committed) if committed.conflict => self
                .recorded((from, transaction))
                .await
                .map(Reply::Recorded),
            Some(committed) => {
                tracing::info!(group = %id, %from, "partner group withdrawn by its primary");
                self.after_commit(
                    &committed,
                    Some(GroupConfigurationNotification::Deleted(id.clone())),
                );
                Ok(Reply::Recorded(answer))
            }
            // Nothing to withdraw: answered alone.
            None => Ok(Reply::Unrecorded(answer)),
        }
    }

    /// §10.2.7.3 steps 1–2 at a partner: requests a partner-homed group's configuration
    /// from its primary unless it is stored or already asked for. Returns whether a
    /// request was queued.
    pub async fn request_configuration(&self, id: &McServiceGroupId) -> Result<bool> {
        let home = id.home_system();
        if home == self.system || self.store.group(id).await?.is_some() {
            return Ok(false);
        }
        if let Some(link) = self.links.primary_link(id).await?
            && matches!(
                link.state,
                PrimaryLinkState::Requested | PrimaryLinkState::Subscribing
            )
        {
            return Ok(false);
        }
        self.partners
            .check_outbound(&home, Capability::RequestGroupConfiguration)?;
        let mut effects = Effects::none();
        effects.send(
            PartnerAudience::Partner(home.clone()),
            PartnerRequest::GroupInformationRequest(GroupInformationRequest {
                mc_service_group_id: id.clone(),
            }),
        );
        effects.gms.primary_link =
            Some(PrimaryLinkUpdate::to(id, PrimaryLinkState::Requested, None));
        self.links_commit(&effects).await?;
        tracing::info!(group = %id, primary = %home, "requested group configuration from its primary");
        Ok(true)
    }

    /// §10.2.7.3 triggered by an administrator at a partner.
    pub async fn fetch_group(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
    ) -> Result<InterconnectionStatus> {
        requester.require(Permission::GroupAdministration, "fetch partner groups")?;
        if id.home_system() == self.system {
            return Err(Error::refused(
                ErrorKind::Invalid,
                codes::GROUP_NOT_HOMED_HERE,
                format!(
                    "group '{id}' is defined in this system; there is no primary to fetch it from"
                ),
            ));
        }
        if self.store.group(id).await?.is_some() {
            // Already stored: ask again anyway, the administrator wants a fresh copy.
            self.partners
                .check_outbound(&id.home_system(), Capability::RequestGroupConfiguration)?;
            let mut effects = Effects::none();
            effects.send(
                PartnerAudience::Partner(id.home_system()),
                PartnerRequest::GroupInformationRequest(GroupInformationRequest {
                    mc_service_group_id: id.clone(),
                }),
            );
            self.links_commit(&effects).await?;
        } else {
            self.request_configuration(id).await?;
        }
        self.interconnection_status(requester, id).await
    }

    /// The primary's answer to a group information request (§10.2.7.3 steps 3–6).
    pub(crate) async fn on_group_information_response(
        &self,
        from: &SystemDomain,
        outbox_id: i64,
        response: &GroupInformationResponse,
    ) -> Result<()> {
        let id = &response.mc_service_group_id;
        let failure = match &response.outcome {
            GroupInformationOutcome::Provided(info) => {
                let extra = Effects {
                    complete_outbox: Some(outbox_id),
                    ..Effects::default()
                };
                match self
                    .receive_configuration(from, id, info, Arrival::Response, extra, None)
                    .await?
                    .result
                {
                    FlowResult::Success => return Ok(()),
                    FlowResult::Failure { cause, reason } => format!("{cause}: {reason}"),
                }
            }
            GroupInformationOutcome::NotProvided(reason) => {
                tracing::warn!(group = %id, primary = %from, cause = %reason.cause, reason = reason.reason, "primary did not provide group configuration");
                format!("{}: {}", reason.cause, reason.reason)
            }
        };
        self.record_link_failure(id, outbox_id, failure).await
    }

    /// The primary's answer to a subscribe request (§10.2.7.4 step 2).
    pub(crate) async fn on_subscribe_response(
        &self,
        from: &SystemDomain,
        outbox_id: i64,
        response: &GroupInformationSubscribeResponse,
    ) -> Result<()> {
        let id = &response.mc_service_group_id;
        match &response.result {
            FlowResult::Success => {
                // A newer version refused by local policy meanwhile keeps the link behind.
                let behind = self
                    .links
                    .primary_link(id)
                    .await?
                    .is_some_and(|l| l.state == PrimaryLinkState::Behind);
                let effects = Effects {
                    complete_outbox: Some(outbox_id),
                    gms: GmsEffects {
                        primary_link: (!behind)
                            .then(|| PrimaryLinkUpdate::to(id, PrimaryLinkState::Subscribed, None)),
                        ..GmsEffects::default()
                    },
                    ..Effects::default()
                };
                tracing::info!(group = %id, primary = %from, "subscribed to group configuration at its primary");
                self.links_commit(&effects).await
            }
            FlowResult::Failure { cause, reason } => {
                self.record_link_failure(id, outbox_id, format!("{cause}: {reason}"))
                    .await
            }
        }
    }

    /// Records that the primary refused (or could not be asked) and completes the exchange.
    pub(crate) async fn record_link_failure(
        &self,
        id: &McServiceGroupId,
        outbox_id: i64,
        detail: String,
    ) -> Result<()> {
        let effects = Effects {
            complete_outbox: Some(outbox_id),
            gms: GmsEffects {
                primary_link: Some(PrimaryLinkUpdate::to(
                    id,
                    PrimaryLinkState::Failed,
                    Some(detail),
                )),
                ..GmsEffects::default()
            },
            ..Effects::default()
        };
        self.links_commit(&effects).await
    }
}

/// The users of `system` that `previous` lists as members and `next` does not, with
/// the group (`group`): their subscriptions end.
pub(super) fn removed_members(
    group: &McServiceGroupId,
    previous: &GroupConfiguration,
    next: &GroupConfiguration,
    system: &SystemDomain,
) -> Vec<(McServiceGroupId, McServiceId)> {
    let removed: BTreeSet<&McServiceId> = previous
        .list
        .iter()
        .map(|m| &m.uri)
        .filter(|u| &u.domain() == system && !next.is_member(u))
        .collect();
    removed
        .into_iter()
        .map(|u| (group.clone(), u.clone()))
        .collect()
}

/// Where the answer to a partner's flow goes when a handler records it with its effects:
/// the transaction, and how the flow's response is made from its result.
#[derive(Clone, Copy)]
pub(crate) struct AnswerTo<'a> {
    /// The partner's transaction.
    pub(crate) inbound: Inbound<'a>,
    /// The flow's response for a group and a result.
    pub(crate) make: fn(&McServiceGroupId, FlowResult) -> PartnerResponse,
}

impl AnswerTo<'_> {
    /// Puts the answer for `result` into `effects`, and returns it.
    fn with(
        self,
        effects: &mut Effects,
        group: &McServiceGroupId,
        result: FlowResult,
    ) -> PartnerResponse {
        let answer = (self.make)(group, result);
        effects.inbound_answer = Some(crate::ports::InboundAnswer {
            partner: self.inbound.0.clone(),
            transaction: self.inbound.1,
            answer: answer.clone(),
        });
        answer
    }
}

/// How receiving a configuration went: its result, and the answer recorded with its
/// effects when it was asked to record one (`None`: not recorded yet).
pub(crate) struct Answered {
    /// The outcome.
    pub(crate) result: FlowResult,
    /// The answer given, recorded in the commit of the effects.
    pub(crate) recorded: Option<PartnerResponse>,
}

impl Answered {
    fn later(result: FlowResult) -> Self {
        Self {
            result,
            recorded: None,
        }
    }
}
