//! High availability (issue 17): two real `mcx serve` nodes of one system on one
//! PostgreSQL behind HAProxy. Clients affiliate and de-affiliate as fast as they are
//! answered and a dispatcher changes a group; one node is killed with SIGKILL in the
//! middle; the clients carry on through HAProxy at the other node. Afterwards every
//! acknowledged (de-)affiliation is there, N2 held for every user, and the client that
//! followed the group's changes on its event stream (resumed with `Last-Event-ID`) got
//! each once, in order. Needs PostgreSQL: `.ci/run`'s second pass runs it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use mcx_client::Client;
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::{ClientId, McService, McServiceGroupId};

use crate::support::*;

const USERS: usize = 16;
const GROUPS: [&str; 2] = [OPS, PATROL];

fn node_config(
    dir: &std::path::Path,
    node: &str,
    port: u16,
    storage_url: &str,
) -> std::path::PathBuf {
    const CHIEF: &str = "sip:chief@police.example";
    let mut toml = PoliceToml::new(&format!(
        "listen = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\nstorage-url = \"{storage_url}\"\nstorage-key = \"{}\"",
        dir.join(node).display(),
        dir.join("storage.key").display(),
    ))
    .user(CHIEF, &["group-administration"], &[OPS], 2);
    let mut members: Vec<String> = (0..USERS)
        .map(|i| format!("sip:h{i}@police.example"))
        .collect();
    for user in &members {
        // N2 = 1 with two groups: every user is sometimes refused.
        toml = toml.user(user, &[], &GROUPS, 1);
    }
    members.push(CHIEF.to_string());
    for group in GROUPS {
        toml = toml.group(group, "g", &members);
    }
    toml.write(dir.join(format!("{node}.toml")))
}

