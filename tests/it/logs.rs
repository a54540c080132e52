//! `mcx serve`'s logs (issue 18): `--log-format json` writes one JSON object per line, a
//! flow between systems is one line at each with one correlation ID, and a `RUST_LOG`
//! that is not a filter is refused with a sentence that says so.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    crate::support::PoliceToml::new(&format!(
        "listen = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"",
        dir.join("data").display()
    ))
    .user("sip:ann@police.example", &[], &[], 0)
    .write(dir.join("mcx.toml"))
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::federation::free_ports(1);
    let mut server = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(config(dir.path(), port))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcx serve starts");
    let stderr = server.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // Lines until the server says it listens, then a request that is logged too.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let listening = line.contains(&port.to_string());
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    seen.extend(lines.try_iter());
    assert!(!seen.is_empty(), "mcx serve logged nothing");
    for line in &seen {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(object["level"].is_string(), "a level: {line}");
        assert!(object["fields"].is_object(), "fields: {line}");
        assert!(object["timestamp"].is_string(), "a time: {line}");
    }
    assert!(
        seen.iter().any(|l| l.contains(&port.to_string())),
        "the listening address is logged: {seen:?}"
    );
}

#[test]
fn a_log_filter_that_does_not_parse_is_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::federation::free_ports(1);
    let out = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--config"])
        .arg(config(dir.path(), port))
        .env("RUST_LOG", "info,mcx=loud")
        .output()
        .expect("mcx serve runs");
    assert!(!out.status.success(), "refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RUST_LOG='info,mcx=loud' is not a log filter"),
        "{stderr}"
    );
    // Nothing was started: no data directory was made.
    assert!(!dir.path().join("data").exists(), "nothing made");
}

