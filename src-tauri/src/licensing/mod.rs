//! The console's license: acquire by device authorization
//! (`authorization.rs`), refresh and remove (`refresh.rs`), the install's
//! DPoP key (`install_key.rs`), and the state behind the panel (here). A
//! thin shell: decisions come from `license-core`, HTTP from
//! `license-client`, tokens and the install's key go to the keychain and
//! everything else to the state file.

mod authorization;
mod install_key;
mod notices;
mod offline;
mod refresh;

use std::sync::Arc;

use license_client::desktop_proxy::DesktopProxy;
use license_client::{connectivity, ClientConfig, DpopKey, LicenseClient};
use license_core::token::{verify, Expectation, VerifyError};
use license_core::{state_tampered_notice, AccountClaims, JwkSet, LicenseState, Notice, Policy};
use time::OffsetDateTime;
use tokio::sync::Mutex;

pub use self::authorization::AuthorizationView;
use self::authorization::Pending;
pub use self::offline::vendor_keys;
use crate::clock::Clock;
use crate::error::{CommandError, ErrorCode};
use crate::settings::Settings;
use crate::store::{integrity, Persisted, StateFile, StateIntegrity};
use crate::vault::{Guard, TokenVault, VaultError};
use crate::view::{self, LicenseView};

/// Where views and failures go (the Tauri shell emits them as events).
pub trait Events: Send + Sync {
    /// The license view changed.
    fn license_changed(&self, view: &LicenseView);
    /// The authorization in progress ended without a license.
    fn authorization_failed(&self, error: &CommandError);
    /// The authorization in progress is still waiting (its words of
    /// validity changed).
    fn authorization_waiting(&self, view: &AuthorizationView);
}

/// How often the background tick writes the highest time seen; shorter than
/// the default clock tolerance (5 minutes), so a restart loses nothing that matters.
const HIGHEST_SEEN_SAVE_EVERY: time::Duration = time::Duration::minutes(4);

/// How long a keychain call may wait, unlock prompt included.
const KEYCHAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What the lock of [`Licensing`] guards.
struct Inner {
    persisted: Persisted,
    /// The keychain's guard of the state file (seal key, generation, facts
    /// the file must not undo, trust anchors).
    guard: Guard,
    /// Whether the state file read at start was the one last written.
    integrity: StateIntegrity,
    /// The notice owed once because the state file was changed.
    tamper_notice: Option<Notice>,
    /// `highest_seen` as last written to the state file.
    highest_saved: Option<OffsetDateTime>,
    client: Option<LicenseClient>,
    pending: Option<Pending>,
}

/// The console's license and everything done to it.
pub struct Licensing {
    clock: Arc<dyn Clock>,
    vault: Arc<dyn TokenVault>,
    file: StateFile,
    events: Arc<dyn Events>,
    inner: Mutex<Inner>,
    /// Held for the whole of a refresh, so two never run at once.
    refresh_gate: Mutex<()>,
    /// The install's DPoP key, once read from the keychain (or made).
    install_key: Mutex<Option<DpopKey>>,
    /// Wakes the background task when the license changed, so the plan and
    /// the notices owed are looked at again at once.
    changed: tokio::sync::Notify,
}

impl std::fmt::Debug for Licensing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Licensing")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The client of `url`, trusting the extra CA certificate (PEM) named by
/// `LICENSE_CONSOLE_EXTRA_CA` if set, for networks behind a TLS-inspecting
/// proxy. The proxy itself comes from `HTTPS_PROXY` / `NO_PROXY`, else from
/// the desktop's settings (GNOME's `org.gnome.system.proxy`). With the
/// install's DPoP key (`dpop_key`), its requests carry proofs; every client
/// that talks to the server has it (see `install_key.rs`).
pub fn new_client(
    url: &str,
    clock: Arc<dyn Clock>,
    dpop_key: Option<DpopKey>,
) -> Result<LicenseClient, CommandError> {
    let mut config = client_config(url)?;
    config.dpop_key = dpop_key;
    Ok(LicenseClient::with_clock(config, clock)?)
}

/// The environment variable naming the extra CA certificate (PEM file).
pub const EXTRA_CA_VAR: &str = "LICENSE_CONSOLE_EXTRA_CA";

