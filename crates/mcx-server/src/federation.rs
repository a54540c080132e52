//! A local federation in one command: a development PKI and one configuration file per
//! MC system, each system a partner of every other, ready for `mcx serve --config`.
//! `mcx config federation` writes it; the demo and the tests build on it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use mcx_model::group::{GroupConfiguration, GroupMemberEntry};
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::{Permission, ServiceProfile};
use mcx_model::{McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};

use crate::config::{
    Config, GroupConfig, InterconnectionSection, PartnerConfig, ServerSection, SystemSection,
    UserConfig,
};

/// One generated system.
#[derive(Debug, Clone)]
pub struct GeneratedSystem {
    /// Its domain.
    pub domain: SystemDomain,
    /// Its configuration file.
    pub config_file: PathBuf,
    /// Its configuration.
    pub config: Config,
}

/// A password as the configuration keeps it: an Argon2id PHC string.
fn hash(password: &str) -> anyhow::Result<String> {
    mcx_core::credentials::hash_password(password).map_err(anyhow::Error::msg)
}

fn id(text: &str) -> anyhow::Result<McServiceId> {
    Ok(McServiceId::parse(text)?)
}

/// Every system's users: `admin` (every permission), `user1` and `user2`; passwords are
/// the local parts. Every system defines `sip:ops@<domain>` with its admin and user1 and
/// every partner's user1 as members.
pub fn generate(
    dir: &Path,
    domains: &[SystemDomain],
    base_port: u16,
) -> anyhow::Result<Vec<GeneratedSystem>> {
    if domains.len() < 2 {
        bail!("a federation needs at least two systems");
    }
    let unique: BTreeSet<_> = domains.iter().collect();
    if unique.len() != domains.len() {
        bail!("each system must be named once");
    }
    let pki = dir.join("pki");
    if !pki.join(crate::pki::CA_CERT).exists() {
        crate::pki::init(&pki, "mcx local federation CA")?;
    }
    let ports: BTreeMap<&SystemDomain, (u16, u16)> = domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let api = base_port + 2 * i as u16;
            (d, (api, api + 1))
        })
        .collect();
    let ops = |d: &SystemDomain| McServiceGroupId::parse(&format!("sip:ops@{d}"));
    let mut systems = Vec::new();
    // Paths are written relative to the configuration files' directory, the rule
    // `Config::load` applies: the files work from any working directory.
    let relative = |path: &Path| -> PathBuf {
        path.strip_prefix(dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    };
    for domain in domains {
        let files = crate::pki::issue(&pki, domain)?;
        let (api, interconnection) = ports[domain];
        let mut user1_groups = Vec::new();
        for d in domains {
            user1_groups.push(ops(d)?);
        }
        let mcptt = |groups: Vec<McServiceGroupId>| {
            BTreeMap::from([(
                McService::Mcptt,
                ServiceProfile {
                    groups,
                    max_affiliations_n2: 4,
                },
            )])
        };
        let users = vec![
            UserConfig {
                mc_service_id: id(&format!("sip:admin@{domain}"))?,
                password: hash("admin")?,
                display_name: Some(format!("Administrator of {domain}")),
                services: mcptt(vec![ops(domain)?]),
                permissions: Permission::ALL.into_iter().collect(),
            },
            UserConfig {
                mc_service_id: id(&format!("sip:user1@{domain}"))?,
                password: hash("user1")?,
                display_name: None,
                services: mcptt(user1_groups),
                permissions: BTreeSet::new(),
            },
            UserConfig {
                mc_service_id: id(&format!("sip:user2@{domain}"))?,
                password: hash("user2")?,
                display_name: None,
                services: mcptt(vec![ops(domain)?]),
                permissions: BTreeSet::new(),
            },
        ];
        let mut members = vec![
            GroupMemberEntry::new(id(&format!("sip:admin@{domain}"))?),
            GroupMemberEntry::new(id(&format!("sip:user1@{domain}"))?),
        ];
        for partner in domains.iter().filter(|d| *d != domain) {
            members.push(GroupMemberEntry::new(id(&format!("sip:user1@{partner}"))?));
        }
        let groups = vec![GroupConfig {
            mc_service_group_id: ops(domain)?,
            configuration: GroupConfiguration {
                list: members,
                on_network_group_priority: Some(5),
                ..GroupConfiguration::new(
                    format!("Operations of {domain}"),
                    [],
                    NonEmpty::one(McService::Mcptt),
                )
            },
        }];
        let partners = domains
            .iter()
            .filter(|d| *d != domain)
            .map(|d| PartnerConfig {
                domain: d.clone(),
                endpoint: format!("https://127.0.0.1:{}", ports[d].1).into(),
                trust_anchors: relative(&pki.join(crate::pki::CA_CERT)),
                inbound: Capability::ALL.into_iter().collect(),
                outbound: Capability::ALL.into_iter().collect(),
                policy: LocalGroupPolicy::default(),
            })
            .collect();
        let config = Config {
            system: SystemSection {
                domain: domain.clone(),
                name: domain.to_string(),
                development: false,
            },
            server: ServerSection {
                listen: SocketAddr::from(([127, 0, 0, 1], api)),
                data_dir: PathBuf::from(format!("{domain}-data")),
                ..ServerSection::default()
            },
            users,
            groups,
            interconnection: Some(InterconnectionSection {
                listen: SocketAddr::from(([127, 0, 0, 1], interconnection)),
                certificate: relative(&files.certificate),
                private_key: relative(&files.private_key),
                retry_initial_ms: 200,
                retry_max_ms: 5_000,
                request_timeout_ms: 10_000,
                lane_lease_ms: 30_000,
            }),
            partners,
            sip: None,
        };
        config.check()?;
        let config_file = dir.join(format!("{domain}.toml"));
        let text = toml::to_string_pretty(&config).context("writing the configuration as TOML")?;
        crate::pki::write_private(
            &config_file,
            &format!("# Generated by `mcx config federation`.\n{text}"),
        )?;
        let mut config = config;
        config.resolve_paths(dir);
        systems.push(GeneratedSystem {
            domain: domain.clone(),
            config_file,
            config,
        });
    }
    Ok(systems)
}
