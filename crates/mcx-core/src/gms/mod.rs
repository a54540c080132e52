//! The group management server (GMS) of one MC system.
//!
//! Local part (TS 23.280 §10.1.5, stage 3 TS 24.481): group administrators create, read,
//! update and delete the groups defined in this system; every stored change has a new
//! version; MC service servers (in process) and logged-on clients (event stream) subscribe
//! to a group's configuration and are notified of every change. Partner-homed groups are
//! stored here too, received through the interconnection procedures of §10.2.7, and served
//! to this system's users as if local, but only their primary system changes them.

mod interconnection;
pub(crate) use interconnection::{AnswerTo, Arrival};
mod keys;
pub mod policy;
mod regroup;

use std::sync::Arc;

use mcx_model::api::CreateGroupRequest;
use mcx_model::events::ClientEvent;
use mcx_model::group::{GroupConfiguration, GroupOrigin, GroupRecord};
use mcx_model::profile::Permission;
use mcx_model::{McServiceGroupId, SystemDomain};
use tokio::sync::broadcast;

use crate::error::{Error, ErrorKind, Result, codes};
use crate::events::StreamWakers;
use crate::identity::Requester;
use crate::partners::Partners;
use crate::ports::{
    Audience, Clock, Committed, Effects, EventStore, GroupStore, InterconnectionStore,
    PartnerAudience, PartnerRecordUpdate, WriteOutcome,
};

pub use keys::generate_key_material;

/// A precondition on the stored version (`If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match: *`: any stored version.
    Any,
    /// The stored version must be this one.
    Version(u64),
}

/// The GMS telling its MC service servers (in process) about a group they use.
#[derive(Debug, Clone)]
pub enum GroupConfigurationNotification {
    /// The group was stored with a new version.
    Changed(Arc<GroupRecord>),
    /// The group no longer exists here.
    Deleted(McServiceGroupId),
}

/// What a user may read of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Everything, key material included.
    Full,
    /// That it exists and its configuration, not its key material.
    WithoutKey,
    /// Nothing.
    None,
}

/// The group management server.
pub struct GroupManagementServer {
    system: SystemDomain,
    store: Arc<dyn GroupStore>,
    links: Arc<dyn InterconnectionStore>,
    commits: Arc<dyn EventStore>,
    partners: Arc<Partners>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn crate::ports::Entropy>,
    wakers: Arc<StreamWakers>,
    outbox: Arc<crate::outbox_signal::OutboxSignal>,
    servers: broadcast::Sender<GroupConfigurationNotification>,
    trace: Arc<crate::trace::TraceLog>,
    limits: crate::limits::Limits,
}

/// What a GMS is built from.
pub struct GmsParts {
    /// The system's domain.
    pub system: SystemDomain,
    /// Group documents and client subscriptions.
    pub store: Arc<dyn GroupStore>,
    /// Interconnection state and the outbox.
    pub links: Arc<dyn InterconnectionStore>,
    /// Commits effects that go with no other change.
    pub commits: Arc<dyn EventStore>,
    /// The partner systems.
    pub partners: Arc<Partners>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness: identifiers, secrets, jitter.
    pub entropy: Arc<dyn crate::ports::Entropy>,
    /// Wakes clients' event streams.
    pub wakers: Arc<StreamWakers>,
    /// Wakes the outbox dispatcher when requests to partners are committed.
    pub outbox: Arc<crate::outbox_signal::OutboxSignal>,
    /// The flow trace.
    pub trace: Arc<crate::trace::TraceLog>,
    /// Bounds on group documents.
    pub limits: crate::limits::Limits,
}

/// The group as the requester may see it, if at all.
fn shown(mut group: GroupRecord, access: Access) -> Option<GroupRecord> {
    match access {
        Access::Full => Some(group),
        Access::WithoutKey => {
            group.key_material = None;
            Some(group)
        }
        Access::None => None,
    }
}

fn unreadable(requester: &Requester, id: &McServiceGroupId) -> Error {
    Error::refused(
        ErrorKind::Forbidden,
        codes::NOT_AUTHORIZED,
        format!(
            "{} may not read group '{id}': not a member, not in the user profile, and not a group administrator",
            requester.mc_service_id
        ),
    )
}

fn not_found(id: &McServiceGroupId) -> Error {
    Error::refused(
        ErrorKind::NotFound,
        codes::GROUP_NOT_FOUND,
        format!("there is no group '{id}' in this system"),
    )
}

