//! Several nodes of one MC system on one PostgreSQL (issue 17): what one node commits
//! wakes the event streams another node serves; each message to a partner is sent by one
//! node; one user's requests spread over nodes keep N2. Needs PostgreSQL: `.ci/run`'s second
//! pass (`.ci/with-postgres`) runs it; on the embedded SQLite a system is one node.

use futures_util::StreamExt as _;
use mcx_client::{Client, IfMatch};
use mcx_model::api::TraceDirection;
use mcx_model::events::ClientEvent;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::group::GroupConfiguration;
use mcx_model::profile::Permission;
use mcx_model::{McService, NonEmpty};

use crate::federation::*;
use crate::support::*;

/// Whether PostgreSQL is there (else the test says why it has nothing to do).
fn needs_postgres() -> bool {
    let there = std::env::var_os("MCX_TEST_POSTGRES").is_some();
    if !there {
        eprintln!("nodes: several nodes need PostgreSQL; run under .ci/with-postgres");
    }
    there
}

/// Another node of a running member of the federation: its configuration, database and
/// storage key, its own ports and data directory.
async fn second_node(federation: &Federation, domain: &str) -> mcx_server::RunningNode {
    let first = &federation.members[domain].config;
    let mut config = first.clone();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = federation.dir.path().join(format!("{domain}-node-b"));
    // The nodes of one system share its storage key (it seals group keys in the store).
    config.server.storage_key = Some(first.storage_key_path());
    if let Some(ic) = config.interconnection.as_mut() {
        ic.listen = format!("127.0.0.1:{}", free_ports(1)).parse().unwrap();
    }
    mcx_server::start(config)
        .await
        .expect("a second node starts")
}

/// Police and fire, with `count` police users (`sip:<prefix><i>@police.example`) who
/// are members of fire's harbour group and may affiliate to it (N2 4).
async fn police_users_of_fires_harbour(prefix: &str, count: usize) -> (Federation, Vec<String>) {
    let users: Vec<String> = (0..count)
        .map(|i| format!("sip:{prefix}{i}@police.example"))
        .collect();
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    let (federation, _) = police_and_fire_with_harbour(
        users
            .iter()
            .map(|u| profiled_user(u, &[(McService::Mcptt, &[HARBOUR_GROUP], 4)], &[]))
            .collect(),
        &members,
    )
    .await;
    (federation, users)
}

#[tokio::test]
async fn a_stream_on_one_node_hears_what_another_node_commits_and_ends_with_its_session() {
    if !needs_postgres() {
        return;
    }
    let a = TestSystem::example().await;
    let dir = tempfile::tempdir().unwrap();
    let b = second_node_of(&a, dir.path()).await;

    let alice = a.log_on_as(ALICE, "console").await;
    let bob_at_a = a.log_on_as(BOB, "handset").await;
    let ops = gid(OPS);
    bob_at_a.subscribe(&ops).await.unwrap();
    // Bob's session is valid on the other node; his stream is served there.
    let bob_at_b = Client::new(&b.base_url())
        .unwrap()
        .with_token(bob_at_a.token().unwrap().to_string());
    let mut events = bob_at_b.events(None).await.unwrap();

    let group = alice.group(&ops).await.unwrap();
    let mut config = group.configuration.clone();
    config.display_name = "Operations (night)".into();
    alice
        .update_group(&ops, &config, IfMatch::Version(group.version))
        .await
        .unwrap();
    // No node polls the store for a waiting stream: only the wake-up from node a's
    // commit can bring this.
    match next_event(&mut events).await.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => {
            assert_eq!(group.configuration.display_name, "Operations (night)")
        }
        other => panic!("unexpected {other:?}"),
    }

    // Node b caches the group's policy as it serves bob's affiliation; node a disables
    // the group; node b then refuses, because node a's commit dropped what b cached.
    let affiliated = |answer: mcx_model::flows::affiliation::GroupAffiliationResponse| {
        answer.status_per_mc_service_group_id[0].status
            == mcx_model::flows::affiliation::AffiliationStatus::Affiliated
    };
    let mcptt = mcx_model::McService::Mcptt;
    assert!(affiliated(
        bob_at_b
            .affiliate(mcptt, std::slice::from_ref(&ops))
            .await
            .unwrap()
    ));
    bob_at_b
        .deaffiliate(mcptt, std::slice::from_ref(&ops))
        .await
        .unwrap();
    let group = alice.group(&ops).await.unwrap();
    let mut config = group.configuration.clone();
    config.on_network_disabled = true;
    alice
        .update_group(&ops, &config, IfMatch::Version(group.version))
        .await
        .unwrap();
    next_event(&mut events).await; // the change, on bob's stream at b
    crate::federation::eventually("node b sees the group disabled at node a", || async {
        (!affiliated(
            bob_at_b
                .affiliate(mcptt, std::slice::from_ref(&ops))
                .await
                .ok()?,
        ))
        .then_some(())
    })
    .await;

    // Bob logs off at node a: his stream at node b ends.
    bob_at_a.log_off().await.unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await;
    assert!(
        matches!(ended, Ok(None)),
        "the stream at the other node ends with the session: {ended:?}"
    );
    b.shutdown().await.unwrap();
}

