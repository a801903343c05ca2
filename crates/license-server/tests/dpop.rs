//! DPoP (RFC 9449): tokens bound to the console's key. Each attack the
//! issue names is a test: a license token or refresh token copied off the
//! wire is useless without the key, a proof cannot be replayed or moved to
//! another request, a copied refresh token cannot even set off the reuse
//! detection (which would take the customer's license away), and a copy
//! cannot revoke.

mod common;

use common::dpop::*;
use common::*;
use license_core::dpop::key_thumbprint;
use license_core::token::decode_header;

#[tokio::test]
async fn a_bound_license_token_is_useless_without_the_key() {
    let server = start().await;
    let console = Install::new(1);
    let tokens = license_with_dpop(&server, &console).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(decode_header(access).is_ok());
    assert_eq!(
        claims_of(access).cnf.map(|c| c.jkt),
        Some(key_thumbprint(&console.key))
    );
    let own = console.proof(&server, "GET", "/api/v1/license", Some(access));
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&own)).await.status(),
        200
    );

    // Seen on the wire (a TLS-inspecting proxy): as a bearer token,
    let r = fetch(&server, "Bearer", access, None).await;
    assert_eq!(r.status(), 401);
    // as DPoP without a proof, with the attacker's own key, with the
    // console's proof replayed, or with a proof for another request.
    let r = fetch(&server, "DPoP", access, None).await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("invalid_dpop_proof"),
        "{challenge}"
    );
    let thief = Install::new(2);
    let theirs = thief.proof(&server, "GET", "/api/v1/license", Some(access));
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&theirs)).await.status(),
        401
    );
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&own)).await.status(),
        401,
        "replayed proof"
    );
    let other_request = console.proof(&server, "POST", "/oauth/token", None);
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&other_request))
            .await
            .status(),
        401
    );
    let other_token = console.proof(&server, "GET", "/api/v1/license", Some("another token"));
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&other_token))
            .await
            .status(),
        401
    );
    // The console itself goes on.
    let again = console.proof(&server, "GET", "/api/v1/license", Some(access));
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&again)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_copied_refresh_token_gets_nothing_and_revokes_nothing() {
    let server = start().await;
    let console = Install::new(1);
    let thief = Install::new(2);
    let first = license_with_dpop(&server, &console).await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();

    for (who, proof) in [
        ("no proof", None),
        (
            "the thief's key",
            Some(thief.proof(&server, "POST", "/oauth/token", None)),
        ),
    ] {
        let (status, body, _) = token_request(&server, &refresh_form(&rt0), proof.as_deref()).await;
        assert_eq!(
            (status, error_of(&body)),
            (400, "invalid_dpop_proof"),
            "{who}: {body}"
        );
    }
    // The console's refresh is untouched by those attempts.
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, second, _) = token_request(&server, &refresh_form(&rt0), Some(&proof)).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["token_type"], "DPoP");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        claims_of(access).cnf.map(|c| c.jkt),
        Some(key_thumbprint(&console.key))
    );

    // The rotated-out token, replayed by the thief long after: refused for
    // the key, before the reuse detection would revoke the chain.
    server.advance(3600);
    let proof = thief.proof(&server, "POST", "/oauth/token", None);
    let (status, body, _) = token_request(&server, &refresh_form(&rt0), Some(&proof)).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, "invalid_dpop_proof"),
        "{body}"
    );
    let rt1 = second["refresh_token"].as_str().unwrap();
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, body, _) = token_request(&server, &refresh_form(rt1), Some(&proof)).await;
    assert_eq!(status, 200, "the chain is alive: {body}");
}

#[tokio::test]
async fn a_proof_is_taken_once() {
    let server = start().await;
    let console = Install::new(1);
    let first = license_with_dpop(&server, &console).await;
    let rt0 = first["refresh_token"].as_str().unwrap();
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, _, _) = token_request(&server, &refresh_form(rt0), Some(&proof)).await;
    assert_eq!(status, 200);
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (status, body, _) = token_request(&server, &refresh_form(rt1), Some(&proof)).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, "invalid_dpop_proof"),
        "{body}"
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("used before"));
}

