//! Subscriptions (RFC 6665): affiliation status, `Event: presence` (TS 24.379 §9.2.1.3,
//! §9.2.2.2.4), and group document changes, `Event: xcap-diff` (TS 24.481 §6.3.13,
//! RFC 5875). A client gets a NOTIFY at once and after every change, whichever door or
//! system made it; what is watched and how it is written is a [`Watched`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcx_core::identity::Requester;
use mcx_core::system::McSystem;
use mcx_model::flows::affiliation::AffiliationStatus;
use mcx_model::sip_bodies::{self, ClientAffiliations, ClientGroupStatus, MCPTT_INFO_MEDIA_TYPE};
use mcx_model::{ClientId, McService, McServiceId};
use rsipstack::dialog::dialog::{Dialog, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::subscription::ServerSubscriptionDialog;
use rsipstack::sip::Header;
use rsipstack::sip::prelude::HeadersExt as _;
use rsipstack::transaction::Transaction;
use tokio::sync::watch;

use super::caller::{self, Policy};
use super::publish::Publications;
use super::restore::{self, StoredSubscription, WatchedSpec};
use super::{Answer, multipart};
use mcx_core::ports::SipStateStore;

/// The longest subscription granted, in seconds; a client refreshes before it ends.
const MAX_EXPIRES: u64 = 3600;
/// How often a subscription looks at the state when nothing woke it (a change made in
/// another process, or through a path that wrote no client event).
const LOOK_AGAIN: Duration = Duration::from_secs(2);

/// The subscriptions in effect, by dialog: their expiry can be moved or ended, and what
/// is stored of them.
#[derive(Default)]
pub(crate) struct Subscriptions(Mutex<HashMap<String, (watch::Sender<u64>, StoredSubscription)>>);

/// What the SIP listener shares with the subscription handlers.
pub(crate) struct Dialogs {
    /// The absolute URI of the XCAP root, for xcap-diff documents.
    pub(crate) xcap_root: String,
    /// Who may ask, and at which PSI.
    pub(crate) policy: Arc<Policy>,
    /// The affiliation publications, whose outcome the status NOTIFYs report.
    pub(crate) publications: Arc<Publications>,
    /// Where subscriptions are kept across restarts.
    pub(crate) store: Arc<dyn SipStateStore>,
    pub(crate) layer: DialogLayer,
    pub(crate) states: DialogStateSender,
    pub(crate) subscriptions: Subscriptions,
    /// The SIP door's tasks, awaited at its stop.
    pub(crate) tasks: tokio_util::task::TaskTracker,
    /// Cancelled at the stop: notifiers end without ending their subscriptions.
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

/// Handles a SUBSCRIBE; `None` when the answer was already sent through the dialog.
pub(crate) async fn handle(
    transaction: &mut Transaction,
    system: &Arc<McSystem>,
    dialogs: &Arc<Dialogs>,
) -> Option<Answer> {
    let request = &transaction.original;
    let event = request
        .header_value("Event")
        .or_else(|| request.header_value("o"))
        .unwrap_or_default();
    let package = event
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if package != "presence" && package != "xcap-diff" {
        return Some(Answer::new(
            489,
            "Bad Event: this server takes subscriptions to presence (affiliation status) and xcap-diff (group documents)",
        ));
    }
    let expires = request
        .header_value("Expires")
        .and_then(|e| e.trim().parse::<u64>().ok())
        .unwrap_or(MAX_EXPIRES)
        .min(MAX_EXPIRES);
    // In a dialog: a refresh, or (Expires 0) the end.
    // (A restored dialog sits in the layer as an INVITE-shaped dialog.)
    let in_dialog = match dialogs.layer.match_dialog(transaction) {
        Some(Dialog::ServerSubscription(dialog)) => Some(dialog.id()),
        Some(Dialog::Invite(dialog)) => Some(dialog.id()),
        _ => None,
    };
    // A To tag names a dialog; one this server does not hold is not made anew
    // (RFC 3261 §12.2.2).
    if in_dialog.is_none() && names_a_dialog(request) {
        return Some(Answer::new(
            481,
            "Subscription Does Not Exist: no subscription here has the dialog this request's To tag names",
        ));
    }
    if let Some(id) = in_dialog {
        let key = id.to_string();
        let held = dialogs
            .subscriptions
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let Some((expiry, stored)) = held else {
            return Some(Answer::new(481, "Subscription Does Not Exist"));
        };
        if expires > 0 {
            let stored = stored.expiring_in(expires);
            restore::keep(dialogs, &key, &stored).await;
            if let Some(entry) = dialogs
                .subscriptions
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&key)
            {
                entry.1 = stored;
            }
        }
        // The 200 goes out before the notifier acts on it (an ending subscription's
        // last NOTIFY must not overtake the answer to the SUBSCRIBE that ended it).
        let granted = vec![Header::Other("Expires".into(), expires.to_string())];
        if let Err(e) = transaction
            .reply_with(rsipstack::sip::StatusCode::OK, granted, None)
            .await
        {
            tracing::debug!(error = ?e, "SIP answer to a SUBSCRIBE refresh not sent");
        }
        let _ = expiry.send(expires);
        return None;
    }
    let psi = if package == "presence" {
        &dialogs.policy.psi
    } else {
        &dialogs.policy.gms_psi
    };
    if let Err(answer) = Policy::check_addressed(psi, request) {
        return Some(answer);
    }
    let content_type = request
        .header_value("Content-Type")
        .or_else(|| request.header_value("c"))
        .unwrap_or_default();
    let info = if multipart::media_type(&content_type) == MCPTT_INFO_MEDIA_TYPE {
        Some(request.body.as_slice())
    } else {
        multipart::split(&content_type, &request.body)
            .ok()
            .and_then(|parts| {
                parts
                    .into_iter()
                    .find(|p| p.media_type == MCPTT_INFO_MEDIA_TYPE)
                    .map(|p| p.body)
            })
    };
    let asserted = dialogs.policy.asserted(request);
    // Without a token the mcptt-info may be left out when a trusted proxy asserts the
    // user; otherwise it carries the token.
    let info = match info {
        Some(info) => match sip_bodies::read_mcptt_info(info) {
            Ok(info) => info,
            Err(e) => return Some(Answer::new(400, &format!("Bad Request: {e}"))),
        },
        None if asserted.user().is_some() => sip_bodies::McpttInfo::default(),
        None => {
            return Some(Answer::new(
                415,
                "Unsupported Media Type: a SUBSCRIBE carries application/vnd.3gpp.mcptt-info+xml with the access token",
            ));
        }
    };
    let requester = match caller::requester(
        system,
        info.access_token.as_deref(),
        &asserted,
        None,
        None,
    )
    .await
    {
        Ok(requester) => requester,
        Err(answer) => return Some(answer),
    };
    let mut watched: Box<dyn Watched> = if package == "presence" {
        let user = info
            .request_uri
            .unwrap_or_else(|| requester.mc_service_id.clone());
        Box::new(AffiliationStatusOf {
            user,
            publications: dialogs.publications.clone(),
            sent: None,
        })
    } else {
        let documents = multipart::split(&content_type, &request.body)
            .ok()
            .and_then(|parts| {
                parts
                    .into_iter()
                    .find(|p| p.media_type == sip_bodies::RESOURCE_LISTS_MEDIA_TYPE)
                    .map(|p| p.body)
            });
        let Some(documents) = documents else {
            return Some(Answer::new(
                415,
                "Unsupported Media Type: an xcap-diff SUBSCRIBE carries application/resource-lists+xml naming the documents, with the mcptt-info, in multipart/mixed",
            ));
        };
        let groups = match sip_bodies::read_resource_list(documents) {
            Ok(uris) => uris
                .iter()
                .filter_map(|uri| mcx_model::group_document::group_of_selector(uri))
                .collect::<Vec<_>>(),
            Err(e) => return Some(Answer::new(400, &format!("Bad Request: {e}"))),
        };
        if groups.is_empty() {
            return Some(Answer::new(
                400,
                "Bad Request: the resource list names no group document (org.openmobilealliance.groups/global/byGroupID/<group ID>)",
            ));
        }
        Box::new(GroupDocuments::new(dialogs.xcap_root.clone(), groups))
    };
    // The JSON API's checks: another user's status needs the permission; a document,
    // membership (or administration).
    let first = match watched.next(system, &requester).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            return Some(Answer::new(
                403,
                "Forbidden: none of these documents may be read by this user",
            ));
        }
        Err(answer) => return Some(answer),
    };
    let contact = match dialogs.layer.build_local_contact(None, None) {
        Ok(contact) => contact,
        Err(_) => return Some(Answer::new(500, "Server Internal Error: no local contact")),
    };
    let dialog = match dialogs.layer.get_or_create_server_subscription(
        transaction,
        dialogs.states.clone(),
        None,
        Some(contact.clone()),
    ) {
        Ok(dialog) => dialog,
        Err(e) => {
            return Some(Answer::new(
                400,
                &format!("Bad Request: not a subscription this server can hold ({e})"),
            ));
        }
    };
    if dialog
        .accept(
            Some(vec![Header::Other("Expires".into(), expires.to_string())]),
            None,
        )
        .is_err()
    {
        return Some(Answer::new(
            500,
            "Server Internal Error: the subscription could not be accepted",
        ));
    }
    let key = dialog.id().to_string();
    let Some(stored) = StoredSubscription::of(
        &transaction.original,
        &dialog.id(),
        &contact,
        requester.mc_service_id.clone(),
        requester.client_id.clone(),
        watched.spec(),
        expires,
    ) else {
        return Some(Answer::new(
            400,
            "Bad Request: a SUBSCRIBE needs From, To, Contact and CSeq",
        ));
    };
    // Stored before the 200: an accepted subscription survives a restart.
    restore::keep(dialogs, &key, &stored).await;
    // The 200 goes out before the first NOTIFY.
    while transaction.receive().await.is_some() {}
    hold(
        system,
        dialogs,
        (dialog, key, stored),
        expires,
        (requester, watched, first),
    );
    None
}

