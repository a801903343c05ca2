//! Air-gapped activation by file, through the real console in its window and
//! the license server's Offline activation page in Chromium: request →
//! response → Licensed (offline) → renewal → deactivation, with a bad file
//! and a stale response refused on the way.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use e2e::admin::Admin;
use e2e::{
    binary, click, finish, parse_countdown, paste, screenshot, scroll_to, text_of, value_of,
    wait_text, Driver, LicenseServer, STEP,
};

const DEVICE: &str = "Ship 7 Server";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_renew_and_deactivate_by_file() -> Result<()> {
    let server = LicenseServer::start_demo(&[])?;
    let admin = Admin::sign_in(&server)
        .await?
        .context("chromedriver is missing: scripts/setup.sh installs chromium-driver")?;
    // The vendor's keys the console trusts without ever having been online
    // (release builds take them at build time; this debug build from a file).
    let keys_dir = tempfile::tempdir()?;
    let keys = vendor_keys_file(&server, keys_dir.path()).await?;
    let driver = Driver::start(&[
        ("LICENSE_CONSOLE_SERVER_URL", server.url.clone()),
        ("LICENSE_CONSOLE_VENDOR_KEYS", keys.display().to_string()),
    ])?;
    let client = driver.launch(&binary("license-console")?).await?;
    let result = async {
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Not licensed"
        })
        .await?;

        // 1. Save activation request: a file in Downloads, and its text.
        click(&client, "[data-testid=save-activation-request]").await?;
        let request = value_of(&client, "[data-testid=activation-request-text]").await?;
        let path = text_of(&client, "[data-testid=activation-request-path]").await?;
        let saved = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        ensure!(saved == request, "the saved file holds the text shown");
        ensure!(
            request.len() < 2000 && !request.contains('\n'),
            "the request is one short line ({} bytes)",
            request.len()
        );
        scroll_to(&client, "[data-testid=offline-activation]").await?;
        screenshot(&client, "offline-request").await?;

        // The command line refuses while the window holds the state.
        let busy = console_cli(driver.home(), &server.url, &keys, &["status"])?;
        ensure!(
            busy.status.code() == Some(3),
            "`license-console status` beside the window: {busy:?}"
        );

        // A file that is not a response is refused, and nothing changes.
        paste(
            &client,
            "[data-testid=activation-response-input]",
            "{\"format\":\"license-activation-response/1\"",
        )
        .await?;
        click(&client, "[data-testid=load-activation-response]").await?;
        let refused = text_of(&client, "[data-testid=offline-error]").await?;
        ensure!(
            refused.contains("Nothing was changed"),
            "a cut-short file is refused: {refused}"
        );
        ensure!(text_of(&client, "[data-testid=license-status]").await? == "Not licensed");

        // 2. The organization admin answers it, registering the device.
        let response = admin
            .answer_activation_request(Path::new(&path), DEVICE, true, Some("offline-admin-request"))
            .await?;
        admin.screenshot("offline-response-admin").await?;
        let until = admin.text("#offline-expiry").await?;

        // 3. Load activation response: Licensed (offline), counting down.
        paste(&client, "[data-testid=activation-response-input]", &response).await?;
        click(&client, "[data-testid=load-activation-response]").await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed (offline)"
        })
        .await?;
        ensure!(text_of(&client, "#panel-title").await? == "Demo Store");
        let left = parse_countdown(&text_of(&client, "[data-testid=offline-countdown]").await?)?;
        ensure!(
            (29 * 86_400..=30 * 86_400).contains(&left),
            "the offline license counts down from 30 days ({left} s left; the server said until {until})"
        );
        scroll_to(&client, "[data-testid=license-status]").await?;
        screenshot(&client, "offline-licensed").await?;

        // 4. Renewal: a new request, a new response for the same device.
        click(&client, "[data-testid=save-activation-request]").await?;
        let renewal = wait_value_change(&client, &request).await?;
        let renewal_path = text_of(&client, "[data-testid=activation-request-path]").await?;
        ensure!(
            std::fs::read_to_string(&renewal_path)? == renewal,
            "the renewal request is saved as {renewal_path}"
        );
        let renewed = admin
            .answer_activation_request(Path::new(&renewal_path), DEVICE, false, None)
            .await?;
        // The first response answers an older request: refused.
        paste(&client, "[data-testid=activation-response-input]", &response).await?;
        click(&client, "[data-testid=load-activation-response]").await?;
        let stale = text_of(&client, "[data-testid=offline-error]").await?;
        ensure!(
            stale.contains("Nothing was changed"),
            "the older response is refused: {stale}"
        );
        paste(&client, "[data-testid=activation-response-input]", &renewed).await?;
        click(&client, "[data-testid=load-activation-response]").await?;
        wait_text(&client, "[data-testid=activation-loaded]", STEP, |t| {
            t.contains("licensed (offline)")
        })
        .await?;
        ensure!(text_of(&client, "[data-testid=license-status]").await? == "Licensed (offline)");

        // 5. Deactivate: the console gives the license up and writes the
        // file that frees the device.
        click(&client, "[data-testid=deactivate]").await?;
        click(&client, "[data-testid=deactivate-confirm]").await?;
        let deactivation = value_of(&client, "[data-testid=deactivation-text]").await?;
        let deactivation_path = text_of(&client, "[data-testid=deactivation-path]").await?;
        ensure!(std::fs::read_to_string(&deactivation_path)? == deactivation);
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t != "Licensed (offline)"
        })
        .await?;
        scroll_to(&client, "[data-testid=deactivation]").await?;
        screenshot(&client, "offline-deactivated").await?;
        let heading = admin
            .upload_deactivation(Path::new(&deactivation_path))
            .await?;
        ensure!(
            heading.contains(&format!("Device {DEVICE} deactivated")),
            "the admin page takes the file: {heading}"
        );
        let devices = admin.devices_text().await?;
        let row = devices
            .lines()
            .find(|l| l.contains(DEVICE))
            .with_context(|| format!("{DEVICE} on the Devices page: {devices}"))?;
        ensure!(
            row.to_lowercase().contains("revoked"),
            "the device is revoked: {row}"
        );
        // The same file again changes nothing.
        let again = admin
            .upload_deactivation(Path::new(&deactivation_path))
            .await?;
        ensure!(
            again.contains("deactivated already"),
            "a used deactivation file is refused: {again}"
        );
        Ok(())
    }
    .await;
    admin.close().await;
    finish(driver, client, result).await
}

