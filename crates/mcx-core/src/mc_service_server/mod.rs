//! The MC service server: one per MC service in TS 23.280, one module here serving all
//! three (the MC service travels in each flow). It handles affiliation (§10.8) and
//! regroup (§10.15) for the users it serves and the groups it hosts.
//!
//! It learns group policy from its GMS by subscription (§10.8.3.1 steps 2a/2b): the first
//! use of a group fetches it and subscribes; every later change arrives as a
//! [`GroupConfigurationNotification`](crate::gms::GroupConfigurationNotification) and
//! replaces the cached copy. When a user logs on whose profile lists a group homed in a
//! partner system that the GMS does not hold, it asks the GMS for it (§10.2.7.3 step 1).
//! When a client logs off, its affiliations end, here and at partner hosts.

mod affiliation;
mod group_policy;
mod regroup;
mod remote_change;
mod waiters;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcx_model::api::{GroupAffiliations, UserAffiliations, UserGroupAffiliation};
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::profile::{Permission, UserProfile};
use mcx_model::{McServiceGroupId, McServiceId, SystemDomain};
use tokio::sync::{Notify, watch};

pub use affiliation::{AffiliationPlan, plan_affiliation};
pub use group_policy::GroupPolicyCache;

use crate::error::{Error, ErrorKind, Result, codes};
use crate::events::StreamWakers;
use crate::gms::GroupManagementServer;
use crate::identity::{Requester, SessionObserver};
use crate::partners::Partners;
use crate::ports::{
    AffiliationStore, Clock, EventStore, InterconnectionStore, RegroupStore, SessionRecord,
    SessionStore, Store, UserStore,
};

/// The MC service server of one system.
pub struct McServiceServer {
    /// Group policy, kept by subscription to the GMS.
    pub policy: Arc<GroupPolicyCache>,
    gms: Arc<GroupManagementServer>,
    system: SystemDomain,
    store: Arc<dyn AffiliationStore>,
    affiliations: Arc<dyn AffiliationStore>,
    regroups: Arc<dyn RegroupStore>,
    links: Arc<dyn InterconnectionStore>,
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    commits: Arc<dyn EventStore>,
    partners: Arc<Partners>,
    wakers: Arc<StreamWakers>,
    outbox: Arc<crate::outbox_signal::OutboxSignal>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn crate::ports::Entropy>,
    change_timeout: Duration,
    answer_wait: Duration,
    waiting: affiliation::AnswerWaits,
    regroup_waits: waiters::Waiters<McServiceGroupId, Result<mcx_model::api::RegroupRecord>>,
    cancel_waits: waiters::Waiters<(McServiceGroupId, SystemDomain), ()>,
    regroup_locks: UserLocks,
    changes: Notify,
    user_locks: UserLocks,
    trace: Arc<crate::trace::TraceLog>,
}

/// Serialises decisions about one user's affiliations within this process, so concurrent
/// requests of one user queue instead of racing (the per-user generation in the store
/// still guards against other nodes). Striped: bounded memory, rare false sharing.
struct UserLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl UserLocks {
    fn new() -> Self {
        Self {
            stripes: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    async fn lock(&self, key: &impl std::hash::Hash) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::Hasher;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() as usize) % self.stripes.len();
        self.stripes[stripe].lock().await
    }
}

/// What an MC service server is built from.
pub struct McServiceServerParts {
    /// The GMS of the same system.
    pub gms: Arc<GroupManagementServer>,
    /// The store.
    pub store: Arc<dyn Store>,
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
    /// How long a negotiated remote change waits for its targets.
    pub change_timeout: Duration,
    /// How long an affiliation request waits for partner hosts' answers before it is
    /// answered with `affiliating`.
    pub answer_wait: Duration,
    /// The flow trace.
    pub trace: Arc<crate::trace::TraceLog>,
}

impl McServiceServer {
    /// The MC service server.
    pub fn new(parts: McServiceServerParts) -> Self {
        let store = parts.store;
        let shared = store.shared_by_nodes();
        Self {
            policy: Arc::new(GroupPolicyCache::new(parts.gms.clone())),
            system: parts.gms.system().clone(),
            gms: parts.gms,
            affiliations: store.clone(),
            regroups: store.clone(),
            links: store.clone(),
            users: store.clone(),
            sessions: store.clone(),
            commits: store.clone(),
            store,
            partners: parts.partners,
            wakers: parts.wakers,
            outbox: parts.outbox,
            clock: parts.clock,
            entropy: parts.entropy,
            change_timeout: parts.change_timeout,
            answer_wait: parts.answer_wait,
            waiting: affiliation::AnswerWaits::new(shared),
            regroup_waits: waiters::Waiters::default(),
            cancel_waits: waiters::Waiters::default(),
            regroup_locks: UserLocks::new(),
            changes: Notify::new(),
            user_locks: UserLocks::new(),
            trace: parts.trace,
        }
    }

