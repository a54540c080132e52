//! Micro-benchmarks of the pure parts every request goes through: encoding and decoding
//! server-to-server flows, a partner GMS's local policy, and the N2 planning of an
//! affiliation. Run with `cargo bench -p mcx-core`; see docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcx_core::gms::generate_key_material;
use mcx_core::gms::policy::apply_local_policy;
use mcx_core::mc_service_server::plan_affiliation;
use mcx_core::ports::{ClientAffiliation, UserAffiliationState};
use mcx_model::flows::affiliation::ServerGroupAffiliationRequest;
use mcx_model::flows::group_configuration::{
    GroupConfigurationInformation, GroupInformationNotifyRequest,
};
use mcx_model::flows::partner::PartnerRequest;
use mcx_model::group::{GroupConfiguration, GroupMemberEntry};
use mcx_model::interconnection::LocalGroupPolicy;
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};

/// A fixed generator: the bench measures encoding, not randomness.
struct Seeded(u8);

impl mcx_core::ports::Entropy for Seeded {
    fn fill(&self, bytes: &mut [u8]) {
        bytes.fill(self.0);
    }
}

fn user(i: usize) -> McServiceId {
    McServiceId::parse(&format!("sip:user{i}@police.example")).expect("a valid user ID")
}

fn group(i: usize, domain: &str) -> McServiceGroupId {
    McServiceGroupId::parse(&format!("sip:group{i}@{domain}")).expect("a valid group ID")
}

/// A group of `members` members supporting every MC service, as the primary sends it.
fn configuration(members: usize) -> GroupConfiguration {
    GroupConfiguration {
        display_name: "Operations".into(),
        list: (0..members)
            .map(|i| GroupMemberEntry {
                uri: user(i),
                display_name: Some(format!("Officer {i}")),
                user_priority: Some(3),
                participant_type: Some("officer".into()),
                xml_extensions: Vec::new(),
            })
            .collect(),
        on_network_disabled: false,
        on_network_group_priority: Some(7),
        supported_services: NonEmpty::new(vec![
            McService::Mcptt,
            McService::Mcvideo,
            McService::Mcdata,
        ])
        .expect("three services"),
        preconfigured_group_use_only: false,
        permitted_locations: vec!["harbour".into(), "city".into(), "airport".into()],
        on_network_regrouped: None,
        regrouped_into: None,
        xml_extensions: Default::default(),
    }
}

fn flows(c: &mut Criterion) {
    let affiliation = PartnerRequest::GroupAffiliation(ServerGroupAffiliationRequest {
        mc_service_id: user(1),
        mc_service_group_id_list: NonEmpty::new((0..4).map(|i| group(i, "fire.example")).collect())
            .expect("four groups"),
        mc_service: McService::Mcptt,
        generation: Some(7),
    });
    let body = affiliation.body().expect("encodable");
    c.bench_function("flow/group-affiliation/encode", |b| {
        b.iter(|| black_box(&affiliation).body())
    });
    c.bench_function("flow/group-affiliation/decode", |b| {
        b.iter(|| PartnerRequest::decode("group-affiliation", black_box(&body)))
    });

    let notify = PartnerRequest::GroupInformationNotify(GroupInformationNotifyRequest {
        mc_service_group_id: group(0, "police.example"),
        mc_service_group_configuration_information: GroupConfigurationInformation {
            configuration: configuration(100),
            version: 42,
            key_material: Some(generate_key_material(
                3,
                time::OffsetDateTime::now_utc(),
                &Seeded(7),
            )),
        },
    });
    let body = notify.body().expect("encodable");
    c.bench_function("flow/group-information-notify-100-members/encode", |b| {
        b.iter(|| black_box(&notify).body())
    });
    c.bench_function("flow/group-information-notify-100-members/decode", |b| {
        b.iter(|| PartnerRequest::decode("group-information-notify", black_box(&body)))
    });
}

fn policy(c: &mut Criterion) {
    let received = configuration(100);
    let policy = LocalGroupPolicy {
        group_priority: None,
        max_group_priority: Some(3),
        permitted_locations: Some(vec!["harbour".into(), "city".into()]),
        drop_services: vec![McService::Mcvideo],
    };
    c.bench_function("policy/apply-local-policy-100-members", |b| {
        b.iter(|| apply_local_policy(black_box(&policy), black_box(&received)))
    });
}

fn n2(c: &mut Criterion) {
    let system = SystemDomain::parse("police.example").expect("a valid domain");
    let me = user(1);
    let client = ClientId::parse("handset-1").expect("a valid client ID");
    // The user holds 8 groups (half of them partner groups) from two clients; asks for 4
    // more, 2 of them already held, with N2 = 10.
    let other = ClientId::parse("handset-2").expect("a valid client ID");
    let rows: Vec<ClientAffiliation> = (0..8)
        .flat_map(|i| {
            let domain = if i % 2 == 0 {
                "police.example"
            } else {
                "fire.example"
            };
            [client.clone(), other.clone()].map(|c| ClientAffiliation {
                mc_service: McService::Mcptt,
                group: group(i, domain),
                client: c,
                pending: None,
            })
        })
        .collect();
    let state = UserAffiliationState {
        generation: 7,
        rows,
    };
    let candidates = vec![
        group(0, "police.example"),
        group(1, "fire.example"),
        group(20, "police.example"),
        group(21, "fire.example"),
    ];
    c.bench_function("n2/plan-affiliation-8-held-4-asked", |b| {
        b.iter(|| {
            plan_affiliation(
                black_box(&system),
                &me,
                black_box(&state),
                std::slice::from_ref(&client),
                McService::Mcptt,
                black_box(&candidates),
                10,
            )
        })
    });
}

criterion_group!(benches, flows, policy, n2);
criterion_main!(benches);