/// The same steps from the command line on both sides, for scripted sites:
/// `license-console offline request|load|deactivate` and `license-server
/// offline respond|deactivate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_and_deactivate_by_file_from_the_command_line() -> Result<()> {
    let server = LicenseServer::start_demo(&[])?;
    let home = tempfile::tempdir()?;
    let work = tempfile::tempdir()?;
    let keys = vendor_keys_file(&server, work.path()).await?;
    let file = |name: &str| work.path().join(name).display().to_string();
    let console = |args: &[&str]| console_cli(home.path(), &server.url, &keys, args);

    let status = console(&["status"])?;
    ensure!(
        status.status.code() == Some(1),
        "not licensed yet: {status:?}"
    );
    ensure!(stdout(&status).contains("Status: Not licensed"));

    let request = console(&["offline", "request", "--out", &file("request.txt")])?;
    ensure!(request.status.success(), "offline request: {request:?}");
    // A file that exists is never overwritten.
    let again = console(&["offline", "request", "--out", &file("request.txt")])?;
    ensure!(
        again.status.code() == Some(1),
        "an existing file is kept: {again:?}"
    );

    let respond = server_cli(
        &server,
        &[
            "offline",
            "respond",
            "--org",
            "Demo Store",
            "--device",
            DEVICE,
            "--register",
            "--request",
            &file("request.txt"),
            "--out",
            &file("response.json"),
        ],
    )?;
    ensure!(respond.status.success(), "offline respond: {respond:?}");

    // A damaged response is refused with the reason, and changes nothing.
    let response = std::fs::read_to_string(file("response.json"))?;
    std::fs::write(file("cut.json"), &response[..response.len() / 2])?;
    let cut = console(&["offline", "load", &file("cut.json")])?;
    ensure!(
        cut.status.code() == Some(1) && stderr(&cut).contains("Nothing was changed"),
        "a cut-short response: {cut:?}"
    );

    let load = console(&["offline", "load", &file("response.json")])?;
    ensure!(load.status.success(), "offline load: {load:?}");
    let shown = stdout(&load);
    ensure!(
        shown.contains("Status: Licensed (offline)")
            && shown.contains("Organization: Demo Store")
            && shown.contains("Offline license until: "),
        "what load prints: {shown}"
    );
    let status = console(&["status"])?;
    ensure!(status.status.success(), "licensed (offline): {status:?}");

    let deactivate = console(&["offline", "deactivate", "--out", &file("deactivation.txt")])?;
    ensure!(
        deactivate.status.success(),
        "offline deactivate: {deactivate:?}"
    );
    let status = console(&["status"])?;
    ensure!(status.status.code() == Some(1), "given up: {status:?}");
    let freed = server_cli(
        &server,
        &["offline", "deactivate", "--file", &file("deactivation.txt")],
    )?;
    ensure!(
        freed.status.success() && stdout(&freed).contains(DEVICE),
        "offline deactivate at the server: {freed:?}"
    );
    // The response of the given-up license does not come back.
    let reload = console(&["offline", "load", &file("response.json")])?;
    ensure!(
        reload.status.code() == Some(1),
        "reloaded after deactivation: {reload:?}"
    );
    Ok(())
}

/// The server's JWK Set saved in `dir`: the vendor's keys a release build
/// embeds, given to this debug build as a file.
async fn vendor_keys_file(
    server: &LicenseServer,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf> {
    let keys = dir.join("vendor-keys.json");
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", server.url))
        .await?
        .error_for_status()?
        .text()
        .await?;
    std::fs::write(&keys, jwks)?;
    Ok(keys)
}

/// Runs `license-console ARGS` with HOME `home` on this run's keychain.
fn console_cli(
    home: &std::path::Path,
    server_url: &str,
    keys: &std::path::Path,
    args: &[&str],
) -> Result<std::process::Output> {
    let mut command = std::process::Command::new(binary("license-console")?);
    e2e::cycles::console_env(&mut command, home, server_url);
    command
        .env("LICENSE_CONSOLE_VENDOR_KEYS", keys)
        .args(args)
        .stdin(std::process::Stdio::null());
    Ok(command.output()?)
}

/// Runs `license-server ARGS --db DB --issuer URL` on `server`'s database.
fn server_cli(server: &LicenseServer, args: &[&str]) -> Result<std::process::Output> {
    Ok(std::process::Command::new(binary("license-server")?)
        .args(args)
        .arg("--db")
        .arg(&server.db)
        .args(["--issuer", &server.url])
        .output()?)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits until the activation request shown is no longer `old`.
async fn wait_value_change(client: &fantoccini::Client, old: &str) -> Result<String> {
    e2e::step("wait for the renewal request", STEP, async {
        loop {
            let now = value_of(client, "[data-testid=activation-request-text]").await?;
            if now != old && !now.is_empty() {
                return Ok(now);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await
}
