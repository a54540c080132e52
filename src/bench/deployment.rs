//! The bench's deployment: a home system and P partner systems, each its own `mcx serve`
//! process on loopback with its embedded store, configured with the users and groups every
//! scenario needs; optionally the home store preloaded with stored affiliations. The
//! layout is written to `deployment.json` so the same load can drive systems started by
//! hand (`mcx bench --running DIR`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use mcx_core::ports::{Credential, SessionRecord, UserRecord};
use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::{Permission, ServiceProfile, UserProfile};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};
use mcx_server::Config;
use mcx_server::config::{
    GroupConfig, InterconnectionSection, PartnerConfig, ServerSection, SystemSection, UserConfig,
};
use mcx_store::{BulkAffiliatedUser, SqlStore, StoreOptions};
use serde::{Deserialize, Serialize};

use crate::local_systems::Systems;

/// The home system's domain; partners are `partner1.example`, `partner2.example`, ...
pub(crate) const HOME: &str = "home.example";
/// Local groups the workers affiliate to (the first of the home's `g<k>` groups).
pub(crate) const WORK_GROUPS: usize = 4;
/// Home groups when the store is preloaded: the preload spreads over these.
const PRELOAD_GROUPS: usize = 1_000;
/// Affiliations per preloaded user.
const PRELOAD_PER_USER: usize = 4;

/// The size of a deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Shape {
    /// Concurrent client users at the home system (`w<i>`).
    pub(crate) workers: usize,
    /// Partner systems.
    pub(crate) partners: usize,
    /// Clients subscribed to the fan-out group, spread over the partners (`s<i>`).
    pub(crate) subscribers: usize,
    /// Regroup members, a third served by each of home, partner1 and partner2 (`m<i>`).
    pub(crate) members: usize,
    /// Affiliations stored at the home system before it starts.
    pub(crate) preload: u64,
}

/// Where the systems are and who may log on: enough to drive a deployment that something
/// else started.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Manifest {
    pub(crate) shape: Shape,
    /// Client API base URL per system domain.
    pub(crate) urls: BTreeMap<String, String>,
}

impl Manifest {
    pub(crate) fn partner(&self, n: usize) -> String {
        format!("partner{n}.example")
    }

    pub(crate) fn url(&self, domain: &str) -> anyhow::Result<&str> {
        self.urls
            .get(domain)
            .map(String::as_str)
            .with_context(|| format!("the deployment has no system '{domain}'"))
    }

    /// Subscribers served by partner `n` (1-based).
    pub(crate) fn subscribers_of(&self, n: usize) -> std::ops::Range<usize> {
        spread(self.shape.subscribers, self.shape.partners, n - 1)
    }

    /// Regroup members served by home (0), partner1 (1) and partner2 (2).
    pub(crate) fn members_of(&self, system: usize) -> std::ops::Range<usize> {
        spread(self.shape.members, 3, system)
    }
}

/// The `index`-th of `parts` nearly equal slices of `0..total`.
fn spread(total: usize, parts: usize, index: usize) -> std::ops::Range<usize> {
    let start = total * index / parts;
    let end = total * (index + 1) / parts;
    start..end
}

pub(crate) fn id(text: &str) -> anyhow::Result<McServiceId> {
    Ok(McServiceId::parse(text)?)
}

pub(crate) fn gid(text: &str) -> anyhow::Result<McServiceGroupId> {
    Ok(McServiceGroupId::parse(text)?)
}

