//! `mcx demo`: three live interconnected MC systems (police, fire, ambulance), each a
//! separate `mcx serve` process, and a story played through the public API as the users
//! themselves would: every procedure of the seeds, each checked against what the
//! specification says, each drawn as a sequence chart from the flows the servers
//! recorded. Exits non-zero on any deviation.

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
    let outcome = play(&mut story).await;
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

/// The story, procedure by procedure.
async fn play(story: &mut Story) -> anyhow::Result<()> {
    // Set-up (not charted): groups of fire and police that the story uses.
    let frank = story.log_on("sip:frank@fire.example", "console").await?;
    frank
        .create_group(&gid(HARBOUR), &{
            let mut g = group(
                "Harbour",
                &[
                    "sip:frank@fire.example",
                    "sip:fiona@fire.example",
                    "sip:andy@ambulance.example",
                    "sip:bob@police.example",
                    "sip:carol@police.example",
                ],
                &[MCPTT],
            );
            g.on_network_group_priority = Some(4);
            g
        })
        .await?;
    let alice = story.log_on("sip:alice@police.example", "console").await?;
    alice
        .create_group(
            &gid(PATROL),
            &group(
                "Patrol",
                &["sip:alice@police.example", "sip:bob@police.example"],
                &[MCPTT],
            ),
        )
        .await?;
    let mut template = group("Regroup template", &["sip:alice@police.example"], &[MCPTT]);
    template.preconfigured_group_use_only = true;
    alice.create_group(&gid(TEMPLATE), &template).await?;

    // 1. §10.2.7.2 (and §10.2.7.4): police provides the group to fire, whose users are members.
    story
        .begin(
            "provide",
            "Primary MC system provides group configuration to a partner",
            "TS 23.280 §10.2.7.2, §10.2.7.4",
            &[
                "Group creation request",
                "Group information provision request",
                "Group configuration notification",
                "Group information provision response",
                "Group information subscribe request",
                "Group information subscribe response",
            ],
        )
        .await?;
    let mut joint = group(
        "Joint operations",
        &[
            "sip:alice@police.example",
            "sip:bob@police.example",
            "sip:carol@police.example",
            "sip:fiona@fire.example",
            "sip:andy@ambulance.example",
        ],
        &[MCPTT, McService::Mcvideo],
    );
    joint.on_network_group_priority = Some(7);
    alice.create_group(&gid(JOINT), &joint).await?;
    let fire_admin = story.observer(FIRE).clone();
    story
        .wait_for(
            "fire stores the joint group, modified by its policy",
            || {
                let fire_admin = fire_admin.clone();
                async move {
                    fire_admin.group(&gid(JOINT)).await.is_ok_and(|g| {
                        g.configuration.on_network_group_priority == Some(3)
                            && g.configuration.supported_services.as_slice() == [MCPTT]
                    })
                }
            },
        )
        .await;
    let at_police = alice.group(&gid(JOINT)).await?;
    story.check(
        at_police.configuration.on_network_group_priority == Some(7),
        "police keeps its own priority (fire's policy does not flow back)",
    );
    story.end().await?;

    // 2. §10.2.7.3: andy logs on at ambulance; his profile lists the police group.
    story
        .begin(
            "request",
            "Partner MC system requests group configuration at a user's log-on",
            "TS 23.280 §10.2.7.3, §10.2.7.4",
            &[
                "Log on",
                "Group configuration request",
                "Group information request",
                "Group information response",
                "Group configuration notification",
                "Group information subscribe request",
                "Group information subscribe response",
            ],
        )
        .await?;
    let andy = story
        .log_on("sip:andy@ambulance.example", "handset")
        .await?;
    let amy = story.observer(AMBULANCE).clone();
    story
        .wait_for("ambulance holds the joint group and is subscribed", || {
            let amy = amy.clone();
            async move {
                amy.interconnection_status(&gid(JOINT))
                    .await
                    .is_ok_and(|s| {
                        s.primary.is_some_and(|l| {
                            l.state == mcx_model::api::PrimaryLinkState::Subscribed
                        })
                    })
            }
        })
        .await;
    story.end().await?;

    // 3. §10.2.7.5: a change and a rekey at police reach the partners; fiona, subscribed at
    // fire, is told by her own GMS.
    let fiona = story.log_on("sip:fiona@fire.example", "handset").await?;
    fiona.subscribe(&gid(JOINT)).await?;
    let mut fiona_events = fiona.events(None).await?;
    story
        .begin(
            "notify",
            "Primary MC system notifies partners of a change and of new key material",
            "TS 23.280 §10.2.7.5",
            &[
                "Group configuration update request",
                "Group information notify request",
                "Group information notify response",
                "Group rekey request (administrator)",
                "Group information notify request",
                "Group information notify response",
            ],
        )
        .await?;
    let mut changed = alice.group(&gid(JOINT)).await?.configuration;
    changed.display_name = "Joint operations (storm warning)".into();
    let updated = alice
        .update_group(&gid(JOINT), &changed, IfMatch::Version(1))
        .await?;
    // Let both partners answer the change before new key material is generated.
    story.settle().await?;
    let rekeyed = alice.rekey_group(&gid(JOINT)).await?;
    let key = rekeyed.key_material.clone();
    story.check(
        updated.version == 2 && rekeyed.version == 3,
        "the change and the rekey are versions 2 and 3",
    );
    let first = wait_event(&mut fiona_events, |e| {
        matches!(e, ClientEvent::GroupConfigurationChanged { .. })
    })
    .await;
    let second = wait_event(&mut fiona_events, |e| {
        matches!(e, ClientEvent::GroupConfigurationChanged { .. })
    })
    .await;
    let names = [first, second].map(|e| match e {
        Some(ClientEvent::GroupConfigurationChanged { group }) => {
            Some((group.configuration.display_name, group.key_material))
        }
        _ => None,
    });
    story.check(
        names[0]
            .as_ref()
            .is_some_and(|(n, _)| n == "Joint operations (storm warning)"),
        "fiona is notified of the change by fire's GMS",
    );
    story.check(
        names[1].as_ref().is_some_and(|(_, k)| *k == key),
        "fiona gets the new key material from fire's GMS",
    );
    let amy = story.observer(AMBULANCE).clone();
    let key_for_wait = key.clone();
    story
        .wait_for("ambulance has the new key material", || {
            let (amy, key) = (amy.clone(), key_for_wait.clone());
            async move {
                amy.group(&gid(JOINT))
                    .await
                    .is_ok_and(|g| g.key_material == key)
            }
        })
        .await;
    story.end().await?;

    // 4. §10.8.3.1: bob affiliates to a group of his own system.
    story
        .begin(
            "affiliate-local",
            "Affiliation to a group of the user's system",
            "TS 23.280 §10.8.3.1",
            &[
                "MC service group affiliation request",
                "Group affiliation status update",
                "MC service group affiliation response",
            ],
        )
        .await?;
    let bob = story.log_on("sip:bob@police.example", "handset").await?;
    let response = bob.affiliate(MCPTT, &[gid(JOINT)]).await?;
    story.check(
        statuses(&response.status_per_mc_service_group_id)
            == vec![(JOINT.to_string(), AffiliationStatus::Affiliated, None)],
        "bob is affiliated to joint",
    );
    let police_admin = story.observer(POLICE).clone();
    story.check(
        members(&police_admin, JOINT)
            .await
            .contains(&"sip:bob@police.example".to_string()),
        "police's GMS knows bob is affiliated",
    );
    story.end().await?;

    // 5. §10.8.3.2: users of fire and ambulance affiliate to groups of other systems.
    story
        .begin(
            "affiliate-partner",
            "Affiliation to groups defined in partner systems",
            "TS 23.280 §10.8.3.2",
            &[
                "MC service group affiliation request",
                "MC service group affiliation request (server-server)",
                "Group affiliation status update",
                "MC service group affiliation response (server-server)",
                "MC service group affiliation response",
            ],
        )
        .await?;
    let response = fiona.affiliate(MCPTT, &[gid(JOINT)]).await?;
    story.check(
        response.status_per_mc_service_group_id[0].status == AffiliationStatus::Affiliated,
        "fiona (fire) is affiliated to police's joint",
    );
    let response = andy.affiliate(MCPTT, &[gid(JOINT), gid(HARBOUR)]).await?;
    story.check(
        response
            .status_per_mc_service_group_id
            .iter()
            .all(|s| s.status == AffiliationStatus::Affiliated),
        "andy (ambulance) is affiliated to police's joint and fire's harbour, asked in parallel",
    );
    let joint_members = members(&police_admin, JOINT).await;
    story.check(
        joint_members.contains(&"sip:fiona@fire.example".to_string())
            && joint_members.contains(&"sip:andy@ambulance.example".to_string()),
        "police's GMS knows the partner users",
    );
    story.check(
        members(&fire_admin, HARBOUR)
            .await
            .contains(&"sip:andy@ambulance.example".to_string()),
        "fire's GMS knows andy",
    );
    story.end().await?;

    // 6. N2: bob may be affiliated to two groups at once.
    story
        .begin(
            "n2",
            "The N2 limit: one group too many is refused, the others proceed",
            "TS 23.280 §10.8.3.1 step 3, §10.8.3.2 step 2",
            &[
                "MC service group affiliation request",
                "MC service group affiliation request (server-server)",
                "MC service group affiliation response (server-server)",
                "MC service group affiliation response",
            ],
        )
        .await?;
    let response = bob.affiliate(MCPTT, &[gid(HARBOUR), gid(PATROL)]).await?;
    story.check(
        statuses(&response.status_per_mc_service_group_id)
            == vec![
                (HARBOUR.to_string(), AffiliationStatus::Affiliated, None),
                (
                    PATROL.to_string(),
                    AffiliationStatus::NotAffiliated,
                    Some("n2-limit-reached".into()),
                ),
            ],
        "harbour is granted, patrol refused for N2 (bob's N2 is 2)",
    );
    story.end().await?;

    // 7. §10.8.5.1.1: alice affiliates carol to joint, mandatory; carol confirms.
    let carol = story.log_on("sip:carol@police.example", "handset").await?;
    let mut carol_events = carol.events(None).await?;
    let mut alice_events = alice.events(None).await?;
    story
        .begin(
            "change-mandatory",
            "Remote change of affiliation, mandatory mode",
            "TS 23.280 §10.8.5.1.1",
            &[
                "MC service group affiliation change request",
                "Group affiliation status update",
                "MC service group affiliation change request",
                "MC service group affiliation change response",
                "MC service group affiliation change response (target acknowledged)",
            ],
        )
        .await?;
    let change = GroupAffiliationChangeRequest {
        mc_service_id: id("sip:alice@police.example"),
        mc_service_id_list: NonEmpty::one(id("sip:carol@police.example")),
        mc_service_group_id_list: NonEmpty::one(GroupAffiliationChange {
            mc_service_group_id: gid(JOINT),
            action: AffiliationChangeAction::Affiliate,
        }),
        change_request_type: ChangeRequestType::Mandatory,
        mc_service: MCPTT,
        generation: None,
    };
    let record = alice.request_change(&change).await?;
    story.check(
        record.response.as_ref().is_some_and(|r| {
            r.affiliation_status_per_mc_service_group_id
                .iter()
                .all(|s| s.status == AffiliationStatus::Affiliated)
        }),
        "carol is affiliated at once",
    );
    let told = wait_event(&mut carol_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeRequested { .. })
    })
    .await;
    story.check(told.is_some(), "carol's client is told (step 7a)");
    carol
        .answer_change(&record.change_id, ChangeDecision::Acknowledge, None)
        .await?;
    let acked = wait_event(&mut alice_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeAcknowledged { .. })
    })
    .await;
    story.check(acked.is_some(), "alice learns carol confirmed (step 7b)");
    story.end().await?;

    // 8. §10.8.5.1.2 with §10.8.3.2: alice asks carol to affiliate to fire's harbour; carol accepts.
    story
        .begin(
            "change-negotiated",
            "Remote change of affiliation, negotiated mode, to a partner's group",
            "TS 23.280 §10.8.5.1.2, §10.8.3.2",
            &[
                "MC service group affiliation change request",
                "MC service group affiliation change request",
                "MC service group affiliation change response",
                "MC service group affiliation request (server-server)",
                "MC service group affiliation response (server-server)",
                "MC service group affiliation change response",
            ],
        )
        .await?;
    let mut negotiated = change.clone();
    negotiated.change_request_type = ChangeRequestType::Negotiated;
    negotiated.mc_service_group_id_list = NonEmpty::one(GroupAffiliationChange {
        mc_service_group_id: gid(HARBOUR),
        action: AffiliationChangeAction::Affiliate,
    });
    let record = alice.request_change(&negotiated).await?;
    story.check(
        record.state == mcx_model::api::AffiliationChangeState::Pending,
        "the change waits for carol",
    );
    let asked = wait_event(&mut carol_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeRequested { .. })
    })
    .await;
    story.check(asked.is_some(), "carol is asked (step 3)");
    carol
        .answer_change(&record.change_id, ChangeDecision::Accept, None)
        .await?;
    let completed = wait_event(&mut alice_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeCompleted { .. })
    })
    .await;
    story.check(
        matches!(&completed, Some(ClientEvent::AffiliationChangeCompleted { response, .. }) if response.affiliation_status_per_mc_service_group_id.iter().any(|s| s.mc_service_group_id == gid(HARBOUR) && s.status == AffiliationStatus::Affiliated)),
        "alice gets the response: carol affiliated to harbour (step 6)",
    );
    story.check(
        members(&fire_admin, HARBOUR)
            .await
            .contains(&"sip:carol@police.example".to_string()),
        "fire's GMS knows carol",
    );
    story.end().await?;

    // 9. §10.15.3.3.1: alice regroups joint (police) and harbour (fire); members are served
    // in all three systems.
    story
        .begin(
            "regroup",
            "Preconfigured group regroup across three systems",
            "TS 23.280 §10.15.3.3.1",
            &[
                "Preconfigured regroup request",
                "Preconfigured regroup request return",
                "Preconfigured regroup request (server-server)",
                "Preconfigured regroup response (server-server)",
                "Preconfigured regroup response",
            ],
        )
        .await?;
    let mut andy_events = andy.events(None).await?;
    let regroup = PreconfiguredRegroupRequest {
        mc_service_id: id("sip:alice@police.example"),
        regroup_group_id: Some(gid(STORM)),
        preconfigured_group_id: gid(TEMPLATE),
        targets: RegroupTargets::McServiceGroupIdList(
            NonEmpty::new(vec![gid(JOINT), gid(HARBOUR)])
                .unwrap_or_else(|_| NonEmpty::one(gid(JOINT))),
        ),
        mc_service: MCPTT,
    };
    let record = alice.regroup(&regroup).await?;
    let parts: BTreeMap<String, u64> = record
        .response
        .as_ref()
        .map(|r| {
            r.systems
                .iter()
                .map(|s| (s.system.to_string(), s.affiliated_member_count))
                .collect()
        })
        .unwrap_or_default();
    story.check(
        parts == BTreeMap::from([(POLICE.to_string(), 2), (FIRE.to_string(), 1), (AMBULANCE.to_string(), 1)]),
        format!("the combined response counts bob and carol (police), fiona (fire), andy (ambulance): {parts:?}"),
    );
    for (who, events) in [
        ("fiona", &mut fiona_events),
        ("andy", &mut andy_events),
        ("carol", &mut carol_events),
    ] {
        let told = wait_event(events, |e| {
            matches!(e, ClientEvent::RegroupRequested { .. })
        })
        .await;
        story.check(
            told.is_some(),
            format!("{who} is told of the regroup (step 7)"),
        );
    }
    fiona.acknowledge_regroup(&gid(STORM)).await?;
    let amy = story.observer(AMBULANCE).clone();
    story
        .wait_for(
            "the partners' GMSs hold the regroup group with the template's security parameters",
            || {
                let (fire_admin, amy) = (fire_admin.clone(), amy.clone());
                async move {
                    let fire = fire_admin
                        .group(&gid(STORM))
                        .await
                        .is_ok_and(|g| g.configuration.on_network_regrouped.is_some());
                    let ambulance = amy
                        .group(&gid(STORM))
                        .await
                        .is_ok_and(|g| g.configuration.on_network_regrouped.is_some());
                    fire && ambulance
                }
            },
        )
        .await;
    story.end().await?;

    // 10. Cancellation: every member, everywhere, leaves the regroup group.
    story
        .begin(
            "regroup-cancel",
            "Regroup cancellation in every system",
            "TS 23.280 §10.15.3.3.1 (until cancelled)",
            &[
                "Preconfigured regroup cancel request",
                "Preconfigured regroup cancel request (server-server)",
                "Preconfigured regroup cancel response (server-server)",
                "Preconfigured regroup cancel response",
            ],
        )
        .await?;
    alice.cancel_regroup(&gid(STORM)).await?;
    for (who, events) in [
        ("fiona", &mut fiona_events),
        ("andy", &mut andy_events),
        ("carol", &mut carol_events),
    ] {
        let told = wait_event(events, |e| {
            matches!(e, ClientEvent::RegroupCancelled { .. })
        })
        .await;
        story.check(told.is_some(), format!("{who} is told the regroup ended"));
    }
    for domain in [POLICE, FIRE, AMBULANCE] {
        let left = story
            .observer(domain)
            .regroups()
            .await
            .map(|l| l.regroups.len())
            .unwrap_or(1);
        story.check(left == 0, format!("{domain} has no regroup left"));
    }
    story.end().await?;

    // 11. TR 23.700-38: olga (police) gives fred (fire, logged off throughout) the joint
    // group; fred answers days later; olga learns it at her next log-on; the loop closes.
    story
        .begin(
            "acm",
            "Interconnection group IDs to an offline partner user, store-and-forward",
            "TR 23.700-38 steps 1–14",
            &[
                "Group information provision request",
                "Group information provision request (ACM server-server)",
                "Group information provision stored indication",
                "Log on",
                "Pending ACM data notification",
                "Download of pending ACM data request",
                "Download of pending ACM data response",
                "Group information provision response",
                "Group information provision response (ACM server-server)",
                "Group information provision response stored",
                "Log on",
                "Pending ACM data notification",
                "Download of pending ACM data request",
                "Download of pending ACM data response",
            ],
        )
        .await?;
    let olga = story.log_on("sip:olga@police.example", "console").await?;
    let sent = olga
        .acm_provide(&AcmProvisionOrder {
            target_mc_service_id: id("sip:fred@fire.example"),
            interconnection_group_id_list: NonEmpty::one(gid(JOINT)),
        })
        .await?;
    olga.log_off().await?;
    let request_id = sent.request.request_id.unwrap_or_default();
    // Step 4b reaches police: fire stored the request for fred.
    story
        .wait_trace("Group information provision stored indication")
        .await?;
    let fred = story.log_on("sip:fred@fire.example", "console").await?;
    let mut fred_events = fred.events(None).await?;
    let told = wait_event(&mut fred_events, |e| {
        matches!(e, ClientEvent::AcmPendingData(_))
    })
    .await;
    story.check(
        told.is_some(),
        "fred is told at log-on that a request is pending (step 7a)",
    );
    let pending = fred.acm_pending().await?;
    story.check(
        matches!(
            &pending.acm_data[..],
            [PendingAcmItem::ProvisionRequest { .. }]
        ),
        "fred downloads the request (steps 7b, 8)",
    );
    fred.acm_respond(&request_id, &AcmDecision::Accepted)
        .await?;
    fred.acm_apply(
        &request_id,
        &mcx_model::api::AcmApplyRequest {
            users: NonEmpty::one(id("sip:felix@fire.example")),
            mc_service: MCPTT,
        },
    )
    .await?;
    fred.log_off().await?;
    // Step 11: police stored fred's response.
    story
        .wait_trace("Group information provision response stored")
        .await?;
    let olga = story.log_on("sip:olga@police.example", "console").await?;
    let mut olga_events = olga.events(None).await?;
    let told = wait_event(&mut olga_events, |e| {
        matches!(e, ClientEvent::AcmPendingData(_))
    })
    .await;
    story.check(
        told.is_some(),
        "olga is told at her next log-on that a response is pending (step 13a)",
    );
    let pending = olga.acm_pending().await?;
    story.check(
        matches!(&pending.acm_data[..], [PendingAcmItem::ProvisionResponse { response, .. }] if response.decision == AcmDecision::Accepted),
        "olga downloads fred's acceptance (steps 13b, 14)",
    );
    let felix = story.log_on("sip:felix@fire.example", "handset").await?;
    let response = felix.affiliate(MCPTT, &[gid(JOINT)]).await?;
    story.check(
        response.status_per_mc_service_group_id[0].status == AffiliationStatus::Affiliated,
        "the loop closes: felix, given the group by fire's administrator, is affiliated to police's joint",
    );
    story.end().await?;

    // 12. Log-off: andy's affiliations end at home and at both hosts.
    story
        .begin(
            "log-off",
            "Log-off ends the client's affiliations everywhere",
            "TS 23.280 §10.8.4.2, §10.8.4.3",
            &[
                "Log off",
                "MC service group de-affiliation request (server-server)",
                "Group de-affiliation status update",
                "MC service group de-affiliation response (server-server)",
            ],
        )
        .await?;
    andy.log_off().await?;
    story
        .wait_for("police and fire forget andy's affiliations", || {
            let (police, fire) = (police_admin.clone(), fire_admin.clone());
            async move {
                let andy = "sip:andy@ambulance.example".to_string();
                !members(&police, JOINT).await.contains(&andy)
                    && !members(&fire, HARBOUR).await.contains(&andy)
            }
        })
        .await;
    story.end().await?;
    Ok(())
}
