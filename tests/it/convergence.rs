//! Serving system and host agree in the end, whatever the link does: a de-affiliation
//! waiting in the outbox does not undo a newer affiliation, and a host whose answer was
//! lost is told that the user is not affiliated.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcx_client::Client;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::group::GroupConfiguration;
use mcx_model::profile::Permission;
use mcx_model::{McService, NonEmpty};

use crate::federation::*;
use crate::support::*;

const BOB: &str = "sip:bob@police.example";
const FRANK: &str = "sip:frank@fire.example";
const HARBOUR: &str = "sip:harbour@fire.example";
const MCPTT: McService = McService::Mcptt;

fn setup() -> Federation {
    Federation::new(vec![
        (
            POLICE,
            vec![profiled_user(BOB, &[(MCPTT, &[HARBOUR], 4)], &[])],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![profiled_user(
                FRANK,
                &[(MCPTT, &[HARBOUR], 4)],
                &Permission::ALL,
            )],
            vec![Relation::full(POLICE)],
        ),
    ])
}

async fn create_harbour(federation: &Federation) -> Client {
    let frank = federation.log_on(FRANK, "console").await;
    let harbour = GroupConfiguration::new("Harbour", [id(FRANK), id(BOB)], NonEmpty::one(MCPTT));
    frank.create_group(&gid(HARBOUR), &harbour).await.unwrap();
    frank
}

async fn bob_at_fire(frank: &Client) -> bool {
    frank
        .group_affiliations(&gid(HARBOUR))
        .await
        .unwrap()
        .members
        .iter()
        .any(|m| m.mc_service_id == id(BOB))
}

#[tokio::test]
async fn a_queued_de_affiliation_does_not_undo_a_newer_affiliation_at_the_host() {
    let mut federation = setup();
    federation.start_all().await;
    let frank = create_harbour(&federation).await;
    let bob = federation.log_on(BOB, "handset").await;
    bob.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    assert!(bob_at_fire(&frank).await);
    // fire goes down: bob's de-affiliation waits in police's outbox.
    federation.stop(FIRE).await;
    bob.deaffiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // fire returns; bob affiliates again at once, before the outbox retries.
    federation.start(FIRE).await;
    let again = bob.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    assert_eq!(
        again.status_per_mc_service_group_id[0].status,
        AffiliationStatus::Affiliated
    );
    let frank = federation.log_on(FRANK, "console").await;
    // Once the outbox has delivered the older de-affiliation, fire still holds bob.
    eventually("fire received the queued de-affiliation", || async {
        let trace = frank.trace(0, 10_000).await.ok()?;
        trace
            .entries
            .iter()
            .any(|e| {
                e.flow
                    .starts_with("MC service group de-affiliation request")
                    && e.direction == mcx_model::api::TraceDirection::Received
            })
            .then_some(())
    })
    .await;
    assert!(
        bob_at_fire(&frank).await,
        "the overtaken de-affiliation removed bob's newer affiliation at fire"
    );
}

/// A TCP relay in front of fire's interconnection endpoint that, while `drop_answers` is
/// set, passes requests on and throws the answers away.
async fn relay(target: std::net::SocketAddr, drop_answers: Arc<AtomicBool>) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let drop_answers = drop_answers.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut in_read, &mut out_write).await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = out_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if !drop_answers.load(Ordering::SeqCst)
                        && in_write.write_all(&buf[..n]).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_host_whose_answer_was_lost_answers_the_resent_request_and_both_sides_agree() {
    let mut federation = setup();
    federation.start(FIRE).await;
    let fire_endpoint = federation.node(FIRE).interconnection_addr().unwrap();
    let drop_answers = Arc::new(AtomicBool::new(false));
    let port = relay(fire_endpoint, drop_answers.clone()).await;
    {
        let police = federation.members.get_mut(POLICE).unwrap();
        police.config.partners[0].endpoint = format!("https://127.0.0.1:{port}").into();
        let ic = police.config.interconnection.as_mut().unwrap();
        ic.request_timeout_ms = 1_000;
    }
    federation.start(POLICE).await;
    let frank = create_harbour(&federation).await;
    let bob = federation.log_on(BOB, "handset").await;
    let mut events = bob.events(None).await.unwrap();
    // Police subscribed to fire's group once it held it: its connection to fire is open.
    eventually("police subscribed at fire", || async {
        let trace = frank.trace(0, 10_000).await.ok()?;
        trace
            .entries
            .iter()
            .any(|e| e.flow == "Group information subscribe response")
            .then_some(())
    })
    .await;
    drop_answers.store(true, Ordering::SeqCst);
    // The host applies the request but its answer is lost: the request is still
    // affiliating when its wait ends, and the reservation holds bob's N2 place.
    let answer = bob.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    let status = &answer.status_per_mc_service_group_id[0];
    assert_eq!(status.status, AffiliationStatus::Affiliating, "{status:?}");
    assert_eq!(status.cause, None);
    eventually("fire applied the request whose answer was lost", || async {
        bob_at_fire(&frank).await.then_some(())
    })
    .await;
    let held = bob.affiliations().await.unwrap().affiliations;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].status, AffiliationStatus::Affiliating);
    // Answers get through again: the outbox resends the same transaction, the host
    // answers it from its record, and the serving system settles the reservation.
    drop_answers.store(false, Ordering::SeqCst);
    let event = tokio::time::timeout(Duration::from_secs(30), next_event(&mut events))
        .await
        .expect("the final state comes as an event");
    match event.event {
        mcx_model::events::ClientEvent::AffiliationStatusChanged { status, .. } => {
            assert_eq!(status.mc_service_group_id, gid(HARBOUR));
            assert_eq!(status.status, AffiliationStatus::Affiliated);
        }
        other => panic!("unexpected {other:?}"),
    }
    let held = bob.affiliations().await.unwrap().affiliations;
    assert_eq!(held[0].status, AffiliationStatus::Affiliated);
    assert!(bob_at_fire(&frank).await, "both sides hold bob");
    // One effect at the host for the request and its retransmissions.
    let trace = frank.trace(0, 10_000).await.unwrap();
    let applied = trace
        .entries
        .iter()
        .filter(|e| e.flow == "Group affiliation status update")
        .count();
    assert_eq!(applied, 1, "the host applied the request {applied} times");
}