/// Holds an accepted (or restored) subscription for `expires` seconds and starts its
/// notifier with the first NOTIFY's body.
fn hold(
    system: &Arc<McSystem>,
    dialogs: &Arc<Dialogs>,
    (dialog, key, stored): (ServerSubscriptionDialog, String, StoredSubscription),
    expires: u64,
    (requester, watched, first): (Requester, Box<dyn Watched>, String),
) {
    let (expiry, watch_expiry) = watch::channel(expires);
    dialogs
        .subscriptions
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), (expiry, stored));
    dialogs.tasks.spawn(notify_until_ended(
        system.clone(),
        dialogs.clone(),
        (dialog, key),
        requester,
        watched,
        first,
        watch_expiry,
    ));
}

/// Carries on a subscription restored after a restart: the state now, in its dialog,
/// then as before. One whose client is no longer logged on is ended.
pub(crate) async fn resume(
    system: &Arc<McSystem>,
    dialogs: &Arc<Dialogs>,
    dialog: ServerSubscriptionDialog,
    key: String,
    stored: StoredSubscription,
) {
    let mut watched: Box<dyn Watched> = match &stored.watched {
        WatchedSpec::Status { user } => Box::new(AffiliationStatusOf {
            user: user.clone(),
            publications: dialogs.publications.clone(),
            sent: None,
        }),
        WatchedSpec::Documents { groups } => Box::new(GroupDocuments::new(
            dialogs.xcap_root.clone(),
            groups.clone(),
        )),
    };
    let requester = system
        .identity
        .asserted(&stored.user, Some(&stored.client))
        .await;
    let first = match &requester {
        Ok(requester) => watched.next(system, requester).await,
        Err(_) => Err(Answer::new(404, "the client is no longer logged on")),
    };
    let (Ok(requester), Ok(Some(first))) = (requester, first.as_ref()) else {
        // What changed while the server was down decides the reason, as it would have
        // had the server been up.
        let reason = first.err().map_or("noresource", |answer| ended_by(&answer));
        let _ = notify(
            &dialog,
            watched.as_ref(),
            &format!("terminated;reason={reason}"),
            "",
        )
        .await;
        forget(dialogs, &dialog, &key).await;
        return;
    };
    let first = first.clone();
    let remaining = stored.remaining();
    hold(
        system,
        dialogs,
        (dialog, key, stored),
        remaining,
        (requester, watched, first),
    );
}

