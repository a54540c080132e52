//! Nothing acknowledged is lost across restarts: of the server library, and of the real
//! `mcx serve` process.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mcx_client::{Client, IfMatch};
use mcx_model::ClientId;
use mcx_model::events::ClientEvent;

use crate::support::*;

#[tokio::test]
async fn groups_sessions_and_subscriptions_survive_a_restart() {
    let mut system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "handset").await;
    let ops = gid(OPS);
    let group = alice.group(&ops).await.unwrap();
    let mut config = group.configuration.clone();
    config.display_name = "Operations (night)".into();
    let updated = alice
        .update_group(&ops, &config, IfMatch::Version(1))
        .await
        .unwrap();
    bob.subscribe(&ops).await.unwrap();
    let (alice_token, bob_token) = (
        alice.token().unwrap().to_string(),
        bob.token().unwrap().to_string(),
    );

    system.restart().await;

    let alice = Client::new(&system.url()).unwrap().with_token(alice_token);
    let bob = Client::new(&system.url()).unwrap().with_token(bob_token);
    assert_eq!(
        alice.group(&ops).await.unwrap(),
        updated,
        "the group is as acknowledged"
    );
    assert!(bob.session().await.is_ok(), "sessions survive a restart");

    let mut events = bob.events(None).await.unwrap();
    config.display_name = "Operations (day)".into();
    alice
        .update_group(&ops, &config, IfMatch::Version(2))
        .await
        .unwrap();
    match next_event(&mut events).await.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => assert_eq!(group.version, 3),
        other => panic!("unexpected {other:?}"),
    }
}

/// A running `mcx serve` process, killed when dropped.
struct ServeProcess {
    child: Child,
    url: String,
}

impl ServeProcess {
    fn start(data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mcx serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader
            .read_line(&mut first)
            .expect("mcx serve prints its address");
        // Keep draining stdout so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_string();
        Self { child, url }
    }

    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "mcx serve exits cleanly on SIGTERM: {status}"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mcx serve did not stop within 10 s of SIGTERM");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_real_binary_keeps_acknowledged_writes_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    let client = Client::new(&server.url).unwrap();
    let (alice, _) = client
        .log_on(&id(ALICE), "alice", &ClientId::parse("console").unwrap())
        .await
        .unwrap();
    let group = gid("sip:night-shift@police.example");
    let mut config = alice.group(&gid(OPS)).await.unwrap().configuration;
    config.display_name = "Night shift".into();
    let created = alice.create_group(&group, &config).await.unwrap();
    server.terminate();

    let server = ServeProcess::start(dir.path());
    let client = Client::new(&server.url).unwrap();
    let (alice, _) = client
        .log_on(&id(ALICE), "alice", &ClientId::parse("console").unwrap())
        .await
        .unwrap();
    assert_eq!(alice.group(&group).await.unwrap(), created);
    // Configured groups are defined once; changes made through the API are kept.
    assert_eq!(alice.group(&gid(OPS)).await.unwrap().version, 1);
    server.terminate();
}

#[tokio::test]
async fn a_killed_server_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    let client = Client::new(&server.url).unwrap();
    let (alice, _) = client
        .log_on(&id(ALICE), "alice", &ClientId::parse("console").unwrap())
        .await
        .unwrap();
    let mut config = alice.group(&gid(PATROL)).await.unwrap().configuration;
    let mut last = None;
    for version in 1..=20u64 {
        config.on_network_group_priority = Some(version as u8);
        last = Some(
            alice
                .update_group(&gid(PATROL), &config, IfMatch::Version(version))
                .await
                .unwrap(),
        );
    }
    drop(server); // SIGKILL: no clean shutdown

    let server = ServeProcess::start(dir.path());
    let (alice, _) = Client::new(&server.url)
        .unwrap()
        .log_on(&id(ALICE), "alice", &ClientId::parse("console").unwrap())
        .await
        .unwrap();
    assert_eq!(Some(alice.group(&gid(PATROL)).await.unwrap()), last);
}

/// A log-off is two commits (the session ends, then its client's affiliations, here and
/// at partners). If the process dies between them, the next start finishes the second,
/// without a pass over every stored affiliation.
#[tokio::test]
async fn a_log_off_interrupted_between_session_and_affiliations_is_finished_at_start() {
    let mut system = TestSystem::example().await;
    let bob = system.log_on_as(BOB, "handset").await;
    let ops = gid(OPS);
    bob.affiliate(mcx_model::McService::Mcptt, std::slice::from_ref(&ops))
        .await
        .unwrap();
    let node = system.node.take().expect("running");
    node.shutdown().await.unwrap();

    // The first half of bob's log-off, as the store saw it when the process died.
    end_sessions_in_store(&system.config, BOB).await;

    system.node = Some(
        mcx_server::start(system.config.clone())
            .await
            .expect("the system starts again"),
    );
    let alice = system.log_on_as(ALICE, "console").await;
    let members = alice.group_affiliations(&ops).await.unwrap().members;
    assert!(
        !members.iter().any(|m| m.mc_service_id.as_str() == BOB),
        "bob's ended client is no longer affiliated: {members:?}"
    );
    // And it is not done again at the next start (nothing left to finish).
    system.restart().await;
    let alice = system.log_on_as(ALICE, "console").await;
    assert!(
        !alice
            .group_affiliations(&ops)
            .await
            .unwrap()
            .members
            .iter()
            .any(|m| m.mc_service_id.as_str() == BOB)
    );
}
