//! Explicit affiliation by SIP PUBLISH, `Event: presence` (TS 24.379 §9.2.1.2,
//! §9.2.2.2.3; RFC 3903): the body is the client's complete desired set of groups, so
//! groups it no longer lists are de-affiliated. `Expires: 4294967295` affiliates,
//! `Expires: 0` removes them all, anything else gets 423. The same MC service server
//! calls as the JSON API, with the same checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcx_core::identity::Requester;
use mcx_core::ports::{SipStateChange, SipStateStore};
use mcx_core::system::McSystem;
use mcx_model::flows::affiliation::AffiliationCause;
use mcx_model::sip_bodies::{self, MCPTT_INFO_MEDIA_TYPE, PIDF_MEDIA_TYPE};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId};
use tokio::sync::watch;

use super::caller::{self, Asserted};
use super::{Answer, multipart};

/// The only Expires an affiliation PUBLISH may carry (besides 0).
pub(crate) const AFFILIATION_EXPIRES: u64 = 4_294_967_295;

/// A publication this server holds, by its entity tag (RFC 3903 §4.1): whose client's
/// affiliations it is. A refresh acts for that client's live session; the entity tag,
/// 128 random bits, is what a refresh must know.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Publication {
    pub(crate) user: McServiceId,
    pub(crate) client: ClientId,
    /// Where the client can be reached outside a dialog (its PUBLISH's Contact, else
    /// the address the PUBLISH came from): its regroups are told there. Absent in
    /// publications stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) contact: Option<String>,
    /// When it was made (Unix nanoseconds): of a client's publications, the newest says
    /// where it is now.
    #[serde(default)]
    at: i128,
}

/// The `sip_state` kind of publications.
const KIND: &str = "publication";

/// What a user's last PUBLISH asked for and did not get, for the status NOTIFYs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The `<p-id>` of the last PUBLISH, echoed in the NOTIFYs after it.
    pub(crate) p_id: Option<String>,
    /// Per client, the groups its last PUBLISH asked for that were refused, and why.
    pub(crate) refused: HashMap<ClientId, Vec<(McServiceGroupId, AffiliationCause)>>,
}

/// The publications in effect (in memory, written through to the store, so a restart
/// keeps them), and the outcome of each user's last one (in memory only: it decorates
/// NOTIFYs).
pub(crate) struct Publications {
    store: Arc<dyn SipStateStore>,
    held: Mutex<HashMap<String, Publication>>,
    outcomes: Mutex<HashMap<McServiceId, Outcome>>,
    /// Bumped after every PUBLISH, so status subscriptions look again even when the
    /// PUBLISH changed no affiliation (every group refused, or a new `p-id`).
    published: watch::Sender<u64>,
}

impl Publications {
    /// The publications the store holds.
    pub(crate) async fn load(store: Arc<dyn SipStateStore>) -> anyhow::Result<Self> {
        let mut held = HashMap::new();
        for (etag, value) in store
            .sip_state(KIND, time::OffsetDateTime::now_utc())
            .await?
        {
            match serde_json::from_str::<Publication>(&value) {
                Ok(publication) => {
                    held.insert(etag, publication);
                }
                Err(e) => {
                    tracing::warn!(%etag, error = %e, "a stored SIP publication is not readable; dropped")
                }
            }
        }
        Ok(Self {
            store,
            held: Mutex::new(held),
            outcomes: Mutex::default(),
            published: watch::channel(0).0,
        })
    }

