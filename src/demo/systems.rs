//! The demo's three MC systems: a development PKI and their configurations (each runs as
//! a separate `mcx serve` process, see `local_systems`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::{Permission, ServiceProfile};
use mcx_model::{McService, McServiceGroupId, McServiceId, SystemDomain};
use mcx_server::Config;
use mcx_server::config::{
    InterconnectionSection, PartnerConfig, ServerSection, SystemSection, UserConfig,
};

pub(crate) const POLICE: &str = "police.example";
pub(crate) const FIRE: &str = "fire.example";
pub(crate) const AMBULANCE: &str = "ambulance.example";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn id(text: &str) -> anyhow::Result<McServiceId> {
    Ok(McServiceId::parse(text)?)
}

fn gid(text: &str) -> anyhow::Result<McServiceGroupId> {
    Ok(McServiceGroupId::parse(text)?)
}

fn user(
    mc_service_id: &str,
    groups: &[&str],
    n2: u32,
    permissions: &[Permission],
) -> anyhow::Result<UserConfig> {
    let name = mc_service_id
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or_default();
    Ok(UserConfig {
        mc_service_id: id(mc_service_id)?,
        password: mcx_core::credentials::hash_password(name).map_err(anyhow::Error::msg)?,
        display_name: None,
        services: BTreeMap::from([(
            McService::Mcptt,
            ServiceProfile {
                groups: groups
                    .iter()
                    .map(|g| gid(g))
                    .collect::<anyhow::Result<_>>()?,
                max_affiliations_n2: n2,
            },
        )]),
        permissions: permissions.iter().copied().collect(),
    })
}

fn all() -> BTreeSet<Capability> {
    Capability::ALL.into_iter().collect()
}

/// Writes the PKI and the three configurations into `dir`.
pub(crate) fn prepare(
    dir: &Path,
    base_port: Option<u16>,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let pki = dir.join("pki");
    mcx_server::pki::init(&pki, "mcx demo CA")?;
    let admin = Permission::ALL.to_vec();
    let users: BTreeMap<&str, Vec<UserConfig>> = BTreeMap::from([
        (
            POLICE,
            vec![
                user(
                    "sip:alice@police.example",
                    &["sip:joint@police.example"],
                    4,
                    &admin,
                )?,
                user(
                    "sip:bob@police.example",
                    &[
                        "sip:joint@police.example",
                        "sip:patrol@police.example",
                        "sip:harbour@fire.example",
                    ],
                    2,
                    &[],
                )?,
                user(
                    "sip:carol@police.example",
                    &["sip:joint@police.example", "sip:harbour@fire.example"],
                    3,
                    &[],
                )?,
                user(
                    "sip:olga@police.example",
                    &[],
                    2,
                    &[Permission::AcmAdministration],
                )?,
            ],
        ),
        (
            FIRE,
            vec![
                user(
                    "sip:frank@fire.example",
                    &["sip:harbour@fire.example"],
                    4,
                    &admin,
                )?,
                user(
                    "sip:fiona@fire.example",
                    &["sip:joint@police.example", "sip:harbour@fire.example"],
                    3,
                    &[],
                )?,
                user("sip:felix@fire.example", &[], 3, &[])?,
                user(
                    "sip:fred@fire.example",
                    &[],
                    2,
                    &[Permission::AcmAdministration],
                )?,
            ],
        ),
        (
            AMBULANCE,
            vec![
                user("sip:amy@ambulance.example", &[], 4, &admin)?,
                user(
                    "sip:andy@ambulance.example",
                    &["sip:joint@police.example", "sip:harbour@fire.example"],
                    3,
                    &[],
                )?,
            ],
        ),
    ]);
    let mut ports = BTreeMap::new();
    for (i, domain) in [POLICE, FIRE, AMBULANCE].into_iter().enumerate() {
        let pair = match base_port {
            Some(base) => (base + 2 * i as u16, base + 2 * i as u16 + 1),
            None => (free_port()?, free_port()?),
        };
        ports.insert(domain, pair);
    }
    let relation = |partner: &str,
                    outbound: BTreeSet<Capability>,
                    policy: LocalGroupPolicy|
     -> anyhow::Result<PartnerConfig> {
        Ok(PartnerConfig {
            domain: SystemDomain::parse(partner)?,
            endpoint: format!("https://127.0.0.1:{}", ports[partner].1).into(),
            trust_anchors: pki.join(mcx_server::pki::CA_CERT),
            inbound: all(),
            outbound,
            policy,
        })
    };
    // Police does not push its groups to ambulance: ambulance asks when its users log on.
    let no_push: BTreeSet<_> = all()
        .into_iter()
        .filter(|c| *c != Capability::ProvideGroupConfiguration)
        .collect();
    let fire_policy = LocalGroupPolicy {
        max_group_priority: Some(3),
        drop_services: vec![McService::Mcvideo],
        ..LocalGroupPolicy::default()
    };
    let partners: BTreeMap<&str, Vec<PartnerConfig>> = BTreeMap::from([
        (
            POLICE,
            vec![
                relation(FIRE, all(), LocalGroupPolicy::default())?,
                relation(AMBULANCE, no_push, LocalGroupPolicy::default())?,
            ],
        ),
        (
            FIRE,
            vec![
                relation(POLICE, all(), fire_policy)?,
                relation(AMBULANCE, all(), LocalGroupPolicy::default())?,
            ],
        ),
        (
            AMBULANCE,
            vec![
                relation(POLICE, all(), LocalGroupPolicy::default())?,
                relation(FIRE, all(), LocalGroupPolicy::default())?,
            ],
        ),
    ]);
    let mut files = BTreeMap::new();
    for domain in [POLICE, FIRE, AMBULANCE] {
        let files_of = mcx_server::pki::issue(&pki, &SystemDomain::parse(domain)?)?;
        let (api, partners_port) = ports[domain];
        let config = Config {
            system: SystemSection {
                domain: SystemDomain::parse(domain)?,
                name: domain.to_string(),
                development: false,
            },
            server: ServerSection {
                listen: SocketAddr::from(([127, 0, 0, 1], api)),
                data_dir: dir.join(format!("{domain}-data")),
                remote_change_timeout_seconds: 20,
                ..ServerSection::default()
            },
            users: users[domain].clone(),
            groups: Vec::new(),
            interconnection: Some(InterconnectionSection {
                listen: SocketAddr::from(([127, 0, 0, 1], partners_port)),
                certificate: files_of.certificate,
                private_key: files_of.private_key,
                retry_initial_ms: 100,
                retry_max_ms: 1_000,
                request_timeout_ms: 5_000,
                lane_lease_ms: 30_000,
            }),
            partners: partners[domain].clone(),
            sip: None,
        };
        config.check()?;
        let path = dir.join(format!("{domain}.toml"));
        mcx_server::pki::write_private(&path, &toml::to_string_pretty(&config)?)
            .with_context(|| format!("writing {}", path.display()))?;
        files.insert(domain.to_string(), path);
    }
    Ok(files)
}
