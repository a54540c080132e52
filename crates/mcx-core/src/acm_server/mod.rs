//! The ACM (administrative configuration management) server: an authorised user of the
//! primary system provides a list of interconnection group IDs to a selected authorised
//! user of a partner system, store-and-forward, while either may be logged off for days
//! (TR 23.700-38 solution, steps 1–14; pending ACM data of TS 23.280 §10.17).
//!
//! Every step is stored before it is acknowledged. Requests between the ACM servers leave
//! through the outbox in the same commit as the state that causes them, and are retried
//! until the partner answers; each exchange is identified end to end by its request ID,
//! so a retransmission has no second effect.
//!
//! Closing the loop: once the target accepts, the primary authorises the partner to obtain
//! the groups' configuration (as if shared), and the partner's administrator can apply the
//! group IDs to local users' profiles; at their next log-on the partner fetches the
//! configuration (§10.2.7.3) and the users can affiliate.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use mcx_model::api::{AcmApplyRequest, AcmExchange, AcmExchangeList, AcmProvisionOrder, AcmState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::FlowResult;
use mcx_model::flows::acm::*;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::group::GroupOrigin;
use mcx_model::interconnection::Capability;
use mcx_model::profile::{Permission, UserProfile};
use mcx_model::{McServiceId, SystemDomain};

use crate::error::{Error, ErrorKind, Result, codes};
use crate::events::{Inbound, StreamWakers};
use crate::gms::GroupManagementServer;
use crate::identity::{Requester, SessionObserver};
use crate::partners::Partners;

mod decide;
use crate::ports::{
    AcmRole, AcmWrite, Audience, Clock, Effects, PartnerAudience, ProfileAddition, SessionRecord,
    Store,
};

/// The ACM server of one system.
pub struct AcmServer {
    system: SystemDomain,
    store: Arc<dyn crate::ports::AcmStore>,
    users: Arc<dyn crate::ports::UserStore>,
    commits: Arc<dyn crate::ports::EventStore>,
    answers: Arc<dyn crate::ports::InterconnectionStore>,
    gms: Arc<GroupManagementServer>,
    partners: Arc<Partners>,
    wakers: Arc<StreamWakers>,
    outbox: Arc<crate::outbox_signal::OutboxSignal>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn crate::ports::Entropy>,
}

/// What an ACM server is built from.
pub struct AcmParts {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The GMS of the same system (to check the groups offered are defined here).
    pub gms: Arc<GroupManagementServer>,
    /// The partner systems.
    pub partners: Arc<Partners>,
    /// Wakes clients' event streams.
    pub wakers: Arc<StreamWakers>,
    /// Wakes the outbox dispatcher.
    pub outbox: Arc<crate::outbox_signal::OutboxSignal>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness: identifiers, secrets, jitter.
    pub entropy: Arc<dyn crate::ports::Entropy>,
}

fn not_found(request_id: &AcmRequestId) -> Error {
    Error::refused(
        ErrorKind::NotFound,
        codes::ACM_REQUEST_NOT_FOUND,
        format!("there is no ACM request {request_id} here"),
    )
}

impl AcmServer {
    /// An ACM server.
    pub fn new(parts: AcmParts) -> Self {
        Self {
            system: parts.gms.system().clone(),
            store: parts.store.clone(),
            users: parts.store.clone(),
            commits: parts.store.clone(),
            answers: parts.store,
            gms: parts.gms,
            partners: parts.partners,
            wakers: parts.wakers,
            outbox: parts.outbox,
            clock: parts.clock,
            entropy: parts.entropy,
        }
    }

    /// Commits; `false` if a guarded write found its exchange moved on (nothing kept).
    async fn commit(&self, effects: &Effects) -> Result<bool> {
        crate::events::commit_and_wake(&*self.commits, &self.wakers, &self.outbox, effects).await
    }

    /// Commits with the answer to a partner's transaction (see
    /// [`crate::events::commit_answer`]).
    async fn commit_answered(
        &self,
        effects: Effects,
        inbound: Inbound<'_>,
        answer: PartnerResponse,
    ) -> Result<Option<PartnerResponse>> {
        Ok(crate::events::commit_answer(
            &*self.commits,
            &*self.answers,
            &self.wakers,
            &self.outbox,
            effects,
            inbound,
            answer,
        )
        .await?
        .map(crate::events::Given::answer))
    }

