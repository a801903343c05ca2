//! The console's licensing shell against the real license server (in
//! process, temporary SQLite database, demo account). Tokens go to an
//! in-memory vault here for isolation; the E2E suite uses the real keychain.
//! The in-memory vault exists in debug builds only, and so do these tests.
#![cfg(debug_assertions)]

mod common;

use std::sync::{Arc, Mutex};

use common::{server, Server};

use license_client::ClientError;
use license_console_lib::clock::{Clock, SystemClock};
use license_console_lib::error::{CommandError, ErrorCode};
use license_console_lib::licensing::{AuthorizationView, Events, Licensing};
use license_console_lib::store::{StateFile, StateIntegrity};
use license_console_lib::vault::{MemoryVault, TokenVault, VaultKey};
use license_console_lib::view::{LicenseStatusCode, LicenseView, VerificationCode};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Default)]
struct Recorder {
    views: Mutex<Vec<LicenseView>>,
    failures: Mutex<Vec<CommandError>>,
}

impl Events for Recorder {
    fn license_changed(&self, view: &LicenseView) {
        self.views.lock().expect("lock").push(view.clone());
    }
    fn authorization_failed(&self, error: &CommandError) {
        self.failures.lock().expect("lock").push(error.clone());
    }
    fn authorization_waiting(&self, _view: &AuthorizationView) {}
}

async fn open(
    dir: &std::path::Path,
    vault: Arc<MemoryVault>,
    url: &str,
) -> (Arc<Licensing>, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    let licensing = Licensing::open(
        Arc::new(SystemClock),
        vault,
        StateFile::in_dir(dir),
        events.clone(),
        Some(url.to_string()),
    )
    .await
    .expect("open");
    (licensing, events)
}

async fn acquire(licensing: &Arc<Licensing>, server: &Server) -> (String, LicenseView) {
    let auth = licensing
        .start_authorization(&server.base)
        .await
        .expect("user code");
    let early = licensing
        .complete_authorization()
        .await
        .expect_err("not yet");
    assert_eq!(early.code, ErrorCode::AuthorizationPending);
    let server_id = server.authorize(&auth.user_code).await;
    let view = licensing.complete_authorization().await.expect("licensed");
    (server_id, view)
}

