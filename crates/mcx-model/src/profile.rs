//! The MC service user profile: which groups a user may use per MC service, the N2 limit,
//! and what the user is authorised to do (TS 23.280 §10.1.4, profile elements of TS 24.484).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{McService, McServiceGroupId, McServiceId};

/// The default N2 when a profile does not give one.
pub const DEFAULT_MAX_AFFILIATIONS_N2: u32 = 8;

fn default_n2() -> u32 {
    DEFAULT_MAX_AFFILIATIONS_N2
}

/// One MC service's part of the user profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServiceProfile {
    /// The groups the user may use with this service (`<MCPTTGroupInfo>` and its MCVideo
    /// and MCData counterparts). Groups of partner systems may be listed: their
    /// configuration then comes from this system's GMS (TS 23.280 §10.2.7.1).
    #[serde(default)]
    pub groups: Vec<McServiceGroupId>,
    /// `<MaxAffiliationsN2>`: how many groups the user may be affiliated to at once with
    /// this service, counting groups of every system.
    #[serde(default = "default_n2")]
    pub max_affiliations_n2: u32,
}

impl Default for ServiceProfile {
    fn default() -> Self {
        Self {
            groups: Vec::new(),
            max_affiliations_n2: DEFAULT_MAX_AFFILIATIONS_N2,
        }
    }
}

/// What a user is authorised to do beyond using their own groups.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Create, update, delete, share and rekey groups defined in this system.
    GroupAdministration,
    /// Change other users' affiliations without their approval (TS 23.280 §10.8.5, mandatory mode).
    AffiliationChangeMandatory,
    /// Ask other users to change their affiliations (TS 23.280 §10.8.5, negotiated mode).
    AffiliationChangeNegotiated,
    /// See other users' affiliations and a group's affiliated members.
    AffiliationMonitoring,
    /// Initiate and cancel preconfigured group regroups (TS 23.280 §10.15).
    Regroup,
    /// Send and receive interconnection group IDs through the ACM servers (TR 23.700-38).
    AcmAdministration,
}

impl Permission {
    /// Every permission (an administrator's profile).
    pub const ALL: [Permission; 6] = [
        Permission::GroupAdministration,
        Permission::AffiliationChangeMandatory,
        Permission::AffiliationChangeNegotiated,
        Permission::AffiliationMonitoring,
        Permission::Regroup,
        Permission::AcmAdministration,
    ];

    /// The kebab-case name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::GroupAdministration => "group-administration",
            Permission::AffiliationChangeMandatory => "affiliation-change-mandatory",
            Permission::AffiliationChangeNegotiated => "affiliation-change-negotiated",
            Permission::AffiliationMonitoring => "affiliation-monitoring",
            Permission::Regroup => "regroup",
            Permission::AcmAdministration => "acm-administration",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MC service user profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UserProfile {
    /// The user's MC service ID.
    pub mc_service_id: McServiceId,
    /// The user's name for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Per MC service: groups and N2. A service absent here is not available to the user.
    #[serde(default)]
    pub services: BTreeMap<McService, ServiceProfile>,
    /// What the user is authorised to do.
    #[serde(default)]
    pub permissions: BTreeSet<Permission>,
}

impl UserProfile {
    /// Whether the profile grants the permission.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// Whether the profile lists the group for the service.
    pub fn lists_group(&self, service: McService, group: &McServiceGroupId) -> bool {
        self.services
            .get(&service)
            .is_some_and(|p| p.groups.contains(group))
    }

    /// Every group the profile lists, across services, without repeats.
    pub fn all_groups(&self) -> BTreeSet<&McServiceGroupId> {
        self.services
            .values()
            .flat_map(|p| p.groups.iter())
            .collect()
    }
}
