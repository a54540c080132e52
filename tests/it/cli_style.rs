//! One style for the CLI, as a script sees it (the real binary against a real server):
//! times in RFC 3339, one rule for lists, sessions per (server, user), exit codes.

use std::process::{Command, Output};

use crate::support::*;

struct Cli<'a> {
    system: &'a TestSystem,
    sessions: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl<'a> Cli<'a> {
    fn new(system: &'a TestSystem) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            system,
            sessions: dir.path().join("sessions.json"),
            _dir: dir,
        }
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        tokio::task::block_in_place(|| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_mcx"));
            command
                .args(args)
                .env("MCX_SERVER", self.system.url())
                .env("MCX_SESSION_FILE", &self.sessions)
                .env_remove("MCX_USER");
            for (key, value) in env {
                command.env(key, value);
            }
            command.output().expect("mcx runs")
        })
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn login(&self, user: &str, password: &str) -> Output {
        let out = self.run(&["login", "--user", user, "--password", password]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

/// `2026-12-02T08:17:26Z`: RFC 3339, UTC, whole seconds.
fn is_rfc3339_seconds_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && s.ends_with('Z')
        && b[10] == b'T'
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn times_are_rfc_3339_with_a_relative_form_and_json_keeps_rfc_3339() {
    let system = TestSystem::example().await;
    let cli = Cli::new(&system);
    let out = cli.login(ALICE, "alice");
    let line = text(&out.stdout);
    let ends = line
        .split("session ends ")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"));
    let (at, relative) = ends.split_once(' ').unwrap();
    assert!(is_rfc3339_seconds_utc(at), "{line}");
    assert!(
        relative.starts_with("(in ") && relative.contains(" h)"),
        "{line}"
    );

    let out = cli.run(&["whoami", "--json"]);
    let expires = json(&out)["expires-at"].as_str().unwrap().to_string();
    assert!(
        time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{expires}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_list_takes_several_values_after_one_flag_or_the_flag_repeated() {
    let system = TestSystem::example().await;
    let cli = Cli::new(&system);
    cli.login(ALICE, "alice");

    // Several values after one flag, and the flag repeated, are one list.
    let out = cli.run(&[
        "group",
        "create",
        "sip:lists@police.example",
        "--display-name",
        "Lists",
        "--service",
        "mcptt",
        "--member",
        ALICE,
        BOB,
        "--member",
        CAROL,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("members (3)"),
        "{}",
        text(&out.stdout)
    );

    // Groups as arguments or as --group, several after one flag.
    let out = cli.run(&["affiliate", "--group", OPS, PATROL]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = cli.run(&["deaffiliate", OPS, "--group", PATROL]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The form that used to be refused with "unexpected argument" is read as two groups:
    // the server answers (this system has no partner to give them to).
    let out = cli.run(&[
        "acm",
        "provide",
        "--to",
        "sip:admin@fire.example",
        "--group",
        OPS,
        PATROL,
    ]);
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("unexpected argument"),
        "{}",
        text(&out.stderr)
    );

    // The bench's preload counts follow the same rule: two after one flag are read (the
    // run then fails on the deployment named, not on the command line).
    let out = cli.run(&[
        "bench",
        "--preload",
        "10",
        "20",
        "--running",
        "no-such-deployment",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("unexpected argument"),
        "{}",
        text(&out.stderr)
    );

    // A list left out is a usage error (2) that shows the right form.
    let out = cli.run(&["affiliate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("<GROUP>"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_kept_per_user_and_a_command_says_which_it_needs() {
    let system = TestSystem::example().await;
    let cli = Cli::new(&system);
    cli.login(ALICE, "alice");
    let out = cli.login(BOB, "bob");
    assert!(
        !text(&out.stderr).contains("replaces"),
        "a second user adds a session: {}",
        text(&out.stderr)
    );

    // Two users on one server: a command must be told which.
    let out = cli.run(&["group", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(ALICE) && err.contains(BOB) && err.contains("--user"),
        "{err}"
    );
    let out = cli.run(&["affiliations", "--user", BOB, "--json"]);
    assert_eq!(json(&out)["mc-service-id"], BOB);
    let out = cli.run_with(&["affiliations", "--json"], &[("MCX_USER", ALICE)]);
    assert_eq!(json(&out)["mc-service-id"], ALICE);

    // whoami lists both, as the server knows them.
    let out = cli.run(&["whoami"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains(ALICE) && listed.contains(BOB), "{listed}");
    let out = cli.run(&["whoami", "--json"]);
    assert_eq!(json(&out).as_array().map(Vec::len), Some(2));

    // Logging on again as alice says it replaces her session; bob's stays.
    let out = cli.login(ALICE, "alice");
    assert!(
        text(&out.stderr).contains("replaces") && text(&out.stderr).contains(ALICE),
        "{}",
        text(&out.stderr)
    );
    let out = cli.run(&["logout", "--user", BOB]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // One session left: no choice needed.
    let out = cli.run(&["affiliations", "--json"]);
    assert_eq!(json(&out)["mc-service-id"], ALICE, "{}", text(&out.stderr));
    let out = cli.run(&["affiliations", "--user", BOB]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not logged on"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_tell_a_script_whether_everything_was_done() {
    let system = TestSystem::example().await;
    let cli = Cli::new(&system);
    cli.login(ALICE, "alice");

    let out = cli.run(&["affiliate", OPS]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "all done: {}",
        text(&out.stderr)
    );

    // Answered, but not done: 3, and the output says why.
    let out = cli.run(&["affiliate", "sip:nosuch@police.example"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("not affiliated"),
        "{}",
        text(&out.stdout)
    );
    let out = cli.run(&["affiliate", PATROL, "sip:nosuch@police.example"]);
    assert_eq!(out.status.code(), Some(3), "only part done");

    // --json prints the whole response document.
    let out = cli.run(&["affiliate", OPS, "--json"]);
    let response = json(&out);
    assert_eq!(response["mc-service-id"], ALICE, "{response}");
    assert!(
        response["status-per-mc-service-group-id"].is_array(),
        "{response}"
    );

    // A remote change with a target that cannot be changed: answered, not done.
    let out = cli.run(&[
        "change",
        "request",
        "--target",
        "sip:nobody@police.example",
        "--affiliate",
        OPS,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("refused"),
        "{}",
        text(&out.stdout)
    );

    // An error is 1, a wrong command line 2.
    let out = cli.run(&["group", "get", "sip:nosuch@police.example"]);
    assert_eq!(out.status.code(), Some(1));
    let out = cli.run(&["affiliate", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));

    // And `mcx --help` says so.
    let out = cli.run(&["--help"]);
    let help = text(&out.stdout);
    assert!(
        help.contains("Exit codes") && help.contains("3 the server answered"),
        "{help}"
    );
}

#[test]
fn the_readme_is_self_contained_and_shows_the_new_forms() {
    let readme = include_str!("../../README.md");
    assert!(
        !readme.contains("../shared"),
        "the README points outside the repository"
    );
    for spec in ["TS 23.280", "TR 23.700-38", "TS 24.379", "TS 24.481"] {
        assert!(readme.contains(spec), "the README does not cite {spec}");
    }
    assert!(
        readme.contains("3gpp.org"),
        "where to get the specifications"
    );
    assert!(
        !readme.contains("acm apply REQUEST-ID --user"),
        "the old form"
    );
    assert!(readme.contains("Exit codes"));
    // The forms a newcomer copies: choosing a user, lists after one flag, the clauses.
    for form in [
        "mcx whoami",
        "--user sip:bob@police.example",
        "--group sip:ops@police.example sip:ops@fire.example",
        "--preload 10000 1000000",
        "§10.8",
        "§9.2",
    ] {
        assert!(readme.contains(form), "the README does not show {form}");
    }
}
