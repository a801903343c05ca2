//! The client against the real license server: discovery, the device flow
//! with every protocol answer, refresh rotation, revocation, the license
//! document, key rotation and offline verification.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{licensed, start, start_with, ServerClock};
use license_client::{CancellationToken, ClientError, PollOutcome, Secret};
use time::OffsetDateTime;

#[tokio::test]
async fn discovery_reads_the_metadata_and_checks_the_issuer() {
    let mut server = start().await;
    // The user typed a trailing slash and upper case: still the same server.
    let typed = format!(
        "{}/",
        server.base.to_uppercase().replace("HTTP://", "http://")
    );
    let client =
        license_client::LicenseClient::new(license_client::ClientConfig::new(typed)).unwrap();
    assert_eq!(client.server_url(), server.base);
    let m = client.metadata().await.unwrap();
    assert_eq!(m.issuer, server.base);
    assert_eq!(m.token_endpoint, format!("{}/oauth/token", server.base));
    assert_eq!(
        m.license_endpoint,
        format!("{}/api/v1/license", server.base)
    );
    assert_eq!(
        m.revocation_endpoint.as_deref(),
        Some(format!("{}/oauth/revoke", server.base).as_str())
    );
    // Cached: still answered with the server gone.
    server.stopped().await;
    assert_eq!(client.metadata().await.unwrap(), m);
}

#[tokio::test]
async fn full_device_flow_yields_verified_tokens() {
    let server = start().await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    assert_eq!(auth.interval, 1);
    assert_eq!(auth.expires_in, 900);
    assert_eq!(auth.verification_uri, format!("{}/device", server.base));
    assert!(auth
        .verification_uri_complete
        .as_deref()
        .unwrap()
        .ends_with(&auth.user_code));

    let waiting = {
        let client = client.clone();
        let auth = auth.clone();
        tokio::spawn(async move {
            client
                .wait_for_tokens(&auth, CancellationToken::new(), OffsetDateTime::now_utc)
                .await
        })
    };
    // The loop polls (pending) while the admin takes a moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.authorize(&auth.user_code).await;
    let tokens = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(tokens.claims.iss, server.base);
    assert_eq!(tokens.claims.aud, "license-console");
    assert_eq!(tokens.claims.sub, server.server_id().await);
    assert_eq!(tokens.claims.org, "Demo Store");
    assert_eq!(tokens.claims.features, ["xms"]);
    assert_eq!(tokens.claims.hub_server_name, "Demo Hub");
    assert_eq!(tokens.expires_in, 259_200);
    let debug = format!("{tokens:?} {auth:?}");
    assert!(!debug.contains(tokens.access_token.expose()));
    assert!(!debug.contains(tokens.refresh_token.expose()));
    assert!(!debug.contains(auth.device_code.expose()));

    // The device code is used up: polling again says start over.
    let again = client.poll_once(&auth, OffsetDateTime::now_utc()).await;
    assert_eq!(again.unwrap_err(), ClientError::CodeExpired);
}

#[tokio::test]
async fn polling_before_approval_is_pending_and_too_fast_is_slow_down() {
    let server = start_with(ServerClock::Manual, |_| {}).await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        client.poll_once(&auth, now).await.unwrap(),
        PollOutcome::Pending
    );
    // The server's clock has not moved: a second poll is too fast.
    assert_eq!(
        client.poll_once(&auth, now).await.unwrap(),
        PollOutcome::SlowDown
    );
    // After the grown interval (1 + 5 s) it is pending again.
    server.advance(6);
    assert_eq!(
        client.poll_once(&auth, now).await.unwrap(),
        PollOutcome::Pending
    );
}

#[tokio::test]
async fn the_polling_loop_waits_five_seconds_longer_after_slow_down() {
    let server = start_with(ServerClock::Manual, |_| {}).await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let cancel = CancellationToken::new();
    let result = {
        let waits = waits.clone();
        let cancel = cancel.clone();
        client
            .wait_for_tokens_with_progress(
                &auth,
                cancel.clone(),
                OffsetDateTime::now_utc,
                move |d| {
                    let mut waits = waits.lock().unwrap();
                    waits.push(d);
                    // Poll 1 is pending; poll 2 comes "too fast" for the
                    // server's standing clock. Stop before the longer wait.
                    if waits.len() == 3 {
                        cancel.cancel();
                    }
                },
            )
            .await
    };
    assert_eq!(result.unwrap_err(), ClientError::Cancelled);
    assert_eq!(
        *waits.lock().unwrap(),
        [
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(6)
        ]
    );
}

#[tokio::test]
async fn a_denied_authorization_stops_the_loop() {
    let server = start().await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    server.deny(&auth.user_code).await;
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        client.wait_for_tokens(&auth, CancellationToken::new(), OffsetDateTime::now_utc),
    )
    .await
    .unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.code(), "denied");
    assert!(e.to_string().contains("denied"), "{e}");
}

