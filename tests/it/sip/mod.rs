//! The SIP door (TS 24.379 §9): sipp, a real SIP peer, affiliates a client by PUBLISH
//! over UDP and TCP against a real server; the JSON API shows the same state after each
//! scenario.

use mcx_model::McService;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_server::config::{Config, SipSection};

use crate::support::*;

mod bad_input;
mod callers;
mod documents;
mod regroup;
mod restart;
mod status;
mod tls;

async fn with_sip() -> TestSystem {
    let mut config = Config::example();
    config.sip = Some(SipSection::listening("127.0.0.1:0".parse().unwrap()));
    TestSystem::start(config).await
}

/// Runs one sipp scenario against `sip`.
fn scenario_at(sip: std::net::SocketAddr, transport: &str, file: &str, keys: &[(&str, &str)]) {
    let (child, dir) = start_scenario_at(sip, transport, file, keys);
    finish_scenario(child, dir, transport, file);
}

/// Runs one sipp scenario of `tests/sipp/` to completion; panics with sipp's errors if
/// any step failed.
fn scenario(system: &TestSystem, transport: &str, file: &str, keys: &[(&str, &str)]) {
    let (child, dir) = start_scenario(system, transport, file, keys);
    finish_scenario(child, dir, transport, file);
}

/// Starts a sipp scenario in the background (one call, a 20 s limit).
fn start_scenario(
    system: &TestSystem,
    transport: &str,
    file: &str,
    keys: &[(&str, &str)],
) -> (std::process::Child, tempfile::TempDir) {
    let sip = system
        .node()
        .sip_addr()
        .expect("the system listens for SIP");
    start_scenario_at(sip, transport, file, keys)
}

