//! Starting systems for tests and logging users on.

use std::time::Duration;

use futures_util::StreamExt as _;
use mcx_client::{Client, EventStream};
use mcx_model::events::DeliveredEvent;
use mcx_model::group::GroupRecord;
use mcx_model::{ClientId, McServiceGroupId, McServiceId};
use mcx_server::{Config, RunningNode};

/// One MC system running in this process, with its own data directory.
pub struct TestSystem {
    pub node: Option<RunningNode>,
    pub config: Config,
    /// Kept so the data directory lives as long as the system.
    pub _dir: tempfile::TempDir,
}

impl TestSystem {
    /// The built-in example system (police.example: alice administers, bob and carol are officers).
    pub async fn example() -> Self {
        Self::start(Config::example()).await
    }

    /// A system from a configuration; listen address and data directory are replaced by
    /// an ephemeral port and a temporary directory.
    pub async fn start(mut config: Config) -> Self {
        // Raw reqwest clients in tests need the process-wide crypto provider too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temporary directory");
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        config.server.data_dir = dir.path().join("data");
        config.server.storage_url = test_storage_url().await;
        let node = mcx_server::start(config.clone())
            .await
            .expect("the system starts");
        Self {
            node: Some(node),
            config,
            _dir: dir,
        }
    }

    pub fn node(&self) -> &RunningNode {
        self.node.as_ref().expect("the system is running")
    }

    pub fn url(&self) -> String {
        self.node().base_url()
    }

    /// An anonymous client.
    pub fn client(&self) -> Client {
        Client::new(&self.url()).expect("client")
    }

    /// Logs a configured user on from a client named `client_id`; test and example
    /// passwords are the user part of the ID.
    pub async fn log_on_as(&self, user: &str, client_id: &str) -> Client {
        assert!(
            self.config
                .users
                .iter()
                .any(|u| u.mc_service_id.as_str() == user),
            "{user} is not configured"
        );
        let password = user
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        let (client, _) = self
            .client()
            .log_on(
                &id(user),
                &password,
                &ClientId::parse(client_id).expect("client id"),
            )
            .await
            .expect("log-on succeeds");
        client
    }

    /// Stops the system and starts it again on the same data directory (same port is not
    /// kept: clients must use the new URL).
    pub async fn restart(&mut self) {
        let node = self.node.take().expect("the system is running");
        node.shutdown().await.expect("clean shutdown");
        self.node = Some(
            mcx_server::start(self.config.clone())
                .await
                .expect("the system starts again"),
        );
    }

    /// Every group as a group administrator sees it: the store's content, through the API.
    pub async fn all_groups(&self) -> Vec<GroupRecord> {
        self.log_on_as(ALICE, "inspector")
            .await
            .groups()
            .await
            .expect("listing groups")
    }
}

pub const ALICE: &str = "sip:alice@police.example";
pub const BOB: &str = "sip:bob@police.example";
pub const CAROL: &str = "sip:carol@police.example";
pub const OPS: &str = "sip:ops@police.example";
pub const PATROL: &str = "sip:patrol@police.example";

pub fn id(user: &str) -> McServiceId {
    McServiceId::parse(user).expect("valid MC service ID")
}

pub fn gid(group: &str) -> McServiceGroupId {
    McServiceGroupId::parse(group).expect("valid MC service group ID")
}

/// The next event of a stream, failing the test after five seconds.
pub async fn next_event(stream: &mut EventStream) -> DeliveredEvent {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event arrives within 5 s")
        .expect("the stream is open")
        .expect("the event is well-formed")
}

/// Asserts that no event arrives within the given time.
pub async fn no_event(stream: &mut EventStream, within: Duration) {
    if let Ok(Some(event)) = tokio::time::timeout(within, stream.next()).await {
        panic!("unexpected event: {event:?}");
    }
}

