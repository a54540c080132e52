//! The gateway's outbound side: the dispatcher that delivers the outbox, lane by lane,
//! and the routing of each answer (or final refusal) to the entity that asked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mcx_model::SystemDomain;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::flows::{FailureCause, FlowResult};
use tokio::sync::watch;

use super::InterconnectionGateway;
use crate::error::Result;
use crate::ports::{Effects, LinkError, OutboxMessage, PartnerLink};

/// A partner and an ordering lane: its messages are delivered one at a time, in order.
type Lane = (SystemDomain, String);

/// When a lane another node holds is looked at again.
const LEASE_HELD_ELSEWHERE: Duration = Duration::from_millis(250);

/// What the dispatcher knows of a lane being delivered.
struct Busy {
    /// The lane holds exactly the message in flight and `held`, in order: it started
    /// from a handed-over head, and each request handed over since counted exactly the
    /// rows before it.
    exact: bool,
    /// Requests handed over while the lane was busy.
    held: std::collections::VecDeque<crate::ports::QueuedRequest>,
    /// Whether any request was handed over while the lane was busy.
    handed: bool,
}

impl Busy {
    fn new(exact: bool) -> Self {
        Self {
            exact,
            held: Default::default(),
            handed: false,
        }
    }

    /// A request for this lane committed while it is busy.
    fn hand(&mut self, queued: crate::ports::QueuedRequest) {
        self.handed = true;
        if self.exact && !queued.delayed && queued.ahead == 1 + self.held.len() as u64 {
            self.held.push_back(queued);
        } else {
            self.exact = false;
            self.held.clear();
        }
    }
}

/// How a lane's delivery ended.
enum Drained {
    /// Nothing more is known to be due in it.
    Empty,
    /// Its head falls due then (a retry), or the store could not be read.
    Until(time::OffsetDateTime),
}

impl InterconnectionGateway {
    /// Delivers the outbox until `shutdown` turns true: each lane's messages in order,
    /// lanes concurrently (at most `IN_FLIGHT` at once), failures retried with backoff.
    /// A request a commit hands over ([`OutboxSignal`]) is sent at once when it heads its
    /// lane and the lane is idle, without reading the store, and one handed over while
    /// its lane is busy is held until the lane frees if every row before it is known;
    /// otherwise the lane is drained from the store. The whole outbox is read only at
    /// start, when a retry falls due, when asked to look, and once a second as a safety
    /// net.
    pub async fn run_outbox(
        self: Arc<Self>,
        link: Arc<dyn PartnerLink>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        const IN_FLIGHT: usize = 64;
        const SAFETY_LOOK: Duration = Duration::from_secs(1);
        // Tasks, not futures polled by this loop: a delivery holding a store connection
        // must progress while the loop waits for one.
        let mut in_flight: tokio::task::JoinSet<(Lane, Drained)> = tokio::task::JoinSet::new();
        let mut busy: HashMap<Lane, Busy> = HashMap::new();
        let mut look_at = self.clock.now();
        // Work was left for want of a free slot: the store is read when one frees.
        let mut starved = false;
        let spawn = |in_flight: &mut tokio::task::JoinSet<(Lane, Drained)>,
                     lane: Lane,
                     first: Option<OutboxMessage>| {
            in_flight.spawn(self.clone().drain(link.clone(), lane, first));
        };
        loop {
            let woken = self.outbox.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (fresh, asked) = self.outbox.take();
            let now = self.clock.now();
            for queued in fresh {
                let lane = (queued.message.partner.clone(), queued.lane.clone());
                if let Some(state) = busy.get_mut(&lane) {
                    state.hand(queued);
                    continue;
                }
                if in_flight.len() >= IN_FLIGHT {
                    starved = true;
                    continue;
                }
                let heads = queued.ahead == 0 && !queued.delayed;
                busy.insert(lane.clone(), Busy::new(heads));
                spawn(&mut in_flight, lane, heads.then_some(queued.message));
            }
            if asked || now >= look_at {
                look_at = now + SAFETY_LOOK;
                match self.links.outbox_lane_heads().await {
                    Ok(heads) => {
                        for head in heads {
                            let lane = (head.partner.clone(), head.lane.clone());
                            if busy.contains_key(&lane) {
                                continue;
                            }
                            if head.due > now {
                                look_at = look_at.min(head.due);
                                continue;
                            }
                            if in_flight.len() >= IN_FLIGHT {
                                starved = true;
                                continue;
                            }
                            busy.insert(lane.clone(), Busy::new(false));
                            spawn(&mut in_flight, lane, None);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "outbox: reading it failed; will retry"),
                }
            }
            let wait = Duration::try_from(look_at - now)
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(1), SAFETY_LOOK);
            tokio::select! {
                done = in_flight.join_next(), if !in_flight.is_empty() => {
                    match done {
                        Some(Ok((lane, drained))) => {
                            if std::mem::take(&mut starved) {
                                look_at = self.clock.now();
                            }
                            let Some(mut state) = busy.remove(&lane) else {
                                continue;
                            };
                            match drained {
                                // Every row left in the lane is held here: the next is
                                // its head.
                                Drained::Empty if state.exact => {
                                    if let Some(next) = state.held.pop_front() {
                                        spawn(&mut in_flight, lane.clone(), Some(next.message));
                                        busy.insert(lane, state);
                                    }
                                }
                                Drained::Empty => {
                                    if state.handed {
                                        busy.insert(lane.clone(), Busy::new(false));
                                        spawn(&mut in_flight, lane, None);
                                    }
                                }
                                Drained::Until(due) => {
                                    look_at = look_at.min(due);
                                }
                            }
                        }
                        // A delivery that panicked frees nothing it knew of: start over.
                        Some(Err(e)) => {
                            tracing::error!(error = %e, "outbox: a delivery failed");
                            busy.clear();
                            in_flight.abort_all();
                            look_at = self.clock.now();
                        }
                        None => {}
                    }
                }
                _ = &mut woken => {}
                _ = self.clock.sleep(wait) => {}
                _ = shutdown.wait_for(|down| *down) => {
                    in_flight.abort_all();
                    return;
                }
            }
        }
    }

