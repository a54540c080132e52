//! A deterministic simulation of interconnected MC systems, in the spirit of
//! FoundationDB's and TigerBeetle's: several systems run in one process on the real core
//! and the real `SqlStore`, connected by a partner link that loses, duplicates and cuts,
//! with crashes and restarts, on a simulated clock, all driven by one seeded generator.
//! A seeded random workload runs, then the network heals and the outboxes drain, and the
//! invariants of the procedures are checked. A failing seed replays exactly.
//!
//! `world` has the simulated clock and randomness, `net` the faulty link, `system` one
//! simulated system, `run` the workload and the invariants.

pub mod net;
pub mod run;
pub mod system;
pub mod world;

pub use run::{Report, Settings, simulate};
