//! Who is asking, and whether the request is for this server (issue 15 item 2).
//!
//! A request names its user by the access token in its mcptt-info body (the JSON API's
//! bearer token), or by `P-Asserted-Identity` when it comes from a configured trusted
//! proxy (RFC 3325: the IMS core that authenticated the user). A `P-Asserted-Identity`
//! from anywhere else is ignored. The Request-URI must be this server's PSI.

use std::net::IpAddr;

use mcx_core::identity::Requester;
use mcx_core::system::McSystem;
use mcx_model::{ClientId, McServiceId};
use rsipstack::sip::prelude::{HeadersExt as _, ToTypedHeader as _};
use rsipstack::sip::{Host, Request};

use super::Answer;

/// A PSI: the user part and host a Request-URI must carry.
#[derive(Debug, Clone)]
pub(crate) struct Psi {
    text: String,
    user: String,
    host: String,
}

impl Psi {
    /// Reads `sip:user@host`.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let rest = text
            .strip_prefix("sip:")
            .ok_or_else(|| anyhow::anyhow!("PSI '{text}' is not a sip: URI"))?;
        let (user, host) = rest
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("PSI '{text}' has no user part"))?;
        if user.is_empty() || host.is_empty() || host.contains([';', '?', ':']) {
            return Err(anyhow::anyhow!(
                "PSI '{text}' must be sip:user@domain, without port or parameters"
            ));
        }
        Ok(Self {
            text: text.to_string(),
            user: user.to_string(),
            host: host.to_ascii_lowercase(),
        })
    }

    /// The PSI as configured (`sip:user@domain`).
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `request` is addressed to this PSI: the same user part, and its domain
    /// or an IP address (a request sent to the server's address directly).
    fn addressed_by(&self, request: &Request) -> bool {
        let uri = &request.uri;
        let user = uri.auth.as_ref().map(|a| a.user.as_str());
        let host_matches = match &uri.host_with_port.host {
            Host::IpAddr(_) => true,
            Host::Domain(domain) => domain.to_string().eq_ignore_ascii_case(&self.host),
        };
        user == Some(self.user.as_str()) && host_matches
    }
}

/// What the SIP door is told about its callers.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// The MC service server's PSI (PUBLISH, SUBSCRIBE presence, MESSAGE).
    pub(crate) psi: Psi,
    /// The GMS's PSI (SUBSCRIBE xcap-diff).
    pub(crate) gms_psi: Psi,
    /// Proxies whose `P-Asserted-Identity` is believed.
    pub(crate) trusted_proxies: Vec<IpAddr>,
}

impl Policy {
    /// 404 unless the request is addressed to `psi`.
    pub(crate) fn check_addressed(psi: &Psi, request: &Request) -> Result<(), Answer> {
        if psi.addressed_by(request) {
            return Ok(());
        }
        Err(Answer::new(
            404,
            &format!(
                "Not Found: this request is served at {}, not at {}",
                psi.text, request.uri
            ),
        ))
    }

    /// The identity a trusted proxy asserts, if the request carries one.
    pub(crate) fn asserted(&self, request: &Request) -> Asserted {
        let Some(value) = request.header_value("P-Asserted-Identity") else {
            return Asserted::None;
        };
        let source = source(request);
        if !source.is_some_and(|s| self.trusted_proxies.contains(&s)) {
            return Asserted::Untrusted(source);
        }
        match sip_identity(&value) {
            Some(user) => Asserted::Trusted(user),
            None => Asserted::Unreadable,
        }
    }
}

/// A request's `P-Asserted-Identity`, as far as it can be believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asserted {
    /// None carried.
    None,
    /// From a trusted proxy: this user.
    Trusted(McServiceId),
    /// From a trusted proxy, but no sip: URI that is an MC service ID.
    Unreadable,
    /// From an address that is not a trusted proxy (ignored).
    Untrusted(Option<IpAddr>),
}

impl Asserted {
    /// The asserted user, if believed.
    pub(crate) fn user(&self) -> Option<&McServiceId> {
        match self {
            Self::Trusted(user) => Some(user),
            _ => None,
        }
    }
}