/// Two nodes of one system share its outbox: each message to a partner is sent by one
/// node (the one holding its lane's lease), never by both, even when the partner comes
/// back after both nodes have queued and retried requests to it.
#[tokio::test]
async fn each_message_to_a_partner_is_sent_by_one_node_of_the_system() {
    if !needs_postgres() {
        return;
    }
    const HARBOUR: &str = HARBOUR_GROUP;
    let mcptt = McService::Mcptt;
    let (mut federation, users) = police_users_of_fires_harbour("n", 16).await;

    let b = second_node(&federation, POLICE).await;

    // Half the users are served by each node.
    let mut clients = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let at_a = federation.log_on(user, "handset").await;
        clients.push(if i % 2 == 0 {
            at_a
        } else {
            Client::new(&b.base_url())
                .unwrap()
                .with_token(at_a.token().unwrap().to_string())
        });
    }
    // Fire is down while both nodes queue requests to it and retry them.
    federation.stop(FIRE).await;
    let requests: Vec<_> = clients
        .iter()
        .cloned()
        .map(|c| tokio::spawn(async move { c.affiliate(mcptt, &[gid(HARBOUR)]).await }))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    federation.start(FIRE).await;
    for request in requests {
        request.await.unwrap().expect("every request is answered");
    }
    let frank = federation.log_on(HARBOUR_ADMIN, "console").await;
    eventually("fire holds every police user", || async {
        let held = frank.group_affiliations(&gid(HARBOUR)).await.ok()?.members;
        (held.len() == users.len()).then_some(())
    })
    .await;

    // Every request fire received from police came once.
    let trace = frank.trace(0, 10_000).await.unwrap().entries;
    let mut received = std::collections::BTreeMap::<String, usize>::new();
    for entry in trace.iter().filter(|e| {
        e.direction == TraceDirection::Received && e.peer.starts_with(POLICE) && e.system == FIRE
    }) {
        *received.entry(entry.correlation.clone()).or_default() += 1;
    }
    assert!(
        received.len() >= users.len(),
        "fire heard each user: {received:?}"
    );
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent by both nodes: {twice:?}");
    b.shutdown().await.unwrap();
}

