//! The MC service server: one per MC service in TS 23.280, one module here serving all
//! three (the MC service travels in each flow). It handles affiliation (§10.8) and
//! regroup (§10.15) for the users it serves and the groups it hosts.
//!
//! It learns group policy from its GMS by subscription (§10.8.3.1 steps 2a/2b): the first
//! use of a group fetches it and subscribes; every later change arrives as a
//! [`GroupConfigurationNotification`] and replaces the cached copy.

mod group_policy;

pub use group_policy::GroupPolicyCache;
