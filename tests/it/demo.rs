//! `mcx demo` runs three `mcx serve` processes and plays every procedure; it fails if an
//! outcome or the order of the flows the servers recorded differs from the specification.

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_plays_every_procedure_with_flows_in_the_specified_order() {
    let out = tempfile::tempdir().unwrap();
    let base = crate::federation::free_ports(6);
    let run = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_mcx"))
            .args(["demo", "--base-port", &base.to_string(), "--out"])
            .arg(out.path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("mcx demo runs")
    });
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the demo found deviations:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["passed"], true);
    let procedures = report["procedures"].as_array().unwrap();
    let ids: Vec<&str> = procedures
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "provide",
            "request",
            "notify",
            "affiliate-local",
            "affiliate-partner",
            "n2",
            "change-mandatory",
            "change-negotiated",
            "regroup",
            "regroup-cancel",
            "acm",
            "log-off"
        ],
        "every procedure of the seeds is played"
    );
    for p in procedures {
        assert!(
            p["order_error"].is_null(),
            "{}: {}",
            p["id"],
            p["order_error"]
        );
        assert!(
            p["failed_checks"].as_array().unwrap().is_empty(),
            "{}: {}",
            p["id"],
            p["failed_checks"]
        );
        // The expected flows are really among those observed, in order.
        let observed: Vec<&str> = p["observed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["flow"].as_str().unwrap())
            .collect();
        let mut at = 0;
        for want in p["expected"].as_array().unwrap() {
            let want = want.as_str().unwrap();
            let found = observed[at..].iter().position(|f| *f == want);
            assert!(
                found.is_some(),
                "{}: '{want}' not observed in order in {observed:?}",
                p["id"]
            );
            at += found.unwrap() + 1;
        }
    }
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        procedures.len(),
        "one sequence chart per procedure"
    );
}
