//! The configuration of one MC system, in TOML. `mcx serve` without `--config` runs
//! [`Config::example`], a small police system.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mcx_model::group::GroupConfiguration;
use mcx_model::interconnection::{Capability, LocalGroupPolicy};
use mcx_model::profile::{Permission, ServiceProfile, UserProfile};
use mcx_model::{McService, McServiceGroupId, McServiceId, SystemDomain};
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Which MC system this is.
    pub system: SystemSection,
    /// Where and how it serves.
    #[serde(default)]
    pub server: ServerSection,
    /// The users of this system.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Groups defined at first start (kept as they are afterwards: changes made through
    /// the API win over the file).
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// The interconnection endpoint partners reach (mutual TLS). Needed with partners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interconnection: Option<InterconnectionSection>,
    /// The partner systems.
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
    /// The SIP listener for MC clients (TS 24.379); none without this section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipSection>,
}

/// `[sip]`: the SIP door to the MC service server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SipSection {
    /// UDP and TCP, the same port (`127.0.0.1:5060`; port 0 picks one).
    pub listen: SocketAddr,
    /// The MC service server's PSI: the Request-URI of PUBLISH, SUBSCRIBE (presence)
    /// and MESSAGE. Default `sip:mcptt-psi@<system domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<String>,
    /// The GMS's PSI: the Request-URI of xcap-diff SUBSCRIBEs. Default
    /// `sip:mcptt-gms-psi@<system domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gms_psi: Option<String>,
    /// Addresses of SIP proxies whose `P-Asserted-Identity` is believed (the IMS core
    /// that authenticated the user). Requests from anywhere else name their user by
    /// access token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// SIP over TLS (`sips:`, RFC 3261 §26.2) on this address (port 0 picks one); none
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// The TLS certificate chain (PEM); default: `[interconnection] certificate`, the
    /// system's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM); default: `[interconnection] private-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PathBuf>,
}

impl SipSection {
    /// A listener on `listen` with the default PSIs and no trusted proxy.
    pub fn listening(listen: SocketAddr) -> Self {
        Self {
            listen,
            psi: None,
            gms_psi: None,
            trusted_proxies: Vec::new(),
            tls_listen: None,
            certificate: None,
            private_key: None,
        }
    }
}

/// `[interconnection]`: this system's one endpoint for partners.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InterconnectionSection {
    /// Listen address of the interconnection endpoint (HTTPS, mutual TLS).
    pub listen: SocketAddr,
    /// This system's certificate chain (PEM); its subject alternative name is the
    /// system's domain. Used as server and as client certificate.
    pub certificate: PathBuf,
    /// The certificate's private key (PEM, PKCS#8).
    pub private_key: PathBuf,
    /// Delay before the first retry of an undelivered request, in milliseconds.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_ms: u64,
    /// Longest delay between retries, in milliseconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// How long to wait for a partner's answer, in milliseconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// With several nodes: how long a node's claim on a partner's outbox lane lasts
    /// without renewal, in milliseconds; a killed node's undelivered flows are taken over
    /// by another node this long after. Longer than `request-timeout-ms`.
    #[serde(default = "default_lane_lease")]
    pub lane_lease_ms: u64,
}

fn default_retry_initial() -> u64 {
    200
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_request_timeout() -> u64 {
    10_000
}
fn default_lane_lease() -> u64 {
    30_000
}

/// A partner's interconnection endpoint URLs, in the order they are tried: written as one
/// string or as a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints(pub Vec<String>);

impl From<String> for Endpoints {
    fn from(url: String) -> Self {
        Endpoints(vec![url])
    }
}

impl Serialize for Endpoints {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(url) => Endpoints(vec![url]),
            OneOrMany::Many(urls) => Endpoints(urls),
        })
    }
}

/// `[[partners]]`: an interconnected MC system.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's domain; its certificate must name it.
    pub domain: SystemDomain,
    /// The partner's interconnection endpoint, `https://host:port`, or several (a list:
    /// the partner's nodes); a flow that cannot reach one is sent to the next.
    pub endpoint: Endpoints,
    /// PEM file of the certificate authorities that issue the partner's certificates.
    pub trust_anchors: PathBuf,
    /// What the partner may ask of this system.
    #[serde(default)]
    pub inbound: BTreeSet<Capability>,
    /// What this system may ask of the partner.
    #[serde(default)]
    pub outbound: BTreeSet<Capability>,
    /// How this system modifies group configuration received from the partner.
    #[serde(default)]
    pub policy: LocalGroupPolicy,
}