    fn get(&self, etag: &str) -> Option<Publication> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(etag)
            .cloned()
    }

    /// The rows that replace the publication `old` (if any) by `publication` (if any),
    /// and the new publication's entity tag: they are committed with the affiliations
    /// the PUBLISH changes (or alone, by [`Self::store`]), then [`Self::keep`] holds them.
    fn rows(
        &self,
        old: Option<&str>,
        publication: Option<&Publication>,
    ) -> (Option<String>, Vec<SipStateChange>) {
        let mut changes = Vec::new();
        let etag = publication.map(|publication| {
            let etag = new_etag();
            changes.push(SipStateChange::Put {
                kind: KIND.into(),
                key: etag.clone(),
                value: serde_json::to_string(publication).unwrap_or_default(),
                expires_at: time::OffsetDateTime::now_utc()
                    + time::Duration::seconds(AFFILIATION_EXPIRES as i64),
            });
            etag
        });
        if let Some(old) = old {
            changes.push(SipStateChange::Delete {
                kind: KIND.into(),
                key: old.to_string(),
            });
        }
        (etag, changes)
    }

    /// Commits rows that no affiliation change carries (a refresh); the answer is sent
    /// only once they are kept.
    async fn store(&self, changes: Vec<SipStateChange>) -> Result<(), Answer> {
        if changes.is_empty() {
            return Ok(());
        }
        self.store.change_sip_state(changes).await.map_err(|e| {
            tracing::warn!(error = %e, "SIP publication not stored");
            Answer::new(
                503,
                "Service Unavailable: the publication could not be stored",
            )
        })
    }

    /// Holds in memory what was committed: `publication` under `etag` instead of `old`.
    fn keep(&self, old: Option<&str>, etag: Option<&String>, publication: Option<Publication>) {
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = old {
                held.remove(old);
            }
            if let (Some(etag), Some(publication)) = (etag, publication) {
                held.insert(etag.clone(), publication);
            }
        }
        // Those who follow the publications (the regroup teller) look again.
        self.published.send_modify(|n| *n += 1);
    }

    /// Where each client holding a publication is reached (its newest publication's
    /// address), by user and client.
    pub(crate) fn reachable(&self) -> HashMap<(McServiceId, ClientId), String> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mut newest: HashMap<(&McServiceId, &ClientId), &Publication> = HashMap::new();
        for publication in held.values() {
            let entry = newest
                .entry((&publication.user, &publication.client))
                .or_insert(publication);
            if publication.at > entry.at {
                *entry = publication;
            }
        }
        newest
            .into_iter()
            .filter_map(|((user, client), publication)| {
                let contact = publication.contact.clone()?;
                Some(((user.clone(), client.clone()), contact))
            })
            .collect()
    }

    /// What `user`'s last PUBLISH did not get.
    pub(crate) fn outcome(&self, user: &McServiceId) -> Option<Outcome> {
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
            .cloned()
    }

    /// Woken after every PUBLISH.
    pub(crate) fn published(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    fn record(
        &self,
        user: &McServiceId,
        client: &ClientId,
        p_id: Option<String>,
        refused: Vec<(McServiceGroupId, AffiliationCause)>,
    ) {
        {
            let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            let outcome = outcomes.entry(user.clone()).or_default();
            if p_id.is_some() {
                outcome.p_id = p_id;
            }
            if refused.is_empty() {
                outcome.refused.remove(client);
            } else {
                outcome.refused.insert(client.clone(), refused);
            }
        }
        self.published.send_modify(|n| *n += 1);
    }
}

/// Where the client that sent `request` can be reached outside a dialog: the URI of its
/// Contact, else the address the request came from (the top Via's sent-by, with the
/// `received` and `rport` the transport recorded when they differ).
pub(crate) fn reachable_at(request: &rsipstack::sip::Request) -> Option<String> {
    use rsipstack::sip::Param;
    use rsipstack::sip::prelude::{HeadersExt as _, ToTypedHeader as _};
    if let Some(contact) = request.contact_header().ok().and_then(|c| c.typed().ok()) {
        return Some(contact.uri.to_string());
    }
    let via = request.top_via_header().ok()?.typed().ok()?;
    let host = via
        .params
        .iter()
        .find_map(|p| match p {
            Param::Received(received) => Some(received.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| via.uri.host_with_port.host.to_string());
    let port = via
        .params
        .iter()
        .find_map(|p| match p {
            Param::Rport(Some(port)) => Some(*port),
            _ => None,
        })
        .or(via.uri.host_with_port.port.as_ref().map(|p| p.value()))
        .unwrap_or(5060);
    let transport = via.transport.to_string().to_ascii_lowercase();
    Some(format!("sip:{host}:{port};transport={transport}"))
}

fn new_etag() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What a PUBLISH brings: its headers as read, and its body.
pub(crate) struct Publish<'r> {
    pub(crate) event: Option<String>,
    pub(crate) expires: Option<String>,
    pub(crate) if_match: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) asserted: Asserted,
    /// Where the publishing client can be reached outside a dialog.
    pub(crate) reach: Option<String>,
    pub(crate) body: &'r [u8],
}

