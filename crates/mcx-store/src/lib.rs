//! Storage for mcx through sqlx: an embedded SQLite database by default, PostgreSQL (for
//! several nodes sharing one system's state) on the same code path. Both use the sqlx
//! `Any` driver and one set of portable queries; only the migrations differ, and they are
//! embedded in the binary.
//!
//! Architecture invariant: only this crate knows SQL. It implements the storage ports of
//! `mcx_core::ports`; every write that carries effects commits them in the same
//! transaction.

#![warn(missing_docs, unreachable_pub)]

mod acm;
mod affiliation;
mod bulk;
mod db;
mod events;
mod group_commit;
mod groups;
mod identity;
mod interconnection;
mod migrations;
mod readers;
mod regroup;
mod sealing;
mod sip_state;
mod sql_store;
mod writes;

pub use bulk::BulkAffiliatedUser;
pub use sealing::new_storage_key;
pub use sql_store::{NodeNews, SqlStore, StoreOptions, StoreWorld};

/// The embedded database's file name in the data directory.
pub const SQLITE_FILE: &str = "mcx.db";
