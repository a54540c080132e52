//! Errors of the functional entities. A refusal is an answer (who asked, for what, and why
//! not), carried with a stable code; a storage failure is not the caller's fault.

use crate::ports::StoreError;

/// The class of a refusal; adapters map it to a status (HTTP) or a cause (flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or its content is not acceptable.
    Invalid,
    /// The caller is not logged on, or its credentials are wrong.
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// The thing asked for does not exist (or the caller may not know it does).
    NotFound,
    /// The request conflicts with what exists.
    Conflict,
    /// A precondition (`If-Match`) does not hold.
    PreconditionFailed,
    /// A precondition is required and missing.
    PreconditionRequired,
    /// Something this system depends on is not available now; retrying may help.
    Unavailable,
    /// Well-formed but beyond what this system accepts (a bound).
    Unprocessable,
    /// Too many attempts: the caller must wait this long before trying again.
    Throttled {
        /// Whole seconds to wait (at least 1).
        retry_after_secs: u64,
    },
}

/// An error of a procedure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The procedure refused the request.
    #[error("{detail}")]
    Refused {
        /// The class of refusal.
        kind: ErrorKind,
        /// A stable machine code, e.g. `group-not-found`.
        code: &'static str,
        /// A sentence a human understands.
        detail: String,
    },
    /// The store failed; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// A refusal.
    pub fn refused(kind: ErrorKind, code: &'static str, detail: impl Into<String>) -> Self {
        Error::Refused {
            kind,
            code,
            detail: detail.into(),
        }
    }

    /// The stable code of a refusal (`storage-failure` for a store error).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused { code, .. } => code,
            Error::Store(_) => codes::STORAGE_FAILURE,
        }
    }
}

/// A procedure's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable error codes. Programs may match on them; they never change meaning.
pub mod codes {
    /// Credentials do not match a user of this system.
    pub const BAD_CREDENTIALS: &str = "bad-credentials";
    /// A list of the request is longer than this system accepts.
    pub const LIST_TOO_LONG: &str = "list-too-long";
    /// Key material that is not a valid GMK (encoding, length, GMK-ID).
    pub const INVALID_KEY_MATERIAL: &str = "invalid-key-material";
    /// Too many refused log-ons for this user or from this address: wait, then retry.
    pub const TOO_MANY_ATTEMPTS: &str = "too-many-attempts";
    /// No bearer token was given.
    pub const MISSING_TOKEN: &str = "missing-token";
    /// The bearer token is not one this system issued, or its session ended.
    pub const INVALID_TOKEN: &str = "invalid-token";
    /// The user is not a user of this system.
    pub const USER_NOT_SERVED_HERE: &str = "user-not-served-here";
    /// The caller lacks a permission.
    pub const NOT_AUTHORIZED: &str = "not-authorized";
    /// The group does not exist here.
    pub const GROUP_NOT_FOUND: &str = "group-not-found";
    /// A group with that ID exists already.
    pub const GROUP_EXISTS: &str = "group-exists";
    /// The group is defined in another system; only its primary system changes it.
    pub const GROUP_NOT_HOMED_HERE: &str = "group-not-homed-here";
    /// The group configuration is not valid.
    pub const INVALID_CONFIGURATION: &str = "invalid-configuration";
    /// `If-Match` names another version than the stored one.
    pub const VERSION_MISMATCH: &str = "version-mismatch";
    /// An update needs `If-Match`.
    pub const PRECONDITION_REQUIRED: &str = "precondition-required";
    /// The request is malformed.
    pub const INVALID_REQUEST: &str = "invalid-request";
    /// The store failed.
    pub const STORAGE_FAILURE: &str = "storage-failure";
    /// The client is not subscribed to the group.
    pub const NOT_SUBSCRIBED: &str = "not-subscribed";
    /// The system named is not a configured partner.
    pub const NOT_A_PARTNER: &str = "not-a-partner";
    /// The partner is not authorised for this kind of flow (in that direction).
    pub const PARTNER_NOT_AUTHORIZED: &str = "partner-not-authorized";
    /// A partner's flow is not valid.
    pub const INVALID_FLOW: &str = "invalid-flow";
    /// No remote change has that ID.
    pub const CHANGE_NOT_FOUND: &str = "change-not-found";
    /// The remote change does not take this answer now (answered already, or another mode).
    pub const CHANGE_ALREADY_ANSWERED: &str = "change-already-answered";
    /// The user is not a user of this system.
    pub const USER_NOT_FOUND: &str = "user-not-found";
    /// A group named in a request is not known.
    pub const UNKNOWN_GROUP: &str = "unknown-group";
    /// Preconfigured regroup reject (step 4a): a group is regrouped already.
    pub const ALREADY_REGROUPED: &str = "already-regrouped";
    /// Preconfigured regroup reject: the regroup group ID belongs to a regroup in effect.
    pub const REGROUP_GROUP_ID_IN_USE: &str = "regroup-group-id-in-use";
    /// The group takes part in a regroup in effect: cancel the regroup first.
    pub const GROUP_IN_REGROUP: &str = "group-in-regroup";
    /// Only group regroup is supported, not user regroup.
    pub const USER_REGROUP_NOT_SUPPORTED: &str = "user-regroup-not-supported";
    /// A partner needed for the request could not be reached; nothing was changed.
    pub const PARTNER_UNREACHABLE: &str = "partner-unreachable";
    /// A partner needed for the request refused it; nothing was changed.
    pub const PARTNER_REFUSED: &str = "partner-refused";
    /// No regroup with that regroup group ID is in effect here.
    pub const UNKNOWN_REGROUP: &str = "unknown-regroup";
    /// No ACM request has that ID here.
    pub const ACM_REQUEST_NOT_FOUND: &str = "acm-request-not-found";
    /// The ACM request was answered already.
    pub const ACM_ALREADY_ANSWERED: &str = "acm-already-answered";
    /// The ACM request has not been accepted.
    pub const ACM_NOT_ACCEPTED: &str = "acm-not-accepted";
}