/// A user's affiliation to a partner group is answered at the node that took the
/// request, while the partner's answer arrives at whichever node holds the partner's
/// outbox lane: the request hears it all the same, so its first answer is final, and the
/// client is not told a second time by an event (issue 17: before, such requests waited
/// out their bound and answered `affiliating`).
#[tokio::test(flavor = "multi_thread")]
async fn an_affiliation_to_a_partner_group_is_answered_in_full_whichever_node_hears_the_partner() {
    if !needs_postgres() {
        return;
    }
    const HARBOUR: &str = HARBOUR_GROUP;
    let mcptt = McService::Mcptt;
    let (federation, users) = police_users_of_fires_harbour("w", 12).await;
    let b = second_node(&federation, POLICE).await;

    // Each user's session is used at both nodes; its stream is served by node a.
    let mut clients = Vec::new();
    for user in &users {
        let at_a = federation.log_on(user, "handset").await;
        let at_b = Client::new(&b.base_url())
            .unwrap()
            .with_token(at_a.token().unwrap().to_string());
        let events = at_a.events(None).await.unwrap();
        clients.push(([at_a, at_b], events));
    }
    // A user's requests to the partner share one ordering lane, delivered by the node
    // holding it: a de-affiliation still in flight from one node carries the next
    // affiliation, taken by the other node, with it. All users at once, each switching
    // nodes every round.
    let harbour = [gid(HARBOUR)];
    let rounds =
        futures_util::future::join_all(clients.iter().enumerate().map(|(i, (nodes, _))| {
            let harbour = &harbour;
            async move {
                for round in 0..6 {
                    let client = &nodes[round % 2];
                    let answer = client.affiliate(mcptt, harbour).await.unwrap();
                    assert_eq!(
                        answer.status_per_mc_service_group_id[0].status,
                        AffiliationStatus::Affiliated,
                        "user {i}, round {round} (node {}): {answer:?}",
                        ["a", "b"][round % 2]
                    );
                    client.deaffiliate(mcptt, harbour).await.unwrap();
                }
            }
        }));
    rounds.await;
    // Told once: no stream brings the outcome again.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    for (i, (_, events)) in clients.iter_mut().enumerate() {
        while let Ok(Some(Ok(delivered))) = tokio::time::timeout_at(until, events.next()).await {
            assert!(
                !matches!(
                    delivered.event,
                    ClientEvent::AffiliationStatusChanged { .. }
                ),
                "user {i} was told again by an event: {delivered:?}"
            );
        }
    }
    b.shutdown().await.unwrap();
}

/// One user's affiliation requests spread over two nodes at once: the per-user
/// generation guard (the user's row, locked by the first write of each change) keeps N2
/// across nodes; no answer and no stored state ever shows more than N2 groups.
#[tokio::test(flavor = "multi_thread")]
async fn n2_holds_when_one_users_requests_are_spread_over_two_nodes() {
    if !needs_postgres() {
        return;
    }
    const POLICE: &str = "police.example";
    const ADMIN: &str = "sip:chief@police.example";
    const USER: &str = "sip:dana@police.example";
    const N2: usize = 2;
    let mcptt = McService::Mcptt;
    let groups: Vec<String> = (0..6).map(|i| format!("sip:g{i}@police.example")).collect();
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut federation = Federation::new(vec![(
        POLICE,
        vec![
            profiled_user(ADMIN, &[(mcptt, &[], 4)], &Permission::ALL),
            profiled_user(USER, &[(mcptt, &group_refs, N2 as u32)], &[]),
        ],
        vec![],
    )]);
    federation.start_all().await;
    let admin = federation.log_on(ADMIN, "console").await;
    for group in &groups {
        let config = GroupConfiguration::new("G", [id(USER)], NonEmpty::one(mcptt));
        admin.create_group(&gid(group), &config).await.unwrap();
    }
    let b = second_node(&federation, POLICE).await;
    let at_a = federation.log_on(USER, "handset").await;
    let at_b = Client::new(&b.base_url())
        .unwrap()
        .with_token(at_a.token().unwrap().to_string());

    for round in 0..5 {
        let answers = futures_util::future::join_all(groups.iter().enumerate().map(|(i, g)| {
            let client = if i % 2 == 0 { &at_a } else { &at_b };
            async move { client.affiliate(mcptt, &[gid(g)]).await }
        }))
        .await;
        let granted = answers
            .into_iter()
            .map(|a| a.expect("answered").status_per_mc_service_group_id[0].status)
            .filter(|s| *s == AffiliationStatus::Affiliated)
            .count();
        let held = at_b
            .affiliations()
            .await
            .unwrap()
            .affiliations
            .into_iter()
            .filter(|a| a.status == AffiliationStatus::Affiliated)
            .count();
        assert!(
            granted <= N2,
            "round {round}: {granted} granted beyond N2 = {N2}"
        );
        assert_eq!(
            held, granted,
            "round {round}: what is stored is what was answered"
        );
        let all: Vec<_> = groups.iter().map(|g| gid(g)).collect();
        at_a.deaffiliate(mcptt, &all).await.unwrap();
    }
    b.shutdown().await.unwrap();
}

