//! The vocabulary of mcx: identifiers, information elements, the group document, the user
//! profile, and one type per information flow of TS 23.280 (and TR 23.700-38) as the seed
//! change requests define them.
//!
//! Architecture invariant: this crate knows no transport, no storage and no clock. It
//! holds plain data with serde encodings (JSON field names follow the TS 24.481 / TS 24.379
//! element names, in kebab-case) and the rules on what a valid value is.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod events;
pub mod flows;
pub mod group;
pub mod group_document;
pub mod ids;
pub mod interconnection;
pub mod non_empty;
pub mod profile;
mod safe_xml;
pub mod sip_bodies;

pub use ids::{
    ClientId, IdError, McService, McServiceGroupId, McServiceId, SystemDomain, TransactionId,
};
pub use non_empty::NonEmpty;