    /// Records the answer to a partner's transaction with no other effect.
    async fn answer_alone(
        &self,
        inbound: Inbound<'_>,
        answer: PartnerResponse,
    ) -> Result<PartnerResponse> {
        crate::events::commit_answer_alone(
            &*self.commits,
            &*self.answers,
            &self.wakers,
            &self.outbox,
            inbound,
            answer,
        )
        .await
    }

    fn pending_notification(user: &McServiceId, count: usize) -> (Audience, ClientEvent) {
        (
            Audience::User(user.clone()),
            ClientEvent::AcmPendingData(PendingAcmDataNotification {
                mc_service_id: user.clone(),
                pending_count: count as u64,
            }),
        )
    }

    /// Steps 1–3 at the primary: the sender's request is checked, stored, and forwarded.
    pub async fn provide(
        &self,
        requester: &Requester,
        order: AcmProvisionOrder,
    ) -> Result<AcmExchange> {
        // Step 2: the sender is authorised.
        requester.require(
            Permission::AcmAdministration,
            "provide interconnection group IDs",
        )?;
        self.gms.limits().list(
            "interconnection-group-id-list",
            order.interconnection_group_id_list.len(),
        )?;
        let partner = order.target_mc_service_id.domain();
        if partner == self.system {
            return Err(Error::refused(
                ErrorKind::Invalid,
                codes::INVALID_REQUEST,
                format!(
                    "{} is a user of this system: ACM provides group IDs to partner systems",
                    order.target_mc_service_id
                ),
            ));
        }
        self.partners.check_outbound(&partner, Capability::Acm)?;
        for group in order.interconnection_group_id_list.iter() {
            let defined_here = self
                .gms
                .group_for_server(group)
                .await?
                .is_some_and(|g| g.origin == GroupOrigin::Local);
            if !defined_here {
                return Err(Error::refused(
                    ErrorKind::Invalid,
                    codes::GROUP_NOT_HOMED_HERE,
                    format!(
                        "'{group}' is not a group defined in {}: only this system's groups can be provided",
                        self.system
                    ),
                ));
            }
        }
        let request = AcmGroupInformationProvisionRequest {
            request_id: Some(self.entropy.uuid_v7(self.clock.now())),
            mc_service_id: requester.mc_service_id.clone(),
            target_mc_service_id: order.target_mc_service_id,
            interconnection_group_id_list: order.interconnection_group_id_list,
        };
        let exchange = AcmExchange {
            request: request.clone(),
            primary_system: self.system.clone(),
            partner_system: partner.clone(),
            state: AcmState::Forwarding,
            detail: None,
            response: None,
            applied_to: Vec::new(),
            updated_at: self.clock.now(),
        };
        // Step 3, durably: the request and its forwarding commit together.
        let mut effects = Effects::none();
        effects.acm.exchanges.push(AcmWrite {
            exchange: exchange.clone(),
            role: AcmRole::Outgoing,
            owner: requester.mc_service_id.clone(),
            pending: false,
            only_if: None,
        });
        effects.send(
            PartnerAudience::Partner(partner),
            PartnerRequest::AcmGroupInformationProvision(request),
        );
        self.commit(&effects).await?;
        tracing::info!(request = ?exchange.request.request_id, to = %exchange.request.target_mc_service_id, "ACM provision request accepted for forwarding");
        Ok(exchange)
    }

