//! Subscriptions that outlive a restart (issue 15 item 8). Each accepted subscription is
//! stored with what its dialog needs (Call-ID, tags, the subscriber's From, To, Contact
//! and Record-Route, our Contact) and what it watches; refreshes move its expiry, its end
//! deletes it. At start the stored ones are put back into the dialog layer (rsipstack's
//! `restore_from_snapshot`) and notified at once, so the subscriber hears the state after
//! the restart in the same dialog, and its next refresh is answered as before.

use std::sync::Arc;

use mcx_core::system::McSystem;
use mcx_model::{ClientId, McServiceGroupId, McServiceId};
use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{Dialog, DialogSnapshot, DialogSnapshotState};
use rsipstack::dialog::subscription::ServerSubscriptionDialog;
use rsipstack::sip::prelude::{HeadersExt as _, ToTypedHeader as _};
use rsipstack::sip::{Request, Uri};
use rsipstack::transaction::key::TransactionRole;
use serde::{Deserialize, Serialize};

use super::subscribe::Dialogs;

/// The `sip_state` kind of subscriptions.
const KIND: &str = "subscription";
/// How far a restored dialog's CSeq jumps past the stored one: our NOTIFYs' CSeq must
/// keep growing (RFC 3261 §12.2.1.1), and those sent since it was stored are not counted.
const CSEQ_STEP: u32 = 1_000_000;

/// What a subscription watches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WatchedSpec {
    /// A user's affiliation status.
    Status { user: McServiceId },
    /// Group documents.
    Documents { groups: Vec<McServiceGroupId> },
}

/// A stored subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct StoredSubscription {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    from: String,
    to: String,
    contact: String,
    record_routes: Vec<String>,
    local_contact: String,
    cseq: u32,
    pub(crate) user: McServiceId,
    pub(crate) client: ClientId,
    pub(crate) watched: WatchedSpec,
    /// When it ends, in seconds since the epoch.
    expires_at: i64,
}

impl StoredSubscription {
    /// What to store of a subscription accepted for `request` in the dialog `id`.
    pub(crate) fn of(
        request: &Request,
        id: &DialogId,
        local_contact: &Uri,
        user: McServiceId,
        client: ClientId,
        watched: WatchedSpec,
        expires: u64,
    ) -> Option<Self> {
        Some(
            Self {
                call_id: id.call_id.clone(),
                local_tag: id.local_tag.clone(),
                remote_tag: id.remote_tag.clone(),
                from: request.from_header().ok()?.value().to_string(),
                to: request.to_header().ok()?.value().to_string(),
                contact: request.contact_header().ok()?.value().to_string(),
                record_routes: request
                    .record_route_headers()
                    .into_iter()
                    .map(|r| r.value().to_string())
                    .collect(),
                local_contact: local_contact.to_string(),
                cseq: request.cseq_header().ok()?.seq().ok()?,
                user,
                client,
                watched,
                expires_at: 0,
            }
            .expiring_in(expires),
        )
    }

    /// The same, ending `seconds` from now.
    pub(crate) fn expiring_in(mut self, seconds: u64) -> Self {
        self.expires_at = time::OffsetDateTime::now_utc().unix_timestamp()
            + i64::try_from(seconds).unwrap_or(i64::MAX / 2);
        self
    }

    /// Seconds left.
    pub(crate) fn remaining(&self) -> u64 {
        u64::try_from(self.expires_at - time::OffsetDateTime::now_utc().unix_timestamp())
            .unwrap_or(0)
    }

    fn snapshot(&self) -> Option<DialogSnapshot> {
        let contact = rsipstack::sip::Contact::new(self.contact.clone());
        let remote_uri = contact.typed().ok()?.uri;
        // A Record-Route value may list several hops; a URI holds no comma unescaped.
        let route_set = self
            .record_routes
            .iter()
            .flat_map(|r| r.split(','))
            .map(|hop| rsipstack::sip::Route::new(hop.trim().to_string()))
            .collect();
        Some(DialogSnapshot {
            state: DialogSnapshotState::Confirmed,
            role: TransactionRole::Server,
            id: DialogId {
                call_id: self.call_id.clone(),
                local_tag: self.local_tag.clone(),
                remote_tag: self.remote_tag.clone(),
            },
            from: rsipstack::sip::From::new(self.from.clone()).typed().ok()?,
            to: rsipstack::sip::To::new(self.to.clone()).typed().ok()?,
            local_cseq: self.cseq.saturating_add(CSEQ_STEP),
            remote_cseq: 0,
            local_contact: Uri::try_from(self.local_contact.as_str()).ok(),
            remote_uri,
            remote_contact: Some(contact),
            route_set,
            supports_100rel: false,
            session_id: None,
        })
    }
}

/// Stores (or updates) a subscription under its dialog key.
pub(crate) async fn keep(dialogs: &Dialogs, key: &str, stored: &StoredSubscription) {
    let value = serde_json::to_string(stored).unwrap_or_default();
    let until = time::OffsetDateTime::from_unix_timestamp(stored.expires_at)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let put = mcx_core::ports::SipStateChange::Put {
        kind: KIND.into(),
        key: key.to_string(),
        value,
        expires_at: until,
    };
    if let Err(e) = dialogs.store.change_sip_state(vec![put]).await {
        tracing::warn!(error = %e, "SIP subscription not stored; a restart would end it");
    }
}

/// Deletes a stored subscription.
pub(crate) async fn drop_stored(dialogs: &Dialogs, key: &str) {
    let delete = mcx_core::ports::SipStateChange::Delete {
        kind: KIND.into(),
        key: key.to_string(),
    };
    if let Err(e) = dialogs.store.change_sip_state(vec![delete]).await {
        tracing::warn!(error = %e, "ended SIP subscription not deleted from the store");
    }
}

/// Puts every stored subscription back and restarts its notifier. Returns how many.
pub(crate) async fn restore_all(system: &Arc<McSystem>, dialogs: &Arc<Dialogs>) -> usize {
    let rows = match dialogs
        .store
        .sip_state(KIND, time::OffsetDateTime::now_utc())
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "stored SIP subscriptions not read");
            return 0;
        }
    };
    let mut restored = 0;
    for (key, value) in rows {
        let Some(mut stored) = serde_json::from_str::<StoredSubscription>(&value).ok() else {
            tracing::warn!(%key, "a stored SIP subscription is not readable; dropped");
            drop_stored(dialogs, &key).await;
            continue;
        };
        let Some(dialog) = restore_dialog(dialogs, &stored) else {
            tracing::warn!(%key, "a stored SIP subscription's dialog cannot be rebuilt; dropped");
            drop_stored(dialogs, &key).await;
            continue;
        };
        // The next restart jumps further.
        stored.cseq = stored.cseq.saturating_add(CSEQ_STEP);
        keep(dialogs, &key, &stored).await;
        super::subscribe::resume(system, dialogs, dialog, key, stored).await;
        restored += 1;
    }
    restored
}

fn restore_dialog(
    dialogs: &Dialogs,
    stored: &StoredSubscription,
) -> Option<ServerSubscriptionDialog> {
    let snapshot = stored.snapshot()?;
    let id = snapshot.id.clone();
    dialogs
        .layer
        .restore_from_snapshot(snapshot, dialogs.states.clone())
        .ok()?;
    match dialogs.layer.get_dialog(&id)? {
        Dialog::Invite(invite) => match invite.as_subscription() {
            Dialog::ServerSubscription(dialog) => Some(dialog),
            _ => None,
        },
        Dialog::ServerSubscription(dialog) => Some(dialog),
        _ => None,
    }
}