/// The password of a bench user: the user part of its ID.
pub(crate) fn password(user: &McServiceId) -> String {
    user.as_str()
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn user(
    mc_service_id: McServiceId,
    groups: Vec<McServiceGroupId>,
    n2: u32,
    permissions: BTreeSet<Permission>,
) -> anyhow::Result<UserConfig> {
    // Cheap Argon2id costs: the bench logs thousands of throwaway users on, and measures
    // mcx, not the password hash. A deployment uses `mcx passwd` (default costs).
    let password = mcx_core::credentials::hash_password_with_cost(&password(&mc_service_id), 64, 1)
        .map_err(anyhow::Error::msg)?;
    Ok(UserConfig {
        password,
        mc_service_id,
        display_name: None,
        services: BTreeMap::from([(
            McService::Mcptt,
            ServiceProfile {
                groups,
                max_affiliations_n2: n2,
            },
        )]),
        permissions,
    })
}

fn group(id: McServiceGroupId, name: &str, members: Vec<McServiceId>) -> GroupConfig {
    GroupConfig {
        mc_service_group_id: id,
        configuration: GroupConfiguration {
            on_network_group_priority: Some(5),
            ..GroupConfiguration::new(name, members, NonEmpty::one(McService::Mcptt))
        },
    }
}

fn administrator(domain: &str) -> anyhow::Result<UserConfig> {
    let everything: BTreeSet<Permission> = Permission::ALL.into_iter().collect();
    user(
        id(&format!("sip:admin@{domain}"))?,
        Vec::new(),
        1,
        everything,
    )
}

/// The home's `g<k>` groups.
pub(crate) fn home_group(k: usize) -> anyhow::Result<McServiceGroupId> {
    gid(&format!("sip:g{k}@{HOME}"))
}

/// The partner1 groups the workers affiliate to from home.
pub(crate) fn partner_group(k: usize) -> anyhow::Result<McServiceGroupId> {
    gid(&format!("sip:r{k}@partner1.example"))
}

/// A worker at the home system.
pub(crate) fn worker(i: usize) -> anyhow::Result<McServiceId> {
    id(&format!("sip:w{i}@{HOME}"))
}

/// A user of the `log-on` scenario: its password hashed as a deployment's is.
pub(crate) fn storm_user(i: usize) -> anyhow::Result<McServiceId> {
    id(&format!("sip:storm{i}@{HOME}"))
}

/// Writes the PKI, the configurations and the manifest into `dir`. With `base_port`, the
/// systems use consecutive ports from it (two each); otherwise any free ports.
pub(crate) fn prepare(
    dir: &Path,
    shape: &Shape,
    base_port: Option<u16>,
) -> anyhow::Result<(Manifest, BTreeMap<String, PathBuf>)> {
    let pki = dir.join("pki");
    mcx_server::pki::init(&pki, "mcx bench CA")?;
    let partners: Vec<String> = (1..=shape.partners)
        .map(|n| format!("partner{n}.example"))
        .collect();
    let domains: Vec<&str> = std::iter::once(HOME)
        .chain(partners.iter().map(String::as_str))
        .collect();
    // Every listener stays bound until all ports are chosen, so no two are the same.
    let mut held = Vec::new();
    let mut ports = BTreeMap::new();
    for (i, domain) in domains.iter().enumerate() {
        let pair = match base_port {
            Some(base) => u16::try_from(2 * i)
                .ok()
                .and_then(|offset| base.checked_add(offset))
                .and_then(|api| Some((api, api.checked_add(1)?)))
                .context("--base-port leaves too few ports for the systems")?,
            None => (free_port(&mut held)?, free_port(&mut held)?),
        };
        ports.insert(domain.to_string(), pair);
    }
    drop(held);
    let manifest = Manifest {
        shape: shape.clone(),
        urls: ports
            .iter()
            .map(|(domain, (api, _))| (domain.clone(), format!("http://127.0.0.1:{api}")))
            .collect(),
    };

    let fanout = gid(&format!("sip:fanout@{HOME}"))?;
    let regroup_home = gid(&format!("sip:rg@{HOME}"))?;
    let regroup_partner = gid("sip:rg@partner1.example")?;
    let mut files = BTreeMap::new();
    for (index, domain) in domains.iter().enumerate() {
        let mut users = vec![administrator(domain)?];
        let mut groups = Vec::new();
        let members: Vec<McServiceId> = if index <= 2 {
            manifest
                .members_of(index)
                .map(|i| id(&format!("sip:m{i}@{domain}")))
                .collect::<anyhow::Result<_>>()?
        } else {
            Vec::new()
        };
        if index == 0 {
            let workers: Vec<McServiceId> = (0..shape.workers)
                .map(worker)
                .collect::<anyhow::Result<_>>()?;
            let mut profile_groups: Vec<McServiceGroupId> = (0..WORK_GROUPS)
                .map(home_group)
                .collect::<anyhow::Result<_>>()?;
            profile_groups.extend(
                (0..WORK_GROUPS)
                    .map(partner_group)
                    .collect::<anyhow::Result<Vec<_>>>()?,
            );
            for w in &workers {
                users.push(user(w.clone(), profile_groups.clone(), 8, BTreeSet::new())?);
            }
            for i in 0..shape.workers {
                let mut storm = user(storm_user(i)?, Vec::new(), 8, BTreeSet::new())?;
                // The default costs (19 MiB, two passes): what log-ons cost in a real
                // deployment is what this scenario measures.
                storm.password =
                    mcx_core::credentials::hash_password(&password(&storm.mc_service_id))
                        .map_err(anyhow::Error::msg)?;
                users.push(storm);
            }
            let group_count = if shape.preload > 0 {
                PRELOAD_GROUPS
            } else {
                WORK_GROUPS
            };
            for k in 0..group_count {
                let listed = if k < WORK_GROUPS {
                    workers.clone()
                } else {
                    Vec::new()
                };
                groups.push(group(home_group(k)?, &format!("group {k}"), listed));
            }
            // Its members: one user per partner, whose clients are the subscribers (only
            // members are notified of a group; one member with many clients keeps the
            // document small while the fan-out stays one event per client).
            let watchers = (1..domains.len())
                .map(|n| id(&format!("sip:watch@{}", manifest.partner(n))))
                .collect::<anyhow::Result<Vec<_>>>()?;
            groups.push(group(fanout.clone(), "fan-out", watchers));
            groups.push(group(
                regroup_home.clone(),
                "regroup constituent (home)",
                members.clone(),
            ));
            groups.push(group(
                gid(&format!("sip:rg-template@{HOME}"))?,
                "regroup template",
                Vec::new(),
            ));
            for m in &members {
                users.push(user(
                    m.clone(),
                    vec![regroup_home.clone()],
                    4,
                    BTreeSet::new(),
                )?);
            }
        } else {
            let n = index;
            users.push(user(
                id(&format!("sip:watch@{domain}"))?,
                vec![fanout.clone()],
                1,
                BTreeSet::new(),
            )?);
            if n == 1 {
                for k in 0..WORK_GROUPS {
                    groups.push(group(
                        partner_group(k)?,
                        &format!("partner group {k}"),
                        Vec::new(),
                    ));
                }
                groups.push(group(
                    regroup_partner.clone(),
                    "regroup constituent (partner1)",
                    members.clone(),
                ));
                for m in &members {
                    users.push(user(
                        m.clone(),
                        vec![regroup_partner.clone()],
                        4,
                        BTreeSet::new(),
                    )?);
                }
            } else if n == 2 {
                for m in &members {
                    users.push(user(
                        m.clone(),
                        vec![regroup_home.clone()],
                        4,
                        BTreeSet::new(),
                    )?);
                }
            }
        }

        // Home talks to every partner; partners talk to home and to each other only where
        // a scenario needs it (the regroup's three systems).
        let peers: Vec<&str> = if index == 0 {
            domains[1..].to_vec()
        } else if index <= 2 {
            domains[..3.min(domains.len())]
                .iter()
                .copied()
                .filter(|d| d != domain)
                .collect()
        } else {
            vec![HOME]
        };
        let all: BTreeSet<Capability> = Capability::ALL.into_iter().collect();
        let partner_configs = peers
            .iter()
            .map(|peer| {
                // Regroups span the home system and partners 1 and 2 only.
                let outbound =
                    if index == 0 && !matches!(*peer, "partner1.example" | "partner2.example") {
                        all.iter()
                            .copied()
                            .filter(|c| *c != Capability::Regroup)
                            .collect()
                    } else {
                        all.clone()
                    };
                Ok(PartnerConfig {
                    domain: SystemDomain::parse(peer)?,
                    endpoint: format!("https://127.0.0.1:{}", ports[*peer].1).into(),
                    trust_anchors: pki.join(mcx_server::pki::CA_CERT),
                    inbound: all.clone(),
                    outbound,
                    policy: LocalGroupPolicy::default(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let system_files = mcx_server::pki::issue(&pki, &SystemDomain::parse(domain)?)?;
        let (api, partner_port) = ports[*domain];
        let config = Config {
            system: SystemSection {
                domain: SystemDomain::parse(domain)?,
                name: format!("bench {domain}"),
                development: false,
            },
            server: ServerSection {
                listen: SocketAddr::from(([127, 0, 0, 1], api)),
                data_dir: dir.join(format!("{domain}-data")),
                // Every subscriber may hold its event stream at one system: the cap on
                // open connections (4096 by default) must not be what is measured.
                max_connections: (shape.subscribers + shape.workers + 1024).max(4096),
                ..ServerSection::default()
            },
            users,
            groups,
            interconnection: Some(InterconnectionSection {
                listen: SocketAddr::from(([127, 0, 0, 1], partner_port)),
                certificate: system_files.certificate,
                private_key: system_files.private_key,
                retry_initial_ms: 100,
                retry_max_ms: 2_000,
                request_timeout_ms: 10_000,
                lane_lease_ms: 30_000,
            }),
            partners: partner_configs,
            sip: None,
        };
        config.check()?;
        let path = dir.join(format!("{domain}.toml"));
        mcx_server::pki::write_private(&path, &toml::to_string_pretty(&config)?)
            .with_context(|| format!("writing {}", path.display()))?;
        files.insert(domain.to_string(), path);
    }
    std::fs::write(
        dir.join("deployment.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok((manifest, files))
}

/// Reads the manifest of a deployment prepared earlier.
pub(crate) fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("deployment.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (write one with `mcx bench --prepare DIR`)",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a bench manifest", path.display()))
}

/// Stores `count` affiliations at the home system before it starts: users `load<i>`, each
/// logged on from one client and affiliated to four of the home's groups, in the tables
/// where the procedures would have put them. Returns how many the store then holds.
pub(crate) async fn preload(dir: &Path, count: u64, progress: impl Fn(u64)) -> anyhow::Result<u64> {
    let data_dir = dir.join(format!("{HOME}-data"));
    std::fs::create_dir_all(&data_dir)?;
    let store = SqlStore::open(
        &StoreOptions::sqlite_in(&data_dir),
        mcx_server::world::store_world(),
    )
    .await?;
    let users = count.div_ceil(PRELOAD_PER_USER as u64);
    let now = time::OffsetDateTime::now_utc();
    let mut loaded = 0_u64;
    let mut next = 0_u64;
    const USERS_PER_TRANSACTION: u64 = 10_000;
    while next < users {
        let end = (next + USERS_PER_TRANSACTION).min(users);
        let mut batch = Vec::with_capacity((end - next) as usize);
        for i in next..end {
            let mc_service_id = id(&format!("sip:load{i}@{HOME}"))?;
            let wanted = (count - loaded).min(PRELOAD_PER_USER as u64) as usize;
            let affiliations: Vec<(McService, McServiceGroupId)> = (0..wanted)
                .map(|j| {
                    let k = (i as usize * PRELOAD_PER_USER + j) % PRELOAD_GROUPS;
                    Ok((McService::Mcptt, home_group(k)?))
                })
                .collect::<anyhow::Result<_>>()?;
            loaded += affiliations.len() as u64;
            let profile = UserProfile {
                mc_service_id: mc_service_id.clone(),
                display_name: None,
                services: BTreeMap::from([(
                    McService::Mcptt,
                    ServiceProfile {
                        groups: affiliations.iter().map(|(_, g)| g.clone()).collect(),
                        max_affiliations_n2: PRELOAD_PER_USER as u32,
                    },
                )]),
                permissions: BTreeSet::new(),
            };
            batch.push(BulkAffiliatedUser {
                user: UserRecord {
                    profile,
                    // Nobody logs on as them: a hash that matches no password.
                    credential: Credential::PasswordHash(String::new()),
                },
                session: SessionRecord {
                    session_id: format!("preload-{i}"),
                    // Not the hash of any token: these sessions only hold state.
                    token_hash: format!("preloaded-session-{i}"),
                    mc_service_id,
                    client_id: ClientId::parse(&format!("preload-{i}"))?,
                    logged_on_at: now,
                    expires_at: now + Duration::from_secs(365 * 24 * 3600),
                },
                affiliations,
            });
        }
        store.load_affiliated_users(&batch).await?;
        next = end;
        progress(loaded);
    }
    let stored = store.affiliation_count().await?;
    store.close().await;
    Ok(stored)
}

/// Starts the prepared systems.
pub(crate) async fn start(dir: &Path, files: BTreeMap<String, PathBuf>) -> anyhow::Result<Systems> {
    // A preloaded home checks its stored affiliations at start; give it time.
    Systems::start(dir, files, Duration::from_secs(180)).await
}

fn free_port(held: &mut Vec<std::net::TcpListener>) -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    held.push(listener);
    Ok(port)
}
