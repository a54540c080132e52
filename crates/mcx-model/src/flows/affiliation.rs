//! Affiliation and de-affiliation (TS 23.280 §10.8, seed 002 "10.X.2"): client–server and
//! server–server requests and responses, the status updates to the GMS, and the remote
//! change of affiliation.
//!
//! One mcx process hosts the MC service servers of all three MC services, so each flow
//! names the MC service it is for (`mc-service`), which in TS 23.280 is implied by the
//! server addressed. Server–server flows carry what their tables carry: the user, not the
//! client. The user's serving server keeps which of the user's clients hold each
//! affiliation, and tells the group's host only when the user as a whole affiliates or
//! de-affiliates.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::code_enum;
use crate::ids::{McService, McServiceGroupId, McServiceId};
use crate::non_empty::NonEmpty;

/// A user's affiliation state for one group.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum AffiliationStatus {
    /// The user is affiliated to the group.
    Affiliated,
    /// The user is not affiliated to the group.
    NotAffiliated,
    /// The serving server asked the group's partner host and has no answer yet (TS 24.379
    /// "affiliating"); the final state reaches the user's clients as an
    /// `affiliation-status-changed` event. Never sent by a host.
    Affiliating,
}

code_enum!(
    /// Why a request for one group was not carried out.
    AffiliationCause {
        /// The group is not known (not defined here, nor received from its primary system).
        UnknownGroup => "unknown-group",
        /// The group is disabled (`on-network-disabled`).
        GroupDisabled => "group-disabled",
        /// The group does not support the MC service.
        ServiceNotSupported => "service-not-supported",
        /// The group is for regroup configuration only (`preconfigured-group-use-only`).
        PreconfiguredGroupUseOnly => "preconfigured-group-use-only",
        /// The user's profile does not list the group, or the user is not a member.
        NotAuthorized => "not-authorized",
        /// The user is affiliated to N2 groups already (TS 24.379 warning 102).
        N2LimitReached => "n2-limit-reached",
        /// De-affiliation from a group the user is not affiliated to (warning 120).
        NotAffiliated => "not-affiliated",
        /// The partner system homing the group could not be reached.
        PartnerUnreachable => "partner-unreachable",
        /// The partner system is not authorised for this flow, or refused it.
        PartnerRefused => "partner-refused",
        /// The target user rejected a negotiated change.
        TargetRejected => "target-rejected",
        /// The target user did not answer a negotiated change in time.
        TargetNoAnswer => "target-no-answer",
        /// The target user is not logged on from any client.
        TargetNotLoggedOn => "target-not-logged-on",
        /// The user is not served by the system asked (remote change of another system's user).
        UserNotServedHere => "user-not-served-here",
        /// Another request for the same group by the same user (from this client or
        /// another of the user's clients) is still being processed.
        InProgress => "in-progress",
    }
);

/// The affiliation status for one group: the state after the request, and when the
/// request for this group was not carried out, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupAffiliationStatus {
    /// The group.
    pub mc_service_group_id: McServiceGroupId,
    /// The state after the request.
    pub status: AffiliationStatus,
    /// Present when the request for this group was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<AffiliationCause>,
}

/// A status list must name exactly the groups of the request's group list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the status per MC service group ID must give one status for every group of the MC service group ID list and no other: {0}"
)]
pub struct StatusListMismatch(String);

fn check_statuses<'a>(
    list: impl Iterator<Item = &'a McServiceGroupId>,
    statuses: impl Iterator<Item = &'a McServiceGroupId>,
) -> Result<(), StatusListMismatch> {
    let listed: BTreeSet<_> = list.collect();
    let mut answered = BTreeSet::new();
    for group in statuses {
        if !answered.insert(group) {
            return Err(StatusListMismatch(format!("'{group}' has two statuses")));
        }
    }
    if let Some(extra) = answered.difference(&listed).next() {
        return Err(StatusListMismatch(format!("'{extra}' is not in the list")));
    }
    if let Some(missing) = listed.difference(&answered).next() {
        return Err(StatusListMismatch(format!("'{missing}' has no status")));
    }
    Ok(())
}

