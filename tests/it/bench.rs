//! `mcx bench` starts its own deployment, runs every scenario through the public API and
//! reports each as JSON. Figures are never asserted here (they belong to benchmarks, not
//! tests); what is checked is that every scenario ran, measured something and saw no
//! error, on a store preloaded with stored affiliations.

use std::time::Duration;

use tokio::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn the_bench_runs_every_scenario_on_a_preloaded_deployment_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    // Home and two partners: two ports each.
    let base = crate::federation::free_ports(6);
    let bench = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args([
            "bench",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
            "--workers",
            "2",
            "--partners",
            "2",
            "--subscribers",
            "4",
            "--members",
            "3",
            "--repeat",
            "2",
            "--preload",
            "1000",
            "--base-port",
            &base.to_string(),
            "--json",
        ])
        .arg(&json)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    // A run takes well under a minute; a stuck one fails here rather than stalling CI.
    let run = tokio::time::timeout(Duration::from_secs(300), bench)
        .await
        .expect("mcx bench finishes within 5 minutes")
        .expect("mcx bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("÷base/s"), "a table is printed:\n{stdout}");
    assert!(
        stdout.contains("baseline ÷ floor: "),
        "the baseline is set against the machine's floor:\n{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &report["runs"][0];
    assert_eq!(
        run["stored_affiliations"], 1000,
        "the preload is in the home store"
    );
    assert!(run["failures"].as_array().unwrap().is_empty());
    let results = run["results"].as_array().unwrap();
    let scenarios: Vec<&str> = results
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        scenarios,
        [
            "floor",
            "baseline",
            "log-on",
            "affiliate-local",
            "affiliate-partner",
            "notify-fanout",
            "regroup"
        ]
    );
    for result in results {
        for phase in result["phases"].as_array().unwrap() {
            assert!(
                phase["requests"].as_u64().unwrap() > 0,
                "{} / {} measured nothing",
                result["scenario"],
                phase["name"]
            );
            assert_eq!(
                phase["errors"], 0,
                "{} / {}",
                result["scenario"], phase["name"]
            );
        }
        let memory = result["memory"].as_array().unwrap();
        assert_eq!(memory.len(), 3, "every system reports its memory");
        assert!(
            memory
                .iter()
                .all(|m| m["resident-memory-bytes"].as_u64().unwrap() > 0)
        );
    }
    // notify-fanout: every subscriber got both changes.
    let fanout = &results
        .iter()
        .find(|r| r["scenario"] == "notify-fanout")
        .expect("notify-fanout ran")["phases"][1];
    assert_eq!(fanout["requests"], 8);
}
