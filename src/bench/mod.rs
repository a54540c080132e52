//! `mcx bench`: a load generator for mcx deployments. It starts its own deployment (a home
//! system and P partners, each a separate `mcx serve` process, optionally with a store
//! preloaded with stored affiliations) or drives one started by hand, runs the scenarios
//! through the public client API with many concurrent clients over real connections, and
//! reports throughput, latency percentiles (HdrHistogram), errors and the servers' memory
//! as a table and as JSON.

mod deployment;
mod floor;
mod load;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::ValueEnum;
use mcx_model::api::SystemResources;
use serde::Serialize;

use deployment::{Manifest, Shape};
use scenarios::{Knobs, Outcome};

/// A bench scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// The machine's floor: a bare axum handler with the same bearer check and answer
    /// as `GET /v1/session`, served by the bench itself.
    Floor,
    /// The cheapest authenticated request (GET /v1/session) of mcx.
    Baseline,
    /// Log-ons with passwords hashed at the default Argon2id costs: the rate, and the
    /// memory a log-on storm takes.
    LogOn,
    /// Affiliation / de-affiliation cycles on home groups.
    AffiliateLocal,
    /// Affiliation / de-affiliation cycles on groups of a partner system.
    AffiliatePartner,
    /// One group change reaching P partner systems and S subscribed clients.
    NotifyFanout,
    /// A regroup across three systems with M affiliated members, and its cancellation.
    Regroup,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Floor => "floor",
            Scenario::Baseline => "baseline",
            Scenario::LogOn => "log-on",
            Scenario::AffiliateLocal => "affiliate-local",
            Scenario::AffiliatePartner => "affiliate-partner",
            Scenario::NotifyFanout => "notify-fanout",
            Scenario::Regroup => "regroup",
        }
    }
}

/// What `mcx bench` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct BenchArgs {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) workers: usize,
    pub(crate) partners: usize,
    pub(crate) subscribers: usize,
    pub(crate) members: usize,
    pub(crate) repeat: usize,
    pub(crate) preload: Vec<u64>,
    pub(crate) json: Option<PathBuf>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) prepare: Option<PathBuf>,
    pub(crate) running: Option<PathBuf>,
    pub(crate) base_port: Option<u16>,
    pub(crate) rate: Option<f64>,
}

/// One system's resources after a scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Memory {
    pub(crate) system: String,
    #[serde(flatten)]
    pub(crate) resources: SystemResources,
}

/// A scenario's outcome with the servers' memory after it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measured {
    #[serde(flatten)]
    pub(crate) outcome: Outcome,
    pub(crate) memory: Vec<Memory>,
}

/// One deployment's run of the scenarios.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Affiliations stored at the home system before the scenarios (preloaded).
    pub(crate) stored_affiliations: u64,
    pub(crate) shape: Shape,
    /// Seconds from starting the processes until every system answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_seconds: Option<f64>,
    pub(crate) results: Vec<Measured>,
    /// Scenarios that could not run, with the reason.
    pub(crate) failures: Vec<(String, String)>,
}

impl BenchArgs {
    fn shape(&self, preload: u64) -> Shape {
        Shape {
            workers: self.workers.max(1),
            partners: self.partners.max(2),
            subscribers: self.subscribers,
            members: self.members.max(3),
            preload,
        }
    }

    fn knobs(&self) -> Knobs {
        Knobs {
            warmup: self.warmup,
            duration: self.duration,
            repeat: self.repeat.max(1),
            setup_parallelism: 64,
            rate: self.rate,
        }
    }
}

