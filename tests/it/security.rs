//! Security hardening through the public interfaces: credentials stored as Argon2id
//! hashes and refused in plain text outside development, log-on throttling with
//! `Retry-After`, private files, and passwords kept off command lines.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use mcx_model::ClientId;
use mcx_server::Config;

use crate::support::*;

/// Every stored credential of a system, read straight from its database.
async fn stored_credentials(system: &TestSystem) -> Vec<String> {
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let url = match &system.config.server.storage_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}",
            system.config.server.data_dir.join("mcx.db").display()
        ),
    };
    let pool = sqlx::AnyPool::connect(&url).await.expect("the store opens");
    let rows = sqlx::query("SELECT credential FROM users")
        .fetch_all(&pool)
        .await
        .expect("users are readable");
    rows.iter()
        .map(|r| r.try_get::<String, _>("credential").expect("a credential"))
        .collect()
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes_only() {
    let system = TestSystem::example().await;
    let stored = stored_credentials(&system).await;
    assert_eq!(stored.len(), 3);
    for credential in &stored {
        assert!(credential.starts_with("argon2:$argon2id$"), "{credential}");
        for name in ["alice", "bob", "carol"] {
            assert!(!credential.contains(&format!(":{name}")), "{credential}");
        }
    }
    // And log-on still works with the password.
    system.log_on_as(ALICE, "console").await;
}

