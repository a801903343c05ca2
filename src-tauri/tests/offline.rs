//! Air-gapped activation by file, the console's side, against the real
//! license server's `offline::respond`/`deactivate` (in process, temporary
//! SQLite database, demo account): request, response, Licensed (offline),
//! restart, renewal, deactivation, and the files that must be refused.
//! The in-memory vault exists in debug builds only, and so do these tests.
#![cfg(debug_assertions)]

mod common;

use std::sync::Arc;

use common::{server, Server};
use license_console_lib::clock::SystemClock;
use license_console_lib::error::ErrorCode;
use license_console_lib::licensing::{AuthorizationView, Events, Licensing};
use license_console_lib::store::StateFile;
use license_console_lib::vault::MemoryVault;
use license_console_lib::view::{LicenseStatusCode, LicenseView, VerificationCode};
use license_server::approval::Target;
use license_server::offline::{self, Deactivate, Respond};
use license_server::{demo, Config, Keys, Store};
use time::OffsetDateTime;

struct Quiet;

impl Events for Quiet {
    fn license_changed(&self, _view: &LicenseView) {}
    fn authorization_failed(&self, _error: &license_console_lib::error::CommandError) {}
    fn authorization_waiting(&self, _view: &AuthorizationView) {}
}

async fn open(dir: &std::path::Path, vault: Arc<MemoryVault>, url: &str) -> Arc<Licensing> {
    Licensing::open(
        Arc::new(SystemClock),
        vault,
        StateFile::in_dir(dir),
        Arc::new(Quiet),
        Some(url.to_string()),
    )
    .await
    .expect("open")
}

/// The server's database, keys and configuration, and the demo
/// organization's id, as the admin pages have them.
async fn server_side(server: &Server) -> (Store, Keys, Config, i64) {
    let store = Store::open(&server.db).await.expect("db");
    let now = OffsetDateTime::now_utc();
    let keys = Keys::load(&store, now.unix_timestamp())
        .await
        .expect("keys");
    let config = Config::new(&server.base);
    let org = store
        .org_by_name(demo::DEMO_ORG)
        .await
        .expect("org")
        .expect("demo org");
    (store, keys, config, org.id)
}

/// What an organization admin does on the Offline activation page.
async fn respond(server: &Server, request: &str, device: &str, register: bool) -> String {
    let (store, keys, config, org_id) = server_side(server).await;
    let now = OffsetDateTime::now_utc();
    let target = if register {
        Target::New(device.to_string())
    } else {
        Target::Existing(
            store
                .device_by_name(org_id, device)
                .await
                .expect("device")
                .expect("known device"),
        )
    };
    let parts = offline::Server {
        db: &store,
        keys: &keys,
        config: &config,
    };
    offline::respond(
        parts,
        Respond {
            org_id,
            target,
            request,
            actor: "test",
            now,
        },
    )
    .await
    .expect("respond")
    .text
}

async fn deactivate(server: &Server, file: &str) {
    let (store, keys, config, org_id) = server_side(server).await;
    let now = OffsetDateTime::now_utc();
    let parts = offline::Server {
        db: &store,
        keys: &keys,
        config: &config,
    };
    offline::deactivate(
        parts,
        Deactivate {
            org_id: Some(org_id),
            file,
            actor: "test",
            now,
        },
    )
    .await
    .expect("deactivate");
}

