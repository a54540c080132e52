//! Affiliation status by SUBSCRIBE / NOTIFY (issue 15 item 4): a NOTIFY follows a
//! mandatory remote change made through the JSON API, and the answer of a partner host
//! for a group it holds; another user's status needs the monitoring permission. Raw SIP
//! over UDP (the subscriber answers each NOTIFY), the JSON API for the changes.

use std::time::Duration;

use mcx_model::McService;
use mcx_model::NonEmpty;
use mcx_model::api::AffiliationChangeState;
use mcx_model::flows::affiliation::{
    AffiliationChangeAction, AffiliationStatus, ChangeRequestType, GroupAffiliationChange,
    GroupAffiliationChangeRequest,
};

use super::callers::{Message, Peer, publish_text, subscribe_status, subscribe_status_of};
use super::{held, with_sip};
use crate::support::*;

/// The next NOTIFY whose body contains `needle`, within 30 s (earlier ones are answered
/// and passed over).
async fn notify_with(peer: &Peer, needle: &str) -> Message {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let notify = peer.notify().await;
            if notify.body.contains(needle) {
                return notify;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no NOTIFY with {needle} within 30 s"))
}

fn status_of(group: &str, status: &str) -> String {
    format!(r#"group="{group}" status="{status}""#)
}

#[tokio::test]
async fn a_status_subscription_hears_a_remote_change_made_through_the_json_api() {
    let system = with_sip().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let sip = system.node().sip_addr().unwrap();
    let watcher = Peer::at("127.0.0.1", sip).await;
    watcher
        .send(&subscribe_status(&watcher, "rc1", bob.token().unwrap()))
        .await;
    let first = watcher.notify().await;
    assert!(
        !first.body.contains("status="),
        "nothing held yet: {first:?}"
    );

    // Alice, a dispatcher, affiliates Bob to ops in mandatory mode.
    let record = alice
        .request_change(&GroupAffiliationChangeRequest {
            mc_service_id: id(ALICE),
            mc_service_id_list: NonEmpty::new(vec![id(BOB)]).unwrap(),
            mc_service_group_id_list: NonEmpty::new(vec![GroupAffiliationChange {
                mc_service_group_id: gid(OPS),
                action: AffiliationChangeAction::Affiliate,
            }])
            .unwrap(),
            change_request_type: ChangeRequestType::Mandatory,
            mc_service: McService::Mcptt,
            generation: None,
        })
        .await
        .unwrap();
    assert_eq!(record.state, AffiliationChangeState::Completed);
    let told = notify_with(&watcher, &status_of(OPS, "affiliated")).await;
    assert!(told.body.contains(r#"<tuple id="phone">"#), "{}", told.body);
    assert_eq!(
        held(&bob).await,
        [(
            OPS.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )],
        "the JSON API shows what the NOTIFY said"
    );
}

#[tokio::test]
async fn another_users_status_needs_the_monitoring_permission() {
    let system = with_sip().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let carol = system.log_on_as(CAROL, "phone").await;
    let sip = system.node().sip_addr().unwrap();

    // Carol lacks affiliation-monitoring: refused with the reason.
    let stranger = Peer::at("127.0.0.1", sip).await;
    stranger
        .send(&subscribe_status_of(
            &stranger,
            "mon1",
            carol.token().unwrap(),
            CAROL,
            Some(BOB),
        ))
        .await;
    let answer = stranger.response(&mut Vec::new()).await;
    assert!(
        answer.first.starts_with(
            "SIP/2.0 403 Forbidden: sip:carol@police.example may not see other users' affiliations"
        ),
        "{answer:?}"
    );

    // Alice has it: Bob's status at once, and after Bob's own change.
    let monitor = Peer::at("127.0.0.1", sip).await;
    monitor
        .send(&subscribe_status_of(
            &monitor,
            "mon2",
            alice.token().unwrap(),
            ALICE,
            Some(BOB),
        ))
        .await;
    let first = monitor.notify().await;
    assert!(
        first.body.contains(&format!(r#"entity="{BOB}""#)),
        "{}",
        first.body
    );
    assert!(!first.body.contains("status="), "{}", first.body);
    bob.affiliate(McService::Mcptt, &[gid(PATROL)])
        .await
        .unwrap();
    let told = notify_with(&monitor, &status_of(PATROL, "affiliated")).await;
    assert!(
        told.body.contains(&format!(r#"entity="{BOB}""#)),
        "{}",
        told.body
    );
    // Carol's refused subscription holds nothing: she is told nothing.
    assert!(
        tokio::time::timeout(Duration::from_secs(3), stranger.next_message())
            .await
            .is_err(),
        "a refused SUBSCRIBE gets no NOTIFY"
    );
}

#[tokio::test]
async fn a_status_subscription_hears_the_partner_host_s_answer() {
    use super::{FIRE, HARBOUR, POLICE, police_bob_with_fires_harbour};
    let (mut federation, _frank, bob) = police_bob_with_fires_harbour().await;
    let token = bob.token().unwrap().to_string();
    let sip = federation.node(POLICE).sip_addr().unwrap();
    let watcher = Peer::at("127.0.0.1", sip).await;
    watcher
        .send(&subscribe_status(&watcher, "ph1", &token))
        .await;
    watcher.notify().await;

    // The host is down: the PUBLISH is answered while its request waits in the outbox,
    // and the NOTIFY says affiliating.
    federation.stop(FIRE).await;
    let publisher = Peer::at("127.0.0.1", sip).await;
    publisher
        .send(&publish_text(&publisher, "ph2", &token, &[HARBOUR]))
        .await;
    let answer = publisher.response(&mut Vec::new()).await;
    assert!(answer.first.starts_with("SIP/2.0 200"), "{answer:?}");
    notify_with(&watcher, &status_of(HARBOUR, "affiliating")).await;
    assert_eq!(
        held(&bob).await,
        [(
            HARBOUR.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliating
        )]
    );

    // The host is back and answers: the NOTIFY says affiliated, as the JSON API does.
    federation.start(FIRE).await;
    notify_with(&watcher, &status_of(HARBOUR, "affiliated")).await;
    assert_eq!(
        held(&bob).await,
        [(
            HARBOUR.to_string(),
            vec!["phone".to_string()],
            AffiliationStatus::Affiliated
        )]
    );
}

/// A SUBSCRIBE whose To tag names a dialog this server does not hold is answered 481 and
/// makes no subscription (RFC 3261 §12.2.2): no NOTIFY follows.
#[tokio::test]
async fn a_subscribe_in_a_dialog_that_does_not_exist_is_481_and_subscribes_nothing() {
    let system = with_sip().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let sip = system.node().sip_addr().unwrap();
    let watcher = Peer::at("127.0.0.1", sip).await;
    let text = subscribe_status(&watcher, "nodialog1", bob.token().unwrap()).replace(
        &format!("To: <{BOB}>\r\n"),
        &format!("To: <{BOB}>;tag=no-such-dialog\r\n"),
    );
    assert!(
        text.contains(";tag=no-such-dialog"),
        "the test names a dialog"
    );
    watcher.send(&text).await;
    let mut notifies = Vec::new();
    let answer = watcher.response(&mut notifies).await;
    assert!(answer.first.starts_with("SIP/2.0 481"), "{answer:?}");
    let late = tokio::time::timeout(Duration::from_secs(2), watcher.notify()).await;
    assert!(
        notifies.is_empty() && late.is_err(),
        "no subscription was made: {notifies:?} {late:?}"
    );
}
