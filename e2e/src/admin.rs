//! The license server's admin pages in headless Chromium (chromedriver from
//! Debian's `chromium-driver`), signed in as an organization admin of the
//! demo organization: what the copy tests and the offline activation test
//! do there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fantoccini::Locator;

use crate::{artifacts_dir, binary, free_port, step, Guarded, LicenseServer, STEP};

/// The admin pages in headless Chromium (chromedriver), signed in as an
/// organization admin of the demo organization added for the purpose.
pub struct Admin {
    client: fantoccini::Client,
    driver: Guarded,
    base: String,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("base", &self.base).finish()
    }
}

/// chromedriver, if installed (scripts/setup.sh installs chromium-driver).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Admin {
    /// Adds an org admin of "Demo Store" to `server`'s database and signs
    /// in with Chromium; `None` when chromedriver is missing.
    pub async fn sign_in(server: &LicenseServer) -> Result<Option<Admin>> {
        if !Path::new(CHROMEDRIVER).exists() {
            return Ok(None);
        }
        let email = "e2e-admin@demo-store.example";
        let password = "e2e-admin-password-1";
        let out = Command::new(binary("license-server")?)
            .args(["user", "add", "--db"])
            .arg(&server.db)
            .args([
                "--email",
                email,
                "--role",
                "org-admin",
                "--org",
                "Demo Store",
            ])
            .args(["--password", password])
            .output()
            .context("run license-server user add")?;
        if !out.status.success() {
            bail!(
                "user add failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port()?;
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let driver = Guarded::spawn("chromedriver", &mut command)?;
        let profile = tempfile::tempdir()?;
        let caps: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--window-size=1100,900",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }))?;
        let url = format!("http://127.0.0.1:{port}");
        let client = step("start Chromium", Duration::from_secs(60), async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let http = hyper_util::client::legacy::connect::HttpConnector::new();
                match fantoccini::ClientBuilder::new(http)
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(c) => return Ok(c),
                    Err(_) if attempt < 100 => tokio::time::sleep(Duration::from_millis(200)).await,
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await?;
        let admin = Admin {
            client,
            driver,
            base: server.url.clone(),
            _profile: profile,
        };
        let c = &admin.client;
        step("sign in to the admin pages", STEP, async {
            use fantoccini::Locator;
            c.goto(&format!("{}/admin/login", admin.base)).await?;
            c.wait()
                .for_element(Locator::Css("#email"))
                .await?
                .send_keys(email)
                .await?;
            c.find(Locator::Css("#password"))
                .await?
                .send_keys(password)
                .await?;
            c.find(Locator::Css(
                "form[action='/admin/login'] button, form[action='/admin/login'] [type=submit]",
            ))
            .await?
            .click()
            .await?;
            // Signed in: the login form is gone.
            for _ in 0..100 {
                if !c.current_url().await?.path().ends_with("/admin/login") {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bail!("still on the login page after signing in")
        })
        .await?;
        Ok(Some(admin))
    }

    /// Chooses "When a copy is noticed" on the Devices page and saves.
    pub async fn set_on_copy(&self, value: &str) -> Result<()> {
        let c = &self.client;
        step("set the organization's on-copy setting", STEP, async {
            use fantoccini::Locator;
            c.goto(&format!("{}/admin/devices", self.base)).await?;
            let select = c.wait().for_element(Locator::Css("#on_copy")).await?;
            select.select_by_value(value).await?;
            c.find(Locator::Css("form[action='/admin/devices/on-copy'] button"))
                .await?
                .click()
                .await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.goto(&format!("{}/admin/devices", self.base)).await?;
            let now = c
                .wait()
                .for_element(Locator::Css("#on_copy"))
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(
                now == value,
                "the setting reads {now:?} after saving {value:?}"
            );
            Ok(())
        })
        .await
    }

    /// The text of the Devices page's table.
    pub async fn devices_text(&self) -> Result<String> {
        let c = &self.client;
        step("read the Devices page", STEP, async {
            use fantoccini::Locator;
            c.goto(&format!("{}/admin/devices", self.base)).await?;
            Ok(c.wait()
                .for_element(Locator::Css("#devices"))
                .await?
                .text()
                .await?)
        })
        .await
    }

    /// Saves a screenshot of the current page as `target/e2e/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let path = artifacts_dir()?.join(format!("{name}.png"));
        let png = step("screenshot the admin page", STEP, async {
            Ok(self.client.screenshot().await?)
        })
        .await?;
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Closes Chromium and chromedriver.
    pub async fn close(mut self) {
        let _ = step("close Chromium", STEP, async {
            Ok(self.client.clone().close().await?)
        })
        .await;
        self.driver.kill();
    }
}

impl Admin {
    /// Answers an activation request on the Offline activation page,
    /// choosing the request file the console saved in the page's file field,
    /// for `device` (registering it when `register`), and returns the
    /// response's text as the page shows it; `screenshot` names a picture
    /// of the filled form.
    pub async fn answer_activation_request(
        &self,
        request_file: &Path,
        device: &str,
        register: bool,
        screenshot: Option<&str>,
    ) -> Result<String> {
        let c = &self.client;
        step("answer the activation request", STEP, async {
            c.goto(&format!("{}/admin/offline", self.base)).await?;
            choose_file(c, "#request_file", request_file).await?;
            let select = c.find(Locator::Css("#device")).await?;
            if register {
                select.select_by_value("new").await?;
                c.find(Locator::Css("#new_device_name"))
                    .await?
                    .send_keys(device)
                    .await?;
            } else {
                select.select_by_label(device).await?;
            }
            if let Some(name) = screenshot {
                self.screenshot(name).await?;
            }
            c.find(Locator::Css("#create-response"))
                .await?
                .click()
                .await?;
            let response = c
                .wait()
                .for_element(Locator::Css("#activation-response"))
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            anyhow::ensure!(
                response.contains("license-activation-response/1"),
                "the page shows an activation response: {response:.200}"
            );
            Ok(response)
        })
        .await
    }

    /// Uploads a deactivation file on the Offline activation page and
    /// returns the heading of the page that answers.
    pub async fn upload_deactivation(&self, file: &Path) -> Result<String> {
        let c = &self.client;
        step("upload the deactivation file", STEP, async {
            c.goto(&format!("{}/admin/offline", self.base)).await?;
            choose_file(c, "#file_upload", file).await?;
            c.find(Locator::Css("#deactivate-device"))
                .await?
                .click()
                .await?;
            // The page that answers: a message page, or this page again
            // with the reason the file was refused.
            loop {
                if let Ok(heading) = c.find(Locator::Css("h1")).await {
                    if let Ok(text) = heading.text().await {
                        if text != "Offline activation" {
                            return Ok(text);
                        }
                    }
                }
                if let Ok(error) = c.find(Locator::Css("#deactivate-error")).await {
                    if let Ok(text) = error.text().await {
                        return Ok(text);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
    }

    /// Text of the element `css` of the current page.
    pub async fn text(&self, css: &str) -> Result<String> {
        step(&format!("read `{css}` on the admin page"), STEP, async {
            Ok(self
                .client
                .wait()
                .for_element(Locator::Css(css))
                .await?
                .text()
                .await?)
        })
        .await
    }
}

/// Chooses `file` in the file field `css`, as the file dialog would.
async fn choose_file(c: &fantoccini::Client, css: &str, file: &Path) -> Result<()> {
    let path = file
        .canonicalize()
        .with_context(|| format!("{} exists", file.display()))?;
    c.wait()
        .for_element(Locator::Css(css))
        .await?
        .send_keys(&path.display().to_string())
        .await?;
    Ok(())
}
