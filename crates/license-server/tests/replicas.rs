//! Three server processes (replicas) on one PostgreSQL database behind a
//! real nginx, round robin, as the README's example configures them: the
//! device flow across replicas, revocations, refresh-token reuse, concurrent
//! exchanges, shared lockouts and DPoP proofs, key changes, a replica killed
//! with SIGKILL under load, and the database lost and back.
//!
//! Needs `LICENSE_SERVER_TEST_POSTGRES` (`scripts/test-postgres.sh` sets it)
//! and nginx (`scripts/setup.sh` installs it); without them the tests say so
//! and pass, as the SQLite run of the suite has no cluster.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::*;
use license_server::demo;

const BIN: &str = env!("CARGO_BIN_EXE_license-server");
const README: &str = include_str!("../README.md");

/// A replica: its process and its own address.
struct Replica {
    base: String,
    process: Option<Spawned>,
}

impl Replica {
    fn kill(&mut self) {
        // `Child::kill` is SIGKILL on Unix.
        drop(self.process.take());
    }
}

/// nginx's master process, stopped with SIGTERM when dropped (SIGKILL
/// would leave its worker serving).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

struct Site3 {
    proxy: String,
    replicas: Vec<Replica>,
    db_url: String,
    admin_password: String,
    vendor_password: String,
    _nginx: Nginx,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh database in the cluster, by URL.
async fn database() -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    match test_database(&dir).await {
        license_server::store::Location::Postgres(url) => Some(url),
        _ => None,
    }
}

fn nginx_present() -> bool {
    Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `license-server ARGS` and waits for its `listening on` line; what
/// it printed up to there and, for `demo`, the sign-in lines that follow.
fn spawn_server(args: &[&str]) -> (Spawned, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        let done = line.starts_with("listening on ");
        said.push(line);
        if done {
            break;
        }
    }
    // The demo's sign-ins come right after `listening on`.
    if args[0] == "demo" {
        said.extend(lines.take(6).map_while(Result::ok));
    }
    (Spawned(child), said)
}

