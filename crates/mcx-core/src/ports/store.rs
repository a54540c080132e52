//! The storage ports: one trait per entity's tables, and the records they read.

use async_trait::async_trait;
use mcx_model::api::{AcmExchange, AffiliatedMember, PartnerDelivery, PrimaryLink, RegroupRecord};
use mcx_model::events::DeliveredEvent;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::group::GroupRecord;
use mcx_model::profile::UserProfile;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, SystemDomain, TransactionId};
use time::OffsetDateTime;

use super::effects::*;

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
    /// The live sessions of the clients this system serves that are affiliated to
    /// `group` (confirmed or pending), in one read.
    async fn sessions_affiliated_to(
        &self,
        group: &McServiceGroupId,
    ) -> StoreResult<Vec<SessionRecord>>;
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

/// The head of one outbox lane, without its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneHead {
    /// The message's ID.
    pub id: i64,
    /// The receiving partner.
    pub partner: SystemDomain,
    /// Its lane.
    pub lane: String,
    /// When it falls due.
    pub due: OffsetDateTime,
}

/// What waits in the outbox for one partner (an operator's view: `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// The partner.
    pub partner: SystemDomain,
    /// Messages not yet answered.
    pub depth: u64,
    /// When the oldest of them was queued.
    pub oldest: OffsetDateTime,
    /// Whether an attempt to deliver one has failed (the partner was not reached).
    pub failing: bool,
    /// Why the latest failed attempt failed, when one has.
    pub last_error: Option<String>,
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
    /// Stored (first copy, or a newer primary version); nothing was kept if the effects
    /// reported a conflict.
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
    /// The head of every lane, due or not, without its request: what the dispatcher reads
    /// to find what no commit of this process announced (after a restart, a retry).
    async fn outbox_lane_heads(&self) -> StoreResult<Vec<LaneHead>>;
    /// One message, if it is still unsent.
    async fn outbox_message(&self, id: i64) -> StoreResult<Option<OutboxMessage>>;
    /// The first unsent message of one partner's lane, and when it falls due.
    async fn outbox_lane_head(
        &self,
        partner: &SystemDomain,
        lane: &str,
    ) -> StoreResult<Option<(OutboxMessage, OffsetDateTime)>>;
    /// Whether other nodes of this system share this store (and so the outbox): then a
    /// message a commit of this node handed over may have been sent by another node
    /// already, and the dispatcher reads each lane's head from the store instead.
    fn shared_by_nodes(&self) -> bool {
        false
    }
    /// Claims, or renews, `holder`'s lease on a partner's lane until `until`: true if
    /// `holder` holds it now. Several nodes of one system share one outbox; a lane is
    /// delivered only by the node holding its lease, so each message is sent by one node
    /// at a time, and a dead node's lease is taken over once it has passed. A store that
    /// serves one node only (embedded SQLite) grants every claim.
    async fn claim_lane(
        &self,
        partner: &SystemDomain,
        lane: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Gives up `holder`'s lease on a lane (another node may deliver it at once).
    async fn release_lane(
        &self,
        partner: &SystemDomain,
        lane: &str,
        holder: &str,
    ) -> StoreResult<()>;
    /// Gives up every lease `holder` holds, on lanes and duties (a node that stops:
    /// whoever delivers next, this node restarted or another, need not wait for them to
    /// pass).
    async fn release_lanes_of(&self, holder: &str) -> StoreResult<()>;
    /// Claims, or renews, `holder`'s lease on a duty of timed work that one node does for
    /// the whole system (deadlines, session expiry) until `until`: true if `holder` holds
    /// it now. A store that serves one node only grants every claim.
    async fn claim_duty(
        &self,
        duty: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// What waits for each partner that has anything waiting.
    async fn outbox_backlog(&self) -> StoreResult<Vec<OutboxBacklog>>;
    /// Confirmed affiliations of the users this system serves, in all.
    async fn affiliations_held(&self) -> StoreResult<u64>;
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
    /// effects with it (nothing is kept if they report a conflict). `None` if the group
    /// changed (or is gone) meanwhile.
    async fn subscribe_partner(
        &self,
        group: &McServiceGroupId,
        partner: &SystemDomain,
        version: u64,
        effects: &Effects,
    ) -> StoreResult<Option<Committed>>;
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
    /// commit only if it was removed (and nothing is kept if they report a conflict).
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
    /// Clients whose session ended while their affiliations may not have ended yet (a
    /// crash, or a failure, between the two), with whether the client has logged on
    /// again since: what a start finishes.
    async fn ending_clients(&self) -> StoreResult<Vec<(McServiceId, ClientId, bool)>>;
    /// A client whose session ended has no affiliation left: a start need not look at
    /// it again.
    async fn client_ended(&self, user: &McServiceId, client: &ClientId) -> StoreResult<()>;
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
    /// Of the answer waits under `keys`, those still open and unanswered at `now` (see
    /// [`crate::ports::AnswerWaitWrite`]).
    async fn open_answer_waits(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>>;
    /// Ends the answer wait under `key` and returns its answer, if the answer is there;
    /// with `give_up`, ends it in any case (a node storing the answer afterwards finds
    /// the wait gone and tells the client by an event instead).
    async fn end_answer_wait(
        &self,
        key: &str,
        give_up: bool,
    ) -> StoreResult<Option<mcx_model::flows::affiliation::GroupAffiliationStatus>>;
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

/// One change of the SIP door's own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipStateChange {
    /// Store (or replace) a row of `kind` under `key`, kept until `expires_at`.
    Put {
        /// What kind of row (`publication`, `subscription`).
        kind: String,
        /// Its key within the kind.
        key: String,
        /// The door's JSON.
        value: String,
        /// When it may be dropped.
        expires_at: OffsetDateTime,
    },
    /// Delete a row.
    Delete {
        /// What kind of row.
        kind: String,
        /// Its key.
        key: String,
    },
}

/// The SIP door's own state (publications, subscription dialogs), so that a restart does
/// not end them. Rows of one `kind` by key; the door keeps them in memory and writes
/// through. Not part of [`Store`]: the core's entities never read it.
#[async_trait]
pub trait SipStateStore: Send + Sync {
    /// Makes the changes in one transaction (on SQLite, in a group commit with the
    /// writes queued meanwhile); answers once they are durable.
    async fn change_sip_state(&self, changes: Vec<SipStateChange>) -> StoreResult<()>;
    /// The rows of `kind` that expire after `now` (and deletes the others).
    async fn sip_state(
        &self,
        kind: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<(String, String)>>;
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
