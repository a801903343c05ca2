//! Harness for the end-to-end suite: the real console binary in a real window
//! (Xvfb), driven through WebDriver (tauri-driver + WebKitWebDriver), and the
//! real license server on a free port with a temporary database.
//!
//! `scripts/e2e.sh` provides what is shared by a whole run: the X display, a
//! private session bus with gnome-keyring unlocked, `dbus-monitor` recording
//! notification calls, and a temporary HOME. This crate provides what each
//! test needs: processes that are always killed, a timeout on every step, and
//! screenshots under `target/e2e/`.

pub mod admin;
pub mod cycles;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long one ordinary step (a click, a lookup) may take.
pub const STEP: Duration = Duration::from_secs(20);

/// The workspace root (the folder of the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives inside the workspace")
        .to_path_buf()
}

/// The cargo target folder the binaries under test were built into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where screenshots and logs of the suite go.
pub fn artifacts_dir() -> Result<PathBuf> {
    let dir = target_dir().join("e2e");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Path of a binary of this workspace, built by `scripts/e2e.sh` before the run.
/// `E2E_PROFILE` picks `debug` (default) or `release`.
pub fn binary(name: &str) -> Result<PathBuf> {
    let profile = std::env::var("E2E_PROFILE").unwrap_or_else(|_| "debug".into());
    let path = target_dir().join(profile).join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it first (scripts/e2e.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// Runs one step of a test under a deadline, naming the step when it fails.
pub async fn step<T, F>(name: &str, limit: Duration, fut: F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.with_context(|| format!("step `{name}` failed")),
        Err(_) => Err(anyhow!("step `{name}` timed out after {limit:?}")),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(listener.local_addr()?.port())
}

fn wait_for_port(port: u16, limit: Duration) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listened on port {port} within {limit:?}")
}

/// A child process in its own process group, killed with its whole group when
/// dropped, pass or fail, so nothing outlives the test.
#[derive(Debug)]
pub struct Guarded {
    child: Child,
    name: String,
}

impl Guarded {
    /// Spawns `command` in a new process group.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Self {
            child,
            name: name.to_string(),
        })
    }

    /// Process id of the group leader.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited already.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the whole process group and reaps the leader.
    pub fn kill(&mut self) {
        // Signal the group: tauri-driver's WebKitWebDriver and the app it
        // launched would otherwise survive their parent.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.name;
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// tauri-driver (which runs WebKitWebDriver, which runs the console) on free
/// ports, with a HOME and XDG folders of its own, so each test starts from a
/// console that has never run.
#[derive(Debug)]
pub struct Driver {
    process: Guarded,
    port: u16,
    home: PathBuf,
    _owned_home: Option<tempfile::TempDir>,
}

impl Driver {
    /// Starts tauri-driver with a fresh HOME. `env` is passed down to the
    /// console it launches.
    pub fn start(env: &[(&str, String)]) -> Result<Self> {
        let home = tempfile::Builder::new().prefix("console-home.").tempdir()?;
        let path = home.path().to_path_buf();
        let mut driver = Self::start_in(&path, env)?;
        driver._owned_home = Some(home);
        Ok(driver)
    }

    /// Starts tauri-driver with the HOME `home`, which outlives it: a second
    /// driver in the same HOME sees the console restart with its state.
    pub fn start_in(home: &Path, env: &[(&str, String)]) -> Result<Self> {
        if std::env::var_os("DISPLAY").is_none() {
            bail!("DISPLAY is not set: run the suite through scripts/e2e.sh (Xvfb)");
        }
        let port = free_port()?;
        let native = free_port()?;
        let log = std::fs::File::create(artifacts_dir()?.join(format!("tauri-driver-{port}.log")))?;
        let home = home.to_path_buf();
        let mut command = Command::new(tauri_driver_path());
        command
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("RUST_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let process = Guarded::spawn("tauri-driver", &mut command)?;
        wait_for_port(port, Duration::from_secs(15))?;
        Ok(Self {
            process,
            port,
            home,
            _owned_home: None,
        })
    }

    /// The HOME the console runs with.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The console's state file in its HOME.
    pub fn state_file(&self) -> PathBuf {
        state_file_in(&self.home)
    }

    /// Opens a WebDriver session, which launches the console binary.
    pub async fn launch(&self, application: &Path) -> Result<Client> {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": application }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        step("open a WebDriver session", Duration::from_secs(60), async {
            // tauri-driver can accept the port a moment before it answers
            // (seen once as "did not respond ... SendRequest"); no session
            // exists yet then, so asking again is safe.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let http = hyper_util::client::legacy::connect::HttpConnector::new();
                let result = ClientBuilder::new(http)
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
                use fantoccini::error::NewSessionError as E;
                match result {
                    Ok(client) => return Ok(client),
                    Err(E::Failed(_) | E::FailedC(_) | E::Lost(_)) if attempt < 3 => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        })
        .await
    }

    /// Stops the driver, WebKitWebDriver and the console, and waits until the
    /// console is gone: a console launched next would otherwise find the
    /// dying one's single-instance name still on the bus.
    pub fn stop(mut self) {
        self.process.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let running = Command::new("pgrep")
                .args(["-x", "license-console"])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The bus drops a dead peer's names asynchronously.
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn tauri_driver_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    let home_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    let candidate = home_cargo.join("bin").join("tauri-driver");
    if candidate.is_file() {
        candidate
    } else {
        PathBuf::from("tauri-driver")
    }
}

/// Waits for an element and returns its text.
pub async fn text_of(client: &Client, css: &str) -> Result<String> {
    step(&format!("read `{css}`"), STEP, async {
        let element = client.wait().for_element(Locator::Css(css)).await?;
        Ok(element.text().await?)
    })
    .await
}

/// Saves a screenshot of the console's window as `target/e2e/<name>.png` and
/// returns its path.
///
/// Call it once the DOM shows what the screen's name says (the callers wait
/// for its text first). The picture comes from the X server, not from
/// WebDriver: WebKitWebDriver can hand back a frame painted before the last
/// DOM change, which once made `grace.png` show the Not licensed screen.
pub async fn screenshot(client: &Client, name: &str) -> Result<PathBuf> {
    let path = artifacts_dir()?.join(format!("{name}.png"));
    // Two animation frames: the page has painted what the DOM holds.
    step("wait for the page to paint", STEP, async {
        client
            .execute_async(
                "const done = arguments[arguments.length - 1];\n\
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await?;
        Ok(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(150)).await;
    match console_window()? {
        Some(window) => {
            let out = Command::new("import")
                .args(["-window", &window])
                .arg(&path)
                .output()
                .context("run ImageMagick's import")?;
            if !out.status.success() {
                bail!(
                    "import -window {window} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        // No X window to read (not under Xvfb): WebDriver's picture.
        None => {
            let png = step("take a screenshot", STEP, async {
                Ok(client.screenshot().await?)
            })
            .await?;
            std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(path)
}

/// The X window id of the visible console window, if there is an X server.
fn console_window() -> Result<Option<String>> {
    if std::env::var_os("DISPLAY").is_none() {
        return Ok(None);
    }
    let out = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--name", "^License Console$"])
        .output()
        .context("run xdotool")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned))
}

/// The license server on a free loopback port with a temporary database.
#[derive(Debug)]
pub struct LicenseServer {
    process: Guarded,
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub url: String,
    /// The database file, for `license-server device authorize --db ...`.
    pub db: PathBuf,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl LicenseServer {
    /// Starts `license-server demo` (the demo account) with extra `args`.
    pub fn start_demo(args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("license-server.sqlite");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (process, url) = Self::spawn(&db, "127.0.0.1:0", &args)?;
        Ok(Self {
            process,
            url,
            db,
            args,
            _dir: dir,
        })
    }

    fn spawn(db: &Path, listen: &str, args: &[String]) -> Result<(Guarded, String)> {
        let mut command = Command::new(binary("license-server")?);
        command
            .arg("demo")
            .arg("--db")
            .arg(db)
            .args(["--listen", listen])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = Guarded::spawn("license-server", &mut command)?;
        let stdout = process
            .child
            .stdout
            .take()
            .context("license-server stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .context("license-server did not print `listening on ...` within 30 s")?;
        Ok((process, url))
    }

    /// Starts the server again on the same address with the same database.
    pub fn restart(&mut self) -> Result<()> {
        self.process.kill();
        let listen = self.url.trim_start_matches("http://").to_string();
        let (process, url) = Self::spawn(&self.db, &listen, &self.args)?;
        self.process = process;
        self.url = url;
        Ok(())
    }

    /// Stops the server (the database stays until this value is dropped).
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

impl LicenseServer {
    /// Approves a pending User Code for `device` of the demo organization,
    /// as an admin's script would, and returns the device's Server ID.
    pub fn authorize(&self, device: &str, user_code: &str) -> Result<String> {
        self.authorize_registering(device, user_code, false)
    }

    /// [`LicenseServer::authorize`], registering the device first if Demo
    /// Store has none of that name when `register`.
    pub fn authorize_registering(
        &self,
        device: &str,
        user_code: &str,
        register: bool,
    ) -> Result<String> {
        let output = Command::new(binary("license-server")?)
            .args(["device", "authorize", "--db"])
            .arg(&self.db)
            .args([
                "--org",
                "Demo Store",
                "--device",
                device,
                "--user-code",
                user_code,
            ])
            .args(register.then_some("--register"))
            .output()
            .context("run license-server device authorize")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "device authorize failed: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // "authorized NAME (SERVER_ID) in ORG"
        let id = stdout
            .rsplit_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(id, _)| id.to_string())
            .with_context(|| format!("no Server ID in `{stdout}`"))?;
        Ok(id)
    }
}

/// The keychain entry of the license of `server_id` at `server_url`, as
/// `secret-tool` sees it in this run's Secret Service: attributes and secret.
pub fn keychain_items(server_id: &str, server_url: &str) -> Result<String> {
    // One entry per license: the account is "<Server ID> <server URL>". Other
    // tests of the run leave their own entries in the same keyring.
    let account = format!("{server_id} {server_url}");
    let output = Command::new("secret-tool")
        .args([
            "search",
            "--all",
            "--unlock",
            "service",
            "com.licenseconsole.console",
            "username",
            &account,
        ])
        .output()
        .context("run secret-tool")?;
    // secret-tool prints attributes on stderr and secrets on stdout.
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                if let Ok(bytes) = std::fs::read(&path) {
                    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        hits.push(path);
                    }
                }
            }
        }
    }
    hits
}

/// Clicks the element matching `css` once it is there.
pub async fn click(client: &Client, css: &str) -> Result<()> {
    step(&format!("click `{css}`"), STEP, async {
        client
            .wait()
            .for_element(Locator::Css(css))
            .await?
            .click()
            .await?;
        Ok(())
    })
    .await
}

/// Types `text` into the field matching `css`, replacing what it held.
pub async fn fill(client: &Client, css: &str, text: &str) -> Result<()> {
    step(&format!("type into `{css}`"), STEP, async {
        let field = client.wait().for_element(Locator::Css(css)).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        let now = field.prop("value").await?.unwrap_or_default();
        anyhow::ensure!(now == text, "the field holds {now:?} after typing {text:?}");
        Ok(())
    })
    .await
}

/// Scrolls the element matching `css` to the top of the window (for a
/// screenshot of what lies below the fold).
pub async fn scroll_to(client: &Client, css: &str) -> Result<()> {
    step(&format!("scroll to `{css}`"), STEP, async {
        let element = client.wait().for_element(Locator::Css(css)).await?;
        client
            .execute(
                "arguments[0].scrollIntoView({ block: 'start' });",
                vec![serde_json::to_value(&element)?],
            )
            .await?;
        Ok(())
    })
    .await
}

/// Puts `text` into the field matching `css` as a paste would: a few
/// kilobytes typed key by key take long and prove nothing more.
pub async fn paste(client: &Client, css: &str, text: &str) -> Result<()> {
    step(&format!("paste into `{css}`"), STEP, async {
        let field = client.wait().for_element(Locator::Css(css)).await?;
        client
            .execute(
                "arguments[0].value = arguments[1];\n\
                 arguments[0].dispatchEvent(new Event('input', { bubbles: true }));",
                vec![serde_json::to_value(&field)?, text.into()],
            )
            .await?;
        Ok(())
    })
    .await
}

/// The current value of the form field matching `css`.
pub async fn value_of(client: &Client, css: &str) -> Result<String> {
    step(&format!("read the value of `{css}`"), STEP, async {
        let field = client.wait().for_element(Locator::Css(css)).await?;
        Ok(field.prop("value").await?.unwrap_or_default())
    })
    .await
}

/// Waits until the text of `css` satisfies `pred`, returning it.
pub async fn wait_text(
    client: &Client,
    css: &str,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> Result<String> {
    step(&format!("wait for `{css}`"), limit, async {
        loop {
            if let Ok(element) = client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if pred(&text) {
                        return Ok(text);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

/// Reads an attribute of the element matching `css`.
pub async fn attr(client: &Client, css: &str, name: &str) -> Result<Option<String>> {
    step(&format!("read {name} of `{css}`"), STEP, async {
        let element = client.wait().for_element(Locator::Css(css)).await?;
        Ok(element.attr(name).await?)
    })
    .await
}

/// Notification calls recorded by `dbus-monitor` in this run so far.
pub fn notifications_log() -> String {
    std::fs::read_to_string(target_dir().join("e2e/notifications.log")).unwrap_or_default()
}

/// Every X window whose title (`_NET_WM_NAME` or `WM_NAME`) is `title`.
fn titled_windows(
    conn: &impl x11rb::connection::Connection,
    root: u32,
    title: &str,
) -> Result<Vec<u32>> {
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt};
    let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let mut stack = vec![root];
    let mut found = Vec::new();
    while let Some(window) = stack.pop() {
        for property in [net_wm_name, u32::from(AtomEnum::WM_NAME)] {
            let reply = conn
                .get_property(false, window, property, AtomEnum::ANY, 0, 256)?
                .reply()?;
            if reply.value == title.as_bytes() {
                found.push(window);
                break;
            }
        }
        stack.extend(conn.query_tree(window)?.reply()?.children);
    }
    Ok(found)
}

/// Asks the window titled `title` to close, as a window manager's close
/// button does (WM_DELETE_WINDOW), and returns whether it found one. GTK
/// gives more than one X window the title (the toplevel and its client
/// leader): each one that speaks WM_PROTOCOLS gets the request.
pub fn request_window_close(title: &str) -> Result<bool> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt, EventMask};
    let (conn, screen) = x11rb::connect(None).context("connect to the X display")?;
    let root = conn.setup().roots[screen].root;
    let wm_protocols = conn.intern_atom(false, b"WM_PROTOCOLS")?.reply()?.atom;
    let wm_delete = conn.intern_atom(false, b"WM_DELETE_WINDOW")?.reply()?.atom;
    let mut sent = false;
    for window in titled_windows(&conn, root, title)? {
        let protocols = conn
            .get_property(false, window, wm_protocols, AtomEnum::ATOM, 0, 64)?
            .reply()?;
        let speaks_delete = protocols
            .value32()
            .is_some_and(|mut atoms| atoms.any(|a| a == wm_delete));
        if speaks_delete {
            let event = ClientMessageEvent::new(32, window, wm_protocols, [wm_delete, 0, 0, 0, 0]);
            conn.send_event(false, window, EventMask::NO_EVENT, event)?;
            sent = true;
        }
    }
    conn.flush()?;
    Ok(sent)
}

/// Whether a top-level window titled `title` is mapped (visible).
pub fn window_visible(title: &str) -> Result<bool> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, MapState};
    let (conn, screen) = x11rb::connect(None).context("connect to the X display")?;
    let root = conn.setup().roots[screen].root;
    for window in titled_windows(&conn, root, title)? {
        if conn.get_window_attributes(window)?.reply()?.map_state == MapState::VIEWABLE {
            return Ok(true);
        }
    }
    Ok(false)
}

// Flows shared by the tests.

/// The demo device the tests license.
pub const DEVICE: &str = "Store 001 POS Server";

/// Starts a driver and the console in HOME `home` (which outlives them, so
/// a later launch in it is a restart) with `env`.
pub async fn launch_in(home: &Path, env: &[(&str, String)]) -> Result<(Driver, Client)> {
    let driver = Driver::start_in(home, env)?;
    let client = driver.launch(&binary("license-console")?).await?;
    Ok((driver, client))
}

/// Starts a driver and the console pointed at `server_url`, with a fresh HOME.
pub async fn launch(server_url: &str) -> Result<(Driver, Client)> {
    let driver = Driver::start(&[("LICENSE_CONSOLE_SERVER_URL", server_url.to_string())])?;
    let client = driver.launch(&binary("license-console")?).await?;
    Ok((driver, client))
}

/// Takes a screenshot if the test failed, then closes the session and the driver.
pub async fn finish(driver: Driver, client: Client, result: Result<()>) -> Result<()> {
    if result.is_err() {
        let _ = screenshot(&client, &format!("failed-{}", std::process::id())).await;
    }
    let _ = step("close the session", STEP, async {
        Ok(client.close().await?)
    })
    .await;
    driver.stop();
    result
}

/// Next, read the User Code, authorize it on the server, Complete Authorization.
/// Returns the Server ID the server assigned.
pub async fn acquire(
    client: &Client,
    server: &LicenseServer,
    shot: Option<&str>,
) -> Result<String> {
    acquire_as(client, server, DEVICE, shot).await
}

/// [`acquire`] for the device named `device` (registered if new).
pub async fn acquire_as(
    client: &Client,
    server: &LicenseServer,
    device: &str,
    shot: Option<&str>,
) -> Result<String> {
    let prefilled = step("read the server URL field", STEP, async {
        let input = client
            .wait()
            .for_element(Locator::Css("[data-testid=server-url]"))
            .await?;
        Ok(input.prop("value").await?.unwrap_or_default())
    })
    .await?;
    assert_eq!(
        prefilled, server.url,
        "the server URL is prefilled from settings"
    );
    click(client, "[data-testid=next]").await?;
    let code = wait_text(client, "[data-testid=user-code]", STEP, |t| t.len() == 9).await?;
    assert!(
        code.chars().nth(4) == Some('-')
            && code.chars().filter(|c| c.is_ascii_uppercase()).count() == 8,
        "user code {code:?} looks like XXXX-XXXX"
    );
    if let Some(name) = shot {
        screenshot(client, name).await?;
    }
    let server_id = server.authorize_registering(device, &code, device != DEVICE)?;
    click(client, "[data-testid=complete]").await?;
    wait_text(
        client,
        "[data-testid=field-server-id]",
        Duration::from_secs(30),
        |t| t == server_id,
    )
    .await?;
    Ok(server_id)
}

/// The console's state file under `home`.
pub fn state_file_in(home: &Path) -> PathBuf {
    home.join(".local/share/com.licenseconsole.console/state.json")
}

/// `last_verified` from a console's state file: the file holds the sealed
/// state under `"state"`, and the license state under its `"state"`.
pub fn last_verified_in(state_file: &Path) -> Result<OffsetDateTime> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(state_file)?)?;
    let at = json["state"]["state"]["last_verified"]
        .as_str()
        .context("last_verified in the state file")?;
    parse_time(at)
}

/// A console licensed by `server` in a HOME of its own, then closed: that
/// HOME, and the environment that points a console at the server.
pub async fn licensed_home(
    server: &LicenseServer,
) -> Result<(tempfile::TempDir, [(&'static str, String); 1])> {
    licensed_home_as(server, DEVICE).await
}

/// [`licensed_home`] for the device named `device` (registered if new).
pub async fn licensed_home_as(
    server: &LicenseServer,
    device: &str,
) -> Result<(tempfile::TempDir, [(&'static str, String); 1])> {
    let home = tempfile::Builder::new().prefix("console-home.").tempdir()?;
    let env = [("LICENSE_CONSOLE_SERVER_URL", server.url.clone())];
    let (driver, client) = launch_in(home.path(), &env).await?;
    let result = async {
        acquire_as(&client, server, device, None).await?;
        Ok(())
    }
    .await;
    finish(driver, client, result).await?;
    Ok((home, env))
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("parse time {s:?}"))
}

/// A field of the console's keychain secret (JSON) in `secret-tool` output.
pub fn secret_field(items: &str, field: &str) -> Result<String> {
    let key = format!("\"{field}\":\"");
    let start = items
        .find(&key)
        .with_context(|| format!("no {field} in keychain"))?
        + key.len();
    let end = items[start..].find('"').context("unterminated secret")? + start;
    Ok(items[start..end].to_string())
}

/// Seconds of a countdown shown as "2d 23h 59m 59s".
pub fn parse_countdown(text: &str) -> Result<i64> {
    let mut total = 0i64;
    for part in text.split_whitespace() {
        let (num, unit) = part.split_at(part.len() - 1);
        let n: i64 = num
            .parse()
            .with_context(|| format!("countdown part {part:?}"))?;
        total += n * match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => bail!("unknown unit in {part:?}"),
        };
    }
    Ok(total)
}
