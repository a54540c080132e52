//! Client certificates the interconnection endpoint refused in the TLS handshake. A peer
//! whose certificate comes from an authority this system does not trust sees only a
//! failed handshake; the operator here must see who it was: each refusal is logged at
//! WARN once per peer address (with the certificate's subject, issuer and names) and the
//! latest per address is shown in the interconnection status of the groups it concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mcx_model::SystemDomain;
use mcx_model::api::CertificateRefusal;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

/// Addresses kept at most (one refusal each), so a scan of many addresses cannot grow
/// memory without bound; the oldest goes first.
const KEPT: usize = 256;

tokio::task_local! {
    /// The address of the connection whose handshake runs (set around `accept`), so the
    /// verifier, which rustls calls without it, can name the peer.
    pub(crate) static PEER: SocketAddr;
}

/// The refusals seen, by peer address.
pub struct CertificateRefusals {
    partners: BTreeSet<String>,
    kept: Mutex<BTreeMap<IpAddr, CertificateRefusal>>,
}

impl CertificateRefusals {
    /// Refusals of an endpoint serving these partners.
    pub fn new(partners: impl IntoIterator<Item = SystemDomain>) -> Self {
        Self {
            partners: partners.into_iter().map(|d| d.to_string()).collect(),
            kept: Mutex::new(BTreeMap::new()),
        }
    }

    /// The refusals that concern a group shared with `involved`: certificates naming one
    /// of them, or naming no partner of this system at all.
    pub fn concerning(&self, involved: &BTreeSet<String>) -> Vec<CertificateRefusal> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<CertificateRefusal> = kept
            .values()
            .filter(|r| {
                r.names.iter().any(|n| involved.contains(n))
                    || !r.names.iter().any(|n| self.partners.contains(n))
            })
            .cloned()
            .collect();
        list.sort_by_key(|r| std::cmp::Reverse(r.at));
        list
    }

    /// Keeps the refusal; true the first time this address is refused (it is logged).
    fn record(
        &self,
        peer: Option<SocketAddr>,
        end_entity: &CertificateDer<'_>,
        error: &rustls::Error,
    ) -> bool {
        let (subject, issuer, names) = describe(end_entity);
        let peer_address = peer
            .map(|p| p.ip().to_string())
            .unwrap_or_else(|| "?".into());
        let reason = match error {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                "issued by an authority this system does not trust for any partner".to_string()
            }
            other => other.to_string(),
        };
        let refusal = CertificateRefusal {
            peer_address: peer_address.clone(),
            names: names.clone(),
            subject: subject.clone(),
            issuer: issuer.clone(),
            reason: reason.clone(),
            at: time::OffsetDateTime::now_utc(),
        };
        let Some(ip) = peer.map(|p| p.ip()) else {
            tracing::warn!(%subject, %issuer, names = ?names, %reason, "interconnection: refused a partner certificate");
            return true;
        };
        let first = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let first = kept.insert(ip, refusal).is_none();
            if kept.len() > KEPT
                && let Some(oldest) = kept.iter().min_by_key(|(_, r)| r.at).map(|(ip, _)| *ip)
            {
                kept.remove(&oldest);
            }
            first
        };
        if first {
            tracing::warn!(
                peer = %peer_address, %subject, %issuer, names = ?names, %reason,
                "interconnection: refused the certificate a peer presented; its flows cannot arrive (logged once per address)"
            );
        } else {
            tracing::debug!(peer = %peer_address, %subject, %issuer, %reason, "interconnection: refused a certificate again");
        }
        first
    }
}

/// Subject, issuer and DNS names of a certificate, for people; what cannot be read is
/// said so rather than failing the refusal's record.
pub(crate) fn describe(der: &CertificateDer<'_>) -> (String, String, Vec<String>) {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            let names = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|n| match n {
                            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            (cert.subject().to_string(), cert.issuer().to_string(), names)
        }
        Err(_) => (
            "(unreadable certificate)".into(),
            "(unreadable certificate)".into(),
            Vec::new(),
        ),
    }
}

/// Verifies as `inner` does and records what it refuses.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) refusals: Arc<CertificateRefusals>,
}

impl std::fmt::Debug for CertificateRefusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRefusals")
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| {
                self.refusals
                    .record(PEER.try_with(|p| *p).ok(), end_entity, e);
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(name: &str) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn domain(d: &str) -> SystemDomain {
        SystemDomain::parse(d).unwrap()
    }

    #[test]
    fn a_refused_address_is_reported_once_and_shown_for_the_groups_it_concerns() {
        let refusals = CertificateRefusals::new([domain("police.example"), domain("fire.example")]);
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let police = certificate("police.example");
        let from = |port| Some(SocketAddr::from(([192, 0, 2, 7], port)));
        assert!(
            refusals.record(from(40000), &police, &unknown),
            "logged the first time"
        );
        assert!(
            !refusals.record(from(40001), &police, &unknown),
            "not again for the address"
        );

        let shared_with_police = BTreeSet::from(["police.example".to_string()]);
        let shown = refusals.concerning(&shared_with_police);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].peer_address, "192.0.2.7");
        assert_eq!(shown[0].names, ["police.example"]);
        assert!(
            shown[0].subject.contains("police.example"),
            "{:?}",
            shown[0]
        );
        assert!(shown[0].reason.contains("does not trust"), "{:?}", shown[0]);
        let shared_with_fire = BTreeSet::from(["fire.example".to_string()]);
        assert!(refusals.concerning(&shared_with_fire).is_empty());

        // A certificate naming no partner concerns every group.
        let stranger = certificate("stranger.example");
        let other = Some(SocketAddr::from(([192, 0, 2, 8], 1)));
        assert!(refusals.record(other, &stranger, &unknown));
        assert_eq!(refusals.concerning(&shared_with_fire).len(), 1);
    }

    #[test]
    fn what_is_kept_stays_bounded() {
        let refusals = CertificateRefusals::new([domain("police.example")]);
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let cert = certificate("police.example");
        for i in 0..(KEPT as u32 + 50) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            refusals.record(Some(SocketAddr::from((ip, 1))), &cert, &unknown);
        }
        let all = BTreeSet::from(["police.example".to_string()]);
        assert_eq!(refusals.concerning(&all).len(), KEPT);
    }
}
