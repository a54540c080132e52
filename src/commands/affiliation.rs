//! `mcx affiliate`, `deaffiliate`, `affiliations` and `change ...` (remote change).

use anyhow::Context as _;
use mcx_client::Client;
use mcx_model::api::TargetState;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::{McService, McServiceGroupId, McServiceId, NonEmpty};

use super::logged_on;
use crate::Done;
use crate::cli::{AffiliationArgs, ChangeCommand, ClientArgs};
use crate::output;

fn affiliation_args(
    args: &AffiliationArgs,
) -> anyhow::Result<(Client, McService, Vec<McServiceGroupId>)> {
    let api = logged_on(&args.client)?;
    let service: McService = args.service.parse()?;
    let groups = args
        .groups
        .iter()
        .chain(&args.group_flags)
        .map(|g| McServiceGroupId::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((api, service, groups))
}

/// Done when every group asked for is affiliated.
pub(super) async fn affiliate(args: &AffiliationArgs) -> anyhow::Result<Done> {
    let (api, service, groups) = affiliation_args(args)?;
    let response = api.affiliate(service, &groups).await?;
    answered(
        args,
        &response,
        &response.status_per_mc_service_group_id,
        AffiliationStatus::Affiliated,
    )
}

/// Done when no group asked for is still affiliated.
pub(super) async fn deaffiliate(args: &AffiliationArgs) -> anyhow::Result<Done> {
    let (api, service, groups) = affiliation_args(args)?;
    let response = api.deaffiliate(service, &groups).await?;
    answered(
        args,
        &response,
        &response.status_per_mc_service_group_id,
        AffiliationStatus::NotAffiliated,
    )
}

/// Prints an (de-)affiliation response; done when every group is in the `wanted` state.
fn answered(
    args: &AffiliationArgs,
    response: &impl serde::Serialize,
    statuses: &[mcx_model::flows::affiliation::GroupAffiliationStatus],
    wanted: AffiliationStatus,
) -> anyhow::Result<Done> {
    if args.client.json {
        output::json(response)?;
    } else {
        output::affiliation_statuses(statuses)?;
    }
    Ok(Done::all_if(statuses.iter().all(|s| s.status == wanted)))
}

pub(super) async fn show(
    client: &ClientArgs,
    of: Option<&str>,
    group: Option<&str>,
) -> anyhow::Result<Done> {
    let api = logged_on(client)?;
    match (of, group) {
        (_, Some(group)) => {
            let a = api
                .group_affiliations(&McServiceGroupId::parse(group)?)
                .await?;
            output::group_affiliations(&a, client.json)?
        }
        (Some(user), None) => {
            let a = api.user_affiliations(&McServiceId::parse(user)?).await?;
            output::user_affiliations(&a, client.json)?
        }
        (None, None) => output::user_affiliations(&api.affiliations().await?, client.json)?,
    }
    Ok(Done::All)
}

/// Done unless a target was refused, rejected the change or did not answer in time.
fn change_done(record: &mcx_model::api::AffiliationChangeRecord) -> Done {
    Done::all_if(!record.targets.iter().any(|t| {
        matches!(
            t.state,
            TargetState::Refused | TargetState::Rejected | TargetState::NoAnswer
        )
    }))
}

pub(super) async fn change(command: ChangeCommand) -> anyhow::Result<Done> {
    use mcx_model::flows::affiliation::{
        AffiliationChangeAction, ChangeRequestType, GroupAffiliationChange,
        GroupAffiliationChangeRequest,
    };
    match command {
        ChangeCommand::Request {
            targets,
            affiliate,
            deaffiliate,
            negotiated,
            service,
            client,
        } => {
            let api = logged_on(&client)?;
            let me = api.session().await?.mc_service_id;
            let mut groups = Vec::new();
            for (list, action) in [
                (affiliate, AffiliationChangeAction::Affiliate),
                (deaffiliate, AffiliationChangeAction::Deaffiliate),
            ] {
                for g in list {
                    groups.push(GroupAffiliationChange {
                        mc_service_group_id: McServiceGroupId::parse(&g)?,
                        action,
                    });
                }
            }
            let targets = targets
                .iter()
                .map(|t| McServiceId::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let request = GroupAffiliationChangeRequest {
                mc_service_id: me,
                mc_service_id_list: NonEmpty::new(targets)
                    .context("at least one --target is needed")?,
                mc_service_group_id_list: NonEmpty::new(groups)
                    .context("at least one --affiliate or --deaffiliate group is needed")?,
                change_request_type: if negotiated {
                    ChangeRequestType::Negotiated
                } else {
                    ChangeRequestType::Mandatory
                },
                mc_service: service.parse()?,
                generation: None,
            };
            let record = api.request_change(&request).await?;
            output::change(&record, client.json)?;
            Ok(change_done(&record))
        }
        ChangeCommand::Answer {
            id,
            decision,
            reason,
            client,
        } => {
            let decision: mcx_model::api::ChangeDecision = serde_json::from_value(
                serde_json::Value::String(decision.clone()),
            )
            .map_err(|_| {
                anyhow::anyhow!("'{decision}' is not a decision: use accept, reject or acknowledge")
            })?;
            let record = logged_on(&client)?
                .answer_change(&id, decision, reason)
                .await?;
            output::change(&record, client.json)?;
            Ok(Done::All)
        }
        ChangeCommand::Show { id, client } => {
            output::change(&logged_on(&client)?.change(&id).await?, client.json)?;
            Ok(Done::All)
        }
    }
}
