//! Ports: what the functional entities need from the outside, as traits. The store crate
//! implements the storage ports with sqlx; unit tests may implement them in memory.
//!
//! Writes that change state and produce notifications take the notifications along
//! ([`Effects`]) so that the store commits both in one transaction: a change is never
//! stored without its notifications, nor notified without being stored.

use async_trait::async_trait;
use mcx_model::api::{
    AcmExchange, AffiliatedMember, AffiliationChangeRecord, PartnerDelivery, PrimaryLink,
    PrimaryLinkState, RegroupRecord,
};
use mcx_model::events::{ClientEvent, DeliveredEvent};
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::group::GroupRecord;
use mcx_model::profile::UserProfile;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, SystemDomain, TransactionId};
use time::OffsetDateTime;

/// The store failed. Carries what was being done; nothing of the failed call was kept.
#[derive(Debug, thiserror::Error)]
#[error("storage failed while {context}: {message}")]
pub struct StoreError {
    /// What was being done, e.g. "updating group 'sip:ops@police.example'".
    pub context: String,
    /// The underlying error.
    pub message: String,
}

/// A storage call's result.
pub type StoreResult<T> = Result<T, StoreError>;

/// How a user proves who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password, as an Argon2id PHC string (never the password itself).
    PasswordHash(String),
}

/// A user of this system: profile and credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The profile.
    pub profile: UserProfile,
    /// The credential.
    pub credential: Credential,
}

/// A logged-on client's session. The token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session ID.
    pub session_id: String,
    /// SHA-256 of the bearer token, lowercase hex.
    pub token_hash: String,
    /// The logged-on user.
    pub mc_service_id: McServiceId,
    /// The client.
    pub client_id: ClientId,
    /// When the user logged on.
    pub logged_on_at: OffsetDateTime,
    /// When the session ends.
    pub expires_at: OffsetDateTime,
}

/// Who receives a client event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// One session.
    Session(String),
    /// Every session subscribed to the group's configuration.
    GroupSubscribers(McServiceGroupId),
    /// Every session of the user (each of the user's logged-on clients).
    User(McServiceId),
}

/// Which partner systems receive an outbox entry; resolved inside the transaction that
/// commits it, so a partner subscribing concurrently is either in or sees the next change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerAudience {
    /// One partner.
    Partner(SystemDomain),
    /// Every partner GMS subscribed to the group (§10.2.7.4).
    SubscribedPartners(McServiceGroupId),
    /// Every partner the primary has a record of for the group (shared, delivered or
    /// subscribed).
    KnownPartners(McServiceGroupId),
}

/// A server-to-server request to send, durably, in order per partner, retried until the
/// partner answers. Receivers deduplicate on (sender, transaction ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Who receives it.
    pub audience: PartnerAudience,
    /// The exchange's ID (the same for every partner of an audience; receivers key on the
    /// sender as well).
    pub transaction_id: TransactionId,
    /// The flow.
    pub request: PartnerRequest,
    /// Not sent before this long after the commit (zero: at once).
    pub delay: std::time::Duration,
}

/// A change to the primary's record of one partner of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerRecordChange {
    /// A version is on its way to the partner.
    Pending {
        /// The version.
        version: u64,
    },
    /// The partner stored the version.
    Delivered {
        /// The version.
        version: u64,
    },
    /// The partner could not store the version.
    Failed {
        /// The version.
        version: u64,
        /// The partner's reason.
        detail: String,
    },
    /// The partner is (or is no longer) subscribed.
    Subscribed(bool),
    /// The group was shared with the partner (it may then request and subscribe).
    Shared,
}

/// A change to the primary's records of a group's partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerRecordUpdate {
    /// One partner's record changes.
    One {
        /// The partner.
        partner: SystemDomain,
        /// The group.
        group: McServiceGroupId,
        /// The change.
        change: PartnerRecordChange,
    },
    /// Every subscribed partner of the group has this version pending.
    SubscribedPending {
        /// The group.
        group: McServiceGroupId,
        /// The version.
        version: u64,
    },
    /// The group is gone: forget its partner records.
    Forget(McServiceGroupId),
    /// The partner no longer serves a member and was not given the group by an
    /// administrator: its record goes. Applied before the commit's requests to partners
    /// are addressed, so a notification of the same change does not reach it.
    Dropped {
        /// The partner.
        partner: SystemDomain,
        /// The group.
        group: McServiceGroupId,
    },
}

