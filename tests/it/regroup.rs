//! Preconfigured group regroup across three MC systems (TS 23.280 §10.15.3.3.1) and its
//! cancellation: constituent groups homed in two systems, affiliated members served in all
//! three.

use std::collections::BTreeSet;

use mcx_client::Client;
use mcx_model::api::{RegroupRecord, RegroupState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::regroup::*;
use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::Permission;
use mcx_model::{McService, McServiceGroupId, NonEmpty};

use crate::federation::*;
use crate::support::*;

const ALICE: &str = "sip:alice@police.example";
const BOB: &str = "sip:bob@police.example";
const CAROL: &str = "sip:carol@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FIONA: &str = "sip:fiona@fire.example";
const AMY: &str = "sip:amy@ambulance.example";
const ANDY: &str = "sip:andy@ambulance.example";

const OPS: &str = "sip:ops@police.example";
const PRE: &str = "sip:pre@police.example";
const HARBOUR: &str = "sip:harbour@fire.example";

const MCPTT: McService = McService::Mcptt;

fn group(name: &str, members: &[&str]) -> GroupConfiguration {
    GroupConfiguration {
        on_network_group_priority: Some(4),
        ..GroupConfiguration::new(name, members.iter().map(|m| id(m)), NonEmpty::one(MCPTT))
    }
}

async fn start(police_to_ambulance: Relation) -> Federation {
    let groups: &[&str] = &[OPS, HARBOUR];
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![
                profiled_user(ALICE, &[(MCPTT, &[OPS], 4)], &Permission::ALL),
                profiled_user(BOB, &[(MCPTT, groups, 4)], &[]),
                profiled_user(CAROL, &[(MCPTT, groups, 4)], &[]),
            ],
            vec![Relation::full(FIRE), police_to_ambulance],
        ),
        (
            FIRE,
            vec![
                profiled_user(FRANK, &[(MCPTT, &[HARBOUR], 4)], &Permission::ALL),
                profiled_user(FIONA, &[(MCPTT, groups, 4)], &[]),
            ],
            vec![Relation::full(POLICE), Relation::full(AMBULANCE)],
        ),
        (
            AMBULANCE,
            vec![
                profiled_user(AMY, &[(MCPTT, &[HARBOUR], 4)], &Permission::ALL),
                profiled_user(ANDY, &[(MCPTT, groups, 4)], &[]),
            ],
            vec![Relation::full(POLICE), Relation::full(FIRE)],
        ),
    ]);
    federation.start_all().await;
    let alice = federation.log_on(ALICE, "console").await;
    alice
        .create_group(
            &gid(OPS),
            &group("Operations", &[ALICE, BOB, CAROL, FIONA, ANDY]),
        )
        .await
        .unwrap();
    let mut pre = group("Regroup template", &[ALICE]);
    pre.preconfigured_group_use_only = true;
    alice.create_group(&gid(PRE), &pre).await.unwrap();
    let frank = federation.log_on(FRANK, "console").await;
    frank
        .create_group(&gid(HARBOUR), &group("Harbour", &[FRANK, FIONA, ANDY, BOB]))
        .await
        .unwrap();
    federation
}

async fn federation() -> Federation {
    start(Relation::full(AMBULANCE)).await
}

fn request(groups: &[&str], regroup_id: Option<&str>) -> PreconfiguredRegroupRequest {
    PreconfiguredRegroupRequest {
        mc_service_id: id(ALICE),
        regroup_group_id: regroup_id.map(gid),
        preconfigured_group_id: gid(PRE),
        targets: RegroupTargets::McServiceGroupIdList(
            NonEmpty::new(groups.iter().map(|g| gid(g)).collect()).unwrap(),
        ),
        mc_service: MCPTT,
    }
}

async fn regrouped_into(
    federation: &Federation,
    domain: &str,
    group: &str,
) -> Option<McServiceGroupId> {
    federation
        .node(domain)
        .system()
        .gms
        .group_for_server(&gid(group))
        .await
        .unwrap()
        .and_then(|g| g.configuration.regrouped_into)
}

