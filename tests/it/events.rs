//! Subscriptions to group configuration and the client event stream.

use std::time::Duration;

use mcx_client::IfMatch;
use mcx_model::events::ClientEvent;

use crate::support::*;

#[tokio::test]
async fn a_subscribed_client_is_notified_of_every_change_and_of_deletion() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "handset").await;
    let ops = gid(OPS);

    let info = bob.subscribe(&ops).await.unwrap();
    assert_eq!(info.group.version, 1);
    let mut events = bob.events(None).await.unwrap();

    let mut config = info.group.configuration.clone();
    config.on_network_group_priority = Some(8);
    alice
        .update_group(&ops, &config, IfMatch::Version(1))
        .await
        .unwrap();
    let first = next_event(&mut events).await;
    match &first.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => {
            assert_eq!(group.mc_service_group_id, ops);
            assert_eq!(group.version, 2);
            assert_eq!(group.configuration.on_network_group_priority, Some(8));
        }
        other => panic!("expected a configuration change, got {other:?}"),
    }

    alice.delete_group(&ops, None).await.unwrap();
    let second = next_event(&mut events).await;
    assert!(second.id > first.id);
    assert_eq!(
        second.event,
        ClientEvent::GroupDeleted {
            mc_service_group_id: ops.clone()
        }
    );
}

#[tokio::test]
async fn a_client_that_reconnects_gets_what_it_missed_in_order_and_only_once() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "handset").await;
    let ops = gid(OPS);
    let mut config = bob.subscribe(&ops).await.unwrap().group.configuration;

    let mut events = bob.events(None).await.unwrap();
    config.display_name = "Ops v2".into();
    alice
        .update_group(&ops, &config, IfMatch::Version(1))
        .await
        .unwrap();
    let seen = next_event(&mut events).await;
    drop(events); // the client goes out of coverage

    for (version, name) in [(2, "Ops v3"), (3, "Ops v4")] {
        config.display_name = name.into();
        alice
            .update_group(&ops, &config, IfMatch::Version(version))
            .await
            .unwrap();
    }

    let mut events = bob.events(Some(seen.id)).await.unwrap();
    let names: Vec<String> = {
        let mut names = Vec::new();
        for _ in 0..2 {
            match next_event(&mut events).await.event {
                ClientEvent::GroupConfigurationChanged { group, .. } => {
                    names.push(group.configuration.display_name)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        names
    };
    assert_eq!(names, ["Ops v3", "Ops v4"]);
    no_event(&mut events, Duration::from_millis(300)).await;
    drop(events);

    // Reconnecting without an ID replays what was never confirmed; with the last ID, nothing.
    let mut again = bob.events(None).await.unwrap();
    let replayed = next_event(&mut again).await;
    assert!(
        replayed.id > seen.id,
        "events the client confirmed are forgotten"
    );
}

#[tokio::test]
async fn events_go_only_to_subscribed_sessions_and_the_stream_ends_at_log_off() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob_handset = system.log_on_as(BOB, "handset").await;
    let bob_tablet = system.log_on_as(BOB, "tablet").await;
    let patrol = gid(PATROL);

    bob_handset.subscribe(&patrol).await.unwrap();
    let mut handset = bob_handset.events(None).await.unwrap();
    let mut tablet = bob_tablet.events(None).await.unwrap();

    let group = alice.group(&patrol).await.unwrap();
    alice
        .update_group(
            &patrol,
            &group.configuration,
            IfMatch::Version(group.version),
        )
        .await
        .unwrap();
    next_event(&mut handset).await;
    no_event(&mut tablet, Duration::from_millis(500)).await;

    bob_handset.unsubscribe(&patrol).await.unwrap();
    alice
        .update_group(
            &patrol,
            &group.configuration,
            IfMatch::Version(group.version + 1),
        )
        .await
        .unwrap();
    no_event(&mut handset, Duration::from_millis(500)).await;

    bob_handset.log_off().await.unwrap();
    let end = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut handset),
    )
    .await
    .expect("the stream ends promptly after log-off");
    assert!(
        end.is_none() || end.is_some_and(|e| e.is_err()),
        "the stream ended"
    );
}
