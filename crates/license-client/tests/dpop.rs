//! DPoP (RFC 9449): a client with the install's key gets tokens bound to
//! it, against the real license server: the device flow, refresh, license
//! fetch and revocation with proofs; stolen tokens refused; the server's
//! nonces. Stubs check what the real server does not show: the proofs'
//! nonces one by one, and answers the client must refuse.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{licensed, start, start_with, ServerClock, TestServer};
use ed25519_dalek::SigningKey;
use license_client::dpop::bound_thumbprint;
use license_client::{ClientConfig, ClientError, DpopKey, LicenseClient, Secret, TokenType};
use license_core::clock::ManualClock;
use license_core::dpop::{proof, verify_proof, ProofClaims, ProofRequest};
use license_core::jwk::JwkSet;
use license_core::token::{encode, Confirmation, LicenseClaims, LICENSE_TOKEN_TYP};
use serde_json::json;
use time::OffsetDateTime;

fn keyed(base: &str, key: &DpopKey) -> LicenseClient {
    LicenseClient::new(ClientConfig::new(base).with_dpop_key(key.clone())).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A licensed client with a fresh key: the tokens must be bound to it.
async fn bound(server: &TestServer) -> (DpopKey, LicenseClient, license_client::TokenSet) {
    let key = DpopKey::generate();
    let client = keyed(&server.base, &key);
    let (_, tokens) = licensed(server, &client).await;
    assert_eq!(tokens.token_type, TokenType::DPoP);
    assert_eq!(
        bound_thumbprint(tokens.access_token.expose()).as_deref(),
        Some(key.thumbprint())
    );
    assert_eq!(
        tokens.claims.cnf.as_ref().map(|c| c.jkt.as_str()),
        Some(key.thumbprint())
    );
    (key, client, tokens)
}

#[tokio::test]
async fn the_device_flow_with_a_key_binds_the_tokens_and_the_license_fetch_works() {
    let server = start().await;
    let (key, client, tokens) = bound(&server).await;
    assert_eq!(client.dpop_thumbprint(), Some(key.thumbprint()));
    let m = client.metadata().await.unwrap();
    assert_eq!(m.dpop_signing_alg_values_supported, ["EdDSA", "Ed25519"]);
    let doc = client
        .fetch_license(&tokens.access_token, now())
        .await
        .unwrap();
    assert_eq!(doc.claims.sub, server.server_id().await);
    assert_eq!(doc.claims.account.organization, "Demo Store");
    // The key never shows in what the client prints.
    let seed = key.encoded_seed();
    let debug = format!("{client:?} {key:?} {tokens:?}");
    assert!(!debug.contains(seed.expose()), "{debug}");
}

#[tokio::test]
async fn a_client_without_a_key_still_gets_bearer_tokens() {
    let server = start().await;
    let client = server.client();
    let (_, tokens) = licensed(&server, &client).await;
    assert_eq!(tokens.token_type, TokenType::Bearer);
    assert_eq!(bound_thumbprint(tokens.access_token.expose()), None);
    client
        .fetch_license(&tokens.access_token, now())
        .await
        .unwrap();
    let next = client.refresh(&tokens.refresh_token, now()).await.unwrap();
    assert_eq!(next.token_type, TokenType::Bearer);
}

#[tokio::test]
async fn a_refresh_stays_bound_and_revocation_takes_a_proof() {
    let server = start().await;
    let (key, client, tokens) = bound(&server).await;
    let next = client.refresh(&tokens.refresh_token, now()).await.unwrap();
    assert_eq!(next.token_type, TokenType::DPoP);
    assert_eq!(
        next.claims.cnf.as_ref().map(|c| c.jkt.as_str()),
        Some(key.thumbprint())
    );
    assert_ne!(next.refresh_token, tokens.refresh_token);
    client
        .fetch_license(&next.access_token, now())
        .await
        .unwrap();
    // Another client with the same key (the console after a restart).
    let restarted = keyed(&server.base, &key);
    let third = restarted.refresh(&next.refresh_token, now()).await.unwrap();
    assert_eq!(third.token_type, TokenType::DPoP);

    restarted.revoke(&third.refresh_token).await.unwrap();
    let e = restarted
        .refresh(&third.refresh_token, now())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Revoked { .. }), "{e:?}");
}

