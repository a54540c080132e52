//! Bounds on what one request may ask, the same for clients and partners: a list longer
//! than its bound is refused whole (422, naming the bound) before anything is done.

use crate::error::{Error, ErrorKind, Result, codes};

/// The configured bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in a group's member list (a group document from a client or a partner).
    pub max_group_members: usize,
    /// Entries in any list of a request: groups to affiliate, targets of a remote change,
    /// groups to regroup, interconnection group IDs, users to apply them to.
    pub max_list_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_group_members: 2_000,
            max_list_entries: 100,
        }
    }
}

impl Limits {
    /// Refuses a request list longer than `max-list-entries`.
    pub fn list(&self, what: &str, len: usize) -> Result<()> {
        if len > self.max_list_entries {
            return Err(Error::refused(
                ErrorKind::Unprocessable,
                codes::LIST_TOO_LONG,
                format!(
                    "'{what}' has {len} entries; this system accepts at most {} (max-list-entries)",
                    self.max_list_entries
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a group document with more members than `max-group-members`.
    pub fn members(&self, len: usize) -> Result<()> {
        if len > self.max_group_members {
            return Err(Error::refused(
                ErrorKind::Unprocessable,
                codes::LIST_TOO_LONG,
                format!(
                    "the group lists {len} members; this system accepts at most {} (max-group-members)",
                    self.max_group_members
                ),
            ));
        }
        Ok(())
    }
}