    /// Whether a partner user may use a group defined here without being listed as a
    /// member: the group was shared with the user's system (by an administrator, a
    /// regroup, or an accepted ACM exchange). The partner's profiles decide which of its
    /// users have the group.
    async fn shared_with_users_system(
        &self,
        group: &McServiceGroupId,
        user: &McServiceId,
    ) -> Result<bool> {
        let system = user.domain();
        Ok(system != self.system && self.links.shared_with(group, &system).await?)
    }

    /// Another node (or this one) committed a partner host's answer for a request that
    /// may be waiting here (several nodes on one store: the key of its stored wait).
    pub fn host_answer_stored(&self, wait: &str) {
        self.waiting.answered(wait);
    }

    /// Notifications from other nodes may have been missed: waiting requests look in
    /// the store again.
    pub fn look_again_for_host_answers(&self) {
        self.waiting.look_again();
    }

    /// Records the answer to a partner's transaction with no other effect.
    pub(in crate::mc_service_server) async fn answer_alone(
        &self,
        inbound: crate::events::Inbound<'_>,
        answer: mcx_model::flows::partner::PartnerResponse,
    ) -> Result<mcx_model::flows::partner::PartnerResponse> {
        crate::events::commit_answer_alone(
            &*self.commits,
            &*self.links,
            &self.wakers,
            &self.outbox,
            inbound,
            answer,
        )
        .await
    }

    /// Commits with the answer to a partner's transaction (see
    /// [`crate::events::commit_answer`]).
    pub(in crate::mc_service_server) async fn commit_answer(
        &self,
        effects: crate::ports::Effects,
        inbound: crate::events::Inbound<'_>,
        answer: mcx_model::flows::partner::PartnerResponse,
    ) -> Result<Option<crate::events::Given>> {
        crate::events::commit_answer(
            &*self.commits,
            &*self.links,
            &self.wakers,
            &self.outbox,
            effects,
            inbound,
            answer,
        )
        .await
    }

    fn trace_gms_status(&self, effects: &crate::ports::Effects) {
        use mcx_model::flows::affiliation::AffiliationStatus;
        for update in &effects.gms.affiliation_status {
            let affiliated = update
                .statuses
                .iter()
                .any(|(_, s)| *s == AffiliationStatus::Affiliated);
            let flow = if affiliated {
                "Group affiliation status update"
            } else {
                "Group de-affiliation status update"
            };
            self.trace.record(crate::trace::Flow {
                entity: "MC service server",
                direction: crate::trace::Direction::Sent,
                peer: "GMS".into(),
                flow,
                correlation: update.user.to_string(),
                elements: serde_json::json!({
                    "mc-service-id": update.user,
                    "mc-service": update.mc_service,
                    "mc-service-group-id-list": update.statuses.iter().map(|(g, _)| g).collect::<Vec<_>>(),
                    "status-per-mc-service-group-id": update.statuses.iter().map(|(g, s)| serde_json::json!({"mc-service-group-id": g, "status": s})).collect::<Vec<_>>(),
                }),
            });
        }
    }

    /// A served user's affiliations: the requester's own, or (with the
    /// affiliation-monitoring permission) another user's of this system.
    pub async fn user_affiliations(
        &self,
        requester: &Requester,
        user: &McServiceId,
    ) -> Result<UserAffiliations> {
        if &requester.mc_service_id != user {
            requester.require(
                Permission::AffiliationMonitoring,
                "see other users' affiliations",
            )?;
        }
        if user.domain() != self.system || self.users.user(user).await?.is_none() {
            return Err(Error::refused(
                ErrorKind::NotFound,
                codes::USER_NOT_FOUND,
                format!("{user} is not a user of {}", self.system),
            ));
        }
        let state = self.store.user_affiliations(user).await?;
        // A reservation awaiting its host's answer shows as `affiliating`.
        let mut grouped: BTreeMap<
            (mcx_model::McService, McServiceGroupId),
            (Vec<mcx_model::ClientId>, bool),
        > = BTreeMap::new();
        for row in state.rows {
            let entry = grouped.entry((row.mc_service, row.group)).or_default();
            entry.0.push(row.client);
            entry.1 |= row.pending.is_some();
        }
        Ok(UserAffiliations {
            mc_service_id: user.clone(),
            affiliations: grouped
                .into_iter()
                .map(
                    |((mc_service, group), (clients, pending))| UserGroupAffiliation {
                        mc_service,
                        mc_service_group_id: group,
                        clients,
                        status: if pending {
                            AffiliationStatus::Affiliating
                        } else {
                            AffiliationStatus::Affiliated
                        },
                    },
                )
                .collect(),
        })
    }