async fn regroups_at(federation: &Federation, admin: &str) -> Vec<RegroupRecord> {
    federation
        .log_on(admin, "status")
        .await
        .regroups()
        .await
        .unwrap()
        .regroups
}

async fn regroup_event(events: &mut mcx_client::EventStream) -> ClientPreconfiguredRegroupRequest {
    match next_event(events).await.event {
        ClientEvent::RegroupRequested { request } => request,
        other => panic!("expected a regroup request, got {other:?}"),
    }
}

async fn cancel_event(events: &mut mcx_client::EventStream) -> PreconfiguredRegroupCancelRequest {
    match next_event(events).await.event {
        ClientEvent::RegroupCancelled { request } => request,
        other => panic!("expected a regroup cancellation, got {other:?}"),
    }
}

#[tokio::test]
async fn a_regroup_across_three_systems_reaches_every_affiliated_member_until_cancelled() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let fiona = federation.log_on(FIONA, "handset").await;
    let andy = federation.log_on(ANDY, "handset").await;
    // Members served in all three systems, affiliated to groups homed in two of them.
    bob.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    fiona
        .affiliate(MCPTT, &[gid(OPS), gid(HARBOUR)])
        .await
        .unwrap();
    andy.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    let mut bob_events = bob.events(None).await.unwrap();
    let mut fiona_events = fiona.events(None).await.unwrap();
    let mut andy_events = andy.events(None).await.unwrap();

    let record = alice
        .regroup(&request(&[OPS, HARBOUR], Some("sip:storm@police.example")))
        .await
        .unwrap();
    let regroup = gid("sip:storm@police.example");
    assert_eq!(record.regroup_group_id, regroup);
    // Step 4b: authorised, with the regroup group ID.
    assert_eq!(
        record.request_return.as_ref().unwrap().authorization,
        RegroupAuthorization::Authorized {
            regroup_group_id: regroup.clone()
        }
    );
    // Step 12: the combined result, one part per system.
    let response = record.response.as_ref().unwrap();
    assert!(response.result.is_success());
    let parts: BTreeSet<_> = response
        .systems
        .iter()
        .map(|s| {
            (
                s.system.to_string(),
                s.result.is_success(),
                s.affiliated_member_count,
            )
        })
        .collect();
    assert_eq!(
        parts,
        BTreeSet::from([
            (POLICE.to_string(), true, 1),
            (FIRE.to_string(), true, 1),
            (AMBULANCE.to_string(), true, 1),
        ])
    );

    // Step 7: every affiliated member's client is told, with the groups it is affiliated to.
    assert_eq!(
        regroup_event(&mut bob_events)
            .await
            .mc_service_group_id_list
            .as_slice(),
        [gid(OPS)]
    );
    let to_fiona = regroup_event(&mut fiona_events).await;
    assert_eq!(to_fiona.regroup_group_id, regroup);
    assert_eq!(to_fiona.preconfigured_group_id, gid(PRE));
    assert_eq!(to_fiona.mc_service_group_id_list.len(), 2);
    assert_eq!(
        regroup_event(&mut andy_events)
            .await
            .mc_service_group_id_list
            .as_slice(),
        [gid(HARBOUR)]
    );

    // Step 9: a member acknowledges; its system records it.
    let acked = fiona.acknowledge_regroup(&regroup).await.unwrap();
    assert!(
        acked
            .members
            .iter()
            .any(|m| m.mc_service_id == id(FIONA) && m.acknowledged)
    );

    // The regrouped state is in the GMSs: the constituents name the regroup group, and the
    // regroup group (with the preconfigured group's key material) reached the partners.
    assert_eq!(
        regrouped_into(&federation, POLICE, OPS).await,
        Some(regroup.clone())
    );
    assert_eq!(
        regrouped_into(&federation, FIRE, HARBOUR).await,
        Some(regroup.clone())
    );
    let pre_key = alice.group(&gid(PRE)).await.unwrap().key_material;
    for domain in [FIRE, AMBULANCE] {
        let copy = eventually(&format!("{domain} holds the regroup group"), || async {
            federation
                .node(domain)
                .system()
                .gms
                .group_for_server(&regroup)
                .await
                .unwrap()
        })
        .await;
        let regrouped = copy
            .configuration
            .on_network_regrouped
            .expect("it is a regroup group");
        assert_eq!(regrouped.preconfigured_group_id, gid(PRE));
        assert_eq!(
            copy.key_material, pre_key,
            "the security parameters travel with it"
        );
    }
    // Partner users get the regroup group from their own GMS.
    assert_eq!(
        andy.group(&regroup).await.unwrap().mc_service_group_id,
        regroup
    );

    // A client affiliating to a regrouped group while the regroup is in effect joins it.
    let carol = federation.log_on(CAROL, "handset").await;
    let mut carol_events = carol.events(None).await.unwrap();
    let joined = carol.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    assert_eq!(
        joined.status_per_mc_service_group_id[0].status,
        mcx_model::flows::affiliation::AffiliationStatus::Affiliated
    );
    assert_eq!(
        regroup_event(&mut carol_events).await.regroup_group_id,
        regroup
    );
    // A client leaving its only regrouped group leaves the regroup.
    bob.deaffiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    assert_eq!(
        cancel_event(&mut bob_events).await.regroup_group_id,
        regroup
    );

    // Cancellation: every member, in every system, is told; nothing of it remains.
    let cancelled = alice.cancel_regroup(&regroup).await.unwrap();
    assert!(cancelled.result.is_success());
    for events in [&mut fiona_events, &mut andy_events, &mut carol_events] {
        assert_eq!(cancel_event(events).await.regroup_group_id, regroup);
    }
    for admin in [ALICE, FRANK, AMY] {
        assert!(
            regroups_at(&federation, admin).await.is_empty(),
            "{admin}'s system still has the regroup"
        );
    }
    assert_eq!(regrouped_into(&federation, POLICE, OPS).await, None);
    assert_eq!(regrouped_into(&federation, FIRE, HARBOUR).await, None);
    assert!(
        federation
            .node(POLICE)
            .system()
            .gms
            .group_for_server(&regroup)
            .await
            .unwrap()
            .is_none()
    );
    eventually("the partners drop the regroup group", || async {
        let fire = federation
            .node(FIRE)
            .system()
            .gms
            .group_for_server(&regroup)
            .await
            .unwrap();
        let ambulance = federation
            .node(AMBULANCE)
            .system()
            .gms
            .group_for_server(&regroup)
            .await
            .unwrap();
        (fire.is_none() && ambulance.is_none()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn regroup_rejects_and_refusals_say_why_and_change_nothing() {
    let federation = start(Relation {
        partner: AMBULANCE,
        inbound: all_capabilities(),
        outbound: all_capabilities()
            .into_iter()
            .filter(|c| *c != Capability::Regroup)
            .collect(),
        policy: LocalGroupPolicy::default(),
    })
    .await;
    let alice = federation.log_on(ALICE, "console").await;
    let bob = federation.log_on(BOB, "handset").await;

    // The initiator must be authorised (4b: not authorised).
    let mut by_bob = request(&[OPS], None);
    by_bob.mc_service_id = id(BOB);
    let err = bob.regroup(&by_bob).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );

    // Unknown groups, here or at a partner.
    let err = alice
        .regroup(&request(&["sip:nothing@police.example"], None))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("unknown-group"))
    );
    let err = alice
        .regroup(&request(&[OPS, "sip:nothing@fire.example"], None))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("unknown-group")),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(
        regrouped_into(&federation, POLICE, OPS).await,
        None,
        "nothing half-done"
    );

    // A partner homing a group must be authorised for regroup.
    let err = alice
        .regroup(&request(&["sip:stretcher@ambulance.example"], None))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("partner-not-authorized"))
    );

    // Already regrouped (4a), and a regroup group ID in use.
    let first = alice
        .regroup(&request(&[OPS], Some("sip:one@police.example")))
        .await
        .unwrap();
    let err = alice.regroup(&request(&[OPS], None)).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("already-regrouped"))
    );
    assert!(err.to_string().contains("sip:one@police.example"), "{err}");
    let err = alice
        .regroup(&request(&[HARBOUR], Some("sip:one@police.example")))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("regroup-group-id-in-use"))
    );
    // A requested ID that is an existing group is not accepted: another is assigned.
    alice.cancel_regroup(&first.regroup_group_id).await.unwrap();
    let assigned = alice.regroup(&request(&[OPS], Some(PRE))).await.unwrap();
    assert_ne!(assigned.regroup_group_id, gid(PRE));
    assert!(
        assigned
            .regroup_group_id
            .as_str()
            .starts_with("sip:regroup-")
    );
    // User regroup is not offered.
    let mut users = request(&[OPS], None);
    users.targets = RegroupTargets::McServiceUserIdList(NonEmpty::one(id(BOB)));
    let err = alice.regroup(&users).await.unwrap_err();
    assert_eq!(err.code(), Some("user-regroup-not-supported"));
}

