//! Preconfigured group regroup across MC systems (TS 23.280 §10.15.3.3.1, seed 004) and
//! its cancellation. The client request follows Table 10.15.2.1-1 (Rel-19): the regroup
//! group ID is optional because the server may assign it; the groups to regroup and the
//! users to regroup are "one and only one" (NOTE 1), an enum here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FlowResult, code_enum};
use crate::ids::{McService, McServiceGroupId, McServiceId};
use crate::non_empty::NonEmpty;

/// NOTE 1 of Table 10.15.2.1-1: exactly one of the group list or the user list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RegroupTargets {
    /// O (NOTE 1). "List of MC service groups to be regrouped into the group regroup group".
    #[schema(value_type = Vec<McServiceGroupId>)]
    McServiceGroupIdList(NonEmpty<McServiceGroupId>),
    /// O (NOTE 1). "List of MC service users to be regrouped into the user regroup group".
    #[schema(value_type = Vec<McServiceId>)]
    McServiceUserIdList(NonEmpty<McServiceId>),
}

/// Preconfigured regroup request: MC service client → MC service server (step 2). On the
/// JSON API the list of groups (or users) sits at the top of the request, as in every
/// other request (`PreconfiguredRegroupRequestOnWire`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "PreconfiguredRegroupRequestOnWire",
    into = "PreconfiguredRegroupRequestOnWire"
)]
pub struct PreconfiguredRegroupRequest {
    /// M. "The MC service ID of the requester".
    pub mc_service_id: McServiceId,
    /// O. "MC service group ID of the regroup group"; assigned by the server when absent
    /// or not accepted.
    pub regroup_group_id: Option<McServiceGroupId>,
    /// M. "MC service group ID of the MC service group from which configuration is to be
    /// taken": the preconfigured group.
    pub preconfigured_group_id: McServiceGroupId,
    /// NOTE 1: the groups (or users) to regroup.
    pub targets: RegroupTargets,
    /// The MC service of the regroup.
    pub mc_service: McService,
}

/// The preconfigured regroup request as the JSON API reads and writes it: exactly one of
/// `mc-service-group-id-list` and `mc-service-user-id-list` (NOTE 1). The earlier form,
/// the list nested in `targets`, is still read (deprecated, for one release).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[schema(as = PreconfiguredRegroupRequest)]
pub struct PreconfiguredRegroupRequestOnWire {
    /// M. "The MC service ID of the requester".
    pub mc_service_id: McServiceId,
    /// O. "MC service group ID of the regroup group"; assigned by the server when absent
    /// or not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regroup_group_id: Option<McServiceGroupId>,
    /// M. The preconfigured group whose configuration the regroup group takes.
    pub preconfigured_group_id: McServiceGroupId,
    /// O (NOTE 1). The MC service groups to regroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<McServiceGroupId>>)]
    pub mc_service_group_id_list: Option<NonEmpty<McServiceGroupId>>,
    /// O (NOTE 1). The MC service users to regroup (user regroup: not supported, refused
    /// with `user-regroup-not-supported`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<McServiceId>>)]
    pub mc_service_user_id_list: Option<NonEmpty<McServiceId>>,
    /// Deprecated: the same lists nested in one object
    /// (`{"mc-service-group-id-list": [...]}`), as the first release read them; still
    /// accepted for one release. Send the lists at the top instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // An object schema, not a reference: OpenAPI marks only a schema `deprecated`.
    #[schema(value_type = Option<Object>)]
    #[deprecated(note = "send mc-service-group-id-list at the top of the request")]
    pub targets: Option<RegroupTargets>,
    /// The MC service of the regroup.
    pub mc_service: McService,
}

/// NOTE 1 of Table 10.15.2.1-1 was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a regroup request names exactly one of mc-service-group-id-list and mc-service-user-id-list"
)]
pub struct RegroupTargetsError;

// Reading and writing the deprecated form is this conversion's job.
#[allow(deprecated)]
impl TryFrom<PreconfiguredRegroupRequestOnWire> for PreconfiguredRegroupRequest {
    type Error = RegroupTargetsError;
    fn try_from(wire: PreconfiguredRegroupRequestOnWire) -> Result<Self, Self::Error> {
        let targets = match (
            wire.mc_service_group_id_list,
            wire.mc_service_user_id_list,
            wire.targets,
        ) {
            (Some(groups), None, None) => RegroupTargets::McServiceGroupIdList(groups),
            (None, Some(users), None) => RegroupTargets::McServiceUserIdList(users),
            (None, None, Some(targets)) => targets,
            _ => return Err(RegroupTargetsError),
        };
        Ok(Self {
            mc_service_id: wire.mc_service_id,
            regroup_group_id: wire.regroup_group_id,
            preconfigured_group_id: wire.preconfigured_group_id,
            targets,
            mc_service: wire.mc_service,
        })
    }
}