/// A stream dropped at one node and resumed at another with `Last-Event-ID` gets exactly
/// what it missed, in order, once (issue 17 item 1).
#[tokio::test]
async fn a_stream_resumed_at_another_node_gets_exactly_what_it_missed() {
    if !needs_postgres() {
        return;
    }
    let a = TestSystem::example().await;
    let dir = tempfile::tempdir().unwrap();
    let b = second_node_of(&a, dir.path()).await;
    let alice = a.log_on_as(ALICE, "console").await;
    let bob_at_a = a.log_on_as(BOB, "handset").await;
    let bob_at_b = Client::new(&b.base_url())
        .unwrap()
        .with_token(bob_at_a.token().unwrap().to_string());
    let ops = gid(OPS);
    let mut config = bob_at_a.subscribe(&ops).await.unwrap().group.configuration;

    let mut events = bob_at_a.events(None).await.unwrap();
    config.display_name = "Ops v2".into();
    alice
        .update_group(&ops, &config, IfMatch::Version(1))
        .await
        .unwrap();
    let seen = next_event(&mut events).await;
    drop(events); // node a's connection is gone (the node, or the path to it)

    for (version, name) in [(2, "Ops v3"), (3, "Ops v4")] {
        config.display_name = name.into();
        alice
            .update_group(&ops, &config, IfMatch::Version(version))
            .await
            .unwrap();
    }
    let mut events = bob_at_b.events(Some(seen.id)).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        match next_event(&mut events).await.event {
            ClientEvent::GroupConfigurationChanged { group, .. } => {
                names.push(group.configuration.display_name)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["Ops v3", "Ops v4"], "what was missed, in order");
    no_event(&mut events, std::time::Duration::from_millis(300)).await;
    b.shutdown().await.unwrap();
}

/// Timed work is a duty one node does for the system: the negotiated change deadline
/// of a change made at either node is kept once, by the node holding the `deadlines`
/// duty; when that node stops, it gives the duty up and the other node keeps the next
/// deadline.
#[tokio::test]
async fn deadlines_are_kept_by_one_node_and_pass_to_another_when_it_stops() {
    use mcx_model::flows::affiliation::{
        AffiliationChangeAction, ChangeRequestType, GroupAffiliationChange,
        GroupAffiliationChangeRequest,
    };
    use sqlx::Connection as _;
    if !needs_postgres() {
        return;
    }
    let mut config = mcx_server::config::Config::example();
    config.server.remote_change_timeout_seconds = 1;
    let mut a = TestSystem::start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let b = second_node_of(&a, dir.path()).await;
    let at_b = |client: &Client| {
        Client::new(&b.base_url())
            .unwrap()
            .with_token(client.token().unwrap().to_string())
    };
    let alice = at_b(&a.log_on_as(ALICE, "console").await);
    let _bob = a.log_on_as(BOB, "handset").await;
    let mut events = alice.events(None).await.unwrap();
    let ask = || {
        let alice = alice.clone();
        async move {
            alice
                .request_change(&GroupAffiliationChangeRequest {
                    mc_service_id: id(ALICE),
                    mc_service_id_list: NonEmpty::one(id(BOB)),
                    mc_service_group_id_list: NonEmpty::one(GroupAffiliationChange {
                        mc_service_group_id: gid(OPS),
                        action: AffiliationChangeAction::Affiliate,
                    }),
                    change_request_type: ChangeRequestType::Negotiated,
                    mc_service: McService::Mcptt,
                    generation: None,
                })
                .await
                .unwrap()
                .change_id
        }
    };
    let first = ask().await;
    assert_eq!(completed(&mut events).await, [first], "given up once");

    // One node holds the duty.
    let url = a.config.server.storage_url.clone().unwrap();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let holders: Vec<(String,)> =
        sqlx::query_as("SELECT holder FROM duty_leases WHERE duty = 'deadlines'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(holders.len(), 1, "one holder of the deadlines: {holders:?}");

    // The first node stops: the second keeps the next deadline.
    a.node.take().unwrap().shutdown().await.unwrap();
    let second = ask().await;
    assert_eq!(
        completed(&mut events).await,
        [second],
        "given up once, by the node left"
    );
    b.shutdown().await.unwrap();
}

/// The changes completed on `events` in the next four seconds (each deadline is one
/// second; what would be done twice would follow within that).
async fn completed(events: &mut mcx_client::EventStream) -> Vec<String> {
    let mut done = Vec::new();
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(4);
    while let Ok(Some(Ok(delivered))) = tokio::time::timeout_at(until, events.next()).await {
        if let ClientEvent::AffiliationChangeCompleted { change_id, .. } = delivered.event {
            done.push(change_id);
        }
    }
    done
}
