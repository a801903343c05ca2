//! Load benchmark: the release server binary in its own process, 64
//! concurrent connections on loopback.
//!
//! `cargo bench -p license-server --bench load` (env LOAD_SECS, default 4 s
//! per run; LOAD_ONLY=refresh runs only the scenarios whose name contains
//! "refresh"). Prints, with p50/p99/max latency, the server's CPU time per
//! request and the hypervisor's steal during the run:
//! - license fetches/s and refresh grants/s at the server's maximum (closed
//!   loop), then paced at the target rate (open loop, latency counted
//!   from the scheduled send time), and a verdict per target;
//! - device authorizations/s at the maximum, then paced at 3,000/s;
//! - the server's peak memory (VmHWM from /proc);
//! - first of all, two floods of 1,000 concurrent wrong sign-ins
//!   (`sign_ins`): what got checked, what got 429, and the peak memory after
//!   them (LOAD_ONLY=sign-in runs only these);
//! - with LOAD_WAL_SECS=N (or LOAD_ONLY=wal, 600 s), device authorizations
//!   and refresh grants together for N seconds, and the WAL's peak size.
//!
//! LOAD_BACKEND=postgres runs the server on PostgreSQL instead: a throwaway
//! cluster of its own (`scripts/pg-cluster.sh`, fsync on, synchronous_commit
//! off: the durability of SQLite's WAL with synchronous=NORMAL), and
//! LOAD_REPLICAS=N starts N server processes on it, worker w sending to
//! replica w mod N (what a round-robin balancer does, without its CPU).
//! The CPU per request is then split: the servers', PostgreSQL's, the load
//! generator's.
//!
//! The targets (15,000 fetches/s and 3,000 grants/s, p99 < 20 ms) can only be
//! checked paced: in a closed loop of 64 connections, a server doing exactly
//! 3,000 grants/s has a mean latency of 64 / 3,000 s = 21 ms whatever it does.
//!
//! The load generator shares the machine's cores with the server, so it is
//! kept lean, like wrk: one thread, one keep-alive HTTP/1.1 connection per
//! worker, requests written as bytes and responses read by Content-Length.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use license_server::approval::{self, Decision};
use license_server::store::Location;
use license_server::{demo, secrets, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[path = "load/sign_ins.rs"]
mod sign_ins;
#[path = "load/wal.rs"]
mod wal;

const CONCURRENCY: usize = 64;
const BIN: &str = env!("CARGO_BIN_EXE_license-server");

struct Server(Child);

/// The server processes under load, and where each worker sends.
pub struct Servers {
    addrs: Vec<String>,
    pids: Vec<u32>,
    /// Whether PostgreSQL's processes' CPU is counted too.
    postgres: bool,
}

impl Servers {
    fn one(addr: &str, pid: u32) -> Servers {
        Servers {
            addrs: vec![addr.to_owned()],
            pids: vec![pid],
            postgres: false,
        }
    }

    fn addr(&self, worker: usize) -> &str {
        &self.addrs[worker % self.addrs.len()]
    }

    fn server_ticks(&self) -> u64 {
        self.pids.iter().map(|&pid| process_ticks(pid)).sum()
    }

    /// CPU ticks of every `postgres` process (the cluster's backends).
    fn db_ticks(&self) -> u64 {
        if !self.postgres {
            return 0;
        }
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
            })
            .map(process_ticks)
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// One keep-alive HTTP/1.1 connection: a request written as bytes, the
/// response read by its Content-Length.
struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_owned(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `request`, returns the status and the body. After any error the
    /// connection is dropped and the next request opens a new one.
    async fn send(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let result = self.exchange(request).await;
        if !matches!(result, Ok((_, _, true))) {
            self.stream = None;
        }
        result.map(|(status, body, _)| (status, body))
    }

    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                return Err(bad("connection closed"));
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| bad("head"))?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status line"))?;
        let mut length = None;
        let mut keep_alive = true;
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("connection") {
                    keep_alive = !value.eq_ignore_ascii_case("close");
                }
            }
        }
        let length = length.ok_or_else(|| bad("no Content-Length"))?;
        while self.buf.len() < head_end + length {
            if stream.read_buf(&mut self.buf).await? == 0 {
                return Err(bad("connection closed in the body"));
            }
        }
        Ok((
            status,
            self.buf[head_end..head_end + length].to_vec(),
            keep_alive,
        ))
    }
}

