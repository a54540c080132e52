//! Request and response bodies of the client HTTP API (`/v1`) that are not information
//! flows themselves, and the RFC 9457 problem document every error is answered with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::group::{GroupConfiguration, GroupRecord};
use crate::ids::{ClientId, McServiceGroupId, McServiceId, SystemDomain};
use crate::profile::UserProfile;

/// `POST /v1/session`: log on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogOnRequest {
    /// The user's MC service ID.
    pub mc_service_id: McServiceId,
    /// The user's password.
    pub password: String,
    /// The MC service client logging on; the session and its token are bound to it. A
    /// second log-on from the same client replaces the first session.
    pub client_id: ClientId,
}

/// A logged-on client's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SessionInfo {
    /// The session.
    pub session_id: String,
    /// The logged-on user.
    pub mc_service_id: McServiceId,
    /// The client the session is bound to.
    pub client_id: ClientId,
    /// The MC system serving the user.
    pub system: SystemDomain,
    /// When the user logged on.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub logged_on_at: OffsetDateTime,
    /// When the session ends unless the user logs on again.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The user's profile.
    pub profile: UserProfile,
}

/// `POST /v1/session` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct LogOnResponse {
    /// The bearer token for `Authorization: Bearer ...`. Shown once; the server keeps
    /// only its hash.
    pub token: String,
    /// The new session.
    pub session: SessionInfo,
}

/// `POST /v1/groups`: define a group in this system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// The new group's ID; its domain must be this system's.
    pub mc_service_group_id: McServiceGroupId,
    /// The configuration.
    pub configuration: GroupConfiguration,
}

/// `GET /v1/groups` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct GroupList {
    /// The groups the caller may see, ordered by ID.
    pub groups: Vec<GroupRecord>,
}

/// `PUT /v1/groups/{id}/subscription` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SubscriptionInfo {
    /// The subscribed group.
    pub mc_service_group_id: McServiceGroupId,
    /// The group as stored when the subscription was made; changes follow on the event stream.
    pub group: GroupRecord,
}

/// `GET /v1/system` response: which system this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SystemInfo {
    /// The system's domain.
    pub domain: SystemDomain,
    /// The system's name.
    pub name: String,
    /// The mcx version.
    pub version: String,
}

/// `GET /v1/system/resources`: what the server process uses, for operators and `mcx bench`.
/// A figure the platform does not report is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SystemResources {
    /// Resident set size now, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_memory_bytes: Option<u64>,
    /// The largest resident set size since the process started, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_resident_memory_bytes: Option<u64>,
    /// Open file descriptors (connections, database files, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// Each listener's connections and what its limits refused since start.
    #[serde(default)]
    pub listeners: Vec<ListenerStats>,
}

/// Whether flows reach a partner system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerLinkState {
    /// The last attempt to deliver reached the partner, or nothing was due.
    Up,
    /// Flows wait because the latest attempt to deliver failed (see `last-error`).
    Down,
}

/// One partner system as this system's interconnection gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PartnerStatus {
    /// The partner system.
    pub partner: SystemDomain,
    /// Whether flows reach it.
    pub link: PartnerLinkState,
    /// Flows queued for it and not yet answered.
    pub outbox_depth: u64,
    /// When the oldest of them was queued.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub oldest_queued_at: Option<OffsetDateTime>,
    /// Seconds since the oldest undelivered flow was queued (0 when none waits).
    pub oldest_age_seconds: u64,
    /// Why the latest failed attempt failed, while flows wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `GET /v1/system/partners`: every configured partner system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PartnerList {
    /// The partners, ordered by domain.
    pub partners: Vec<PartnerStatus>,
}

/// One listener's connection counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ListenerStats {
    /// `client-api` or `interconnection`.
    pub listener: String,
    /// Connections open now.
    pub open: u64,
    /// Connections closed at once because `max-connections` was reached.
    pub refused_over_limit: u64,
    /// Connections closed for idling or for not sending their headers in time.
    pub timed_out: u64,
    /// Failed accepts (for example, no file descriptor left).
    pub accept_errors: u64,
}

