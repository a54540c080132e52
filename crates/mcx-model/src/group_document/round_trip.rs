//! Decoding what mcx encodes, a document written with other prefixes, unmodelled
//! elements kept, and the documents refused.

use super::*;
use crate::group::GroupMemberEntry;
use crate::{McServiceId, NonEmpty};

fn ops() -> (McServiceGroupId, GroupConfiguration) {
    let mut alice =
        GroupMemberEntry::new(McServiceId::parse("sip:alice@police.example").expect("ID"));
    alice.participant_type = Some("dispatcher".into());
    alice.user_priority = Some(1);
    alice.display_name = Some("Alice".into());
    let mut configuration = GroupConfiguration::new(
        "Operations",
        [],
        NonEmpty::new(vec![McService::Mcptt, McService::Mcdata]).expect("two"),
    );
    configuration.list = vec![
        alice,
        GroupMemberEntry::new(McServiceId::parse("sip:bob@police.example").expect("ID")),
    ];
    configuration.on_network_group_priority = Some(5);
    configuration.on_network_disabled = true;
    (
        McServiceGroupId::parse("sip:ops@police.example").expect("ID"),
        configuration,
    )
}

#[test]
fn what_mcx_writes_it_reads_back_unchanged() {
    let (id, configuration) = ops();
    let xml = encode(&id, &configuration);
    let (read_id, read) = decode(xml.as_bytes()).expect("decodes");
    assert_eq!(read_id, id);
    assert_eq!(read, configuration);
    assert_eq!(encode(&read_id, &read), xml);
}

#[test]
fn the_sender_chooses_the_prefixes() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ls:group xmlns:ls="urn:oma:xml:poc:list-service" xmlns:r="urn:ietf:params:xml:ns:resource-lists"
          xmlns:x="urn:oma:xml:xdm:extensions" xmlns:g="urn:3gpp:ns:mcpttGroupInfo:1.0">
  <ls:list-service uri="sip:ops@police.example">
    <ls:display-name>Ops</ls:display-name>
    <ls:list><ls:entry uri="sip:bob@police.example"><r:display-name>Bob</r:display-name><g:user-priority>3</g:user-priority></ls:entry></ls:list>
    <x:supported-services><x:service enabler="urn:urn-7:3gpp-service.ims.icsi.mcptt"/></x:supported-services>
    <g:on-network-group-priority>7</g:on-network-group-priority>
  </ls:list-service>
</ls:group>"#;
    let (_, read) = decode(xml.as_bytes()).expect("decodes");
    assert_eq!(read.display_name, "Ops");
    assert_eq!(read.list[0].display_name.as_deref(), Some("Bob"));
    assert_eq!(read.list[0].user_priority, Some(3));
    assert_eq!(read.on_network_group_priority, Some(7));
    assert!(read.xml_extensions.is_empty(), "{:?}", read.xml_extensions);
}

#[test]
fn unmodelled_elements_are_kept_verbatim_and_served_back() {
    let (id, configuration) = ops();
    let xml = encode(&id, &configuration);
    // An operator's document: an element of a namespace mcx does not know, declared on the
    // root, under list-service and inside an entry, and one of list-service's own.
    let with_more = xml
        .replacen(
            "xmlns:mcpttgi=\"urn:3gpp:ns:mcpttGroupInfo:1.0\"",
            "xmlns:mcpttgi=\"urn:3gpp:ns:mcpttGroupInfo:1.0\" xmlns:op=\"urn:example:operator\"",
            1,
        )
        .replacen(
            "</list-service>",
            "<op:billing code=\"7\"><op:centre>North</op:centre></op:billing><owner>sip:alice@police.example</owner></list-service>",
            1,
        )
        .replacen(
            "<mcpttgi:user-priority>1</mcpttgi:user-priority>",
            "<mcpttgi:user-priority>1</mcpttgi:user-priority><mcpttgi:multi-talker-allowed/>",
            1,
        );
    let (_, read) = decode(with_more.as_bytes()).expect("decodes");
    assert_eq!(
        read.xml_extensions.elements,
        [
            "<op:billing code=\"7\"><op:centre>North</op:centre></op:billing>",
            "<owner>sip:alice@police.example</owner>"
        ]
    );
    assert_eq!(
        read.list[0].xml_extensions,
        ["<mcpttgi:multi-talker-allowed/>"]
    );
    assert_eq!(read.xml_extensions.namespaces["op"], "urn:example:operator");
    let served = encode(&id, &read);
    let (_, again) = decode(served.as_bytes()).expect("the served document decodes");
    assert_eq!(again, read);
}

