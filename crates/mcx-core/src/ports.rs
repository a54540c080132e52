//! Ports: what the functional entities need from the outside, as traits. The store crate
//! implements the storage ports with sqlx; unit tests may implement them in memory.
//!
//! Writes that change state and produce notifications take the notifications along
//! ([`Effects`]) so that the store commits both in one transaction: a change is never
//! stored without its notifications, nor notified without being stored.

use async_trait::async_trait;
use mcx_model::events::{ClientEvent, DeliveredEvent};
use mcx_model::group::GroupRecord;
use mcx_model::profile::UserProfile;
use mcx_model::{ClientId, McServiceGroupId, McServiceId};
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
    /// A password kept as configured (development and test systems).
    Password(String),
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
}

/// Notifications committed together with a change.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Events for clients' event streams.
    pub client_events: Vec<(Audience, ClientEvent)>,
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
        }
    }
}

/// What a committed write did to event streams: the sessions that got new events, whose
/// streams must be woken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Sessions with new events.
    pub woken_sessions: Vec<String>,
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
    /// The session whose token has this hash.
    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Ends a session with its subscriptions and undelivered events. False if it was gone.
    async fn end_session(&self, session_id: &str) -> StoreResult<bool>;
    /// Sessions whose end time has passed.
    async fn expired_sessions(&self, now: OffsetDateTime) -> StoreResult<Vec<SessionRecord>>;
    /// Whether the session exists.
    async fn session_exists(&self, session_id: &str) -> StoreResult<bool>;
}

/// Each session's stream of client events.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events, returning the sessions that got any.
    async fn append_events(&self, effects: &Effects) -> StoreResult<Committed>;
    /// Up to `limit` events of the session after the given ID, oldest first.
    async fn events_after(
        &self,
        session_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveredEvent>>;
    /// Forgets the session's events up to and including the given ID (the client has them).
    async fn discard_events_through(&self, session_id: &str, through: i64) -> StoreResult<()>;
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

/// Everything the entities store. Implemented once per storage engine.
pub trait Store: UserStore + SessionStore + EventStore + GroupStore {}

impl<T: UserStore + SessionStore + EventStore + GroupStore> Store for T {}

/// The time source; tests may control it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
