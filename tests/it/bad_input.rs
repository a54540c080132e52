//! Bad input gets a 4xx problem document with a stable code and a clear sentence, and
//! changes nothing.

use crate::support::*;

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    content_type: Option<&'static str>,
    if_match: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    detail_mentions: &'static str,
}

fn case(name: &'static str, method: reqwest::Method, path: &str, body: &str) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        content_type: Some("application/json"),
        if_match: None,
        body: body.as_bytes().to_vec(),
        status: 0,
        code: "",
        detail_mentions: "",
    }
}

impl Case {
    fn expect(mut self, status: u16, code: &'static str, mentions: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self.detail_mentions = mentions;
        self
    }
}

const GROUP: &str = "/v1/groups/sip%3Aops%40police.example";

fn cases() -> Vec<Case> {
    use reqwest::Method;
    let valid_config = r#"{"display-name":"X","supported-services":["mcptt"]}"#;
    let mut cases = vec![
        case("malformed JSON", Method::POST, "/v1/groups", r#"{"mc-service-group-id": "#)
            .expect(400, "malformed-json", "not valid JSON"),
        case(
            "unknown top-level field",
            Method::POST,
            "/v1/groups",
            &format!(r#"{{"mc-service-group-id":"sip:n@police.example","configuration":{valid_config},"owner":"me"}}"#),
        )
        .expect(422, "invalid-body", "unknown field `owner`"),
        case(
            "unknown configuration field",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"X","supported-services":["mcptt"],"colour":"red"}}"#,
        )
        .expect(422, "invalid-body", "unknown field `colour`"),
        case(
            "group ID that is not a SIP URI",
            Method::POST,
            "/v1/groups",
            &format!(r#"{{"mc-service-group-id":"ops","configuration":{valid_config}}}"#),
        )
        .expect(422, "invalid-body", "not a valid MC service group ID"),
        case(
            "member URI with a space",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"X","supported-services":["mcptt"],"list":[{"uri":"sip:a b@police.example"}]}}"#,
        )
        .expect(422, "invalid-body", "not a valid MC service ID"),
        case(
            "priority of the wrong type",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"X","supported-services":["mcptt"],"on-network-group-priority":"high"}}"#,
        )
        .expect(422, "invalid-body", "invalid type"),
        case(
            "priority out of range",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"X","supported-services":["mcptt"],"on-network-group-priority":300}}"#,
        )
        .expect(422, "invalid-body", "300"),
        case(
            "no supported service",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"X","supported-services":[]}}"#,
        )
        .expect(422, "invalid-body", "at least one"),
        case(
            "unknown MC service",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"X","supported-services":["tetra"]}}"#,
        )
        .expect(422, "invalid-body", "tetra"),
        case(
            "empty display name",
            Method::POST,
            "/v1/groups",
            r#"{"mc-service-group-id":"sip:n@police.example","configuration":{"display-name":"  ","supported-services":["mcptt"]}}"#,
        )
        .expect(400, "invalid-configuration", "display-name"),
        case("JSON array instead of object", Method::POST, "/v1/groups", "[]")
            .expect(422, "invalid-body", "expected struct"),
        case("invalid group ID in the path", Method::GET, "/v1/groups/ops", "")
            .expect(400, "invalid-path", "not a valid MC service group ID"),
        case("unknown route", Method::GET, "/v1/nothing-here", "")
            .expect(404, "not-found", "/v1/nothing-here"),
        case("wrong method", Method::PATCH, "/v1/groups", "")
            .expect(405, "method-not-allowed", "PATCH"),
        {
            let mut c = case("update with a malformed If-Match", Method::PUT, GROUP, valid_config)
                .expect(400, "invalid-header", "If-Match");
            c.if_match = Some("version-1");
            c
        },
        {
            let mut c = case("body that is not JSON-typed", Method::POST, "/v1/groups", valid_config)
                .expect(415, "unsupported-media-type", "Content-Type");
            c.content_type = Some("text/plain");
            c
        },
    ];
    let huge = format!(
        r#"{{"mc-service-group-id":"sip:n@police.example","configuration":{{"display-name":"{}","supported-services":["mcptt"]}}}}"#,
        "x".repeat(300 * 1024)
    );
    cases.push(
        case(
            "body over the size limit",
            Method::POST,
            "/v1/groups",
            &huge,
        )
        .expect(413, "body-too-large", "larger than"),
    );
    cases
}

