//! `mcx acm ...`: interconnection group IDs for partner users (TR 23.700-38).

use anyhow::Context as _;
use mcx_model::{McServiceGroupId, McServiceId, NonEmpty};

use super::client_of;
use crate::Done;
use crate::cli::AcmCommand;
use crate::output;

/// Done entirely or failed, but for an apply that reached only some of its users.
pub(super) async fn acm(command: AcmCommand) -> anyhow::Result<Done> {
    use mcx_model::flows::acm::{AcmDecision, AcmRequestId};
    let id_of = |text: &str| -> anyhow::Result<AcmRequestId> {
        text.parse()
            .map_err(|_| anyhow::anyhow!("'{text}' is not an ACM request ID"))
    };
    match command {
        AcmCommand::Provide {
            target,
            groups,
            client,
        } => {
            let (api, as_json) = client_of(&client)?;
            let groups = groups
                .iter()
                .map(|g| McServiceGroupId::parse(g))
                .collect::<Result<Vec<_>, _>>()?;
            let order = mcx_model::api::AcmProvisionOrder {
                target_mc_service_id: McServiceId::parse(&target)?,
                interconnection_group_id_list: NonEmpty::new(groups)
                    .context("at least one --group is needed")?,
            };
            output::acm_exchange(&api.acm_provide(&order).await?, as_json).map(|()| Done::All)
        }
        AcmCommand::Sent(args) => {
            let (api, as_json) = client_of(&args)?;
            output::acm_exchanges(&api.acm_sent().await?, as_json).map(|()| Done::All)
        }
        AcmCommand::Received(args) => {
            let (api, as_json) = client_of(&args)?;
            output::acm_exchanges(&api.acm_received().await?, as_json).map(|()| Done::All)
        }
        AcmCommand::Pending(args) => {
            let (api, as_json) = client_of(&args)?;
            let pending = api.acm_pending().await?;
            if as_json {
                return output::json(&pending).map(|()| Done::All);
            }
            if pending.acm_data.is_empty() {
                println!("no pending ACM data");
            }
            for item in &pending.acm_data {
                match item {
                    mcx_model::flows::acm::PendingAcmItem::ProvisionRequest { request, .. } => {
                        let groups: Vec<&str> = request
                            .interconnection_group_id_list
                            .iter()
                            .map(|g| g.as_str())
                            .collect();
                        println!(
                            "request {} from {}: {}",
                            request
                                .request_id
                                .map(|i| i.to_string())
                                .unwrap_or_default(),
                            request.mc_service_id,
                            groups.join(", ")
                        );
                    }
                    mcx_model::flows::acm::PendingAcmItem::ProvisionResponse {
                        response, ..
                    } => {
                        println!(
                            "response to {} from {}: {}",
                            response.request_id,
                            response.mc_service_id,
                            serde_json::to_value(&response.decision)?["decision"]
                                .as_str()
                                .unwrap_or("?")
                        );
                    }
                }
            }
            Ok(Done::All)
        }
        AcmCommand::Accept { id, client } => {
            let (api, as_json) = client_of(&client)?;
            output::acm_exchange(
                &api.acm_respond(&id_of(&id)?, &AcmDecision::Accepted)
                    .await?,
                as_json,
            )
            .map(|()| Done::All)
        }
        AcmCommand::Reject { id, reason, client } => {
            let (api, as_json) = client_of(&client)?;
            output::acm_exchange(
                &api.acm_respond(&id_of(&id)?, &AcmDecision::Rejected { reason })
                    .await?,
                as_json,
            )
            .map(|()| Done::All)
        }
        AcmCommand::Apply {
            id,
            users,
            service,
            client,
        } => {
            let (api, as_json) = client_of(&client)?;
            let users = users
                .iter()
                .map(|u| McServiceId::parse(u))
                .collect::<Result<Vec<_>, _>>()?;
            let apply = mcx_model::api::AcmApplyRequest {
                users: NonEmpty::new(users).context("at least one --for is needed")?,
                mc_service: service.parse()?,
            };
            let exchange = api.acm_apply(&id_of(&id)?, &apply).await?;
            output::acm_exchange(&exchange, as_json)?;
            Ok(Done::all_if(
                apply.users.iter().all(|u| exchange.applied_to.contains(u)),
            ))
        }
    }
}
