//! Affiliation and de-affiliation (TS 23.280 §10.8) between real systems: groups defined
//! at home and in a partner system, per-group statuses, the GMS's view, log-off, N2 under
//! concurrency, and remote change in mandatory and negotiated mode.

use std::collections::BTreeSet;

use mcx_client::Client;
use mcx_model::api::{AffiliationChangeState, ChangeDecision, TargetState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::*;
use mcx_model::group::GroupConfiguration;
use mcx_model::profile::Permission;
use mcx_model::{McService, McServiceGroupId, NonEmpty};

use crate::federation::*;
use crate::support::*;

const ALICE: &str = "sip:alice@police.example";
const BOB: &str = "sip:bob@police.example";
const CAROL: &str = "sip:carol@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FIONA: &str = "sip:fiona@fire.example";

const OPS: &str = "sip:ops@police.example";
const JOINT: &str = "sip:joint@police.example";
const DARK: &str = "sip:dark@police.example";
const P1: &str = "sip:p1@police.example";
const P2: &str = "sip:p2@police.example";
const HARBOUR: &str = "sip:harbour@fire.example";
const STATION: &str = "sip:station@fire.example";

const MCPTT: McService = McService::Mcptt;

fn group(name: &str, members: &[&str]) -> GroupConfiguration {
    GroupConfiguration::new(name, members.iter().map(|m| id(m)), NonEmpty::one(MCPTT))
}

/// police (alice: administrator with every permission; bob: N2 3; carol) and fire
/// (frank: administrator; fiona), with groups defined in both.
async fn setup() -> Federation {
    let everything = Permission::ALL;
    let bob_groups: &[&str] = &[
        OPS,
        JOINT,
        DARK,
        P1,
        P2,
        HARBOUR,
        STATION,
        "sip:nowhere@police.example",
    ];
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![
                profiled_user(ALICE, &[(MCPTT, &[OPS, JOINT], 8)], &everything),
                profiled_user(
                    BOB,
                    &[(MCPTT, bob_groups, 3), (McService::Mcvideo, &[OPS], 2)],
                    &[],
                ),
                profiled_user(CAROL, &[(MCPTT, &[OPS, JOINT], 2)], &[]),
            ],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![
                profiled_user(FRANK, &[(MCPTT, &[HARBOUR], 4)], &everything),
                profiled_user(FIONA, &[(MCPTT, &[JOINT, HARBOUR, OPS], 4)], &[]),
            ],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start_all().await;
    let alice = federation.log_on(ALICE, "console").await;
    for (id, config) in [
        (OPS, group("Operations", &[ALICE, BOB, CAROL])),
        (JOINT, group("Joint", &[ALICE, BOB, CAROL, FIONA])),
        (DARK, {
            let mut g = group("Dark", &[BOB]);
            g.on_network_disabled = true;
            g
        }),
        (P1, group("P1", &[BOB])),
        (P2, group("P2", &[BOB])),
    ] {
        alice.create_group(&gid(id), &config).await.unwrap();
    }
    let frank = federation.log_on(FRANK, "console").await;
    for (id, config) in [
        (HARBOUR, group("Harbour", &[FRANK, FIONA, BOB])),
        (STATION, group("Station", &[FRANK, BOB])),
    ] {
        frank.create_group(&gid(id), &config).await.unwrap();
    }
    federation
}

fn statuses(list: &[GroupAffiliationStatus]) -> Vec<(String, AffiliationStatus, Option<String>)> {
    list.iter()
        .map(|s| {
            (
                s.mc_service_group_id.to_string(),
                s.status,
                s.cause.as_ref().map(|c| c.to_string()),
            )
        })
        .collect()
}

fn ok(group: &str) -> (String, AffiliationStatus, Option<String>) {
    (group.to_string(), AffiliationStatus::Affiliated, None)
}

fn no(group: &str, cause: &str) -> (String, AffiliationStatus, Option<String>) {
    (
        group.to_string(),
        AffiliationStatus::NotAffiliated,
        Some(cause.to_string()),
    )
}

async fn gms_members(admin: &Client, group: &str) -> BTreeSet<String> {
    admin
        .group_affiliations(&gid(group))
        .await
        .unwrap()
        .members
        .into_iter()
        .map(|m| format!("{}/{}", m.mc_service_id, m.mc_service))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn local_affiliation_checks_policy_and_profile_and_updates_the_gms() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let bob = federation.log_on(BOB, "handset").await;

    let response = bob
        .affiliate(
            MCPTT,
            &[
                gid(OPS),
                gid(DARK),
                gid("sip:nowhere@police.example"),
                gid(STATION),
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.mc_service_id, id(BOB));
    assert_eq!(
        statuses(&response.status_per_mc_service_group_id),
        vec![
            ok(OPS),
            no(DARK, "group-disabled"),
            no("sip:nowhere@police.example", "unknown-group"),
            ok(STATION),
        ]
    );
    // The service must be supported by the group, and listed in the profile.
    let video = bob
        .affiliate(McService::Mcvideo, &[gid(OPS)])
        .await
        .unwrap();
    assert_eq!(
        statuses(&video.status_per_mc_service_group_id),
        vec![no(OPS, "service-not-supported")]
    );
    let carol = federation.log_on(CAROL, "handset").await;
    let refused = carol.affiliate(MCPTT, &[gid(P1)]).await.unwrap();
    assert_eq!(
        statuses(&refused.status_per_mc_service_group_id),
        vec![no(P1, "not-authorized")]
    );

    assert_eq!(
        gms_members(&alice, OPS).await,
        set(&["sip:bob@police.example/mcptt"])
    );
    let mine = bob.affiliations().await.unwrap();
    let groups: Vec<_> = mine
        .affiliations
        .iter()
        .map(|a| a.mc_service_group_id.to_string())
        .collect();
    assert_eq!(groups, [OPS, STATION]);
    assert_eq!(mine.affiliations[0].clients[0].as_str(), "handset");

    // A client may affiliate only itself.
    let forged = GroupAffiliationRequest {
        mc_service_id: id(CAROL),
        mc_service_group_id_list: NonEmpty::one(gid(OPS)),
        mc_service: MCPTT,
    };
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/affiliations",
            federation.node(POLICE).base_url()
        ))
        .bearer_auth(bob.token().unwrap())
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let gone = bob
        .deaffiliate(MCPTT, &[gid(OPS), gid(JOINT)])
        .await
        .unwrap();
    assert_eq!(
        statuses(&gone.status_per_mc_service_group_id),
        vec![
            (OPS.to_string(), AffiliationStatus::NotAffiliated, None),
            no(JOINT, "not-affiliated")
        ]
    );
    assert!(gms_members(&alice, OPS).await.is_empty());
}