/// Reads a child's standard error lines as they come.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// With `RUST_LOG=warn,mcx::flow=info`, each system logs one JSON line per flow between
/// systems, and the sender's and the receiver's lines carry the same correlation ID; a
/// flow inside a system (a client's request) is not among them.
#[tokio::test(flavor = "multi_thread")]
async fn a_flow_between_systems_is_one_line_at_each_with_one_correlation_id() {
    use mcx_model::{ClientId, McService, McServiceGroupId};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cwd = tempfile::tempdir().unwrap();
    let base = crate::federation::free_ports(4);
    crate::support::write_federation(cwd.path(), &["police.example", "fire.example"], base);
    let serve = |domain: &str| {
        Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(format!("fed/{domain}.toml"))
            .current_dir(cwd.path())
            .env("RUST_LOG", "warn,mcx::flow=info")
            .env_remove("MCX_STORAGE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mcx serve starts")
    };
    let mut police = serve("police.example");
    let mut fire = serve("fire.example");
    let (police_lines, fire_lines) = (lines_of(&mut police), lines_of(&mut fire));
    let url = format!("http://127.0.0.1:{base}");
    for port in [base, base + 2] {
        crate::federation::eventually(&format!("port {port} answers"), || async move {
            reqwest::get(format!("http://127.0.0.1:{port}/v1/system"))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }
    let (user1, _) = mcx_client::Client::new(&url)
        .unwrap()
        .log_on(
            &crate::support::id("sip:user1@police.example"),
            "user1",
            &ClientId::parse("phone").unwrap(),
        )
        .await
        .unwrap();
    let fire_ops = McServiceGroupId::parse("sip:ops@fire.example").unwrap();
    user1
        .affiliate(McService::Mcptt, &[fire_ops])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = police.kill();
    let _ = fire.kill();
    let _ = (police.wait(), fire.wait());
    let parse = |lines: std::sync::mpsc::Receiver<String>| -> Vec<serde_json::Value> {
        lines
            .try_iter()
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let (police_log, fire_log) = (parse(police_lines), parse(fire_lines));
    let flows = |log: &[serde_json::Value], direction: &str| -> Vec<(String, String)> {
        log.iter()
            .filter(|l| l["target"] == "mcx::flow" && l["fields"]["direction"] == direction)
            .map(|l| {
                (
                    l["fields"]["flow"].as_str().unwrap_or_default().to_string(),
                    l["fields"]["correlation"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    // Flows inside a system (the client's own request and its answer) are `debug`.
    let within: Vec<_> = police_log
        .iter()
        .filter(|l| l["target"] == "mcx::flow")
        .filter(|l| {
            l["fields"]["peer"]
                .as_str()
                .is_some_and(|p| p.contains("(phone)"))
        })
        .collect();
    assert!(
        within.is_empty(),
        "only flows between systems are logged at info: {within:#?}"
    );
    let sent = flows(&police_log, "Sent");
    let received = flows(&fire_log, "Received");
    let (flow, correlation) = sent
        .iter()
        .find(|(flow, _)| flow.to_lowercase().contains("affiliation"))
        .unwrap_or_else(|| panic!("police logs the affiliation request it sent: {police_log:#?}"));
    assert!(!correlation.is_empty(), "a correlation ID");
    assert!(
        received.iter().any(|(f, c)| f == flow && c == correlation),
        "fire logs the same flow with the same correlation ID: {received:?}"
    );
}

/// A peer presenting a certificate from an authority this system does not trust sees
/// only a failed handshake; the operator of the real binary sees it twice over: one WARN
/// line per peer address naming the certificate's subject and issuer (not one per
/// attempt), and the refusal in `mcx group status` of a group shared with that system.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_from_an_unknown_authority_is_logged_once_and_shown_in_the_group_status() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cwd = tempfile::tempdir().unwrap();
    let base = crate::federation::free_ports(4);
    crate::support::write_federation(cwd.path(), &["police.example", "fire.example"], base);
    let mut police = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--config",
            "fed/police.example.toml",
        ])
        .current_dir(cwd.path())
        .env_remove("RUST_LOG")
        .env_remove("MCX_STORAGE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcx serve starts");
    let lines = lines_of(&mut police);
    let url = format!("http://127.0.0.1:{base}");
    crate::federation::eventually("police answers", || async {
        reqwest::get(format!("{url}/v1/system"))
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    // "fire", with a certificate from a CA police does not trust, tries three times.
    let rogue = tempfile::tempdir().unwrap();
    mcx_server::pki::init(rogue.path(), "rogue CA").unwrap();
    let files = mcx_server::pki::issue(
        rogue.path(),
        &mcx_model::SystemDomain::parse("fire.example").unwrap(),
    )
    .unwrap();
    let interconnection: std::net::SocketAddr = format!("127.0.0.1:{}", base + 1).parse().unwrap();
    let impostor = crate::federation::raw_partner_client(
        &cwd.path().join("fed/pki"),
        Some((&files.certificate, &files.private_key)),
        "police.example",
        interconnection,
    );
    for _ in 0..3 {
        let sent = impostor
            .post(format!(
                "https://police.example:{}/interconnection/v1/group-information-request",
                base + 1
            ))
            .header("mcx-origin", "fire.example")
            .body("{}")
            .send()
            .await;
        assert!(sent.is_err(), "the handshake fails: {sent:?}");
    }

    // The group status, through the real CLI.
    let sessions = cwd.path().join("sessions.json");
    let mcx = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(args)
            .env("MCX_SERVER", &url)
            .env("MCX_SESSION_FILE", &sessions)
            .env_remove("MCX_USER")
            .output()
            .expect("mcx runs")
    };
    let out = mcx(&[
        "login",
        "--user",
        "sip:admin@police.example",
        "--password",
        "admin",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcx(&["group", "status", "sip:ops@police.example"]);
    let status = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.contains("rogue CA")
            && status.contains("fire.example")
            && status.contains("127.0.0.1"),
        "the status names the refused certificate's issuer, subject and address:\n{status}"
    );

    let _ = police.kill();
    let _ = police.wait();
    let warnings: Vec<serde_json::Value> = lines
        .try_iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|l| l["level"] == "WARN" && l.to_string().contains("rogue CA"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one WARN line for the address, not one per attempt: {warnings:#?}"
    );
    let line = warnings[0].to_string();
    assert!(
        line.contains("fire.example") && line.contains("127.0.0.1"),
        "the line names the subject and the peer: {line}"
    );
}

/// The SIP stack logs each message it sends or receives, whole, at `info`, and an
/// affiliation PUBLISH carries the client's access token: at the default level and with
/// a plain `RUST_LOG=info`, no line holds a SIP message or the token.
#[tokio::test(flavor = "multi_thread")]
async fn sip_messages_and_the_tokens_in_them_are_not_logged() {
    use mcx_model::ClientId;
    let _ = rustls::crypto::ring::default_provider().install_default();
    for filter in [None, Some("info")] {
        let dir = tempfile::tempdir().unwrap();
        let http = crate::federation::free_ports(1);
        let sip = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .unwrap();
        let config = crate::support::PoliceToml::new(&format!(
            "listen = \"127.0.0.1:{http}\"\ndata-dir = \"{}\"\n[sip]\nlisten = \"{sip}\"",
            dir.path().join("data").display()
        ))
        .user(
            "sip:ann@police.example",
            &[],
            &["sip:ops@police.example"],
            2,
        )
        .group(
            "sip:ops@police.example",
            "Ops",
            &["sip:ann@police.example".to_string()],
        )
        .write(dir.path().join("mcx.toml"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcx"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("MCX_STORAGE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match filter {
            Some(f) => command.env("RUST_LOG", f),
            None => command.env_remove("RUST_LOG"),
        };
        let mut server = command.spawn().expect("mcx serve starts");
        let lines = lines_of(&mut server);
        crate::federation::eventually("the server answers", || async move {
            reqwest::get(format!("http://127.0.0.1:{http}/v1/system"))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        let (ann, _) = mcx_client::Client::new(&format!("http://127.0.0.1:{http}"))
            .unwrap()
            .log_on(
                &crate::support::id("sip:ann@police.example"),
                "pw",
                &ClientId::parse("phone").unwrap(),
            )
            .await
            .unwrap();
        let token = ann.token().unwrap().to_string();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let info = format!(
            r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>{token}</mcpttString></mcptt-access-token></mcptt-Params></mcpttinfo>"#
        );
        let pidf = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:3gpp:ns:mcpttPresInfo:1.0" entity="sip:ann@police.example"><tuple id="phone"><status><p:affiliation group="sip:ops@police.example"/></status></tuple></presence>"#;
        let body = format!(
            "--b1\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n{info}\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n{pidf}\r\n--b1--\r\n"
        );
        let publish = format!(
            "PUBLISH sip:mcptt-psi@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-logs\r\nMax-Forwards: 70\r\nFrom: <sip:ann@police.example>;tag=logs\r\nTo: <sip:ann@police.example>\r\nCall-ID: logs\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 4294967295\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.send_to(publish.as_bytes(), sip).await.unwrap();
        let mut buffer = vec![0u8; 8192];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let answer = String::from_utf8_lossy(&buffer[..n]).to_string();
        assert!(answer.starts_with("SIP/2.0 200"), "{filter:?}: {answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = server.kill();
        let _ = server.wait();
        let seen: Vec<String> = lines.try_iter().collect();
        assert!(
            seen.iter().any(|l| l.contains("SIP listening")),
            "{filter:?}: the server logged: {seen:#?}"
        );
        for line in &seen {
            assert!(
                !line.contains(&token),
                "{filter:?}: a line holds the access token: {line}"
            );
            assert!(
                !line.contains("PUBLISH sip:mcptt-psi"),
                "{filter:?}: a line holds the SIP message: {line}"
            );
        }
    }
}
