//! Group configuration for interconnection (TS 23.280 §10.2.7) between real systems over
//! mutual TLS: provision with local policy, request at log-on (NOTE 1/NOTE 2), subscribe
//! and notify (after a change and a rekey), durable delivery across outages and restarts,
//! withdrawal, and the refusals of the interconnection endpoint.

use std::time::Duration;

use mcx_client::IfMatch;
use mcx_model::api::{DeliveryState, PrimaryLinkState};
use mcx_model::events::ClientEvent;
use mcx_model::group::{GroupConfiguration, GroupMemberEntry, GroupOrigin, GroupRecord};
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::{McService, McServiceGroupId, NonEmpty, SystemDomain};

use crate::federation::*;
use crate::support::*;

const ALICE_P: &str = "sip:alice@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FIONA: &str = "sip:fiona@fire.example";
const AMY: &str = "sip:amy@ambulance.example";
const ANDY: &str = "sip:andy@ambulance.example";
const JOINT: &str = "sip:joint@police.example";

fn fire_policy() -> LocalGroupPolicy {
    LocalGroupPolicy {
        group_priority: None,
        max_group_priority: Some(3),
        permitted_locations: Some(vec!["harbour".into(), "station".into()]),
        drop_services: vec![McService::Mcvideo],
    }
}

fn without(capability: Capability) -> std::collections::BTreeSet<Capability> {
    all_capabilities()
        .into_iter()
        .filter(|c| *c != capability)
        .collect()
}

/// police homes the groups; fire applies a policy to them; police does not push
/// configuration to ambulance (ambulance asks for it when its users log on); fire does
/// not accept provisions from ambulance.
async fn federation() -> Federation {
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![
                user(ALICE_P, true, &[]),
                user("sip:bob@police.example", false, &[JOINT]),
            ],
            vec![
                Relation::full(FIRE),
                Relation {
                    partner: AMBULANCE,
                    inbound: all_capabilities(),
                    outbound: without(Capability::ProvideGroupConfiguration),
                    policy: LocalGroupPolicy::default(),
                },
            ],
        ),
        (
            FIRE,
            vec![user(FRANK, true, &[]), user(FIONA, false, &[JOINT])],
            vec![
                Relation {
                    partner: POLICE,
                    inbound: all_capabilities(),
                    outbound: all_capabilities(),
                    policy: fire_policy(),
                },
                Relation {
                    partner: AMBULANCE,
                    inbound: without(Capability::ProvideGroupConfiguration),
                    outbound: all_capabilities(),
                    policy: LocalGroupPolicy::default(),
                },
            ],
        ),
        (
            AMBULANCE,
            vec![user(AMY, true, &[]), user(ANDY, false, &[JOINT])],
            vec![Relation::full(POLICE), Relation::full(FIRE)],
        ),
    ]);
    federation.start_all().await;
    federation
}

fn joint_config() -> GroupConfiguration {
    GroupConfiguration {
        display_name: "Joint operations".into(),
        list: vec![
            GroupMemberEntry::new(id(ALICE_P)),
            GroupMemberEntry::new(id(FIONA)),
            GroupMemberEntry::new(id(ANDY)),
        ],
        on_network_disabled: false,
        on_network_group_priority: Some(7),
        supported_services: NonEmpty::new(vec![McService::Mcptt, McService::Mcvideo]).unwrap(),
        preconfigured_group_use_only: false,
        permitted_locations: vec!["harbour".into(), "airport".into()],
        on_network_regrouped: None,
        regrouped_into: None,
        xml_extensions: Default::default(),
    }
}

/// The group as a system's GMS stores it (read directly, as its MC service server would).
async fn stored(federation: &Federation, domain: &str, group: &str) -> Option<GroupRecord> {
    federation
        .node(domain)
        .system()
        .gms
        .group_for_server(&gid(group))
        .await
        .expect("reading the store")
}

async fn stored_at_primary_version(
    federation: &Federation,
    domain: &str,
    group: &str,
    version: u64,
) -> GroupRecord {
    eventually(
        &format!("{domain} stores {group} at primary version {version}"),
        || async {
            stored(federation, domain, group).await.filter(|g| {
                g.origin
                    == GroupOrigin::Partner {
                        primary_version: version,
                    }
            })
        },
    )
    .await
}