impl GroupManagementServer {
    /// A GMS.
    pub fn new(parts: GmsParts) -> Self {
        let (servers, _) = broadcast::channel(4096);
        Self {
            system: parts.system,
            store: parts.store,
            links: parts.links,
            commits: parts.commits,
            partners: parts.partners,
            clock: parts.clock,
            entropy: parts.entropy,
            wakers: parts.wakers,
            outbox: parts.outbox,
            servers,
            trace: parts.trace,
            limits: parts.limits,
        }
    }

    /// The system this GMS belongs to.
    pub fn system(&self) -> &SystemDomain {
        &self.system
    }

    async fn event_store_commit(&self, effects: &Effects) -> Result<Committed> {
        Ok(self.commits.commit(effects).await?)
    }

    /// Subscribes an MC service server (in process) to group configuration notifications.
    /// A receiver that lags behind must drop its cache: it missed notifications.
    pub fn subscribe_server(&self) -> broadcast::Receiver<GroupConfigurationNotification> {
        self.servers.subscribe()
    }

    /// Reads a group for an MC service server of this system (no user check: servers of
    /// the same system are trusted).
    pub async fn group_for_server(&self, id: &McServiceGroupId) -> Result<Option<GroupRecord>> {
        Ok(self.store.group(id).await?)
    }

    /// What the requester may read of a group (§10.2.7.1: the GMS is the source of a
    /// group's configuration for its members). Members and administrators read all of
    /// it; a user whose profile lists it but who is not a member learns that it exists,
    /// without key material; others nothing.
    async fn access(&self, requester: &Requester, group: &GroupRecord) -> Result<Access> {
        let me = &requester.mc_service_id;
        if requester.profile.may(Permission::GroupAdministration)
            || group.configuration.is_member(me)
        {
            return Ok(Access::Full);
        }
        let listed = requester.profile.all_groups();
        // A regroup group's members are the members of its constituent groups.
        if let Some(regrouped) = &group.configuration.on_network_regrouped {
            for constituent in &regrouped.constituent_group_ids {
                if let Some(c) = self.store.group(constituent).await?
                    && c.configuration.is_member(me)
                {
                    return Ok(Access::Full);
                }
            }
            if regrouped
                .constituent_group_ids
                .iter()
                .any(|g| listed.contains(g))
            {
                return Ok(Access::WithoutKey);
            }
        }
        Ok(if listed.contains(&group.mc_service_group_id) {
            Access::WithoutKey
        } else {
            Access::None
        })
    }

    /// The bounds requests are held to.
    pub fn limits(&self) -> crate::limits::Limits {
        self.limits
    }

    fn validate(&self, configuration: &GroupConfiguration) -> Result<()> {
        self.limits.members(configuration.list.len())?;
        configuration.validate().map_err(|e| {
            Error::refused(
                ErrorKind::Invalid,
                codes::INVALID_CONFIGURATION,
                format!("the group configuration is not valid: {e}"),
            )
        })
    }

    fn require_local(&self, group: &GroupRecord, to_do: &str) -> Result<()> {
        match group.origin {
            GroupOrigin::Local => Ok(()),
            GroupOrigin::Partner { .. } => Err(Error::refused(
                ErrorKind::Conflict,
                codes::GROUP_NOT_HOMED_HERE,
                format!(
                    "cannot {to_do} group '{}': it is defined in {}, and only its primary system changes it",
                    group.mc_service_group_id,
                    group.mc_service_group_id.home_system()
                ),
            )),
        }
    }

    fn after_commit(
        &self,
        committed: &Committed,
        notification: Option<GroupConfigurationNotification>,
    ) {
        self.wakers.wake(&committed.woken_sessions);
        self.outbox.committed(committed);
        if let Some(notification) = notification {
            let (group, elements) = match &notification {
                GroupConfigurationNotification::Changed(g) => (
                    g.mc_service_group_id.to_string(),
                    serde_json::json!({"mc-service-group-id": g.mc_service_group_id, "version": g.version,
                        "regrouped-into": g.configuration.regrouped_into}),
                ),
                GroupConfigurationNotification::Deleted(id) => (
                    id.to_string(),
                    serde_json::json!({"mc-service-group-id": id, "deleted": true}),
                ),
            };
            self.trace.record(crate::trace::Flow {
                entity: "GMS",
                direction: crate::trace::Direction::Sent,
                peer: "MC service server".into(),
                flow: "Group configuration notification",
                correlation: group,
                elements,
            });
            // No receiver is not an error: no MC service server uses the group yet.
            let _ = self.servers.send(notification);
        }
    }

