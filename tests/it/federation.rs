//! Several interconnected MC systems for tests: a development PKI made in a temporary
//! directory, each system on its own loopback ports with its own data directory, and the
//! partner relations of a small federation (police, fire, ambulance).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcx_client::Client;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::{ClientId, McService, SystemDomain};
use mcx_server::config::{
    InterconnectionSection, PartnerConfig, ServerSection, SystemSection, UserConfig,
};
use mcx_server::{Config, RunningNode};

pub const POLICE: &str = "police.example";
pub const FIRE: &str = "fire.example";
pub const AMBULANCE: &str = "ambulance.example";

/// One system of the federation.
pub struct Member {
    pub config: Config,
    pub node: Option<RunningNode>,
}

/// Interconnected systems sharing one test PKI.
pub struct Federation {
    pub dir: tempfile::TempDir,
    pub members: BTreeMap<String, Member>,
}

/// Ports for test systems come from a per-process counter below the kernel's ephemeral
/// range (32768 and up on Linux): a port taken by binding port 0 can be handed to an
/// outgoing connection before the system under test binds it.
pub fn free_ports(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        12_000 + (std::process::id() % 80) as u16 * 250,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let base = NEXT.fetch_add(count, Ordering::SeqCst);
        assert!(base < 32_000, "ran out of test ports");
        // Free for TCP and UDP alike: SIP listens on both at one port.
        if (0..count).all(|i| {
            std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok()
        }) {
            return base;
        }
    }
}

fn free_port() -> u16 {
    free_ports(1)
}

/// Every capability.
pub fn all_capabilities() -> BTreeSet<Capability> {
    Capability::ALL.into_iter().collect()
}

/// A user of a test system: password = local part.
pub fn user(id: &str, admin: bool, groups: &[&str]) -> UserConfig {
    let mut services = BTreeMap::new();
    services.insert(
        McService::Mcptt,
        mcx_model::profile::ServiceProfile {
            groups: groups.iter().map(|g| crate::support::gid(g)).collect(),
            max_affiliations_n2: 4,
        },
    );
    let mut permissions = BTreeSet::new();
    if admin {
        permissions.insert(mcx_model::profile::Permission::GroupAdministration);
    }
    UserConfig {
        mc_service_id: crate::support::id(id),
        password: id
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string(),
        display_name: None,
        services,
        permissions,
    }
}

/// A user with a profile per MC service `(service, groups, N2)` and permissions.
pub fn profiled_user(
    id: &str,
    services: &[(McService, &[&str], u32)],
    permissions: &[mcx_model::profile::Permission],
) -> UserConfig {
    let mut user = user(id, false, &[]);
    user.services = services
        .iter()
        .map(|(service, groups, n2)| {
            (
                *service,
                mcx_model::profile::ServiceProfile {
                    groups: groups.iter().map(|g| crate::support::gid(g)).collect(),
                    max_affiliations_n2: *n2,
                },
            )
        })
        .collect();
    user.permissions = permissions.iter().copied().collect();
    user
}

/// How one system sees one partner.
pub struct Relation {
    pub partner: &'static str,
    pub inbound: BTreeSet<Capability>,
    pub outbound: BTreeSet<Capability>,
    pub policy: LocalGroupPolicy,
}

impl Relation {
    pub fn full(partner: &'static str) -> Self {
        Self {
            partner,
            inbound: all_capabilities(),
            outbound: all_capabilities(),
            policy: LocalGroupPolicy::default(),
        }
    }
}