async fn link_state(
    federation: &Federation,
    admin: &str,
    group: &str,
) -> Option<(PrimaryLinkState, Option<String>)> {
    let client = federation.log_on(admin, "status").await;
    client
        .interconnection_status(&gid(group))
        .await
        .ok()
        .and_then(|s| s.primary)
        .map(|l| (l.state, l.detail))
}

#[tokio::test]
async fn three_systems_provide_request_subscribe_notify_and_rekey() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE_P, "console").await;
    let created = alice
        .create_group(&gid(JOINT), &joint_config())
        .await
        .unwrap();

    // §10.2.7.2: fire users became members, so police provides the configuration to fire,
    // which modifies it by its policy and stores it.
    let at_fire = stored_at_primary_version(&federation, FIRE, JOINT, 1).await;
    assert_eq!(
        at_fire.configuration.on_network_group_priority,
        Some(3),
        "priority capped"
    );
    assert_eq!(
        at_fire.configuration.supported_services.as_slice(),
        [McService::Mcptt]
    );
    assert_eq!(at_fire.configuration.permitted_locations, ["harbour"]);
    assert_eq!(at_fire.configuration.display_name, "Joint operations");
    assert_eq!(
        at_fire.key_material, created.key_material,
        "the key material travels with it"
    );
    // The partner's modifications never flow back.
    assert_eq!(
        alice.group(&gid(JOINT)).await.unwrap().configuration,
        joint_config()
    );

    // §10.2.7.4: holding it, fire subscribes; police records delivery and subscription.
    eventually(
        "police records fire as delivered and subscribed",
        || async {
            let status = alice.interconnection_status(&gid(JOINT)).await.ok()?;
            let fire = status
                .partners
                .iter()
                .find(|p| p.partner.as_str() == FIRE)?;
            (fire.state == DeliveryState::Delivered && fire.subscribed && fire.version == 1)
                .then_some(())
        },
    )
    .await;
    eventually("fire's link is subscribed", || async {
        matches!(
            link_state(&federation, FRANK, JOINT).await,
            Some((PrimaryLinkState::Subscribed, _))
        )
        .then_some(())
    })
    .await;
    assert!(
        stored(&federation, AMBULANCE, JOINT).await.is_none(),
        "police does not push to ambulance"
    );

    // §10.2.7.3: andy logs on at ambulance with the group in his profile; ambulance's MC
    // service server asks its GMS, which requests it from police.
    let andy = federation.log_on(ANDY, "handset").await;
    let at_ambulance = stored_at_primary_version(&federation, AMBULANCE, JOINT, 1).await;
    assert_eq!(
        at_ambulance.configuration,
        joint_config(),
        "no policy at ambulance"
    );
    eventually("ambulance subscribes after the request", || async {
        matches!(
            link_state(&federation, AMY, JOINT).await,
            Some((PrimaryLinkState::Subscribed, _))
        )
        .then_some(())
    })
    .await;

    // Partner users are served by their own GMS.
    let fiona = federation.log_on(FIONA, "handset").await;
    assert_eq!(
        fiona.group(&gid(JOINT)).await.unwrap().configuration,
        at_fire.configuration
    );
    assert_eq!(
        andy.group(&gid(JOINT)).await.unwrap().configuration,
        joint_config()
    );
    fiona.subscribe(&gid(JOINT)).await.unwrap();
    let mut fiona_events = fiona.events(None).await.unwrap();

    // §10.2.7.5: a change at police reaches both partners, policy applied at fire.
    let mut changed = joint_config();
    changed.display_name = "Joint operations (storm)".into();
    changed.on_network_group_priority = Some(9);
    alice
        .update_group(&gid(JOINT), &changed, IfMatch::Version(1))
        .await
        .unwrap();
    match next_event(&mut fiona_events).await.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => {
            assert_eq!(group.configuration.display_name, "Joint operations (storm)");
            assert_eq!(group.configuration.on_network_group_priority, Some(3));
            assert_eq!(group.origin, GroupOrigin::Partner { primary_version: 2 });
        }
        other => panic!("unexpected {other:?}"),
    }
    let at_ambulance = stored_at_primary_version(&federation, AMBULANCE, JOINT, 2).await;
    assert_eq!(
        at_ambulance.configuration.on_network_group_priority,
        Some(9)
    );

    // A rekey is notified with the new key material.
    let rekeyed = alice.rekey_group(&gid(JOINT)).await.unwrap();
    let new_key = rekeyed.key_material.clone().unwrap();
    assert_eq!(new_key.generation, 2);
    for domain in [FIRE, AMBULANCE] {
        let copy = stored_at_primary_version(&federation, domain, JOINT, 3).await;
        assert_eq!(
            copy.key_material.as_ref(),
            Some(&new_key),
            "{domain} has the new key"
        );
    }
    match next_event(&mut fiona_events).await.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => {
            assert_eq!(group.key_material.unwrap().generation, 2)
        }
        other => panic!("unexpected {other:?}"),
    }

    eventually("police records both partners at version 3", || async {
        let status = alice.interconnection_status(&gid(JOINT)).await.ok()?;
        let ok = status.partners.len() == 2
            && status
                .partners
                .iter()
                .all(|p| p.state == DeliveryState::Delivered && p.version == 3 && p.subscribed);
        ok.then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_primary_answers_with_configuration_or_a_reason_never_both() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE_P, "console").await;
    let mut secret = joint_config();
    secret.list = vec![GroupMemberEntry::new(id(ALICE_P))];
    alice
        .create_group(&gid("sip:secret@police.example"), &secret)
        .await
        .unwrap();
    let amy = federation.log_on(AMY, "console").await;

    // NOTE 2: an unknown group, and a group with no ambulance member: a reason, no configuration.
    for (group, cause) in [
        ("sip:nothing@police.example", "unknown-group"),
        ("sip:secret@police.example", "not-authorized"),
    ] {
        amy.fetch_group(&gid(group)).await.unwrap();
        let detail = eventually(
            &format!("ambulance learns why {group} is refused"),
            || async {
                match link_state(&federation, AMY, group).await {
                    Some((PrimaryLinkState::Failed, detail)) => detail,
                    _ => None,
                }
            },
        )
        .await;
        assert!(detail.starts_with(cause), "{group}: {detail}");
        assert!(
            stored(&federation, AMBULANCE, group).await.is_none(),
            "nothing stored for {group}"
        );
    }

    // NOTE 1: once andy (ambulance) is a member, ambulance's request is answered with the
    // configuration itself.
    let mut with_andy = secret.clone();
    with_andy.list.push(GroupMemberEntry::new(id(ANDY)));
    alice
        .update_group(
            &gid("sip:secret@police.example"),
            &with_andy,
            IfMatch::Version(1),
        )
        .await
        .unwrap();
    amy.fetch_group(&gid("sip:secret@police.example"))
        .await
        .unwrap();
    stored_at_primary_version(&federation, AMBULANCE, "sip:secret@police.example", 2).await;

    // Police is not allowed to push configuration to ambulance.
    let err = alice
        .share_group(&gid(JOINT), &SystemDomain::parse(AMBULANCE).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("group-not-found"), "{err}");
    alice
        .create_group(&gid(JOINT), &joint_config())
        .await
        .unwrap();
    let err = alice
        .share_group(&gid(JOINT), &SystemDomain::parse(AMBULANCE).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("partner-not-authorized")),
        "{err}"
    );
}