/// With `MCX_TEST_POSTGRES=postgres://user@host:port` set, each test system gets a fresh
/// PostgreSQL database there instead of the embedded SQLite file.
pub async fn test_storage_url() -> Option<String> {
    use sqlx::Connection as _;
    let server = std::env::var("MCX_TEST_POSTGRES").ok()?;
    let name = format!("mcx_test_{}", uuid_simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("MCX_TEST_POSTGRES is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    Some(format!("{server}/{name}"))
}

fn uuid_simple() -> String {
    mcx_model::TransactionId::new().0.simple().to_string()
}

/// `xmllint` (Debian's libxml2-utils), the validator every served XML document is
/// checked with.
pub fn xmllint() -> &'static std::path::Path {
    static FOUND: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    debian_tool(&FOUND, "xmllint", "libxml2-utils")
}

/// `sipp` (Debian's sip-tester), the real SIP peer of the SIP tests.
pub fn sipp() -> &'static std::path::Path {
    static FOUND: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    debian_tool(&FOUND, "sipp", "sip-tester")
}

/// `haproxy` (Debian's package), the load balancer in front of several nodes.
pub fn haproxy() -> &'static std::path::Path {
    static FOUND: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    // Debian puts it in /usr/sbin, which a user's PATH may not hold.
    let sbin = std::path::Path::new("/usr/sbin/haproxy");
    if sbin.exists() {
        return FOUND.get_or_init(|| sbin.to_path_buf());
    }
    debian_tool(&FOUND, "haproxy", "haproxy")
}

/// Debian's `chromium` and its WebDriver (`chromedriver`, package chromium-driver): the
/// real browser of the console tests.
pub fn chromium_and_driver() -> (&'static std::path::Path, &'static std::path::Path) {
    static BROWSER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    static DRIVER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    (
        debian_tool(&BROWSER, "chromium", "chromium"),
        debian_tool(&DRIVER, "chromedriver", "chromium-driver"),
    )
}

/// A tool the tests need, from Debian: found on the PATH, else installed (as the
/// PostgreSQL tests install their server). If it cannot be had the test fails: a missing
/// validator or peer never makes a test skip.
fn debian_tool(
    found: &'static std::sync::OnceLock<std::path::PathBuf>,
    command: &str,
    package: &str,
) -> &'static std::path::Path {
    found.get_or_init(|| {
        let which = || {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {command}")])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        };
        if let Some(found) = which() {
            return found;
        }
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let sudo = if root { "" } else { "sudo " };
        let installed = std::process::Command::new("sh")
            .args([
                "-c",
                &format!(
                    "{sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -qq {package} >/dev/null"
                ),
            ])
            .status();
        assert!(
            matches!(installed, Ok(s) if s.success()),
            "{command} is missing and could not be installed (apt-get install {package})"
        );
        which().unwrap_or_else(|| panic!("{command} is on the PATH after installing {package}"))
    })
}

