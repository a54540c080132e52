//! `mcx demo`: three live interconnected MC systems (police, fire, ambulance), each a
//! separate `mcx serve` process, and a story played through the public API as the users
//! themselves would: every procedure of the seeds, each checked against what the
//! specification says, each drawn as a sequence chart from the flows the servers
//! recorded. Exits non-zero on any deviation.

mod chapters;
mod chart;
mod systems;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use mcx_client::{Client, EventStream, IfMatch};
use mcx_model::api::{AcmProvisionOrder, ChangeDecision, TraceEntry};
use mcx_model::events::ClientEvent;
use mcx_model::flows::acm::{AcmDecision, PendingAcmItem};
use mcx_model::flows::affiliation::*;
use mcx_model::flows::regroup::{PreconfiguredRegroupRequest, RegroupTargets};
use mcx_model::group::GroupConfiguration;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty};

use crate::local_systems::Systems;
use chart::ProcedureReport;
use systems::{AMBULANCE, FIRE, POLICE};

/// What `mcx demo` was asked.
pub(crate) struct DemoArgs {
    /// Where the report goes.
    pub(crate) out: PathBuf,
    /// Leave the systems running afterwards.
    pub(crate) keep: bool,
    /// Six consecutive ports from this one, instead of any free ports.
    pub(crate) base_port: Option<u16>,
}

const JOINT: &str = "sip:joint@police.example";
const PATROL: &str = "sip:patrol@police.example";
const TEMPLATE: &str = "sip:template@police.example";
const HARBOUR: &str = "sip:harbour@fire.example";
const STORM: &str = "sip:storm@police.example";
const MCPTT: McService = McService::Mcptt;

fn id(text: &str) -> McServiceId {
    McServiceId::parse(text).unwrap_or_else(|e| unreachable!("the demo's IDs are valid: {e}"))
}

fn gid(text: &str) -> McServiceGroupId {
    McServiceGroupId::parse(text).unwrap_or_else(|e| unreachable!("the demo's IDs are valid: {e}"))
}

fn group(name: &str, members: &[&str], services: &[McService]) -> GroupConfiguration {
    GroupConfiguration::new(
        name,
        members.iter().map(|m| id(m)),
        NonEmpty::new(services.to_vec()).unwrap_or_else(|_| NonEmpty::one(MCPTT)),
    )
}

/// The story's state: the systems, the observers (one administrator per system, who
/// reads the traces), the cursors into each trace, and the report so far.
struct Story {
    urls: BTreeMap<String, String>,
    observers: BTreeMap<String, Client>,
    cursors: BTreeMap<String, u64>,
    gathered: Vec<TraceEntry>,
    reports: Vec<ProcedureReport>,
    current: Option<ProcedureReport>,
}

impl Story {
    async fn new(systems: &Systems) -> anyhow::Result<Self> {
        let mut story = Story {
            urls: systems.urls.clone(),
            observers: BTreeMap::new(),
            cursors: BTreeMap::new(),
            gathered: Vec::new(),
            reports: Vec::new(),
            current: None,
        };
        for (domain, admin) in [
            (POLICE, "sip:alice@police.example"),
            (FIRE, "sip:frank@fire.example"),
            (AMBULANCE, "sip:amy@ambulance.example"),
        ] {
            let client = story.log_on(admin, "demo-observer").await?;
            story.observers.insert(domain.to_string(), client);
        }
        Ok(story)
    }

    async fn log_on(&self, user: &str, client: &str) -> anyhow::Result<Client> {
        let user = id(user);
        let url = &self.urls[user.domain().as_str()];
        let password = user.user_part().to_string();
        let (client, _) = Client::new(url)?
            .log_on(&user, &password, &ClientId::parse(client)?)
            .await
            .with_context(|| format!("logging {user} on"))?;
        Ok(client)
    }

    fn observer(&self, domain: &str) -> &Client {
        &self.observers[domain]
    }

    /// Reads every server's new trace entries (and keeps them for the current chart).
    async fn new_entries(&mut self) -> anyhow::Result<usize> {
        let mut all = Vec::new();
        for (domain, client) in &self.observers {
            let after = self.cursors.get(domain).copied().unwrap_or(0);
            let list = trace(client, after).await?;
            if let Some(last) = list.last() {
                self.cursors.insert(domain.clone(), last.seq);
            }
            all.extend(list);
        }
        let count = all.len();
        self.gathered.extend(all);
        Ok(count)
    }

    /// Waits until some server has recorded `flow` during the current procedure.
    async fn wait_trace(&mut self, flow: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            self.new_entries().await?;
            if self.gathered.iter().any(|e| e.flow == flow) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.check(false, format!("'{flow}' was not seen within 10 s"));
        Ok(())
    }

