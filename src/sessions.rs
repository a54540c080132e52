//! Sessions kept between CLI commands: one per server URL, in a file only the user can
//! read (it holds bearer tokens).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// One stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct StoredSession {
    pub(crate) token: String,
    pub(crate) mc_service_id: String,
    pub(crate) client_id: String,
}

/// The session file.
pub(crate) struct SessionFile {
    path: PathBuf,
    sessions: BTreeMap<String, StoredSession>,
}

fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mcx").join("sessions.json")
}

impl SessionFile {
    pub(crate) fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = path.map(Path::to_path_buf).unwrap_or_else(default_path);
        let sessions = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "the session file '{}' is damaged; delete it and log on again",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the session file '{}'", path.display()));
            }
        };
        Ok(Self { path, sessions })
    }

    pub(crate) fn get(&self, server: &str) -> Option<&StoredSession> {
        self.sessions.get(server.trim_end_matches('/'))
    }

    pub(crate) fn put(&mut self, server: &str, session: StoredSession) -> anyhow::Result<()> {
        self.sessions
            .insert(server.trim_end_matches('/').to_string(), session);
        self.save()
    }

    pub(crate) fn remove(&mut self, server: &str) -> anyhow::Result<()> {
        self.sessions.remove(server.trim_end_matches('/'));
        self.save()
    }

    fn save(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create '{}'", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&self.sessions)?;
        let tmp = self.path.with_extension("tmp");
        write_private(&tmp, text.as_bytes())
            .with_context(|| format!("cannot write '{}'", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write '{}'", self.path.display()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