/// Handles one PUBLISH.
pub(crate) async fn handle(
    system: &McSystem,
    publications: &Publications,
    request: Publish<'_>,
) -> Answer {
    let event = request.event.as_deref().unwrap_or_default();
    let package = event.split(';').next().unwrap_or_default().trim();
    if !package.eq_ignore_ascii_case("presence") {
        return Answer::new(
            489,
            "Bad Event: affiliation is published with Event: presence",
        );
    }
    let expires = request
        .expires
        .as_deref()
        .and_then(|e| e.trim().parse::<u64>().ok());
    let remove = match expires {
        Some(0) => true,
        Some(AFFILIATION_EXPIRES) => false,
        _ => {
            return Answer::new(
                423,
                "Interval Too Brief: affiliation is published with Expires 4294967295",
            )
            .header("Min-Expires", AFFILIATION_EXPIRES.to_string());
        }
    };
    let earlier = match &request.if_match {
        Some(etag) => match publications.get(etag.trim()) {
            Some(publication) => Some(publication),
            None => {
                return Answer::new(
                    412,
                    "Conditional Request Failed: no publication has that SIP-If-Match entity tag",
                );
            }
        },
        None => None,
    };
    let desired = if request.body.is_empty() {
        // A refresh (or, with Expires 0, a removal) of a publication held here.
        let Some(earlier) = &earlier else {
            return Answer::new(
                400,
                "Bad Request: a PUBLISH without a body refreshes a publication and needs SIP-If-Match",
            );
        };
        let requester = match caller::requester(
            system,
            None,
            &request.asserted,
            Some(&earlier.client),
            Some((&earlier.user, &earlier.client)),
        )
        .await
        {
            Ok(requester) => requester,
            Err(answer) => return answer,
        };
        if requester.mc_service_id != earlier.user || requester.client_id != earlier.client {
            return Answer::new(
                403,
                "Forbidden: the publication belongs to another user's client",
            );
        }
        Desired {
            requester,
            whose: earlier.user.clone(),
            groups: None,
            p_id: None,
        }
    } else {
        match read_body(system, &request, earlier.as_ref()).await {
            Ok(desired) => desired,
            Err(answer) => return answer,
        }
    };
    if desired.whose != desired.requester.mc_service_id {
        return remote_change(system, &desired, remove).await;
    }
    let groups = if remove {
        Some(Vec::new())
    } else {
        desired.groups.clone()
    };
    let user = desired.requester.mc_service_id.clone();
    let client = desired.requester.client_id.clone();
    // A refresh from nowhere new keeps where the client was reached.
    let contact = request
        .reach
        .clone()
        .or_else(|| earlier.as_ref().and_then(|e| e.contact.clone()));
    let kept = (!remove).then_some(Publication {
        user: user.clone(),
        client: client.clone(),
        contact,
        at: time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
    });
    let old = request.if_match.as_deref().map(str::trim);
    let (etag, rows) = publications.rows(old, kept.as_ref());
    let mut refused = Vec::new();
    match groups {
        // The client's groups become the listed ones, in one commit with the rows.
        Some(groups) => match system
            .mc_service_server
            .set_affiliations(&desired.requester, McService::Mcptt, &groups, rows)
            .await
        {
            Ok(statuses) => {
                refused = statuses
                    .into_iter()
                    .filter_map(|s| s.cause.map(|c| (s.mc_service_group_id, c)))
                    .collect();
            }
            Err(error) => return Answer::from_core(&error),
        },
        None => {
            if let Err(answer) = publications.store(rows).await {
                return answer;
            }
        }
    }
    publications.record(&user, &client, desired.p_id.clone(), refused.clone());
    publications.keep(old, etag.as_ref(), kept);
    let mut answer = Answer::new(200, "OK").header(
        "Expires",
        if remove {
            "0".to_string()
        } else {
            AFFILIATION_EXPIRES.to_string()
        },
    );
    if let Some(etag) = etag {
        answer = answer.header("SIP-ETag", etag);
    }
    with_warnings(answer, system, &refused)
}

/// Who publishes, for whom, with which token, and (when the body names them) which
/// groups.
struct Desired {
    requester: Requester,
    /// Whose affiliations change: the requester's own, or (remote change) a target's.
    whose: McServiceId,
    groups: Option<Vec<McServiceGroupId>>,
    p_id: Option<String>,
}

