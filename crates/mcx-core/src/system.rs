//! One MC system: its functional entities, wired to one store. Adapters (HTTP now; SIP and
//! XCAP later) hold an `McSystem` and call its entities; the entities talk to each other
//! only through information flows and the notifications they define.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mcx_model::SystemDomain;

use crate::acm_server::{AcmParts, AcmServer};
use crate::error::Result;
use crate::events::{EventFetcher, StreamWakers};
use crate::gms::{GmsParts, GroupManagementServer};
use crate::identity::IdentityManagement;
use crate::interconnection_gateway::{GatewayParts, InterconnectionGateway, RetryPolicy};
use crate::mc_service_server::{McServiceServer, McServiceServerParts};
use crate::partners::Partners;
use crate::ports::{Clock, Entropy, PartnerLink, Store};
use crate::trace::{TraceLog, TracedLink};

/// Settings of one MC system.
#[derive(Debug, Clone)]
pub struct SystemSettings {
    /// The system's domain: the domain of its users' and groups' IDs.
    pub domain: SystemDomain,
    /// The system's name for people.
    pub name: String,
    /// How long a session lasts after log-on.
    pub session_ttl: Duration,
    /// The partner systems.
    pub partners: Partners,
    /// How undelivered requests to partners are retried.
    pub retry: RetryPolicy,
    /// How long a negotiated remote change of affiliation waits for its targets.
    pub change_timeout: Duration,
    /// How long a client's affiliation request waits for partner hosts' answers before it
    /// is answered with `affiliating` (the host's answer then comes as an event).
    pub affiliation_wait: Duration,
    /// Bounds on requests, from clients and partners alike.
    pub limits: crate::limits::Limits,
    /// Whether this process is the system's only node (embedded SQLite): every log-off,
    /// expiry and commit then happens here, so sessions are kept in memory after their
    /// first use and event streams wait for this process's wake-ups without polling the
    /// store. False with several nodes on one database (PostgreSQL).
    pub single_node: bool,
}

/// One MC system's functional entities.
pub struct McSystem {
    /// Settings.
    pub settings: SystemSettings,
    /// Identity management: log-on, sessions, log-off.
    pub identity: Arc<IdentityManagement>,
    /// The group management server.
    pub gms: Arc<GroupManagementServer>,
    /// The MC service server.
    pub mc_service_server: Arc<McServiceServer>,
    /// The interconnection gateway.
    pub gateway: Arc<InterconnectionGateway>,
    /// The ACM server.
    pub acm: Arc<AcmServer>,
    /// Wakes clients' event streams.
    pub wakers: Arc<StreamWakers>,
    /// Reads the events of woken streams, many at once.
    pub events: EventFetcher,
    /// The flow trace.
    pub trace: Arc<TraceLog>,
    /// The (traced) link to partner systems; the outbox delivers through it.
    pub link: Arc<dyn PartnerLink>,
    store: Arc<dyn Store>,
}

impl McSystem {
    /// What waits in the outbox for each partner (for operators).
    pub async fn outbox_backlog(
        &self,
    ) -> crate::ports::StoreResult<Vec<crate::ports::OutboxBacklog>> {
        self.store.outbox_backlog().await
    }

    /// Confirmed affiliations held by this system's users (for operators).
    pub async fn affiliations_held(&self) -> crate::ports::StoreResult<u64> {
        self.store.affiliations_held().await
    }

    /// Assembles the entities over a store. Returns the system and the background task
    /// that keeps the MC service server's group policy current; spawn it. The outbox
    /// runs separately ([`InterconnectionGateway::run_outbox`]) because it needs the link.
    pub fn new(
        settings: SystemSettings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        link: Arc<dyn PartnerLink>,
    ) -> (Arc<Self>, BoxFuture<'static, ()>) {
        let wakers = Arc::new(StreamWakers::default());
        let trace = Arc::new(TraceLog::new(
            settings.domain.clone(),
            50_000,
            clock.clone(),
        ));
        let link: Arc<dyn PartnerLink> = Arc::new(TracedLink::new(link, trace.clone()));
        let outbox = Arc::new(crate::outbox_signal::OutboxSignal::new());
        let partners = Arc::new(settings.partners.clone());
        let identity = Arc::new(IdentityManagement::new(
            settings.domain.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
            entropy.clone(),
            settings.session_ttl,
            wakers.clone(),
        ));
        if settings.single_node {
            identity.cache_sessions();
        }
        let gms = Arc::new(GroupManagementServer::new(GmsParts {
            system: settings.domain.clone(),
            store: store.clone(),
            links: store.clone(),
            commits: store.clone(),
            partners: partners.clone(),
            clock: clock.clone(),
            entropy: entropy.clone(),
            wakers: wakers.clone(),
            outbox: outbox.clone(),
            trace: trace.clone(),
            limits: settings.limits,
        }));
        let mc_service_server = Arc::new(McServiceServer::new(McServiceServerParts {
            gms: gms.clone(),
            store: store.clone(),
            partners: partners.clone(),
            wakers: wakers.clone(),
            outbox: outbox.clone(),
            clock: clock.clone(),
            entropy: entropy.clone(),
            change_timeout: settings.change_timeout,
            answer_wait: settings.affiliation_wait,
            trace: trace.clone(),
        }));
        let acm = Arc::new(AcmServer::new(AcmParts {
            store: store.clone(),
            gms: gms.clone(),
            partners: partners.clone(),
            wakers: wakers.clone(),
            outbox: outbox.clone(),
            clock: clock.clone(),
            entropy: entropy.clone(),
        }));
        identity.observe(acm.clone());
        let gateway = Arc::new(InterconnectionGateway::new(GatewayParts {
            partners,
            gms: gms.clone(),
            mc_service_server: mc_service_server.clone(),
            acm: acm.clone(),
            links: store.clone(),
            commits: store.clone(),
            clock,
            entropy,
            outbox,
            wakers: wakers.clone(),
            retry: settings.retry,
            trace: trace.clone(),
        }));
        identity.observe(mc_service_server.clone());
        let notifications = gms.subscribe_server();
        let policy = mc_service_server.policy.clone();
        let task: BoxFuture<'static, ()> =
            Box::pin(async move { policy.follow(notifications).await });
        let system = Arc::new(Self {
            settings,
            identity,
            gms,
            mc_service_server,
            gateway,
            acm,
            wakers,
            events: EventFetcher::new(store.clone()),
            trace,
            link,
            store,
        });
        (system, task)
    }

    /// Forgets a session's events the client has confirmed it holds.
    pub async fn discard_events_through(&self, session_id: &str, through: i64) -> Result<()> {
        Ok(self
            .store
            .discard_events_through(session_id, through)
            .await?)
    }
}
