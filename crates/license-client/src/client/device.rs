//! The Device Authorization Grant (RFC 8628): starting it, one poll of the
//! token endpoint, and the polling loop every waiter shares.

use std::time::Duration;

use license_core::protocol;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::proved::proof_refused;
use super::tokens::TokenSet;
use super::{oauth_error, parse, unexpected_status, LicenseClient};
use crate::error::{clean, ClientError};
use crate::secret::Secret;
use protocol::MAX_DEVICE_CODE_TTL_SECS;
use protocol::{poll_error, DEVICE_CODE_GRANT};

/// Asks a running [`LicenseClient::poll_until_granted`] to poll now (the
/// "Complete Authorization" button), as soon as the interval allows.
#[derive(Debug, Default)]
pub struct PollControl {
    poll_now: tokio::sync::Notify,
}

impl PollControl {
    /// Polls as soon as the interval allows instead of at the next one.
    pub fn poll_now(&self) {
        self.poll_now.notify_one();
    }
}

/// What [`LicenseClient::poll_until_granted`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollProgress {
    /// Waiting this long before the next poll.
    Waiting(Duration),
    /// Polled this many times so far; the last answer was "not yet".
    Polled(u32),
}

/// A started device authorization: show `user_code` and
/// `verification_uri`, then poll with `device_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// The device code the console polls with (secret).
    pub device_code: Secret,
    /// The code the user enters on the Authorize Device page.
    pub user_code: String,
    /// The Authorize Device page (checked to be an http(s) URL).
    pub verification_uri: String,
    /// The page with the user code filled in, when the server sends it
    /// (checked to be an http(s) URL).
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the codes in seconds, from `issued_at`.
    pub expires_in: u64,
    /// Seconds to wait between polls (5 when the server sends none).
    pub interval: u64,
    /// When the console asked for the codes (read before sending).
    pub issued_at: OffsetDateTime,
}

impl DeviceAuthorization {
    /// When the device code and user code stop working.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.issued_at
            .saturating_add(time::Duration::seconds(saturating_i64(self.expires_in)))
    }
}

/// What one poll of the token endpoint found.
// Returned once per poll (seconds apart), never stored in bulk: boxing the
// tokens would only make the console's `match` clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Not approved yet (`authorization_pending`).
    Pending,
    /// Polled too fast (`slow_down`): wait [`SLOW_DOWN_STEP_SECS`] longer
    /// than before from now on.
    ///
    /// [`SLOW_DOWN_STEP_SECS`]: crate::SLOW_DOWN_STEP_SECS
    SlowDown,
    /// Approved: the tokens, verified.
    Granted(TokenSet),
}

#[derive(Deserialize)]
struct DeviceAuthorizationResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

impl LicenseClient {
    /// Asks for a device code and user code (RFC 8628 section 3.1).
    ///
    /// `issued_at` is the system clock read before the request, so the
    /// console's idea of the expiry is never later than the server's.
    pub async fn start_device_authorization(&self) -> Result<DeviceAuthorization, ClientError> {
        let metadata = self.metadata().await?;
        let issued_at = self.inner.clock.now();
        let request = self
            .inner
            .http
            .post(&metadata.device_authorization_endpoint)
            .form(&[("client_id", self.inner.client_id.as_str())]);
        let reply = self.send(request, "device authorization").await?;
        if reply.status != StatusCode::OK {
            return Err(match oauth_error(&reply) {
                Some(e) if reply.status.is_client_error() => ClientError::protocol(format!(
                    "the server refused to start the authorization ({})",
                    e.describe()
                )),
                _ => unexpected_status(&reply),
            });
        }
        let r: DeviceAuthorizationResponse = parse(&reply.body, "device authorization response")?;
        if r.device_code.is_empty() || r.device_code.len() > 1024 {
            return Err(ClientError::protocol(
                "the device code is empty or too long",
            ));
        }
        let user_code_ok = !r.user_code.is_empty()
            && r.user_code.len() <= 64
            && r.user_code.chars().all(|c| c.is_ascii_graphic());
        if !user_code_ok {
            return Err(ClientError::protocol("the user code is not printable"));
        }
        let verification_uri = self.browser_url(&r.verification_uri, "verification_uri")?;
        let verification_uri_complete = r
            .verification_uri_complete
            .as_deref()
            .map(|u| self.browser_url(u, "verification_uri_complete"))
            .transpose()?;
        let auth = DeviceAuthorization {
            device_code: Secret::new(r.device_code),
            user_code: r.user_code,
            verification_uri,
            verification_uri_complete,
            expires_in: r.expires_in.clamp(1, MAX_DEVICE_CODE_TTL_SECS),
            interval: protocol::poll_interval(r.interval),
            issued_at,
        };
        tracing::info!(
            user_code = %auth.user_code,
            expires_in = auth.expires_in,
            interval = auth.interval,
            "device authorization started"
        );
        Ok(auth)
    }

