//! Property tests of every decoder of outside input in the model: identifiers, the client
//! API's request bodies and the interconnection flows. Inputs are random bytes and
//! mutations of valid documents; a decoder must never panic, and whatever it accepts
//! must re-encode to a document that decodes to the same value.
//!
//! Bounded in CI (proptest's default of 256 cases each, or `PROPTEST_CASES`); run for
//! longer with e.g. `PROPTEST_CASES=2000000 cargo test --release -p mcx-model --test decoders`.

use std::fmt::Debug;

use mcx_model::flows::partner::PartnerRequest;
use mcx_model::{McServiceGroupId, McServiceId, SystemDomain};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Valid client bodies, one per route that takes one, by type.
const LOG_ON: &str =
    r#"{"mc-service-id":"sip:alice@police.example","password":"alice","client-id":"c1"}"#;
const CREATE_GROUP: &str = r#"{"mc-service-group-id":"sip:ops@police.example","configuration":{"display-name":"Ops","list":[{"uri":"sip:bob@police.example","user-priority":3,"participant-type":"officer"}],"supported-services":["mcptt","mcvideo"],"on-network-group-priority":5,"permitted-locations":["harbour"]}}"#;
const AFFILIATION: &str = r#"{"mc-service-id":"sip:bob@police.example","mc-service-group-id-list":["sip:ops@police.example","sip:harbour@fire.example"],"mc-service":"mcptt"}"#;
const CHANGE: &str = r#"{"mc-service-id":"sip:alice@police.example","mc-service-id-list":["sip:bob@police.example"],"mc-service-group-id-list":[{"mc-service-group-id":"sip:ops@police.example","action":"affiliate"}],"change-request-type":"negotiated","mc-service":"mcptt"}"#;
const REGROUP: &str = r#"{"mc-service-id":"sip:alice@police.example","preconfigured-group-id":"sip:pre@police.example","mc-service-group-id-list":["sip:ops@police.example"],"mc-service":"mcptt"}"#;
/// The first release's form of the regroup request (deprecated, still read).
const REGROUP_NESTED: &str = r#"{"mc-service-id":"sip:alice@police.example","preconfigured-group-id":"sip:pre@police.example","targets":{"mc-service-group-id-list":["sip:ops@police.example"]},"mc-service":"mcptt"}"#;
const ACM_ORDER: &str = r#"{"target-mc-service-id":"sip:frank@fire.example","interconnection-group-id-list":["sip:ops@police.example"]}"#;
const ACM_DECISION: &str = r#"{"decision":"rejected","reason":"not ours"}"#;

/// Valid interconnection flows: (route, body).
const FLOWS: &[(&str, &str)] = &[
    (
        "group-information-provision",
        r#"{"mc-service-group-id":"sip:ops@police.example","mc-service-group-configuration-information":{"configuration":{"display-name":"Ops","list":[{"uri":"sip:f@fire.example"}],"supported-services":["mcptt"]},"version":3,"key-material":{"generation":2,"gmk-id":"0a0b0c0d","gmk":"AAECAwQFBgcICQoLDA0ODw==","generated-at":"2026-12-01T00:00:00Z"}}}"#,
    ),
    (
        "group-information-request",
        r#"{"mc-service-group-id":"sip:ops@police.example"}"#,
    ),
    (
        "group-information-withdraw",
        r#"{"mc-service-group-id":"sip:ops@police.example","version":4}"#,
    ),
    ("group-affiliation", AFFILIATION_S2S),
    ("group-deaffiliation", AFFILIATION_S2S),
    ("group-affiliation-change", CHANGE_MANDATORY),
    (
        "preconfigured-regroup",
        r#"{"mc-service-id":"sip:alice@police.example","regroup-group-id":"sip:rg@police.example","preconfigured-group-id":"sip:pre@police.example","mc-service-group-id-list":["sip:harbour@fire.example"],"mc-service":"mcptt"}"#,
    ),
    (
        "preconfigured-regroup-cancel",
        r#"{"mc-service-id":"sip:alice@police.example","regroup-group-id":"sip:rg@police.example","mc-service":"mcptt"}"#,
    ),
    (
        "acm-group-information-provision-response",
        r#"{"request-id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","mc-service-id":"sip:frank@fire.example","decision":{"decision":"accepted"}}"#,
    ),
];
const AFFILIATION_S2S: &str = r#"{"mc-service-id":"sip:bob@police.example","mc-service-group-id-list":["sip:harbour@fire.example"],"mc-service":"mcptt"}"#;
const CHANGE_MANDATORY: &str = r#"{"mc-service-id":"sip:alice@police.example","mc-service-id-list":["sip:bob@police.example"],"mc-service-group-id-list":[{"mc-service-group-id":"sip:harbour@fire.example","action":"deaffiliate"}],"change-request-type":"mandatory","mc-service":"mcptt"}"#;

