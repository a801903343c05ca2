//! The headers every response carries, set once as tower layers in `app`
//! instead of by each handler.

mod common;

use common::*;

#[tokio::test]
async fn admin_pages_carry_the_security_headers_and_every_response_nosniff() {
    let server = start().await;
    let client = browser();
    let login = client.get(server.url("/admin/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let h = login.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");

    // A redirect of the admin pages (signed out) and an error page too.
    let r = client
        .get(server.url("/admin/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    sign_in(&server, &client).await;
    let r = client
        .get(server.url("/admin/packages/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers().contains_key("content-security-policy"));

    // The API keeps its own caching, and is not sniffed either.
    let jwks = api()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.headers()["cache-control"], "max-age=300");
    assert_eq!(jwks.headers()["x-content-type-options"], "nosniff");
    assert!(!jwks.headers().contains_key("x-frame-options"));
}
