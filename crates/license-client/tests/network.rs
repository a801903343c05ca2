//! Failures the user can meet: server down, no answer, wrong URL, TLS
//! trouble, and servers that send what they must not (stubs, only for the
//! answers the real server never gives).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Json, Router};
use common::tls::{metadata, tls_server, CA};
use common::{start_with, ServerClock};
use ed25519_dalek::SigningKey;
use license_client::{ClientConfig, ClientError, LicenseClient, MAX_BODY_BYTES};
use license_core::jwk::JwkSet;
use license_core::token::{encode, LicenseClaims, LICENSE_TOKEN_TYP};
use serde_json::json;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn client(base: &str) -> LicenseClient {
    LicenseClient::new(ClientConfig::new(base)).unwrap()
}

/// A port nobody listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Serves `router` on 127.0.0.1:0; returns the base URL.
async fn stub(router: impl FnOnce(&str) -> Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(&base);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

const METADATA: &str = "/.well-known/oauth-authorization-server";

#[tokio::test]
async fn a_server_that_is_down_is_offline() {
    let base = format!("http://127.0.0.1:{}", closed_port().await);
    let e = client(&base).metadata().await.unwrap_err();
    assert_eq!(e.code(), "offline", "{e:?}");
    assert!(e.is_network());
    assert_eq!(
        e.to_string(),
        format!(
            "Cannot reach the license server at {base}: connection refused. Check that this \
             computer can reach the server's URL and port."
        )
    );
    // The same for every call that needs the server.
    let e = client(&base)
        .start_device_authorization()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "offline");
}

#[tokio::test]
async fn an_unknown_host_name_is_offline() {
    let e = client("http://license-server.invalid")
        .metadata()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "offline", "{e:?}");
    assert!(e.to_string().contains("license-server.invalid"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accepted, never answered
        }
    });
    let config = ClientConfig {
        request_timeout: Duration::from_millis(500),
        ..ClientConfig::new(&base)
    };
    let started = Instant::now();
    let e = LicenseClient::new(config)
        .unwrap()
        .metadata()
        .await
        .unwrap_err();
    assert_eq!(e, ClientError::Timeout { server: base });
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(e.to_string().contains("did not answer in time"), "{e}");
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_a_protocol_error() {
    let server = start_with(ServerClock::System, |c| {
        c.issuer = "http://licenses.example".into();
    })
    .await;
    let e = server.client().metadata().await.unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("http://licenses.example"), "{e}");
}

#[tokio::test]
async fn an_oversized_body_is_rejected() {
    let base =
        stub(|_| Router::new().route(METADATA, get(|| async { "x".repeat(MAX_BODY_BYTES + 1) })))
            .await;
    let e = client(&base).metadata().await.unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 4096];
        let _ = socket.read(&mut head).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        // 64 MiB if nobody stops it.
        for _ in 0..1024 {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let e = client(&base).metadata().await.unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[tokio::test]
async fn server_failures_and_foreign_answers_are_told_apart() {
    let base = stub(|_| {
        Router::new()
            .route(
                METADATA,
                get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
            )
            .route(
                "/html/.well-known/oauth-authorization-server",
                get(|| async { "<html>router login</html>" }),
            )
    })
    .await;
    let e = client(&base).metadata().await.unwrap_err();
    assert_eq!(e, ClientError::ServerError { status: 503 });
    let e = client(&format!("{base}/html"))
        .metadata()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "protocol");
    // A page that does not exist (wrong URL) is an HTTP error too.
    let e = client(&format!("{base}/nothing"))
        .metadata()
        .await
        .unwrap_err();
    assert_eq!(e, ClientError::ServerError { status: 404 });
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let base = stub(|_| {
        Router::new().route(
            METADATA,
            get(|| async { axum::response::Redirect::temporary("http://elsewhere.invalid/") }),
        )
    })
    .await;
    let e = client(&base).metadata().await.unwrap_err();
    assert_eq!(e, ClientError::ServerError { status: 307 });
}

#[tokio::test]
async fn a_verification_uri_the_browser_should_not_open_is_refused() {
    let base = stub(|base| {
        let m = metadata(base);
        Router::new()
            .route(METADATA, get(move || async move { Json(m) }))
            .route(
                "/oauth/device_authorization",
                post(|| async {
                    Json(json!({
                        "device_code": "dc", "user_code": "BCDF-GHJK",
                        "verification_uri": "javascript:alert(1)", "expires_in": 900,
                    }))
                }),
            )
    })
    .await;
    let e = client(&base)
        .start_device_authorization()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("verification_uri"), "{e}");
}

#[tokio::test]
async fn the_default_interval_is_five_seconds_and_absurd_ones_are_capped() {
    let base = stub(|base| {
        let m = metadata(base);
        let verification = format!("{base}/device");
        Router::new()
            .route(METADATA, get(move || async move { Json(m) }))
            .route(
                "/oauth/device_authorization",
                post(move || async move {
                    Json(json!({
                        "device_code": "dc", "user_code": "BCDF-GHJK",
                        "verification_uri": verification, "expires_in": 900_000_000u64,
                    }))
                }),
            )
    })
    .await;
    let auth = client(&base).start_device_authorization().await.unwrap();
    assert_eq!(auth.interval, 5);
    assert_eq!(auth.expires_in, 86_400);
}

