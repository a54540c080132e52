//! Identity management: users log on from a client and get a session bound to that user
//! and client; every request then names its session by bearer token. The system therefore
//! always knows who is logged on, and from which clients; log-on and log-off are announced
//! to the entities that act on them (affiliation ends at log-off, pending ACM data is
//! offered at log-on, partner group configuration is fetched at log-on).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use mcx_model::api::{LogOnRequest, SessionInfo};
use mcx_model::profile::{Permission, UserProfile};
use mcx_model::{ClientId, McServiceId, SystemDomain};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, ErrorKind, Result, codes};
use crate::events::StreamWakers;
use crate::ports::{Clock, Credential, SessionRecord, SessionStore, UserStore};

/// An authenticated caller: a logged-on user at one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The caller's session.
    pub session_id: String,
    /// The caller.
    pub mc_service_id: McServiceId,
    /// The caller's client.
    pub client_id: ClientId,
    /// The caller's profile, as of this request.
    pub profile: UserProfile,
}

impl Requester {
    /// Refuses unless the profile grants the permission.
    pub fn require(&self, permission: Permission, to_do: &str) -> Result<()> {
        if self.profile.may(permission) {
            Ok(())
        } else {
            Err(Error::refused(
                ErrorKind::Forbidden,
                codes::NOT_AUTHORIZED,
                format!(
                    "{} may not {to_do}: the user profile lacks the '{permission}' permission",
                    self.mc_service_id
                ),
            ))
        }
    }
}

/// Told when clients log on and off. Called after the session change is committed.
#[async_trait]
pub trait SessionObserver: Send + Sync {
    /// A client logged on.
    async fn logged_on(&self, session: &SessionRecord, profile: &UserProfile);
    /// A client logged off, or its session ended.
    async fn logged_off(&self, session: &SessionRecord);
}

/// The identity management function of one MC system.
pub struct IdentityManagement {
    system: SystemDomain,
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn crate::ports::Entropy>,
    session_ttl: Duration,
    wakers: Arc<StreamWakers>,
    observers: RwLock<Vec<Arc<dyn SessionObserver>>>,
    throttle: crate::log_on_throttle::LogOnThrottle,
    /// Password verifications, one per CPU at a time.
    password_checks: crate::credentials::PasswordChecks,
    /// Sessions kept in memory, when this is the system's only node.
    cache: std::sync::OnceLock<SessionCache>,
}

