//! What the server pushes to a logged-on client on its event stream (`GET /v1/events`).
//! Every notification of every procedure is a variant here, so a client has one place to
//! look. Each event is stored for the client's session before it is sent, and is resent
//! to a client that reconnects with the ID of the last event it saw.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::flows::acm::{AcmProvisionStoredIndication, PendingAcmDataNotification};
use crate::flows::affiliation::{GroupAffiliationChangeRequest, GroupAffiliationChangeResponse};
use crate::flows::regroup::{
    ClientPreconfiguredRegroupRequest, PreconfiguredRegroupCancelRequest,
    PreconfiguredRegroupRequestReturn, PreconfiguredRegroupResponse,
};
use crate::group::GroupRecord;
use crate::ids::{McServiceGroupId, McServiceId};

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
        /// The group document's new entity tag, the same for the JSON API and XCAP
        /// (RFC 4825; the xcap-diff of the change names it as `new-etag`). Empty in
        /// events stored by an earlier release.
        #[serde(default)]
        etag: String,
    },
    /// A group the client subscribed to was deleted (or withdrawn by its primary system).
    #[serde(rename_all = "kebab-case")]
    GroupDeleted {
        /// The deleted group.
        mc_service_group_id: McServiceGroupId,
    },
    /// The primary system changed a partner group this system uses, and this system's
    /// local policy refused the new version: the copy served here stays at an older
    /// version than the primary's (§10.2.7.1). Told to the group's members here.
    #[serde(rename_all = "kebab-case")]
    GroupCopyBehind {
        /// The group.
        mc_service_group_id: McServiceGroupId,
        /// The primary's version that was refused.
        primary_version: u64,
        /// Why local policy refused it.
        reason: String,
    },
    /// An authorised user changes this user's affiliations (§10.8.5): in mandatory mode
    /// the change is made (step 7a); in negotiated mode the user is asked (step 3).
    /// Answer with `POST /v1/affiliation-changes/{change-id}/response`.
    #[serde(rename_all = "kebab-case")]
    AffiliationChangeRequested {
        /// The change, to answer.
        change_id: String,
        /// The MC service group affiliation change request.
        request: GroupAffiliationChangeRequest,
    },
    /// An affiliation to a partner group that was `affiliating` when the request was
    /// answered reached its final state: the group's host confirmed it, or refused it
    /// (§10.8.3.2 step 8, when the host's answer came after the request's wait).
    #[serde(rename_all = "kebab-case")]
    AffiliationStatusChanged {
        /// The MC service.
        mc_service: crate::McService,
        /// The group's status (`affiliated`, or `not-affiliated` with the cause).
        status: crate::flows::affiliation::GroupAffiliationStatus,
    },
    /// A remote change this client asked for is complete (§10.8.5 final step).
    #[serde(rename_all = "kebab-case")]
    AffiliationChangeCompleted {
        /// The change.
        change_id: String,
        /// The MC service group affiliation change response.
        response: GroupAffiliationChangeResponse,
    },
    /// Preconfigured regroup request return (§10.15.3.3.1 step 4b) to the initiator: the
    /// regroup is authorised, with its regroup group ID; the partners are asked next.
    RegroupRequestReturn(PreconfiguredRegroupRequestReturn),
    /// Preconfigured regroup response (§10.15.3.3.1 step 12) to the initiator's clients,
    /// when the partners' answers came after the request's wait: the regroup is in effect,
    /// or was abandoned and nothing of it is left.
    #[serde(rename_all = "kebab-case")]
    RegroupCompleted {
        /// The combined result.
        response: PreconfiguredRegroupResponse,
    },
    /// This client's user is regrouped (§10.15.3.3.1 step 7): the client is affiliated to
    /// the regroup group. Acknowledge with `POST /v1/regroups/{regroup-group-id}/response`.
    #[serde(rename_all = "kebab-case")]
    RegroupRequested {
        /// The preconfigured regroup request to the member.
        request: ClientPreconfiguredRegroupRequest,
    },
    /// A regroup this client took part in ended: cancelled, or the client left every
    /// regrouped group. The client is no longer affiliated to the regroup group.
    #[serde(rename_all = "kebab-case")]
    RegroupCancelled {
        /// The preconfigured regroup cancel request to the member.
        request: PreconfiguredRegroupCancelRequest,
    },
    /// Pending ACM data notification (TR 23.700-38 steps 7a and 13a): requests or
    /// responses wait for this user; download them with `GET /v1/acm/pending`.
    AcmPendingData(PendingAcmDataNotification),
    /// The partner's ACM server stored this user's provision request (step 4b), or
    /// refused it.
    AcmProvisionStored(AcmProvisionStoredIndication),
    /// A target client confirmed a mandatory change this client made (step 7b).
    #[serde(rename_all = "kebab-case")]
    AffiliationChangeAcknowledged {
        /// The change.
        change_id: String,
        /// The target user who confirmed.
        mc_service_id: McServiceId,
    },
}

impl ClientEvent {
    /// The SSE `event:` name: the kebab-case variant name.
    pub fn name(&self) -> &'static str {
        match self {
            ClientEvent::GroupConfigurationChanged { .. } => "group-configuration-changed",
            ClientEvent::GroupDeleted { .. } => "group-deleted",
            ClientEvent::GroupCopyBehind { .. } => "group-copy-behind",
            ClientEvent::AffiliationStatusChanged { .. } => "affiliation-status-changed",
            ClientEvent::AffiliationChangeRequested { .. } => "affiliation-change-requested",
            ClientEvent::AffiliationChangeCompleted { .. } => "affiliation-change-completed",
            ClientEvent::AffiliationChangeAcknowledged { .. } => "affiliation-change-acknowledged",
            ClientEvent::RegroupRequestReturn(_) => "regroup-request-return",
            ClientEvent::RegroupCompleted { .. } => "regroup-completed",
            ClientEvent::RegroupRequested { .. } => "regroup-requested",
            ClientEvent::RegroupCancelled { .. } => "regroup-cancelled",
            ClientEvent::AcmPendingData(_) => "acm-pending-data",
            ClientEvent::AcmProvisionStored(_) => "acm-provision-stored",
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
