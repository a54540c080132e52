//! MC systems run as separate `mcx serve` processes on loopback, each with its own
//! configuration and embedded store: what `mcx demo` and `mcx bench` deploy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mcx_server::Config;

/// The running systems; dropping this stops them.
pub(crate) struct Systems {
    /// Client API URL per domain.
    pub(crate) urls: BTreeMap<String, String>,
    children: Vec<(String, Child)>,
}

impl Systems {
    /// Starts one `mcx serve` per configuration and waits until each answers.
    pub(crate) async fn start(
        dir: &Path,
        configs: BTreeMap<String, PathBuf>,
        within: Duration,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the mcx executable")?;
        let mut systems = Systems {
            urls: BTreeMap::new(),
            children: Vec::new(),
        };
        for (domain, config) in &configs {
            let log = std::fs::File::create(dir.join(format!("{domain}.log")))?;
            let child = Command::new(&exe)
                .arg("serve")
                .arg("--config")
                .arg(config)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {domain}"))?;
            systems.children.push((domain.clone(), child));
            let parsed = Config::load(config)?;
            systems
                .urls
                .insert(domain.clone(), format!("http://{}", parsed.server.listen));
        }
        let deadline = Instant::now() + within;
        for (domain, url) in &systems.urls {
            let client = mcx_client::Client::new(url)?;
            loop {
                if client.system().await.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{domain} did not start within {} s; see {}",
                        within.as_secs(),
                        dir.join(format!("{domain}.log")).display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(systems)
    }

    /// Stops the systems (SIGTERM, then kill).
    pub(crate) fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Systems {
    fn drop(&mut self) {
        self.stop();
    }
}
