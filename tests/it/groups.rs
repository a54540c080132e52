//! Group management: CRUD by group administrators, versions and ETags, who may see what.

use mcx_client::IfMatch;
use mcx_model::group::{GroupConfiguration, GroupMemberEntry, GroupOrigin};
use mcx_model::{McService, NonEmpty};

use crate::support::*;

fn liaison() -> GroupConfiguration {
    GroupConfiguration {
        display_name: "Fire liaison".into(),
        list: vec![
            GroupMemberEntry::new(id(ALICE)),
            GroupMemberEntry::new(id(BOB)),
        ],
        on_network_disabled: false,
        on_network_group_priority: Some(6),
        supported_services: NonEmpty::new(vec![McService::Mcptt, McService::Mcdata]).unwrap(),
        preconfigured_group_use_only: false,
        permitted_locations: vec!["harbour".into()],
        on_network_regrouped: None,
        regrouped_into: None,
        xml_extensions: Default::default(),
    }
}

#[tokio::test]
async fn an_administrator_creates_reads_updates_and_deletes_a_group() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let group = gid("sip:fire-liaison@police.example");

    let created = alice.create_group(&group, &liaison()).await.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.origin, GroupOrigin::Local);
    assert_eq!(created.configuration, liaison());
    let key = created
        .key_material
        .clone()
        .expect("the GMS generates key material");
    assert_eq!(key.generation, 1);

    let read = alice.group(&group).await.unwrap();
    assert_eq!(read, created);
    assert!(
        alice
            .groups()
            .await
            .unwrap()
            .iter()
            .any(|g| g.mc_service_group_id == group)
    );

    let mut changed = liaison();
    changed.display_name = "Fire and police liaison".into();
    changed.list.pop();
    let updated = alice
        .update_group(&group, &changed, IfMatch::Version(1))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.configuration, changed);
    assert_eq!(
        updated.key_material,
        Some(key),
        "an update keeps the key material"
    );
    assert_eq!(alice.group(&group).await.unwrap().version, 2);

    alice
        .delete_group(&group, Some(IfMatch::Version(2)))
        .await
        .unwrap();
    let err = alice.group(&group).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("group-not-found"))
    );
}

#[tokio::test]
async fn a_stale_version_gets_412_and_changes_nothing() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let ops = gid(OPS);
    let before = alice.group(&ops).await.unwrap();
    let mut first = before.configuration.clone();
    first.on_network_group_priority = Some(9);
    alice
        .update_group(&ops, &first, IfMatch::Version(before.version))
        .await
        .unwrap();

    // A second writer still holding the old version.
    let mut second = before.configuration.clone();
    second.display_name = "Overwritten".into();
    let err = alice
        .update_group(&ops, &second, IfMatch::Version(before.version))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(412), Some("version-mismatch"))
    );
    assert!(err.to_string().contains("version 2"), "{err}");
    let now = alice.group(&ops).await.unwrap();
    assert_eq!(now.version, 2);
    assert_eq!(now.configuration, first);

    let err = alice
        .delete_group(&ops, Some(IfMatch::Version(1)))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412));
    assert!(alice.group(&ops).await.is_ok());

    // If-Match: * overwrites whatever is there.
    let any = alice
        .update_group(&ops, &second, IfMatch::Any)
        .await
        .unwrap();
    assert_eq!(any.version, 3);
}

#[tokio::test]
async fn updates_without_if_match_get_428_and_etags_support_conditional_reads() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let token = alice.token().unwrap().to_string();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/groups/sip%3Aops%40police.example", system.url());

    let read = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let etag = read.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"1\"");
    let body: serde_json::Value = read.json().await.unwrap();

    let not_modified = http
        .get(&url)
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);

    let no_precondition = http
        .put(&url)
        .bearer_auth(&token)
        .json(&body["configuration"])
        .send()
        .await
        .unwrap();
    assert_eq!(no_precondition.status(), 428);
    let problem: serde_json::Value = no_precondition.json().await.unwrap();
    assert_eq!(problem["code"], "precondition-required");

    let weak = http
        .put(&url)
        .bearer_auth(&token)
        .header("if-match", "W/\"1\"")
        .json(&body["configuration"])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 412);

    let ok = http
        .put(&url)
        .bearer_auth(&token)
        .header("if-match", &etag)
        .json(&body["configuration"])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    assert_eq!(alice.group(&gid(OPS)).await.unwrap().version, 2);
}

#[tokio::test]
async fn only_group_administrators_change_groups() {
    let system = TestSystem::example().await;
    let bob = system.log_on_as(BOB, "handset").await;
    let before = system.all_groups().await;

    let err = bob
        .create_group(&gid("sip:bobs@police.example"), &liaison())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );
    assert!(err.to_string().contains("group-administration"), "{err}");

    let ops = bob.group(&gid(OPS)).await.unwrap();
    let err = bob
        .update_group(&gid(OPS), &liaison(), IfMatch::Version(ops.version))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = bob.delete_group(&gid(OPS), None).await.unwrap_err();
    assert_eq!(err.status(), Some(403));

    assert_eq!(system.all_groups().await, before, "nothing changed");
}

#[tokio::test]
async fn users_see_only_their_groups() {
    let system = TestSystem::example().await;
    let carol = system.log_on_as(CAROL, "handset").await;
    let visible: Vec<_> = carol
        .groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.mc_service_group_id.to_string())
        .collect();
    assert_eq!(visible, vec![PATROL.to_string()]);
    let err = carol.group(&gid(OPS)).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("not-authorized"))
    );
    let err = carol.subscribe(&gid(OPS)).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
}

#[tokio::test]
async fn groups_are_defined_only_in_their_home_system_and_only_once() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let before = system.all_groups().await;

    let err = alice
        .create_group(&gid("sip:engine-1@fire.example"), &liaison())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("group-not-homed-here"))
    );

    let err = alice.create_group(&gid(OPS), &liaison()).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("group-exists"))
    );

    let mut duplicate_member = liaison();
    duplicate_member.list.push(GroupMemberEntry::new(id(ALICE)));
    let err = alice
        .create_group(&gid("sip:dup@police.example"), &duplicate_member)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("invalid-configuration"))
    );
    assert!(err.to_string().contains("list.entry[2].uri"), "{err}");

    assert_eq!(system.all_groups().await, before);
}
