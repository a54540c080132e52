//! Identifiers of TS 23.280: MC service IDs, MC service group IDs, MC system domains,
//! MC services, MC service client IDs and transaction IDs.
//!
//! MC service IDs and MC service group IDs are SIP URIs (`sip:alice@police.example`).
//! The host part of a group ID names the group's primary (home) MC system: a group is
//! defined in exactly one system, and every other system that uses it is a partner.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a string is not a valid identifier. The message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a valid {what}: {reason}")]
pub struct IdError {
    /// The offending input, truncated to 80 characters.
    pub input: String,
    /// What was being parsed ("MC service ID", "MC system domain", ...).
    pub what: &'static str,
    /// Why it was refused, as a lowercase sentence fragment.
    pub reason: String,
}

impl IdError {
    fn new(input: &str, what: &'static str, reason: impl Into<String>) -> Self {
        let input = if input.chars().count() > 80 {
            let head: String = input.chars().take(77).collect();
            format!("{head}...")
        } else {
            input.to_string()
        };
        Self {
            input,
            what,
            reason: reason.into(),
        }
    }
}

/// The longest URI accepted as an MC service ID or group ID.
pub const MAX_URI_LEN: usize = 255;

/// Validates a domain name (RFC 1035 host name, lowercase-normalised by the caller).
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("the domain is empty".into());
    }
    if domain.len() > 253 {
        return Err("the domain is longer than 253 characters".into());
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(
                "the domain has an empty label (two dots in a row, or a leading or trailing dot)"
                    .into(),
            );
        }
        if label.len() > 63 {
            return Err(format!(
                "the domain label '{label}' is longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "the domain label '{label}' may only hold letters, digits and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "the domain label '{label}' may not start or end with '-'"
            ));
        }
    }
    Ok(())
}

/// RFC 3261 `user` characters: unreserved, escaped, and user-unreserved.
fn is_user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
                | b'%'
        )
}

/// Parses `sip:user@domain` into its normalised form (scheme and domain lowercased;
/// the user part is case-sensitive, as RFC 3261 says).
fn parse_sip_uri(input: &str, what: &'static str) -> Result<String, IdError> {
    let err = |reason: &str| IdError::new(input, what, reason);
    if input.len() > MAX_URI_LEN {
        return Err(err(&format!("it is longer than {MAX_URI_LEN} characters")));
    }
    let (scheme, rest) = input
        .split_once(':')
        .ok_or_else(|| err("it must be a SIP URI such as 'sip:name@domain.example'"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "sip" && scheme != "sips" {
        return Err(err(&format!(
            "the scheme must be 'sip' or 'sips', not '{scheme}'"
        )));
    }
    let (user, host) = rest
        .rsplit_once('@')
        .ok_or_else(|| err("it has no '@': a SIP URI names a user at a domain"))?;
    if user.is_empty() {
        return Err(err("the user part before '@' is empty"));
    }
    if let Some(bad) = user.bytes().find(|b| !is_user_char(*b)) {
        return Err(err(&format!(
            "the user part holds the character '{}', which a SIP URI does not allow there",
            bad.escape_ascii()
        )));
    }
    if host.contains([';', '?', ':']) {
        return Err(err(
            "URI parameters, headers and ports are not allowed in an identifier",
        ));
    }
    let host = host.to_ascii_lowercase();
    check_domain(&host).map_err(|reason| err(&reason))?;
    Ok(format!("{scheme}:{user}@{host}"))
}

macro_rules! sip_uri_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, example = $example)]
        pub struct $name(String);

        impl $name {
            /// Parses and normalises the identifier.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                parse_sip_uri(input, $what).map(Self)
            }

            /// The normalised URI.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The domain part: the MC system this identifier belongs to.
            pub fn domain(&self) -> SystemDomain {
                let host = self.0.rsplit_once('@').map(|(_, h)| h).unwrap_or_default();
                SystemDomain(host.to_string())
            }

            /// The user part, before the '@'.
            pub fn user_part(&self) -> &str {
                let rest = self.0.split_once(':').map(|(_, r)| r).unwrap_or_default();
                rest.rsplit_once('@').map(|(u, _)| u).unwrap_or_default()
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

sip_uri_id!(
    /// MC service ID: identifies an MC service user (TS 23.280 §8.1.2).
    McServiceId,
    "MC service ID",
    "sip:alice@police.example"
);

sip_uri_id!(
    /// MC service group ID: identifies an MC service group (TS 23.280 §8.1.3). Its domain
    /// is the group's primary (home) MC system.
    McServiceGroupId,
    "MC service group ID",
    "sip:ops@police.example"
);

impl McServiceGroupId {
    /// The group's primary MC system: where it is defined.
    pub fn home_system(&self) -> SystemDomain {
        self.domain()
    }
}

/// The domain of an MC system, e.g. `police.example`. It identifies the system to its
/// partners and is the domain of the IDs it defines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "police.example")]
pub struct SystemDomain(String);

impl SystemDomain {
    /// Parses and lowercases a domain name.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let lower = input.to_ascii_lowercase();
        check_domain(&lower)
            .map(|()| Self(lower))
            .map_err(|reason| IdError::new(input, "MC system domain", reason))
    }

    /// The domain name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SystemDomain {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SystemDomain {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<SystemDomain> for String {
    fn from(d: SystemDomain) -> String {
        d.0
    }
}

