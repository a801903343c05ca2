//! HTTP tests against the real router on 127.0.0.1:0 with a temporary SQLite
//! database. Time moves through the server's ManualClock, never by sleeping.

mod common;

use common::*;
use license_core::jwk::JwkSet;
use license_core::token::{verify, AccountClaims, Expectation, LicenseClaims};
use license_core::LicenseKind;
use serde_json::Value;

async fn jwks(server: &TestServer) -> JwkSet {
    api()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn metadata_names_every_endpoint() {
    let server = start().await;
    let m: Value = api()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], server.base);
    assert_eq!(
        m["device_authorization_endpoint"],
        server.url("/oauth/device_authorization")
    );
    assert_eq!(m["token_endpoint"], server.url("/oauth/token"));
    assert_eq!(m["revocation_endpoint"], server.url("/oauth/revoke"));
    assert_eq!(m["jwks_uri"], server.url("/.well-known/jwks.json"));
    assert_eq!(m["license_endpoint"], server.url("/api/v1/license"));
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&"urn:ietf:params:oauth:grant-type:device_code".into()));
    assert!(grants.contains(&"refresh_token".into()));
}

#[tokio::test]
async fn device_flow_through_the_admin_pages_licenses_the_device() {
    let server = start().await;
    let auth = start_device_authorization(&server).await;
    let user_code = &auth.user_code;
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert!(auth.device_code.len() >= 43, "256 bits");
    assert_eq!(auth.json["verification_uri"], server.url("/device"));
    assert_eq!(
        auth.json["verification_uri_complete"],
        server.url(&format!("/device?user_code={user_code}"))
    );
    assert_eq!(auth.json["expires_in"], 900);
    assert_eq!(auth.interval, 5);

    let (status, body) = poll(&server, &auth.device_code).await;
    assert_eq!((status, error_of(&body)), (400, "authorization_pending"));

    // Not signed in: the verification URI sends the admin to sign in and back.
    let client = browser();
    let r = client
        .get(server.url(&format!("/device?user_code={user_code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/admin/login?next=/device"),
        "{location}"
    );

    sign_in(&server, &client).await;
    // Lower-case, dash-less entry is the same code.
    let typed = user_code.replace('-', "").to_lowercase();
    let page = decide_on_page(
        &server,
        &client,
        "Store 001 POS Server",
        &typed,
        "authorize",
    )
    .await;
    assert!(page.contains("Device authorized"), "{page}");

    server.advance(5);
    let (status, tokens) = poll(&server, &auth.device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 259_200);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);

    // The license token verifies with the published keys.
    let keys = jwks(&server).await;
    let expect = Expectation::license_token(&server.base, "license-console");
    let claims: LicenseClaims = verify(
        access,
        &keys,
        &expect,
        license_server::Clock::now(&*server.clock),
    )
    .unwrap();
    assert_eq!(claims.org, "Demo Store");
    assert!(claims.sub.starts_with("SRV-"));
    assert_eq!(claims.features, vec!["xms".to_owned()]);
    assert_eq!(claims.hub_server_name, "Demo Hub");

    // The code cannot be used twice.
    server.advance(5);
    let (status, body) = poll(&server, &auth.device_code).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // The license document carries the whole account.
    let r = fetch_license(&server, access).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let doc = body["license_document"].as_str().unwrap();
    let expect = Expectation::license_document(&server.base, "license-console");
    let account: AccountClaims = verify(
        doc,
        &keys,
        &expect,
        license_server::Clock::now(&*server.clock),
    )
    .unwrap();
    assert_eq!(account.sub, claims.sub);
    assert_eq!(account.account.server_id, claims.sub);
    assert_eq!(account.account.organization, "Demo Store");
    assert_eq!(
        account.account.hub_server_url,
        "https://hub.demo-store.example"
    );
    assert!(account.account.renewal_date.is_some());
    let kinds: Vec<LicenseKind> = account
        .account
        .packages
        .iter()
        .flat_map(|p| p.licenses.iter().map(|l| l.kind.clone()))
        .collect();
    for kind in LicenseKind::ALL {
        assert!(kinds.contains(kind), "missing {kind:?}");
    }
    let endpoint = account.account.packages[0]
        .licenses
        .iter()
        .find(|l| l.kind == LicenseKind::Endpoint)
        .unwrap();
    assert_eq!(endpoint.used, 3);
    assert_eq!(endpoint.assignments[0].name, "Store 001 POS Register 1");
    assert_eq!(
        account.server_time,
        license_server::Clock::now(&*server.clock).unix_timestamp()
    );
    assert_eq!(account.policy.refresh_interval_secs, 86_400);

    // Last seen and token expiry show on the devices page.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let devices = client
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(devices.contains(&claims.sub));
    assert!(devices.contains("Licensed"));
    let audit = client
        .get(server.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("device.authorized") && audit.contains("Store 001 POS Server"));
}

