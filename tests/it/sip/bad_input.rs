//! Bad SIP (issue 15 item 9): missing or contradictory headers, a wrong Content-Length,
//! an oversized message, non-UTF-8, a flood of retransmissions. Each gets a 4xx or is
//! dropped (RFC 3261 §18.3), changes nothing, and the server answers the next request.

use std::time::Duration;

use super::callers::Peer;
use super::{held, with_sip};
use crate::support::*;

/// A well-formed request the server answers (405: not a method it serves).
fn options(peer: &Peer, call: &str) -> String {
    let local = peer.local();
    format!(
        "OPTIONS sip:mcptt-psi@police.example SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag={call}\r\nTo: <sip:mcptt-psi@police.example>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Whether the server answers an OPTIONS (405) within 10 s; what the bad requests drew
/// and arrives first must be a 4xx.
async fn alive(peer: &Peer, call: &str) -> bool {
    peer.send(&options(peer, call)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(message) = tokio::time::timeout_at(deadline, peer.next_message()).await {
        if message.first.starts_with("SIP/2.0 405") {
            return true;
        }
        assert!(message.first.starts_with("SIP/2.0 4"), "{message:?}");
    }
    false
}

/// The first line of the answer to `text`, or `None` when nothing comes within 1 s.
async fn answer_to(peer: &Peer, text: &str) -> Option<String> {
    peer.send(text).await;
    match tokio::time::timeout(Duration::from_secs(1), peer.next_message()).await {
        Ok(message) => Some(message.first),
        Err(_) => None,
    }
}

#[tokio::test]
async fn bad_sip_is_refused_or_dropped_and_changes_nothing() {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;
    let good = super::callers::publish_text(&peer, "good", &token, &[OPS]);
    let without = |header: &str| {
        good.lines()
            .filter(|l| !l.starts_with(header))
            .collect::<Vec<_>>()
            .join("\n")
            .replace('\n', "\r\n")
    };
    let cases: Vec<(&str, String)> = vec![
        ("no Call-ID", without("Call-ID:").replace("good", "b1")),
        ("no Via", without("Via:").replace("good", "b2")),
        ("no CSeq", without("CSeq:").replace("good", "b3")),
        (
            "CSeq of another method",
            good.replace("CSeq: 1 PUBLISH", "CSeq: 1 INVITE")
                .replace("good", "b4"),
        ),
        (
            "Content-Length beyond the datagram",
            good.replace("Content-Length: ", "Content-Length: 9")
                .replace("good", "b5"),
        ),
        (
            "two Content-Lengths that disagree",
            good.replace("Content-Length: ", "Content-Length: 3\r\nContent-Length: ")
                .replace("good", "b6"),
        ),
        (
            "a broken multipart boundary",
            good.replace("--b1--", "--b9--").replace("good", "b7"),
        ),
        (
            "the pidf in another namespace",
            good.replace("urn:ietf:params:xml:ns:pidf", "urn:ietf:params:xml:ns:pidX")
                .replace("good", "b8"),
        ),
        (
            "a body that is not UTF-8",
            good.replace("<p:affiliation", "<p:affiliat\u{00ff}on")
                .replace("good", "b9"),
        ),
    ];
    for (what, text) in &cases {
        let answer = answer_to(&peer, text).await;
        if let Some(first) = &answer {
            assert!(
                first.starts_with("SIP/2.0 4"),
                "{what}: a 4xx or nothing, got {first}"
            );
        }
        assert!(
            alive(&peer, &format!("alive-{}", what.len())).await,
            "after {what}"
        );
    }
    // Non-UTF-8 bytes on the wire, and a datagram of 60 KB.
    let mut raw = good.replace("good", "b10").into_bytes();
    let at = raw.len() - 40;
    raw[at] = 0xff;
    peer.send_bytes(&raw).await;
    let huge = good.replace("good", "b11").replace(
        "<p:p-id>",
        &format!("<p:x>{}</p:x><p:p-id>", "y".repeat(60_000)),
    );
    let huge = huge.replacen(
        &format!(
            "Content-Length: {}",
            good.split("\r\n\r\n").nth(1).unwrap_or_default().len()
        ),
        &format!(
            "Content-Length: {}",
            huge.split("\r\n\r\n").nth(1).unwrap_or_default().len()
        ),
        1,
    );
    peer.send(&huge).await;
    assert!(alive(&peer, "alive-end").await);
    assert!(held(&bob).await.is_empty(), "nothing was affiliated");
}

#[tokio::test]
async fn a_flood_of_retransmissions_is_answered_from_the_transaction_and_done_once() {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;
    let publish = super::callers::publish_text(&peer, "flood", &token, &[OPS]);
    for _ in 0..500 {
        peer.send(&publish).await;
    }
    // Every answer names the same entity tag: one publication, made once.
    let mut etags = std::collections::BTreeSet::new();
    let mut answers = 0;
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(2), peer.next_message()).await
    {
        assert!(message.first.starts_with("SIP/2.0 200"), "{message:?}");
        etags.extend(message.header("SIP-ETag").into_iter().map(str::to_string));
        answers += 1;
    }
    assert!(answers >= 1, "answered");
    assert_eq!(etags.len(), 1, "one publication: {etags:?}");
    assert_eq!(held(&bob).await.len(), 1);
    assert!(alive(&peer, "after-flood").await);
}

#[tokio::test]
async fn over_tcp_a_message_that_does_not_parse_closes_only_its_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let system = with_sip().await;
    let sip = system.node().sip_addr().unwrap();
    let mut bad = tokio::net::TcpStream::connect(sip).await.unwrap();
    bad.write_all(b"PUBLISH sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\nshort")
        .await
        .unwrap();
    bad.write_all(&vec![b'z'; 200_000]).await.ok();
    let mut buffer = vec![0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), bad.read(&mut buffer)).await;
    // Another client is served.
    let peer = Peer::at("127.0.0.1", sip).await;
    assert!(alive(&peer, "tcp-alive").await);
}

/// SIP over TCP takes the UDP port. A TCP port held by another program is a start-up
/// error that names it, not a server that silently serves UDP only.
#[tokio::test]
async fn a_sip_port_taken_for_tcp_stops_the_start_with_a_sentence() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut config = mcx_server::config::Config::example();
    let dir = tempfile::tempdir().unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.path().join("data");
    config.interconnection = None;
    config.sip = Some(mcx_server::config::SipSection::listening(
        format!("127.0.0.1:{port}").parse().unwrap(),
    ));
    config.server.storage_url = crate::support::test_storage_url().await;
    let started = tokio::time::timeout(Duration::from_secs(30), mcx_server::start(config))
        .await
        .expect("the start ends");
    let error = match started {
        Ok(node) => {
            node.shutdown().await.unwrap();
            panic!("started while its SIP TCP port was taken");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains(&format!("cannot listen for SIP on tcp 127.0.0.1:{port}")),
        "{error}"
    );
    drop(held);
}