/// The README's nginx block, with its ports replaced by the proxy's and the
/// replicas', inside a configuration whose files are all in `dir`.
fn nginx_conf(dir: &Path, proxy: u16, replicas: &[u16]) -> String {
    let block = README
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the nginx configuration");
    let mut block = block.replace("listen 8080;", &format!("listen 127.0.0.1:{proxy};"));
    for (i, port) in replicas.iter().enumerate() {
        block = block.replace(
            &format!("127.0.0.1:{};", 8081 + i),
            &format!("127.0.0.1:{port};"),
        );
        block = block.replace(
            &format!("127.0.0.1:{} ", 8081 + i),
            &format!("127.0.0.1:{port} "),
        );
    }
    let d = dir.display();
    let user = if unsafe_is_root() {
        "user root root;\n"
    } else {
        ""
    };
    format!(
        "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{block}}}\n"
    )
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Three replicas (the first seeds the demo account) and nginx in front.
async fn start_site(db_url: &str) -> Site3 {
    let dir = tempfile::tempdir().unwrap();
    let proxy_port = free_port();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut replicas = Vec::new();
    let mut sign_ins = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let listen = format!("127.0.0.1:{port}");
        let command = if i == 0 { "demo" } else { "serve" };
        let (process, said) = spawn_server(&[
            command,
            "--db",
            db_url,
            "--listen",
            &listen,
            "--issuer",
            &proxy,
            "--trusted-proxy",
            "127.0.0.1",
        ]);
        if i == 0 {
            sign_ins = said;
        }
        replicas.push(Replica {
            base: format!("http://{listen}"),
            process: Some(process),
        });
    }
    let password = |label: &str| {
        sign_ins
            .iter()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("the demo printed {label}: {sign_ins:?}"))
            .trim()
            .to_owned()
    };
    let admin_password = password("admin password:");
    let vendor_password = password("vendor operator password:");
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path(), proxy_port, &ports)).unwrap();
    let nginx = Nginx(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        if let Ok(r) = api().get(format!("{proxy}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Site3 {
        proxy,
        replicas,
        db_url: db_url.to_owned(),
        admin_password,
        vendor_password,
        _nginx: nginx,
        _dir: dir,
    }
}

impl Site3 {
    fn replica(&self, i: usize) -> &str {
        &self.replicas[i].base
    }

    /// A signed-in admin browser on replica `i`.
    async fn admin_on(&self, i: usize) -> reqwest::Client {
        let client = browser();
        sign_in_as(
            self.replica(i),
            &client,
            demo::DEMO_ADMIN,
            &self.admin_password,
        )
        .await;
        client
    }

    /// Authorizes `device` for a user code with the CLI (registering it).
    fn authorize_cli(&self, device: &str, user_code: &str) {
        let out = Command::new(BIN)
            .args(["device", "authorize", "--db", &self.db_url])
            .args(["--org", demo::DEMO_ORG, "--device", device, "--register"])
            .args(["--user-code", user_code])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How long until replica `i` refuses `access` (at most `limit`, else
    /// the test fails).
    async fn refused_by(&self, i: usize, access: &str, limit: Duration) -> Duration {
        let what = format!("replica {} refuses the token", i + 1);
        within(limit, &what, || async move {
            license_status(self.replica(i), access).await == 401
        })
        .await
    }

    /// A licensed device through the proxy: its token response.
    async fn license(&self, device: &str) -> serde_json::Value {
        let auth = device_authorization_at(&self.proxy).await;
        self.authorize_cli(device, auth["user_code"].as_str().unwrap());
        let (status, body) = poll(self.proxy.as_str(), auth["device_code"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// `GET /api/v1/license` on `base` with a bearer token: the status.
async fn license_status(base: &str, access: &str) -> u16 {
    api()
        .get(format!("{base}/api/v1/license"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn token(body: &serde_json::Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

/// Polls `check` every 20 ms until it holds; how long that took (at most
/// `limit`, else the test fails).
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn skip(why: &str) {
    eprintln!("skipped: {why} (scripts/test-postgres.sh runs this test)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_nginx_act_as_one_server() {
    if !nginx_present() {
        return skip("nginx is not installed");
    }
    let Some(db_url) = database().await else {
        return skip("LICENSE_SERVER_TEST_POSTGRES is not set");
    };
    let site = start_site(&db_url).await;

    // 1. The device flow across replicas: started on the first, authorized
    //    on the second's admin page, polled on the third.
    let auth = device_authorization_at(site.replica(0)).await;
    let user_code = auth["user_code"].as_str().unwrap();
    let admin = site.admin_on(1).await;
    let done = decide_on_page(
        site.replica(1),
        &admin,
        "Store 001 POS Server",
        user_code,
        "authorize",
    )
    .await;
    assert!(done.contains("authorized"), "{done}");
    let (status, pair) = poll(site.replica(2), auth["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{pair}");
    let access = token(&pair, "access_token");
    for i in 0..3 {
        assert_eq!(license_status(site.replica(i), &access).await, 200);
    }
    println!("device flow: started on replica 1, authorized on 2, polled on 3");

    // 2. A revocation on one replica is refused by the others within a
    //    second, though each has the token cached (verified just above).
    let revoked = api()
        .post(format!("{}/oauth/revoke", site.replica(0)))
        .form(&[
            ("token", token(&pair, "refresh_token").as_str()),
            ("client_id", "license-console"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    for i in 1..3 {
        let took = site.refused_by(i, &access, Duration::from_secs(1)).await;
        println!(
            "revocation on replica 1 refused by replica {} after {took:?}",
            i + 1
        );
    }

    // 3. Refresh-token reuse is detected across replicas: exchanged on the
    //    first, its successor on the second, the first token again on the
    //    third revokes the chain everywhere.
    let pair = site.license("Replica Reuse Server").await;
    let first = token(&pair, "refresh_token");
    let (status, second) = refresh(site.replica(0), &first).await;
    assert_eq!(status, 200, "{second}");
    let (status, third) = refresh(site.replica(1), &token(&second, "refresh_token")).await;
    assert_eq!(status, 200, "{third}");
    let (status, reused) = refresh(site.replica(2), &first).await;
    assert_eq!(status, 400, "{reused}");
    assert_eq!(error_of(&reused), "invalid_grant");
    let latest = token(&third, "access_token");
    for i in 0..3 {
        assert_eq!(
            license_status(site.replica(i), &latest).await,
            401,
            "the chain is revoked on replica {}",
            i + 1
        );
    }
    let (status, _) = refresh(site.replica(0), &token(&third, "refresh_token")).await;
    assert_eq!(status, 400, "the chain's newest refresh token is dead too");
    println!("reuse: detected on replica 3, chain refused on all three");

    // 4. One refresh token exchanged on two replicas at once: exactly one
    //    new pair, which both answers carry.
    let pair = site.license("Replica Race Server").await;
    let rt = token(&pair, "refresh_token");
    let ((sa, a), (sb, b)) =
        tokio::join!(refresh(site.replica(0), &rt), refresh(site.replica(1), &rt));
    assert_eq!((sa, sb), (200, 200), "{a} {b}");
    assert_eq!(
        token(&a, "refresh_token"),
        token(&b, "refresh_token"),
        "both replicas answer with the one new pair"
    );
    let raw = sqlx::PgPool::connect(&site.db_url).await.unwrap();
    let (rows, live): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE r.used_at IS NULL)
           FROM refresh_tokens r JOIN token_chains c ON c.id = r.chain_id
           JOIN devices d ON d.id = c.device_id WHERE d.name = 'Replica Race Server'",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!((rows, live), (2, 1), "the first token and one successor");
    println!("concurrent exchange on replicas 1 and 2: one new pair");

    // 5. Sign-in attempts are counted on every replica: wrong passwords
    //    spread over the three are met with the account's backoff (after
    //    five free attempts, 1 s, 2 s, 4 s …), which replicas counting
    //    alone (at most three each here) would never reach.
    let mut refused_at = None;
    for i in 0..9 {
        let status =
            sign_in_status(site.replica(i % 3), &browser(), demo::DEMO_VENDOR, "wrong").await;
        assert!(
            status == 401 || status == 429,
            "attempt {}: {status}",
            i + 1
        );
        if status == 429 {
            refused_at = Some(i + 1);
            break;
        }
    }
    let refused_at = refused_at.expect("the backoff is shared by the replicas");
    assert!(refused_at > 5, "five attempts are free: {refused_at}");
    let status = sign_in_status(
        site.replica(refused_at % 3),
        &browser(),
        demo::DEMO_VENDOR,
        &site.vendor_password,
    )
    .await;
    assert_eq!(
        status, 429,
        "the right password waits too, on the next replica"
    );
    println!("sign-in backoff shared: attempt {refused_at} (spread over 3 replicas) got 429");

    // 6. A DPoP proof taken by one replica is refused by another, and a
    //    nonce one replica made is taken by the others.
    dpop_across_replicas(&site).await;

    // 7. A key rotation and withdrawal from the command line: every replica
    //    refuses the withdrawn key's tokens within seconds.
    let pair = site.license("Replica Keys Server").await;
    let old = token(&pair, "access_token");
    for i in 0..3 {
        assert_eq!(license_status(site.replica(i), &old).await, 200);
    }
    let kid = kid_of(&old);
    let out = Command::new(BIN)
        .args(["keys", "withdraw", "--db", &site.db_url, &kid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        let took = site.refused_by(i, &old, Duration::from_secs(6)).await;
        println!(
            "key {kid} withdrawn: refused by replica {} after {took:?}",
            i + 1
        );
    }
    let fresh = site.license("Replica Keys Server 2").await;
    assert_eq!(
        license_status(&site.proxy, &token(&fresh, "access_token")).await,
        200,
        "the new key signs"
    );

    kill_under_load(site).await;
}

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// `POST /oauth/token` on `base` with a DPoP proof: status, body, nonce.
async fn token_with_proof(
    base: &str,
    form: &[(&str, &str)],
    proof: &str,
) -> (u16, serde_json::Value, Option<String>) {
    let r = api()
        .post(format!("{base}/oauth/token"))
        .form(form)
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    let nonce = r
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.json().await.unwrap(), nonce)
}

async fn dpop_across_replicas(site: &Site3) {
    use license_core::dpop::{proof, ProofRequest};
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let uri = format!("{}/oauth/token", site.proxy);
    let mut jti = 0;
    let mut make = |iat_offset: i64, nonce: Option<&str>| {
        jti += 1;
        let request = ProofRequest {
            method: "POST",
            uri: &uri,
            access_token: None,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        proof(
            &key,
            &request,
            now + iat_offset,
            &format!("replica-jti-{jti}"),
            nonce,
        )
    };
    let auth = device_authorization_at(&site.proxy).await;
    site.authorize_cli("Replica DPoP Server", auth["user_code"].as_str().unwrap());
    let device_code = auth["device_code"].as_str().unwrap();
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code),
        ("client_id", "license-console"),
    ];
    let (status, pair, _) = token_with_proof(site.replica(0), &form, &make(0, None)).await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["token_type"], "DPoP");

    // A proof taken on the second replica is refused on the third.
    let taken = make(0, None);
    let rt = token(&pair, "refresh_token");
    let (status, next, _) =
        token_with_proof(site.replica(1), &dpop::refresh_form(&rt), &taken).await;
    assert_eq!(status, 200, "{next}");
    let rt = token(&next, "refresh_token");
    let (status, replay, _) =
        token_with_proof(site.replica(2), &dpop::refresh_form(&rt), &taken).await;
    assert_eq!(status, 400, "{replay}");
    assert_eq!(error_of(&replay), "invalid_dpop_proof");
    assert!(replay.to_string().contains("used before"), "{replay}");

    // A proof whose clock is an hour off gets a nonce from the first
    // replica; the second takes a proof with that nonce.
    let (status, ask, nonce) = token_with_proof(
        site.replica(0),
        &dpop::refresh_form(&rt),
        &make(-3600, None),
    )
    .await;
    assert_eq!(status, 400, "{ask}");
    assert_eq!(error_of(&ask), "use_dpop_nonce");
    let nonce = nonce.expect("a DPoP-Nonce header");
    let (status, done, _) = token_with_proof(
        site.replica(1),
        &dpop::refresh_form(&rt),
        &make(-3600, Some(&nonce)),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    println!("DPoP: a proof taken on replica 2 refused on 3; replica 1's nonce taken by 2");
}

/// One console's refresh, as the console makes it: the same refresh token
/// again after a 502/503/504 or a broken connection, until an answer.
/// The new pair's refresh token, and how many tries it took.
async fn refresh_until_answered(http: &reqwest::Client, proxy: &str, rt: &str) -> (String, u32) {
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries < 200, "no answer for a refresh");
        let sent = http
            .post(format!("{proxy}/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "license-console"),
            ])
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                let body: serde_json::Value = r.json().await.unwrap();
                return (token(&body, "refresh_token"), tries);
            }
            Ok(r) if [502, 503, 504].contains(&r.status().as_u16()) => {}
            Ok(r) => {
                let status = r.status();
                panic!("refresh refused: {status} {}", r.text().await.unwrap());
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn kill_under_load(mut site: Site3) {
    const CONSOLES: usize = 8;
    let mut firsts = Vec::new();
    for n in 0..CONSOLES {
        let pair = site.license(&format!("Load Server {n:02}")).await;
        firsts.push(token(&pair, "refresh_token"));
    }
    let stop_at = Instant::now() + Duration::from_secs(6);
    let proxy = Arc::new(site.proxy.clone());
    let mut tasks = Vec::new();
    for first in firsts {
        let proxy = proxy.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut seen = vec![first.clone()];
            let mut retried = 0;
            while Instant::now() < stop_at {
                let (next, tries) =
                    refresh_until_answered(&http, &proxy, seen.last().unwrap()).await;
                retried += tries - 1;
                seen.push(next);
            }
            (seen, retried)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    site.replicas[1].kill();
    println!("replica 2 killed with SIGKILL under load");
    let mut grants = 0;
    let mut retries = 0;
    let raw = sqlx::PgPool::connect(&site.db_url).await.unwrap();
    for (n, task) in tasks.into_iter().enumerate() {
        let (seen, retried) = task.await.unwrap();
        retries += retried;
        grants += seen.len() - 1;
        let distinct: std::collections::HashSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "console {n}: a pair came twice");
        // The chain goes on after the load, on the replicas left.
        let http = reqwest::Client::new();
        let (last, _) = refresh_until_answered(&http, &proxy, seen.last().unwrap()).await;
        let (rows, live, revoked): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE r.used_at IS NULL),
                    COUNT(*) FILTER (WHERE c.revoked_at IS NOT NULL)
               FROM refresh_tokens r JOIN token_chains c ON c.id = r.chain_id
               JOIN devices d ON d.id = c.device_id WHERE d.name = $1",
        )
        .bind(format!("Load Server {n:02}"))
        .fetch_one(&raw)
        .await
        .unwrap();
        assert_eq!(
            (rows, live, revoked),
            (seen.len() as i64 + 1, 1, 0),
            "console {n}: every grant stored once, one live token, nothing revoked ({last})"
        );
    }
    let reuse: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE '%reuse%'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(reuse, 1, "only the reuse of step 3");
    println!(
        "under load: {grants} refresh grants by {CONSOLES} consoles in 6 s, replica 2 killed at 2 s; \
         {retries} retries after a failed answer; none lost, none twice"
    );
}

/// A PostgreSQL cluster of a test's own (`scripts/pg-cluster.sh`, with TLS
/// when given a folder of certificates), stopped when dropped.
struct OwnCluster {
    dir: tempfile::TempDir,
    ssl: Option<std::path::PathBuf>,
}

impl OwnCluster {
    fn new(ssl: Option<&Path>) -> OwnCluster {
        OwnCluster {
            dir: tempfile::tempdir().unwrap(),
            ssl: ssl.map(Path::to_owned),
        }
    }

    /// `pg-cluster.sh start|stop|restart`; what it printed (`start`: the
    /// admin URL).
    fn control(&self, what: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster.sh");
        let mut command = Command::new(script);
        command.arg(what).arg(self.dir.path().join("pg"));
        if let Some(ssl) = &self.ssl {
            command.env("PG_SSL_DIR", ssl);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster.sh");
        let _ = Command::new(script)
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .output();
    }
}

/// The database stopped while replicas serve: `/readyz` and the requests
/// that need it answer 503; when it is back, both recover by themselves.
/// The cluster is this test's own, as it is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_503_until_it_is_back() {
    if postgres_cluster().is_none() {
        return skip("LICENSE_SERVER_TEST_POSTGRES is not set");
    }
    let cluster = OwnCluster::new(None);
    let admin = cluster.control("start");
    let url = admin.replace("/postgres", "/lost");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE lost")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let (_server, _) = spawn_server(&["demo", "--db", &url, "--listen", &listen]);
    let auth = device_authorization_at(&base).await;
    let user_code = auth["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        api()
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    cluster.control("stop");
    let ready = api().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        api()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = api()
        .post(format!("{base}/oauth/device_authorization"))
        .form(&[("client_id", "license-console")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "a request that needs the database");
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(error_of(&body), "temporarily_unavailable");

    cluster.control("restart");
    let took = within(Duration::from_secs(15), "readyz back", || {
        let base = base.clone();
        async move {
            api()
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    println!("database back: /readyz 200 after {took:?}");
    // What was stored before the loss is all there, and the server works.
    let out = Command::new(BIN)
        .args(["device", "authorize", "--db", &url, "--org", demo::DEMO_ORG])
        .args([
            "--device",
            "Store 001 POS Server",
            "--user-code",
            &user_code,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, pair) = poll(base.as_str(), auth["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{pair}");
}

/// The server reaches PostgreSQL over TLS, verifying its certificate
/// (`sslmode=verify-full`, `sslrootcert`), and refuses a server whose
/// certificate it cannot verify. The cluster is this test's own (TLS on).
#[tokio::test]
async fn postgres_over_tls_verifies_the_server() {
    if postgres_cluster().is_none() {
        return skip("LICENSE_SERVER_TEST_POSTGRES is not set");
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=test-ca",
                "-days",
                "1",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(certs.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
    let cluster = OwnCluster::new(Some(&certs));
    let admin = cluster.control("start");
    let ca = certs.join("ca.crt");
    let verified = format!("{admin}?sslmode=verify-full&sslrootcert={}", ca.display());
    let init = |db: &str| {
        Command::new(BIN)
            .args(["init", "--db", db, "--admin-email", "ops@tls.example"])
            .args(["--admin-password", "correct horse battery"])
            .output()
            .unwrap()
    };
    let refused = init(&format!("{admin}?sslmode=verify-full"));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "an unknown CA is refused: {said}"
    );
    assert!(said.lines().count() == 1, "{said}");
    let done = init(&verified);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&verified)
        .await
        .unwrap();
    let tls: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(tls, "the connection is TLS");
    println!("TLS to PostgreSQL: verify-full with the cluster's CA works; without it: {said}");
    drop(conn);
}

/// The README's three-replica example as written: its shell block (`init`
/// once, three `serve` in the background, settings from `LICENSE_SERVER_*`)
/// and its nginx block, with only the database URL, the issuer, the ports and
/// the binary's path replaced; a console's whole device flow through nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_three_replica_example_runs() {
    use std::os::unix::process::CommandExt as _;
    if !nginx_present() {
        return skip("nginx is not installed");
    }
    let Some(db_url) = database().await else {
        return skip("LICENSE_SERVER_TEST_POSTGRES is not set");
    };
    let section = README
        .split("### Three replicas behind nginx")
        .nth(1)
        .expect("the README's replicas section");
    let shell = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's shell block");
    let dir = tempfile::tempdir().unwrap();
    let proxy_port = free_port();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut script = shell
        .replace("postgres://license:PASSWORD@db.internal/licenses", &db_url)
        .replace("https://license.example.com", &proxy)
        .replace("license-server ", &format!("{BIN} "));
    for (i, port) in ports.iter().enumerate() {
        script = script.replace(&(8081 + i).to_string(), &port.to_string());
    }
    assert!(!script.contains("808"), "every port replaced: {script}");
    // The script's background servers share its process group, which is
    // stopped at the end.
    let mut run = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = run.id();
    // It returns once `init` is done and the servers are started.
    assert!(
        run.wait().unwrap().success(),
        "the README's shell block ran"
    );
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", self.0)])
                .status();
        }
    }
    let _group = Group(group);
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path(), proxy_port, &ports)).unwrap();
    let _nginx = Nginx(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .spawn()
            .unwrap(),
    );
    for port in &ports {
        let base = format!("http://127.0.0.1:{port}");
        within(
            Duration::from_secs(30),
            "a replica of the example is ready",
            || {
                let base = base.clone();
                async move {
                    api()
                        .get(format!("{base}/readyz"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                }
            },
        )
        .await;
    }
    // A console's device flow through nginx; the device authorized on the
    // organization `init` made, from the command line.
    let auth = device_authorization_at(&proxy).await;
    let out = Command::new(BIN)
        .args(["device", "authorize", "--db", &db_url])
        .args(["--org", "My Organization", "--device", "Example Server"])
        .args([
            "--register",
            "--user-code",
            auth["user_code"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, pair) = poll(proxy.as_str(), auth["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{pair}");
    for _ in 0..3 {
        // Round robin: each of the three replicas answers one of these.
        assert_eq!(
            license_status(&proxy, &token(&pair, "access_token")).await,
            200
        );
    }
    println!("the README's example: init, three replicas from its shell block, nginx: licensed");
}
