//! Sessions kept between CLI commands: one per (server URL, user), in a file only the user
//! can read (it holds bearer tokens). A command acts as the server's only session, or as
//! the one `--user`/`MCX_USER` names when several users are logged on to one server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// One stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct StoredSession {
    pub(crate) token: String,
    pub(crate) mc_service_id: String,
    pub(crate) client_id: String,
}

/// What the file holds per server. Files written before sessions were kept per user held
/// one session per server; they are read as that user's session and written anew.
#[derive(Deserialize)]
#[serde(untagged)]
enum ServerEntry {
    One(StoredSession),
    PerUser(BTreeMap<String, StoredSession>),
}

/// The session file.
pub(crate) struct SessionFile {
    path: PathBuf,
    /// Server URL (without a trailing slash) → user → session.
    sessions: BTreeMap<String, BTreeMap<String, StoredSession>>,
}

fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mcx").join("sessions.json")
}

fn key(server: &str) -> &str {
    server.trim_end_matches('/')
}

impl SessionFile {
    pub(crate) fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = path.map(Path::to_path_buf).unwrap_or_else(default_path);
        let damaged = || {
            format!(
                "the session file '{}' is damaged; delete it and log on again",
                path.display()
            )
        };
        let stored: BTreeMap<String, ServerEntry> = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(damaged)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the session file '{}'", path.display()));
            }
        };
        let sessions = stored
            .into_iter()
            .map(|(server, entry)| {
                let users = match entry {
                    ServerEntry::One(s) => BTreeMap::from([(s.mc_service_id.clone(), s)]),
                    ServerEntry::PerUser(users) => users,
                };
                (server, users)
            })
            .collect();
        Ok(Self { path, sessions })
    }

    /// The session to act with on `server`: `user`'s, or the only one kept for it.
    pub(crate) fn get(&self, server: &str, user: Option<&str>) -> anyhow::Result<&StoredSession> {
        let users = self.sessions.get(key(server));
        let kept: Vec<&StoredSession> = users.map(|u| u.values().collect()).unwrap_or_default();
        match user {
            Some(user) => users.and_then(|u| u.get(user)).with_context(|| {
                format!(
                    "{user} is not logged on to {server}{}: run 'mcx login --user {user}' first",
                    others(&kept)
                )
            }),
            None => match kept.as_slice() {
                [] => {
                    bail!("not logged on to {server}: run 'mcx login --user <MC service ID>' first")
                }
                [only] => Ok(only),
                several => bail!(
                    "{} users are logged on to {server} ({}): choose one with --user <MC service ID> or MCX_USER",
                    several.len(),
                    names(several)
                ),
            },
        }
    }

    /// The sessions kept for `server`, by user.
    pub(crate) fn on(&self, server: &str) -> Vec<&StoredSession> {
        self.sessions
            .get(key(server))
            .map(|u| u.values().collect())
            .unwrap_or_default()
    }

    /// Keeps `session` for its user on `server`; returns the session it replaces.
    pub(crate) fn put(
        &mut self,
        server: &str,
        session: StoredSession,
    ) -> anyhow::Result<Option<StoredSession>> {
        let replaced = self
            .sessions
            .entry(key(server).to_string())
            .or_default()
            .insert(session.mc_service_id.clone(), session);
        self.save()?;
        Ok(replaced)
    }

    pub(crate) fn remove(&mut self, server: &str, user: &str) -> anyhow::Result<()> {
        if let Some(users) = self.sessions.get_mut(key(server)) {
            users.remove(user);
            if users.is_empty() {
                self.sessions.remove(key(server));
            }
        }
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

fn names(sessions: &[&StoredSession]) -> String {
    let names: Vec<&str> = sessions.iter().map(|s| s.mc_service_id.as_str()).collect();
    names.join(", ")
}

fn others(kept: &[&StoredSession]) -> String {
    if kept.is_empty() {
        String::new()
    } else {
        format!(" (logged on there: {})", names(kept))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: &str) -> StoredSession {
        StoredSession {
            token: format!("token-of-{user}"),
            mc_service_id: user.to_string(),
            client_id: "mcx-cli".to_string(),
        }
    }

    #[test]
    fn a_file_of_the_one_session_per_server_form_is_read_as_that_users_session() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        std::fs::write(
            &path,
            r#"{"http://s": {"token": "t", "mc-service-id": "sip:a@x", "client-id": "c"}}"#,
        )
        .unwrap();
        let file = SessionFile::open(Some(&path)).unwrap();
        assert_eq!(file.get("http://s/", None).unwrap().token, "t");
        assert_eq!(file.get("http://s", Some("sip:a@x")).unwrap().token, "t");
    }

    #[test]
    fn with_two_users_on_one_server_a_command_must_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let mut file = SessionFile::open(Some(&path)).unwrap();
        assert!(file.put("http://s", session("sip:a@x")).unwrap().is_none());
        assert!(file.put("http://s", session("sip:b@x")).unwrap().is_none());
        let replaced = file.put("http://s", session("sip:a@x")).unwrap();
        assert_eq!(replaced.unwrap().mc_service_id, "sip:a@x");

        let file = SessionFile::open(Some(&path)).unwrap();
        let error = file.get("http://s", None).unwrap_err().to_string();
        assert!(
            error.contains("sip:a@x, sip:b@x") && error.contains("--user"),
            "{error}"
        );
        assert_eq!(
            file.get("http://s", Some("sip:b@x")).unwrap().token,
            "token-of-sip:b@x"
        );
        let error = file
            .get("http://s", Some("sip:c@x"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("logged on there: sip:a@x, sip:b@x"),
            "{error}"
        );
    }
}
