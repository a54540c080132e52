//! Preconfigured regroup across systems and its cancellation (TS 23.280 §10.15.3.3.1).

use super::super::*;

/// Chapter 9: §10.15.3.3.1: alice regroups joint (police) and harbour (fire); members are served
/// in all three systems.
pub(super) async fn regroup(
    story: &mut Story,
    alice: &Client,
    andy: &Client,
    fiona: &Client,
    fiona_events: &mut EventStream,
    carol_events: &mut EventStream,
) -> anyhow::Result<EventStream> {
    let fire_admin = story.observer(FIRE).clone();
    story
        .begin(
            "regroup",
            "Preconfigured group regroup across three systems",
            "TS 23.280 §10.15.3.3.1",
            &[
                "Preconfigured regroup request",
                "Preconfigured regroup request return",
                "Preconfigured regroup request (server-server)",
                "Preconfigured regroup response (server-server)",
                "Preconfigured regroup response",
            ],
        )
        .await?;
    let mut andy_events = andy.events(None).await?;
    let regroup = PreconfiguredRegroupRequest {
        mc_service_id: id("sip:alice@police.example"),
        regroup_group_id: Some(gid(STORM)),
        preconfigured_group_id: gid(TEMPLATE),
        targets: RegroupTargets::McServiceGroupIdList(
            NonEmpty::new(vec![gid(JOINT), gid(HARBOUR)])
                .unwrap_or_else(|_| NonEmpty::one(gid(JOINT))),
        ),
        mc_service: MCPTT,
    };
    let record = alice.regroup(&regroup).await?;
    let parts: BTreeMap<String, u64> = record
        .response
        .as_ref()
        .map(|r| {
            r.systems
                .iter()
                .map(|s| (s.system.to_string(), s.affiliated_member_count))
                .collect()
        })
        .unwrap_or_default();
    story.check(
        parts == BTreeMap::from([(POLICE.to_string(), 2), (FIRE.to_string(), 1), (AMBULANCE.to_string(), 1)]),
        format!("the combined response counts bob and carol (police), fiona (fire), andy (ambulance): {parts:?}"),
    );
    for (who, events) in [
        ("fiona", &mut *fiona_events),
        ("andy", &mut andy_events),
        ("carol", &mut *carol_events),
    ] {
        let told = wait_event(events, |e| {
            matches!(e, ClientEvent::RegroupRequested { .. })
        })
        .await;
        story.check(
            told.is_some(),
            format!("{who} is told of the regroup (step 7)"),
        );
    }
    fiona.acknowledge_regroup(&gid(STORM)).await?;
    let amy = story.observer(AMBULANCE).clone();
    story
        .wait_for(
            "the partners' GMSs hold the regroup group with the template's security parameters",
            || {
                let (fire_admin, amy) = (fire_admin.clone(), amy.clone());
                async move {
                    let fire = fire_admin
                        .group(&gid(STORM))
                        .await
                        .is_ok_and(|g| g.configuration.on_network_regrouped.is_some());
                    let ambulance = amy
                        .group(&gid(STORM))
                        .await
                        .is_ok_and(|g| g.configuration.on_network_regrouped.is_some());
                    fire && ambulance
                }
            },
        )
        .await;
    story.end().await?;
    Ok(andy_events)
}

/// Chapter 10: Cancellation: every member, everywhere, leaves the regroup group.
pub(super) async fn regroup_cancel(
    story: &mut Story,
    alice: &Client,
    fiona_events: &mut EventStream,
    andy_events: &mut EventStream,
    carol_events: &mut EventStream,
) -> anyhow::Result<()> {
    story
        .begin(
            "regroup-cancel",
            "Regroup cancellation in every system",
            "TS 23.280 §10.15.3.3.1 (until cancelled)",
            &[
                "Preconfigured regroup cancel request",
                "Preconfigured regroup cancel request (server-server)",
                "Preconfigured regroup cancel response (server-server)",
                "Preconfigured regroup cancel response",
            ],
        )
        .await?;
    alice.cancel_regroup(&gid(STORM)).await?;
    for (who, events) in [
        ("fiona", &mut *fiona_events),
        ("andy", &mut *andy_events),
        ("carol", &mut *carol_events),
    ] {
        let told = wait_event(events, |e| {
            matches!(e, ClientEvent::RegroupCancelled { .. })
        })
        .await;
        story.check(told.is_some(), format!("{who} is told the regroup ended"));
    }
    for domain in [POLICE, FIRE, AMBULANCE] {
        let left = story
            .observer(domain)
            .regroups()
            .await
            .map(|l| l.regroups.len())
            .unwrap_or(1);
        story.check(left == 0, format!("{domain} has no regroup left"));
    }
    story.end().await?;
    Ok(())
}
