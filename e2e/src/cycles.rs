//! Helpers of the crash and copy tests (issue 13): the real console started
//! directly as a process (no WebDriver: once licensed it refreshes on its
//! own at start), killed with SIGKILL at a chosen moment; a second "machine"
//! that runs a copy of a console's files and keychain at the same time; the
//! license server's database read with Python's sqlite3 module; and the
//! admin pages in headless Chromium.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{artifacts_dir, binary, LicenseServer};

/// What the console logs (license_client, debug) when the refresh grant's
/// answer arrives, before its body is read, verified and written to the
/// keychain.
pub const TOKEN_ANSWER: &str = "endpoint=\"token (refresh)\" status=200";
/// What the console logs once a refresh ended with a verified license
/// document (after the keychain write, before the state file is written).
pub const DOCUMENT_VERIFIED: &str = "license document fetched and verified";

/// The real console, started directly (not through tauri-driver) with a HOME
/// of its own, its log (stderr) read line by line with the time each line
/// arrived. Killed with SIGKILL when dropped.
#[derive(Debug)]
pub struct Console {
    child: Child,
    /// When the process was started.
    pub started: Instant,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Lines read so far.
    pub log: Vec<(Instant, String)>,
    stopped: bool,
}

/// The environment of a console with HOME `home` pointed at `server_url`,
/// logging the refresh path.
pub fn console_env(command: &mut Command, home: &Path, server_url: &str) {
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("LICENSE_CONSOLE_SERVER_URL", server_url)
        .env(
            "RUST_LOG",
            "license_console_lib=info,license_client=debug,warn",
        )
        .env("NO_COLOR", "1");
}

impl Console {
    /// Starts the console binary in HOME `home` on this run's display,
    /// session bus and keychain; its log is also appended to `log_file`.
    pub fn start(home: &Path, server_url: &str, log_file: Option<&Path>) -> Result<Self> {
        let mut command = Command::new(binary("license-console")?);
        console_env(&mut command, home, server_url);
        Self::spawn(command, log_file)
    }

