//! The real console's clock moved (libfaketime in the console process only):
//! set back, the panel says so and nothing is counted from the earlier time;
//! set a week ahead, Refresh says by how much, and once the clock is right
//! again Refresh, Remove and acquiring again work.

use std::time::Duration;

use anyhow::{ensure, Result};
use e2e::{
    acquire, attr, click, finish, last_verified_in, launch_in, licensed_home, notifications_log,
    parse_time, state_file_in, wait_text, LicenseServer, STEP,
};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_a_day_is_shown_and_extends_nothing() -> Result<()> {
    require_libfaketime()?;
    let server = LicenseServer::start_demo(&[])?;
    // Licensed with the true clock.
    let (home, env) = licensed_home(&server).await?;
    let true_last_verified = last_verified_in(&state_file_in(home.path()))?;

    // The same console, started with its clock a day behind.
    let log_start = notifications_log().len();
    let behind = faked(&env, "-1d");
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
        // The signed time of the document bounds it (whole seconds, up to
        // a second later than the server signed): within a second of the
        // console's own record, never a day off.
        let off = (parse_time(&shown)? - true_last_verified).abs();
        ensure!(
            off <= time::Duration::seconds(1),
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

fn require_libfaketime() -> Result<()> {
    ensure!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: scripts/setup.sh installs the faketime package"
    );
    Ok(())
}

/// The console's environment with its clock moved by `offset` (libfaketime
/// syntax: "-1d", "+7d"), in the console process only.
fn faked(env: &[(&'static str, String)], offset: &str) -> Vec<(&'static str, String)> {
    let mut all = env.to_vec();
    all.extend([
        ("LD_PRELOAD", LIBFAKETIME.to_owned()),
        ("FAKETIME", offset.to_owned()),
        ("FAKETIME_ONLY_CMDS", "license-console".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
    ]);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_a_week_ahead_says_so_and_recovers_once_right() -> Result<()> {
    require_libfaketime()?;
    let server = LicenseServer::start_demo(&[])?;
    let (home, env) = licensed_home(&server).await?;

    // A week ahead: Refresh says the clock is wrong, and by how much.
    let ahead = faked(&env, "+7d");
    let (driver, client) = launch_in(home.path(), &ahead).await?;
    let result = async {
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            !t.is_empty()
        })
        .await?;
        click(&client, "[data-testid=refresh]").await?;
        let code = attr(&client, "[data-testid=error]", "data-code").await?;
        ensure!(code.as_deref() == Some("clock"), "error code {code:?}");
        wait_text(&client, "[data-testid=error]", STEP, |t| {
            t.contains("days ahead of the license server")
        })
        .await?;
        e2e::screenshot(&client, "clock-ahead").await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;

    // Right again: Refresh works and the panel is as before.
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        click(&client, "[data-testid=refresh]").await?;
        wait_text(&client, "[data-testid=refresh-result]", STEP, |t| {
            t.contains("License verified")
        })
        .await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;
    let verified = last_verified_in(&state_file_in(home.path()))?;
    ensure!(
        (verified - time::OffsetDateTime::now_utc()).abs() < time::Duration::minutes(5),
        "verified at the true time: {verified}"
    );

    // The same mistake again, then Remove and acquire anew with the clock right.
    let (driver, client) = launch_in(home.path(), &ahead).await?;
    let result = async {
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            !t.is_empty()
        })
        .await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        click(&client, "[data-testid=remove]").await?;
        click(&client, "[data-testid=remove-confirm]").await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Not licensed"
        })
        .await?;
        acquire(&client, &server, None).await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}
