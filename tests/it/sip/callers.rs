//! Who is asking over SIP (issue 15 items 2, 3, 5): the access token, or
//! `P-Asserted-Identity` from a trusted proxy only; the PSI; per-group refusals in the
//! answer's `Warning`s and in the status NOTIFY with the PUBLISH's `p-id`; remote change
//! by PUBLISH. Raw SIP over UDP from chosen loopback addresses (127.0.0.2 is another
//! host as far as the server can tell), and sipp for N2.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mcx_model::McService;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_server::config::{Config, SipSection};

use super::{held, scenario};
use crate::support::*;

/// A SIP peer on a raw UDP socket.
pub(super) struct Peer {
    socket: tokio::net::UdpSocket,
    server: SocketAddr,
}

/// A message as received: its first line, its header lines and its body.
#[derive(Debug)]
pub(super) struct Message {
    pub(super) first: String,
    headers: Vec<String>,
    pub(super) body: String,
}

impl Message {
    pub(super) fn header(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers
            .iter()
            .filter(|h| h.to_ascii_lowercase().starts_with(&prefix))
            .map(|h| h[prefix.len()..].trim())
            .collect()
    }
}

impl Peer {
    pub(super) async fn at(ip: &str, server: SocketAddr) -> Self {
        let socket = tokio::net::UdpSocket::bind((ip.parse::<IpAddr>().unwrap(), 0))
            .await
            .unwrap();
        Self { socket, server }
    }

    pub(super) fn server(&self) -> SocketAddr {
        self.server
    }

    pub(super) fn local(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    pub(super) async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.server)
            .await
            .unwrap();
    }

    pub(super) async fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).await.unwrap();
    }

    /// The next message, however long it takes.
    pub(super) async fn next_message(&self) -> Message {
        loop {
            let mut buffer = vec![0u8; 65_536];
            let Ok((n, _)) = self.socket.recv_from(&mut buffer).await else {
                continue;
            };
            return parse(&buffer[..n]);
        }
    }

    async fn next(&self) -> Message {
        let mut buffer = vec![0u8; 65_536];
        let (n, _) =
            tokio::time::timeout(Duration::from_secs(10), self.socket.recv_from(&mut buffer))
                .await
                .expect("a message within 10 s")
                .unwrap();
        parse(&buffer[..n])
    }

    /// The next response, answering any NOTIFY on the way (kept in `notifies`).
    pub(super) async fn response(&self, notifies: &mut Vec<Message>) -> Message {
        loop {
            let message = self.next().await;
            if message.first.starts_with("SIP/2.0") {
                return message;
            }
            self.answer(&message).await;
            notifies.push(message);
        }
    }

    /// The next NOTIFY, answered with 200 (responses on the way are dropped).
    pub(super) async fn notify(&self) -> Message {
        self.request("NOTIFY").await
    }

    /// The next request of `method`, answered with 200 (other requests are answered,
    /// responses dropped).
    pub(super) async fn request(&self, method: &str) -> Message {
        loop {
            let message = self.next().await;
            if message.first.starts_with("SIP/2.0") {
                continue;
            }
            self.answer(&message).await;
            if message.first.starts_with(method) {
                return message;
            }
        }
    }

    async fn answer(&self, request: &Message) {
        let copy = |name: &str| {
            request
                .header(name)
                .into_iter()
                .map(|v| format!("{name}: {v}\r\n"))
                .collect::<String>()
        };
        let text = format!(
            "SIP/2.0 200 OK\r\n{}{}{}{}{}Content-Length: 0\r\n\r\n",
            copy("Via"),
            copy("From"),
            copy("To"),
            copy("Call-ID"),
            copy("CSeq")
        );
        self.send(&text).await;
    }
}

fn parse(bytes: &[u8]) -> Message {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    Message {
        first: lines.next().unwrap_or_default().to_string(),
        headers: lines.map(str::to_string).collect(),
        body: body.to_string(),
    }
}

