//! The console's license: acquire by device authorization, refresh, remove,
//! and the state behind the panel. A thin shell: decisions come from
//! `license-core`, HTTP from `license-client`, tokens go to the keychain and
//! everything else to the state file.

use std::sync::Arc;

use license_client::{
    ClientConfig, ClientError, DeviceAuthorization, LicenseClient, PollOutcome, TokenSet,
};
use license_core::{next_refresh, notices_due, AccountClaims, LicenseState, Notice, Policy};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::error::CommandError;
use crate::notify::Notifier;
use crate::settings::Settings;
use crate::store::{Persisted, StateFile};
use crate::vault::{TokenVault, Tokens, VaultError, VaultKey};
use crate::view::{self, rfc3339, LicenseView};

/// What the console shows while an admin authorizes this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(export, export_to = "../../ui/src/lib/bindings/")
)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationView {
    /// The User Code to enter on the Authorization server, as `XXXX-XXXX`.
    pub user_code: String,
    /// The page where the code is entered.
    pub verification_uri: String,
    /// The same page with the code filled in, when the server offers it.
    pub verification_uri_complete: Option<String>,
    /// When the code stops being valid (RFC 3339).
    pub expires_at: String,
    /// The server being asked.
    pub server_url: String,
}

/// Where views and failures go (the Tauri shell emits them as events).
pub trait Events: Send + Sync {
    /// The license view changed.
    fn license_changed(&self, view: &LicenseView);
    /// The authorization in progress ended without a license.
    fn authorization_failed(&self, error: &CommandError);
}

/// How often the background tick writes the highest time seen; shorter than
/// the default clock tolerance (5 minutes), so a restart loses nothing that matters.
const HIGHEST_SEEN_SAVE_EVERY: time::Duration = time::Duration::minutes(4);

/// How long a keychain call may wait, unlock prompt included.
const KEYCHAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Where the one poller of an authorization stands.
#[derive(Debug, Clone, PartialEq)]
enum PollState {
    /// Still waiting, after this many polls.
    Waiting { polls: u64 },
    /// Authorized: the license is here.
    Done,
    /// Ended without a license.
    Failed(CommandError),
}

struct Pending {
    auth: DeviceAuthorization,
    cancel: CancellationToken,
    /// "Complete Authorization": poll now rather than at the next interval.
    poll_now: Arc<tokio::sync::Notify>,
    state: tokio::sync::watch::Receiver<PollState>,
}

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
pub fn new_client(url: &str) -> Result<LicenseClient, CommandError> {
    let mut config = ClientConfig::new(url.to_string());
    if let Some(path) = std::env::var_os("LICENSE_CONSOLE_EXTRA_CA") {
        let pem = std::fs::read(&path).map_err(|e| {
            CommandError::new(
                "invalid_input",
                format!(
                    "Cannot read the extra CA certificate {}: {e}",
                    std::path::Path::new(&path).display()
                ),
            )
        })?;
        config.extra_ca_pem = Some(pem);
    }
    LicenseClient::new(config).map_err(|e| client_error(&e))
}

pub(crate) fn client_error(err: &ClientError) -> CommandError {
    CommandError::new(err.code(), err.to_string())
}

fn vault_error(err: VaultError) -> CommandError {
    let code = match err {
        VaultError::Locked => "keychain_locked",
        VaultError::Unavailable(_) => "keychain_unavailable",
        VaultError::Corrupt => "keychain_corrupt",
    };
    CommandError::new(code, err.to_string())
}

fn store_error(err: crate::store::StoreError) -> CommandError {
    CommandError::new("storage", err.to_string())
}