#[tokio::test]
async fn a_stolen_license_token_is_refused_without_the_key() {
    let server = start().await;
    let (_, client, tokens) = bound(&server).await;
    let license_endpoint = format!("{}/api/v1/license", server.base);

    // As a Bearer token, by hand and by a client without a key.
    let raw = reqwest::Client::new()
        .get(&license_endpoint)
        .bearer_auth(tokens.access_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), reqwest::StatusCode::UNAUTHORIZED);
    let thief = server.client();
    let e = thief
        .fetch_license(&tokens.access_token, now())
        .await
        .unwrap_err();
    assert!(matches!(e.code(), "revoked" | "dpop_refused"), "{e:?}");
    // With the DPoP scheme but no proof.
    let raw = reqwest::Client::new()
        .get(&license_endpoint)
        .header(
            "Authorization",
            format!("DPoP {}", tokens.access_token.expose()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), reqwest::StatusCode::UNAUTHORIZED);
    // With a proof by another key.
    let other = keyed(&server.base, &DpopKey::generate());
    let e = other
        .fetch_license(&tokens.access_token, now())
        .await
        .unwrap_err();
    assert!(matches!(e.code(), "revoked" | "dpop_refused"), "{e:?}");

    // The owner is not affected.
    client
        .fetch_license(&tokens.access_token, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stolen_refresh_token_is_refused_with_another_key_and_stays_unused() {
    let server = start().await;
    let (_, client, tokens) = bound(&server).await;
    let other = keyed(&server.base, &DpopKey::generate());
    let e = other
        .refresh(&tokens.refresh_token, now())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DpopRefused { .. }), "{e:?}");
    assert_eq!(e.code(), "dpop_refused");
    assert!(!e.is_network());
    // Without any proof at all.
    let e = server
        .client()
        .refresh(&tokens.refresh_token, now())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DpopRefused { .. }), "{e:?}");
    // The refresh token was not used up: its owner refreshes with it.
    let next = client.refresh(&tokens.refresh_token, now()).await.unwrap();
    assert_eq!(next.token_type, TokenType::DPoP);
    client
        .fetch_license(&next.access_token, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_server_that_always_wants_a_nonce_gets_one_retry_each_time() {
    let server = start_with(ServerClock::System, |c| c.dpop_nonce = true).await;
    let (key, client, tokens) = bound(&server).await;
    // The premise: a proof without the server's nonce is turned away.
    let token_endpoint = format!("{}/oauth/token", server.base);
    let request = ProofRequest {
        method: "POST",
        uri: &token_endpoint,
        access_token: None,
    };
    let signing = SigningKey::from_bytes(
        &URL_SAFE_NO_PAD
            .decode(key.encoded_seed().expose())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let iat = now().unix_timestamp();
    let raw = reqwest::Client::new()
        .post(&token_endpoint)
        .header("DPoP", proof(&signing, &request, iat, "premise-1", None))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.expose()),
            ("client_id", "license-console"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(raw.headers().contains_key("dpop-nonce"));
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    client
        .fetch_license(&tokens.access_token, now())
        .await
        .unwrap();
    let next = client.refresh(&tokens.refresh_token, now()).await.unwrap();
    assert_eq!(next.token_type, TokenType::DPoP);
    client
        .fetch_license(&next.access_token, now())
        .await
        .unwrap();
    client.revoke(&next.refresh_token).await.unwrap();
}

#[tokio::test]
async fn a_console_whose_clock_is_wrong_proves_with_the_servers_nonce() {
    let server = start().await;
    let key = DpopKey::generate();
    // Proofs dated two hours ahead: the server asks for a nonce.
    let clock = Arc::new(ManualClock::new(now() + time::Duration::hours(2)));
    let config = ClientConfig::new(&server.base).with_dpop_key(key.clone());
    let client = LicenseClient::with_clock(config, clock).unwrap();
    let (_, tokens) = licensed(&server, &client).await;
    assert_eq!(tokens.token_type, TokenType::DPoP);
    let next = client.refresh(&tokens.refresh_token, now()).await.unwrap();
    client
        .fetch_license(&next.access_token, now())
        .await
        .unwrap();
}

/// The proofs a stub received.
type Seen = Arc<Mutex<Vec<ProofClaims>>>;

/// Serves `router` on 127.0.0.1:0 with the usual metadata; returns the
/// base URL.
async fn stub(router: impl FnOnce(&str) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let m = json!({
        "issuer": base,
        "device_authorization_endpoint": format!("{base}/oauth/device_authorization"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "license_endpoint": format!("{base}/api/v1/license"),
    });
    let app = router(&base).route(
        "/.well-known/oauth-authorization-server",
        get(move || async move { Json(m) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn proof_of(headers: &HeaderMap, request: &ProofRequest<'_>) -> ProofClaims {
    let proof = headers
        .get("dpop")
        .expect("a DPoP header")
        .to_str()
        .unwrap();
    verify_proof(proof, request).expect("a valid proof").claims
}

#[tokio::test]
async fn the_latest_nonce_is_remembered_and_a_request_is_retried_once() {
    let seen: Seen = Arc::default();
    let current = Arc::new(Mutex::new(1u32));
    let (s, c) = (seen.clone(), current.clone());
    let base = stub(move |base| {
        let uri = format!("{base}/oauth/revoke");
        Router::new().route(
            "/oauth/revoke",
            post(move |headers: HeaderMap| {
                let request = ProofRequest {
                    method: "POST",
                    uri: &uri,
                    access_token: None,
                };
                let claims = proof_of(&headers, &request);
                // Every nonce issued so far is good; each success issues
                // the next.
                let mut n = c.lock().unwrap();
                let expected = format!("n-{n}");
                let fresh = claims
                    .nonce
                    .as_deref()
                    .and_then(|nonce| nonce.strip_prefix("n-")?.parse::<u32>().ok())
                    .is_some_and(|k| k <= *n);
                s.lock().unwrap().push(claims);
                let response = if fresh {
                    *n += 1;
                    (StatusCode::OK, [("DPoP-Nonce", format!("n-{n}"))], "").into_response()
                } else {
                    let body = Json(json!({"error": "use_dpop_nonce"}));
                    (StatusCode::BAD_REQUEST, [("DPoP-Nonce", expected)], body).into_response()
                };
                async move { response }
            }),
        )
    })
    .await;
    let client = keyed(&base, &DpopKey::generate());
    client.revoke(&Secret::new("rt")).await.unwrap();
    client.revoke(&Secret::new("rt")).await.unwrap();
    let nonces: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.nonce.clone())
        .collect();
    // Asked once, then the nonce of the last answer is used at once.
    assert_eq!(nonces, [None, Some("n-1".into()), Some("n-2".into())]);
    let jtis: std::collections::HashSet<_> =
        seen.lock().unwrap().iter().map(|c| c.jti.clone()).collect();
    assert_eq!(jtis.len(), 3, "one jti per proof");
    // Clones share the nonce, from several tasks at once.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.revoke(&Secret::new("rt")).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(seen.lock().unwrap()[3..].iter().all(|c| c.nonce.is_some()));
}

#[tokio::test]
async fn a_refused_proof_at_the_license_endpoint_is_dpop_refused_after_one_retry() {
    let key = DpopKey::generate();
    let payload = json!({"sub": "SRV-1", "cnf": {"jkt": key.thumbprint()}});
    let token = format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload.to_string()));
    let seen: Seen = Arc::default();
    let (s, t) = (seen.clone(), token.clone());
    let base = stub(move |base| {
        let uri = format!("{base}/api/v1/license");
        Router::new().route(
            "/api/v1/license",
            get(move |headers: HeaderMap| {
                let authorization = headers["authorization"].to_str().unwrap().to_owned();
                assert_eq!(authorization, format!("DPoP {t}"));
                let request = ProofRequest {
                    method: "GET",
                    uri: &uri,
                    access_token: Some(&t),
                };
                let claims = proof_of(&headers, &request);
                let retried = claims.nonce.is_some();
                s.lock().unwrap().push(claims);
                let challenge = if retried {
                    r#"DPoP error="invalid_dpop_proof", algs="EdDSA""#
                } else {
                    r#"DPoP error="use_dpop_nonce", algs="EdDSA""#
                };
                let response = (
                    StatusCode::UNAUTHORIZED,
                    [("WWW-Authenticate", challenge), ("DPoP-Nonce", "rn-1")],
                    "",
                );
                async move { response }
            }),
        )
    })
    .await;
    let e = keyed(&base, &key)
        .fetch_license(&Secret::new(token), now())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DpopRefused { .. }), "{e:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].nonce.as_deref(), Some("rn-1"));
    assert!(seen.iter().all(|c| c.htm == "GET" && c.ath.is_some()));
}

/// A token endpoint granting a license token bound to `jkt`, answered as
/// `token_type`.
async fn granting(jkt: Option<String>, token_type: &'static str) -> String {
    stub(move |base| {
        let key = SigningKey::from_bytes(&[1; 32]);
        let jwks = JwkSet::single(&key.verifying_key());
        let kid = jwks.keys[0].kid.clone();
        let t = OffsetDateTime::now_utc().unix_timestamp();
        let claims = LicenseClaims {
            iss: base.to_owned(),
            aud: "license-console".into(),
            sub: "SRV-1".into(),
            iat: t,
            nbf: t,
            exp: t + 3600,
            jti: "j".into(),
            org: "Org".into(),
            features: vec![],
            renewal_date: None,
            hub_server_name: String::new(),
            hub_server_url: String::new(),
            cnf: jkt.map(|jkt| Confirmation { jkt }),
        };
        let access = encode(&claims, LICENSE_TOKEN_TYP, &kid, &key);
        Router::new()
            .route(
                "/.well-known/jwks.json",
                get(move || async move { Json(jwks) }),
            )
            .route(
                "/oauth/token",
                post(move || async move {
                    Json(json!({
                        "access_token": access, "token_type": token_type,
                        "expires_in": 3600, "refresh_token": "rt2",
                    }))
                }),
            )
    })
    .await
}

#[tokio::test]
async fn token_types_that_do_not_match_the_binding_are_refused() {
    let key = DpopKey::generate();
    let refresh = |base: String, key: Option<DpopKey>| async move {
        let config = ClientConfig {
            dpop_key: key,
            ..ClientConfig::new(base)
        };
        let client = LicenseClient::new(config).unwrap();
        client.refresh(&Secret::new("rt"), now()).await
    };
    let ours = Some(key.thumbprint().to_owned());
    // The good case, for contrast.
    let base = granting(ours.clone(), "DPoP").await;
    let ok = refresh(base, Some(key.clone())).await.unwrap();
    assert_eq!(ok.token_type, TokenType::DPoP);
    let cases = [
        // Bound to another key.
        (Some("someone-else".to_owned()), "DPoP", Some(key.clone())),
        // DPoP but not bound.
        (None, "DPoP", Some(key.clone())),
        // Bound but called Bearer.
        (ours.clone(), "Bearer", Some(key.clone())),
        // DPoP to a client that sent no proof.
        (ours.clone(), "DPoP", None),
        // Neither.
        (None, "MAC", Some(key.clone())),
    ];
    for (jkt, token_type, client_key) in cases {
        let base = granting(jkt.clone(), token_type).await;
        let e = refresh(base, client_key).await.unwrap_err();
        assert_eq!(e.code(), "protocol", "{jkt:?} {token_type}: {e:?}");
    }
}
