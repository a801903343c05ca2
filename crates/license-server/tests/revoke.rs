//! `/oauth/revoke` accepts only live tokens (issue 13, item 5): a license
//! token that expired long ago, seen in an old log or on the wire, no longer
//! takes a customer's license away.

mod common;

use common::*;

#[tokio::test]
async fn an_expired_license_token_revokes_nothing() {
    let server = start().await;
    let tokens = license_device(&server, "Store 001 POS Server").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Four days on, the 3-day license token has expired.
    server.advance(4 * 86_400);
    let r = api()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", access.as_str()), ("client_id", "license-console")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "RFC 7009: answered as for an unknown token"
    );
    let (status, body) = refresh(&server, &refresh_token).await;
    assert_eq!(status, 200, "the license is still there: {body}");

    // A live one still revokes.
    let live = body["access_token"].as_str().unwrap();
    let r = api()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", live), ("client_id", "license-console")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let next = body["refresh_token"].as_str().unwrap();
    let (status, _) = refresh(&server, next).await;
    assert_eq!(status, 400, "revoked");
}
