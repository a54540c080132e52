//! The XCAP door to the GMS (TS 24.481 group documents over RFC 4825): documents read
//! by members and administrators, checked by xmllint; node selectors; the GMOP retrieval.
//! Writes are in `writes`, a partner's copy in `partner`.

mod partner;
mod writes;

use crate::support::*;

pub(super) const OPS_DOCUMENT: &str =
    "/xcap-root/org.openmobilealliance.groups/global/byGroupID/sip%3Aops%40police.example";

/// The body of a GET that must succeed.
pub(super) async fn document_text(system: &TestSystem, token: Option<&str>, path: &str) -> String {
    let response = get(system, token, path).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

pub(super) fn get(system: &TestSystem, token: Option<&str>, path: &str) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().get(format!("{}{path}", system.url()));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

pub(super) const MEDIA: &str = "application/vnd.oma.poc.groups+xml";

pub(super) fn document_path(group: &str) -> String {
    format!(
        "/xcap-root/org.openmobilealliance.groups/global/byGroupID/{}",
        group.replace(':', "%3A").replace('@', "%40")
    )
}

pub(super) fn put(
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
pub(super) fn canonical(xml: &str) -> String {
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