impl Federation {
    /// Issues certificates for the systems and writes their configurations. `systems`
    /// gives each system's users and relations.
    pub fn new(systems: Vec<(&'static str, Vec<UserConfig>, Vec<Relation>)>) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temporary directory");
        let pki = dir.path().join("pki");
        mcx_server::pki::init(&pki, "test CA").expect("test CA");
        let ports: BTreeMap<&str, u16> =
            systems.iter().map(|(d, _, _)| (*d, free_port())).collect();
        let mut members = BTreeMap::new();
        for (domain, users, relations) in systems {
            let domain_id = SystemDomain::parse(domain).expect("domain");
            let files = mcx_server::pki::issue(&pki, &domain_id).expect("certificate");
            let partners = relations
                .into_iter()
                .map(|r| PartnerConfig {
                    domain: SystemDomain::parse(r.partner).expect("domain"),
                    endpoint: format!("https://127.0.0.1:{}", ports[r.partner]).into(),
                    trust_anchors: pki.join(mcx_server::pki::CA_CERT),
                    inbound: r.inbound,
                    outbound: r.outbound,
                    policy: r.policy,
                })
                .collect();
            let config = Config {
                system: SystemSection {
                    domain: domain_id,
                    name: domain.to_string(),
                    development: true,
                },
                server: ServerSection {
                    listen: "127.0.0.1:0".parse().expect("address"),
                    data_dir: dir.path().join(domain),
                    remote_change_timeout_seconds: 2,
                    ..ServerSection::default()
                },
                users,
                groups: Vec::new(),
                interconnection: Some(InterconnectionSection {
                    listen: format!("127.0.0.1:{}", ports[domain])
                        .parse()
                        .expect("address"),
                    certificate: files.certificate,
                    private_key: files.private_key,
                    retry_initial_ms: 50,
                    retry_max_ms: 300,
                    request_timeout_ms: 5_000,
                    lane_lease_ms: 30_000,
                }),
                partners,
                // Every system also opens its SIP door (ephemeral port).
                sip: Some(mcx_server::config::SipSection::listening(
                    "127.0.0.1:0".parse().expect("address"),
                )),
            };
            config.check().expect("a valid test configuration");
            members.insert(domain.to_string(), Member { config, node: None });
        }
        Self { dir, members }
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// Starts every system.
    pub async fn start_all(&mut self) {
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            self.start(&name).await;
        }
    }

    /// Starts (or restarts after `stop`) one system, on the same ports and data.
    pub async fn start(&mut self, domain: &str) {
        let member = self.members.get_mut(domain).expect("a member");
        assert!(member.node.is_none(), "{domain} is running already");
        if member.config.server.storage_url.is_none() {
            member.config.server.storage_url = crate::support::test_storage_url().await;
        }
        member.node = Some(
            mcx_server::start(member.config.clone())
                .await
                .expect("the system starts"),
        );
    }

    /// Stops one system cleanly.
    pub async fn stop(&mut self, domain: &str) {
        let member = self.members.get_mut(domain).expect("a member");
        let node = member.node.take().expect("running");
        node.shutdown().await.expect("clean shutdown");
    }

    pub fn node(&self, domain: &str) -> &RunningNode {
        self.members[domain].node.as_ref().expect("running")
    }

    /// Logs a user on at their system (password = local part).
    pub async fn log_on(&self, user: &str, client: &str) -> Client {
        let id = crate::support::id(user);
        let domain = id.domain().to_string();
        let password = user
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or_default();
        let (client, _) = Client::new(&self.node(&domain).base_url())
            .expect("client")
            .log_on(&id, password, &ClientId::parse(client).expect("client id"))
            .await
            .expect("log-on succeeds");
        client
    }

    /// Certificate and key files of a system.
    pub fn identity_files(&self, domain: &str) -> (PathBuf, PathBuf) {
        let ic = self.members[domain]
            .config
            .interconnection
            .as_ref()
            .expect("interconnection");
        (ic.certificate.clone(), ic.private_key.clone())
    }
}

/// Polls `check` until it returns `Some`, failing after ten seconds with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A raw HTTPS client presenting `cert`/`key` (or no certificate), trusting the test CA,
/// for talking to `target`'s interconnection endpoint directly at `https://<target>:<port>`
/// (the name resolves to loopback, so the endpoint's certificate is checked for it).
pub fn raw_partner_client(
    pki: &Path,
    identity: Option<(&Path, &Path)>,
    target: &str,
    addr: std::net::SocketAddr,
) -> reqwest::Client {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(pki.join(mcx_server::pki::CA_CERT))
        .expect("CA")
    {
        roots.add(cert.expect("CA cert")).expect("CA root");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = rustls_pki_types::CertificateDer::pem_file_iter(cert)
                .expect("cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("cert chain");
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .resolve(target, addr)
        .build()
        .expect("raw client")
}

/// fire.example running, with police.example (not running) as its partner: fire's
/// interconnection address and a raw client presenting police's certificate to it.
pub async fn fire_facing_police() -> (Federation, std::net::SocketAddr, reqwest::Client) {
    let mut federation = Federation::new(vec![
        (
            FIRE,
            vec![user("sip:frank@fire.example", true, &[])],
            vec![Relation::full(POLICE)],
        ),
        (
            POLICE,
            vec![user("sip:alice@police.example", true, &[])],
            vec![Relation::full(FIRE)],
        ),
    ]);
    federation.start(FIRE).await;
    let addr = federation
        .node(FIRE)
        .interconnection_addr()
        .expect("an endpoint");
    let (cert, key) = federation.identity_files(POLICE);
    let police = raw_partner_client(&federation.pki_dir(), Some((&cert, &key)), FIRE, addr);
    (federation, addr, police)
}

/// Fire's administrator and the group of fire that police users affiliate to in the
/// helper below.
pub const HARBOUR_ADMIN: &str = "sip:frank@fire.example";
pub const HARBOUR_GROUP: &str = "sip:harbour@fire.example";

/// Police and fire, partners of each other with every capability, both running, and
/// fire's harbour group created by its administrator (frank) with `police_members` and
/// frank as members. Returns the federation and frank's client.
pub async fn police_and_fire_with_harbour(
    police_users: Vec<UserConfig>,
    police_members: &[&str],
) -> (Federation, Client) {
    use mcx_model::NonEmpty;
    use mcx_model::group::GroupConfiguration;
    let mcptt = McService::Mcptt;
    let mut federation = Federation::new(vec![
        (POLICE, police_users, vec![Relation::full(FIRE)]),
        (
            FIRE,
            vec![profiled_user(
                HARBOUR_ADMIN,
                &[(mcptt, &[HARBOUR_GROUP], 4)],
                &mcx_model::profile::Permission::ALL,
            )],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start_all().await;
    let frank = federation.log_on(HARBOUR_ADMIN, "console").await;
    let members = police_members
        .iter()
        .chain([&HARBOUR_ADMIN])
        .map(|u| crate::support::id(u));
    let harbour = GroupConfiguration::new("Harbour", members, NonEmpty::one(mcptt));
    frank
        .create_group(&crate::support::gid(HARBOUR_GROUP), &harbour)
        .await
        .expect("fire's administrator creates harbour");
    (federation, frank)
}
