//! Acquiring a license by device authorization (RFC 8628): Next, the User
//! Code, then Complete Authorization. The one polling loop is the client's
//! ([`LicenseClient::poll_until_granted`]); this shell feeds its progress to
//! the panel and finishes with the tokens.

use std::sync::Arc;

use license_client::{DeviceAuthorization, LicenseClient, PollControl, PollProgress, TokenSet};
use license_core::wording::duration_in_words;
use license_core::LicenseState;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{normalize_server_url, Licensing};
use crate::error::{CommandError, ErrorCode};
use crate::vault::{Tokens, VaultKey};
use crate::view::{rfc3339, LicenseView};

/// What the console shows while an admin authorizes this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
    /// How long the code stays valid, in words ("15 minutes"), as of now.
    pub valid_for: String,
    /// The server being asked.
    pub server_url: String,
}

/// Where the one poller of an authorization stands.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PollState {
    /// Still waiting, after this many polls.
    Waiting { polls: u32 },
    /// Authorized: the license is here.
    Done,
    /// Ended without a license.
    Failed(CommandError),
}

/// The authorization in progress.
pub(super) struct Pending {
    auth: DeviceAuthorization,
    cancel: CancellationToken,
    /// "Complete Authorization": poll now rather than at the next interval.
    control: Arc<PollControl>,
    state: tokio::sync::watch::Receiver<PollState>,
}

impl Licensing {
    /// "Next": asks the server at `server_url` for a User Code and starts
    /// waiting for an admin to authorize it.
    pub async fn start_authorization(
        self: &Arc<Self>,
        server_url: &str,
    ) -> Result<AuthorizationView, CommandError> {
        let url = normalize_server_url(server_url)?;
        let client = self.keyed_client(&url).await?;
        let auth = client.start_device_authorization().await?;
        let view = self.authorization_view(&auth, &url);
        let cancel = CancellationToken::new();
        let control = Arc::new(PollControl::default());
        let (tx, rx) = tokio::sync::watch::channel(PollState::Waiting { polls: 0 });
        {
            let mut inner = self.inner.lock().await;
            if let Some(old) = inner.pending.take() {
                old.cancel.cancel();
            }
            inner.persisted.server_url = Some(url.clone());
            inner.client = Some(client.clone());
            inner.pending = Some(Pending {
                auth: auth.clone(),
                cancel: cancel.clone(),
                control: Arc::clone(&control),
                state: rx,
            });
            self.save(&mut inner)?;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = this
                .poll_until_done(&client, &auth, &url, &cancel, &control, &tx)
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
                    if err.code != ErrorCode::Superseded {
                        this.events.authorization_failed(&err);
                    }
                }
            }
        });
        Ok(view)
    }

    /// What the panel shows of `auth`, as of now.
    fn authorization_view(&self, auth: &DeviceAuthorization, url: &str) -> AuthorizationView {
        AuthorizationView {
            user_code: auth.user_code.clone(),
            verification_uri: auth.verification_uri.clone(),
            verification_uri_complete: auth.verification_uri_complete.clone(),
            expires_at: rfc3339(auth.expires_at()),
            valid_for: duration_in_words(auth.expires_at() - self.clock.now()),
            server_url: url.to_string(),
        }
    }

    /// Waits for the authorization through the client's one polling loop
    /// (RFC 8628 §3.5), publishing each "not yet" to `state` so Complete
    /// Authorization can report it, then finishes with the tokens.
    async fn poll_until_done(
        &self,
        client: &LicenseClient,
        auth: &DeviceAuthorization,
        url: &str,
        cancel: &CancellationToken,
        control: &PollControl,
        state: &tokio::sync::watch::Sender<PollState>,
    ) -> Result<(), CommandError> {
        // Tokens are verified at the latest time already seen, so a clock
        // set back during the wait never revives an expired token.
        let floor = self.verification_now().await;
        let clock = Arc::clone(&self.clock);
        let granted = client
            .poll_until_granted(
                auth,
                cancel,
                control,
                || clock.now().max(floor),
                |progress| match progress {
                    PollProgress::Waiting(_) => self
                        .events
                        .authorization_waiting(&self.authorization_view(auth, url)),
                    PollProgress::Polled(polls) => {
                        let _ = state.send(PollState::Waiting { polls });
                    }
                },
            )
            .await;
        match granted {
            Ok(tokens) => self.finish(tokens, auth).await,
            Err(err) => Err(err.into()),
        }
    }

    /// "Complete Authorization": asks the server now (as soon as the polling
    /// interval allows) instead of at the next poll, and reports the answer.
    pub async fn complete_authorization(self: &Arc<Self>) -> Result<LicenseView, CommandError> {
        let (control, mut state) = {
            let inner = self.inner.lock().await;
            match &inner.pending {
                Some(p) => (Arc::clone(&p.control), p.state.clone()),
                None if inner.persisted.state.account.is_some() => return Ok(self.view_of(&inner)),
                None => {
                    return Err(CommandError::new(
                        ErrorCode::NoAuthorization,
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
        control.poll_now();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                if state.changed().await.is_err() {
                    return PollState::Failed(CommandError::new(
                        ErrorCode::Cancelled,
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
                ErrorCode::AuthorizationPending,
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
                return Err(CommandError::new(ErrorCode::Superseded, "superseded"));
            }
            inner.pending = None;
            let Some(client) = inner.client.clone() else {
                return Err(CommandError::new(ErrorCode::Superseded, "superseded"));
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
        // An admin's authorization is the moment of trust: the server's keys
        // are pinned anew by the fetch that follows.
        inner.guard.anchors.remove(&key.server_url);
        self.save(&mut inner)?;
        drop(inner);
        self.fetch_and_record(&client, &tokens).await
    }
}
