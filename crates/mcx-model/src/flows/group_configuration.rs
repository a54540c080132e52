//! Group configuration for interconnection: the GMS-to-GMS information flows of
//! TS 23.280 §10.2.7 (seeds 001 and 000). All travel between the group management server
//! in the primary MC system of the group and the one in a partner MC system.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FailureCause, FlowResult};
use crate::group::{GroupConfiguration, GroupKeyMaterial};
use crate::ids::McServiceGroupId;

/// The "MC service group configuration information" element as it crosses between
/// systems: the primary's configuration, the primary's version of it (so a partner can
/// put notifications in order and ignore stale ones) and, optionally, the group key
/// material for the group management clients (TS 23.280 §10.2.7.5 step 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupConfigurationInformation {
    /// The configuration as the primary GMS holds it.
    pub configuration: GroupConfiguration,
    /// The primary GMS's version of the group; grows with every change or rekey.
    pub version: u64,
    /// Group related key material, when the primary shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_material: Option<GroupKeyMaterial>,
}

/// Group information provision request (table "Group information provision request"):
/// primary GMS → partner GMS (§10.2.7.2 step 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationProvisionRequest {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
    /// M. "Configuration information for the MC service group".
    pub mc_service_group_configuration_information: GroupConfigurationInformation,
}

/// Group information provision response: partner GMS → primary GMS (§10.2.7.2 step 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationProvisionResponse {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
    /// M. "Indicates success or failure of reception, modification and storage of MC
    /// service group configuration information".
    pub result: FlowResult,
}

/// Group information request: partner GMS → primary GMS (§10.2.7.3 step 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationRequest {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
}

/// The reason a primary GMS gives for not providing a configuration (NOTE 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FailureReason {
    /// Machine-readable cause.
    pub cause: FailureCause,
    /// A sentence a human understands.
    pub reason: String,
}

/// What a group information response carries: exactly one of configuration (NOTE 1) or
/// failure reason (NOTE 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInformationOutcome {
    /// NOTE 1: "Shall be present if the request can be fulfilled".
    Provided(Box<GroupConfigurationInformation>),
    /// NOTE 2: "Shall be present if the request cannot be fulfilled".
    NotProvided(FailureReason),
}

/// Group information response: primary GMS → partner GMS (§10.2.7.3 step 3).
/// Carries configuration XOR result; deserialising both or neither fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "GroupInformationResponseOnWire",
    into = "GroupInformationResponseOnWire"
)]
pub struct GroupInformationResponse {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
    /// O (NOTE 1) configuration XOR O (NOTE 2) result.
    pub outcome: GroupInformationOutcome,
}

/// The response as its elements appear on the wire, before the NOTE 1/NOTE 2 check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationResponseOnWire {
    mc_service_group_id: McServiceGroupId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mc_service_group_configuration_information: Option<GroupConfigurationInformation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<FailureOnWire>,
}

/// NOTE 2's result in the shape of every other flow's result (`outcome`, `cause`,
/// `reason`). The first release wrote it without `outcome`; that form is still read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FailureOnWire {
    #[serde(default)]
    outcome: Option<FailureOutcome>,
    cause: FailureCause,
    reason: String,
}

/// The only outcome a group information response's result may name: NOTE 2 carries a
/// result only when the request cannot be fulfilled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FailureOutcome {
    Failure,
}

/// The NOTE 1 / NOTE 2 rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupInformationResponseError {
    /// Both elements were present.
    #[error(
        "a group information response carries either the configuration (NOTE 1) or a result (NOTE 2), not both"
    )]
    Both,
    /// Neither element was present.
    #[error(
        "a group information response must carry the configuration (NOTE 1) or a result giving the reason for failure (NOTE 2)"
    )]
    Neither,
}

impl TryFrom<GroupInformationResponseOnWire> for GroupInformationResponse {
    type Error = GroupInformationResponseError;
    fn try_from(wire: GroupInformationResponseOnWire) -> Result<Self, Self::Error> {
        let outcome = match (wire.mc_service_group_configuration_information, wire.result) {
            (Some(info), None) => GroupInformationOutcome::Provided(Box::new(info)),
            (None, Some(result)) => GroupInformationOutcome::NotProvided(FailureReason {
                cause: result.cause,
                reason: result.reason,
            }),
            (Some(_), Some(_)) => return Err(GroupInformationResponseError::Both),
            (None, None) => return Err(GroupInformationResponseError::Neither),
        };
        Ok(Self {
            mc_service_group_id: wire.mc_service_group_id,
            outcome,
        })
    }
}

impl From<GroupInformationResponse> for GroupInformationResponseOnWire {
    fn from(response: GroupInformationResponse) -> Self {
        let (info, result) = match response.outcome {
            GroupInformationOutcome::Provided(info) => (Some(*info), None),
            GroupInformationOutcome::NotProvided(reason) => (
                None,
                Some(FailureOnWire {
                    outcome: Some(FailureOutcome::Failure),
                    cause: reason.cause,
                    reason: reason.reason,
                }),
            ),
        };
        Self {
            mc_service_group_id: response.mc_service_group_id,
            mc_service_group_configuration_information: info,
            result,
        }
    }
}

