//! The interconnection endpoint: an accept loop that terminates TLS and hands each
//! request the peer's certificate chain, and the router that checks the peer's identity
//! before anything else and then routes the flow through the gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mcx_core::interconnection_gateway::InterconnectionGateway;
use mcx_model::flows::partner::PartnerRequest;
use mcx_model::{SystemDomain, TransactionId};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::tls::PeerIdentities;
use super::{ORIGIN_HEADER, PROTOCOL_HEADER, PROTOCOL_VERSION, TRANSACTION_HEADER};
use crate::api::extract::{AppBytes, AppPath};
use crate::api::problem::ApiError;

/// The peer's certificate chain, as presented in the TLS handshake (empty if none), and
/// the partner it was last found to belong to. The chain cannot change within a
/// connection, so it is verified again only for another claimed partner or once
/// [`REVERIFY_AFTER`] has passed (an expiry, or a partner removed from the
/// configuration, takes effect within that): a signature check on every request was a
/// tenth of the CPU of affiliations to a partner's groups.
#[derive(Clone, Debug, Default)]
struct PeerCertificates {
    chain: Arc<Vec<CertificateDer<'static>>>,
    verified: Arc<std::sync::Mutex<Option<(SystemDomain, std::time::Instant)>>>,
}

/// How long a verified chain is taken as verified on its connection.
const REVERIFY_AFTER: Duration = Duration::from_secs(60);

impl PeerCertificates {
    /// Whether the chain was verified as `claimed`'s within [`REVERIFY_AFTER`].
    fn verified_as(&self, claimed: &SystemDomain) -> bool {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        verified
            .as_ref()
            .is_some_and(|(who, when)| who == claimed && when.elapsed() < REVERIFY_AFTER)
    }

    fn remember(&self, claimed: &SystemDomain) {
        *self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((claimed.clone(), std::time::Instant::now()));
    }
}

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
        .method_not_allowed_fallback(crate::api::problem::wrong_method)
        .layer(axum::middleware::map_response(with_protocol_version))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}

/// Every answer names the protocol version this release speaks.
async fn with_protocol_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(PROTOCOL_HEADER, HeaderValue::from_static(PROTOCOL_VERSION));
    response
}

/// Identifies the peer: the claimed origin must be a partner and the TLS client
/// certificate must be that partner's. Runs before the body is even decoded.
fn authenticate(
    headers: &HeaderMap,
    peer: &PeerCertificates,
    identities: &PeerIdentities,
) -> Result<(SystemDomain, TransactionId), ApiError> {
    if peer.chain.is_empty() {
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
    if !peer.verified_as(&origin) {
        identities.check(&origin, &peer.chain).map_err(|why| {
            tracing::warn!(claimed = %origin, why, "interconnection: peer refused");
            ApiError::new(
                StatusCode::FORBIDDEN,
                codes::CERTIFICATE_MISMATCH,
                format!("refused: the request claims to come from '{origin}', but {why}"),
            )
        })?;
        peer.remember(&origin);
    }
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
    AppPath(flow): AppPath<String>,
    peer: Option<axum::Extension<PeerCertificates>>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Response, ApiError> {
    let peer = peer.map(|axum::Extension(p)| p).unwrap_or_default();
    let (origin, transaction) = authenticate(&headers, &peer, &state.identities)?;
    if let Some(version) = headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok())
        && version != PROTOCOL_VERSION
    {
        tracing::debug!(%origin, version, "interconnection: partner speaks another protocol version");
    }
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

/// How long a peer without a client certificate may keep its connection: long enough to
/// read the refusal, not to hold a connection.
const UNAUTHENTICATED_DEADLINE: Duration = Duration::from_secs(2);

/// Serves the interconnection endpoint until `shutdown` turns true.
pub async fn serve(
    listen: SocketAddr,
    tls: rustls::ServerConfig,
    state: EndpointState,
    limits: crate::listener::ConnectionLimits,
    counters: Arc<crate::listener::ListenerCounters>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    use anyhow::Context as _;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for partners on {listen}"))?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = router(state);
    let task = crate::listener::accept_loop(
        listener,
        "interconnection",
        limits,
        counters,
        shutdown,
        move |tcp, accepted| {
            let acceptor = acceptor.clone();
            let app = app.clone();
            async move {
                let remote = accepted.remote;
                let handshake = limits.header_read_timeout.min(Duration::from_secs(10));
                let accept = super::refusals::PEER.scope(remote, acceptor.accept(tcp));
                let tls = match tokio::time::timeout(handshake, accept).await {
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
                let peer = PeerCertificates {
                    chain: Arc::new(
                        tls.get_ref()
                            .1
                            .peer_certificates()
                            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                            .unwrap_or_default(),
                    ),
                    verified: Default::default(),
                };
                // Every request of a peer without a certificate is refused: it gets its
                // refusal and then loses the connection.
                let deadline = peer.chain.is_empty().then_some(UNAUTHENTICATED_DEADLINE);
                crate::listener::serve_connection(tls, app, peer, &accepted, deadline).await;
            }
        },
    );
    Ok((addr, task))
}
