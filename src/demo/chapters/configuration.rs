//! Group configuration between systems (TS 23.280 §10.2.7).

use super::super::*;

/// Chapter 1: §10.2.7.2 (and §10.2.7.4): police provides the group to fire, whose users are members.
pub(super) async fn provide(story: &mut Story, alice: &Client) -> anyhow::Result<()> {
    story
        .begin(
            "provide",
            "Primary MC system provides group configuration to a partner",
            "TS 23.280 §10.2.7.2, §10.2.7.4",
            &[
                "Group creation request",
                "Group information provision request",
                "Group configuration notification",
                "Group information provision response",
                "Group information subscribe request",
                "Group information subscribe response",
            ],
        )
        .await?;
    let mut joint = group(
        "Joint operations",
        &[
            "sip:alice@police.example",
            "sip:bob@police.example",
            "sip:carol@police.example",
            "sip:fiona@fire.example",
            "sip:andy@ambulance.example",
        ],
        &[MCPTT, McService::Mcvideo],
    );
    joint.on_network_group_priority = Some(7);
    alice.create_group(&gid(JOINT), &joint).await?;
    let fire_admin = story.observer(FIRE).clone();
    story
        .wait_for(
            "fire stores the joint group, modified by its policy",
            || {
                let fire_admin = fire_admin.clone();
                async move {
                    fire_admin.group(&gid(JOINT)).await.is_ok_and(|g| {
                        g.configuration.on_network_group_priority == Some(3)
                            && g.configuration.supported_services.as_slice() == [MCPTT]
                    })
                }
            },
        )
        .await;
    let at_police = alice.group(&gid(JOINT)).await?;
    story.check(
        at_police.configuration.on_network_group_priority == Some(7),
        "police keeps its own priority (fire's policy does not flow back)",
    );
    story.end().await?;
    Ok(())
}

/// Chapter 2: §10.2.7.3: andy logs on at ambulance; his profile lists the police group.
pub(super) async fn request(story: &mut Story) -> anyhow::Result<Client> {
    story
        .begin(
            "request",
            "Partner MC system requests group configuration at a user's log-on",
            "TS 23.280 §10.2.7.3, §10.2.7.4",
            &[
                "Log on",
                "Group configuration request",
                "Group information request",
                "Group information response",
                "Group configuration notification",
                "Group information subscribe request",
                "Group information subscribe response",
            ],
        )
        .await?;
    let andy = story
        .log_on("sip:andy@ambulance.example", "handset")
        .await?;
    let amy = story.observer(AMBULANCE).clone();
    story
        .wait_for("ambulance holds the joint group and is subscribed", || {
            let amy = amy.clone();
            async move {
                amy.interconnection_status(&gid(JOINT))
                    .await
                    .is_ok_and(|s| {
                        s.primary.is_some_and(|l| {
                            l.state == mcx_model::api::PrimaryLinkState::Subscribed
                        })
                    })
            }
        })
        .await;
    story.end().await?;
    Ok(andy)
}

/// Chapter 3: §10.2.7.5: a change and a rekey at police reach the partners; fiona, subscribed at
/// fire, is told by her own GMS.
pub(super) async fn notify(
    story: &mut Story,
    alice: &Client,
) -> anyhow::Result<(Client, EventStream)> {
    let fiona = story.log_on("sip:fiona@fire.example", "handset").await?;
    fiona.subscribe(&gid(JOINT)).await?;
    let mut fiona_events = fiona.events(None).await?;
    story
        .begin(
            "notify",
            "Primary MC system notifies partners of a change and of new key material",
            "TS 23.280 §10.2.7.5",
            &[
                "Group configuration update request",
                "Group information notify request",
                "Group information notify response",
                "Group rekey request (administrator)",
                "Group information notify request",
                "Group information notify response",
            ],
        )
        .await?;
    let mut changed = alice.group(&gid(JOINT)).await?.configuration;
    changed.display_name = "Joint operations (storm warning)".into();
    let updated = alice
        .update_group(&gid(JOINT), &changed, IfMatch::Version(1))
        .await?;
    // Let both partners answer the change before new key material is generated.
    story.settle().await?;
    let rekeyed = alice.rekey_group(&gid(JOINT)).await?;
    let key = rekeyed.key_material.clone();
    story.check(
        updated.version == 2 && rekeyed.version == 3,
        "the change and the rekey are versions 2 and 3",
    );
    let first = wait_event(&mut fiona_events, |e| {
        matches!(e, ClientEvent::GroupConfigurationChanged { .. })
    })
    .await;
    let second = wait_event(&mut fiona_events, |e| {
        matches!(e, ClientEvent::GroupConfigurationChanged { .. })
    })
    .await;
    let names = [first, second].map(|e| match e {
        Some(ClientEvent::GroupConfigurationChanged { group, .. }) => {
            Some((group.configuration.display_name, group.key_material))
        }
        _ => None,
    });
    story.check(
        names[0]
            .as_ref()
            .is_some_and(|(n, _)| n == "Joint operations (storm warning)"),
        "fiona is notified of the change by fire's GMS",
    );
    story.check(
        names[1].as_ref().is_some_and(|(_, k)| *k == key),
        "fiona gets the new key material from fire's GMS",
    );
    let amy = story.observer(AMBULANCE).clone();
    let key_for_wait = key.clone();
    story
        .wait_for("ambulance has the new key material", || {
            let (amy, key) = (amy.clone(), key_for_wait.clone());
            async move {
                amy.group(&gid(JOINT))
                    .await
                    .is_ok_and(|g| g.key_material == key)
            }
        })
        .await;
    story.end().await?;
    Ok((fiona, fiona_events))
}
