//! The MC service server learns group policy from its GMS by subscription (TS 23.280
//! §10.8.3.1 steps 2a/2b) and is notified in process of every change.

use std::time::Duration;

use mcx_client::IfMatch;

use crate::support::*;

async fn eventually<F: Fn() -> bool>(what: &str, check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_mc_service_server_fetches_subscribes_and_follows_group_changes() {
    let system = TestSystem::example().await;
    let policy = system.node().system().mc_service_server.policy.clone();
    let ops = gid(OPS);
    assert!(
        policy.cached(&ops).is_none(),
        "nothing is cached before first use"
    );

    let fetched = policy
        .policy(&ops)
        .await
        .unwrap()
        .expect("the GMS knows the group");
    assert_eq!(fetched.version, 1);
    assert!(
        policy
            .policy(&gid("sip:nobody@police.example"))
            .await
            .unwrap()
            .is_none()
    );

    let alice = system.log_on_as(ALICE, "console").await;
    let mut config = fetched.configuration.clone();
    config.on_network_disabled = true;
    alice
        .update_group(&ops, &config, IfMatch::Version(1))
        .await
        .unwrap();
    eventually("the cached policy follows the change", || {
        policy
            .cached(&ops)
            .is_some_and(|g| g.version == 2 && g.configuration.on_network_disabled)
    })
    .await;

    // A group the server never used is not pushed into its cache.
    let patrol = alice.group(&gid(PATROL)).await.unwrap();
    alice
        .update_group(&gid(PATROL), &patrol.configuration, IfMatch::Version(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(policy.cached(&gid(PATROL)).is_none());

    alice.delete_group(&ops, None).await.unwrap();
    eventually("the deleted group leaves the cache", || {
        policy.cached(&ops).is_none()
    })
    .await;
}
