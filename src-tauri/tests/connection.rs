//! **Test connection** through the console's IPC (the mock runtime, the
//! command as the UI invokes it) against the real license server in process,
//! and against a closed port. The in-memory vault exists in debug builds
//! only, and so do these tests.
#![cfg(debug_assertions)]

mod common;

use std::sync::Arc;

use common::server;
use license_console_lib::clock::SystemClock;
use license_console_lib::error::CommandError;
use license_console_lib::licensing::{AuthorizationView, Events, Licensing};
use license_console_lib::store::StateFile;
use license_console_lib::vault::MemoryVault;
use license_console_lib::view::LicenseView;
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow};

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

struct NoEvents;

impl Events for NoEvents {
    fn license_changed(&self, _view: &LicenseView) {}
    fn authorization_failed(&self, _error: &CommandError) {}
    fn authorization_waiting(&self, _view: &AuthorizationView) {}
}

/// The console with `configured` as its server URL, and its main window.
struct Console {
    licensing: Arc<Licensing>,
    webview: WebviewWindow<MockRuntime>,
    _app: tauri::App<MockRuntime>,
    _dir: tempfile::TempDir,
}

fn console(rt: &tokio::runtime::Runtime, configured: Option<String>) -> Console {
    let dir = tempfile::tempdir().expect("tempdir");
    let licensing = rt
        .block_on(Licensing::open(
            Arc::new(SystemClock),
            Arc::new(MemoryVault::default()),
            StateFile::in_dir(dir.path()),
            Arc::new(NoEvents),
            configured,
        ))
        .expect("open");
    let app = license_console_lib::setup(mock_builder())
        .build(mock_context(noop_assets()))
        .expect("mock app builds");
    app.manage(Arc::clone(&licensing));
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("mock window builds");
    Console {
        licensing,
        webview,
        _app: app,
        _dir: dir,
    }
}

/// `test_connection` as the UI invokes it: the answer, or the error.
fn test_connection(console: &Console, server_url: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: "test_connection".into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::Json(json!({ "serverUrl": server_url })),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    tauri::test::get_ipc_response(&console.webview, request)
        .map(|body| body.deserialize::<Value>().expect("json"))
}

fn column(view: &Value, field: &str) -> Vec<Value> {
    view["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s[field].clone())
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn the_configured_server_is_checked_step_by_step_and_the_rule_names_its_address() {
    let rt = runtime();
    let server = rt.block_on(server());
    let console = console(&rt, Some(server.base.clone()));

    let view = test_connection(&console, Value::Null).expect("a report");

    let port = server.port();
    assert_eq!(view["serverUrl"], server.base);
    assert_eq!(view["outcome"], "ok", "{view:#}");
    assert_eq!(
        column(&view, "kind"),
        ["resolve", "connect", "tls", "metadata", "clock"]
    );
    // Plain http: there is no TLS to check, and nothing else is wrong.
    assert_eq!(column(&view, "status"), ["ok", "ok", "skipped", "ok", "ok"]);
    let connect = &view["steps"][1];
    assert_eq!(connect["label"], "Connection");
    assert_eq!(connect["port"], format!("{port} (HTTP)"));
    assert_eq!(connect["ips"], json!(["127.0.0.1"]));
    assert_eq!(view["steps"][0]["ips"], json!(["127.0.0.1"]));
    assert_eq!(
        view["summary"],
        format!(
            "The license server 127.0.0.1 is reachable on port {port}: there is nothing to ask \
             the network team for."
        )
    );
    assert_eq!(
        view["ruleText"],
        format!("Component | Port | IP address\n127.0.0.1 | {port} (HTTP) | 127.0.0.1\n")
    );
    assert_eq!(view["rule"]["ips"], json!(["127.0.0.1"]));
    let offset = view["clockOffsetSecs"].as_i64().expect("clock measured");
    assert!(offset.abs() <= 2, "same machine, same clock: {offset}");
    assert_eq!(view["tls"], Value::Null);
}

#[test]
fn a_typed_url_is_tested_before_it_is_saved_and_a_closed_port_fails_at_the_connection() {
    let rt = runtime();
    let console = console(&rt, None);
    let port = closed_port();

    // As typed on the Not licensed screen: no scheme means https.
    let view = test_connection(&console, json!(format!("127.0.0.1:{port}"))).expect("a report");

    assert_eq!(view["serverUrl"], format!("https://127.0.0.1:{port}"));
    assert_eq!(view["outcome"], "failed", "{view:#}");
    assert_eq!(
        column(&view, "status"),
        ["ok", "failed", "skipped", "skipped", "skipped"]
    );
    let connect = &view["steps"][1];
    assert_eq!(connect["ips"], json!(["127.0.0.1"]));
    assert_eq!(connect["port"], format!("{port} (HTTPS)"));
    assert!(
        connect["detail"]
            .as_str()
            .expect("detail")
            .contains("refused"),
        "{connect:#}"
    );
    assert!(connect["advice"].is_string(), "a failure says what to do");
    assert!(
        view["summary"]
            .as_str()
            .expect("summary")
            .starts_with(&format!("Connection failed (127.0.0.1:{port}):")),
        "{}",
        view["summary"]
    );
    assert_eq!(
        view["ruleText"],
        format!("Component | Port | IP address\n127.0.0.1 | {port} (HTTPS) | 127.0.0.1\n")
    );
    // Testing saves nothing.
    assert_eq!(rt.block_on(console.licensing.view()).server_url, None);
}

#[test]
fn without_a_server_url_the_check_asks_for_one() {
    let rt = runtime();
    let console = console(&rt, None);

    let err = test_connection(&console, Value::Null).expect_err("nothing to check");
    assert_eq!(err["code"], "invalid_input");
    let err = test_connection(&console, json!("  ")).expect_err("nothing typed");
    assert_eq!(err["code"], "invalid_input");
}
