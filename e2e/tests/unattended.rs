//! Staying licensed with nobody watching: token expiry notifications sent
//! once (also across a restart), and refreshes that go on with the window
//! closed to the tray. The server issues short-lived tokens to make expiry
//! happen within a test; the console runs unmodified.

use std::time::Duration;

use anyhow::Result;
use e2e::{
    acquire, binary, finish, last_verified_in, launch_in, notifications_log, request_window_close,
    step, text_of, wait_text, window_visible, Driver, LicenseServer, STEP,
};

const TOKEN_WARNING: &str = "License token expires soon";

fn count_since(log_start: usize, needle: &str) -> usize {
    let log = notifications_log();
    log.get(log_start..).unwrap_or("").matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_inside_its_warning_threshold_is_notified_once_even_after_a_restart() -> Result<()>
{
    // 50-minute tokens: inside the 1 h warning threshold from the start.
    let mut server = LicenseServer::start_demo(&["--token-ttl-secs", "3000"])?;
    let home = tempfile::Builder::new().prefix("console-home.").tempdir()?;
    let env = [("LICENSE_CONSOLE_SERVER_URL", server.url.clone())];
    let log_start = notifications_log().len();

    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        acquire(&client, &server, None).await?;
        step(
            "one token expiry notification",
            Duration::from_secs(45),
            async {
                while count_since(log_start, TOKEN_WARNING) == 0 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Ok(())
            },
        )
        .await?;
        let expiry = text_of(&client, "[data-testid=field-token-expiry]").await?;
        anyhow::ensure!(
            expiry.contains("expires soon"),
            "the panel warns about the token expiry: {expiry}"
        );
        // No screenshot here: once dunst shows the notification over the
        // window, WebKit's WebDriver snapshot returns a stale frame under Xvfb.
        // Nothing more arrives for the same token.
        tokio::time::sleep(Duration::from_secs(3)).await;
        anyhow::ensure!(
            count_since(log_start, TOKEN_WARNING) == 1,
            "exactly one warning"
        );
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;

    // Restart offline (the same token stays): the delivered notice is remembered.
    server.stop();
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        // The cached, verified account is shown at once.
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        // Give the background task time for its start-up refresh and notices.
        wait_text(
            &client,
            "[data-testid=grace]",
            Duration::from_secs(30),
            |t| t.contains("verification failed"),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let count = count_since(log_start, TOKEN_WARNING);
        anyhow::ensure!(
            count == 1,
            "no duplicate after the restart ({count} warnings)"
        );
        anyhow::ensure!(
            count_since(log_start, "License not verified") == 1,
            "the failed verification is notified once"
        );
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_window_keeps_the_console_refreshing_in_the_tray() -> Result<()> {
    // 75-second tokens: the console renews them at 80 % of their life (60 s).
    let server = LicenseServer::start_demo(&["--token-ttl-secs", "75"])?;
    let driver = Driver::start(&[("LICENSE_CONSOLE_SERVER_URL", server.url.clone())])?;
    let client = driver.launch(&binary("license-console")?).await?;
    let result = async {
        acquire(&client, &server, None).await?;
        let first = last_verified_in(&driver.state_file())?;
        anyhow::ensure!(window_visible("License Console")?, "window shown");
        step("the window hides", STEP, async {
            // Asked again every 2 s: a request that lands while GTK is still
            // setting the window up is dropped.
            let mut asked = std::time::Instant::now() - Duration::from_secs(10);
            while window_visible("License Console")? {
                if asked.elapsed() >= Duration::from_secs(2) {
                    anyhow::ensure!(request_window_close("License Console")?, "window found");
                    asked = std::time::Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        })
        .await?;
        // Still running: the session answers, and a refresh happens on schedule.
        let title = step("the console still answers", STEP, async {
            Ok(client.title().await?)
        })
        .await?;
        anyhow::ensure!(title == "License Console");
        let later = step(
            "a scheduled refresh with the window closed",
            Duration::from_secs(120),
            async {
                loop {
                    let at = last_verified_in(&driver.state_file())?;
                    if at > first {
                        return Ok(at);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        )
        .await?;
        anyhow::ensure!(
            (later - first).whole_seconds() >= 50,
            "refreshed by schedule ({} s after the first verification), not at once",
            (later - first).whole_seconds()
        );
        anyhow::ensure!(!window_visible("License Console")?, "still hidden");
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}
