//! What interconnected systems may do with each other. Each partner is configured with
//! what it may ask of us (inbound) and what we may ask of it (outbound); a flow whose
//! capability is missing is refused before any procedure runs.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A kind of interconnection flow a partner may be authorised for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Group information provision (§10.2.7.2), and withdrawal of deleted groups.
    ProvideGroupConfiguration,
    /// Group information request (§10.2.7.3).
    RequestGroupConfiguration,
    /// Group information subscribe and notify (§10.2.7.4, §10.2.7.5).
    SubscribeGroupConfiguration,
    /// Server-to-server affiliation, de-affiliation and remote change (§10.8).
    Affiliation,
    /// Server-to-server preconfigured regroup and its cancellation (§10.15.3.3.1).
    Regroup,
    /// ACM store-and-forward of interconnection group IDs (TR 23.700-38).
    Acm,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 6] = [
        Capability::ProvideGroupConfiguration,
        Capability::RequestGroupConfiguration,
        Capability::SubscribeGroupConfiguration,
        Capability::Affiliation,
        Capability::Regroup,
        Capability::Acm,
    ];

    /// The kebab-case name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ProvideGroupConfiguration => "provide-group-configuration",
            Capability::RequestGroupConfiguration => "request-group-configuration",
            Capability::SubscribeGroupConfiguration => "subscribe-group-configuration",
            Capability::Affiliation => "affiliation",
            Capability::Regroup => "regroup",
            Capability::Acm => "acm",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A partner system's local policy for group configuration received from a primary
/// system (TS 23.280 §10.2.7.2 step 2, §10.2.7.3 step 4): how the partner GMS modifies the
/// configuration before storing it. Declarative; applied in the order of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LocalGroupPolicy {
    /// Sets `on-network-group-priority` to this value within this system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_priority: Option<u8>,
    /// Caps `on-network-group-priority` at this value within this system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_group_priority: Option<u8>,
    /// Restricts `permitted-locations` to these areas: a group permitted anywhere gets
    /// exactly these; otherwise only the areas in both lists remain. A group left with no
    /// permitted area is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted_locations: Option<Vec<String>>,
    /// MC services this system does not offer on received groups; a group left with no
    /// supported service is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_services: Vec<crate::McService>,
}
