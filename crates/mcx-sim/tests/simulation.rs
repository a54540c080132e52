//! Seeds of the deterministic simulation. CI runs a bounded number; more with
//! `MCX_SIM_SEEDS=<count>` (and `MCX_SIM_FIRST=<seed>`, `MCX_SIM_STEPS=<steps>`); one seed
//! with `MCX_SIM_SEED=<seed>`. A failing seed prints the command that replays it.

use mcx_sim::{Report, Settings, simulate};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(seed: u64, steps: usize) -> Report {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(simulate(Settings::for_seed(seed, steps)))
}

#[test]
fn seeded_runs_keep_every_invariant() {
    let steps = env("MCX_SIM_STEPS", 400) as usize;
    let seeds: Vec<u64> = match std::env::var("MCX_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("MCX_SIM_SEED is a number")],
        Err(_) => {
            let first = env("MCX_SIM_FIRST", 1);
            (first..first + env("MCX_SIM_SEEDS", 6)).collect()
        }
    };
    let (mut procedures, mut faults, mut deliveries) = (0, 0, 0);
    let mut failed = Vec::new();
    for seed in seeds.iter().copied() {
        let report = run(seed, steps);
        procedures += report.procedures();
        faults += report.faults();
        deliveries += report.net.delivered;
        if std::env::var_os("MCX_SIM_REPORT").is_some() {
            eprintln!(
                "seed {seed}: {:?}\n  {:?}\n  {:?}",
                report.operations, report.outcomes, report.net
            );
        }
        if !report.violations.is_empty() {
            eprintln!(
                "seed {seed} broke {} invariant(s):\n  {}\nreplay: MCX_SIM_SEED={seed} MCX_SIM_STEPS={steps} cargo test -p mcx-sim --test simulation seeded_runs -- --nocapture",
                report.violations.len(),
                report.violations.join("\n  ")
            );
            eprintln!("{report:#?}");
            failed.push(seed);
        }
    }
    eprintln!(
        "{} seeds x {steps} steps: {procedures} client procedures, {deliveries} partner requests delivered, {faults} faults injected, {} seeds with violations",
        seeds.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "seeds with violations: {failed:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let first = run(42, 250);
    let second = run(42, 250);
    assert!(first.procedures() > 50, "the run did something: {first:?}");
    assert!(first.faults() > 0, "faults were injected: {first:?}");
    assert_eq!(first.digest, second.digest, "the same seed, the same run");
}