    /// Steps 4a/4b at the partner: the request is verified and stored; the target is told
    /// if logged on (step 7a happens otherwise at log-on).
    pub(crate) async fn receive_provision(
        &self,
        (from, transaction): Inbound<'_>,
        request: &AcmGroupInformationProvisionRequest,
    ) -> Result<PartnerResponse> {
        let Some(request_id) = request.request_id else {
            return Err(Error::refused(
                ErrorKind::Invalid,
                codes::INVALID_FLOW,
                "an ACM request between systems needs its request ID",
            ));
        };
        let answer = |result| {
            PartnerResponse::AcmGroupInformationProvision(AcmProvisionStoredIndication {
                request_id,
                result,
            })
        };
        let inbound = (from, transaction);
        let already_stored = self
            .store
            .acm_exchange(AcmRole::Incoming, request_id)
            .await?
            .is_some();
        let target = &request.target_mc_service_id;
        let target_authorised = !already_stored
            && target.domain() == self.system
            && self
                .users
                .user(target)
                .await?
                .is_some_and(|u| u.profile.may(Permission::AcmAdministration));
        match decide::provision_verdict(
            &self.system,
            from,
            request,
            already_stored,
            target_authorised,
        ) {
            decide::ProvisionVerdict::AlreadyStored => {
                return self
                    .answer_alone(inbound, answer(FlowResult::Success))
                    .await;
            }
            decide::ProvisionVerdict::Refuse(refusal) => {
                return self.answer_alone(inbound, answer(refusal)).await;
            }
            decide::ProvisionVerdict::Store => {}
        }
        let exchange = AcmExchange {
            request: request.clone(),
            primary_system: from.clone(),
            partner_system: self.system.clone(),
            state: AcmState::Pending,
            detail: None,
            response: None,
            applied_to: Vec::new(),
            updated_at: self.clock.now(),
        };
        let pending = self.store.acm_pending(target).await?.len() + 1;
        let mut effects = Effects::none();
        effects.acm.exchanges.push(AcmWrite {
            exchange,
            role: AcmRole::Incoming,
            owner: target.clone(),
            pending: true,
            only_if: None,
        });
        effects
            .client_events
            .push(Self::pending_notification(target, pending));
        let given = self
            .commit_answered(effects, inbound, answer(FlowResult::Success))
            .await?
            .ok_or_else(|| {
                Error::refused(
                    ErrorKind::Unavailable,
                    codes::STORAGE_FAILURE,
                    format!("ACM request {request_id} is being stored; retry later"),
                )
            })?;
        tracing::info!(request = %request_id, %from, %target, "ACM provision request stored for its target");
        Ok(given)
    }

    /// Step 4b reaching the primary: the sender's request is recorded as stored (or
    /// refused), and the sender is told if logged on.
    pub(crate) async fn on_stored(
        &self,
        outbox_id: i64,
        indication: &AcmProvisionStoredIndication,
    ) -> Result<()> {
        let mut effects = Effects {
            complete_outbox: Some(outbox_id),
            ..Effects::default()
        };
        if let Some(mut exchange) = self
            .store
            .acm_exchange(AcmRole::Outgoing, indication.request_id)
            .await?
            && exchange.state == AcmState::Forwarding
        {
            match &indication.result {
                FlowResult::Success => exchange.state = AcmState::Stored,
                FlowResult::Failure { cause, reason } => {
                    exchange.state = AcmState::Refused;
                    exchange.detail = Some(format!("{cause}: {reason}"));
                }
            }
            exchange.updated_at = self.clock.now();
            let sender = exchange.request.mc_service_id.clone();
            effects.client_events.push((
                Audience::User(sender.clone()),
                ClientEvent::AcmProvisionStored(indication.clone()),
            ));
            effects.acm.exchanges.push(AcmWrite {
                exchange,
                role: AcmRole::Outgoing,
                owner: sender,
                pending: false,
                only_if: None,
            });
        }
        self.commit(&effects).await.map(|_| ())
    }

    /// Steps 7b/8 and 13b/14: the user's pending ACM data. Responses are delivered once;
    /// requests stay pending until answered.
    pub async fn download_pending(
        &self,
        requester: &Requester,
    ) -> Result<DownloadPendingAcmDataResponse> {
        let me = &requester.mc_service_id;
        let pending = self.store.acm_pending(me).await?;
        let mut effects = Effects::none();
        let mut acm_data = Vec::new();
        for (role, exchange) in pending {
            match role {
                AcmRole::Incoming => acm_data.push(PendingAcmItem::ProvisionRequest {
                    request: exchange.request.clone(),
                    received_at: exchange.updated_at,
                }),
                AcmRole::Outgoing => {
                    if let Some(response) = &exchange.response {
                        acm_data.push(PendingAcmItem::ProvisionResponse {
                            response: response.clone(),
                            interconnection_group_id_list: exchange
                                .request
                                .interconnection_group_id_list
                                .clone(),
                            received_at: exchange.updated_at,
                        });
                    }
                    effects.acm.exchanges.push(AcmWrite {
                        exchange,
                        role,
                        owner: me.clone(),
                        pending: false,
                        only_if: None,
                    });
                }
            }
        }
        if !effects.acm.exchanges.is_empty() {
            self.commit(&effects).await?;
        }
        Ok(DownloadPendingAcmDataResponse {
            mc_service_id: me.clone(),
            acm_data,
        })
    }

