//! Preconfigured regroup by SIP MESSAGE (TS 24.379 clause 16, body of Annex F.7): an
//! authorised user creates or removes a regroup through the same MC service server call
//! as the JSON API (`POST /v1/regroups`, `DELETE /v1/regroups/{id}`), partner systems
//! included. Refusals are SIP answers whose `Warning` carries the clause 4.4 text.

use mcx_core::error::{Error, codes};
use mcx_core::system::McSystem;
use mcx_model::flows::regroup::{PreconfiguredRegroupRequest, RegroupTargets};
use mcx_model::sip_bodies::{self, MCPTT_INFO_MEDIA_TYPE, REGROUP_MEDIA_TYPE, RegroupAction};
use mcx_model::{McService, NonEmpty};

use super::caller::{self, Asserted};
use super::{Answer, multipart};

/// What a MESSAGE brings.
pub(crate) struct Message<'r> {
    pub(crate) content_type: Option<String>,
    pub(crate) asserted: Asserted,
    pub(crate) body: &'r [u8],
}

/// Handles one MESSAGE.
pub(crate) async fn handle(system: &McSystem, request: Message<'_>) -> Answer {
    let content_type = request.content_type.as_deref().unwrap_or_default();
    if multipart::media_type(content_type) != "multipart/mixed" {
        return multipart::unsupported(
            content_type,
            "this server takes MESSAGEs with application/vnd.3gpp.mcptt-info+xml and application/vnd.3gpp.mcptt-regroup+xml (preconfigured regroup) in multipart/mixed",
        );
    }
    let parts = match multipart::split(content_type, request.body) {
        Ok(parts) => parts,
        Err(why) => return Answer::new(400, &format!("Bad Request: {why}")),
    };
    let part = |media: &str| parts.iter().find(|p| p.media_type == media).map(|p| p.body);
    let Some(regroup) = part(REGROUP_MEDIA_TYPE) else {
        return Answer::new(
            415,
            "Unsupported Media Type: this server takes MESSAGEs with application/vnd.3gpp.mcptt-regroup+xml (preconfigured regroup)",
        );
    };
    let info = match part(MCPTT_INFO_MEDIA_TYPE).map(sip_bodies::read_mcptt_info) {
        Some(Ok(info)) => info,
        Some(Err(e)) => return Answer::new(400, &format!("Bad Request: {e}")),
        None => sip_bodies::McpttInfo::default(),
    };
    let regroup = match sip_bodies::read_regroup(regroup) {
        Ok(regroup) => regroup,
        Err(e) => return Answer::new(400, &format!("Bad Request: {e}")),
    };
    let requester = match caller::requester(
        system,
        info.access_token.as_deref(),
        &request.asserted,
        None,
        None,
    )
    .await
    {
        Ok(requester) => requester,
        Err(answer) => return answer,
    };
    let server = &system.mc_service_server;
    let outcome = match regroup.action {
        RegroupAction::Create => {
            if regroup.users_for_regroup {
                return Answer::new(
                    403,
                    "Forbidden: user regroup (users-for-regroup) is not supported; list the groups to regroup",
                );
            }
            let (Some(preconfigured), Ok(groups)) = (
                regroup.preconfigured_group.clone(),
                NonEmpty::new(regroup.groups.clone()),
            ) else {
                return Answer::new(
                    400,
                    "Bad Request: creating a regroup needs <preconfigured-group> and at least one group in <groups-for-regroup>",
                );
            };
            server
                .regroup(
                    &requester,
                    PreconfiguredRegroupRequest {
                        mc_service_id: requester.mc_service_id.clone(),
                        regroup_group_id: Some(regroup.regroup_group.clone()),
                        preconfigured_group_id: preconfigured,
                        targets: RegroupTargets::McServiceGroupIdList(groups),
                        mc_service: McService::Mcptt,
                    },
                )
                .await
                .map(|_| ())
        }
        RegroupAction::Remove => server
            .cancel_regroup(&requester, &regroup.regroup_group)
            .await
            .map(|_| ()),
    };
    match outcome {
        Ok(()) => Answer::new(200, "OK"),
        Err(error) => refusal(system, &error),
    }
}

/// A refused regroup: 403 with the clause 4.4 warning where one applies, else the core's
/// answer; the reason phrase carries the core's sentence either way.
fn refusal(system: &McSystem, error: &Error) -> Answer {
    let Error::Refused { code, detail, .. } = error else {
        return Answer::from_core(error);
    };
    let warning = match *code {
        codes::ALREADY_REGROUPED => Some("148 group is regrouped"),
        codes::REGROUP_GROUP_ID_IN_USE => Some("165 group ID for regroup already in use"),
        codes::UNKNOWN_GROUP | codes::UNKNOWN_REGROUP => {
            Some("163 the group identity indicated in the request does not exist")
        }
        _ => None,
    };
    match warning {
        Some(text) => Answer::new(403, &format!("Forbidden: {detail}")).header(
            "Warning",
            format!("399 {} \"{text}\"", system.settings.domain),
        ),
        None => Answer::from_core(error),
    }
}
