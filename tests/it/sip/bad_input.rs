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
    answer_to_bytes(peer, text.as_bytes()).await
}

/// The first line of the answer to `bytes`, or `None` when nothing comes within 1 s.
async fn answer_to_bytes(peer: &Peer, bytes: &[u8]) -> Option<String> {
    peer.send_bytes(bytes).await;
    match tokio::time::timeout(Duration::from_secs(1), peer.next_message()).await {
        Ok(message) => Some(message.first),
        Err(_) => None,
    }
}

/// Where `needle` first is in `bytes`.
fn position(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the request has it")
}

#[tokio::test]
async fn bad_sip_is_refused_or_dropped_and_changes_nothing() {
    let (_running, bob, token, peer) = bob_and_a_peer().await;
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
    // Bytes that are not UTF-8 (RFC 3261 §7.3.1 asks for UTF-8 text). In the body: the
    // XML reader refuses it, saying so.
    let mut bad = super::with_length(&good.replace("good", "u1")).into_bytes();
    let at = position(&bad, b"<p:affiliation") + 3;
    bad[at] = 0xff;
    let answer = answer_to_bytes(&peer, &bad).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("SIP/2.0 400 Bad Request: the pidf body is not UTF-8")),
        "{answer:?}"
    );
    // In the request line: not a request rsipstack can read, dropped (§18.3).
    let mut bad = super::with_length(&good.replace("good", "u2")).into_bytes();
    let at = position(&bad, b"mcptt-psi") + 2;
    bad[at] = 0xff;
    assert_eq!(answer_to_bytes(&peer, &bad).await, None, "dropped");
    // In a header line: rsipstack 0.7.14 stops reading the headers at that line, so the
    // request is judged by those before it; here Event came after it, hence 489.
    let mut bad = super::with_length(&good.replace("good", "u3").replace(
        "CSeq: 1 PUBLISH\r\n",
        "CSeq: 1 PUBLISH\r\nSubject: caf?\r\n",
    ))
    .into_bytes();
    let at = position(&bad, b"caf?") + 3;
    bad[at] = 0xff;
    let answer = answer_to_bytes(&peer, &bad).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("SIP/2.0 489 Bad Event")),
        "{answer:?}"
    );
    assert!(alive(&peer, "alive-utf8").await);

    // Larger than mcx takes (8192 bytes): a datagram of 60 KB, cut there by the
    // transport, is refused as too large.
    let huge = good.replace("good", "b11").replace(
        "<p:p-id>",
        &format!("<p:x>{}</p:x><p:p-id>", "y".repeat(60_000)),
    );
    let huge = super::with_length(&huge);
    let answer = answer_to(&peer, &huge).await;
    assert!(
        answer.as_deref().is_some_and(|a| a.starts_with(
            "SIP/2.0 413 Request Entity Too Large: this server takes SIP requests of at most 8192 bytes"
        )),
        "{answer:?}"
    );
    assert!(alive(&peer, "alive-end").await);
    assert!(held(&bob).await.is_empty(), "nothing was affiliated");
}

#[tokio::test]
async fn a_flood_of_retransmissions_is_answered_from_the_transaction_and_done_once() {
    let (_running, bob, token, peer) = bob_and_a_peer().await;
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

#[tokio::test]
async fn over_tcp_a_request_larger_than_8192_bytes_is_refused_as_too_large() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();
    let mut stream = tokio::net::TcpStream::connect(sip).await.unwrap();
    let local = stream.local_addr().unwrap();
    // A PUBLISH of 20 KB: within what rsipstack reads over TCP, beyond mcx's limit.
    let peer = Peer::at("127.0.0.1", sip).await;
    let text = super::callers::publish_text(&peer, "tcp-big", &token, &[OPS])
        .replace(
            &format!("SIP/2.0/UDP {}", peer.local()),
            &format!("SIP/2.0/TCP {local}"),
        )
        .replace(
            "<p:p-id>",
            &format!("<p:x>{}</p:x><p:p-id>", "y".repeat(20_000)),
        );
    stream
        .write_all(super::with_length(&text).as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "the connection closed without an answer");
        answer.extend_from_slice(&buffer[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("SIP/2.0 413 Request Entity Too Large: this server takes SIP requests of at most 8192 bytes; this one has 2"),
        "{answer}"
    );
    assert!(held(&bob).await.is_empty(), "nothing was affiliated");
}

/// RFC 3261 §8.2.2.2: the same request (From tag, Call-ID, CSeq) on two branches, as a
/// forking proxy would pass it on twice, is done once; the copy gets 482.
#[tokio::test]
async fn a_request_merged_on_two_branches_is_done_once_and_the_copy_gets_482() {
    let (_running, bob, token, peer) = bob_and_a_peer().await;
    let first = super::callers::publish_text(&peer, "merged", &token, &[OPS]);
    let answer = answer_to(&peer, &first).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("SIP/2.0 200")),
        "{answer:?}"
    );
    let copy = first.replace("branch=z9hG4bK-merged", "branch=z9hG4bK-merged-2");
    let answer = answer_to(&peer, &copy).await;
    assert!(
        answer.as_deref().is_some_and(|a| a.starts_with(
            "SIP/2.0 482 Loop Detected: a request with this From tag, Call-ID and CSeq came on another branch"
        )),
        "{answer:?}"
    );
    // A retransmission on the first branch is still answered from its transaction.
    let answer = answer_to(&peer, &first).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("SIP/2.0 200")),
        "{answer:?}"
    );
    // The next request of the client (a new CSeq) is a request of its own.
    let next = first
        .replace("CSeq: 1 PUBLISH", "CSeq: 2 PUBLISH")
        .replace("branch=z9hG4bK-merged", "branch=z9hG4bK-merged-3")
        .replace(&format!("<p:affiliation group=\"{OPS}\"/>"), "");
    let answer = answer_to(&peer, &super::with_length(&next)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("SIP/2.0 200")),
        "{answer:?}"
    );
    assert!(
        held(&bob).await.is_empty(),
        "the second PUBLISH emptied the set"
    );
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

/// A system with SIP, Bob logged on from his phone (with his token), and a UDP peer of
/// its SIP door.
async fn bob_and_a_peer() -> (TestSystem, mcx_client::Client, String, Peer) {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;
    (system, bob, token, peer)
}
