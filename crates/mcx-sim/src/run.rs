//! The workload and the invariants. Every choice comes from the run's seeded generator and
//! every step runs to completion before the next starts, so a seed is a complete
//! description of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use mcx_core::identity::Requester;
use mcx_core::partners::{PartnerSettings, Partners};
use mcx_core::ports::{AffiliationStore as _, GroupStore as _, InterconnectionStore as _};
use mcx_model::api::{CreateGroupRequest, LogOnRequest};
use mcx_model::flows::affiliation::{
    AffiliationChangeAction, AffiliationStatus, ChangeRequestType, GroupAffiliationChange,
    GroupAffiliationChangeRequest, GroupAffiliationRequest, GroupDeaffiliationRequest,
};
use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::{Permission, ServiceProfile, UserProfile};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};

use crate::net::{Faults, Net, NetStats};
use crate::system::SimSystem;
use crate::world::{SeededEntropy, SimClock};

const SERVICE: McService = McService::Mcptt;
const N2: u32 = 3;
const DOMAINS: [&str; 3] = ["police.example", "fire.example", "ambulance.example"];
const USERS_PER_SYSTEM: usize = 3;
const GROUPS_PER_SYSTEM: usize = 2;
const CLIENTS: [&str; 2] = ["c0", "c1"];

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The seed: the whole run follows from it.
    pub seed: u64,
    /// Workload steps before the network heals.
    pub steps: usize,
    /// The faults of the workload phase.
    pub faults: Faults,
    /// Per step, the chance that a system crashes.
    pub crash: f64,
    /// Per step, the chance that a link between two systems is cut or healed.
    pub partition: f64,
}

impl Settings {
    /// The default mix for `seed`.
    pub fn for_seed(seed: u64, steps: usize) -> Self {
        Self {
            seed,
            steps,
            faults: Faults {
                drop_request: 0.05,
                drop_answer: 0.05,
                duplicate: 0.05,
                crash_after_handling: 0.01,
            },
            crash: 0.01,
            partition: 0.02,
        }
    }
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Operations by kind (client procedures, deliveries, clock moves).
    pub operations: BTreeMap<&'static str, u64>,
    /// Client requests answered, by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// System crashes (by the workload or a fault) and restarts.
    pub crashes: u64,
    /// Partitions made.
    pub partitions: u64,
    /// What the network did.
    pub net: NetStats,
    /// Outbox deliveries until quiescence.
    pub drain_deliveries: u64,
    /// Broken invariants; empty when the run is correct.
    pub violations: Vec<String>,
    /// The final state of every system, for comparing two runs of one seed.
    pub digest: String,
}

