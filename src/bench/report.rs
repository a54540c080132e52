//! The bench's text report: one line per measured phase, each compared with `baseline` of
//! the same run; memory per scenario; and, when several preloads ran, how throughput and
//! memory moved with stored state.

use std::fmt::Write as _;

use super::{Measured, Run};

const MB: f64 = 1024.0 * 1024.0;

fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| format!("{:.0} MB", b as f64 / MB))
}

/// The phase lines of one scenario, printed as soon as it finishes.
pub(crate) fn scenario_lines(measured: &Measured) -> String {
    let mut out = String::new();
    for phase in &measured.outcome.phases {
        let s = &phase.summary;
        let _ = writeln!(
            out,
            "    {:<28} {:>8} ok {:>5} errors {:>9.1}/s  p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2}  max {:>8.2} ms",
            phase.name, s.requests, s.errors, s.per_second, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
        if let Some(e) = &s.first_error {
            let _ = writeln!(out, "      first error: {e}");
        }
    }
    let _ = writeln!(out, "    memory: {}", memory_line(measured));
    out
}

fn memory_line(measured: &Measured) -> String {
    let home = measured
        .memory
        .iter()
        .find(|m| m.system == super::deployment::HOME);
    let partners = measured
        .memory
        .iter()
        .filter(|m| m.system != super::deployment::HOME);
    let partner_max = partners
        .clone()
        .filter_map(|m| m.resources.resident_memory_bytes)
        .max();
    let total: u64 = measured
        .memory
        .iter()
        .filter_map(|m| m.resources.resident_memory_bytes)
        .sum();
    format!(
        "home {} (peak {}), largest partner {}, all {} systems {}",
        megabytes(home.and_then(|m| m.resources.resident_memory_bytes)),
        megabytes(home.and_then(|m| m.resources.peak_resident_memory_bytes)),
        megabytes(partner_max),
        measured.memory.len(),
        megabytes(Some(total)),
    )
}

/// Whether a phase is a throughput phase (closed loop or paced requests) rather than a
/// time-to-notify distribution.
fn is_load_phase(name: &str) -> bool {
    name == "peak" || name == "half of peak" || name.starts_with("at ")
}

/// The whole report.
pub(crate) fn table(runs: &[Run]) -> String {
    let mut out = String::new();
    for run in runs {
        let _ = writeln!(
            out,
            "\nResults with {} stored affiliations ({} workers, {} partners, {} subscribers, {} regroup members)",
            run.stored_affiliations,
            run.shape.workers,
            run.shape.partners,
            run.shape.subscribers,
            run.shape.members
        );
        let baseline = run
            .results
            .iter()
            .find(|m| m.outcome.scenario == "baseline")
            .and_then(|m| m.outcome.phases.iter().find(|p| p.name == "peak"))
            .map(|p| p.summary.clone());
        let _ = writeln!(
            out,
            "{:<18} {:<28} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "scenario",
            "phase",
            "ok",
            "errors",
            "per s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "÷base/s",
            "p50÷base"
        );
        for measured in &run.results {
            for phase in &measured.outcome.phases {
                let s = &phase.summary;
                let (throughput_ratio, latency_ratio) = match &baseline {
                    Some(b) => (
                        if phase.name == "peak" && b.per_second > 0.0 {
                            format!("{:.2}", s.per_second / b.per_second)
                        } else {
                            "".into()
                        },
                        if b.p50_ms > 0.0 {
                            format!("{:.1}", s.p50_ms / b.p50_ms)
                        } else {
                            "".into()
                        },
                    ),
                    None => (String::new(), String::new()),
                };
                let per_second = if is_load_phase(&phase.name) {
                    format!("{:.0}", s.per_second)
                } else {
                    "".into()
                };
                let _ = writeln!(
                    out,
                    "{:<18} {:<28} {:>9} {:>6} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10} {:>10}",
                    measured.outcome.scenario,
                    phase.name,
                    s.requests,
                    s.errors,
                    per_second,
                    s.p50_ms,
                    s.p90_ms,
                    s.p99_ms,
                    s.max_ms,
                    throughput_ratio,
                    latency_ratio
                );
            }
        }
        let floor = run
            .results
            .iter()
            .find(|m| m.outcome.scenario == "floor")
            .and_then(peak);
        if let (Some(floor), Some(baseline)) = (floor, &baseline)
            && floor > 0.0
        {
            let _ = writeln!(
                out,
                "baseline ÷ floor: {:.2} ({:.0} of {:.0} requests/s)",
                baseline.per_second / floor,
                baseline.per_second,
                floor
            );
        }
        for measured in &run.results {
            let _ = writeln!(
                out,
                "memory after {:<18} {}",
                measured.outcome.scenario,
                memory_line(measured)
            );
        }
        for (scenario, reason) in &run.failures {
            let _ = writeln!(out, "✗ {scenario} could not run: {reason}");
        }
    }
    if runs.len() > 1 {
        let _ = writeln!(
            out,
            "\nThroughput and memory against stored affiliations (peak phases)"
        );
        let first = &runs[0];
        for measured in &first.results {
            let name = &measured.outcome.scenario;
            let Some(reference) = peak(measured) else {
                continue;
            };
            let mut line = format!("{name:<18}");
            for run in runs {
                let Some(this) = run
                    .results
                    .iter()
                    .find(|m| &m.outcome.scenario == name)
                    .and_then(peak)
                else {
                    continue;
                };
                let _ = write!(
                    line,
                    "  {:>9}: {:>7.0}/s ({:.2})",
                    run.stored_affiliations,
                    this,
                    this / reference
                );
            }
            let _ = writeln!(out, "{line}");
        }
        let mut line = format!("{:<18}", "home memory");
        for run in runs {
            let peak_rss = run
                .results
                .iter()
                .flat_map(|m| &m.memory)
                .filter(|m| m.system == super::deployment::HOME)
                .filter_map(|m| m.resources.peak_resident_memory_bytes)
                .max();
            let _ = write!(
                line,
                "  {:>9}: peak {}",
                run.stored_affiliations,
                megabytes(peak_rss)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

fn peak(measured: &Measured) -> Option<f64> {
    measured
        .outcome
        .phases
        .iter()
        .find(|p| p.name == "peak")
        .map(|p| p.summary.per_second)
}

/// What the figures were measured on.
pub(crate) fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        });
    serde_json::json!({ "cpus": cpus, "cpu": model, "os": std::env::consts::OS })
}
