//! The flow trace: every information flow an entity sends or receives, with when, which
//! entity, which peer, the flow's name (as TS 23.280 titles it), a correlation ID and its
//! key elements. Kept in a bounded ring per server (the newest entries win) and written
//! to the log (`target: "mcx::flow"`); the demo draws its sequence charts from it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{SystemDomain, TransactionId};
use time::OffsetDateTime;

use crate::ports::{LinkError, PartnerLink};

pub use mcx_model::api::{TraceDirection as Direction, TraceEntry};

/// The trace of one server.
pub struct TraceLog {
    system: SystemDomain,
    clock: std::sync::Arc<dyn crate::ports::Clock>,
    capacity: usize,
    inner: Mutex<(u64, VecDeque<Stored>)>,
    names: Mutex<Vec<Arc<str>>>,
}

/// A trace entry as kept: its texts shared or boxed and its elements as JSON text, a
/// fraction of the memory of a [`TraceEntry`] with a `serde_json::Value` tree (50,000 of
/// them are kept). Expanded when read.
#[derive(Debug)]
struct Stored {
    seq: u64,
    at: OffsetDateTime,
    entity: Arc<str>,
    direction: Direction,
    peer: Box<str>,
    flow: Arc<str>,
    correlation: Box<str>,
    elements: Box<str>,
}

/// Entity names and flow titles are few; each is kept once.
fn shared(names: &mut Vec<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(known) = names.iter().find(|n| &***n == name) {
        return known.clone();
    }
    let new: Arc<str> = Arc::from(name);
    names.push(new.clone());
    new
}

/// What a new trace entry says.
pub struct Flow<'a> {
    /// The entity.
    pub entity: &'a str,
    /// Sent or received.
    pub direction: Direction,
    /// The peer.
    pub peer: String,
    /// The title.
    pub flow: &'a str,
    /// The correlation ID.
    pub correlation: String,
    /// Key elements.
    pub elements: serde_json::Value,
}

impl std::fmt::Debug for TraceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLog")
            .field("system", &self.system)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl TraceLog {
    /// A trace keeping the newest `capacity` entries.
    pub fn new(
        system: SystemDomain,
        capacity: usize,
        clock: std::sync::Arc<dyn crate::ports::Clock>,
    ) -> Self {
        Self {
            system,
            clock,
            capacity: capacity.max(1),
            inner: Mutex::new((0, VecDeque::new())),
            names: Mutex::new(Vec::new()),
        }
    }

    /// Records a flow inside this system (a client's request, a server's flow to the
    /// GMS), at the time the clock gives (simulated time in the simulation). Its log
    /// line is at `debug`: at the default level, a busy system would otherwise write a
    /// line per request.
    pub fn record(&self, flow: Flow<'_>) {
        self.record_at(self.clock.now(), flow);
    }

    /// Records a flow inside this system that happened at `at`.
    pub fn record_at(&self, at: OffsetDateTime, flow: Flow<'_>) {
        self.keep(at, flow, false);
    }

    /// Records a flow between this system and a partner; its log line is at `info`, so
    /// that `mcx::flow=info` gives one line per inter-system flow at each end, with the
    /// correlation ID that ties them together.
    pub fn record_between_systems(&self, flow: Flow<'_>) {
        self.keep(self.clock.now(), flow, true);
    }

    fn keep(&self, at: OffsetDateTime, flow: Flow<'_>, between_systems: bool) {
        // A callsite's level is fixed when compiled: one callsite per level.
        macro_rules! log_flow {
            ($level:expr) => {
                tracing::event!(
                    target: "mcx::flow",
                    $level,
                    entity = flow.entity,
                    direction = ?flow.direction,
                    peer = %flow.peer,
                    flow = flow.flow,
                    correlation = %flow.correlation,
                    "flow"
                )
            };
        }
        if between_systems {
            log_flow!(tracing::Level::INFO);
        } else {
            log_flow!(tracing::Level::DEBUG);
        }
        let elements = compact(flow.elements).to_string().into_boxed_str();
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let entity = shared(&mut names, flow.entity);
        let title = shared(&mut names, flow.flow);
        drop(names);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        let entry = Stored {
            seq: inner.0,
            at,
            entity,
            direction: flow.direction,
            peer: flow.peer.into_boxed_str(),
            flow: title,
            correlation: flow.correlation.into_boxed_str(),
            elements,
        };
        inner.1.push_back(entry);
        while inner.1.len() > self.capacity {
            inner.1.pop_front();
        }
    }

    /// The entries after `after` (a `seq`), oldest first, at most `limit`.
    pub fn after(&self, after: u64, limit: usize) -> Vec<TraceEntry> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .1
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .map(|e| TraceEntry {
                seq: e.seq,
                at: e.at,
                system: self.system.to_string(),
                entity: e.entity.to_string(),
                direction: e.direction,
                peer: e.peer.to_string(),
                flow: e.flow.to_string(),
                correlation: e.correlation.to_string(),
                elements: serde_json::from_str(&e.elements).unwrap_or_default(),
            })
            .collect()
    }
}

