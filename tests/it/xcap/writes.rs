//! Writing group documents over XCAP: PUT creates or replaces, DELETE; conditions; every
//! refusal with its RFC 4825 error and an unchanged store; the round trip with the JSON
//! API; the change announced with its ETag.

use super::*;
use crate::support::*;

const LIAISON: &str = "sip:liaison@police.example";

/// A document as an operator's tool would write it, with elements mcx does not model.
fn liaison_document() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:ocp="urn:oma:xml:xdm:common-policy" xmlns:oxe="urn:oma:xml:xdm:extensions" xmlns:mcpttgi="urn:3gpp:ns:mcpttGroupInfo:1.0" xmlns:op="urn:example:operator">
  <list-service uri="sip:liaison@police.example">
    <display-name>Liaison</display-name>
    <list>
      <entry uri="sip:alice@police.example">
        <mcpttgi:participant-type>dispatcher</mcpttgi:participant-type>
        <mcpttgi:user-priority>1</mcpttgi:user-priority>
        <mcpttgi:multi-talker-allowed/>
      </entry>
      <entry uri="sip:bob@police.example">
        <rl:display-name>Bob</rl:display-name>
      </entry>
    </list>
    <oxe:supported-services>
      <oxe:service enabler="urn:urn-7:3gpp-service.ims.icsi.mcptt"/>
    </oxe:supported-services>
    <mcpttgi:on-network-group-priority>4</mcpttgi:on-network-group-priority>
    <op:billing code="7"><op:centre>North</op:centre></op:billing>
  </list-service>
</group>
"#
    .to_string()
}

#[tokio::test]
async fn a_document_put_over_xcap_reads_back_identically_and_equivalently_over_json() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let path = document_path(LIAISON);

    let created = put(&system, alice.token(), &path, &liaison_document())
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let first = created.text().await.unwrap();
    xmllint_check(&first, &[]);

    let read = get(&system, alice.token(), &path).send().await.unwrap();
    let served = read.text().await.unwrap();
    assert_eq!(served, first);
    // Served back as written, up to canonical XML (the elements mcx does not model too).
    let written = liaison_document();
    let strip = |xml: &str| {
        // Whitespace between elements is not part of the group's document.
        let mut text = canonical(xml);
        while let Some(at) = text.find(">\n") {
            let end = text[at + 1..]
                .find(|c: char| !c.is_whitespace())
                .map_or(text.len(), |n| at + 1 + n);
            text.replace_range(at + 1..end, "");
        }
        text
    };
    assert_eq!(strip(&served), strip(&written));

    // The same group over the JSON API.
    let record = alice.group(&gid(LIAISON)).await.unwrap();
    let c = &record.configuration;
    assert_eq!(c.display_name, "Liaison");
    assert_eq!(c.on_network_group_priority, Some(4));
    assert_eq!(c.list[0].participant_type.as_deref(), Some("dispatcher"));
    assert_eq!(
        c.list[0].xml_extensions,
        ["<mcpttgi:multi-talker-allowed/>"]
    );
    assert_eq!(c.list[1].display_name.as_deref(), Some("Bob"));
    assert_eq!(
        c.xml_extensions.elements,
        ["<op:billing code=\"7\"><op:centre>North</op:centre></op:billing>"]
    );

    // And the reverse: changed over JSON, the XCAP document follows, ETag bumped, the
    // kept elements still there.
    let mut changed = c.clone();
    changed.display_name = "Liaison north".into();
    alice
        .update_group(&gid(LIAISON), &changed, mcx_client::IfMatch::Version(1))
        .await
        .unwrap();
    let after = get(&system, alice.token(), &path).send().await.unwrap();
    assert_eq!(after.headers()["etag"], "\"2\"");
    let values = xmllint_check(
        &after.text().await.unwrap(),
        &[
            "/*/*/*[local-name()='display-name']",
            "//*[local-name()='billing' and namespace-uri()='urn:example:operator']/@code",
        ],
    );
    assert_eq!(values, ["Liaison north", "7"]);
}