fn t(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).expect("time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_refresh_and_remove() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, events) = open(dir.path(), vault.clone(), &server.base).await;
    assert_eq!(licensing.view().await.status, LicenseStatusCode::Unlicensed);

    let (server_id, view) = acquire(&licensing, &server).await;
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.server_id.as_deref(), Some(server_id.as_str()));
    assert_eq!(view.organization.as_deref(), Some("Demo Store"));
    assert_eq!(view.hub_server_name.as_deref(), Some("Demo Hub"));
    assert!(view.packages.len() >= 2 && view.license_count > 0);
    assert!(
        !events.views.lock().expect("lock").is_empty(),
        "license-changed emitted"
    );

    // Tokens in the vault, none in the state file.
    let key = VaultKey {
        server_url: server.base.clone(),
        server_id: server_id.clone(),
    };
    let tokens = vault.load(&key).expect("vault").expect("tokens saved");
    let file = std::fs::read_to_string(dir.path().join("state.json")).expect("state file");
    assert!(!file.contains(tokens.license_token.expose()));
    assert!(!file.contains(tokens.refresh_token.expose()));

    let before = view.last_verified.clone().expect("verified");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = licensing.refresh().await.expect("refresh");
    assert!(t(after.last_verified.as_deref().expect("verified")) > t(&before));
    let rotated = vault.load(&key).expect("vault").expect("tokens");
    assert_ne!(
        rotated.refresh_token.expose(),
        tokens.refresh_token.expose()
    );

    let removed = licensing.remove(false).await.expect("removed");
    assert_eq!(removed.status, LicenseStatusCode::Unlicensed);
    assert!(vault.load(&key).expect("vault").is_none(), "tokens deleted");
    // Revoked at the server: the last refresh token no longer works, even
    // with the install's DPoP key (which "Remove" keeps).
    let scope = StateFile::in_dir(dir.path()).path().display().to_string();
    let seed = vault
        .load_install_key(&scope)
        .expect("vault")
        .expect("install key");
    let dpop = license_client::DpopKey::from_encoded_seed(seed.expose()).expect("key");
    let config = license_client::ClientConfig::new(&server.base).with_dpop_key(dpop);
    let client = license_client::LicenseClient::new(config).expect("client");
    let err = client
        .refresh(&rotated.refresh_token, SystemClock.now())
        .await
        .expect_err("revoked");
    assert!(matches!(err, ClientError::Revoked { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_refresh_starts_the_grace_period_and_a_restart_shows_the_cached_account() {
    let mut server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, _) = open(dir.path(), vault.clone(), &server.base).await;
    let (_, view) = acquire(&licensing, &server).await;
    let verified = view.last_verified.clone().expect("verified");

    server.stop().await;
    let err = licensing.refresh().await.expect_err("offline");
    assert_eq!(err.code, ErrorCode::Offline);
    let view = licensing.view().await;
    assert_eq!(view.verification, VerificationCode::GracePeriod);
    assert_eq!(
        t(view.grace_ends_at.as_deref().expect("grace end")),
        t(&verified) + time::Duration::days(3)
    );
    drop(licensing);

    // A restart with the server still down: the cached document verifies
    // with the cached keys and the panel is there at once.
    let (restarted, _) = open(dir.path(), vault.clone(), &server.base).await;
    let view = restarted.view().await;
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.organization.as_deref(), Some("Demo Store"));
    assert_eq!(view.verification, VerificationCode::GracePeriod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_state_file_is_not_trusted() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, _) = open(dir.path(), vault.clone(), &server.base).await;
    acquire(&licensing, &server).await;
    drop(licensing);

    let path = dir.path().join("state.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    // Someone edits the cached account and the signed document's payload
    // (the file holds the sealed state under "state").
    let state = &mut json["state"];
    state["state"]["account"]["organization"] = "Forged Org".into();
    let doc = state["license_document"].as_str().expect("doc").to_string();
    let mut parts: Vec<String> = doc.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    state["license_document"] = parts.join(".").into();
    std::fs::write(&path, serde_json::to_vec(&json).expect("json")).expect("write");

    let (reopened, _) = open(dir.path(), vault, &server.base).await;
    let view = reopened.view().await;
    assert_eq!(view.organization, None, "nothing unverified is shown");
}

/// The system clock, set back by a fixed amount.
#[derive(Debug)]
struct BehindClock(time::Duration);

impl Clock for BehindClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() - self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_after_licensing_keeps_the_license_and_extends_nothing() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, _) = open(dir.path(), vault.clone(), &server.base).await;
    let (_, view) = acquire(&licensing, &server).await;
    let verified = t(&view.last_verified.clone().expect("verified"));
    let expires = t(&view.token_expires_at.clone().expect("token expiry"));
    drop(licensing);

    // Restarted with the clock a day behind: the cached document is still
    // trusted (not "not yet valid"), the panel says the clock went back,
    // and nothing is counted from the earlier time.
    let behind = Arc::new(BehindClock(time::Duration::days(1)));
    let restarted = open_with_clock(dir.path(), vault, &server.base, behind).await;
    let view = restarted.view().await;
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.organization.as_deref(), Some("Demo Store"));
    assert!(
        view.clock_rolled_back_secs.is_some_and(|s| s >= 86_000),
        "{:?}",
        view.clock_rolled_back_secs
    );
    // Within a second: after a restart the last verification is bounded by
    // the signed document's time (whole seconds, up to a second after the
    // server signed), which may be a little before this computer's record.
    let off = t(view.last_verified.as_deref().expect("verified")) - verified;
    assert!(off.abs() <= time::Duration::seconds(1), "{off}");
    assert_eq!(
        t(view.token_expires_at.as_deref().expect("expiry")).unix_timestamp(),
        expires.unix_timestamp()
    );
}

// ---------------------------------------------------------------------------
// The state file is the customer's to edit (issue 14): every change to it is
// recognized, and none extends the grace period, the validity or the account
// shown. Each case reopens the console four days after its last
// verification, when the 3-day grace period is over whatever the file says.

#[derive(Debug, Default)]
struct Shown(Mutex<Vec<license_core::Notice>>);

impl license_console_lib::notify::Notifier for Shown {
    fn show(&self, notice: &license_core::Notice) -> Result<(), String> {
        self.0.lock().expect("lock").push(notice.clone());
        Ok(())
    }
}

/// The console reopened with `clock` over the state file in `dir`.
async fn open_with_clock(
    dir: &std::path::Path,
    vault: Arc<MemoryVault>,
    url: &str,
    clock: Arc<dyn Clock>,
) -> Arc<Licensing> {
    Licensing::open(
        clock,
        vault,
        StateFile::in_dir(dir),
        Arc::new(Recorder::default()),
        Some(url.to_string()),
    )
    .await
    .expect("open")
}

/// The console reopened at `at` over the state file in `dir`.
async fn reopen_at(
    dir: &std::path::Path,
    vault: Arc<MemoryVault>,
    url: &str,
    at: OffsetDateTime,
) -> Arc<Licensing> {
    open_with_clock(
        dir,
        vault,
        url,
        Arc::new(license_core::ManualClock::new(at)),
    )
    .await
}