#[tokio::test]
async fn affiliation_to_groups_of_a_partner_system_is_decided_by_the_partner() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let fiona = federation.log_on(FIONA, "handset").await;

    // One request mixing home and partner groups: split, sent, merged per group.
    let response = bob
        .affiliate(MCPTT, &[gid(HARBOUR), gid(OPS)])
        .await
        .unwrap();
    assert_eq!(
        statuses(&response.status_per_mc_service_group_id),
        vec![ok(HARBOUR), ok(OPS)]
    );
    assert_eq!(
        gms_members(&frank, HARBOUR).await,
        set(&["sip:bob@police.example/mcptt"]),
        "fire's GMS knows bob"
    );
    assert_eq!(
        gms_members(&alice, OPS).await,
        set(&["sip:bob@police.example/mcptt"])
    );
    let at_police = alice.group_affiliations(&gid(HARBOUR)).await.unwrap();
    assert_eq!(
        at_police.members.len(),
        1,
        "police knows its own user's affiliation to the partner group"
    );

    // fiona (fire) to police groups: the police host decides by its policy.
    let response = fiona
        .affiliate(MCPTT, &[gid(JOINT), gid(OPS), gid(HARBOUR)])
        .await
        .unwrap();
    assert_eq!(
        statuses(&response.status_per_mc_service_group_id),
        vec![ok(JOINT), no(OPS, "not-authorized"), ok(HARBOUR)]
    );
    assert_eq!(
        gms_members(&alice, JOINT).await,
        set(&["sip:fiona@fire.example/mcptt"]),
        "police's GMS knows the partner user"
    );

    // De-affiliation from the partner group reaches the partner (through the outbox,
    // committed with the local change).
    let response = bob.deaffiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    assert_eq!(
        response.status_per_mc_service_group_id[0].status,
        AffiliationStatus::NotAffiliated
    );
    eventually("fire learns bob left", || async {
        (gms_members(&frank, HARBOUR).await == set(&["sip:fiona@fire.example/mcptt"])).then_some(())
    })
    .await;
}