macro_rules! request_flow {
    ($(#[$doc:meta])* $name:ident, $list_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct $name {
            /// M. "The MC service ID of the originator who triggers the request."
            pub mc_service_id: McServiceId,
            #[doc = $list_doc]
            #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
            pub mc_service_group_id_list: NonEmpty<McServiceGroupId>,
            /// The MC service the request is for.
            pub mc_service: McService,
        }
    };
}

request_flow!(
    /// MC service group affiliation request (table 10.X.2.1-1): MC service client → MC
    /// service server.
    GroupAffiliationRequest,
    "M. \"A list of one or more MC service group IDs to which the originator intends to affiliate.\""
);

request_flow!(
    /// MC service group de-affiliation request (table 10.X.2.4-1): MC service client → MC
    /// service server.
    GroupDeaffiliationRequest,
    "M. \"A list of one or more MC service group IDs to which the originator intends to de-affiliate.\""
);

macro_rules! server_request_flow {
    ($(#[$doc:meta])* $name:ident, $list_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct $name {
            /// M. "The MC service ID of the originator who triggers the request."
            pub mc_service_id: McServiceId,
            #[doc = $list_doc]
            #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
            pub mc_service_group_id_list: NonEmpty<McServiceGroupId>,
            /// The MC service the request is for.
            pub mc_service: McService,
            /// mcx extension: the user's affiliation generation at the serving system when
            /// it decided this request. The host ignores a request older than the last it
            /// applied for the same user and group, whatever way each travelled. Absent
            /// from senders that do not know it.
            #[serde(default, skip_serializing_if = "Option::is_none", rename = "mcx-generation")]
            pub generation: Option<u64>,
        }
    };
}

server_request_flow!(
    /// MC service group affiliation request (MC service server – MC service server),
    /// table 10.X.2.1a-1: the user's serving server → the partner server homing the groups.
    ServerGroupAffiliationRequest,
    "M. \"... to which the originator intends to affiliate and is defined in the destination MC service system.\""
);

server_request_flow!(
    /// MC service group de-affiliation request (MC service server – MC service server),
    /// table 10.X.2.4a-1.
    ServerGroupDeaffiliationRequest,
    "M. \"... to which the originator intends to de-affiliate and is defined in the destination MC service system.\""
);

