//! Regroups told to affiliated members by MESSAGE outside a dialog (TS 24.379 §16.2.3,
//! issue 15 item 7). A client that affiliated by PUBLISH is reached where its
//! publication says (its Contact, else the address the PUBLISH came from); when its
//! session is put into or taken out of a regroup, it gets a MESSAGE there with the
//! Annex F.7 body. A client that also holds a subscription to its own status is told in
//! that dialog instead (`subscribe.rs`), not twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcx_core::system::McSystem;
use mcx_model::{ClientId, McServiceId};
use rsipstack::sip::param::Tag;
use rsipstack::sip::{Header, Method, Param, SipMessage, Transport, Uri, typed};
use rsipstack::transaction::Transaction;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use tokio_util::sync::CancellationToken;

use super::subscribe::{self, Dialogs};

/// How often a member's events are looked at when nothing woke it (a regroup made by
/// another node of the system): seldom, as every publishing client has a teller.
const LOOK_AGAIN: Duration = Duration::from_secs(5);
/// The publications, and each member's events, are looked at no more often than this: a
/// burst of PUBLISHes costs one look, not one each.
const AT_MOST_EVERY: Duration = Duration::from_millis(500);

/// Starts following the publications: one teller per client that holds a publication
/// saying where it is reached.
pub(crate) fn start(system: &Arc<McSystem>, dialogs: &Arc<Dialogs>) {
    dialogs
        .tasks
        .spawn(follow_publications(system.clone(), dialogs.clone()));
}

/// How far a client's regroup events were told: in which session, up to which event.
type Told = Arc<Mutex<Option<(String, i64)>>>;

/// A running teller.
struct Teller {
    contact: String,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
    told: Told,
}

/// Keeps one teller running per publishing client (at its newest address), and ends
/// those whose client holds no publication any more. A teller that ended (its session
/// ended) is started again at the next look, for the client's next session.
async fn follow_publications(system: Arc<McSystem>, dialogs: Arc<Dialogs>) {
    let mut published = dialogs.publications.published();
    let mut running: HashMap<(McServiceId, ClientId), Teller> = HashMap::new();
    // At the start, what sessions had before was told (or not) by the process before.
    let mut at_start = true;
    loop {
        let reachable = dialogs.publications.reachable();
        let mut ended: HashMap<(McServiceId, ClientId), Told> = HashMap::new();
        running.retain(|client, teller| {
            let kept =
                reachable.get(client) == Some(&teller.contact) && !teller.handle.is_finished();
            if !kept {
                teller.stop.cancel();
                ended.insert(client.clone(), teller.told.clone());
            }
            kept
        });
        for (client, contact) in reachable {
            if running.contains_key(&client) {
                continue;
            }
            // A client that moved carries on where its teller was.
            let told = ended.remove(&client).unwrap_or_default();
            let stop = dialogs.stop.child_token();
            let handle = dialogs.tasks.spawn(tell_member(
                system.clone(),
                dialogs.clone(),
                (client.clone(), contact.clone()),
                (told.clone(), at_start),
                stop.clone(),
            ));
            running.insert(
                client,
                Teller {
                    contact,
                    stop,
                    handle,
                    told,
                },
            );
        }
        at_start = false;
        tokio::select! {
            _ = dialogs.stop.cancelled() => return,
            changed = published.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(LOOK_AGAIN) => {}
        }
        tokio::select! {
            _ = dialogs.stop.cancelled() => return,
            _ = tokio::time::sleep(AT_MOST_EVERY) => {}
        }
    }
}

