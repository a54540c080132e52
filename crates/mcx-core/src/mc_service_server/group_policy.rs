//! The MC service server's cache of group policy, kept current by its subscription to
//! group configuration in the GMS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use mcx_model::McServiceGroupId;
use mcx_model::group::GroupRecord;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::gms::{GroupConfigurationNotification, GroupManagementServer};

/// Group policy as the MC service server knows it. A key present with `None` is a group
/// subscribed to whose fetch is under way, so a notification that overtakes the fetch is
/// not lost.
pub struct GroupPolicyCache {
    gms: Arc<GroupManagementServer>,
    groups: RwLock<HashMap<McServiceGroupId, Option<Arc<GroupRecord>>>>,
}

impl GroupPolicyCache {
    /// A cache fed by `gms`. Run [`GroupPolicyCache::follow`] with a receiver from
    /// [`GroupManagementServer::subscribe_server`] taken before the first lookup.
    pub fn new(gms: Arc<GroupManagementServer>) -> Self {
        Self {
            gms,
            groups: RwLock::new(HashMap::new()),
        }
    }

    /// The cached policy of a group, if subscribed and fetched.
    pub fn cached(&self, id: &McServiceGroupId) -> Option<Arc<GroupRecord>> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .flatten()
    }

    /// The policy of a group: from the cache (step 2a), or requested from the GMS and
    /// subscribed to (step 2b). `None` if the GMS does not know the group.
    pub async fn policy(&self, id: &McServiceGroupId) -> Result<Option<Arc<GroupRecord>>> {
        if let Some(hit) = self.cached(id) {
            return Ok(Some(hit));
        }
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_insert(None);
        let fetched = self.gms.group_for_server(id).await?.map(Arc::new);
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        match fetched {
            None => {
                if matches!(groups.get(id), Some(None)) {
                    groups.remove(id);
                }
                Ok(None)
            }
            Some(record) => {
                let slot = groups.entry(id.clone()).or_insert(None);
                match slot {
                    Some(newer) if newer.version >= record.version => Ok(Some(newer.clone())),
                    _ => {
                        *slot = Some(record.clone());
                        Ok(Some(record))
                    }
                }
            }
        }
    }

    /// A node committed the group at `version` (`None`: deleted): a cached policy older
    /// than that is read again from the store (one this node already holds at that
    /// version, from its own commit, is kept). Read rather than dropped: this node's GMS
    /// may tell of its own commit before or after, and the newest version wins either way.
    pub async fn changed_elsewhere(&self, id: &McServiceGroupId, version: Option<u64>) {
        let stale = match (self.cached(id), version) {
            (Some(cached), Some(version)) => cached.version < version,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if stale {
            self.refresh(id).await;
        }
    }

    /// Notifications from other nodes may have been missed: every cached policy is read
    /// again from the store.
    pub async fn refresh_all(&self) {
        let ids: Vec<McServiceGroupId> = self
            .groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, slot)| slot.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.refresh(&id).await;
        }
    }

    async fn refresh(&self, id: &McServiceGroupId) {
        match self.gms.group_for_server(id).await {
            Ok(Some(record)) => {
                self.apply(GroupConfigurationNotification::Changed(Arc::new(record)))
            }
            Ok(None) => self.apply(GroupConfigurationNotification::Deleted(id.clone())),
            Err(e) => {
                // Not knowing is not serving stale: the entry goes, the next use reads.
                tracing::warn!(group = %id, error = %e, "group policy: cannot read a group another node changed; dropping it");
                self.groups
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id);
            }
        }
    }

    /// Applies one notification from the GMS.
    pub fn apply(&self, notification: GroupConfigurationNotification) {
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        match notification {
            GroupConfigurationNotification::Changed(record) => {
                if let Some(slot) = groups.get_mut(&record.mc_service_group_id) {
                    let newer = slot.as_ref().is_none_or(|old| old.version < record.version);
                    if newer {
                        *slot = Some(record);
                    }
                }
            }
            GroupConfigurationNotification::Deleted(id) => {
                groups.remove(&id);
            }
        }
    }

    /// Follows the GMS's notifications until the GMS goes away. A lagging receiver drops
    /// the whole cache, so nothing stale is served.
    pub async fn follow(
        &self,
        mut notifications: broadcast::Receiver<GroupConfigurationNotification>,
    ) {
        loop {
            match notifications.recv().await {
                Ok(notification) => self.apply(notification),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "group policy cache lagged behind the GMS; dropping it"
                    );
                    self.groups
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