#[tokio::test]
async fn polling_errors_follow_rfc_8628() {
    let server = start().await;
    let auth = start_device_authorization(&server).await;
    let (_, body) = poll(&server, &auth.device_code).await;
    assert_eq!(error_of(&body), "authorization_pending");
    // Too fast: slow_down, and the interval grows by 5 s.
    server.advance(2);
    let (status, body) = poll(&server, &auth.device_code).await;
    assert_eq!((status, error_of(&body)), (400, "slow_down"));
    server.advance(6);
    let (_, body) = poll(&server, &auth.device_code).await;
    assert_eq!(error_of(&body), "slow_down", "10 s interval now");
    server.advance(15);
    let (_, body) = poll(&server, &auth.device_code).await;
    assert_eq!(error_of(&body), "authorization_pending");

    // Denied on the page.
    let client = browser();
    sign_in(&server, &client).await;
    let page = decide_on_page(
        &server,
        &client,
        "Store 002 POS Server",
        &auth.user_code,
        "deny",
    )
    .await;
    assert!(page.contains("Authorization denied"));
    server.advance(30);
    let (_, body) = poll(&server, &auth.device_code).await;
    assert_eq!(error_of(&body), "access_denied");

    // Expired.
    let late = start_device_authorization(&server).await;
    server.advance(901);
    let (_, body) = poll(&server, &late.device_code).await;
    assert_eq!(error_of(&body), "expired_token");

    // Unknown code and wrong client.
    let (status, body) = poll(&server, "not-a-device-code").await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let r = api()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", &late.device_code),
            ("client_id", "someone-else"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_of(&body), "invalid_client");
}

