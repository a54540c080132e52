//! The command line: every command, option and its help (clap), and the conventions all
//! client commands share.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench;

/// Interconnected mission-critical (MCPTT, MCVideo, MCData) systems.
#[derive(Parser)]
#[command(name = "mcx", version, about, long_about = None, after_help = CONVENTIONS)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The conventions every client command follows, shown by `mcx --help`.
pub(crate) const CONVENTIONS: &str = "\
Lists: a list option takes several values after one flag or the flag repeated \
(--group A B = --group A --group B); affiliate and deaffiliate also take groups as arguments.
Sessions: one per (server, user); with several users logged on to one server, choose with \
--user or MCX_USER. 'mcx whoami' lists them.
Times: RFC 3339 in UTC (2026-12-02T08:17:26Z), with a relative form in text output.
--json: the whole response document the API returned.
Exit codes: 0 all was done; 1 error; 2 the command line is wrong; 3 the server answered \
but did not do all that was asked (nothing, or only part).";

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Show affiliations: your own, another user's (--of) or a group's members (--group).
    Affiliations {
        /// Another user of this system.
        #[arg(long = "of", value_name = "URI", conflicts_with = "group")]
        of: Option<String>,
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
pub(crate) struct AffiliationArgs {
    /// The groups.
    #[arg(value_name = "GROUP", required_unless_present = "group_flags")]
    pub(crate) groups: Vec<String>,
    /// A group (as the arguments; several values or repeatable).
    #[arg(long = "group", value_name = "GROUP", num_args = 1..)]
    pub(crate) group_flags: Vec<String>,
    /// The MC service.
    #[arg(long, default_value = "mcptt")]
    pub(crate) service: String,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Subcommand)]
