//! The interconnection gateway: the one endpoint partners know (the topology-hiding
//! address of TS 23.280 §10.2.7.1 NOTE 1). Inbound flows are checked against what the
//! sending partner may do, deduplicated by transaction, and routed to the entity they are
//! for; outbound flows leave through the durable outbox, in order per partner, retried
//! with backoff while a partner is unreachable, and their answers are routed back.

mod outbox;

use std::sync::Arc;
use std::time::Duration;

use mcx_model::flows::group_configuration::*;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{SystemDomain, TransactionId};

use crate::acm_server::AcmServer;
use crate::error::{Error, ErrorKind, Result, codes};
use crate::events::Reply;
use crate::gms::{AnswerTo, Arrival, GroupManagementServer};
use crate::mc_service_server::McServiceServer;
use crate::outbox_signal::OutboxSignal;
use crate::partners::Partners;
use crate::ports::{Clock, Effects, EventStore, InterconnectionStore};

/// How often and how soon undelivered requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The delay after the first failure; it doubles with each further failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// How long a node's claim on an outbox lane lasts without renewal: longer than one
    /// exchange with a partner (the link's request timeout), so a live node keeps its
    /// lanes; a killed node's lanes pass to another node this long after its last renewal.
    pub lane_lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            lane_lease: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, with ±20 % jitter (`unit` is uniform in
    /// [0, 1)) so partners coming back are not hit by every system at once.
    pub fn delay(&self, attempts: u32, unit: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(16)))
            .min(self.max);
        let jitter = 0.8 + unit.clamp(0.0, 1.0) * 0.4;
        base.mul_f64(jitter)
    }
}

/// The interconnection gateway of one system.
pub struct InterconnectionGateway {
    partners: Arc<Partners>,
    gms: Arc<GroupManagementServer>,
    mc_service_server: Arc<McServiceServer>,
    acm: Arc<AcmServer>,
    links: Arc<dyn InterconnectionStore>,
    commits: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn crate::ports::Entropy>,
    outbox: Arc<OutboxSignal>,
    wakers: Arc<crate::events::StreamWakers>,
    retry: RetryPolicy,
    trace: Arc<crate::trace::TraceLog>,
    /// This node among the nodes of its system: the holder of the outbox lanes it
    /// delivers (see [`InterconnectionStore::claim_lane`]).
    node: String,
}

/// What a gateway is built from.
pub struct GatewayParts {
    /// The partner systems.
    pub partners: Arc<Partners>,
    /// The GMS inbound group configuration flows go to.
    pub gms: Arc<GroupManagementServer>,
    /// The MC service server inbound affiliation and regroup flows go to.
    pub mc_service_server: Arc<McServiceServer>,
    /// The ACM server inbound ACM flows go to.
    pub acm: Arc<AcmServer>,
    /// Interconnection state and the outbox.
    pub links: Arc<dyn InterconnectionStore>,
    /// Commits effects that go with no other change.
    pub commits: Arc<dyn EventStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness: identifiers, secrets, jitter.
    pub entropy: Arc<dyn crate::ports::Entropy>,
    /// Woken when requests to partners are committed.
    pub outbox: Arc<OutboxSignal>,
    /// Wakes clients' event streams.
    pub wakers: Arc<crate::events::StreamWakers>,
    /// Retry timing.
    pub retry: RetryPolicy,
    /// The flow trace.
    pub trace: Arc<crate::trace::TraceLog>,
}

fn invalid_flow(detail: String) -> Error {
    Error::refused(ErrorKind::Invalid, codes::INVALID_FLOW, detail)
}

impl InterconnectionGateway {
    /// Whether this node is to do `duty` now (claimed or renewed for `lease`), and how
    /// soon to ask again at the latest: with nodes sharing the store, before the lease
    /// passes and often enough to see the deadlines other nodes set; alone, never.
    pub async fn hold_duty(&self, duty: &str, lease: Duration) -> (bool, Option<Duration>) {
        let now = self.clock.now();
        let recheck = self.links.shared_by_nodes().then(|| lease / 3);
        match self
            .links
            .claim_duty(duty, &self.node, now, now + lease)
            .await
        {
            Ok(held) => (held, recheck),
            Err(e) => {
                tracing::warn!(error = %e, duty, "claiming a duty failed; will retry");
                (false, Some(Duration::from_secs(1)))
            }
        }
    }

