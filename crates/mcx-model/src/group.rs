//! MC service group configuration information: the group document a group management
//! server holds, with field names taken from the TS 24.481 group document elements
//! (`<list-service>` children, `mcpttgi:` extensions), so an XCAP codec maps one to one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ids::{McService, McServiceGroupId, McServiceId};
use crate::non_empty::NonEmpty;

/// Why a group document is not acceptable. Names the field and quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigurationError {
    /// The TS 24.481-named field, e.g. `list.entry[2].uri`.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigurationError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Limits on a group document, so that one document cannot exhaust a server.
pub mod limits {
    /// `display-name` length in characters.
    pub const DISPLAY_NAME: usize = 256;
    /// Entries in `list`.
    pub const MEMBERS: usize = 10_000;
    /// `participant-type` length in characters.
    pub const PARTICIPANT_TYPE: usize = 64;
    /// Entries in `permitted-locations`.
    pub const LOCATIONS: usize = 256;
    /// One permitted location's length in characters.
    pub const LOCATION: usize = 128;
    /// Bytes of unmodelled XML kept with a group, all elements together.
    pub const XML_EXTENSIONS: usize = 64 * 1024;
}

/// MC service group configuration information (TS 23.280 §10.1.5; document structure of
/// TS 24.481 §7.2.2). The group's ID is not repeated here: it travels beside the document
/// as the "MC service group ID" information element, and as `list-service/@uri` in XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupConfiguration {
    /// `<display-name>`: the group's human-readable name.
    #[schema(example = "Operations")]
    pub display_name: String,
    /// `<list>`: the group members, one `<entry>` each.
    #[serde(default)]
    pub list: Vec<GroupMemberEntry>,
    /// `<mcpttgi:on-network-disabled>`: when true the group may not be used on network;
    /// affiliation to it is refused.
    #[serde(default)]
    pub on_network_disabled: bool,
    /// `<mcpttgi:on-network-group-priority>`: the group's priority (0 lowest .. 255).
    /// A partner system may cap or set it by local policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_network_group_priority: Option<u8>,
    /// `<oxe:supported-services>`: the MC services the group may be used with.
    #[schema(value_type = Vec<McService>, min_items = 1)]
    pub supported_services: NonEmpty<McService>,
    /// `<mcpttgi:preconfigured-group-use-only>`: the group exists only to give its
    /// configuration to regroup groups; calls on it are not allowed (TS 24.379 §16.1).
    #[serde(default)]
    pub preconfigured_group_use_only: bool,
    /// Permitted locations for service: area identifiers where the group may be used.
    /// Empty means anywhere. A partner system may restrict them (TS 23.280 §10.2.7.1).
    #[serde(default)]
    pub permitted_locations: Vec<String>,
    /// `<mcpttgi:on-network-regrouped>`: present on a regroup group, naming the groups
    /// regrouped into it and the preconfigured group its configuration comes from.
    /// Managed by the MC service server; ignored in administrators' updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_network_regrouped: Option<OnNetworkRegrouped>,
    /// Present on a group while it is regrouped (mcx extension): the regroup group it is
    /// part of. MC service servers learn the regrouped state from it (TS 23.280
    /// §10.15.3.3.1). Managed by the MC service server; ignored in administrators' updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regrouped_into: Option<McServiceGroupId>,
    /// Elements of the XML group document (TS 24.481) mcx does not model, kept verbatim
    /// so that an operator's document survives a round trip through mcx.
    #[serde(default, skip_serializing_if = "XmlExtensions::is_empty")]
    pub xml_extensions: XmlExtensions,
}

/// Elements of an XML group document that mcx does not model, as the XCAP client wrote
/// them, and the namespace declarations they rely on. Served back in the document after
/// the elements mcx models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct XmlExtensions {
    /// Prefix → namespace URI, for prefixes the kept elements use but do not declare.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub namespaces: std::collections::BTreeMap<String, String>,
    /// Unmodelled children of `<list-service>`, each a well-formed element as XML text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<String>,
}

impl XmlExtensions {
    /// Nothing kept.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.elements.is_empty()
    }
}

/// `<on-network-regrouped>` of a regroup group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OnNetworkRegrouped {
    /// `<constituent-MCPTT-group-IDs>`: the regrouped groups.
    pub constituent_group_ids: Vec<McServiceGroupId>,
    /// The preconfigured group the configuration and security parameters come from.
    pub preconfigured_group_id: McServiceGroupId,
}