/// An RFC 9457 problem document (`application/problem+json`). Every error of the API is
/// one; `code` is stable and meant for programs, `detail` for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:mcx:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, as a sentence.
    pub detail: String,
    /// The stable machine code, e.g. `group-not-found`.
    pub code: String,
}

impl Problem {
    /// The problem type URI for a code.
    pub fn type_for(code: &str) -> String {
        format!("urn:mcx:problem:{code}")
    }
}

/// `POST /v1/groups/{id}/shares`: provide the group's configuration to a partner system
/// (TS 23.280 §10.2.7.2, triggered by an administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShareRequest {
    /// The partner system's domain.
    pub partner: SystemDomain,
}

/// Where delivery of a group's configuration to one partner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Queued; being delivered (and retried while the partner is unreachable).
    Pending,
    /// The partner received, modified and stored the version named.
    Delivered,
    /// The partner answered that it could not store it (see `detail`).
    Failed,
}

/// The primary's record of one partner of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PartnerDelivery {
    /// The partner system.
    pub partner: SystemDomain,
    /// The delivery state of the last version sent.
    pub state: DeliveryState,
    /// The last version sent (or being sent).
    pub version: u64,
    /// The partner's reason, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Whether the partner GMS is subscribed to the group (§10.2.7.4).
    pub subscribed: bool,
    /// When this record last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Where a partner system's subscription at a group's primary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PrimaryLinkState {
    /// The configuration was requested from the primary (§10.2.7.3); no answer yet.
    Requested,
    /// A subscribe request is on its way (§10.2.7.4).
    Subscribing,
    /// Subscribed: the primary notifies every change.
    Subscribed,
    /// The primary refused the request or the subscription (see `detail`).
    Failed,
    /// Subscribed, but local policy refused the primary's latest version (see `detail`):
    /// the copy served here is older than the primary's.
    Behind,
}

/// A partner system's link to the primary of a group it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PrimaryLink {
    /// The state.
    pub state: PrimaryLinkState,
    /// The primary's reason, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When this record last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// `GET /v1/groups/{id}/interconnection`: how the group is shared between systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct InterconnectionStatus {
    /// The group.
    pub mc_service_group_id: McServiceGroupId,
    /// The group's primary system.
    pub home_system: SystemDomain,
    /// At the primary: each partner the group is shared with.
    pub partners: Vec<PartnerDelivery>,
    /// At a partner: the link to the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<PrimaryLink>,
    /// Certificates this system's interconnection endpoint refused in the TLS handshake
    /// (the latest per peer address), when they name a system this group is shared with or
    /// no partner at all: why that partner's flows do not arrive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_refusals: Vec<CertificateRefusal>,
}

/// A client certificate the interconnection endpoint refused during the TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CertificateRefusal {
    /// The address the connection came from.
    pub peer_address: String,
    /// The DNS names the certificate names (a partner's is its domain).
    pub names: Vec<String>,
    /// The certificate's subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Why it was refused.
    pub reason: String,
    /// When (the latest time this address presented a refused certificate).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// One group a user is affiliated to, with the user's clients that hold the affiliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct UserGroupAffiliation {
    /// The MC service.
    pub mc_service: crate::McService,
    /// The group (defined here or in a partner system).
    pub mc_service_group_id: McServiceGroupId,
    /// The user's clients affiliated to it.
    pub clients: Vec<ClientId>,
    /// `affiliated`, or `affiliating` while the group's partner host has not answered.
    pub status: crate::flows::affiliation::AffiliationStatus,
}

/// `GET /v1/affiliations`, `GET /v1/users/{id}/affiliations`: a user's affiliations, as
/// the user's serving MC service server knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct UserAffiliations {
    /// The user.
    pub mc_service_id: McServiceId,
    /// The groups, ordered by service and group.
    pub affiliations: Vec<UserGroupAffiliation>,
}