/// Sends NOTIFYs for one subscription: the state now, then after each change, until it
/// expires, is ended by the subscriber, or the subscriber stops answering.
async fn notify_until_ended(
    system: Arc<McSystem>,
    dialogs: Arc<Dialogs>,
    (dialog, key): (ServerSubscriptionDialog, String),
    requester: Requester,
    mut watched: Box<dyn Watched>,
    first: String,
    mut expiry: watch::Receiver<u64>,
) {
    let waker = system.wakers.waker(&requester.session_id);
    // A subscription to one's own status also carries the regroups this client is put
    // in or taken out of (§16.2.3), as MESSAGEs in its dialog: the client is reachable
    // there. What the session had before it subscribed is not told again.
    let tells_regroups = watched.tells_regroups_of(&requester);
    let mut cursor = 0;
    if tells_regroups {
        tell_regroups(&system, None, &requester.session_id, &mut cursor).await;
    }
    let mut published = dialogs.publications.published();
    let mut pending = Some(first);
    let mut last = String::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(*expiry.borrow());
    // Expiry, or the subscriber's own Expires 0, unless something else ends it first.
    let mut reason = "timeout";
    loop {
        let remaining = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_secs();
        if remaining == 0 {
            break;
        }
        if let Some(body) = pending.take() {
            let state = format!("active;expires={remaining}");
            // A NOTIFY the subscriber does not answer runs until its transaction times
            // out (32 s); the server's stop must not wait for it, nor keep its socket.
            let sent = tokio::select! {
                sent = notify(&dialog, watched.as_ref(), &state, &body) => sent,
                _ = dialogs.stop.cancelled() => return,
            };
            if !sent {
                forget(&dialogs, &dialog, &key).await;
                return;
            }
            last = body;
        }
        let notified = waker.notified();
        tokio::select! {
            // The server stops: the subscription stays stored for the next start.
            _ = dialogs.stop.cancelled() => return,
            _ = notified => {}
            _ = published.changed() => {}
            _ = tokio::time::sleep(LOOK_AGAIN) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            changed = expiry.changed() => {
                if changed.is_err() {
                    break;
                }
                deadline = tokio::time::Instant::now() + Duration::from_secs(*expiry.borrow());
            }
        }
        if tells_regroups {
            tell_regroups(&system, Some(&dialog), &requester.session_id, &mut cursor).await;
        }
        match watched.next(&system, &requester).await {
            Ok(next) => pending = next,
            // The permission went, the subscriber stopped being a member, or nothing
            // is left to watch.
            Err(answer) => {
                reason = ended_by(&answer);
                tracing::debug!(%key, reason, why = %answer.reason, "subscription ended by the server");
                break;
            }
        }
    }
    let _ = notify(
        &dialog,
        watched.as_ref(),
        &format!("terminated;reason={reason}"),
        &last,
    )
    .await;
    forget(&dialogs, &dialog, &key).await;
}

