//! `/metrics` (issue 18): a scripted run against the real `mcx serve` (its own process,
//! so its counters are only this run's), then the scrape checked against what happened;
//! and partner flows, a partner going down and coming back, in two in-process systems.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use mcx_client::Client;
use mcx_model::{ClientId, McService, McServiceGroupId};

use crate::support::*;

fn config(dir: &std::path::Path, port: u16, metrics_port: u16) -> std::path::PathBuf {
    let una = ["sip:una@police.example".to_string()];
    PoliceToml::new(&format!(
        "listen = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\nmetrics-listen = \"127.0.0.1:{metrics_port}\"",
        dir.join("data").display()
    ))
    .user("sip:chief@police.example", &["group-administration"], &[], 0)
    .user(&una[0], &[], &[OPS, PATROL], 1)
    .group(OPS, "Ops", &una)
    .group(PATROL, "Patrol", &una)
    .write(dir.join("mcx.toml"))
}

/// The samples of a scrape, by series (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scrape_counts_what_the_scripted_run_did() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = crate::federation::free_ports(2);
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--config"])
        .arg(config(dir.path(), port, port + 1))
        .env_remove("MCX_STORAGE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mcx serve starts");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(format!("{url}/v1/system")).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "mcx serve answers");

    let base = Client::new(&url).unwrap();
    let phone = ClientId::parse("phone").unwrap();
    let (una, _) = base
        .log_on(&id("sip:una@police.example"), "pw", &phone)
        .await
        .unwrap();
    let (chief, _) = base
        .log_on(&id("sip:chief@police.example"), "pw", &phone)
        .await
        .unwrap();
    let mcptt = McService::Mcptt;
    una.affiliate(mcptt, &[McServiceGroupId::parse(OPS).unwrap()])
        .await
        .unwrap();
    // N2 is 1: refused.
    una.affiliate(mcptt, &[McServiceGroupId::parse(PATROL).unwrap()])
        .await
        .unwrap();
    let _stream = una.events(None).await.unwrap();

    let scrape = |token: String| {
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{url}/metrics"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let refused = scrape(una.token().unwrap().to_string()).await;
    assert_eq!(
        refused.status(),
        403,
        "only group administrators read the metrics"
    );
    let answer = scrape(chief.token().unwrap().to_string()).await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "Prometheus text format"
    );
    let seen = samples(&answer.text().await.unwrap());
    let value = |series: &str| {
        seen.get(series)
            .copied()
            .unwrap_or_else(|| panic!("no {series} in {seen:#?}"))
    };
    assert_eq!(
        value(
            r#"mcx_affiliation_answers_total{request="affiliate",status="affiliated",cause="none"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            r#"mcx_affiliation_answers_total{request="affiliate",status="not-affiliated",cause="n2-limit-reached"}"#
        ),
        1.0
    );
    assert_eq!(value("mcx_affiliations_held"), 1.0);
    assert_eq!(value("mcx_event_streams_open"), 1.0);
    assert_eq!(
        value(r#"mcx_http_requests_total{route="/v1/affiliations",method="POST",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"mcx_http_requests_total{route="/v1/session",method="POST",status="201"}"#),
        2.0
    );
    assert_eq!(
        value(r#"mcx_http_requests_total{route="/metrics",method="GET",status="403"}"#),
        1.0
    );
    assert_eq!(
        value(r#"mcx_http_request_duration_seconds_count{route="/v1/affiliations"}"#),
        2.0
    );
    assert_eq!(
        value(r#"mcx_connections_refused_over_limit_total{listener="client-api"}"#),
        0.0
    );
    assert!(
        value("mcx_group_commit_writes_count") >= 2.0,
        "the two answers' commits"
    );

    // The metrics listener serves the same series without a token; the client API
    // asks for one.
    let open = reqwest::get(format!("http://127.0.0.1:{}/metrics", port + 1))
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let open = samples(&open.text().await.unwrap());
    assert_eq!(open.get("mcx_affiliations_held"), Some(&1.0), "{open:#?}");
    let elsewhere = reqwest::get(format!("http://127.0.0.1:{}/v1/session", port + 1))
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        404,
        "the metrics listener serves /metrics only"
    );
    let anonymous = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let _ = server.kill();
    let _ = server.wait();
}

/// Partner flows and the outbox in the scrape: in-process systems share the process's
/// recorder with the other tests, so counters are checked as at least what this test
/// did, and the outbox gauges (read from this system's store at the scrape) exactly.
#[tokio::test]
async fn partner_flows_and_a_partner_down_show_in_the_scrape() {
    use crate::federation::*;
    use mcx_model::profile::Permission;
    const CHIEF: &str = "sip:chief@police.example";
    const OFFICER: &str = "sip:officer@police.example";
    const HARBOUR: &str = HARBOUR_GROUP;
    let mcptt = McService::Mcptt;
    let (mut federation, _) = police_and_fire_with_harbour(
        vec![
            profiled_user(CHIEF, &[(mcptt, &[], 4)], &Permission::ALL),
            profiled_user(OFFICER, &[(mcptt, &[HARBOUR], 4)], &[]),
        ],
        &[OFFICER],
    )
    .await;
    let chief = federation.log_on(CHIEF, "console").await;
    let officer = federation.log_on(OFFICER, "handset").await;
    let police_url = federation.node(POLICE).base_url();
    let scrape = || {
        let (url, token) = (police_url.clone(), chief.token().unwrap().to_string());
        async move {
            let answer = reqwest::Client::new()
                .get(format!("{url}/metrics"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            samples(&answer.text().await.unwrap())
        }
    };
    let at = |seen: &BTreeMap<String, f64>, series: &str| seen.get(series).copied().unwrap_or(0.0);
    let sent = r#"mcx_flows_sent_total{flow="group-affiliation",partner="fire.example"}"#;
    let answered = r#"mcx_flow_answers_total{flow="group-affiliation",partner="fire.example",outcome="answered"}"#;
    let before = scrape().await;
    officer.affiliate(mcptt, &[gid(HARBOUR)]).await.unwrap();
    crate::federation::eventually("the affiliation's flow is counted", || async {
        let now = scrape().await;
        (at(&now, sent) >= at(&before, sent) + 1.0
            && at(&now, answered) >= at(&before, answered) + 1.0)
            .then_some(())
    })
    .await;
    // What the affiliation also set going (the group's configuration for police) drains.
    crate::federation::eventually("nothing waits for fire, and its link is up", || async {
        let now = scrape().await;
        (at(&now, r#"mcx_outbox_depth{partner="fire.example"}"#) == 0.0
            && at(&now, r#"mcx_partner_link_up{partner="fire.example"}"#) == 1.0)
            .then_some(())
    })
    .await;

    // Fire goes down: the de-affiliation waits in the outbox and the link shows down.
    federation.stop(FIRE).await;
    officer.deaffiliate(mcptt, &[gid(HARBOUR)]).await.unwrap();
    crate::federation::eventually(
        "the waiting flow and the failing link are shown",
        || async {
            let now = scrape().await;
            (at(&now, r#"mcx_outbox_depth{partner="fire.example"}"#) >= 1.0
                && at(&now, r#"mcx_partner_link_up{partner="fire.example"}"#) == 0.0)
                .then_some(())
        },
    )
    .await;
    let now = scrape().await;
    assert!(
        at(
            &now,
            r#"mcx_outbox_oldest_age_seconds{partner="fire.example"}"#
        ) >= 0.0
    );
    assert!(
        at(
            &now,
            r#"mcx_flow_answers_total{flow="group-deaffiliation",partner="fire.example",outcome="unreachable"}"#
        ) >= 1.0
    );
    // Back: delivered, nothing waits, the link is up.
    federation.start(FIRE).await;
    crate::federation::eventually("the outbox drains once fire is back", || async {
        let now = scrape().await;
        (at(&now, r#"mcx_outbox_depth{partner="fire.example"}"#) == 0.0
            && at(&now, r#"mcx_partner_link_up{partner="fire.example"}"#) == 1.0)
            .then_some(())
    })
    .await;
}
