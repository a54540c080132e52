//! What each command does.

use std::path::Path;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use mcx_client::{Client, IfMatch};
use mcx_model::group::{GroupConfiguration, GroupMemberEntry};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty};
use mcx_server::Config;

use crate::output;
use crate::sessions::{SessionFile, StoredSession};
use crate::{
    AcmCommand, AffiliationArgs, ChangeCommand, Cli, ClientArgs, Command, ConfigCommand,
    GroupCommand, GroupFields, PkiCommand, RegroupCommand, ServeArgs,
};

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", Config::example_text());
            Ok(())
        }
        Command::Config {
            command:
                ConfigCommand::Federation {
                    dir,
                    domains,
                    base_port,
                },
        } => {
            let domains = domains
                .iter()
                .map(|d| mcx_model::SystemDomain::parse(d))
                .collect::<Result<Vec<_>, _>>()?;
            let systems = mcx_server::federation::generate(&dir, &domains, base_port)?;
            println!(
                "wrote a development PKI in {} and:",
                dir.join("pki").display()
            );
            for s in &systems {
                println!(
                    "  {}  (API http://{}, partners https://{})",
                    s.config_file.display(),
                    s.config.server.listen,
                    s.config
                        .interconnection
                        .as_ref()
                        .map(|i| i.listen.to_string())
                        .unwrap_or_default()
                );
            }
            println!(
                "start each with: mcx serve --config <file>; users admin, user1, user2 (password = name)"
            );
            Ok(())
        }
        Command::Passwd { password_file } => {
            let password = match password_file {
                Some(file) => crate::secrets::from_file(&file)?,
                None => crate::secrets::new_password()?,
            };
            println!(
                "{}",
                mcx_core::credentials::hash_password(&password).map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
        Command::Login(args) => {
            let user = McServiceId::parse(&args.user)?;
            let client_id = ClientId::parse(&args.client_id)?;
            let client = Client::new(&args.client.server)?;
            let password = match (args.password, args.password_file) {
                (Some(password), _) => password,
                (None, Some(file)) => crate::secrets::from_file(&file)?,
                (None, None) => crate::secrets::prompt(&format!("password for {user}: "))?,
            };
            let (_, response) = client.log_on(&user, &password, &client_id).await?;
            let mut file = SessionFile::open(args.client.session_file.as_deref())?;
            file.put(
                &args.client.server,
                StoredSession {
                    token: response.token.clone(),
                    mc_service_id: user.to_string(),
                    client_id: client_id.to_string(),
                },
            )?;
            output::session(&response.session, args.client.json, "logged on")
        }
        Command::Logout(args) => {
            let mut file = SessionFile::open(args.session_file.as_deref())?;
            let client = logged_on(&args, &file)?;
            let result = client.log_off().await;
            file.remove(&args.server)?;
            match result {
                // An ended session is logged off already.
                Err(e) if e.code() == Some("invalid-token") => {}
                other => other?,
            }
            if !args.json {
                println!("logged off");
            }
            Ok(())
        }
        Command::Whoami(args) => {
            let file = SessionFile::open(args.session_file.as_deref())?;
            let session = logged_on(&args, &file)?.session().await?;
            output::session(&session, args.json, "logged on")
        }
        Command::Events(args) => events(args).await,
        Command::Affiliate(args) => {
            let (api, service, groups) = affiliation_args(&args)?;
            let response = api.affiliate(service, &groups).await?;
            output::affiliation_statuses(&response.status_per_mc_service_group_id, args.client.json)
        }
        Command::Deaffiliate(args) => {
            let (api, service, groups) = affiliation_args(&args)?;
            let response = api.deaffiliate(service, &groups).await?;
            output::affiliation_statuses(&response.status_per_mc_service_group_id, args.client.json)
        }
        Command::Affiliations {
            user,
            group,
            client,
        } => {
            let file = SessionFile::open(client.session_file.as_deref())?;
            let api = logged_on(&client, &file)?;
            match (user, group) {
                (_, Some(group)) => {
                    let a = api
                        .group_affiliations(&McServiceGroupId::parse(&group)?)
                        .await?;
                    output::group_affiliations(&a, client.json)
                }
                (Some(user), None) => {
                    let a = api.user_affiliations(&McServiceId::parse(&user)?).await?;
                    output::user_affiliations(&a, client.json)
                }
                (None, None) => output::user_affiliations(&api.affiliations().await?, client.json),
            }
        }
        Command::Change { command } => change(command).await,
        Command::Regroup { command } => regroup(command).await,
        Command::Demo {
            out,
            keep,
            base_port,
        } => {
            crate::demo::run(crate::demo::DemoArgs {
                out,
                keep,
                base_port,
            })
            .await
        }
        Command::Acm { command } => acm(command).await,
        Command::Bench(command) => crate::bench::run(command.into_args()?).await,
        Command::Pki {
            command: PkiCommand::Init { dir, name },
        } => {
            let cert = mcx_server::pki::init(&dir, &name)?;
            println!("created certificate authority {}", cert.display());
            Ok(())
        }
        Command::Pki {
            command: PkiCommand::Issue { dir, domain },
        } => {
            let domain = mcx_model::SystemDomain::parse(&domain)?;
            let files = mcx_server::pki::issue(&dir, &domain)?;
            println!(
                "issued {} (key {}) for {domain}",
                files.certificate.display(),
                files.private_key.display()
            );
            Ok(())
        }
        Command::Group { command } => group(command).await,
    }
}