pub(crate) fn start_haproxy(dir: &std::path::Path, front: u16, nodes: &[u16]) -> Child {
    let servers: String = nodes
        .iter()
        .enumerate()
        .map(|(i, port)| format!("  server n{i} 127.0.0.1:{port} check\n"))
        .collect();
    let text = format!(
        "global\n  maxconn 2048\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  retries 3\n  option redispatch\n\
         frontend clients\n  bind 127.0.0.1:{front}\n  default_backend nodes\n\
         backend nodes\n  balance roundrobin\n  option httpchk GET /v1/system\n  default-server inter 200ms fall 2 rise 2\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, text).expect("haproxy configuration written");
    Command::new(haproxy())
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy starts")
}

/// What one client knows of each group: the state its last answered request left, or
/// nothing when its last request got no answer (the outcome is unknown).
type Known = BTreeMap<String, Option<bool>>;

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_under_load_loses_nothing_acknowledged_and_the_clients_carry_on() {
    let Some(storage_url) = test_storage_url().await else {
        eprintln!("ha: several nodes need PostgreSQL; run under .ci/with-postgres");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ports = crate::federation::free_ports(3);
    let (port_a, port_b, front) = (ports, ports + 1, ports + 2);
    let mut node_a = spawn_serve(&node_config(dir.path(), "a", port_a, &storage_url));
    answering(&format!("http://127.0.0.1:{port_a}")).await;
    let mut node_b = spawn_serve(&node_config(dir.path(), "b", port_b, &storage_url));
    answering(&format!("http://127.0.0.1:{port_b}")).await;
    let mut proxy = start_haproxy(dir.path(), front, &[port_a, port_b]);
    let url = format!("http://127.0.0.1:{front}");
    answering(&url).await;

    let base = Client::new(&url).unwrap();
    let handset = ClientId::parse("handset").unwrap();
    let mut clients = Vec::new();
    for i in 0..USERS {
        let (client, _) = base
            .log_on(&id(&format!("sip:h{i}@police.example")), "pw", &handset)
            .await
            .expect("log-on through HAProxy");
        clients.push(client);
    }
    let (chief, _) = base
        .log_on(&id("sip:chief@police.example"), "pw", &handset)
        .await
        .unwrap();
    let ops = McServiceGroupId::parse(OPS).unwrap();
    chief.subscribe(&ops).await.unwrap();

    // The load: each client changes its affiliations as fast as it is answered.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let known: Arc<Vec<Mutex<Known>>> = Arc::new((0..USERS).map(|_| Mutex::default()).collect());
    let mut workers = Vec::new();
    for (i, client) in clients.iter().cloned().enumerate() {
        let (stop, answers, known) = (stop.clone(), answers.clone(), known.clone());
        workers.push(tokio::spawn(async move {
            let mut step = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let group = GROUPS[(step / 2 + i) % 2];
                let gid = McServiceGroupId::parse(group).unwrap();
                known[i].lock().unwrap().insert(group.to_string(), None);
                let answer = if step.is_multiple_of(2) {
                    client
                        .affiliate(McService::Mcptt, &[gid])
                        .await
                        .map(|r| r.status_per_mc_service_group_id)
                } else {
                    client
                        .deaffiliate(McService::Mcptt, &[gid])
                        .await
                        .map(|r| r.status_per_mc_service_group_id)
                };
                step += 1;
                let Ok(statuses) = answer else {
                    // No answer (the node died with it): unknown until the next answer.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let mut state = known[i].lock().unwrap();
                for status in statuses {
                    state.insert(
                        status.mc_service_group_id.to_string(),
                        Some(status.status == AffiliationStatus::Affiliated),
                    );
                }
                answers.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let answered = |n: usize| {
        let answers = answers.clone();
        async move {
            let started = std::time::Instant::now();
            while answers.load(Ordering::Relaxed) < n {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the load stalled at {} answers",
                    answers.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // The dispatcher changes the group before and after the kill; a member's stream
    // follows the changes, through HAProxy.
    let follower = clients[0].clone();
    follower.subscribe(&ops).await.unwrap();
    let names: Vec<String> = (1..=6).map(|v| format!("Ops v{v}")).collect();
    let change = |n: usize| rename_group(&chief, &ops, &names[n]);
    // The stream is opened at the node that will be killed, to be resumed through HAProxy.
    let mut stream = Client::new(&format!("http://127.0.0.1:{port_a}"))
        .unwrap()
        .with_token(follower.token().unwrap().to_string())
        .events(None)
        .await
        .unwrap();
    let mut resumed = 0;
    answered(5 * USERS).await;
    for n in 0..3 {
        change(n).await;
    }
    answered(10 * USERS).await;
    node_a.kill().expect("SIGKILL");
    let _ = node_a.wait();
    let after_kill = answers.load(Ordering::Relaxed);
    for n in 3..6 {
        change(n).await;
    }
    answered(after_kill + 5 * USERS).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    // The stream: each change once, in order, resumed after the break if it broke.
    let mut seen_ids = Vec::new();
    let mut seen_names = Vec::new();
    let mut last = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen_names.len() < names.len() && std::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(Some(Ok(delivered))) => {
                last = Some(delivered.id);
                seen_ids.push(delivered.id);
                if let ClientEvent::GroupConfigurationChanged { group, .. } = delivered.event {
                    seen_names.push(group.configuration.display_name);
                }
            }
            // Its node died (or the stream idled): resume where it stood, through HAProxy.
            _ => match follower.events(last).await {
                Ok(again) => {
                    stream = again;
                    resumed += 1;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            },
        }
    }
    let mut unique = seen_ids.clone();
    unique.dedup();
    assert_eq!(unique, seen_ids, "no event twice");
    assert_eq!(seen_names, names, "every change, in order");
    assert!(
        resumed >= 1,
        "the stream at the killed node was resumed at the other"
    );

    // Every acknowledged state is stored, and N2 held.
    for (i, client) in clients.iter().enumerate() {
        let held: BTreeMap<String, bool> = client
            .affiliations()
            .await
            .expect("the session is valid at the surviving node")
            .affiliations
            .into_iter()
            .map(|a| {
                (
                    a.mc_service_group_id.to_string(),
                    a.status == AffiliationStatus::Affiliated,
                )
            })
            .collect();
        assert!(
            held.values().filter(|h| **h).count() <= 1,
            "h{i}: N2 = 1 held: {held:?}"
        );
        for (group, expected) in known[i].lock().unwrap().iter() {
            let Some(expected) = expected else { continue };
            let actual = held.get(group).copied().unwrap_or(false);
            assert_eq!(
                actual, *expected,
                "h{i} {group}: acknowledged {expected}, found {actual}"
            );
        }
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = node_b.kill();
    let _ = node_b.wait();
}
