//! The real console's state file edited between two runs (issue 14): the
//! panel says so and the desktop is told once; the next run finds the file
//! the console wrote itself and is quiet. (That the edit extends nothing is
//! tested field by field in src-tauri/tests/licensing.rs.)

use anyhow::{ensure, Result};
use e2e::{
    finish, launch_in, licensed_home, notifications_log, screenshot, state_file_in, wait_text,
    LicenseServer, STEP,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_state_file_is_shown_notified_once_and_extends_nothing() -> Result<()> {
    let server = LicenseServer::start_demo(&[])?;
    let (home, env) = licensed_home(&server).await?;

    // A year of grace, written into the file by hand.
    let path = state_file_in(home.path());
    let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    file["state"]["state"]["policy"]["grace_period_secs"] = (365 * 86_400).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;

    let log_start = notifications_log().len();
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        wait_text(&client, "[data-testid=state-integrity]", STEP, |t| {
            t.contains("edited or replaced")
        })
        .await?;
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        let code = e2e::attr(&client, "[data-testid=state-integrity]", "data-code").await?;
        ensure!(code.as_deref() == Some("edited"), "code {code:?}");
        screenshot(&client, "state-edited").await?;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let told = notifications_log()
            .get(log_start..)
            .unwrap_or("")
            .matches("License state file changed")
            .count();
        ensure!(told == 1, "one notification about the state file ({told})");
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;

    // The next run finds the file the console itself wrote: intact, quiet.
    let log_start = notifications_log().len();
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        wait_text(&client, "[data-testid=license-status]", STEP, |t| {
            t == "Licensed"
        })
        .await?;
        let banner = client
            .find_all(fantoccini::Locator::Css("[data-testid=state-integrity]"))
            .await?;
        ensure!(
            banner.is_empty(),
            "no banner once the console wrote the file again"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let told = notifications_log()
            .get(log_start..)
            .unwrap_or("")
            .matches("License state file changed")
            .count();
        ensure!(told == 0, "not told again ({told})");
        Ok(())
    }
    .await;
    finish(driver, client, result).await
}
