//! The interconnection endpoint: an accept loop that terminates TLS and hands each
//! request the peer's certificate chain, and the router that checks the peer's identity
//! before anything else and then routes the flow through the gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mcx_core::interconnection_gateway::InterconnectionGateway;
use mcx_model::flows::partner::PartnerRequest;
use mcx_model::{SystemDomain, TransactionId};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::tls::PeerIdentities;
use super::{ORIGIN_HEADER, TRANSACTION_HEADER};
use crate::api::problem::ApiError;

/// The peer's certificate chain, as presented in the TLS handshake (empty if none).
#[derive(Clone, Debug, Default)]
struct PeerCertificates(Arc<Vec<CertificateDer<'static>>>);

/// What the endpoint's handlers reach.
#[derive(Clone)]
pub struct EndpointState {
    /// The gateway inbound flows go to.
    pub gateway: Arc<InterconnectionGateway>,
    /// Who the partners are and which certificates prove it.
    pub identities: Arc<PeerIdentities>,
}

/// Stable codes of the endpoint's refusals.
mod codes {
    pub(super) const CERTIFICATE_REQUIRED: &str = "client-certificate-required";
    pub(super) const CERTIFICATE_MISMATCH: &str = "certificate-mismatch";
    pub(super) const MISSING_ORIGIN: &str = "missing-origin";
    pub(super) const MISSING_TRANSACTION: &str = "missing-transaction-id";
    pub(super) const UNKNOWN_FLOW: &str = "unknown-flow";
    pub(super) const INVALID_FLOW: &str = "invalid-flow";
}

fn router(state: EndpointState) -> Router {
    Router::new()
        .route("/interconnection/v1/{flow}", post(receive))
        .fallback(crate::api::problem::no_route)
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}

/// Identifies the peer: the claimed origin must be a partner and the TLS client
/// certificate must be that partner's. Runs before the body is even decoded.
fn authenticate(
    headers: &HeaderMap,
    peer: &PeerCertificates,
    identities: &PeerIdentities,
) -> Result<(SystemDomain, TransactionId), ApiError> {
    if peer.0.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::CERTIFICATE_REQUIRED,
            "the interconnection endpoint accepts only partner systems presenting a client certificate",
        ));
    }
    let origin = headers
        .get(ORIGIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::MISSING_ORIGIN,
                "the request must name its sending system in 'Mcx-Origin'",
            )
        })?;
    let origin = SystemDomain::parse(origin).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::MISSING_ORIGIN,
            e.to_string(),
        )
    })?;
    identities.check(&origin, &peer.0).map_err(|why| {
        tracing::warn!(claimed = %origin, why, "interconnection: peer refused");
        ApiError::new(
            StatusCode::FORBIDDEN,
            codes::CERTIFICATE_MISMATCH,
            format!("refused: the request claims to come from '{origin}', but {why}"),
        )
    })?;
    let transaction = headers
        .get(TRANSACTION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .map(TransactionId)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::MISSING_TRANSACTION,
                "the request must carry a UUID in 'Mcx-Transaction-Id'",
            )
        })?;
    Ok((origin, transaction))
}

async fn receive(
    State(state): State<EndpointState>,
    Path(flow): Path<String>,
    peer: Option<axum::Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let peer = peer.map(|axum::Extension(p)| p).unwrap_or_default();
    let (origin, transaction) = authenticate(&headers, &peer, &state.identities)?;
    let request = PartnerRequest::decode(&flow, &body).map_err(|e| match e {
        mcx_model::flows::partner::DecodeError::UnknownFlow(_) => {
            ApiError::new(StatusCode::NOT_FOUND, codes::UNKNOWN_FLOW, e.to_string())
        }
        mcx_model::flows::partner::DecodeError::Invalid(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_FLOW,
            format!("'{flow}': {e}"),
        ),
    })?;
    tracing::debug!(%origin, %transaction, flow, "interconnection: flow received");
    let answer = state.gateway.inbound(&origin, transaction, request).await?;
    let body = answer.body().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::api::problem::codes::INTERNAL,
            e.to_string(),
        )
    })?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Serves the interconnection endpoint until `shutdown` turns true.
pub async fn serve(
    listen: SocketAddr,
    tls: rustls::ServerConfig,
    state: EndpointState,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    use anyhow::Context as _;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for partners on {listen}"))?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = router(state);
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "interconnection: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = async { let _ = shutdown.wait_for(|down| *down).await; } => break,
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "interconnection: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "interconnection: TLS handshake timed out");
                        return;
                    }
                };
                let peer = PeerCertificates(Arc::new(
                    tls.get_ref()
                        .1
                        .peer_certificates()
                        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default(),
                ));
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let mut request = request.map(Body::new);
                        request.extensions_mut().insert(peer.clone());
                        app.clone().oneshot(request)
                    },
                );
                let builder = auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection(TokioIo::new(tls), service);
                if let Err(e) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%remote, error = %e, "interconnection: connection ended with an error");
                }
            });
        }
        if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!("interconnection: connections still open after 5 s; closing them");
        }
    });
    Ok((addr, task))
}