impl GroupConfiguration {
    /// A group with these members (no optional member elements) and services, and no other
    /// element set: enabled, no priority, usable for calls, anywhere, not regrouped.
    pub fn new(
        display_name: impl Into<String>,
        members: impl IntoIterator<Item = McServiceId>,
        supported_services: NonEmpty<McService>,
    ) -> Self {
        Self {
            display_name: display_name.into(),
            list: members.into_iter().map(GroupMemberEntry::new).collect(),
            on_network_disabled: false,
            on_network_group_priority: None,
            supported_services,
            preconfigured_group_use_only: false,
            permitted_locations: Vec::new(),
            on_network_regrouped: None,
            regrouped_into: None,
            xml_extensions: XmlExtensions::default(),
        }
    }

    /// Checks what the types alone cannot: lengths, control characters, duplicates.
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        check_text(
            "display-name",
            &self.display_name,
            limits::DISPLAY_NAME,
            false,
        )?;
        if self.list.len() > limits::MEMBERS {
            return Err(ConfigurationError::new(
                "list",
                format!("a group may have at most {} entries", limits::MEMBERS),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, entry) in self.list.iter().enumerate() {
            if !seen.insert(&entry.uri) {
                return Err(ConfigurationError::new(
                    format!("list.entry[{i}].uri"),
                    format!("'{}' is listed more than once", entry.uri),
                ));
            }
            if let Some(name) = &entry.display_name {
                check_text(
                    &format!("list.entry[{i}].display-name"),
                    name,
                    limits::DISPLAY_NAME,
                    false,
                )?;
            }
            if let Some(kind) = &entry.participant_type {
                check_text(
                    &format!("list.entry[{i}].participant-type"),
                    kind,
                    limits::PARTICIPANT_TYPE,
                    false,
                )?;
            }
            crate::group_document::check_kept(
                &format!("list.entry[{i}].xml-extensions"),
                &entry.xml_extensions,
                &self.xml_extensions.namespaces,
            )?;
        }
        let kept: usize = self
            .xml_extensions
            .elements
            .iter()
            .chain(self.list.iter().flat_map(|e| e.xml_extensions.iter()))
            .map(String::len)
            .sum();
        if kept > limits::XML_EXTENSIONS {
            return Err(ConfigurationError::new(
                "xml-extensions",
                format!(
                    "the unmodelled XML kept with a group may be at most {} bytes",
                    limits::XML_EXTENSIONS
                ),
            ));
        }
        crate::group_document::check_kept(
            "xml-extensions.elements",
            &self.xml_extensions.elements,
            &self.xml_extensions.namespaces,
        )?;
        let mut services = BTreeSet::new();
        for service in self.supported_services.iter() {
            if !services.insert(service) {
                return Err(ConfigurationError::new(
                    "supported-services",
                    format!("'{service}' is listed more than once"),
                ));
            }
        }
        if self.permitted_locations.len() > limits::LOCATIONS {
            return Err(ConfigurationError::new(
                "permitted-locations",
                format!("at most {} locations are allowed", limits::LOCATIONS),
            ));
        }
        let mut places = BTreeSet::new();
        for (i, place) in self.permitted_locations.iter().enumerate() {
            check_text(
                &format!("permitted-locations[{i}]"),
                place,
                limits::LOCATION,
                false,
            )?;
            if !places.insert(place) {
                return Err(ConfigurationError::new(
                    format!("permitted-locations[{i}]"),
                    format!("'{place}' is listed more than once"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the user is listed as a member of the group.
    pub fn is_member(&self, user: &McServiceId) -> bool {
        self.list.iter().any(|entry| &entry.uri == user)
    }

    /// Whether the group supports the MC service.
    pub fn supports(&self, service: McService) -> bool {
        self.supported_services.iter().any(|s| *s == service)
    }
}

fn check_text(
    field: &str,
    value: &str,
    max: usize,
    allow_empty: bool,
) -> Result<(), ConfigurationError> {
    if !allow_empty && value.trim().is_empty() {
        return Err(ConfigurationError::new(field, "it must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ConfigurationError::new(
            field,
            format!("it is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigurationError::new(
            field,
            "it must not contain control characters",
        ));
    }
    Ok(())
}

/// One `<entry>` of the group's `<list>`: a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupMemberEntry {
    /// `entry/@uri`: the member's MC service ID.
    pub uri: McServiceId,
    /// `<rl:display-name>`: the member's name within the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `<mcpttgi:user-priority>`: the member's priority within the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_priority: Option<u8>,
    /// `<mcpttgi:participant-type>`: the member's role, e.g. "dispatcher".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_type: Option<String>,
    /// Unmodelled children of the XML `<entry>`, each a well-formed element as XML text
    /// (their prefixes are declared in the group's `xml-extensions.namespaces`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xml_extensions: Vec<String>,
}

impl GroupMemberEntry {
    /// A member with no optional elements.
    pub fn new(uri: McServiceId) -> Self {
        Self {
            uri,
            display_name: None,
            user_priority: None,
            participant_type: None,
            xml_extensions: Vec::new(),
        }
    }
}

/// Group key material generated by the primary GMS: the group master key (GMK, TS 33.180)
/// and its identity. Opaque to mcx; versioned by `generation`, which grows by one at
/// every rekey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupKeyMaterial {
    /// 1 for the first key, one more at every rekey.
    pub generation: u32,
    /// GMK-ID: identifies the key, 8 hexadecimal digits.
    #[schema(example = "5f2a9c01")]
    pub gmk_id: String,
    /// The GMK, base64 (standard alphabet). Opaque.
    pub gmk: String,
    /// When the key was generated.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: OffsetDateTime,
}

impl GroupKeyMaterial {
    /// Checks the form of key material received from outside: the GMK-ID is 8
    /// hexadecimal digits and the GMK is standard base64 of 16 to 64 bytes.
    pub fn validate(&self) -> Result<(), String> {
        use base64::Engine as _;
        if self.gmk_id.len() != 8 || !self.gmk_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "gmk-id must be 8 hexadecimal digits, not '{}'",
                self.gmk_id.chars().take(32).collect::<String>()
            ));
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(self.gmk.as_bytes())
            .map_err(|e| format!("gmk is not base64: {e}"))?;
        if !(16..=64).contains(&key.len()) {
            return Err(format!(
                "gmk must be 16 to 64 bytes, not {} bytes",
                key.len()
            ));
        }
        Ok(())
    }
}

/// Where the stored copy of a group comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GroupOrigin {
    /// Defined in this system: this GMS is the group's primary GMS.
    Local,
    /// Received from the group's primary system and modified by local policy.
    #[serde(rename_all = "kebab-case")]
    Partner {
        /// The version at the primary system the stored copy derives from.
        primary_version: u64,
    },
}

/// A group as the GMS stores and serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupRecord {
    /// MC service group ID; its domain is the group's primary MC system.
    pub mc_service_group_id: McServiceGroupId,
    /// The configuration information.
    pub configuration: GroupConfiguration,
    /// The current group key material, if any. Served to members and administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_material: Option<GroupKeyMaterial>,
    /// Grows by one at every stored change; the HTTP ETag is derived from it.
    pub version: u64,
    /// Whether the group is defined here or received from its primary system.
    pub origin: GroupOrigin,
    /// When the stored copy last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl GroupRecord {
    /// The strong HTTP entity tag of this version.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GroupConfiguration {
        serde_json::from_value(serde_json::json!({
            "display-name": "Operations",
            "list": [{"uri": "sip:alice@police.example", "user-priority": 3}],
            "supported-services": ["mcptt"],
        }))
        .unwrap()
    }

    #[test]
    fn defaults_and_names_follow_ts_24_481() {
        let c = config();
        assert!(!c.on_network_disabled);
        assert!(c.permitted_locations.is_empty());
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("on-network-disabled").is_some());
        assert!(json.get("supported-services").is_some());
        assert_eq!(json["list"][0]["user-priority"], 3);
        c.validate().unwrap();
    }

    #[test]
    fn refuses_unknown_fields_and_empty_services() {
        let unknown = serde_json::from_value::<GroupConfiguration>(serde_json::json!({
            "display-name": "x", "supported-services": ["mcptt"], "colour": "red"
        }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let empty = serde_json::from_value::<GroupConfiguration>(serde_json::json!({
            "display-name": "x", "supported-services": []
        }));
        assert!(empty.unwrap_err().to_string().contains("at least one"));
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = config();
        c.list.push(c.list[0].clone());
        assert_eq!(c.validate().unwrap_err().field, "list.entry[1].uri");
        let mut c = config();
        c.display_name = " ".into();
        assert_eq!(c.validate().unwrap_err().field, "display-name");
        let mut c = config();
        c.permitted_locations = vec!["a".into(), "a".into()];
        assert_eq!(c.validate().unwrap_err().field, "permitted-locations[1]");
    }
}