#[allow(deprecated)]
impl From<PreconfiguredRegroupRequest> for PreconfiguredRegroupRequestOnWire {
    fn from(request: PreconfiguredRegroupRequest) -> Self {
        let (groups, users) = match request.targets {
            RegroupTargets::McServiceGroupIdList(groups) => (Some(groups), None),
            RegroupTargets::McServiceUserIdList(users) => (None, Some(users)),
        };
        Self {
            mc_service_id: request.mc_service_id,
            regroup_group_id: request.regroup_group_id,
            preconfigured_group_id: request.preconfigured_group_id,
            mc_service_group_id_list: groups,
            mc_service_user_id_list: users,
            targets: None,
            mc_service: request.mc_service,
        }
    }
}

code_enum!(
    /// Why a regroup was rejected or not authorised.
    RegroupCause {
        /// The initiator is not authorised to regroup.
        NotAuthorized => "not-authorized",
        /// One of the groups, or the regroup group, is already regrouped (step 4a).
        AlreadyRegrouped => "already-regrouped",
        /// The requested regroup group ID is used by an existing group.
        RegroupGroupIdInUse => "regroup-group-id-in-use",
        /// A listed group or the preconfigured group is not known.
        UnknownGroup => "unknown-group",
        /// The preconfigured group is not marked `preconfigured-group-use-only`.
        NotPreconfiguredGroup => "not-preconfigured-group",
        /// A partner system homing a listed group is not authorised for regroup.
        PartnerNotAuthorized => "partner-not-authorized",
        /// A partner system could not be reached.
        PartnerUnreachable => "partner-unreachable",
        /// A partner system refused the regroup.
        PartnerRefused => "partner-refused",
        /// User regroup (a user list) is not supported.
        UserRegroupNotSupported => "user-regroup-not-supported",
        /// No regroup with that regroup group ID is in effect.
        UnknownRegroup => "unknown-regroup",
    }
);

/// Preconfigured regroup reject: MC service server → MC service client 1 (step 4a), when
/// a group or the regroup group is already regrouped; the procedure ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreconfiguredRegroupReject {
    /// The MC service ID of the requester.
    pub mc_service_id: McServiceId,
    /// The reject reason.
    pub cause: RegroupCause,
    /// The group found already regrouped, when that is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regrouped_group_id: Option<McServiceGroupId>,
    /// A sentence a human understands.
    pub reason: String,
}

/// The authorisation result of a regroup request return (step 4b i and ii).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "result", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RegroupAuthorization {
    /// Authorised, with the regroup group ID in use.
    #[serde(rename_all = "kebab-case")]
    Authorized {
        /// "the MC service group ID if authorized".
        regroup_group_id: McServiceGroupId,
    },
    /// Not authorised; client 1 does not proceed.
    #[serde(rename_all = "kebab-case")]
    NotAuthorized {
        /// Why.
        cause: RegroupCause,
        /// A sentence a human understands.
        reason: String,
    },
}

/// Preconfigured regroup request return: MC service server → MC service client 1 (step 4b).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreconfiguredRegroupRequestReturn {
    /// The MC service ID of the requester.
    pub mc_service_id: McServiceId,
    /// Whether authorised, and the regroup group ID if so.
    pub authorization: RegroupAuthorization,
}

/// Preconfigured regroup request (MC service server – MC service server): primary server
/// → partner server (step 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerPreconfiguredRegroupRequest {
    /// The initiator's MC service ID.
    pub mc_service_id: McServiceId,
    /// The regroup group ID.
    pub regroup_group_id: McServiceGroupId,
    /// The preconfigured group whose configuration the regroup group takes.
    pub preconfigured_group_id: McServiceGroupId,
    /// Every group to regroup, homed in any system: the partner identifies the affiliated
    /// members it serves of any of them (step 6).
    #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
    pub mc_service_group_id_list: NonEmpty<McServiceGroupId>,
    /// The MC service of the regroup.
    pub mc_service: McService,
}

/// Preconfigured regroup request: MC service server → MC service client 2 (step 7), an
/// affiliated member of a regrouped group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientPreconfiguredRegroupRequest {
    /// "The MC service ID of the target MC service group member".
    pub mc_service_id: McServiceId,
    /// "MC service group ID of the regroup group".
    pub regroup_group_id: McServiceGroupId,
    /// "MC service group ID of the MC service group from which configuration is to be taken".
    pub preconfigured_group_id: McServiceGroupId,
    /// The regrouped groups this member is affiliated to.
    #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
    pub mc_service_group_id_list: NonEmpty<McServiceGroupId>,
    /// The MC service of the regroup.
    pub mc_service: McService,
}