/// A stub with a real-looking JWKS (key A) whose token endpoint hands out
/// `token(kid_a)`. Counts the JWKS fetches.
async fn token_stub(
    token: impl Fn(&str, &str) -> String + Clone + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let base = stub(move |base| {
        let m = metadata(base);
        let key_a = SigningKey::from_bytes(&[1; 32]);
        let jwks = JwkSet::single(&key_a.verifying_key());
        let kid = jwks.keys[0].kid.clone();
        let base = base.to_owned();
        Router::new()
            .route(METADATA, get(move || async move { Json(m) }))
            .route(
                "/.well-known/jwks.json",
                get(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let jwks = jwks.clone();
                    async move { Json(jwks) }
                }),
            )
            .route(
                "/oauth/token",
                post(move || {
                    let access = token(&base, &kid);
                    async move {
                        Json(json!({
                            "access_token": access, "token_type": "Bearer",
                            "expires_in": 3600, "refresh_token": "rt",
                        }))
                    }
                }),
            )
    })
    .await;
    (base, hits)
}

fn claims(issuer: &str) -> LicenseClaims {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    LicenseClaims {
        iss: issuer.to_owned(),
        aud: "license-console".into(),
        sub: "SRV-FORGED".into(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        jti: "forged".into(),
        org: "Forged Org".into(),
        features: vec!["xms".into()],
        renewal_date: None,
        hub_server_name: String::new(),
        hub_server_url: String::new(),
        cnf: None,
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let (base, _) = token_stub(|base, kid| {
        let attacker = SigningKey::from_bytes(&[2; 32]);
        encode(&claims(base), LICENSE_TOKEN_TYP, kid, &attacker)
    })
    .await;
    let e = client(&base)
        .refresh(
            &license_client::Secret::new("rt"),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("bad signature"), "{e}");
}

#[tokio::test]
async fn a_token_for_another_audience_or_issuer_is_refused() {
    let (base, _) = token_stub(|base, kid| {
        let key_a = SigningKey::from_bytes(&[1; 32]);
        let other = LicenseClaims {
            aud: "another-client".into(),
            ..claims(base)
        };
        encode(&other, LICENSE_TOKEN_TYP, kid, &key_a)
    })
    .await;
    let e = client(&base)
        .refresh(
            &license_client::Secret::new("rt"),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("wrong audience"), "{e}");

    let (base, _) = token_stub(|_, kid| {
        let key_a = SigningKey::from_bytes(&[1; 32]);
        encode(
            &claims("http://licenses.example"),
            LICENSE_TOKEN_TYP,
            kid,
            &key_a,
        )
    })
    .await;
    let e = client(&base)
        .refresh(
            &license_client::Secret::new("rt"),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("wrong issuer"), "{e}");
}

#[tokio::test]
async fn an_unknown_key_id_refetches_the_jwks_once_per_token() {
    let (base, hits) = token_stub(|base, _| {
        let key_a = SigningKey::from_bytes(&[1; 32]);
        encode(&claims(base), LICENSE_TOKEN_TYP, "no-such-kid", &key_a)
    })
    .await;
    let client = client(&base);
    let now = OffsetDateTime::now_utc();
    let e = client
        .refresh(&license_client::Secret::new("rt"), now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown signing key"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // With a JWKS cached, an unknown kid costs exactly one more fetch.
    let _ = client
        .refresh(&license_client::Secret::new("rt"), now)
        .await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

// --- TLS -------------------------------------------------------------------

#[tokio::test]
async fn an_untrusted_certificate_is_tls_and_the_extra_ca_fixes_it() {
    let base = tls_server(metadata);
    let e = client(&base).metadata().await.unwrap_err();
    assert_eq!(e.code(), "tls", "{e:?}");
    assert!(e.is_network());
    assert!(e.to_string().contains("CA certificate"), "{e}");

    let config = ClientConfig {
        extra_ca_pem: Some(CA.to_vec()),
        ..ClientConfig::new(&base)
    };
    let m = LicenseClient::new(config)
        .unwrap()
        .metadata()
        .await
        .unwrap();
    assert_eq!(m.issuer, base);
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_tls() {
    let server = start_with(ServerClock::System, |_| {}).await;
    let https = server.base.replace("http://", "https://");
    let e = client(&https).metadata().await.unwrap_err();
    assert_eq!(e.code(), "tls", "{e:?}");
}

#[tokio::test]
async fn plain_http_endpoints_are_refused_for_an_https_server() {
    let base = tls_server(|base| {
        let mut m = metadata(base);
        m["token_endpoint"] = json!(base.replace("https://", "http://") + "/oauth/token");
        m
    });
    let config = ClientConfig {
        extra_ca_pem: Some(CA.to_vec()),
        ..ClientConfig::new(&base)
    };
    let e = LicenseClient::new(config)
        .unwrap()
        .metadata()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("token_endpoint is not https"), "{e}");
}