/// Notifications and records committed together with a change.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Events for clients' event streams.
    pub client_events: Vec<(Audience, ClientEvent)>,
    /// Requests to partner systems.
    pub outbox: Vec<OutboxEntry>,
    /// An outbox entry whose exchange this change completes (removed in the same commit).
    pub complete_outbox: Option<i64>,
    /// Changes to the primary's records of partners.
    pub partner_records: Vec<PartnerRecordUpdate>,
    /// A change to the partner's link to the primary of a group.
    pub primary_link: Option<PrimaryLinkUpdate>,
    /// Changes to the MC service server's affiliation records.
    pub affiliations: Vec<AffiliationWrite>,
    /// Group affiliation status updates to the GMS (tables 10.X.2.3-1 and 10.X.2.6-1),
    /// applied to the GMS's view in the same commit.
    pub gms_status: Vec<GmsStatusUpdate>,
    /// A remote change record replacing the stored one, if still at `expected_version`.
    pub change_record: Option<ChangeRecordWrite>,
    /// Changes to regroups and their members.
    pub regroups: Vec<RegroupWrite>,
    /// Users whose clients' subscriptions to a group end (they are no longer members);
    /// applied before the commit's client events are addressed.
    pub ended_subscriptions: Vec<(McServiceGroupId, McServiceId)>,
    /// ACM exchanges stored or replaced.
    pub acm: Vec<AcmWrite>,
    /// Groups added to users' profiles (ACM's closed loop).
    pub profile_additions: Vec<ProfileAddition>,
}

/// Which side of an ACM exchange a system holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmRole {
    /// The primary ACM server: the sender's side.
    Outgoing,
    /// The partner ACM server: the target's side.
    Incoming,
}

impl AcmRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AcmRole::Outgoing => "outgoing",
            AcmRole::Incoming => "incoming",
        }
    }
}

/// An ACM exchange to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmWrite {
    /// The exchange.
    pub exchange: AcmExchange,
    /// Which side.
    pub role: AcmRole,
    /// The user it is for: the sender (outgoing) or the target (incoming).
    pub owner: McServiceId,
    /// Whether it is pending data for the owner (to download at log-on).
    pub pending: bool,
    /// A guarded write: replaces the stored exchange only while it is in this state;
    /// otherwise nothing of the commit is kept and it reports a conflict.
    pub only_if: Option<mcx_model::api::AcmState>,
}

/// A group added to a user's profile beyond the configured ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileAddition {
    /// The user.
    pub user: McServiceId,
    /// The MC service.
    pub mc_service: McService,
    /// The group.
    pub group: McServiceGroupId,
}

/// A change to the MC service server's regroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegroupWrite {
    /// Stores (or replaces) a regroup; its `members` are not stored from here.
    Put(Box<RegroupRecord>),
    /// Forgets a regroup, its members and its claims.
    Delete(McServiceGroupId),
    /// The regroup takes `groups` (constituents homed here, and its own regroup group ID):
    /// a guarded write. If another regroup holds any of them, nothing of the commit is
    /// kept and it reports a conflict (step 4a, atomic with the check).
    Claim {
        /// The regroup group.
        regroup: McServiceGroupId,
        /// The groups it takes.
        groups: Vec<McServiceGroupId>,
    },
    /// A client is affiliated to the regroup group.
    Join {
        /// The regroup group.
        regroup: McServiceGroupId,
        /// The member.
        user: McServiceId,
        /// The client.
        client: ClientId,
    },
    /// A client is no longer affiliated to the regroup group.
    Leave {
        /// The regroup group.
        regroup: McServiceGroupId,
        /// The member.
        user: McServiceId,
        /// The client.
        client: ClientId,
    },
    /// A client acknowledged the regroup (step 9).
    Acknowledge {
        /// The regroup group.
        regroup: McServiceGroupId,
        /// The member.
        user: McServiceId,
        /// The client.
        client: ClientId,
    },
}

