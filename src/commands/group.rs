//! `mcx group ...`: define, read, change, delete and share groups.

use std::path::Path;

use anyhow::{Context as _, bail};
use mcx_client::IfMatch;
use mcx_model::group::{GroupConfiguration, GroupMemberEntry};
use mcx_model::{McService, McServiceGroupId, McServiceId, NonEmpty};

use super::logged_on;
use crate::Done;
use crate::cli::{GroupCommand, GroupFields};
use crate::output;

fn read_configuration(path: &Path) -> anyhow::Result<GroupConfiguration> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).map_err(anyhow::Error::from)
    } else {
        serde_json::from_str(&text).map_err(anyhow::Error::from)
    };
    parsed.with_context(|| format!("'{}' is not a valid group configuration", path.display()))
}

fn members(uris: &[String]) -> anyhow::Result<Vec<GroupMemberEntry>> {
    uris.iter()
        .map(|u| Ok(GroupMemberEntry::new(McServiceId::parse(u)?)))
        .collect()
}

fn services(names: &[String]) -> anyhow::Result<Option<NonEmpty<McService>>> {
    if names.is_empty() {
        return Ok(None);
    }
    let parsed = names
        .iter()
        .map(|n| n.parse::<McService>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NonEmpty::new(parsed).ok())
}

/// Applies the flags to a configuration (a new one when `base` is None).
fn apply_fields(
    base: Option<GroupConfiguration>,
    fields: &GroupFields,
) -> anyhow::Result<GroupConfiguration> {
    if let Some(path) = &fields.file {
        return read_configuration(path);
    }
    let mut config = match base {
        Some(config) => config,
        None => GroupConfiguration::new(
            fields
                .display_name
                .clone()
                .context("a new group needs --display-name (or --file)")?,
            [],
            services(&fields.services)?
                .context("a new group needs at least one --service (mcptt, mcvideo, mcdata)")?,
        ),
    };
    if let Some(name) = &fields.display_name {
        config.display_name = name.clone();
    }
    if let Some(list) = services(&fields.services)? {
        config.supported_services = list;
    }
    if !fields.members.is_empty() {
        config.list = members(&fields.members)?;
    }
    if let Some(priority) = fields.priority {
        config.on_network_group_priority = Some(priority);
    }
    if fields.disabled {
        config.on_network_disabled = true;
    }
    if fields.preconfigured_only {
        config.preconfigured_group_use_only = true;
    }
    if !fields.locations.is_empty() {
        config.permitted_locations = fields.locations.clone();
    }
    Ok(config)
}

/// A group command is done entirely or fails.
pub(super) async fn group(command: GroupCommand) -> anyhow::Result<Done> {
    run(command).await.map(|()| Done::All)
}

async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List(args) => {
            let groups = logged_on(&args)?.groups().await?;
            output::groups(&groups, args.json)
        }
        GroupCommand::Get { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let group = logged_on(&client)?.group(&id).await?;
            output::group(&group, client.json)
        }
        GroupCommand::Create { id, fields, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let configuration = apply_fields(None, &fields)?;
            let group = logged_on(&client)?
                .create_group(&id, &configuration)
                .await?;
            output::group(&group, client.json)
        }
        GroupCommand::Update {
            id,
            fields,
            add_members,
            remove_members,
            enabled,
            if_version,
            client,
        } => {
            let id = McServiceGroupId::parse(&id)?;
            let api = logged_on(&client)?;
            let current = api.group(&id).await?;
            let mut configuration = apply_fields(Some(current.configuration.clone()), &fields)?;
            for uri in add_members {
                let uri = McServiceId::parse(&uri)?;
                if !configuration.is_member(&uri) {
                    configuration.list.push(GroupMemberEntry::new(uri));
                }
            }
            for uri in remove_members {
                let uri = McServiceId::parse(&uri)?;
                if !configuration.is_member(&uri) {
                    bail!("'{uri}' is not a member of '{id}'");
                }
                configuration.list.retain(|m| m.uri != uri);
            }
            if enabled {
                configuration.on_network_disabled = false;
            }
            let version = if_version.unwrap_or(current.version);
            let group = api
                .update_group(&id, &configuration, IfMatch::Version(version))
                .await?;
            output::group(&group, client.json)
        }
        GroupCommand::Delete {
            id,
            if_version,
            client,
        } => {
            let id = McServiceGroupId::parse(&id)?;
            logged_on(&client)?
                .delete_group(&id, if_version.map(IfMatch::Version))
                .await?;
            if !client.json {
                println!("deleted {id}");
            }
            Ok(())
        }
        GroupCommand::Subscribe { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let info = logged_on(&client)?.subscribe(&id).await?;
            if client.json {
                output::json(&info)
            } else {
                println!(
                    "subscribed to {id} (now at version {}); changes arrive on 'mcx events'",
                    info.group.version
                );
                Ok(())
            }
        }
        GroupCommand::Share {
            id,
            partner,
            client,
        } => {
            let id = McServiceGroupId::parse(&id)?;
            let partner = mcx_model::SystemDomain::parse(&partner)?;
            let status = logged_on(&client)?.share_group(&id, &partner).await?;
            output::interconnection(&status, client.json)
        }
        GroupCommand::Rekey { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let group = logged_on(&client)?.rekey_group(&id).await?;
            output::group(&group, client.json)
        }
        GroupCommand::Fetch { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let status = logged_on(&client)?.fetch_group(&id).await?;
            output::interconnection(&status, client.json)
        }
        GroupCommand::Status { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let status = logged_on(&client)?.interconnection_status(&id).await?;
            output::interconnection(&status, client.json)
        }
        GroupCommand::Unsubscribe { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            logged_on(&client)?.unsubscribe(&id).await?;
            if !client.json {
                println!("unsubscribed from {id}");
            }
            Ok(())
        }
    }
}
