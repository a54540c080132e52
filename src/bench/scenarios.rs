//! The scenarios, each driven through the public client API as real clients would.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use mcx_client::Client;
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::{AffiliationStatus, GroupAffiliationStatus};
use mcx_model::flows::regroup::{PreconfiguredRegroupRequest, RegroupTargets};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};
use serde::Serialize;
use tokio::sync::mpsc;

use super::deployment::{
    HOME, Manifest, WORK_GROUPS, gid, home_group, id, partner_group, password, worker,
};
use super::load::{self, Operation, Pace, Summary};

/// The knobs every scenario reads.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) repeat: usize,
    /// Log-ons and set-up requests in flight at once.
    pub(crate) setup_parallelism: usize,
    /// Also measure the request scenarios paced at this many requests per second.
    pub(crate) rate: Option<f64>,
}

/// One measured phase of a scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Phase {
    pub(crate) name: String,
    #[serde(flatten)]
    pub(crate) summary: Summary,
}

/// What a scenario measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    pub(crate) scenario: String,
    pub(crate) description: String,
    pub(crate) phases: Vec<Phase>,
}

fn phase(name: &str, summary: Summary) -> Phase {
    Phase {
        name: name.to_string(),
        summary,
    }
}

/// Logs a bench user on at its system from a client named after the run.
async fn log_on(base: &Client, user: &McServiceId, client: &str) -> anyhow::Result<Client> {
    let (client, _) = base
        .log_on(user, &password(user), &ClientId::parse(client)?)
        .await
        .with_context(|| format!("logging on {user}"))?;
    Ok(client)
}

/// The administrator of a system.
pub(crate) async fn administrator(manifest: &Manifest, domain: &str) -> anyhow::Result<Client> {
    let base = Client::new(manifest.url(domain)?)?;
    log_on(&base, &id(&format!("sip:admin@{domain}"))?, "bench-admin").await
}