#[tokio::test]
async fn conditional_writes_and_every_refusal_change_nothing() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    let ops = document_path(OPS);
    let before = alice.group(&gid(OPS)).await.unwrap();
    let document = document_text(&system, alice.token(), &ops).await;

    // Preconditions: 412, with the ETag of what is there.
    let exists = put(&system, alice.token(), &ops, &document)
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(exists.status(), 412);
    let stale = put(&system, alice.token(), &ops, &document)
        .header("if-match", "\"99\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);

    // Documents refused, each with its RFC 4825 error element, 409.
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><group xmlns="urn:oma:xml:poc:list-service">&lol2;</group>"#;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "not well-formed",
            document.replace("</group>", ""),
            "not-well-formed",
        ),
        (
            "entity expansion",
            billion_laughs.to_string(),
            "not-well-formed",
        ),
        (
            "wrong namespace",
            document.replace(
                "xmlns=\"urn:oma:xml:poc:list-service\"",
                "xmlns=\"urn:example:x\"",
            ),
            "schema-validation-error",
        ),
        (
            "wrong root",
            document
                .replace("<group ", "<resource-lists ")
                .replace("</group>", "</resource-lists>"),
            "schema-validation-error",
        ),
        (
            "member URI scheme",
            document.replace("sip:bob@police.example", "mailto:bob@police.example"),
            "constraint-failure",
        ),
        (
            "another group's document",
            document.replace(
                "uri=\"sip:ops@police.example\"",
                "uri=\"sip:patrol@police.example\"",
            ),
            "constraint-failure",
        ),
        (
            "member listed twice",
            document.replace("sip:bob@police.example", "sip:alice@police.example"),
            "uniqueness-failure",
        ),
    ];
    for (case, body, element) in cases {
        let refused = put(&system, alice.token(), &ops, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 409, "{case}");
        assert_eq!(
            refused.headers()["content-type"],
            "application/xcap-error+xml",
            "{case}"
        );
        let error = refused.text().await.unwrap();
        let values = xmllint_check(
            &error,
            &[
                "namespace-uri(/*)",
                "local-name(/*/*)",
                "string-length(/*/*/@phrase) > 0",
            ],
        );
        assert_eq!(
            values,
            ["urn:ietf:params:xml:ns:xcap-error", element, "true"],
            "{case}: {error}"
        );
    }
    let oversized = format!("{}<!-- {} -->", document, "x".repeat(300 * 1024));
    let too_big = put(&system, alice.token(), &ops, &oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let wrong_type = reqwest::Client::new()
        .put(format!("{}{ops}", system.url()))
        .bearer_auth(alice.token().unwrap())
        .header("content-type", "application/json")
        .body(document.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);

    // Who may: a member reads but does not write; nobody anonymous.
    let not_admin = put(&system, bob.token(), &ops, &document)
        .send()
        .await
        .unwrap();
    assert_eq!(not_admin.status(), 403);
    let anonymous = put(&system, None, &ops, &document).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let delete_by_member = reqwest::Client::new()
        .delete(format!("{}{ops}", system.url()))
        .bearer_auth(bob.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(delete_by_member.status(), 403);

    // Nothing changed.
    assert_eq!(alice.group(&gid(OPS)).await.unwrap(), before);

    // A replace with the right ETag works and keeps what the document cannot carry.
    let renamed = document.replace(">Operations<", ">Operations centre<");
    let replaced = put(&system, alice.token(), &ops, &renamed)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    assert_eq!(replaced.headers()["etag"], "\"2\"");
    let now = alice.group(&gid(OPS)).await.unwrap();
    assert_eq!(now.configuration.display_name, "Operations centre");
    assert_eq!(
        now.configuration.permitted_locations,
        before.configuration.permitted_locations
    );

    // DELETE: gone from both doors.
    let deleted = reqwest::Client::new()
        .delete(format!("{}{ops}", system.url()))
        .bearer_auth(alice.token().unwrap())
        .header("if-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        get(&system, alice.token(), &ops)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert!(alice.group(&gid(OPS)).await.is_err());
}

#[tokio::test]
async fn a_change_over_xcap_reaches_subscribers_with_its_etag_and_the_xcap_diff_names_it() {
    use mcx_model::events::ClientEvent;
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let bob = system.log_on_as(BOB, "phone").await;
    bob.subscribe(&gid(OPS)).await.unwrap();
    let mut events = bob.events(None).await.unwrap();
    let ops = document_path(OPS);
    let document = document_text(&system, alice.token(), &ops).await;
    let changed = put(
        &system,
        alice.token(),
        &ops,
        &document.replace(">Operations<", ">Operations centre<"),
    )
    .header("if-match", "\"1\"")
    .send()
    .await
    .unwrap();
    let etag = changed.headers()["etag"].to_str().unwrap().to_string();
    match next_event(&mut events).await.event {
        ClientEvent::GroupConfigurationChanged { group, etag: told } => {
            assert_eq!(told, etag);
            assert_eq!(group.configuration.display_name, "Operations centre");
        }
        other => panic!("expected the change, got {other:?}"),
    }
    let diff = mcx_model::group_document::xcap_diff(
        &format!("{}/xcap-root", system.url()),
        &gid(OPS),
        Some("\"1\""),
        Some(&etag),
    );
    let values = xmllint_check(
        &diff,
        &[
            "namespace-uri(/*)",
            "/*/*[local-name()='document']/@sel",
            "/*/*[local-name()='document']/@new-etag",
        ],
    );
    assert_eq!(
        values,
        [
            "urn:ietf:params:xml:ns:xcap-diff",
            "org.openmobilealliance.groups/global/byGroupID/sip%3Aops%40police.example",
            "\"2\"",
        ]
    );
}
