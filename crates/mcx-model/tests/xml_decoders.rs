//! Property tests of the XML decoders that read outside input (XCAP group documents, GMOP
//! requests, node selectors): they never panic, and what they accept re-encodes to a
//! document that decodes to the same group. Bounded in CI (proptest's default of 256
//! cases each, or `PROPTEST_CASES`).

use mcx_model::group_document::{self, decode, gmop_request, select};
use proptest::prelude::*;

const DOCUMENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:oxe="urn:oma:xml:xdm:extensions" xmlns:mcpttgi="urn:3gpp:ns:mcpttGroupInfo:1.0" xmlns:op="urn:example:operator">
  <list-service uri="sip:ops@police.example">
    <display-name>Operations</display-name>
    <list>
      <entry uri="sip:alice@police.example"><rl:display-name>Alice</rl:display-name><mcpttgi:user-priority>1</mcpttgi:user-priority><op:radio id="7"/></entry>
      <entry uri="sip:bob@police.example"/>
    </list>
    <oxe:supported-services><oxe:service enabler="urn:urn-7:3gpp-service.ims.icsi.mcptt"/></oxe:supported-services>
    <mcpttgi:on-network-group-priority>5</mcpttgi:on-network-group-priority>
    <op:billing code="7"><op:centre>North &amp; east</op:centre></op:billing>
  </list-service>
</group>"#;

const GMOP: &str = r#"<document xmlns="urn:3gpp:ns:mcpttGMOP:1.0"><request><get-excluding-memberlist/></request></document>"#;

/// Whatever `decode` accepts is a group mcx can serve: encoding it and decoding the
/// result gives the same group.
fn accepted_documents_reencode(bytes: &[u8]) {
    if let Ok((id, configuration)) = decode(bytes) {
        let served = group_document::encode(&id, &configuration);
        let (again_id, again) = decode(served.as_bytes()).expect("a served document decodes");
        assert_eq!(again_id, id);
        assert_eq!(again, configuration);
        // Every selector over the served document answers without panicking.
        for selector in [
            "group/list-service/display-name",
            "group/list-service/list/entry[1]/@uri",
            "*/*/*[2]",
        ] {
            let _ = select(&served, selector, None);
        }
    }
}

fn mutate(seed: &str, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    let specials = b"<>&\"'/=:![]-x ";
    for (at, kind, byte) in edits {
        let len = bytes.len();
        let at = at % (len + 1);
        let special = specials[*byte as usize % specials.len()];
        match kind % 3 {
            0 if at < len => bytes[at] = special,
            1 => bytes.insert(at, special),
            _ if at < len => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        accepted_documents_reencode(&bytes);
        let _ = gmop_request(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic_and_reencode(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        accepted_documents_reencode(&mutate(DOCUMENT, &edits));
        let _ = gmop_request(&mutate(GMOP, &edits));
    }

    #[test]
    fn random_selectors_never_panic(
        selector in "[a-z*@:\\[\\]\"=0-9/.-]{0,60}",
        query in proptest::option::of("[a-z()=:.0-9 ]{0,40}"),
    ) {
        let _ = select(DOCUMENT, &selector, query.as_deref());
    }
}

#[test]
fn the_seed_document_is_accepted_with_what_mcx_does_not_model() {
    let (_, configuration) = decode(DOCUMENT.as_bytes()).expect("the seed decodes");
    assert_eq!(configuration.xml_extensions.elements.len(), 1);
    assert_eq!(
        configuration.list[0].xml_extensions,
        ["<op:radio id=\"7\"/>"]
    );
    accepted_documents_reencode(DOCUMENT.as_bytes());
}

proptest! {
    #[test]
    fn sip_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = mcx_model::sip_bodies::read_mcptt_info(&bytes);
        let _ = mcx_model::sip_bodies::read_affiliation_publication(&bytes);
        let _ = mcx_model::sip_bodies::read_resource_list(&bytes);
        let _ = mcx_model::sip_bodies::read_regroup(&bytes);
        let _ = group_document::group_of_selector(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_publications_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let publish = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:3gpp:ns:mcpttPresInfo:1.0" entity="sip:bob@police.example"><tuple id="phone"><status><p:affiliation group="sip:ops@police.example"/></status></tuple><p:p-id>1</p:p-id></presence>"#;
        let info = r#"<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-access-token type="Normal"><mcpttString>t</mcpttString></mcptt-access-token><mcptt-request-uri type="Normal"><mcpttURI>sip:bob@police.example</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>"#;
        let _ = mcx_model::sip_bodies::read_affiliation_publication(&mutate(publish, &edits));
        let _ = mcx_model::sip_bodies::read_mcptt_info(&mutate(info, &edits));
        let regroup = r#"<mcpttregroup xmlns="urn:3gpp:ns:preconfiguredRegroup:1.0"><mcpttregroup-Params><preconfig-group-id><preconfigured-group>sip:t@police.example</preconfigured-group></preconfig-group-id><mcptt-regroup-uri>sip:rg@police.example</mcptt-regroup-uri><groups-for-regroup><g>sip:ops@police.example</g></groups-for-regroup><regroup-action>create</regroup-action></mcpttregroup-Params></mcpttregroup>"#;
        let _ = mcx_model::sip_bodies::read_regroup(&mutate(regroup, &edits));
    }
}
