//! Log-on, log-off, tokens bound to user and client, expiry.

use std::time::Duration;

use mcx_model::ClientId;
use mcx_server::Config;

use crate::support::*;

#[tokio::test]
async fn log_on_gives_a_session_bound_to_user_and_client_and_log_off_ends_it() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "handset-1").await;
    let session = alice.session().await.unwrap();
    assert_eq!(session.mc_service_id, id(ALICE));
    assert_eq!(session.client_id.as_str(), "handset-1");
    assert_eq!(session.system.as_str(), "police.example");
    assert!(
        session
            .profile
            .may(mcx_model::profile::Permission::GroupAdministration)
    );
    assert!(session.expires_at > session.logged_on_at);

    alice.log_off().await.unwrap();
    let err = alice.session().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some("invalid-token"));
}

#[tokio::test]
async fn wrong_credentials_are_refused_without_saying_which_part_is_wrong() {
    let system = TestSystem::example().await;
    let client_id = ClientId::parse("c1").unwrap();
    for (user, password) in [(ALICE, "wrong"), ("sip:mallory@police.example", "alice")] {
        let err = system
            .client()
            .log_on(&id(user), password, &client_id)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401), "{user}");
        assert_eq!(err.code(), Some("bad-credentials"), "{user}");
    }
    let err = system
        .client()
        .log_on(&id("sip:alice@fire.example"), "alice", &client_id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("user-not-served-here"));
    assert!(err.to_string().contains("fire.example"), "{err}");
}

#[tokio::test]
async fn missing_and_forged_tokens_are_refused() {
    let system = TestSystem::example().await;
    let http = reqwest::Client::new();
    let missing = http
        .get(format!("{}/v1/groups", system.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"mcx\""
    );
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(problem["code"], "missing-token");

    let forged = system
        .client()
        .with_token("mcx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let err = forged.groups().await.unwrap_err();
    assert_eq!(err.code(), Some("invalid-token"));

    let basic = http
        .get(format!("{}/v1/groups", system.url()))
        .header("authorization", "Basic YWxpY2U6YWxpY2U=")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn a_second_log_on_from_the_same_client_replaces_the_first_but_other_clients_stay() {
    let system = TestSystem::example().await;
    let first = system.log_on_as(BOB, "handset").await;
    let other = system.log_on_as(BOB, "tablet").await;
    let second = system.log_on_as(BOB, "handset").await;
    assert_eq!(
        first.session().await.unwrap_err().code(),
        Some("invalid-token")
    );
    assert!(second.session().await.is_ok());
    assert!(other.session().await.is_ok());
}

#[tokio::test]
async fn sessions_end_when_their_time_is_up() {
    let mut config = Config::example();
    config.server.session_ttl_seconds = 1;
    let system = TestSystem::start(config).await;
    let bob = system.log_on_as(BOB, "handset").await;
    assert!(bob.session().await.is_ok());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match bob.session().await {
            Err(e) if e.code() == Some("invalid-token") => break,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("the session should have expired: {other:?}"),
        }
    }
}

#[tokio::test]
async fn administrators_read_the_server_resources_and_others_are_refused() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let resources = alice.resources().await.unwrap();
    assert!(resources.resident_memory_bytes.unwrap_or(0) > 0);
    assert!(resources.peak_resident_memory_bytes >= resources.resident_memory_bytes);
    assert!(resources.open_files.unwrap_or(0) > 0);

    let bob = system.log_on_as(BOB, "handset").await;
    let refused = bob.resources().await.unwrap_err();
    assert_eq!(refused.status(), Some(403));
    assert_eq!(refused.code(), Some("not-authorized"));
}
