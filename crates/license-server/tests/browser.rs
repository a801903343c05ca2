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

#[tokio::test]
async fn authorize_device_in_chromium() {
    let driver_bin = "/usr/bin/chromedriver";
    if !std::path::Path::new(driver_bin).exists() {
        // A developer without Chromium may skip it; CI, set up by
        // scripts/setup.sh, must run it.
        assert!(
            std::env::var_os("CI").is_none(),
            "{driver_bin} is missing: scripts/setup.sh installs chromium-driver"
        );
        eprintln!("skipped: {driver_bin} not installed");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = start().await;
    let auth = start_device_authorization(&server).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
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
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    }))
    .unwrap();
    let mut connected = None;
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
            Ok(Ok(c)) => {
                connected = Some(c);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = connected.expect("chromedriver session");

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

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
        std::fs::create_dir_all(&dir).unwrap();
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
