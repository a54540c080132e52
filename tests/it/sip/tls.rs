//! SIP over TLS (issue 15 item 1): the listener serves the system's certificate; a
//! client that checks it against the CA affiliates by PUBLISH over the TLS connection,
//! and the answer comes back on it.

use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_server::config::{Config, SipSection};
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::held;
use crate::support::*;

#[tokio::test]
async fn a_client_affiliates_over_tls_with_the_systems_certificate() {
    let pki = tempfile::tempdir().unwrap();
    mcx_server::pki::init(pki.path(), "test CA").unwrap();
    let domain = mcx_model::SystemDomain::parse("police.example").unwrap();
    let files = mcx_server::pki::issue(pki.path(), &domain).unwrap();
    let mut config = Config::example();
    let mut sip = SipSection::listening("127.0.0.1:0".parse().unwrap());
    sip.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    sip.certificate = Some(files.certificate);
    sip.private_key = Some(files.private_key);
    config.sip = Some(sip);
    config.check().expect("a valid configuration");
    let system = TestSystem::start(config).await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let tls_addr = system.node().sip_tls_addr().expect("listens for TLS");

    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls_pki_types::CertificateDer::pem_file_iter(pki.path().join(mcx_server::pki::CA_CERT))
            .unwrap()
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    // The listener may take a moment to bind after start.
    let mut tcp = None;
    for _ in 0..50 {
        match tokio::net::TcpStream::connect(tls_addr).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let tcp = tcp.expect("the TLS listener accepts");
    let local = tcp.local_addr().unwrap();
    let name = rustls_pki_types::ServerName::try_from("police.example").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("the certificate checks out");

    let info = format!(
        r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>{token}</mcpttString></mcptt-access-token></mcptt-Params></mcpttinfo>"#
    );
    let pidf = format!(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:3gpp:ns:mcpttPresInfo:1.0" entity="{BOB}"><tuple id="phone"><status><p:affiliation group="{OPS}"/></status></tuple></presence>"#
    );
    let body = format!(
        "--b1\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n{info}\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n{pidf}\r\n--b1--\r\n"
    );
    let publish = format!(
        "PUBLISH sips:mcptt-psi@police.example SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK-tls1\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag=tls1\r\nTo: <{BOB}>\r\nCall-ID: tls1\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 4294967295\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(publish.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    assert_eq!(
        held(&bob).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )]
    );
}