/// The configuration of every client of `url` (without the install's key):
/// what [`new_client`] and the connectivity check both use, so the check
/// trusts exactly what the console trusts.
pub fn client_config(url: &str) -> Result<ClientConfig, CommandError> {
    let mut config = ClientConfig::new(url.to_string());
    if let Some(path) = std::env::var_os(EXTRA_CA_VAR) {
        let pem = std::fs::read(&path).map_err(|e| {
            CommandError::new(
                ErrorCode::InvalidInput,
                format!(
                    "Cannot read the extra CA certificate {}: {e}",
                    std::path::Path::new(&path).display()
                ),
            )
        })?;
        config.extra_ca_pem = Some(pem);
    }
    // The desktop's proxy (GNOME's settings) when the environment names none.
    config.desktop_proxy =
        DesktopProxy::when_environment_has_none(&|name| std::env::var(name).ok());
    Ok(config)
}

fn vault_error(err: VaultError) -> CommandError {
    let code = match err {
        VaultError::Locked => ErrorCode::KeychainLocked,
        VaultError::Unavailable(_) => ErrorCode::KeychainUnavailable,
        VaultError::Corrupt => ErrorCode::KeychainCorrupt,
    };
    CommandError::new(code, err.to_string())
}

fn store_error(err: crate::store::StoreError) -> CommandError {
    CommandError::new(ErrorCode::Storage, err.to_string())
}

/// Accepts `host:port` as well as a full `http(s)://` URL (the form's
/// convenience: no scheme means https), then normalizes it the one way
/// every part of the product does ([`license_client::normalize_server_url`]).
pub fn normalize_server_url(input: &str) -> Result<String, CommandError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(CommandError::new(
            ErrorCode::InvalidInput,
            "Enter the license server URL, for example https://license.example.com.",
        ));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    Ok(license_client::normalize_server_url(&with_scheme)?)
}

/// Verifies a license document against `anchor` only (never keys from the
/// state file, never keys fetched on the way): the license server's
/// signature, for this console, at `at`.
pub(crate) fn verify_document(
    server_url: &str,
    client_id: &str,
    anchor: &JwkSet,
    raw: &str,
    at: OffsetDateTime,
) -> Result<AccountClaims, VerifyError> {
    verify(
        raw,
        anchor,
        &Expectation::license_document(server_url, client_id),
        at,
    )
}

/// Verifies a cached license document's signature, issuer, audience and
/// type against `anchor`, whatever the time: its signing time is what the
/// grace period counts from ([`apply_signed_facts`]).
fn verify_document_signature(
    server_url: &str,
    client_id: &str,
    anchor: &JwkSet,
    raw: &str,
) -> Result<AccountClaims, VerifyError> {
    let any_time = Expectation {
        leeway_secs: i64::MAX / 4,
        ..Expectation::license_document(server_url, client_id)
    };
    verify(raw, anchor, &any_time, OffsetDateTime::UNIX_EPOCH)
}

/// Reads the keychain's guard; `Err` when the keychain cannot be asked.
async fn read_guard(
    vault: &Arc<dyn TokenVault>,
    file: &StateFile,
) -> Result<Option<Guard>, VaultError> {
    let vault = Arc::clone(vault);
    let scope = file.path().display().to_string();
    let task = tokio::task::spawn_blocking(move || vault.load_guard(&scope));
    match tokio::time::timeout(KEYCHAIN_TIMEOUT, task).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => Err(VaultError::Unavailable(e.to_string())),
        Err(_) => Err(VaultError::Locked),
    }
}