/// The RFC 6665 §4.2.2 reason of a subscription the server ends because watching
/// failed with `answer`: a refusal of authorisation (a permission gone, a member
/// removed) is `rejected`, so the client does not simply subscribe again; what no longer
/// exists is `noresource`; anything else (the storage failing) `deactivated`, which
/// invites a new subscription at once.
fn ended_by(answer: &Answer) -> &'static str {
    match answer.code {
        403 => "rejected",
        404 => "noresource",
        _ => "deactivated",
    }
}

/// What a subscription watches: the body of its next NOTIFY, if something changed.
#[async_trait::async_trait]
trait Watched: Send + Sync {
    /// The event package.
    fn event(&self) -> &'static str;
    /// The NOTIFY body's media type.
    fn content_type(&self) -> &'static str;
    /// What is stored of it.
    fn spec(&self) -> WatchedSpec;
    /// Whether the subscriber's regroups are told in this subscription's dialog.
    fn tells_regroups_of(&self, _requester: &Requester) -> bool {
        false
    }
    /// The next NOTIFY's body (`None`: nothing changed); `Err`: the subscription ends.
    async fn next(
        &mut self,
        system: &McSystem,
        requester: &Requester,
    ) -> Result<Option<String>, Answer>;
}

/// A user's affiliation status (MCPTT).
struct AffiliationStatusOf {
    user: McServiceId,
    publications: Arc<Publications>,
    sent: Option<String>,
}

#[async_trait::async_trait]
impl Watched for AffiliationStatusOf {
    fn event(&self) -> &'static str {
        "presence"
    }

    fn tells_regroups_of(&self, requester: &Requester) -> bool {
        self.user == requester.mc_service_id
    }

    fn spec(&self) -> WatchedSpec {
        WatchedSpec::Status {
            user: self.user.clone(),
        }
    }

    fn content_type(&self) -> &'static str {
        sip_bodies::PIDF_MEDIA_TYPE
    }

    async fn next(
        &mut self,
        system: &McSystem,
        requester: &Requester,
    ) -> Result<Option<String>, Answer> {
        let body = status_body(system, requester, &self.user, &self.publications).await?;
        if self.sent.as_ref() == Some(&body) {
            return Ok(None);
        }
        self.sent = Some(body.clone());
        Ok(Some(body))
    }
}

