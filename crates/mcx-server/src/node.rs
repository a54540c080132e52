//! One running MC system: store opened and migrated, configuration bootstrapped, entities
//! assembled, the client API listening, background tasks running; and a clean shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::world::{OsEntropy, SystemClock};
use anyhow::Context as _;
use mcx_core::identity::SessionObserver;
use mcx_core::interconnection_gateway::RetryPolicy;
use mcx_core::partners::{PartnerSettings, Partners};
use mcx_core::ports::{Credential, LinkError, PartnerLink, UserRecord};
use mcx_core::{McSystem, SystemSettings};
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{SystemDomain, TransactionId};
use mcx_store::{SqlStore, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::interconnect::tls::{Identity, PeerIdentities, load_roots, server_config};
use crate::interconnect::{EndpointState, HttpsPartnerLink};

/// A running MC system.
pub struct RunningNode {
    addr: SocketAddr,
    interconnection_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    sip: Option<crate::sip::SipEdge>,
    system: Arc<McSystem>,
    store: Arc<SqlStore>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts an MC system from its configuration.
pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
    let server = &config.server;
    crate::listener::raise_open_files_limit();
    crate::metrics::install();
    let counters = Arc::new(crate::listener::Listeners::default());
    let storage_key = Some(load_storage_key(&config.storage_key_path())?);
    let options = match &server.storage_url {
        Some(url) => StoreOptions {
            url: url.clone(),
            max_connections: 16,
            storage_key,
        },
        None => {
            std::fs::create_dir_all(&server.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory '{}'",
                    server.data_dir.display()
                )
            })?;
            secure_data_dir(&server.data_dir)?;
            StoreOptions {
                storage_key,
                ..StoreOptions::sqlite_in(&server.data_dir)
            }
        }
    };
    let store = Arc::new(SqlStore::open(&options, crate::world::store_world()).await?);
    if server.storage_url.is_none() {
        // The WAL and shared-memory files exist now.
        secure_data_dir(&server.data_dir)?;
    }
    let partners = Partners::new(config.partners.iter().map(|p| PartnerSettings {
        domain: p.domain.clone(),
        inbound: p.inbound.clone(),
        outbound: p.outbound.clone(),
        policy: p.policy.clone(),
    }));
    let retry = config
        .interconnection
        .as_ref()
        .map(|ic| RetryPolicy {
            initial: Duration::from_millis(ic.retry_initial_ms.max(1)),
            max: Duration::from_millis(ic.retry_max_ms.max(ic.retry_initial_ms.max(1))),
            lane_lease: Duration::from_millis(ic.lane_lease_ms),
        })
        .unwrap_or_default();
    let settings = SystemSettings {
        domain: config.system.domain.clone(),
        name: config.system.name.clone(),
        session_ttl: Duration::from_secs(server.session_ttl_seconds),
        partners,
        retry,
        change_timeout: Duration::from_secs(server.remote_change_timeout_seconds),
        affiliation_wait: Duration::from_millis(server.affiliation_wait_ms),
        limits: mcx_core::limits::Limits {
            max_group_members: server.max_group_members,
            max_list_entries: server.max_list_entries,
        },
        // Embedded SQLite is one node; on PostgreSQL another node may end a session.
        single_node: !store.is_postgres(),
    };

    // The link to partners (and what the endpoint needs to know them) comes first: the
    // MC service server calls partners directly for answers it needs at once.
    let certificate_refusals = Arc::new(crate::interconnect::refusals::CertificateRefusals::new(
        config.partners.iter().map(|p| p.domain.clone()),
    ));
    let interconnection = match &config.interconnection {
        Some(ic) => {
            let identity = Identity::load(&ic.certificate, &ic.private_key)?;
            let mut all_roots = rustls::RootCertStore::empty();
            let mut per_partner = Vec::new();
            let mut endpoints = Vec::new();
            for partner in &config.partners {
                let roots = load_roots(&partner.trust_anchors)
                    .with_context(|| format!("partner '{}'", partner.domain))?;
                for anchor in roots.roots.iter() {
                    all_roots.roots.push(anchor.clone());
                }
                per_partner.push((partner.domain.clone(), roots.clone()));
                endpoints.push((partner.domain.clone(), partner.endpoint.0.clone(), roots));
            }
            let link = HttpsPartnerLink::new(
                config.system.domain.clone(),
                &identity,
                endpoints,
                Duration::from_millis(ic.request_timeout_ms.max(100)),
            )?;
            if all_roots.is_empty() {
                // No partner yet: the endpoint still serves, and refuses everyone.
                all_roots =
                    load_roots(&ic.certificate).unwrap_or_else(|_| rustls::RootCertStore::empty());
            }
            let tls = server_config(&identity, all_roots, certificate_refusals.clone())?;
            Some((
                ic.listen,
                tls,
                PeerIdentities::new(per_partner)?,
                Arc::new(link),
            ))
        }
        None => None,
    };
    let link: Arc<dyn PartnerLink> = match &interconnection {
        Some((_, _, _, link)) => link.clone() as Arc<dyn PartnerLink>,
        None => Arc::new(NoPartners),
    };
    let (system, policy_task) = McSystem::new(
        settings,
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
        link.clone(),
    );
    let mut tasks = vec![tokio::spawn(policy_task)];

    bootstrap(&system, store.as_ref(), &config).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);

    let mut interconnection_addr = None;
    if let Some((listen, tls, identities, _)) = interconnection {
        let state = EndpointState {
            gateway: system.gateway.clone(),
            identities: Arc::new(identities),
        };
        let (addr, task) = crate::interconnect::serve(
            listen,
            tls,
            state,
            server.connection_limits(),
            counters.interconnection.clone(),
            shutdown_rx.clone(),
        )
        .await?;
        tracing::info!(%addr, "interconnection endpoint serving partners");
        interconnection_addr = Some(addr);
        tasks.push(task);
    }
    tasks.push(tokio::spawn(
        system
            .gateway
            .clone()
            .run_outbox(system.link.clone(), shutdown_rx.clone()),
    ));
    let gateway = system.gateway.clone();
    tasks.push(tokio::spawn(
        system.mc_service_server.clone().run_change_deadlines(
            move || {
                let gateway = gateway.clone();
                Box::pin(async move { gateway.hold_duty("deadlines", DUTY_LEASE).await })
            },
            shutdown_rx.clone(),
        ),
    ));
    // Affiliations of clients whose sessions ended while the server was down, and
    // reservations a crash interrupted, end now.
    let undone = system.mc_service_server.undo_unfinished_regroups().await?;
    if undone > 0 {
        tracing::info!(undone, "undid regroups an interruption left half-formed");
    }
    let stale = system.mc_service_server.end_stale_affiliations().await?;
    if stale > 0 {
        tracing::info!(
            stale,
            "ended affiliations left by ended sessions or an interrupted start"
        );
    }

    let listener = TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    let state = AppState {
        system: system.clone(),
        shutdown: shutdown_rx.clone(),
        listeners: counters.clone(),
        certificate_refusals,
    };
    let metrics_addr = match server.metrics_listen {
        Some(listen) => {
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen for metrics on {listen}"))?;
            let addr = listener
                .local_addr()
                .context("reading the metrics address")?;
            let app = crate::metrics::router(state.clone());
            let mut down = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let stopped = async move {
                    let _ = down.wait_for(|d| *d).await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            }));
            tracing::info!(%addr, "metrics listening");
            Some(addr)
        }
        None => None,
    };
    let app = api::router(state, server.max_body_bytes, &server.xcap_root)
        .layer(TraceLayer::new_for_http());
    let server_task = crate::listener::accept_loop(
        listener,
        "client API",
        server.connection_limits(),
        counters.client_api.clone(),
        shutdown_rx.clone(),
        move |tcp, accepted| {
            let app = app.clone();
            async move {
                crate::listener::serve_connection(tcp, app, (), &accepted, None).await;
            }
        },
    );

    // Several nodes on one PostgreSQL: what the others commit wakes streams here and
    // drops the group policy cached here.
    tasks.push(tokio::spawn({
        let (store, system, shutdown) = (store.clone(), system.clone(), shutdown_rx.clone());
        async move {
            let on = |news: mcx_store::NodeNews| match news {
                mcx_store::NodeNews::Sessions(sessions) => system.wakers.wake(&sessions),
                mcx_store::NodeNews::GroupChanged(group, version) => {
                    let policy = system.mc_service_server.policy.clone();
                    tokio::spawn(async move { policy.changed_elsewhere(&group, version).await });
                }
                mcx_store::NodeNews::HostAnswerStored(wait) => {
                    system.mc_service_server.host_answer_stored(&wait)
                }
                mcx_store::NodeNews::MayHaveMissed => {
                    system.wakers.wake_all();
                    system.mc_service_server.look_again_for_host_answers();
                    let policy = system.mc_service_server.policy.clone();
                    tokio::spawn(async move { policy.refresh_all().await });
                }
            };
            store.relay_node_news(on, shutdown).await
        }
    }));
    tasks.push(tokio::spawn(expire_sessions(
        system.clone(),
        Duration::from_secs(server.session_ttl_seconds),
        shutdown_rx,
    )));
    let sip = match &config.sip {
        Some(section) => Some(
            crate::sip::start(
                crate::sip::SipOptions {
                    listen: section.listen,
                    psi: section
                        .psi
                        .clone()
                        .unwrap_or_else(|| format!("sip:mcptt-psi@{}", config.system.domain)),
                    gms_psi: section
                        .gms_psi
                        .clone()
                        .unwrap_or_else(|| format!("sip:mcptt-gms-psi@{}", config.system.domain)),
                    trusted_proxies: section.trusted_proxies.clone(),
                    xcap_root: format!("http://{addr}{}", server.xcap_root),
                    tls: section.tls_listen.and_then(|tls| {
                        config
                            .sip_tls_identity()
                            .map(|(certificate, key)| (tls, certificate, key))
                    }),
                },
                system.clone(),
                store.clone(),
            )
            .await?,
        ),
        None => None,
    };
    tracing::info!(system = %config.system.domain, %addr, "MC system serving");
    Ok(RunningNode {
        addr,
        interconnection_addr,
        metrics_addr,
        sip,
        system,
        store,
        shutdown,
        server: server_task,
        tasks,
    })
}

