//! Copies of one console are noticed (issue 13, item 4): two real consoles
//! started from copies of one state file and one keychain, running at the
//! same time, as a cloned virtual machine would.
//!
//! The original runs on this run's session bus and keychain. The copy gets
//! a byte copy of the console's HOME and of the keyring file, and runs in a
//! mount namespace where the copied HOME sits at the original's path (the
//! keychain entries of the state file's guard and of the DPoP key are keyed
//! by that path), with a session bus and a gnome-keyring of its own: same
//! files, same keychain contents, same DPoP key, two machines.
//!
//! Both refresh at start: one rotates the refresh token, the other presents
//! the token already exchanged and gets the same pair (a retry, as after a
//! crash). Both refresh again on schedule (short-lived license tokens): the
//! second retry on the chain within a week marks the device a possible copy
//! (audit `device.possible_copy`, "Possible copy" on the Devices page), and
//! with the organization's setting at "revoke", the license is revoked.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use e2e::admin::Admin;
use e2e::cycles::{
    artifact_log, audit_count, device_record, read_state, sql, sql_write, Clone, Console,
    StateView, DOCUMENT_VERIFIED,
};
use e2e::{licensed_home, state_file_in, LicenseServer};

/// 20-second license tokens: each console refreshes again at the first tick
/// of its background task (every 30 s) after 80 % of that.
const SERVER_ARGS: [&str; 2] = ["--token-ttl-secs", "20"];

/// Polls `check` every 250 ms until it holds or `limit` passes.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if check()? {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

struct Twins {
    server_id: String,
    original: Console,
    copy: Clone,
    original_state: std::path::PathBuf,
    _home: tempfile::TempDir,
}

/// A console licensed by `server`, closed, copied; then the original and
/// the copy started together, and both through their refresh at start.
async fn twins(server: &LicenseServer, log_name: &str) -> Result<Twins> {
    let (home, _env) = licensed_home(server).await?;
    let original_state = state_file_in(home.path());
    let server_id = read_state(&original_state)?
        .server_id
        .context("a Server ID in the state file")?;
    let log = artifact_log(log_name)?;
    // The copy is taken with the original stopped, as a VM snapshot is.
    let mut copy = Clone::start(home.path(), &server.url, Some(&log))?;
    let mut original = Console::start(home.path(), &server.url, Some(&log))?;
    ensure!(
        copy.state_file() != original_state,
        "the copy has files of its own"
    );
    for (name, console) in [("original", &mut original), ("copy", &mut copy.console)] {
        console
            .wait_for(DOCUMENT_VERIFIED, Duration::from_secs(60))
            .with_context(|| format!("the {name} refreshes at start (see {log_name})"))?;
    }
    // One of them rotated the refresh token, the other one retried it.
    wait_until(
        "the copy's retry is audited",
        Duration::from_secs(10),
        || Ok(audit_count(server, "token.retry")? >= 1),
    )?;
    let device = device_record(server, &server_id)?;
    ensure!(
        !device.possible_copy && device.chains_revoked == 0,
        "one retry is not yet a copy: {device:?}"
    );
    Ok(Twins {
        server_id,
        original,
        copy,
        original_state,
        _home: home,
    })
}

fn both_states(t: &Twins) -> Result<(StateView, StateView)> {
    Ok((
        read_state(&t.original_state)?,
        read_state(&t.copy.state_file())?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_running_copies_of_one_console_are_flagged_as_a_possible_copy() -> Result<()> {
    let server = LicenseServer::start_demo(&SERVER_ARGS)?;
    let mut t = twins(&server, "clone-flag-consoles.log").await?;
    let started = Instant::now();
    wait_until(
        "the device is marked a possible copy",
        Duration::from_secs(90),
        || Ok(device_record(&server, &t.server_id)?.possible_copy),
    )?;
    let noticed = started.elapsed();
    ensure!(audit_count(&server, "device.possible_copy")? >= 1);
    ensure!(audit_count(&server, "token.retry")? >= 2);
    let detail = sql(
        &server,
        "SELECT detail FROM audit_log WHERE action = 'device.possible_copy' LIMIT 1",
    )?;
    ensure!(detail.contains("flagged only"), "audit: {detail}");
    // Flag only (the default): the license goes on, on both.
    std::thread::sleep(Duration::from_secs(2));
    let device = device_record(&server, &t.server_id)?;
    ensure!(device.chains_revoked == 0, "flag only: {device:?}");
    let (a, b) = both_states(&t)?;
    ensure!(a.valid() && b.valid(), "both still licensed: {a:?} {b:?}");
    eprintln!(
        "CLONE-TEST flag-only: flagged {:.1} s after both refreshed at start; retries {}, \
         possible-copy audits {}, chains revoked {}, both consoles licensed: {}",
        noticed.as_secs_f64(),
        audit_count(&server, "token.retry")?,
        audit_count(&server, "device.possible_copy")?,
        device.chains_revoked,
        a.valid() && b.valid()
    );
    t.original.sigkill();
    t.copy.stop();

    // The Devices page says so.
    if let Some(admin) = Admin::sign_in(&server).await? {
        let result = async {
            let text = admin.devices_text().await?;
            ensure!(text.contains("Possible copy"), "Devices page: {text}");
            admin.screenshot("devices-possible-copy").await?;
            Ok(())
        }
        .await;
        admin.close().await;
        result?;
    } else {
        eprintln!("no chromedriver: the Devices page was not looked at");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_revoke_setting_a_copy_loses_the_license() -> Result<()> {
    let server = LicenseServer::start_demo(&SERVER_ARGS)?;
    // The organization's admin chooses "Revoke the device's license".
    match Admin::sign_in(&server).await? {
        Some(admin) => {
            let result = admin.set_on_copy("revoke").await;
            admin.close().await;
            result?;
        }
        None => {
            eprintln!("no chromedriver: on_copy set in the database");
            sql_write(
                &server,
                "UPDATE organizations SET on_copy = 'revoke' WHERE name = 'Demo Store'",
            )?;
        }
    }
    let on_copy = sql(
        &server,
        "SELECT on_copy FROM organizations WHERE name = 'Demo Store'",
    )?;
    ensure!(on_copy == "revoke", "on_copy is {on_copy:?}");
    let t = twins(&server, "clone-revoke-consoles.log").await?;
    let started = Instant::now();
    wait_until(
        "the copy is noticed and the chain revoked",
        Duration::from_secs(90),
        || {
            let d = device_record(&server, &t.server_id)?;
            Ok(d.possible_copy && d.chains_revoked >= 1)
        },
    )?;
    let noticed = started.elapsed();
    let detail = sql(
        &server,
        "SELECT detail FROM audit_log WHERE action = 'device.possible_copy' LIMIT 1",
    )?;
    ensure!(detail.contains("revoked"), "audit: {detail}");
    // Each console learns it at its next refresh: the one that retried at
    // once, the other at its next scheduled one.
    wait_until(
        "both consoles see the license revoked",
        Duration::from_secs(90),
        || {
            let (a, b) = both_states(&t)?;
            Ok(a.revoked && b.revoked)
        },
    )?;
    eprintln!(
        "CLONE-TEST revoke: chain revoked {:.1} s after both refreshed at start; both consoles \
         showed the license revoked {:.1} s after that",
        noticed.as_secs_f64(),
        (started.elapsed() - noticed).as_secs_f64()
    );
    Ok(())
}