#[tokio::test]
async fn a_partner_homing_a_group_that_is_down_stops_the_regroup_and_nothing_is_left() {
    let mut federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;
    let andy = federation.log_on(ANDY, "handset").await;
    andy.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    let mut andy_events = andy.events(None).await.unwrap();
    // A member served by the initiator's own system, too.
    let bob = federation.log_on(BOB, "handset").await;
    bob.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    let mut bob_events = bob.events(None).await.unwrap();
    let mut alice_events = alice.events(None).await.unwrap();
    federation.stop(FIRE).await;

    // Fire cannot answer: at its deadline the regroup is abandoned. The initiator hears it
    // in the response if the deadline falls within the request's wait, else as step 12's
    // event after a response saying the regroup is forming.
    let answered = alice.regroup(&request(&[OPS, HARBOUR], None)).await;
    match next_event(&mut alice_events).await.event {
        ClientEvent::RegroupRequestReturn(_) => {}
        other => panic!("expected the request return, got {other:?}"),
    }
    let why = match answered {
        Err(err) => {
            assert_eq!(
                (err.status(), err.code()),
                (Some(503), Some("partner-unreachable"))
            );
            err.to_string()
        }
        Ok(forming) => {
            assert_eq!(forming.state, RegroupState::Forming);
            assert!(forming.answers_due.is_some());
            let response = match next_event(&mut alice_events).await.event {
                ClientEvent::RegroupCompleted { response } => response,
                other => panic!("expected the regroup's outcome, got {other:?}"),
            };
            assert!(!response.result.is_success());
            serde_json::to_string(&response.result).unwrap()
        }
    };
    assert!(
        why.contains("partner-unreachable") && why.contains("fire.example"),
        "{why}"
    );
    assert_eq!(regrouped_into(&federation, POLICE, OPS).await, None);
    assert!(regroups_at(&federation, ALICE).await.is_empty());
    // Ambulance took part before the failure was known: it is told to cancel.
    let _told = regroup_event(&mut andy_events).await;
    assert_eq!(cancel_event(&mut andy_events).await.mc_service_id, id(ANDY));
    assert!(regroups_at(&federation, AMY).await.is_empty());
    // The initiator's own member was told and is told it ended; nothing of the regroup
    // group is left in his affiliations (it would count toward his N2).
    let _told = regroup_event(&mut bob_events).await;
    assert_eq!(cancel_event(&mut bob_events).await.mc_service_id, id(BOB));
    let held: Vec<_> = bob
        .affiliations()
        .await
        .unwrap()
        .affiliations
        .into_iter()
        .map(|a| a.mc_service_group_id.to_string())
        .collect();
    assert_eq!(held, [OPS]);
}

