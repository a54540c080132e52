//! ACM store-and-forward of interconnection group IDs (TR 23.700-38): the target is logged
//! off for the whole exchange, the sender logs off right after sending, both systems
//! restart between steps, and the exchange still completes, ending with a partner user
//! affiliated to the primary's group.

use mcx_client::Client;
use mcx_model::api::{AcmExchange, AcmProvisionOrder, AcmState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::acm::{AcmDecision, PendingAcmItem};
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::Permission;
use mcx_model::{McService, NonEmpty};

use crate::federation::*;
use crate::support::*;

const ALICE: &str = "sip:alice@police.example";
const BOB: &str = "sip:bob@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FRED: &str = "sip:fred@fire.example";
const FIONA: &str = "sip:fiona@fire.example";
const JOINT: &str = "sip:joint@police.example";
const MCPTT: McService = McService::Mcptt;

async fn federation() -> Federation {
    let admin = [
        Permission::GroupAdministration,
        Permission::AcmAdministration,
        Permission::AffiliationMonitoring,
    ];
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![
                profiled_user(ALICE, &[(MCPTT, &[JOINT], 4)], &admin),
                profiled_user(BOB, &[(MCPTT, &[JOINT], 4)], &[]),
            ],
            vec![
                Relation::full(FIRE),
                Relation {
                    partner: AMBULANCE,
                    inbound: all_capabilities(),
                    outbound: all_capabilities()
                        .into_iter()
                        .filter(|c| *c != Capability::Acm)
                        .collect(),
                    policy: LocalGroupPolicy::default(),
                },
            ],
        ),
        (
            FIRE,
            vec![
                profiled_user(FRANK, &[(MCPTT, &[], 4)], &[Permission::AcmAdministration]),
                profiled_user(FRED, &[(MCPTT, &[], 4)], &[Permission::AcmAdministration]),
                profiled_user(FIONA, &[(MCPTT, &[], 4)], &[]),
            ],
            vec![Relation::full(POLICE)],
        ),
        (
            AMBULANCE,
            vec![profiled_user(
                "sip:amy@ambulance.example",
                &[],
                &[Permission::AcmAdministration],
            )],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start_all().await;
    let alice = federation.log_on(ALICE, "console").await;
    let joint = GroupConfiguration::new("Joint", [id(ALICE), id(BOB)], NonEmpty::one(MCPTT));
    alice.create_group(&gid(JOINT), &joint).await.unwrap();
    alice.log_off().await.unwrap();
    federation
}

fn order(target: &str, groups: &[&str]) -> AcmProvisionOrder {
    AcmProvisionOrder {
        target_mc_service_id: id(target),
        interconnection_group_id_list: NonEmpty::new(groups.iter().map(|g| gid(g)).collect())
            .unwrap(),
    }
}

async fn sent_state(federation: &Federation, request: &AcmExchange) -> (AcmState, Option<String>) {
    let alice = federation.log_on(ALICE, "inspector").await;
    let list = alice.acm_sent().await.unwrap();
    let found = list
        .exchanges
        .into_iter()
        .find(|x| x.request.request_id == request.request.request_id)
        .expect("the exchange is listed");
    alice.log_off().await.unwrap();
    (found.state, found.detail)
}

fn client_at(federation: &Federation, domain: &str, token: &str) -> Client {
    Client::new(&federation.node(domain).base_url())
        .unwrap()
        .with_token(token)
}

#[tokio::test]
async fn an_offline_exchange_completes_across_restarts_and_closes_the_loop() {
    let mut federation = federation().await;

    // The partner is down when the sender sends; the sender logs off at once.
    federation.stop(FIRE).await;
    let alice = federation.log_on(ALICE, "handset").await;
    let sent = alice.acm_provide(&order(FRANK, &[JOINT])).await.unwrap();
    assert_eq!(sent.state, AcmState::Forwarding);
    let request_id = sent
        .request
        .request_id
        .expect("the server assigns the request ID");
    alice.log_off().await.unwrap();

    // The primary restarts with the request still to forward; then the partner returns.
    federation.stop(POLICE).await;
    federation.start(POLICE).await;
    federation.start(FIRE).await;
    let (state, _) = eventually("the partner stores the request (step 4a/4b)", || async {
        let s = sent_state(&federation, &sent).await;
        (s.0 == AcmState::Stored).then_some(s)
    })
    .await;
    assert_eq!(state, AcmState::Stored);

    // The partner restarts while the target is still logged off (NOTE 1).
    federation.stop(FIRE).await;
    federation.start(FIRE).await;

    // Step 6–8: the target logs on, is told, downloads.
    let frank = federation.log_on(FRANK, "console").await;
    let mut events = frank.events(None).await.unwrap();
    match next_event(&mut events).await.event {
        ClientEvent::AcmPendingData(n) => {
            assert_eq!(n.mc_service_id, id(FRANK));
            assert_eq!(n.pending_count, 1);
        }
        other => panic!("expected pending ACM data, got {other:?}"),
    }
    let pending = frank.acm_pending().await.unwrap();
    let request = match &pending.acm_data[..] {
        [PendingAcmItem::ProvisionRequest { request, .. }] => request.clone(),
        other => panic!("expected one pending request, got {other:?}"),
    };
    assert_eq!(request.request_id, Some(request_id));
    assert_eq!(request.mc_service_id, id(ALICE));
    assert_eq!(
        request.interconnection_group_id_list.as_slice(),
        [gid(JOINT)]
    );

    // Step 9–10 while the primary is down: the answer waits in the partner's outbox.
    federation.stop(POLICE).await;
    let frank = client_at(&federation, FIRE, frank.token().unwrap());
    let answered = frank
        .acm_respond(&request_id, &AcmDecision::Accepted)
        .await
        .unwrap();
    assert_eq!(answered.state, AcmState::Answered);
    let twice = frank
        .acm_respond(&request_id, &AcmDecision::Accepted)
        .await
        .unwrap_err();
    assert_eq!(
        (twice.status(), twice.code()),
        (Some(409), Some("acm-already-answered"))
    );
    federation.start(POLICE).await;

    // Steps 11–14: stored at the primary; the sender, logging on later, is told and gets it.
    let alice = eventually("the response reaches the primary", || async {
        let alice = federation.log_on(ALICE, "handset").await;
        let listed = alice.acm_sent().await.ok()?;
        let answered = listed
            .exchanges
            .iter()
            .any(|x| x.state == AcmState::Answered);
        if answered {
            Some(alice)
        } else {
            alice.log_off().await.ok().and(None)
        }
    })
    .await;
    let mut alice_events = alice.events(None).await.unwrap();
    match next_event(&mut alice_events).await.event {
        ClientEvent::AcmPendingData(n) => assert_eq!(n.pending_count, 1),
        other => panic!("expected pending ACM data, got {other:?}"),
    }
    let pending = alice.acm_pending().await.unwrap();
    match &pending.acm_data[..] {
        [
            PendingAcmItem::ProvisionResponse {
                response,
                interconnection_group_id_list,
                ..
            },
        ] => {
            assert_eq!(response.request_id, request_id);
            assert_eq!(response.mc_service_id, id(FRANK));
            assert_eq!(response.decision, AcmDecision::Accepted);
            assert_eq!(interconnection_group_id_list.as_slice(), [gid(JOINT)]);
        }
        other => panic!("expected one pending response, got {other:?}"),
    }
    assert!(
        alice.acm_pending().await.unwrap().acm_data.is_empty(),
        "a response is delivered once"
    );

    // The loop closes: fire's administrator gives fiona the group; at her next log-on fire
    // fetches its configuration from police (§10.2.7.3), and she can affiliate.
    let err = frank
        .acm_apply(
            &request_id,
            &mcx_model::api::AcmApplyRequest {
                users: NonEmpty::one(id("sip:nobody@fire.example")),
                mc_service: MCPTT,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("user-not-found"));
    let applied = frank
        .acm_apply(
            &request_id,
            &mcx_model::api::AcmApplyRequest {
                users: NonEmpty::one(id(FIONA)),
                mc_service: MCPTT,
            },
        )
        .await
        .unwrap();
    assert_eq!(applied.applied_to, vec![id(FIONA)]);
    let fiona = federation.log_on(FIONA, "handset").await;
    assert!(
        fiona
            .session()
            .await
            .unwrap()
            .profile
            .lists_group(MCPTT, &gid(JOINT))
    );
    eventually("fire holds the joint group", || async {
        fiona.group(&gid(JOINT)).await.ok()
    })
    .await;
    let affiliated = fiona.affiliate(MCPTT, &[gid(JOINT)]).await.unwrap();
    assert_eq!(
        affiliated.status_per_mc_service_group_id[0].status,
        AffiliationStatus::Affiliated
    );
    let members = alice.group_affiliations(&gid(JOINT)).await.unwrap().members;
    assert!(
        members.iter().any(|m| m.mc_service_id == id(FIONA)),
        "police's GMS knows fiona: {members:?}"
    );
}

#[tokio::test]
async fn acm_refusals_say_why() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;

    // The sender must be authorised for ACM.
    let bob = federation.log_on(BOB, "handset").await;
    let err = bob.acm_provide(&order(FRANK, &[JOINT])).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );
    // Only groups defined in the sender's system.
    let err = alice
        .acm_provide(&order(FRANK, &["sip:harbour@fire.example"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("group-not-homed-here"))
    );
    let err = alice
        .acm_provide(&order(FRANK, &["sip:nothing@police.example"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("group-not-homed-here"));
    // The partner must be authorised for ACM.
    let err = alice
        .acm_provide(&order("sip:amy@ambulance.example", &[JOINT]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("partner-not-authorized"))
    );
    assert!(
        alice.acm_sent().await.unwrap().exchanges.is_empty(),
        "nothing was stored"
    );

    // Unknown or non-ACM targets: the partner refuses, the sender's record says why.
    for target in ["sip:nobody@fire.example", FIONA] {
        let sent = alice.acm_provide(&order(target, &[JOINT])).await.unwrap();
        let (state, detail) = eventually(&format!("the partner refuses {target}"), || async {
            let s = sent_state(&federation, &sent).await;
            (s.0 == AcmState::Refused).then_some(s)
        })
        .await;
        assert_eq!(state, AcmState::Refused);
        assert!(
            detail
                .unwrap()
                .contains("not a user of fire.example authorised for ACM")
        );
    }

    // Answering a request addressed to someone else, and answering twice.
    let sent = alice.acm_provide(&order(FRANK, &[JOINT])).await.unwrap();
    let request_id = sent.request.request_id.unwrap();
    eventually("the partner stores it", || async {
        (sent_state(&federation, &sent).await.0 == AcmState::Stored).then_some(())
    })
    .await;
    let fred = federation.log_on(FRED, "console").await;
    let err = fred
        .acm_respond(&request_id, &AcmDecision::Accepted)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );
    assert!(
        err.to_string()
            .contains("addressed to sip:frank@fire.example"),
        "{err}"
    );
    let frank = federation.log_on(FRANK, "console").await;
    frank
        .acm_respond(
            &request_id,
            &AcmDecision::Rejected {
                reason: Some("not our area".into()),
            },
        )
        .await
        .unwrap();
    let err = frank
        .acm_respond(&request_id, &AcmDecision::Accepted)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("acm-already-answered"));
    // A rejected request cannot be applied.
    let err = frank
        .acm_apply(
            &request_id,
            &mcx_model::api::AcmApplyRequest {
                users: NonEmpty::one(id(FIONA)),
                mc_service: MCPTT,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("acm-not-accepted"))
    );
    let unknown = frank
        .acm_respond(&uuid_like(), &AcmDecision::Accepted)
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404));
}