/// Preconfigured regroup response: MC service client 2 → its MC service server (step 9),
/// acknowledging the regroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientPreconfiguredRegroupResponse {
    /// The acknowledging member's MC service ID.
    pub mc_service_id: McServiceId,
    /// The regroup group ID.
    pub regroup_group_id: McServiceGroupId,
}

/// Preconfigured regroup response (MC service server – MC service server): partner server
/// → primary server (step 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerPreconfiguredRegroupResponse {
    /// The initiator's MC service ID.
    pub mc_service_id: McServiceId,
    /// The regroup group ID.
    pub regroup_group_id: McServiceGroupId,
    /// Whether the partner carried out the regroup.
    pub result: FlowResult,
    /// How many of the partner's served clients it affiliated to the regroup group.
    pub affiliated_member_count: u64,
}

/// One system's part of a regroup, as told to the initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SystemRegroupResult {
    /// The system.
    #[schema(value_type = String)]
    pub system: crate::ids::SystemDomain,
    /// Its result.
    pub result: FlowResult,
    /// Clients it affiliated to the regroup group.
    pub affiliated_member_count: u64,
}

/// Preconfigured regroup response: primary MC service server → MC service client 1
/// (step 12), with the combined result of every system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreconfiguredRegroupResponse {
    /// The initiator's MC service ID.
    pub mc_service_id: McServiceId,
    /// The regroup group ID.
    pub regroup_group_id: McServiceGroupId,
    /// The combined result.
    pub result: FlowResult,
    /// Each system's part.
    pub systems: Vec<SystemRegroupResult>,
}

/// Preconfigured regroup cancel request: client 1 → server, server → partner server, and
/// server → affiliated members (§10.15.3.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreconfiguredRegroupCancelRequest {
    /// The MC service ID of the requester (or, towards a member, of the member).
    pub mc_service_id: McServiceId,
    /// The regroup group ID of the regroup to cancel.
    pub regroup_group_id: McServiceGroupId,
    /// The MC service of the regroup.
    pub mc_service: McService,
}

/// Preconfigured regroup cancel response: each receiver of a cancel request → its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreconfiguredRegroupCancelResponse {
    /// The MC service ID of the requester.
    pub mc_service_id: McServiceId,
    /// The regroup group ID.
    pub regroup_group_id: McServiceGroupId,
    /// Whether the cancellation was carried out.
    pub result: FlowResult,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(lists: serde_json::Value) -> serde_json::Result<PreconfiguredRegroupRequest> {
        let mut body = json!({
            "mc-service-id": "sip:alice@police.example",
            "preconfigured-group-id": "sip:pre@police.example",
            "mc-service": "mcptt",
        });
        if let (Some(body), Some(lists)) = (body.as_object_mut(), lists.as_object()) {
            body.extend(lists.clone());
        }
        serde_json::from_value(body)
    }

    #[test]
    fn the_groups_sit_at_the_top_and_the_nested_form_is_still_read() {
        let top = request(json!({"mc-service-group-id-list": ["sip:ops@police.example"]}))
            .expect("the list at the top");
        let nested = request(json!({
            "targets": {"mc-service-group-id-list": ["sip:ops@police.example"]}
        }))
        .expect("the deprecated nested form");
        assert_eq!(top, nested);
        let written = serde_json::to_value(&nested).unwrap();
        assert_eq!(
            written["mc-service-group-id-list"],
            json!(["sip:ops@police.example"])
        );
        assert!(written.get("targets").is_none(), "{written}");
    }

    #[test]
    fn groups_xor_users() {
        let users = request(json!({"mc-service-user-id-list": ["sip:bob@police.example"]}));
        assert!(matches!(
            users.unwrap().targets,
            RegroupTargets::McServiceUserIdList(_)
        ));
        for broken in [
            json!({}),
            json!({"mc-service-group-id-list": ["sip:ops@police.example"],
                   "mc-service-user-id-list": ["sip:bob@police.example"]}),
            json!({"mc-service-group-id-list": ["sip:ops@police.example"],
                   "targets": {"mc-service-group-id-list": ["sip:ops@police.example"]}}),
            json!({"targets": {"mc-service-group-id-list": ["sip:ops@police.example"],
                               "mc-service-user-id-list": ["sip:bob@police.example"]}}),
        ] {
            let error = request(broken.clone()).expect_err("NOTE 1 broken");
            assert!(
                // The deprecated nested form keeps serde's own wording for its enum.
                error.to_string().contains("exactly one")
                    || error.to_string().contains("single key"),
                "{broken}: {error}"
            );
        }
    }
}