/// If `bytes` decode as `T`, they re-encode to a document that decodes to the same value.
fn reencodes<T: DeserializeOwned + Serialize + PartialEq + Debug>(bytes: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let again = serde_json::to_vec(&value).expect("a decoded value encodes");
        let back: T = serde_json::from_slice(&again).expect("a re-encoded value decodes");
        assert_eq!(back, value);
    }
}

fn client_bodies(bytes: &[u8]) {
    use mcx_model::api::*;
    use mcx_model::flows::acm::AcmDecision;
    use mcx_model::flows::affiliation::*;
    use mcx_model::flows::regroup::PreconfiguredRegroupRequest;
    reencodes::<LogOnRequest>(bytes);
    reencodes::<CreateGroupRequest>(bytes);
    reencodes::<mcx_model::group::GroupConfiguration>(bytes);
    reencodes::<GroupAffiliationRequest>(bytes);
    reencodes::<GroupDeaffiliationRequest>(bytes);
    reencodes::<GroupAffiliationChangeRequest>(bytes);
    reencodes::<ChangeAnswer>(bytes);
    reencodes::<PreconfiguredRegroupRequest>(bytes);
    reencodes::<AcmProvisionOrder>(bytes);
    reencodes::<AcmApplyRequest>(bytes);
    reencodes::<AcmDecision>(bytes);
    reencodes::<ShareRequest>(bytes);
}

fn flow(route: &str, bytes: &[u8]) {
    if let Ok(request) = PartnerRequest::decode(route, bytes) {
        assert_eq!(request.name(), route);
        let again = request.body().expect("a decoded flow encodes");
        let back = PartnerRequest::decode(route, &again).expect("a re-encoded flow decodes");
        assert_eq!(back, request);
    }
}

fn identifiers(text: &str) {
    if let Ok(id) = McServiceId::parse(text) {
        assert_eq!(McServiceId::parse(id.as_str()).as_ref(), Ok(&id));
    }
    if let Ok(id) = McServiceGroupId::parse(text) {
        assert_eq!(McServiceGroupId::parse(id.as_str()).as_ref(), Ok(&id));
    }
    if let Ok(domain) = SystemDomain::parse(text) {
        assert_eq!(SystemDomain::parse(domain.as_str()).as_ref(), Ok(&domain));
    }
}

/// A small edit of a document: replace, insert or delete a byte, or splice a token that
/// often changes meaning in JSON.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Splice(usize, &'static str),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let token = prop::sample::select(vec![
        "null",
        "\"\"",
        "[]",
        "{}",
        "-1",
        "1e999",
        "\"sip:x@y\"",
        ",",
        ":",
        "\"\\u0000\"",
        "true",
        "\"mcptt\"",
        "18446744073709551616",
    ]);
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
            (any::<usize>(), token).prop_map(|(i, t)| Edit::Splice(i, t)),
        ],
        1..6,
    )
}

fn apply(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Replace(i, b) if !bytes.is_empty() => bytes[i % len] = *b,
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), *b),
            Edit::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            Edit::Splice(i, token) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, token.bytes());
            }
            _ => {}
        }
    }
    bytes
}

#[test]
fn the_seeds_are_valid() {
    use mcx_model::api::*;
    use mcx_model::flows::affiliation::*;
    serde_json::from_str::<LogOnRequest>(LOG_ON).expect("log-on seed");
    serde_json::from_str::<CreateGroupRequest>(CREATE_GROUP).expect("group seed");
    serde_json::from_str::<GroupAffiliationRequest>(AFFILIATION).expect("affiliation seed");
    serde_json::from_str::<GroupAffiliationChangeRequest>(CHANGE).expect("change seed");
    serde_json::from_str::<mcx_model::flows::regroup::PreconfiguredRegroupRequest>(REGROUP)
        .expect("regroup seed");
    serde_json::from_str::<mcx_model::flows::regroup::PreconfiguredRegroupRequest>(REGROUP_NESTED)
        .expect("nested regroup seed");
    serde_json::from_str::<AcmProvisionOrder>(ACM_ORDER).expect("ACM seed");
    serde_json::from_str::<mcx_model::flows::acm::AcmDecision>(ACM_DECISION)
        .expect("decision seed");
    for (route, body) in FLOWS {
        PartnerRequest::decode(route, body.as_bytes())
            .unwrap_or_else(|e| panic!("{route} seed: {e}"));
    }
}

