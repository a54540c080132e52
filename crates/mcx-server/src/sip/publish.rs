//! Explicit affiliation by SIP PUBLISH, `Event: presence` (TS 24.379 §9.2.1.2,
//! §9.2.2.2.3; RFC 3903): the body is the client's complete desired set of groups, so
//! groups it no longer lists are de-affiliated. `Expires: 4294967295` affiliates,
//! `Expires: 0` removes them all, anything else gets 423. The same MC service server
//! calls as the JSON API, with the same checks.

use std::collections::HashMap;
use std::sync::Mutex;

use mcx_core::error::{Error, ErrorKind};
use mcx_core::identity::Requester;
use mcx_core::system::McSystem;
use mcx_model::flows::affiliation::{GroupAffiliationRequest, GroupDeaffiliationRequest};
use mcx_model::sip_bodies::{self, MCPTT_INFO_MEDIA_TYPE, PIDF_MEDIA_TYPE};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty};

use super::{Answer, multipart};

/// The only Expires an affiliation PUBLISH may carry (besides 0).
pub(crate) const AFFILIATION_EXPIRES: u64 = 4_294_967_295;

/// A publication this server holds, by its entity tag (RFC 3903 §4.1).
#[derive(Debug, Clone)]
struct Publication {
    token: String,
    user: McServiceId,
    client: ClientId,
}

/// The publications in effect. (Kept in memory: a restart forgets them and a client's
/// next refresh gets 412, after which it publishes again; issue 15 item 8 stores them.)
#[derive(Debug, Default)]
pub(crate) struct Publications(Mutex<HashMap<String, Publication>>);

impl Publications {
    fn get(&self, etag: &str) -> Option<Publication> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(etag)
            .cloned()
    }

    fn replace(&self, old: Option<&str>, publication: Option<Publication>) -> Option<String> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = old {
            held.remove(old);
        }
        let publication = publication?;
        let etag = format!("{:016x}", rand::random::<u64>());
        held.insert(etag.clone(), publication);
        Some(etag)
    }
}

/// What a PUBLISH brings: its headers as read, and its body.
pub(crate) struct Publish<'r> {
    pub(crate) event: Option<String>,
    pub(crate) expires: Option<String>,
    pub(crate) if_match: Option<String>,
    pub(crate) content_type: Option<String>,
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
        match authenticate(system, &earlier.token, &earlier.user, &earlier.client).await {
            Ok(requester) => Desired {
                requester,
                token: earlier.token.clone(),
                groups: None,
            },
            Err(answer) => return answer,
        }
    } else {
        match read_body(system, &request, earlier.as_ref()).await {
            Ok(desired) => desired,
            Err(answer) => return answer,
        }
    };
    let groups = if remove {
        Some(Vec::new())
    } else {
        desired.groups.clone()
    };
    if let Some(groups) = groups
        && let Err(error) = apply(system, &desired.requester, &groups).await
    {
        return from_core(&error);
    }
    let user = desired.requester.mc_service_id.clone();
    let client = desired.requester.client_id.clone();
    let kept = (!remove).then_some(Publication {
        token: desired.token,
        user,
        client,
    });
    let etag = publications.replace(request.if_match.as_deref().map(str::trim), kept);
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
    answer
}

/// Who publishes, with which token, and (when the body names them) which groups.
struct Desired {
    requester: Requester,
    token: String,
    groups: Option<Vec<McServiceGroupId>>,
}

async fn read_body(
    system: &McSystem,
    request: &Publish<'_>,
    earlier: Option<&Publication>,
) -> Result<Desired, Answer> {
    let content_type = request.content_type.as_deref().unwrap_or_default();
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
    let token = info
        .access_token
        .or_else(|| earlier.map(|e| e.token.clone()))
        .ok_or_else(|| {
            Answer::new(
                403,
                "Forbidden: no mcptt-access-token in the mcptt-info body",
            )
        })?;
    let whose = info
        .request_uri
        .unwrap_or_else(|| publication.entity.clone());
    if whose != publication.entity {
        return Err(Answer::new(
            400,
            "Bad Request: mcptt-request-uri and the pidf entity name different users",
        ));
    }
    let requester = authenticate(system, &token, &whose, &publication.client).await?;
    Ok(Desired {
        requester,
        token,
        groups: Some(publication.groups),
    })
}

/// The requester behind `token`, who must be `user` publishing for its own `client`.
async fn authenticate(
    system: &McSystem,
    token: &str,
    user: &McServiceId,
    client: &ClientId,
) -> Result<Requester, Answer> {
    let (requester, _) = system
        .identity
        .authenticate(token)
        .await
        .map_err(|_| Answer::new(403, "Forbidden: the access token is not a valid session"))?;
    if &requester.mc_service_id != user {
        return Err(Answer::new(
            403,
            "Forbidden: a PUBLISH changes the publisher's own affiliation (remote change by PUBLISH is not supported yet)",
        ));
    }
    if &requester.client_id != client {
        return Err(Answer::new(
            403,
            "Forbidden: the pidf tuple names another client than the session's",
        ));
    }
    Ok(requester)
}

/// Makes the client's affiliations (MCPTT) exactly `groups`: affiliates the new ones,
/// de-affiliates those no longer listed.
async fn apply(
    system: &McSystem,
    requester: &Requester,
    groups: &[McServiceGroupId],
) -> Result<(), Error> {
    let server = &system.mc_service_server;
    let user = &requester.mc_service_id;
    let held: Vec<McServiceGroupId> = server
        .user_affiliations(requester, user)
        .await?
        .affiliations
        .into_iter()
        .filter(|a| a.mc_service == McService::Mcptt && a.clients.contains(&requester.client_id))
        .map(|a| a.mc_service_group_id)
        .collect();
    let gone: Vec<_> = held
        .iter()
        .filter(|g| !groups.contains(g))
        .cloned()
        .collect();
    let new: Vec<_> = groups
        .iter()
        .filter(|g| !held.contains(g))
        .cloned()
        .collect();
    if let Ok(list) = NonEmpty::new(gone) {
        server
            .deaffiliate(
                requester,
                GroupDeaffiliationRequest {
                    mc_service_id: user.clone(),
                    mc_service_group_id_list: list,
                    mc_service: McService::Mcptt,
                },
            )
            .await?;
    }
    if let Ok(list) = NonEmpty::new(new) {
        server
            .affiliate(
                requester,
                GroupAffiliationRequest {
                    mc_service_id: user.clone(),
                    mc_service_group_id_list: list,
                    mc_service: McService::Mcptt,
                },
            )
            .await?;
    }
    Ok(())
}

/// A refusal of the core as a SIP answer, its sentence in the reason phrase.
fn from_core(error: &Error) -> Answer {
    let (code, why) = match error {
        Error::Refused { kind, detail, .. } => {
            let code = match kind {
                ErrorKind::Invalid | ErrorKind::Unprocessable => 400,
                ErrorKind::Unauthenticated | ErrorKind::Forbidden => 403,
                ErrorKind::NotFound => 404,
                ErrorKind::Conflict
                | ErrorKind::PreconditionFailed
                | ErrorKind::PreconditionRequired => 409,
                ErrorKind::Unavailable | ErrorKind::Throttled { .. } => 503,
            };
            (code, detail.clone())
        }
        Error::Store(_) => (
            503,
            "the server could not reach its storage; nothing was changed".to_string(),
        ),
    };
    Answer::new(code, &why)
}
