//! The store's unit of work on embedded SQLite (`synchronous=FULL`, as `mcx serve` runs
//! it): the reads a request makes before it decides, and the commits that make it
//! durable, alone and with concurrent writers sharing a group commit. Run with
//! `cargo bench -p mcx-store`; see docs/PERFORMANCE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mcx_core::ports::{
    AffiliationStore as _, AffiliationWrite, ClientAffiliation, Credential, Effects, SessionRecord,
    SessionStore as _, SipStateChange, SipStateStore as _, UserRecord, UserStore as _,
};
use mcx_model::profile::{ServiceProfile, UserProfile};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId};
use mcx_store::{SqlStore, StoreOptions, StoreWorld};

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

fn user(i: usize) -> McServiceId {
    McServiceId::parse(&format!("sip:u{i}@police.example")).expect("a valid user ID")
}

/// One client's affiliation to ops, added or (`remove`) taken away.
fn change(i: usize, remove: bool) -> Effects {
    let group = McServiceGroupId::parse("sip:ops@police.example").expect("a valid group ID");
    let client = ClientId::parse("handset").expect("a valid client ID");
    let mut effects = Effects::none();
    effects.service.affiliations.push(if remove {
        AffiliationWrite::ServedRemoved {
            user: user(i),
            mc_service: McService::Mcptt,
            group,
            client,
        }
    } else {
        AffiliationWrite::Served {
            user: user(i),
            row: ClientAffiliation {
                mc_service: McService::Mcptt,
                group,
                client,
                pending: None,
            },
        }
    });
    effects
}

fn unit_of_work(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a directory");
    let store = runtime.block_on(async {
        let world = StoreWorld {
            clock: Arc::new(Real),
            entropy: Arc::new(Real),
        };
        let store = Arc::new(
            SqlStore::open(&StoreOptions::sqlite_in(dir.path()), world)
                .await
                .expect("the store opens"),
        );
        for i in 0..64 {
            store
                .put_user(&UserRecord {
                    profile: UserProfile {
                        mc_service_id: user(i),
                        display_name: None,
                        services: BTreeMap::from([(McService::Mcptt, ServiceProfile::default())]),
                        permissions: BTreeSet::new(),
                    },
                    credential: Credential::PasswordHash(String::new()),
                })
                .await
                .expect("a user");
        }
        let now = time::OffsetDateTime::now_utc();
        store
            .start_session(&SessionRecord {
                session_id: "s0".into(),
                token_hash: "h0".into(),
                mc_service_id: user(0),
                client_id: ClientId::parse("handset").expect("a valid client ID"),
                logged_on_at: now,
                expires_at: now + time::Duration::hours(1),
            })
            .await
            .expect("a session");
        store
    });

    let mut group = c.benchmark_group("store");
    group.bench_function("read/session-and-user", |b| {
        b.iter(|| {
            runtime
                .block_on(store.session_and_user("h0"))
                .expect("read")
        })
    });
    group.bench_function("read/user-affiliations", |b| {
        b.iter(|| {
            runtime
                .block_on(store.user_affiliations(&user(0)))
                .expect("read")
        })
    });
    let mut step = 0;
    group.bench_function("commit/one-affiliation-change", |b| {
        b.iter(|| {
            step += 1;
            runtime
                .block_on(store.commit_for_user(&user(0), None, &change(0, step % 2 == 0)))
                .expect("commit")
        })
    });
    let mut round = 0;
    group.bench_function("commit/32-concurrent-affiliation-changes", |b| {
        b.iter(|| {
            round += 1;
            runtime.block_on(async {
                let writes = (1..=32).map(|i| {
                    let store = store.clone();
                    async move {
                        store
                            .commit_for_user(&user(i), None, &change(i, round % 2 == 0))
                            .await
                    }
                });
                for result in futures_util::future::join_all(writes).await {
                    result.expect("commit");
                }
            })
        })
    });
    group.bench_function("commit/sip-publication-replaced", |b| {
        b.iter(|| {
            step += 1;
            let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
            runtime
                .block_on(store.change_sip_state(vec![
                    SipStateChange::Put {
                        kind: "publication".into(),
                        key: format!("e{step}"),
                        value: "{}".into(),
                        expires_at: until,
                    },
                    SipStateChange::Delete {
                        kind: "publication".into(),
                        key: format!("e{}", step - 1),
                    },
                ]))
                .expect("commit")
        })
    });
    group.finish();
}

criterion_group!(benches, unit_of_work);
criterion_main!(benches);
