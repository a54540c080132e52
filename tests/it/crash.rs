//! Durability under load (issue 16): the real `mcx serve` on embedded SQLite is killed
//! with SIGKILL while 40 clients affiliate and de-affiliate as fast as it answers (once
//! it has answered 400 of them); after a restart on the same data, every acknowledged
//! (de-)affiliation is there, and nothing else: a group whose request was still
//! unanswered at the kill may be either way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcx_client::Client;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::{ClientId, McService, McServiceGroupId};

use crate::support::*;

const USERS: usize = 40;
const GROUPS: [&str; 2] = [OPS, PATROL];

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let users: Vec<String> = (0..USERS)
        .map(|i| format!("sip:u{i}@police.example"))
        .collect();
    let mut toml = PoliceToml::new(&format!(
        "listen = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"",
        dir.join("data").display()
    ));
    for user in &users {
        toml = toml.user(user, &[], &GROUPS, 2);
    }
    for group in GROUPS {
        toml = toml.group(group, "g", &users);
    }
    toml.write(dir.join("mcx.toml"))
}

/// What one client knows of its groups: the last acknowledged state of each, and the
/// group of a request that got no answer (its outcome unknown).
#[derive(Default, Clone)]
struct Known {
    answers: usize,
    acknowledged: BTreeMap<String, bool>,
    unanswered: Option<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_affiliation_survives_a_kill_during_peak_load() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::federation::free_ports(1);
    let url = format!("http://127.0.0.1:{port}");
    let config = config(dir.path(), port);
    let mut server = spawn_serve(&config);
    answering(&url).await;

    let base = Client::new(&url).unwrap();
    let mut clients = Vec::new();
    for i in 0..USERS {
        let (client, _) = base
            .log_on(
                &id(&format!("sip:u{i}@police.example")),
                "pw",
                &ClientId::parse("phone").unwrap(),
            )
            .await
            .expect("log-on");
        clients.push(client);
    }
    let known: Arc<Vec<Mutex<Known>>> =
        Arc::new((0..USERS).map(|_| Mutex::new(Known::default())).collect());
    let mut workers = Vec::new();
    for (i, client) in clients.iter().cloned().enumerate() {
        let known = known.clone();
        workers.push(tokio::spawn(async move {
            for step in 0u64.. {
                let group = GROUPS[(step as usize / 2 + i) % 2];
                let affiliate = step % 2 == 0
                    || !known[i]
                        .lock()
                        .unwrap()
                        .acknowledged
                        .get(group)
                        .copied()
                        .unwrap_or(false);
                known[i].lock().unwrap().unanswered = Some(group.to_string());
                let gid = McServiceGroupId::parse(group).unwrap();
                let answer = if affiliate {
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
                let Ok(statuses) = answer else {
                    return; // the server is gone: this request's outcome is unknown
                };
                let mut state = known[i].lock().unwrap();
                for status in statuses {
                    let held = status.status == AffiliationStatus::Affiliated;
                    state
                        .acknowledged
                        .insert(status.mc_service_group_id.to_string(), held);
                }
                state.unanswered = None;
                state.answers += 1;
            }
        }));
    }
    // The kill comes in the middle of the load, once it has answered 10 requests per
    // client (however fast this machine is today).
    let wanted = 10 * USERS;
    let started = std::time::Instant::now();
    loop {
        let answers: usize = known.iter().map(|k| k.lock().unwrap().answers).sum();
        if answers >= wanted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {answers} answers in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().expect("SIGKILL");
    let _ = server.wait();
    for worker in workers {
        let _ = worker.await;
    }
    // The loop above saw `wanted` answers before the kill: the load did run.

    let mut restarted = spawn_serve(&config);
    answering(&url).await;
    for (i, client) in clients.iter().enumerate() {
        let held: BTreeMap<String, bool> = client
            .affiliations()
            .await
            .expect("the session survived the restart")
            .affiliations
            .into_iter()
            .filter(|a| a.mc_service == McService::Mcptt)
            .map(|a| {
                (
                    a.mc_service_group_id.to_string(),
                    a.status == AffiliationStatus::Affiliated,
                )
            })
            .collect();
        let known = known[i].lock().unwrap().clone();
        for group in GROUPS {
            if known.unanswered.as_deref() == Some(group) {
                continue; // either way
            }
            let expected = known.acknowledged.get(group).copied().unwrap_or(false);
            let actual = held.get(group).copied().unwrap_or(false);
            assert_eq!(
                actual, expected,
                "u{i} {group}: acknowledged {expected}, found {actual} after the kill"
            );
        }
    }
    let _ = restarted.kill();
    let _ = restarted.wait();
}
