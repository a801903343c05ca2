//! Attacks on the admin pages and the device flow that once worked, each a
//! test that failed before its fix (issue 12, "Admin pages hardened").

mod common;

use common::*;
use serde_json::Value;

const HOSTILE: &str = "x');document.title='PWNED';('";

async fn page(server: &TestServer, client: &reqwest::Client, path: &str) -> reqwest::Response {
    client.get(server.url(path)).send().await.unwrap()
}

async fn register_device(server: &TestServer, client: &reqwest::Client, name: &str) {
    let html = page(server, client, "/admin/devices")
        .await
        .text()
        .await
        .unwrap();
    let r = client
        .post(server.url("/admin/devices"))
        .form(&[("csrf", hidden(&html, "csrf").as_str()), ("name", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "device {name:?} registered");
}

/// A device named to break out of `confirm('Revoke the license of …')` ran
/// its script: the page had an inline handler and the CSP allowed inline
/// scripts. Now no page has an inline script or handler, and the CSP forbids
/// both.
#[tokio::test]
async fn no_page_runs_inline_script_whatever_a_name_holds() {
    let server = start().await;
    let client = browser();
    sign_in(&server, &client).await;
    register_device(&server, &client, HOSTILE).await;
    let device = server
        .state
        .db
        .device_by_name(1, HOSTILE)
        .await
        .unwrap()
        .unwrap();
    let revoke_page = format!("/admin/devices/{}/revoke", device.id);
    for path in [
        "/admin/devices",
        "/admin/packages",
        "/admin/orgs",
        "/admin/audit",
        "/device",
        revoke_page.as_str(),
    ] {
        let r = page(&server, &client, path).await;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let html = r.text().await.unwrap();
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"));
        assert!(
            script_src.is_none_or(|d| !d.contains("unsafe-inline")),
            "{path}: scripts may be inline: {csp}"
        );
        assert!(
            csp.contains("default-src 'none'"),
            "{path}: scripts fall back to default-src 'none': {csp}"
        );
        let lower = html.to_ascii_lowercase();
        for inline in [
            "<script",
            " onsubmit=",
            " onclick=",
            " onload=",
            "javascript:",
        ] {
            assert!(!lower.contains(inline), "{path} holds {inline}:\n{html}");
        }
        assert!(!html.contains(HOSTILE), "{path} shows the name unescaped");
    }
    // Revoking asks first, on a page of its own that names the device.
    let confirm = page(&server, &client, &revoke_page)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        confirm.contains("Revoke the license of")
            && confirm.contains("x&#39;);document.title=&#39;PWNED&#39;;(&#39;")
                | confirm.contains("x&#x27;);document.title=&#x27;PWNED&#x27;;(&#x27;"),
        "{confirm}"
    );
    let r = client
        .post(server.url(&revoke_page))
        .form(&[("csrf", hidden(&confirm, "csrf").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the confirmation page's form revokes");
}

/// `next=/<TAB>/evil.example` answered `Location: /\t/evil.example`, which
/// browsers read as `//evil.example`. Only a plain path of this site is
/// followed now; anything else goes to `/admin`.
#[tokio::test]
async fn sign_in_follows_only_a_path_of_this_site() {
    let server = start().await;
    for (next, expected) in [
        ("/\t/evil.example", "/admin"),
        ("/\n/evil.example", "/admin"),
        ("//evil.example", "/admin"),
        ("/\\evil.example", "/admin"),
        ("\\/evil.example", "/admin"),
        ("https://evil.example/admin", "/admin"),
        ("javascript:alert(1)", "/admin"),
        (" /admin/packages", "/admin"),
        ("/admin/ packages", "/admin"),
        ("/admin/packages\u{7f}", "/admin"),
        ("/admin/packages", "/admin/packages"),
        ("/admin/devices?x=1", "/admin/devices?x=1"),
    ] {
        let client = browser();
        let html = page(&server, &client, "/admin/login")
            .await
            .text()
            .await
            .unwrap();
        let r = client
            .post(server.url("/admin/login"))
            .form(&[
                ("csrf", hidden(&html, "csrf").as_str()),
                ("email", license_server::demo::DEMO_ADMIN),
                ("password", server.admin_password.as_str()),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        let location = r.headers()["location"].to_str().unwrap();
        assert_eq!(location, expected, "next={next:?}");
    }
}

/// A device approved and then revoked by the admin still received a token
/// pair when its console polled. The device-code grant now refuses it.
#[tokio::test]
async fn a_device_revoked_before_its_console_polls_gets_no_tokens() {
    let server = start().await;
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
    let device = server
        .state
        .db
        .device_by_name(1, "Store 001 POS Server")
        .await
        .unwrap()
        .unwrap();
    let html = page(&server, &client, "/admin/devices")
        .await
        .text()
        .await
        .unwrap();
    let r = client
        .post(server.url(&format!("/admin/devices/{}/revoke", device.id)))
        .form(&[("csrf", hidden(&html, "csrf").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let (status, body) = poll(&server, &auth.device_code).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(
        body["error"].as_str(),
        Some("access_denied"),
        "the console is told it was refused: {body}"
    );
    let _: &Value = &body;
}

/// `POST /oauth/device_authorization` had no limit: thousands of rows a
/// second from one address, each kept a day. Now an address may start a
/// bounded number per 15 minutes (429 with `Retry-After` beyond it), and
/// expired codes are purged minutes after they expire.
#[tokio::test]
async fn device_authorizations_are_bounded_per_address_and_purged() {
    let server = start_with(|c| c.device_authorizations_per_address = 5).await;
    for _ in 0..5 {
        start_device_authorization(&server).await;
    }
    let r = api()
        .post(server.url("/oauth/device_authorization"))
        .form(&[("client_id", "license-console")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests", "{body}");
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM device_codes")
            .fetch_one(&server.raw_db().await)
            .await
            .unwrap()
    };
    assert_eq!(rows().await, 5, "the refused request stored nothing");

    // After the window the address may start again; the expired codes are
    // gone within minutes of their expiry, not a day.
    server.advance(900 + 301);
    start_device_authorization(&server).await;
    server
        .state
        .db
        .purge_expired(server.state.now())
        .await
        .unwrap();
    assert_eq!(rows().await, 1, "only the live code is left");
}

/// Opens the sign-in form and signs in as the demo admin with `password`
/// through `client`, from `forwarded_for` when given.
async fn post_sign_in(
    server: &TestServer,
    client: &reqwest::Client,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let csrf = login_csrf(server, client).await;
    let mut request = client.post(server.url("/admin/login")).form(&[
        ("csrf", csrf.as_str()),
        ("email", license_server::demo::DEMO_ADMIN),
        ("password", password),
        ("next", "/admin"),
    ]);
    if let Some(addr) = forwarded_for {
        request = request.header("x-forwarded-for", addr);
    }
    request.send().await.unwrap()
}

async fn login_csrf(server: &TestServer, client: &reqwest::Client) -> String {
    hidden(
        &page(server, client, "/admin/login")
            .await
            .text()
            .await
            .unwrap(),
        "csrf",
    )
}

/// 300 concurrent wrong sign-ins sharing one form ran argon2 71 times
/// (the limit is 5 per account): the failures were counted after hashing.
/// Now each attempt is counted first, and password checks run one at a time
/// per core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_sign_ins_check_no_more_passwords_than_the_limits() {
    let server = start().await;
    // One sign-in form: its CSRF token and the cookie that goes with it,
    // sent by hand with every attempt.
    let form = api().get(server.url("/admin/login")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = hidden(&form.text().await.unwrap(), "csrf");
    let client = api();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let client = client.clone();
        let csrf = csrf.clone();
        let cookie = cookie.clone();
        let url = server.url("/admin/login");
        tasks.spawn(async move {
            client
                .post(url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", license_server::demo::DEMO_ADMIN),
                    ("password", "wrong password"),
                    ("next", "/admin"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = tasks.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    let gate = &server.state.limits.passwords;
    let runs = gate.runs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        runs <= 5,
        "{runs} password checks for 5 allowed attempts: {statuses:?}"
    );
    assert_eq!(statuses.get(&401), Some(&(runs as i32)), "{statuses:?}");
    assert_eq!(
        statuses.get(&429),
        Some(&(300 - runs as i32)),
        "{statuses:?}"
    );
    let most = gate.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        most <= gate.size(),
        "{most} checks at once on {} cores",
        gate.size()
    );
}

/// Five wrong guesses locked the real admin out for 15 minutes. Now the
/// account backs off exponentially, never for more than a minute.
#[tokio::test]
async fn a_guessed_account_opens_again_within_a_minute() {
    let server = start().await;
    let client = browser();
    for _ in 0..5 {
        let r = post_sign_in(&server, &client, "wrong password", None).await;
        assert_eq!(r.status(), 401);
    }
    let good = server.admin_password.clone();
    let r = post_sign_in(&server, &client, &good, None).await;
    assert_eq!(r.status(), 429, "backing off");
    assert!(r.text().await.unwrap().contains("seconds"));
    server.advance(61);
    let r = post_sign_in(&server, &client, &good, None).await;
    assert_eq!(r.status(), 303, "the real admin is in within a minute");
}

/// 20 wrong sign-ins, each for another unknown account (clear of the
/// per-account backoff), the `i`-th sent with `X-Forwarded-For: forwarded(i)`.
async fn fail_sign_ins(
    server: &TestServer,
    client: &reqwest::Client,
    forwarded: impl Fn(usize) -> String,
) {
    for i in 0..20 {
        let csrf = login_csrf(server, client).await;
        let r = client
            .post(server.url("/admin/login"))
            .header("x-forwarded-for", forwarded(i))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", format!("nobody{i}@example.com").as_str()),
                ("password", "wrong"),
                ("next", "/admin"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
}

/// Behind a reverse proxy every client had the proxy's address, so one
/// client's failures locked everyone out. With `--trusted-proxy`, limits
/// apply to the address the proxy forwards; from anyone else the header
/// counts for nothing.
#[tokio::test]
async fn limits_apply_to_the_client_behind_a_trusted_proxy() {
    let server = start_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let client = browser();
    // One client fails 20 times: its address is locked.
    fail_sign_ins(&server, &client, |_| "203.0.113.7".into()).await;
    let good = server.admin_password.clone();
    let r = post_sign_in(&server, &client, &good, Some("203.0.113.7")).await;
    assert_eq!(r.status(), 429, "that client is locked");
    // Another client behind the same proxy is not.
    let r = post_sign_in(&server, &client, &good, Some("198.51.100.2")).await;
    assert_eq!(r.status(), 303, "another client signs in");

    // Without a trusted proxy the header is ignored: the peer is the client.
    let server = start().await;
    let client = browser();
    fail_sign_ins(&server, &client, |i| format!("198.51.100.{i}")).await;
    let r = post_sign_in(&server, &client, &good, Some("192.0.2.1")).await;
    assert_eq!(r.status(), 429, "a forged header does not escape the limit");
}

/// A client that sends half a request's headers and then nothing kept its
/// connection, and the server's memory for it, for ever (slowloris). Now the
/// headers must arrive within the header-read timeout.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_with(|c| c.header_read_timeout = std::time::Duration::from_secs(1)).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /admin/login HTTP/1.1\r\nHost: licenses\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the connection is still open after 5 s"
    );
    // Whole requests are served as before.
    let r = api().get(server.url("/admin/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Over https the session cookies carry the `__Host-` prefix (only Secure,
/// only this host, path `/`) and browsers are told to stay on https (HSTS).
#[tokio::test]
async fn over_https_cookies_are_host_only_and_hsts_is_sent() {
    let server = start_with(|c| c.issuer = "https://licenses.example.com".into()).await;
    let r = api().get(server.url("/admin/login")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-ls_login_csrf="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");

    let plain = start().await;
    let r = api().get(plain.url("/admin/login")).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("ls_login_csrf="), "{cookie}");
}