/// A change to the MC service server's affiliation records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AffiliationWrite {
    /// The serving server records a client's affiliation (pending while the group's
    /// partner host has not confirmed it).
    Served {
        /// The user.
        user: McServiceId,
        /// The client's affiliation.
        row: ClientAffiliation,
    },
    /// A pending affiliation was confirmed by the group's host.
    ServedConfirmed {
        /// The user.
        user: McServiceId,
        /// The MC service.
        mc_service: McService,
        /// The group.
        group: McServiceGroupId,
        /// The client.
        client: ClientId,
    },
    /// The serving server forgets a client's affiliation.
    ServedRemoved {
        /// The user.
        user: McServiceId,
        /// The MC service.
        mc_service: McService,
        /// The group.
        group: McServiceGroupId,
        /// The client.
        client: ClientId,
    },
    /// The group's host records a user's affiliation to one of its groups.
    Hosted {
        /// The user (served here or by a partner).
        user: McServiceId,
        /// The MC service.
        mc_service: McService,
        /// The group, defined here.
        group: McServiceGroupId,
    },
    /// The host records the serving system's generation of the last request it applied
    /// for a user and group (only ever raised).
    HostedGeneration {
        /// The user.
        user: McServiceId,
        /// The MC service.
        mc_service: McService,
        /// The group, defined here.
        group: McServiceGroupId,
        /// The generation.
        generation: u64,
    },
    /// The group's host forgets a user's affiliation.
    HostedRemoved {
        /// The user.
        user: McServiceId,
        /// The MC service.
        mc_service: McService,
        /// The group.
        group: McServiceGroupId,
    },
}

/// One client's affiliation to a group, as the user's serving server records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAffiliation {
    /// The MC service.
    pub mc_service: McService,
    /// The group.
    pub group: McServiceGroupId,
    /// The client.
    pub client: ClientId,
    /// While the group's partner host has not answered: the user's affiliation
    /// generation of the request asking it (its answer settles only this reservation).
    pub pending: Option<u64>,
}

/// A user's affiliations at the serving server, with the generation that guards changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAffiliationState {
    /// Grows with every committed change of the user's affiliations.
    pub generation: u64,
    /// Every client affiliation of the user.
    pub rows: Vec<ClientAffiliation>,
}

/// The GMS learning a user's affiliation status for its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GmsStatusUpdate {
    /// The user.
    pub user: McServiceId,
    /// The MC service.
    pub mc_service: McService,
    /// Each group's status.
    pub statuses: Vec<(McServiceGroupId, AffiliationStatus)>,
}

/// A remote change record to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecordWrite {
    /// The record.
    pub record: AffiliationChangeRecord,
    /// The stored version it replaces (`None` for a new record).
    pub expected_version: Option<u64>,
    /// The session to tell when it completes (stored with a new record).
    pub requester_session: Option<String>,
}

/// A stored remote change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    /// The record.
    pub record: AffiliationChangeRecord,
    /// Its version.
    pub version: u64,
    /// The requester's session.
    pub requester_session: String,
}

/// A change to a partner system's link to the primary of a group it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryLinkUpdate {
    /// The group.
    pub group: McServiceGroupId,
    /// The new state; `None` forgets the link (the group was withdrawn).
    pub state: Option<PrimaryLinkState>,
    /// The primary's reason, with a failure.
    pub detail: Option<String>,
}

impl PrimaryLinkUpdate {
    /// The link is now in `state`.
    pub fn to(group: &McServiceGroupId, state: PrimaryLinkState, detail: Option<String>) -> Self {
        Self {
            group: group.clone(),
            state: Some(state),
            detail,
        }
    }

    /// The link is forgotten.
    pub fn forget(group: &McServiceGroupId) -> Self {
        Self {
            group: group.clone(),
            state: None,
            detail: None,
        }
    }
}

impl Effects {
    /// No effects.
    pub fn none() -> Self {
        Self::default()
    }

    /// One client event.
    pub fn event(audience: Audience, event: ClientEvent) -> Self {
        Self {
            client_events: vec![(audience, event)],
            ..Self::default()
        }
    }

    /// Adds a request to partners.
    pub fn send(&mut self, audience: PartnerAudience, request: PartnerRequest) {
        self.send_after(audience, request, std::time::Duration::ZERO);
    }

    /// Adds a request to partners, not to be sent before `delay` has passed.
    pub fn send_after(
        &mut self,
        audience: PartnerAudience,
        request: PartnerRequest,
        delay: std::time::Duration,
    ) {
        self.outbox.push(OutboxEntry {
            audience,
            transaction_id: TransactionId::new(),
            request,
            delay,
        });
    }
}