#[tokio::test]
async fn every_bad_request_gets_a_problem_document_and_changes_nothing() {
    let system = TestSystem::example().await;
    let before = system.all_groups().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let token = alice.token().unwrap().to_string();
    let http = reqwest::Client::new();

    for case in cases() {
        let mut request = http
            .request(
                case.method.clone(),
                format!("{}{}", system.url(), case.path),
            )
            .bearer_auth(&token)
            .body(case.body.clone());
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(tag) = case.if_match {
            request = request.header("if-match", tag);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{}",
            case.name
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], case.code, "{}: {problem}", case.name);
        assert_eq!(problem["status"], case.status, "{}", case.name);
        assert_eq!(
            problem["type"],
            format!("urn:mcx:problem:{}", case.code),
            "{}",
            case.name
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(case.detail_mentions),
            "{}: detail {detail:?} should mention {:?}",
            case.name,
            case.detail_mentions
        );
    }

    assert_eq!(
        system.all_groups().await,
        before,
        "bad requests changed the store"
    );
}

#[tokio::test]
async fn bad_log_on_bodies_are_refused_clearly() {
    let system = TestSystem::example().await;
    let http = reqwest::Client::new();
    for (body, code, mentions) in [
        (
            r#"{"mc-service-id":"sip:alice@police.example","password":"alice"}"#,
            "invalid-body",
            "missing field `client-id`",
        ),
        (
            r#"{"mc-service-id":"sip:alice@police.example","password":"alice","client-id":""}"#,
            "invalid-body",
            "client ID",
        ),
        (
            r#"{"mc-service-id":"sip:alice@police.example","password":7,"client-id":"c"}"#,
            "invalid-body",
            "invalid type",
        ),
    ] {
        let response = http
            .post(format!("{}/v1/session", system.url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], code);
        assert!(
            problem["detail"].as_str().unwrap().contains(mentions),
            "{problem}"
        );
    }
}

/// Asserts a response is a problem document with a stable code; returns the code.
async fn problem_code(response: reqwest::Response, what: &str) -> String {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap_or_default();
    assert!(
        (400..500).contains(&status),
        "{what}: status {status}: {text}"
    );
    assert_eq!(content_type, "application/problem+json", "{what}: {text}");
    let problem: serde_json::Value = serde_json::from_str(&text).expect("a JSON problem");
    let code = problem["code"].as_str().unwrap_or_default().to_string();
    assert!(!code.is_empty(), "{what}: no code in {text}");
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: no detail in {text}"
    );
    code
}

#[tokio::test]
async fn every_route_answers_bad_paths_queries_and_bodies_with_a_problem_document() {
    let system = TestSystem::example().await;
    let alice = system.log_on_as(ALICE, "console").await;
    let token = alice.token().unwrap().to_string();
    let doc = system.client().openapi().await.unwrap();
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let has_path = path.contains('{');
            let queries: Vec<String> = params
                .iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            let has_body = !operation["requestBody"].is_null();
            let send = |path: String, body: Option<&'static str>| {
                let mut request = http
                    .request(method.clone(), format!("{}{path}", system.url()))
                    .bearer_auth(&token);
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body);
                }
                request.send()
            };
            if has_path {
                let bad = path
                    .split('/')
                    .map(|s| if s.starts_with('{') { "%FF" } else { s })
                    .collect::<Vec<_>>()
                    .join("/");
                let response = send(bad, has_body.then_some("{}")).await.unwrap();
                problem_code(response, &format!("{method} {path} with a bad path")).await;
                checked += 1;
            }
            if !queries.is_empty() && !has_path {
                let bad = format!(
                    "{path}?{}",
                    queries
                        .iter()
                        .map(|q| format!("{q}=-1x"))
                        .collect::<Vec<_>>()
                        .join("&")
                );
                let response = send(bad, None).await.unwrap();
                problem_code(response, &format!("{method} {path} with a bad query")).await;
                checked += 1;
            }
            if has_body && !has_path {
                let response = send(path.clone(), Some("{")).await.unwrap();
                let code =
                    problem_code(response, &format!("{method} {path} with a bad body")).await;
                assert_eq!(code, "malformed-json", "{method} {path}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} cases were checked");
    // Unknown routes and methods, too.
    let response = http
        .get(format!("{}/v1/nowhere", system.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem_code(response, "an unknown route").await,
        "not-found"
    );
    let response = http
        .patch(format!("{}/v1/system", system.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem_code(response, "a wrong method").await,
        "method-not-allowed"
    );
}

#[tokio::test]
async fn the_interconnection_endpoint_answers_oversized_and_misdirected_requests_with_problems() {
    use crate::federation::*;
    let (_federation, addr, police) = fire_facing_police().await;
    let url = format!(
        "https://{FIRE}:{}/interconnection/v1/group-information-request",
        addr.port()
    );
    let big = vec![b' '; 2 * 1024 * 1024];
    let response = police
        .post(&url)
        .header("mcx-origin", POLICE)
        .header("mcx-transaction-id", "7e0b0f0e-0000-4000-8000-000000000001")
        .header("content-type", "application/json")
        .version(reqwest::Version::HTTP_11)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        problem_code(response, "a 2 MB flow").await,
        "body-too-large"
    );
    let response = police.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        problem_code(response, "GET on a flow route").await,
        "method-not-allowed"
    );
}