/// Where the request came from: the transport records the real source in the top Via's
/// `received` when it differs from what the Via claims (and strips any the sender put
/// there), so the Via tells the truth either way.
fn source(request: &Request) -> Option<IpAddr> {
    use rsipstack::sip::Param;
    let via = request.top_via_header().ok()?.typed().ok()?;
    let received = via.params.iter().find_map(|p| match p {
        Param::Received(r) => r.parse().ok(),
        _ => None,
    });
    received.or(match via.uri.host_with_port.host {
        Host::IpAddr(ip) => Some(ip),
        Host::Domain(_) => None,
    })
}

/// The first sip: URI of a `P-Asserted-Identity` value (`"Name" <sip:…>, <tel:…>`).
fn sip_identity(value: &str) -> Option<McServiceId> {
    value.split(',').find_map(|one| {
        let one = one.trim();
        let uri = match (one.find('<'), one.rfind('>')) {
            (Some(start), Some(end)) if start < end => &one[start + 1..end],
            _ => one,
        };
        uri.starts_with("sip:")
            .then(|| McServiceId::parse(uri).ok())
            .flatten()
    })
}

/// The requester: by `token`, or by a trusted assertion (then the session of that user
/// from `client`, or the user's latest when no client is named), or else, for a request
/// on a publication held here (`held`: its user and client), that client's live session.
pub(crate) async fn requester(
    system: &McSystem,
    token: Option<&str>,
    asserted: &Asserted,
    client: Option<&ClientId>,
    held: Option<(&McServiceId, &ClientId)>,
) -> Result<Requester, Answer> {
    if let Some(token) = token {
        return system
            .identity
            .authenticate(token)
            .await
            .map(|(requester, _)| requester)
            .map_err(|_| Answer::new(403, "Forbidden: the access token is not a valid session"));
    }
    if let (Some((user, client)), false) = (held, matches!(asserted, Asserted::Trusted(_))) {
        return system
            .identity
            .asserted(user, Some(client))
            .await
            .map_err(|e| Answer::forbidden(&e, "the publication's client is gone: "));
    }
    match asserted {
        Asserted::Trusted(user) => system
            .identity
            .asserted(user, client)
            .await
            .map_err(|e| Answer::forbidden(&e, "")),
        Asserted::Unreadable => Err(Answer::new(
            403,
            "Forbidden: the P-Asserted-Identity names no sip: URI that is an MC service ID",
        )),
        Asserted::Untrusted(source) => Err(Answer::new(
            403,
            &format!(
                "Forbidden: no mcptt-access-token, and P-Asserted-Identity is believed only from a trusted proxy ({} is not one)",
                source.map_or("this sender".to_string(), |s| s.to_string())
            ),
        )),
        Asserted::None => Err(Answer::new(
            403,
            "Forbidden: no mcptt-access-token in the mcptt-info body and no P-Asserted-Identity from a trusted proxy",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sip_identity_of_an_assertion() {
        for (value, expected) in [
            (
                "<sip:alice@police.example>",
                Some("sip:alice@police.example"),
            ),
            (
                "\"Alice\" <sip:alice@police.example>, <tel:+4412345>",
                Some("sip:alice@police.example"),
            ),
            (
                "<tel:+4412345>, sip:bob@police.example",
                Some("sip:bob@police.example"),
            ),
            ("<tel:+4412345>", None),
            ("<sip:not an id>", None),
            ("", None),
        ] {
            assert_eq!(
                sip_identity(value).map(|u| u.to_string()).as_deref(),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn a_psi_is_a_sip_uri_with_a_user_and_a_domain() {
        assert!(Psi::parse("sip:mcptt-psi@police.example").is_ok());
        for bad in [
            "mcptt-psi@police.example",
            "sip:police.example",
            "sip:@police.example",
            "sip:psi@police.example:5060",
        ] {
            assert!(Psi::parse(bad).is_err(), "{bad}");
        }
    }
}