    /// A gateway.
    pub fn new(parts: GatewayParts) -> Self {
        let node = format!("{:016x}", parts.entropy.next_u64());
        Self {
            partners: parts.partners,
            gms: parts.gms,
            mc_service_server: parts.mc_service_server,
            acm: parts.acm,
            links: parts.links,
            commits: parts.commits,
            clock: parts.clock,
            entropy: parts.entropy,
            outbox: parts.outbox,
            wakers: parts.wakers,
            node,
            retry: parts.retry,
            trace: parts.trace,
        }
    }

    /// The configured partners.
    pub fn partners(&self) -> &Partners {
        &self.partners
    }

    /// Handles a flow from partner `from` (already authenticated by its certificate):
    /// refuses it unless `from` may send it, answers a retransmission with the answer
    /// already given, and otherwise routes it to its entity.
    pub async fn inbound(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        request: PartnerRequest,
    ) -> Result<PartnerResponse> {
        self.partners.check_inbound(from, request.capability())?;
        self.check_bounds(&request)?;
        // Exactly once per transaction: every answer is recorded under the unique key
        // (sender, transaction ID), checked first, in the commit of the flow's effects,
        // or alone when the flow changed nothing. Of any copies, simultaneous or late, the
        // first to commit wins; the others keep nothing and give its answer. No claim and
        // no look-up beforehand: a copy is rare, and its handling is thrown away.
        crate::trace::record_inbound(&self.trace, from, transaction, &request, None);
        let answer = match self.route(from, transaction, request.clone()).await? {
            Reply::Recorded(answer) => answer,
            Reply::Unrecorded(answer) => {
                crate::events::commit_answer_alone(
                    &*self.commits,
                    &*self.links,
                    &self.wakers,
                    &self.outbox,
                    (from, transaction),
                    answer,
                )
                .await?
            }
        };
        if answer.name() != request.name() {
            return Err(invalid_flow(format!(
                "transaction {transaction} was already used for another flow"
            )));
        }
        crate::trace::record_inbound(&self.trace, from, transaction, &request, Some(&answer));
        Ok(answer)
    }

    /// A partner's request is held to the same bounds as a client's (refused whole,
    /// before its procedure runs), and the key material it carries must be a GMK.
    fn check_bounds(&self, request: &PartnerRequest) -> Result<()> {
        let limits = self.gms.limits();
        let groups = "mc-service-group-id-list";
        let configuration = |info: &mcx_model::flows::group_configuration::GroupConfigurationInformation| -> Result<()> {
            limits.members(info.configuration.list.len())?;
            if let Some(key) = &info.key_material {
                key.validate().map_err(|why| {
                    crate::error::Error::refused(
                        crate::error::ErrorKind::Unprocessable,
                        crate::error::codes::INVALID_KEY_MATERIAL,
                        format!("the key material is not valid: {why}"),
                    )
                })?;
            }
            Ok(())
        };
        match request {
            PartnerRequest::GroupInformationProvision(r) => {
                configuration(&r.mc_service_group_configuration_information)
            }
            PartnerRequest::GroupInformationNotify(r) => {
                configuration(&r.mc_service_group_configuration_information)
            }
            PartnerRequest::GroupAffiliation(r) => {
                limits.list(groups, r.mc_service_group_id_list.len())
            }
            PartnerRequest::GroupDeaffiliation(r) => {
                limits.list(groups, r.mc_service_group_id_list.len())
            }
            PartnerRequest::GroupAffiliationChange(r) => {
                limits.list("mc-service-id-list", r.mc_service_id_list.len())?;
                limits.list(groups, r.mc_service_group_id_list.len())
            }
            PartnerRequest::PreconfiguredRegroup(r) => {
                limits.list(groups, r.mc_service_group_id_list.len())
            }
            PartnerRequest::AcmGroupInformationProvision(r) => limits.list(
                "interconnection-group-id-list",
                r.interconnection_group_id_list.len(),
            ),
            PartnerRequest::GroupInformationRequest(_)
            | PartnerRequest::GroupInformationSubscribe(_)
            | PartnerRequest::GroupInformationWithdraw(_)
            | PartnerRequest::PreconfiguredRegroupCancel(_)
            | PartnerRequest::AcmGroupInformationProvisionResponse(_) => Ok(()),
        }
    }

