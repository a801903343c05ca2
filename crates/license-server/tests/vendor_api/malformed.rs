//! No malformed input gets a 500: each is a problem with a 4xx status that
//! the document lists for the route.

use serde_json::{json, Value};

use super::common;
use super::common::*;
use super::support::*;

#[tokio::test]
async fn malformed_input_is_a_problem_never_a_500() {
    let server = start().await;
    let api = Api::new(&server).await;
    let (_client, token) = vendor_with_token(&server).await;
    let t = Some(token.as_str());
    let demo = demo_org_id(&api, &token).await;
    let o = format!("/orgs/{demo}");
    let p = "/packages/1";
    let json_bodies: Vec<(&str, String, Value, u16)> = vec![
        ("POST", "/orgs".into(), json!({}), 422),
        ("POST", "/orgs".into(), json!({"name": ""}), 422),
        ("POST", "/orgs".into(), json!({"name": "  "}), 422),
        ("POST", "/orgs".into(), json!({"name": 5}), 422),
        ("POST", "/orgs".into(), json!({"name": "x\u{0}y"}), 422),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "x".repeat(101)}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "nmae": "typo"}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "valid_from": "yesterday"}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "valid_from": "2026-02-30"}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "valid_from": "2027-01-01", "valid_until": "2026-01-01"}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "hub_server_url": "javascript:alert(1)"}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "features": "backup"}),
            422,
        ),
        (
            "POST",
            "/orgs".into(),
            json!({"name": "A", "features": [1]}),
            422,
        ),
        ("POST", "/orgs".into(), json!([1, 2]), 422),
        ("POST", "/orgs".into(), json!("name"), 422),
        ("POST", "/orgs".into(), Value::Null, 422),
        ("PATCH", o.clone(), json!({"valid_until": 12}), 422),
        (
            "PATCH",
            o.clone(),
            json!({"valid_until": "1970-01-01"}),
            422,
        ),
        ("PATCH", o.clone(), json!({"features": vec!["f"; 101]}), 422),
        ("PATCH", p.into(), json!({"totals": {"endpoint": -1}}), 422),
        (
            "PATCH",
            p.into(),
            json!({"totals": {"endpoint": 1_000_001}}),
            422,
        ),
        ("PATCH", p.into(), json!({"totals": {"endpoint": 1.5}}), 422),
        ("PATCH", p.into(), json!({"totals": {"endpoint": "5"}}), 422),
        ("PATCH", p.into(), json!({"totals": {"toaster": 5}}), 422),
        ("PATCH", p.into(), json!({"totals": [5]}), 422),
        ("PATCH", p.into(), json!({"status": "paused"}), 422),
        ("PATCH", p.into(), json!({"status": null, "name": ""}), 422),
        ("PATCH", "/packages/99999".into(), json!({}), 404),
        (
            "POST",
            format!("{o}/packages"),
            json!({"name": "P", "totals": {"server": 1}, "x": 1}),
            422,
        ),
        (
            "POST",
            "/orgs/99999/packages".into(),
            json!({"name": "P"}),
            404,
        ),
        (
            "POST",
            "/invitations".into(),
            json!({"email": "nobody", "role": "org_admin", "org_id": demo}),
            422,
        ),
        (
            "POST",
            "/invitations".into(),
            json!({"email": "a@b.example", "role": "admin", "org_id": demo}),
            422,
        ),
        (
            "POST",
            "/invitations".into(),
            json!({"email": "a@b.example", "role": "org_admin"}),
            422,
        ),
        (
            "POST",
            "/invitations".into(),
            json!({"email": "a@b.example", "role": "vendor", "org_id": demo}),
            422,
        ),
        (
            "POST",
            "/invitations".into(),
            json!({"email": "a@b.example", "role": "org_admin", "org_id": 99999}),
            404,
        ),
    ];
    for (method, path, body, want) in json_bodies {
        let r = api.call(t, method, &path, Some(body.clone())).await;
        assert_eq!(r.status, want, "{method} {path} {body}: {}", r.json);
    }
    // Bodies that are not JSON, or not small.
    let raw = |method: &str, path: &str, ct: &str, body: Vec<u8>| {
        common::api()
            .request(
                method.parse().unwrap(),
                server.url(&format!("{PREFIX}{path}")),
            )
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
    };
    let huge = br#"{"totals": {"endpoint": 99999999999999999999999999999}}"#.to_vec();
    let cases: Vec<(&str, &str, &str, Vec<u8>, u16)> = vec![
        (
            "POST",
            "/orgs",
            "application/json",
            b"{\"name\": ".to_vec(),
            400,
        ),
        (
            "POST",
            "/orgs",
            "application/json",
            b"not json".to_vec(),
            400,
        ),
        ("POST", "/orgs", "application/json", vec![], 400),
        ("POST", "/orgs", "application/json", vec![0xff, 0xfe], 400),
        (
            "POST",
            "/orgs",
            "text/plain",
            b"{\"name\": \"A\"}".to_vec(),
            415,
        ),
        ("PATCH", p, "application/json", huge, 422),
        (
            "PATCH",
            p,
            "application/json",
            b"{\"totals\": {\"endpoint\": 1e400}}".to_vec(),
            400,
        ),
        ("POST", "/orgs", "application/json", vec![b' '; 20_000], 413),
    ];
    for (method, path, ct, body, want) in cases {
        let r = api.send(raw(method, path, ct, body), method, path).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.json);
    }
    // Ids and query parameters.
    for (path, want) in [
        ("/orgs/abc", 404),
        ("/orgs/99999999999999999999999", 404),
        ("/orgs/-1", 404),
        ("/orgs/99999", 404),
        ("/orgs/99999/devices", 404),
        ("/packages/0", 404),
        ("/audit?limit=abc", 400),
        ("/audit?limit=0", 400),
        ("/audit?limit=100000000000000000000", 400),
        ("/audit?before=x", 400),
        ("/audit?org_id=99999", 404),
        ("/users?org_id=1.5", 400),
    ] {
        let r = api.call(t, "GET", path, None).await;
        assert_eq!(r.status, want, "GET {path}: {}", r.json);
    }
    for path in [
        "/devices/99999/revoke",
        "/users/99999/disable",
        "/packages/x/renew",
    ] {
        assert_eq!(api.call(t, "POST", path, None).await.status, 404, "{path}");
    }
    // A method a route does not take, and paths off the map: problems too.
    let r = common::api()
        .put(server.url("/api/v1/vendor/orgs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    for path in ["/api/v1/vendor", "/api/v1/vendor/"] {
        let r = common::api().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = common::api()
        .get(server.url("/api/v1/vendor/nothing/here"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}
