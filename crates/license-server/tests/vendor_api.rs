//! The vendor API over HTTP: tokens made on the admin page, scopes,
//! revocation, every write in the audit log, problem details for every
//! malformed input, and every answer checked against the OpenAPI document
//! (`vendor_api/schema.rs`).

mod common;
#[path = "vendor_api/malformed.rs"]
mod malformed;
#[path = "vendor_api/openapi.rs"]
mod openapi;
#[path = "vendor_api/schema.rs"]
mod schema;
#[path = "vendor_api/support.rs"]
mod support;

use common::*;
use license_server::demo;
use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn organization_admins_cannot_manage_api_tokens() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    let r = client
        .get(server.url("/admin/api-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = client
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("/admin/api-tokens"),
        "no nav link for organization admins"
    );
    let csrf = hidden(&page, "csrf");
    let r = client
        .post(server.url("/admin/api-tokens"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "mine"),
            ("scope", "write"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(server.url("/admin/api-tokens/1/revoke"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        server.state.db.api_tokens().await.unwrap().is_empty(),
        "nothing created"
    );
}

#[tokio::test]
async fn tokens_are_shown_once_hashed_scoped_and_revocable() {
    let server = start().await;
    let api = Api::new(&server).await;
    let (client, write) = vendor_with_token(&server).await;
    let read = create_token(&server, &client, "reporting", "read").await;

    // Shown once: the list does not show them again.
    let page = client
        .get(server.url("/admin/api-tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("billing") && page.contains("reporting"));
    assert!(!page.contains(&write) && !page.contains(&read));
    // The same live name twice is refused.
    let csrf = hidden(&page, "csrf");
    let r = client
        .post(server.url("/admin/api-tokens"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "billing"),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Stored only as SHA-256.
    let db = server.raw_db().await;
    let hashes: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT token_hash FROM api_tokens")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 2);
    for (h,) in &hashes {
        assert_eq!(h.len(), 32);
        assert!(
            *h == license_server::secrets::hash(&write)
                || *h == license_server::secrets::hash(&read)
        );
    }
    db.close().await;

    // A read token reads and may not write.
    let r = api.call(Some(&read), "GET", "/orgs", None).await;
    assert_eq!(r.status, 200);
    let r = api
        .call(
            Some(&read),
            "POST",
            "/orgs",
            Some(json!({"name": "Read Only Inc"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.json["detail"].as_str().unwrap().contains("write"));
    let orgs = api.call(Some(&read), "GET", "/orgs", None).await;
    assert!(orgs
        .json
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["name"] != "Read Only Inc"));
    // A write token writes.
    let r = api
        .call(Some(&write), "POST", "/orgs", Some(json!({"name": "Acme"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);

    // No token, a malformed header, an unknown token: 401 with the challenge.
    for token in [None, Some("lsv_unknown"), Some("x".repeat(300).as_str())] {
        let r = api.call(token, "GET", "/orgs", None).await;
        assert_eq!(r.status, 401);
        assert!(r.www_authenticate.unwrap().starts_with("Bearer"));
    }
    let basic = common::api()
        .get(server.url("/api/v1/vendor/orgs"))
        .basic_auth("a", Some("b"));
    assert_eq!(api.send(basic, "GET", "/orgs").await.status, 401);

    // Last use is shown; revoking on the page ends the token.
    let page = client
        .get(server.url("/admin/api-tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = &page[page.find("<strong>reporting</strong>").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(
        row.matches(" UTC</td>").count(),
        2,
        "created and last used: {row}"
    );
    let action = &row[row.find("/admin/api-tokens/").unwrap()..];
    let action = &action[..action.find('"').unwrap()];
    let r = client
        .post(server.url(action))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = api.call(Some(&read), "GET", "/orgs", None).await;
    assert_eq!(r.status, 401);
    assert!(r.www_authenticate.is_some());
    assert_eq!(
        api.call(Some(&write), "GET", "/orgs", None).await.status,
        200
    );
    let page = client
        .get(server.url("/admin/api-tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Revoked"));
}

#[tokio::test]
async fn provisioning_writes_are_audited_with_the_token_name() {
    let server = start().await;
    let api = Api::new(&server).await;
    let (_client, token) = vendor_with_token(&server).await;
    let t = Some(token.as_str());

    // Organizations.
    let org = api
        .call(
            t,
            "POST",
            "/orgs",
            Some(json!({
                "name": "Acme Corp", "features": ["backup", "restore"],
                "hub_server_name": "Acme Hub", "hub_server_url": "https://hub.acme.example",
                "valid_from": "2026-01-01", "valid_until": "2027-01-01T00:00:00Z"
            })),
        )
        .await;
    assert_eq!(org.status, 201, "{}", org.json);
    let id = org.json["id"].as_i64().unwrap();
    assert_eq!(org.json["valid_until"], "2027-01-01T00:00:00Z");
    assert_eq!(
        api.call(t, "POST", "/orgs", Some(json!({"name": "Acme Corp"})))
            .await
            .status,
        409
    );
    let o = format!("/orgs/{id}");
    let r = api
        .call(
            t,
            "PATCH",
            &o,
            Some(json!({"features": ["backup"], "renewal_date": "2026-12-01"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["features"], json!(["backup"]));
    assert_eq!(
        r.json["hub_server_name"], "Acme Hub",
        "fields not given stay"
    );
    assert_eq!(r.json["renewal_date"], "2026-12-01T00:00:00Z");
    let r = api
        .call(t, "PATCH", &o, Some(json!({"renewal_date": null})))
        .await;
    assert_eq!(r.json["renewal_date"], Value::Null);
    assert_eq!(
        api.call(t, "POST", &format!("{o}/suspend"), None)
            .await
            .json["suspended"],
        true
    );
    assert_eq!(api.call(t, "GET", &o, None).await.json["suspended"], true);
    assert_eq!(
        api.call(t, "POST", &format!("{o}/resume"), None).await.json["suspended"],
        false
    );

    // Packages and totals.
    let p = api
        .call(
            t,
            "POST",
            &format!("{o}/packages"),
            Some(json!({
                "name": "Acme Pro", "totals": {"endpoint": 10, "server": 2}
            })),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.json);
    let pid = p.json["id"].as_i64().unwrap();
    assert_eq!(
        p.json["licenses"][0],
        json!({"kind": "endpoint", "total": 10, "used": 0})
    );
    let pp = format!("/packages/{pid}");
    let r = api
        .call(
            t,
            "PATCH",
            &pp,
            Some(json!({"totals": {"endpoint": 25, "server": 0}, "status": "suspended"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json["licenses"],
        json!([{"kind": "endpoint", "total": 25, "used": 0}])
    );
    assert_eq!(r.json["status"], "suspended");
    let r = api.call(t, "POST", &format!("{pp}/renew"), None).await;
    assert_eq!(r.json["status"], "active");
    let list = api.call(t, "GET", &format!("{o}/packages"), None).await;
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert!(
        api.call(t, "GET", &o, None).await.json["renewal_date"].is_string(),
        "renewal extends the account"
    );

    // Devices of Demo Store.
    let demo = demo_org_id(&api, &token).await;
    let devices = api
        .call(t, "GET", &format!("/orgs/{demo}/devices"), None)
        .await;
    let device = devices.json.as_array().unwrap()[0]["id"].as_i64().unwrap();
    let r = api
        .call(t, "POST", &format!("/devices/{device}/revoke"), None)
        .await;
    assert_eq!(r.json["state"], "revoked");

    // Users and invitations.
    let users = api.call(t, "GET", "/users", None).await;
    let admin = users
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == demo::DEMO_ADMIN)
        .unwrap()
        .clone();
    assert_eq!(admin["org_ids"], json!([demo]));
    let members = api
        .call(t, "GET", &format!("/users?org_id={demo}"), None)
        .await;
    assert_eq!(members.json.as_array().unwrap().len(), 1);
    let inv = api
        .call(
            t,
            "POST",
            "/invitations",
            Some(json!({"email": "it@acme.example", "role": "org_admin", "org_id": id})),
        )
        .await;
    assert_eq!(inv.status, 201, "{}", inv.json);
    assert!(inv.json["link"]
        .as_str()
        .unwrap()
        .starts_with(&server.url("/admin/invitations/")));
    let u = format!("/users/{}", admin["id"]);
    assert_eq!(
        api.call(t, "POST", &format!("{u}/disable"), None)
            .await
            .json["disabled"],
        true
    );
    assert_eq!(
        api.call(t, "POST", &format!("{u}/enable"), None).await.json["disabled"],
        false
    );
    assert_eq!(api.call(t, "DELETE", &u, None).await.status, 204);
    assert_eq!(api.call(t, "DELETE", &u, None).await.status, 404);
    let vendor = users
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == demo::DEMO_VENDOR)
        .unwrap()
        .clone();
    let r = api
        .call(t, "DELETE", &format!("/users/{}", vendor["id"]), None)
        .await;
    assert_eq!(r.status, 409, "the last vendor operator stays");
    assert_eq!(
        api.call(t, "POST", &format!("/users/{}/disable", vendor["id"]), None)
            .await
            .status,
        409
    );

    // Every write is in the audit log, by the token's name; paged.
    let log = api.call(t, "GET", "/audit?limit=500", None).await;
    let ours: Vec<&str> = log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "api:billing")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let expected = [
        "user.removed",
        "user.enabled",
        "user.disabled",
        "user.invited",
        "device.revoked",
        "package.renewed",
        "package.updated",
        "package.created",
        "organization.resumed",
        "organization.suspended",
        "account.updated",
        "account.updated",
        "organization.created",
    ];
    assert_eq!(ours, expected);
    let org_log = api
        .call(t, "GET", &format!("/audit?org_id={id}&limit=500"), None)
        .await;
    assert!(org_log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["org_id"] == id));
    let mut seen = vec![];
    let mut before = String::new();
    loop {
        let page = api
            .call(t, "GET", &format!("/audit?limit=4{before}"), None)
            .await;
        let entries = page.json["entries"].as_array().unwrap();
        seen.extend(entries.iter().map(|e| e["id"].as_i64().unwrap()));
        match page.json["next_before"].as_i64() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    let all: Vec<i64> = log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, all, "pages cover the log once, newest first");
}