fn logged_on(args: &ClientArgs, file: &SessionFile) -> anyhow::Result<Client> {
    let stored = file.get(&args.server).with_context(|| {
        format!(
            "not logged on to {}: run 'mcx login --user <MC service ID>' first",
            args.server
        )
    })?;
    Ok(Client::new(&args.server)?.with_token(stored.token.clone()))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    let example = args.config.is_none();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::example(),
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.server.data_dir = dir;
    }
    if let Some(url) = args.storage_url {
        config.server.storage_url = Some(url);
    }
    let name = config.system.name.clone();
    let domain = config.system.domain.clone();
    let users: Vec<(String, String)> = config
        .users
        .iter()
        .map(|u| (u.mc_service_id.to_string(), u.password.clone()))
        .collect();
    let node = mcx_server::start(config).await?;
    let mut banner = format!(
        "mcx {}: {name} ({domain}) listening on {}\n",
        env!("CARGO_PKG_VERSION"),
        node.base_url()
    );
    if example {
        banner.push_str("this is the built-in example system; its users (password in brackets):\n");
        for (user, password) in users {
            banner.push_str(&format!("  {user} ({password})\n"));
        }
        banner.push_str(&format!(
            "try: mcx login --server {url} --user sip:alice@police.example --password alice && mcx group list --server {url}\n",
            url = node.base_url()
        ));
    }
    banner.push_str(&format!(
        "API description: {}/v1/openapi.json\n",
        node.base_url()
    ));
    // The banner is for whoever watches; a closed stdout must not stop the server.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    shutdown_signal().await;
    eprintln!("mcx: shutting down");
    node.shutdown().await
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn events(args: crate::EventsArgs) -> anyhow::Result<()> {
    let file = SessionFile::open(args.client.session_file.as_deref())?;
    let client = logged_on(&args.client, &file)?;
    let mut stream = client.events(args.after).await?;
    let mut seen = 0;
    while let Some(item) = stream.next().await {
        let delivered = item?;
        output::event(&delivered, args.client.json)?;
        seen += 1;
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}

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

async fn group(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List(args) => {
            let file = SessionFile::open(args.session_file.as_deref())?;
            let groups = logged_on(&args, &file)?.groups().await?;
            output::groups(&groups, args.json)
        }
        GroupCommand::Get { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            let group = logged_on(&client, &file)?.group(&id).await?;
            output::group(&group, client.json)
        }
        GroupCommand::Create { id, fields, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let configuration = apply_fields(None, &fields)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            let group = logged_on(&client, &file)?
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
            let file = SessionFile::open(client.session_file.as_deref())?;
            let api = logged_on(&client, &file)?;
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
            let file = SessionFile::open(client.session_file.as_deref())?;
            logged_on(&client, &file)?
                .delete_group(&id, if_version.map(IfMatch::Version))
                .await?;
            if !client.json {
                println!("deleted {id}");
            }
            Ok(())
        }
        GroupCommand::Subscribe { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            let info = logged_on(&client, &file)?.subscribe(&id).await?;
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
            let file = SessionFile::open(client.session_file.as_deref())?;
            let status = logged_on(&client, &file)?
                .share_group(&id, &partner)
                .await?;
            output::interconnection(&status, client.json)
        }
        GroupCommand::Rekey { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            let group = logged_on(&client, &file)?.rekey_group(&id).await?;
            output::group(&group, client.json)
        }
        GroupCommand::Fetch { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            let status = logged_on(&client, &file)?.fetch_group(&id).await?;
            output::interconnection(&status, client.json)
        }
        GroupCommand::Status { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            let status = logged_on(&client, &file)?
                .interconnection_status(&id)
                .await?;
            output::interconnection(&status, client.json)
        }
        GroupCommand::Unsubscribe { id, client } => {
            let id = McServiceGroupId::parse(&id)?;
            let file = SessionFile::open(client.session_file.as_deref())?;
            logged_on(&client, &file)?.unsubscribe(&id).await?;
            if !client.json {
                println!("unsubscribed from {id}");
            }
            Ok(())
        }
    }
}