/// Edits the sealed state inside the file, keeping the seal as it was.
fn edit_state(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("state.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    edit(&mut file["state"]);
    std::fs::write(&path, serde_json::to_string_pretty(&file).expect("json")).expect("write");
}

/// A license document signed by a key of the attacker's own, for the same
/// server and device, valid for years, with a generous policy.
fn self_signed_document(issuer: &str, genuine: &str) -> (String, license_core::JwkSet) {
    use base64::Engine as _;
    let payload = genuine.split('.').nth(1).expect("payload");
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims");
    claims["exp"] = serde_json::json!(4_000_000_000i64);
    claims["policy"]["grace_period_secs"] = serde_json::json!(365 * 86_400);
    claims["iss"] = serde_json::json!(issuer);
    let key = ed25519_dalek::SigningKey::from_bytes(&[66; 32]);
    let jwks = license_core::JwkSet::single(&key.verifying_key());
    let kid = jwks.keys[0].kid.clone();
    let doc = license_core::token::encode(
        &claims,
        license_core::token::LICENSE_DOCUMENT_TYP,
        &kid,
        &key,
    );
    (doc, jwks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_state_file_is_recognized_and_extends_nothing() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, _) = open(dir.path(), vault.clone(), &server.base).await;
    let (_, view) = acquire(&licensing, &server).await;
    let verified = t(view.last_verified.as_deref().expect("verified"));
    let older_copy = std::fs::read(dir.path().join("state.json")).expect("copy");
    licensing.refresh().await.expect("refresh");
    drop(licensing);
    let genuine = std::fs::read(dir.path().join("state.json")).expect("file");
    let later = verified + time::Duration::days(4);

    // Untouched: intact, and the grace period is over four days on.
    let untouched = reopen_at(dir.path(), vault.clone(), &server.base, later).await;
    let v = untouched.view().await;
    assert_eq!(v.state_integrity, StateIntegrity::Intact);
    assert_eq!(v.verification, VerificationCode::GraceExpired, "{v:?}");
    drop(untouched);

    let document: String = {
        let file: serde_json::Value = serde_json::from_slice(&genuine).expect("json");
        file["state"]["license_document"]
            .as_str()
            .expect("document")
            .to_owned()
    };
    let (forged, forged_keys) = self_signed_document(&server.base, &document);
    let far = "2099-01-01T00:00:00Z";
    type Edit = Box<dyn FnOnce(&std::path::Path)>;
    let cases: Vec<(&str, Edit, StateIntegrity)> = vec![
        (
            "a longer grace period",
            Box::new(|d| {
                edit_state(d, |s| {
                    s["state"]["policy"]["grace_period_secs"] = (30 * 86_400).into()
                })
            }),
            StateIntegrity::Edited,
        ),
        (
            "a later last verification",
            Box::new(move |d| edit_state(d, |s| s["state"]["last_verified"] = far.into())),
            StateIntegrity::Edited,
        ),
        (
            "a later token expiry",
            Box::new(move |d| edit_state(d, |s| s["state"]["token_expires_at"] = far.into())),
            StateIntegrity::Edited,
        ),
        (
            "an earlier highest time seen",
            Box::new(|d| {
                edit_state(d, |s| {
                    s["state"]["highest_seen"] = "2000-01-01T00:00:00Z".into()
                })
            }),
            StateIntegrity::Edited,
        ),
        (
            "no failures",
            Box::new(|d| {
                edit_state(d, |s| {
                    s["state"]["consecutive_failures"] = 0.into();
                    s["state"]["last_failure"] = serde_json::Value::Null;
                })
            }),
            StateIntegrity::Edited,
        ),
        (
            "a self-signed document and its keys",
            Box::new(move |d| {
                edit_state(d, |s| {
                    s["license_document"] = forged.clone().into();
                    s["jwks"] = serde_json::to_value(&forged_keys).expect("jwks");
                })
            }),
            StateIntegrity::Edited,
        ),
        (
            "the seal removed",
            Box::new(|d| {
                let path = d.join("state.json");
                let file: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
                std::fs::write(&path, serde_json::to_vec(&file["state"]).expect("json"))
                    .expect("write");
            }),
            StateIntegrity::Edited,
        ),
        (
            "the file truncated",
            Box::new(|d| {
                let path = d.join("state.json");
                let bytes = std::fs::read(&path).expect("read");
                std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
            }),
            StateIntegrity::Edited,
        ),
        (
            "the file deleted",
            Box::new(|d| std::fs::remove_file(d.join("state.json")).expect("remove")),
            StateIntegrity::Deleted,
        ),
        (
            "an older copy restored",
            Box::new(move |d| std::fs::write(d.join("state.json"), &older_copy).expect("write")),
            StateIntegrity::OlderCopy,
        ),
    ];
    for (what, edit, expected) in cases {
        std::fs::write(dir.path().join("state.json"), &genuine).expect("restore");
        let _ = std::fs::remove_file(dir.path().join("state.json.damaged"));
        edit(dir.path());
        let console = reopen_at(dir.path(), vault.clone(), &server.base, later).await;
        let v = console.view().await;
        assert_eq!(v.state_integrity, expected, "{what}");
        assert_ne!(
            v.verification,
            VerificationCode::GracePeriod,
            "{what}: {v:?}"
        );
        assert_ne!(v.verification, VerificationCode::Verified, "{what}: {v:?}");
        assert_eq!(v.grace_period, "3 days", "{what}: the server's policy");
        if let Some(shown) = &v.last_verified {
            assert!(
                t(shown) <= verified + time::Duration::minutes(1),
                "{what}: {shown}"
            );
        }
        if let Some(exp) = &v.token_expires_at {
            assert!(t(exp) < verified + time::Duration::days(4), "{what}: {exp}");
        }
        assert!(
            v.organization.is_none() || v.organization.as_deref() == Some("Demo Store"),
            "{what}: {v:?}"
        );
        // Told once on the desktop.
        let shown = Arc::new(Shown::default());
        console
            .deliver_notices(shown.clone())
            .await
            .expect("notices");
        console
            .deliver_notices(shown.clone())
            .await
            .expect("notices");
        let tampered = shown
            .0
            .lock()
            .expect("lock")
            .iter()
            .filter(|n| n.kind == license_core::NoticeKind::StateTampered)
            .count();
        assert_eq!(tampered, 1, "{what}: one notice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_state_file_is_recovered_from_the_keychain_by_a_refresh() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, _) = open(dir.path(), vault.clone(), &server.base).await;
    let (server_id, _) = acquire(&licensing, &server).await;
    drop(licensing);
    std::fs::remove_file(dir.path().join("state.json")).expect("remove");

    let (reopened, _) = open(dir.path(), vault, &server.base).await;
    let view = reopened.view().await;
    assert_eq!(view.state_integrity, StateIntegrity::Deleted);
    assert_eq!(
        view.status,
        LicenseStatusCode::Unlicensed,
        "nothing to show yet"
    );
    assert!(reopened.refresh_due().await, "asks the server at once");
    let view = reopened.refresh().await.expect("refresh");
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.server_id.as_deref(), Some(server_id.as_str()));
}

/// The system clock, set forward by a fixed amount.
#[derive(Debug)]
struct AheadClock(time::Duration);

impl Clock for AheadClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + self.0
    }
}

