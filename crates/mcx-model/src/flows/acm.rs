//! Providing interconnection group IDs to an authorised user of a partner system through
//! the ACM (administrative configuration management) servers, store-and-forward
//! (TR 23.700-38 solution, seed 003; TS 23.280 §10.17 Rel-19 "pending ACM data").
//!
//! The ACM flows share a title with a GMS flow ("group information provision request"),
//! so their Rust names carry an `Acm` prefix.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::FlowResult;
use crate::ids::{McServiceGroupId, McServiceId};
use crate::non_empty::NonEmpty;

/// Identifies one provision exchange end to end, across both systems and every retry.
pub type AcmRequestId = uuid::Uuid;

/// Group information provision request: ACM client → primary ACM server (step 1) and
/// primary ACM server → partner ACM server (step 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcmGroupInformationProvisionRequest {
    /// The exchange, assigned by the primary ACM server (absent from the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub request_id: Option<AcmRequestId>,
    /// The sending authorised user of the primary system.
    pub mc_service_id: McServiceId,
    /// "the ID of the selected authorized user in the partner MC system".
    pub target_mc_service_id: McServiceId,
    /// "a list of interconnection group IDs": groups homed in the primary system.
    #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
    pub interconnection_group_id_list: NonEmpty<McServiceGroupId>,
}

/// Group information provision stored indication: partner ACM server → primary ACM
/// server (step 4b), and primary ACM server → ACM client (that the partner stored it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcmProvisionStoredIndication {
    /// The exchange.
    #[schema(value_type = String, format = Uuid)]
    pub request_id: AcmRequestId,
    /// Whether the partner verified and stored the request, or why not.
    pub result: FlowResult,
}

/// Pending ACM data notification (TS 23.280 §10.17 table, verified): ACM server → ACM
/// client at log-on (steps 7a and 13a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PendingAcmDataNotification {
    /// M. "The identity of the MC service user towards the pending ACM data notification is sent."
    pub mc_service_id: McServiceId,
    /// How many requests and responses are pending.
    pub pending_count: u64,
}

/// Download of pending ACM data request: ACM client → ACM server (steps 7b and 13b).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DownloadPendingAcmDataRequest {
    /// M. "The identity of the MC service user requesting for the download of the pending ACM data."
    pub mc_service_id: McServiceId,
}

/// The user's decision on a provision request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "decision", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AcmDecision {
    /// The target user accepts the interconnection group IDs.
    Accepted,
    /// The target user rejects them.
    Rejected {
        /// Why, in the user's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Group information provision response: partner ACM client → partner ACM server (step 9),
/// partner ACM server → primary ACM server (step 10), and primary ACM server → ACM client
/// (step 14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcmGroupInformationProvisionResponse {
    /// The exchange being answered.
    #[schema(value_type = String, format = Uuid)]
    pub request_id: AcmRequestId,
    /// The responding (selected) user of the partner system.
    pub mc_service_id: McServiceId,
    /// The decision.
    pub decision: AcmDecision,
}

/// One item of pending ACM data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PendingAcmItem {
    /// A provision request waiting for this (target) user's decision.
    #[serde(rename_all = "kebab-case")]
    ProvisionRequest {
        /// The request.
        request: AcmGroupInformationProvisionRequest,
        /// When the partner stored it.
        #[serde(with = "time::serde::rfc3339")]
        #[schema(value_type = String, format = DateTime)]
        received_at: OffsetDateTime,
    },
    /// A response waiting for this (sending) user.
    #[serde(rename_all = "kebab-case")]
    ProvisionResponse {
        /// The response.
        response: AcmGroupInformationProvisionResponse,
        /// The groups the request offered.
        #[schema(value_type = Vec<McServiceGroupId>)]
        interconnection_group_id_list: NonEmpty<McServiceGroupId>,
        /// When the primary stored it.
        #[serde(with = "time::serde::rfc3339")]
        #[schema(value_type = String, format = DateTime)]
        received_at: OffsetDateTime,
    },
}

/// Download of pending ACM data response: ACM server → ACM client (steps 8 and 14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DownloadPendingAcmDataResponse {
    /// M. The user the data is for.
    pub mc_service_id: McServiceId,
    /// M. "Contains all ACM requests which are pending for this user."
    pub acm_data: Vec<PendingAcmItem>,
}
