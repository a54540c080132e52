//! The `mcx` client commands against a real server.

use std::process::{Command, Output};

use crate::support::*;

fn mcx(system: &TestSystem, session_file: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(args)
        .env("MCX_SERVER", system.url())
        .env("MCX_SESSION_FILE", session_file)
        .output()
        .expect("mcx runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_group_commands_and_logout() {
    let system = TestSystem::example().await;
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions.json");
    let run = |args: &[&str]| mcx(&system, &sessions, args);

    let out =
        tokio::task::block_in_place(|| run(&["login", "--user", ALICE, "--password", "alice"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("logged on as sip:alice@police.example"));

    let out = tokio::task::block_in_place(|| {
        run(&[
            "group",
            "create",
            "sip:harbour@police.example",
            "--display-name",
            "Harbour",
            "--service",
            "mcptt",
            "--member",
            BOB,
            "--priority",
            "4",
        ])
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"Harbour\"  version 1"),
        "{}",
        stdout(&out)
    );

    let out = tokio::task::block_in_place(|| {
        run(&[
            "group",
            "update",
            "sip:harbour@police.example",
            "--add-member",
            CAROL,
            "--disabled",
        ])
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("version 2"));
    assert!(stdout(&out).contains("disabled on network"));

    let out = tokio::task::block_in_place(|| {
        run(&["group", "get", "sip:harbour@police.example", "--json"])
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["configuration"]["list"].as_array().unwrap().len(), 2);
    assert_eq!(json["configuration"]["on-network-disabled"], true);

    let out = tokio::task::block_in_place(|| run(&["group", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 4);

    let out =
        tokio::task::block_in_place(|| run(&["group", "delete", "sip:harbour@police.example"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = tokio::task::block_in_place(|| run(&["logout"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tokio::task::block_in_place(|| run(&["group", "list"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not logged on"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_one_clear_line_with_a_non_zero_exit() {
    let system = TestSystem::example().await;
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions.json");
    let run = |args: &[&str]| mcx(&system, &sessions, args);

    let out = tokio::task::block_in_place(|| run(&["login", "--user", BOB, "--password", "nope"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mcx: error:") && err.contains("bad-credentials"),
        "{err}"
    );

    let out = tokio::task::block_in_place(|| run(&["login", "--user", "bob", "--password", "bob"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a valid MC service ID"),
        "{}",
        stderr(&out)
    );

    tokio::task::block_in_place(|| run(&["login", "--user", BOB, "--password", "bob"]));
    let out = tokio::task::block_in_place(|| {
        run(&[
            "group",
            "create",
            "sip:x@police.example",
            "--display-name",
            "X",
            "--service",
            "mcptt",
        ])
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not-authorized"), "{}", stderr(&out));

    let out = tokio::task::block_in_place(|| run(&["group", "frobnicate"]));
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_federation_writes_systems_that_interconnect() {
    let dir = tempfile::tempdir().unwrap();
    let base = crate::federation::free_ports(4);
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(["config", "federation"])
            .arg(dir.path())
            .args([
                "police.example",
                "fire.example",
                "--base-port",
                &base.to_string(),
            ])
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{}", stderr(&out));

    // Running the PKI init again must not replace the authority the certificates chain to.
    let again = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(["pki", "init"])
            .arg(dir.path().join("pki"))
            .output()
            .unwrap()
    });
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds a certificate authority"),
        "{}",
        stderr(&again)
    );

    let police = mcx_server::Config::load(&dir.path().join("police.example.toml")).unwrap();
    let fire = mcx_server::Config::load(&dir.path().join("fire.example.toml")).unwrap();
    let police = mcx_server::start(police).await.unwrap();
    let fire = mcx_server::start(fire).await.unwrap();
    let (user1, _) = mcx_client::Client::new(&fire.base_url())
        .unwrap()
        .log_on(
            &id("sip:user1@fire.example"),
            "user1",
            &mcx_model::ClientId::parse("c").unwrap(),
        )
        .await
        .unwrap();
    crate::federation::eventually("fire holds police's ops group", || async {
        user1.group(&gid("sip:ops@police.example")).await.ok()
    })
    .await;
    fire.shutdown().await.unwrap();
    police.shutdown().await.unwrap();
}
