//! Mutual TLS between systems. Each system has one certificate naming its domain, used
//! both to serve its interconnection endpoint and to call partners. A partner is trusted
//! only with the certificate authorities configured for it, and only for its own domain.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use mcx_model::SystemDomain;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// This system's certificate chain and key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM certificate chain and PEM private key.
    pub fn load(certificate: &Path, private_key: &Path) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_file_iter(certificate)
            .with_context(|| format!("cannot read the certificate '{}'", certificate.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!("'{}' is not a PEM certificate chain", certificate.display())
            })?;
        if chain.is_empty() {
            bail!("'{}' holds no certificate", certificate.display());
        }
        let key = PrivateKeyDer::from_pem_file(private_key)
            .with_context(|| format!("cannot read the private key '{}'", private_key.display()))?;
        Ok(Self { chain, key })
    }
}

/// Reads a PEM file of trust anchors.
pub fn load_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read the trust anchors '{}'", path.display()))?
    {
        let cert =
            cert.with_context(|| format!("'{}' is not a PEM certificate file", path.display()))?;
        roots.add(cert).with_context(|| {
            format!(
                "'{}' holds a certificate that cannot be a trust anchor",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        bail!("'{}' holds no certificate", path.display());
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The interconnection endpoint's TLS configuration. A client certificate is asked for
/// and checked against every partner's anchors, but not required by TLS itself: a peer
/// without one gets an HTTP problem document saying so, which is clearer than an alert.
/// What the verifier refuses is recorded in `refusals`.
pub fn server_config(
    identity: &Identity,
    all_roots: RootCertStore,
    refusals: Arc<super::refusals::CertificateRefusals>,
) -> anyhow::Result<ServerConfig> {
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(all_roots), provider())
        .allow_unauthenticated()
        .build()
        .context("building the client certificate verifier")?;
    let verifier = Arc::new(super::refusals::RecordingVerifier { inner, refusals });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .context("the certificate and private key do not belong together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks a server certificate against one partner's anchors and for the partner's
/// domain, whatever host name or address its endpoint URL uses.
#[derive(Debug)]
struct PartnerServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
    /// Whether the refusal now going on was logged (once until the partner's
    /// certificate is accepted again, not once per retry of the outbox).
    warned: std::sync::atomic::AtomicBool,
}

impl ServerCertVerifier for PartnerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use std::sync::atomic::Ordering;
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &self.name,
            ocsp_response,
            now,
        );
        match &verified {
            Ok(_) => self.warned.store(false, Ordering::Relaxed),
            Err(error) if !self.warned.swap(true, Ordering::Relaxed) => {
                // The outbox only says the handshake failed; the operator needs to know
                // whose certificate it was and who issued it.
                let (subject, issuer, names) = super::refusals::describe(end_entity);
                let reason = match error {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                        "issued by an authority this system does not trust for this partner"
                            .to_string()
                    }
                    other => other.to_string(),
                };
                tracing::warn!(
                    partner = ?self.name, %subject, %issuer, names = ?names, %reason,
                    "interconnection: refused the certificate a partner's endpoint presented; flows to it wait in the outbox (logged once until it is accepted)"
                );
            }
            Err(_) => {}
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS configuration for calling one partner: our certificate as client
/// certificate; the partner's certificate checked against its anchors and its domain.
pub fn client_config(
    identity: &Identity,
    partner: &SystemDomain,
    roots: RootCertStore,
) -> anyhow::Result<ClientConfig> {
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .context("building the server certificate verifier")?;
    let name = ServerName::try_from(partner.to_string())
        .with_context(|| format!("'{partner}' cannot be a certificate name"))?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PartnerServerVerifier {
            inner,
            name,
            warned: std::sync::atomic::AtomicBool::new(false),
        }))
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .context("the certificate and private key do not belong together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks that a peer's certificate identifies the partner a flow claims to come from:
/// it chains to that partner's anchors and names that partner's domain.
pub struct PeerIdentities {
    verifiers: HashMap<SystemDomain, Arc<dyn ClientCertVerifier>>,
}

impl PeerIdentities {
    /// A checker for these partners and their anchors.
    pub fn new(partners: Vec<(SystemDomain, RootCertStore)>) -> anyhow::Result<Self> {
        let mut verifiers = HashMap::new();
        for (domain, roots) in partners {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .with_context(|| {
                    format!("building the certificate verifier of partner '{domain}'")
                })?;
            verifiers.insert(domain, verifier);
        }
        Ok(Self { verifiers })
    }

    /// `Ok` if `chain` is a valid certificate of partner `claimed`; else why not.
    pub fn check(
        &self,
        claimed: &SystemDomain,
        chain: &[CertificateDer<'static>],
    ) -> Result<(), String> {
        let verifier = self
            .verifiers
            .get(claimed)
            .ok_or_else(|| format!("'{claimed}' is not a partner of this system"))?;
        let (end_entity, intermediates) = chain
            .split_first()
            .ok_or_else(|| "no client certificate was presented".to_string())?;
        verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map_err(|e| {
                format!("the certificate is not one of '{claimed}''s certificate authorities: {e}")
            })?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| format!("the certificate cannot be read: {e}"))?;
        let name = ServerName::try_from(claimed.as_str())
            .map_err(|_| format!("'{claimed}' cannot be a certificate name"))?;
        cert.verify_is_valid_for_subject_name(&name).map_err(|_| {
            format!("the certificate does not name '{claimed}': it belongs to another system")
        })
    }
}