#[tokio::test]
async fn a_regroup_survives_restarts_until_cancelled() {
    let mut federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;
    let fiona = federation.log_on(FIONA, "handset").await;
    fiona.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    let record = alice
        .regroup(&request(&[OPS, HARBOUR], None))
        .await
        .unwrap();
    let token = alice.token().unwrap().to_string();
    federation.stop(POLICE).await;
    federation.stop(FIRE).await;
    federation.start(FIRE).await;
    federation.start(POLICE).await;
    let alice = Client::new(&federation.node(POLICE).base_url())
        .unwrap()
        .with_token(token);
    let listed = alice.regroups().await.unwrap().regroups;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].regroup_group_id, record.regroup_group_id);
    let at_fire = regroups_at(&federation, FRANK).await;
    assert_eq!(
        at_fire[0].members.len(),
        1,
        "fire still has fiona affiliated to the regroup group"
    );
    alice
        .cancel_regroup(&record.regroup_group_id)
        .await
        .unwrap();
    eventually("fire ends its part", || async {
        regroups_at(&federation, FRANK)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

/// The results of `n` simultaneous regroup requests: the regroups made and the refusals.
async fn simultaneous(
    client: &Client,
    n: usize,
    request: &PreconfiguredRegroupRequest,
) -> (Vec<RegroupRecord>, Vec<mcx_client::ClientError>) {
    let answers = futures_util::future::join_all((0..n).map(|_| client.regroup(request))).await;
    let mut made = Vec::new();
    let mut refused = Vec::new();
    for answer in answers {
        match answer {
            Ok(record) => made.push(record),
            Err(e) => refused.push(e),
        }
    }
    (made, refused)
}

#[tokio::test]
async fn of_simultaneous_regroups_of_a_group_exactly_one_is_made_at_its_home() {
    // The built-in example: alice regroups patrol five times at once (issue 11, 1).
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let patrol = PreconfiguredRegroupRequest {
        mc_service_id: id(ALICE),
        regroup_group_id: None,
        preconfigured_group_id: gid("sip:regroup-template@police.example"),
        targets: RegroupTargets::McServiceGroupIdList(NonEmpty::one(gid(
            "sip:patrol@police.example",
        ))),
        mc_service: MCPTT,
    };
    let (made, refused) = simultaneous(&alice, 5, &patrol).await;
    assert_eq!(made.len(), 1, "refusals: {refused:?}");
    for err in &refused {
        assert_eq!(
            (err.status(), err.code()),
            (Some(409), Some("already-regrouped")),
            "{err}"
        );
    }
    let listed = alice.regroups().await.unwrap().regroups;
    assert_eq!(listed.len(), 1, "only the winner is in effect");
    // Step 4a went to the initiator's client for each loser, as the flow it is.
    let trace = alice.trace(0, 10_000).await.unwrap();
    let rejects = trace
        .entries
        .iter()
        .filter(|e| e.flow == "Preconfigured regroup reject")
        .count();
    assert_eq!(rejects, refused.len());
    let winner = made[0].regroup_group_id.clone();
    let marked = alice
        .group(&gid("sip:patrol@police.example"))
        .await
        .unwrap()
        .configuration
        .regrouped_into;
    assert_eq!(marked, Some(winner.clone()));
    // Cancelling the one in effect leaves nothing regrouped.
    alice.cancel_regroup(&winner).await.unwrap();
    assert!(alice.regroups().await.unwrap().regroups.is_empty());
    let marked = alice
        .group(&gid("sip:patrol@police.example"))
        .await
        .unwrap()
        .configuration
        .regrouped_into;
    assert_eq!(marked, None);
    // And it can be regrouped again.
    assert_eq!(simultaneous(&alice, 1, &patrol).await.0.len(), 1);
}

#[tokio::test]
async fn of_simultaneous_regroups_of_a_partner_group_exactly_one_is_made_everywhere() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;
    let (made, refused) = simultaneous(&alice, 5, &request(&[HARBOUR], None)).await;
    assert_eq!(made.len(), 1, "refusals: {refused:?}");
    for err in &refused {
        assert_eq!(
            (err.status(), err.code()),
            (Some(409), Some("already-regrouped")),
            "{err}"
        );
        assert!(err.to_string().contains("nothing was changed"), "{err}");
    }
    let winner = made[0].regroup_group_id.clone();
    assert_eq!(
        regrouped_into(&federation, FIRE, HARBOUR).await,
        Some(winner.clone())
    );
    for admin in [ALICE, FRANK] {
        let at = regroups_at(&federation, admin).await;
        assert_eq!(at.len(), 1, "{admin}'s system: {at:?}");
        assert_eq!(at[0].regroup_group_id, winner);
    }
    // Ambulance took part in every attempt; the losers' parts are cancelled.
    eventually("ambulance holds only the regroup in effect", || async {
        let at = regroups_at(&federation, AMY).await;
        (at.len() == 1 && at[0].regroup_group_id == winner).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_group_taking_part_in_a_regroup_cannot_be_deleted_in_any_system() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let record = alice
        .regroup(&request(&[OPS, HARBOUR], None))
        .await
        .unwrap();
    let regroup = record.regroup_group_id.clone();
    for (admin, group) in [(&alice, OPS), (&frank, HARBOUR)] {
        let err = admin.delete_group(&gid(group), None).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(409), Some("group-in-regroup")),
            "{err}"
        );
        assert!(err.to_string().contains(regroup.as_str()), "{err}");
    }
    // The regroup group itself goes with its regroup, not by an administrator.
    let err = alice.delete_group(&regroup, None).await.unwrap_err();
    assert_eq!(err.code(), Some("group-in-regroup"), "{err}");
    // Nothing changed: the regroup is in effect in every system, the groups exist.
    for admin in [ALICE, FRANK, AMY] {
        assert_eq!(regroups_at(&federation, admin).await.len(), 1, "{admin}");
    }
    assert_eq!(
        regrouped_into(&federation, FIRE, HARBOUR).await,
        Some(regroup.clone())
    );
    // Once cancelled, the groups may go.
    alice.cancel_regroup(&regroup).await.unwrap();
    alice.delete_group(&gid(OPS), None).await.unwrap();
    eventually("fire's harbour is no longer regrouped", || async {
        (regrouped_into(&federation, FIRE, HARBOUR).await.is_none()).then_some(())
    })
    .await;
    frank.delete_group(&gid(HARBOUR), None).await.unwrap();
}

async fn regroup_affiliated(
    federation: &Federation,
    admin: &str,
    regroup: &McServiceGroupId,
) -> Option<BTreeSet<String>> {
    let client = federation.log_on(admin, "viewer").await;
    let view = client.group_affiliations(regroup).await.ok()?;
    Some(
        view.members
            .into_iter()
            .map(|m| m.mc_service_id.to_string())
            .collect(),
    )
}

#[tokio::test]
async fn regrouped_clients_are_affiliated_to_the_regroup_group_in_every_gms_view() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let fiona = federation.log_on(FIONA, "handset").await;
    let andy = federation.log_on(ANDY, "handset").await;
    bob.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    fiona.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    andy.affiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    let regroup = alice
        .regroup(&request(&[OPS, HARBOUR], None))
        .await
        .unwrap()
        .regroup_group_id;

    // The primary's GMS: every regrouped member of every system (step 10, 5b).
    let everyone: BTreeSet<String> = [BOB, FIONA, ANDY].iter().map(|u| u.to_string()).collect();
    eventually("police's GMS has every regrouped member", || async {
        (regroup_affiliated(&federation, ALICE, &regroup)
            .await
            .as_ref()
            == Some(&everyone))
        .then_some(())
    })
    .await;
    // Each partner's view: its own users affiliated to the regroup group.
    for (admin, user) in [(FRANK, FIONA), (AMY, ANDY)] {
        eventually(&format!("{admin}'s view of the regroup group"), || async {
            (regroup_affiliated(&federation, admin, &regroup).await
                == Some(BTreeSet::from([user.to_string()])))
            .then_some(())
        })
        .await;
    }
    // It counts like any other affiliation: the member's own list shows it.
    let mine = fiona.affiliations().await.unwrap();
    assert!(
        mine.affiliations
            .iter()
            .any(|g| g.mc_service_group_id == regroup),
        "{mine:?}"
    );
    // Leaving the regrouped group leaves the regroup group, at the primary too.
    andy.deaffiliate(MCPTT, &[gid(HARBOUR)]).await.unwrap();
    let rest: BTreeSet<String> = [BOB, FIONA].iter().map(|u| u.to_string()).collect();
    eventually("andy is no longer in police's view", || async {
        (regroup_affiliated(&federation, ALICE, &regroup)
            .await
            .as_ref()
            == Some(&rest))
        .then_some(())
    })
    .await;
    // Released when the regroup ends.
    alice.cancel_regroup(&regroup).await.unwrap();
    eventually("fiona no longer holds the regroup group", || async {
        let mine = fiona.affiliations().await.ok()?;
        (!mine
            .affiliations
            .iter()
            .any(|g| g.mc_service_group_id == regroup))
        .then_some(())
    })
    .await;
    assert!(
        regroup_affiliated(&federation, ALICE, &regroup)
            .await
            .is_none_or(|v| v.is_empty())
    );
}

