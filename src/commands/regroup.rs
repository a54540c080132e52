//! `mcx regroup ...`: preconfigured regroup across systems (TS 23.280 §10.15.3.3.1).

use anyhow::Context as _;
use mcx_model::{McServiceGroupId, NonEmpty};

use super::client_of;
use crate::Done;
use crate::cli::RegroupCommand;
use crate::output;

/// Done entirely or failed, but for a regroup some system did not take part in.
pub(super) async fn regroup(command: RegroupCommand) -> anyhow::Result<Done> {
    use mcx_model::flows::regroup::{PreconfiguredRegroupRequest, RegroupTargets};
    match command {
        RegroupCommand::Create {
            groups,
            preconfigured,
            regroup_group_id,
            service,
            client,
        } => {
            let (api, as_json) = client_of(&client)?;
            let me = api.session().await?.mc_service_id;
            let groups = groups
                .iter()
                .map(|g| McServiceGroupId::parse(g))
                .collect::<Result<Vec<_>, _>>()?;
            let request = PreconfiguredRegroupRequest {
                mc_service_id: me,
                regroup_group_id: regroup_group_id
                    .map(|r| McServiceGroupId::parse(&r))
                    .transpose()?,
                preconfigured_group_id: McServiceGroupId::parse(&preconfigured)?,
                targets: RegroupTargets::McServiceGroupIdList(
                    NonEmpty::new(groups).context("at least one --group is needed")?,
                ),
                mc_service: service.parse()?,
            };
            let record = api.regroup(&request).await?;
            output::regroup(&record, as_json)?;
            Ok(Done::all_if(record.response.as_ref().is_none_or(|r| {
                r.result.is_success() && r.systems.iter().all(|s| s.result.is_success())
            })))
        }
        RegroupCommand::List(args) => {
            let (api, as_json) = client_of(&args)?;
            let list = api.regroups().await?;
            if as_json {
                return output::json(&list).map(|()| Done::All);
            }
            if list.regroups.is_empty() {
                println!("no regroup in effect");
            }
            for r in &list.regroups {
                output::regroup(r, false)?;
            }
            Ok(Done::All)
        }
        RegroupCommand::Show { id, client } => {
            let (api, as_json) = client_of(&client)?;
            output::regroup(
                &api.regroup_status(&McServiceGroupId::parse(&id)?).await?,
                as_json,
            )
            .map(|()| Done::All)
        }
        RegroupCommand::Cancel { id, client } => {
            let (api, as_json) = client_of(&client)?;
            let response = api.cancel_regroup(&McServiceGroupId::parse(&id)?).await?;
            if as_json {
                return output::json(&response).map(|()| Done::All);
            }
            println!("cancelled regroup {}", response.regroup_group_id);
            Ok(Done::All)
        }
        RegroupCommand::Ack { id, client } => {
            let (api, as_json) = client_of(&client)?;
            output::regroup(
                &api.acknowledge_regroup(&McServiceGroupId::parse(&id)?)
                    .await?,
                as_json,
            )
            .map(|()| Done::All)
        }
    }
}