    /// Steps 9–10 at the partner: the target answers; the answer is stored and forwarded.
    pub async fn respond(
        &self,
        requester: &Requester,
        request_id: AcmRequestId,
        decision: AcmDecision,
    ) -> Result<AcmExchange> {
        let mut exchange = self
            .store
            .acm_exchange(AcmRole::Incoming, request_id)
            .await?
            .ok_or_else(|| not_found(&request_id))?;
        if exchange.request.target_mc_service_id != requester.mc_service_id {
            return Err(Error::refused(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "ACM request {request_id} is addressed to {}, not to {}",
                    exchange.request.target_mc_service_id, requester.mc_service_id
                ),
            ));
        }
        if exchange.state != AcmState::Pending {
            return Err(Error::refused(
                ErrorKind::Conflict,
                codes::ACM_ALREADY_ANSWERED,
                format!("ACM request {request_id} was answered already"),
            ));
        }
        let response = AcmGroupInformationProvisionResponse {
            request_id,
            mc_service_id: requester.mc_service_id.clone(),
            decision,
        };
        exchange.state = AcmState::Answered;
        exchange.response = Some(response.clone());
        exchange.updated_at = self.clock.now();
        let mut effects = Effects::none();
        effects.acm.exchanges.push(AcmWrite {
            exchange: exchange.clone(),
            role: AcmRole::Incoming,
            owner: requester.mc_service_id.clone(),
            pending: false,
            // "Still pending" and the answer are one step: a simultaneous second answer
            // finds it answered and changes nothing.
            only_if: Some(AcmState::Pending),
        });
        effects.send(
            PartnerAudience::Partner(exchange.primary_system.clone()),
            PartnerRequest::AcmGroupInformationProvisionResponse(response),
        );
        if !self.commit(&effects).await? {
            return Err(Error::refused(
                ErrorKind::Conflict,
                codes::ACM_ALREADY_ANSWERED,
                format!("ACM request {request_id} was answered already"),
            ));
        }
        tracing::info!(request = %request_id, by = %requester.mc_service_id, "ACM provision request answered");
        Ok(exchange)
    }

    /// Step 11 at the primary: the response is stored for the sender (pending data), the
    /// sender is told if logged on; an acceptance lets the partner obtain the groups.
    pub(crate) async fn receive_response(
        &self,
        (from, transaction): Inbound<'_>,
        response: &AcmGroupInformationProvisionResponse,
    ) -> Result<PartnerResponse> {
        let request_id = response.request_id;
        let answer = |result| {
            PartnerResponse::AcmGroupInformationProvisionResponse(AcmProvisionStoredIndication {
                request_id,
                result,
            })
        };
        let inbound = (from, transaction);
        let exchange = self
            .store
            .acm_exchange(AcmRole::Outgoing, request_id)
            .await?;
        match decide::response_verdict(&self.system, from, response, exchange.as_ref()) {
            decide::ResponseVerdict::Refuse(refusal) => {
                return self.answer_alone(inbound, answer(refusal)).await;
            }
            decide::ResponseVerdict::Answered { different } => {
                if different {
                    tracing::warn!(request = %request_id, %from, "a second, different ACM response was ignored: the first one stands");
                }
                return self
                    .answer_alone(inbound, answer(FlowResult::Success))
                    .await;
            }
            decide::ResponseVerdict::Record => {}
        }
        let Some(mut exchange) = exchange else {
            return Err(not_found(&request_id));
        };
        let was = exchange.state;
        exchange.state = AcmState::Answered;
        exchange.response = Some(response.clone());
        exchange.updated_at = self.clock.now();
        let sender = exchange.request.mc_service_id.clone();
        let pending = self.store.acm_pending(&sender).await?.len() + 1;
        let mut effects = Effects::none();
        if response.decision == AcmDecision::Accepted {
            effects.gms.share(
                from,
                exchange
                    .request
                    .interconnection_group_id_list
                    .iter()
                    .cloned(),
            );
        }
        effects.acm.exchanges.push(AcmWrite {
            exchange,
            role: AcmRole::Outgoing,
            owner: sender.clone(),
            pending: true,
            only_if: Some(was),
        });
        effects
            .client_events
            .push(Self::pending_notification(&sender, pending));
        let Some(given) = self
            .commit_answered(effects, inbound, answer(FlowResult::Success))
            .await?
        else {
            // Another response was stored meanwhile: it stands.
            tracing::warn!(request = %request_id, %from, "a simultaneous ACM response was ignored: the first one stands");
            return self
                .answer_alone(inbound, answer(FlowResult::Success))
                .await;
        };
        tracing::info!(request = %request_id, %from, "ACM provision response stored for the sender");
        Ok(given)
    }

    /// Closing the loop at the partner: the administrator applies accepted group IDs to
    /// local users' profiles.
    pub async fn apply(
        &self,
        requester: &Requester,
        request_id: AcmRequestId,
        apply: AcmApplyRequest,
    ) -> Result<AcmExchange> {
        requester.require(
            Permission::AcmAdministration,
            "apply interconnection group IDs to users",
        )?;
        self.gms.limits().list("users", apply.users.len())?;
        let mut exchange = self
            .store
            .acm_exchange(AcmRole::Incoming, request_id)
            .await?
            .ok_or_else(|| not_found(&request_id))?;
        let accepted = exchange
            .response
            .as_ref()
            .is_some_and(|r| r.decision == AcmDecision::Accepted);
        if !accepted {
            return Err(Error::refused(
                ErrorKind::Conflict,
                codes::ACM_NOT_ACCEPTED,
                format!(
                    "ACM request {request_id} has not been accepted; only accepted group IDs can be applied"
                ),
            ));
        }
        let mut effects = Effects::none();
        let mut applied: BTreeSet<McServiceId> = exchange.applied_to.iter().cloned().collect();
        for user in apply.users.iter() {
            if user.domain() != self.system || self.users.user(user).await?.is_none() {
                return Err(Error::refused(
                    ErrorKind::NotFound,
                    codes::USER_NOT_FOUND,
                    format!("{user} is not a user of {}", self.system),
                ));
            }
            for group in exchange.request.interconnection_group_id_list.iter() {
                effects.identity.profile_additions.push(ProfileAddition {
                    user: user.clone(),
                    mc_service: apply.mc_service,
                    group: group.clone(),
                });
            }
            applied.insert(user.clone());
        }
        exchange.applied_to = applied.into_iter().collect();
        exchange.updated_at = self.clock.now();
        effects.acm.exchanges.push(AcmWrite {
            exchange: exchange.clone(),
            role: AcmRole::Incoming,
            owner: exchange.request.target_mc_service_id.clone(),
            pending: false,
            only_if: None,
        });
        self.commit(&effects).await?;
        tracing::info!(request = %request_id, users = apply.users.len(), "interconnection group IDs applied to profiles");
        Ok(exchange)
    }

    /// The exchanges the requester sent (primary side).
    pub async fn sent(&self, requester: &Requester) -> Result<AcmExchangeList> {
        Ok(AcmExchangeList {
            exchanges: self
                .store
                .acm_exchanges(AcmRole::Outgoing, &requester.mc_service_id)
                .await?,
        })
    }

    /// The exchanges addressed to the requester (partner side).
    pub async fn received(&self, requester: &Requester) -> Result<AcmExchangeList> {
        Ok(AcmExchangeList {
            exchanges: self
                .store
                .acm_exchanges(AcmRole::Incoming, &requester.mc_service_id)
                .await?,
        })
    }
}

#[async_trait]
impl SessionObserver for AcmServer {
    /// Steps 7a and 13a: a user logging on is told of pending ACM data.
    async fn logged_on(&self, session: &SessionRecord, _profile: &UserProfile) {
        let pending = match self.store.acm_pending(&session.mc_service_id).await {
            Ok(pending) => pending.len(),
            Err(e) => {
                tracing::warn!(error = %e, "ACM: cannot read pending data at log-on");
                return;
            }
        };
        if pending == 0 {
            return;
        }
        let (_, event) = Self::pending_notification(&session.mc_service_id, pending);
        let effects = Effects::event(Audience::Session(session.session_id.clone()), event);
        if let Err(e) = self.commit(&effects).await {
            tracing::warn!(error = %e, "ACM: cannot notify pending data at log-on");
        }
    }

    async fn logged_off(&self, _session: &SessionRecord) {}
}
