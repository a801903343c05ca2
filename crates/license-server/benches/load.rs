//! Load benchmark: the release server binary in its own process, 64
//! concurrent connections on loopback.
//!
//! `cargo bench -p license-server --bench load` (env LOAD_SECS, default 4 s
//! per scenario). Prints refresh grants/s, license fetches/s, device
//! authorizations/s with p50/p99 latency, and the server's peak memory
//! (VmHWM from /proc).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use license_server::{demo, secrets, Store};

const CONCURRENCY: usize = 64;
const BIN: &str = env!("CARGO_BIN_EXE_license-server");

struct Server(Child);

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

struct Report {
    name: &'static str,
    ok: usize,
    errors: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Report {
    fn print(&self) {
        println!(
            "{:<24} {:>9.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ok, {} errors in {:.1} s)",
            self.name,
            self.ok as f64 / self.secs,
            self.p50_ms,
            self.p99_ms,
            self.ok,
            self.errors,
            self.secs
        );
    }
}

/// Runs `CONCURRENCY` workers for `duration`; each call of `op(worker)`
/// is one request, `Ok(true)` if it succeeded.
async fn run<F, Fut>(name: &'static str, duration: Duration, op: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if op(w).await {
                    lat.push(t.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    Report {
        name,
        ok: all.len(),
        errors,
        secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(Duration::from_secs(secs)));
}

async fn bench(duration: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("load.db");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = Store::open(&db_path).await.unwrap();
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

    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--db",
            db_path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let _server = Server(child);
    let base = line.strip_prefix("listening on ").unwrap().to_owned();
    println!(
        "server {base} (pid {pid}), {CONCURRENCY} concurrent connections, {} s per scenario",
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
        assert!(store
            .decide_device_code(pending.id, true, Some(device_id), None, now)
            .await
            .unwrap());
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

    let access: Arc<Vec<String>> =
        Arc::new(tokens.iter().map(|t| t.access_token.clone()).collect());
    let refresh: Arc<Vec<tokio::sync::Mutex<String>>> = Arc::new(
        tokens
            .iter()
            .map(|t| tokio::sync::Mutex::new(t.refresh_token.clone()))
            .collect(),
    );

    // Warm-up: connections and caches.
    {
        let (http, base, access) = (http.clone(), base.clone(), access.clone());
        run("warm-up", Duration::from_millis(500), move |w| {
            let req = http
                .get(format!("{base}/api/v1/license"))
                .bearer_auth(&access[w])
                .send();
            async move { req.await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .await;
    }

    let mut reports = Vec::new();
    {
        let (http, base, access) = (http.clone(), base.clone(), access.clone());
        reports.push(
            run("license fetches", duration, move |w| {
                let req = http
                    .get(format!("{base}/api/v1/license"))
                    .bearer_auth(&access[w])
                    .send();
                async move {
                    match req.await {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            })
            .await,
        );
    }
    {
        let (http, base, refresh) = (http.clone(), base.clone(), refresh.clone());
        reports.push(
            run("refresh grants", duration, move |w| {
                let (http, base, refresh) = (http.clone(), base.clone(), refresh.clone());
                async move {
                    let mut rt = refresh[w].lock().await;
                    let r = http
                        .post(format!("{base}/oauth/token"))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt.as_str()),
                            ("client_id", "license-console"),
                        ])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => match r.json::<Tokens>().await {
                            Ok(t) => {
                                *rt = t.refresh_token;
                                true
                            }
                            Err(_) => false,
                        },
                        _ => false,
                    }
                }
            })
            .await,
        );
    }
    {
        let (http, base) = (http.clone(), base.clone());
        reports.push(
            run("device authorizations", duration, move |_| {
                let req = http
                    .post(format!("{base}/oauth/device_authorization"))
                    .form(&[("client_id", "license-console")])
                    .send();
                async move {
                    match req.await {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            })
            .await,
        );
    }
    println!();
    for r in &reports {
        r.print();
    }
    println!(
        "server peak memory (VmHWM): {:.1} MiB",
        vm_hwm_kib(pid) as f64 / 1024.0
    );
}
