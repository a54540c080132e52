//! The functional entities of one MC system, as TS 23.280 names them: identity management
//! (log-on), the group management server, the MC service server, the ACM server and the
//! interconnection gateway. Each is a module; they talk only through the information
//! flows of `mcx_model::flows` and the notifications defined here, and reach storage,
//! partners and clients only through the ports of [`ports`].
//!
//! Architecture invariant: this crate never opens a socket or a database connection and
//! knows no HTTP, SQL or TLS. It reads the time only through [`ports::Clock`].

#![warn(missing_docs, unreachable_pub)]

pub mod acm_server;
pub mod credentials;
pub mod error;
pub mod events;
pub mod gms;
pub mod identity;
pub mod interconnection_gateway;
pub mod limits;
pub mod log_on_throttle;
pub mod mc_service_server;
pub mod outbox_signal;
pub mod partners;
pub mod ports;
pub mod system;
pub mod trace;

pub use error::{Error, ErrorKind, Result};
pub use system::{McSystem, SystemSettings};