fn uuid_like() -> mcx_model::flows::acm::AcmRequestId {
    mcx_model::TransactionId::new().0
}

#[tokio::test]
async fn a_simultaneous_accept_and_reject_give_one_answer_held_by_both_systems() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE, "handset").await;
    let sent = alice.acm_provide(&order(FRANK, &[JOINT])).await.unwrap();
    let request_id = sent.request.request_id.expect("a request ID");
    eventually("the partner stores the request", || async {
        (sent_state(&federation, &sent).await.0 == AcmState::Stored).then_some(())
    })
    .await;
    let frank = federation.log_on(FRANK, "console").await;
    let frank_tablet = federation.log_on(FRANK, "tablet").await;
    let reject = AcmDecision::Rejected {
        reason: Some("not ours".into()),
    };
    let (accepted, rejected) = tokio::join!(
        frank.acm_respond(&request_id, &AcmDecision::Accepted),
        frank_tablet.acm_respond(&request_id, &reject),
    );
    let (winner, loser) = match (accepted, rejected) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one answer must be taken, got {other:?}"),
    };
    assert_eq!(
        (loser.status(), loser.code()),
        (Some(409), Some("acm-already-answered")),
        "{loser}"
    );
    let decision = winner.response.expect("the answer").decision;
    // The partner holds the winning decision …
    let held = frank
        .acm_received()
        .await
        .unwrap()
        .exchanges
        .into_iter()
        .find(|x| x.request.request_id == Some(request_id))
        .expect("listed at the partner");
    assert_eq!(held.response.map(|r| r.decision), Some(decision.clone()));
    // … and so does the primary, once it arrives.
    let at_primary = eventually("the primary stores the answer", || async {
        let alice = federation.log_on(ALICE, "inspector").await;
        let found = alice
            .acm_sent()
            .await
            .unwrap()
            .exchanges
            .into_iter()
            .find(|x| x.request.request_id == Some(request_id))?;
        (found.state == AcmState::Answered).then_some(found)
    })
    .await;
    assert_eq!(at_primary.response.map(|r| r.decision), Some(decision));
}