/// Group documents, by the entity tag each had when last told.
struct GroupDocuments {
    xcap_root: String,
    groups: Vec<mcx_model::McServiceGroupId>,
    sent: std::collections::BTreeMap<mcx_model::McServiceGroupId, String>,
}

impl GroupDocuments {
    fn new(xcap_root: String, groups: Vec<mcx_model::McServiceGroupId>) -> Self {
        Self {
            xcap_root,
            groups,
            sent: std::collections::BTreeMap::new(),
        }
    }
}

#[async_trait::async_trait]
impl Watched for GroupDocuments {
    fn event(&self) -> &'static str {
        "xcap-diff"
    }

    fn spec(&self) -> WatchedSpec {
        WatchedSpec::Documents {
            groups: self.groups.clone(),
        }
    }

    fn content_type(&self) -> &'static str {
        "application/xcap-diff+xml"
    }

    async fn next(
        &mut self,
        system: &McSystem,
        requester: &Requester,
    ) -> Result<Option<String>, Answer> {
        use mcx_core::error::{Error, ErrorKind};
        let mut changes = Vec::new();
        let mut readable = 0;
        let mut forbidden = 0;
        for group in &self.groups {
            // Only documents the subscriber may read (a member, or an administrator).
            let now = match system.gms.group(requester, group).await {
                Ok(record) => Some(record.etag()),
                Err(Error::Refused {
                    kind: ErrorKind::Forbidden,
                    detail,
                    ..
                }) => {
                    // A document it was told of and may no longer read: the user
                    // stopped being a member (issue 15 item 6), so the subscription
                    // ends, as the JSON API would now refuse the read.
                    if self.sent.contains_key(group) {
                        return Err(Answer::new(403, &format!("Forbidden: {detail}")));
                    }
                    forbidden += 1;
                    None
                }
                // Deleted (or, for now, unreachable): named without a new entity tag.
                Err(_) => None,
            };
            readable += usize::from(now.is_some());
            let before = self.sent.get(group).cloned();
            if before != now {
                changes.push((group.clone(), before, now.clone()));
                match now {
                    Some(etag) => self.sent.insert(group.clone(), etag),
                    None => self.sent.remove(group),
                };
            }
        }
        if readable == 0 && changes.is_empty() {
            return Err(if forbidden > 0 {
                Answer::new(
                    403,
                    "Forbidden: none of these documents may be read by this user",
                )
            } else {
                Answer::new(404, "Not Found: none of these documents exists")
            });
        }
        if changes.is_empty() {
            return Ok(None);
        }
        Ok(Some(mcx_model::group_document::xcap_diff_documents(
            &self.xcap_root,
            &changes,
        )))
    }
}

/// Sends the session's regroup events after `cursor` as MESSAGEs in `dialog` (none:
/// only moves the cursor past them).
async fn tell_regroups(
    system: &McSystem,
    dialog: Option<&ServerSubscriptionDialog>,
    session: &str,
    cursor: &mut i64,
) {
    let bodies = regroup_bodies(system, session, cursor)
        .await
        .unwrap_or_default();
    let Some(dialog) = dialog else { return };
    for body in bodies {
        let headers = vec![Header::Other(
            "Content-Type".into(),
            sip_bodies::REGROUP_MEDIA_TYPE.into(),
        )];
        if let Err(e) = dialog.message(Some(headers), Some(body.into_bytes())).await {
            tracing::debug!(error = ?e, "regroup MESSAGE to a subscriber not sent");
        }
    }
}

/// The regroup MESSAGE bodies (Annex F.7) of the session's events after `cursor`, which
/// moves past every event read; `None` when the session ended. Events that cannot be
/// read now (the storage failing) are read next time.
pub(crate) async fn regroup_bodies(
    system: &McSystem,
    session: &str,
    cursor: &mut i64,
) -> Option<Vec<String>> {
    use mcx_model::events::ClientEvent;
    use mcx_model::sip_bodies::{RegroupAction, write_regroup};
    let mut bodies = Vec::new();
    loop {
        let fetched = match system.events.fetch(session, *cursor).await {
            Ok(Some(fetched)) => fetched,
            Ok(None) => return None,
            Err(_) => return Some(bodies),
        };
        for delivered in &fetched.events {
            *cursor = delivered.id;
            match &delivered.event {
                ClientEvent::RegroupRequested { request } => bodies.push(write_regroup(
                    Some(&request.preconfigured_group_id),
                    &request.regroup_group_id,
                    RegroupAction::Create,
                )),
                ClientEvent::RegroupCancelled { request } => bodies.push(write_regroup(
                    None,
                    &request.regroup_group_id,
                    RegroupAction::Remove,
                )),
                _ => {}
            }
        }
        if !fetched.more {
            return Some(bodies);
        }
    }
}

