//! A dialog survives a restart (issue 15 item 8): an affiliation publication and a
//! status subscription are stored; after `mcx` stops and starts again on the same data,
//! the publication refreshes with its entity tag, the subscriber hears the state in the
//! same dialog, and its in-dialog refresh and unsubscribe are answered as before.

use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_server::config::{Config, SipSection};

use super::callers::Peer;
use super::held;
use crate::support::*;

fn tag_of(header: &str) -> String {
    header
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn cseq_of(message: &super::callers::Message) -> u64 {
    message.header("CSeq")[0]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn publications_and_subscriptions_carry_on_after_a_restart() {
    let port = crate::federation::free_ports(1);
    let mut config = Config::example();
    config.sip = Some(SipSection::listening(
        format!("127.0.0.1:{port}").parse().unwrap(),
    ));
    let mut system = TestSystem::start(config).await;
    let bob = system.log_on_as(BOB, "phone").await;
    let token = bob.token().unwrap().to_string();
    let sip = system.node().sip_addr().unwrap();

    // The status subscription, then the publication.
    let watcher = Peer::at("127.0.0.1", sip).await;
    let local = watcher.local();
    watcher
        .send(&super::callers::subscribe_status(&watcher, "w1", &token))
        .await;
    let first = watcher.notify().await;
    let our_tag = tag_of(first.header("From")[0]);
    assert!(!our_tag.is_empty(), "{first:?}");

    let publisher = Peer::at("127.0.0.1", sip).await;
    let mut notifies = Vec::new();
    publisher
        .send(&super::callers::publish_text(
            &publisher,
            "pub-1",
            &token,
            &[OPS],
        ))
        .await;
    let answer = publisher.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");
    let etag = answer.header("SIP-ETag")[0].to_string();
    let before = loop {
        let notify = watcher.notify().await;
        if notify.body.contains("status=\"affiliated\"") {
            break notify;
        }
    };

    system.restart().await;
    assert_eq!(system.node().sip_addr(), Some(sip), "the same SIP address");

    // The subscriber hears the state in the same dialog, with a higher CSeq.
    let after = watcher.notify().await;
    assert_eq!(after.header("Call-ID"), ["w1"], "{after:?}");
    assert_eq!(tag_of(after.header("From")[0]), our_tag, "{after:?}");
    assert!(
        cseq_of(&after) > cseq_of(&before),
        "{before:?} then {after:?}"
    );
    assert!(
        after.header("Subscription-State")[0].starts_with("active"),
        "{after:?}"
    );
    assert!(
        after.body.contains("status=\"affiliated\""),
        "{}",
        after.body
    );

    // The publication refreshes by its entity tag.
    publisher
        .send(&format!(
            "PUBLISH sip:mcptt-psi@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-pub-2\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag=pub-2\r\nTo: <{BOB}>\r\nCall-ID: pub-2\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 4294967295\r\nSIP-If-Match: {etag}\r\nContent-Length: 0\r\n\r\n",
            publisher.local()
        ))
        .await;
    let answer = publisher.response(&mut notifies).await;
    assert!(
        answer.first.starts_with("SIP/2.0 200"),
        "a stored publication refreshes: {answer:?}"
    );

    // The in-dialog refresh is answered, and so is the end.
    for (cseq, expires) in [(2, 600), (3, 0)] {
        watcher
            .send(&format!(
                "SUBSCRIBE sip:watcher@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-w1-{cseq}\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag=w1\r\nTo: <{BOB}>;tag={our_tag}\r\nCall-ID: w1\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:watcher@{local}>\r\nEvent: presence\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
            ))
            .await;
        let mut seen = Vec::new();
        let answer = watcher.response(&mut seen).await;
        assert!(
            answer.first.starts_with("SIP/2.0 200"),
            "refresh {cseq}: {answer:?}"
        );
        if expires == 0 {
            let last = match seen.into_iter().last() {
                Some(notify) => notify,
                None => watcher.notify().await,
            };
            assert!(
                last.header("Subscription-State")[0].starts_with("terminated"),
                "{last:?}"
            );
        }
    }
    let inspector = system.log_on_as(BOB, "inspector").await;
    assert_eq!(
        held(&inspector).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )],
        "the JSON API shows the affiliation kept across the restart"
    );
}
