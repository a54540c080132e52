//! Preconfigured regroup by SIP MESSAGE (issue 15 item 7): sipp creates and removes a
//! regroup with the Annex F.7 body; refusals carry the clause 4.4 warning; the JSON API
//! shows the same state after each step; an affiliated member with a status
//! subscription is told by MESSAGE in its dialog, one that affiliated by PUBLISH outside
//! a dialog.

use mcx_model::McService;
use mcx_model::api::RegroupState;

use super::callers::Peer;
use super::{scenario, with_sip};
use crate::support::*;

const TEMPLATE: &str = "sip:regroup-template@police.example";
const REGROUP: &str = "sip:rg-storm@police.example";

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatcher_regroups_by_message_and_the_members_are_told() {
    let system = with_sip().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    bob.affiliate(McService::Mcptt, &[gid(OPS)]).await.unwrap();
    let sip = system.node().sip_addr().unwrap();

    // Bob's phone watches its own status: that dialog also carries its regroups.
    let phone = Peer::at("127.0.0.1", sip).await;
    let token = bob.token().unwrap();
    phone
        .send(&super::callers::subscribe_status(&phone, "rs1", token))
        .await;
    phone.notify().await;

    let keys = [
        ("token", alice.token().unwrap()),
        ("user", ALICE),
        ("template", TEMPLATE),
        ("regroup", REGROUP),
        ("group", OPS),
        ("group2", PATROL),
    ];
    tokio::task::block_in_place(|| scenario(&system, "u1", "regroup_create.xml", &keys));
    let regroups = alice.regroups().await.unwrap().regroups;
    assert_eq!(regroups.len(), 1, "{regroups:?}");
    assert_eq!(regroups[0].regroup_group_id.as_str(), REGROUP);
    assert_eq!(regroups[0].state, RegroupState::Active);
    assert_eq!(
        regroups[0]
            .mc_service_group_id_list
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>(),
        [OPS]
    );
    let told = phone.request("MESSAGE").await;
    assert_tells_regroup_created(&told);
    assert!(told.body.contains(TEMPLATE), "{}", told.body);

    tokio::task::block_in_place(|| scenario(&system, "t1", "regroup_remove.xml", &keys));
    assert!(
        alice.regroups().await.unwrap().regroups.is_empty(),
        "removed"
    );
    let told = phone.request("MESSAGE").await;
    assert!(
        told.body
            .contains("<regroup-action>remove</regroup-action>"),
        "{}",
        told.body
    );
}

