//! The binary: `demo` on a free port, `device authorize`, `keys rotate`,
//! `keys rotate-successor`, `init`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_license-server");

mod common;

use common::{device_authorization_at, Spawned};

#[tokio::test]
async fn demo_serves_on_a_free_port_and_cli_authorizes_devices() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Spawned(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("listening on ")
        .expect(&first)
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"));
    let rest: Vec<String> = (0..6).map(|_| lines.next().unwrap().unwrap()).collect();
    assert!(
        rest.iter()
            .any(|l| l == &format!("admin page: {base}/admin/login")),
        "{rest:?}"
    );
    assert!(rest
        .iter()
        .any(|l| l == "admin email: admin@demo-store.example"));
    assert!(rest.iter().any(|l| l.starts_with("admin password: ")));
    assert!(rest
        .iter()
        .any(|l| l == "vendor operator email: operator@license-vendor.example"));
    assert!(rest
        .iter()
        .any(|l| l.starts_with("vendor operator password: ")));

    let http = reqwest::Client::new();
    let meta: serde_json::Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], base, "issuer defaults to the bound address");
    let auth = device_authorization_at(&base).await;
    let user_code = auth["user_code"].as_str().unwrap();

    let unknown = Command::new(BIN)
        .args([
            "device",
            "authorize",
            "--db",
            db.to_str().unwrap(),
            "--org",
            "Demo Store",
            "--device",
            "Nope",
            "--user-code",
            user_code,
        ])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("unknown device") && err.contains("Store 001 POS Server"),
        "{err}"
    );

    let ok = Command::new(BIN)
        .args([
            "device",
            "authorize",
            "--db",
            db.to_str().unwrap(),
            "--org",
            "Demo Store",
            "--device",
            "Store 002 POS Server",
            "--user-code",
            &user_code.to_lowercase(),
            "--admin",
            "admin@demo-store.example",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let tokens: serde_json::Value = http
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
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");

    // --register: a device the organization does not have yet.
    let auth = device_authorization_at(&base).await;
    let registered = Command::new(BIN)
        .args(["device", "authorize", "--db", db.to_str().unwrap()])
        .args(["--org", "Demo Store", "--device", "Store 009 POS Server"])
        .args([
            "--register",
            "--user-code",
            auth["user_code"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&registered.stdout);
    assert!(
        registered.status.success() && said.starts_with("authorized Store 009 POS Server ("),
        "{said}{}",
        String::from_utf8_lossy(&registered.stderr)
    );

    let rotate = Command::new(BIN)
        .args(["keys", "rotate", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rotate.status.success());
    let rotate = Command::new(BIN)
        .args(["keys", "rotate-successor", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rotate.status.success(), "{rotate:?}");
    let said = String::from_utf8_lossy(&rotate.stdout);
    assert!(said.contains("new refresh-successor key 2"), "{said}");
    drop(server);
}

#[test]
fn init_creates_key_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("init.db");
    let out = Command::new(BIN)
        .args([
            "init",
            "--db",
            db.to_str().unwrap(),
            "--admin-email",
            "ops@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("admin password: "), "{text}");
    let again = Command::new(BIN)
        .args([
            "init",
            "--db",
            db.to_str().unwrap(),
            "--admin-email",
            "ops@example.com",
            "--admin-password",
            "long enough password",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success(), "the same admin twice is an error");
}

/// A database that cannot be opened: one line saying which and why, exit
/// status 3, no backtrace even with RUST_BACKTRACE set; for a PostgreSQL
/// database nobody answers for, its password is never echoed.
#[test]
fn a_database_that_cannot_be_opened_is_one_clear_line() {
    let missing = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg("/nonexistent-folder/license-server.sqlite")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(3), "{said}");
    assert!(
        said.contains("cannot open the database /nonexistent-folder/license-server.sqlite")
            && said.contains("does its folder exist"),
        "{said}"
    );
    assert!(
        !said.contains("backtrace") && said.lines().count() == 1,
        "{said}"
    );

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let postgres = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(format!(
            "postgres://licenses:s3cret@127.0.0.1:{port}/licenses"
        ))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&postgres.stderr);
    assert_eq!(postgres.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&format!(
            "cannot open the database postgres://[redacted]@127.0.0.1:{port}/licenses"
        )) && said.lines().count() == 1,
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
}
