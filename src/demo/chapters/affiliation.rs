//! Affiliation: local, to partner groups, N2, remote change, log-off (TS 23.280 §10.8).

use super::super::*;

/// Chapter 4: §10.8.3.1: bob affiliates to a group of his own system.
pub(super) async fn affiliate_local(story: &mut Story) -> anyhow::Result<Client> {
    story
        .begin(
            "affiliate-local",
            "Affiliation to a group of the user's system",
            "TS 23.280 §10.8.3.1",
            &[
                "MC service group affiliation request",
                "Group affiliation status update",
                "MC service group affiliation response",
            ],
        )
        .await?;
    let bob = story.log_on("sip:bob@police.example", "handset").await?;
    let response = bob.affiliate(MCPTT, &[gid(JOINT)]).await?;
    story.check(
        statuses(&response.status_per_mc_service_group_id)
            == vec![(JOINT.to_string(), AffiliationStatus::Affiliated, None)],
        "bob is affiliated to joint",
    );
    let police_admin = story.observer(POLICE).clone();
    story.check(
        members(&police_admin, JOINT)
            .await
            .contains(&"sip:bob@police.example".to_string()),
        "police's GMS knows bob is affiliated",
    );
    story.end().await?;
    Ok(bob)
}

/// Chapter 5: §10.8.3.2: users of fire and ambulance affiliate to groups of other systems.
pub(super) async fn affiliate_partner(
    story: &mut Story,
    andy: &Client,
    fiona: &Client,
) -> anyhow::Result<()> {
    let fire_admin = story.observer(FIRE).clone();
    let police_admin = story.observer(POLICE).clone();
    story
        .begin(
            "affiliate-partner",
            "Affiliation to groups defined in partner systems",
            "TS 23.280 §10.8.3.2",
            &[
                "MC service group affiliation request",
                "MC service group affiliation request (server-server)",
                "Group affiliation status update",
                "MC service group affiliation response (server-server)",
                "MC service group affiliation response",
            ],
        )
        .await?;
    let response = fiona.affiliate(MCPTT, &[gid(JOINT)]).await?;
    story.check(
        response.status_per_mc_service_group_id[0].status == AffiliationStatus::Affiliated,
        "fiona (fire) is affiliated to police's joint",
    );
    let response = andy.affiliate(MCPTT, &[gid(JOINT), gid(HARBOUR)]).await?;
    story.check(
        response
            .status_per_mc_service_group_id
            .iter()
            .all(|s| s.status == AffiliationStatus::Affiliated),
        "andy (ambulance) is affiliated to police's joint and fire's harbour, asked in parallel",
    );
    let joint_members = members(&police_admin, JOINT).await;
    story.check(
        joint_members.contains(&"sip:fiona@fire.example".to_string())
            && joint_members.contains(&"sip:andy@ambulance.example".to_string()),
        "police's GMS knows the partner users",
    );
    story.check(
        members(&fire_admin, HARBOUR)
            .await
            .contains(&"sip:andy@ambulance.example".to_string()),
        "fire's GMS knows andy",
    );
    story.end().await?;
    Ok(())
}

/// Chapter 6: N2: bob may be affiliated to two groups at once.
pub(super) async fn n2(story: &mut Story, bob: &Client) -> anyhow::Result<()> {
    story
        .begin(
            "n2",
            "The N2 limit: one group too many is refused, the others proceed",
            "TS 23.280 §10.8.3.1 step 3, §10.8.3.2 step 2",
            &[
                "MC service group affiliation request",
                "MC service group affiliation request (server-server)",
                "MC service group affiliation response (server-server)",
                "MC service group affiliation response",
            ],
        )
        .await?;
    let response = bob.affiliate(MCPTT, &[gid(HARBOUR), gid(PATROL)]).await?;
    story.check(
        statuses(&response.status_per_mc_service_group_id)
            == vec![
                (HARBOUR.to_string(), AffiliationStatus::Affiliated, None),
                (
                    PATROL.to_string(),
                    AffiliationStatus::NotAffiliated,
                    Some("n2-limit-reached".into()),
                ),
            ],
        "harbour is granted, patrol refused for N2 (bob's N2 is 2)",
    );
    story.end().await?;
    Ok(())
}