/// `[system]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SystemSection {
    /// The system's domain; every user and group defined here has an ID in it.
    pub domain: SystemDomain,
    /// The system's name for people.
    pub name: String,
    /// A development system: plain-text passwords are accepted (hashed at start, with a
    /// warning). Never for a deployment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub development: bool,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerSection {
    /// The client API's listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the embedded database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The file holding the key that seals group key material in the store, created
    /// (0600) if missing. Default: beside the interconnection private key, or beside the
    /// data directory; never inside the database. Every node of a system shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_key: Option<PathBuf>,
    /// A storage URL (`postgres://...` or `sqlite://...`); the embedded SQLite file in the
    /// data directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_url: Option<String>,
    /// Where Prometheus may scrape `GET /metrics` without a token (a separate listener,
    /// e.g. `127.0.0.1:9464`, reachable by the monitoring network only). Without it,
    /// `/metrics` is served on the client API to group administrators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// How long a session lasts after log-on, in seconds.
    #[serde(default = "default_session_ttl")]
    pub session_ttl_seconds: u64,
    /// The largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a negotiated remote change of affiliation waits for its targets, in seconds.
    #[serde(default = "default_change_timeout")]
    pub remote_change_timeout_seconds: u64,
    /// How long a client's affiliation to a partner group waits for the host's answer
    /// before it is answered `affiliating` (milliseconds; the answer then comes as an
    /// `affiliation-status-changed` event).
    #[serde(default = "default_affiliation_wait")]
    pub affiliation_wait_ms: u64,
    /// Both listeners: a request's headers must arrive within this time (milliseconds).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
    /// Both listeners: a connection with no traffic for this long is closed (seconds;
    /// event streams send a keep-alive every 15 s).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u64,
    /// Each listener: at most this many open connections; more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Entries in a group's member list, from a client or a partner.
    #[serde(default = "default_max_group_members")]
    pub max_group_members: usize,
    /// Entries in any list of one request (groups, targets, users), from a client or a
    /// partner.
    #[serde(default = "default_max_list_entries")]
    pub max_list_entries: usize,
    /// The XCAP root of the group documents (TS 24.481) on the client listener: a path.
    #[serde(default = "default_xcap_root")]
    pub xcap_root: String,
}

fn default_xcap_root() -> String {
    crate::api::XCAP_ROOT.to_string()
}

fn default_max_group_members() -> usize {
    mcx_core::limits::Limits::default().max_group_members
}
fn default_max_list_entries() -> usize {
    mcx_core::limits::Limits::default().max_list_entries
}

fn default_header_read_timeout() -> u64 {
    10_000
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_max_connections() -> usize {
    4096
}

impl Config {
    /// Where the storage key lives (see [`ServerSection::storage_key`]).
    pub fn storage_key_path(&self) -> PathBuf {
        if let Some(path) = &self.server.storage_key {
            return path.clone();
        }
        match &self.interconnection {
            Some(ic) => ic.private_key.with_extension("storage-key"),
            None => self.server.data_dir.with_extension("storage-key"),
        }
    }
}

impl ServerSection {
    /// The limits both listeners apply.
    pub fn connection_limits(&self) -> crate::listener::ConnectionLimits {
        crate::listener::ConnectionLimits {
            header_read_timeout: std::time::Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_seconds),
            max_connections: self.max_connections,
        }
    }
}

fn default_change_timeout() -> u64 {
    60
}
fn default_affiliation_wait() -> u64 {
    2000
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7400))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("mcx-data")
}
fn default_session_ttl() -> u64 {
    24 * 3600
}
fn default_max_body() -> usize {
    256 * 1024
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            storage_url: None,
            storage_key: None,
            metrics_listen: None,
            session_ttl_seconds: default_session_ttl(),
            max_body_bytes: default_max_body(),
            remote_change_timeout_seconds: default_change_timeout(),
            affiliation_wait_ms: default_affiliation_wait(),
            header_read_timeout_ms: default_header_read_timeout(),
            idle_timeout_seconds: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_group_members: default_max_group_members(),
            max_list_entries: default_max_list_entries(),
            xcap_root: default_xcap_root(),
        }
    }
}

/// `[[users]]`: a user and their profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UserConfig {
    /// The user's MC service ID.
    pub mc_service_id: McServiceId,
    /// The user's password as an Argon2id PHC string (`mcx passwd` prints one); plain
    /// text only on a development system.
    pub password: String,
    /// A name for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Per MC service: the groups the user may use and N2.
    #[serde(default)]
    pub services: BTreeMap<McService, ServiceProfile>,
    /// What the user may do beyond using their groups.
    #[serde(default)]
    pub permissions: BTreeSet<Permission>,
}

