//! The Authorize Device page in headless Chromium (fantoccini + chromedriver).
//! Skips (with a message) when chromedriver is not installed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{ClientBuilder, Locator};
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(20);

/// chromedriver, killed whatever happens.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

macro_rules! step {
    ($what:expr, $fut:expr) => {
        timeout(STEP, $fut)
            .await
            .unwrap_or_else(|_| panic!("timed out: {}", $what))
            .unwrap_or_else(|e| panic!("{}: {e:?}", $what))
    };
}

/// A headless Chromium session `width` pixels wide, or `None` (with a
/// message) when chromedriver is missing outside CI.
async fn chromium(width: u32) -> Option<(Driver, fantoccini::Client, tempfile::TempDir)> {
    let driver_bin = "/usr/bin/chromedriver";
    if !std::path::Path::new(driver_bin).exists() {
        // A developer without Chromium may skip it; CI, set up by
        // scripts/setup.sh, must run it.
        assert!(
            std::env::var_os("CI").is_none(),
            "{driver_bin} is missing: scripts/setup.sh installs chromium-driver"
        );
        eprintln!("skipped: {driver_bin} not installed");
        return None;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                format!("--window-size={width},900"),
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    }))
    .unwrap();
    for _ in 0..50 {
        match timeout(
            STEP,
            ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        {
            Ok(Ok(c)) => return Some((driver, c, profile)),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("no chromedriver session");
}

/// Where screenshots go.
fn shots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn authorize_device_in_chromium() {
    let server = start().await;
    let auth = start_device_authorization(&server).await;
    let Some((_driver, c, _profile)) = chromium(1280).await else {
        return;
    };

    let result = async {
        // The verification URI, not signed in: the login page, then back.
        step!(
            "open verification uri",
            c.goto(&server.url(&format!("/device?user_code={}", auth.user_code)))
        );
        step!(
            "email",
            step!("find email", c.find(Locator::Id("email"))).send_keys("admin@demo-store.example")
        );
        step!(
            "password",
            step!("find password", c.find(Locator::Id("password")))
                .send_keys(&server.admin_password)
        );
        step!(
            "sign in",
            step!("find sign in", c.find(Locator::Id("sign-in"))).click()
        );
        let code_field = step!(
            "user code field",
            c.wait().at_most(STEP).for_element(Locator::Id("user_code"))
        );
        let prefilled = step!("prefilled", code_field.prop("value")).unwrap_or_default();
        assert_eq!(prefilled, auth.user_code, "prefilled from ?user_code=");
        // Choose the device from the drop-down.
        let select = step!("device select", c.find(Locator::Id("device")));
        step!(
            "choose device",
            select.select_by_label("Store 002 POS Server")
        );

        let dir = shots();
        let png = step!("screenshot", c.screenshot());
        std::fs::write(dir.join("authorize-device.png"), png).unwrap();

        step!(
            "next",
            step!("find next", c.find(Locator::Id("next"))).click()
        );
        let confirm = step!(
            "confirmation",
            c.wait().at_most(STEP).for_element(Locator::Id("confirm"))
        );
        let text = step!("confirm text", confirm.text());
        assert!(
            text.contains("Store 002 POS Server") && text.contains("Demo Store"),
            "{text}"
        );
        let png = step!("screenshot confirm", c.screenshot());
        std::fs::write(dir.join("authorize-device-confirm.png"), png).unwrap();

        step!(
            "authorize",
            step!("find authorize", c.find(Locator::Id("authorize"))).click()
        );
        let done = step!(
            "result",
            c.wait().at_most(STEP).for_element(Locator::Id("result"))
        );
        let text = step!("result text", done.text());
        assert!(text.contains("Device authorized"), "{text}");
    }
    .await;
    let _ = timeout(STEP, c.close()).await;
    let _: () = result;

    let (status, body) = poll(&server, &auth.device_code).await;
    assert_eq!(status, 200, "{body}");
}

/// Names an attacker may give a device, an organization, a package or an
/// assigned license: each must show as text and run nothing.
const HOSTILE: &[&str] = &[
    "x');window.pwned=1;('",
    "</script><script>window.pwned=1</script>",
    "\"><img src=x onerror=\"window.pwned=1\">",
    "javascript:window.pwned=1",
];

/// Whether any of [`HOSTILE`] ran on the page shown.
async fn pwned(c: &fantoccini::Client) -> bool {
    let ran = step!(
        "check for scripts",
        c.execute("return window.pwned !== undefined", vec![])
    );
    ran != serde_json::json!(false)
}

/// A long name without spaces in several scripts, which must not widen a
/// page past 800 px.
fn long_unicode() -> String {
    "Zażółć-Ωμέγα-東京-🙂".repeat(4)
}

/// Every admin page, signed in as the vendor operator (who sees them all)
/// at 800 px wide, with hostile names everywhere: no script runs, every name
/// shows as text, nothing is wider than the window, and revoking the device
/// with the worst name still works.
#[tokio::test]
async fn hostile_names_run_nothing_and_pages_fit_800px() {
    let server = start().await;
    let db = &server.state.db;
    let now = server.state.now();
    let mut names: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    names.push(long_unicode());
    let mut devices = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let d = db
            .create_device(1, name, &format!("SRV-HOSTILE{i:09}"), now)
            .await
            .unwrap();
        devices.push(d.id);
    }
    let package = db
        .create_package(1, &names[1], now, now + 86_400)
        .await
        .unwrap();
    for name in &names {
        db.add_assignment(package, &license_core::model::LicenseKind::Endpoint, name)
            .await
            .unwrap();
    }
    // An organization named like an attack, beside Demo Store.
    let mut hostile_org = db.org(1).await.unwrap().unwrap().input();
    hostile_org.name = names[0].clone();
    db.create_org(&hostile_org, now).await.unwrap();
    let mut account = db.org(1).await.unwrap().unwrap().input();
    account.hub_server_name = names[2].clone();
    account.features = vec![names[0].clone(), long_unicode()];
    db.update_org(1, &account).await.unwrap();
    let auth = start_device_authorization(&server).await;

    let Some((_driver, c, _profile)) = chromium(800).await else {
        return;
    };
    let result = async {
        step!("open sign-in", c.goto(&server.url("/admin/login")));
        step!(
            "email",
            step!("find email", c.find(Locator::Id("email")))
                .send_keys(license_server::demo::DEMO_VENDOR)
        );
        step!(
            "password",
            step!("find password", c.find(Locator::Id("password")))
                .send_keys(&server.vendor_password)
        );
        step!(
            "sign in",
            step!("find sign in", c.find(Locator::Id("sign-in"))).click()
        );
        step!(
            "signed in",
            c.wait().at_most(STEP).for_element(Locator::Css("nav.main"))
        );
        // Two organizations: the vendor operator chooses Demo Store.
        step!(
            "manage Demo Store",
            step!(
                "find Demo Store",
                c.find(Locator::XPath(
                    "//input[@name='org_id' and @value='1']/following-sibling::button"
                ))
            )
            .click()
        );
        step!(
            "working in Demo Store",
            c.wait().at_most(STEP).for_element(Locator::Id("devices"))
        );
        let pages = [
            "/admin/orgs".to_owned(),
            "/admin/devices".to_owned(),
            format!("/admin/devices/{}/revoke", devices[0]),
            format!("/device?user_code={}", auth.user_code),
            "/admin/packages".to_owned(),
            format!("/admin/packages/{package}"),
            "/admin/audit".to_owned(),
            "/admin/users".to_owned(),
            "/admin/password".to_owned(),
            "/admin/api-tokens".to_owned(),
            "/admin/keys".to_owned(),
            "/admin/offline".to_owned(),
        ];
        for page in &pages {
            step!("open page", c.goto(&server.url(page)));
            assert!(!pwned(&c).await, "{page}: a script ran");
            let body = step!(
                "body",
                step!("find body", c.find(Locator::Css("body"))).text()
            );
            let fits = step!(
                "width",
                c.execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth",
                    vec![]
                )
            );
            assert_eq!(fits, serde_json::json!(true), "{page} is wider than 800 px");
            if page == "/admin/orgs" {
                assert!(
                    body.contains(names[0].as_str()),
                    "{page} does not show the organization"
                );
            }
            if page == "/admin/devices" || page.starts_with("/admin/packages/") {
                for name in &names {
                    assert!(
                        body.contains(name.as_str()),
                        "{page} does not show {name:?}"
                    );
                }
            }
            let file = format!(
                "admin-800px{}.png",
                page.split('?').next().unwrap().replace('/', "-")
            );
            std::fs::write(shots().join(file), step!("screenshot", c.screenshot())).unwrap();
        }
        // The revoke confirmation of the device with the quote-breaking name
        // works: no inline handler, a plain form.
        step!(
            "open revoke",
            c.goto(&server.url(&format!("/admin/devices/{}/revoke", devices[0])))
        );
        let text = step!(
            "confirm text",
            step!("find main", c.find(Locator::Css("main"))).text()
        );
        assert!(text.contains(HOSTILE[0]), "{text}");
        step!(
            "revoke",
            step!(
                "find revoke",
                c.find(Locator::Css("button[type=submit].danger"))
            )
            .click()
        );
        step!(
            "devices again",
            c.wait().at_most(STEP).for_element(Locator::Id("devices"))
        );
        assert!(!pwned(&c).await, "a script ran after revoking");
    }
    .await;
    let _ = timeout(STEP, c.close()).await;
    let _: () = result;
    let revoked = db.device(devices[0]).await.unwrap().unwrap();
    assert!(
        revoked.revoked_at.is_some(),
        "the hostile-named device was revoked"
    );
}