/// A console whose clock is an hour off is asked for a nonce, and works
/// with it.
#[tokio::test]
async fn a_wrong_clock_is_answered_with_a_nonce() {
    let server = start().await;
    let console = Install::new(1);
    let first = license_with_dpop(&server, &console).await;
    let rt0 = first["refresh_token"].as_str().unwrap();
    let late = console.proof_at(&server, "POST", "/oauth/token", None, 3600, None);
    let (status, body, nonce) = token_request(&server, &refresh_form(rt0), Some(&late)).await;
    assert_eq!((status, error_of(&body)), (400, "use_dpop_nonce"), "{body}");
    let nonce = nonce.expect("DPoP-Nonce header");
    let with_nonce = console.proof_at(&server, "POST", "/oauth/token", None, 3600, Some(&nonce));
    let (status, body, _) = token_request(&server, &refresh_form(rt0), Some(&with_nonce)).await;
    assert_eq!(status, 200, "{body}");
    // A nonce lasts minutes, not longer.
    server.advance(7 * 60);
    let rt1 = body["refresh_token"].as_str().unwrap();
    let stale = console.proof_at(&server, "POST", "/oauth/token", None, 3600, Some(&nonce));
    let (status, body, _) = token_request(&server, &refresh_form(rt1), Some(&stale)).await;
    assert_eq!((status, error_of(&body)), (400, "use_dpop_nonce"), "{body}");
}

#[tokio::test]
async fn with_dpop_nonce_every_proof_needs_one() {
    let server = start_with(|c| c.dpop_nonce = true).await;
    let console = Install::new(1);
    let client = browser();
    sign_in(&server, &client).await;
    let auth = start_device_authorization(&server).await;
    decide_on_page(
        &server,
        &client,
        "Store 001 POS Server",
        &auth.user_code,
        "authorize",
    )
    .await;
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", auth.device_code.as_str()),
        ("client_id", "license-console"),
    ];
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, body, nonce) = token_request(&server, &form, Some(&proof)).await;
    assert_eq!((status, error_of(&body)), (400, "use_dpop_nonce"), "{body}");
    let proof = console.proof_at(&server, "POST", "/oauth/token", None, 0, nonce.as_deref());
    let (status, body, next) = token_request(&server, &form, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    assert!(next.is_some(), "a success carries the next nonce");
    // The license endpoint asks too, with a 401 challenge.
    let access = body["access_token"].as_str().unwrap();
    let proof = console.proof(&server, "GET", "/api/v1/license", Some(access));
    let r = fetch(&server, "DPoP", access, Some(&proof)).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("use_dpop_nonce"));
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = console.proof_at(
        &server,
        "GET",
        "/api/v1/license",
        Some(access),
        0,
        Some(&nonce),
    );
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&proof)).await.status(),
        200
    );
}

#[tokio::test]
async fn require_dpop_refuses_grants_without_a_proof() {
    let server = start_with(|c| c.require_dpop = true).await;
    let client = browser();
    sign_in(&server, &client).await;
    let auth = start_device_authorization(&server).await;
    decide_on_page(
        &server,
        &client,
        "Store 001 POS Server",
        &auth.user_code,
        "authorize",
    )
    .await;
    let (status, body) = poll(&server, &auth.device_code).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, "invalid_dpop_proof"),
        "{body}"
    );
    // The code is not used up by the refusal: the console with a key gets it.
    let console = Install::new(1);
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", auth.device_code.as_str()),
        ("client_id", "license-console"),
    ];
    server.advance(10);
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, body, _) = token_request(&server, &form, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn a_copy_cannot_revoke_the_license() {
    let server = start().await;
    let console = Install::new(1);
    let tokens = license_with_dpop(&server, &console).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let revoke = |proof: Option<String>| {
        let mut r = api()
            .post(server.url("/oauth/revoke"))
            .form(&[("token", refresh_token), ("client_id", "license-console")]);
        if let Some(p) = proof {
            r = r.header("DPoP", p);
        }
        r.send()
    };
    let r = revoke(None).await.unwrap();
    assert_eq!(r.status(), 400);
    let thief = Install::new(2);
    let r = revoke(Some(thief.proof(&server, "POST", "/oauth/revoke", None)))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let access = tokens["access_token"].as_str().unwrap();
    let proof = console.proof(&server, "GET", "/api/v1/license", Some(access));
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&proof)).await.status(),
        200,
        "still licensed"
    );
    let r = revoke(Some(console.proof(&server, "POST", "/oauth/revoke", None)))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let proof = console.proof(&server, "GET", "/api/v1/license", Some(access));
    let r = fetch(&server, "DPoP", access, Some(&proof)).await;
    assert_eq!(r.status(), 401, "revoked");
    // The challenge names the scheme the token came in (RFC 9449 §7.1).
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn metadata_names_the_dpop_algorithms() {
    let server = start().await;
    let meta: serde_json::Value = api()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        serde_json::json!(["EdDSA", "Ed25519"])
    );
}