#[tokio::test]
async fn an_administrator_shares_a_group_with_a_partner() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE_P, "console").await;
    let liaison = gid("sip:liaison@police.example");
    let mut config = joint_config();
    config.list = vec![GroupMemberEntry::new(id(ALICE_P))];
    alice.create_group(&liaison, &config).await.unwrap();
    assert!(
        stored(&federation, FIRE, liaison.as_str()).await.is_none(),
        "no fire member: not provided"
    );

    let status = alice
        .share_group(&liaison, &SystemDomain::parse(FIRE).unwrap())
        .await
        .unwrap();
    assert_eq!(status.partners.len(), 1);
    stored_at_primary_version(&federation, FIRE, liaison.as_str(), 1).await;

    let err = alice
        .share_group(&liaison, &SystemDomain::parse("water.example").unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("not-a-partner"))
    );
    let bob = federation.log_on("sip:bob@police.example", "handset").await;
    let err = bob
        .share_group(&liaison, &SystemDomain::parse(FIRE).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));

    // A partner copy cannot be changed at the partner.
    let frank = federation.log_on(FRANK, "console").await;
    let copy = frank.group(&liaison).await.unwrap();
    let err = frank
        .update_group(
            &liaison,
            &copy.configuration,
            IfMatch::Version(copy.version),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("group-not-homed-here"))
    );
}

