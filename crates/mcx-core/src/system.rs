//! One MC system: its functional entities, wired to one store. Adapters (HTTP now; SIP and
//! XCAP later) hold an `McSystem` and call its entities; the entities talk to each other
//! only through information flows and the notifications they define.

use std::sync::Arc;
use std::time::Duration;

use mcx_model::SystemDomain;
use mcx_model::events::DeliveredEvent;

use crate::error::Result;
use crate::events::StreamWakers;
use crate::gms::GroupManagementServer;
use crate::identity::IdentityManagement;
use crate::mc_service_server::GroupPolicyCache;
use crate::ports::{Clock, Store};

/// Settings of one MC system.
#[derive(Debug, Clone)]
pub struct SystemSettings {
    /// The system's domain: the domain of its users' and groups' IDs.
    pub domain: SystemDomain,
    /// The system's name for people.
    pub name: String,
    /// How long a session lasts after log-on.
    pub session_ttl: Duration,
}

/// One MC system's functional entities.
pub struct McSystem {
    /// Settings.
    pub settings: SystemSettings,
    /// Identity management: log-on, sessions, log-off.
    pub identity: Arc<IdentityManagement>,
    /// The group management server.
    pub gms: Arc<GroupManagementServer>,
    /// The MC service server's group policy, kept by subscription to the GMS.
    pub group_policy: Arc<GroupPolicyCache>,
    /// Wakes clients' event streams.
    pub wakers: Arc<StreamWakers>,
    store: Arc<dyn Store>,
}

impl McSystem {
    /// Assembles the entities over a store. Returns the system and the background task
    /// that keeps the MC service server's group policy current; spawn it.
    pub fn new(
        settings: SystemSettings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> (
        Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let wakers = Arc::new(StreamWakers::default());
        let identity = Arc::new(IdentityManagement::new(
            settings.domain.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
            settings.session_ttl,
            wakers.clone(),
        ));
        let gms = Arc::new(GroupManagementServer::new(
            settings.domain.clone(),
            store.clone(),
            clock.clone(),
            wakers.clone(),
        ));
        let group_policy = Arc::new(GroupPolicyCache::new(gms.clone()));
        let notifications = gms.subscribe_server();
        let follower = group_policy.clone();
        let task = async move { follower.follow(notifications).await };
        let system = Arc::new(Self {
            settings,
            identity,
            gms,
            group_policy,
            wakers,
            store,
        });
        (system, task)
    }

    /// The next events of a session's stream after `after`, oldest first, at most
    /// `limit`. `None` when the session has ended.
    pub async fn events_after(
        &self,
        session_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Option<Vec<DeliveredEvent>>> {
        let events = self.store.events_after(session_id, after, limit).await?;
        if events.is_empty() && !self.store.session_exists(session_id).await? {
            return Ok(None);
        }
        Ok(Some(events))
    }

    /// Forgets a session's events the client has confirmed it holds.
    pub async fn discard_events_through(&self, session_id: &str, through: i64) -> Result<()> {
        Ok(self
            .store
            .discard_events_through(session_id, through)
            .await?)
    }
}
