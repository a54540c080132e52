//! The interconnection endpoint and the link to partners: HTTPS with mutual TLS, one
//! route per server-to-server flow (`POST /interconnection/v1/<flow-name>`, the body
//! being the flow's JSON), the sender named in `Mcx-Origin` and proven by its
//! certificate, the exchange named in `Mcx-Transaction-Id`.

mod endpoint;
mod link;
pub mod refusals;
pub mod tls;

pub use endpoint::{EndpointState, serve};
pub use link::HttpsPartnerLink;

/// The header naming the sending system.
pub const ORIGIN_HEADER: &str = "mcx-origin";
/// The header naming the exchange (receivers deduplicate on it).
pub const TRANSACTION_HEADER: &str = "mcx-transaction-id";
/// The header naming the version of this wire protocol the sender speaks (requests) or
/// the receiver speaks (answers). A receiver ignores fields it does not know, whatever
/// version a sender names; the version tells operators and logs who is ahead.
pub const PROTOCOL_HEADER: &str = "mcx-protocol-version";
/// The wire protocol version of this release.
pub const PROTOCOL_VERSION: &str = "1";
/// The path prefix of the flows.
pub const PATH_PREFIX: &str = "/interconnection/v1/";
