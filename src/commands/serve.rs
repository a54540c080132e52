//! `mcx serve` and `mcx config federation`.

use std::path::Path;

use mcx_server::Config;

use crate::cli::ServeArgs;

pub(super) fn federation(dir: &Path, domains: &[String], base_port: u16) -> anyhow::Result<()> {
    let domains = domains
        .iter()
        .map(|d| mcx_model::SystemDomain::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    let systems = mcx_server::federation::generate(dir, &domains, base_port)?;
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

pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let json = args.log_json || args.log_format == crate::cli::LogFormat::Json;
    // Held until the server stops: dropping it writes out the lines still queued.
    let _log_writer = init_logging(json)?;
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

/// Starts logging. A `RUST_LOG` that is set but not a filter is refused: a server started
/// with a typo would otherwise log something other than what its operator asked for.
///
/// Lines are written by a thread of their own, in batches: at the default level every
/// flow between systems is a line, and a write to standard error per line was a system
/// call on the request's own thread. No line is dropped: under a flood, logging waits instead.
/// Colours only on a terminal, so that a log file holds plain text.
fn init_logging(json: bool) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    use std::io::IsTerminal as _;
    let text = std::env::var("RUST_LOG")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(with_sip_stack_quiet(&text)).map_err(|e| {
        anyhow::anyhow!(
            "RUST_LOG='{text}' is not a log filter ({e}); write e.g. RUST_LOG=info or RUST_LOG=warn,mcx::flow=info"
        )
    })?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcx-log-writer")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(guard)
}

/// The filter `text` with the SIP stack's own lines at `warn` unless it names the stack:
/// rsipstack logs every message it sends or receives, whole, at `info`, and a PUBLISH's
/// body carries the client's access token. A line per message was also most of a busy
/// SIP door's work.
fn with_sip_stack_quiet(text: &str) -> String {
    if text.contains("rsipstack") {
        text.to_string()
    } else {
        format!("{text},rsipstack=warn")
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