/// The screens of users and roles, as each role sees them: an invitation
/// created and its link opened, the organization admin's read-only license
/// packages and users page. Screenshots in target/e2e/.
#[tokio::test]
async fn invitations_and_the_organization_admins_view_in_chromium() {
    let server = start().await;
    let Some((_driver, c, _profile)) = chromium(1280).await else {
        return;
    };
    let sign_in = |email: &'static str, password: String| {
        let c = c.clone();
        let url = server.url("/admin/login");
        async move {
            step!("open sign-in", c.goto(&url));
            step!(
                "email",
                step!("find email", c.find(Locator::Id("email"))).send_keys(email)
            );
            step!(
                "password",
                step!("find password", c.find(Locator::Id("password"))).send_keys(&password)
            );
            step!(
                "sign in",
                step!("find sign in", c.find(Locator::Id("sign-in"))).click()
            );
            step!(
                "signed in",
                c.wait().at_most(STEP).for_element(Locator::Css("nav.main"))
            );
        }
    };
    let shot = |name: &'static str| {
        let c = c.clone();
        async move {
            std::fs::write(shots().join(name), step!("screenshot", c.screenshot())).unwrap();
        }
    };
    let result = async {
        sign_in(
            license_server::demo::DEMO_VENDOR,
            server.vendor_password.clone(),
        )
        .await;
        step!("users", c.goto(&server.url("/admin/users")));
        step!(
            "invitee",
            step!("find email", c.find(Locator::Id("email")))
                .send_keys("new.admin@demo-store.example")
        );
        step!(
            "invite",
            step!(
                "find invite",
                c.find(Locator::Css("form[action='/admin/users/invite'] button"))
            )
            .click()
        );
        let link = step!(
            "link",
            c.wait().at_most(STEP).for_element(Locator::Id("link"))
        );
        let link = step!("link value", link.prop("value")).expect("the link");
        shot("admin-invitation-created.png").await;
        // Signing keys: rotated on the page, the old key's withdrawal asked.
        let first_kid = server.state.keys.ring().current_kid.clone();
        step!("keys", c.goto(&server.url("/admin/keys")));
        step!(
            "rotate",
            step!("find rotate", c.find(Locator::Id("rotate"))).click()
        );
        step!(
            "keys again",
            c.wait()
                .at_most(STEP)
                .for_element(Locator::Id("successor-keys"))
        );
        let keys = step!(
            "keys text",
            step!("find keys", c.find(Locator::Id("keys"))).text()
        );
        assert!(
            keys.contains("Retired") && keys.contains("Signing"),
            "{keys}"
        );
        shot("admin-keys.png").await;
        step!(
            "withdraw",
            c.goto(&server.url(&format!("/admin/keys/{first_kid}/withdraw")))
        );
        step!(
            "confirm",
            c.wait()
                .at_most(STEP)
                .for_element(Locator::Id("confirm-key"))
        );
        shot("admin-key-withdraw.png").await;
        step!(
            "sign out",
            step!("find sign out", c.find(Locator::Css(".who button"))).click()
        );
        step!("open the link", c.goto(&link));
        step!(
            "invitation",
            c.wait()
                .at_most(STEP)
                .for_element(Locator::Id("invitation"))
        );
        shot("admin-invitation-accept.png").await;
        sign_in(
            license_server::demo::DEMO_ADMIN,
            server.admin_password.clone(),
        )
        .await;
        step!("packages", c.goto(&server.url("/admin/packages")));
        step!(
            "read-only",
            c.wait().at_most(STEP).for_element(Locator::Id("read-only"))
        );
        shot("admin-org-admin-packages-read-only.png").await;
        step!("users", c.goto(&server.url("/admin/users")));
        step!(
            "users table",
            c.wait().at_most(STEP).for_element(Locator::Id("users"))
        );
        shot("admin-org-admin-users.png").await;
    }
    .await;
    let _ = timeout(STEP, c.close()).await;
    let _: () = result;
}
