//! The link to partners over HTTPS with mutual TLS: one HTTP client per partner, each
//! trusting only that partner's anchors for that partner's domain.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use mcx_core::ports::{LinkError, PartnerLink};
use mcx_model::api::Problem;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{SystemDomain, TransactionId};

use super::tls::{Identity, client_config};
use super::{ORIGIN_HEADER, PATH_PREFIX, PROTOCOL_HEADER, PROTOCOL_VERSION, TRANSACTION_HEADER};

struct PartnerClient {
    http: reqwest::Client,
    /// The partner's endpoints, tried in turn from the last one that answered.
    endpoints: Vec<String>,
    answered: std::sync::atomic::AtomicUsize,
}

/// Sends flows to partners.
pub struct HttpsPartnerLink {
    own: SystemDomain,
    partners: HashMap<SystemDomain, PartnerClient>,
}

impl HttpsPartnerLink {
    /// A link for `own`, to each partner `(domain, endpoints, anchors)`.
    pub fn new(
        own: SystemDomain,
        identity: &Identity,
        partners: Vec<(SystemDomain, Vec<String>, rustls::RootCertStore)>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut clients = HashMap::new();
        for (domain, endpoints, roots) in partners {
            let tls = client_config(identity, &domain, roots)?;
            let http = reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .connect_timeout(Duration::from_secs(5))
                .timeout(timeout)
                .build()
                .with_context(|| format!("building the HTTPS client for partner '{domain}'"))?;
            clients.insert(
                domain,
                PartnerClient {
                    http,
                    endpoints: endpoints
                        .iter()
                        .map(|e| e.trim_end_matches('/').to_string())
                        .collect(),
                    answered: std::sync::atomic::AtomicUsize::new(0),
                },
            );
        }
        Ok(Self {
            own,
            partners: clients,
        })
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait]
impl PartnerLink for HttpsPartnerLink {
    async fn send(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
        request: &PartnerRequest,
    ) -> Result<PartnerResponse, LinkError> {
        let refused = |message: String| LinkError::Refused {
            partner: partner.clone(),
            message,
        };
        let unreachable = |message: String| LinkError::Unreachable {
            partner: partner.clone(),
            message,
        };
        let client = self
            .partners
            .get(partner)
            .ok_or_else(|| refused("not a configured partner".into()))?;
        let body = request
            .body()
            .map_err(|e| refused(format!("cannot encode the flow: {e}")))?;
        // From the endpoint that last answered, each in turn until one answers. Sending
        // the same transaction to another of the partner's nodes is safe: receivers
        // answer a transaction once, whichever node it reaches.
        use std::sync::atomic::Ordering;
        let count = client.endpoints.len().max(1);
        let first = client.answered.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        let mut answer = None;
        for step in 0..count {
            let index = (first + step) % count;
            let Some(endpoint) = client.endpoints.get(index) else {
                break;
            };
            let url = format!("{endpoint}{PATH_PREFIX}{}", request.name());
            match client
                .http
                .post(&url)
                .header(ORIGIN_HEADER, self.own.as_str())
                .header(TRANSACTION_HEADER, transaction.to_string())
                .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
            {
                Ok(response) => {
                    if index != first {
                        tracing::info!(%partner, endpoint, "interconnection: partner answered at another endpoint");
                    }
                    client.answered.store(index, Ordering::Relaxed);
                    answer = Some(response);
                    break;
                }
                Err(e) => failures.push(format!("{endpoint}: {}", chain(&e))),
            }
        }
        let response = answer.ok_or_else(|| unreachable(failures.join("; ")))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| unreachable(chain(&e)))?;
        if status.is_success() {
            return PartnerResponse::decode_for(request, &bytes).map_err(|e| {
                refused(format!(
                    "its answer to '{}' is not valid: {e}",
                    request.name()
                ))
            });
        }
        let detail = serde_json::from_slice::<Problem>(&bytes)
            .map(|p| format!("{} ({}): {}", p.code, p.status, p.detail))
            .unwrap_or_else(|_| format!("status {status}"));
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(unreachable(detail))
        } else {
            Err(refused(detail))
        }
    }
}