impl Report {
    /// How many procedures the clients ran.
    pub fn procedures(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// How many faults the run injected (lost requests and answers, duplicates, crashes,
    /// partitions, unreachable partners).
    pub fn faults(&self) -> u64 {
        self.net.dropped_requests
            + self.net.dropped_answers
            + self.net.duplicated
            + self.net.crashed_after_handling
            + self.crashes
            + self.partitions
    }
}

struct User {
    profile: UserProfile,
    system: usize,
}

struct Sim {
    clock: Arc<SimClock>,
    entropy: Arc<SeededEntropy>,
    net: Arc<Net>,
    systems: Vec<SimSystem>,
    users: Vec<User>,
    groups: Vec<McServiceGroupId>,
    /// Bearer tokens of the sessions the simulated clients hold.
    sessions: BTreeMap<(McServiceId, ClientId), String>,
    /// What each client was told and nothing has changed since: `true` for an
    /// affiliation answered `affiliated`, `false` for a de-affiliation answered.
    acknowledged: BTreeMap<(McServiceId, ClientId, McServiceGroupId), bool>,
    /// ACM provision requests acknowledged to their senders: ID, sender's system,
    /// target's system.
    acm_sent: Vec<(uuid::Uuid, usize, usize)>,
    report: Report,
    _dir: tempfile::TempDir,
}

fn id(text: &str) -> McServiceId {
    McServiceId::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn gid(text: &str) -> McServiceGroupId {
    McServiceGroupId::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn client(name: &str) -> ClientId {
    ClientId::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn domain(text: &str) -> SystemDomain {
    SystemDomain::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Runs one simulation. Panics only on a harness failure (a store that cannot be opened);
/// what the procedures get wrong is in [`Report::violations`].
pub async fn simulate(settings: Settings) -> Report {
    let mut sim = Sim::new(settings.seed).await;
    sim.report.seed = settings.seed;
    sim.net.set_faults(settings.faults);
    for _ in 0..settings.steps {
        sim.step(&settings).await;
        sim.after_step().await;
        sim.check_n2().await;
        sim.check_regroups(false).await;
    }
    sim.quiesce().await;
    sim.check_end_state().await;
    sim.check_regroups(true).await;
    sim.check_acm().await;
    sim.report.net = sim.net.stats();
    sim.report.digest = sim.digest().await;
    sim.report
}

impl Sim {
    async fn new(seed: u64) -> Self {
        let dir = ram_dir();
        let clock = Arc::new(SimClock::new(
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        ));
        let entropy = Arc::new(SeededEntropy::new(seed));
        let net = Arc::new(Net::new(entropy.clone()));
        let groups: Vec<McServiceGroupId> = DOMAINS
            .iter()
            .flat_map(|d| (0..GROUPS_PER_SYSTEM).map(move |g| gid(&format!("sip:g{g}@{d}"))))
            .collect();
        // A cheap hash: the simulation logs on often and the password is not the point.
        let hash = mcx_core::credentials::hash_password_with_cost("pw", 8, 1)
            .unwrap_or_else(|e| panic!("hashing: {e}"));
        let mut users = Vec::new();
        let mut systems = Vec::new();
        for (s, d) in DOMAINS.iter().enumerate() {
            let mut profiles = Vec::new();
            for u in 0..USERS_PER_SYSTEM {
                let profile = UserProfile {
                    mc_service_id: id(&format!("sip:u{u}@{d}")),
                    display_name: None,
                    services: [(
                        SERVICE,
                        ServiceProfile {
                            groups: groups.clone(),
                            max_affiliations_n2: N2,
                        },
                    )]
                    .into_iter()
                    .collect(),
                    permissions: if u == 0 {
                        Permission::ALL.into_iter().collect()
                    } else {
                        BTreeSet::new()
                    },
                };
                profiles.push((profile.clone(), hash.clone()));
                users.push(User { profile, system: s });
            }
            let partners =
                Partners::new(DOMAINS.iter().filter(|p| *p != d).map(|p| PartnerSettings {
                    domain: domain(p),
                    inbound: Capability::ALL.into_iter().collect(),
                    outbound: Capability::ALL.into_iter().collect(),
                    policy: LocalGroupPolicy::default(),
                }));
            let path = dir.path().join(d);
            std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            systems.push(SimSystem::new(domain(d), path, partners, profiles));
        }
        let mut sim = Self {
            clock,
            entropy,
            net,
            systems,
            users,
            groups,
            sessions: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            acm_sent: Vec::new(),
            report: Report::default(),
            _dir: dir,
        };
        for s in 0..sim.systems.len() {
            sim.start(s).await;
        }
        // Each system's administrator defines its groups; every user is a member.
        let members: Vec<McServiceId> = sim
            .users
            .iter()
            .map(|u| u.profile.mc_service_id.clone())
            .collect();
        for (s, domain) in DOMAINS.iter().enumerate() {
            let admin = sim.users[s * USERS_PER_SYSTEM]
                .profile
                .mc_service_id
                .clone();
            let Some(requester) = sim.requester(&admin, &client("admin"), true).await else {
                panic!("the administrator of {} cannot log on", domain);
            };
            for g in sim
                .groups
                .clone()
                .iter()
                .filter(|g| g.home_system() == sim.systems[s].domain)
            {
                let system = sim.up(s).unwrap_or_else(|| panic!("{} is down", domain));
                let configuration =
                    GroupConfiguration::new(g.to_string(), members.clone(), NonEmpty::one(SERVICE));
                system
                    .gms
                    .create_group(
                        &requester,
                        CreateGroupRequest {
                            mc_service_group_id: g.clone(),
                            configuration,
                        },
                    )
                    .await
                    .unwrap_or_else(|e| panic!("creating {g}: {e}"));
            }
            // The template regroups here take their configuration from.
            let system = sim.up(s).unwrap_or_else(|| panic!("{} is down", domain));
            let mut template =
                GroupConfiguration::new("Template", members.clone(), NonEmpty::one(SERVICE));
            template.preconfigured_group_use_only = true;
            system
                .gms
                .create_group(
                    &requester,
                    CreateGroupRequest {
                        mc_service_group_id: gid(&format!("sip:pre@{}", domain)),
                        configuration: template,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("creating the template of {}: {e}", domain));
        }
        sim
    }

    fn up(&self, s: usize) -> Option<Arc<mcx_core::McSystem>> {
        self.systems[s].up.as_ref().map(|up| up.system.clone())
    }

    async fn start(&mut self, s: usize) {
        let (net, clock, entropy) = (self.net.clone(), self.clock.clone(), self.entropy.clone());
        if let Err(e) = self.systems[s].start(&net, clock, entropy).await {
            panic!("starting {}: {e}", DOMAINS[s]);
        }
    }

    async fn crash(&mut self, s: usize) {
        if self.systems[s].up.is_some() {
            self.systems[s].crash(&self.net).await;
            self.report.crashes += 1;
        }
    }

    fn count(&mut self, operation: &'static str) {
        *self.report.operations.entry(operation).or_default() += 1;
    }

    fn outcome(&mut self, procedure: &str, outcome: &str) {
        *self
            .report
            .outcomes
            .entry(format!("{procedure}: {outcome}"))
            .or_default() += 1;
    }

    /// The requester of a client's session, logging on first if it holds none (or, with
    /// `log_on`, only then).
    async fn requester(
        &mut self,
        user: &McServiceId,
        client: &ClientId,
        log_on: bool,
    ) -> Option<Requester> {
        let s = self
            .users
            .iter()
            .find(|u| &u.profile.mc_service_id == user)?
            .system;
        let system = self.up(s)?;
        let key = (user.clone(), client.clone());
        if let Some(token) = self.sessions.get(&key) {
            if let Ok((requester, _)) = system.identity.authenticate(token).await {
                return Some(requester);
            }
            self.sessions.remove(&key);
        }
        if !log_on {
            return None;
        }
        let (token, _) = system
            .identity
            .log_on(
                LogOnRequest {
                    mc_service_id: user.clone(),
                    password: "pw".into(),
                    client_id: client.clone(),
                },
                None,
            )
            .await
            .ok()?;
        // A new session of a client ends its old one, and its affiliations with it.
        self.forget_client(user, client);
        self.sessions.insert(key, token.clone());
        system
            .identity
            .authenticate(&token)
            .await
            .ok()
            .map(|(r, _)| r)
    }

    fn forget_client(&mut self, user: &McServiceId, client: &ClientId) {
        self.acknowledged
            .retain(|(u, c, _), _| !(u == user && c == client));
    }

    fn forget_user(&mut self, user: &McServiceId) {
        self.acknowledged.retain(|(u, _, _), _| u != user);
    }

    /// System `s`'s administrator (its first user).
    fn admin_id(&self, s: usize) -> McServiceId {
        self.users[s * USERS_PER_SYSTEM]
            .profile
            .mc_service_id
            .clone()
    }

    fn pick_user(&self) -> (McServiceId, usize) {
        let user = &self.users[self.entropy.below(self.users.len())];
        (user.profile.mc_service_id.clone(), user.system)
    }

    fn pick_groups(&self) -> Vec<McServiceGroupId> {
        let n = 1 + self.entropy.below(2);
        (0..n)
            .map(|_| self.groups[self.entropy.below(self.groups.len())].clone())
            .collect()
    }

    async fn step(&mut self, settings: &Settings) {
        if self.entropy.chance(settings.crash) {
            let s = self.entropy.below(self.systems.len());
            self.count("crash");
            self.crash(s).await;
            return;
        }
        if self.entropy.chance(settings.partition) {
            let a = self.entropy.below(self.systems.len());
            let b = (a + 1 + self.entropy.below(self.systems.len() - 1)) % self.systems.len();
            let cut = self.entropy.chance(0.5);
            if cut {
                self.report.partitions += 1;
            }
            self.count(if cut { "partition" } else { "heal" });
            let (a, b) = (
                self.systems[a].domain.clone(),
                self.systems[b].domain.clone(),
            );
            self.net.set_partition(&a, &b, cut);
            return;
        }
        match self.entropy.below(100) {
            0..=29 => self.affiliate().await,
            30..=39 => self.deaffiliate().await,
            40..=44 => self.set_affiliations().await,
            45..=52 => self.log_on().await,
            53..=56 => self.log_off().await,
            57..=59 => self.remote_change().await,
            60..=61 => self.rekey().await,
            72..=74 => self.change_membership().await,
            75..=77 => self.regroup().await,
            78..=79 => self.cancel_regroup().await,
            80..=82 => self.acm_provide().await,
            83..=85 => self.acm_respond().await,
            86 => {
                // Everyone is away for most of a day.
                self.count("a day passes");
                self.clock.advance(Duration::from_secs(20 * 3600));
            }
            62..=66 => {
                self.count("advance clock");
                let by = Duration::from_millis(self.entropy.below(10_000) as u64);
                self.clock.advance(by);
            }
            67..=71 => {
                if let Some(s) = (0..self.systems.len()).find(|s| self.systems[*s].up.is_none()) {
                    self.count("restart");
                    self.start(s).await;
                } else {
                    self.deliver_one().await;
                }
            }
            _ => {
                self.deliver_one().await;
            }
        }
    }

    async fn after_step(&mut self) {
        for domain in self.net.take_crash_requests() {
            if let Some(s) = self.systems.iter().position(|x| x.domain == domain) {
                self.crash(s).await;
            }
        }
        for system in &mut self.systems {
            system.settle().await;
        }
    }

    async fn affiliate(&mut self) {
        self.count("affiliate");
        let (user, s) = self.pick_user();
        let c = client(CLIENTS[self.entropy.below(CLIENTS.len())]);
        let groups = self.pick_groups();
        let Some(requester) = self.requester(&user, &c, true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        let request = GroupAffiliationRequest {
            mc_service_id: user.clone(),
            mc_service_group_id_list: NonEmpty::new(groups).unwrap_or_else(|_| unreachable!()),
            mc_service: SERVICE,
        };
        match system
            .mc_service_server
            .affiliate(&requester, request)
            .await
        {
            Ok(response) => {
                for status in response.status_per_mc_service_group_id {
                    let key = (user.clone(), c.clone(), status.mc_service_group_id.clone());
                    match status.status {
                        AffiliationStatus::Affiliated => {
                            self.acknowledged.insert(key, true);
                        }
                        // Settled later by the host's answer.
                        AffiliationStatus::Affiliating => {
                            self.acknowledged.remove(&key);
                        }
                        AffiliationStatus::NotAffiliated => {}
                    }
                    let outcome = match &status.cause {
                        Some(cause) => cause.to_string(),
                        None => format!("{:?}", status.status).to_lowercase(),
                    };
                    self.outcome("affiliate", &outcome);
                }
            }
            Err(e) => self.outcome("affiliate", &format!("error {e}")),
        }
    }

    async fn deaffiliate(&mut self) {
        self.count("de-affiliate");
        let (user, s) = self.pick_user();
        let c = client(CLIENTS[self.entropy.below(CLIENTS.len())]);
        let groups = self.pick_groups();
        let Some(requester) = self.requester(&user, &c, false).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        let request = GroupDeaffiliationRequest {
            mc_service_id: user.clone(),
            mc_service_group_id_list: NonEmpty::new(groups.clone())
                .unwrap_or_else(|_| unreachable!()),
            mc_service: SERVICE,
        };
        match system
            .mc_service_server
            .deaffiliate(&requester, request)
            .await
        {
            Ok(response) => {
                for status in response.status_per_mc_service_group_id {
                    let key = (user.clone(), c.clone(), status.mc_service_group_id.clone());
                    self.acknowledged.insert(key, false);
                    self.outcome(
                        "de-affiliate",
                        &status.cause.map_or("done".to_string(), |c| c.to_string()),
                    );
                }
            }
            Err(e) => self.outcome("de-affiliate", &format!("error {e}")),
        }
    }

    /// A client's complete list of groups (as an affiliation PUBLISH gives it): those it
    /// no longer lists are released, the new ones affiliated, in one commit.
    async fn set_affiliations(&mut self) {
        self.count("set affiliations");
        let (user, s) = self.pick_user();
        let c = client(CLIENTS[self.entropy.below(CLIENTS.len())]);
        // Sometimes none: every affiliation of the client is released.
        let groups = if self.entropy.chance(0.2) {
            Vec::new()
        } else {
            self.pick_groups()
        };
        let Some(requester) = self.requester(&user, &c, true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        match system
            .mc_service_server
            .set_affiliations(&requester, SERVICE, &groups, Vec::new())
            .await
        {
            Ok(statuses) => {
                for status in statuses {
                    let key = (user.clone(), c.clone(), status.mc_service_group_id.clone());
                    let listed = groups.contains(&status.mc_service_group_id);
                    match (status.status, listed) {
                        (AffiliationStatus::Affiliated, _) => {
                            self.acknowledged.insert(key, true);
                        }
                        (AffiliationStatus::Affiliating, _) => {
                            self.acknowledged.remove(&key);
                        }
                        // Released: no longer listed.
                        (AffiliationStatus::NotAffiliated, false) => {
                            self.acknowledged.insert(key, false);
                        }
                        (AffiliationStatus::NotAffiliated, true) => {}
                    }
                    let outcome = match &status.cause {
                        Some(cause) => cause.to_string(),
                        None if listed => format!("{:?}", status.status).to_lowercase(),
                        None => "released".to_string(),
                    };
                    self.outcome("set affiliations", &outcome);
                }
            }
            Err(e) => self.outcome("set affiliations", &format!("error {e}")),
        }
    }

    async fn log_on(&mut self) {
        self.count("log on");
        let (user, _) = self.pick_user();
        let c = client(CLIENTS[self.entropy.below(CLIENTS.len())]);
        self.sessions.remove(&(user.clone(), c.clone()));
        let done = self.requester(&user, &c, true).await.is_some();
        self.outcome("log on", if done { "done" } else { "system down" });
    }

    async fn log_off(&mut self) {
        self.count("log off");
        let (user, s) = self.pick_user();
        let c = client(CLIENTS[self.entropy.below(CLIENTS.len())]);
        let Some(requester) = self.requester(&user, &c, false).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        match system.identity.log_off(&requester).await {
            Ok(()) => {
                self.sessions.remove(&(user.clone(), c.clone()));
                self.forget_client(&user, &c);
                self.outcome("log off", "done");
            }
            Err(e) => self.outcome("log off", &format!("error {e}")),
        }
    }

    /// A mandatory remote change by a system's administrator of one of its users.
    async fn remote_change(&mut self) {
        self.count("remote change");
        let s = self.entropy.below(self.systems.len());
        let admin = self.admin_id(s);
        let target = self.users
            [s * USERS_PER_SYSTEM + 1 + self.entropy.below(USERS_PER_SYSTEM - 1)]
        .profile
        .mc_service_id
        .clone();
        let group = self.groups[self.entropy.below(self.groups.len())].clone();
        let action = if self.entropy.chance(0.5) {
            AffiliationChangeAction::Affiliate
        } else {
            AffiliationChangeAction::Deaffiliate
        };
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        let request = GroupAffiliationChangeRequest {
            mc_service_id: admin,
            mc_service_id_list: NonEmpty::one(target.clone()),
            mc_service_group_id_list: NonEmpty::one(GroupAffiliationChange {
                mc_service_group_id: group,
                action,
            }),
            change_request_type: ChangeRequestType::Mandatory,
            mc_service: SERVICE,
            generation: None,
        };
        // Whatever it did, what the target's clients were told no longer stands.
        self.forget_user(&target);
        match system
            .mc_service_server
            .request_change(&requester, request)
            .await
        {
            Ok(record) => self.outcome(
                "remote change",
                &format!("{:?}", record.state).to_lowercase(),
            ),
            Err(e) => self.outcome("remote change", &format!("error {e}")),
        }
    }

    async fn rekey(&mut self) {
        self.count("rekey");
        let s = self.entropy.below(self.systems.len());
        let admin = self.admin_id(s);
        let group = gid(&format!(
            "sip:g{}@{}",
            self.entropy.below(GROUPS_PER_SYSTEM),
            DOMAINS[s]
        ));
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        match system.gms.rekey_group(&requester, &group).await {
            Ok(_) => self.outcome("rekey", "done"),
            Err(e) => self.outcome("rekey", &format!("error {e}")),
        }
    }

    /// An administrator regroups one or two groups (of any system) from its template.
    async fn regroup(&mut self) {
        self.count("regroup");
        let s = self.entropy.below(self.systems.len());
        let admin = self.admin_id(s);
        let groups = self.pick_groups();
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        let request = mcx_model::flows::regroup::PreconfiguredRegroupRequest {
            mc_service_id: admin,
            regroup_group_id: None,
            preconfigured_group_id: gid(&format!("sip:pre@{}", DOMAINS[s])),
            targets: mcx_model::flows::regroup::RegroupTargets::McServiceGroupIdList(
                NonEmpty::new(groups).unwrap_or_else(|_| unreachable!()),
            ),
            mc_service: SERVICE,
        };
        match system.mc_service_server.regroup(&requester, request).await {
            Ok(record) => self.outcome("regroup", &format!("{:?}", record.state).to_lowercase()),
            Err(e) => self.outcome("regroup", e.code()),
        }
    }

    /// An administrator cancels one of the regroups its system made.
    async fn cancel_regroup(&mut self) {
        self.count("cancel regroup");
        let s = self.entropy.below(self.systems.len());
        let admin = self.admin_id(s);
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(up) = &self.systems[s].up else {
            return;
        };
        let Ok(regroups) = mcx_core::ports::RegroupStore::regroups(up.store.as_ref()).await else {
            return;
        };
        let mine: Vec<_> = regroups
            .into_iter()
            .filter(|r| r.primary_system == self.systems[s].domain)
            .collect();
        if mine.is_empty() {
            return;
        }
        let regroup = mine[self.entropy.below(mine.len())]
            .regroup_group_id
            .clone();
        let system = up.system.clone();
        match system
            .mc_service_server
            .cancel_regroup(&requester, &regroup)
            .await
        {
            Ok(_) => self.outcome("cancel regroup", "done"),
            Err(e) => self.outcome("cancel regroup", e.code()),
        }
    }

    /// An administrator gives a group of its system to a partner's administrator (TR
    /// 23.700-38 steps 1-4); the target may be offline for days.
    async fn acm_provide(&mut self) {
        self.count("acm provide");
        let s = self.entropy.below(self.systems.len());
        let p = (s + 1 + self.entropy.below(self.systems.len() - 1)) % self.systems.len();
        let admin = self.admin_id(s);
        let target = self.admin_id(p);
        let group = gid(&format!(
            "sip:g{}@{}",
            self.entropy.below(GROUPS_PER_SYSTEM),
            DOMAINS[s]
        ));
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        let order = mcx_model::api::AcmProvisionOrder {
            target_mc_service_id: target,
            interconnection_group_id_list: NonEmpty::one(group),
        };
        match system.acm.provide(&requester, order).await {
            Ok(exchange) => {
                if let Some(id) = exchange.request.request_id {
                    self.acm_sent.push((id, s, p));
                }
                self.outcome("acm provide", "accepted");
            }
            Err(e) => self.outcome("acm provide", e.code()),
        }
    }

    /// A partner's administrator, back online, downloads what waits for it and answers
    /// one provision request.
    async fn acm_respond(&mut self) {
        self.count("acm respond");
        let p = self.entropy.below(self.systems.len());
        let admin = self.admin_id(p);
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(system) = self.up(p) else { return };
        let Ok(pending) = system.acm.download_pending(&requester).await else {
            return;
        };
        let requests: Vec<_> = pending
            .acm_data
            .iter()
            .filter_map(|item| match item {
                mcx_model::flows::acm::PendingAcmItem::ProvisionRequest { request, .. } => {
                    request.request_id
                }
                _ => None,
            })
            .collect();
        if requests.is_empty() {
            return;
        }
        let id = requests[self.entropy.below(requests.len())];
        let decision = if self.entropy.chance(0.7) {
            mcx_model::flows::acm::AcmDecision::Accepted
        } else {
            mcx_model::flows::acm::AcmDecision::Rejected { reason: None }
        };
        match system.acm.respond(&requester, id, decision).await {
            Ok(_) => self.outcome("acm respond", "answered"),
            Err(e) => self.outcome("acm respond", e.code()),
        }
    }

    /// An administrator removes a user from one of its groups, or adds a removed user
    /// back: partner copies follow, and requests decided on an older copy meet a host
    /// that refuses them.
    async fn change_membership(&mut self) {
        self.count("membership change");
        let s = self.entropy.below(self.systems.len());
        let admin = self.admin_id(s);
        let group = gid(&format!(
            "sip:g{}@{}",
            self.entropy.below(GROUPS_PER_SYSTEM),
            DOMAINS[s]
        ));
        // Administrators stay members: they define the groups.
        let candidates: Vec<McServiceId> = self
            .users
            .iter()
            .map(|u| u.profile.mc_service_id.clone())
            .filter(|u| u.user_part() != "u0")
            .collect();
        let member = candidates[self.entropy.below(candidates.len())].clone();
        let Some(requester) = self.requester(&admin, &client("admin"), true).await else {
            return;
        };
        let Some(system) = self.up(s) else { return };
        let Ok(current) = system.gms.group(&requester, &group).await else {
            return;
        };
        let mut configuration = current.configuration.clone();
        let listed = configuration.list.iter().any(|m| m.uri == member);
        if listed {
            configuration.list.retain(|m| m.uri != member);
        } else {
            configuration
                .list
                .push(mcx_model::group::GroupMemberEntry::new(member.clone()));
        }
        match system
            .gms
            .update_group(
                &requester,
                &group,
                mcx_core::gms::Precondition::Version(current.version),
                configuration,
            )
            .await
        {
            Ok(_) => self.outcome(
                "membership change",
                if listed { "removed" } else { "added" },
            ),
            Err(e) => self.outcome("membership change", &format!("error {e}")),
        }
    }

    /// One round of one system's outbox, as its dispatcher would run it: every due head
    /// of its lanes, in an order the generator picks (so lanes and systems interleave
    /// differently from run to run).
    async fn deliver_one(&mut self) -> bool {
        self.count("deliver");
        let s = self.entropy.below(self.systems.len());
        let Some(system) = self.up(s) else {
            return false;
        };
        let Ok(mut heads) = system.gateway.due_heads().await else {
            return false;
        };
        if heads.is_empty() {
            return false;
        }
        while !heads.is_empty() {
            let head = heads.swap_remove(self.entropy.below(heads.len()));
            let _ = system.gateway.deliver(system.link.as_ref(), head).await;
            // A fault may have crashed a partner, or this very system's peer.
            for domain in self.net.take_crash_requests() {
                if let Some(c) = self.systems.iter().position(|x| x.domain == domain) {
                    self.crash(c).await;
                }
            }
            if self.systems[s].up.is_none() {
                break;
            }
        }
        true
    }

    /// Heals the network, restarts every system, turns faults off, and delivers until
    /// every outbox is empty (moving the clock to each retry).
    async fn quiesce(&mut self) {
        self.net.heal();
        self.net.set_faults(Faults::default());
        for s in 0..self.systems.len() {
            if self.systems[s].up.is_none() {
                self.start(s).await;
            }
        }
        for _ in 0..20_000 {
            self.after_step().await;
            let mut delivered = false;
            let mut deadlines = Vec::new();
            for s in 0..self.systems.len() {
                let Some(system) = self.up(s) else { continue };
                let _ = system.mc_service_server.expire_changes().await;
                if let Ok(Some(due)) = system.mc_service_server.expire_regroups().await {
                    deadlines.push(due);
                }
                let heads = system.gateway.due_heads().await.unwrap_or_default();
                for head in heads {
                    self.report.drain_deliveries += 1;
                    let _ = system.gateway.deliver(system.link.as_ref(), head).await;
                    delivered = true;
                }
            }
            if delivered {
                continue;
            }
            let mut next = deadlines.into_iter().min();
            for system in &self.systems {
                if let Some(up) = &system.up
                    && let Ok(Some(due)) = up.store.outbox_next_due().await
                {
                    next = Some(next.map_or(due, |n: time::OffsetDateTime| n.min(due)));
                }
            }
            let Some(next) = next else { return };
            let wait = Duration::try_from(next - mcx_core::ports::Clock::now(self.clock.as_ref()))
                .unwrap_or(Duration::ZERO);
            self.clock.advance(wait + Duration::from_millis(1));
        }
        self.report
            .violations
            .push("the outboxes did not drain within 20,000 rounds".into());
    }

    /// N2 holds at every moment: no user holds (or has reserved) more distinct groups.
    async fn check_n2(&mut self) {
        for user in &self.users {
            let Some(up) = &self.systems[user.system].up else {
                continue;
            };
            let Ok(state) = up
                .store
                .user_affiliations(&user.profile.mc_service_id)
                .await
            else {
                continue;
            };
            // A regroup group is the system's doing, not the user's: it is not one of the
            // N2 the user chose (the simulation's regroup groups are all assigned IDs).
            let groups: BTreeSet<_> = state
                .rows
                .iter()
                .map(|r| &r.group)
                .filter(|g| !g.user_part().starts_with("regroup-"))
                .collect();
            if groups.len() > N2 as usize {
                self.report.violations.push(format!(
                    "N2 exceeded: {} holds {} groups ({groups:?})",
                    user.profile.mc_service_id,
                    groups.len()
                ));
            }
        }
    }

    /// No group is part of two regroups at once, anywhere; at quiescence every regroup is
    /// settled, held by its primary and by every partner homing one of its groups, and
    /// the groups' marks agree with the regroups holding them.
    async fn check_regroups(&mut self, at_end: bool) {
        let mut violations = Vec::new();
        let mut held: BTreeMap<SystemDomain, Vec<mcx_model::api::RegroupRecord>> = BTreeMap::new();
        for system in &self.systems {
            let Some(up) = &system.up else { continue };
            let Ok(records) = mcx_core::ports::RegroupStore::regroups(up.store.as_ref()).await
            else {
                continue;
            };
            let mut seen: BTreeMap<&McServiceGroupId, &McServiceGroupId> = BTreeMap::new();
            for record in &records {
                for g in record
                    .mc_service_group_id_list
                    .iter()
                    .filter(|g| g.home_system() == system.domain)
                {
                    if let Some(other) = seen.insert(g, &record.regroup_group_id) {
                        violations.push(format!(
                            "{g} is part of two regroups at {}: {other} and {}",
                            system.domain, record.regroup_group_id
                        ));
                    }
                }
            }
            held.insert(system.domain.clone(), records);
        }
        if at_end && held.len() == self.systems.len() {
            for (domain, records) in &held {
                for record in records {
                    if record.state != mcx_model::api::RegroupState::Active {
                        violations.push(format!(
                            "{} still forming at {domain} at quiescence",
                            record.regroup_group_id
                        ));
                    }
                    let at_primary = held.get(&record.primary_system).is_some_and(|rs| {
                        rs.iter()
                            .any(|r| r.regroup_group_id == record.regroup_group_id)
                    });
                    if !at_primary {
                        violations.push(format!(
                            "{domain} holds {} that its primary {} does not",
                            record.regroup_group_id, record.primary_system
                        ));
                    }
                    if &record.primary_system == domain {
                        for g in &record.mc_service_group_id_list {
                            let home = g.home_system();
                            let there = held.get(&home).is_some_and(|rs| {
                                rs.iter()
                                    .any(|r| r.regroup_group_id == record.regroup_group_id)
                            });
                            if !there {
                                violations.push(format!(
                                    "{} is in effect but {home}, homing {g}, holds no part of it",
                                    record.regroup_group_id
                                ));
                            }
                        }
                    }
                }
            }
            for g in &self.groups {
                let home = g.home_system();
                let Some(s) = self.systems.iter().position(|x| x.domain == home) else {
                    continue;
                };
                let Some(up) = &self.systems[s].up else {
                    continue;
                };
                let Ok(Some(group)) = up.store.group(g).await else {
                    continue;
                };
                let holder = held[&home]
                    .iter()
                    .find(|r| r.mc_service_group_id_list.contains(g))
                    .map(|r| r.regroup_group_id.clone());
                if group.configuration.regrouped_into != holder {
                    violations.push(format!(
                        "{g} is marked regrouped into {:?} but {:?} holds it",
                        group.configuration.regrouped_into, holder
                    ));
                }
            }
        }
        self.report.violations.extend(violations);
    }

    /// Every ACM request acknowledged to its sender reached the partner (or was refused
    /// there), and the sender holds exactly the answer the partner's user gave, if any.
    async fn check_acm(&mut self) {
        use mcx_core::ports::{AcmRole, AcmStore as _};
        use mcx_model::api::AcmState;
        let mut violations = Vec::new();
        for (id, s, p) in &self.acm_sent {
            let (Some(sender), Some(partner)) = (&self.systems[*s].up, &self.systems[*p].up) else {
                continue;
            };
            let outgoing = sender
                .store
                .acm_exchange(AcmRole::Outgoing, *id)
                .await
                .ok()
                .flatten();
            let incoming = partner
                .store
                .acm_exchange(AcmRole::Incoming, *id)
                .await
                .ok()
                .flatten();
            let Some(outgoing) = outgoing else {
                violations.push(format!("the sender lost ACM request {id}"));
                continue;
            };
            match (&outgoing.state, &incoming) {
                (AcmState::Refused, None) => {}
                (AcmState::Stored, Some(i)) if i.state == AcmState::Pending => {}
                (AcmState::Answered, Some(i))
                    if i.state == AcmState::Answered && i.response == outgoing.response => {}
                (state, incoming) => violations.push(format!(
                    "ACM request {id}: the sender holds {state:?} ({:?}), the partner {:?} ({:?})",
                    outgoing.response.as_ref().map(|r| &r.decision),
                    incoming.as_ref().map(|i| &i.state),
                    incoming
                        .as_ref()
                        .and_then(|i| i.response.as_ref())
                        .map(|r| &r.decision),
                )),
            }
        }
        self.report.violations.extend(violations);
    }

    async fn check_end_state(&mut self) {
        let mut violations = Vec::new();
        let home =
            |g: &McServiceGroupId| DOMAINS.iter().position(|d| g.home_system().as_str() == *d);
        for user in &self.users {
            let u = &user.profile.mc_service_id;
            let Some(serving) = &self.systems[user.system].up else {
                continue;
            };
            let Ok(state) = serving.store.user_affiliations(u).await else {
                violations.push(format!("cannot read {u}'s affiliations"));
                continue;
            };
            for row in state.rows.iter().filter(|r| r.pending.is_some()) {
                violations.push(format!(
                    "{u} still affiliating to {} at quiescence",
                    row.group
                ));
            }
            let sessions: BTreeSet<ClientId> =
                match mcx_core::ports::SessionStore::sessions_of(serving.store.as_ref(), u).await {
                    Ok(s) => s.into_iter().map(|s| s.client_id).collect(),
                    Err(_) => BTreeSet::new(),
                };
            for row in &state.rows {
                if !sessions.contains(&row.client) {
                    violations.push(format!(
                        "{u} affiliated to {} from {} without a session",
                        row.group, row.client
                    ));
                }
            }
            for g in &self.groups {
                let serving_holds = state
                    .rows
                    .iter()
                    .any(|r| &r.group == g && r.pending.is_none());
                let Some(h) = home(g) else { continue };
                let Some(host) = &self.systems[h].up else {
                    continue;
                };
                let hosted = host
                    .store
                    .hosted_affiliations(g)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .any(|(m, s)| m == u && *s == SERVICE);
                let gms = host
                    .store
                    .gms_affiliations(g)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .any(|m| &m.mc_service_id == u);
                if serving_holds != hosted || hosted != gms {
                    violations.push(format!(
                        "{u} and {g} disagree: serving system {serving_holds}, host {hosted}, host's GMS {gms}"
                    ));
                }
            }
        }
        for ((u, c, g), held) in &self.acknowledged {
            if !held {
                continue;
            }
            let s = self
                .users
                .iter()
                .find(|x| &x.profile.mc_service_id == u)
                .map(|x| x.system);
            let Some(serving) = s.and_then(|s| self.systems[s].up.as_ref()) else {
                continue;
            };
            let rows = serving
                .store
                .user_affiliations(u)
                .await
                .map(|s| s.rows)
                .unwrap_or_default();
            if !rows
                .iter()
                .any(|r| &r.client == c && &r.group == g && r.pending.is_none())
            {
                violations.push(format!(
                    "acknowledged affiliation lost: {u} from {c} to {g}"
                ));
            }
        }
        for g in &self.groups {
            let Some(h) = home(g) else { continue };
            let Some(primary) = &self.systems[h].up else {
                continue;
            };
            let Ok(Some(original)) = primary.store.group(g).await else {
                violations.push(format!("the primary lost {g}"));
                continue;
            };
            for (s, system) in self.systems.iter().enumerate() {
                if s == h {
                    continue;
                }
                let Some(up) = &system.up else { continue };
                // A copy derives from the primary's latest version (local policy applied;
                // it never refuses here), whatever local version it has.
                let Ok(Some(copy)) = up.store.group(g).await else {
                    continue;
                };
                let derived = match copy.origin {
                    mcx_model::group::GroupOrigin::Partner { primary_version } => primary_version,
                    _ => 0,
                };
                if derived != original.version {
                    violations.push(format!(
                        "{}'s copy of {g} derives from version {derived} but the primary is at {}",
                        system.domain, original.version
                    ));
                }
            }
        }
        for system in &self.systems {
            if let Some(up) = &system.up
                && let Ok(Some(_)) = up.store.outbox_next_due().await
            {
                violations.push(format!(
                    "{}'s outbox is not empty at quiescence",
                    system.domain
                ));
            }
        }
        self.report.violations.extend(violations);
    }

    /// The final state, in a canonical text: who holds what where, and every copy's version.
    async fn digest(&self) -> String {
        let mut text = String::new();
        for user in &self.users {
            let u = &user.profile.mc_service_id;
            if let Some(up) = &self.systems[user.system].up
                && let Ok(state) = up.store.user_affiliations(u).await
            {
                let rows: BTreeSet<String> = state
                    .rows
                    .iter()
                    .map(|r| format!("{}/{}/{:?}", r.group, r.client, r.pending))
                    .collect();
                let _ = writeln!(text, "{u} g{} {rows:?}", state.generation);
            }
        }
        for g in &self.groups {
            for system in &self.systems {
                if let Some(up) = &system.up
                    && let Ok(Some(copy)) = up.store.group(g).await
                {
                    let _ = writeln!(
                        text,
                        "{} {g} v{} {:?}",
                        system.domain, copy.version, copy.origin
                    );
                }
            }
        }
        let _ = writeln!(
            text,
            "{:?} {:?} {:?}",
            self.report.outcomes,
            self.report.net,
            self.net.stats()
        );
        text
    }
}

/// A directory in memory where the system has one (`/dev/shm`), else a temporary one: the
/// stores are real SQLite files, written at memory speed.
fn ram_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let made = if shm.is_dir() {
        tempfile::Builder::new().prefix("mcx-sim-").tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("mcx-sim-").tempdir()
    };
    made.unwrap_or_else(|e| panic!("cannot create the simulation's directory: {e}"))
}