#[tokio::test]
async fn a_partner_down_during_two_changes_receives_both_in_order() {
    let mut federation = federation().await;
    let alice = federation.log_on(ALICE_P, "console").await;
    alice
        .create_group(&gid(JOINT), &joint_config())
        .await
        .unwrap();
    stored_at_primary_version(&federation, FIRE, JOINT, 1).await;
    eventually("fire subscribed", || async {
        matches!(
            link_state(&federation, FRANK, JOINT).await,
            Some((PrimaryLinkState::Subscribed, _))
        )
        .then_some(())
    })
    .await;
    let fiona = federation.log_on(FIONA, "handset").await;
    fiona.subscribe(&gid(JOINT)).await.unwrap();
    let fiona_token = fiona.token().unwrap().to_string();

    federation.stop(FIRE).await;
    for (version, name) in [(1, "Joint ops v2"), (2, "Joint ops v3")] {
        let mut config = joint_config();
        config.display_name = name.into();
        alice
            .update_group(&gid(JOINT), &config, IfMatch::Version(version))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = alice.interconnection_status(&gid(JOINT)).await.unwrap();
    let fire = status
        .partners
        .iter()
        .find(|p| p.partner.as_str() == FIRE)
        .unwrap();
    assert_eq!(
        (fire.state, fire.version),
        (DeliveryState::Pending, 3),
        "delivery waits for fire"
    );

    federation.start(FIRE).await;
    stored_at_primary_version(&federation, FIRE, JOINT, 3).await;
    let fiona = mcx_client::Client::new(&federation.node(FIRE).base_url())
        .unwrap()
        .with_token(fiona_token);
    let mut events = fiona.events(None).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        match next_event(&mut events).await.event {
            ClientEvent::GroupConfigurationChanged { group, .. } => {
                names.push(group.configuration.display_name)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        names,
        ["Joint ops v2", "Joint ops v3"],
        "both changes, in order"
    );
    eventually("police records fire delivered at version 3", || async {
        let status = alice.interconnection_status(&gid(JOINT)).await.ok()?;
        let fire = status
            .partners
            .into_iter()
            .find(|p| p.partner.as_str() == FIRE)?;
        (fire.state == DeliveryState::Delivered && fire.version == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_restart_of_the_primary_between_change_and_delivery_loses_nothing() {
    let mut federation = federation().await;
    let alice = federation.log_on(ALICE_P, "console").await;
    alice
        .create_group(&gid(JOINT), &joint_config())
        .await
        .unwrap();
    stored_at_primary_version(&federation, FIRE, JOINT, 1).await;
    eventually("fire subscribed", || async {
        matches!(
            link_state(&federation, FRANK, JOINT).await,
            Some((PrimaryLinkState::Subscribed, _))
        )
        .then_some(())
    })
    .await;

    federation.stop(FIRE).await;
    let mut config = joint_config();
    config.display_name = "Changed before the restart".into();
    alice
        .update_group(&gid(JOINT), &config, IfMatch::Version(1))
        .await
        .unwrap();
    federation.stop(POLICE).await;
    federation.start(POLICE).await;
    federation.start(FIRE).await;

    let copy = stored_at_primary_version(&federation, FIRE, JOINT, 2).await;
    assert_eq!(
        copy.configuration.display_name,
        "Changed before the restart"
    );
}

#[tokio::test]
async fn deleting_a_group_at_its_primary_withdraws_it_from_partners() {
    let federation = federation().await;
    let alice = federation.log_on(ALICE_P, "console").await;
    alice
        .create_group(&gid(JOINT), &joint_config())
        .await
        .unwrap();
    stored_at_primary_version(&federation, FIRE, JOINT, 1).await;
    let fiona = federation.log_on(FIONA, "handset").await;
    fiona.subscribe(&gid(JOINT)).await.unwrap();
    let mut events = fiona.events(None).await.unwrap();

    alice.delete_group(&gid(JOINT), None).await.unwrap();
    assert_eq!(
        next_event(&mut events).await.event,
        ClientEvent::GroupDeleted {
            mc_service_group_id: gid(JOINT)
        }
    );
    assert!(stored(&federation, FIRE, JOINT).await.is_none());
    assert_eq!(
        fiona.group(&gid(JOINT)).await.unwrap_err().code(),
        Some("group-not-found")
    );
}

fn provision_body(group: &str, version: u64, name: &str) -> String {
    serde_json::json!({
        "mc-service-group-id": group,
        "mc-service-group-configuration-information": {
            "configuration": {"display-name": name, "supported-services": ["mcptt"], "list": [{"uri": FIONA}]},
            "version": version,
        }
    })
    .to_string()
}

#[tokio::test]
async fn the_interconnection_endpoint_refuses_whoever_is_not_the_partner_it_claims() {
    let federation = federation().await;
    let pki = federation.pki_dir();
    let fire_addr = federation.node(FIRE).interconnection_addr().unwrap();
    let url = format!(
        "https://{FIRE}:{}/interconnection/v1/group-information-provision",
        fire_addr.port()
    );
    let frank = federation.log_on(FRANK, "console").await;
    let before = frank.groups().await.unwrap();
    let body = provision_body("sip:x@police.example", 1, "X");

    let send = |client: reqwest::Client, origin: &'static str, body: String| {
        let url = url.clone();
        async move {
            client
                .post(url)
                .header("mcx-origin", origin)
                .header("mcx-transaction-id", uuid_string())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        }
    };
    let problem = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let problem: serde_json::Value = response.json().await.unwrap();
        (
            status,
            problem["code"].as_str().unwrap_or_default().to_string(),
            problem["detail"].as_str().unwrap_or_default().to_string(),
        )
    };

    // No client certificate.
    let anonymous = raw_partner_client(&pki, None, FIRE, fire_addr);
    let (status, code, _) = problem(send(anonymous, POLICE, body.clone()).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (401, "client-certificate-required")
    );

    // Ambulance's certificate, claiming to be police.
    let (cert, key) = federation.identity_files(AMBULANCE);
    let ambulance = raw_partner_client(&pki, Some((&cert, &key)), FIRE, fire_addr);
    let (status, code, detail) =
        problem(send(ambulance.clone(), POLICE, body.clone()).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "certificate-mismatch"));
    assert!(
        detail.contains("police.example") && detail.contains("another system"),
        "{detail}"
    );

    // Ambulance as itself, but fire does not accept provisions from ambulance.
    let (status, code, _) = problem(
        send(
            ambulance.clone(),
            AMBULANCE,
            provision_body("sip:y@ambulance.example", 1, "Y"),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "partner-not-authorized"));
    // Its chain was verified as ambulance's on this connection: a claim to be police on
    // the same connection is still checked, and refused.
    let (status, code, _) =
        problem(send(ambulance.clone(), POLICE, body.clone()).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "certificate-mismatch"));

    // A certificate from an authority fire does not trust: refused in the TLS handshake.
    let rogue = tempfile::tempdir().unwrap();
    mcx_server::pki::init(rogue.path(), "rogue CA").unwrap();
    let files =
        mcx_server::pki::issue(rogue.path(), &SystemDomain::parse(POLICE).unwrap()).unwrap();
    let impostor = raw_partner_client(
        &pki,
        Some((&files.certificate, &files.private_key)),
        FIRE,
        fire_addr,
    );
    assert!(
        send(impostor, POLICE, body.clone()).await.is_err(),
        "a rogue certificate fails the handshake"
    );
    // Fire's operator sees who it was where they look: the interconnection status of a
    // group shared with police names the refused certificate's subject and issuer.
    let drill = McServiceGroupId::parse("sip:drill@fire.example").unwrap();
    frank
        .create_group(
            &drill,
            &GroupConfiguration::new("Drill", [], NonEmpty::one(McService::Mcptt)),
        )
        .await
        .unwrap();
    let _ = frank
        .share_group(&drill, &SystemDomain::parse(POLICE).unwrap())
        .await;
    let status = frank.interconnection_status(&drill).await.unwrap();
    let refusal = status
        .certificate_refusals
        .iter()
        .find(|r| r.names.iter().any(|n| n == POLICE))
        .unwrap_or_else(|| panic!("the refusal is shown: {status:?}"));
    assert!(refusal.issuer.contains("rogue CA"), "{refusal:?}");
    assert!(refusal.subject.contains(POLICE), "{refusal:?}");
    assert!(refusal.reason.contains("does not trust"), "{refusal:?}");
    assert_eq!(refusal.peer_address, "127.0.0.1");
    let before_drill = frank.groups().await.unwrap();

    // Police as itself, but missing its transaction ID, or for an unknown flow.
    let (cert, key) = federation.identity_files(POLICE);
    let police = raw_partner_client(&pki, Some((&cert, &key)), FIRE, fire_addr);
    let response = police
        .post(&url)
        .header("mcx-origin", POLICE)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response).await.1, "missing-transaction-id");
    let response = police
        .post(url.replace("group-information-provision", "launch-missiles"))
        .header("mcx-origin", POLICE)
        .header("mcx-transaction-id", uuid_string())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response).await.1, "unknown-flow");

    // Police providing a group that is not homed in police: answered with a failure result.
    let response = send(
        police,
        POLICE,
        provision_body("sip:z@ambulance.example", 1, "Z"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["outcome"], "failure");
    assert_eq!(answer["result"]["cause"], "not-authorized");

    assert_eq!(
        frank.groups().await.unwrap(),
        before_drill,
        "nothing was stored"
    );
    assert_eq!(before_drill.len(), before.len() + 1, "only the drill group");
}