/// The entity that handles a server-to-server flow, and the flow's titles (request,
/// answer) as TS 23.280 (or TR 23.700-38) names them.
pub fn partner_flow(request: &PartnerRequest) -> (&'static str, &'static str, &'static str) {
    match request {
        PartnerRequest::GroupInformationProvision(_) => (
            "GMS",
            "Group information provision request",
            "Group information provision response",
        ),
        PartnerRequest::GroupInformationRequest(_) => (
            "GMS",
            "Group information request",
            "Group information response",
        ),
        PartnerRequest::GroupInformationSubscribe(_) => (
            "GMS",
            "Group information subscribe request",
            "Group information subscribe response",
        ),
        PartnerRequest::GroupInformationNotify(_) => (
            "GMS",
            "Group information notify request",
            "Group information notify response",
        ),
        PartnerRequest::GroupInformationWithdraw(_) => (
            "GMS",
            "Group information withdraw request",
            "Group information withdraw response",
        ),
        PartnerRequest::GroupAffiliation(_) => (
            "MC service server",
            "MC service group affiliation request (server-server)",
            "MC service group affiliation response (server-server)",
        ),
        PartnerRequest::GroupDeaffiliation(_) => (
            "MC service server",
            "MC service group de-affiliation request (server-server)",
            "MC service group de-affiliation response (server-server)",
        ),
        PartnerRequest::GroupAffiliationChange(_) => (
            "MC service server",
            "MC service group affiliation change request (server-server)",
            "MC service group affiliation change response (server-server)",
        ),
        PartnerRequest::PreconfiguredRegroup(_) => (
            "MC service server",
            "Preconfigured regroup request (server-server)",
            "Preconfigured regroup response (server-server)",
        ),
        PartnerRequest::PreconfiguredRegroupCancel(_) => (
            "MC service server",
            "Preconfigured regroup cancel request (server-server)",
            "Preconfigured regroup cancel response (server-server)",
        ),
        PartnerRequest::AcmGroupInformationProvision(_) => (
            "ACM server",
            "Group information provision request (ACM server-server)",
            "Group information provision stored indication",
        ),
        PartnerRequest::AcmGroupInformationProvisionResponse(_) => (
            "ACM server",
            "Group information provision response (ACM server-server)",
            "Group information provision response stored",
        ),
    }
}

/// Key elements of a server-to-server request, for the trace.
pub fn request_elements(request: &PartnerRequest) -> serde_json::Value {
    // The flow's own JSON, trimmed of bulky configuration documents.
    let mut value = request
        .body()
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    if let Some(info) = value.get_mut("mc-service-group-configuration-information")
        && let Some(object) = info.as_object_mut()
    {
        object.remove("configuration");
        if object.remove("key-material").is_some() {
            object.insert(
                "key-material".into(),
                serde_json::Value::String("(present)".into()),
            );
        }
    }
    value
}

fn answer_elements(answer: &PartnerResponse) -> serde_json::Value {
    let mut value = answer
        .body()
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut()
        && object
            .remove("mc-service-group-configuration-information")
            .is_some()
    {
        object.insert(
            "mc-service-group-configuration-information".into(),
            "(present)".into(),
        );
    }
    value
}

/// A partner link that traces every request sent and every answer received.
pub struct TracedLink {
    inner: Arc<dyn PartnerLink>,
    trace: Arc<TraceLog>,
}

impl TracedLink {
    /// Traces what `inner` sends.
    pub fn new(inner: Arc<dyn PartnerLink>, trace: Arc<TraceLog>) -> Self {
        Self { inner, trace }
    }
}

