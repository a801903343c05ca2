//! Crash-safe rotation (issue 13, item 3): the real console killed with
//! SIGKILL at random points of its refresh path, again and again, and
//! restarted each time later than a bearer chain's retry window allows,
//! keeps its license: no lost license, no revoked chain.
//!
//! The console refreshes at every start once licensed (src-tauri/src/lib.rs,
//! `start_licensing`), so each cycle starts it directly as a process (the
//! license was acquired once through WebDriver), lets it run into its
//! refresh and kills it at a random moment: either anywhere between its
//! start and the end of its refresh, or shortly after the refresh grant's
//! answer arrived (logged by license_client before the answer is read,
//! verified and written to the keychain). A kill between the server's answer
//! and the keychain write leaves the keychain with the refresh token the
//! server already exchanged: the next start presents it again, and the
//! server answers it as a retry (`token.retry` in its audit log), which is
//! how those kills are counted.
//!
//! The server runs with a 1-second retry window for bearer chains and each
//! restart comes 2 s after the kill (`KILL_RETRY_WINDOW_SECS`,
//! `KILL_RESTART_AFTER_SECS`): a bearer chain would be revoked on such a
//! restart, a DPoP-bound one must not be. The clock is the real one.
//!
//! A second test kills the console in that gap once and restarts it only
//! after the server's default 120 s window, when the license token of the
//! lost answer has expired too.
//!
//! `KILL_LANES` runs the kills over that many console installs (each a HOME,
//! keychain entries and device of its own) taking turns, so that a full run can
//! restart each console after longer than the default 120 s window
//! (`scripts/kill-test.sh`: 200 kills over 25 installs, restarts after 125 s,
//! the server's default window).
//!
//! `KILL_TOKEN_TTL_SECS` sets the license tokens' lifetime (600 s).
//! `KILLS` sets the number of kills (20 here; `scripts/kill-test.sh` runs
//! 200), `KILL_SEED` repeats a run's random choices.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use e2e::cycles::{
    artifact_log, audit_count, device_record, read_state, Console, Rng, DOCUMENT_VERIFIED,
    TOKEN_ANSWER,
};
use e2e::{
    finish, launch_in, licensed_home, licensed_home_as, state_file_in, wait_text, LicenseServer,
    DEVICE,
};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sleeps until `at` (no-op if it has passed).
fn sleep_until(at: Instant) {
    if let Some(left) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

#[derive(Debug, Default)]
struct Figures {
    kills: u64,
    /// Kills whose console had not yet received the refresh grant's answer.
    before_answer: u64,
    /// Kills after the answer arrived, before the document was verified
    /// (the keychain write is in here).
    after_answer: u64,
    /// Kills after the refresh ended (the state file write, or idle).
    after_refresh: u64,
    /// Kills between the server's answer and the keychain write: retries
    /// the server answered (`token.retry`).
    gap: i64,
    /// Restarts that found the license gone (state file not licensed or
    /// revoked), plus a final refresh that failed.
    lost: u64,
    revoked_chains: i64,
    reuse_detected: i64,
    possible_copy: bool,
    copy_audits: i64,
}

impl Figures {
    fn add(&mut self, lane: &Figures) {
        self.kills += lane.kills;
        self.before_answer += lane.before_answer;
        self.after_answer += lane.after_answer;
        self.after_refresh += lane.after_refresh;
        self.lost += lane.lost;
    }
}

/// One install of the console, killed again and again: its HOME (state
/// file, keychain entries scoped to it) and its device's Server ID.
struct Lane {
    index: u64,
    home: tempfile::TempDir,
    state_file: std::path::PathBuf,
    server_id: String,
    log: std::path::PathBuf,
}

/// What the kill test varies (environment variables, see the module doc).
#[derive(Clone, Copy)]
struct Plan {
    restart_after: Duration,
    seed: u64,
}

/// Kills the console of `lane` `kills` times at random points of its
/// refresh path, restarting it `plan.restart_after` after each kill, then
/// starts it once undisturbed. What the kills hit, and licenses lost.
///
/// The console is a single instance per desktop session (a second start
/// hands over to the first and exits), so the lanes take turns: `one_at_a_time`
/// is held from a console's start to its kill, while the others pause.
fn run_lane(
    lane: &Lane,
    server_url: &str,
    kills: u64,
    plan: Plan,
    one_at_a_time: &Mutex<()>,
) -> Result<Figures> {
    let mut rng = Rng::new(plan.seed ^ lane.index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let name = format!("kill test lane {}", lane.index);
    let turn = || one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());

    // One undisturbed start: how long the refresh path takes here.
    let (mut path_len, mut answer_span) = {
        let _turn = turn();
        let mut console = Console::start(lane.home.path(), server_url, Some(&lane.log))?;
        let answer = console
            .wait_for(TOKEN_ANSWER, Duration::from_secs(60))
            .with_context(|| format!("{name}: the console refreshes at start"))?;
        let verified = console
            .wait_for(DOCUMENT_VERIFIED, Duration::from_secs(30))
            .with_context(|| format!("{name}: the refresh at start verifies a document"))?;
        std::thread::sleep(Duration::from_millis(500));
        console.sigkill();
        (
            verified - console.started + Duration::from_millis(300),
            verified - answer,
        )
    };
    eprintln!(
        "{name}: a refresh takes {path_len:?} from start; answer to verified document {answer_span:?}"
    );
    ensure!(
        read_state(&lane.state_file)?.valid(),
        "{name}: licensed after calibration"
    );
    std::thread::sleep(plan.restart_after);

    let mut f = Figures::default();
    for i in 0..kills {
        let before = read_state(&lane.state_file)?;
        if !before.valid() {
            f.lost += 1;
            eprintln!("{name}: before restart {i}, the license is gone: {before:?}");
            return Ok(f);
        }
        let turn = turn();
        let mut console = Console::start(lane.home.path(), server_url, Some(&lane.log))?;
        let target = match rng.below(3) {
            // Anywhere from the start to the end of the refresh.
            0 => Some(console.started + rng.duration(path_len)),
            // Just after the answer arrived: reading it, verifying it, the
            // keychain write.
            1 => console
                .wait_for(TOKEN_ANSWER, Duration::from_secs(60))
                .map(|at| at + rng.duration(Duration::from_millis(25).min(answer_span))),
            // Anywhere from the answer to the end of the refresh.
            _ => console
                .wait_for(TOKEN_ANSWER, Duration::from_secs(60))
                .map(|at| at + rng.duration(answer_span + Duration::from_millis(200))),
        };
        let target =
            target.with_context(|| format!("{name}: no refresh answer logged within 60 s"))?;
        sleep_until(target);
        console.sigkill();
        f.kills += 1;
        let answered = console.logged(TOKEN_ANSWER);
        let verified = console.logged(DOCUMENT_VERIFIED);
        // What the console itself saw; update the estimates as it goes.
        if let (Some(a), Some(v)) = (
            console.wait_for(TOKEN_ANSWER, Duration::ZERO),
            console.wait_for(DOCUMENT_VERIFIED, Duration::ZERO),
        ) {
            answer_span = (answer_span + (v - a)) / 2;
            path_len = (path_len + (v - console.started) + Duration::from_millis(300)) / 2;
        }
        match (answered, verified) {
            (false, _) => f.before_answer += 1,
            (true, false) => f.after_answer += 1,
            (true, true) => f.after_refresh += 1,
        }
        drop(console);
        drop(turn);
        std::thread::sleep(plan.restart_after);
    }

    // One more start, undisturbed: the refresh must succeed.
    let refreshed = {
        let _turn = turn();
        let mut console = Console::start(lane.home.path(), server_url, Some(&lane.log))?;
        let refreshed = console
            .wait_for(DOCUMENT_VERIFIED, Duration::from_secs(60))
            .is_some();
        std::thread::sleep(Duration::from_millis(800));
        console.sigkill();
        refreshed
    };
    let after = read_state(&lane.state_file)?;
    if !refreshed || !after.valid() {
        f.lost += 1;
        eprintln!("{name}: the final refresh failed (verified: {refreshed}); state {after:?}");
    }
    Ok(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_anywhere_in_the_refresh_path_loses_no_license() -> Result<()> {
    let kills = env_u64("KILLS", 20);
    let window = env_u64("KILL_RETRY_WINDOW_SECS", 1);
    let restart_after = Duration::from_millis(env_u64("KILL_RESTART_AFTER_SECS", 2) * 1000);
    let lanes = env_u64("KILL_LANES", 1).clamp(1, kills.max(1));
    ensure!(
        restart_after > Duration::from_secs(window),
        "restarts must come later than the bearer retry window"
    );
    let (_, seed) = Rng::from_env("KILL_SEED");
    let plan = Plan {
        restart_after,
        seed,
    };
    eprintln!(
        "kill test: {kills} kills over {lanes} console install(s), restarts {restart_after:?} \
         after each kill, bearer retry window {window} s, seed {seed} (KILL_SEED={seed} repeats \
         the choices)"
    );

    // Short-lived license tokens and a short refresh interval (the console
    // also refreshes at every start), and the bearer retry window.
    let window_arg = window.to_string();
    let ttl_arg = env_u64("KILL_TOKEN_TTL_SECS", 600).to_string();
    let server = LicenseServer::start_demo(&[
        "--token-ttl-secs",
        &ttl_arg,
        "--policy-refresh-interval-secs",
        "60",
        "--refresh-retry-window-secs",
        &window_arg,
    ])?;
    // Each install licensed once through the console's window, for a device
    // of its own.
    let mut installs = Vec::new();
    for index in 0..lanes {
        let device = match index {
            0 => DEVICE.to_owned(),
            n => format!("Kill Test Server {n:02}"),
        };
        let (home, env) = licensed_home_as(&server, &device).await?;
        let state_file = state_file_in(home.path());
        let server_id = read_state(&state_file)?
            .server_id
            .context("licensed: a Server ID in the state file")?;
        let log = artifact_log(&format!("kill-consoles-{index}.log"))?;
        installs.push((
            Lane {
                index,
                home,
                state_file,
                server_id,
                log,
            },
            env,
        ));
    }

    let started = Instant::now();
    let one_at_a_time = Mutex::new(());
    let results: Vec<Result<Figures>> = std::thread::scope(|scope| {
        let runs: Vec<_> = installs
            .iter()
            .map(|(lane, _)| {
                let share = kills / lanes + u64::from(lane.index < kills % lanes);
                let url = server.url.as_str();
                let one_at_a_time = &one_at_a_time;
                scope.spawn(move || run_lane(lane, url, share, plan, one_at_a_time))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a lane panicked"))
            .collect()
    });
    let mut f = Figures::default();
    for result in results {
        f.add(&result?);
    }

    f.gap = audit_count(&server, "token.retry")?;
    f.reuse_detected = audit_count(&server, "token.reuse_detected")?;
    f.copy_audits = audit_count(&server, "device.possible_copy")?;
    let mut retries = 0;
    let mut flagged = 0;
    for (lane, _) in &installs {
        let device = device_record(&server, &lane.server_id)?;
        f.revoked_chains += device.chains_revoked;
        retries += device.retries;
        flagged += u64::from(device.possible_copy);
        ensure!(!device.device_revoked, "lane {}: {device:?}", lane.index);
        // One retry is a crash; the server calls a second within a week a
        // copy (ARCHITECTURE.md): flagged only (the demo organization's
        // default), so the license stays. With at most one retry, no flag.
        if device.retries <= 1 {
            ensure!(
                !device.possible_copy,
                "lane {}: one crash is not a copy: {device:?}",
                lane.index
            );
        }
    }
    f.possible_copy = flagged > 0;
    eprintln!(
        "KILL-TEST kills={} gap_kills={} lost_licenses={} revoked_chains={} \
         (before the answer {}, after the answer {}, after the refresh {}; \
         chain retries counted {}; reuse detected {}, devices flagged possible copy: {} \
         ({} audits); {} installs, restart {} s after each kill, retry window {} s; {} s; seed {seed})",
        f.kills,
        f.gap,
        f.lost,
        f.revoked_chains,
        f.before_answer,
        f.after_answer,
        f.after_refresh,
        retries,
        f.reuse_detected,
        flagged,
        f.copy_audits,
        lanes,
        restart_after.as_secs(),
        window,
        started.elapsed().as_secs(),
    );
    ensure!(f.lost == 0, "{} licenses lost", f.lost);
    ensure!(f.kills == kills, "{} kills of {kills}", f.kills);
    ensure!(f.revoked_chains == 0, "{} chains revoked", f.revoked_chains);
    // `token_chains.retries` can exceed the audits by the retries whose
    // request the kill cut short on the server too (the client went away
    // after the count, before the audit row): not asserted, printed.
    ensure!(f.reuse_detected == 0, "the server saw a reuse");

    // And the console says so: the panel shows Licensed after a refresh.
    let (lane, env) = &installs[0];
    let (driver, client) = launch_in(lane.home.path(), env).await?;
    let result = async {
        wait_text(
            &client,
            "[data-testid=license-status]",
            Duration::from_secs(30),
            |t| t == "Licensed",
        )
        .await?;
        let at = read_state(&lane.state_file)?.last_verified;
        ensure!(at.is_some(), "verified");
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;
    let device = device_record(&server, &lane.server_id)?;
    ensure!(device.chains_revoked == 0, "no chain revoked: {device:?}");
    Ok(())
}

/// A crash between the server's answer and the keychain write, then a
/// restart only after the bearer retry window of before (120 s, the server's
/// default, kept here) and after the license token that answer carried has
/// expired (a computer that lost power and came back days later, here with
/// 5-second tokens, the server's policy, and a 125-second pause, beyond the
/// window and the console's 60 s leeway): the retry must still bring the
/// license back.
/// Longer than the server's default retry window for bearer chains (120 s).
const LATE_RESTART: Duration = Duration::from_secs(125);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_keychain_write_then_a_restart_after_the_token_expired_keeps_the_license(
) -> Result<()> {
    let server = LicenseServer::start_demo(&["--token-ttl-secs", "5"])?;
    let (home, _env) = licensed_home(&server).await?;
    let state_file = state_file_in(home.path());
    let server_id = read_state(&state_file)?
        .server_id
        .context("a Server ID in the state file")?;
    let log = artifact_log("kill-late-consoles.log")?;

    // Killed right after the answer arrived: before its keychain write.
    // The gap is a few milliseconds (the license document is fetched before
    // the write); should a kill miss it, the cycle is tried again.
    let mut verified = false;
    for attempt in 1..=3 {
        let before = audit_count(&server, "token.retry")?;
        let mut console = Console::start(home.path(), &server.url, Some(&log))?;
        let answer = console
            .wait_for(TOKEN_ANSWER, Duration::from_secs(60))
            .context("the console refreshes at start")?;
        sleep_until(answer + Duration::from_millis(2));
        console.sigkill();
        drop(console);
        ensure!(audit_count(&server, "token.retry")? == before);

        std::thread::sleep(LATE_RESTART);
        let mut console = Console::start(home.path(), &server.url, Some(&log))?;
        verified = console
            .wait_for(DOCUMENT_VERIFIED, Duration::from_secs(60))
            .is_some();
        std::thread::sleep(Duration::from_millis(800));
        console.sigkill();
        drop(console);
        let retries = audit_count(&server, "token.retry")? - before;
        if retries == 1 {
            break;
        }
        ensure!(
            attempt < 3 && retries == 0,
            "the restart after a kill in the gap retried once ({retries} retries, attempt {attempt})"
        );
    }
    let device = device_record(&server, &server_id)?;
    let state = read_state(&state_file)?;
    ensure!(
        verified && state.valid(),
        "the restart after the token's expiry refreshed the license (verified: {verified}, \
         state {state:?}, server {device:?})"
    );
    ensure!(
        device.chains_revoked == 0 && !device.possible_copy,
        "one crash: {device:?}"
    );
    Ok(())
}
