//! The `floor` scenario's server: what this machine can do for the cheapest authenticated
//! request with nothing of mcx in the way. A bare axum handler on its own two-thread
//! runtime (as `mcx serve` has its own process) answers `GET /v1/session` with the same
//! bearer check (the token's SHA-256 looked up) and the same small JSON as mcx, so the
//! same client call measures both; every run of `mcx bench` reports it beside mcx.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcx_model::api::SessionInfo;

/// The running floor server; it stops when dropped.
pub(crate) struct Floor {
    pub(crate) url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Sessions = Arc<HashMap<String, SessionInfo>>;

async fn session(State(sessions): State<Sessions>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| sessions.get(&mcx_core::identity::token_hash(t))) {
        Some(info) => axum::Json(info).into_response(),
        None => (StatusCode::UNAUTHORIZED, "not logged on").into_response(),
    }
}

/// Starts the floor server on loopback for these sessions (token, what it answers).
pub(crate) fn start(sessions: Vec<(String, SessionInfo)>) -> anyhow::Result<Floor> {
    let sessions: Sessions = Arc::new(
        sessions
            .into_iter()
            .map(|(token, info)| (mcx_core::identity::token_hash(&token), info))
            .collect(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mcx-bench-floor")
        .enable_all()
        .build()?;
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let app = axum::Router::new()
                .route("/v1/session", axum::routing::get(session))
                .with_state(sessions);
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    Ok(Floor {
        url,
        stop: Some(stop),
        thread: Some(thread),
    })
}
