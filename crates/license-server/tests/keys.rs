//! Signing keys withdrawn (`keys withdraw`): out of the JWKS at once, what
//! they signed refused at the next key reload, consoles moved to the current
//! key by a refresh; private keys of retired keys erased once nothing needs
//! them.

mod common;

use common::*;
use license_core::token::decode_header;
use license_server::{demo, keys};

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: serde_json::Value = api()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_withdrawn_key_signs_nothing_that_verifies() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    let old_kid = decode_header(access).unwrap().kid.unwrap();
    assert_eq!(
        fetch_license(&server, access).await.status(),
        200,
        "cached as verified"
    );

    let now = server.state.now();
    let withdrawn = keys::withdraw(&server.state.db, &old_kid, now)
        .await
        .unwrap()
        .unwrap();
    let new_kid = withdrawn.new_current.expect("the signing key was replaced");
    keys::reload_keys(&server.state, now).await;

    let kids = jwks_kids(&server).await;
    assert!(!kids.contains(&old_kid), "{kids:?}");
    assert!(kids.contains(&new_kid), "{kids:?}");
    assert_eq!(
        fetch_license(&server, access).await.status(),
        401,
        "cache dropped too"
    );
    // The console's next refresh moves it to the new key.
    let (status, body) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().unwrap();
    assert_eq!(decode_header(fresh).unwrap().kid.unwrap(), new_kid);
    assert_eq!(fetch_license(&server, fresh).await.status(), 200);
    // Its private key is gone from the database.
    let row = server.state.db.keys().await.unwrap();
    let row = row.iter().find(|r| r.kid == old_kid).unwrap();
    assert!(row.secret_key.is_empty() && row.withdrawn_at.is_some());
    // Unknown keys are an error, not a silent success.
    assert!(keys::withdraw(&server.state.db, "nope", now)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn retired_private_keys_are_erased_but_stay_published_while_needed() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap();
    let old_kid = decode_header(access).unwrap().kid.unwrap();
    let now = server.state.now();
    keys::rotate(&server.state.db, now).await.unwrap();
    let erased = server
        .state
        .db
        .erase_retired_secrets(now + keys::RETIRED_SECRET_KEPT_SECS + 1)
        .await
        .unwrap();
    assert_eq!(erased, 1);
    keys::reload_keys(&server.state, now + 10).await;
    assert!(
        jwks_kids(&server).await.contains(&old_kid),
        "its tokens are still live"
    );
    assert_eq!(fetch_license(&server, access).await.status(), 200);
    let rows = server.state.db.keys().await.unwrap();
    assert!(rows
        .iter()
        .find(|r| r.kid == old_kid)
        .unwrap()
        .secret_key
        .is_empty());
}

/// A retry answered after the key that signed the lost pair was erased:
/// the same claims signed by the current key, the same refresh token. A
/// console that crashed is not locked out by a key rotation.
#[tokio::test]
async fn a_retry_outlives_the_key_that_signed_the_lost_pair() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let rt0 = tokens["refresh_token"].as_str().unwrap();
    server.advance(60);
    let (status, lost) = refresh(&server, rt0).await;
    assert_eq!(status, 200, "{lost}");
    let signed_by = decode_header(lost["access_token"].as_str().unwrap())
        .unwrap()
        .kid;
    let now = server.state.now();
    keys::withdraw(&server.state.db, signed_by.as_deref().unwrap(), now)
        .await
        .unwrap()
        .unwrap();
    keys::reload_keys(&server.state, now).await;
    server.advance(30);
    let (status, again) = refresh(&server, rt0).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["refresh_token"], lost["refresh_token"]);
    let access = again["access_token"].as_str().unwrap();
    assert_ne!(decode_header(access).unwrap().kid, signed_by);
    assert_eq!(fetch_license(&server, access).await.status(), 200);
}

