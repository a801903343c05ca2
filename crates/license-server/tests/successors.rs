//! Refresh successors need the server's secret (issue 13, item 1): a refresh
//! token seen once (an old keychain backup, a log, a proxy) gives nothing
//! about the tokens that follow it.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use sha2::{Digest, Sha256};

/// The successor as anyone could compute it before: SHA-256 of a public
/// prefix and the previous token.
fn unkeyed_successor(previous: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"license-server/refresh-successor/v1\0");
    h.update(previous.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

#[tokio::test]
async fn a_past_refresh_token_does_not_give_the_live_one() {
    let server = start().await;
    let first = license_device(&server, "Store 001 POS Server").await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    server.advance(3600);
    let (status, second) = refresh(&server, &rt0).await;
    assert_eq!(status, 200, "{second}");
    let live = second["refresh_token"].as_str().unwrap();

    let predicted = unkeyed_successor(&rt0);
    assert_ne!(predicted, live, "the live token was computed from rt0");
    let (status, body) = refresh(&server, &predicted).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    // The legitimate holder goes on.
    let (status, body) = refresh(&server, live).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn rotating_the_successor_secret_breaks_no_chain_and_no_retry() {
    let server = start().await;
    let first = license_device(&server, "Store 001 POS Server").await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    server.advance(3600);
    let (status, second) = refresh(&server, &rt0).await;
    assert_eq!(status, 200, "{second}");

    let now = server.state.now();
    license_server::keys::rotate_successor_key(&server.state.db, now)
        .await
        .unwrap();
    server
        .state
        .keys
        .reload(&server.state.db, now)
        .await
        .unwrap();

    // A lost response retried after the rotation: the very same pair.
    server.advance(30);
    let (status, retried) = refresh(&server, &rt0).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["refresh_token"], second["refresh_token"]);
    // The chain goes on under the new secret.
    let rt1 = second["refresh_token"].as_str().unwrap();
    server.advance(60);
    let (status, third) = refresh(&server, rt1).await;
    assert_eq!(status, 200, "{third}");
    let rt2 = third["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, unkeyed_successor(rt1));
    server.advance(60);
    let (status, fourth) = refresh(&server, rt2).await;
    assert_eq!(status, 200, "{fourth}");
}