macro_rules! response_flow {
    ($(#[$doc:meta])* $name:ident, $wire:ident = $wire_lit:literal, $list_doc:literal, $status_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = $wire_lit, rename_all = "kebab-case")]
        pub struct $name {
            /// M. "The MC service ID of the originator who triggers the request."
            pub mc_service_id: McServiceId,
            #[doc = $list_doc]
            #[schema(value_type = Vec<McServiceGroupId>, min_items = 1)]
            pub mc_service_group_id_list: NonEmpty<McServiceGroupId>,
            #[doc = $status_doc]
            pub status_per_mc_service_group_id: Vec<GroupAffiliationStatus>,
            /// The MC service the request was for.
            pub mc_service: McService,
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        #[doc(hidden)]
        pub struct $wire {
            mc_service_id: McServiceId,
            mc_service_group_id_list: NonEmpty<McServiceGroupId>,
            status_per_mc_service_group_id: Vec<GroupAffiliationStatus>,
            mc_service: McService,
        }

        impl TryFrom<$wire> for $name {
            type Error = StatusListMismatch;
            fn try_from(w: $wire) -> Result<Self, StatusListMismatch> {
                check_statuses(
                    w.mc_service_group_id_list.iter(),
                    w.status_per_mc_service_group_id.iter().map(|s| &s.mc_service_group_id),
                )?;
                Ok(Self {
                    mc_service_id: w.mc_service_id,
                    mc_service_group_id_list: w.mc_service_group_id_list,
                    status_per_mc_service_group_id: w.status_per_mc_service_group_id,
                    mc_service: w.mc_service,
                })
            }
        }

        impl $name {
            /// Builds the response from per-group statuses; the group list is derived
            /// from them, so the two always agree. `None` if there are no statuses.
            pub fn from_statuses(
                mc_service_id: McServiceId,
                mc_service: McService,
                statuses: Vec<GroupAffiliationStatus>,
            ) -> Option<Self> {
                let list = NonEmpty::new(
                    statuses.iter().map(|s| s.mc_service_group_id.clone()).collect(),
                )
                .ok()?;
                Some(Self {
                    mc_service_id,
                    mc_service_group_id_list: list,
                    status_per_mc_service_group_id: statuses,
                    mc_service,
                })
            }
        }
    };
}

response_flow!(
    /// MC service group affiliation response (table 10.X.2.2-1): MC service server → MC
    /// service client.
    GroupAffiliationResponse,
    GroupAffiliationResponseOnWire = "GroupAffiliationResponseOnWire",
    "M. \"A list of one or more MC service group IDs to which the originator intends to affiliate.\"",
    "M. \"Affiliation status per MC service group ID\": the result for every group in the list."
);

response_flow!(
    /// MC service group affiliation response (MC service server – MC service server),
    /// table 10.X.2.2a-1.
    ServerGroupAffiliationResponse,
    ServerGroupAffiliationResponseOnWire = "ServerGroupAffiliationResponseOnWire",
    "M. \"... and is defined in the destination MC service system.\"",
    "M. \"Affiliation status per MC service group ID\"."
);

response_flow!(
    /// MC service group de-affiliation response (table 10.X.2.5-1): MC service server →
    /// MC service client.
    GroupDeaffiliationResponse,
    GroupDeaffiliationResponseOnWire = "GroupDeaffiliationResponseOnWire",
    "M. \"A list of one or more MC service group IDs to which the originator intends to de-affiliate.\"",
    "M. \"De-affiliation status per MC service group ID\"."
);

response_flow!(
    /// MC service group de-affiliation response (MC service server – MC service server),
    /// table 10.X.2.5a-1.
    ServerGroupDeaffiliationResponse,
    ServerGroupDeaffiliationResponseOnWire = "ServerGroupDeaffiliationResponseOnWire",
    "M. \"... and is defined in the destination MC service system.\"",
    "M. \"De-affiliation status per MC service group ID\"."
);

response_flow!(
    /// Group affiliation status update (table 10.X.2.3-1): MC service server → group
    /// management server, after affiliations were stored.
    GroupAffiliationStatusUpdate,
    GroupAffiliationStatusUpdateOnWire = "GroupAffiliationStatusUpdateOnWire",
    "M. \"A list of one or more MC service group IDs for which the affiliation status needs to be updated.\"",
    "M. \"Affiliation status per MC service group ID\"."
);

response_flow!(
    /// Group de-affiliation status update (table 10.X.2.6-1): MC service server → group
    /// management server, after affiliations were removed.
    GroupDeaffiliationStatusUpdate,
    GroupDeaffiliationStatusUpdateOnWire = "GroupDeaffiliationStatusUpdateOnWire",
    "M. \"A list of one or more MC service group IDs for which the de-affiliation status needs to be updated.\"",
    "M. \"De-affiliation status per MC service group ID\"."
);

/// The mode of a remote change (table 10.X.2.7-1 "Change request type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeRequestType {
    /// Applied without the target user's approval (§10.X.5.1.1).
    Mandatory,
    /// Applied only if the target user accepts (§10.X.5.1.2).
    Negotiated,
}

/// Whether a remote change affiliates the target to a group or de-affiliates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AffiliationChangeAction {
    /// Affiliate the target to the group.
    Affiliate,
    /// De-affiliate the target from the group.
    Deaffiliate,
}

/// One group of a remote change, with what to do (§10.X.5.2.1 step 5: a target "affiliates
/// to one or more MC service groups and also de-affiliates from one or more").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupAffiliationChange {
    /// The group.
    pub mc_service_group_id: McServiceGroupId,
    /// Affiliate or de-affiliate.
    pub action: AffiliationChangeAction,
}

