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
}
