//! The OpenAPI document lists every route the server answers.

use crate::support::*;

#[tokio::test]
async fn openapi_3_1_lists_every_route() {
    let system = TestSystem::example().await;
    let doc = system.client().openapi().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let expected: &[(&str, &[&str])] = &[
        ("/v1/session", &["post", "get", "delete"]),
        ("/v1/events", &["get"]),
        ("/v1/groups", &["get", "post"]),
        ("/v1/groups/{id}", &["get", "put", "delete"]),
        ("/v1/groups/{id}/subscription", &["put", "delete"]),
        ("/v1/groups/{id}/shares", &["post"]),
        ("/v1/groups/{id}/rekey", &["post"]),
        ("/v1/groups/{id}/fetch", &["post"]),
        ("/v1/groups/{id}/interconnection", &["get"]),
        ("/v1/groups/{id}/affiliations", &["get"]),
        ("/v1/affiliations", &["post", "get"]),
        ("/v1/deaffiliations", &["post"]),
        ("/v1/users/{id}/affiliations", &["get"]),
        ("/v1/affiliation-changes", &["post"]),
        ("/v1/affiliation-changes/{id}", &["get"]),
        ("/v1/affiliation-changes/{id}/response", &["post"]),
        ("/v1/regroups", &["post", "get"]),
        ("/v1/regroups/{id}", &["get", "delete"]),
        ("/v1/regroups/{id}/response", &["post"]),
        ("/v1/acm/provisions", &["post", "get"]),
        ("/v1/acm/requests", &["get"]),
        ("/v1/acm/pending", &["get"]),
        ("/v1/acm/requests/{id}/response", &["post"]),
        ("/v1/acm/requests/{id}/apply", &["post"]),
        ("/v1/system", &["get"]),
        ("/v1/system/resources", &["get"]),
        ("/v1/system/partners", &["get"]),
        ("/v1/trace", &["get"]),
        ("/v1/openapi.json", &["get"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        expected.len(),
        "documented paths: {:?}",
        paths.keys()
    );
    let http = reqwest::Client::new();
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        for method in *methods {
            assert!(
                item.get(*method).is_some(),
                "{method} {path} is not documented"
            );
        }
        // And the server really answers it (401/400/... but never "no such route").
        let concrete = if path.starts_with("/v1/acm") {
            path.replace("{id}", "0190a0a0-0000-7000-8000-000000000000")
        } else if path.starts_with("/v1/users") {
            path.replace("{id}", "sip%3Abob%40police.example")
        } else {
            path.replace("{id}", "sip%3Aops%40police.example")
        };
        for method in *methods {
            let response = http
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{}", system.url(), concrete),
                )
                .send()
                .await
                .unwrap();
            assert!(
                response.status() != 404 && response.status() != 405,
                "{method} {path} is documented but answered {}",
                response.status()
            );
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}
