//! Step 2 of the affiliation procedures as the seeds say it (TS 23.280 §10.8.3.1,
//! §10.8.5.1): the serving system checks the user's subscription, the group policy as it
//! holds it, and N2 before anything reaches a target user or a partner host; causes tell
//! the truth.

use std::collections::BTreeSet;
use std::time::Duration;

use mcx_client::{Client, IfMatch};
use mcx_model::api::{AffiliationChangeState, PrimaryLinkState, TargetState};
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::*;
use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::LocalGroupPolicy;
use mcx_model::profile::Permission;
use mcx_model::{McService, NonEmpty};

use crate::federation::*;
use crate::support::*;

const ALICE: &str = "sip:alice@police.example";
const BOB: &str = "sip:bob@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FIONA: &str = "sip:fiona@fire.example";

const OPS: &str = "sip:ops@police.example";
const P1: &str = "sip:p1@police.example";
const P2: &str = "sip:p2@police.example";
const DARK: &str = "sip:dark@police.example";
const VID: &str = "sip:vid@police.example";
const HARBOUR: &str = "sip:harbour@fire.example";
const CLOSED: &str = "sip:closed@fire.example";

const MCPTT: McService = McService::Mcptt;
const MCVIDEO: McService = McService::Mcvideo;

fn group(name: &str, members: &[&str], services: &[McService]) -> GroupConfiguration {
    GroupConfiguration::new(
        name,
        members.iter().map(|m| id(m)),
        NonEmpty::new(services.to_vec()).unwrap(),
    )
}

/// police (alice: every permission; bob: N2 = 2) and fire (frank: administrator;
/// fiona: mcptt and mcvideo); fire's policy for police's groups drops mcvideo.
async fn setup() -> Federation {
    let bob_groups: &[&str] = &[OPS, P1, P2, DARK, HARBOUR, CLOSED];
    let mut to_police = Relation::full(POLICE);
    to_police.policy = LocalGroupPolicy {
        drop_services: vec![MCVIDEO],
        ..LocalGroupPolicy::default()
    };
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![
                profiled_user(ALICE, &[(MCPTT, &[OPS], 8)], &Permission::ALL),
                profiled_user(BOB, &[(MCPTT, bob_groups, 2)], &[]),
            ],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![
                profiled_user(FRANK, &[(MCPTT, &[HARBOUR], 4)], &Permission::ALL),
                profiled_user(FIONA, &[(MCPTT, &[VID], 4), (MCVIDEO, &[VID], 4)], &[]),
            ],
            vec![to_police],
        ),
    ]);
    federation.start_all().await;
    let alice = federation.log_on(ALICE, "console").await;
    for (gid_, config) in [
        (OPS, group("Operations", &[ALICE, BOB], &[MCPTT])),
        (P1, group("P1", &[BOB], &[MCPTT])),
        (P2, group("P2", &[BOB], &[MCPTT])),
        (DARK, {
            let mut g = group("Dark", &[BOB], &[MCPTT]);
            g.on_network_disabled = true;
            g
        }),
        (VID, group("Video", &[ALICE, FIONA], &[MCPTT, MCVIDEO])),
    ] {
        alice.create_group(&gid(gid_), &config).await.unwrap();
    }
    let frank = federation.log_on(FRANK, "console").await;
    frank
        .create_group(&gid(HARBOUR), &group("Harbour", &[FRANK, BOB], &[MCPTT]))
        .await
        .unwrap();
    // Bob is not a member of fire's closed group: fire refuses him.
    frank
        .create_group(&gid(CLOSED), &group("Closed", &[FRANK], &[MCPTT]))
        .await
        .unwrap();
    federation
}

fn change(group: &str, action: AffiliationChangeAction) -> GroupAffiliationChange {
    GroupAffiliationChange {
        mc_service_group_id: gid(group),
        action,
    }
}