fn uuid_string() -> String {
    mcx_model::TransactionId::new().to_string()
}

#[tokio::test]
async fn duplicates_are_acknowledged_without_effect_and_stale_versions_ignored() {
    let federation = federation().await;
    let pki = federation.pki_dir();
    let fire_addr = federation.node(FIRE).interconnection_addr().unwrap();
    let (cert, key) = federation.identity_files(POLICE);
    let police = raw_partner_client(&pki, Some((&cert, &key)), FIRE, fire_addr);
    let url = format!(
        "https://{FIRE}:{}/interconnection/v1/group-information-provision",
        fire_addr.port()
    );
    let group = "sip:dup@police.example";
    let post = |txn: String, body: String| {
        let (police, url) = (police.clone(), url.clone());
        async move {
            let response = police
                .post(url)
                .header("mcx-origin", POLICE)
                .header("mcx-transaction-id", txn)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };

    let txn = uuid_string();
    let first = post(txn.clone(), provision_body(group, 5, "Five")).await;
    assert_eq!(first["result"]["outcome"], "success");
    let again = post(txn.clone(), provision_body(group, 5, "Five")).await;
    assert_eq!(again, first, "a retransmission gets the same answer");
    let duplicate = post(uuid_string(), provision_body(group, 5, "Five, resent")).await;
    assert_eq!(
        duplicate["result"]["outcome"], "success",
        "a duplicate version is acknowledged"
    );
    let stale = post(uuid_string(), provision_body(group, 4, "Four")).await;
    assert_eq!(stale["result"]["cause"], "stale-version");

    let copy = stored(&federation, FIRE, group).await.unwrap();
    assert_eq!(copy.version, 1, "stored once");
    assert_eq!(copy.configuration.display_name, "Five");
    assert_eq!(copy.origin, GroupOrigin::Partner { primary_version: 5 });

    // A newer version lands; a late retransmission of the first exchange still gets the
    // first answer (handling it again would now say "stale"), and changes nothing.
    let six = post(uuid_string(), provision_body(group, 6, "Six")).await;
    assert_eq!(six["result"]["outcome"], "success");
    let late = post(txn, provision_body(group, 5, "Five")).await;
    assert_eq!(late, first, "the transaction is answered from the record");
    let copy = stored(&federation, FIRE, group).await.unwrap();
    assert_eq!(
        (copy.version, copy.configuration.display_name.as_str()),
        (2, "Six")
    );
}

#[tokio::test]
async fn the_primary_answers_a_subscribe_before_its_first_notify() {
    // §10.2.7.4 step 2, then §10.2.7.5: the subscribe response precedes the notify.
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![user("sip:alice@police.example", true, &[])],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![user(
                "sip:fiona@fire.example",
                false,
                &["sip:pair@police.example"],
            )],
            vec![Relation::full(POLICE)],
        ),
    ]);
    federation.start_all().await;
    let alice = federation
        .log_on("sip:alice@police.example", "console")
        .await;
    let pair = mcx_model::group::GroupConfiguration::new(
        "Pair",
        [id("sip:alice@police.example"), id("sip:fiona@fire.example")],
        mcx_model::NonEmpty::one(mcx_model::McService::Mcptt),
    );
    alice
        .create_group(&gid("sip:pair@police.example"), &pair)
        .await
        .unwrap();
    let (response, notify) = eventually("police answered the subscribe and notified", || async {
        let trace = alice.trace(0, 10_000).await.ok()?;
        let sent = |flow: &str| {
            trace
                .entries
                .iter()
                .find(|e| {
                    e.flow == flow
                        && e.direction == mcx_model::api::TraceDirection::Sent
                        && e.elements.to_string().contains("sip:pair@police.example")
                })
                .map(|e| e.seq)
        };
        Some((
            sent("Group information subscribe response")?,
            sent("Group information notify request")?,
        ))
    })
    .await;
    assert!(
        response < notify,
        "the notify (#{notify}) went before the subscribe response (#{response})"
    );
}
