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
