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

/// The README's "two interconnected systems" commands, read from the README itself.
fn readme_quick_start() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Two interconnected systems in a minute")
        .nth(1)
        .expect("the README has the federation quick start");
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("mcx "))
        .map(|l| {
            let command = l.split(" #").next().unwrap_or(l);
            command
                .split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Kills the servers a test started, whatever happens.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_federation_quick_start_works_as_written_from_an_empty_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let sessions = cwd.path().join("sessions.json");
    let commands = readme_quick_start();
    assert!(
        commands.len() >= 6,
        "the quick start lists its commands: {commands:?}"
    );
    let run = |args: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(args)
            .current_dir(cwd.path())
            .env("MCX_SESSION_FILE", &sessions)
            .env_remove("MCX_SERVER")
            .output()
            .expect("mcx runs")
    };
    let mut servers = Children(Vec::new());
    for args in &commands {
        if args[0] == "serve" {
            servers.0.push(
                Command::new(env!("CARGO_BIN_EXE_mcx"))
                    .args(args)
                    .current_dir(cwd.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("mcx serve starts"),
            );
            continue;
        }
        if args[0] == "login" {
            // The servers started above need a moment to listen.
            let server = args
                .iter()
                .position(|a| a == "--server")
                .map(|i| args[i + 1].trim_start_matches("http://").to_string())
                .unwrap_or_else(|| "127.0.0.1:7400".into());
            crate::federation::eventually(&format!("{server} listens"), || async {
                std::net::TcpStream::connect(&server).ok().map(|_| ())
            })
            .await;
            for child in &mut servers.0 {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "a server of the quick start exited"
                );
            }
        }
        let out = tokio::task::block_in_place(|| run(args));
        assert!(
            out.status.success(),
            "`mcx {}` failed: {}",
            args.join(" "),
            stderr(&out)
        );
    }
    // The partner holds the primary's group, as the README says.
    let list: Vec<String> = ["group", "list", "--server", "http://127.0.0.1:7402"]
        .map(String::from)
        .to_vec();
    let login: Vec<String> = [
        "login",
        "--server",
        "http://127.0.0.1:7402",
        "--user",
        "sip:user1@fire.example",
        "--password",
        "user1",
    ]
    .map(String::from)
    .to_vec();
    assert!(tokio::task::block_in_place(|| run(&login)).status.success());
    crate::federation::eventually("fire lists police's ops group", || async {
        let out = tokio::task::block_in_place(|| run(&list));
        stdout(&out)
            .contains("sip:ops@police.example")
            .then_some(())
    })
    .await;
}
