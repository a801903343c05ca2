//! The OpenAPI document lists every route, and every route answers as it
//! says; a change through the API reaches the devices.

use std::collections::BTreeSet;

use license_core::token::AccountClaims;
use license_core::LicenseKind;
use license_server::demo;
use serde_json::json;

use super::common::*;
use super::support::*;

/// Every route, as the document names it.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/orgs"),
    ("post", "/orgs"),
    ("get", "/orgs/{org_id}"),
    ("patch", "/orgs/{org_id}"),
    ("post", "/orgs/{org_id}/suspend"),
    ("post", "/orgs/{org_id}/resume"),
    ("get", "/orgs/{org_id}/packages"),
    ("post", "/orgs/{org_id}/packages"),
    ("get", "/packages/{package_id}"),
    ("patch", "/packages/{package_id}"),
    ("post", "/packages/{package_id}/renew"),
    ("get", "/orgs/{org_id}/devices"),
    ("post", "/devices/{device_id}/revoke"),
    ("get", "/users"),
    ("post", "/invitations"),
    ("delete", "/users/{user_id}"),
    ("post", "/users/{user_id}/disable"),
    ("post", "/users/{user_id}/enable"),
    ("get", "/audit"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let server = start().await;
    let api = Api::new(&server).await;
    let doc = &api.doc;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), format!("{PREFIX}{p}")))
        .collect();
    assert_eq!(documented, expected);
    // Each operation has its own id, a summary and a tag.
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "{op}"
        );
        assert!(
            op["summary"].is_string() && op["tags"][0].is_string(),
            "{method} {path}"
        );
    }
    // The served document is the one the router was built with.
    let (_, built) = license_server::vendor_api::router_and_document();
    assert_eq!(&serde_json::to_value(built).unwrap(), doc);

    // Every documented operation is routed, and answers as documented
    // without a token, with a read token and with a write token.
    let client = browser();
    sign_in_vendor(&server, &client).await;
    let write = create_token(&server, &client, "billing", "write").await;
    let read = create_token(&server, &client, "reporting", "read").await;
    for (method, path) in ROUTES {
        let m = method.to_uppercase();
        let op = &doc["paths"][format!("{PREFIX}{path}")][method];
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "99999" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let body = op.get("requestBody").map(|_| json!({}));
        let anonymous = api.call(None, &m, &concrete, body.clone()).await;
        if *path == "/openapi.json" {
            assert_eq!(anonymous.status, 200);
            continue;
        }
        assert_eq!(anonymous.status, 401, "{m} {path}");
        assert_eq!(
            op["responses"]["401"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/ProblemBody"
        );
        let r = api.call(Some(&read), &m, &concrete, body.clone()).await;
        if m == "GET" {
            assert_ne!(r.status, 403, "{m} {path}");
        } else {
            assert_eq!(r.status, 403, "{m} {path}");
        }
        let r = api.call(Some(&write), &m, &concrete, body).await;
        assert!(
            matches!(r.status, 200 | 404 | 422),
            "{m} {path}: {}",
            r.status
        );
        assert!(!r.content_type.is_empty());
    }
}

#[tokio::test]
async fn totals_raised_through_the_api_reach_the_devices() {
    let server = start().await;
    let api = Api::new(&server).await;
    let (_client, token) = vendor_with_token(&server).await;
    let t = Some(token.as_str());
    let tokens = license_device(&server, demo::DEMO_DEVICES[0]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let endpoint = |a: &AccountClaims| {
        a.account.packages[0]
            .licenses
            .iter()
            .find(|l| l.kind == LicenseKind::Endpoint)
            .unwrap()
            .total
    };
    let before = endpoint(&account_of(&server, access).await);
    let demo = demo_org_id(&api, &token).await;
    let packages = api
        .call(t, "GET", &format!("/orgs/{demo}/packages"), None)
        .await;
    let pid = packages.json[0]["id"].as_i64().unwrap();
    let r = api
        .call(
            t,
            "PATCH",
            &format!("/packages/{pid}"),
            Some(json!({"totals": {"endpoint": before + 30}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(endpoint(&account_of(&server, access).await), before + 30);

    // A suspended organization's devices get no license.
    api.call(t, "POST", &format!("/orgs/{demo}/suspend"), None)
        .await;
    assert_ne!(fetch_license(&server, access).await.status(), 200);
}

/// The checker the tests rely on does catch differences.
#[test]
fn the_checker_catches_differences() {
    use super::schema::check_answer;
    let doc = json!({
        "paths": {"/x/{id}": {"get": {"responses": {"200": {"description": "", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}}}}},
        "components": {"schemas": {"T": {"type": "object", "required": ["a"], "properties": {
            "a": {"type": "integer"},
            "b": {"type": ["string", "null"], "format": "date-time"},
            "c": {"type": "array", "items": {"type": "string", "enum": ["p", "q"]}}}}}}
    });
    let ok = |body: &str| {
        check_answer(
            &doc,
            "GET",
            "/x/1",
            200,
            Some("application/json"),
            body.as_bytes(),
        )
    };
    assert!(ok(r#"{"a": 1, "b": null, "c": ["p"]}"#).is_ok());
    assert!(ok(r#"{"a": 1, "b": "2026-01-01T00:00:00Z"}"#).is_ok());
    for bad in [
        r#"{"b": null}"#,
        r#"{"a": "1"}"#,
        r#"{"a": 1.5}"#,
        r#"{"a": 1, "d": 0}"#,
        r#"{"a": 1, "b": "yesterday"}"#,
        r#"{"a": 1, "c": ["r"]}"#,
        r#"[]"#,
    ] {
        assert!(ok(bad).is_err(), "{bad}");
    }
    let body = br#"{"a": 1}"#;
    assert!(check_answer(&doc, "GET", "/x/1", 404, Some("application/json"), body).is_err());
    assert!(check_answer(&doc, "POST", "/x/1", 200, Some("application/json"), body).is_err());
    assert!(check_answer(&doc, "GET", "/y", 200, Some("application/json"), body).is_err());
    assert!(check_answer(&doc, "GET", "/x/1", 200, Some("text/html"), body).is_err());
}