/// Group information subscribe request: partner GMS → primary GMS (§10.2.7.4 step 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationSubscribeRequest {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
}

/// Group information subscribe response: primary GMS → partner GMS (§10.2.7.4 step 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationSubscribeResponse {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
    /// M. "Indicates success or failure of the subscribe request".
    pub result: FlowResult,
}

/// Group information notify request: primary GMS → partner GMS (§10.2.7.5 step 1), after
/// the configuration changed or new key material was generated (or both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationNotifyRequest {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
    /// M. "Configuration information for the MC service group"; optionally with the key
    /// material.
    pub mc_service_group_configuration_information: GroupConfigurationInformation,
}

/// Group information notify response: partner GMS → primary GMS (§10.2.7.5 step 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationNotifyResponse {
    /// M. "MC service group ID of the group".
    pub mc_service_group_id: McServiceGroupId,
    /// M. "Indicates success or failure of the notification request".
    pub result: FlowResult,
}

/// Group information withdraw request (mcx extension; the seeds are silent): primary GMS
/// → partner GMS when the group is deleted at its primary, so partners stop serving it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationWithdrawRequest {
    /// The deleted group.
    pub mc_service_group_id: McServiceGroupId,
    /// The primary's last version of the group.
    pub version: u64,
}

/// Group information withdraw response (mcx extension): partner GMS → primary GMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupInformationWithdrawResponse {
    /// The deleted group.
    pub mc_service_group_id: McServiceGroupId,
    /// Whether the partner removed its copy.
    pub result: FlowResult,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info() -> serde_json::Value {
        json!({"configuration": {"display-name": "Ops", "supported-services": ["mcptt"]}, "version": 3})
    }

    #[test]
    fn group_information_response_is_configuration_xor_result() {
        let provided: GroupInformationResponse = serde_json::from_value(json!({
            "mc-service-group-id": "sip:ops@police.example",
            "mc-service-group-configuration-information": info(),
        }))
        .unwrap();
        assert!(matches!(
            provided.outcome,
            GroupInformationOutcome::Provided(_)
        ));

        let refused: GroupInformationResponse = serde_json::from_value(json!({
            "mc-service-group-id": "sip:ops@police.example",
            "result": {"cause": "unknown-group", "reason": "no such group"},
        }))
        .unwrap();
        assert!(matches!(
            refused.outcome,
            GroupInformationOutcome::NotProvided(_)
        ));
        // The result is written as every flow's result is, `outcome` first; the first
        // release's form above (without it) is still read, and means the same.
        let written = serde_json::to_value(&refused).unwrap();
        assert_eq!(
            written["result"],
            json!({"outcome": "failure", "cause": "unknown-group", "reason": "no such group"})
        );
        assert_eq!(
            serde_json::from_value::<GroupInformationResponse>(written).unwrap(),
            refused
        );
        let success = serde_json::from_value::<GroupInformationResponse>(json!({
            "mc-service-group-id": "sip:ops@police.example",
            "result": {"outcome": "success", "cause": "unknown-group", "reason": "?"},
        }));
        assert!(success.is_err(), "a result here only ever gives a failure");

        let both = serde_json::from_value::<GroupInformationResponse>(json!({
            "mc-service-group-id": "sip:ops@police.example",
            "mc-service-group-configuration-information": info(),
            "result": {"cause": "unknown-group", "reason": "no such group"},
        }));
        assert!(both.unwrap_err().to_string().contains("not both"));
        let neither = serde_json::from_value::<GroupInformationResponse>(json!({
            "mc-service-group-id": "sip:ops@police.example",
        }));
        assert!(neither.unwrap_err().to_string().contains("must carry"));
    }

    #[test]
    fn round_trips_keep_every_element() {
        let response = GroupInformationResponse {
            mc_service_group_id: "sip:ops@police.example".parse().unwrap(),
            outcome: GroupInformationOutcome::NotProvided(FailureReason {
                cause: FailureCause::Other("from-the-future".into()),
                reason: "newer peer".into(),
            }),
        };
        let text = serde_json::to_string(&response).unwrap();
        assert!(text.contains("from-the-future"));
        let back: GroupInformationResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(back, response);
    }

    #[test]
    fn mandatory_elements_are_required() {
        let missing = serde_json::from_value::<GroupInformationProvisionRequest>(json!({
            "mc-service-group-id": "sip:ops@police.example",
        }));
        assert!(missing.unwrap_err().to_string().contains("missing field"));
        let result = serde_json::from_value::<GroupInformationNotifyResponse>(json!({
            "mc-service-group-id": "sip:ops@police.example",
            "result": {"outcome": "failure", "cause": "stale-version", "reason": "older"},
        }))
        .unwrap();
        assert_eq!(
            result.result,
            FlowResult::failure(FailureCause::StaleVersion, "older")
        );
    }
}
