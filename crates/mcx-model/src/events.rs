//! What the server pushes to a logged-on client on its event stream (`GET /v1/events`).
//! Every notification of every procedure is a variant here, so a client has one place to
//! look. Each event is stored for the client's session before it is sent, and is resent
//! to a client that reconnects with the ID of the last event it saw.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::group::GroupRecord;
use crate::ids::McServiceGroupId;

/// A notification to one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ClientEvent {
    /// A group the client subscribed to changed: its configuration, its key material, or
    /// both. Carries the group as this system's GMS now serves it.
    #[serde(rename_all = "kebab-case")]
    GroupConfigurationChanged {
        /// The group as now stored.
        group: Box<GroupRecord>,
    },
    /// A group the client subscribed to was deleted (or withdrawn by its primary system).
    #[serde(rename_all = "kebab-case")]
    GroupDeleted {
        /// The deleted group.
        mc_service_group_id: McServiceGroupId,
    },
}

impl ClientEvent {
    /// The SSE `event:` name: the kebab-case variant name.
    pub fn name(&self) -> &'static str {
        match self {
            ClientEvent::GroupConfigurationChanged { .. } => "group-configuration-changed",
            ClientEvent::GroupDeleted { .. } => "group-deleted",
        }
    }
}

/// An event as stored and delivered: its position in the session's stream and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DeliveredEvent {
    /// The SSE `id:`; grows within a session. Send it back as `Last-Event-ID`.
    pub id: i64,
    /// The event.
    pub event: ClientEvent,
}