/// One affiliated member of a group, as the group management server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct AffiliatedMember {
    /// The member (served here or by a partner system).
    pub mc_service_id: McServiceId,
    /// The MC service.
    pub mc_service: crate::McService,
    /// When the GMS was last told.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// `GET /v1/groups/{id}/affiliations`: the group's affiliated members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct GroupAffiliations {
    /// The group.
    pub mc_service_group_id: McServiceGroupId,
    /// For a group defined here: every affiliated member, of any system, per the GMS. For
    /// a partner group: this system's users affiliated to it.
    pub members: Vec<AffiliatedMember>,
}

/// Where a remote change of affiliation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AffiliationChangeState {
    /// Waiting for the target users' answers (negotiated mode).
    Pending,
    /// Done: the response is final.
    Completed,
}

/// Where one target user of a remote change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TargetState {
    /// Asked; no answer yet (negotiated mode).
    Asked,
    /// Accepted; the change was carried out.
    Accepted,
    /// Rejected by the target user.
    Rejected,
    /// Did not answer in time; the change was not made.
    NoAnswer,
    /// Mandatory mode: the change was made; the target's client has not confirmed yet.
    Applied,
    /// Mandatory mode: the target's client confirmed (step 7b).
    Acknowledged,
    /// Not asked: the target is not authorised, not logged on, or not served here.
    Refused,
}

/// One target of a remote change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TargetProgress {
    /// The target user.
    pub mc_service_id: McServiceId,
    /// Where it stands.
    pub state: TargetState,
    /// The target's reason, when it rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A remote change of affiliation (TS 23.280 §10.8.5), as stored by the MC service server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct AffiliationChangeRecord {
    /// The change.
    pub change_id: String,
    /// Where it stands.
    pub state: AffiliationChangeState,
    /// The request as received.
    pub request: crate::flows::affiliation::GroupAffiliationChangeRequest,
    /// Each target's progress.
    pub targets: Vec<TargetProgress>,
    /// Negotiated mode: when unanswered targets are given up.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: OffsetDateTime,
    /// The response to the requester, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::flows::affiliation::GroupAffiliationChangeResponse>,
}

/// A target client's answer to a remote change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeDecision {
    /// Negotiated mode: carry the change out.
    Accept,
    /// Negotiated mode: do not.
    Reject,
    /// Mandatory mode: the client has taken the change into account (step 7b).
    Acknowledge,
}

/// `POST /v1/affiliation-changes/{id}/response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ChangeAnswer {
    /// The decision.
    pub decision: ChangeDecision,
    /// An optional reason for the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a regroup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RegroupState {
    /// Being formed: partners are being asked.
    Forming,
    /// In effect until cancelled.
    Active,
}

/// A regroup as an MC service server knows it: at the initiator's system with the flows
/// exchanged with the initiator; at a partner with its own part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RegroupRecord {
    /// The regroup group.
    pub regroup_group_id: McServiceGroupId,
    /// The system where the regroup was initiated (the regroup group's primary).
    pub primary_system: SystemDomain,
    /// The initiator.
    pub initiator: McServiceId,
    /// The preconfigured group the regroup group's configuration comes from.
    pub preconfigured_group_id: McServiceGroupId,
    /// The regrouped groups.
    pub mc_service_group_id_list: Vec<McServiceGroupId>,
    /// The MC service.
    pub mc_service: crate::McService,
    /// Where it stands.
    pub state: RegroupState,
    /// The clients this system affiliated to the regroup group, and whether each acknowledged.
    pub members: Vec<RegroupMember>,
    /// At the initiator's system: the preconfigured regroup request return (step 4b).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_return: Option<crate::flows::regroup::PreconfiguredRegroupRequestReturn>,
    /// At the initiator's system: the preconfigured regroup response (step 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::flows::regroup::PreconfiguredRegroupResponse>,
    /// At the initiator's system, while forming: the partners' answers so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<crate::flows::regroup::SystemRegroupResult>,
    /// At the initiator's system, while forming: when the partners that have not answered
    /// are given up on (the regroup is then made without them, or abandoned if one of them
    /// homes a regrouped group).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answers_due: Option<OffsetDateTime>,
}

