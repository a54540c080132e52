//! `mcx`: one binary for the server (`mcx serve`) and its clients (`mcx login`,
//! `mcx group ...`, `mcx events`). Exit codes: 0 success, 1 the operation failed (the
//! message says why), 2 the command line is wrong.

mod bench;
mod commands;
mod demo;
mod local_systems;
mod output;
mod secrets;
mod sessions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Interconnected mission-critical (MCPTT, MCVideo, MCData) systems.
#[derive(Parser)]
#[command(name = "mcx", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MC system (the built-in example system without --config).
    Serve(ServeArgs),
    /// Print configuration examples.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the Argon2id hash of a password, for a configuration's `password`: the
    /// password is read from the terminal (twice), from --password-file, or as one line
    /// from standard input.
    Passwd {
        /// Read the password from this file (its first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Log on to an MC system; the session is kept for the following commands.
    Login(LoginArgs),
    /// Log off (ends this client's session at the server).
    Logout(ClientArgs),
    /// Show the current session and profile.
    Whoami(ClientArgs),
    /// Group management: define, read, change and delete groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Print this client's event stream (notifications), following it until interrupted.
    Events(EventsArgs),
    /// Affiliate this client to groups (of this system or of partner systems).
    Affiliate(AffiliationArgs),
    /// De-affiliate this client from groups.
    Deaffiliate(AffiliationArgs),
    /// Show affiliations: your own, another user's (--user) or a group's members (--group).
    Affiliations {
        /// Another user of this system.
        #[arg(long, conflicts_with = "group")]
        user: Option<String>,
        /// A group.
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Start three interconnected MC systems and play every procedure, with sequence charts.
    Demo {
        /// Where to write the report (index.html with the charts, report.json).
        #[arg(long, default_value = "mcx-demo-report")]
        out: PathBuf,
        /// Leave the three systems running afterwards.
        #[arg(long)]
        keep: bool,
        /// Use six consecutive ports from this one (default: any free ports).
        #[arg(long)]
        base_port: Option<u16>,
    },
    /// Load a deployment with many concurrent clients; report throughput, latency and memory.
    Bench(BenchCommand),
    /// Preconfigured group regroup across systems (TS 23.280 §10.15.3.3.1).
    Regroup {
        #[command(subcommand)]
        command: RegroupCommand,
    },
    /// Interconnection group IDs for partner users through the ACM servers (TR 23.700-38).
    Acm {
        #[command(subcommand)]
        command: AcmCommand,
    },
    /// Remote change of other users' affiliations (TS 23.280 §10.8.5).
    Change {
        #[command(subcommand)]
        command: ChangeCommand,
    },
    /// A development PKI: a certificate authority and certificates for MC systems.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Args)]
struct AffiliationArgs {
    /// The groups.
    #[arg(required = true)]
    groups: Vec<String>,
    /// The MC service.
    #[arg(long, default_value = "mcptt")]
    service: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum ChangeCommand {
    /// Ask for a change (mandatory unless --negotiated).
    Request {
        /// A target user (repeatable).
        #[arg(long = "target", required = true, value_name = "URI")]
        targets: Vec<String>,
        /// A group to affiliate the targets to (repeatable).
        #[arg(long = "affiliate", value_name = "GROUP")]
        affiliate: Vec<String>,
        /// A group to de-affiliate the targets from (repeatable).
        #[arg(long = "deaffiliate", value_name = "GROUP")]
        deaffiliate: Vec<String>,
        /// Ask the targets instead of imposing the change.
        #[arg(long)]
        negotiated: bool,
        /// The MC service.
        #[arg(long, default_value = "mcptt")]
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Answer a change addressed to you: accept, reject (negotiated) or acknowledge (mandatory).
    Answer {
        /// The change ID (from the event stream).
        id: String,
        /// accept, reject or acknowledge.
        decision: String,
        /// A reason for the requester.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a change.
    Show {
        /// The change ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum RegroupCommand {
    /// Regroup groups into a regroup group taking a preconfigured group's configuration.
    Create {
        /// A group to regroup (repeatable; of this or partner systems).
        #[arg(long = "group", required = true, value_name = "GROUP")]
        groups: Vec<String>,
        /// The preconfigured group (defined in this system).
        #[arg(long)]
        preconfigured: String,
        /// The regroup group ID wanted (one is assigned if absent or not acceptable).
        #[arg(long)]
        regroup_group_id: Option<String>,
        /// The MC service.
        #[arg(long, default_value = "mcptt")]
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the regroups in effect.
    List(ClientArgs),
    /// Show one regroup.
    Show {
        /// The regroup group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a regroup (at the system where it was made).
    Cancel {
        /// The regroup group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Acknowledge a regroup this client was affiliated to.
    Ack {
        /// The regroup group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum AcmCommand {
    /// Provide group IDs of this system to an authorised user of a partner system.
    Provide {
        /// The partner system's user.
        #[arg(long = "to", value_name = "URI")]
        target: String,
        /// A group of this system (repeatable).
        #[arg(long = "group", required = true, value_name = "GROUP")]
        groups: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The requests you sent and where they stand.
    Sent(ClientArgs),
    /// The requests addressed to you.
    Received(ClientArgs),
    /// Download pending ACM data (requests to answer, responses to your requests).
    Pending(ClientArgs),
    /// Accept a request addressed to you.
    Accept {
        /// The request ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject a request addressed to you.
    Reject {
        /// The request ID.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Apply an accepted request's groups to local users' profiles.
    Apply {
        /// The request ID.
        id: String,
        /// A local user (repeatable).
        #[arg(long = "user", required = true, value_name = "URI")]
        users: Vec<String>,
        /// The MC service.
        #[arg(long, default_value = "mcptt")]
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a certificate authority in DIR (ca.crt, ca.key).
    Init {
        /// The directory.
        dir: PathBuf,
        /// The authority's name.
        #[arg(long, default_value = "mcx development CA")]
        name: String,
    },
    /// Issue a certificate for an MC system (DIR/DOMAIN.crt, DIR/DOMAIN.key).
    Issue {
        /// The directory holding the authority.
        dir: PathBuf,
        /// The system's domain, e.g. police.example.
        domain: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// The system's configuration file (TOML). Without it, the built-in example system.
    #[arg(long, short = 'c', env = "MCX_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address of the client API, overriding the configuration (port 0: any free port).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory, overriding the configuration.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Storage URL (postgres://... or sqlite://...), overriding the configuration.
    #[arg(long, env = "MCX_STORAGE_URL")]
    storage_url: Option<String>,
    /// Log lines as JSON.
    #[arg(long)]
    log_json: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the built-in example system's configuration.
    Example,
    /// Write a development PKI and one configuration per system, every system a partner
    /// of every other, ready for `mcx serve --config DIR/<domain>.toml`.
    Federation {
        /// Where to write (created if missing).
        dir: PathBuf,
        /// The systems' domains.
        #[arg(required = true, num_args = 2..)]
        domains: Vec<String>,
        /// The first system's client API port; each system takes two ports (API, partners).
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
    },
}

/// Options shared by the client commands.
#[derive(Args, Clone)]
struct ClientArgs {
    /// The MC system's client API.
    #[arg(
        long,
        env = "MCX_SERVER",
        default_value = "http://127.0.0.1:7400",
        global = true
    )]
    server: String,
    /// Where sessions are kept between commands.
    #[arg(long, env = "MCX_SESSION_FILE", global = true)]
    session_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args)]
struct LoginArgs {
    /// The user's MC service ID, e.g. sip:alice@police.example.
    #[arg(long, short = 'u')]
    user: String,
    /// The password. Unsafe: other local users see it in the process list; prefer the
    /// prompt (on a terminal), MCX_PASSWORD or --password-file.
    #[arg(long, short = 'p', env = "MCX_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from this file (its first line).
    #[arg(long, conflicts_with = "password")]
    password_file: Option<PathBuf>,
    /// This client's MC service client ID.
    #[arg(long, default_value = "mcx-cli")]
    client_id: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct EventsArgs {
    /// Resume after this event ID instead of reading every stored event.
    #[arg(long)]
    after: Option<i64>,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// List the groups you may see.
    List(ClientArgs),
    /// Show one group.
    Get {
        /// MC service group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Define a group in this system.
    Create {
        /// MC service group ID (in the system's domain).
        id: String,
        #[command(flatten)]
        fields: GroupFields,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a group: flags change single fields; --file replaces the configuration.
    Update {
        /// MC service group ID.
        id: String,
        #[command(flatten)]
        fields: GroupFields,
        /// Add a member (repeatable).
        #[arg(long = "add-member", value_name = "URI")]
        add_members: Vec<String>,
        /// Remove a member (repeatable).
        #[arg(long = "remove-member", value_name = "URI")]
        remove_members: Vec<String>,
        /// Enable the group on network.
        #[arg(long, conflicts_with = "disabled")]
        enabled: bool,
        /// Only if the group is still at this version (default: the version just read).
        #[arg(long)]
        if_version: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a group defined in this system.
    Delete {
        /// MC service group ID.
        id: String,
        /// Only if the group is at this version.
        #[arg(long)]
        if_version: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Subscribe this client to a group's configuration (changes arrive on `mcx events`).
    Subscribe {
        /// MC service group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End this client's subscription to a group.
    Unsubscribe {
        /// MC service group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Provide a group's configuration to a partner system (TS 23.280 §10.2.7.2).
    Share {
        /// MC service group ID (defined in this system).
        id: String,
        /// The partner system's domain.
        #[arg(long = "with", value_name = "DOMAIN")]
        partner: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Generate new key material for a group; subscribed partners are notified.
    Rekey {
        /// MC service group ID (defined in this system).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Request a partner-homed group's configuration from its primary (§10.2.7.3).
    Fetch {
        /// MC service group ID (defined in a partner system).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show how a group is shared between systems.
    Status {
        /// MC service group ID.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Fields of a group configuration given as flags (or all at once with --file).
#[derive(Args, Default)]
struct GroupFields {
    /// A configuration file (JSON, or TOML if it ends in .toml) holding the whole configuration.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// display-name.
    #[arg(long)]
    display_name: Option<String>,
    /// supported-services (repeatable; replaces the list): mcptt, mcvideo, mcdata.
    #[arg(long = "service", value_name = "SERVICE")]
    services: Vec<String>,
    /// A member's MC service ID (repeatable; replaces the member list).
    #[arg(long = "member", value_name = "URI")]
    members: Vec<String>,
    /// on-network-group-priority (0-255).
    #[arg(long)]
    priority: Option<u8>,
    /// on-network-disabled.
    #[arg(long)]
    disabled: bool,
    /// preconfigured-group-use-only.
    #[arg(long)]
    preconfigured_only: bool,
    /// A permitted location (repeatable; replaces the list).
    #[arg(long = "location", value_name = "AREA")]
    locations: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcx: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcx: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `mcx bench`: by default starts a home system and partners as `mcx serve` processes and
/// runs every scenario against them.
#[derive(Debug, Args)]
struct BenchCommand {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    scenarios: Vec<bench::Scenario>,
    /// Measured seconds per load phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before each load phase (connections, caches).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Concurrent clients (users of the home system) in the request scenarios.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Partner systems (at least 2: the regroup spans home, partner1 and partner2).
    #[arg(long, default_value_t = 10)]
    partners: usize,
    /// Clients subscribed to the fan-out group, spread over the partners.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Affiliated regroup members, a third at each of home, partner1 and partner2.
    #[arg(long, default_value_t = 300)]
    members: usize,
    /// Changes (notify-fanout) and regroups (regroup) measured.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Affiliations stored at the home system before it starts; repeat the option to
    /// compare (`--preload 10000 --preload 1000000`).
    #[arg(long)]
    preload: Vec<u64>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the deployment (configurations, stores, server logs) under this directory
    /// instead of a temporary one.
    #[arg(long, conflicts_with_all = ["prepare", "running"])]
    dir: Option<PathBuf>,
    /// Only write a deployment (configurations, PKI, deployment.json) here, to start by hand.
    #[arg(long, conflicts_with = "running")]
    prepare: Option<PathBuf>,
    /// Drive the deployment described by DIR/deployment.json, already running.
    #[arg(long)]
    running: Option<PathBuf>,
    /// Use consecutive ports from this one, two per system (default: any free ports).
    #[arg(long)]
    base_port: Option<u16>,
    /// Also run each request scenario paced at this many requests per second (latency at
    /// a given load, to compare builds or machines).
    #[arg(long)]
    rate: Option<f64>,
}

impl BenchCommand {
    fn into_args(self) -> anyhow::Result<bench::BenchArgs> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(std::time::Duration::from_secs_f64(value))
            } else {
                Err(anyhow::anyhow!(
                    "--{name} must be a number of seconds, not {value}"
                ))
            }
        };
        let scenarios = if self.scenarios.is_empty() {
            <bench::Scenario as clap::ValueEnum>::value_variants().to_vec()
        } else {
            self.scenarios
        };
        Ok(bench::BenchArgs {
            scenarios,
            duration: seconds("duration", self.duration)?,
            warmup: seconds("warmup", self.warmup)?,
            workers: self.workers,
            partners: self.partners,
            subscribers: self.subscribers,
            members: self.members,
            repeat: self.repeat,
            preload: self.preload,
            json: self.json,
            dir: self.dir,
            prepare: self.prepare,
            running: self.running,
            base_port: self.base_port,
            rate: match self.rate {
                Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                    anyhow::bail!(
                        "--rate must be a positive number of requests per second, not {rate}"
                    )
                }
                rate => rate,
            },
        })
    }
}