#[test]
fn refusals_name_the_rfc_4825_error() {
    let (id, configuration) = ops();
    let good = encode(&id, &configuration);
    let cases: Vec<(String, DocumentErrorKind)> = vec![
        ("<group".into(), DocumentErrorKind::NotWellFormed),
        (
            r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><group xmlns="urn:oma:xml:poc:list-service">&lol2;</group>"#.into(),
            DocumentErrorKind::NotWellFormed,
        ),
        (
            good.replace("urn:oma:xml:poc:list-service", "urn:example:other"),
            DocumentErrorKind::SchemaValidation,
        ),
        (
            good.replace("<group ", "<groups ").replace("</group>", "</groups>"),
            DocumentErrorKind::SchemaValidation,
        ),
        (
            good.replace("sip:bob@police.example", "mailto:bob@police.example"),
            DocumentErrorKind::ConstraintFailure,
        ),
        (
            good.replace("sip:bob@police.example", "sip:alice@police.example"),
            DocumentErrorKind::UniquenessFailure,
        ),
        (
            good.replace("<mcpttgi:on-network-group-priority>5", "<mcpttgi:on-network-group-priority>500"),
            DocumentErrorKind::ConstraintFailure,
        ),
        (
            good.replace("icsi.mcptt\"", "icsi.teleport\""),
            DocumentErrorKind::ConstraintFailure,
        ),
        (
            good.replacen("</list-service>", "<rl:x xmlns:rl=\"urn:example:not-rl\"/></list-service>", 1),
            DocumentErrorKind::ConstraintFailure,
        ),
    ];
    for (document, kind) in cases {
        let refused = decode(document.as_bytes()).expect_err(&document);
        assert_eq!(refused.kind, kind, "{document}: {}", refused.phrase);
        assert!(!refused.phrase.is_empty());
    }
    let latin1 = [good.as_bytes(), &[0xff, 0xfe]].concat();
    assert_eq!(
        decode(&latin1).expect_err("not UTF-8").kind,
        DocumentErrorKind::NotUtf8
    );
    let deep = format!(
        "<group xmlns=\"urn:oma:xml:poc:list-service\">{}{}</group>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert_eq!(
        decode(deep.as_bytes()).expect_err("too deep").kind,
        DocumentErrorKind::ConstraintFailure
    );
}

#[test]
fn kept_elements_from_a_json_client_cannot_break_the_document() {
    let (_, mut configuration) = ops();
    for bad in [
        "</list-service><evil/>",
        "<a/><b/>",
        "just text",
        "<unbound:x/>",
        "<!DOCTYPE x><x/>",
    ] {
        configuration.xml_extensions.elements = vec![bad.to_string()];
        assert!(configuration.validate().is_err(), "{bad} was accepted");
    }
    configuration.xml_extensions.elements = vec!["<op:x/>".to_string()];
    configuration
        .xml_extensions
        .namespaces
        .insert("op".into(), "urn:example:operator".into());
    configuration.validate().expect("a bound prefix is fine");
}

#[test]
fn a_document_selector_names_its_group_and_back() {
    let id = McServiceGroupId::parse("sip:ops@police.example").expect("ID");
    let selector = document_selector(&id);
    assert_eq!(
        selector,
        "org.openmobilealliance.groups/global/byGroupID/sip%3Aops%40police.example"
    );
    assert_eq!(group_of_selector(&selector), Some(id.clone()));
    assert_eq!(
        group_of_selector(
            "https://gms.example/xcap-root/org.openmobilealliance.groups/global/byGroup/sip%3Aops%40police.example"
        ),
        Some(id)
    );
    for other in [
        "org.openmobilealliance.groups/users/sip%3Aops%40police.example",
        "org.openmobilealliance.groups/global/byGroupID/%FF",
        "elsewhere/global/byGroupID/sip%3Aops%40police.example",
    ] {
        assert_eq!(group_of_selector(other), None, "{other}");
    }
}