    /// Hands a flow to its entity: the answer it recorded with the flow's effects, or,
    /// for a flow that changed nothing, its answer to record alone.
    async fn route(
        &self,
        from: &SystemDomain,
        transaction: TransactionId,
        request: PartnerRequest,
    ) -> Result<Reply> {
        let gms = &self.gms;
        let inbound = (from, transaction);
        let recorded = |answer| Ok(Reply::Recorded(answer));
        match request {
            PartnerRequest::GroupInformationProvision(r) => {
                let make = |group: &mcx_model::McServiceGroupId, result| {
                    PartnerResponse::GroupInformationProvision(GroupInformationProvisionResponse {
                        mc_service_group_id: group.clone(),
                        result,
                    })
                };
                let answered = gms
                    .receive_configuration(
                        from,
                        &r.mc_service_group_id,
                        &r.mc_service_group_configuration_information,
                        Arrival::Provision,
                        Effects::none(),
                        Some(AnswerTo { inbound, make }),
                    )
                    .await?;
                Ok(match answered.recorded {
                    Some(answer) => Reply::Recorded(answer),
                    None => Reply::Unrecorded(make(&r.mc_service_group_id, answered.result)),
                })
            }
            PartnerRequest::GroupInformationNotify(r) => {
                let make = |group: &mcx_model::McServiceGroupId, result| {
                    PartnerResponse::GroupInformationNotify(GroupInformationNotifyResponse {
                        mc_service_group_id: group.clone(),
                        result,
                    })
                };
                let answered = gms
                    .receive_configuration(
                        from,
                        &r.mc_service_group_id,
                        &r.mc_service_group_configuration_information,
                        Arrival::Notify,
                        Effects::none(),
                        Some(AnswerTo { inbound, make }),
                    )
                    .await?;
                Ok(match answered.recorded {
                    Some(answer) => Reply::Recorded(answer),
                    None => Reply::Unrecorded(make(&r.mc_service_group_id, answered.result)),
                })
            }
            // An answer read from the store: nothing changes.
            PartnerRequest::GroupInformationRequest(r) => {
                Ok(Reply::Unrecorded(PartnerResponse::GroupInformationRequest(
                    gms.answer_group_information_request(from, &r).await?,
                )))
            }
            PartnerRequest::GroupInformationSubscribe(r) => gms.answer_subscribe(inbound, &r).await,
            PartnerRequest::GroupInformationWithdraw(r) => gms.receive_withdraw(inbound, &r).await,
            PartnerRequest::GroupAffiliation(r) => recorded(
                self.mc_service_server
                    .host_affiliation(from, transaction, &r)
                    .await?,
            ),
            PartnerRequest::GroupDeaffiliation(r) => recorded(
                self.mc_service_server
                    .host_deaffiliation(from, transaction, &r)
                    .await?,
            ),
            PartnerRequest::GroupAffiliationChange(r) => recorded(
                self.mc_service_server
                    .host_affiliation_change(from, transaction, &r)
                    .await?,
            ),
            PartnerRequest::PreconfiguredRegroup(r) => {
                recorded(self.mc_service_server.host_regroup(inbound, &r).await?)
            }
            PartnerRequest::PreconfiguredRegroupCancel(r) => {
                recorded(self.mc_service_server.host_cancel(inbound, &r).await?)
            }
            PartnerRequest::AcmGroupInformationProvision(r) => {
                recorded(self.acm.receive_provision(inbound, &r).await?)
            }
            PartnerRequest::AcmGroupInformationProvisionResponse(r) => {
                recorded(self.acm.receive_response(inbound, &r).await?)
            }
        }
    }
}
