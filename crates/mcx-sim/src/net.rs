//! The simulated network between systems: a partner link that hands each request to the
//! receiving system's interconnection gateway in the same process, through the same wire
//! encoding, and injects the faults a real network and real servers produce.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mcx_core::error::{Error, ErrorKind};
use mcx_core::ports::{LinkError, PartnerLink};
use mcx_core::system::McSystem;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{SystemDomain, TransactionId};

use crate::world::SeededEntropy;

/// How often each fault strikes one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// The request is lost before the partner sees it.
    pub drop_request: f64,
    /// The partner handles the request; its answer is lost.
    pub drop_answer: f64,
    /// The request arrives twice (a retransmission racing the original).
    pub duplicate: f64,
    /// The partner handles the request, then crashes before answering.
    pub crash_after_handling: f64,
}

/// What the network did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Requests handed to a partner's gateway (copies included).
    pub delivered: u64,
    /// Requests lost.
    pub dropped_requests: u64,
    /// Answers lost.
    pub dropped_answers: u64,
    /// Requests delivered twice.
    pub duplicated: u64,
    /// Partners crashed right after handling a request.
    pub crashed_after_handling: u64,
    /// Requests refused by a partition or a partner that is down.
    pub unreachable: u64,
}

/// The systems that are up, the partitions between them, the faults to inject.
pub struct Net {
    systems: Mutex<BTreeMap<SystemDomain, Arc<McSystem>>>,
    partitions: Mutex<BTreeSet<(SystemDomain, SystemDomain)>>,
    crash_requests: Mutex<BTreeSet<SystemDomain>>,
    faults: Mutex<Faults>,
    stats: Mutex<NetStats>,
    entropy: Arc<SeededEntropy>,
    /// One exchange at a time: requests sent concurrently (a regroup's fan-out) are
    /// handled in the order they were sent, so a seed replays exactly.
    in_flight: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pair(a: &SystemDomain, b: &SystemDomain) -> (SystemDomain, SystemDomain) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

impl Net {
    /// A network with no system up and no faults.
    pub fn new(entropy: Arc<SeededEntropy>) -> Self {
        Self {
            systems: Mutex::default(),
            partitions: Mutex::default(),
            crash_requests: Mutex::default(),
            faults: Mutex::default(),
            stats: Mutex::default(),
            entropy,
            in_flight: tokio::sync::Mutex::new(()),
        }
    }

    /// A system is up and reachable.
    pub fn attach(&self, system: Arc<McSystem>) {
        lock(&self.systems).insert(system.settings.domain.clone(), system);
    }

    /// A system is down.
    pub fn detach(&self, domain: &SystemDomain) {
        lock(&self.systems).remove(domain);
    }

    /// Cuts or heals the link between two systems.
    pub fn set_partition(&self, a: &SystemDomain, b: &SystemDomain, cut: bool) {
        let mut partitions = lock(&self.partitions);
        if cut {
            partitions.insert(pair(a, b));
        } else {
            partitions.remove(&pair(a, b));
        }
    }

    /// Heals every partition.
    pub fn heal(&self) {
        lock(&self.partitions).clear();
    }

    /// Whether a partition separates any systems.
    pub fn partitioned(&self) -> bool {
        !lock(&self.partitions).is_empty()
    }

    /// Sets the faults to inject from now on.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// The systems a fault crashed since the last call.
    pub fn take_crash_requests(&self) -> BTreeSet<SystemDomain> {
        std::mem::take(&mut *lock(&self.crash_requests))
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetStats {
        *lock(&self.stats)
    }

    /// The link of system `from`.
    pub fn link(self: &Arc<Self>, from: SystemDomain) -> SimLink {
        SimLink {
            from,
            net: self.clone(),
        }
    }
}

/// One system's link to its partners over the simulated network.
pub struct SimLink {
    from: SystemDomain,
    net: Arc<Net>,
}

#[async_trait]
impl PartnerLink for SimLink {
    async fn send(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
        request: &PartnerRequest,
    ) -> Result<PartnerResponse, LinkError> {
        let net = &self.net;
        let _one = net.in_flight.lock().await;
        let unreachable = |message: &str| LinkError::Unreachable {
            partner: partner.clone(),
            message: message.to_string(),
        };
        let refused = |message: String| LinkError::Refused {
            partner: partner.clone(),
            message,
        };
        if lock(&net.partitions).contains(&pair(&self.from, partner)) {
            lock(&net.stats).unreachable += 1;
            return Err(unreachable("partitioned"));
        }
        let Some(target) = lock(&net.systems).get(partner).cloned() else {
            lock(&net.stats).unreachable += 1;
            return Err(unreachable("down"));
        };
        let faults = *lock(&net.faults);
        if net.entropy.chance(faults.drop_request) {
            lock(&net.stats).dropped_requests += 1;
            return Err(unreachable("request lost"));
        }
        // The wire, as the HTTPS link and the endpoint encode and decode it.
        let body = request
            .body()
            .map_err(|e| refused(format!("cannot encode: {e}")))?;
        let decoded = PartnerRequest::decode(request.name(), &body)
            .map_err(|e| refused(format!("cannot decode: {e}")))?;
        let copies = if net.entropy.chance(faults.duplicate) {
            lock(&net.stats).duplicated += 1;
            2
        } else {
            1
        };
        let mut answer = None;
        for _ in 0..copies {
            lock(&net.stats).delivered += 1;
            answer = Some(
                target
                    .gateway
                    .inbound(&self.from, transaction, decoded.clone())
                    .await,
            );
        }
        if net.entropy.chance(faults.crash_after_handling) {
            lock(&net.stats).crashed_after_handling += 1;
            lock(&net.crash_requests).insert(partner.clone());
            return Err(unreachable("the partner crashed"));
        }
        match answer {
            Some(Ok(answer)) => {
                if net.entropy.chance(faults.drop_answer) {
                    lock(&net.stats).dropped_answers += 1;
                    return Err(unreachable("answer lost"));
                }
                let bytes = answer
                    .body()
                    .map_err(|e| refused(format!("cannot encode the answer: {e}")))?;
                PartnerResponse::decode_for(request, &bytes)
                    .map_err(|e| refused(format!("cannot decode the answer: {e}")))
            }
            // As the endpoint maps them: unavailable (5xx) is retried, the rest is final.
            Some(Err(Error::Refused {
                kind: ErrorKind::Unavailable,
                detail,
                ..
            })) => Err(unreachable(&detail)),
            Some(Err(Error::Store(e))) => Err(unreachable(&e.to_string())),
            Some(Err(e)) => Err(refused(e.to_string())),
            None => Err(unreachable("no copy sent")),
        }
    }
}
