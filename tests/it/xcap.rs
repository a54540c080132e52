//! The XCAP door to the GMS (TS 24.481 group documents over RFC 4825): documents read
//! by members and administrators, checked by xmllint, conditional GET.

use crate::support::*;

const OPS_DOCUMENT: &str =
    "/xcap-root/org.openmobilealliance.groups/global/byGroupID/sip%3Aops%40police.example";

fn get(system: &TestSystem, token: Option<&str>, path: &str) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().get(format!("{}{path}", system.url()));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

#[tokio::test]
async fn a_member_reads_the_group_document_which_xmllint_accepts() {
    let system = TestSystem::example().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let response = get(&system, bob.token(), OPS_DOCUMENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.oma.poc.groups+xml"
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let xml = response.text().await.unwrap();
    let values = xmllint_check(
        &xml,
        &[
            "namespace-uri(/*)",
            "local-name(/*)",
            "/*/*[local-name()='list-service']/@uri",
            "/*/*/*[local-name()='display-name']",
            "count(//*[local-name()='entry'])",
            "//*[local-name()='entry'][@uri='sip:bob@police.example']/*[local-name()='user-priority' and namespace-uri()='urn:3gpp:ns:mcpttGroupInfo:1.0']",
            "//*[local-name()='entry'][@uri='sip:alice@police.example']/*[local-name()='participant-type']",
            "//*[local-name()='on-network-group-priority' and namespace-uri()='urn:3gpp:ns:mcpttGroupInfo:1.0']",
            "count(//*[local-name()='supported-services' and namespace-uri()='urn:oma:xml:xdm:extensions']/*)",
        ],
    );
    assert_eq!(
        values,
        [
            "urn:oma:xml:poc:list-service",
            "group",
            "sip:ops@police.example",
            "Operations",
            "2",
            "3",
            "dispatcher",
            "5",
            "3",
        ]
    );

    // The same document through the older path; and not again while unchanged.
    let alias = OPS_DOCUMENT.replace("byGroupID", "byGroup");
    let again = get(&system, bob.token(), &alias).send().await.unwrap();
    assert_eq!(again.text().await.unwrap(), xml);
    let unchanged = get(&system, bob.token(), OPS_DOCUMENT)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn a_non_member_an_anonymous_caller_and_an_unknown_group_get_nothing() {
    let system = TestSystem::example().await;
    let carol = system.log_on_as(CAROL, "phone").await;
    let refused = get(&system, carol.token(), OPS_DOCUMENT)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused.text().await.unwrap().contains("list-service"));
    let anonymous = get(&system, None, OPS_DOCUMENT).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bob = system.log_on_as(BOB, "phone").await;
    let unknown = OPS_DOCUMENT.replace("ops", "nosuch");
    let missing = get(&system, bob.token(), &unknown).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

const MEDIA: &str = "application/vnd.oma.poc.groups+xml";

fn document_path(group: &str) -> String {
    format!(
        "/xcap-root/org.openmobilealliance.groups/global/byGroupID/{}",
        group.replace(':', "%3A").replace('@', "%40")
    )
}

fn put(
    system: &TestSystem,
    token: Option<&str>,
    path: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new()
        .put(format!("{}{path}", system.url()))
        .header("content-type", MEDIA)
        .body(body.to_string());
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// The document as canonical XML (xmllint --c14n), to compare documents byte for byte.
fn canonical(xml: &str) -> String {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(xml.as_bytes()).expect("writes");
    let out = std::process::Command::new(xmllint())
        .arg("--c14n")
        .arg(file.path())
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

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
    let document = get(&system, alice.token(), &ops)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

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

mod partner_copy {
    use mcx_model::group::GroupConfiguration;
    use mcx_model::interconnection::LocalGroupPolicy;
    use mcx_model::{McService, NonEmpty};

    use crate::federation::*;
    use crate::support::*;

    const POLICE: &str = "police.example";
    const FIRE: &str = "fire.example";
    const ALICE: &str = "sip:alice@police.example";
    const FRANK: &str = "sip:frank@fire.example";
    const FIONA: &str = "sip:fiona@fire.example";
    const JOINT: &str = "sip:joint@police.example";

    #[tokio::test]
    async fn a_partner_user_reads_the_partners_copy_with_local_policy_and_nobody_writes_it_there() {
        let mut federation = Federation::new(vec![
            (
                POLICE,
                vec![user(ALICE, true, &[])],
                vec![Relation::full(FIRE)],
            ),
            (
                FIRE,
                vec![user(FRANK, true, &[]), user(FIONA, false, &[JOINT])],
                vec![Relation {
                    partner: POLICE,
                    inbound: all_capabilities(),
                    outbound: all_capabilities(),
                    policy: LocalGroupPolicy {
                        group_priority: None,
                        max_group_priority: Some(3),
                        permitted_locations: None,
                        drop_services: vec![McService::Mcvideo],
                    },
                }],
            ),
        ]);
        federation.start_all().await;
        let alice = federation.log_on(ALICE, "console").await;
        let mut joint = GroupConfiguration::new(
            "Joint operations",
            [id(ALICE), id(FIONA)],
            NonEmpty::new(vec![McService::Mcptt, McService::Mcvideo]).unwrap(),
        );
        joint.on_network_group_priority = Some(7);
        alice.create_group(&gid(JOINT), &joint).await.unwrap();

        let fiona = federation.log_on(FIONA, "handset").await;
        let fire = federation.node(FIRE).base_url();
        let path = format!(
            "{fire}/xcap-root/org.openmobilealliance.groups/global/byGroupID/sip%3Ajoint%40police.example"
        );
        let xml = eventually("fire holds its copy of the joint group", || async {
            let response = reqwest::Client::new()
                .get(&path)
                .bearer_auth(fiona.token()?)
                .send()
                .await
                .ok()?;
            (response.status() == 200).then_some(())?;
            response.text().await.ok()
        })
        .await;
        let values = xmllint_check(
            &xml,
            &[
                "/*/*/@uri",
                "//*[local-name()='on-network-group-priority']",
                "count(//*[local-name()='supported-services']/*)",
            ],
        );
        // Fire's policy: priority capped at 3, MCVideo dropped.
        assert_eq!(values, [JOINT, "3", "1"]);

        // Fire's administrator cannot change police's group at fire.
        let frank = federation.log_on(FRANK, "console").await;
        let refused = reqwest::Client::new()
            .put(&path)
            .bearer_auth(frank.token().unwrap())
            .header("content-type", "application/vnd.oma.poc.groups+xml")
            .body(xml.replace("Joint operations", "Ours now"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 409);
        let error = refused.text().await.unwrap();
        let why = xmllint_check(&error, &["/*/*[local-name()='constraint-failure']/@phrase"]);
        assert!(why[0].contains("defined in police.example"), "{error}");
    }
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
    let document = get(&system, alice.token(), &ops)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

#[tokio::test]
async fn node_selectors_read_one_element_or_attribute() {
    let system = TestSystem::example().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let carol = system.log_on_as(CAROL, "phone").await;
    let node = |selector: &str| format!("{OPS_DOCUMENT}/~~/{selector}");

    let name = get(
        &system,
        bob.token(),
        &node("group/list-service/display-name"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(name.status(), 200);
    assert_eq!(name.headers()["content-type"], "application/xcap-el+xml");
    assert_eq!(name.headers()["etag"], "\"1\"");
    assert_eq!(
        name.text().await.unwrap(),
        "<display-name>Operations</display-name>"
    );

    let priority = get(
        &system,
        bob.token(),
        &node("group/list-service/list/entry%5B@uri=%22sip:bob@police.example%22%5D/g:user-priority?xmlns(g=urn:3gpp:ns:mcpttGroupInfo:1.0)"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(priority.status(), 200);
    assert_eq!(
        priority.text().await.unwrap(),
        "<mcpttgi:user-priority>3</mcpttgi:user-priority>"
    );

    let uri = get(&system, bob.token(), &node("group/list-service/@uri"))
        .send()
        .await
        .unwrap();
    assert_eq!(uri.headers()["content-type"], "application/xcap-att+xml");
    assert_eq!(uri.text().await.unwrap(), "sip:ops@police.example");

    let none = get(&system, bob.token(), &node("group/list-service/owner"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    let malformed = get(&system, bob.token(), &node("group/list-service/x:y"))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let not_member = get(
        &system,
        carol.token(),
        &node("group/list-service/display-name"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(not_member.status(), 403);
}

#[tokio::test]
async fn the_gmop_retrieval_leaves_out_the_member_list() {
    let system = TestSystem::example().await;
    let bob = system.log_on_as(BOB, "phone").await;
    let carol = system.log_on_as(CAROL, "phone").await;
    let post = |token: Option<&str>, media: &str, body: &str| {
        let request = reqwest::Client::new()
            .post(format!("{}{OPS_DOCUMENT}", system.url()))
            .header("content-type", media)
            .body(body.to_string());
        match token {
            Some(token) => request.bearer_auth(token.to_string()),
            None => request,
        }
    };
    let gmop = "application/vnd.3gpp.GMOP+xml";
    let ask = r#"<?xml version="1.0" encoding="UTF-8"?><document xmlns="urn:3gpp:ns:mcpttGMOP:1.0"><request><get-excluding-memberlist/></request></document>"#;
    let answered = post(bob.token(), gmop, ask).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(
        answered.headers()["content-type"],
        "application/vnd.oma.poc.groups+xml"
    );
    let values = xmllint_check(
        &answered.text().await.unwrap(),
        &[
            "count(//*[local-name()='list'])",
            "count(//*[local-name()='entry'])",
            "/*/*/*[local-name()='display-name']",
        ],
    );
    assert_eq!(values, ["0", "0", "Operations"]);

    let other = ask.replace("get-excluding-memberlist", "create-temporary-group");
    let refused = post(bob.token(), gmop, &other).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/xcap-error+xml"
    );
    assert_eq!(
        post(bob.token(), "text/plain", ask)
            .send()
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(
        post(carol.token(), gmop, ask)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}