/// Checks `xml` well-formed and namespace-correct with xmllint, and returns the value of
/// each XPath expression (namespace-independent expressions, with `local-name()`).
pub fn xmllint_check(xml: &str, xpaths: &[&str]) -> Vec<String> {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(xml.as_bytes()).expect("writes");
    let path = file.path().to_owned();
    let checked = std::process::Command::new(xmllint())
        .arg("--noout")
        .arg(&path)
        .output()
        .expect("xmllint runs");
    assert!(
        checked.status.success() && checked.stderr.is_empty(),
        "xmllint refuses the document: {}\n{xml}",
        String::from_utf8_lossy(&checked.stderr)
    );
    xpaths
        .iter()
        .map(|xpath| {
            let out = std::process::Command::new(xmllint())
                .args(["--xpath", &format!("string({xpath})")])
                .arg(&path)
                .output()
                .expect("xmllint runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

/// The first of a log-off's two commits, with the server stopped: the store ends every
/// session of `user` (as its expiry or log-off would) but the server is not there to
/// end the user's affiliations, as if it had died between the two.
pub async fn end_sessions_in_store(config: &Config, user: &str) {
    use mcx_core::ports::SessionStore as _;
    let url = config
        .server
        .storage_url
        .clone()
        .unwrap_or_else(|| mcx_store::StoreOptions::sqlite_in(&config.server.data_dir).url);
    let store = mcx_store::SqlStore::open(
        &mcx_store::StoreOptions {
            url,
            max_connections: 2,
            storage_key: None,
        },
        mcx_server::world::store_world(),
    )
    .await
    .expect("the store opens");
    let sessions = store.sessions_of(&id(user)).await.expect("sessions");
    assert!(!sessions.is_empty(), "{user} has a session to end");
    for session in sessions {
        assert!(store.end_session(&session.session_id).await.expect("ends"));
    }
    store.close().await;
}

/// `mcx config federation fed DOMAINS --base-port BASE` run in `cwd`: a development PKI
/// and one configuration per system under `cwd/fed`, every system a partner of the others.
pub fn write_federation(cwd: &std::path::Path, domains: &[&str], base: u16) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["config", "federation", "fed"])
        .args(domains)
        .arg("--base-port")
        .arg(base.to_string())
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mcx config federation runs");
    assert!(
        status.success(),
        "mcx config federation writes the configurations"
    );
}

/// Renames `group` as its administrator, reading its version again until the change is
/// acknowledged (a node killed meanwhile, a concurrent change).
pub async fn rename_group(admin: &Client, group: &McServiceGroupId, name: &str) {
    for _ in 0..100 {
        if let Ok(record) = admin.group(group).await {
            let mut config = record.configuration.clone();
            config.display_name = name.to_string();
            if admin
                .update_group(group, &config, mcx_client::IfMatch::Version(record.version))
                .await
                .is_ok()
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the change to {name} was never acknowledged");
}

/// Starts the real `mcx serve` on a configuration file, its output discarded.
pub fn spawn_serve(config: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mcx serve starts")
}

/// Waits (up to 20 s) until `GET /v1/system` at `url` answers with success.
pub async fn answering(url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for _ in 0..400 {
        if let Ok(answer) = reqwest::get(format!("{url}/v1/system")).await
            && answer.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing answers at {url}");
}

/// Another node of `first`'s system (PostgreSQL): its configuration and storage key, its
/// own listener and data directory under `dir`.
pub async fn second_node_of(first: &TestSystem, dir: &std::path::Path) -> RunningNode {
    let mut config = first.config.clone();
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.server.data_dir = dir.join("data");
    // The nodes of one system share its storage key (it seals group keys in the store).
    config.server.storage_key = Some(first.config.storage_key_path());
    mcx_server::start(config)
        .await
        .expect("a second node starts")
}

/// A configuration file of police.example for the real `mcx serve`: `server` holds the
/// lines of its `[server]` table (`key = value`, one per line); every user's password is
/// "pw".
pub struct PoliceToml(String);

impl PoliceToml {
    pub fn new(server: &str) -> Self {
        Self(format!(
            "[system]\ndomain = \"police.example\"\nname = \"Police\"\ndevelopment = true\n[server]\n{server}\n"
        ))
    }

    /// A user with these permissions and, unless `groups` is empty, MCPTT groups and N2.
    pub fn user(mut self, id: &str, permissions: &[&str], groups: &[&str], n2: u32) -> Self {
        let quoted = |items: &[&str]| {
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.0.push_str(&format!(
            "[[users]]\nmc-service-id = \"{id}\"\npassword = \"pw\"\npermissions = [{}]\n",
            quoted(permissions)
        ));
        if !groups.is_empty() {
            self.0.push_str(&format!(
                "[users.services.mcptt]\ngroups = [{}]\nmax-affiliations-n2 = {n2}\n",
                quoted(groups)
            ));
        }
        self
    }

    /// An MCPTT group with these members.
    pub fn group(mut self, id: &str, name: &str, members: &[String]) -> Self {
        let list: Vec<String> = members
            .iter()
            .map(|m| format!("{{ uri = \"{m}\" }}"))
            .collect();
        self.0.push_str(&format!(
            "[[groups]]\nmc-service-group-id = \"{id}\"\n[groups.configuration]\ndisplay-name = \"{name}\"\nsupported-services = [\"mcptt\"]\nlist = [{}]\n",
            list.join(", ")
        ));
        self
    }

    /// Writes it to `path`, returned.
    pub fn write(self, path: std::path::PathBuf) -> std::path::PathBuf {
        std::fs::write(&path, self.0).expect("configuration written");
        path
    }
}
