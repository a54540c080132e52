//! ACM store-and-forward of interconnection group IDs (TR 23.700-38).

use super::super::*;

/// Chapter 11: TR 23.700-38: olga (police) gives fred (fire, logged off throughout) the joint
/// group; fred answers days later; olga learns it at her next log-on; the loop closes.
pub(super) async fn acm(story: &mut Story) -> anyhow::Result<()> {
    story
        .begin(
            "acm",
            "Interconnection group IDs to an offline partner user, store-and-forward",
            "TR 23.700-38 steps 1–14",
            &[
                "Group information provision request",
                "Group information provision request (ACM server-server)",
                "Group information provision stored indication",
                "Log on",
                "Pending ACM data notification",
                "Download of pending ACM data request",
                "Download of pending ACM data response",
                "Group information provision response",
                "Group information provision response (ACM server-server)",
                "Group information provision response stored",
                "Log on",
                "Pending ACM data notification",
                "Download of pending ACM data request",
                "Download of pending ACM data response",
            ],
        )
        .await?;
    let olga = story.log_on("sip:olga@police.example", "console").await?;
    let sent = olga
        .acm_provide(&AcmProvisionOrder {
            target_mc_service_id: id("sip:fred@fire.example"),
            interconnection_group_id_list: NonEmpty::one(gid(JOINT)),
        })
        .await?;
    olga.log_off().await?;
    let request_id = sent.request.request_id.unwrap_or_default();
    // Step 4b reaches police: fire stored the request for fred.
    story
        .wait_trace("Group information provision stored indication")
        .await?;
    let fred = story.log_on("sip:fred@fire.example", "console").await?;
    let mut fred_events = fred.events(None).await?;
    let told = wait_event(&mut fred_events, |e| {
        matches!(e, ClientEvent::AcmPendingData(_))
    })
    .await;
    story.check(
        told.is_some(),
        "fred is told at log-on that a request is pending (step 7a)",
    );
    let pending = fred.acm_pending().await?;
    story.check(
        matches!(
            &pending.acm_data[..],
            [PendingAcmItem::ProvisionRequest { .. }]
        ),
        "fred downloads the request (steps 7b, 8)",
    );
    fred.acm_respond(&request_id, &AcmDecision::Accepted)
        .await?;
    fred.acm_apply(
        &request_id,
        &mcx_model::api::AcmApplyRequest {
            users: NonEmpty::one(id("sip:felix@fire.example")),
            mc_service: MCPTT,
        },
    )
    .await?;
    fred.log_off().await?;
    // Step 11: police stored fred's response.
    story
        .wait_trace("Group information provision response stored")
        .await?;
    let olga = story.log_on("sip:olga@police.example", "console").await?;
    let mut olga_events = olga.events(None).await?;
    let told = wait_event(&mut olga_events, |e| {
        matches!(e, ClientEvent::AcmPendingData(_))
    })
    .await;
    story.check(
        told.is_some(),
        "olga is told at her next log-on that a response is pending (step 13a)",
    );
    let pending = olga.acm_pending().await?;
    story.check(
        matches!(&pending.acm_data[..], [PendingAcmItem::ProvisionResponse { response, .. }] if response.decision == AcmDecision::Accepted),
        "olga downloads fred's acceptance (steps 13b, 14)",
    );
    let felix = story.log_on("sip:felix@fire.example", "handset").await?;
    let response = felix.affiliate(MCPTT, &[gid(JOINT)]).await?;
    story.check(
        response.status_per_mc_service_group_id[0].status == AffiliationStatus::Affiliated,
        "the loop closes: felix, given the group by fire's administrator, is affiliated to police's joint",
    );
    story.end().await?;
    Ok(())
}