#[tokio::test]
async fn log_off_ends_the_clients_affiliations_at_home_and_at_the_partner() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let handset = federation.log_on(BOB, "handset").await;
    let tablet = federation.log_on(BOB, "tablet").await;

    handset
        .affiliate(MCPTT, &[gid(OPS), gid(HARBOUR), gid(JOINT)])
        .await
        .unwrap();
    tablet.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    assert_eq!(gms_members(&frank, HARBOUR).await.len(), 1);

    handset.log_off().await.unwrap();
    // The tablet still holds ops; harbour and joint are left everywhere.
    assert_eq!(
        gms_members(&alice, OPS).await,
        set(&["sip:bob@police.example/mcptt"])
    );
    assert!(gms_members(&alice, JOINT).await.is_empty());
    eventually("fire learns bob left harbour", || async {
        gms_members(&frank, HARBOUR).await.is_empty().then_some(())
    })
    .await;
    let left: Vec<_> = tablet
        .affiliations()
        .await
        .unwrap()
        .affiliations
        .into_iter()
        .map(|a| (a.mc_service_group_id.to_string(), a.clients.len()))
        .collect();
    assert_eq!(left, [(OPS.to_string(), 1)]);

    tablet.log_off().await.unwrap();
    assert!(gms_members(&alice, OPS).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n2_is_never_exceeded_by_concurrent_requests_of_one_user() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let mut clients = Vec::new();
    for name in ["c1", "c2", "c3", "c4"] {
        clients.push(federation.log_on(BOB, name).await);
    }
    let candidates = [OPS, JOINT, P1, P2, HARBOUR, STATION];
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let client = clients[i % clients.len()].clone();
        let groups: Vec<McServiceGroupId> = (0..1 + i % 3)
            .map(|k| gid(candidates[(i * 7 + k * 5) % candidates.len()]))
            .collect();
        tasks.push(tokio::spawn(async move {
            let response = client
                .affiliate(MCPTT, &groups)
                .await
                .expect("the request is answered");
            (groups, response)
        }));
    }
    let mut reported = BTreeSet::new();
    for task in tasks {
        let (groups, response) = task.await.unwrap();
        let answered: BTreeSet<_> = response
            .status_per_mc_service_group_id
            .iter()
            .map(|s| s.mc_service_group_id.clone())
            .collect();
        assert_eq!(
            answered,
            groups.iter().cloned().collect(),
            "every group gets a status"
        );
        for s in &response.status_per_mc_service_group_id {
            match s.status {
                // A reservation awaiting its host counts towards N2 as a held group.
                AffiliationStatus::Affiliated | AffiliationStatus::Affiliating => {
                    assert!(s.cause.is_none());
                    reported.insert(s.mc_service_group_id.to_string());
                }
                AffiliationStatus::NotAffiliated => {
                    let cause = s
                        .cause
                        .as_ref()
                        .expect("a refused group says why")
                        .to_string();
                    assert!(
                        cause == "n2-limit-reached" || cause == "in-progress",
                        "unexpected refusal {cause}"
                    );
                }
            }
        }
    }
    let held: BTreeSet<String> = clients[0]
        .affiliations()
        .await
        .unwrap()
        .affiliations
        .into_iter()
        .map(|a| a.mc_service_group_id.to_string())
        .collect();
    assert!(held.len() <= 3, "N2 = 3 but bob holds {held:?}");
    assert_eq!(held.len(), 3, "the limit is reached");
    assert_eq!(
        reported, held,
        "what was reported affiliated is what is held"
    );
    // The GMS views agree with the serving server.
    let mut gms_view = BTreeSet::new();
    for group in candidates {
        let admin = if group.ends_with("fire.example") {
            &frank
        } else {
            &alice
        };
        if !gms_members(admin, group).await.is_empty() {
            gms_view.insert(group.to_string());
        }
    }
    assert_eq!(gms_view, held);
}

