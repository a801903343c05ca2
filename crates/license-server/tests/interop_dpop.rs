//! DPoP (RFC 9449) interoperability: a client we did not write, openid-client
//! 6 from npm (driven by `tests/interop_dpop/dpop.mjs` under Node.js), runs
//! the device flow with DPoP proofs, fetches the license, refreshes and
//! revokes against the real server, with and without server nonces. This
//! test approves the device code on the admin pages while the script polls,
//! and checks the binding from outside (`cnf.jkt`, the token refused as a
//! Bearer token or without a proof).
//!
//! Skips (with a message) when Node.js is missing outside CI; with `CI` set
//! it fails instead. Installs the script's npm packages from its committed
//! lock file (`npm ci`) when `node_modules` is missing or older than the lock.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The longest wait for one line of the script: the device flow polls every
/// 5 s, and each nonce challenge costs openid-client one more interval.
const LINE_TIMEOUT: Duration = Duration::from_secs(90);

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop_dpop")
}

/// Whether `node` and `npm` run; outside CI their absence skips the test.
fn node_available() -> bool {
    let runs = |bin: &str| {
        std::process::Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs("node") && runs("npm") {
        return true;
    }
    // A developer without Node.js may skip it; CI, set up by scripts/setup.sh,
    // must run it.
    assert!(
        std::env::var_os("CI").is_none(),
        "node and npm are needed for the DPoP interoperability test: scripts/setup.sh expects them"
    );
    eprintln!("skipped: node/npm not installed");
    false
}

/// `npm ci` in the script's folder unless its packages are installed and no
/// older than the lock file; one test at a time.
fn install_packages() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = script_dir();
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (
        modified(&dir.join("node_modules/.package-lock.json")),
        modified(&dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh && dir.join("node_modules/openid-client/package.json").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .expect("run npm ci");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

/// `value` pretty-printed with long strings (tokens, license documents) cut.
fn show(value: &Value) -> String {
    serde_json::to_string_pretty(&cut(value)).unwrap()
}

/// `value` with long strings cut.
fn cut(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > 120 => {
            let head: String = s.chars().take(100).collect();
            Value::String(format!("{head}… ({} bytes)", s.len()))
        }
        Value::Array(a) => Value::Array(a.iter().map(cut).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), cut(v))).collect()),
        other => other.clone(),
    }
}

/// `node dpop.mjs`, killed whatever happens.
struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Script {
    fn spawn(server: &TestServer, extra: &[&str]) -> Script {
        let mut child = Command::new("node")
            .arg("dpop.mjs")
            .arg(&server.base)
            .args(extra)
            .current_dir(script_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node dpop.mjs");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Script {
            child,
            stdin,
            lines,
        }
    }

    /// The next line of the script, which must be the event `name`.
    async fn event(&mut self, name: &str) -> Value {
        let line = tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no {name} from dpop.mjs within {LINE_TIMEOUT:?}"))
            .expect("read dpop.mjs output")
            .unwrap_or_else(|| panic!("dpop.mjs ended before {name}"));
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("dpop.mjs printed a line that is not JSON ({e}): {line}"));
        // Shown with the test's output when it fails (or with --nocapture).
        eprintln!("dpop.mjs: {}", cut(&event));
        assert_eq!(event["event"], name, "dpop.mjs: {}", show(&event));
        event
    }

    /// Runs one command in the script; its `result` event.
    async fn command(&mut self, command: &str) -> Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        self.event("result").await
    }

    /// The command's result, which must have succeeded.
    async fn ok(&mut self, command: &str) -> Value {
        let result = self.command(command).await;
        assert_eq!(result["ok"], true, "{command}: {}", show(&result));
        result
    }

    async fn quit(mut self) {
        self.stdin.write_all(b"quit\n").await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("dpop.mjs quits")
            .unwrap();
        assert!(status.success(), "dpop.mjs exited with {status}");
    }
}

/// The claims of a JWS (not verified: the server's own tests do that).
fn claims(jws: &str) -> Value {
    let payload = jws.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The requests an event's command made to `path`, from the script's trace.
fn requests<'a>(event: &'a Value, path: &str) -> Vec<&'a Value> {
    event["http"]
        .as_array()
        .expect("an http trace")
        .iter()
        .filter(|r| r["url"].as_str().unwrap().ends_with(path))
        .collect()
}