/// An affiliation PUBLISH (TS 24.379 §9.2.1.2) to `request_uri`: `whose` affiliations,
/// for `client`, the complete set `groups`; `token` in the mcptt-info when given;
/// `extra` header lines.
#[allow(clippy::too_many_arguments)]
fn publish(
    peer: &Peer,
    request_uri: &str,
    call: &str,
    token: Option<&str>,
    whose: &str,
    client: &str,
    groups: &[&str],
    extra: &str,
) -> String {
    let token = token
        .map(|t| format!(r#"<mcptt-access-token type="Normal"><mcpttString>{t}</mcpttString></mcptt-access-token>"#))
        .unwrap_or_default();
    let info = format!(
        r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>{token}<mcptt-request-uri type="Normal"><mcpttURI>{whose}</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>"#
    );
    let affiliations: String = groups
        .iter()
        .map(|g| format!(r#"<p:affiliation group="{g}"/>"#))
        .collect();
    let pidf = format!(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:3gpp:ns:mcpttPresInfo:1.0" entity="{whose}"><tuple id="{client}"><status>{affiliations}</status></tuple><p:p-id>{call}</p:p-id></presence>"#
    );
    let body = format!(
        "--b1\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n{info}\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n{pidf}\r\n--b1--\r\n"
    );
    let local = peer.local();
    format!(
        "PUBLISH {request_uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <{whose}>;tag={call}\r\nTo: <{whose}>\r\nCall-ID: {call}\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 4294967295\r\n{extra}Content-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A SUBSCRIBE to Bob's own affiliation status with `token` (TS 24.379 §9.2.1.3), its
/// Call-ID and From tag `call`.
pub(super) fn subscribe_status(peer: &Peer, call: &str, token: &str) -> String {
    subscribe_status_of(peer, call, token, BOB, None)
}

/// A SUBSCRIBE by `subscriber` (with `token`) to the affiliation status of `whose`
/// (named in `<mcptt-request-uri>`; none: the subscriber's own).
pub(super) fn subscribe_status_of(
    peer: &Peer,
    call: &str,
    token: &str,
    subscriber: &str,
    whose: Option<&str>,
) -> String {
    let local = peer.local();
    let sip = peer.server;
    let target = whose
        .map(|w| {
            format!(
                r#"<mcptt-request-uri type="Normal"><mcpttURI>{w}</mcpttURI></mcptt-request-uri>"#
            )
        })
        .unwrap_or_default();
    let info = format!(
        r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>{token}</mcpttString></mcptt-access-token>{target}</mcptt-Params></mcpttinfo>"#
    );
    format!(
        "SUBSCRIBE sip:mcptt-psi@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <{subscriber}>;tag={call}\r\nTo: <{subscriber}>\r\nCall-ID: {call}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:watcher@{local}>\r\nEvent: presence\r\nExpires: 600\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\nContent-Length: {}\r\n\r\n{info}",
        info.len()
    )
}

/// A PUBLISH of `groups` for Bob's phone with `token`, to the PSI.
pub(super) fn publish_text(peer: &Peer, call: &str, token: &str, groups: &[&str]) -> String {
    publish(
        peer,
        &psi(peer),
        call,
        Some(token),
        BOB,
        "phone",
        groups,
        "",
    )
}

fn psi(peer: &Peer) -> String {
    format!("sip:mcptt-psi@{}", peer.server)
}

async fn with_proxy(trusted: &str) -> TestSystem {
    let mut config = Config::example();
    let mut sip = SipSection::listening("127.0.0.1:0".parse().unwrap());
    sip.trusted_proxies = vec![trusted.parse().unwrap()];
    config.sip = Some(sip);
    TestSystem::start(config).await
}

#[tokio::test]
async fn a_trusted_proxy_asserts_the_user_and_no_one_else_may() {
    let system = with_proxy("127.0.0.1").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let sip = system.node().sip_addr().unwrap();
    let asserted = format!("P-Asserted-Identity: \"Bob\" <{BOB}>\r\n");
    let mut notifies = Vec::new();

    // From an address that is not a trusted proxy, the assertion is not believed.
    let stranger = Peer::at("127.0.0.2", sip).await;
    stranger
        .send(&publish(
            &stranger,
            &psi(&stranger),
            "a1",
            None,
            BOB,
            "phone",
            &[OPS],
            &asserted,
        ))
        .await;
    let answer = stranger.response(&mut notifies).await;
    assert!(
        answer.first.starts_with("SIP/2.0 403 Forbidden: no mcptt-access-token, and P-Asserted-Identity is believed only from a trusted proxy (127.0.0.2 is not one)"),
        "{answer:?}"
    );
    // Nor when its Via claims to be the proxy: the transport records where it came from.
    let forged = publish(
        &stranger,
        &psi(&stranger),
        "a2",
        None,
        BOB,
        "phone",
        &[OPS],
        &asserted,
    )
    .replace(&stranger.local().to_string(), "127.0.0.1:5060");
    stranger.send(&forged).await;
    let answer = stranger.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 403"), "{answer:?}");
    assert!(held(&bob).await.is_empty(), "refusals change nothing");

    // From the proxy: the asserted user's session from the tuple's client.
    let proxy = Peer::at("127.0.0.1", sip).await;
    proxy
        .send(&publish(
            &proxy,
            &psi(&proxy),
            "a3",
            None,
            BOB,
            "phone",
            &[OPS],
            &asserted,
        ))
        .await;
    let answer = proxy.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");
    assert_eq!(
        held(&bob).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )]
    );
    // A client the user is not logged on from is refused with the reason.
    proxy
        .send(&publish(
            &proxy,
            &psi(&proxy),
            "a4",
            None,
            BOB,
            "radio",
            &[OPS],
            &asserted,
        ))
        .await;
    let answer = proxy.response(&mut notifies).await;
    assert!(
        answer
            .first
            .contains("403 Forbidden: sip:bob@police.example is not logged on from client 'radio'"),
        "{answer:?}"
    );
    // The proxy asserting nothing, and no token: refused.
    proxy
        .send(&publish(
            &proxy,
            &psi(&proxy),
            "a5",
            None,
            BOB,
            "phone",
            &[],
            "",
        ))
        .await;
    let answer = proxy.response(&mut notifies).await;
    assert!(
        answer.first.starts_with("SIP/2.0 403 Forbidden: no mcptt-access-token in the mcptt-info body and no P-Asserted-Identity"),
        "{answer:?}"
    );
    assert_eq!(held(&bob).await.len(), 1, "still affiliated");
}

#[tokio::test]
async fn a_request_for_another_psi_is_not_found() {
    let system = with_proxy("127.0.0.1").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;
    let mut notifies = Vec::new();
    for (call, uri) in [
        ("p1", "sip:someone@police.example".to_string()),
        ("p2", "sip:mcptt-psi@fire.example".to_string()),
    ] {
        peer.send(&publish(
            &peer,
            &uri,
            call,
            Some(&token),
            BOB,
            "phone",
            &[OPS],
            "",
        ))
        .await;
        let answer = peer.response(&mut notifies).await;
        assert!(
            answer.first.starts_with(&format!(
                "SIP/2.0 404 Not Found: this request is served at sip:mcptt-psi@police.example, not at {uri}"
            )),
            "{answer:?}"
        );
    }
    // The PSI by its domain is served.
    peer.send(&publish(
        &peer,
        "sip:mcptt-psi@police.example",
        "p3",
        Some(&token),
        BOB,
        "phone",
        &[OPS],
        "",
    ))
    .await;
    assert!(
        peer.response(&mut notifies)
            .await
            .first
            .starts_with("SIP/2.0 200")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_n2_a_publish_is_answered_with_what_was_done_and_why_the_rest_was_not() {
    let mut config = Config::example();
    config.sip = Some(SipSection::listening("127.0.0.1:0".parse().unwrap()));
    let bob_profile = config
        .users
        .iter_mut()
        .find(|u| u.mc_service_id.as_str() == BOB)
        .unwrap();
    bob_profile
        .services
        .get_mut(&McService::Mcptt)
        .unwrap()
        .max_affiliations_n2 = 1;
    let system = TestSystem::start(config).await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();

    // The status subscription first: it hears the refusal and the PUBLISH's p-id.
    let watcher = Peer::at("127.0.0.1", sip).await;
    watcher
        .send(&subscribe_status(&watcher, "s1", &token))
        .await;
    let first = watcher.notify().await;
    assert!(!first.body.contains("mcx:refused"), "{first:?}");

    let publisher = Peer::at("127.0.0.1", sip).await;
    let mut notifies = Vec::new();
    publisher
        .send(&publish(
            &publisher,
            &psi(&publisher),
            "n2-77",
            Some(&token),
            BOB,
            "phone",
            &[OPS, PATROL],
            "",
        ))
        .await;
    let answer = publisher.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");
    assert_eq!(
        answer.header("Warning"),
        [format!(
            "399 police.example \"102 too many simultaneous affiliations: {PATROL}\""
        )],
        "{answer:?}"
    );
    let told = loop {
        let notify = watcher.notify().await;
        if notify.body.contains("mcx:refused") {
            break notify;
        }
    };
    assert!(
        told.body.contains(&format!(
            r#"<mcx:refused group="{PATROL}" cause="n2-limit-reached"/>"#
        )),
        "{}",
        told.body
    );
    assert!(
        told.body
            .contains(&format!(r#"group="{OPS}" status="affiliated" expires=""#)),
        "{}",
        told.body
    );
    assert!(
        told.body.contains("<mcpttPI10:p-id>n2-77</mcpttPI10:p-id>"),
        "{}",
        told.body
    );
    assert_eq!(
        held(&bob).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )],
        "the JSON API shows what the answer said"
    );

    // The same through sipp, a real SIP peer, from another client of Bob's.
    let radio = system.log_on_as(BOB, "radio").await;
    let radio_token = radio.token().unwrap().to_string();
    bob.deaffiliate(McService::Mcptt, &[gid(OPS)])
        .await
        .unwrap();
    let keys = [
        ("token", radio_token.as_str()),
        ("user", BOB),
        ("client", "radio"),
        ("group", OPS),
        ("group2", PATROL),
    ];
    tokio::task::block_in_place(|| scenario(&system, "u1", "publish_n2.xml", &keys));
    assert!(
        held(&radio).await.is_empty(),
        "Expires 0 removed the publication's group"
    );
}

#[tokio::test]
async fn an_authorised_user_changes_another_users_affiliations_by_publish() {
    let system = with_proxy("127.0.0.1").await;
    let alice = system.log_on_as(ALICE, "console").await;
    let carol = system.log_on_as(CAROL, "phone").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;
    let mut notifies = Vec::new();

    // Carol lacks the permission: refused, nothing changes.
    peer.send(&publish(
        &peer,
        &psi(&peer),
        "r1",
        carol.token(),
        BOB,
        "phone",
        &[OPS],
        "",
    ))
    .await;
    let answer = peer.response(&mut notifies).await;
    assert!(
        answer.first.starts_with(
            "SIP/2.0 403 sip:carol@police.example may not change other users' affiliations"
        ),
        "{answer:?}"
    );
    assert!(held(&bob).await.is_empty());

    // Alice, a dispatcher, makes Bob's set {ops} (mandatory mode).
    peer.send(&publish(
        &peer,
        &psi(&peer),
        "r2",
        alice.token(),
        BOB,
        "phone",
        &[OPS],
        "",
    ))
    .await;
    let answer = peer.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");
    assert_eq!(
        answer.header("Expires"),
        ["0"],
        "a remote change holds no publication"
    );
    assert_eq!(
        held(&bob).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )]
    );
    // Then {patrol}: ops is left out, so Bob leaves it.
    peer.send(&publish(
        &peer,
        &psi(&peer),
        "r3",
        alice.token(),
        BOB,
        "phone",
        &[PATROL],
        "",
    ))
    .await;
    assert!(
        peer.response(&mut notifies)
            .await
            .first
            .starts_with("SIP/2.0 200")
    );
    assert_eq!(
        held(&bob).await,
        [(
            PATROL.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )]
    );
    // A group Bob may not have: answered, with the refusal as a Warning.
    peer.send(&publish(
        &peer,
        &psi(&peer),
        "r4",
        alice.token(),
        BOB,
        "phone",
        &[PATROL, "sip:nosuch@police.example"],
        "",
    ))
    .await;
    let answer = peer.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");
    assert_eq!(answer.header("Warning").len(), 1, "{answer:?}");
    assert!(
        answer.header("Warning")[0].contains("sip:nosuch@police.example"),
        "{answer:?}"
    );
}