/// What a committed write did to event streams: the sessions that got new events, whose
/// streams must be woken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Sessions with new events.
    pub woken_sessions: Vec<String>,
    /// A guarded write (a remote change record at an expected version, a regroup claim)
    /// found the record changed or taken: nothing was committed.
    pub conflict: bool,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written and committed.
    Done(Committed),
    /// The stored version differs from the expected one.
    VersionMismatch {
        /// The stored version.
        current: u64,
    },
    /// Nothing is stored under that key.
    NotFound,
    /// Something is stored under that key already.
    AlreadyExists,
}

/// Users of this system.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates or replaces a user.
    async fn put_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// A user by MC service ID.
    async fn user(&self, id: &McServiceId) -> StoreResult<Option<UserRecord>>;
}

/// Sessions of logged-on clients.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session. Any session of the same user and client ends with it, and is
    /// returned (its subscriptions and events go with it).
    async fn start_session(&self, session: &SessionRecord) -> StoreResult<Option<SessionRecord>>;
    /// The session whose token has this hash with its user (`None` if the user is gone):
    /// what every authenticated request needs, read at once.
    async fn session_and_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRecord, Option<UserRecord>)>>;
    /// Ends a session with its subscriptions and undelivered events. False if it was gone.
    async fn end_session(&self, session_id: &str) -> StoreResult<bool>;
    /// Sessions whose end time has passed.
    async fn expired_sessions(&self, now: OffsetDateTime) -> StoreResult<Vec<SessionRecord>>;
    /// Whether the session exists.
    async fn session_exists(&self, session_id: &str) -> StoreResult<bool>;
    /// The live sessions of a user (one per client).
    async fn sessions_of(&self, user: &McServiceId) -> StoreResult<Vec<SessionRecord>>;
}

/// Each session's stream of client events.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Commits effects that go with no other change, returning the sessions that got events.
    async fn commit(&self, effects: &Effects) -> StoreResult<Committed>;
    /// Forgets the session's events up to and including the given ID (the client has them).
    async fn discard_events_through(&self, session_id: &str, through: i64) -> StoreResult<()>;
    /// For each `(session, after)` of `wanted`, in order: up to `limit` of the session's
    /// events after that ID, oldest first, and whether the session still exists. One read
    /// for many streams: a change notified to thousands of subscribers is fetched in a
    /// few queries instead of one per stream.
    async fn events_of_sessions(
        &self,
        wanted: &[(String, i64)],
        limit: u32,
    ) -> StoreResult<Vec<SessionEvents>>;
}

/// One session's share of [`EventStore::events_of_sessions`].
#[derive(Debug, Clone, Default)]
pub struct SessionEvents {
    /// The events, oldest first.
    pub events: Vec<DeliveredEvent>,
    /// Whether the session exists (false: it ended; its stream should end).
    pub exists: bool,
}

/// Group documents and clients' subscriptions to them.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// A group by ID.
    async fn group(&self, id: &McServiceGroupId) -> StoreResult<Option<GroupRecord>>;
    /// Every stored group, ordered by ID.
    async fn groups(&self) -> StoreResult<Vec<GroupRecord>>;
    /// Stores a new group: `AlreadyExists` if its ID is taken.
    async fn insert_group(
        &self,
        group: &GroupRecord,
        effects: &Effects,
    ) -> StoreResult<WriteOutcome>;
    /// Replaces a group if its stored version is `expected_version`.
    async fn replace_group(
        &self,
        group: &GroupRecord,
        expected_version: u64,
        effects: &Effects,
    ) -> StoreResult<WriteOutcome>;
    /// Deletes a group (with its client subscriptions) if its stored version is
    /// `expected_version`, or whatever it is when `None`.
    async fn delete_group(
        &self,
        id: &McServiceGroupId,
        expected_version: Option<u64>,
        effects: &Effects,
    ) -> StoreResult<WriteOutcome>;
    /// Subscribes a session to a group's configuration (idempotent).
    async fn subscribe(&self, session_id: &str, group: &McServiceGroupId) -> StoreResult<()>;
    /// Ends a subscription. False if there was none.
    async fn unsubscribe(&self, session_id: &str, group: &McServiceGroupId) -> StoreResult<bool>;
}

