//! One running MC system: store opened and migrated, configuration bootstrapped, entities
//! assembled, the client API listening, background tasks running; and a clean shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mcx_core::identity::SessionObserver;
use mcx_core::ports::{Credential, SystemClock, UserRecord};
use mcx_core::{McSystem, SystemSettings};
use mcx_store::{SqlStore, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

use crate::api::{self, AppState};
use crate::config::Config;

/// A running MC system.
pub struct RunningNode {
    addr: SocketAddr,
    system: Arc<McSystem>,
    store: Arc<SqlStore>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts an MC system from its configuration.
pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
    let server = &config.server;
    let options = match &server.storage_url {
        Some(url) => StoreOptions {
            url: url.clone(),
            max_connections: 16,
        },
        None => {
            std::fs::create_dir_all(&server.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory '{}'",
                    server.data_dir.display()
                )
            })?;
            StoreOptions::sqlite_in(&server.data_dir)
        }
    };
    let store = Arc::new(SqlStore::open(&options).await?);
    let settings = SystemSettings {
        domain: config.system.domain.clone(),
        name: config.system.name.clone(),
        session_ttl: Duration::from_secs(server.session_ttl_seconds),
    };
    let (system, policy_task) = McSystem::new(settings, store.clone(), Arc::new(SystemClock));
    let mut tasks = vec![tokio::spawn(policy_task)];

    bootstrap(&system, store.as_ref(), &config).await?;

    let listener = TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = AppState {
        system: system.clone(),
        shutdown: shutdown_rx.clone(),
    };
    let app = api::router(state, server.max_body_bytes).layer(TraceLayer::new_for_http());
    let mut stop = shutdown_rx.clone();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|down| *down).await;
    });
    let server_task = tokio::spawn(async move { serve.await });

    tasks.push(tokio::spawn(expire_sessions(
        system.clone(),
        Duration::from_secs(server.session_ttl_seconds),
        shutdown_rx,
    )));
    tracing::info!(system = %config.system.domain, %addr, "MC system serving");
    Ok(RunningNode {
        addr,
        system,
        store,
        shutdown,
        server: server_task,
        tasks,
    })
}

/// Stores the configured users (the file is authoritative for them) and defines the
/// configured groups that do not exist yet (the API is authoritative for those).
async fn bootstrap(system: &McSystem, store: &SqlStore, config: &Config) -> anyhow::Result<()> {
    use mcx_core::ports::UserStore as _;
    for user in &config.users {
        store
            .put_user(&UserRecord {
                profile: user.profile(),
                credential: Credential::Password(user.password.clone()),
            })
            .await?;
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

async fn expire_sessions(
    system: Arc<McSystem>,
    ttl: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|down| *down) => return,
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

    /// The client API's base URL, e.g. `http://127.0.0.1:7400`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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
        let served = self.server.await.context("the server task failed")?;
        for task in self.tasks {
            task.abort();
        }
        self.store.close().await;
        served.context("serving failed")
    }
}
