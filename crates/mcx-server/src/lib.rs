//! One MC system as a server: its configuration, the HTTP adapter of its client API, and
//! the wiring that assembles store, entities and listeners into a running node.
//!
//! Architecture invariant: the HTTP handlers decide nothing. They authenticate, decode,
//! call one entity of `mcx_core`, and encode its answer.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod config;
mod console;
pub mod federation;
pub mod interconnect;
pub mod listener;
mod metrics;
pub mod node;
pub mod pki;
pub mod sip;
pub mod world;

pub use config::Config;
pub use node::{RunningNode, start};