    /// A URL the console will show and open in a browser: http(s) only, and
    /// on the license server's own origin (scheme, host and port), so a
    /// server answer can never send the admin to another site to type codes
    /// or passwords.
    fn browser_url(&self, value: &str, name: &str) -> Result<String, ClientError> {
        let url = Url::parse(value)
            .map_err(|_| ClientError::protocol(format!("the {name} is not a URL")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(ClientError::protocol(format!(
                "the {name} is not an http(s) URL"
            )));
        }
        let server = Url::parse(&self.inner.server_url)
            .map_err(|_| ClientError::protocol("the server URL is not a URL"))?;
        if url.origin() != server.origin() {
            return Err(ClientError::protocol(format!(
                "the {name} is on another site ({}), and the console opens only pages of its \
                 license server ({})",
                clean(&url.origin().ascii_serialization()),
                server.origin().ascii_serialization()
            )));
        }
        Ok(url.to_string())
    }

    /// Polls the token endpoint once (the "Complete Authorization" button).
    ///
    /// Returns [`ClientError::CodeExpired`] without asking the server once
    /// `now` is past the codes' expiry, or when the server says
    /// `expired_token` or that the device code is unknown or used;
    /// [`ClientError::Denied`] on `access_denied`;
    /// [`ClientError::DpopRefused`] when the server refuses the DPoP proof
    /// sent with it (when the client has a key, the tokens are bound to it).
    /// Granted tokens are verified at `now`.
    pub async fn poll_once(
        &self,
        auth: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<PollOutcome, ClientError> {
        if now >= auth.expires_at() {
            return Err(ClientError::CodeExpired);
        }
        let metadata = self.metadata().await?;
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", auth.device_code.expose()),
            ("client_id", self.inner.client_id.as_str()),
        ];
        let reply = self
            .send_proved(
                Method::POST,
                &metadata.token_endpoint,
                None,
                "token (device code)",
                |r| r.form(&form),
            )
            .await?;
        if reply.status == StatusCode::OK {
            let tokens = self.token_set(&reply, None, now).await?;
            tracing::info!(server_id = %tokens.claims.sub, "device authorization granted");
            return Ok(PollOutcome::Granted(tokens));
        }
        if let Some(refused) = proof_refused(&reply) {
            return Err(refused);
        }
        match oauth_error(&reply) {
            Some(e) if reply.status.is_client_error() => match e.error.as_str() {
                poll_error::AUTHORIZATION_PENDING => Ok(PollOutcome::Pending),
                poll_error::SLOW_DOWN => Ok(PollOutcome::SlowDown),
                poll_error::ACCESS_DENIED => Err(ClientError::Denied),
                poll_error::EXPIRED_TOKEN | "invalid_grant" => Err(ClientError::CodeExpired),
                _ => Err(ClientError::protocol(format!(
                    "the token endpoint refused the device code ({})",
                    e.describe()
                ))),
            },
            _ => Err(unexpected_status(&reply)),
        }
    }

    /// Polls until the user approves, following RFC 8628: waits `interval`
    /// seconds before each poll, [`SLOW_DOWN_STEP_SECS`] more after every
    /// `slow_down`, and stops at the codes' expiry
    /// ([`ClientError::CodeExpired`]), on `access_denied`
    /// ([`ClientError::Denied`]), on `cancel` ([`ClientError::Cancelled`])
    /// and on any other error (the caller may call it again with the same
    /// `auth`).
    ///
    /// `clock` is read before each poll (pass `OffsetDateTime::now_utc` in
    /// production). Cancel this loop when [`poll_once`](Self::poll_once)
    /// obtains the tokens first: the used device code would then end it
    /// with `CodeExpired`.
    ///
    /// [`SLOW_DOWN_STEP_SECS`]: crate::SLOW_DOWN_STEP_SECS
    pub async fn wait_for_tokens(
        &self,
        auth: &DeviceAuthorization,
        cancel: CancellationToken,
        clock: impl Fn() -> OffsetDateTime + Send + Sync,
    ) -> Result<TokenSet, ClientError> {
        self.wait_for_tokens_with_progress(auth, cancel, clock, |_| {})
            .await
    }

    /// [`wait_for_tokens`](Self::wait_for_tokens), calling `on_wait` with
    /// each wait before it starts (for "checking again in 10 s").
    pub async fn wait_for_tokens_with_progress(
        &self,
        auth: &DeviceAuthorization,
        cancel: CancellationToken,
        clock: impl Fn() -> OffsetDateTime + Send + Sync,
        mut on_wait: impl FnMut(Duration) + Send,
    ) -> Result<TokenSet, ClientError> {
        let control = PollControl::default();
        self.poll_until_granted(auth, &cancel, &control, clock, |progress| {
            if let PollProgress::Waiting(wait) = progress {
                on_wait(wait);
            }
        })
        .await
    }

    /// The one device-code polling loop (RFC 8628 §3.5), which every other
    /// waits on: polls every `interval` seconds, [`SLOW_DOWN_STEP_SECS`] more
    /// after each `slow_down` (at most [`protocol::MAX_POLL_INTERVAL_SECS`]), sooner
    /// when asked through [`PollControl::poll_now`] but never faster than
    /// the interval allows, and stops as
    /// [`wait_for_tokens`](Self::wait_for_tokens) says. `clock` is read
    /// before each wait and each poll; granted tokens are verified at it.
    ///
    /// [`SLOW_DOWN_STEP_SECS`]: crate::SLOW_DOWN_STEP_SECS
    pub async fn poll_until_granted(
        &self,
        auth: &DeviceAuthorization,
        cancel: &CancellationToken,
        control: &PollControl,
        clock: impl Fn() -> OffsetDateTime + Send + Sync,
        mut on_progress: impl FnMut(PollProgress) + Send,
    ) -> Result<TokenSet, ClientError> {
        let mut interval = Duration::from_secs(protocol::poll_interval(Some(auth.interval)));
        let mut last_poll: Option<tokio::time::Instant> = None;
        let mut polls = 0u32;
        loop {
            let left = auth.expires_at() - clock();
            if left <= time::Duration::ZERO {
                return Err(ClientError::CodeExpired);
            }
            // Never sleep past the expiry: wake up to report it on time.
            let wait = interval.min(Duration::try_from(left).unwrap_or(Duration::ZERO));
            on_progress(PollProgress::Waiting(wait));
            tokio::select! {
                _ = cancel.cancelled() => return Err(ClientError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
                _ = control.poll_now.notified() => {
                    // Asked to poll now: still never faster than the interval.
                    let since = last_poll.map(|l| l.elapsed()).unwrap_or(interval);
                    if since < interval {
                        tokio::select! {
                            _ = cancel.cancelled() => return Err(ClientError::Cancelled),
                            _ = tokio::time::sleep(interval - since) => {}
                        }
                    }
                }
            }
            last_poll = Some(tokio::time::Instant::now());
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return Err(ClientError::Cancelled),
                outcome = self.poll_once(auth, clock()) => outcome?,
            };
            polls = polls.saturating_add(1);
            match outcome {
                PollOutcome::Granted(tokens) => return Ok(tokens),
                PollOutcome::Pending => {}
                PollOutcome::SlowDown => {
                    interval = Duration::from_secs(protocol::slowed_down(interval.as_secs()));
                    tracing::debug!(
                        interval = interval.as_secs(),
                        "slow_down: polling less often"
                    );
                }
            }
            on_progress(PollProgress::Polled(polls));
        }
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientConfig;

    #[test]
    fn only_the_license_servers_own_pages_are_opened() {
        let client = LicenseClient::new(ClientConfig::new("https://licenses.example.com")).unwrap();
        for ok in [
            "https://licenses.example.com/device",
            "https://LICENSES.example.com:443/device?user_code=ABCD-EFGH",
        ] {
            assert!(client.browser_url(ok, "verification_uri").is_ok(), "{ok}");
        }
        for other in [
            "https://evil.example/device",
            "http://licenses.example.com/device",
            "https://licenses.example.com:8443/device",
            "https://licenses.example.com.evil.example/device",
            "https://user@evil.example/device",
        ] {
            let e = client.browser_url(other, "verification_uri").unwrap_err();
            assert_eq!(e.code(), "protocol", "{other}");
            assert!(
                e.to_string()
                    .contains("opens only pages of its license server"),
                "{other}: {e}"
            );
        }
    }

    #[test]
    fn device_code_expiry_is_issued_at_plus_expires_in() {
        let issued_at = time::macros::datetime!(2030-01-01 12:00 UTC);
        let auth = DeviceAuthorization {
            device_code: Secret::new("dc"),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "https://l.example/device".into(),
            verification_uri_complete: None,
            expires_in: 900,
            interval: 5,
            issued_at,
        };
        assert_eq!(auth.expires_at(), issued_at + time::Duration::seconds(900));
        assert!(!format!("{auth:?}").contains("\"dc\""));
    }
}
