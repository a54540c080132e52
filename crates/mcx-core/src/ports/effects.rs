//! What a write takes into its commit: the change and its consequences.

use mcx_model::api::{AcmExchange, AffiliationChangeRecord, PrimaryLinkState, RegroupRecord};
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::flows::partner::PartnerRequest;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, SystemDomain};

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

/// A server-to-server request to send, durably, in order per partner and lane, retried
/// until the partner answers. The store gives it its transaction ID when it commits it
/// (receivers deduplicate on sender and transaction ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Who receives it.
    pub audience: PartnerAudience,
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

/// What one commit writes: consequences any entity may commit (client events, partner
/// requests, the answers they complete), then each entity's own tables in its own
/// section. An entity fills only its own section; another contributes to it only
/// through the flow named for it (the MC service server's group affiliation status
/// update to the GMS, the ACM server's sharing of groups and additions to profiles).
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Events for clients' event streams.
    pub client_events: Vec<(Audience, ClientEvent)>,
    /// Requests to partner systems.
    pub outbox: Vec<OutboxEntry>,
    /// An outbox entry whose exchange this change completes (removed in the same commit).
    pub complete_outbox: Option<i64>,
    /// The answer to a partner's transaction whose effects these are: recorded in the
    /// same commit, so a retransmission, however late, gets it and changes nothing. If
    /// another copy of the transaction recorded its answer first, nothing of this commit
    /// is kept and it reports a conflict (unique key on partner and transaction).
    pub inbound_answer: Option<InboundAnswer>,
    /// The group management server's tables.
    pub gms: GmsEffects,
    /// The MC service server's tables.
    pub service: ServiceEffects,
    /// The ACM server's tables.
    pub acm: AcmEffects,
    /// Identity management's tables.
    pub identity: IdentityEffects,
    /// A protocol door's own rows written with this change (the SIP door's publication
    /// with the affiliations it asked for), so that neither is kept without the other.
    /// No entity reads them.
    pub door: Vec<super::SipStateChange>,
}

/// The GMS's part of a commit: its records of partners and primaries, its view of
/// affiliations, its clients' subscriptions.
#[derive(Debug, Clone, Default)]
pub struct GmsEffects {
    /// Changes to the primary's records of partners.
    pub partner_records: Vec<PartnerRecordUpdate>,
    /// A change to the partner's link to the primary of a group.
    pub primary_link: Option<PrimaryLinkUpdate>,
    /// Group affiliation status updates (tables 10.X.2.3-1 and 10.X.2.6-1) the MC service
    /// server sent, applied to the GMS's view in the same commit.
    pub affiliation_status: Vec<GmsStatusUpdate>,
    /// Users whose clients' subscriptions to a group end (they are no longer members);
    /// applied before the commit's client events are addressed.
    pub ended_subscriptions: Vec<(McServiceGroupId, McServiceId)>,
}

impl GmsEffects {
    /// The group affiliation status update flow from the MC service server (§10.8.3.1
    /// step 6, §10.8.3.2 step 7b and their de-affiliation counterparts).
    pub fn status_update(&mut self, update: GmsStatusUpdate) {
        self.affiliation_status.push(update);
    }

    /// Groups shared with a partner by another entity (an accepted ACM provision, a
    /// regroup group): the partner may then request and subscribe to them.
    pub fn share(
        &mut self,
        partner: &SystemDomain,
        groups: impl IntoIterator<Item = McServiceGroupId>,
    ) {
        for group in groups {
            self.partner_records.push(PartnerRecordUpdate::One {
                partner: partner.clone(),
                group,
                change: PartnerRecordChange::Shared,
            });
        }
    }
}

/// The MC service server's part of a commit.
#[derive(Debug, Clone, Default)]
pub struct ServiceEffects {
    /// Changes to the affiliation records (serving and hosting sides).
    pub affiliations: Vec<AffiliationWrite>,
    /// Reservations a host's answer confirms, each only if still held by the request of
    /// its generation; otherwise nothing of the commit is kept and it reports a conflict.
    pub confirmations: Vec<Confirmation>,
    /// A remote change record replacing the stored one, if still at `expected_version`.
    pub change_record: Option<ChangeRecordWrite>,
    /// Changes to regroups and their members.
    pub regroups: Vec<RegroupWrite>,
    /// Requests waiting for partner hosts' answers, recorded in the store when several
    /// nodes share it (see [`AnswerWaitWrite`]).
    pub answer_waits: Vec<AnswerWaitWrite>,
}

/// A request's wait for a partner host's answer to an affiliation request, kept in the
/// store when several nodes share it: the answer arrives at whichever node holds the
/// partner's outbox lane, which need not be the node where the request waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerWaitWrite {
    /// A request waits under `key`; after `until` a node that has not ended it is taken
    /// for gone (its client heard nothing) and the wait is ignored.
    Open {
        /// Which reservation's answer (user, service, group, generation).
        key: String,
        /// Until when the wait counts.
        until: time::OffsetDateTime,
    },
    /// The answer for the request waiting under `key`, only if that wait is still open
    /// and unanswered (the waiting request has not given up); otherwise nothing of the
    /// commit is kept and it reports a conflict. Other nodes are told on commit.
    Answer {
        /// Which wait.
        key: String,
        /// What the host answered for the group.
        answer: mcx_model::flows::affiliation::GroupAffiliationStatus,
    },
}

/// The ACM server's part of a commit.
#[derive(Debug, Clone, Default)]
pub struct AcmEffects {
    /// ACM exchanges stored or replaced.
    pub exchanges: Vec<AcmWrite>,
}

/// Identity management's part of a commit.
#[derive(Debug, Clone, Default)]
pub struct IdentityEffects {
    /// Groups added to users' profiles (the ACM server's closed loop).
    pub profile_additions: Vec<ProfileAddition>,
}

/// A user's pending affiliations to a partner group, made by the request of
/// `generation`, confirmed by the group's host (§10.8.3.2 step 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The user.
    pub user: McServiceId,
    /// The MC service.
    pub mc_service: McService,
    /// The group.
    pub group: McServiceGroupId,
    /// The generation of the request that reserved them.
    pub generation: u64,
}

/// The answer given to a partner's transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundAnswer {
    /// The partner that sent the request.
    pub partner: SystemDomain,
    /// Its transaction.
    pub transaction: mcx_model::TransactionId,
    /// The answer.
    pub answer: mcx_model::flows::partner::PartnerResponse,
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
    /// for a user and group (only ever raised). Guarded: if a newer request was applied
    /// meanwhile, nothing of the commit is kept and it reports a conflict.
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

    /// Client events.
    pub fn event_list(events: Vec<(Audience, ClientEvent)>) -> Self {
        Self {
            client_events: events,
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
    /// The requests to partners this commit queued, as stored: the outbox dispatcher
    /// sends them at once instead of finding them in the store.
    pub queued: Vec<QueuedRequest>,
}

impl Committed {
    /// Nothing was kept: a guarded write found its state moved on.
    pub fn conflicted() -> Self {
        Self {
            conflict: true,
            ..Self::default()
        }
    }
}

/// A request to a partner as a commit stored it in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRequest {
    /// The stored entry.
    pub message: crate::ports::OutboxMessage,
    /// Its ordering lane (see [`mcx_model::flows::partner::PartnerRequest::ordering_lane`]).
    pub lane: String,
    /// How many older entries to the same partner in the same lane were stored when this
    /// one was: it waits for them.
    pub ahead: u64,
    /// Whether it was queued to be sent only after a delay.
    pub delayed: bool,
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