/// The vendor's keys as a release build would embed them: the server's
/// published key set (debug builds read it from the file the variable names).
async fn ship_vendor_keys(server: &Server, dir: &std::path::Path) {
    let store = Store::open(&server.db).await.expect("db");
    let keys = Keys::load(&store, OffsetDateTime::now_utc().unix_timestamp())
        .await
        .expect("keys");
    let path = dir.join("vendor-keys.json");
    std::fs::write(
        &path,
        serde_json::to_string(&keys.ring().jwks).expect("json"),
    )
    .expect("write");
    std::env::set_var("LICENSE_CONSOLE_VENDOR_KEYS", &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_air_gapped_install_is_licensed_renewed_and_deactivated_by_file() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let console = open(dir.path(), vault.clone(), &server.base).await;

    // Without the vendor's keys and never online, nothing can vouch for a
    // response: refused, nothing changed.
    let (pending, request) = console.activation_request(None).await.expect("request");
    assert_eq!(pending.server_url, server.base);
    let response = respond(&server, &request, "Ship 7 POS Server", true).await;
    let err = console
        .load_activation_response(&response)
        .await
        .expect_err("no anchor");
    assert_eq!(err.code, ErrorCode::NoTrustAnchor, "{}", err.message);
    assert_eq!(console.view().await.status, LicenseStatusCode::Unlicensed);

    ship_vendor_keys(&server, dir.path()).await;
    let view = console
        .load_activation_response(&response)
        .await
        .expect("loaded");
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.status_label, "Licensed (offline)");
    assert_eq!(view.verification, VerificationCode::Offline);
    assert_eq!(view.organization.as_deref(), Some("Demo Store"));
    let left = view.offline_left_secs.expect("countdown");
    assert!((29 * 86_400..=30 * 86_400).contains(&left), "{left}");
    assert!(view.grace_left_secs.is_none() && view.next_refresh_at.is_none());
    let server_id = view.server_id.clone().expect("server id");

    // The same response again, an edited one, another install's: refused.
    let again = console.load_activation_response(&response).await;
    assert_eq!(again.expect_err("used").code, ErrorCode::OfflineFile);
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = open(
        other_dir.path(),
        Arc::new(MemoryVault::default()),
        &server.base,
    )
    .await;
    other.activation_request(None).await.expect("request");
    let err = other
        .load_activation_response(&response)
        .await
        .expect_err("another install's");
    assert_eq!(err.code, ErrorCode::OfflineFile);
    assert!(
        err.message.contains("another installation"),
        "{}",
        err.message
    );
    assert_eq!(other.view().await.status, LicenseStatusCode::Unlicensed);

    // Refresh has nothing to do online; a restart keeps the license.
    let err = console.refresh().await.expect_err("offline");
    assert_eq!(err.code, ErrorCode::LicensedOffline);
    drop(console);
    let console = open(dir.path(), vault.clone(), &server.base).await;
    let view = console.view().await;
    assert_eq!(view.status_label, "Licensed (offline)");
    assert_eq!(view.server_id.as_deref(), Some(server_id.as_str()));

    // Renewal: the same exchange, for the same device.
    let (_, renewal) = console.activation_request(None).await.expect("renewal");
    let renewed = respond(&server, &renewal, "Ship 7 POS Server", false).await;
    let mut edited = renewed.clone();
    let at = edited.find("\"offline_license\": \"").expect("field") + 40;
    let flipped = if &edited[at..=at] == "A" { "B" } else { "A" };
    edited.replace_range(at..=at, flipped);
    let err = console
        .load_activation_response(&edited)
        .await
        .expect_err("edited");
    assert_eq!(err.code, ErrorCode::OfflineFile, "{}", err.message);
    let view = console
        .load_activation_response(&renewed)
        .await
        .expect("renewed");
    assert_eq!(view.server_id.as_deref(), Some(server_id.as_str()));
    assert_eq!(view.verification, VerificationCode::Offline);

    // Deactivation: the file frees the device; the console forgets the
    // license and takes neither response back.
    let file = console.deactivate_offline().await.expect("deactivate");
    assert_eq!(console.view().await.status, LicenseStatusCode::Unlicensed);
    deactivate(&server, &file).await;
    for old in [&response, &renewed] {
        let err = console
            .load_activation_response(old)
            .await
            .expect_err("gone");
        assert_eq!(err.code, ErrorCode::OfflineFile);
    }
    drop(console);
    let console = open(dir.path(), vault, &server.base).await;
    assert_eq!(console.view().await.status, LicenseStatusCode::Unlicensed);
}
