//! The console's license: acquire by device authorization
//! (`authorization.rs`), refresh and remove (`refresh.rs`), and the state
//! behind the panel (here). A thin shell: decisions come from
//! `license-core`, HTTP from `license-client`, tokens go to the keychain and
//! everything else to the state file.

mod authorization;
mod refresh;

use std::sync::Arc;

use license_client::{ClientConfig, LicenseClient};
use license_core::{notices_due, LicenseState, Notice, Policy};
use time::OffsetDateTime;
use tokio::sync::Mutex;

pub use self::authorization::AuthorizationView;
use self::authorization::Pending;
use crate::clock::Clock;
use crate::error::{CommandError, ErrorCode};
use crate::notify::Notifier;
use crate::settings::Settings;
use crate::store::{Persisted, StateFile};
use crate::vault::{TokenVault, VaultError};
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
/// proxy. The proxy itself comes from `HTTPS_PROXY` / `NO_PROXY`.
pub fn new_client(url: &str, clock: Arc<dyn Clock>) -> Result<LicenseClient, CommandError> {
    let mut config = ClientConfig::new(url.to_string());
    if let Some(path) = std::env::var_os("LICENSE_CONSOLE_EXTRA_CA") {
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
    Ok(LicenseClient::with_clock(config, clock)?)
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

impl Licensing {
    /// Loads the state file and verifies the cached license document with
    /// the cached keys; nothing unverified reaches the panel.
    pub async fn open(
        clock: Arc<dyn Clock>,
        vault: Arc<dyn TokenVault>,
        file: StateFile,
        events: Arc<dyn Events>,
        default_server_url: Option<String>,
    ) -> Result<Arc<Self>, CommandError> {
        let mut persisted = file.load().map_err(store_error)?;
        if persisted.server_url.is_none() {
            persisted.server_url = default_server_url;
        }
        let now = clock.now();
        let mut client = None;
        persisted.state.account = None;
        if let Some(url) = persisted.server_url.clone() {
            if let Ok(c) = new_client(&url, Arc::clone(&clock)) {
                if let Some(jwks) = persisted.jwks.clone() {
                    c.set_cached_jwks(jwks);
                }
                if let Some(raw) = persisted.license_document.clone() {
                    // A clock set back since the document was verified must
                    // neither revive it nor reject it as "not yet valid".
                    let at = persisted.state.effective_now(now);
                    match c.verify_document(&raw, at).await {
                        Ok(claims) => persisted.state.account = Some(claims.account),
                        Err(err) => {
                            tracing::warn!(error = %err, "cached license document did not verify; waiting for a refresh")
                        }
                    }
                }
                client = Some(c);
            }
        }
        persisted.state.observe(now);
        Ok(Arc::new(Self {
            clock,
            vault,
            file,
            events,
            inner: Mutex::new(Inner {
                persisted,
                highest_saved: None,
                client,
                pending: None,
            }),
            refresh_gate: Mutex::new(()),
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
        view::build(
            &Self::effective_state(inner),
            p.server_url.as_deref(),
            p.server_id.as_deref(),
            self.clock.now(),
        )
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

    fn save(&self, inner: &mut Inner) -> Result<(), CommandError> {
        inner.persisted.version = 1;
        self.file.save(&inner.persisted).map_err(store_error)?;
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
    /// Shows the notices owed now through `notifier` and remembers each one
    /// shown, across restarts, so none is sent twice. A notice that could
    /// not be shown stays owed.
    pub async fn deliver_notices(
        &self,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Vec<Notice>, CommandError> {
        let due = {
            let mut inner = self.inner.lock().await;
            let now = self.clock.now();
            inner.persisted.state.observe(now);
            // Persist the highest time seen even when nothing is owed (it is
            // what detects a clock set back after a restart), but not on every
            // tick: within the clock tolerance, losing it costs nothing.
            let due_to_save = inner
                .highest_saved
                .is_none_or(|saved| now - saved >= HIGHEST_SEEN_SAVE_EVERY);
            if due_to_save {
                self.save(&mut inner)?;
            }
            notices_due(
                &Self::effective_state(&inner),
                &inner.persisted.delivered,
                now,
            )
        };
        if due.is_empty() {
            return Ok(due);
        }
        // The desktop's notification service is a blocking D-Bus call.
        let shown = tokio::task::spawn_blocking(move || {
            due.into_iter()
                .filter(|notice| match notifier.show(notice) {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::warn!(id = %notice.id, error = %err, "notification not shown");
                        false
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| {
            CommandError::new(
                ErrorCode::Internal,
                format!("notification task failed: {e}"),
            )
        })?;
        let mut inner = self.inner.lock().await;
        for notice in &shown {
            inner.persisted.delivered.mark(notice);
        }
        self.save(&mut inner)?;
        Ok(shown)
    }

    /// Waits until the license changes (or forever).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}
