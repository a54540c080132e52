//! Several nodes of one MC system on one PostgreSQL (issue 17): what one node commits
//! wakes the event streams another node serves. Needs PostgreSQL: `.ci/run`'s second
//! pass (`.ci/with-postgres`) runs it; on the embedded SQLite a system is one node.

use futures_util::StreamExt as _;
use mcx_client::{Client, IfMatch};
use mcx_model::events::ClientEvent;

use crate::support::*;

#[tokio::test]
async fn a_stream_on_one_node_hears_what_another_node_commits_and_ends_with_its_session() {
    if std::env::var_os("MCX_TEST_POSTGRES").is_none() {
        eprintln!("nodes: several nodes need PostgreSQL; run under .ci/with-postgres");
        return;
    }
    let a = TestSystem::example().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config_b = a.config.clone();
    config_b.server.listen = "127.0.0.1:0".parse().unwrap();
    config_b.server.data_dir = dir.path().join("data");
    // The nodes of one system share its storage key (it seals group keys in the store).
    config_b.server.storage_key = Some(a.config.storage_key_path());
    let b = mcx_server::start(config_b)
        .await
        .expect("a second node starts");

    let alice = a.log_on_as(ALICE, "console").await;
    let bob_at_a = a.log_on_as(BOB, "handset").await;
    let ops = gid(OPS);
    bob_at_a.subscribe(&ops).await.unwrap();
    // Bob's session is valid on the other node; his stream is served there.
    let bob_at_b = Client::new(&b.base_url())
        .unwrap()
        .with_token(bob_at_a.token().unwrap().to_string());
    let mut events = bob_at_b.events(None).await.unwrap();

    let group = alice.group(&ops).await.unwrap();
    let mut config = group.configuration.clone();
    config.display_name = "Operations (night)".into();
    alice
        .update_group(&ops, &config, IfMatch::Version(group.version))
        .await
        .unwrap();
    // No node polls the store for a waiting stream: only the wake-up from node a's
    // commit can bring this.
    match next_event(&mut events).await.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => {
            assert_eq!(group.configuration.display_name, "Operations (night)")
        }
        other => panic!("unexpected {other:?}"),
    }

    // Node b caches the group's policy as it serves bob's affiliation; node a disables
    // the group; node b then refuses, because node a's commit dropped what b cached.
    let affiliated = |answer: mcx_model::flows::affiliation::GroupAffiliationResponse| {
        answer.status_per_mc_service_group_id[0].status
            == mcx_model::flows::affiliation::AffiliationStatus::Affiliated
    };
    let mcptt = mcx_model::McService::Mcptt;
    assert!(affiliated(
        bob_at_b
            .affiliate(mcptt, std::slice::from_ref(&ops))
            .await
            .unwrap()
    ));
    bob_at_b
        .deaffiliate(mcptt, std::slice::from_ref(&ops))
        .await
        .unwrap();
    let group = alice.group(&ops).await.unwrap();
    let mut config = group.configuration.clone();
    config.on_network_disabled = true;
    alice
        .update_group(&ops, &config, IfMatch::Version(group.version))
        .await
        .unwrap();
    next_event(&mut events).await; // the change, on bob's stream at b
    crate::federation::eventually("node b sees the group disabled at node a", || async {
        (!affiliated(
            bob_at_b
                .affiliate(mcptt, std::slice::from_ref(&ops))
                .await
                .ok()?,
        ))
        .then_some(())
    })
    .await;

    // Bob logs off at node a: his stream at node b ends.
    bob_at_a.log_off().await.unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await;
    assert!(
        matches!(ended, Ok(None)),
        "the stream at the other node ends with the session: {ended:?}"
    );
    b.shutdown().await.unwrap();
}