#[tokio::test]
async fn refresh_rotates_allows_one_lost_response_and_detects_reuse() {
    let server = start().await;
    let first = license_device(&server, "Store 001 POS Server").await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();

    server.advance(3600);
    let (status, second) = refresh(&server, &rt0).await;
    assert_eq!(status, 200, "{second}");
    let rt1 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt0);
    assert_ne!(second["access_token"], first["access_token"]);

    // The client crashed before storing the response: the retry within
    // 120 s returns the very same pair.
    server.advance(100);
    let (status, retried) = refresh(&server, &rt0).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["refresh_token"], second["refresh_token"]);
    assert_eq!(retried["access_token"], second["access_token"]);
    assert_eq!(
        fetch_license(&server, retried["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Normal use continues with the new token.
    server.advance(60);
    let (status, third) = refresh(&server, &rt1).await;
    assert_eq!(status, 200);
    let rt2 = third["refresh_token"].as_str().unwrap().to_owned();

    // rt0 again, after rt1 was used: reuse. The whole chain is revoked.
    let (status, body) = refresh(&server, &rt0).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let (status, body) = refresh(&server, &rt2).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, "invalid_grant"),
        "chain revoked"
    );
    let r = fetch_license(&server, third["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

/// Refresh grants are stored in batches: many at once must each get their own
/// pair, and the same token sent many times at once must yield one pair
/// (the others are answered as retries of a lost response), not a revoked
/// chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_refreshes_each_get_their_pair_and_a_doubled_one_gets_one() {
    let server = start().await;
    let devices = [
        "Store 001 POS Server",
        "Store 002 POS Server",
        "Back Office Server",
    ];
    let mut refresh_tokens = Vec::new();
    for device in devices {
        let first = license_device(&server, device).await;
        refresh_tokens.push(first["refresh_token"].as_str().unwrap().to_owned());
    }
    for _ in 0..3 {
        // Every device's token, each sent four times, all at once.
        let mut requests = tokio::task::JoinSet::new();
        for (i, rt) in refresh_tokens
            .iter()
            .flat_map(|rt| std::iter::repeat_n(rt.clone(), 4))
            .enumerate()
        {
            let url = server.url("/oauth/token");
            requests.spawn(async move {
                let r = api()
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                        ("client_id", "license-console"),
                    ])
                    .send()
                    .await
                    .unwrap();
                (i, r.status().as_u16(), r.json::<Value>().await.unwrap())
            });
        }
        let mut answers = requests.join_all().await;
        answers.sort_by_key(|(i, _, _)| *i);
        let answers: Vec<(u16, Value)> = answers.into_iter().map(|(_, s, b)| (s, b)).collect();
        let mut next = Vec::new();
        for (i, per_token) in answers.chunks(4).enumerate() {
            for (status, body) in per_token {
                assert_eq!(*status, 200, "device {i}: {body}");
                assert_eq!(body, &per_token[0].1, "one pair per refresh token");
            }
            next.push(per_token[0].1["refresh_token"].as_str().unwrap().to_owned());
        }
        for (old, new) in refresh_tokens.iter().zip(&next) {
            assert_ne!(old, new);
        }
        refresh_tokens = next;
        server.advance(60);
    }
    // Every chain is alive: the latest tokens work, nothing was revoked.
    for rt in &refresh_tokens {
        let (status, body) = refresh(&server, rt).await;
        assert_eq!(status, 200, "{body}");
        let r = fetch_license(&server, body["access_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
    }
    let audit = server.state.db.audit_log(1, 50).await.unwrap();
    assert!(!audit.iter().any(|e| e.action == "token.reuse_detected"));
}

#[tokio::test]
async fn reuse_after_the_retry_window_revokes_the_chain() {
    let server = start().await;
    let first = license_device(&server, "Store 002 POS Server").await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = refresh(&server, &rt0).await;
    server.advance(121);
    let (status, body) = refresh(&server, &rt0).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let (status, _) = refresh(&server, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
    let audit = server.state.db.audit_log(1, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "token.reuse_detected"));
}

#[tokio::test]
async fn revoke_endpoint_removes_the_license() {
    let server = start().await;
    let tokens = license_device(&server, "Back Office Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(fetch_license(&server, access).await.status(), 200);

    let r = api()
        .post(server.url("/oauth/revoke"))
        .form(&[
            ("token", rt),
            ("token_type_hint", "refresh_token"),
            ("client_id", "license-console"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fetch_license(&server, access).await.status(), 401);
    let (status, body) = refresh(&server, rt).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // Unknown tokens: 200 as RFC 7009 requires.
    let r = api()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", "nonsense")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn revoking_an_access_token_revokes_its_chain() {
    let server = start().await;
    let tokens = license_device(&server, "Back Office Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = api()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fetch_license(&server, access).await.status(), 401);
    let (status, _) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn admin_revoke_blocks_tokens_and_refresh() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        fetch_license(&server, access).await.status(),
        200,
        "cached as valid"
    );

    let client = browser();
    sign_in(&server, &client).await;
    let page = client
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let device = server
        .state
        .db
        .device_by_name(1, "Store 001 POS Server")
        .await
        .unwrap()
        .unwrap();
    // Without the CSRF token nothing happens.
    let r = client
        .post(server.url(&format!("/admin/devices/{}/revoke", device.id)))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fetch_license(&server, access).await.status(), 200);

    let r = client
        .post(server.url(&format!("/admin/devices/{}/revoke", device.id)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = fetch_license(&server, access).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_of(&body), "invalid_token");
    let (status, body) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let page = client
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Revoked"));
    let audit = client
        .get(server.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("device.revoked"));
}

#[tokio::test]
async fn expired_license_token_is_refused() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(fetch_license(&server, access).await.status(), 200);
    server.advance(259_200 + 61);
    assert_eq!(fetch_license(&server, access).await.status(), 401);
    // The refresh token still works (its own, longer lifetime).
    let (status, _) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_until_they_expire() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let old_access = tokens["access_token"].as_str().unwrap().to_owned();
    let before = jwks(&server).await;
    assert_eq!(before.keys.len(), 1);

    let now = license_server::Clock::now(&*server.clock).unix_timestamp();
    let new_kid = license_server::keys::rotate(&server.state.db, now)
        .await
        .unwrap();
    server
        .state
        .keys
        .reload(&server.state.db, now)
        .await
        .unwrap();
    let after = jwks(&server).await;
    assert_eq!(after.keys.len(), 2, "old key still published");
    assert!(after.find(&new_kid).is_some());

    // New tokens are signed with the new key; old ones still verify.
    let (_, refreshed) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
    let header =
        license_core::token::decode_header(refreshed["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(fetch_license(&server, &old_access).await.status(), 200);

    // Once every token of the old key has expired, the key leaves the JWKS
    // (its recorded last expiry runs up to 300 s ahead of the real one).
    server.advance(259_200 + 301);
    let now = license_server::Clock::now(&*server.clock).unix_timestamp();
    server
        .state
        .keys
        .reload(&server.state.db, now)
        .await
        .unwrap();
    let later = jwks(&server).await;
    assert_eq!(later.keys.len(), 1);
    assert_eq!(later.keys[0].kid, new_kid);
}

#[tokio::test]
async fn bad_inputs_get_json_4xx() {
    let server = start().await;
    let c = api();
    let token = server.url("/oauth/token");
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            c.post(&token).form(&[("grant_type", "password")]),
            400,
            "unsupported_grant_type",
        ),
        (
            c.post(&token).form(&[("device_code", "x")]),
            400,
            "invalid_request",
        ),
        (
            c.post(&token).form(&[("grant_type", "refresh_token")]),
            400,
            "invalid_request",
        ),
        (
            c.post(&token).form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "garbage"),
            ]),
            400,
            "invalid_grant",
        ),
        (
            c.post(&token).form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "license-console"),
            ]),
            400,
            "invalid_request",
        ),
        (
            c.post(&token)
                .header("content-type", "application/json")
                .body("{\"grant_type\":\"refresh_token\"}"),
            400,
            "invalid_request",
        ),
        (
            c.post(&token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=%ZZ&&&=="),
            400,
            "unsupported_grant_type",
        ),
        (
            c.post(&token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=refresh_token&grant_type=refresh_token"),
            400,
            "invalid_request",
        ),
        (
            c.post(&token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec![b'a'; 20_000]),
            413,
            "request_too_large",
        ),
        (
            c.post(server.url("/oauth/device_authorization"))
                .form(&[("scope", "x")]),
            400,
            "invalid_request",
        ),
        (
            c.post(server.url("/oauth/device_authorization"))
                .form(&[("client_id", "evil")]),
            401,
            "invalid_client",
        ),
        (
            c.post(server.url("/oauth/device_authorization"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "client_id=license-console&scope={}",
                    "a".repeat(17_000)
                )),
            413,
            "request_too_large",
        ),
        (
            c.post(server.url("/oauth/revoke"))
                .form(&[("token_type_hint", "refresh_token")]),
            400,
            "invalid_request",
        ),
        (
            c.post(server.url("/oauth/revoke")).body("token=x"),
            400,
            "invalid_request",
        ),
        (c.get(server.url("/api/v1/license")), 401, "invalid_token"),
        (
            c.get(server.url("/api/v1/license")).bearer_auth("garbage"),
            401,
            "invalid_token",
        ),
        (
            c.get(server.url("/api/v1/license")).bearer_auth("a.b.c"),
            401,
            "invalid_token",
        ),
        (
            c.get(server.url("/api/v1/license"))
                .header("authorization", "Basic Zm9vOmJhcg=="),
            401,
            "invalid_token",
        ),
        (
            c.get(server.url("/api/v1/license"))
                .bearer_auth("x".repeat(10_000)),
            401,
            "invalid_token",
        ),
        (c.get(server.url("/no/such/route")), 404, "not_found"),
    ];
    for (i, (request, status, code)) in cases.into_iter().enumerate() {
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {i}");
        let body: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("case {i}: not JSON: {e}"));
        assert_eq!(error_of(&body), code, "case {i}: {body}");
        assert!(body["error_description"].is_string(), "case {i}");
    }
    // The wrong method is a 4xx as well.
    let r = c.get(server.url("/oauth/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);

    // A document is not a license token (typ is checked).
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let body: Value = fetch_license(&server, tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let r = fetch_license(&server, body["license_document"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn wrong_user_codes_lock_entry() {
    let server = start().await;
    let auth = start_device_authorization(&server).await;
    let client = browser();
    sign_in(&server, &client).await;
    let page = client
        .get(server.url("/device"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let device = option_value(&page, "Store 001 POS Server");
    for _ in 0..5 {
        let r = client
            .post(server.url("/device"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("device", &device),
                ("user_code", "BBBB-BBBB"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("not valid or has expired"));
    }
    // Even the right code is refused while locked.
    let r = client
        .post(server.url("/device"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("device", &device),
            ("user_code", &auth.user_code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("locked"));
    server.advance(15 * 60 + 1);
    let fresh = start_device_authorization(&server).await;
    let r = client
        .post(server.url("/device"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("device", &device),
            ("user_code", &fresh.user_code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn sign_in_is_rate_limited_and_csrf_protected() {
    let server = start().await;
    let client = browser();
    let page = client.get(server.url("/admin/login")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(page.text().await.unwrap().contains("name=\"csrf\""));
    let attempt = |password: &'static str, csrf: String| {
        let client = client.clone();
        let url = server.url("/admin/login");
        async move {
            client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", "admin@demo-store.example"),
                    ("password", password),
                    ("next", "/admin"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = attempt("whatever", "forged".into()).await;
    assert_eq!(r.status(), 400, "CSRF");
    let mut csrf = hidden(&r.text().await.unwrap(), "csrf");
    for _ in 0..5 {
        let r = attempt("wrong password", csrf.clone()).await;
        assert_eq!(r.status(), 401);
        csrf = hidden(&r.text().await.unwrap(), "csrf");
    }
    let good = Box::leak(server.admin_password.clone().into_boxed_str());
    let r = attempt(good, csrf.clone()).await;
    assert_eq!(
        r.status(),
        429,
        "account locked even with the right password"
    );
    server.advance(15 * 60 + 1);
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    let r = attempt(good, csrf).await;
    assert_eq!(r.status(), 303);
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(set
        .iter()
        .any(|c| c.starts_with("ls_session=") && c.contains("HttpOnly")));
    // Open redirects are not followed.
    assert_eq!(r.headers()["location"], "/admin");
}

#[tokio::test]
async fn packages_can_be_edited_and_renewed() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    let client = browser();
    sign_in_vendor(&server, &client).await;
    let page = client
        .get(server.url("/admin/packages/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let r = client
        .post(server.url("/admin/packages/1"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Xopero ONE Business"),
            ("status", "active"),
            ("valid_from", "2024-01-01"),
            ("valid_until", "2030-01-01"),
            ("total_endpoint", "75"),
            ("total_server", "5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = client
        .post(server.url("/admin/packages/1/renew"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let bad = client
        .post(server.url("/admin/packages/1"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "x"),
            ("status", "active"),
            ("valid_from", "nonsense"),
            ("valid_until", "2030-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let body: Value = fetch_license(&server, access).await.json().await.unwrap();
    let keys = jwks(&server).await;
    let expect = Expectation::license_document(&server.base, "license-console");
    let doc: AccountClaims = verify(
        body["license_document"].as_str().unwrap(),
        &keys,
        &expect,
        license_server::Clock::now(&*server.clock),
    )
    .unwrap();
    let p = &doc.account.packages[0];
    assert_eq!(
        p.licenses
            .iter()
            .find(|l| l.kind == LicenseKind::Endpoint)
            .unwrap()
            .total,
        75
    );
    assert!(
        p.licenses
            .iter()
            .all(|l| l.kind != LicenseKind::FeatureWorker),
        "set to 0 = removed"
    );
    assert_eq!(p.valid_until.year(), 2031);
    let audit = client
        .get(server.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("package.renewed") && audit.contains("package.updated"));
}

#[tokio::test]
async fn new_device_can_be_registered_while_authorizing() {
    let server = start().await;
    let auth = start_device_authorization(&server).await;
    let client = browser();
    sign_in(&server, &client).await;
    let page = client
        .get(server.url("/device"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let confirm = client
        .post(server.url("/device"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("device", "new"),
            ("new_device_name", "Store 003 POS Server"),
            ("user_code", &auth.user_code),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("Store 003 POS Server (new device)"));
    assert!(
        server
            .state
            .db
            .device_by_name(1, "Store 003 POS Server")
            .await
            .unwrap()
            .is_none(),
        "created only on Authorize"
    );
    let r = client
        .post(server.url("/device/confirm"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("device", "new"),
            ("new_device_name", "Store 003 POS Server"),
            ("user_code", &auth.user_code),
            ("decision", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, tokens) = poll(&server, &auth.device_code).await;
    assert_eq!(status, 200);
    let d = server
        .state
        .db
        .device_by_name(1, "Store 003 POS Server")
        .await
        .unwrap()
        .unwrap();
    let keys = jwks(&server).await;
    let claims: LicenseClaims = verify(
        tokens["access_token"].as_str().unwrap(),
        &keys,
        &Expectation::license_token(&server.base, "license-console"),
        license_server::Clock::now(&*server.clock),
    )
    .unwrap();
    assert_eq!(claims.sub, d.server_id);
}

/// Every form of the admin pages checks its CSRF token: a forged one changes
/// nothing and gets 400, whatever else the form holds.
#[tokio::test]
async fn every_admin_form_refuses_a_forged_csrf_token() {
    let server = start().await;
    let client = browser();
    sign_in_vendor(&server, &client).await;
    let auth = start_device_authorization(&server).await;
    let (packages, _, assignments) = server.state.db.packages(1).await.unwrap();
    let (package, assignment) = (packages[0].id, assignments[0].id);
    let kid = server.state.keys.ring().current_kid.clone();
    let dates = [("valid_from", "2030-01-01"), ("valid_until", "2031-01-01")];
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/orgs".into(), vec![("org_id", "1")]),
        ("/admin/orgs/new".into(), vec![("name", "Forged Org")]),
        (
            "/device".into(),
            vec![("device", "1"), ("user_code", auth.user_code.as_str())],
        ),
        (
            "/device/confirm".into(),
            vec![
                ("device", "1"),
                ("user_code", auth.user_code.as_str()),
                ("decision", "authorize"),
            ],
        ),
        ("/admin/devices".into(), vec![("name", "Forged Device")]),
        ("/admin/devices/1/revoke".into(), vec![]),
        (
            "/admin/packages".into(),
            [vec![("name", "Forged Package")], dates.to_vec()].concat(),
        ),
        (
            "/admin/account".into(),
            [
                vec![
                    ("features", "forged"),
                    ("hub_server_name", "x"),
                    ("hub_server_url", "https://x.example"),
                ],
                dates.to_vec(),
            ]
            .concat(),
        ),
        (
            format!("/admin/packages/{package}"),
            [
                vec![("name", "Forged"), ("status", "revoked")],
                dates.to_vec(),
            ]
            .concat(),
        ),
        (format!("/admin/packages/{package}/renew"), vec![]),
        (
            format!("/admin/packages/{package}/assignments"),
            vec![("kind", "endpoint"), ("name", "forged-agent")],
        ),
        (
            format!("/admin/packages/{package}/assignments/{assignment}/delete"),
            vec![],
        ),
        ("/admin/account/suspend".into(), vec![]),
        ("/admin/account/resume".into(), vec![]),
        (
            "/admin/users/invite".into(),
            vec![("email", "forged@example.com"), ("role", "vendor")],
        ),
        ("/admin/users/1/disable".into(), vec![]),
        ("/admin/users/1/enable".into(), vec![]),
        ("/admin/users/1/remove".into(), vec![]),
        ("/admin/users/1/leave".into(), vec![]),
        ("/admin/keys/rotate".into(), vec![]),
        ("/admin/keys/rotate-successor".into(), vec![]),
        (format!("/admin/keys/{kid}/withdraw"), vec![]),
        (
            "/admin/password".into(),
            vec![
                ("current", "x"),
                ("password", "forged password 1"),
                ("confirm", "forged password 1"),
            ],
        ),
    ];
    let audit_before = server.state.db.audit_log(1, 500).await.unwrap().len();
    let keys_before = server.state.db.keys().await.unwrap().len();
    for (path, fields) in &forms {
        let mut form = vec![("csrf", "forged")];
        form.extend(fields.iter().copied());
        let r = client
            .post(server.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("reload the page"), "{path}: {body}");
    }
    assert_eq!(
        server.state.db.audit_log(1, 500).await.unwrap().len(),
        audit_before,
        "nothing was done"
    );
    assert_eq!(server.state.db.keys().await.unwrap().len(), keys_before);
    let (after, _, assignments_after) = server.state.db.packages(1).await.unwrap();
    assert_eq!(after[0].name, packages[0].name);
    assert_eq!(assignments_after.len(), assignments.len());
    // Signed out is still signed in after a forged sign-out.
    let r = client
        .post(server.url("/admin/logout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 400, "{}", r.text().await.unwrap());
    let r = client
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `/healthz` answers while the process runs; `/readyz` only while the
/// database answers too (503 once it is closed), without a credential and
/// without details.
#[tokio::test]
async fn health_and_readiness() {
    let server = start().await;
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let r = api().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.unwrap(), body, "{path}");
    }
    server.state.db.close().await;
    let r = api().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "database unavailable\n");
    let r = api().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the process still answers");
}