async fn read_body(
    system: &McSystem,
    request: &Publish<'_>,
    earlier: Option<&Publication>,
) -> Result<Desired, Answer> {
    let content_type = request.content_type.as_deref().unwrap_or_default();
    if multipart::media_type(content_type) != "multipart/mixed" {
        return Err(multipart::unsupported(
            content_type,
            "an affiliation PUBLISH carries application/vnd.3gpp.mcptt-info+xml and application/pidf+xml in multipart/mixed",
        ));
    }
    let parts = multipart::split(content_type, request.body)
        .map_err(|why| Answer::new(400, &format!("Bad Request: {why}")))?;
    let part = |media: &str| parts.iter().find(|p| p.media_type == media).map(|p| p.body);
    let (Some(info), Some(pidf)) = (part(MCPTT_INFO_MEDIA_TYPE), part(PIDF_MEDIA_TYPE)) else {
        return Err(Answer::new(
            415,
            "Unsupported Media Type: an affiliation PUBLISH carries application/vnd.3gpp.mcptt-info+xml and application/pidf+xml in multipart/mixed",
        ));
    };
    let info = sip_bodies::read_mcptt_info(info)
        .map_err(|e| Answer::new(400, &format!("Bad Request: {e}")))?;
    let publication = sip_bodies::read_affiliation_publication(pidf)
        .map_err(|e| Answer::new(400, &format!("Bad Request: {e}")))?;
    let whose = info
        .request_uri
        .unwrap_or_else(|| publication.entity.clone());
    if whose != publication.entity {
        return Err(Answer::new(
            400,
            "Bad Request: mcptt-request-uri and the pidf entity name different users",
        ));
    }
    // An asserted user publishing its own affiliations names its client in the tuple.
    let client = (request.asserted.user() == Some(&whose)).then_some(&publication.client);
    let requester = caller::requester(
        system,
        info.access_token.as_deref(),
        &request.asserted,
        client,
        earlier.map(|e| (&e.user, &e.client)),
    )
    .await?;
    if requester.mc_service_id == whose && requester.client_id != publication.client {
        return Err(Answer::new(
            403,
            "Forbidden: the pidf tuple names another client than the session's",
        ));
    }
    if let Some(earlier) = earlier
        && (earlier.user != requester.mc_service_id || earlier.client != requester.client_id)
    {
        return Err(Answer::new(
            403,
            "Forbidden: the SIP-If-Match publication belongs to another user's client",
        ));
    }
    Ok(Desired {
        requester,
        whose,
        groups: Some(publication.groups),
        p_id: publication.p_id,
    })
}

/// A PUBLISH naming another user (TS 24.379 §9.2.1.4): a remote change in mandatory
/// mode, making the target's groups exactly the listed ones (none, with Expires 0). The
/// publication is not held (the target's own client keeps its affiliations up), so the
/// 200 says Expires 0.
async fn remote_change(system: &McSystem, desired: &Desired, remove: bool) -> Answer {
    let groups = if remove {
        Vec::new()
    } else {
        desired.groups.clone().unwrap_or_default()
    };
    let record = match system
        .mc_service_server
        .request_change_to_set(
            &desired.requester,
            &desired.whose,
            &groups,
            McService::Mcptt,
        )
        .await
    {
        Ok(record) => record,
        Err(error) => return Answer::from_core(&error),
    };
    let refused: Vec<_> = record
        .and_then(|r| r.response)
        .map(|r| r.affiliation_status_per_mc_service_group_id)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.cause.map(|c| (s.mc_service_group_id, c)))
        .collect();
    let answer = Answer::new(200, "OK")
        .header("Expires", "0".to_string())
        .header("SIP-ETag", new_etag());
    with_warnings(answer, system, &refused)
}

/// One `Warning` per group refused (RFC 3261 §20.43, warn-code 399 as TS 24.379 §4.4
/// uses it): its text leads with the clause's number where mcx knows it.
fn with_warnings(
    mut answer: Answer,
    system: &McSystem,
    refused: &[(McServiceGroupId, AffiliationCause)],
) -> Answer {
    for (group, cause) in refused {
        let text = match cause {
            AffiliationCause::N2LimitReached => "102 too many simultaneous affiliations",
            AffiliationCause::NotAffiliated => "120 user is not affiliated to this group",
            other => other.as_str(),
        };
        answer = answer.header(
            "Warning",
            format!("399 {} \"{text}: {group}\"", system.settings.domain),
        );
    }
    answer
}