impl Licensing {
    /// Loads the state file, checks it against the keychain's guard, and
    /// verifies the cached license document against the trust anchor;
    /// nothing unverified reaches the panel, and a changed file extends
    /// nothing: the signed document's facts override the file's.
    pub async fn open(
        clock: Arc<dyn Clock>,
        vault: Arc<dyn TokenVault>,
        file: StateFile,
        events: Arc<dyn Events>,
        default_server_url: Option<String>,
    ) -> Result<Arc<Self>, CommandError> {
        let loaded = file.load().map_err(store_error)?;
        let now = clock.now();
        let (mut guard, integrity) = match read_guard(&vault, &file).await {
            Ok(stored) => {
                let found = integrity(&loaded.envelope, stored.as_ref());
                (stored.unwrap_or_default(), found)
            }
            Err(err) => {
                // Not checkable now; the signed facts below still decide.
                tracing::warn!(error = %err, "keychain unavailable: the state file's seal is not checked");
                (Guard::new(), StateIntegrity::Intact)
            }
        };
        let mut persisted = loaded.persisted;
        if integrity != StateIntegrity::Intact {
            tracing::warn!(?integrity, "the state file was changed outside the console");
            // Only the identifiers and the signed document are kept (the
            // document is verified below); the keychain's copies of the
            // identifiers win.
            persisted = Persisted {
                server_url: guard.server_url.clone().or(persisted.server_url),
                server_id: guard.server_id.clone().or(persisted.server_id),
                license_document: persisted.license_document,
                offline_license: persisted.offline_license,
                ..Persisted::default()
            };
        }
        if persisted.server_url.is_none() {
            persisted.server_url = default_server_url;
        }
        // Facts the file must not undo: the highest time seen, a revocation.
        let guarded_seen = guard
            .highest_seen
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        persisted.state.highest_seen = persisted.state.highest_seen.max(guarded_seen);
        persisted.state.revoked |= guard.revoked;
        let mut client = None;
        persisted.state.account = None;
        persisted.state.offline_until = None;
        persisted.state.offline_id = None;
        if let Some(url) = persisted.server_url.clone() {
            // Without the install's key: this one verifies offline, and is
            // given the key before it talks to the server.
            if let Ok(c) = new_client(&url, Arc::clone(&clock), None) {
                let anchor = guard.anchors.get(c.server_url()).cloned();
                if let Some(anchor) = &anchor {
                    c.set_cached_jwks(anchor.clone());
                }
                if let Some(anchor) = &anchor {
                    offline::restore_offline(
                        &vault,
                        &file,
                        &guard,
                        anchor,
                        c.server_url(),
                        &mut persisted,
                    )
                    .await;
                }
                if let (Some(raw), Some(anchor)) = (persisted.license_document.clone(), anchor) {
                    // Whose signature, for whom: checked here. How long it
                    // counts: decided by `license_core::assess` from its
                    // signing time (the grace period), so a clock set back
                    // revives nothing and a clock set forward hides nothing.
                    match verify_document_signature(c.server_url(), c.client_id(), &anchor, &raw) {
                        Ok(claims) => apply_signed_facts(&mut persisted.state, claims),
                        Err(err) => {
                            tracing::warn!(error = %err, "cached license document did not verify; waiting for a refresh")
                        }
                    }
                }
                client = Some(c);
            }
        }
        persisted.state.observe(now);
        let tamper_notice = integrity
            .words()
            .map(|what| state_tampered_notice(what, now));
        if guard.key().is_none() {
            guard = Guard::new();
        }
        Ok(Arc::new(Self {
            clock,
            vault,
            file,
            events,
            inner: Mutex::new(Inner {
                persisted,
                guard,
                integrity,
                tamper_notice,
                highest_saved: None,
                client,
                pending: None,
            }),
            refresh_gate: Mutex::new(()),
            install_key: Mutex::new(None),
            changed: tokio::sync::Notify::new(),
        }))
    }

    /// The panel as of now.
    pub async fn view(&self) -> LicenseView {
        let inner = self.inner.lock().await;
        self.view_of(&inner)
    }

    /// The persisted state with the user's settings applied to the policy.
    fn effective_state(inner: &Inner) -> LicenseState {
        let p = &inner.persisted;
        let mut state = p.state.clone();
        state.policy = p.settings.apply(&p.state.policy);
        state
    }

    fn view_of(&self, inner: &Inner) -> LicenseView {
        let p = &inner.persisted;
        let mut view = view::build(
            &Self::effective_state(inner),
            p.server_url.as_deref(),
            p.server_id.as_deref(),
            self.clock.now(),
        );
        view.state_integrity = inner.integrity;
        view
    }