/// Checks that every request of `event` to `path` carried a proof by the key
/// `x`, that the last one succeeded, and, with server nonces on, that it
/// carried the server's nonce. Returns that last request.
fn check_proofs<'a>(event: &'a Value, path: &str, x: &str, nonces: bool) -> &'a Value {
    let sent = requests(event, path);
    assert!(!sent.is_empty(), "no request to {path}: {}", show(event));
    for r in &sent {
        assert_eq!(
            r["dpop"]["jwk"]["x"],
            x,
            "not a proof by the key: {}",
            show(r)
        );
        assert_eq!(r["dpop"]["typ"], "dpop+jwt", "{}", show(r));
        assert_eq!(r["dpop"]["has_jti"], true, "{}", show(r));
    }
    let last = sent.last().unwrap();
    assert!(last["status"].as_u64().unwrap() < 300, "{}", show(event));
    if nonces {
        assert!(
            last["dpop"]["nonce"].is_string(),
            "the request to {path} went through without a server nonce: {}",
            show(event)
        );
    }
    last
}

/// The device flow by openid-client with DPoP, approved here, then the
/// license fetch, a refresh and a revocation by openid-client, with the
/// binding checked from outside. `extra`: more arguments for dpop.mjs.
async fn openid_client_against(server: TestServer, nonces: bool, extra: &[&str]) {
    if !node_available() {
        return;
    }
    install_packages();
    let mut script = Script::spawn(&server, extra);

    let start = script.event("start").await;
    eprintln!(
        "openid-client {} (oauth4webapi {}) on Node.js {}",
        start["openid_client"], start["oauth4webapi"], start["node"]
    );
    let discovered = script.event("discovered").await;
    let metadata = &discovered["metadata"];
    assert_eq!(metadata["issuer"], server.base);
    let algs = metadata["dpop_signing_alg_values_supported"]
        .as_array()
        .expect("dpop_signing_alg_values_supported");
    assert!(algs.contains(&"EdDSA".into()), "{}", show(metadata));
    let license_endpoint = metadata["license_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(license_endpoint, server.url("/api/v1/license"));

    // The script's public key: its RFC 7638 thumbprint, computed here from
    // `x`, is openid-client's own.
    let key = script.event("key").await;
    assert_eq!(key["jwk"]["kty"], "OKP");
    assert_eq!(key["jwk"]["crv"], "Ed25519");
    let x = key["jwk"]["x"].as_str().unwrap().to_owned();
    let jkt = license_core::dpop::thumbprint(&x);
    assert_eq!(key["jkt"], jkt.as_str(), "openid-client's thumbprint");

    // The admin approves the code while openid-client polls.
    let authorization = script.event("device_authorization").await;
    let user_code = authorization["user_code"].as_str().unwrap();
    let admin = browser();
    sign_in(&server, &admin).await;
    decide_on_page(
        &server,
        &admin,
        "Store 001 POS Server",
        user_code,
        "authorize",
    )
    .await;

    // The device-code grant: bound to the key.
    let token = script.event("token").await;
    let grant = check_proofs(&token, "/oauth/token", &x, nonces);
    assert!(
        algs.contains(&grant["dpop"]["alg"]),
        "proof alg not published: {}",
        show(grant)
    );
    assert_eq!(grant["dpop"]["htm"], "POST");
    assert_eq!(grant["dpop"]["htu"], server.url("/oauth/token"));
    assert_eq!(grant["token_type"], "DPoP", "{}", show(grant));
    // (openid-client lower-cases token_type.)
    assert_eq!(token["token_type"], "dpop");
    if nonces {
        // The server asked for a nonce (400 use_dpop_nonce with DPoP-Nonce)
        // and openid-client came back with it by itself.
        let asked = requests(&token, "/oauth/token").into_iter().any(|r| {
            r["status"] == 400
                && r["error"] == "use_dpop_nonce"
                && r["dpop_nonce_header"].is_string()
        });
        assert!(asked, "no nonce challenge: {}", show(&token));
    }
    let access = token["access_token"].as_str().unwrap().to_owned();
    let refresh_token = token["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&access)["cnf"]["jkt"],
        jkt.as_str(),
        "license token not bound"
    );

    // The license, fetched by openid-client with a proof carrying `ath`.
    let license = script.ok("license").await;
    assert_eq!(license["status"], 200, "{}", show(&license));
    assert!(
        license["body"]["license_document"].is_string(),
        "{}",
        show(&license)
    );
    let fetch = check_proofs(&license, "/api/v1/license", &x, nonces);
    assert_eq!(fetch["authorization_scheme"], "DPoP");
    assert_eq!(fetch["dpop"]["htm"], "GET");
    assert_eq!(fetch["dpop"]["htu"], license_endpoint);
    assert_eq!(fetch["dpop"]["has_ath"], true);

    // Copied off the wire, the token is useless without the key: as a Bearer
    // token, and as a DPoP token without a proof.
    assert_eq!(fetch_license(&server, &access).await.status(), 401);
    let r = api()
        .get(&license_endpoint)
        .header("Authorization", format!("DPoP {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // So is the refresh token (and the attempt costs the chain nothing).
    let (status, body) = refresh(&server, &refresh_token).await;
    assert_eq!(status, 400, "a bound refresh token without a proof: {body}");
    assert_eq!(error_of(&body), "invalid_dpop_proof");

    // A refresh by openid-client: a new pair, still bound to the key.
    let refreshed = script.ok("refresh").await;
    let grant = check_proofs(&refreshed, "/oauth/token", &x, nonces);
    assert_eq!(grant["token_type"], "DPoP", "{}", show(grant));
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access2, access);
    assert_ne!(refreshed["refresh_token"], refresh_token.as_str());
    assert_eq!(
        claims(&access2)["cnf"]["jkt"],
        jkt.as_str(),
        "refreshed token not bound"
    );
    let license = script.ok("license").await;
    assert_eq!(license["status"], 200, "{}", show(&license));
    check_proofs(&license, "/api/v1/license", &x, nonces);
    assert_eq!(fetch_license(&server, &access2).await.status(), 401);

    // Revocation. openid-client's tokenRevocation has no DPoP option (RFC
    // 9449 defines none for RFC 7009): sent as it is, without a proof, it
    // must not take the license away from a bound chain.
    let plain = script.command("revoke refresh plain").await;
    let sent = requests(&plain, "/oauth/revoke");
    assert!(sent.iter().all(|r| r["dpop"].is_null()), "{}", show(&plain));
    let still = script.ok("refresh").await;
    check_proofs(&still, "/oauth/token", &x, nonces);

    // With a proof by the chain's key, it revokes the chain.
    let revoked = script.ok("revoke refresh proof").await;
    check_proofs(&revoked, "/oauth/revoke", &x, nonces);
    let after = script.command("refresh").await;
    assert_eq!(
        after["ok"],
        false,
        "refresh after revocation: {}",
        show(&after)
    );
    assert_eq!(after["error"]["error"], "invalid_grant", "{}", show(&after));
    let license = script.command("license").await;
    let fetched = requests(&license, "/api/v1/license");
    assert_eq!(fetched.last().unwrap()["status"], 401, "{}", show(&license));

    script.quit().await;
}

/// openid-client as it is: for an Ed25519 key its proofs name the algorithm
/// "Ed25519" (the fully-specified name of RFC 9864, which deprecates
/// "EdDSA"), as oauth4webapi and jose now do. Fails while the server takes
/// only "EdDSA" (`license_core::dpop::SIGNING_ALGS`).
#[tokio::test]
async fn openid_client_dpop_as_shipped_with_ed25519_alg_name() {
    openid_client_against(start().await, false, &[]).await;
}

/// The whole flow with proofs whose `alg` openid-client's documented
/// `modifyAssertion` hook writes as "EdDSA" (what our console writes).
#[tokio::test]
async fn openid_client_dpop_device_flow_refresh_and_revoke() {
    openid_client_against(start().await, false, &["--alg-header=EdDSA"]).await;
}

/// The same with the server asking every proof for a nonce.
#[tokio::test]
async fn openid_client_dpop_with_server_nonces() {
    let server = start_with(|c| c.dpop_nonce = true).await;
    openid_client_against(server, true, &["--alg-header=EdDSA"]).await;
}
