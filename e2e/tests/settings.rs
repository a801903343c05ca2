//! The settings screen on the real console: what the server's policy allows,
//! what the console refuses, what a saved setting changes, and that it stays
//! saved across a restart.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use e2e::{
    acquire, click, fill, finish, launch_in, screenshot, step, text_of, value_of, wait_text,
    LicenseServer, STEP,
};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_checked_applied_and_kept_across_a_restart() -> Result<()> {
    let server = LicenseServer::start_demo(&[])?;
    let home = tempfile::Builder::new().prefix("console-home.").tempdir()?;
    let env = [("LICENSE_CONSOLE_SERVER_URL", server.url.clone())];
    let autostart = home
        .path()
        .join(".config/autostart/license-console.desktop");

    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        acquire(&client, &server, None).await?;
        let expiry = text_of(&client, "[data-testid=field-token-expiry]").await?;
        ensure!(
            !expiry.contains("expires soon"),
            "a fresh 3-day token is not near expiry: {expiry}"
        );

        click(&client, "[data-testid=settings]").await?;
        // The server's policy fills the form: refresh every 24 h, warnings at
        // 24, 6 and 1 h before the token expires.
        assert_eq!(
            value_of(&client, "[data-testid=settings-refresh]").await?,
            "24"
        );
        assert_eq!(
            value_of(&client, "[data-testid=settings-warnings]").await?,
            "24, 6, 1"
        );
        assert_eq!(
            text_of(&client, "[data-testid=settings-server]").await?,
            server.url
        );
        screenshot(&client, "settings").await?;

        // Not whole numbers: refused in the window.
        fill(&client, "[data-testid=settings-warnings]", "soon").await?;
        click(&client, "[data-testid=settings-save]").await?;
        wait_text(&client, "[data-testid=error]", STEP, |t| {
            t.contains("whole numbers")
        })
        .await?;
        // Whole numbers the console refuses: its message is shown.
        fill(&client, "[data-testid=settings-warnings]", "0, 6").await?;
        click(&client, "[data-testid=settings-save]").await?;
        wait_text(&client, "[data-testid=error]", STEP, |t| {
            t.contains("between 1 hour and 14 days")
        })
        .await?;
        ensure!(!autostart.exists(), "nothing was saved");

        // Refresh every 2 hours, warn 100 hours ahead, start at login.
        fill(&client, "[data-testid=settings-refresh]", "2").await?;
        fill(&client, "[data-testid=settings-warnings]", "100").await?;
        click(&client, "[data-testid=settings-autostart]").await?;
        click(&client, "[data-testid=settings-save]").await?;
        wait_text(&client, "[data-testid=settings-saved]", STEP, |t| {
            t.contains("Settings saved")
        })
        .await?;
        // Written by tauri-plugin-autostart (XDG autostart on Linux).
        let entry = std::fs::read_to_string(&autostart)
            .with_context(|| format!("read {}", autostart.display()))?;
        ensure!(
            entry.contains("Exec=") && entry.contains("license-console"),
            "the autostart entry starts the console: {entry}"
        );

        // The 3-day token is now inside the 100-hour warning.
        click(&client, "[data-testid=settings-close]").await?;
        wait_text(
            &client,
            "[data-testid=field-token-expiry]",
            Duration::from_secs(10),
            |t| t.contains("expires soon"),
        )
        .await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;

    // A restart keeps every setting.
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        click(&client, "[data-testid=settings]").await?;
        assert_eq!(
            value_of(&client, "[data-testid=settings-refresh]").await?,
            "2"
        );
        assert_eq!(
            value_of(&client, "[data-testid=settings-warnings]").await?,
            "100"
        );
        let checked = step("read the start at login box", STEP, async {
            let field = client
                .wait()
                .for_element(Locator::Css("[data-testid=settings-autostart]"))
                .await?;
            Ok(field.prop("checked").await?)
        })
        .await?;
        ensure!(
            checked.as_deref() == Some("true"),
            "start at login is still on: {checked:?}"
        );

        // Turning start at login off removes the entry.
        click(&client, "[data-testid=settings-autostart]").await?;
        click(&client, "[data-testid=settings-save]").await?;
        wait_text(&client, "[data-testid=settings-saved]", STEP, |t| {
            t.contains("Settings saved")
        })
        .await?;
        ensure!(!autostart.exists(), "the autostart entry is gone");
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}