#[tokio::test]
async fn an_expired_device_code_is_code_expired() {
    let server = start_with(ServerClock::Manual, |c| c.device_code_ttl_secs = 60).await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    assert_eq!(auth.expires_in, 60);
    // The server's clock runs past the expiry while ours does not: the
    // server's expired_token answer decides.
    server.advance(61);
    let e = client.poll_once(&auth, auth.issued_at).await.unwrap_err();
    assert_eq!(e, ClientError::CodeExpired);
    assert_eq!(e.code(), "code_expired");
}

#[tokio::test]
async fn the_polling_loop_stops_at_expires_in() {
    let server = start_with(ServerClock::System, |c| c.device_code_ttl_secs = 2).await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        client.wait_for_tokens(&auth, CancellationToken::new(), OffsetDateTime::now_utc),
    )
    .await
    .unwrap();
    assert_eq!(result.unwrap_err(), ClientError::CodeExpired);
    assert!(started.elapsed() < Duration::from_secs(4));

    // Past the expiry the client does not even ask (the server is gone).
    drop(server);
    let later = auth.expires_at() + time::Duration::seconds(1);
    assert_eq!(
        client.poll_once(&auth, later).await.unwrap_err(),
        ClientError::CodeExpired
    );
}

#[tokio::test]
async fn cancelling_the_loop_returns_cancelled() {
    let server = start().await;
    let client = server.client();
    let auth = client.start_device_authorization().await.unwrap();
    let cancel = CancellationToken::new();
    let waiting = {
        let client = client.clone();
        let auth = auth.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            client
                .wait_for_tokens(&auth, cancel, OffsetDateTime::now_utc)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.unwrap_err().code(), "cancelled");
}

#[tokio::test]
async fn refresh_rotates_the_tokens() {
    let server = start_with(ServerClock::Manual, |_| {}).await;
    let client = server.client();
    let (_, first) = licensed(&server, &client).await;
    server.advance(10);
    let now = OffsetDateTime::now_utc();
    let second = client.refresh(&first.refresh_token, now).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.claims.jti, first.claims.jti);
    assert_eq!(second.claims.sub, first.claims.sub);
    assert!(second.claims.exp > first.claims.exp);
    // The new license token works.
    client
        .fetch_license(&second.access_token, now)
        .await
        .unwrap();

    // Reusing the rotated-out refresh token (past the retry window) looks
    // like theft: the server revokes the chain, both tokens stop working.
    server.advance(600);
    let e = client.refresh(&first.refresh_token, now).await.unwrap_err();
    assert_eq!(e.code(), "revoked");
    let e = client
        .refresh(&second.refresh_token, now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "revoked");
    assert!(e.to_string().contains("Authorize the device again"), "{e}");
}

#[tokio::test]
async fn a_revoked_refresh_token_is_revoked() {
    let server = start().await;
    let client = server.client();
    let (_, tokens) = licensed(&server, &client).await;
    client.revoke(&tokens.refresh_token).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let e = client
        .refresh(&tokens.refresh_token, now)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Revoked { .. }), "{e:?}");
    // The license token of the revoked chain is refused too (401).
    let e = client
        .fetch_license(&tokens.access_token, now)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Revoked { .. }), "{e:?}");
    // Revoking an unknown token succeeds (RFC 7009).
    client.revoke(&Secret::new("no-such-token")).await.unwrap();
}

#[tokio::test]
async fn the_license_document_is_verified_and_matches_the_demo_account() {
    let server = start().await;
    let client = server.client();
    let (_, tokens) = licensed(&server, &client).await;
    let now = OffsetDateTime::now_utc();
    let doc = client
        .fetch_license(&tokens.access_token, now)
        .await
        .unwrap();
    let account = &doc.claims.account;
    assert_eq!(doc.claims.iss, server.base);
    assert_eq!(doc.claims.aud, "license-console");
    assert_eq!(doc.claims.sub, tokens.claims.sub);
    assert_eq!(account.server_id, server.server_id().await);
    assert_eq!(account.organization, "Demo Store");
    assert_eq!(account.hub_server_name, "Demo Hub");
    assert_eq!(account.hub_server_url, "https://hub.demo-store.example");
    assert_eq!(account.features, ["xms"]);
    let names: Vec<&str> = account.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["Xopero ONE Business", "Microsoft 365 & Git protection"]
    );
    assert!(account.license_count() > 0);
    assert!(account.packages.iter().all(|p| p.verified));
    assert!((doc.claims.server_time - now.unix_timestamp()).abs() < 60);

    // The raw document verifies again, as the console does with its cache.
    assert_eq!(
        client.verify_document(&doc.raw, now).await.unwrap(),
        doc.claims
    );
    // The document is not a license token, nor the other way round.
    assert_eq!(
        client.verify_token(&doc.raw, now).await.unwrap_err().code(),
        "protocol"
    );
    assert_eq!(
        client
            .verify_document(tokens.access_token.expose(), now)
            .await
            .unwrap_err()
            .code(),
        "protocol"
    );
    // Seen from a clock a day behind the server's, it is not valid yet: the
    // error names the clock, with how far behind it is.
    let early = now - time::Duration::days(1);
    let e = client.verify_document(&doc.raw, early).await.unwrap_err();
    assert_eq!(e.code(), "clock");
    assert!(
        e.to_string().contains("about 23 hours behind")
            || e.to_string().contains("about 24 hours behind"),
        "{e}"
    );
    let e = client
        .verify_token(tokens.access_token.expose(), early)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "clock");
    // Past its expiry the document is refused, with a hint at the clock.
    let late = now + time::Duration::days(30);
    let e = client.verify_document(&doc.raw, late).await.unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("date and time"), "{e}");
}