/// The storage key from its file (64 hexadecimal digits), created 0600 if missing.
fn load_storage_key(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the directory of '{}'", path.display())
                })?;
            }
            let key = mcx_store::new_storage_key()?;
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            crate::pki::write_private(path, &format!("{hex}\n"))?;
            tracing::info!(path = %path.display(), "created the storage key that seals group key material");
            hex
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the storage key '{}'", path.display()));
        }
    };
    let hex = text.trim();
    let bytes: Option<Vec<u8>> = (hex.len() == 64 && hex.is_ascii())
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the storage key '{}' is not 64 hexadecimal digits",
                path.display()
            )
        })
}

/// The data directory only its owner may enter (0700) and its files only its owner may
/// read (0600): the database holds token hashes, password hashes and group key material.
fn secure_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let private = |path: &std::path::Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot restrict the permissions of '{}'", path.display()))
        };
        private(dir, 0o700)?;
        let database = dir.join(mcx_store::SQLITE_FILE);
        if !database.exists() {
            // Created 0600 before SQLite opens it; its WAL and shared-memory files take
            // the database file's permissions.
            crate::pki::write_private(&database, "")?;
        }
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the data directory '{}'", dir.display()))?
        {
            let path = entry?.path();
            if path.is_file() {
                private(&path, 0o600)?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Stores the configured users (the file is authoritative for them) and defines the
/// configured groups that do not exist yet (the API is authoritative for those).
async fn bootstrap(system: &McSystem, store: &SqlStore, config: &Config) -> anyhow::Result<()> {
    use mcx_core::ports::UserStore as _;
    let mut plain = 0;
    for user in &config.users {
        let hash = if mcx_core::credentials::is_password_hash(&user.password) {
            user.password.clone()
        } else {
            // Only a development system gets here (`Config::check`).
            plain += 1;
            mcx_core::credentials::hash_password(&user.password).map_err(anyhow::Error::msg)?
        };
        store
            .put_user(&UserRecord {
                profile: user.profile(),
                credential: Credential::PasswordHash(hash),
            })
            .await?;
    }
    if plain > 0 {
        tracing::warn!(
            users = plain,
            "development system: plain-text passwords in the configuration (use `mcx passwd` hashes for a deployment)"
        );
    }
    for group in &config.groups {
        let created = system
            .gms
            .ensure_group(
                group.mc_service_group_id.clone(),
                group.configuration.clone(),
            )
            .await
            .with_context(|| {
                format!("defining configured group '{}'", group.mc_service_group_id)
            })?;
        if created {
            tracing::info!(group = %group.mc_service_group_id, "defined configured group");
        }
    }
    Ok(())
}

/// How long a node holds a duty of timed work (deadlines, session expiry) without
/// renewing it: a killed node's duties pass to another node this long after.
const DUTY_LEASE: Duration = Duration::from_secs(10);

async fn expire_sessions(
    system: Arc<McSystem>,
    ttl: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
        // With several nodes, one ends the sessions for all; the others ask again before
        // its lease would pass.
        let (held, recheck) = system.gateway.hold_duty("session-expiry", DUTY_LEASE).await;
        every = recheck.map_or(every, |r| every.min(r));
        if !held {
            continue;
        }
        if let Err(e) = system.identity.end_expired_sessions().await {
            tracing::warn!(error = %e, "ending expired sessions failed; will retry");
        }
    }
}

impl RunningNode {
    /// The client API's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SIP listener's address (UDP and TCP), if it has one.
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.sip.as_ref().map(crate::sip::SipEdge::addr)
    }

    /// Where it listens for SIP over TLS, if it does.
    pub fn sip_tls_addr(&self) -> Option<SocketAddr> {
        self.sip.as_ref().and_then(crate::sip::SipEdge::tls_addr)
    }

    /// The client API's base URL, e.g. `http://127.0.0.1:7400`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The interconnection endpoint's address, if the system has one.
    pub fn interconnection_addr(&self) -> Option<SocketAddr> {
        self.interconnection_addr
    }

    /// The metrics listener's address, if `[server] metrics-listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The MC system's entities.
    pub fn system(&self) -> &Arc<McSystem> {
        &self.system
    }

    /// Adds an observer of log-ons and log-offs.
    pub fn observe_sessions(&self, observer: Arc<dyn SessionObserver>) {
        self.system.identity.observe(observer);
    }

    /// Stops serving: open event streams end, in-flight requests finish, the store closes.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.server.await.context("the server task failed")?;
        for task in self.tasks {
            task.abort();
            // Aborted, not only asked: no lane is claimed again after the release below.
            let _ = task.await;
        }
        if let Err(e) = self.system.gateway.release_lanes().await {
            // Not lost: the leases pass on their own (LANE_LEASE).
            tracing::warn!(error = %e, "stopping: releasing this node's outbox lanes failed");
        }
        if let Some(sip) = &self.sip {
            sip.stop().await;
        }
        self.store.close().await;
        Ok(())
    }
}

/// The link of a system without partners: every request is refused.
struct NoPartners;

#[async_trait::async_trait]
impl PartnerLink for NoPartners {
    // A system without interconnection has no partner to reach.
    async fn send(
        &self,
        partner: &SystemDomain,
        _transaction: TransactionId,
        _request: &PartnerRequest,
    ) -> Result<PartnerResponse, LinkError> {
        Err(LinkError::Refused {
            partner: partner.clone(),
            message: "this system has no interconnection configured".into(),
        })
    }
}