impl UserConfig {
    /// The user's profile.
    pub fn profile(&self) -> UserProfile {
        UserProfile {
            mc_service_id: self.mc_service_id.clone(),
            display_name: self.display_name.clone(),
            services: self.services.clone(),
            permissions: self.permissions.clone(),
        }
    }
}

/// `[[groups]]`: a group to define at first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupConfig {
    /// The group's ID (in this system's domain).
    pub mc_service_group_id: McServiceGroupId,
    /// Its configuration.
    pub configuration: GroupConfiguration,
}

/// A configuration file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("configuration file '{path}' is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The content is inconsistent.
    #[error("configuration is not usable: {0}")]
    Invalid(String),
}

const EXAMPLE: &str = include_str!("example.toml");

impl Config {
    /// Reads and checks a configuration file. Relative paths in it are relative to the
    /// file's directory (see [`Config::resolve_paths`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        if let Some(base) = path.parent() {
            config.resolve_paths(base);
        }
        Ok(config)
    }

    /// Makes the relative paths of the configuration relative to `base`: one rule for
    /// every path in a file (data directory, certificates, keys, trust anchors), so a
    /// configuration works from whatever directory `mcx serve` is started in.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.server.data_dir);
        if let Some(key) = &mut self.server.storage_key {
            resolve(key);
        }
        if let Some(ic) = &mut self.interconnection {
            resolve(&mut ic.certificate);
            resolve(&mut ic.private_key);
        }
        for partner in &mut self.partners {
            resolve(&mut partner.trust_anchors);
        }
        if let Some(sip) = &mut self.sip {
            for path in [&mut sip.certificate, &mut sip.private_key]
                .into_iter()
                .flatten()
            {
                resolve(path);
            }
        }
    }

    /// The certificate and key SIP over TLS serves: `[sip]`'s, else the system's own.
    pub fn sip_tls_identity(&self) -> Option<(PathBuf, PathBuf)> {
        let sip = self.sip.as_ref()?;
        sip.tls_listen?;
        match (&sip.certificate, &sip.private_key, &self.interconnection) {
            (Some(certificate), Some(key), _) => Some((certificate.clone(), key.clone())),
            (None, None, Some(ic)) => Some((ic.certificate.clone(), ic.private_key.clone())),
            _ => None,
        }
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// The built-in example system.
    pub fn example() -> Self {
        // The example is part of the binary and covered by a test; it always parses.
        Self::parse(EXAMPLE, Path::new("<built-in example>"))
            .unwrap_or_else(|e| unreachable!("the built-in example configuration is broken: {e}"))
    }

    /// The example configuration as TOML text, a starting point for one's own.
    pub fn example_text() -> &'static str {
        EXAMPLE
    }

    /// Checks what the types alone cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        let root = &self.server.xcap_root;
        if !root.starts_with('/')
            || root.len() < 2
            || root.contains(['?', '#', '{', '}', ' '])
            || root.starts_with("/v1")
        {
            return Err(ConfigError::Invalid(format!(
                "[server] xcap-root = '{root}' must be a path such as '/xcap-root' (starting with '/', not under /v1, no '?', '#', braces or spaces)"
            )));
        }
        let domain = &self.system.domain;
        let mut users = HashSet::new();
        for user in &self.users {
            if &user.mc_service_id.domain() != domain {
                return Err(ConfigError::Invalid(format!(
                    "user '{}' is not in this system's domain '{domain}'",
                    user.mc_service_id
                )));
            }
            if !users.insert(&user.mc_service_id) {
                return Err(ConfigError::Invalid(format!(
                    "user '{}' is defined twice",
                    user.mc_service_id
                )));
            }
            if user.password.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "user '{}' has an empty password",
                    user.mc_service_id
                )));
            }
            if !self.system.development && !mcx_core::credentials::is_password_hash(&user.password)
            {
                return Err(ConfigError::Invalid(format!(
                    "user '{}' has a plain-text password: put the Argon2id hash that `mcx passwd` prints there, or mark a development system with `development = true` under [system]",
                    user.mc_service_id
                )));
            }
            for (service, profile) in &user.services {
                if profile.max_affiliations_n2 == 0 {
                    return Err(ConfigError::Invalid(format!(
                        "user '{}' has max-affiliations-n2 = 0 for {}: the user could never affiliate; give N2 of 1 or more, or leave the service out",
                        user.mc_service_id,
                        service.as_str()
                    )));
                }
            }
        }
        let mut groups = HashSet::new();
        for group in &self.groups {
            let id = &group.mc_service_group_id;
            if &id.home_system() != domain {
                return Err(ConfigError::Invalid(format!(
                    "group '{id}' is not in this system's domain '{domain}': only groups defined here can be configured"
                )));
            }
            if !groups.insert(id) {
                return Err(ConfigError::Invalid(format!(
                    "group '{id}' is defined twice"
                )));
            }
            group
                .configuration
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("group '{id}': {e}")))?;
        }
        if !self.partners.is_empty() && self.interconnection.is_none() {
            return Err(ConfigError::Invalid(
                "partners are configured but [interconnection] is missing: partners need an endpoint and a certificate".into(),
            ));
        }
        if let Some(ic) = &self.interconnection
            && ic.lane_lease_ms <= ic.request_timeout_ms
        {
            return Err(ConfigError::Invalid(format!(
                "interconnection.lane-lease-ms ({}) must be longer than request-timeout-ms ({}): a node still waiting for a partner's answer would lose its lane to another node, and the partner would get the flow twice",
                ic.lane_lease_ms, ic.request_timeout_ms
            )));
        }
        let mut partners = HashSet::new();
        for partner in &self.partners {
            if &partner.domain == domain {
                return Err(ConfigError::Invalid(format!(
                    "partner '{}' is this system itself",
                    partner.domain
                )));
            }
            if !partners.insert(&partner.domain) {
                return Err(ConfigError::Invalid(format!(
                    "partner '{}' is configured twice",
                    partner.domain
                )));
            }
            if partner.endpoint.0.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "partner '{}': the endpoint list is empty: give at least one https:// URL",
                    partner.domain
                )));
            }
            for url in &partner.endpoint.0 {
                if !url.starts_with("https://") {
                    return Err(ConfigError::Invalid(format!(
                        "partner '{}': the endpoint must be an https:// URL, not '{url}'",
                        partner.domain
                    )));
                }
            }
        }
        if let Some(sip) = &self.sip
            && sip.tls_listen.is_some()
            && self.sip_tls_identity().is_none()
        {
            return Err(ConfigError::Invalid(
                "sip.tls-listen needs a certificate: give sip.certificate and sip.private-key, or an [interconnection] section whose certificate SIP over TLS then serves".into(),
            ));
        }
        if self.server.session_ttl_seconds == 0 {
            return Err(ConfigError::Invalid(
                "server.session-ttl-seconds must be at least 1".into(),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "server.max-body-bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_and_is_consistent() {
        let config = Config::example();
        assert_eq!(config.system.domain.as_str(), "police.example");
        assert!(config.users.len() >= 3);
        assert!(config.groups.len() >= 2);
    }

    #[test]
    fn errors_name_the_problem() {
        let wrong_domain = r#"
            [system]
            domain = "police.example"
            name = "Police"
            [[users]]
            mc-service-id = "sip:eve@fire.example"
            password = "x"
        "#;
        let err = Config::parse(wrong_domain, Path::new("t.toml")).unwrap_err();
        assert!(
            err.to_string().contains("not in this system's domain"),
            "{err}"
        );

        let typo = "[system]\ndomain = \"police.example\"\nname = \"P\"\ncolour = 1\n";
        let err = Config::parse(typo, Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
    #[test]
    fn a_lane_lease_not_longer_than_the_request_timeout_is_refused() {
        let text = |lease: u64| {
            format!(
                "[system]\ndomain = \"police.example\"\nname = \"P\"\n\
                 [interconnection]\nlisten = \"127.0.0.1:1\"\ncertificate = \"c\"\nprivate-key = \"k\"\n\
                 request-timeout-ms = 2000\nlane-lease-ms = {lease}\n"
            )
        };
        let err = Config::parse(&text(2000), Path::new("t.toml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("lane-lease-ms (2000) must be longer"),
            "{err}"
        );
        Config::parse(&text(2001), Path::new("t.toml")).expect("a longer lease is taken");
    }

    #[test]
    fn a_partner_endpoint_is_one_url_or_a_list_of_them() {
        #[derive(Deserialize, Serialize)]
        struct One {
            endpoint: Endpoints,
        }
        let one: One = toml::from_str(r#"endpoint = "https://a:1""#).unwrap();
        assert_eq!(one.endpoint.0, ["https://a:1"]);
        let many: One = toml::from_str(r#"endpoint = ["https://a:1", "https://b:1"]"#).unwrap();
        assert_eq!(many.endpoint.0, ["https://a:1", "https://b:1"]);
        // Written back as it was read.
        assert_eq!(
            toml::to_string(&one).unwrap().trim(),
            r#"endpoint = "https://a:1""#
        );
        let again: One = toml::from_str(&toml::to_string(&many).unwrap()).unwrap();
        assert_eq!(again.endpoint, many.endpoint);
        assert!(toml::from_str::<One>("endpoint = 7").is_err());
    }
}