/// Changes one character in the middle of the payload.
fn tamper(jws: &str) -> String {
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let payload = &mut parts[1];
    let i = payload.len() / 2;
    let c = payload.as_bytes()[i];
    let replacement = if c == b'A' { "B" } else { "A" };
    payload.replace_range(i..=i, replacement);
    parts.join(".")
}

#[tokio::test]
async fn tampered_documents_and_tokens_are_protocol_errors() {
    let server = start().await;
    let client = server.client();
    let (_, tokens) = licensed(&server, &client).await;
    let now = OffsetDateTime::now_utc();
    let doc = client
        .fetch_license(&tokens.access_token, now)
        .await
        .unwrap();

    let e = client
        .verify_document(&tamper(&doc.raw), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("bad signature"), "{e}");
    let e = client
        .verify_token(&tamper(tokens.access_token.expose()), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "protocol");
    assert!(e.to_string().contains("bad signature"), "{e}");
    let e = client.verify_document("not.a.jws", now).await.unwrap_err();
    assert_eq!(e.code(), "protocol");
}

#[tokio::test]
async fn a_cached_document_verifies_offline_with_the_cached_jwks() {
    let mut server = start().await;
    let client = server.client();
    let (_, tokens) = licensed(&server, &client).await;
    let now = OffsetDateTime::now_utc();
    let doc = client
        .fetch_license(&tokens.access_token, now)
        .await
        .unwrap();
    let jwks = client.jwks().await.unwrap();
    server.stopped().await;

    // A fresh console start: JWKS restored from the console's own cache.
    let restarted = server.client();
    restarted.set_cached_jwks(jwks.clone());
    assert_eq!(restarted.cached_jwks(), Some(jwks));
    assert_eq!(
        restarted.verify_document(&doc.raw, now).await.unwrap(),
        doc.claims
    );
    assert_eq!(
        restarted
            .verify_token(tokens.access_token.expose(), now)
            .await
            .unwrap(),
        tokens.claims
    );
    // Without a cached JWKS it has to ask the server, which is down.
    let e = server
        .client()
        .verify_document(&doc.raw, now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "offline");
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once() {
    let server = start_with(ServerClock::Manual, |_| {}).await;
    let client = server.client();
    let (_, tokens) = licensed(&server, &client).await;
    let old = client.cached_jwks().unwrap();
    assert_eq!(old.keys.len(), 1);

    let now = server.now().unix_timestamp();
    let kid = license_server::keys::rotate(&server.state.db, now)
        .await
        .unwrap();
    server
        .state
        .keys
        .reload(&server.state.db, now)
        .await
        .unwrap();
    server.advance(10);
    let fresh = client
        .refresh(&tokens.refresh_token, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let header = license_core::token::decode_header(fresh.access_token.expose()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let cached = client.cached_jwks().unwrap();
    assert!(cached.find(&kid).is_some());
    assert!(cached.keys.len() > old.keys.len());
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_token_text() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("license_client=trace"))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start().await;
    let client = server.client();
    let (auth, tokens) = licensed(&server, &client).await;
    let now = OffsetDateTime::now_utc();
    let refreshed = client.refresh(&tokens.refresh_token, now).await.unwrap();
    client
        .fetch_license(&refreshed.access_token, now)
        .await
        .unwrap();
    client.revoke(&refreshed.refresh_token).await.unwrap();
    let _ = client.refresh(&refreshed.refresh_token, now).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("device authorization granted"), "{logs}");
    for secret in [
        &auth.device_code,
        &tokens.access_token,
        &tokens.refresh_token,
        &refreshed.access_token,
        &refreshed.refresh_token,
    ] {
        assert!(
            !logs.contains(secret.expose()),
            "a secret leaked into:\n{logs}"
        );
    }
}