    fn spawn(mut command: Command, log_file: Option<&Path>) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let started = Instant::now();
        let mut child = command.spawn().context("start license-console")?;
        let stderr = child.stderr.take().context("console stderr")?;
        let mut sink = match log_file {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("open {}", path.display()))?,
            ),
            None => None,
        };
        let pid = child.id();
        if let Some(f) = sink.as_mut() {
            let _ = writeln!(f, "---- console pid {pid} started");
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let at = Instant::now();
                if let Some(f) = sink.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if tx.send((at, line)).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            started,
            lines: rx,
            log: Vec::new(),
            stopped: false,
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes the lines read since the last call into `log`.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    /// When a line containing `needle` was logged (looking at lines already
    /// read first), waiting up to `limit` for it.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> Option<Instant> {
        self.drain();
        if let Some((at, _)) = self.log.iter().find(|(_, l)| l.contains(needle)) {
            return Some(*at);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let hit = line.contains(needle);
                    self.log.push((at, line));
                    if hit {
                        return Some(at);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                // The process closed its stderr: it exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Whether a line containing `needle` was logged so far.
    pub fn logged(&mut self, needle: &str) -> bool {
        self.drain();
        self.log.iter().any(|(_, l)| l.contains(needle))
    }

    /// Whether the process has exited already.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL to the console's process, then to whatever it started that is
    /// still in its process group (WebKit's helper processes), one pid at a
    /// time; waits until they are gone.
    pub fn sigkill(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // std's Child::kill is SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_group_members(self.child.id());
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Pids whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // A zombie waits for its parent; it holds nothing.
        if fields.first() == Some(&"Z") {
            continue;
        }
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            pids.push(pid);
        }
    }
    pids
}

/// SIGKILL to each live process of group `pgid` (never the group as a
/// whole), until none is left or 5 s have passed.
fn kill_group_members(pgid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = group_members(pgid);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of a computer running a console: the console's HOME copied, and
/// the keychain (the login keyring file of this run's gnome-keyring) copied,
/// run at the same time as the original in a mount namespace of its own in
/// which the copy sits at the original's path (so the keychain entries keyed
/// by the state file's path are found, as in a cloned virtual machine), with
/// a session bus and a gnome-keyring of its own.
#[derive(Debug)]
pub struct Clone {
    /// The console of the copy.
    pub console: Console,
    /// The copy of the HOME, as seen from outside the copy.
    pub home: PathBuf,
    marker: String,
    _files: tempfile::TempDir,
}

impl Clone {
    /// Copies `home` (a console's HOME, the console not running) and this
    /// run's keyring, then starts the copy's console pointed at `server_url`.
    pub fn start(home: &Path, server_url: &str, log_file: Option<&Path>) -> Result<Self> {
        let files = tempfile::Builder::new().prefix("clone.").tempdir()?;
        let copy = files.path().join("home");
        let status = Command::new("cp")
            .arg("-a")
            .arg(home)
            .arg(&copy)
            .status()
            .context("run cp")?;
        if !status.success() {
            bail!("cp -a {} failed", home.display());
        }
        // The keyring of this run (scripts/e2e.sh, e2e/session.sh): its files
        // are under the suite's XDG_DATA_HOME.
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .context("XDG_DATA_HOME is not set: run the suite through scripts/e2e.sh")?;
        let keyrings = data.join("keyrings");
        let target = copy.join(".local/share");
        std::fs::create_dir_all(&target)?;
        let status = Command::new("cp")
            .arg("-a")
            .arg(&keyrings)
            .arg(target.join("keyrings"))
            .status()
            .context("run cp")?;
        if !status.success() {
            bail!("cp -a {} failed", keyrings.display());
        }
        let runtime = files.path().join("runtime");
        std::fs::create_dir_all(&runtime)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;

        // Inside: the copy mounted over the original's path, then a bus of
        // its own with its keyring unlocked (as e2e/session.sh does), then
        // the console.
        let machine = r#"
set -e
mount --bind "$COPY" "$ORIGINAL"
exec dbus-run-session -- sh -c '
  printf e2e-keyring | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
  i=0
  until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "no secret service on the copy bus" >&2; exit 1; }
    sleep 0.05
  done
  exec "$CONSOLE"'
"#;
        // Every process of the copy carries the marker, which is how its
        // session bus and what that bus started are found and stopped.
        let marker = format!("{}", files.path().display());
        let mut command = Command::new("unshare");
        command
            .env("E2E_CLONE", &marker)
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                machine,
            ])
            .env("COPY", &copy)
            .env("ORIGINAL", home)
            .env("CONSOLE", binary("license-console")?)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("GNOME_KEYRING_CONTROL")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        // The console (and the keyring daemon) see the original's path.
        console_env(&mut command, home, server_url);
        let console = Console::spawn(command, log_file)?;
        Ok(Self {
            console,
            home: copy,
            marker,
            _files: files,
        })
    }

    /// The copy's state file, as seen from outside the copy.
    pub fn state_file(&self) -> PathBuf {
        crate::state_file_in(&self.home)
    }

    /// Stops the copy: its console, its bus, its keyring, one pid at a time.
    pub fn stop(&mut self) {
        self.console.sigkill();
        let needle = format!("E2E_CLONE={}", self.marker);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = pids_with_env(&needle);
            if pids.is_empty() || Instant::now() > deadline {
                return;
            }
            for pid in pids {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Clone {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Live processes whose environment holds the entry `needle` (`KEY=value`).
fn pids_with_env(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|e| e == needle.as_bytes()) {
            let zombie = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false);
            if !zombie {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Runs a statement that changes the license server's database (only
/// where the admin pages cannot be driven).
pub fn sql_write(server: &LicenseServer, statement: &str) -> Result<()> {
    python_sql(server, "rw", statement).map(|_| ())
}

/// Python's sqlite3 module runs a statement on a database file: argv 1 the
/// file, 2 `ro` or `rw`, 3 the statement; rows printed `a|b|c`.
const PY_SQLITE: &str = r#"
import sqlite3, sys
path, mode, statement = sys.argv[1:4]
db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=5)
rows = db.execute(statement).fetchall()
db.commit()
for row in rows:
    print("|".join("" if v is None else str(v) for v in row))
"#;

/// Runs a statement on the license server's database with Python's sqlite3
/// module (python3 is there wherever scripts/test.sh runs; the sqlite3
/// command-line tool may not be); its output, trimmed.
fn python_sql(server: &LicenseServer, mode: &str, statement: &str) -> Result<String> {
    let output = Command::new("python3")
        .args(["-c", PY_SQLITE])
        .arg(&server.db)
        .args([mode, statement])
        .output()
        .context("run python3")?;
    if !output.status.success() {
        bail!(
            "`{statement}` on the server's database failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs the query `query` on the license server's database, read only;
/// rows as `a|b|c` lines.
pub fn sql(server: &LicenseServer, query: &str) -> Result<String> {
    python_sql(server, "ro", query)
}

/// A number from the server's database.
pub fn sql_count(server: &LicenseServer, query: &str) -> Result<i64> {
    let out = sql(server, query)?;
    out.parse()
        .with_context(|| format!("`{query}` answered {out:?}, not a number"))
}

/// Audit log rows with this action.
pub fn audit_count(server: &LicenseServer, action: &str) -> Result<i64> {
    sql_count(
        server,
        &format!("SELECT count(*) FROM audit_log WHERE action = '{action}'"),
    )
}

/// What the server holds about a device and its token chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// `devices.possible_copy_at` is set.
    pub possible_copy: bool,
    /// `devices.revoked_at` is set.
    pub device_revoked: bool,
    /// Token chains of the device.
    pub chains: i64,
    /// Of which revoked.
    pub chains_revoked: i64,
    /// Retries answered on its chains (`token_chains.retries`).
    pub retries: i64,
}

/// The server's record of the device with Server ID `server_id`.
pub fn device_record(server: &LicenseServer, server_id: &str) -> Result<DeviceRecord> {
    let id = server_id.replace('\'', "");
    let row = sql(
        server,
        &format!(
            "SELECT d.possible_copy_at IS NOT NULL, d.revoked_at IS NOT NULL, \
               (SELECT count(*) FROM token_chains c WHERE c.device_id = d.id), \
               (SELECT count(*) FROM token_chains c WHERE c.device_id = d.id AND c.revoked_at IS NOT NULL), \
               (SELECT coalesce(sum(retries), 0) FROM token_chains c WHERE c.device_id = d.id) \
             FROM devices d WHERE d.server_id = '{id}'"
        ),
    )?;
    let f: Vec<i64> = row
        .split('|')
        .map(|x| x.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("device row {row:?}"))?;
    if f.len() != 5 {
        bail!("no device {server_id} in the server's database ({row:?})");
    }
    Ok(DeviceRecord {
        possible_copy: f[0] != 0,
        device_revoked: f[1] != 0,
        chains: f[2],
        chains_revoked: f[3],
        retries: f[4],
    })
}

/// What a console's state file says about its license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateView {
    /// Server ID, if the console is licensed.
    pub server_id: Option<String>,
    /// A verified license account is cached.
    pub has_account: bool,
    /// The server said the license was revoked.
    pub revoked: bool,
    /// `last_verified`, as written.
    pub last_verified: Option<String>,
}

impl StateView {
    /// Licensed, an account cached, not revoked.
    pub fn valid(&self) -> bool {
        self.server_id.is_some() && self.has_account && !self.revoked
    }
}

/// Reads a console's state file.
pub fn read_state(state_file: &Path) -> Result<StateView> {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state_file).with_context(|| format!("read {}", state_file.display()))?,
    )?;
    let persisted = &json["state"];
    let state = &persisted["state"];
    Ok(StateView {
        server_id: persisted["server_id"].as_str().map(str::to_owned),
        has_account: !state["account"].is_null(),
        revoked: state["revoked"].as_bool().unwrap_or(false),
        last_verified: state["last_verified"].as_str().map(str::to_owned),
    })
}

/// A small deterministic random source (xorshift64*), seeded and printed so
/// that a run can be repeated.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From `seed` (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// From the env var `name`, or the clock; returns the seed too.
    pub fn from_env(name: &str) -> (Self, u64) {
        let seed = std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        (Rng::new(seed), seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration uniform in `[0, max]`, in microseconds.
    pub fn duration(&mut self, max: Duration) -> Duration {
        let us = max.as_micros().min(u128::from(u64::MAX)) as u64;
        Duration::from_micros(self.below(us + 1))
    }
}

/// A line to a log under the artifacts folder (created empty first).
pub fn artifact_log(name: &str) -> Result<PathBuf> {
    let path = artifacts_dir()?.join(name);
    std::fs::write(&path, b"")?;
    Ok(path)
}
