//! What each command does, by area: sessions here, then the server, groups,
//! affiliations (and remote change), regroups and ACM.

mod acm;
mod affiliation;
mod group;
mod regroup;
mod serve;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use mcx_client::Client;
use mcx_model::{ClientId, McServiceId};
use mcx_server::Config;

use crate::Done;
use crate::cli::{Cli, ClientArgs, Command, ConfigCommand, EventsArgs, LoginArgs, PkiCommand};
use crate::output;
use crate::sessions::{SessionFile, StoredSession};

pub(crate) async fn run(cli: Cli) -> anyhow::Result<Done> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await.map(|()| Done::All),
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", Config::example_text());
            Ok(Done::All)
        }
        Command::Config {
            command:
                ConfigCommand::Federation {
                    dir,
                    domains,
                    base_port,
                },
        } => serve::federation(&dir, &domains, base_port).map(|()| Done::All),
        Command::Passwd { password_file } => {
            let password = match password_file {
                Some(file) => crate::secrets::from_file(&file)?,
                None => crate::secrets::new_password()?,
            };
            println!(
                "{}",
                mcx_core::credentials::hash_password(&password).map_err(anyhow::Error::msg)?
            );
            Ok(Done::All)
        }
        Command::Login(args) => login(args).await,
        Command::Logout(args) => logout(&args).await,
        Command::Whoami(args) => whoami(&args).await,
        Command::Events(args) => events(args).await,
        Command::Affiliate(args) => affiliation::affiliate(&args).await,
        Command::Deaffiliate(args) => affiliation::deaffiliate(&args).await,
        Command::Affiliations { of, group, client } => {
            affiliation::show(&client, of.as_deref(), group.as_deref()).await
        }
        Command::Change { command } => affiliation::change(command).await,
        Command::Regroup { command } => regroup::regroup(command).await,
        Command::Demo {
            out,
            keep,
            base_port,
        } => crate::demo::run(crate::demo::DemoArgs {
            out,
            keep,
            base_port,
        })
        .await
        .map(|()| Done::All),
        Command::Acm { command } => acm::acm(command).await,
        Command::Bench(command) => crate::bench::run(command.into_args()?)
            .await
            .map(|()| Done::All),
        Command::Pki {
            command: PkiCommand::Init { dir, name },
        } => {
            let cert = mcx_server::pki::init(&dir, &name)?;
            println!("created certificate authority {}", cert.display());
            Ok(Done::All)
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
            Ok(Done::All)
        }
        Command::Group { command } => group::group(command).await,
    }
}

/// A client acting with the session `args` select (see `sessions`).
fn logged_on(args: &ClientArgs) -> anyhow::Result<Client> {
    let file = SessionFile::open(args.session_file.as_deref())?;
    let stored = file.get(&args.server, args.user.as_deref())?;
    Ok(Client::new(&args.server)?.with_token(stored.token.clone()))
}

/// The client `args` select, and whether to print JSON.
fn client_of(args: &ClientArgs) -> anyhow::Result<(Client, bool)> {
    Ok((logged_on(args)?, args.json))
}

async fn login(args: LoginArgs) -> anyhow::Result<Done> {
    let user = args
        .client
        .user
        .as_deref()
        .context("whom to log on: give --user <MC service ID> (or MCX_USER)")?;
    let user = McServiceId::parse(user)?;
    let client_id = ClientId::parse(&args.client_id)?;
    let client = Client::new(&args.client.server)?;
    let password = match (args.password, args.password_file) {
        (Some(password), _) => password,
        (None, Some(file)) => crate::secrets::from_file(&file)?,
        (None, None) => crate::secrets::prompt(&format!("password for {user}: "))?,
    };
    let (_, response) = client.log_on(&user, &password, &client_id).await?;
    let mut file = SessionFile::open(args.client.session_file.as_deref())?;
    let replaced = file.put(
        &args.client.server,
        StoredSession {
            token: response.token.clone(),
            mc_service_id: user.to_string(),
            client_id: client_id.to_string(),
        },
    )?;
    output::session(&response.session, args.client.json, "logged on")?;
    if let Some(old) = replaced {
        // On stderr: scripts reading the session from stdout are not disturbed.
        eprintln!(
            "mcx: this replaces {}'s previous session (client '{}') kept for {}",
            old.mc_service_id, old.client_id, args.client.server
        );
    }
    Ok(Done::All)
}

async fn logout(args: &ClientArgs) -> anyhow::Result<Done> {
    let mut file = SessionFile::open(args.session_file.as_deref())?;
    let stored = file.get(&args.server, args.user.as_deref())?.clone();
    let client = Client::new(&args.server)?.with_token(stored.token);
    let result = client.log_off().await;
    file.remove(&args.server, &stored.mc_service_id)?;
    match result {
        // An ended session is logged off already.
        Err(e) if e.code() == Some("invalid-token") => {}
        other => other?,
    }
    if !args.json {
        println!("logged off {}", stored.mc_service_id);
    }
    Ok(Done::All)
}

/// The selected session, or every session kept for the server when several are and none
/// was chosen (each as the server now knows it).
async fn whoami(args: &ClientArgs) -> anyhow::Result<Done> {
    let file = SessionFile::open(args.session_file.as_deref())?;
    let kept = file.on(&args.server);
    if args.user.is_some() || kept.len() <= 1 {
        let session = logged_on(args)?.session().await?;
        output::session(&session, args.json, "logged on")?;
        return Ok(Done::All);
    }
    let mut sessions = Vec::new();
    let mut all_valid = true;
    for stored in kept {
        let client = Client::new(&args.server)?.with_token(stored.token.clone());
        match client.session().await {
            Ok(session) => sessions.push(Ok(session)),
            Err(e) if e.code() == Some("invalid-token") => {
                all_valid = false;
                sessions.push(Err(stored.clone()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    output::sessions(&sessions, args.json)?;
    Ok(Done::all_if(all_valid))
}

async fn events(args: EventsArgs) -> anyhow::Result<Done> {
    let client = logged_on(&args.client)?;
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
    Ok(Done::All)
}
