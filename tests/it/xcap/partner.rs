//! A partner system serves its copy of a partner-homed group at its own XCAP root.

use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::LocalGroupPolicy;
use mcx_model::{McService, NonEmpty};

use crate::federation::*;
use crate::support::*;

const POLICE: &str = "police.example";
const FIRE: &str = "fire.example";
const ALICE: &str = "sip:alice@police.example";
const FRANK: &str = "sip:frank@fire.example";
const FIONA: &str = "sip:fiona@fire.example";
const JOINT: &str = "sip:joint@police.example";

#[tokio::test]
async fn a_partner_user_reads_the_partners_copy_with_local_policy_and_nobody_writes_it_there() {
    let mut federation = Federation::new(vec![
        (
            POLICE,
            vec![user(ALICE, true, &[])],
            vec![Relation::full(FIRE)],
        ),
        (
            FIRE,
            vec![user(FRANK, true, &[]), user(FIONA, false, &[JOINT])],
            vec![Relation {
                partner: POLICE,
                inbound: all_capabilities(),
                outbound: all_capabilities(),
                policy: LocalGroupPolicy {
                    group_priority: None,
                    max_group_priority: Some(3),
                    permitted_locations: None,
                    drop_services: vec![McService::Mcvideo],
                },
            }],
        ),
    ]);
    federation.start_all().await;
    let alice = federation.log_on(ALICE, "console").await;
    let mut joint = GroupConfiguration::new(
        "Joint operations",
        [id(ALICE), id(FIONA)],
        NonEmpty::new(vec![McService::Mcptt, McService::Mcvideo]).unwrap(),
    );
    joint.on_network_group_priority = Some(7);
    alice.create_group(&gid(JOINT), &joint).await.unwrap();

    let fiona = federation.log_on(FIONA, "handset").await;
    let fire = federation.node(FIRE).base_url();
    let path = format!(
        "{fire}/xcap-root/org.openmobilealliance.groups/global/byGroupID/sip%3Ajoint%40police.example"
    );
    let xml = eventually("fire holds its copy of the joint group", || async {
        let response = reqwest::Client::new()
            .get(&path)
            .bearer_auth(fiona.token()?)
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())?;
        response.text().await.ok()
    })
    .await;
    let values = xmllint_check(
        &xml,
        &[
            "/*/*/@uri",
            "//*[local-name()='on-network-group-priority']",
            "count(//*[local-name()='supported-services']/*)",
        ],
    );
    // Fire's policy: priority capped at 3, MCVideo dropped.
    assert_eq!(values, [JOINT, "3", "1"]);

    // Fire's administrator cannot change police's group at fire.
    let frank = federation.log_on(FRANK, "console").await;
    let refused = reqwest::Client::new()
        .put(&path)
        .bearer_auth(frank.token().unwrap())
        .header("content-type", "application/vnd.oma.poc.groups+xml")
        .body(xml.replace("Joint operations", "Ours now"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let error = refused.text().await.unwrap();
    let why = xmllint_check(&error, &["/*/*[local-name()='constraint-failure']/@phrase"]);
    assert!(why[0].contains("defined in police.example"), "{error}");
}
