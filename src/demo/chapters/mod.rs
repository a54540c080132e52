//! The demo's story, one function per chapter (each charted as one procedure): what a
//! newcomer reads to see every procedure of mcx run between three systems.

mod acm;
mod affiliation;
mod configuration;
mod regroup;

use super::*;
use acm::*;
use affiliation::*;
use configuration::*;
use regroup::*;

/// The story, chapter by chapter; each chapter is charted as one procedure.
pub(super) async fn play(story: &mut Story) -> anyhow::Result<()> {
    let alice = set_up(story).await?;
    provide(story, &alice).await?;
    let andy = request(story).await?;
    let (fiona, mut fiona_events) = notify(story, &alice).await?;
    let bob = affiliate_local(story).await?;
    affiliate_partner(story, &andy, &fiona).await?;
    n2(story, &bob).await?;
    let (carol, mut carol_events, mut alice_events, change) =
        change_mandatory(story, &alice).await?;
    change_negotiated(
        story,
        &alice,
        &carol,
        &mut alice_events,
        &mut carol_events,
        &change,
    )
    .await?;
    let mut andy_events = regroup(
        story,
        &alice,
        &andy,
        &fiona,
        &mut fiona_events,
        &mut carol_events,
    )
    .await?;
    regroup_cancel(
        story,
        &alice,
        &mut fiona_events,
        &mut andy_events,
        &mut carol_events,
    )
    .await?;
    acm(story).await?;
    log_off(story, andy).await?;
    Ok(())
}

/// Set-up (not charted): groups of fire and police that the story uses.
async fn set_up(story: &mut Story) -> anyhow::Result<Client> {
    let frank = story.log_on("sip:frank@fire.example", "console").await?;
    frank
        .create_group(&gid(HARBOUR), &{
            let mut g = group(
                "Harbour",
                &[
                    "sip:frank@fire.example",
                    "sip:fiona@fire.example",
                    "sip:andy@ambulance.example",
                    "sip:bob@police.example",
                    "sip:carol@police.example",
                ],
                &[MCPTT],
            );
            g.on_network_group_priority = Some(4);
            g
        })
        .await?;
    let alice = story.log_on("sip:alice@police.example", "console").await?;
    alice
        .create_group(
            &gid(PATROL),
            &group(
                "Patrol",
                &["sip:alice@police.example", "sip:bob@police.example"],
                &[MCPTT],
            ),
        )
        .await?;
    let mut template = group("Regroup template", &["sip:alice@police.example"], &[MCPTT]);
    template.preconfigured_group_use_only = true;
    alice.create_group(&gid(TEMPLATE), &template).await?;
    Ok(alice)
}