/// A console that pinned key A and was away while the server rotated to B
/// and then C (A and B no longer published) follows the rotations through
/// the rollovers the JWKS carries; a withdrawn key vouches for nothing.
#[tokio::test]
async fn rollovers_let_a_console_follow_rotations_it_missed() {
    use license_core::anchor::accept_key_set;
    use license_core::jwk::JwkSet;

    let server = start().await;
    let fetch_jwks = || async {
        let body = api()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<JwkSet>(&body).unwrap()
    };
    let pinned = fetch_jwks().await;
    assert_eq!(pinned.keys.len(), 1);
    let db = &server.state.db;
    for _ in 0..2 {
        let now = server.state.now();
        keys::rotate(db, now).await.unwrap();
        keys::reload_keys(&server.state, now).await;
        server.advance(10);
    }
    // Long after: only the current key is published, with the rollovers.
    server.advance(30 * 86_400);
    keys::reload_keys(&server.state, server.state.now()).await;
    let offered = fetch_jwks().await;
    assert_eq!(offered.keys.len(), 1, "{offered:?}");
    assert_eq!(offered.rollovers.len(), 2);
    let now = license_server::Clock::now(server.clock.as_ref());
    let issuer = &server.state.config.issuer;
    let anchor = accept_key_set(issuer, &pinned, &offered, &offered.rollovers, now).unwrap();
    assert_eq!(anchor.keys, offered.keys);
    assert!(accept_key_set(issuer, &pinned, &offered, &[], now).is_err());

    // Withdrawing the first key takes its rollover out: a key believed
    // compromised vouches for nothing.
    let first = pinned.keys[0].kid.clone();
    keys::withdraw(db, &first, server.state.now())
        .await
        .unwrap()
        .unwrap();
    keys::reload_keys(&server.state, server.state.now()).await;
    let offered = fetch_jwks().await;
    assert_eq!(offered.rollovers.len(), 1);
    assert!(accept_key_set(issuer, &pinned, &offered, &offered.rollovers, now).is_err());
}

/// The *Signing keys* page (vendor operators): rotating and withdrawing
/// there does what `keys rotate|withdraw` does, takes effect on this server
/// at once (no wait for the reload), and is audited with the operator's name.
#[tokio::test]
async fn vendor_operators_rotate_and_withdraw_on_the_keys_page() {
    let server = start().await;
    let client = browser();
    sign_in_vendor(&server, &client).await;
    let first = server.state.keys.ring().current_kid.clone();
    let token = license_device(&server, "Store 001 POS Server").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = page_text(&server, &client, "/admin/keys").await;
    assert!(page.contains(&first) && page.contains("Signing"), "{page}");

    let (status, _) = post_form(&server, &client, "/admin/keys", "/admin/keys/rotate", &[]).await;
    assert_eq!(status, 303);
    let second = server.state.keys.ring().current_kid.clone();
    assert_ne!(second, first, "the page's rotation applies at once");
    assert_eq!(
        jwks_kids(&server).await,
        vec![first.clone(), second.clone()]
    );
    assert_eq!(fetch_license(&server, &token).await.status(), 200);

    let confirm = page_text(&server, &client, &format!("/admin/keys/{first}/withdraw")).await;
    assert!(confirm.contains("Withdraw signing key"), "{confirm}");
    let path = format!("/admin/keys/{first}/withdraw");
    let (status, _) = post_form(&server, &client, "/admin/keys", &path, &[]).await;
    assert_eq!(status, 303);
    assert_eq!(jwks_kids(&server).await, vec![second.clone()]);
    assert_eq!(
        fetch_license(&server, &token).await.status(),
        401,
        "a token of the withdrawn key stops working at once"
    );
    let page = page_text(&server, &client, "/admin/keys").await;
    assert!(
        page.contains("Withdrawn") && page.contains("erased"),
        "{page}"
    );
    // Withdrawn twice: not found, nothing changes.
    let (status, _) = post_form(&server, &client, "/admin/keys", &path, &[]).await;
    assert_eq!(status, 404);

    let log = server.state.db.audit_page(None, None, 100).await.unwrap();
    let by_operator = |action: &str| {
        log.iter()
            .any(|e| e.action == action && e.actor == demo::DEMO_VENDOR)
    };
    assert!(by_operator("keys.rotated") && by_operator("keys.withdrawn"));
}
