//! Group document subscriptions, `Event: xcap-diff` (issue 15 item 6): only documents
//! the subscriber may read (403 when it names none it may), and the subscription ends,
//! `terminated;reason=rejected` (RFC 6665 §4.2.2: a change of authorisation), when its
//! user stops being a member of a document it was allowed to read. Raw SIP over UDP;
//! the membership changes through the JSON API.

use mcx_model::McService;
use mcx_model::group::GroupConfiguration;

use super::callers::Peer;
use super::with_sip;
use crate::support::*;

const WATCH: &str = "sip:watch@police.example";

/// The XCAP document of `group`, relative to the root.
fn document(group: &str) -> String {
    format!(
        "org.openmobilealliance.groups/global/byGroupID/{}",
        group.replace(':', "%3A").replace('@', "%40")
    )
}

/// An xcap-diff SUBSCRIBE by `user` (with `token`) naming `group`'s document.
fn subscribe_documents(peer: &Peer, call: &str, token: &str, user: &str, group: &str) -> String {
    let local = peer.local();
    let sip = peer.server();
    let lists = format!(
        r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="{}"/></list></resource-lists>"#,
        document(group)
    );
    let info = format!(
        r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>{token}</mcpttString></mcptt-access-token></mcptt-Params></mcpttinfo>"#
    );
    let body = format!(
        "--b\r\nContent-Type: application/resource-lists+xml\r\n\r\n{lists}\r\n--b\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n{info}\r\n--b--\r\n"
    );
    format!(
        "SUBSCRIBE sip:mcptt-gms-psi@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <{user}>;tag={call}\r\nTo: <{user}>\r\nCall-ID: {call}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:watcher@{local}>\r\nEvent: xcap-diff\r\nExpires: 600\r\nContent-Type: multipart/mixed;boundary=b\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn a_document_subscription_ends_when_its_user_stops_being_a_member() {
    let system = with_sip().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let carol = system.log_on_as(CAROL, "phone").await;
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;

    // Carol is neither a member of ops nor has it in her profile: nothing to watch.
    peer.send(&subscribe_documents(
        &peer,
        "xd1",
        carol.token().unwrap(),
        CAROL,
        OPS,
    ))
    .await;
    let answer = peer.response(&mut Vec::new()).await;
    assert!(
        answer
            .first
            .starts_with("SIP/2.0 403 Forbidden: none of these documents may be read by this user"),
        "{answer:?}"
    );

    // A group Carol reads only as a member (her profile does not list it).
    let configuration = GroupConfiguration::new(
        "Watch",
        [id(ALICE), id(CAROL)],
        mcx_model::NonEmpty::new(vec![McService::Mcptt]).unwrap(),
    );
    alice
        .create_group(&gid(WATCH), &configuration)
        .await
        .unwrap();
    peer.send(&subscribe_documents(
        &peer,
        "xd2",
        carol.token().unwrap(),
        CAROL,
        WATCH,
    ))
    .await;
    let first = peer.notify().await;
    assert_eq!(
        first.header("Subscription-State")[0].split(';').next(),
        Some("active"),
        "{first:?}"
    );
    assert!(first.body.contains("new-etag="), "{}", first.body);

    // Alice takes Carol out of the group through the JSON API.
    let mut without = configuration.clone();
    without.list.retain(|m| m.uri != id(CAROL));
    alice
        .update_group(&gid(WATCH), &without, mcx_client::IfMatch::Version(1))
        .await
        .unwrap();
    let last = peer.notify().await;
    assert_eq!(
        last.header("Subscription-State"),
        ["terminated;reason=rejected"],
        "{last:?}"
    );
}