/// An outbox entry as stored: one request to one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The entry's ID; entries to one partner are sent in ID order.
    pub id: i64,
    /// The receiving partner.
    pub partner: SystemDomain,
    /// The exchange's ID.
    pub transaction_id: TransactionId,
    /// The flow.
    pub request: PartnerRequest,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// How storing a partner's copy of a group went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Stored (first copy, or a newer primary version).
    Stored(Committed),
    /// The stored copy derives from this very primary version: nothing to do.
    Duplicate,
    /// The stored copy derives from a newer primary version: ignored.
    Stale {
        /// The primary version of the stored copy.
        stored: u64,
    },
    /// The stored copy changed since it was read (its local version is not the one before
    /// the new record's): read again and retry.
    Conflict,
}

/// Interconnection state: the outbox, the primary's records of partners, the partner's
/// links to primaries, partner copies of groups, and answers already given to partners.
#[async_trait]
pub trait InterconnectionStore: Send + Sync {
    /// The first unsent message of each partner that is due, oldest partner first.
    async fn outbox_heads(&self, now: OffsetDateTime) -> StoreResult<Vec<OutboxMessage>>;
    /// When the next unsent message falls due, if any.
    async fn outbox_next_due(&self) -> StoreResult<Option<OffsetDateTime>>;
    /// Records a failed attempt and when to try again.
    async fn reschedule_outbox(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()>;
    /// The primary's records of the group's partners.
    async fn partner_records(&self, group: &McServiceGroupId) -> StoreResult<Vec<PartnerDelivery>>;
    /// Whether the primary has shared the group with the partner by administrator action.
    async fn shared_with(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
    ) -> StoreResult<bool>;
    /// Records an administrator's share (idempotent), with its effects.
    async fn record_share(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
        effects: &Effects,
    ) -> StoreResult<Committed>;
    /// Subscribes a partner to a group if the group is still at `version`, committing the
    /// effects with it. False if the group changed (or is gone) meanwhile.
    async fn subscribe_partner(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
        version: u64,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// The partner's link to the group's primary.
    async fn primary_link(&self, group: &McServiceGroupId) -> StoreResult<Option<PrimaryLink>>;
    /// Stores a partner copy of a group received from its primary (its `version` must be
    /// one more than the stored copy's, or 1 when there is none), unless the stored copy
    /// is as new or newer; the effects commit only with a stored copy.
    async fn store_partner_copy(
        &self,
        group: &GroupRecord,
        effects: &Effects,
    ) -> StoreResult<CopyOutcome>;
    /// Removes a partner copy whose primary version is at most `version`; the effects
    /// commit only if it was removed.
    async fn remove_partner_copy(
        &self,
        group: &McServiceGroupId,
        version: u64,
        effects: &Effects,
    ) -> StoreResult<Option<Committed>>;
    /// The answer already given to a partner's transaction, if any.
    async fn inbound_answer(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
    ) -> StoreResult<Option<PartnerResponse>>;
    /// Claims a partner's transaction for handling: the first of any number of
    /// simultaneous copies (on any node) gets `Claimed`; the others see it in progress or,
    /// once handled, its answer. A claim left by a crash is taken over after a lease.
    async fn claim_inbound(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
    ) -> StoreResult<InboundClaim>;
    /// Gives up a claim whose handling failed (nothing was answered): a retransmission is
    /// handled afresh.
    async fn release_inbound(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
    ) -> StoreResult<()>;
    /// Remembers the answer given to a partner's transaction (completing its claim).
    async fn record_inbound_answer(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
        answer: &PartnerResponse,
    ) -> StoreResult<()>;
}

/// Where a partner's transaction stands at the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundClaim {
    /// This caller handles it.
    Claimed,
    /// Another copy is being handled now.
    InProgress,
    /// It was handled: the answer given.
    Answered(PartnerResponse),
}

/// Affiliation records of the MC service server (serving and hosting sides), the GMS's
/// view of affiliations to its groups, and remote change records.
#[async_trait]
pub trait AffiliationStore: Send + Sync {
    /// A served user's affiliations and their generation.
    async fn user_affiliations(&self, user: &McServiceId) -> StoreResult<UserAffiliationState>;
    /// Commits effects touching a served user's affiliations, if the user's generation is
    /// still `expected` (any, with `None`); bumps the generation. `None` if it moved on.
    async fn commit_for_user(
        &self,
        user: &McServiceId,
        expected: Option<u64>,
        effects: &Effects,
    ) -> StoreResult<Option<Committed>>;
    /// Served users' client affiliations to a group (the serving server's view).
    async fn served_affiliations_to(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<(McServiceId, ClientAffiliation)>>;
    /// Client affiliations that no live session holds, and pending ones: leftovers of a
    /// crash, to be cleaned at start.
    async fn stale_affiliations(&self) -> StoreResult<Vec<(McServiceId, ClientAffiliation)>>;
    /// The generation of the last request applied for a partner user and group here.
    async fn hosted_generation(
        &self,
        user: &McServiceId,
        service: McService,
        group: &McServiceGroupId,
    ) -> StoreResult<Option<u64>>;
    /// The users affiliated to a group defined here (the hosting server's view).
    async fn hosted_affiliations(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<(McServiceId, McService)>>;
    /// The GMS's view of a group's affiliated members.
    async fn gms_affiliations(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<AffiliatedMember>>;
    /// A remote change.
    async fn change(&self, change_id: &str) -> StoreResult<Option<StoredChange>>;
    /// Pending remote changes whose deadline has passed, and the next deadline.
    async fn due_changes(
        &self,
        now: OffsetDateTime,
    ) -> StoreResult<(Vec<String>, Option<OffsetDateTime>)>;
}

/// Regroups an MC service server takes part in, with the clients it affiliated.
#[async_trait]
pub trait RegroupStore: Send + Sync {
    /// One regroup, with its members.
    async fn regroup(&self, regroup: &McServiceGroupId) -> StoreResult<Option<RegroupRecord>>;
    /// Every regroup, with its members.
    async fn regroups(&self) -> StoreResult<Vec<RegroupRecord>>;
    /// The regroup that holds a group (a constituent homed here, or its regroup group).
    async fn regroup_holding(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Option<McServiceGroupId>>;
}

/// ACM exchanges.
#[async_trait]
pub trait AcmStore: Send + Sync {
    /// One exchange.
    async fn acm_exchange(
        &self,
        role: AcmRole,
        request_id: uuid::Uuid,
    ) -> StoreResult<Option<AcmExchange>>;
    /// A user's exchanges on one side, newest first.
    async fn acm_exchanges(
        &self,
        role: AcmRole,
        owner: &McServiceId,
    ) -> StoreResult<Vec<AcmExchange>>;
    /// The exchanges pending for a user, with their side.
    async fn acm_pending(&self, owner: &McServiceId) -> StoreResult<Vec<(AcmRole, AcmExchange)>>;
}

/// Everything the entities store. Implemented once per storage engine.
pub trait Store:
    UserStore
    + SessionStore
    + EventStore
    + GroupStore
    + InterconnectionStore
    + AffiliationStore
    + RegroupStore
    + AcmStore
{
}

impl<T> Store for T where
    T: UserStore
        + SessionStore
        + EventStore
        + GroupStore
        + InterconnectionStore
        + AffiliationStore
        + RegroupStore
        + AcmStore
{
}
/// Why a request to a partner did not get an answer from the partner's procedures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The partner could not be reached (or timed out, or failed): try again later.
    #[error("partner system '{partner}' is unreachable: {message}")]
    Unreachable {
        /// The partner.
        partner: SystemDomain,
        /// Why.
        message: String,
    },
    /// The partner refused the request before its procedures ran (not authorised, not a
    /// partner, malformed): sending it again would not help.
    #[error("partner system '{partner}' refused the request: {message}")]
    Refused {
        /// The partner.
        partner: SystemDomain,
        /// The partner's reason.
        message: String,
    },
}

/// The link to partner systems: sends one request and waits for its answer.
#[async_trait]
pub trait PartnerLink: Send + Sync {
    /// Sends `request` to `partner` as exchange `transaction`.
    async fn send(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
        request: &PartnerRequest,
    ) -> Result<PartnerResponse, LinkError>;
}

/// The time source, and the only way the core waits: the server shell gives it the
/// system's clock and timers, the simulation a simulated clock.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
    /// Completes when `duration` of this clock's time has passed.
    fn sleep(&self, duration: std::time::Duration) -> futures_util::future::BoxFuture<'static, ()>;
}