/// The groups of a regroup request sit at the top, as in every other request; the first
/// release's nested form is still accepted for a release, and the OpenAPI says so.
#[tokio::test]
async fn the_regroup_request_has_its_groups_at_the_top_and_the_nested_form_still_works() {
    let system = crate::support::TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        let (http, url, token) = (
            http.clone(),
            format!("{}/v1/regroups", system.url()),
            alice.token().unwrap().to_string(),
        );
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let base = |lists: serde_json::Value| {
        let mut body = serde_json::json!({
            "mc-service-id": ALICE,
            "preconfigured-group-id": "sip:regroup-template@police.example",
            "mc-service": "mcptt",
        });
        body.as_object_mut()
            .unwrap()
            .extend(lists.as_object().unwrap().clone());
        body
    };

    let (status, record) = post(base(serde_json::json!({
        "mc-service-group-id-list": [OPS],
    })))
    .await;
    assert_eq!(status, 201, "{record}");
    let regroup = gid(record["regroup-group-id"].as_str().unwrap());
    alice.cancel_regroup(&regroup).await.unwrap();

    let (status, record) = post(base(serde_json::json!({
        "targets": {"mc-service-group-id-list": [OPS]},
    })))
    .await;
    assert_eq!(status, 201, "the deprecated form: {record}");
    let regroup = gid(record["regroup-group-id"].as_str().unwrap());
    alice.cancel_regroup(&regroup).await.unwrap();

    // Both at once, or neither, break NOTE 1: refused, nothing made.
    for lists in [
        serde_json::json!({"mc-service-group-id-list": [OPS], "targets": {"mc-service-group-id-list": [OPS]}}),
        serde_json::json!({}),
    ] {
        let (status, problem) = post(base(lists)).await;
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("exactly one"),
            "{problem}"
        );
    }
    assert!(alice.regroups().await.unwrap().regroups.is_empty());

    let openapi: serde_json::Value = http
        .get(format!("{}/v1/openapi.json", system.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema = &openapi["components"]["schemas"]["PreconfiguredRegroupRequest"];
    assert!(
        schema["properties"]["mc-service-group-id-list"].is_object(),
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["targets"]["deprecated"], true,
        "{schema}"
    );
    let description = openapi["paths"]["/v1/regroups"]["post"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(description.contains("Deprecated"), "{description}");
}