#[tokio::test]
async fn mandatory_remote_change_applies_at_once_at_home_and_partner_and_targets_confirm() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let mut bob_events = bob.events(None).await.unwrap();
    let mut alice_events = alice.events(None).await.unwrap();
    bob.affiliate(MCPTT, &[gid(JOINT)]).await.unwrap();

    let request = GroupAffiliationChangeRequest {
        mc_service_id: id(ALICE),
        mc_service_id_list: NonEmpty::new(vec![id(BOB), id(CAROL), id(FIONA)]).unwrap(),
        mc_service_group_id_list: NonEmpty::new(vec![
            GroupAffiliationChange {
                mc_service_group_id: gid(OPS),
                action: AffiliationChangeAction::Affiliate,
            },
            GroupAffiliationChange {
                mc_service_group_id: gid(HARBOUR),
                action: AffiliationChangeAction::Affiliate,
            },
            GroupAffiliationChange {
                mc_service_group_id: gid(JOINT),
                action: AffiliationChangeAction::Deaffiliate,
            },
        ])
        .unwrap(),
        change_request_type: ChangeRequestType::Mandatory,
        mc_service: MCPTT,
        generation: None,
    };
    let record = alice.request_change(&request).await.unwrap();
    assert_eq!(record.state, AffiliationChangeState::Completed);
    let response = record.response.clone().unwrap();
    let of = |user: &str| -> Vec<(String, AffiliationStatus, Option<String>)> {
        response
            .affiliation_status_per_mc_service_group_id
            .iter()
            .filter(|s| s.mc_service_id.as_str() == user)
            .map(|s| {
                (
                    s.mc_service_group_id.to_string(),
                    s.status,
                    s.cause.as_ref().map(|c| c.to_string()),
                )
            })
            .collect()
    };
    assert_eq!(
        of(BOB),
        vec![
            ok(OPS),
            ok(HARBOUR),
            (JOINT.to_string(), AffiliationStatus::NotAffiliated, None)
        ]
    );
    assert!(
        of(CAROL)
            .iter()
            .all(|s| s.2.as_deref() == Some("target-not-logged-on")),
        "{:?}",
        of(CAROL)
    );
    assert!(
        of(FIONA)
            .iter()
            .all(|s| s.2.as_deref() == Some("user-not-served-here"))
    );

    // The change is in effect at home, at the partner host, and in both GMSs.
    assert_eq!(
        gms_members(&alice, OPS).await,
        set(&["sip:bob@police.example/mcptt"])
    );
    assert!(gms_members(&alice, JOINT).await.is_empty());
    assert_eq!(
        gms_members(&frank, HARBOUR).await,
        set(&["sip:bob@police.example/mcptt"])
    );

    // Step 7a: bob's client is told; 7b: it confirms; the requester hears of it.
    let told = next_event(&mut bob_events).await;
    let change_id = match told.event {
        ClientEvent::AffiliationChangeRequested {
            change_id,
            request: r,
        } => {
            assert_eq!(r.change_request_type, ChangeRequestType::Mandatory);
            change_id
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(change_id, record.change_id);
    let acknowledged = bob
        .answer_change(&change_id, ChangeDecision::Acknowledge, None)
        .await
        .unwrap();
    let bob_state = acknowledged
        .targets
        .iter()
        .find(|t| t.mc_service_id == id(BOB))
        .unwrap()
        .state;
    assert_eq!(bob_state, TargetState::Acknowledged);
    assert_eq!(
        next_event(&mut alice_events).await.event,
        ClientEvent::AffiliationChangeAcknowledged {
            change_id: change_id.clone(),
            mc_service_id: id(BOB)
        }
    );
    let twice = bob
        .answer_change(&change_id, ChangeDecision::Acknowledge, None)
        .await
        .unwrap_err();
    assert_eq!(
        (twice.status(), twice.code()),
        (Some(409), Some("change-already-answered"))
    );

    // Only authorised users may change others' affiliations.
    let carol = federation.log_on(CAROL, "handset").await;
    let mut by_carol = request.clone();
    by_carol.mc_service_id = id(CAROL);
    let err = carol.request_change(&by_carol).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );
}