    /// Defines a new group in this system (group administrators only).
    pub async fn create_group(
        &self,
        requester: &Requester,
        request: CreateGroupRequest,
    ) -> Result<GroupRecord> {
        requester.require(Permission::GroupAdministration, "create groups")?;
        let id = request.mc_service_group_id;
        if id.home_system() != self.system {
            return Err(Error::refused(
                ErrorKind::Invalid,
                codes::GROUP_NOT_HOMED_HERE,
                format!(
                    "group '{id}' belongs to {}: a group is defined in the system its ID names, and this is {}",
                    id.home_system(),
                    self.system
                ),
            ));
        }
        self.validate(&request.configuration)?;
        let mut configuration = request.configuration;
        configuration.on_network_regrouped = None;
        configuration.regrouped_into = None;
        self.insert_local(id, configuration).await
    }

    /// Defines a configured (bootstrap) group unless it exists already. Returns whether it
    /// was created.
    pub async fn ensure_group(
        &self,
        id: McServiceGroupId,
        configuration: GroupConfiguration,
    ) -> Result<bool> {
        self.validate(&configuration)?;
        if self.store.group(&id).await?.is_some() {
            return Ok(false);
        }
        match self.insert_local(id, configuration).await {
            Ok(_) => Ok(true),
            Err(Error::Refused { code, .. }) if code == codes::GROUP_EXISTS => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn insert_local(
        &self,
        id: McServiceGroupId,
        configuration: GroupConfiguration,
    ) -> Result<GroupRecord> {
        let now = self.clock.now();
        let record = GroupRecord {
            mc_service_group_id: id.clone(),
            configuration,
            key_material: Some(generate_key_material(1, now, self.entropy.as_ref())),
            version: 1,
            origin: GroupOrigin::Local,
            updated_at: now,
        };
        let mut effects = Effects::none();
        self.effects_of_local_change(None, &record, true, &mut effects);
        match self.store.insert_group(&record, &effects).await? {
            WriteOutcome::Done(committed) => {
                tracing::info!(group = %id, "group created");
                self.after_commit(
                    &committed,
                    Some(GroupConfigurationNotification::Changed(Arc::new(
                        record.clone(),
                    ))),
                );
                Ok(record)
            }
            _ => Err(Error::refused(
                ErrorKind::Conflict,
                codes::GROUP_EXISTS,
                format!("group '{id}' exists already"),
            )),
        }
    }

    /// Reads a group the requester may see: administrators see every group, users the
    /// groups they are members of or that their profile lists.
    pub async fn group(&self, requester: &Requester, id: &McServiceGroupId) -> Result<GroupRecord> {
        let group = self.store.group(id).await?.ok_or_else(|| not_found(id))?;
        let access = self.access(requester, &group).await?;
        shown(group, access).ok_or_else(|| unreadable(requester, id))
    }

    /// The groups the requester may see (key material only of those it is a member of).
    pub async fn groups(&self, requester: &Requester) -> Result<Vec<GroupRecord>> {
        let mut out = Vec::new();
        for group in self.store.groups().await? {
            let access = self.access(requester, &group).await?;
            out.extend(shown(group, access));
        }
        Ok(out)
    }

    async fn for_change(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
        precondition: Option<Precondition>,
        to_do: &str,
    ) -> Result<GroupRecord> {
        requester.require(Permission::GroupAdministration, &format!("{to_do} groups"))?;
        let current = self.store.group(id).await?.ok_or_else(|| not_found(id))?;
        self.require_local(&current, to_do)?;
        if let Some(Precondition::Version(expected)) = precondition
            && expected != current.version
        {
            return Err(Self::mismatch(id, expected, current.version));
        }
        Ok(current)
    }

    fn mismatch(id: &McServiceGroupId, expected: u64, current: u64) -> Error {
        Error::refused(
            ErrorKind::PreconditionFailed,
            codes::VERSION_MISMATCH,
            format!(
                "group '{id}' is at version {current}, not {expected}: it changed since you read it; read it again and retry"
            ),
        )
    }

    /// Replaces a local group's configuration (group administrators only). The caller
    /// must name the version it read; a stale one is refused.
    pub async fn update_group(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
        precondition: Precondition,
        configuration: GroupConfiguration,
    ) -> Result<GroupRecord> {
        let current = self
            .for_change(requester, id, Some(precondition), "update")
            .await?;
        self.validate(&configuration)?;
        // The regroup state belongs to the MC service server, not to administrators.
        let mut configuration = configuration;
        configuration.on_network_regrouped = current.configuration.on_network_regrouped.clone();
        configuration.regrouped_into = current.configuration.regrouped_into.clone();
        let record = GroupRecord {
            configuration,
            version: current.version + 1,
            updated_at: self.clock.now(),
            ..current.clone()
        };
        self.replace(&record, &current, false).await?;
        tracing::info!(group = %id, version = record.version, "group updated");
        Ok(record)
    }

    /// Stores a new version of a local group and notifies its subscribers (clients,
    /// servers and partner systems) in the same commit.
    async fn replace(
        &self,
        record: &GroupRecord,
        previous: &GroupRecord,
        key_changed: bool,
    ) -> Result<()> {
        let id = &record.mc_service_group_id;
        let expected_version = previous.version;
        let mut effects = Effects::event(
            Audience::GroupSubscribers(id.clone()),
            ClientEvent::GroupConfigurationChanged {
                group: Box::new(record.clone()),
                etag: record.etag(),
            },
        );
        self.effects_of_local_change(
            Some(&previous.configuration),
            record,
            key_changed,
            &mut effects,
        );
        self.effects_of_leaving_members(&previous.configuration, record, &mut effects)
            .await?;
        match self
            .store
            .replace_group(record, expected_version, &effects)
            .await?
        {
            WriteOutcome::Done(committed) => {
                self.after_commit(
                    &committed,
                    Some(GroupConfigurationNotification::Changed(Arc::new(
                        record.clone(),
                    ))),
                );
                Ok(())
            }
            WriteOutcome::VersionMismatch { current } => {
                Err(Self::mismatch(id, expected_version, current))
            }
            _ => Err(not_found(id)),
        }
    }

    /// Deletes a local group (group administrators only); subscribers are told.
    pub async fn delete_group(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
        precondition: Option<Precondition>,
    ) -> Result<()> {
        let current = self
            .for_change(requester, id, precondition, "delete")
            .await?;
        // A regroup names its groups in every system taking part; deleting one under it
        // would leave members and partners with a regroup of a group that is gone.
        let regroup = (current.configuration.regrouped_into.as_ref()).or(current
            .configuration
            .on_network_regrouped
            .as_ref()
            .map(|_| id));
        if let Some(regroup) = regroup {
            return Err(Error::refused(
                ErrorKind::Conflict,
                codes::GROUP_IN_REGROUP,
                format!(
                    "group '{id}' takes part in regroup '{regroup}', which is in effect: cancel the regroup first, then delete the group"
                ),
            ));
        }
        self.delete_local(id, current.version).await
    }

    /// Deletes a local group at `version`: subscribers and partners are told.
    async fn delete_local(&self, id: &McServiceGroupId, version: u64) -> Result<()> {
        let mut effects = Effects::event(
            Audience::GroupSubscribers(id.clone()),
            ClientEvent::GroupDeleted {
                mc_service_group_id: id.clone(),
            },
        );
        // Partners are told the group is gone (the seeds are silent; users expect it).
        effects.send(
            PartnerAudience::KnownPartners(id.clone()),
            mcx_model::flows::partner::PartnerRequest::GroupInformationWithdraw(
                mcx_model::flows::group_configuration::GroupInformationWithdrawRequest {
                    mc_service_group_id: id.clone(),
                    version,
                },
            ),
        );
        effects
            .gms
            .partner_records
            .push(PartnerRecordUpdate::Forget(id.clone()));
        match self.store.delete_group(id, Some(version), &effects).await? {
            WriteOutcome::Done(committed) => {
                tracing::info!(group = %id, "group deleted");
                self.after_commit(
                    &committed,
                    Some(GroupConfigurationNotification::Deleted(id.clone())),
                );
                Ok(())
            }
            WriteOutcome::VersionMismatch { current: now } => Err(Self::mismatch(id, version, now)),
            _ => Err(not_found(id)),
        }
    }

    /// Subscribes the requester's client to a group's configuration: every later change
    /// arrives on its event stream. Returns the group as stored now.
    pub async fn subscribe_client(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
    ) -> Result<GroupRecord> {
        let group = self.store.group(id).await?.ok_or_else(|| not_found(id))?;
        // Notifications carry key material: members (and administrators) only.
        match self.access(requester, &group).await? {
            Access::Full => {}
            Access::None => return Err(unreadable(requester, id)),
            Access::WithoutKey => {
                return Err(Error::refused(
                    ErrorKind::Forbidden,
                    codes::NOT_AUTHORIZED,
                    format!(
                        "{} is not a member of group '{id}': only members are notified of its configuration",
                        requester.mc_service_id
                    ),
                ));
            }
        }
        self.store.subscribe(&requester.session_id, id).await?;
        Ok(group)
    }

    /// Ends the requester's client's subscription to a group.
    pub async fn unsubscribe_client(
        &self,
        requester: &Requester,
        id: &McServiceGroupId,
    ) -> Result<()> {
        if self.store.unsubscribe(&requester.session_id, id).await? {
            Ok(())
        } else {
            Err(Error::refused(
                ErrorKind::NotFound,
                codes::NOT_SUBSCRIBED,
                format!("this client is not subscribed to group '{id}'"),
            ))
        }
    }
}