proptest! {
    #[test]
    fn client_bodies_never_panic_and_reencode(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        client_bodies(&bytes);
    }

    #[test]
    fn mutated_client_bodies_never_panic_and_reencode(
        seed in prop::sample::select(vec![LOG_ON, CREATE_GROUP, AFFILIATION, CHANGE, REGROUP, REGROUP_NESTED, ACM_ORDER, ACM_DECISION]),
        edits in edits(),
    ) {
        client_bodies(&apply(seed, &edits));
    }

    #[test]
    fn mutated_flows_never_panic_and_reencode(
        which in 0..FLOWS.len(),
        edits in edits(),
        other_route in prop::sample::select(vec!["group-information-notify", "no-such-flow", ""]),
        misroute in any::<bool>(),
    ) {
        let (route, seed) = FLOWS[which];
        let bytes = apply(seed, &edits);
        flow(if misroute { other_route } else { route }, &bytes);
        flow(route, &bytes);
    }

    #[test]
    fn random_flows_never_panic(route in "[a-z-]{0,40}", bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        flow(&route, &bytes);
    }

    #[test]
    fn identifiers_never_panic_and_reparse(text in "\\PC{0,80}") {
        identifiers(&text);
    }

    #[test]
    fn sip_like_identifiers_reparse(text in "(sip:|SIP:|tel:)?[a-zA-Z0-9._%+-]{0,20}(@[a-zA-Z0-9.-]{0,30})?") {
        identifiers(&text);
    }
}

#[test]
fn a_flow_from_a_newer_partner_decodes_without_the_fields_this_release_does_not_know() {
    let (route, seed) = FLOWS[0];
    let plain = PartnerRequest::decode(route, seed.as_bytes()).expect("the seed decodes");
    let mut newer: serde_json::Value = serde_json::from_str(seed).expect("JSON");
    newer["mcx-future-top"] = serde_json::json!({"anything": [1, 2]});
    let info = &mut newer["mc-service-group-configuration-information"];
    info["future-info"] = serde_json::json!(true);
    info["configuration"]["future-element"] = serde_json::json!("x");
    info["configuration"]["list"][0]["future-attribute"] = serde_json::json!(3);
    info["key-material"]["future-key-field"] = serde_json::json!(null);
    let decoded = PartnerRequest::decode(route, &serde_json::to_vec(&newer).expect("JSON"))
        .expect("a newer partner's flow decodes");
    assert_eq!(decoded, plain);
    // A known field of the wrong type is still refused, naming where.
    let mut wrong: serde_json::Value = serde_json::from_str(seed).expect("JSON");
    wrong["mc-service-group-configuration-information"]["version"] = serde_json::json!("three");
    let err = PartnerRequest::decode(route, &serde_json::to_vec(&wrong).expect("JSON"))
        .expect_err("a wrong type is refused");
    assert!(err.to_string().contains("version"), "{err}");
}

#[test]
fn a_stored_flow_keeps_the_layout_of_earlier_releases_and_reads_back_what_a_newer_one_wrote() {
    for (route, seed) in FLOWS {
        let request = PartnerRequest::decode(route, seed.as_bytes()).expect("the seed decodes");
        let stored = request.to_stored().expect("encodes");
        // Rows written before the stored form had its own type: the enum's own layout.
        let earlier = serde_json::to_string(&request).expect("encodes");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stored).expect("JSON"),
            serde_json::from_str::<serde_json::Value>(&earlier).expect("JSON"),
            "{route}"
        );
        assert_eq!(
            PartnerRequest::from_stored(&earlier).expect("reads"),
            request
        );
        // A row a newer release wrote (then rolled back) still reads.
        let mut newer: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
        newer["body"]["mcx-future-field"] = serde_json::json!({"x": 1});
        newer["future-row-field"] = serde_json::json!(1);
        let newer = serde_json::to_string(&newer).expect("JSON");
        assert_eq!(
            PartnerRequest::from_stored(&newer).expect("reads"),
            request,
            "{route}"
        );
    }
    // A row naming a flow this release does not have is an error, not a guess.
    let unknown = r#"{"flow": "group-teleport", "body": {}}"#;
    assert!(PartnerRequest::from_stored(unknown).is_err());
}