/// Tells one publishing client its regroups until it holds no publication at
/// `contact`, its session ends, or the server stops: those of its session after what
/// `told` says was told, or (a new session) all of them since it logged on, so a
/// regroup made just before the teller started is told too; `skip_history` (at the
/// start of the process) tells only what comes next.
async fn tell_member(
    system: Arc<McSystem>,
    dialogs: Arc<Dialogs>,
    ((user, client), contact): ((McServiceId, ClientId), String),
    (told, skip_history): (Told, bool),
    stop: CancellationToken,
) {
    let Ok(requester) = system.identity.asserted(&user, Some(&client)).await else {
        return;
    };
    let session = requester.session_id;
    let waker = system.wakers.waker(&session);
    let inherited = told
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .filter(|(of, _)| of == &session)
        .map(|(_, cursor)| cursor);
    let mut cursor = inherited.unwrap_or(0);
    if inherited.is_none()
        && skip_history
        && subscribe::regroup_bodies(&system, &session, &mut cursor)
            .await
            .is_none()
    {
        return;
    }
    let mut first = true;
    loop {
        if !first {
            // Every affiliation change of the session wakes it too: its events are read
            // at most every AT_MOST_EVERY (a wake meanwhile is kept by `notified`).
            let notified = waker.notified();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(AT_MOST_EVERY) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
        first = false;
        let Some(bodies) = subscribe::regroup_bodies(&system, &session, &mut cursor).await else {
            return;
        };
        *told.lock().unwrap_or_else(|e| e.into_inner()) = Some((session.clone(), cursor));
        if bodies.is_empty() || subscribe::tells_regroups_in_a_dialog(&dialogs, &user, &client) {
            continue;
        }
        for body in bodies {
            // A member that does not answer holds its transaction for 32 s; the server's
            // stop must not wait for it.
            let taken = tokio::select! {
                taken = send_message(&system, &dialogs, &contact, &user, body) => taken,
                _ = stop.cancelled() => return,
            };
            if !taken {
                tracing::debug!(%user, %contact, "regroup MESSAGE to a member not taken");
            }
        }
    }
}

/// Sends one regroup MESSAGE from the PSI to `user` at `contact`, in a transaction of its
/// own (retransmitted over UDP until answered); whether a 2xx came back.
async fn send_message(
    system: &McSystem,
    dialogs: &Dialogs,
    contact: &str,
    user: &McServiceId,
    body: String,
) -> bool {
    let endpoint = dialogs.layer.endpoint.clone();
    let (Ok(target), Ok(psi), Ok(to)) = (
        Uri::try_from(contact),
        Uri::try_from(dialogs.policy.psi.as_str()),
        Uri::try_from(user.as_str()),
    ) else {
        return false;
    };
    // The Via names the transport the target is reached over.
    let transport = target
        .params
        .iter()
        .find_map(|p| match p {
            Param::Transport(transport) => Some(*transport),
            _ => None,
        })
        .unwrap_or(Transport::Udp);
    let local = endpoint
        .get_addrs()
        .into_iter()
        .find(|addr| addr.r#type.unwrap_or_default() == transport);
    let Ok(via) = endpoint.get_via(local, None) else {
        return false;
    };
    let from = typed::From {
        display_name: None,
        uri: psi,
        params: vec![Param::Tag(Tag::new(format!(
            "{:016x}",
            rand::random::<u64>()
        )))],
    };
    let to = typed::To {
        display_name: None,
        uri: to,
        params: Vec::new(),
    };
    // The crate's default Call-ID names its authors' domain; ours names the system's.
    let call_id = rsipstack::sip::CallId::new(format!(
        "{:032x}@{}",
        rand::random::<u128>(),
        system.settings.domain
    ));
    let mut request =
        endpoint.make_request(Method::Message, target, via, from, to, 1, Some(call_id));
    request.headers.push(Header::Other(
        "Content-Type".into(),
        mcx_model::sip_bodies::REGROUP_MEDIA_TYPE.into(),
    ));
    request.body = body.into_bytes();
    let Ok(key) = TransactionKey::from_request(&request, TransactionRole::Client) else {
        return false;
    };
    let mut transaction = Transaction::new_client(key, request, endpoint, None);
    if transaction.send().await.is_err() {
        return false;
    }
    while let Some(message) = transaction.receive().await {
        if let SipMessage::Response(response) = message {
            let code = response.status_code.code();
            if code >= 200 {
                return code < 300;
            }
        }
    }
    false
}
