//! Group configuration and key material reach members only (TS 23.280 §10.2.7.1: the GMS
//! is the source of a group's configuration for the users defined as its members): a
//! removed member's subscription ends with the removal, and a partner system left with no
//! member is no longer notified and loses its copy.

use std::time::Duration;

use mcx_client::{Client, IfMatch};
use mcx_model::events::ClientEvent;
use mcx_model::group::{GroupConfiguration, GroupMemberEntry, GroupRecord};
use mcx_model::profile::Permission;
use mcx_model::{McService, NonEmpty};

use crate::federation::*;
use crate::support::*;

const ALICE: &str = "sip:alice@police.example";
const BOB: &str = "sip:bob@police.example";
const CAROL: &str = "sip:carol@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FIONA: &str = "sip:fiona@fire.example";
const FRED: &str = "sip:fred@fire.example";

const TEAM: &str = "sip:team@police.example";
const LIAISON: &str = "sip:liaison@police.example";
const MCPTT: McService = McService::Mcptt;

async fn setup() -> Federation {
    let listed: &[&str] = &[TEAM, LIAISON];
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![
                profiled_user(ALICE, &[(MCPTT, &[], 4)], &Permission::ALL),
                profiled_user(BOB, &[(MCPTT, listed, 4)], &[]),
                profiled_user(CAROL, &[(MCPTT, listed, 4)], &[]),
            ],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![
                profiled_user(FRANK, &[(MCPTT, &[], 4)], &Permission::ALL),
                profiled_user(FIONA, &[(MCPTT, listed, 4)], &[]),
                profiled_user(FRED, &[(MCPTT, listed, 4)], &[]),
            ],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start_all().await;
    let alice = federation.log_on(ALICE, "console").await;
    for (group, members) in [
        (TEAM, &[BOB, CAROL, FIONA, FRED][..]),
        (LIAISON, &[BOB, FIONA][..]),
    ] {
        let config =
            GroupConfiguration::new(group, members.iter().map(|m| id(m)), NonEmpty::one(MCPTT));
        alice.create_group(&gid(group), &config).await.unwrap();
    }
    federation
}

async fn without(admin: &Client, group: &str, member: &str) -> GroupRecord {
    let current = admin.group(&gid(group)).await.unwrap();
    let mut config = current.configuration.clone();
    config
        .list
        .retain(|m: &GroupMemberEntry| m.uri != id(member));
    admin
        .update_group(&gid(group), &config, IfMatch::Version(current.version))
        .await
        .unwrap()
}

/// The key generation a client's next group change event carries, skipping others.
async fn next_key(events: &mut mcx_client::EventStream, group: &str) -> Option<u32> {
    loop {
        if let ClientEvent::GroupConfigurationChanged { group: g, .. } =
            next_event(events).await.event
            && g.mc_service_group_id == gid(group)
        {
            return g.key_material.map(|k| k.generation);
        }
    }
}

#[tokio::test]
async fn a_removed_member_reads_no_key_and_hears_nothing_newer_here_and_at_a_partner() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let bob = federation.log_on(BOB, "handset").await;
    let carol = federation.log_on(CAROL, "handset").await;
    let fiona = eventually("fire holds the team group", || async {
        let fiona = federation.log_on(FIONA, "handset").await;
        fiona.group(&gid(TEAM)).await.ok().map(|_| fiona)
    })
    .await;
    let fred = federation.log_on(FRED, "handset").await;
    for member in [&bob, &carol, &fiona, &fred] {
        member.subscribe(&gid(TEAM)).await.unwrap();
    }
    let mut bob_events = bob.events(None).await.unwrap();
    let mut carol_events = carol.events(None).await.unwrap();
    let mut fiona_events = fiona.events(None).await.unwrap();
    let mut fred_events = fred.events(None).await.unwrap();

    // Carol (police) and fiona (fire) leave the group; then it is rekeyed.
    without(&alice, TEAM, CAROL).await;
    let removed = without(&alice, TEAM, FIONA).await;
    let rekeyed = alice.rekey_group(&gid(TEAM)).await.unwrap();
    let new_key = rekeyed.key_material.as_ref().map(|k| k.generation);
    assert!(new_key > removed.key_material.as_ref().map(|k| k.generation));

    // Remaining members get the new key, at home and at the partner.
    for events in [&mut bob_events, &mut fred_events] {
        let mut seen = None;
        while seen != new_key {
            seen = next_key(events, TEAM).await;
        }
    }
    eventually("fred reads the new key at fire", || async {
        let g = fred.group(&gid(TEAM)).await.ok()?;
        (g.key_material.map(|k| k.generation) == new_key).then_some(())
    })
    .await;
    // The removed ones: nothing newer than their removal, and no key when they read.
    for (events, who) in [(&mut carol_events, CAROL), (&mut fiona_events, FIONA)] {
        while let Ok(Some(Ok(event))) = tokio::time::timeout(
            Duration::from_millis(700),
            futures_util::StreamExt::next(events),
        )
        .await
        {
            if let ClientEvent::GroupConfigurationChanged { group, .. } = &event.event {
                assert!(
                    group.version < removed.version || group.configuration.is_member(&id(who)),
                    "{who} was notified of version {} after leaving",
                    group.version
                );
                assert_ne!(group.key_material.as_ref().map(|k| k.generation), new_key);
            }
        }
    }
    let read = carol.group(&gid(TEAM)).await.unwrap();
    assert!(
        read.key_material.is_none(),
        "a listed non-member reads no key at home"
    );
    let read = fiona.group(&gid(TEAM)).await.unwrap();
    assert!(
        read.key_material.is_none(),
        "a listed non-member reads no key at the partner"
    );
    let err = carol.subscribe(&gid(TEAM)).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );
}

#[tokio::test]
async fn a_partner_left_without_members_is_no_longer_notified_and_loses_its_copy() {
    let federation = setup().await;
    let alice = federation.log_on(ALICE, "console").await;
    let frank = federation.log_on(FRANK, "console").await;
    eventually("fire holds the liaison group", || async {
        frank.group(&gid(LIAISON)).await.ok()
    })
    .await;
    // Fiona was fire's only member.
    without(&alice, LIAISON, FIONA).await;
    eventually("fire's copy is withdrawn", || async {
        frank.group(&gid(LIAISON)).await.err().map(|_| ())
    })
    .await;
    let rekeyed = alice.rekey_group(&gid(LIAISON)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        frank.group(&gid(LIAISON)).await.is_err(),
        "fire was given the group again after its last member left"
    );
    let status = alice.interconnection_status(&gid(LIAISON)).await.unwrap();
    assert!(
        status.partners.iter().all(|p| p.partner.as_str() != FIRE),
        "police still records fire for the group: {status:?} (version {})",
        rekeyed.version
    );
}
