//! High availability with a partner system (issue 17): police runs as two real
//! `mcx serve` nodes on one PostgreSQL, behind HAProxy for its clients; fire is one real
//! process that reaches police through both nodes' interconnection endpoints. While a
//! police user affiliates to and de-affiliates from a fire group, police's dispatcher
//! changes a group shared with fire and provides it to fire's administrator through the
//! ACM servers, one police node is killed with SIGKILL. Afterwards: everything police
//! acknowledged reached fire exactly once, fire's copies converge on police's state, and
//! the fire member following the shared group saw each change once, in order. Needs
//! PostgreSQL: `.ci/run`'s second pass runs it.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mcx_client::Client;
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::{ClientId, McService, McServiceGroupId, NonEmpty, SystemDomain};

use crate::support::{answering, id, spawn_serve, test_storage_url};

const POLICE_OPS: &str = "sip:ops@police.example";
const FIRE_OPS: &str = "sip:ops@fire.example";

/// Polls `check` until it gives a value, for up to `seconds` (a killed node's outbox
/// lanes pass to the other node after the lane lease).
async fn within<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {seconds} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `text` with `from` replaced by `to`, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the generated configuration holds '{from}'"
    );
    text.replacen(from, to, 1)
}

async fn log_on(url: &str, user: &str, client: &str) -> Client {
    let password = user.trim_start_matches("sip:").split('@').next().unwrap();
    Client::new(url)
        .unwrap()
        .log_on(&id(user), password, &ClientId::parse(client).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{user} logs on at {url}: {e}"))
        .0
}

#[tokio::test(flavor = "multi_thread")]
async fn partner_and_acm_traffic_through_two_nodes_converges_after_one_is_killed() {
    let Some(storage_url) = test_storage_url().await else {
        eprintln!("ha_partners: several nodes need PostgreSQL; run under .ci/with-postgres");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cwd = tempfile::tempdir().unwrap();
    // police-a API and endpoint, fire API and endpoint, police-b API and endpoint, HAProxy.
    let base = crate::federation::free_ports(7);
    crate::support::write_federation(cwd.path(), &["police.example", "fire.example"], base);
    let fed = cwd.path().join("fed");
    // Short timeouts, so a killed node's lanes pass within seconds.
    let timing = |text: &str| {
        let text = replaced(
            text,
            "request-timeout-ms = 10000",
            "request-timeout-ms = 2000",
        );
        replaced(&text, "lane-lease-ms = 30000", "lane-lease-ms = 5000")
    };
    let police = timing(&std::fs::read_to_string(fed.join("police.example.toml")).unwrap());
    let node = |name: &str, api: u16, endpoint: u16| {
        let text = replaced(
            &police,
            &format!("listen = \"127.0.0.1:{base}\""),
            &format!("listen = \"127.0.0.1:{api}\""),
        );
        let text = replaced(
            &text,
            &format!("listen = \"127.0.0.1:{}\"", base + 1),
            &format!("listen = \"127.0.0.1:{endpoint}\""),
        );
        let text = replaced(
            &text,
            "data-dir = \"police.example-data\"",
            &format!(
                "data-dir = \"{name}-data\"\nstorage-url = \"{storage_url}\"\nstorage-key = \"police.key\""
            ),
        );
        let path = fed.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let (node_a, node_b) = (
        node("police-a", base, base + 1),
        node("police-b", base + 4, base + 5),
    );
    let fire = timing(&std::fs::read_to_string(fed.join("fire.example.toml")).unwrap());
    let fire = replaced(
        &fire,
        &format!("endpoint = \"https://127.0.0.1:{}\"", base + 1),
        &format!(
            "endpoint = [\"https://127.0.0.1:{}\", \"https://127.0.0.1:{}\"]",
            base + 1,
            base + 5
        ),
    );
    std::fs::write(fed.join("fire.example.toml"), fire).unwrap();

    let mut police_a = spawn_serve(&node_a);
    answering(&format!("http://127.0.0.1:{base}")).await;
    let mut police_b = spawn_serve(&node_b);
    answering(&format!("http://127.0.0.1:{}", base + 4)).await;
    let mut fire = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--config"])
        .arg(fed.join("fire.example.toml"))
        .env_remove("MCX_STORAGE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fire starts");
    let fire_url = format!("http://127.0.0.1:{}", base + 2);
    answering(&fire_url).await;
    let front = base + 6;
    let mut proxy = crate::ha::start_haproxy(cwd.path(), front, &[base, base + 4]);
    let url = format!("http://127.0.0.1:{front}");
    answering(&url).await;

    let dispatcher = log_on(&url, "sip:admin@police.example", "desk").await;
    let user1 = log_on(&url, "sip:user1@police.example", "handset").await;
    let fire_admin = log_on(&fire_url, "sip:admin@fire.example", "desk").await;
    let fire_member = log_on(&fire_url, "sip:user1@fire.example", "handset").await;
    let (police_ops, fire_ops) = (
        McServiceGroupId::parse(POLICE_OPS).unwrap(),
        McServiceGroupId::parse(FIRE_OPS).unwrap(),
    );
    let fire_domain = SystemDomain::parse("fire.example").unwrap();
    dispatcher
        .share_group(&police_ops, &fire_domain)
        .await
        .unwrap();
    within(20, "fire holds police's group", || async {
        fire_member.group(&police_ops).await.ok()
    })
    .await;
    fire_member.subscribe(&police_ops).await.unwrap();
    let mut followed = fire_member.events(None).await.unwrap();

    // Load 1: a police user affiliates to and de-affiliates from fire's group.
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicUsize::new(0));
    let affiliating = {
        let (stop, steps, user1, fire_ops) =
            (stop.clone(), steps.clone(), user1.clone(), fire_ops.clone());
        tokio::spawn(async move {
            let mut affiliate = true;
            while !stop.load(Ordering::Relaxed) {
                let answer = if affiliate {
                    user1
                        .affiliate(McService::Mcptt, std::slice::from_ref(&fire_ops))
                        .await
                        .map(|_| ())
                } else {
                    user1
                        .deaffiliate(McService::Mcptt, std::slice::from_ref(&fire_ops))
                        .await
                        .map(|_| ())
                };
                if answer.is_ok() {
                    affiliate = !affiliate;
                    steps.fetch_add(1, Ordering::Relaxed);
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    // Load 2: ACM provisions of police's group to fire's administrator; the IDs police
    // acknowledged are kept.
    let provided: Arc<Mutex<Vec<String>>> = Arc::default();
    let providing = {
        let (stop, provided, dispatcher, police_ops) = (
            stop.clone(),
            provided.clone(),
            dispatcher.clone(),
            police_ops.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let order = mcx_model::api::AcmProvisionOrder {
                    target_mc_service_id: id("sip:admin@fire.example"),
                    interconnection_group_id_list: NonEmpty::one(police_ops.clone()),
                };
                if let Ok(exchange) = dispatcher.acm_provide(&order).await
                    && let Some(request_id) = exchange.request.request_id
                {
                    provided.lock().unwrap().push(request_id.to_string());
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    // Load 3: the dispatcher renames the shared group, before and after the kill.
    let names: Vec<String> = (1..=6).map(|v| format!("Ops v{v}")).collect();
    let rename = |name: String| {
        let (dispatcher, police_ops) = (dispatcher.clone(), police_ops.clone());
        async move { crate::support::rename_group(&dispatcher, &police_ops, &name).await }
    };
    let progressed = |n: usize| {
        let steps = steps.clone();
        async move {
            within(60, &format!("{n} affiliation steps"), || async {
                (steps.load(Ordering::Relaxed) >= n).then_some(())
            })
            .await
        }
    };
    progressed(10).await;
    for name in &names[..3] {
        rename(name.clone()).await;
    }
    progressed(20).await;
    police_a.kill().expect("SIGKILL");
    let _ = police_a.wait();
    let after = steps.load(Ordering::Relaxed);
    for name in &names[3..] {
        rename(name.clone()).await;
    }
    progressed(after + 10).await;
    stop.store(true, Ordering::Relaxed);
    affiliating.await.unwrap();
    providing.await.unwrap();

    // The shared group: fire's copy converges on police's last version, and the member
    // following it at fire saw every change once, in order.
    let version = dispatcher.group(&police_ops).await.unwrap().version;
    within(30, "fire's copy reaches police's version", || async {
        let copy = fire_member.group(&police_ops).await.ok()?;
        (copy.configuration.display_name == names[5]
            && matches!(copy.origin, mcx_model::group::GroupOrigin::Partner { primary_version } if primary_version == version))
            .then_some(())
    })
    .await;
    let mut seen = Vec::new();
    while seen.last() != Some(&names[5]) {
        match tokio::time::timeout(Duration::from_secs(20), followed.next()).await {
            Ok(Some(Ok(delivered))) => {
                if let ClientEvent::GroupConfigurationChanged { group, .. } = delivered.event {
                    seen.push(group.configuration.display_name);
                }
            }
            other => panic!("the member's stream at fire ended early: {other:?}; seen {seen:?}"),
        }
    }
    let changes: Vec<_> = seen
        .iter()
        .filter(|n| n.starts_with("Ops v"))
        .cloned()
        .collect();
    assert_eq!(
        changes, names,
        "each change of the shared group once, in order"
    );

    // ACM: every provision police acknowledged is stored at fire, once.
    let provided = provided.lock().unwrap().clone();
    assert!(
        provided.len() >= 3,
        "provisions were acknowledged: {provided:?}"
    );
    let received = within(30, "fire holds every acknowledged provision", || async {
        let received: Vec<String> = fire_admin
            .acm_received()
            .await
            .ok()?
            .exchanges
            .iter()
            .filter_map(|x| x.request.request_id.as_ref().map(|r| r.to_string()))
            .collect();
        provided
            .iter()
            .all(|p| received.contains(p))
            .then_some(received)
    })
    .await;
    let mut unique = received.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        received.len(),
        "no provision stored twice at fire"
    );
    within(
        30,
        "police sees each acknowledged provision stored",
        || async {
            let sent = dispatcher.acm_sent().await.ok()?;
            sent.exchanges
                .iter()
                .all(|x| x.state == mcx_model::api::AcmState::Stored)
                .then_some(())
        },
    )
    .await;

    // Affiliation: police's view and fire's GMS agree, both ways, through the survivor.
    for affiliate in [true, false] {
        within(30, "the last (de-)affiliation is answered", || async {
            let answer = if affiliate {
                user1
                    .affiliate(McService::Mcptt, std::slice::from_ref(&fire_ops))
                    .await
                    .ok()?
                    .status_per_mc_service_group_id
            } else {
                user1
                    .deaffiliate(McService::Mcptt, std::slice::from_ref(&fire_ops))
                    .await
                    .ok()?
                    .status_per_mc_service_group_id
            };
            let wanted = if affiliate {
                AffiliationStatus::Affiliated
            } else {
                AffiliationStatus::NotAffiliated
            };
            answer.iter().all(|s| s.status == wanted).then_some(())
        })
        .await;
        within(30, "fire's GMS agrees with police", || async {
            let members = fire_admin.group_affiliations(&fire_ops).await.ok()?.members;
            let listed = members
                .iter()
                .any(|m| m.mc_service_id == id("sip:user1@police.example"));
            (listed == affiliate).then_some(())
        })
        .await;
    }

    for child in [&mut police_b, &mut fire, &mut proxy] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
