//! Integration tests: real MC systems on ephemeral loopback ports with temporary data
//! directories, driven over HTTP through the client crate (and, where the test is about
//! the binary, through `mcx` itself).

mod acm;
mod affiliation;
mod bad_input;
mod bench;
mod cli;
mod cli_style;
mod console;
mod convergence;
mod crash;
mod demo;
mod events;
mod federation;
mod group_policy;
mod groups;
mod ha;
mod ha_partners;
mod interconnection;
mod logs;
mod members_only;
mod metrics;
mod nodes;
mod openapi;
mod regroup;
mod restart;
mod security;
mod session;
mod sip;
mod step_two;
mod support;
mod xcap;