fn affiliation_args(
    args: &AffiliationArgs,
) -> anyhow::Result<(Client, McService, Vec<McServiceGroupId>)> {
    let file = SessionFile::open(args.client.session_file.as_deref())?;
    let api = logged_on(&args.client, &file)?;
    let service: McService = args.service.parse()?;
    let groups = args
        .groups
        .iter()
        .map(|g| McServiceGroupId::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((api, service, groups))
}

async fn change(command: ChangeCommand) -> anyhow::Result<()> {
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
            let file = SessionFile::open(client.session_file.as_deref())?;
            let api = logged_on(&client, &file)?;
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
            output::change(&api.request_change(&request).await?, client.json)
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
            let file = SessionFile::open(client.session_file.as_deref())?;
            let record = logged_on(&client, &file)?
                .answer_change(&id, decision, reason)
                .await?;
            output::change(&record, client.json)
        }
        ChangeCommand::Show { id, client } => {
            let file = SessionFile::open(client.session_file.as_deref())?;
            output::change(&logged_on(&client, &file)?.change(&id).await?, client.json)
        }
    }
}

async fn regroup(command: RegroupCommand) -> anyhow::Result<()> {
    use mcx_model::flows::regroup::{PreconfiguredRegroupRequest, RegroupTargets};
    let client_of = |args: &ClientArgs| -> anyhow::Result<(Client, bool)> {
        let file = SessionFile::open(args.session_file.as_deref())?;
        Ok((logged_on(args, &file)?, args.json))
    };
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
            output::regroup(&api.regroup(&request).await?, as_json)
        }
        RegroupCommand::List(args) => {
            let (api, as_json) = client_of(&args)?;
            let list = api.regroups().await?;
            if as_json {
                return output::json(&list);
            }
            if list.regroups.is_empty() {
                println!("no regroup in effect");
            }
            for r in &list.regroups {
                output::regroup(r, false)?;
            }
            Ok(())
        }
        RegroupCommand::Show { id, client } => {
            let (api, as_json) = client_of(&client)?;
            output::regroup(
                &api.regroup_status(&McServiceGroupId::parse(&id)?).await?,
                as_json,
            )
        }
        RegroupCommand::Cancel { id, client } => {
            let (api, as_json) = client_of(&client)?;
            let response = api.cancel_regroup(&McServiceGroupId::parse(&id)?).await?;
            if as_json {
                return output::json(&response);
            }
            println!("cancelled regroup {}", response.regroup_group_id);
            Ok(())
        }
        RegroupCommand::Ack { id, client } => {
            let (api, as_json) = client_of(&client)?;
            output::regroup(
                &api.acknowledge_regroup(&McServiceGroupId::parse(&id)?)
                    .await?,
                as_json,
            )
        }
    }
}

async fn acm(command: AcmCommand) -> anyhow::Result<()> {
    use mcx_model::flows::acm::{AcmDecision, AcmRequestId};
    let client_of = |args: &ClientArgs| -> anyhow::Result<(Client, bool)> {
        let file = SessionFile::open(args.session_file.as_deref())?;
        Ok((logged_on(args, &file)?, args.json))
    };
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
            output::acm_exchange(&api.acm_provide(&order).await?, as_json)
        }
        AcmCommand::Sent(args) => {
            let (api, as_json) = client_of(&args)?;
            output::acm_exchanges(&api.acm_sent().await?, as_json)
        }
        AcmCommand::Received(args) => {
            let (api, as_json) = client_of(&args)?;
            output::acm_exchanges(&api.acm_received().await?, as_json)
        }
        AcmCommand::Pending(args) => {
            let (api, as_json) = client_of(&args)?;
            let pending = api.acm_pending().await?;
            if as_json {
                return output::json(&pending);
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
            Ok(())
        }
        AcmCommand::Accept { id, client } => {
            let (api, as_json) = client_of(&client)?;
            output::acm_exchange(
                &api.acm_respond(&id_of(&id)?, &AcmDecision::Accepted)
                    .await?,
                as_json,
            )
        }
        AcmCommand::Reject { id, reason, client } => {
            let (api, as_json) = client_of(&client)?;
            output::acm_exchange(
                &api.acm_respond(&id_of(&id)?, &AcmDecision::Rejected { reason })
                    .await?,
                as_json,
            )
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
                users: NonEmpty::new(users).context("at least one --user is needed")?,
                mc_service: service.parse()?,
            };
            output::acm_exchange(&api.acm_apply(&id_of(&id)?, &apply).await?, as_json)
        }
    }
}