/// Crash-safe rotation: a console that crashed between the server's answer
/// and its keychain write comes back days later with the previous refresh
/// token: a bound chain answers it with the same pair (audited), instead of
/// taking it for reuse and revoking the license.
#[tokio::test]
async fn a_bound_chain_answers_a_retry_however_late() {
    let server = start().await;
    let console = Install::new(1);
    let first = license_with_dpop(&server, &console).await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, lost, _) = token_request(&server, &refresh_form(&rt0), Some(&proof)).await;
    assert_eq!(status, 200, "{lost}");
    // The console died before it stored `lost`; it is back 2 days later.
    server.advance(2 * 86_400);
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, again, _) = token_request(&server, &refresh_form(&rt0), Some(&proof)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["refresh_token"], lost["refresh_token"]);
    assert_eq!(again["access_token"], lost["access_token"]);
    let audit = server.state.db.audit_log(1, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "token.retry"));
    let device = server
        .state
        .db
        .device_by_name(1, "Store 001 POS Server")
        .await
        .unwrap()
        .unwrap();
    assert!(
        device.possible_copy_at.is_none(),
        "one retry is a crash, not a copy"
    );
    let rt1 = again["refresh_token"].as_str().unwrap();
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, body, _) = token_request(&server, &refresh_form(rt1), Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
}

/// Two copies of one console (same key, same tokens) answer each other's
/// rotations through retries: the second retry within a week marks the
/// device a possible copy; with the organization's `revoke` setting the
/// next one revokes the license.
#[tokio::test]
async fn copies_of_a_console_are_noticed() {
    let server = start().await;
    let original = Install::new(1);
    let copy = Install::new(1);
    let first = license_with_dpop(&server, &original).await;
    let mut token = first["refresh_token"].as_str().unwrap().to_owned();
    let device = || async {
        server
            .state
            .db
            .device_by_name(1, "Store 001 POS Server")
            .await
            .unwrap()
            .unwrap()
    };
    for day in 1..=3 {
        server.advance(86_400);
        let proof = original.proof(&server, "POST", "/oauth/token", None);
        let (status, next, _) = token_request(&server, &refresh_form(&token), Some(&proof)).await;
        assert_eq!(status, 200, "day {day}: {next}");
        server.advance(5);
        let proof = copy.proof(&server, "POST", "/oauth/token", None);
        let (status, body, _) = token_request(&server, &refresh_form(&token), Some(&proof)).await;
        match day {
            1 => {
                assert_eq!(status, 200, "{body}");
                assert!(device().await.possible_copy_at.is_none());
            }
            2 => {
                assert_eq!(status, 200, "flag only: {body}");
                assert!(device().await.possible_copy_at.is_some());
                let audit = server.state.db.audit_log(1, 100).await.unwrap();
                assert!(audit.iter().any(|e| e.action == "device.possible_copy"));
                let admin = browser();
                sign_in(&server, &admin).await;
                let page = page_text(&server, &admin, "/admin/devices").await;
                assert!(page.contains("Possible copy"), "{page}");
                let csrf = hidden(&page, "csrf");
                let r = admin
                    .post(server.url("/admin/devices/on-copy"))
                    .form(&[("csrf", csrf.as_str()), ("on_copy", "revoke")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303);
            }
            _ => {
                assert_eq!((status, error_of(&body)), (400, "invalid_grant"), "{body}");
                assert!(
                    device().await.token_expiry.is_none(),
                    "the license was revoked"
                );
            }
        }
        token = next["refresh_token"].as_str().unwrap().to_owned();
    }
}

/// Back after the lost pair's license token expired (4 days, tokens last
/// 3): the same refresh token, and a license token valid now. An expired
/// one would be refused by the console, which would then present the same
/// refresh token for ever.
#[tokio::test]
async fn a_retry_after_the_lost_token_expired_gets_a_valid_one() {
    let server = start().await;
    let console = Install::new(1);
    let first = license_with_dpop(&server, &console).await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, lost, _) = token_request(&server, &refresh_form(&rt0), Some(&proof)).await;
    assert_eq!(status, 200, "{lost}");
    server.advance(4 * 86_400);
    let proof = console.proof(&server, "POST", "/oauth/token", None);
    let (status, again, _) = token_request(&server, &refresh_form(&rt0), Some(&proof)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["refresh_token"], lost["refresh_token"]);
    assert!(again["expires_in"].as_i64().unwrap() > 86_400, "{again}");
    let access = again["access_token"].as_str().unwrap();
    assert_eq!(
        claims_of(access).cnf.map(|c| c.jkt),
        Some(key_thumbprint(&console.key))
    );
    let proof = console.proof(&server, "GET", "/api/v1/license", Some(access));
    assert_eq!(
        fetch(&server, "DPoP", access, Some(&proof)).await.status(),
        200
    );
    // Every retry is audited, once.
    let audit = server.state.db.audit_log(1, 100).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "token.retry").count(),
        1
    );
}