    /// The connectivity check of `server_url` as typed (the Not licensed
    /// screen tests a URL before anything is saved) or, without one, of the
    /// configured server, with the console's own client configuration.
    pub async fn check_connection(
        &self,
        server_url: Option<&str>,
    ) -> Result<connectivity::Report, CommandError> {
        let url = match server_url {
            Some(typed) => normalize_server_url(typed)?,
            None => {
                let configured = self.inner.lock().await.persisted.server_url.clone();
                configured.ok_or_else(|| {
                    CommandError::new(
                        ErrorCode::InvalidInput,
                        "No license server is set yet: enter its URL, then test the connection.",
                    )
                })?
            }
        };
        let config = client_config(&url)?;
        let clock = Arc::clone(&self.clock);
        Ok(connectivity::check(&config, move || clock.now()).await)
    }

    /// The settings and the server's policy they are checked against.
    pub async fn settings(&self) -> (Settings, Policy) {
        let inner = self.inner.lock().await;
        (
            inner.persisted.settings.clone(),
            inner.persisted.state.policy.clone(),
        )
    }

    /// Validates and saves the settings; the plan and the view follow at once.
    pub async fn save_settings(&self, settings: Settings) -> Result<LicenseView, CommandError> {
        let mut inner = self.inner.lock().await;
        settings.validate(&inner.persisted.state.policy)?;
        inner.persisted.settings = settings;
        self.save(&mut inner)?;
        let view = self.view_of(&inner);
        drop(inner);
        self.events.license_changed(&view);
        self.changed.notify_one();
        Ok(view)
    }

    /// Whether tokens are expected in the keychain (the device was licensed).
    pub async fn is_licensed(&self) -> bool {
        let inner = self.inner.lock().await;
        inner.persisted.server_id.is_some()
    }

    /// Writes the state file as the next generation, sealed, then the
    /// keychain's guard. A guard that could not be written leaves the file
    /// one generation ahead, which still reads as intact.
    fn save(&self, inner: &mut Inner) -> Result<(), CommandError> {
        inner.persisted.version = 2;
        let key = inner.guard.key().ok_or_else(|| {
            CommandError::new(ErrorCode::Internal, "the state file's seal key is unusable")
        })?;
        let generation = inner.guard.generation.saturating_add(1);
        self.file
            .save(&inner.persisted, &key, generation)
            .map_err(store_error)?;
        let p = &inner.persisted;
        inner.guard.generation = generation;
        inner.guard.highest_seen = p.state.highest_seen.map(OffsetDateTime::unix_timestamp);
        inner.guard.revoked = p.state.revoked;
        inner.guard.server_url = p.server_url.clone();
        inner.guard.server_id = p.server_id.clone();
        let scope = self.file.path().display().to_string();
        if let Err(err) = self.vault.save_guard(&scope, &inner.guard) {
            tracing::warn!(error = %err, "the state file's guard was not written to the keychain");
        }
        inner.highest_saved = inner.persisted.state.highest_seen;
        Ok(())
    }

    async fn vault_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TokenVault) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, CommandError> {
        let vault = Arc::clone(&self.vault);
        // The Secret Service backend blocks on D-Bus, and may wait for the
        // user to answer an unlock prompt: give that time, but not forever.
        let task = tokio::task::spawn_blocking(move || f(vault.as_ref()));
        match tokio::time::timeout(KEYCHAIN_TIMEOUT, task).await {
            Ok(joined) => joined
                .map_err(|e| {
                    CommandError::new(ErrorCode::Internal, format!("keychain task failed: {e}"))
                })?
                .map_err(vault_error),
            Err(_) => Err(vault_error(VaultError::Locked)),
        }
    }

    /// The time tokens and documents are verified at: the clock, or the
    /// latest time already seen if the clock was set back since (so a
    /// clock set back never revives an expired token).
    async fn verification_now(&self) -> OffsetDateTime {
        let inner = self.inner.lock().await;
        inner.persisted.state.effective_now(self.clock.now())
    }
    /// Waits until the license changes (or forever).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// What the signed license document says decides: the account, the policy,
/// and a last verification no later than the server's signing time (whole
/// seconds, so up to a second later).
fn apply_signed_facts(state: &mut LicenseState, claims: AccountClaims) {
    state.account = Some(claims.account);
    state.policy = claims.policy;
    if let Ok(signed_at) = OffsetDateTime::from_unix_timestamp(claims.server_time) {
        let latest = signed_at + time::Duration::seconds(1);
        state.last_verified = Some(state.last_verified.map_or(signed_at, |t| t.min(latest)));
    }
}