/// MC service group affiliation change request (table 10.X.2.7-1): authorised MC service
/// client → MC service server, and server → target client (§10.X.5.1.1 step 7a,
/// §10.X.5.1.2 step 3) and server → partner server (§10.X.5.2.1 step 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupAffiliationChangeRequest {
    /// M. "The MC service ID of the originator who triggers the MC service group
    /// affiliation change request."
    pub mc_service_id: McServiceId,
    /// M. "A list of one or more MC service IDs to which the originator intends to change
    /// their MC service group affiliation relationship."
    #[schema(value_type = Vec<McServiceId>, min_items = 1)]
    pub mc_service_id_list: NonEmpty<McServiceId>,
    /// M. "A list of one or more MC service group IDs to which the originator intends to
    /// change their affiliation relationship with the target user."
    #[schema(value_type = Vec<GroupAffiliationChange>, min_items = 1)]
    pub mc_service_group_id_list: NonEmpty<GroupAffiliationChange>,
    /// M. "Indicates the affiliation request type, i.e. mandatory or negotiated".
    pub change_request_type: ChangeRequestType,
    /// The MC service the change is for.
    pub mc_service: McService,
    /// mcx extension, server to server only: the target's affiliation generation at its
    /// serving system when the change was decided, so the host can ignore an overtaken
    /// request (as with `mcx-generation` on affiliation requests). Absent from clients.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "mcx-generation"
    )]
    #[schema(ignore)]
    pub generation: Option<u64>,
}

/// The result of a remote change for one target and one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TargetAffiliationStatus {
    /// The target user.
    pub mc_service_id: McServiceId,
    /// The group.
    pub mc_service_group_id: McServiceGroupId,
    /// The target's state for the group after the change.
    pub status: AffiliationStatus,
    /// Present when the change for this target and group was not carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<AffiliationCause>,
}

/// MC service group affiliation change response (table 10.X.2.8-1): MC service server →
/// authorised client; also target client → server and partner server → primary server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupAffiliationChangeResponse {
    /// M. "The MC service ID of the originator who triggers the MC service group
    /// affiliation request."
    pub mc_service_id: McServiceId,
    /// M. The target users.
    #[schema(value_type = Vec<McServiceId>, min_items = 1)]
    pub mc_service_id_list: NonEmpty<McServiceId>,
    /// M. The groups of the change.
    #[schema(value_type = Vec<GroupAffiliationChange>, min_items = 1)]
    pub mc_service_group_id_list: NonEmpty<GroupAffiliationChange>,
    /// M. "Affiliation status per MC service group ID": the result of the change for
    /// every target and group.
    pub affiliation_status_per_mc_service_group_id: Vec<TargetAffiliationStatus>,
    /// The MC service the change was for.
    pub mc_service: McService,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_statuses_must_match_the_list() {
        let ok = serde_json::from_value::<GroupAffiliationResponse>(json!({
            "mc-service-id": "sip:alice@police.example",
            "mc-service-group-id-list": ["sip:ops@police.example"],
            "status-per-mc-service-group-id": [
                {"mc-service-group-id": "sip:ops@police.example", "status": "not-affiliated", "cause": "n2-limit-reached"}
            ],
            "mc-service": "mcptt",
        }))
        .unwrap();
        assert_eq!(
            ok.status_per_mc_service_group_id[0].cause,
            Some(AffiliationCause::N2LimitReached)
        );
        let missing = serde_json::from_value::<GroupAffiliationResponse>(json!({
            "mc-service-id": "sip:alice@police.example",
            "mc-service-group-id-list": ["sip:ops@police.example", "sip:b@police.example"],
            "status-per-mc-service-group-id": [
                {"mc-service-group-id": "sip:ops@police.example", "status": "affiliated"}
            ],
            "mc-service": "mcptt",
        }));
        assert!(missing.unwrap_err().to_string().contains("has no status"));
    }

    #[test]
    fn request_lists_are_one_or_more() {
        let empty = serde_json::from_value::<GroupAffiliationRequest>(json!({
            "mc-service-id": "sip:alice@police.example",
            "mc-service-group-id-list": [],
            "mc-service": "mcptt",
        }));
        assert!(empty.unwrap_err().to_string().contains("at least one"));
    }
}
