//! Concurrent writes on SQLite are committed together: each is answered once durable,
//! a write whose guard failed keeps nothing, and the others in its transaction are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mcx_core::ports::{
    AffiliationStore as _, AffiliationWrite, ClientAffiliation, Credential, Effects,
    SipStateChange, SipStateStore as _, UserRecord, UserStore as _,
};
use mcx_model::profile::{ServiceProfile, UserProfile};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId};
use mcx_store::{SqlStore, StoreOptions, StoreWorld};

/// Wall-clock time and the thread's generator: what a server gives the store.
struct Real;

impl mcx_core::ports::Clock for Real {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
    fn sleep(&self, duration: std::time::Duration) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

impl mcx_core::ports::Entropy for Real {
    fn fill(&self, bytes: &mut [u8]) {
        use rand::RngCore as _;
        rand::rng().fill_bytes(bytes);
    }
}

fn world() -> StoreWorld {
    StoreWorld {
        clock: Arc::new(Real),
        entropy: Arc::new(Real),
    }
}

fn user(i: usize) -> McServiceId {
    McServiceId::parse(&format!("sip:u{i}@police.example")).unwrap()
}

fn affiliate(i: usize) -> Effects {
    let mut effects = Effects::none();
    effects.service.affiliations.push(AffiliationWrite::Served {
        user: user(i),
        row: ClientAffiliation {
            mc_service: McService::Mcptt,
            group: McServiceGroupId::parse("sip:ops@police.example").unwrap(),
            client: ClientId::parse("handset").unwrap(),
            pending: None,
        },
    });
    effects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_commit_together_and_a_stale_one_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::sqlite_in(dir.path());
    let store = Arc::new(SqlStore::open(&options, world()).await.unwrap());
    for i in 0..40 {
        store.put_user(&put_user_record(i)).await.unwrap();
    }
    // 40 users change at once; user 0 also sends a change guarded by a generation that
    // is not the current one.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .commit_for_user(&user(i), Some(0), &affiliate(i))
                .await
        }));
    }
    let stale = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit_for_user(&user(0), Some(7), &affiliate(0))
                .await
        })
    };
    for task in tasks {
        assert!(
            task.await.unwrap().unwrap().is_some(),
            "a current generation commits"
        );
    }
    assert!(
        stale.await.unwrap().unwrap().is_none(),
        "a stale generation is refused"
    );

    // Everything acknowledged is on disk: a new store on the same file sees it.
    store.close().await;
    let reopened = SqlStore::open(&options, world()).await.unwrap();
    for i in 0..40 {
        let state = reopened.user_affiliations(&user(i)).await.unwrap();
        assert_eq!(state.rows.len(), 1, "user {i}");
        assert_eq!(
            state.generation, 1,
            "user {i}: bumped once, by its own change only"
        );
    }
}

fn put_user_record(i: usize) -> UserRecord {
    UserRecord {
        profile: UserProfile {
            mc_service_id: user(i),
            display_name: None,
            services: BTreeMap::from([(McService::Mcptt, ServiceProfile::default())]),
            permissions: BTreeSet::new(),
        },
        credential: Credential::PasswordHash(String::new()),
    }
}

fn publication(key: &str) -> SipStateChange {
    SipStateChange::Put {
        kind: "publication".into(),
        key: key.into(),
        value: "{}".into(),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
    }
}

/// A door's rows (an affiliation PUBLISH's publication) are kept with the change that
/// carries them, and not at all when the change is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doors_rows_are_kept_with_their_change_and_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::sqlite_in(dir.path());
    let store = SqlStore::open(&options, world()).await.unwrap();
    store.put_user(&put_user_record(0)).await.unwrap();
    store
        .change_sip_state(vec![publication("earlier")])
        .await
        .unwrap();

    let mut kept = affiliate(0);
    kept.door = vec![
        publication("current"),
        SipStateChange::Delete {
            kind: "publication".into(),
            key: "earlier".into(),
        },
    ];
    assert!(
        store
            .commit_for_user(&user(0), Some(0), &kept)
            .await
            .unwrap()
            .is_some()
    );
    let mut stale = affiliate(0);
    stale.door = vec![publication("stale")];
    assert!(
        store
            .commit_for_user(&user(0), Some(0), &stale)
            .await
            .unwrap()
            .is_none(),
        "the generation moved on"
    );

    store.close().await;
    let reopened = SqlStore::open(&options, world()).await.unwrap();
    let rows: Vec<String> = reopened
        .sip_state("publication", time::OffsetDateTime::now_utc())
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(rows, vec!["current".to_string()]);
    assert_eq!(
        reopened
            .user_affiliations(&user(0))
            .await
            .unwrap()
            .rows
            .len(),
        1
    );
}

/// A host's commit of a partner's request with its answer, guarded by the request's
/// generation for `user(0)` and the ops group.
fn hosted_with_answer(transaction: mcx_model::TransactionId, generation: u64) -> Effects {
    use mcx_model::flows::FlowResult;
    use mcx_model::flows::group_configuration::GroupInformationWithdrawResponse;
    use mcx_model::flows::partner::PartnerResponse;
    let group = McServiceGroupId::parse("sip:ops@police.example").unwrap();
    let mut effects = Effects::none();
    effects.inbound_answer = Some(mcx_core::ports::InboundAnswer {
        partner: mcx_model::SystemDomain::parse("fire.example").unwrap(),
        transaction,
        answer: PartnerResponse::GroupInformationWithdraw(GroupInformationWithdrawResponse {
            mc_service_group_id: group.clone(),
            result: FlowResult::Success,
        }),
    });
    effects
        .service
        .affiliations
        .push(AffiliationWrite::HostedGeneration {
            user: user(0),
            mc_service: McService::Mcptt,
            group,
            generation,
        });
    effects
}

#[tokio::test]
async fn an_overtaken_partner_request_keeps_no_answer() {
    use mcx_core::ports::{EventStore as _, InterconnectionStore as _};
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open(&StoreOptions::sqlite_in(dir.path()), world())
        .await
        .unwrap();
    let fire = mcx_model::SystemDomain::parse("fire.example").unwrap();
    let newer = mcx_model::TransactionId::new();
    let applied = store.commit(&hosted_with_answer(newer, 5)).await.unwrap();
    assert!(!applied.conflict, "the newer request is applied");
    // An older request arrives after it: its guard fails, and nothing of it is kept, its
    // answer least of all (a copy of it would be given that answer as already given).
    let older = mcx_model::TransactionId::new();
    let overtaken = store.commit(&hosted_with_answer(older, 3)).await.unwrap();
    assert!(overtaken.conflict, "an overtaken request is refused");
    assert!(
        store.inbound_answer(&fire, older).await.unwrap().is_none(),
        "the overtaken request's answer was kept"
    );
    assert!(store.inbound_answer(&fire, newer).await.unwrap().is_some());
}