    /// A group's affiliated members (affiliation-monitoring or group-administration):
    /// for a group defined here, the GMS's view of every system's members; for a partner
    /// group, this system's users affiliated to it.
    pub async fn group_affiliations(
        &self,
        requester: &Requester,
        group: &McServiceGroupId,
    ) -> Result<GroupAffiliations> {
        if !requester.profile.may(Permission::AffiliationMonitoring) {
            requester.require(
                Permission::GroupAdministration,
                "see a group's affiliated members",
            )?;
        }
        let members = if group.home_system() == self.system {
            if self.gms.group_for_server(group).await?.is_none() {
                return Err(Error::refused(
                    ErrorKind::NotFound,
                    codes::GROUP_NOT_FOUND,
                    format!("there is no group '{group}' in this system"),
                ));
            }
            self.store.gms_affiliations(group).await?
        } else {
            let now = self.clock.now();
            let mut seen = std::collections::BTreeSet::new();
            self.store
                .served_affiliations_to(group)
                .await?
                .into_iter()
                .filter(|(_, row)| row.pending.is_none())
                .filter(|(user, row)| seen.insert((user.clone(), row.mc_service)))
                .map(|(user, row)| mcx_model::api::AffiliatedMember {
                    mc_service_id: user,
                    mc_service: row.mc_service,
                    updated_at: now,
                })
                .collect()
        };
        Ok(GroupAffiliations {
            mc_service_group_id: group.clone(),
            members,
        })
    }

    /// Gives up negotiated remote changes, and partners' answers to forming regroups, at
    /// their deadlines until `shutdown` turns true. `duty` says whether this node is the
    /// one to do it now (several nodes share one store: one of them does it for all), and
    /// how soon to ask again at the latest.
    pub async fn run_change_deadlines<D>(
        self: Arc<Self>,
        duty: D,
        mut shutdown: watch::Receiver<bool>,
    ) where
        D: Fn() -> futures_util::future::BoxFuture<'static, (bool, Option<Duration>)>,
    {
        loop {
            let woken = self.changes.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (held, recheck) = duty().await;
            let due = if !held {
                Ok(None)
            } else {
                match (self.expire_changes().await, self.expire_regroups().await) {
                    (Ok(a), Ok(b)) => Ok(a.into_iter().chain(b).min()),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            };
            let wait = match due {
                Ok(Some(next)) => {
                    Duration::try_from(next - self.clock.now()).unwrap_or(Duration::ZERO)
                }
                Ok(None) => Duration::from_secs(60),
                Err(e) => {
                    tracing::warn!(error = %e, "remote change deadlines: will retry");
                    Duration::from_secs(1)
                }
            };
            let wait = recheck.map_or(wait, |r| wait.min(r));
            tokio::select! {
                _ = &mut woken => {}
                _ = self.clock.sleep(wait.min(Duration::from_secs(60)) + Duration::from_millis(5)) => {}
                _ = async { let _ = shutdown.wait_for(|down| *down).await; } => return,
            }
        }
    }
}

#[async_trait]
impl SessionObserver for McServiceServer {
    /// §10.2.7.3 step 1: "The MC service server in the partner MC system requests the
    /// group configuration information from the group management server".
    async fn logged_on(&self, session: &SessionRecord, profile: &UserProfile) {
        for group in profile.all_groups() {
            if group.home_system() == self.system {
                continue;
            }
            match self.gms.request_configuration(group).await {
                Ok(true) => {
                    self.trace.record(crate::trace::Flow {
                        entity: "MC service server",
                        direction: crate::trace::Direction::Sent,
                        peer: "GMS".into(),
                        flow: "Group configuration request",
                        correlation: group.to_string(),
                        elements: serde_json::json!({"mc-service-group-id": group, "for": session.mc_service_id}),
                    });
                    tracing::info!(user = %session.mc_service_id, %group, "log-on: requested partner group configuration")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user = %session.mc_service_id, %group, error = %e, "log-on: cannot request partner group configuration")
                }
            }
        }
    }

    /// The client's affiliations end, everywhere.
    async fn logged_off(&self, session: &SessionRecord) {
        if let Err(e) = self.end_client(session).await.map(|_| ()) {
            tracing::warn!(user = %session.mc_service_id, client = %session.client_id, error = %e, "log-off: ending affiliations failed; they end at next start");
        }
    }
}