/// Runs the bench; fails when a scenario could not run or saw errors.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // Thousands of event streams need as many descriptors, here and in the servers,
    // which inherit the limit.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("mcx bench: could not raise the open-files limit ({e}); large runs may fail");
    }
    if let Some(dir) = &args.prepare {
        std::fs::create_dir_all(dir)?;
        let (manifest, files) = deployment::prepare(dir, &args.shape(0), args.base_port)?;
        println!("mcx bench: deployment written to {}", dir.display());
        for (domain, file) in &files {
            println!(
                "  mcx serve --config {}    # {domain}, {}",
                file.display(),
                manifest.urls[domain]
            );
        }
        println!("then: mcx bench --running {}", dir.display());
        return Ok(());
    }

    let mut runs = Vec::new();
    if let Some(dir) = &args.running {
        let manifest = deployment::read_manifest(dir)?;
        println!(
            "mcx bench: driving the running deployment of {}",
            dir.display()
        );
        runs.push(run_scenarios(&args, &manifest, 0, None).await);
    } else {
        let preloads = if args.preload.is_empty() {
            vec![0]
        } else {
            args.preload.clone()
        };
        for preload in preloads {
            runs.push(own_deployment(&args, preload).await?);
        }
    }

    let text = report::table(&runs);
    println!("{text}");
    let document = serde_json::json!({
        "mcx-version": env!("CARGO_PKG_VERSION"),
        "machine": report::machine(),
        "settings": {
            "duration-seconds": args.duration.as_secs_f64(),
            "warmup-seconds": args.warmup.as_secs_f64(),
            "repeat": args.repeat,
        },
        "runs": runs,
    });
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&document)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    let failures: usize = runs.iter().map(|r| r.failures.len()).sum();
    let errors: u64 = runs
        .iter()
        .flat_map(|r| &r.results)
        .flat_map(|m| &m.outcome.phases)
        .map(|p| p.summary.errors)
        .sum();
    if failures > 0 || errors > 0 {
        anyhow::bail!(
            "{failures} scenario(s) could not run and {errors} request(s) failed; see above"
        );
    }
    Ok(())
}

async fn own_deployment(args: &BenchArgs, preload: u64) -> anyhow::Result<Run> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            let dir = dir.join(format!("preload-{preload}"));
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("clearing {}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir)?;
            dir
        }
        None => {
            temp = tempfile::Builder::new().prefix("mcx-bench-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let shape = args.shape(preload);
    println!(
        "mcx bench: home system and {} partners, each its own `mcx serve` process ({})",
        shape.partners,
        dir.display()
    );
    let (manifest, files) = deployment::prepare(&dir, &shape, args.base_port)?;
    let mut stored = 0;
    if preload > 0 {
        let started = Instant::now();
        stored = deployment::preload(&dir, preload, |n| {
            load::show_progress(&format!(
                "preloading the home store: {n}/{preload} affiliations"
            ));
        })
        .await?;
        load::clear_progress();
        println!(
            "  home store preloaded with {stored} affiliations in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    let mut systems = deployment::start(&dir, files).await?;
    let start_seconds = started.elapsed().as_secs_f64();
    println!(
        "  {} systems answering after {start_seconds:.1} s",
        manifest.urls.len()
    );
    let mut run = run_scenarios(args, &manifest, stored, Some(start_seconds)).await;
    systems.stop();
    run.stored_affiliations = stored;
    Ok(run)
}

async fn run_scenarios(
    args: &BenchArgs,
    manifest: &Manifest,
    stored: u64,
    start_seconds: Option<f64>,
) -> Run {
    let knobs = args.knobs();
    let mut run = Run {
        stored_affiliations: stored,
        shape: manifest.shape.clone(),
        start_seconds,
        results: Vec::new(),
        failures: Vec::new(),
    };
    let mut scenarios = args.scenarios.clone();
    scenarios.sort();
    scenarios.dedup();
    for scenario in scenarios {
        println!("  running {} ...", scenario.name());
        let outcome = match scenario {
            Scenario::Floor => scenarios::floor(manifest, &knobs).await,
            Scenario::Baseline => scenarios::baseline(manifest, &knobs).await,
            Scenario::LogOn => scenarios::log_on_storm(manifest, &knobs).await,
            Scenario::AffiliateLocal => scenarios::affiliate_local(manifest, &knobs).await,
            Scenario::AffiliatePartner => scenarios::affiliate_partner(manifest, &knobs).await,
            Scenario::NotifyFanout => scenarios::notify_fanout(manifest, &knobs).await,
            Scenario::Regroup => scenarios::regroup(manifest, &knobs).await,
        };
        match outcome {
            Ok(outcome) => {
                let memory = memory(manifest).await;
                let measured = Measured { outcome, memory };
                print!("{}", report::scenario_lines(&measured));
                run.results.push(measured);
            }
            Err(e) => {
                println!("  ✗ {} could not run: {e:#}", scenario.name());
                run.failures
                    .push((scenario.name().to_string(), format!("{e:#}")));
            }
        }
    }
    run
}

/// Every system's resources, as its administrator reads them.
async fn memory(manifest: &Manifest) -> Vec<Memory> {
    let mut out = Vec::new();
    for domain in manifest.urls.keys() {
        let resources = match scenarios::administrator(manifest, domain).await {
            Ok(admin) => admin.resources().await.ok(),
            Err(_) => None,
        };
        if let Some(resources) = resources {
            out.push(Memory {
                system: domain.clone(),
                resources,
            });
        }
    }
    out
}