fn change_request(
    mode: ChangeRequestType,
    changes: Vec<GroupAffiliationChange>,
) -> GroupAffiliationChangeRequest {
    GroupAffiliationChangeRequest {
        mc_service_id: id(ALICE),
        mc_service_id_list: NonEmpty::one(id(BOB)),
        mc_service_group_id_list: NonEmpty::new(changes).unwrap(),
        change_request_type: mode,
        mc_service: MCPTT,
        generation: None,
    }
}

/// The next event of a stream, which must be a remote change put to the target.
async fn change_requested(
    events: &mut mcx_client::EventStream,
) -> (String, GroupAffiliationChangeRequest) {
    match next_event(events).await.event {
        ClientEvent::AffiliationChangeRequested { change_id, request } => (change_id, request),
        other => panic!("expected a remote change, got {other:?}"),
    }
}

fn causes(
    response: &GroupAffiliationChangeResponse,
) -> BTreeSet<(String, AffiliationStatus, Option<String>)> {
    response
        .affiliation_status_per_mc_service_group_id
        .iter()
        .map(|s| {
            (
                s.mc_service_group_id.to_string(),
                s.status,
                s.cause.as_ref().map(|c| c.to_string()),
            )
        })
        .collect()
}

async fn affiliate(
    client: &Client,
    service: McService,
    groups: &[&str],
) -> Vec<(String, Option<String>)> {
    let groups: Vec<_> = groups.iter().map(|g| gid(g)).collect();
    client
        .affiliate(service, &groups)
        .await
        .unwrap()
        .status_per_mc_service_group_id
        .into_iter()
        .map(|s| {
            (
                s.mc_service_group_id.to_string(),
                s.cause.map(|c| c.to_string()),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_remote_change_reaches_the_target_only_with_what_step_two_allows() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    // Bob holds N2 = 2 groups.
    affiliate(&bob, MCPTT, &[OPS, P1]).await;
    let mut bob_events = bob.events(None).await.unwrap();

    // Negotiated: a disabled group, a group outside his profile, one past N2.
    let refused_all = vec![
        change(DARK, AffiliationChangeAction::Affiliate),
        change(
            "sip:elsewhere@police.example",
            AffiliationChangeAction::Affiliate,
        ),
        change(P2, AffiliationChangeAction::Affiliate),
    ];
    let record = alice
        .request_change(&change_request(
            ChangeRequestType::Negotiated,
            refused_all.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(
        record.state,
        AffiliationChangeState::Completed,
        "nobody to wait for"
    );
    assert_eq!(record.targets[0].state, TargetState::Refused);
    let response = record.response.expect("completed at once");
    assert_eq!(
        causes(&response),
        BTreeSet::from([
            (
                DARK.to_string(),
                AffiliationStatus::NotAffiliated,
                Some("group-disabled".into())
            ),
            (
                "sip:elsewhere@police.example".to_string(),
                AffiliationStatus::NotAffiliated,
                Some("not-authorized".into())
            ),
            (
                P2.to_string(),
                AffiliationStatus::NotAffiliated,
                Some("n2-limit-reached".into())
            ),
        ])
    );
    // Mandatory, the same: nothing is changed, so the target is told nothing.
    let record = alice
        .request_change(&change_request(ChangeRequestType::Mandatory, refused_all))
        .await
        .unwrap();
    assert_eq!(record.targets[0].state, TargetState::Refused);
    assert!(
        record.targets[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("nothing was changed")),
        "{:?}",
        record.targets[0]
    );
    no_event(&mut bob_events, Duration::from_millis(500)).await;

    // Mandatory, mixed: only what was changed reaches the target.
    let record = alice
        .request_change(&change_request(
            ChangeRequestType::Mandatory,
            vec![
                change(P2, AffiliationChangeAction::Affiliate),
                change(P1, AffiliationChangeAction::Deaffiliate),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(record.targets[0].state, TargetState::Applied);
    let (_, told) = change_requested(&mut bob_events).await;
    assert_eq!(
        told.mc_service_group_id_list.as_slice(),
        [change(P1, AffiliationChangeAction::Deaffiliate)],
        "P2 was refused for N2 (P1 was still held): bob is told of P1 only"
    );

    // Negotiated, mixed: bob is asked only for what he may be asked; accepting does it.
    let record = alice
        .request_change(&change_request(
            ChangeRequestType::Negotiated,
            vec![
                change(P2, AffiliationChangeAction::Affiliate),
                change(DARK, AffiliationChangeAction::Affiliate),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(record.targets[0].state, TargetState::Asked);
    let (change_id, asked) = change_requested(&mut bob_events).await;
    assert_eq!(
        asked.mc_service_group_id_list.as_slice(),
        [change(P2, AffiliationChangeAction::Affiliate)]
    );
    let done = bob
        .answer_change(&change_id, mcx_model::api::ChangeDecision::Accept, None)
        .await
        .unwrap();
    let response = done.response.expect("completed");
    assert_eq!(
        causes(&response),
        BTreeSet::from([
            (
                DARK.to_string(),
                AffiliationStatus::NotAffiliated,
                Some("group-disabled".into())
            ),
            (P2.to_string(), AffiliationStatus::Affiliated, None),
        ])
    );
}

#[tokio::test]
async fn the_partner_copy_after_local_policy_binds_the_serving_system() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    let fiona = federation.log_on(FIONA, "handset").await;
    let copy = eventually("fire holds police's video group", || async {
        fiona.group(&gid(VID)).await.ok()
    })
    .await;
    assert_eq!(copy.configuration.supported_services.as_slice(), [MCPTT]);

    // Fire's copy offers no mcvideo: fire refuses, police never hears of it.
    assert_eq!(
        affiliate(&fiona, MCVIDEO, &[VID]).await,
        vec![(VID.to_string(), Some("service-not-supported".into()))]
    );
    assert!(
        alice
            .group_affiliations(&gid(VID))
            .await
            .unwrap()
            .members
            .is_empty(),
        "police accepted an affiliation fire's copy does not offer"
    );
    assert_eq!(
        affiliate(&fiona, MCPTT, &[VID]).await,
        vec![(VID.to_string(), None)]
    );

    // The primary makes the group mcvideo-only: fire's policy refuses the new version;
    // fiona is told her copy is behind, and fire's status shows it.
    let mut fiona_events = fiona.events(None).await.unwrap();
    let current = alice.group(&gid(VID)).await.unwrap();
    let mut video_only = current.configuration.clone();
    video_only.supported_services = NonEmpty::one(MCVIDEO);
    alice
        .update_group(&gid(VID), &video_only, IfMatch::Version(current.version))
        .await
        .unwrap();
    loop {
        match next_event(&mut fiona_events).await.event {
            ClientEvent::GroupCopyBehind {
                mc_service_group_id,
                primary_version,
                reason,
            } => {
                assert_eq!(mc_service_group_id, gid(VID));
                assert_eq!(primary_version, current.version + 1);
                assert!(
                    reason.contains("none of the group's MC services"),
                    "{reason}"
                );
                break;
            }
            ClientEvent::GroupConfigurationChanged { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    let status = frank.interconnection_status(&gid(VID)).await.unwrap();
    let link = status.primary.expect("fire's link to the primary");
    assert_eq!(link.state, PrimaryLinkState::Behind, "{link:?}");
    assert!(
        link.detail
            .unwrap_or_default()
            .contains("refused by local policy")
    );
}

#[tokio::test]
async fn a_place_freed_by_a_host_refusal_is_given_within_the_same_request() {
    let federation = setup().await;
    let bob = federation.log_on(BOB, "handset").await;
    affiliate(&bob, MCPTT, &[OPS]).await;
    // N2 = 2, one held: fire's closed group takes the last place while fire is asked,
    // fire refuses; P1 gets the place in the same request.
    assert_eq!(
        affiliate(&bob, MCPTT, &[CLOSED, P1]).await,
        vec![
            (CLOSED.to_string(), Some("not-authorized".into())),
            (P1.to_string(), None),
        ]
    );
}
