//! Interoperability: an OAuth client we did not write (the `oauth2` crate)
//! completes the device flow and a refresh against the server.

mod common;

use std::time::Duration;

use common::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, RefreshToken, StandardDeviceAuthorizationResponse,
    TokenResponse, TokenUrl,
};

#[tokio::test]
async fn oauth2_crate_completes_device_flow_and_refresh() {
    let server = start().await;
    let client = BasicClient::new(ClientId::new("license-console".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(server.url("/oauth/device_authorization")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).unwrap());
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(details.verification_uri().as_str(), server.url("/device"));
    assert_eq!(details.interval(), Duration::from_secs(5));

    let admin = browser();
    sign_in(&server, &admin).await;
    decide_on_page(
        &server,
        &admin,
        "Store 001 POS Server",
        details.user_code().secret(),
        "authorize",
    )
    .await;

    // The crate polls; the approval is already there.
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http, |_| async {}, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(token.expires_in(), Some(Duration::from_secs(259_200)));
    let access = token.access_token().secret().clone();
    assert_eq!(fetch_license(&server, &access).await.status(), 200);

    server.advance(3600);
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(
            token.refresh_token().unwrap().secret().clone(),
        ))
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(refreshed.access_token().secret(), &access);
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );
    assert_eq!(
        fetch_license(&server, refreshed.access_token().secret())
            .await
            .status(),
        200
    );

    // The crate understands our errors.
    let err = client
        .exchange_refresh_token(&RefreshToken::new("garbage".into()))
        .request_async(&http)
        .await
        .unwrap_err();
    match err {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(r.error().as_ref(), "invalid_grant");
        }
        other => panic!("unexpected {other:?}"),
    }
}