/// A request of `body` (form-encoded when given) to `path`.
fn request(
    host: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    form: Option<&str>,
) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some(token) = bearer {
        r.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match form {
        Some(body) => r.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => r.push_str("\r\n"),
    }
    r.into_bytes()
}

/// Base64url tokens need no escaping in a form; anything else is a bug here.
fn form_safe(token: &str) -> &str {
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "token is not base64url"
    );
    token
}

/// Whether worker w's answer (status, body) counts as a success.
type Check = dyn Fn(usize, u16, &[u8]) -> bool;

/// What a worker sends, and whether an answer counts as a success.
struct Scenario {
    name: &'static str,
    /// The target for this scenario, if it sets one.
    target: Option<Target>,
    request: Box<dyn Fn(usize) -> Vec<u8>>,
    check: Box<Check>,
}

struct Report {
    name: &'static str,
    target: Option<Target>,
    /// Requests per second offered by a paced run; `None` for a closed loop.
    offered: Option<f64>,
    ok: usize,
    errors: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The servers' CPU time (user + system) per answered request.
    server_cpu_us: f64,
    /// PostgreSQL's, when it is the database.
    db_cpu_us: Option<f64>,
    /// How many server processes served.
    replicas: usize,
    /// The load generator's (this process's) CPU time per answered request.
    client_cpu_us: f64,
    /// The share of the machine's CPU time the hypervisor took (steal).
    steal_pct: f64,
}

impl Report {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    fn print(&self) {
        let load = match self.offered {
            Some(r) => format!("paced at {r:>6.0}/s"),
            None => "closed loop       ".to_owned(),
        };
        let db = self
            .db_cpu_us
            .map(|us| format!(", PostgreSQL {us:>3.0} µs"))
            .unwrap_or_default();
        let name = match self.replicas {
            1 => self.name.to_owned(),
            n => format!("{} ({n} replicas)", self.name),
        };
        println!(
            "{:<22} {load}  {:>7.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   CPU per request: server {:>3.0} µs{db}, load generator {:>2.0} µs   steal {:>2.0} %   ({} ok, {} errors in {:.1} s)",
            name,
            self.rate(),
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.server_cpu_us,
            self.client_cpu_us,
            self.steal_pct,
            self.ok,
            self.errors,
            self.secs
        );
    }
}

/// How the workers send their requests.
#[derive(Clone, Copy)]
enum Load {
    /// Each worker sends its next request as soon as the last is answered:
    /// the server's maximum rate, where latency is queueing by construction
    /// (Little's law: mean latency = connections / rate).
    Closed,
    /// The workers together send `rate` requests per second on a fixed
    /// schedule (open loop). Latency counts from the scheduled send time, so
    /// a stalled server is charged for every request it delayed (no
    /// coordinated omission).
    Paced { rate: f64 },
}

/// /proc reports CPU times in USER_HZ ticks, 100 per second on Linux.
const TICK_US: f64 = 10_000.0;

/// The process's CPU time so far (user + system), in ticks.
fn process_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name: state is field 3, utime 14, stime 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// The machine's CPU time so far, in ticks: (all, stolen by the hypervisor).
fn machine_ticks() -> (u64, u64) {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let cpu: Vec<u64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest time is
            // already counted in user).
            Some((cpu.iter().take(8).sum(), *cpu.get(7)?))
        })
        .unwrap_or((0, 0))
}