/// A client affiliated to a regroup group by this system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RegroupMember {
    /// The member.
    pub mc_service_id: McServiceId,
    /// Its client.
    pub client_id: ClientId,
    /// Whether the client acknowledged (step 9).
    pub acknowledged: bool,
}

/// `GET /v1/regroups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RegroupList {
    /// The regroups in effect that this system takes part in.
    pub regroups: Vec<RegroupRecord>,
}

/// Where an ACM exchange stands, at either system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AcmState {
    /// Primary: accepted from the sender; being forwarded to the partner (retried while
    /// the partner is unreachable).
    Forwarding,
    /// Primary: the partner stored it; waiting for the target user.
    Stored,
    /// Primary: the partner refused it (see `detail`).
    Refused,
    /// Partner: waiting for the target user's decision.
    Pending,
    /// Both: the target user answered (see `response`).
    Answered,
}

/// An ACM exchange: an authorised user of the primary system providing interconnection
/// group IDs to an authorised user of a partner system (TR 23.700-38).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct AcmExchange {
    /// The request (with its request ID).
    pub request: crate::flows::acm::AcmGroupInformationProvisionRequest,
    /// The system of the sender (where the groups are defined).
    pub primary_system: SystemDomain,
    /// The system of the target user.
    pub partner_system: SystemDomain,
    /// Where it stands.
    pub state: AcmState,
    /// Why the partner refused, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The target user's response, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::flows::acm::AcmGroupInformationProvisionResponse>,
    /// Partner: the local users whose profiles the groups were applied to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_to: Vec<McServiceId>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// `GET /v1/acm/provisions`, `GET /v1/acm/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct AcmExchangeList {
    /// The exchanges, newest first.
    pub exchanges: Vec<AcmExchange>,
}

/// `POST /v1/acm/provisions`: the ACM client's group information provision request
/// (step 1). The server assigns the request ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcmProvisionOrder {
    /// The selected authorised user of the partner system.
    pub target_mc_service_id: McServiceId,
    /// Interconnection group IDs: groups defined in this system.
    #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
    pub interconnection_group_id_list: crate::NonEmpty<McServiceGroupId>,
}

/// `POST /v1/acm/requests/{id}/apply`: the partner's administrator applies the accepted
/// group IDs to local users' profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcmApplyRequest {
    /// The local users.
    #[schema(value_type = Vec<McServiceId>, min_items = 1)]
    pub users: crate::NonEmpty<McServiceId>,
    /// The MC service whose group list receives the groups.
    pub mc_service: crate::McService,
}

/// Whether the entity sent or received the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TraceDirection {
    /// The entity sent it to the peer.
    Sent,
    /// The entity received it from the peer.
    Received,
}

/// One traced flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TraceEntry {
    /// Position in this server's trace; grows.
    pub seq: u64,
    /// When (UTC, nanoseconds).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// The MC system whose entity this is.
    pub system: String,
    /// The functional entity: "GMS", "MC service server", "ACM server", ...
    pub entity: String,
    /// Sent or received.
    pub direction: TraceDirection,
    /// The other party: "<system> <entity>", or a client "<MC service ID> (<client>)".
    pub peer: String,
    /// The flow's title, e.g. "Group information notify request".
    pub flow: String,
    /// Ties the flows of one exchange together (transaction, change, regroup, request ID).
    pub correlation: String,
    /// Key information elements.
    pub elements: serde_json::Value,
}

/// `GET /v1/trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TraceList {
    /// Entries after the requested position, oldest first.
    pub entries: Vec<TraceEntry>,
}
