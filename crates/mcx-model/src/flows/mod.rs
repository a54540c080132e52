//! One Rust type per information flow of the seed tables (TS 23.280 and TR 23.700-38).
//!
//! Status maps to type: an M element is a plain field, an O element an `Option`, a list
//! "of one or more" a [`NonEmpty`](crate::NonEmpty), and "one and only one of these shall be
//! present" an enum, so that an illegal combination cannot be built nor deserialised.
//! Flows whose tables appear twice (client–server and server–server) have one type per
//! direction, named as the table names them.
//!
//! Each flow is named by its title, never by the placeholder clause numbers of the change
//! requests (10.2.2.x is used for two different flows).

pub mod acm;
pub mod affiliation;
pub mod group_configuration;
pub mod partner;
pub mod regroup;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Defines a code enum carried as a kebab-case string, with an escape hatch for codes a
/// peer sends that this version does not know (they are kept, not refused).
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $code:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A code this version does not know, as received.
            Other(String),
        }

        impl $name {
            /// The wire code.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $code,)+
                    $name::Other(code) => code,
                }
            }

            /// Every known code.
            pub const KNOWN: &'static [&'static str] = &[$($code,)+];
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($code => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                if s.is_empty() || s.len() > 64 {
                    return Err(serde::de::Error::custom("a code must be 1 to 64 characters"));
                }
                Ok(s.parse().unwrap_or_else(|never: std::convert::Infallible| match never {}))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .examples([serde_json::Value::String(Self::KNOWN[0].to_string())])
                    .description(Some(format!("One of: {} (other codes may be received from newer peers).", Self::KNOWN.join(", "))))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use code_enum;

code_enum!(
    /// Why a system could not do what a flow asked (the "Result" element on failure).
    FailureCause {
        /// The group is not known to the system asked.
        UnknownGroup => "unknown-group",
        /// The group is not defined in the system asked, so it cannot answer for it.
        GroupNotHomedHere => "group-not-homed-here",
        /// The sending system is not authorised for this flow.
        NotAuthorized => "not-authorized",
        /// The received configuration is not acceptable (invalid, or refused by local policy).
        PolicyRejected => "policy-rejected",
        /// The received configuration is older than the stored one; ignored.
        StaleVersion => "stale-version",
        /// The receiver could not store what it received.
        StorageFailure => "storage-failure",
        /// The request is malformed.
        InvalidRequest => "invalid-request",
        /// The target user is not known or not authorised.
        UnknownUser => "unknown-user",
    }
);

/// The "Result" information element: success, or failure with a cause and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FlowResult {
    /// The request was fulfilled.
    Success,
    /// The request was not fulfilled.
    Failure {
        /// Machine-readable cause.
        cause: FailureCause,
        /// A sentence a human understands.
        reason: String,
    },
}

impl FlowResult {
    /// A failure with its cause and sentence.
    pub fn failure(cause: FailureCause, reason: impl Into<String>) -> Self {
        FlowResult::Failure {
            cause,
            reason: reason.into(),
        }
    }

    /// Whether the result is success.
    pub fn is_success(&self) -> bool {
        matches!(self, FlowResult::Success)
    }
}