/// Runs `CONCURRENCY` workers, each on its own connection, for `duration`.
async fn run(scenario: &Rc<Scenario>, servers: &Servers, duration: Duration, load: Load) -> Report {
    let server_before = servers.server_ticks();
    let db_before = servers.db_ticks();
    let client_before = process_ticks(std::process::id());
    let machine_before = machine_ticks();
    let start = Instant::now();
    let deadline = start + duration;
    let workers = tokio::task::LocalSet::new();
    let mut handles = Vec::new();
    for w in 0..CONCURRENCY {
        let (scenario, addr) = (scenario.clone(), servers.addr(w).to_owned());
        handles.push(workers.spawn_local(async move {
            let mut conn = Conn::new(&addr);
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0;
            for sent in 0u32.. {
                let at = match load {
                    Load::Closed => Instant::now(),
                    Load::Paced { rate } => {
                        // Worker w sends at (w/N + k) * N/rate: evenly spread.
                        let period = CONCURRENCY as f64 / rate;
                        let offset = f64::from(sent) + w as f64 / CONCURRENCY as f64;
                        let at = start + Duration::from_secs_f64(period * offset);
                        tokio::time::sleep_until(at).await;
                        at
                    }
                };
                if at >= deadline {
                    break;
                }
                let request = (scenario.request)(w);
                match conn.send(&request).await {
                    Ok((status, body)) if (scenario.check)(w, status, &body) => {
                        latencies.push(at.elapsed().as_micros() as u32);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    workers.await;
    let mut all = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let (latencies, e) = handle.await.expect("a worker panicked");
        all.extend(latencies);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let server_ticks = servers.server_ticks() - server_before;
    let db_ticks = servers.db_ticks() - db_before;
    let client_ticks = process_ticks(std::process::id()) - client_before;
    let machine = machine_ticks();
    let (all_ticks, stolen) = (machine.0 - machine_before.0, machine.1 - machine_before.1);
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    Report {
        name: scenario.name,
        target: scenario.target,
        offered: match load {
            Load::Closed => None,
            Load::Paced { rate } => Some(rate),
        },
        ok: all.len(),
        errors,
        secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        server_cpu_us: server_ticks as f64 * TICK_US / all.len().max(1) as f64,
        db_cpu_us: servers
            .postgres
            .then(|| db_ticks as f64 * TICK_US / all.len().max(1) as f64),
        replicas: servers.addrs.len(),
        client_cpu_us: client_ticks as f64 * TICK_US / all.len().max(1) as f64,
        steal_pct: 100.0 * stolen as f64 / all_ticks.max(1) as f64,
    }
}

/// A target of the issue: `rate` requests per second with p99 under `p99_ms`.
#[derive(Clone, Copy)]
struct Target {
    /// The rate of the paced run.
    rate: f64,
    p99_ms: f64,
    /// The least rate of the closed loop (with p99 under the bound too).
    closed_rate: f64,
}

impl Target {
    /// Checks a run of this target's scenario. Closed loop: at least
    /// `closed_rate`, with p99 under the bound. Paced at the target rate: served
    /// at the offered rate (within 2 %) with p99 under the bound. Either way
    /// without errors.
    fn verdict(self, report: &Report) -> String {
        let (rate, how) = match report.offered {
            None => (report.rate() >= self.closed_rate, "closed loop"),
            Some(offered) => (report.rate() >= 0.98 * offered, "paced"),
        };
        let met = rate && report.p99_ms < self.p99_ms && report.errors == 0;
        format!(
            "{:<22} {how:<11}  target {:>6.0}/s with p99 < {:.0} ms: {:>6.0}/s, p99 {:>6.2} ms, {} errors: {}",
            report.name,
            report.offered.map_or(self.closed_rate, |_| self.rate),
            self.p99_ms,
            report.rate(),
            report.p99_ms,
            report.errors,
            if met { "met" } else { "NOT MET" }
        )
    }
}

#[derive(serde::Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

fn main() {
    let secs: u64 = std::env::var("LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    // One thread for the load generator: it should leave the server as much
    // of the 2 cores as it can.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(Duration::from_secs(secs)));
}

/// A throwaway PostgreSQL cluster, stopped when dropped.
struct Cluster(std::path::PathBuf);

const PG_CLUSTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster.sh");

impl Cluster {
    /// Starts one in `dir`; the URL of a new database `load` in it.
    async fn start(dir: &std::path::Path) -> (Cluster, String) {
        let out = Command::new(PG_CLUSTER)
            .arg("start")
            .arg(dir)
            .env("PG_FSYNC", "on")
            .env("PG_SYNCHRONOUS_COMMIT", "off")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE load")
            .execute(&mut conn)
            .await
            .unwrap();
        let url = format!("{}/load", admin.rsplit_once('/').unwrap().0);
        (Cluster(dir.to_owned()), url)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(PG_CLUSTER).arg("stop").arg(&self.0).status();
    }
}

async fn bench(duration: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("load.db");
    let postgres = std::env::var("LOAD_BACKEND").is_ok_and(|b| b == "postgres");
    let replicas: usize = std::env::var("LOAD_REPLICAS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    assert!(
        postgres || replicas == 1,
        "replicas need LOAD_BACKEND=postgres (one process per SQLite database)"
    );
    let (_cluster, location) = if postgres {
        let (cluster, url) = Cluster::start(&dir.path().join("pg")).await;
        (Some(cluster), Location::Postgres(url))
    } else {
        (None, Location::Sqlite(db_path.clone()))
    };
    let db_arg = match &location {
        Location::Sqlite(path) => path.display().to_string(),
        Location::Postgres(url) => url.clone(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = Store::connect(&location).await.unwrap();
    demo::seed(&store, now).await.unwrap();
    let org = store.org_by_name(demo::DEMO_ORG).await.unwrap().unwrap();
    let mut devices = Vec::new();
    for i in 0..CONCURRENCY {
        let d = store
            .create_device(
                org.id,
                &format!("Load Server {i:03}"),
                &secrets::new_server_id(),
                now,
            )
            .await
            .unwrap();
        devices.push(d.id);
    }

    let mut processes = Vec::new();
    let mut addrs = Vec::new();
    let mut pids = Vec::new();
    for _ in 0..replicas {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--db",
                &db_arg,
                "--listen",
                "127.0.0.1:0",
                // One issuer for every replica, as behind a balancer.
                "--issuer",
                "http://license-server.bench.invalid",
                // Every request comes from this one address.
                "--device-authorizations-per-address",
                "4000000000",
                // The sign-in flood comes "through a proxy" from many addresses.
                "--trusted-proxy",
                "127.0.0.1",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        pids.push(child.id());
        let line = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        processes.push(Server(child));
        let base = line.strip_prefix("listening on ").unwrap().to_owned();
        addrs.push(base.strip_prefix("http://").expect("http").to_owned());
    }
    let pid = pids[0];
    let base = format!("http://{}", addrs[0]);
    let servers = Servers {
        addrs,
        pids,
        postgres,
    };
    println!(
        "{} server process(es) on {} ({}), {CONCURRENCY} concurrent connections, {} s per scenario",
        replicas,
        if postgres {
            "PostgreSQL (fsync on, synchronous_commit off)"
        } else {
            "SQLite"
        },
        servers.addrs.join(", "),
        duration.as_secs()
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();

    // One licensed device (token chain) per worker, authorized straight in
    // the database (the admin page's effect).
    let mut tokens = Vec::new();
    for &device_id in &devices {
        let auth: serde_json::Value = http
            .post(format!("{base}/oauth/device_authorization"))
            .form(&[("client_id", "license-console")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = secrets::normalize_user_code(auth["user_code"].as_str().unwrap()).unwrap();
        let pending = store
            .pending_device_code(&code, now)
            .await
            .unwrap()
            .unwrap();
        let device = store.device(device_id).await.unwrap().unwrap();
        let decision = Decision {
            org_id: org.id,
            code: &pending,
            target: approval::Target::Existing(device),
            approve: true,
            user_id: None,
            actor: "bench",
            now,
        };
        assert!(approval::decide(&store, decision).await.unwrap().is_some());
        let t: Tokens = http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", auth["device_code"].as_str().unwrap()),
                ("client_id", "license-console"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(t);
    }
    store.close().await;

    let addr = base.strip_prefix("http://").expect("http").to_owned();
    let access: Vec<String> = tokens.iter().map(|t| t.access_token.clone()).collect();
    let refresh: Rc<Vec<RefCell<String>>> = Rc::new(
        tokens
            .iter()
            .map(|t| RefCell::new(t.refresh_token.clone()))
            .collect(),
    );

    // Device authorizations and refresh grants at once (even workers
    // refresh, odd ones authorize), for the WAL bound.
    let written = Rc::new(wal::Written::default());
    let mixed = Rc::new(Scenario {
        name: "mixed writes",
        target: None,
        request: Box::new({
            let (host, refresh) = (addr.clone(), refresh.clone());
            move |w| {
                if w % 2 == 1 {
                    let form = "client_id=license-console";
                    return request(
                        &host,
                        "POST",
                        "/oauth/device_authorization",
                        None,
                        Some(form),
                    );
                }
                let token = refresh[w].borrow().clone();
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}&client_id=license-console",
                    form_safe(&token)
                );
                request(&host, "POST", "/oauth/token", None, Some(&form))
            }
        }),
        check: Box::new({
            let (refresh, written) = (refresh.clone(), written.clone());
            move |w, status, body| {
                if status != 200 {
                    return false;
                }
                if w % 2 == 1 {
                    let ok = body.starts_with(b"{");
                    if ok {
                        written.authorizations.set(written.authorizations.get() + 1);
                    }
                    return ok;
                }
                let ok = serde_json::from_slice::<Tokens>(body)
                    .map(|t| *refresh[w].borrow_mut() = t.refresh_token)
                    .is_ok();
                if ok {
                    written.refreshes.set(written.refreshes.get() + 1);
                }
                ok
            }
        }),
    });

    let fetch = Rc::new(Scenario {
        name: "license fetches",
        target: Some(Target {
            rate: 15_000.0,
            p99_ms: 20.0,
            closed_rate: 15_000.0,
        }),
        request: Box::new({
            let host = addr.clone();
            move |w| request(&host, "GET", "/api/v1/license", Some(&access[w]), None)
        }),
        check: Box::new(|_, status, body| {
            status == 200 && body.starts_with(b"{\"license_document\"")
        }),
    });
    let grant = Rc::new(Scenario {
        name: "refresh grants",
        target: Some(Target {
            rate: 3_000.0,
            p99_ms: 20.0,
            closed_rate: 3_000.0,
        }),
        request: Box::new({
            let (host, refresh) = (addr.clone(), refresh.clone());
            move |w| {
                let token = refresh[w].borrow().clone();
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}&client_id=license-console",
                    form_safe(&token)
                );
                request(&host, "POST", "/oauth/token", None, Some(&form))
            }
        }),
        check: Box::new(move |w, status, body| {
            status == 200
                && serde_json::from_slice::<Tokens>(body)
                    .map(|t| *refresh[w].borrow_mut() = t.refresh_token)
                    .is_ok()
        }),
    });
    let authorize = Rc::new(Scenario {
        name: "device authorizations",
        // Issue 12: at least 9,000/s closed loop, p99 < 20 ms at 3,000/s.
        target: Some(Target {
            rate: 3_000.0,
            p99_ms: 20.0,
            closed_rate: 9_000.0,
        }),
        request: Box::new({
            let host = addr.clone();
            move |_| {
                request(
                    &host,
                    "POST",
                    "/oauth/device_authorization",
                    None,
                    Some("client_id=license-console"),
                )
            }
        }),
        check: Box::new(|_, status, body| status == 200 && body.starts_with(b"{")),
    });

    // Warm-up: connections and caches.
    run(&fetch, &servers, Duration::from_millis(500), Load::Closed).await;

    // LOAD_ONLY=refresh runs only the scenarios whose name contains "refresh".
    let only = std::env::var("LOAD_ONLY").unwrap_or_default();
    if !postgres && "sign-in".contains(only.as_str()) {
        sign_ins::run(&addr, pid, demo::DEMO_ADMIN).await;
    }
    let mut reports = Vec::new();
    for scenario in [&fetch, &grant, &authorize] {
        if !scenario.name.contains(only.as_str()) {
            continue;
        }
        reports.push(run(scenario, &servers, duration, Load::Closed).await);
        if let Some(target) = scenario.target {
            let paced = Load::Paced { rate: target.rate };
            reports.push(run(scenario, &servers, duration, paced).await);
        }
    }
    let wal_secs: u64 = std::env::var("LOAD_WAL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if only == "wal" { 600 } else { 0 });
    if wal_secs > 0 && !postgres {
        let d = Duration::from_secs(wal_secs);
        reports.push(wal::run_bounded(&mixed, &written, &addr, pid, &db_path, d).await);
    }
    println!();
    for r in &reports {
        r.print();
    }
    println!(
        "server peak memory (VmHWM): {:.1} MiB",
        vm_hwm_kib(pid) as f64 / 1024.0
    );
    drop(processes);
    println!();
    for report in &reports {
        if let Some(target) = report.target {
            println!("{}", target.verdict(report));
        }
    }
}