pub(crate) enum ChangeCommand {
    /// Ask for a change (mandatory unless --negotiated).
    Request {
        /// A target user (several values or repeatable).
        #[arg(long = "target", required = true, value_name = "URI", num_args = 1..)]
        targets: Vec<String>,
        /// A group to affiliate the targets to (several values or repeatable).
        #[arg(long = "affiliate", value_name = "GROUP", num_args = 1..)]
        affiliate: Vec<String>,
        /// A group to de-affiliate the targets from (several values or repeatable).
        #[arg(long = "deaffiliate", value_name = "GROUP", num_args = 1..)]
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
pub(crate) enum RegroupCommand {
    /// Regroup groups into a regroup group taking a preconfigured group's configuration.
    Create {
        /// A group to regroup (several values or repeatable; of this or partner systems).
        #[arg(long = "group", required = true, value_name = "GROUP", num_args = 1..)]
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
pub(crate) enum AcmCommand {
    /// Provide group IDs of this system to an authorised user of a partner system.
    Provide {
        /// The partner system's user.
        #[arg(long = "to", value_name = "URI")]
        target: String,
        /// A group of this system (several values or repeatable).
        #[arg(long = "group", required = true, value_name = "GROUP", num_args = 1..)]
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
        /// A local user (several values or repeatable).
        #[arg(long = "for", required = true, value_name = "URI", num_args = 1..)]
        users: Vec<String>,
        /// The MC service.
        #[arg(long, default_value = "mcptt")]
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
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
pub(crate) struct ServeArgs {
    /// The system's configuration file (TOML). Without it, the built-in example system.
    #[arg(long, short = 'c', env = "MCX_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Listen address of the client API, overriding the configuration (port 0: any free port).
    #[arg(long)]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Data directory, overriding the configuration.
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Storage URL (postgres://... or sqlite://...), overriding the configuration.
    #[arg(long, env = "MCX_STORAGE_URL")]
    pub(crate) storage_url: Option<String>,
    /// How log lines are written to standard error: `text` for people, `json` (one object
    /// per line) for a log collector. Which lines: `RUST_LOG`, e.g. `info`,
    /// `warn,mcx::flow=info` (every inter-system flow with its correlation ID),
    /// `info,sqlx=warn`; default `info`.
    #[arg(long, value_enum, env = "MCX_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Same as `--log-format json` (kept for scripts written for 0.1).
    #[arg(long, hide = true)]
    pub(crate) log_json: bool,
}

/// How `mcx serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
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
pub(crate) struct ClientArgs {
    /// The MC system's client API.
    #[arg(
        long,
        env = "MCX_SERVER",
        default_value = "http://127.0.0.1:7400",
        global = true
    )]
    pub(crate) server: String,
    /// Where sessions are kept between commands.
    #[arg(long, env = "MCX_SESSION_FILE", global = true)]
    pub(crate) session_file: Option<PathBuf>,
    /// Act as this user (MC service ID) when several are logged on to the server; for
    /// `mcx login`, the user to log on.
    #[arg(long, short = 'u', env = "MCX_USER", global = true, value_name = "URI")]
    pub(crate) user: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct LoginArgs {
    /// The password. Unsafe: other local users see it in the process list; prefer the
    /// prompt (on a terminal), MCX_PASSWORD or --password-file.
    #[arg(long, short = 'p', env = "MCX_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// Read the password from this file (its first line).
    #[arg(long, conflicts_with = "password")]
    pub(crate) password_file: Option<PathBuf>,
    /// This client's MC service client ID.
    #[arg(long, default_value = "mcx-cli")]
    pub(crate) client_id: String,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Args)]
pub(crate) struct EventsArgs {
    /// Resume after this event ID instead of reading every stored event.
    #[arg(long)]
    pub(crate) after: Option<i64>,
    /// Stop after this many events.
    #[arg(long)]
    pub(crate) count: Option<usize>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Subcommand)]
pub(crate) enum GroupCommand {
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
        /// Add a member (several values or repeatable).
        #[arg(long = "add-member", value_name = "URI", num_args = 1..)]
        add_members: Vec<String>,
        /// Remove a member (several values or repeatable).
        #[arg(long = "remove-member", value_name = "URI", num_args = 1..)]
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
pub(crate) struct GroupFields {
    /// A configuration file (JSON, or TOML if it ends in .toml) holding the whole configuration.
    #[arg(long, short = 'f')]
    pub(crate) file: Option<PathBuf>,
    /// display-name.
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// supported-services (several values or repeatable; replaces the list): mcptt, mcvideo, mcdata.
    #[arg(long = "service", value_name = "SERVICE", num_args = 1..)]
    pub(crate) services: Vec<String>,
    /// A member's MC service ID (several values or repeatable; replaces the member list).
    #[arg(long = "member", value_name = "URI", num_args = 1..)]
    pub(crate) members: Vec<String>,
    /// on-network-group-priority (0-255).
    #[arg(long)]
    pub(crate) priority: Option<u8>,
    /// on-network-disabled.
    #[arg(long)]
    pub(crate) disabled: bool,
    /// preconfigured-group-use-only.
    #[arg(long)]
    pub(crate) preconfigured_only: bool,
    /// A permitted location (several values or repeatable; replaces the list).
    #[arg(long = "location", value_name = "AREA", num_args = 1..)]
    pub(crate) locations: Vec<String>,
}

/// `mcx bench`: by default starts a home system and partners as `mcx serve` processes and
/// runs every scenario against them.
#[derive(Debug, Args)]
pub(crate) struct BenchCommand {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    pub(crate) scenarios: Vec<bench::Scenario>,
    /// Measured seconds per load phase.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Unmeasured seconds before each load phase (connections, caches).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) warmup: f64,
    /// Concurrent clients (users of the home system) in the request scenarios.
    #[arg(long, default_value_t = 32)]
    pub(crate) workers: usize,
    /// Partner systems (at least 2: the regroup spans home, partner1 and partner2).
    #[arg(long, default_value_t = 10)]
    pub(crate) partners: usize,
    /// Clients subscribed to the fan-out group, spread over the partners.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) subscribers: usize,
    /// Affiliated regroup members, a third at each of home, partner1 and partner2.
    #[arg(long, default_value_t = 300)]
    pub(crate) members: usize,
    /// Changes (notify-fanout) and regroups (regroup) measured.
    #[arg(long, default_value_t = 20)]
    pub(crate) repeat: usize,
    /// Affiliations stored at the home system before it starts; several to compare
    /// (`--preload 10000 1000000`, or the flag repeated).
    #[arg(long, value_name = "COUNT", num_args = 1..)]
    pub(crate) preload: Vec<u64>,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Keep the deployment (configurations, stores, server logs) under this directory
    /// instead of a temporary one.
    #[arg(long, conflicts_with_all = ["prepare", "running"])]
    pub(crate) dir: Option<PathBuf>,
    /// Only write a deployment (configurations, PKI, deployment.json) here, to start by hand.
    #[arg(long, conflicts_with = "running")]
    pub(crate) prepare: Option<PathBuf>,
    /// Drive the deployment described by DIR/deployment.json, already running.
    #[arg(long)]
    pub(crate) running: Option<PathBuf>,
    /// Use consecutive ports from this one, two per system (default: any free ports).
    #[arg(long)]
    pub(crate) base_port: Option<u16>,
    /// Also run each request scenario paced at this many requests per second (latency at
    /// a given load, to compare builds or machines).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
}

impl BenchCommand {
    pub(crate) fn into_args(self) -> anyhow::Result<bench::BenchArgs> {
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