#[tokio::test]
async fn a_failed_regroup_is_cancelled_also_at_a_partner_whose_answer_was_lost() {
    use mcx_model::flows::regroup::*;
    const ALICE: &str = "sip:alice@police.example";
    const AMY: &str = "sip:amy@ambulance.example";
    const OPS: &str = "sip:ops@police.example";
    const PRE: &str = "sip:pre@police.example";
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![profiled_user(
                ALICE,
                &[(MCPTT, &[OPS], 4)],
                &Permission::ALL,
            )],
            vec![Relation::full(FIRE), Relation::full(AMBULANCE)],
        ),
        (
            FIRE,
            vec![profiled_user(FRANK, &[(MCPTT, &[], 4)], &Permission::ALL)],
            vec![Relation::full(POLICE)],
        ),
        (
            AMBULANCE,
            vec![profiled_user(AMY, &[(MCPTT, &[], 4)], &Permission::ALL)],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start(FIRE).await;
    federation.start(AMBULANCE).await;
    let ambulance_endpoint = federation.node(AMBULANCE).interconnection_addr().unwrap();
    let drop_answers = Arc::new(AtomicBool::new(false));
    let port = relay(ambulance_endpoint, drop_answers.clone()).await;
    {
        let police = federation.members.get_mut(POLICE).unwrap();
        for partner in &mut police.config.partners {
            if partner.domain.as_str() == AMBULANCE {
                partner.endpoint = format!("https://127.0.0.1:{port}").into();
            }
        }
        police
            .config
            .interconnection
            .as_mut()
            .unwrap()
            .request_timeout_ms = 1_000;
    }
    federation.start(POLICE).await;
    let alice = federation.log_on(ALICE, "console").await;
    let ops = GroupConfiguration::new("Ops", [id(ALICE)], NonEmpty::one(MCPTT));
    alice.create_group(&gid(OPS), &ops).await.unwrap();
    let mut pre = GroupConfiguration::new("Template", [id(ALICE)], NonEmpty::one(MCPTT));
    pre.preconfigured_group_use_only = true;
    alice.create_group(&gid(PRE), &pre).await.unwrap();
    // Police has a connection to ambulance open: it shared a group with it.
    alice
        .share_group(
            &gid(OPS),
            &mcx_model::SystemDomain::parse(AMBULANCE).unwrap(),
        )
        .await
        .unwrap();
    eventually("ambulance stored police's group", || async {
        let status = alice.interconnection_status(&gid(OPS)).await.ok()?;
        status
            .partners
            .iter()
            .any(|p| {
                p.partner.as_str() == AMBULANCE
                    && p.state == mcx_model::api::DeliveryState::Delivered
            })
            .then_some(())
    })
    .await;
    drop_answers.store(true, Ordering::SeqCst);
    // Fire is away; ambulance takes part, but its answer is lost. Fire comes back and
    // refuses (it homes no such group): the regroup is abandoned, at every partner.
    federation.stop(FIRE).await;
    let answered = alice
        .regroup(&PreconfiguredRegroupRequest {
            mc_service_id: id(ALICE),
            regroup_group_id: None,
            preconfigured_group_id: gid(PRE),
            targets: RegroupTargets::McServiceGroupIdList(
                NonEmpty::new(vec![gid(OPS), gid("sip:nothing@fire.example")]).unwrap(),
            ),
            mc_service: MCPTT,
        })
        .await;
    // Abandoned at fire's deadline (within the request's wait or after it).
    match answered {
        Ok(forming) => assert_eq!(forming.state, mcx_model::api::RegroupState::Forming),
        Err(err) => assert_eq!(err.code(), Some("partner-unreachable"), "{err}"),
    }
    let amy = federation.log_on(AMY, "console").await;
    eventually(
        "ambulance took part before the failure was known",
        || async { (!amy.regroups().await.ok()?.regroups.is_empty()).then_some(()) },
    )
    .await;
    federation.start(FIRE).await;
    drop_answers.store(false, Ordering::SeqCst);
    eventually("ambulance is told to cancel", || async {
        amy.regroups().await.ok()?.regroups.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_newer_partner_s_extra_fields_are_ignored_and_its_unknown_flow_gets_a_final_refusal() {
    let (federation, addr, police) = fire_facing_police().await;
    let base = format!("https://{FIRE}:{}/interconnection/v1", addr.port());
    let newer = serde_json::json!({
        "mc-service-group-id": "sip:joint@police.example",
        "mcx-added-in-a-later-release": {"priority-hint": 3},
        "mc-service-group-configuration-information": {
            "configuration": {
                "display-name": "Joint",
                "list": [{"uri": "sip:frank@fire.example", "future-role": "x"}],
                "supported-services": ["mcptt"],
                "future-element": [1, 2, 3],
            },
            "version": 1,
        },
    });
    let send = |route: &str, body: serde_json::Value| {
        police
            .post(format!("{base}/{route}"))
            .header("mcx-origin", POLICE)
            .header(
                "mcx-transaction-id",
                mcx_model::TransactionId::new().to_string(),
            )
            .header("mcx-protocol-version", "2")
            .json(&body)
            .send()
    };
    let response = send("group-information-provision", newer).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["mcx-protocol-version"].to_str().unwrap(),
        "1",
        "the answer names the receiver's version"
    );
    let frank = federation.log_on(FRANK, "console").await;
    let stored = frank.group(&gid("sip:joint@police.example")).await.unwrap();
    assert_eq!(stored.configuration.display_name, "Joint");
    // A flow this release does not know: a final refusal (4xx), not a failure to retry.
    let response = send("group-information-merge", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "unknown-flow");
}

#[tokio::test]
async fn many_users_affiliating_to_a_partner_group_at_once_are_all_answered() {
    // Deliveries of many lanes at once must not starve the store the dispatcher itself
    // reads (found by `mcx bench`: 32 users' lanes held every connection).
    let users: Vec<String> = (0..48)
        .map(|i| format!("sip:u{i}@police.example"))
        .collect();
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    let (federation, frank) = police_and_fire_with_harbour(
        users
            .iter()
            .map(|u| profiled_user(u, &[(MCPTT, &[HARBOUR], 4)], &[]))
            .collect(),
        &members,
    )
    .await;
    let mut clients = Vec::new();
    for user in &users {
        clients.push(federation.log_on(user, "handset").await);
    }
    for round in 0..3 {
        let answers = futures_util::future::join_all(clients.iter().map(|c| async move {
            if round % 2 == 0 {
                c.affiliate(MCPTT, &[gid(HARBOUR)])
                    .await
                    .map(|r| r.status_per_mc_service_group_id[0].status)
            } else {
                c.deaffiliate(MCPTT, &[gid(HARBOUR)])
                    .await
                    .map(|r| r.status_per_mc_service_group_id[0].status)
            }
        }))
        .await;
        for answer in answers {
            answer.expect("every request is answered");
        }
    }
    eventually("fire holds every user", || async {
        let members = frank.group_affiliations(&gid(HARBOUR)).await.ok()?.members;
        (members.len() == users.len()).then_some(())
    })
    .await;
}

/// A partner reached at several addresses (its nodes): a flow that cannot reach the
/// first is sent to the next, in the same request, and later flows go first to the one
/// that answered.
#[tokio::test]
async fn a_partner_with_several_endpoints_is_reached_at_the_one_that_answers() {
    let mut federation = setup();
    federation.start(FIRE).await;
    let fire_endpoint = federation.node(FIRE).interconnection_addr().unwrap();
    // A port nobody listens on: connecting to it is refused at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    {
        let police = federation.members.get_mut(POLICE).unwrap();
        police.config.partners[0].endpoint = mcx_server::config::Endpoints(vec![
            format!("https://127.0.0.1:{dead_port}"),
            format!("https://127.0.0.1:{}", fire_endpoint.port()),
        ]);
    }
    federation.start(POLICE).await;
    let frank = create_harbour(&federation).await;
    let bob = federation.log_on(BOB, "handset").await;
    let answer = bob.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    assert_eq!(
        answer.status_per_mc_service_group_id[0].status,
        AffiliationStatus::Affiliated,
        "fire answered at its second endpoint within the request: {answer:?}"
    );
    assert!(bob_at_fire(&frank).await);
    // The de-affiliation reaches fire through the outbox, at the endpoint that answered.
    bob.deaffiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    eventually("fire heard the de-affiliation", || async {
        (!bob_at_fire(&frank).await).then_some(())
    })
    .await;
}