#[tokio::test]
async fn a_regroup_message_is_refused_with_a_reason_and_changes_nothing() {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let alice = system.log_on_as(ALICE, "console").await;
    let sip = system.node().sip_addr().unwrap();
    let peer = Peer::at("127.0.0.1", sip).await;
    let local = peer.local();
    let message = |call: &str, token: &str, regroup_body: &str| {
        let info = format!(
            r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>{token}</mcpttString></mcptt-access-token></mcptt-Params></mcpttinfo>"#
        );
        let body = format!(
            "--b\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n{info}\r\n--b\r\nContent-Type: application/vnd.3gpp.mcptt-regroup+xml\r\n\r\n{regroup_body}\r\n--b--\r\n"
        );
        format!(
            "MESSAGE sip:mcptt-psi@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag={call}\r\nTo: <sip:mcptt-psi@police.example>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nContent-Type: multipart/mixed;boundary=b\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let create = |groups: &str| {
        format!(
            r#"<mcpttregroup xmlns="urn:3gpp:ns:preconfiguredRegroup:1.0"><mcpttregroup-Params><preconfig-group-id><preconfigured-group>{TEMPLATE}</preconfigured-group></preconfig-group-id><mcptt-regroup-uri>{REGROUP}</mcptt-regroup-uri><groups-for-regroup>{groups}</groups-for-regroup><regroup-action>create</regroup-action></mcpttregroup-Params></mcpttregroup>"#
        )
    };
    let mut notifies = Vec::new();
    let cases = [
        (
            "m1",
            bob.token().unwrap(),
            create(&format!("<g>{OPS}</g>")),
            "SIP/2.0 403 sip:bob@police.example may not regroup groups",
        ),
        (
            "m2",
            alice.token().unwrap(),
            create("<g>sip:nosuch@police.example</g>"),
            "SIP/2.0 403 Forbidden: ",
        ),
        (
            "m3",
            alice.token().unwrap(),
            create(&format!("<g>{OPS}</g>")).replace("create", "merge"),
            "SIP/2.0 400 Bad Request: <regroup-action> is 'merge'",
        ),
    ];
    for (call, token, body, expected) in cases {
        peer.send(&message(call, token, &body)).await;
        let answer = peer.response(&mut notifies).await;
        assert!(answer.first.starts_with(expected), "{call}: {answer:?}");
        if call == "m2" {
            assert_eq!(
                answer.header("Warning"),
                [
                    "399 police.example \"163 the group identity indicated in the request does not exist\""
                ],
                "{answer:?}"
            );
        }
    }
    // Not a multipart body: 415, naming what is accepted.
    peer.send(
        &message(
            "m4",
            alice.token().unwrap(),
            &create(&format!("<g>{OPS}</g>")),
        )
        .replace(
            "Content-Type: multipart/mixed;boundary=b",
            "Content-Type: text/plain",
        ),
    )
    .await;
    let answer = peer.response(&mut notifies).await;
    assert!(
        answer
            .first
            .starts_with("SIP/2.0 415 Unsupported Media Type: the body is text/plain;"),
        "m4: {answer:?}"
    );
    assert_eq!(answer.header("Accept"), ["multipart/mixed"], "{answer:?}");
    assert!(
        alice.regroups().await.unwrap().regroups.is_empty(),
        "nothing changed"
    );

    // Ops regrouped: a second regroup of ops is refused as already regrouped, and one
    // reusing the regroup group ID as in use (clause 4.4 warnings).
    peer.send(&message(
        "m5",
        alice.token().unwrap(),
        &create(&format!("<g>{OPS}</g>")),
    ))
    .await;
    let answer = peer.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "m5: {answer:?}");
    let refusals = [
        (
            "m6",
            create(&format!("<g>{OPS}</g>")).replace(REGROUP, "sip:rg-other@police.example"),
            format!(
                "SIP/2.0 403 Forbidden: preconfigured regroup reject: group '{OPS}' is already regrouped into '{REGROUP}'"
            ),
            "148 group is regrouped",
        ),
        (
            "m7",
            create(&format!("<g>{PATROL}</g>")),
            format!(
                "SIP/2.0 403 Forbidden: preconfigured regroup reject: the regroup group ID '{REGROUP}' is in use by a regroup in effect"
            ),
            "165 group ID for regroup already in use",
        ),
    ];
    for (call, body, expected, warning) in refusals {
        peer.send(&message(call, alice.token().unwrap(), &body))
            .await;
        let answer = peer.response(&mut notifies).await;
        assert!(answer.first.starts_with(&expected), "{call}: {answer:?}");
        assert_eq!(
            answer.header("Warning"),
            [format!("399 police.example \"{warning}\"")],
            "{call}: {answer:?}"
        );
    }
    let regroups = alice.regroups().await.unwrap().regroups;
    assert_eq!(regroups.len(), 1, "only the first regroup: {regroups:?}");
    assert_eq!(regroups[0].regroup_group_id.as_str(), REGROUP);
    assert_eq!(
        regroups[0]
            .mc_service_group_id_list
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>(),
        [OPS]
    );
}

/// A member that affiliated by PUBLISH and holds no status subscription is told by a
/// MESSAGE outside any dialog, at the address its PUBLISH came from.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_affiliated_by_publish_is_told_its_regroups_at_its_address() {
    let system = with_sip().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let sip = system.node().sip_addr().unwrap();
    let phone = Peer::at("127.0.0.1", sip).await;
    phone
        .send(&super::callers::publish_text(
            &phone,
            "tell1",
            bob.token().unwrap(),
            &[OPS],
        ))
        .await;
    let answer = phone.response(&mut Vec::new()).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");

    let keys = [
        ("token", alice.token().unwrap()),
        ("user", ALICE),
        ("template", TEMPLATE),
        ("regroup", REGROUP),
        ("group", OPS),
        ("group2", PATROL),
    ];
    tokio::task::block_in_place(|| scenario(&system, "u1", "regroup_create.xml", &keys));
    let told = phone.request("MESSAGE").await;
    assert!(
        told.first
            .starts_with(&format!("MESSAGE sip:{};transport=", phone.local())),
        "{told:?}"
    );
    assert!(
        told.header("From")[0].contains("sip:mcptt-psi@police.example"),
        "{told:?}"
    );
    assert!(told.header("To")[0].contains(BOB), "{told:?}");
    assert!(
        told.header("Call-ID")[0].ends_with("@police.example"),
        "{told:?}"
    );
    assert_eq!(
        told.header("Content-Type"),
        ["application/vnd.3gpp.mcptt-regroup+xml"],
        "{told:?}"
    );
    assert_tells_regroup_created(&told);

    tokio::task::block_in_place(|| scenario(&system, "u1", "regroup_remove.xml", &keys));
    let told = phone.request("MESSAGE").await;
    assert!(
        told.body
            .contains("<regroup-action>remove</regroup-action>"),
        "{}",
        told.body
    );
    assert!(
        alice.regroups().await.unwrap().regroups.is_empty(),
        "removed"
    );
}

/// The MESSAGE `told` announces that the regroup was created.
fn assert_tells_regroup_created(told: &super::callers::Message) {
    assert!(
        told.body
            .contains(&format!("<mcptt-regroup-uri>{REGROUP}</mcptt-regroup-uri>")),
        "{}",
        told.body
    );
    assert!(
        told.body
            .contains("<regroup-action>create</regroup-action>"),
        "{}",
        told.body
    );
}
