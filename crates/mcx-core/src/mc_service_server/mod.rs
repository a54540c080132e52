//! The MC service server: one per MC service in TS 23.280, one module here serving all
//! three (the MC service travels in each flow). It handles affiliation (§10.8) and
//! regroup (§10.15) for the users it serves and the groups it hosts.
//!
//! It learns group policy from its GMS by subscription (§10.8.3.1 steps 2a/2b): the first
//! use of a group fetches it and subscribes; every later change arrives as a
//! [`GroupConfigurationNotification`](crate::gms::GroupConfigurationNotification) and
//! replaces the cached copy. When a user logs on whose profile lists a group homed in a
//! partner system that the GMS does not hold, it asks the GMS for it (§10.2.7.3 step 1).

mod group_policy;

use std::sync::Arc;

use async_trait::async_trait;
use mcx_model::profile::UserProfile;

pub use group_policy::GroupPolicyCache;

use crate::gms::GroupManagementServer;
use crate::identity::SessionObserver;
use crate::ports::SessionRecord;

/// The MC service server of one system.
pub struct McServiceServer {
    /// Group policy, kept by subscription to the GMS.
    pub policy: Arc<GroupPolicyCache>,
    gms: Arc<GroupManagementServer>,
}

impl McServiceServer {
    /// The MC service server, using `gms`.
    pub fn new(gms: Arc<GroupManagementServer>) -> Self {
        Self {
            policy: Arc::new(GroupPolicyCache::new(gms.clone())),
            gms,
        }
    }
}

#[async_trait]
impl SessionObserver for McServiceServer {
    /// §10.2.7.3 step 1: "The MC service server in the partner MC system requests the
    /// group configuration information from the group management server".
    async fn logged_on(&self, session: &SessionRecord, profile: &UserProfile) {
        for group in profile.all_groups() {
            if group.home_system() == *self.gms.system() {
                continue;
            }
            match self.gms.request_configuration(group).await {
                Ok(true) => {
                    tracing::info!(user = %session.mc_service_id, %group, "log-on: requested partner group configuration")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user = %session.mc_service_id, %group, error = %e, "log-on: cannot request partner group configuration")
                }
            }
        }
    }

    async fn logged_off(&self, _session: &SessionRecord) {}
}
