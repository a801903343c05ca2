//! A clock set back on the real console (libfaketime in the console process
//! only): the panel says so, and nothing is counted from the earlier time.

use std::time::Duration;

use anyhow::{ensure, Result};
use e2e::{
    acquire, attr, finish, launch_in, notifications_log, parse_time, wait_text, LicenseServer, STEP,
};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_a_day_is_shown_and_extends_nothing() -> Result<()> {
    ensure!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: scripts/setup.sh installs the faketime package"
    );
    let server = LicenseServer::start_demo(&[])?;
    let home = tempfile::Builder::new().prefix("console-home.").tempdir()?;
    let env = [("LICENSE_CONSOLE_SERVER_URL", server.url.clone())];

    // Licensed with the true clock.
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        acquire(&client, &server, None).await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;
    let true_last_verified = last_verified(home.path())?;

    // The same console, started with its clock a day behind.
    let log_start = notifications_log().len();
    let behind = [
        env[0].clone(),
        ("LD_PRELOAD", LIBFAKETIME.to_owned()),
        ("FAKETIME", "-1d".to_owned()),
        ("FAKETIME_ONLY_CMDS", "license-console".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
    ];
    let (driver, client) = launch_in(home.path(), &behind).await?;
    let result = async {
        wait_text(
            &client,
            "[data-testid=clock-rollback]",
            Duration::from_secs(10),
            |t| t.contains("system clock was set back"),
        )
        .await?;
        // Still licensed, still verified as of the true time: the day the
        // clock lost is not handed back as extra time.
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        let shown = attr(&client, "[data-testid=field-last-verified]", "data-iso")
            .await?
            .unwrap_or_default();
        ensure!(
            parse_time(&shown)? == true_last_verified,
            "last verification {shown} is still the true one"
        );
        // The desktop is told once.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let told = notifications_log()
            .get(log_start..)
            .unwrap_or("")
            .matches("System clock set back")
            .count();
        ensure!(told == 1, "one notification about the clock ({told})");
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}

/// `last_verified` from the console's state file under `home`.
fn last_verified(home: &std::path::Path) -> Result<time::OffsetDateTime> {
    let file = home.join(".local/share/com.licenseconsole.console/state.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file)?)?;
    let at = json["state"]["last_verified"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no last_verified in the state file"))?;
    parse_time(at)
}