#[tokio::test]
async fn a_plain_text_password_is_refused_outside_development() {
    let text = Config::example_text().replace(&Config::example().users[0].password, "alice");
    let err = Config::parse(&text, std::path::Path::new("police.toml")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("sip:alice@police.example") && message.contains("mcx passwd"),
        "{message}"
    );
    let development = text.replace(
        "name = \"Police (example)\"",
        "name = \"Police (example)\"\ndevelopment = true",
    );
    assert!(Config::parse(&development, std::path::Path::new("police.toml")).is_ok());
    // N2 = 0 can never be used: refused, naming the user.
    let zero =
        Config::example_text().replacen("max-affiliations-n2 = 1", "max-affiliations-n2 = 0", 1);
    let err = Config::parse(&zero, std::path::Path::new("police.toml")).unwrap_err();
    assert!(
        err.to_string().contains("sip:carol@police.example"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_and_the_right_one_works_after_the_wait() {
    let system = TestSystem::example().await;
    let client = ClientId::parse("handset").unwrap();
    let try_log_on = |password: &'static str| {
        let anonymous = system.client();
        let client = client.clone();
        async move { anonymous.log_on(&id(BOB), password, &client).await }
    };
    for _ in 0..=mcx_core::log_on_throttle::USER_ALLOWANCE {
        let err = try_log_on("guess").await.unwrap_err();
        assert_eq!(err.code(), Some("bad-credentials"));
    }
    // Beyond the allowance: 429 with Retry-After, even for the right password.
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/session", system.url()))
        .json(&serde_json::json!({
            "mc-service-id": BOB, "password": "bob", "client-id": "handset"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 429);
    assert_eq!(
        raw.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let wait: u64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let problem: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(problem["code"], "too-many-attempts");
    // Another user is not held up by bob's count.
    system.log_on_as(CAROL, "handset").await;
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    assert!(
        try_log_on("bob").await.is_ok(),
        "the right password after the wait"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_generated_configurations_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let system = TestSystem::example().await;
    system.log_on_as(ALICE, "console").await;
    if system.config.server.storage_url.is_none() {
        let dir = &system.config.server.data_dir;
        assert_eq!(mode(dir), 0o700, "data directory");
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
        assert!(files >= 1);
    }
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["config", "federation"])
        .arg(out.path())
        .args(["police.example", "fire.example"])
        .output()
        .unwrap();
    assert!(status.status.success());
    for file in ["police.example.toml", "fire.example.toml"] {
        let path = out.path().join(file);
        assert_eq!(mode(&path), 0o600, "{file}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("$argon2id$"), "{file} holds hashes");
        assert!(!text.contains("password = \"admin\""), "{file}");
    }
}

#[test]
fn mcx_passwd_prints_a_hash_of_the_password_on_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(
        mcx_core::credentials::verify_password(hash, "s3cret"),
        "{hash}"
    );
    assert!(!mcx_core::credentials::verify_password(hash, "s3cret\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn mcx_login_takes_the_password_from_a_file_or_the_environment_not_only_the_command_line() {
    let system = TestSystem::example().await;
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions.json");
    let login = |extra: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcx"));
        command
            .args(["login", "--user", ALICE])
            .args(extra)
            .env("MCX_SERVER", system.url())
            .env("MCX_SESSION_FILE", &sessions)
            .env_remove("MCX_PASSWORD")
            .stdin(Stdio::null());
        if let Some(password) = env {
            command.env("MCX_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let out = tokio::task::block_in_place(|| login(&[], None));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MCX_PASSWORD") && stderr.contains("--password-file"),
        "{stderr}"
    );
    let file = dir.path().join("password");
    std::fs::write(&file, "alice\n").unwrap();
    let out =
        tokio::task::block_in_place(|| login(&["--password-file", file.to_str().unwrap()], None));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::task::block_in_place(|| login(&[], Some("alice")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads until the peer closes the connection; `true` if it did within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// The client API's address, for raw TCP.
fn api_addr(system: &TestSystem) -> String {
    system
        .node()
        .base_url()
        .trim_start_matches("http://")
        .to_string()
}

async fn limited_system() -> TestSystem {
    let mut config = Config::example();
    config.server.header_read_timeout_ms = 300;
    config.server.idle_timeout_seconds = 1;
    TestSystem::start(config).await
}

#[tokio::test]
async fn a_connection_sending_its_headers_slowly_is_closed() {
    use tokio::io::AsyncWriteExt as _;
    let system = limited_system().await;
    let addr = api_addr(&system);
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /v1/system HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "a connection that never finished its headers stayed open"
    );
}

/// The status line of the answer to one raw HTTP/1.1 request with a header of `size` bytes.
async fn status_with_header_of(addr: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/system HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(size)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_request_head_over_8_kib_is_refused_with_431_and_one_within_is_served() {
    let system = TestSystem::start(Config::example()).await;
    let addr = api_addr(&system);
    let limit = mcx_server::listener::MAX_REQUEST_HEAD;
    assert_eq!(
        status_with_header_of(&addr, limit - 200).await,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_with_header_of(&addr, limit + 1).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // Refused without harm to the next one.
    let info = system.client().system().await.unwrap();
    assert_eq!(info.domain.as_str(), "police.example");
}

#[tokio::test]
async fn idle_connections_are_closed_and_do_not_stop_others_being_served() {
    let system = limited_system().await;
    let addr = api_addr(&system);
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Served while 200 idle sockets are open.
    let info = system.client().system().await.unwrap();
    assert_eq!(info.domain.as_str(), "police.example");
    // Each idle one is closed by the server after the idle timeout.
    for stream in &mut idle {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
}

#[tokio::test]
async fn a_connection_over_the_cap_is_closed_and_the_cap_frees_up() {
    let mut config = Config::example();
    config.server.max_connections = 8;
    config.server.idle_timeout_seconds = 1;
    let system = TestSystem::start(config).await;
    let addr = api_addr(&system);
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(1)).await,
        "a ninth connection was kept"
    );
    // Once the held ones time out, the server answers again.
    drop(held);
    crate::federation::eventually("the server answers again", || async {
        system.client().system().await.ok()
    })
    .await;
    // The refusal is counted where an operator looks.
    let alice = system.log_on_as(ALICE, "console").await;
    let resources = alice.resources().await.unwrap();
    let api = resources
        .listeners
        .iter()
        .find(|l| l.listener == "client-api")
        .expect("the client API's counters");
    assert!(api.refused_over_limit >= 1, "{api:?}");
}

#[tokio::test]
async fn a_peer_without_a_partner_certificate_loses_its_connection_after_the_refusal() {
    use crate::federation::*;
    use rustls_pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (federation, addr, _) = fire_facing_police().await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(
        federation.pki_dir().join(mcx_server::pki::CA_CERT),
    )
    .unwrap()
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("fire.example").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        b"POST /interconnection/v1/group-information-request HTTP/1.1\r\nHost: fire.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tls.read(&mut answer).await.unwrap();
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // Kept open by the client, closed by the server shortly after.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tls.read(&mut answer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the unauthenticated peer kept its connection"
    );
}

/// fire's endpoint, police's client for it, and the base URL of its flows.
async fn fire_endpoint() -> (crate::federation::Federation, reqwest::Client, String) {
    let (federation, addr, police) = crate::federation::fire_facing_police().await;
    let base = format!(
        "https://{}:{}/interconnection/v1",
        crate::federation::FIRE,
        addr.port()
    );
    (federation, police, base)
}

async fn post_flow(
    client: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = client
        .post(url)
        .header("mcx-origin", crate::federation::POLICE)
        .header(
            "mcx-transaction-id",
            mcx_model::TransactionId::new().to_string(),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn provision(members: usize, gmk: &str) -> serde_json::Value {
    let list: Vec<serde_json::Value> = (0..members)
        .map(|i| serde_json::json!({"uri": format!("sip:m{i}@police.example")}))
        .collect();
    serde_json::json!({
        "mc-service-group-id": "sip:big@police.example",
        "mc-service-group-configuration-information": {
            "configuration": {
                "display-name": "Big",
                "list": list,
                "supported-services": ["mcptt"],
            },
            "version": 1,
            "key-material": {
                "generation": 1,
                "gmk-id": "0a0b0c0d",
                "gmk": gmk,
                "generated-at": "2026-12-01T00:00:00Z",
            },
        },
    })
}

#[tokio::test]
async fn a_partner_s_group_documents_are_held_to_the_same_bounds_and_key_material_checked() {
    let (federation, police, base) = fire_endpoint().await;
    let url = format!("{base}/group-information-provision");
    let good_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (status, problem) = post_flow(&police, url.clone(), provision(2, "!!!notbase64")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid-key-material")),
        "{problem}"
    );
    let (status, problem) = post_flow(&police, url.clone(), provision(2_001, good_key)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("list-too-long")),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("2000"),
        "{problem}"
    );
    // Nothing was stored; a valid one is.
    let frank = federation.log_on("sip:frank@fire.example", "console").await;
    assert!(frank.group(&gid("sip:big@police.example")).await.is_err());
    let (status, answer) = post_flow(&police, url, provision(2, good_key)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(frank.group(&gid("sip:big@police.example")).await.is_ok());
}

#[tokio::test]
async fn a_request_naming_too_many_groups_is_refused_whole_by_clients_and_partners() {
    let (federation, police, base) = fire_endpoint().await;
    let groups: Vec<String> = (0..101).map(|i| format!("sip:g{i}@fire.example")).collect();
    let (status, problem) = post_flow(
        &police,
        format!("{base}/group-affiliation"),
        serde_json::json!({
            "mc-service-id": "sip:alice@police.example",
            "mc-service-group-id-list": groups,
            "mc-service": "mcptt",
        }),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("list-too-long")),
        "{problem}"
    );
    let frank = federation.log_on("sip:frank@fire.example", "console").await;
    let many: Vec<_> = (0..101)
        .map(|i| gid(&format!("sip:g{i}@fire.example")))
        .collect();
    let err = frank
        .affiliate(mcx_model::McService::Mcptt, &many)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("list-too-long")),
        "{err}"
    );
    assert!(err.to_string().contains("at most 100"), "{err}");
}

#[tokio::test]
async fn the_database_alone_reveals_no_group_key() {
    use sqlx::Row as _;
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "handset").await;
    bob.subscribe(&gid(OPS)).await.unwrap();
    // A rekey: the new key is in the group record and in bob's event.
    let rekeyed = alice.rekey_group(&gid(OPS)).await.unwrap();
    let gmk = rekeyed.key_material.expect("key material").gmk;
    assert_eq!(
        bob.group(&gid(OPS))
            .await
            .unwrap()
            .key_material
            .map(|k| k.gmk),
        Some(gmk.clone()),
        "members still read the key through the API"
    );
    sqlx::any::install_default_drivers();
    let url = match &system.config.server.storage_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}",
            system.config.server.data_dir.join("mcx.db").display()
        ),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for (table, column) in [
        ("groups", "record"),
        ("client_events", "event"),
        ("outbox", "request"),
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {column} FROM {table}")))
            .fetch_all(&pool)
            .await
            .unwrap();
        for row in rows {
            let text: String = row.try_get(0).unwrap();
            assert!(
                !text.contains(&gmk),
                "{table}.{column} holds the GMK: {text}"
            );
        }
    }
    if system.config.server.storage_url.is_none() {
        for entry in std::fs::read_dir(&system.config.server.data_dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(gmk.len()).any(|w| w == gmk.as_bytes()),
                "a database file holds the GMK"
            );
        }
    }
}

/// Sends the bodies at once under one transaction ID and checks they all got the same
/// successful answer.
async fn send_copies(
    police: &reqwest::Client,
    url: &str,
    transaction: &str,
    bodies: impl Iterator<Item = serde_json::Value>,
) {
    let copies = bodies.map(|body| {
        let request = police
            .post(url)
            .header("mcx-origin", crate::federation::POLICE)
            .header("mcx-transaction-id", transaction)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(copies).await;
    let first = answers[0].clone();
    assert_eq!(first.0, 200, "{first:?}");
    assert!(
        answers.iter().all(|a| a == &first),
        "answers differ: {answers:?}"
    );
}

#[tokio::test]
async fn simultaneous_copies_of_one_transaction_have_one_effect_and_one_answer() {
    let (federation, police, base) = fire_endpoint().await;
    let url = format!("{base}/group-information-provision");
    let transaction = mcx_model::TransactionId::new().to_string();
    // Twenty copies under one transaction ID, with different bodies.
    let bodies = (0..20).map(|i| {
        let mut body = provision(2, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        body["mc-service-group-configuration-information"]["configuration"]["display-name"] =
            serde_json::json!(format!("Copy {i}"));
        body["mc-service-group-configuration-information"]["version"] = serde_json::json!(i + 1);
        body
    });
    send_copies(&police, &url, &transaction, bodies).await;
    // One effect: the copy was stored once, at version 1 of the partner's copy.
    let frank = federation.log_on("sip:frank@fire.example", "console").await;
    let copy = frank.group(&gid("sip:big@police.example")).await.unwrap();
    assert_eq!(copy.version, 1, "stored {} times", copy.version);
}

#[tokio::test]
async fn simultaneous_copies_of_one_affiliation_transaction_have_one_effect_and_one_answer() {
    use mcx_model::group::GroupConfiguration;
    use mcx_model::{McService, NonEmpty};
    let (federation, police, base) = fire_endpoint().await;
    let frank = federation.log_on("sip:frank@fire.example", "console").await;
    let groups = ["sip:hose@fire.example", "sip:ladder@fire.example"];
    for group in groups {
        let config = GroupConfiguration::new(
            "Shared",
            [id("sip:alice@police.example")],
            NonEmpty::one(McService::Mcptt),
        );
        frank.create_group(&gid(group), &config).await.unwrap();
    }
    let url = format!("{base}/group-affiliation");
    let transaction = mcx_model::TransactionId::new().to_string();
    // Twenty copies under one transaction ID, half naming one group, half the other.
    let bodies = (0..20).map(|i| {
        let body = serde_json::json!({
            "mc-service-id": "sip:alice@police.example",
            "mc-service-group-id-list": [groups[i % 2]],
            "mc-service": "mcptt",
        });
        body
    });
    send_copies(&police, &url, &transaction, bodies).await;
    // One effect: fire holds alice in exactly one of the two groups.
    let mut held = 0;
    for group in groups {
        let affiliations = frank.group_affiliations(&gid(group)).await.unwrap();
        held += affiliations
            .members
            .iter()
            .filter(|m| m.mc_service_id.as_str() == "sip:alice@police.example")
            .count();
    }
    assert_eq!(held, 1, "the transaction took effect {held} times");
}

#[tokio::test]
async fn simultaneous_copies_of_one_regroup_transaction_have_one_answer() {
    use mcx_model::group::GroupConfiguration;
    use mcx_model::{McService, NonEmpty};
    let (federation, police, base) = fire_endpoint().await;
    let frank = federation.log_on("sip:frank@fire.example", "console").await;
    let hose = GroupConfiguration::new(
        "Hose",
        [id("sip:frank@fire.example")],
        NonEmpty::one(McService::Mcptt),
    );
    frank
        .create_group(&gid("sip:hose@fire.example"), &hose)
        .await
        .unwrap();
    let url = format!("{base}/preconfigured-regroup");
    let transaction = mcx_model::TransactionId::new().to_string();
    // Twenty copies under one transaction ID, each naming another regroup group: handled
    // each on its own, the first would claim fire's group and the others be refused.
    let bodies = (0..20).map(|i| {
        serde_json::json!({
            "mc-service-id": "sip:alice@police.example",
            "regroup-group-id": format!("sip:regroup-{i}@police.example"),
            "preconfigured-group-id": "sip:template@police.example",
            "mc-service-group-id-list": ["sip:hose@fire.example"],
            "mc-service": "mcptt",
        })
    });
    send_copies(&police, &url, &transaction, bodies).await;
    let hose = frank.group(&gid("sip:hose@fire.example")).await.unwrap();
    assert!(
        hose.configuration.regrouped_into.is_some(),
        "one copy regrouped fire's group: {hose:?}"
    );
}