/// Chapter 7: §10.8.5.1.1: alice affiliates carol to joint, mandatory; carol confirms.
pub(super) async fn change_mandatory(
    story: &mut Story,
    alice: &Client,
) -> anyhow::Result<(
    Client,
    EventStream,
    EventStream,
    GroupAffiliationChangeRequest,
)> {
    let carol = story.log_on("sip:carol@police.example", "handset").await?;
    let mut carol_events = carol.events(None).await?;
    let mut alice_events = alice.events(None).await?;
    story
        .begin(
            "change-mandatory",
            "Remote change of affiliation, mandatory mode",
            "TS 23.280 §10.8.5.1.1",
            &[
                "MC service group affiliation change request",
                "Group affiliation status update",
                "MC service group affiliation change request",
                "MC service group affiliation change response",
                "MC service group affiliation change response (target acknowledged)",
            ],
        )
        .await?;
    let change = GroupAffiliationChangeRequest {
        mc_service_id: id("sip:alice@police.example"),
        mc_service_id_list: NonEmpty::one(id("sip:carol@police.example")),
        mc_service_group_id_list: NonEmpty::one(GroupAffiliationChange {
            mc_service_group_id: gid(JOINT),
            action: AffiliationChangeAction::Affiliate,
        }),
        change_request_type: ChangeRequestType::Mandatory,
        mc_service: MCPTT,
        generation: None,
    };
    let record = alice.request_change(&change).await?;
    story.check(
        record.response.as_ref().is_some_and(|r| {
            r.affiliation_status_per_mc_service_group_id
                .iter()
                .all(|s| s.status == AffiliationStatus::Affiliated)
        }),
        "carol is affiliated at once",
    );
    let told = wait_event(&mut carol_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeRequested { .. })
    })
    .await;
    story.check(told.is_some(), "carol's client is told (step 7a)");
    carol
        .answer_change(&record.change_id, ChangeDecision::Acknowledge, None)
        .await?;
    let acked = wait_event(&mut alice_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeAcknowledged { .. })
    })
    .await;
    story.check(acked.is_some(), "alice learns carol confirmed (step 7b)");
    story.end().await?;
    Ok((carol, carol_events, alice_events, change))
}

/// Chapter 8: §10.8.5.1.2 with §10.8.3.2: alice asks carol to affiliate to fire's harbour; carol accepts.
pub(super) async fn change_negotiated(
    story: &mut Story,
    alice: &Client,
    carol: &Client,
    alice_events: &mut EventStream,
    carol_events: &mut EventStream,
    change: &GroupAffiliationChangeRequest,
) -> anyhow::Result<()> {
    let fire_admin = story.observer(FIRE).clone();
    story
        .begin(
            "change-negotiated",
            "Remote change of affiliation, negotiated mode, to a partner's group",
            "TS 23.280 §10.8.5.1.2, §10.8.3.2",
            &[
                "MC service group affiliation change request",
                "MC service group affiliation change request",
                "MC service group affiliation change response",
                "MC service group affiliation request (server-server)",
                "MC service group affiliation response (server-server)",
                "MC service group affiliation change response",
            ],
        )
        .await?;
    let mut negotiated = change.clone();
    negotiated.change_request_type = ChangeRequestType::Negotiated;
    negotiated.mc_service_group_id_list = NonEmpty::one(GroupAffiliationChange {
        mc_service_group_id: gid(HARBOUR),
        action: AffiliationChangeAction::Affiliate,
    });
    let record = alice.request_change(&negotiated).await?;
    story.check(
        record.state == mcx_model::api::AffiliationChangeState::Pending,
        "the change waits for carol",
    );
    let asked = wait_event(&mut *carol_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeRequested { .. })
    })
    .await;
    story.check(asked.is_some(), "carol is asked (step 3)");
    carol
        .answer_change(&record.change_id, ChangeDecision::Accept, None)
        .await?;
    let completed = wait_event(&mut *alice_events, |e| {
        matches!(e, ClientEvent::AffiliationChangeCompleted { .. })
    })
    .await;
    story.check(
        matches!(&completed, Some(ClientEvent::AffiliationChangeCompleted { response, .. }) if response.affiliation_status_per_mc_service_group_id.iter().any(|s| s.mc_service_group_id == gid(HARBOUR) && s.status == AffiliationStatus::Affiliated)),
        "alice gets the response: carol affiliated to harbour (step 6)",
    );
    story.check(
        members(&fire_admin, HARBOUR)
            .await
            .contains(&"sip:carol@police.example".to_string()),
        "fire's GMS knows carol",
    );
    story.end().await?;
    Ok(())
}

/// Chapter 12: Log-off: andy's affiliations end at home and at both hosts.
pub(super) async fn log_off(story: &mut Story, andy: Client) -> anyhow::Result<()> {
    let fire_admin = story.observer(FIRE).clone();
    let police_admin = story.observer(POLICE).clone();
    story
        .begin(
            "log-off",
            "Log-off ends the client's affiliations everywhere",
            "TS 23.280 §10.8.4.2, §10.8.4.3",
            &[
                "Log off",
                "MC service group de-affiliation request (server-server)",
                "Group de-affiliation status update",
                "MC service group de-affiliation response (server-server)",
            ],
        )
        .await?;
    andy.log_off().await?;
    story
        .wait_for("police and fire forget andy's affiliations", || {
            let (police, fire) = (police_admin.clone(), fire_admin.clone());
            async move {
                let andy = "sip:andy@ambulance.example".to_string();
                !members(&police, JOINT).await.contains(&andy)
                    && !members(&fire, HARBOUR).await.contains(&andy)
            }
        })
        .await;
    story.end().await?;
    Ok(())
}