/// Whether `client` of `user` holds a subscription to its own status, whose dialog
/// carries its regroups.
pub(crate) fn tells_regroups_in_a_dialog(
    dialogs: &Dialogs,
    user: &McServiceId,
    client: &ClientId,
) -> bool {
    dialogs
        .subscriptions
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .any(|(_, stored)| {
            &stored.user == user
                && &stored.client == client
                && matches!(&stored.watched, WatchedSpec::Status { user: watched } if watched == user)
        })
}

/// Whether the request's To header carries a tag, i.e. the request is sent within a
/// dialog.
fn names_a_dialog(request: &rsipstack::sip::Request) -> bool {
    request
        .header_value("To")
        .or_else(|| request.header_value("t"))
        .is_some_and(|to| {
            to.split(';')
                .skip(1)
                .any(|param| param.trim().to_ascii_lowercase().starts_with("tag="))
        })
}

async fn forget(dialogs: &Dialogs, dialog: &ServerSubscriptionDialog, key: &str) {
    dialogs
        .subscriptions
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(key);
    dialogs.layer.remove_dialog(&dialog.id());
    restore::drop_stored(dialogs, key).await;
}

/// One NOTIFY; false when the subscriber did not take it.
async fn notify(
    dialog: &ServerSubscriptionDialog,
    watched: &dyn Watched,
    state: &str,
    body: &str,
) -> bool {
    let headers = vec![
        Header::Other("Event".into(), watched.event().into()),
        Header::Other("Subscription-State".into(), state.to_string()),
        Header::Other("Content-Type".into(), watched.content_type().into()),
    ];
    match dialog
        .notify(Some(headers), Some(body.as_bytes().to_vec()))
        .await
    {
        Ok(Some(response)) => response.status_code.code() < 300,
        Ok(None) | Err(_) => false,
    }
}

/// The watched user's per-user affiliation information (MCPTT), as the requester may see it.
async fn status_body(
    system: &McSystem,
    requester: &Requester,
    watched: &McServiceId,
    publications: &Publications,
) -> Result<String, Answer> {
    let affiliations = system
        .mc_service_server
        .user_affiliations(requester, watched)
        .await
        .map_err(|e| Answer::forbidden(&e, ""))?;
    let outcome = publications.outcome(watched).unwrap_or_default();
    let ends = system
        .identity
        .session_ends(watched)
        .await
        .unwrap_or_default();
    let expires_of = |client: &ClientId| {
        ends.iter().find(|(c, _)| c == client).and_then(|(_, end)| {
            end.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    };
    let mut clients: Vec<ClientAffiliations> = Vec::new();
    let entry = |clients: &mut Vec<ClientAffiliations>, client: &ClientId| -> usize {
        match clients.iter().position(|c| &c.client == client) {
            Some(at) => at,
            None => {
                clients.push(ClientAffiliations {
                    client: client.clone(),
                    groups: Vec::new(),
                    refused: Vec::new(),
                    expires: expires_of(client),
                });
                clients.len() - 1
            }
        }
    };
    for affiliation in affiliations.affiliations.iter().filter(|a| {
        a.mc_service == McService::Mcptt && a.status != AffiliationStatus::NotAffiliated
    }) {
        for client in &affiliation.clients {
            let at = entry(&mut clients, client);
            clients[at].groups.push(ClientGroupStatus {
                group: affiliation.mc_service_group_id.clone(),
                status: affiliation.status,
            });
        }
    }
    let mut refused: Vec<_> = outcome.refused.into_iter().collect();
    refused.sort_by(|a, b| a.0.cmp(&b.0));
    for (client, groups) in refused {
        let at = entry(&mut clients, &client);
        clients[at].refused = groups;
    }
    Ok(sip_bodies::write_affiliation_status(
        watched,
        &clients,
        outcome.p_id.as_deref(),
    ))
}
