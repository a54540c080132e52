//! Ports: what the functional entities need from the outside, as traits. The store crate
//! implements the storage ports with sqlx; unit tests may implement them in memory.
//!
//! Writes that change state and produce notifications take the notifications along
//! ([`Effects`]) so that the store commits both in one transaction: a change is never
//! stored without its notifications, nor notified without being stored.
//!
//! `store` holds the storage traits and the records they read, `effects` what a write
//! carries into its commit, `world` the link to partners, time and randomness.

mod effects;
mod store;
mod world;

pub use effects::*;
pub use store::*;
pub use world::*;