/// Starts a sipp scenario against `sip` in the background.
fn start_scenario_at(
    sip: std::net::SocketAddr,
    transport: &str,
    file: &str,
    keys: &[(&str, &str)],
) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a directory for sipp's files");
    let local_port = crate::federation::free_ports(1).to_string();
    let mut command = std::process::Command::new(sipp());
    command
        .current_dir(dir.path())
        .arg("-sf")
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/sipp")
                .join(file),
        )
        .arg(sip.to_string())
        .args(["-i", "127.0.0.1", "-p", &local_port, "-t", transport])
        .args([
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20s",
            "-timeout_error",
            "-trace_err",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in keys {
        command.args(["-key", key, value]);
    }
    (command.spawn().expect("sipp runs"), dir)
}

/// Waits for a sipp scenario; panics with sipp's errors if any step failed.
fn finish_scenario(
    child: std::process::Child,
    dir: tempfile::TempDir,
    transport: &str,
    file: &str,
) {
    let out = child.wait_with_output().expect("sipp ends");
    let errors = std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        out.status.success(),
        "sipp {file} over {transport} failed ({:?}):\n{}\n{}\n{errors}",
        out.status.code(),
        {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let lines: Vec<&str> = stdout.lines().collect();
            lines[lines.len().saturating_sub(12)..].join("\n")
        },
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn held(bob: &mcx_client::Client) -> Vec<(String, Vec<String>, AffiliationStatus)> {
    bob.affiliations()
        .await
        .unwrap()
        .affiliations
        .into_iter()
        .filter(|a| a.mc_service == McService::Mcptt)
        .map(|a| {
            (
                a.mc_service_group_id.to_string(),
                a.clients.iter().map(|c| c.to_string()).collect(),
                a.status,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_affiliates_by_publish_and_de_affiliates_by_omission_over_udp_and_tcp() {
    let system = with_sip().await;
    for (transport, client) in [("u1", "phone"), ("t1", "radio")] {
        let bob = system.log_on_as(BOB, client).await;
        let token = bob.token().unwrap().to_string();
        let keys = [
            ("token", token.as_str()),
            ("user", BOB),
            ("client", client),
            ("group", OPS),
        ];
        tokio::task::block_in_place(|| {
            scenario(&system, transport, "publish_affiliate.xml", &keys)
        });
        assert_eq!(
            held(&bob).await,
            [(
                OPS.to_string(),
                vec![client.to_string()],
                AffiliationStatus::Affiliated
            )],
            "{transport}: the JSON API shows the PUBLISH's affiliation"
        );
        tokio::task::block_in_place(|| scenario(&system, transport, "publish_none.xml", &keys));
        assert!(
            held(&bob).await.is_empty(),
            "{transport}: a group left out of the complete set is de-affiliated"
        );
    }
}

/// A PUBLISH as raw text, with `event`, `expires` and a two-part body.
fn raw_publish(
    sip: std::net::SocketAddr,
    local: std::net::SocketAddr,
    call: &str,
    event: &str,
    expires: &str,
    token: &str,
    boundary_ok: bool,
) -> String {
    let info = format!(
        r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>{token}</mcpttString></mcptt-access-token></mcptt-Params></mcpttinfo>"#
    );
    let pidf = format!(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:3gpp:ns:mcpttPresInfo:1.0" entity="{BOB}"><tuple id="phone"><status><p:affiliation group="{OPS}"/></status></tuple></presence>"#
    );
    let closing = if boundary_ok { "--b1--" } else { "--b2--" };
    let body = format!(
        "--b1\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n{info}\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n{pidf}\r\n{closing}\r\n"
    );
    format!(
        "PUBLISH sip:mcptt-psi@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag={call}\r\nTo: <{BOB}>\r\nCall-ID: {call}\r\nCSeq: 1 PUBLISH\r\nEvent: {event}\r\nExpires: {expires}\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `text` with its Content-Length set to its body's length (after an edit of the body).
fn with_length(text: &str) -> String {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| {
            if line.starts_with("Content-Length:") {
                format!("Content-Length: {}", body.len())
            } else {
                line.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n"))
}

#[tokio::test]
async fn bad_publications_get_a_4xx_that_says_why_and_change_nothing() {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let ask = |text: String| {
        let socket = &socket;
        async move {
            socket.send_to(text.as_bytes(), sip).await.unwrap();
            let mut buffer = vec![0u8; 8192];
            let (n, _) = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                socket.recv_from(&mut buffer),
            )
            .await
            .expect("an answer within 5 s")
            .unwrap();
            String::from_utf8_lossy(&buffer[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        }
    };
    let cases = [
        (
            "c1",
            "presence",
            "4294967295",
            "not-a-token",
            true,
            "SIP/2.0 403 Forbidden: the access token is not a valid session",
        ),
        (
            "c2",
            "presence",
            "4294967295",
            token.as_str(),
            false,
            "SIP/2.0 400 Bad Request",
        ),
        (
            "c3",
            "dialog",
            "4294967295",
            token.as_str(),
            true,
            "SIP/2.0 489 Bad Event",
        ),
        (
            "c4",
            "presence",
            "3600",
            token.as_str(),
            true,
            "SIP/2.0 423 Interval Too Brief",
        ),
    ];
    for (call, event, expires, token, boundary_ok, expected) in cases {
        let status = ask(raw_publish(
            sip,
            local,
            call,
            event,
            expires,
            token,
            boundary_ok,
        ))
        .await;
        assert!(status.starts_with(expected), "{call}: {status}");
    }
    // A SIP-If-Match no publication has: 412 (RFC 3903 §6).
    let unknown_tag = raw_publish(sip, local, "c6", "presence", "4294967295", &token, true)
        .replace(
            "Expires: 4294967295\r\n",
            "Expires: 4294967295\r\nSIP-If-Match: 0123456789abcdef0123456789abcdef\r\n",
        );
    let status = ask(unknown_tag).await;
    assert!(
        status.starts_with(
            "SIP/2.0 412 Conditional Request Failed: no publication has that SIP-If-Match entity tag"
        ),
        "c6: {status}"
    );
    // A body of another type, or a multipart without the pidf: 415 (RFC 3261 §21.4.13).
    let pidf_alone = raw_publish(sip, local, "c7", "presence", "4294967295", &token, true).replace(
        "Content-Type: multipart/mixed;boundary=b1",
        "Content-Type: application/pidf+xml",
    );
    let status = ask(pidf_alone).await;
    assert!(
        status.starts_with(
            "SIP/2.0 415 Unsupported Media Type: the body is application/pidf+xml; an affiliation PUBLISH carries"
        ),
        "c7: {status}"
    );
    let no_pidf = with_length(
        &raw_publish(sip, local, "c8", "presence", "4294967295", &token, true).replace(
            "Content-Type: application/pidf+xml",
            "Content-Type: text/plain",
        ),
    );
    let status = ask(no_pidf).await;
    assert!(
        status.starts_with("SIP/2.0 415 Unsupported Media Type: an affiliation PUBLISH carries"),
        "c8: {status}"
    );
    // Garbage and an unknown method: dropped (RFC 3261 §18.3 for what does not parse),
    // and the server still answers the next request.
    socket
        .send_to(b"\x00\x01 not SIP at all", sip)
        .await
        .unwrap();
    socket
        .send_to(
            format!("FOO sip:x@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-x\r\n\r\n")
                .as_bytes(),
            sip,
        )
        .await
        .unwrap();
    let status = ask(raw_publish(
        sip, local, "c5", "presence", "3600", &token, true,
    ))
    .await;
    assert!(status.starts_with("SIP/2.0 423"), "after garbage: {status}");
    assert!(
        bob.affiliations().await.unwrap().affiliations.is_empty(),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_subscription_hears_the_state_at_once_and_after_a_change_made_elsewhere() {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let keys = [("token", token.as_str()), ("user", BOB), ("group", OPS)];
    let (child, dir) = start_scenario(&system, "u1", "subscribe_status.xml", &keys);
    // The change is made through the JSON API, while sipp waits for its NOTIFY.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    bob.affiliate(McService::Mcptt, &[gid(OPS)]).await.unwrap();
    tokio::task::block_in_place(|| finish_scenario(child, dir, "u1", "subscribe_status.xml"));
    // The NOTIFY said affiliated; so does the JSON API, and ending the subscription
    // changed no affiliation.
    assert_eq!(
        held(&bob).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_subscription_hears_each_new_etag_whichever_door_changed_the_group() {
    let system = with_sip().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let document = "org.openmobilealliance.groups/global/byGroupID/sip%3Aops%40police.example";
    let keys = [
        ("token", token.as_str()),
        ("user", BOB),
        ("document", document),
    ];
    let (child, dir) = start_scenario(&system, "u1", "subscribe_documents.xml", &keys);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Changed over XCAP ...
    let url = format!("{}/xcap-root/{document}", system.url());
    let http = reqwest::Client::new();
    let xml = http
        .get(&url)
        .bearer_auth(alice.token().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let put = http
        .put(&url)
        .bearer_auth(alice.token().unwrap())
        .header("content-type", "application/vnd.oma.poc.groups+xml")
        .header("if-match", "\"1\"")
        .body(xml.replace(">Operations<", ">Operations centre<"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // ... then, once that NOTIFY had time to go, through the JSON API.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut changed = alice.group(&gid(OPS)).await.unwrap().configuration;
    changed.on_network_group_priority = Some(9);
    alice
        .update_group(&gid(OPS), &changed, mcx_client::IfMatch::Version(2))
        .await
        .unwrap();
    tokio::task::block_in_place(|| finish_scenario(child, dir, "u1", "subscribe_documents.xml"));
    // The third NOTIFY's entity tag is the version the JSON API shows, with both changes.
    let now = bob.group(&gid(OPS)).await.unwrap();
    assert_eq!(now.etag(), "\"3\"", "{now:?}");
    assert_eq!(now.configuration.display_name, "Operations centre");
    assert_eq!(now.configuration.on_network_group_priority, Some(9));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_naming_a_partner_group_affiliates_through_the_group_s_host() {
    use crate::federation::*;
    let (federation, frank, bob) = police_bob_with_fires_harbour().await;
    let token = bob.token().unwrap().to_string();
    let keys = [
        ("token", token.as_str()),
        ("user", BOB),
        ("client", "phone"),
        ("group", HARBOUR),
    ];
    let sip = federation
        .node(POLICE)
        .sip_addr()
        .expect("police listens for SIP");
    tokio::task::block_in_place(|| scenario_at(sip, "u1", "publish_affiliate.xml", &keys));
    // The serving system asked the host: the affiliation is confirmed there, and both
    // sides agree.
    eventually(
        "bob is affiliated to harbour, confirmed by fire",
        || async {
            (held(&bob).await
                == [(
                    HARBOUR.to_string(),
                    vec!["phone".to_string()],
                    AffiliationStatus::Affiliated,
                )])
            .then_some(())
        },
    )
    .await;
    eventually("fire's GMS lists bob", || async {
        frank
            .group_affiliations(&gid(HARBOUR))
            .await
            .ok()?
            .members
            .iter()
            .any(|m| m.mc_service_id == id(BOB))
            .then_some(())
    })
    .await;
}

/// Police, where Bob is served, and fire, which defines `sip:harbour@fire.example` with
/// Bob as a member; returned once police holds fire's group, with Frank (fire's
/// administrator) and Bob (phone) logged on.
pub(super) async fn police_bob_with_fires_harbour() -> (
    crate::federation::Federation,
    mcx_client::Client,
    mcx_client::Client,
) {
    use crate::federation::*;
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![user(BOB, false, &[HARBOUR])],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![user(FRANK, true, &[])],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start_all().await;
    let frank = federation.log_on(FRANK, "console").await;
    frank
        .create_group(
            &gid(HARBOUR),
            &mcx_model::group::GroupConfiguration::new(
                "Harbour",
                [id(FRANK), id(BOB)],
                mcx_model::NonEmpty::new(vec![McService::Mcptt]).unwrap(),
            ),
        )
        .await
        .unwrap();
    let bob = federation.log_on(BOB, "phone").await;
    eventually("police holds fire's harbour group", || async {
        bob.group(&gid(HARBOUR)).await.ok().map(|_| ())
    })
    .await;
    (federation, frank, bob)
}

/// The systems and users of [`police_bob_with_fires_harbour`].
pub(super) const POLICE: &str = "police.example";
pub(super) const FIRE: &str = "fire.example";
pub(super) const FRANK: &str = "sip:frank@fire.example";
pub(super) const HARBOUR: &str = "sip:harbour@fire.example";