    /// Waits until no server records anything new for a while.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.new_entries().await? == 0 {
                if quiet_since.elapsed() >= Duration::from_millis(400) {
                    break;
                }
            } else {
                quiet_since = Instant::now();
            }
        }
        Ok(())
    }

    async fn begin(
        &mut self,
        id: &str,
        title: &str,
        clause: &str,
        expected: &[&str],
    ) -> anyhow::Result<()> {
        // Whatever happened before belongs to no procedure.
        self.settle().await?;
        self.gathered.clear();
        println!("▶ {title} ({clause})");
        self.current = Some(ProcedureReport {
            id: id.into(),
            title: title.into(),
            clause: clause.into(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
            observed: Vec::new(),
            order_error: None,
            failed_checks: Vec::new(),
            passed: false,
        });
        Ok(())
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok && let Some(current) = &mut self.current {
            let what = what.into();
            println!("  ✗ {what}");
            current.failed_checks.push(what);
        }
    }

    async fn wait_for<F, Fut>(&mut self, what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if condition().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.check(false, format!("{what} (not within 10 s)"));
    }

    async fn end(&mut self) -> anyhow::Result<()> {
        self.settle().await?;
        let Some(mut report) = self.current.take() else {
            return Ok(());
        };
        report.observed = chart::arrows(std::mem::take(&mut self.gathered));
        let expected: Vec<&str> = report.expected.iter().map(String::as_str).collect();
        report.order_error = chart::in_order(&expected, &report.observed).err();
        report.passed = report.order_error.is_none() && report.failed_checks.is_empty();
        print!(
            "{}",
            chart::text("flows observed in the servers' traces:", &report.observed)
        );
        match &report.order_error {
            None => println!("  ✓ flows in the order the specification gives"),
            Some(e) => println!("  ✗ flow order: {e}"),
        }
        if report.failed_checks.is_empty() {
            println!("  ✓ outcome as the specification says");
        }
        println!();
        self.reports.push(report);
        Ok(())
    }
}

async fn trace(client: &Client, after: u64) -> anyhow::Result<Vec<TraceEntry>> {
    Ok(client.trace(after, 10_000).await?.entries)
}

/// The next event of a stream within five seconds.
async fn next_event(events: &mut EventStream) -> Option<ClientEvent> {
    match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        Ok(Some(Ok(delivered))) => Some(delivered.event),
        _ => None,
    }
}

/// Events until one matches, within five seconds.
async fn wait_event(
    events: &mut EventStream,
    matches: impl Fn(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match next_event(events).await {
            Some(event) if matches(&event) => return Some(event),
            Some(_) => continue,
            None => return None,
        }
    }
    None
}

fn statuses(list: &[GroupAffiliationStatus]) -> Vec<(String, AffiliationStatus, Option<String>)> {
    list.iter()
        .map(|s| {
            (
                s.mc_service_group_id.to_string(),
                s.status,
                s.cause.as_ref().map(|c| c.to_string()),
            )
        })
        .collect()
}

async fn members(client: &Client, group: &str) -> Vec<String> {
    client
        .group_affiliations(&gid(group))
        .await
        .map(|g| {
            g.members
                .into_iter()
                .map(|m| m.mc_service_id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the demo.
pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let work = tempfile::Builder::new().prefix("mcx-demo-").tempdir()?;
    println!("mcx demo: three interconnected MC systems, each its own `mcx serve` process");
    println!(
        "  preparing a development PKI and configurations in {}",
        work.path().display()
    );
    let configs = systems::prepare(work.path(), args.base_port)?;
    let mut systems = Systems::start(work.path(), configs, Duration::from_secs(20)).await?;
    for (domain, url) in &systems.urls {
        println!("  {domain:<18} {url}");
    }
    println!();
    let mut story = Story::new(&systems).await?;
    let outcome = chapters::play(&mut story).await;
    if let Err(e) = &outcome {
        println!("  ✗ the story stopped: {e:#}");
        if let Some(mut current) = story.current.take() {
            current
                .failed_checks
                .push(format!("the story stopped: {e:#}"));
            story.reports.push(current);
        }
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("index.html"), chart::html(&story.reports))?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "passed": outcome.is_ok() && story.reports.iter().all(|r| r.passed),
            "procedures": story.reports,
        }))?,
    )?;
    println!("Summary");
    for (i, r) in story.reports.iter().enumerate() {
        println!(
            "  {:>2}. {} {:<58} {:>3} flows  ({})",
            i + 1,
            if r.passed { "✓" } else { "✗" },
            r.title,
            r.observed.len(),
            r.clause
        );
    }
    println!(
        "report: {} (HTML with sequence charts), {}; {:.1} s",
        args.out.join("index.html").display(),
        args.out.join("report.json").display(),
        started.elapsed().as_secs_f64()
    );
    let passed = outcome.is_ok() && story.reports.iter().all(|r| r.passed);

    if args.keep {
        let kept = work.keep();
        println!();
        println!(
            "The systems keep running (files in {}). Try, for example:",
            kept.display()
        );
        for (domain, url) in &systems.urls {
            println!(
                "  MCX_SERVER={url} mcx login --user sip:{}@{domain} --password {}",
                admin_of(domain),
                admin_of(domain)
            );
        }
        println!("  mcx group list; mcx affiliations --group {JOINT}; mcx events");
        println!("Stop them with Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
    }
    systems.stop();
    if passed {
        println!("every procedure behaved as specified");
        Ok(())
    } else {
        anyhow::bail!(
            "the demo found deviations from the specification (see above and {})",
            args.out.join("index.html").display()
        )
    }
}

fn admin_of(domain: &str) -> &'static str {
    match domain {
        POLICE => "alice",
        FIRE => "frank",
        _ => "amy",
    }
}