    /// Delivers one lane's messages in order, starting with `first` (handed over by its
    /// commit, known to head the lane) or the lane's head in the store, until the lane is
    /// empty or its head is not due. A lane started from a handed-over message is not
    /// read again: whatever is committed to it meanwhile is handed over too.
    async fn drain(
        self: Arc<Self>,
        link: Arc<dyn PartnerLink>,
        lane: Lane,
        first: Option<OutboxMessage>,
    ) -> (Lane, Drained) {
        let drained = self.clone().drain_held(link, &lane, first).await;
        if let Err(e) = self.links.release_lane(&lane.0, &lane.1, &self.node).await {
            // Not lost: the lease passes after `lane_lease`.
            tracing::warn!(error = %e, "outbox: releasing a lane failed");
        }
        (lane, drained)
    }

    /// [`Self::drain`] while this node holds the lane's lease, renewed before each
    /// message; another node holding it has the lane looked at again shortly.
    async fn drain_held(
        self: Arc<Self>,
        link: Arc<dyn PartnerLink>,
        lane: &Lane,
        first: Option<OutboxMessage>,
    ) -> Drained {
        // On a store other nodes share, what was handed over may be gone already.
        let first = first.filter(|_| !self.links.shared_by_nodes());
        let handed = first.is_some();
        let mut next = first;
        loop {
            let now = self.clock.now();
            match self
                .links
                .claim_lane(
                    &lane.0,
                    &lane.1,
                    &self.node,
                    now,
                    now + self.retry.lane_lease,
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => return Drained::Until(now + LEASE_HELD_ELSEWHERE),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: claiming a lane failed; will retry");
                    return Drained::Until(now + Duration::from_secs(1));
                }
            }
            let message = match next.take() {
                Some(message) => message,
                None => match self.links.outbox_lane_head(&lane.0, &lane.1).await {
                    Ok(None) => return Drained::Empty,
                    Ok(Some((_, due))) if due > self.clock.now() => {
                        return Drained::Until(due);
                    }
                    Ok(Some((message, _))) => message,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox: reading a lane failed; will retry");
                        return Drained::Until(self.clock.now() + Duration::from_secs(1));
                    }
                },
            };
            match self.deliver(link.as_ref(), message).await {
                Ok(true) if handed => return Drained::Empty,
                Ok(true) => {}
                // Rescheduled: the lane waits for its head's retry.
                Ok(false) => return Drained::Until(self.clock.now()),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: handling an answer failed; will resend");
                    return Drained::Until(self.clock.now() + Duration::from_secs(1));
                }
            }
        }
    }

    /// Gives up the leases of the lanes and duties this node holds: called once its
    /// dispatcher and timers have stopped, so the next to take them does not wait for the
    /// leases to pass.
    pub async fn release_lanes(&self) -> Result<()> {
        Ok(self.links.release_lanes_of(&self.node).await?)
    }

    /// The outbox messages due now: the head of each partner's lanes.
    pub async fn due_heads(&self) -> Result<Vec<OutboxMessage>> {
        Ok(self.links.outbox_heads(self.clock.now()).await?)
    }

    /// Delivers one message (a head from [`Self::due_heads`]) and handles its answer.
    /// True if the exchange completed; false if it is rescheduled. The simulation
    /// delivers one message at a time in an order of its choosing.
    pub async fn deliver(&self, link: &dyn PartnerLink, message: OutboxMessage) -> Result<bool> {
        let partner = &message.partner;
        let capability = message.request.capability();
        if !self.partners.may_send(partner, capability) {
            let why = format!(
                "this system is not authorised to send '{capability}' flows to '{partner}'"
            );
            self.on_refused(&message, why).await?;
            return Ok(true);
        }
        match link
            .send(partner, message.transaction_id, &message.request)
            .await
        {
            Ok(answer) => {
                self.on_answer(&message, answer).await?;
                Ok(true)
            }
            Err(LinkError::Refused { message: why, .. }) => {
                tracing::warn!(%partner, flow = message.request.name(), why, "partner refused request");
                self.on_refused(&message, why).await?;
                Ok(true)
            }
            Err(e @ LinkError::Unreachable { .. }) => {
                let attempts = message.attempts + 1;
                let delay = self.retry.delay(attempts, self.entropy.unit());
                tracing::info!(%partner, flow = message.request.name(), attempts, retry_in_ms = delay.as_millis() as u64, error = %e, "partner unreachable; will retry");
                self.links
                    .reschedule_outbox(
                        message.id,
                        attempts,
                        self.clock.now() + delay,
                        &e.to_string(),
                    )
                    .await?;
                Ok(false)
            }
        }
    }

    async fn on_answer(&self, message: &OutboxMessage, answer: PartnerResponse) -> Result<()> {
        let (partner, id) = (&message.partner, message.id);
        match (&message.request, answer) {
            (
                PartnerRequest::GroupInformationProvision(r),
                PartnerResponse::GroupInformationProvision(a),
            ) => {
                let version = r.mc_service_group_configuration_information.version;
                self.gms
                    .on_delivery_answer(partner, id, &r.mc_service_group_id, version, &a.result)
                    .await
            }
            (
                PartnerRequest::GroupInformationNotify(r),
                PartnerResponse::GroupInformationNotify(a),
            ) => {
                let version = r.mc_service_group_configuration_information.version;
                self.gms
                    .on_delivery_answer(partner, id, &r.mc_service_group_id, version, &a.result)
                    .await
            }
            (
                PartnerRequest::GroupInformationRequest(_),
                PartnerResponse::GroupInformationRequest(a),
            ) => {
                self.gms
                    .on_group_information_response(partner, id, &a)
                    .await
            }
            (
                PartnerRequest::GroupInformationSubscribe(_),
                PartnerResponse::GroupInformationSubscribe(a),
            ) => self.gms.on_subscribe_response(partner, id, &a).await,
            (
                PartnerRequest::AcmGroupInformationProvision(_),
                PartnerResponse::AcmGroupInformationProvision(a),
            ) => self.acm.on_stored(id, &a).await,
            (request @ PartnerRequest::PreconfiguredRegroup(_), answer)
                if answer.name() == request.name() =>
            {
                self.mc_service_server
                    .on_regroup_answer(id, partner, request, &Ok(answer))
                    .await
            }
            (request @ PartnerRequest::PreconfiguredRegroupCancel(_), answer)
                if answer.name() == request.name() =>
            {
                self.mc_service_server
                    .on_cancel_answer(id, partner, request)
                    .await
            }
            (request @ PartnerRequest::GroupAffiliation(_), answer)
            | (request @ PartnerRequest::GroupAffiliationChange(_), answer)
                if answer.name() == request.name() =>
            {
                self.mc_service_server
                    .on_host_affiliation_answer(id, request, &Ok(answer))
                    .await
            }
            // Answers that only end the exchange (the sender acted when it sent).
            (request, answer) if answer.name() == request.name() => self.complete(id).await,
            (request, _) => {
                let why = format!(
                    "partner '{partner}' answered '{}' with another flow",
                    request.name()
                );
                self.on_refused(message, why).await
            }
        }
    }

    /// A request the partner will never accept as it is: the exchange ends as a failure.
    async fn on_refused(&self, message: &OutboxMessage, why: String) -> Result<()> {
        let (partner, id) = (&message.partner, message.id);
        match &message.request {
            PartnerRequest::GroupInformationProvision(r) => {
                let version = r.mc_service_group_configuration_information.version;
                let result = FlowResult::failure(FailureCause::NotAuthorized, why);
                self.gms
                    .on_delivery_answer(partner, id, &r.mc_service_group_id, version, &result)
                    .await
            }
            PartnerRequest::GroupInformationNotify(r) => {
                let version = r.mc_service_group_configuration_information.version;
                let result = FlowResult::failure(FailureCause::NotAuthorized, why);
                self.gms
                    .on_delivery_answer(partner, id, &r.mc_service_group_id, version, &result)
                    .await
            }
            PartnerRequest::GroupInformationRequest(r) => {
                self.gms
                    .record_link_failure(&r.mc_service_group_id, id, why)
                    .await
            }
            PartnerRequest::GroupInformationSubscribe(r) => {
                self.gms
                    .record_link_failure(&r.mc_service_group_id, id, why)
                    .await
            }
            request @ (PartnerRequest::GroupAffiliation(_)
            | PartnerRequest::GroupAffiliationChange(_)) => {
                let refusal = Err(LinkError::Refused {
                    partner: partner.clone(),
                    message: why,
                });
                self.mc_service_server
                    .on_host_affiliation_answer(id, request, &refusal)
                    .await
            }
            request @ PartnerRequest::PreconfiguredRegroup(_) => {
                let refusal = Err(LinkError::Refused {
                    partner: partner.clone(),
                    message: why,
                });
                self.mc_service_server
                    .on_regroup_answer(id, partner, request, &refusal)
                    .await
            }
            request @ PartnerRequest::PreconfiguredRegroupCancel(_) => {
                self.mc_service_server
                    .on_cancel_answer(id, partner, request)
                    .await
            }
            PartnerRequest::GroupInformationWithdraw(_)
            | PartnerRequest::GroupDeaffiliation(_)
            | PartnerRequest::AcmGroupInformationProvisionResponse(_) => self.complete(id).await,
            PartnerRequest::AcmGroupInformationProvision(r) => {
                let indication = mcx_model::flows::acm::AcmProvisionStoredIndication {
                    request_id: r.request_id.unwrap_or_default(),
                    result: FlowResult::failure(FailureCause::NotAuthorized, why),
                };
                self.acm.on_stored(id, &indication).await
            }
        }
    }

    async fn complete(&self, outbox_id: i64) -> Result<()> {
        let effects = Effects {
            complete_outbox: Some(outbox_id),
            ..Effects::default()
        };
        self.commits.commit(&effects).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mcx_model::flows::group_configuration::GroupInformationRequest;

    use mcx_model::TransactionId;

    use super::*;
    use crate::ports::QueuedRequest;

    fn queued(id: i64, ahead: u64, delayed: bool) -> QueuedRequest {
        QueuedRequest {
            message: OutboxMessage {
                id,
                partner: SystemDomain::parse("fire.example").expect("a domain"),
                transaction_id: TransactionId::new(),
                request: PartnerRequest::GroupInformationRequest(GroupInformationRequest {
                    mc_service_group_id: mcx_model::McServiceGroupId::parse(
                        "sip:harbour@fire.example",
                    )
                    .expect("a group"),
                }),
                attempts: 0,
            },
            lane: String::new(),
            ahead,
            delayed,
        }
    }

    #[test]
    fn a_lane_holds_what_follows_its_head_in_order_while_every_row_is_known() {
        let mut busy = Busy::new(true);
        busy.hand(queued(2, 1, false));
        busy.hand(queued(3, 2, false));
        assert!(busy.exact && busy.handed);
        let held: Vec<_> = busy.held.iter().map(|q| q.message.id).collect();
        assert_eq!(held, [2, 3]);
    }

    #[test]
    fn a_lane_with_an_unknown_row_is_read_from_the_store() {
        // A row before it that this process did not hand over (another node, a restart).
        let mut busy = Busy::new(true);
        busy.hand(queued(5, 2, false));
        assert!(!busy.exact && busy.held.is_empty() && busy.handed);
        // Once inexact, it stays so.
        busy.hand(queued(6, 1, false));
        assert!(!busy.exact && busy.held.is_empty());
    }

    #[test]
    fn a_delayed_row_or_a_lane_started_from_the_store_is_never_held() {
        let mut delayed = Busy::new(true);
        delayed.hand(queued(2, 1, true));
        assert!(!delayed.exact && delayed.held.is_empty());
        let mut from_store = Busy::new(false);
        from_store.hand(queued(2, 1, false));
        assert!(!from_store.exact && from_store.held.is_empty() && from_store.handed);
    }
}