/// Hashes a bearer token the way sessions store it.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token(entropy: &dyn crate::ports::Entropy) -> String {
    let mut bytes = [0u8; 32];
    entropy.fill(&mut bytes);
    format!(
        "mcx_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl IdentityManagement {
    /// The identity management of `system`.
    pub fn new(
        system: SystemDomain,
        users: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn crate::ports::Entropy>,
        session_ttl: Duration,
        wakers: Arc<StreamWakers>,
    ) -> Self {
        Self {
            system,
            users,
            sessions,
            clock,
            entropy,
            session_ttl,
            wakers,
            observers: RwLock::new(Vec::new()),
            throttle: crate::log_on_throttle::LogOnThrottle::default(),
            password_checks: crate::credentials::PasswordChecks::per_cpu(),
            cache: std::sync::OnceLock::new(),
        }
    }

    /// Keeps sessions in memory after their first use (see
    /// [`crate::system::SystemSettings::single_node`]): a request then costs no store
    /// read. Entries leave at log-off, replacement and expiry (all seen here), and the
    /// expiry time is checked on every use.
    pub fn cache_sessions(&self) {
        let _ = self.cache.set(SessionCache::default());
    }

    /// Adds an entity to tell about log-ons and log-offs.
    pub fn observe(&self, observer: Arc<dyn SessionObserver>) {
        self.observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    fn observers(&self) -> Vec<Arc<dyn SessionObserver>> {
        self.observers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Logs a user on from a client (`source`: the address it connects from, when known).
    /// A session the same client had ends first.
    pub async fn log_on(
        &self,
        request: LogOnRequest,
        source: Option<std::net::IpAddr>,
    ) -> Result<(String, SessionInfo)> {
        if request.mc_service_id.domain() != self.system {
            return Err(Error::refused(
                ErrorKind::Unauthenticated,
                codes::USER_NOT_SERVED_HERE,
                format!(
                    "{} is not a user of {}: log on at the user's own MC system",
                    request.mc_service_id, self.system
                ),
            ));
        }
        let bad = || {
            Error::refused(
                ErrorKind::Unauthenticated,
                codes::BAD_CREDENTIALS,
                "the MC service ID or the password is wrong",
            )
        };
        let who = request.mc_service_id.clone();
        if let Some(wait) = self.throttle.wait(&who, source, self.clock.now()) {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Error::refused(
                ErrorKind::Throttled {
                    retry_after_secs: secs,
                },
                codes::TOO_MANY_ATTEMPTS,
                format!(
                    "too many wrong passwords for this user or from this address: try again in {secs} s"
                ),
            ));
        }
        let user = self.users.user(&request.mc_service_id).await?;
        // Argon2 costs tens of milliseconds of CPU and 19 MiB: off the async workers,
        // one per CPU at a time. An unknown user costs the same as a known one.
        let expected = user.as_ref().map(|u| {
            let Credential::PasswordHash(hash) = &u.credential;
            hash.clone()
        });
        let password = request.password.clone();
        let matched = self
            .password_checks
            .run(move || match expected {
                Some(hash) => crate::credentials::verify_password(&hash, &password),
                None => {
                    crate::credentials::verify_nobody(&password);
                    false
                }
            })
            .await
            .unwrap_or(false);
        let Some(user) = user.filter(|_| matched) else {
            self.throttle.refused(&who, source, self.clock.now());
            return Err(bad());
        };
        self.throttle.succeeded(&who);
        let now = self.clock.now();
        let token = new_token(self.entropy.as_ref());
        let session = SessionRecord {
            session_id: self.entropy.uuid_v7(self.clock.now()).to_string(),
            token_hash: token_hash(&token),
            mc_service_id: request.mc_service_id,
            client_id: request.client_id,
            logged_on_at: now,
            expires_at: now + self.session_ttl,
        };
        let replaced = self.sessions.start_session(&session).await?;
        if let Some(old) = replaced {
            self.ended(&old).await;
        }
        for observer in self.observers() {
            observer.logged_on(&session, &user.profile).await;
        }
        tracing::info!(user = %session.mc_service_id, client = %session.client_id, session = %session.session_id, "logged on");
        let info = self.info(&session, user.profile);
        Ok((token, info))
    }

    fn info(&self, session: &SessionRecord, profile: UserProfile) -> SessionInfo {
        SessionInfo {
            session_id: session.session_id.clone(),
            mc_service_id: session.mc_service_id.clone(),
            client_id: session.client_id.clone(),
            system: self.system.clone(),
            logged_on_at: session.logged_on_at,
            expires_at: session.expires_at,
            profile,
        }
    }

    /// The caller a bearer token names.
    pub async fn authenticate(&self, token: &str) -> Result<(Requester, SessionInfo)> {
        let invalid = || {
            Error::refused(
                ErrorKind::Unauthenticated,
                codes::INVALID_TOKEN,
                "the bearer token is not valid: it was never issued here, or its session ended (log on again)",
            )
        };
        let hash = token_hash(token);
        let cached = self.cache.get().and_then(|cache| cache.get(&hash));
        let (session, user) = match cached {
            Some(found) => found,
            None => {
                let (session, user) = self
                    .sessions
                    .session_and_user(&hash)
                    .await?
                    .ok_or_else(invalid)?;
                let user = user.ok_or_else(invalid)?;
                if let Some(cache) = self.cache.get() {
                    cache.put(&hash, &session, &user);
                }
                (session, user)
            }
        };
        if session.expires_at <= self.clock.now() {
            return Err(invalid());
        }
        let info = self.info(&session, user.profile.clone());
        Ok((
            Requester {
                session_id: session.session_id,
                mc_service_id: session.mc_service_id,
                client_id: session.client_id,
                profile: user.profile,
            },
            info,
        ))
    }

    /// The caller a trusted SIP proxy asserts (`P-Asserted-Identity`): `user`'s live
    /// session from `client` (or, with no client named, the user's most recent one).
    /// The proxy vouches for the user; the session is still needed, because affiliation
    /// and events belong to a logged-on client.
    pub async fn asserted(
        &self,
        user: &McServiceId,
        client: Option<&ClientId>,
    ) -> Result<Requester> {
        let not_logged_on = || {
            Error::refused(
                ErrorKind::Unauthenticated,
                codes::INVALID_TOKEN,
                match client {
                    Some(client) => format!("{user} is not logged on from client '{client}'"),
                    None => format!("{user} is not logged on"),
                },
            )
        };
        let now = self.clock.now();
        let session = self
            .sessions
            .sessions_of(user)
            .await?
            .into_iter()
            .filter(|s| s.expires_at > now)
            .filter(|s| client.is_none_or(|c| &s.client_id == c))
            .max_by_key(|s| s.logged_on_at)
            .ok_or_else(not_logged_on)?;
        let user = self.users.user(user).await?.ok_or_else(not_logged_on)?;
        Ok(Requester {
            session_id: session.session_id,
            mc_service_id: session.mc_service_id,
            client_id: session.client_id,
            profile: user.profile,
        })
    }

    /// When each live session of `user` ends, by client: the client's affiliations end
    /// with it (the `expires` a SIP status NOTIFY reports).
    pub async fn session_ends(
        &self,
        user: &McServiceId,
    ) -> Result<Vec<(ClientId, time::OffsetDateTime)>> {
        let now = self.clock.now();
        Ok(self
            .sessions
            .sessions_of(user)
            .await?
            .into_iter()
            .filter(|s| s.expires_at > now)
            .map(|s| (s.client_id, s.expires_at))
            .collect())
    }

    /// Logs the caller's client off: its session, subscriptions and events end.
    pub async fn log_off(&self, requester: &Requester) -> Result<()> {
        let session = SessionRecord {
            session_id: requester.session_id.clone(),
            token_hash: String::new(),
            mc_service_id: requester.mc_service_id.clone(),
            client_id: requester.client_id.clone(),
            logged_on_at: self.clock.now(),
            expires_at: self.clock.now(),
        };
        if self.sessions.end_session(&requester.session_id).await? {
            self.ended(&session).await;
            tracing::info!(user = %session.mc_service_id, client = %session.client_id, "logged off");
        }
        Ok(())
    }

    /// Ends every session whose time is up. Returns how many ended.
    pub async fn end_expired_sessions(&self) -> Result<usize> {
        let expired = self.sessions.expired_sessions(self.clock.now()).await?;
        let mut ended = 0;
        for session in expired {
            if self.sessions.end_session(&session.session_id).await? {
                tracing::info!(user = %session.mc_service_id, client = %session.client_id, "session expired");
                self.ended(&session).await;
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn ended(&self, session: &SessionRecord) {
        if let Some(cache) = self.cache.get() {
            cache.forget(&session.session_id);
        }
        self.wakers.remove(&session.session_id);
        for observer in self.observers() {
            observer.logged_off(session).await;
        }
    }
}

/// Sessions by token hash, kept after their first use (bounded: when full, it starts
/// again empty; a miss only costs the store read it saves).
#[derive(Default)]
struct SessionCache {
    by_hash: std::sync::Mutex<SessionEntries>,
}

#[derive(Default)]
struct SessionEntries {
    by_hash: std::collections::HashMap<String, (SessionRecord, crate::ports::UserRecord)>,
    hash_of: std::collections::HashMap<String, String>,
}

/// Sessions kept at most.
const CACHED_SESSIONS: usize = 200_000;

impl SessionCache {
    fn get(&self, hash: &str) -> Option<(SessionRecord, crate::ports::UserRecord)> {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_hash
            .get(hash)
            .cloned()
    }

    fn put(&self, hash: &str, session: &SessionRecord, user: &crate::ports::UserRecord) {
        let mut entries = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        if entries.by_hash.len() >= CACHED_SESSIONS {
            *entries = SessionEntries::default();
        }
        entries
            .hash_of
            .insert(session.session_id.clone(), hash.to_string());
        entries
            .by_hash
            .insert(hash.to_string(), (session.clone(), user.clone()));
    }

    fn forget(&self, session_id: &str) {
        let mut entries = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hash) = entries.hash_of.remove(session_id) {
            entries.by_hash.remove(&hash);
        }
    }
}