async fn workers(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Arc<Vec<Client>>> {
    let base = Client::new(manifest.url(HOME)?)?;
    let clients = load::bounded(
        "logging on workers",
        knobs.setup_parallelism,
        (0..manifest.shape.workers).map(|i| {
            let base = base.clone();
            async move { log_on(&base, &worker(i)?, "bench-worker").await }
        }),
    )
    .await?;
    Ok(Arc::new(clients))
}

/// Peak (closed loop) and then half of that peak (paced) for one operation.
async fn peak_and_half(
    name: &str,
    workers: usize,
    knobs: &Knobs,
    operation: Operation,
) -> Vec<Phase> {
    let peak = load::run(
        &format!("{name} peak"),
        workers,
        Pace::ClosedLoop,
        knobs.warmup,
        knobs.duration,
        operation.clone(),
    )
    .await;
    let half = load::run(
        &format!("{name} at half of peak"),
        workers,
        Pace::Rate(peak.per_second / 2.0),
        knobs.warmup,
        knobs.duration,
        operation.clone(),
    )
    .await;
    let mut phases = vec![phase("peak", peak), phase("half of peak", half)];
    if let Some(rate) = knobs.rate {
        let paced = load::run(
            &format!("{name} at {rate} /s"),
            workers,
            Pace::Rate(rate),
            knobs.warmup,
            knobs.duration,
            operation,
        )
        .await;
        phases.push(phase(&format!("at {rate} /s"), paced));
    }
    phases
}

/// `GET /v1/session` by each worker's client.
fn session_reads(clients: Arc<Vec<Client>>) -> Operation {
    Arc::new(move |i| {
        let clients = clients.clone();
        Box::pin(async move {
            clients[i]
                .session()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })
}

/// `floor`: the same request and answer as `baseline`, from a bare axum handler in this
/// process (see `floor.rs`): what the machine allows, beside which mcx is judged.
pub(crate) async fn floor(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Outcome> {
    let logged_on = workers(manifest, knobs).await?;
    let mut sessions = Vec::with_capacity(logged_on.len());
    for client in logged_on.iter() {
        let token = client
            .token()
            .ok_or_else(|| anyhow::anyhow!("a worker without a token"))?
            .to_string();
        sessions.push((token, client.session().await?));
    }
    let server = super::floor::start(sessions.clone())?;
    let clients: Arc<Vec<Client>> = Arc::new(
        sessions
            .into_iter()
            .map(|(token, _)| Ok(Client::new(&server.url)?.with_token(token)))
            .collect::<anyhow::Result<_>>()?,
    );
    let operation = session_reads(clients);
    let phases = peak_and_half("floor", manifest.shape.workers, knobs, operation).await;
    drop(server);
    Ok(Outcome {
        scenario: "floor".into(),
        description: "GET /v1/session from a bare axum handler with the same bearer check: the machine's floor".into(),
        phases,
    })
}

/// `baseline`: the cheapest authenticated request, `GET /v1/session` (token checked
/// against the store, JSON answer): the floor of this stack on this machine.
pub(crate) async fn baseline(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Outcome> {
    let clients = workers(manifest, knobs).await?;
    let operation = session_reads(clients);
    Ok(Outcome {
        scenario: "baseline".into(),
        description: "GET /v1/session: the cheapest authenticated request".into(),
        phases: peak_and_half("baseline", manifest.shape.workers, knobs, operation).await,
    })
}

/// `log-on`: each worker logs on again and again as its own user from one client (each
/// log-on replaces the client's previous session), the password checked at the default
/// Argon2id costs: the rate a system takes a log-on storm at, and (in the memory line)
/// what the storm costs it.
pub(crate) async fn log_on_storm(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Outcome> {
    let base = Client::new(manifest.url(HOME)?)?;
    let operation: Operation = Arc::new(move |i| {
        let base = base.clone();
        Box::pin(async move {
            let user = super::deployment::storm_user(i).map_err(|e| e.to_string())?;
            log_on(&base, &user, "bench-storm")
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        })
    });
    Ok(Outcome {
        scenario: "log-on".into(),
        description: "POST /v1/session with default-cost Argon2id passwords".into(),
        phases: peak_and_half("log-on", manifest.shape.workers, knobs, operation).await,
    })
}

fn check_statuses(
    statuses: &[GroupAffiliationStatus],
    wanted: AffiliationStatus,
) -> Result<(), String> {
    for status in statuses {
        if status.status != wanted || status.cause.is_some() {
            return Err(format!(
                "{}: {:?}{}",
                status.mc_service_group_id,
                status.status,
                status
                    .cause
                    .as_ref()
                    .map(|c| format!(" ({})", c.as_str()))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Affiliation / de-affiliation cycles: each worker alternates between affiliating to
/// one group and de-affiliating from it; each request is one measured operation.
async fn affiliation_cycles(
    name: &str,
    description: &str,
    manifest: &Manifest,
    knobs: &Knobs,
    group_of: fn(usize) -> anyhow::Result<McServiceGroupId>,
) -> anyhow::Result<Outcome> {
    let clients = workers(manifest, knobs).await?;
    let groups: Arc<Vec<McServiceGroupId>> = Arc::new(
        (0..manifest.shape.workers)
            .map(|i| group_of(i % WORK_GROUPS))
            .collect::<anyhow::Result<_>>()?,
    );
    // Each worker's step count survives between phases so affiliate and de-affiliate
    // keep alternating.
    let steps: Arc<Vec<AtomicU64>> = Arc::new(
        (0..manifest.shape.workers)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let operation: Operation = {
        let clients = clients.clone();
        let steps = steps.clone();
        Arc::new(move |i| {
            let clients = clients.clone();
            let groups = groups.clone();
            let steps = steps.clone();
            Box::pin(async move {
                let step = steps[i].fetch_add(1, Ordering::Relaxed);
                let group = std::slice::from_ref(&groups[i]);
                if step.is_multiple_of(2) {
                    let response = clients[i]
                        .affiliate(McService::Mcptt, group)
                        .await
                        .map_err(|e| e.to_string())?;
                    check_statuses(
                        &response.status_per_mc_service_group_id,
                        AffiliationStatus::Affiliated,
                    )
                } else {
                    let response = clients[i]
                        .deaffiliate(McService::Mcptt, group)
                        .await
                        .map_err(|e| e.to_string())?;
                    check_statuses(
                        &response.status_per_mc_service_group_id,
                        AffiliationStatus::NotAffiliated,
                    )
                }
            })
        })
    };
    let phases = peak_and_half(name, manifest.shape.workers, knobs, operation).await;
    // Leave nothing behind for the next scenario.
    for (i, client) in clients.iter().enumerate() {
        if steps[i].load(Ordering::Relaxed) % 2 == 1 {
            let _ = client
                .deaffiliate(McService::Mcptt, &[group_of(i % WORK_GROUPS)?])
                .await;
        }
    }
    Ok(Outcome {
        scenario: name.into(),
        description: description.into(),
        phases,
    })
}

/// `affiliate-local`: cycles on groups defined at the home system (§10.8.3.1, §10.8.4.2).
pub(crate) async fn affiliate_local(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Outcome> {
    affiliation_cycles(
        "affiliate-local",
        "affiliate to / de-affiliate from a home group, alternately",
        manifest,
        knobs,
        home_group,
    )
    .await
}

/// `affiliate-partner`: cycles on groups defined in partner1 (§10.8.3.2, §10.8.4.3): every
/// request crosses the interconnection (mutual TLS) to the group's host and back.
pub(crate) async fn affiliate_partner(
    manifest: &Manifest,
    knobs: &Knobs,
) -> anyhow::Result<Outcome> {
    // The host authorises home's users once the groups are shared with home (§10.2.7.2).
    let admin = administrator(manifest, "partner1.example").await?;
    let home = SystemDomain::parse(HOME)?;
    for k in 0..WORK_GROUPS {
        admin
            .share_group(&partner_group(k)?, &home)
            .await
            .with_context(|| format!("sharing partner group {k} with home"))?;
    }
    affiliation_cycles(
        "affiliate-partner",
        "affiliate to / de-affiliate from a group defined in a partner system, alternately",
        manifest,
        knobs,
        partner_group,
    )
    .await
}

/// An event a reader saw: which, and when.
type Seen = (String, Instant);

/// The event streams of a scenario's clients: which events arrived, and when.
struct Watch {
    rx: mpsc::UnboundedReceiver<Seen>,
    /// Arrivals for keys not waited for yet.
    early: HashMap<String, Vec<Instant>>,
}

/// Opens the event stream of each client and forwards the events `classify` picks.
async fn watch(
    label: &str,
    clients: &[Client],
    knobs: &Knobs,
    classify: fn(&ClientEvent) -> Option<String>,
) -> anyhow::Result<Watch> {
    let (tx, rx) = mpsc::unbounded_channel();
    load::bounded(
        label,
        knobs.setup_parallelism,
        clients.iter().map(|client| {
            let tx = tx.clone();
            async move {
                let mut stream = client.events(None).await?;
                tokio::spawn(async move {
                    while let Some(Ok(delivered)) = stream.next().await {
                        if let Some(key) = classify(&delivered.event)
                            && tx.send((key, Instant::now())).is_err()
                        {
                            return;
                        }
                    }
                });
                anyhow::Ok(())
            }
        }),
    )
    .await?;
    Ok(Watch {
        rx,
        early: HashMap::new(),
    })
}

/// How long clients take to be told: each client's delay, and the last one's per round.
struct Notified {
    each: hdrhistogram::Histogram<u64>,
    last: hdrhistogram::Histogram<u64>,
    missing: u64,
}

/// How long a scenario waits for its clients to be told.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

fn micros_since(from: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(from).as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Notified {
    fn new() -> Self {
        Self {
            each: load::histogram(),
            last: load::histogram(),
            missing: 0,
        }
    }

    /// Waits until `expected` events with `key` arrived (or the timeout) and records
    /// their delays after `from`.
    async fn wait(&mut self, watch: &mut Watch, key: &str, expected: usize, from: Instant) {
        let mut seen = watch.early.remove(key).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + NOTIFY_TIMEOUT;
        while seen.len() < expected {
            match tokio::time::timeout_at(deadline, watch.rx.recv()).await {
                Ok(Some((k, at))) if k == key => seen.push(at),
                Ok(Some((k, at))) => watch.early.entry(k).or_default().push(at),
                Ok(None) | Err(_) => break,
            }
        }
        for at in &seen {
            let _ = self.each.record(micros_since(from, *at));
        }
        if let Some(latest) = seen.iter().max()
            && seen.len() == expected
        {
            let _ = self.last.record(micros_since(from, *latest));
        }
        self.missing += expected.saturating_sub(seen.len()) as u64;
    }

    /// The "last" and "each" phases.
    fn phases(&self, last: &str, each: &str, elapsed: Duration) -> [Phase; 2] {
        let absent = (self.missing > 0).then(|| {
            format!(
                "{} notifications did not arrive within {} s",
                self.missing,
                NOTIFY_TIMEOUT.as_secs()
            )
        });
        [
            phase(last, Summary::of(&self.last, 0, None, elapsed)),
            phase(each, Summary::of(&self.each, self.missing, absent, elapsed)),
        ]
    }
}

/// `notify-fanout`: one change of a home group reaches the P partner GMSs subscribed to it
/// (§10.2.7.5) and, through each, the partner's clients subscribed to the group: how long
/// until the last client has it.
pub(crate) async fn notify_fanout(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Outcome> {
    let fanout = gid(&format!("sip:fanout@{HOME}"))?;
    let admin = administrator(manifest, HOME).await?;
    // §10.2.7.2 to every partner; each then subscribes (§10.2.7.4).
    for n in 1..=manifest.shape.partners {
        admin
            .share_group(&fanout, &SystemDomain::parse(&manifest.partner(n))?)
            .await
            .with_context(|| format!("sharing the fan-out group with partner{n}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = admin.interconnection_status(&fanout).await?;
        let subscribed = status.partners.iter().filter(|p| p.subscribed).count();
        if subscribed == manifest.shape.partners {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {subscribed} of {} partners subscribed to the fan-out group within 60 s",
                manifest.shape.partners
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut logons = Vec::new();
    for n in 1..=manifest.shape.partners {
        let base = Client::new(manifest.url(&manifest.partner(n))?)?;
        let watcher = id(&format!("sip:watch@{}", manifest.partner(n)))?;
        for i in manifest.subscribers_of(n) {
            logons.push((base.clone(), watcher.clone(), format!("s{i}")));
        }
    }
    let subscribers = load::bounded(
        "logging on and subscribing subscribers",
        knobs.setup_parallelism,
        logons.into_iter().map(|(base, user, client_id)| {
            let fanout = fanout.clone();
            async move {
                let client = log_on(&base, &user, &client_id).await?;
                client.subscribe(&fanout).await.with_context(|| {
                    format!("subscribing {user} ({client_id}) to the fan-out group")
                })?;
                anyhow::Ok(client)
            }
        }),
    )
    .await?;
    let mut rx = watch(
        "opening event streams",
        &subscribers,
        knobs,
        |event| match event {
            ClientEvent::GroupConfigurationChanged { group, .. } => {
                Some(group.configuration.display_name.clone())
            }
            _ => None,
        },
    )
    .await?;

    let mut notified = Notified::new();
    let mut current = admin.group(&fanout).await?;
    let started = Instant::now();
    for r in 0..knobs.repeat {
        load::show_progress(&format!("notify-fanout: change {}/{}", r + 1, knobs.repeat));
        let mut configuration = current.configuration.clone();
        configuration.display_name = format!("fan-out change {r}");
        let from = Instant::now();
        current = admin
            .update_group(
                &fanout,
                &configuration,
                mcx_client::IfMatch::Version(current.version),
            )
            .await
            .context("changing the fan-out group")?;
        notified
            .wait(
                &mut rx,
                &configuration.display_name,
                subscribers.len(),
                from,
            )
            .await;
    }
    load::clear_progress();
    Ok(Outcome {
        scenario: "notify-fanout".into(),
        description: format!(
            "a home group changes; {} partner GMSs and {} subscribed partner clients are told",
            manifest.shape.partners,
            subscribers.len()
        ),
        phases: notified
            .phases(
                "last client has it",
                "each client has it",
                started.elapsed(),
            )
            .to_vec(),
    })
}

/// `regroup`: a preconfigured regroup (§10.15.3.3.1) of a home group and a partner1 group,
/// with affiliated members served by home, partner1 and partner2, then its cancellation.
pub(crate) async fn regroup(manifest: &Manifest, knobs: &Knobs) -> anyhow::Result<Outcome> {
    let home_constituent = gid(&format!("sip:rg@{HOME}"))?;
    let partner_constituent = gid("sip:rg@partner1.example")?;
    let admin = administrator(manifest, HOME).await?;
    // partner2's members affiliate to the home constituent through partner2.
    admin
        .share_group(&home_constituent, &SystemDomain::parse("partner2.example")?)
        .await
        .context("sharing the home constituent group with partner2")?;

    let mut logons = Vec::new();
    for (system, domain, group) in [
        (0, HOME.to_string(), &home_constituent),
        (1, manifest.partner(1), &partner_constituent),
        (2, manifest.partner(2), &home_constituent),
    ] {
        let base = Client::new(manifest.url(&domain)?)?;
        for i in manifest.members_of(system) {
            logons.push((
                base.clone(),
                id(&format!("sip:m{i}@{domain}"))?,
                group.clone(),
            ));
        }
    }
    let members = load::bounded(
        "logging on and affiliating members",
        knobs.setup_parallelism,
        logons.into_iter().map(|(base, user, group)| async move {
            let client = log_on(&base, &user, "bench-member").await?;
            let response = client
                .affiliate(McService::Mcptt, std::slice::from_ref(&group))
                .await
                .with_context(|| format!("affiliating {user} to {group}"))?;
            check_statuses(
                &response.status_per_mc_service_group_id,
                AffiliationStatus::Affiliated,
            )
            .map_err(|e| anyhow::anyhow!("affiliating {user}: {e}"))?;
            anyhow::Ok(client)
        }),
    )
    .await?;
    let mut rx = watch(
        "opening event streams",
        &members,
        knobs,
        |event| match event {
            ClientEvent::RegroupRequested { request } => {
                Some(format!("regrouped {}", request.regroup_group_id))
            }
            ClientEvent::RegroupCancelled { request } => {
                Some(format!("cancelled {}", request.regroup_group_id))
            }
            _ => None,
        },
    )
    .await?;

    let request = PreconfiguredRegroupRequest {
        mc_service_id: id(&format!("sip:admin@{HOME}"))?,
        regroup_group_id: None,
        preconfigured_group_id: gid(&format!("sip:rg-template@{HOME}"))?,
        targets: RegroupTargets::McServiceGroupIdList(NonEmpty::new(vec![
            home_constituent,
            partner_constituent,
        ])?),
        mc_service: McService::Mcptt,
    };
    let mut create = load::histogram();
    let mut cancel = load::histogram();
    let mut regrouped = Notified::new();
    let mut cancelled = Notified::new();
    let mut errors = 0;
    let mut first_error = None;
    let started = Instant::now();
    for r in 0..knobs.repeat {
        load::show_progress(&format!("regroup: {}/{}", r + 1, knobs.repeat));
        let from = Instant::now();
        let record = match admin.regroup(&request).await {
            Ok(record) => record,
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                continue;
            }
        };
        let _ = create.record(micros_since(from, Instant::now()));
        let regroup_id = record.regroup_group_id;
        regrouped
            .wait(
                &mut rx,
                &format!("regrouped {regroup_id}"),
                members.len(),
                from,
            )
            .await;

        let from = Instant::now();
        if let Err(e) = admin.cancel_regroup(&regroup_id).await {
            errors += 1;
            first_error.get_or_insert(e.to_string());
            continue;
        }
        let _ = cancel.record(micros_since(from, Instant::now()));
        cancelled
            .wait(
                &mut rx,
                &format!("cancelled {regroup_id}"),
                members.len(),
                from,
            )
            .await;
    }
    load::clear_progress();
    let elapsed = started.elapsed();
    let mut phases = vec![phase(
        "regroup response",
        Summary::of(&create, errors, first_error, elapsed),
    )];
    phases.extend(regrouped.phases("last member regrouped", "each member regrouped", elapsed));
    phases.push(phase(
        "cancel response",
        Summary::of(&cancel, 0, None, elapsed),
    ));
    phases.extend(cancelled.phases(
        "last member told of cancel",
        "each member told of cancel",
        elapsed,
    ));
    Ok(Outcome {
        scenario: "regroup".into(),
        description: format!(
            "regroup of a home and a partner1 group, {} affiliated members served by home, partner1 and partner2; then cancel",
            members.len()
        ),
        phases,
    })
}