impl fmt::Display for SystemDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The MC services (TS 23.280 §3.1 "MC service TSs").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum McService {
    /// Mission critical push to talk (TS 23.379).
    Mcptt,
    /// Mission critical video (TS 23.281).
    Mcvideo,
    /// Mission critical data (TS 23.282).
    Mcdata,
}

impl McService {
    /// Every MC service, in a stable order.
    pub const ALL: [McService; 3] = [McService::Mcptt, McService::Mcvideo, McService::Mcdata];

    /// The lowercase name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            McService::Mcptt => "mcptt",
            McService::Mcvideo => "mcvideo",
            McService::Mcdata => "mcdata",
        }
    }
}

impl FromStr for McService {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.to_ascii_lowercase().as_str() {
            "mcptt" => Ok(McService::Mcptt),
            "mcvideo" => Ok(McService::Mcvideo),
            "mcdata" => Ok(McService::Mcdata),
            _ => Err(IdError::new(
                s,
                "MC service",
                "expected one of 'mcptt', 'mcvideo', 'mcdata'",
            )),
        }
    }
}

impl fmt::Display for McService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// MC service client ID: one client (UE instance) of a user. A user may be logged on from
/// several clients at once; each has its own session and event stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "handset-1")]
pub struct ClientId(String);

impl ClientId {
    /// Longest accepted client ID.
    pub const MAX_LEN: usize = 128;

    /// Accepts 1 to 128 printable ASCII characters without spaces.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        if input.is_empty() {
            return Err(IdError::new(input, "MC service client ID", "it is empty"));
        }
        if input.len() > Self::MAX_LEN {
            return Err(IdError::new(
                input,
                "MC service client ID",
                format!("it is longer than {} characters", Self::MAX_LEN),
            ));
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::new(
                input,
                "MC service client ID",
                "only printable ASCII characters without spaces are allowed",
            ));
        }
        Ok(Self(input.to_string()))
    }

    /// The client ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<ClientId> for String {
    fn from(c: ClientId) -> String {
        c.0
    }
}

impl FromStr for ClientId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one exchange of an information flow between systems, so that a receiver can
/// recognise a retransmission and answer it without a second effect.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct TransactionId(pub uuid::Uuid);

impl TransactionId {
    /// A new, time-ordered transaction ID (UUIDv7).
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for TransactionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises_sip_uris() {
        let id = McServiceId::parse("SIP:Alice@Police.EXAMPLE").unwrap();
        assert_eq!(id.as_str(), "sip:Alice@police.example");
        assert_eq!(id.domain().as_str(), "police.example");
        assert_eq!(id.user_part(), "Alice");
        let g = McServiceGroupId::parse("sip:ops-1@fire.example").unwrap();
        assert_eq!(
            g.home_system(),
            SystemDomain::parse("fire.example").unwrap()
        );
    }

    #[test]
    fn refuses_what_is_not_a_sip_uri_with_a_reason() {
        let cases = [
            ("alice@police.example", "SIP URI"),
            ("tel:+123", "scheme"),
            ("sip:police.example", "'@'"),
            ("sip:@police.example", "user part"),
            ("sip:al ice@police.example", "character ' '"),
            ("sip:alice@police..example", "empty label"),
            ("sip:alice@-police.example", "may not start"),
            ("sip:alice@police.example;transport=tcp", "parameters"),
            ("sip:alice@police.example:5060", "ports"),
            ("sip:alice@pol_ice.example", "letters, digits"),
        ];
        for (input, needle) in cases {
            let err = McServiceId::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(
                err.contains(input),
                "{input}: error does not quote input: {err}"
            );
        }
        let long = format!("sip:{}@police.example", "a".repeat(300));
        assert!(McServiceId::parse(&long).is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: McServiceGroupId = serde_json::from_str("\"sip:ops@police.example\"").unwrap();
        assert_eq!(ok.as_str(), "sip:ops@police.example");
        let err = serde_json::from_str::<McServiceGroupId>("\"ops\"").unwrap_err();
        assert!(err.to_string().contains("not a valid MC service group ID"));
        assert!(serde_json::from_str::<McService>("\"mcptt\"").is_ok());
        assert!(serde_json::from_str::<McService>("\"tetra\"").is_err());
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
    }
}