#[tokio::test]
async fn negotiated_remote_change_waits_for_each_target_and_gives_up_on_silence() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let carol = federation.log_on(CAROL, "handset").await;
    let mut alice_events = alice.events(None).await.unwrap();
    let mut bob_events = bob.events(None).await.unwrap();

    let request = |targets: Vec<&str>| GroupAffiliationChangeRequest {
        mc_service_id: id(ALICE),
        mc_service_id_list: NonEmpty::new(targets.into_iter().map(id).collect()).unwrap(),
        mc_service_group_id_list: NonEmpty::new(vec![
            GroupAffiliationChange {
                mc_service_group_id: gid(OPS),
                action: AffiliationChangeAction::Affiliate,
            },
            GroupAffiliationChange {
                mc_service_group_id: gid(HARBOUR),
                action: AffiliationChangeAction::Affiliate,
            },
        ])
        .unwrap(),
        change_request_type: ChangeRequestType::Negotiated,
        mc_service: MCPTT,
        generation: None,
    };
    let record = alice
        .request_change(&request(vec![BOB, CAROL]))
        .await
        .unwrap();
    assert_eq!(record.state, AffiliationChangeState::Pending);
    assert!(record.response.is_none());
    assert!(
        gms_members(&alice, OPS).await.is_empty(),
        "nothing changes before the targets answer"
    );

    // bob accepts: the ordinary procedures run, partner host included.
    match next_event(&mut bob_events).await.event {
        ClientEvent::AffiliationChangeRequested { change_id, .. } => {
            assert_eq!(change_id, record.change_id)
        }
        other => panic!("unexpected {other:?}"),
    }
    let after_bob = bob
        .answer_change(&record.change_id, ChangeDecision::Accept, None)
        .await
        .unwrap();
    assert_eq!(
        after_bob.state,
        AffiliationChangeState::Pending,
        "carol has not answered"
    );
    assert_eq!(
        gms_members(&frank, HARBOUR).await,
        set(&["sip:bob@police.example/mcptt"])
    );
    // Someone else cannot answer for carol, and the wrong kind of answer is refused.
    let frank_err = frank
        .answer_change(&record.change_id, ChangeDecision::Accept, None)
        .await
        .unwrap_err();
    assert_eq!(
        frank_err.status(),
        Some(404),
        "fire does not know police's change"
    );
    let wrong = carol
        .answer_change(&record.change_id, ChangeDecision::Acknowledge, None)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("change-already-answered"));

    carol
        .answer_change(
            &record.change_id,
            ChangeDecision::Reject,
            Some("on a break".into()),
        )
        .await
        .unwrap();
    let completed = match next_event(&mut alice_events).await.event {
        ClientEvent::AffiliationChangeCompleted {
            change_id,
            response,
        } => {
            assert_eq!(change_id, record.change_id);
            response
        }
        other => panic!("unexpected {other:?}"),
    };
    let causes: BTreeSet<_> = completed
        .affiliation_status_per_mc_service_group_id
        .iter()
        .map(|s| {
            (
                s.mc_service_id.to_string(),
                s.mc_service_group_id.to_string(),
                s.status,
                s.cause.as_ref().map(|c| c.to_string()),
            )
        })
        .collect();
    assert!(causes.contains(&(
        BOB.into(),
        HARBOUR.into(),
        AffiliationStatus::Affiliated,
        None
    )));
    assert!(causes.contains(&(BOB.into(), OPS.into(), AffiliationStatus::Affiliated, None)));
    assert!(causes.contains(&(
        CAROL.into(),
        OPS.into(),
        AffiliationStatus::NotAffiliated,
        Some("target-rejected".into())
    )));
    assert_eq!(
        gms_members(&alice, OPS).await,
        set(&["sip:bob@police.example/mcptt"])
    );

    // A target that does not answer is given up after the configured time (2 s here).
    let silent = alice.request_change(&request(vec![CAROL])).await.unwrap();
    let done = eventually("the unanswered change completes", || async {
        let r = alice.change(&silent.change_id).await.ok()?;
        (r.state == AffiliationChangeState::Completed).then_some(r)
    })
    .await;
    assert_eq!(done.targets[0].state, TargetState::NoAnswer);
    let late = carol
        .answer_change(&silent.change_id, ChangeDecision::Accept, None)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Some("change-already-answered"));
    assert_eq!(
        gms_members(&alice, OPS).await,
        set(&["sip:bob@police.example/mcptt"]),
        "carol was not affiliated"
    );
}

#[tokio::test]
async fn affiliations_survive_a_restart_and_ended_sessions_are_cleaned_at_start() {
    let mut federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let carol = federation.log_on(CAROL, "handset").await;
    bob.affiliate(MCPTT, &[gid(OPS), gid(HARBOUR)])
        .await
        .unwrap();
    carol.affiliate(MCPTT, &[gid(JOINT)]).await.unwrap();
    let token = bob.token().unwrap().to_string();

    federation.stop(POLICE).await;
    // Carol's session ended (it expired, or she logged off) and police died before
    // ending her affiliations: the store holds the first of a log-off's two commits.
    // (A session row only ever leaves through the store's end_session, which records
    // the client for the next start.)
    crate::support::end_sessions_in_store(&federation.members[POLICE].config, CAROL).await;
    federation.start(POLICE).await;

    let bob = Client::new(&federation.node(POLICE).base_url())
        .unwrap()
        .with_token(token);
    let held: Vec<_> = bob
        .affiliations()
        .await
        .unwrap()
        .affiliations
        .into_iter()
        .map(|a| a.mc_service_group_id.to_string())
        .collect();
    assert_eq!(
        held,
        [HARBOUR, OPS],
        "bob's affiliations survive (ordered by group)"
    );
    assert_eq!(
        gms_members(&frank, HARBOUR).await,
        set(&["sip:bob@police.example/mcptt"])
    );
    let alice = Client::new(&federation.node(POLICE).base_url())
        .unwrap()
        .with_token(alice.token().unwrap());
    assert!(
        gms_members(&alice, JOINT).await.is_empty(),
        "carol's ended session took its affiliation with it"
    );
}
