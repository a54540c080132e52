//! One simulated MC system: the real entities over the real `SqlStore` (SQLite in a
//! RAM-backed directory), which a crash takes down (its memory lost, its store closed)
//! and a restart brings back from what the store kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mcx_core::interconnection_gateway::RetryPolicy;
use mcx_core::partners::Partners;
use mcx_core::ports::{Credential, UserRecord, UserStore as _};
use mcx_core::system::{McSystem, SystemSettings};
use mcx_model::SystemDomain;
use mcx_model::profile::UserProfile;
use mcx_store::{SqlStore, StoreOptions, StoreWorld};

use crate::net::Net;
use crate::world::{SeededEntropy, SimClock};

/// A running incarnation of a system.
pub struct Up {
    /// The entities.
    pub system: Arc<McSystem>,
    /// Its store.
    pub store: Arc<SqlStore>,
    /// The MC service server's group policy follower, polled by the simulation.
    policy: BoxFuture<'static, ()>,
}

/// One system of the simulation, up or down.
pub struct SimSystem {
    /// Its domain.
    pub domain: SystemDomain,
    dir: PathBuf,
    partners: Partners,
    users: Vec<(UserProfile, String)>,
    /// The running incarnation; `None` while crashed.
    pub up: Option<Up>,
    /// How many times it was started.
    pub starts: u32,
}

impl SimSystem {
    /// A system (not started) whose store lives in `dir`.
    pub fn new(
        domain: SystemDomain,
        dir: PathBuf,
        partners: Partners,
        users: Vec<(UserProfile, String)>,
    ) -> Self {
        Self {
            domain,
            dir,
            partners,
            users,
            up: None,
            starts: 0,
        }
    }

    /// Starts the system as `mcx serve` would: opens the store, loads the users, undoes
    /// half-formed regroups and ends affiliations of ended sessions. The outbox and the
    /// deadlines are driven by the simulation, not by loops.
    pub async fn start(
        &mut self,
        net: &Arc<Net>,
        clock: Arc<SimClock>,
        entropy: Arc<SeededEntropy>,
    ) -> Result<(), String> {
        let store = SqlStore::open(
            &StoreOptions {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    self.dir.join("mcx.sqlite").display()
                ),
                max_connections: 4,
                storage_key: Some([7; 32]),
            },
            StoreWorld {
                clock: clock.clone(),
                entropy: entropy.clone(),
            },
        )
        .await
        .map_err(|e| format!("{}: opening the store: {e}", self.domain))?;
        let store = Arc::new(store);
        for (profile, hash) in &self.users {
            store
                .put_user(&UserRecord {
                    profile: profile.clone(),
                    credential: Credential::PasswordHash(hash.clone()),
                })
                .await
                .map_err(|e| format!("{}: storing a user: {e}", self.domain))?;
        }
        let settings = SystemSettings {
            domain: self.domain.clone(),
            name: self.domain.to_string(),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            partners: self.partners.clone(),
            retry: RetryPolicy {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
                lane_lease: Duration::from_secs(30),
            },
            change_timeout: Duration::from_secs(30),
            // Answered at once: the simulation delivers the outbox itself.
            affiliation_wait: Duration::ZERO,
            limits: mcx_core::limits::Limits::default(),
            single_node: true,
        };
        let link = Arc::new(net.link(self.domain.clone()));
        let (system, policy) = McSystem::new(settings, store.clone(), clock, entropy, link);
        let failed = |what: &str, e: mcx_core::Error| format!("{}: {what}: {e}", self.domain);
        system
            .mc_service_server
            .undo_unfinished_regroups()
            .await
            .map_err(|e| failed("undoing regroups", e))?;
        system
            .mc_service_server
            .end_stale_affiliations()
            .await
            .map_err(|e| failed("ending stale affiliations", e))?;
        net.attach(system.clone());
        self.up = Some(Up {
            system,
            store,
            policy,
        });
        self.starts += 1;
        Ok(())
    }

    /// Crashes the system: whatever it held in memory is lost; its store keeps what was
    /// committed.
    pub async fn crash(&mut self, net: &Net) {
        net.detach(&self.domain);
        if let Some(up) = self.up.take() {
            let Up {
                system,
                store,
                policy,
            } = up;
            drop(policy);
            drop(system);
            store.close().await;
        }
    }

    /// Lets the group policy follower apply what the GMS notified, without waiting.
    pub async fn settle(&mut self) {
        if let Some(up) = &mut self.up {
            let policy = &mut up.policy;
            tokio::select! {
                biased;
                _ = policy => {}
                _ = std::future::ready(()) => {}
            }
        }
    }
}
