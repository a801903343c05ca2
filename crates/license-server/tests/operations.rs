//! What operators run the server with: Prometheus metrics on a listen
//! address of their own, JSON logs, health checks, backups.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_license-server");

mod common;

use common::{device_authorization_at, Spawned};

/// `demo` with metrics on a free port and JSON logs: the public base URL,
/// the metrics URL, and the server.
fn start_demo(db: &std::path::Path) -> (String, String, Spawned) {
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "demo", "--db", db.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    let metrics = loop {
        let line = lines
            .next()
            .expect("the server printed its addresses")
            .unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            base = Some(url.to_owned());
        }
        if let Some(url) = line.strip_prefix("metrics on ") {
            break url.to_owned();
        }
    };
    (base.expect("listening on"), metrics, Spawned(child))
}

#[tokio::test]
async fn metrics_count_requests_grants_batches_and_caches_on_their_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let (base, metrics, mut server) = start_demo(&dir.path().join("demo.db"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(get(format!("{base}/healthz")).await.status(), 200);
    // A route with an id is counted under its template, not the id.
    assert_eq!(
        get(format!("{base}/admin/devices/12345/revoke"))
            .await
            .status(),
        303
    );
    assert_eq!(get(format!("{base}/no/such/path")).await.status(), 404);
    let auth = device_authorization_at(&base).await;
    let device_code = auth["device_code"].as_str().unwrap().to_owned();
    for grant in ["password", "urn:ietf:params:oauth:grant-type:device_code"] {
        http.post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", grant),
                ("device_code", device_code.as_str()),
                ("client_id", "license-console"),
            ])
            .send()
            .await
            .unwrap();
    }
    let r = get(format!("{base}/api/v1/license")).await;
    assert_eq!(r.status(), 401);
    // Not on the public address (the second unmatched request).
    assert_eq!(get(format!("{base}/metrics")).await.status(), 404);

    let r = get(metrics.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    for expected in [
        r#"license_server_http_requests_total{route="/healthz",method="GET",status="200"} 1"#,
        r#"license_server_http_requests_total{route="/admin/devices/{id}/revoke",method="GET",status="303"} 1"#,
        r#"license_server_http_requests_total{route="unmatched",method="GET",status="404"} 2"#,
        r#"license_server_http_requests_total{route="/oauth/device_authorization",method="POST",status="200"} 1"#,
        r#"license_server_grants_total{grant_type="unsupported",outcome="unsupported_grant_type"} 1"#,
        r#"license_server_grants_total{grant_type="device_code",outcome="authorization_pending"} 1"#,
        r#"license_server_http_request_duration_seconds_count{route="/healthz"} 1"#,
        r#"license_server_batch_size_count{writer="device_codes"} 1"#,
        r#"license_server_db_pool_connections{pool="read",state="idle"}"#,
        r#"license_server_db_pool_connections{pool="write",state="busy"}"#,
        r#"license_server_cache_requests_total{cache="tokens",result="miss"} 0"#,
        "# TYPE license_server_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "no {expected} in\n{text}");
    }
    assert!(!text.contains("12345"), "an id became a label:\n{text}");

    // JSON logs, one object per line, with no secret in them.
    let _ = server.0.kill();
    let _ = server.0.wait();
    let mut logs = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no logs");
    for line in &lines {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("\"status\":200")), "{logs}");
    assert!(!logs.contains(&device_code), "a device code was logged");
}

/// `backup` copies the database while the server keeps serving: the copy
/// opens, holds what the original holds, and a second backup to the same
/// file is refused, changing nothing.
#[tokio::test]
async fn backup_copies_a_live_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let (base, _metrics, _server) = start_demo(&db);
    device_authorization_at(&base).await;
    let copy = dir.path().join("backup.db");
    let out = Command::new(BIN)
        .args(["backup", "--db", db.to_str().unwrap()])
        .args(["--to", copy.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("backed up"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = license_server::Store::open(&db).await.unwrap();
    let backup = license_server::Store::open(&copy).await.unwrap();
    assert_eq!(
        backup.orgs().await.unwrap().len(),
        original.orgs().await.unwrap().len()
    );
    assert_eq!(
        backup.keys().await.unwrap().len(),
        original.keys().await.unwrap().len()
    );
    assert_eq!(backup.users().await.unwrap().len(), 2);
    let size = std::fs::metadata(&copy).unwrap().len();

    let again = Command::new(BIN)
        .args(["backup", "--db", db.to_str().unwrap()])
        .args(["--to", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), size);
}