/// Accepts `host:port` or a full `http(s)://` URL; returns it without a trailing slash.
pub fn normalize_server_url(input: &str) -> Result<String, CommandError> {
    let trimmed = input.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(CommandError::new(
            "invalid_input",
            "Enter the license server URL, for example https://license.example.com.",
        ));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| {
        CommandError::new(
            "invalid_input",
            format!("\u{201c}{trimmed}\u{201d} is not a valid server URL ({e})."),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CommandError::new(
            "invalid_input",
            "The server URL must start with https:// (or http:// on a trusted network).",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
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
            if let Ok(c) = new_client(&url) {
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
                .map_err(|e| CommandError::new("internal", format!("keychain task failed: {e}")))?
                .map_err(vault_error),
            Err(_) => Err(vault_error(VaultError::Locked)),
        }
    }

    /// "Next": asks the server at `server_url` for a User Code and starts
    /// waiting for an admin to authorize it.
    pub async fn start_authorization(
        self: &Arc<Self>,
        server_url: &str,
    ) -> Result<AuthorizationView, CommandError> {
        let url = normalize_server_url(server_url)?;
        let client = new_client(&url)?;
        let auth = client
            .start_device_authorization()
            .await
            .map_err(|e| client_error(&e))?;
        let now = self.clock.now();
        let view = AuthorizationView {
            user_code: auth.user_code.clone(),
            verification_uri: auth.verification_uri.clone(),
            verification_uri_complete: auth.verification_uri_complete.clone(),
            expires_at: rfc3339(now + time::Duration::seconds(auth.expires_in as i64)),
            server_url: url.clone(),
        };
        let cancel = CancellationToken::new();
        let poll_now = Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = tokio::sync::watch::channel(PollState::Waiting { polls: 0 });
        {
            let mut inner = self.inner.lock().await;
            if let Some(old) = inner.pending.take() {
                old.cancel.cancel();
            }
            inner.persisted.server_url = Some(url);
            inner.client = Some(client.clone());
            inner.pending = Some(Pending {
                auth: auth.clone(),
                cancel: cancel.clone(),
                poll_now: Arc::clone(&poll_now),
                state: rx,
            });
            self.save(&mut inner)?;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = this
                .poll_until_done(&client, &auth, &cancel, &poll_now, &tx)
                .await;
            if cancel.is_cancelled() {
                return;
            }
            match outcome {
                Ok(()) => {
                    let _ = tx.send(PollState::Done);
                }
                Err(err) => {
                    let _ = tx.send(PollState::Failed(err.clone()));
                    if err.code != "superseded" {
                        this.events.authorization_failed(&err);
                    }
                }
            }
        });
        Ok(view)
    }

    /// The only poller of an authorization (RFC 8628 §3.5): every `interval`
    /// seconds, 5 s more after each `slow_down`, sooner when asked through
    /// `poll_now` but never faster than the interval allows.
    async fn poll_until_done(
        &self,
        client: &LicenseClient,
        auth: &DeviceAuthorization,
        cancel: &CancellationToken,
        poll_now: &tokio::sync::Notify,
        state: &tokio::sync::watch::Sender<PollState>,
    ) -> Result<(), CommandError> {
        use std::time::Duration;
        let mut interval = Duration::from_secs(auth.interval.clamp(1, 300));
        let mut last_poll: Option<tokio::time::Instant> = None;
        let mut polls = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(CommandError::new("cancelled", "cancelled")),
                _ = tokio::time::sleep(interval) => {}
                _ = poll_now.notified() => {
                    if let Some(last) = last_poll {
                        let since = last.elapsed();
                        if since < interval {
                            tokio::select! {
                                _ = cancel.cancelled() => return Err(CommandError::new("cancelled", "cancelled")),
                                _ = tokio::time::sleep(interval - since) => {}
                            }
                        }
                    }
                }
            }
            let now = self.clock.now();
            if now >= auth.expires_at() {
                return Err(client_error(&ClientError::CodeExpired));
            }
            last_poll = Some(tokio::time::Instant::now());
            let polled = client.poll_once(auth, self.verification_now().await).await;
            polls += 1;
            match polled {
                Ok(PollOutcome::Granted(tokens)) => return self.finish(tokens, auth).await,
                Ok(PollOutcome::Pending) => {}
                Ok(PollOutcome::SlowDown) => {
                    interval += Duration::from_secs(license_client::SLOW_DOWN_STEP_SECS);
                }
                Err(err) => return Err(client_error(&err)),
            }
            let _ = state.send(PollState::Waiting { polls });
        }
    }

    /// "Complete Authorization": asks the server now (as soon as the polling
    /// interval allows) instead of at the next poll, and reports the answer.
    pub async fn complete_authorization(self: &Arc<Self>) -> Result<LicenseView, CommandError> {
        let (poll_now, mut state) = {
            let inner = self.inner.lock().await;
            match &inner.pending {
                Some(p) => (Arc::clone(&p.poll_now), p.state.clone()),
                None if inner.persisted.state.account.is_some() => return Ok(self.view_of(&inner)),
                None => {
                    return Err(CommandError::new(
                        "no_authorization",
                        "There is no authorization in progress. Choose Next to get a User Code.",
                    ))
                }
            }
        };
        let current = state.borrow_and_update().clone();
        let before = match current {
            PollState::Waiting { polls } => polls,
            PollState::Done => return Ok(self.view().await),
            PollState::Failed(err) => return Err(err),
        };
        poll_now.notify_one();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                if state.changed().await.is_err() {
                    return PollState::Failed(CommandError::new(
                        "cancelled",
                        "The authorization was cancelled.",
                    ));
                }
                let current = state.borrow_and_update().clone();
                match current {
                    PollState::Waiting { polls } if polls <= before => continue,
                    other => return other,
                }
            }
        })
        .await;
        match answer {
            Ok(PollState::Done) => Ok(self.view().await),
            Ok(PollState::Failed(err)) => Err(err),
            Ok(PollState::Waiting { .. }) | Err(_) => Err(CommandError::new(
                "authorization_pending",
                "This device is not authorized yet. Enter the User Code on the Authorization server, choose Authorize, then Complete Authorization.",
            )),
        }
    }

    /// Stops waiting for the authorization in progress.
    pub async fn cancel_authorization(&self) {
        if let Some(p) = self.inner.lock().await.pending.take() {
            p.cancel.cancel();
        }
    }

    /// The verification page of the authorization in progress, to open in a browser.
    pub async fn verification_page(&self) -> Option<String> {
        let inner = self.inner.lock().await;
        inner.pending.as_ref().map(|p| {
            p.auth
                .verification_uri_complete
                .clone()
                .unwrap_or_else(|| p.auth.verification_uri.clone())
        })
    }

    async fn finish(
        &self,
        tokens: TokenSet,
        auth: &DeviceAuthorization,
    ) -> Result<(), CommandError> {
        let (client, url) = {
            let mut inner = self.inner.lock().await;
            // Only the authorization still in progress may finish.
            if inner
                .pending
                .as_ref()
                .is_none_or(|p| p.auth.user_code != auth.user_code)
            {
                return Err(CommandError::new("superseded", "superseded"));
            }
            inner.pending = None;
            let Some(client) = inner.client.clone() else {
                return Err(CommandError::new("superseded", "superseded"));
            };
            let url = inner.persisted.server_url.clone().unwrap_or_default();
            (client, url)
        };
        let key = VaultKey {
            server_url: url,
            server_id: tokens.claims.sub.clone(),
        };
        let stored = Tokens {
            license_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
        };
        let k = key.clone();
        self.vault_call(move |v| v.save(&k, &stored)).await?;
        let mut inner = self.inner.lock().await;
        inner.persisted.server_id = Some(key.server_id.clone());
        inner.persisted.delivered = Default::default();
        inner.persisted.state = LicenseState {
            highest_seen: inner.persisted.state.highest_seen,
            ..LicenseState::default()
        };
        inner.persisted.state.apply_token(&tokens.claims);
        self.save(&mut inner)?;
        drop(inner);
        self.fetch_and_record(&client, &tokens).await
    }

    async fn fetch_and_record(
        &self,
        client: &LicenseClient,
        tokens: &TokenSet,
    ) -> Result<(), CommandError> {
        let fetched = client
            .fetch_license(&tokens.access_token, self.verification_now().await)
            .await;
        let jwks = client.jwks().await.ok();
        let mut inner = self.inner.lock().await;
        match fetched {
            Ok(doc) => {
                let claims: AccountClaims = doc.claims;
                let server_time = OffsetDateTime::from_unix_timestamp(claims.server_time).ok();
                let state = &mut inner.persisted.state;
                state.account = Some(claims.account);
                state.policy = claims.policy;
                state.revoked = false;
                state.apply_token(&tokens.claims);
                state.record_success(self.clock.now(), server_time);
                inner.persisted.license_document = Some(doc.raw);
                if jwks.is_some() {
                    inner.persisted.jwks = jwks;
                }
                inner.client = Some(client.clone());
                self.save(&mut inner)?;
                let view = self.view_of(&inner);
                drop(inner);
                self.events.license_changed(&view);
                self.changed.notify_one();
                Ok(())
            }
            Err(err) => {
                self.record_failure(&mut inner, &err)?;
                Err(client_error(&err))
            }
        }
    }

    fn record_failure(&self, inner: &mut Inner, err: &ClientError) -> Result<(), CommandError> {
        if err.code() == "revoked" {
            inner.persisted.state.revoked = true;
        }
        inner.persisted.state.record_failure(self.clock.now());
        self.save(inner)?;
        let view = self.view_of(inner);
        self.events.license_changed(&view);
        self.changed.notify_one();
        Ok(())
    }

    /// The time tokens and documents are verified at: the clock, or the
    /// latest time already seen if the clock was set back since (so a
    /// clock set back never revives an expired token).
    async fn verification_now(&self) -> OffsetDateTime {
        let inner = self.inner.lock().await;
        inner.persisted.state.effective_now(self.clock.now())
    }

    /// "Refresh": a new license token and the license account, now. A
    /// refresh already running is joined rather than repeated.
    pub async fn refresh(&self) -> Result<LicenseView, CommandError> {
        let started = self.clock.now();
        let _gate = self.refresh_gate.lock().await;
        let (client, key) = {
            let inner = self.inner.lock().await;
            // Joined a refresh that finished while we waited: its result stands.
            if inner
                .persisted
                .state
                .last_verified
                .is_some_and(|t| t >= started)
            {
                return Ok(self.view_of(&inner));
            }
            let (Some(url), Some(id)) = (
                inner.persisted.server_url.clone(),
                inner.persisted.server_id.clone(),
            ) else {
                return Err(CommandError::new(
                    "not_licensed",
                    "This console is not licensed yet: acquire a license first.",
                ));
            };
            let client = match &inner.client {
                Some(c) => c.clone(),
                None => new_client(&url)?,
            };
            (
                client,
                VaultKey {
                    server_url: url,
                    server_id: id,
                },
            )
        };
        let k = key.clone();
        let Some(tokens) = self.vault_call(move |v| v.load(&k)).await? else {
            return Err(CommandError::new(
                "keychain_missing",
                "The license tokens are missing from the system keychain. Remove the license and acquire it again.",
            ));
        };
        match client
            .refresh(&tokens.refresh_token, self.verification_now().await)
            .await
        {
            Ok(new) => {
                let stored = Tokens {
                    license_token: new.access_token.clone(),
                    refresh_token: new.refresh_token.clone(),
                };
                let k = key.clone();
                self.vault_call(move |v| v.save(&k, &stored)).await?;
                self.fetch_and_record(&client, &new).await?;
                Ok(self.view().await)
            }
            Err(err) => {
                let mut inner = self.inner.lock().await;
                self.record_failure(&mut inner, &err)?;
                Err(client_error(&err))
            }
        }
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
        .map_err(|e| CommandError::new("internal", format!("notification task failed: {e}")))?;
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

    /// Whether a refresh is due now (the background task asks every tick).
    pub async fn refresh_due(&self) -> bool {
        let inner = self.inner.lock().await;
        if inner.persisted.server_id.is_none() || inner.persisted.state.revoked {
            return false;
        }
        let now = self.clock.now();
        next_refresh(&Self::effective_state(&inner), now).is_some_and(|at| at <= now)
    }

    /// "Remove license": revokes at the server, deletes the tokens from the
    /// keychain and forgets the account. With `force`, a server that cannot
    /// be reached does not stop the removal from this computer.
    pub async fn remove(&self, force: bool) -> Result<LicenseView, CommandError> {
        let _gate = self.refresh_gate.lock().await;
        let (client, key) = {
            let inner = self.inner.lock().await;
            let key = match (&inner.persisted.server_url, &inner.persisted.server_id) {
                (Some(url), Some(id)) => Some(VaultKey {
                    server_url: url.clone(),
                    server_id: id.clone(),
                }),
                _ => None,
            };
            (inner.client.clone(), key)
        };
        if let Some(key) = &key {
            let k = key.clone();
            let tokens = self.vault_call(move |v| v.load(&k)).await?;
            if let (Some(tokens), Some(client)) = (tokens, client) {
                if let Err(err) = client.revoke(&tokens.refresh_token).await {
                    if !force {
                        let mut e = client_error(&err);
                        e.message.push_str(
                            " The license was not removed. Choose Remove anyway to remove it from this computer only.",
                        );
                        return Err(e);
                    }
                }
            }
            let k = key.clone();
            self.vault_call(move |v| v.delete(&k)).await?;
        }
        let mut inner = self.inner.lock().await;
        let server_url = inner.persisted.server_url.clone();
        let settings = inner.persisted.settings.clone();
        let highest_seen = inner.persisted.state.latest_seen();
        inner.persisted = Persisted {
            server_url,
            settings,
            ..Persisted::default()
        };
        inner.persisted.state.highest_seen = highest_seen;
        self.save(&mut inner)?;
        let view = self.view_of(&inner);
        drop(inner);
        self.events.license_changed(&view);
        Ok(view)
    }
}