/// A clock once set a week ahead must not make the console unusable (issue
/// 14, item 3): while it is ahead, Refresh says so and by how much; once it
/// is right again, Refresh works (the server's `Date` confirms the clock),
/// and so do Remove and acquiring again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_a_week_ahead_then_back_recovers() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Arc::new(MemoryVault::default());
    let (licensing, _) = open(dir.path(), vault.clone(), &server.base).await;
    acquire(&licensing, &server).await;
    drop(licensing);

    let week = time::Duration::days(7);
    let ahead = open_with_clock(
        dir.path(),
        vault.clone(),
        &server.base,
        Arc::new(AheadClock(week)),
    )
    .await;
    let err = ahead
        .refresh()
        .await
        .expect_err("the clock is a week ahead");
    assert_eq!(err.code, ErrorCode::Clock, "{err:?}");
    assert!(
        err.message.contains("7 days ahead") || err.message.contains("6 days ahead"),
        "says by how much: {}",
        err.message
    );
    drop(ahead);

    // The clock is right again; the console saw a time a week ahead.
    let (back, _) = open(dir.path(), vault.clone(), &server.base).await;
    assert!(back.view().await.clock_rolled_back_secs.is_some());
    let view = back.refresh().await.expect("refresh with the clock right");
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.verification, VerificationCode::Verified);
    assert_eq!(
        view.clock_rolled_back_secs, None,
        "the server confirmed the clock"
    );

    // Remove and acquire again after the same mistake.
    drop(back);
    let ahead = open_with_clock(
        dir.path(),
        vault.clone(),
        &server.base,
        Arc::new(AheadClock(week)),
    )
    .await;
    drop(ahead);
    let (back, _) = open(dir.path(), vault, &server.base).await;
    back.remove(true).await.expect("removed");
    let (_, view) = acquire(&back, &server).await;
    assert_eq!(view.status, LicenseStatusCode::Licensed);
    assert_eq!(view.clock_rolled_back_secs, None);
}