#[async_trait]
impl PartnerLink for TracedLink {
    async fn send(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
        request: &PartnerRequest,
    ) -> Result<PartnerResponse, LinkError> {
        let (entity, request_title, answer_title) = partner_flow(request);
        let peer = format!("{partner} {entity}");
        metrics::counter!("mcx_flows_sent_total", "flow" => request.name(), "partner" => partner.to_string())
            .increment(1);
        self.trace.record_between_systems(Flow {
            entity,
            direction: Direction::Sent,
            peer: peer.clone(),
            flow: request_title,
            correlation: transaction.to_string(),
            elements: request_elements(request),
        });
        let answer = self.inner.send(partner, transaction, request).await;
        let outcome = match &answer {
            Ok(_) => "answered",
            Err(LinkError::Refused { .. }) => "refused",
            Err(LinkError::Unreachable { .. }) => "unreachable",
        };
        metrics::counter!("mcx_flow_answers_total", "flow" => request.name(), "partner" => partner.to_string(), "outcome" => outcome)
            .increment(1);
        match &answer {
            Ok(response) => self.trace.record_between_systems(Flow {
                entity,
                direction: Direction::Received,
                peer,
                flow: answer_title,
                correlation: transaction.to_string(),
                elements: answer_elements(response),
            }),
            Err(e) => self.trace.record_between_systems(Flow {
                entity,
                direction: Direction::Received,
                peer,
                flow: "no answer",
                correlation: transaction.to_string(),
                elements: serde_json::json!({ "error": e.to_string() }),
            }),
        }
        answer
    }
}

/// Longest list kept whole in a trace entry's elements.
const TRACE_LIST_ITEMS: usize = 8;
/// Longest text kept whole in a trace entry's elements.
const TRACE_TEXT_CHARS: usize = 200;

/// Bounds the size of a trace entry's key elements: long lists (a group's members, a
/// regroup's targets) keep their first items and say how many more there were; long
/// texts (key material) are cut. The trace holds 50,000 entries; whole group documents
/// in each would make its memory grow with group size.
fn compact(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Array(items) if items.len() > TRACE_LIST_ITEMS => {
            let more = items.len() - TRACE_LIST_ITEMS;
            let mut kept: Vec<Value> = items
                .into_iter()
                .take(TRACE_LIST_ITEMS)
                .map(compact)
                .collect();
            kept.push(Value::String(format!("… {more} more")));
            Value::Array(kept)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, compact(v))).collect())
        }
        Value::String(text) if text.chars().count() > TRACE_TEXT_CHARS => {
            let cut: String = text.chars().take(TRACE_TEXT_CHARS).collect();
            Value::String(format!("{cut}…"))
        }
        other => other,
    }
}

/// Records the answer a gateway gave to a partner's request.
pub fn record_inbound(
    trace: &TraceLog,
    from: &SystemDomain,
    transaction: TransactionId,
    request: &PartnerRequest,
    answer: Option<&PartnerResponse>,
) {
    let (entity, request_title, answer_title) = partner_flow(request);
    let peer = format!("{from} {entity}");
    if answer.is_none() {
        metrics::counter!("mcx_flows_received_total", "flow" => request.name(), "partner" => from.to_string())
            .increment(1);
    }
    match answer {
        None => trace.record_between_systems(Flow {
            entity,
            direction: Direction::Received,
            peer,
            flow: request_title,
            correlation: transaction.to_string(),
            elements: request_elements(request),
        }),
        Some(answer) => trace.record_between_systems(Flow {
            entity,
            direction: Direction::Sent,
            peer,
            flow: answer_title,
            correlation: transaction.to_string(),
            elements: answer_elements(answer),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::compact;
    use serde_json::json;

    #[test]
    fn long_lists_and_texts_are_cut_and_say_so() {
        let members: Vec<_> = (0..20)
            .map(|i| json!({ "uri": format!("sip:u{i}@x.example") }))
            .collect();
        let value = compact(json!({ "list": members, "gmk": "k".repeat(500), "version": 3 }));
        let list = value["list"].as_array().expect("still a list");
        assert_eq!(list.len(), 9);
        assert_eq!(list[8], json!("… 12 more"));
        assert_eq!(value["gmk"].as_str().map(|s| s.chars().count()), Some(201));
        assert_eq!(value["version"], json!(3));
    }
}
