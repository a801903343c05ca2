//! The client proper: configuration, discovery, the device flow, refresh,
//! license fetch, revocation and the JWK Set cache.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use license_core::clock::{Clock, SystemClock};
use license_core::jwk::JwkSet;
use license_core::protocol;
use license_core::token::{verify, AccountClaims, Expectation, LicenseClaims, VerifyError};
use license_core::wording::duration_in_words;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::{clean, ClientError};
use crate::secret::Secret;
use crate::server_url::{parse_server_url, url_string};

/// The License Console's OAuth client id.
pub const DEFAULT_CLIENT_ID: &str = protocol::CONSOLE_CLIENT_ID;
/// Largest response body accepted from the server (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
use protocol::MAX_DEVICE_CODE_TTL_SECS;
use protocol::{poll_error, DEVICE_CODE_GRANT, METADATA_PATH, REFRESH_TOKEN_GRANT};
pub use protocol::{DEFAULT_POLL_INTERVAL_SECS, SLOW_DOWN_STEP_SECS};

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

/// How to reach the license server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The license server's URL as the user entered it, e.g.
    /// `https://licenses.example.com`. It must equal the server's `issuer`.
    pub server_url: String,
    /// The OAuth client id; [`DEFAULT_CLIENT_ID`] for the License Console.
    pub client_id: String,
    /// An extra trusted CA certificate (PEM, may hold several), for proxies
    /// that inspect TLS traffic.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Limit for setting up the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit for a whole request, body included.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// The defaults: client id `license-console`, no extra CA, 10 s to
    /// connect, 30 s per request.
    pub fn new(server_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            server_url: server_url.into(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The server's RFC 8414 metadata, validated: `issuer` equals the configured
/// server URL and every endpoint is an http(s) URL (https when the server
/// URL is https).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetadata {
    /// The issuer: `iss` of every token and license document.
    pub issuer: String,
    /// RFC 8628 device authorization endpoint.
    pub device_authorization_endpoint: String,
    /// Token endpoint (device code and refresh token grants).
    pub token_endpoint: String,
    /// RFC 7009 revocation endpoint, if the server has one.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// Where the JWK Set is published.
    pub jwks_uri: String,
    /// Extension: `GET` with a Bearer license token returns the signed
    /// license account document.
    pub license_endpoint: String,
    /// Grant types the server supports.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
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

/// A license token (access token) and refresh token pair, with the license
/// token's claims verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The license token (secret).
    pub access_token: Secret,
    /// The refresh token (secret); the previous one is used up on refresh.
    pub refresh_token: Secret,
    /// Lifetime of the license token in seconds, as the server said.
    pub expires_in: u64,
    /// The license token's claims, verified (signature, issuer, audience,
    /// expiry).
    pub claims: LicenseClaims,
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
    SlowDown,
    /// Approved: the tokens, verified.
    Granted(TokenSet),
}

/// The signed license account document, verified.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseDocument {
    /// The compact JWS as received, to cache on disk and verify again with
    /// [`LicenseClient::verify_document`].
    pub raw: String,
    /// Its verified claims.
    pub claims: AccountClaims,
}

/// The license server's HTTP client. Cheap to clone; clones share the
/// metadata and JWK Set caches.
#[derive(Clone)]
pub struct LicenseClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The normalised server URL, without trailing slash.
    server_url: String,
    https: bool,
    client_id: String,
    metadata: Mutex<Option<ServerMetadata>>,
    jwks: Mutex<Option<JwkSet>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LicenseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseClient")
            .field("server_url", &self.inner.server_url)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// A response whose body has been read, within [`MAX_BODY_BYTES`].
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// An RFC 6749 section 5.2 error response.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthError {
    fn describe(&self) -> String {
        match &self.error_description {
            Some(d) if !d.trim().is_empty() => clean(d),
            _ => clean(&self.error),
        }
    }
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

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct LicenseResponse {
    license_document: String,
}

impl LicenseClient {
    /// Checks the configuration and builds the HTTP client (rustls, proxies
    /// from the environment, no redirects, the given timeouts).
    ///
    /// Fails with [`ClientError::InvalidInput`] for a server URL that is not
    /// a plain `http://` or `https://` URL, or an unusable CA certificate.
    pub fn new(config: ClientConfig) -> Result<LicenseClient, ClientError> {
        LicenseClient::with_clock(config, Arc::new(SystemClock))
    }

    /// [`new`](Self::new), reading the time from `clock` (the shell's one
    /// clock) where the client itself needs it.
    pub fn with_clock(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<LicenseClient, ClientError> {
        let url = parse_server_url(&config.server_url)?;
        if config.client_id.trim().is_empty() {
            return Err(ClientError::InvalidInput {
                reason: "The client id must not be empty.".to_owned(),
            });
        }
        // Proxies: reqwest reads HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
        // NO_PROXY unless told not to, and this builder never tells it not to.
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // An OAuth endpoint has no business redirecting, and following a
            // redirect could carry a token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("license-client/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.extra_ca_pem {
            let bad = |detail: String| ClientError::InvalidInput {
                reason: format!(
                    "The extra CA certificate could not be read ({detail}). Use a PEM file \
                     starting with -----BEGIN CERTIFICATE-----."
                ),
            };
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no certificate found".to_owned()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::InvalidInput {
            reason: format!(
                "The HTTP client could not be set up: {}. Check the extra CA certificate.",
                clean(&e.to_string())
            ),
        })?;
        Ok(LicenseClient {
            inner: Arc::new(Inner {
                http,
                https: url.scheme() == "https",
                server_url: url_string(&url),
                client_id: config.client_id,
                metadata: Mutex::new(None),
                jwks: Mutex::new(None),
                clock,
            }),
        })
    }

    /// The normalised server URL (lower-case scheme and host, default port
    /// and trailing slash removed).
    pub fn server_url(&self) -> &str {
        &self.inner.server_url
    }

    /// The OAuth client id the client presents and expects as audience.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The server's metadata, fetched from
    /// `<server URL>/.well-known/oauth-authorization-server` and cached after
    /// the first success.
    ///
    /// Fails with [`ClientError::Protocol`] when the `issuer` is not the
    /// configured server URL or an endpoint is not an acceptable URL.
    pub async fn metadata(&self) -> Result<ServerMetadata, ClientError> {
        if let Some(m) = lock(&self.inner.metadata).clone() {
            return Ok(m);
        }
        let url = format!("{}{METADATA_PATH}", self.inner.server_url);
        let reply = self.send(self.inner.http.get(&url), "metadata").await?;
        if reply.status != StatusCode::OK {
            return Err(unexpected_status(&reply));
        }
        let metadata: ServerMetadata = parse(&reply.body, "server metadata")?;
        self.check_metadata(&metadata)?;
        *lock(&self.inner.metadata) = Some(metadata.clone());
        Ok(metadata)
    }

    fn check_metadata(&self, m: &ServerMetadata) -> Result<(), ClientError> {
        let issuer = Url::parse(&m.issuer)
            .ok()
            .filter(|u| u.query().is_none() && u.fragment().is_none())
            .map(|u| url_string(&u));
        if issuer.as_deref() != Some(self.inner.server_url.as_str()) {
            return Err(ClientError::protocol(format!(
                "the server calls itself {:?}, not {}",
                clean(&m.issuer),
                self.inner.server_url
            )));
        }
        let mut endpoints = vec![
            (
                "device_authorization_endpoint",
                &m.device_authorization_endpoint,
            ),
            ("token_endpoint", &m.token_endpoint),
            ("jwks_uri", &m.jwks_uri),
            ("license_endpoint", &m.license_endpoint),
        ];
        if let Some(r) = &m.revocation_endpoint {
            endpoints.push(("revocation_endpoint", r));
        }
        for (name, value) in endpoints {
            self.check_endpoint(value)
                .map_err(|why| ClientError::protocol(format!("the metadata's {name} {why}")))?;
        }
        Ok(())
    }

    /// An endpoint must be http(s), without credentials, and https when the
    /// server is (no downgrade of token traffic).
    fn check_endpoint(&self, value: &str) -> Result<Url, &'static str> {
        let url = Url::parse(value).map_err(|_| "is not a URL")?;
        match url.scheme() {
            "https" => {}
            "http" if !self.inner.https => {}
            "http" => return Err("is not https"),
            _ => return Err("is not an http(s) URL"),
        }
        if !url.username().is_empty() || url.password().is_some() || !url.has_host() {
            return Err("is not an acceptable URL");
        }
        Ok(url)
    }

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
    /// [`ClientError::Denied`] on `access_denied`. Granted tokens are
    /// verified at `now`.
    pub async fn poll_once(
        &self,
        auth: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<PollOutcome, ClientError> {
        if now >= auth.expires_at() {
            return Err(ClientError::CodeExpired);
        }
        let metadata = self.metadata().await?;
        let request = self.inner.http.post(&metadata.token_endpoint).form(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", auth.device_code.expose()),
            ("client_id", self.inner.client_id.as_str()),
        ]);
        let reply = self.send(request, "token (device code)").await?;
        if reply.status == StatusCode::OK {
            let tokens = self.token_set(&reply, None, now).await?;
            tracing::info!(server_id = %tokens.claims.sub, "device authorization granted");
            return Ok(PollOutcome::Granted(tokens));
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

    /// Exchanges a refresh token for a new pair (rotation: the old refresh
    /// token is used up). The new license token is verified at `now`.
    ///
    /// Fails with [`ClientError::Revoked`] when the server answers
    /// `invalid_grant` (license removed, device revoked, refresh token
    /// expired or reused).
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<TokenSet, ClientError> {
        let metadata = self.metadata().await?;
        let request = self.inner.http.post(&metadata.token_endpoint).form(&[
            ("grant_type", REFRESH_TOKEN_GRANT),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.inner.client_id.as_str()),
        ]);
        let reply = self.send(request, "token (refresh)").await?;
        if reply.status == StatusCode::OK {
            return self.token_set(&reply, Some(refresh_token), now).await;
        }
        match oauth_error(&reply) {
            Some(e) if e.error == "invalid_grant" => Err(ClientError::Revoked {
                reason: e.describe(),
            }),
            Some(e) if reply.status.is_client_error() => Err(ClientError::protocol(format!(
                "the token endpoint refused the refresh ({})",
                e.describe()
            ))),
            _ => Err(unexpected_status(&reply)),
        }
    }

    /// A token response: Bearer, with a license token that verifies.
    async fn token_set(
        &self,
        reply: &Reply,
        previous_refresh: Option<&Secret>,
        now: OffsetDateTime,
    ) -> Result<TokenSet, ClientError> {
        let r: TokenResponse = parse(&reply.body, "token response")?;
        if !r.token_type.eq_ignore_ascii_case("bearer") {
            return Err(ClientError::protocol(format!(
                "the token type is {:?}, not Bearer",
                clean(&r.token_type)
            )));
        }
        // RFC 6749 section 6: a refresh response may leave the refresh token
        // out, and then the old one stays valid.
        let refresh_token = match (r.refresh_token, previous_refresh) {
            (Some(t), _) if !t.is_empty() => Secret::new(t),
            (_, Some(previous)) => previous.clone(),
            _ => {
                return Err(ClientError::protocol(
                    "the token response has no refresh token",
                ))
            }
        };
        let now = self.confirmed_now(reply, now);
        let claims = match self.verify_token(&r.access_token, now).await {
            Ok(claims) => claims,
            Err(e) => {
                return Err(match self.ahead_of_server(reply) {
                    Some(server) if self.verify_token(&r.access_token, server).await.is_ok() => {
                        self.clock_ahead(server)
                    }
                    _ => e,
                })
            }
        };
        Ok(TokenSet {
            access_token: Secret::new(r.access_token),
            refresh_token,
            expires_in: r
                .expires_in
                .unwrap_or_else(|| u64::try_from(claims.exp - now.unix_timestamp()).unwrap_or(0)),
            claims,
        })
    }

    /// Fetches the signed license account document with the license token
    /// and verifies it at `now` (issuer, audience, signature, expiry).
    ///
    /// Fails with [`ClientError::Revoked`] when the server refuses the
    /// license token (401 `invalid_token`: revoked, expired or unknown;
    /// refresh first when the token is near its expiry).
    pub async fn fetch_license(
        &self,
        access_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<LicenseDocument, ClientError> {
        let metadata = self.metadata().await?;
        let request = self
            .inner
            .http
            .get(&metadata.license_endpoint)
            .bearer_auth(access_token.expose());
        let reply = self.send(request, "license").await?;
        if reply.status == StatusCode::UNAUTHORIZED {
            let reason = oauth_error(&reply)
                .map(|e| e.describe())
                .or_else(|| {
                    reply
                        .headers
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(clean)
                })
                .unwrap_or_else(|| "the license token was not accepted".to_owned());
            return Err(ClientError::Revoked { reason });
        }
        if reply.status != StatusCode::OK {
            return Err(unexpected_status(&reply));
        }
        let r: LicenseResponse = parse(&reply.body, "license response")?;
        let now = self.confirmed_now(&reply, now);
        let claims = match self.verify_document(&r.license_document, now).await {
            Ok(claims) => claims,
            Err(e) => {
                return Err(match self.ahead_of_server(&reply) {
                    Some(server)
                        if self
                            .verify_document(&r.license_document, server)
                            .await
                            .is_ok() =>
                    {
                        self.clock_ahead(server)
                    }
                    _ => e,
                })
            }
        };
        tracing::info!(server_id = %claims.sub, "license document fetched and verified");
        Ok(LicenseDocument {
            raw: r.license_document,
            claims,
        })
    }

    /// Verifies a signed license account document (fresh or cached on disk)
    /// at `now`.
    ///
    /// Uses the cached JWK Set (see [`set_cached_jwks`](Self::set_cached_jwks)),
    /// so a cached document verifies offline; the network is used only when
    /// no JWK Set is cached or the document names a key the cached set does
    /// not have.
    pub async fn verify_document(
        &self,
        raw: &str,
        now: OffsetDateTime,
    ) -> Result<AccountClaims, ClientError> {
        self.verify_signed(raw, Expectation::license_document, "license document", now)
            .await
    }

    /// Verifies a license token (fresh or restored from the keychain) at
    /// `now`, like [`verify_document`](Self::verify_document).
    pub async fn verify_token(
        &self,
        raw: &str,
        now: OffsetDateTime,
    ) -> Result<LicenseClaims, ClientError> {
        self.verify_signed(raw, Expectation::license_token, "license token", now)
            .await
    }

    async fn verify_signed<C>(
        &self,
        raw: &str,
        expectation: fn(String, String) -> Expectation,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<C, ClientError>
    where
        C: DeserializeOwned + license_core::token::RegisteredClaims,
    {
        // Offline, before any discovery, the issuer is the configured URL
        // (discovery only ever accepts that issuer).
        let issuer = lock(&self.inner.metadata)
            .as_ref()
            .map(|m| m.issuer.clone())
            .unwrap_or_else(|| self.inner.server_url.clone());
        let expect = expectation(issuer, self.inner.client_id.clone());
        let cached = lock(&self.inner.jwks).clone();
        let first = match &cached {
            Some(jwks) => self.verify_claims(raw, jwks, &expect, now),
            None => Err(VerifyError::UnknownKey { kid: String::new() }),
        };
        match first {
            Ok(claims) => Ok(claims),
            // A key this cache has not seen (rotation): fetch the set once.
            Err(VerifyError::UnknownKey { .. }) => {
                let jwks = self.refresh_jwks().await?;
                self.verify_claims(raw, &jwks, &expect, now)
                    .map_err(|e| verify_error(what, e, now))
            }
            Err(e) => Err(verify_error(what, e, now)),
        }
    }

    /// The time to verify a fresh answer at: the caller's `now` (which may
    /// be a later time already seen, after a clock set back), unless the
    /// server's `Date` agrees with this computer's clock within
    /// [`CLOCK_TOLERANCE`]: then the clock is confirmed right now, and a
    /// later time seen before was the clock's mistake (once set forward),
    /// which must not make every fresh token look expired.
    fn confirmed_now(&self, reply: &Reply, now: OffsetDateTime) -> OffsetDateTime {
        let local = self.inner.clock.now();
        match server_date(reply) {
            Some(server) if (server - local).abs() <= CLOCK_TOLERANCE => local,
            _ => now,
        }
    }

    /// The server's time when this computer's clock is ahead of it by more
    /// than [`CLOCK_TOLERANCE`].
    fn ahead_of_server(&self, reply: &Reply) -> Option<OffsetDateTime> {
        server_date(reply).filter(|server| self.inner.clock.now() - *server > CLOCK_TOLERANCE)
    }

    /// An answer valid at the server's time but not at this computer's:
    /// the clock is ahead, and by how much.
    fn clock_ahead(&self, server: OffsetDateTime) -> ClientError {
        ClientError::ClockAhead {
            ahead: duration_in_words(self.inner.clock.now() - server),
            server_time: server
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| server.to_string()),
        }
    }

    /// `verify`, accepting an issuer that differs from the expected one only
    /// in spelling (case of the host, trailing slash, default port): the
    /// signature already vouches for it and discovery compares normalised.
    fn verify_claims<C>(
        &self,
        raw: &str,
        jwks: &JwkSet,
        expect: &Expectation,
        now: OffsetDateTime,
    ) -> Result<C, VerifyError>
    where
        C: DeserializeOwned + license_core::token::RegisteredClaims,
    {
        match verify::<C>(raw, jwks, expect, now) {
            Err(VerifyError::WrongIssuer { found })
                if Url::parse(&found).is_ok_and(|u| url_string(&u) == self.inner.server_url) =>
            {
                let expect = Expectation {
                    issuer: found,
                    ..expect.clone()
                };
                verify::<C>(raw, jwks, &expect, now)
            }
            other => other,
        }
    }

    /// Revokes the refresh token and with it the device's license at the
    /// server (RFC 7009: "Remove license"). An unknown token also succeeds.
    pub async fn revoke(&self, refresh_token: &Secret) -> Result<(), ClientError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.revocation_endpoint else {
            return Err(ClientError::protocol(
                "the server does not publish a revocation endpoint",
            ));
        };
        let request = self.inner.http.post(&endpoint).form(&[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.inner.client_id.as_str()),
        ]);
        let reply = self.send(request, "revoke").await?;
        if reply.status == StatusCode::OK {
            tracing::info!("refresh token revoked");
            return Ok(());
        }
        match oauth_error(&reply) {
            Some(e) if reply.status.is_client_error() => Err(ClientError::protocol(format!(
                "the server refused the revocation ({})",
                e.describe()
            ))),
            _ => Err(unexpected_status(&reply)),
        }
    }

    /// The JWK Set: the cached one, or fetched (and cached) when none is.
    pub async fn jwks(&self) -> Result<JwkSet, ClientError> {
        if let Some(jwks) = lock(&self.inner.jwks).clone() {
            return Ok(jwks);
        }
        self.refresh_jwks().await
    }

    /// Fetches the JWK Set from the server, caches it and returns it (for the
    /// console to store alongside the license document).
    pub async fn refresh_jwks(&self) -> Result<JwkSet, ClientError> {
        let metadata = self.metadata().await?;
        let reply = self
            .send(self.inner.http.get(&metadata.jwks_uri), "jwks")
            .await?;
        if reply.status != StatusCode::OK {
            return Err(unexpected_status(&reply));
        }
        let jwks: JwkSet = parse(&reply.body, "JWK Set")?;
        if jwks.keys.is_empty() {
            return Err(ClientError::protocol("the JWK Set has no keys"));
        }
        *lock(&self.inner.jwks) = Some(jwks.clone());
        Ok(jwks)
    }

    /// Replaces the cached JWK Set (the console restores its own copy at
    /// start, so cached documents verify offline).
    pub fn set_cached_jwks(&self, jwks: JwkSet) {
        *lock(&self.inner.jwks) = Some(jwks);
    }

    /// The cached JWK Set, if any, without touching the network.
    pub fn cached_jwks(&self) -> Option<JwkSet> {
        lock(&self.inner.jwks).clone()
    }

    /// Sends a request and reads the body, at most [`MAX_BODY_BYTES`].
    /// Logs the endpoint and status only, never a header or a body.
    async fn send(&self, request: RequestBuilder, what: &str) -> Result<Reply, ClientError> {
        let server = &self.inner.server_url;
        let response = request.send().await.map_err(|e| {
            let error = ClientError::from_transport(&e, server);
            tracing::warn!(endpoint = what, code = error.code(), "request failed");
            error
        })?;
        let status = response.status();
        tracing::debug!(endpoint = what, status = status.as_u16(), "response");
        let headers = response.headers().clone();
        let body = read_body(response, server).await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

async fn read_body(mut response: reqwest::Response, server: &str) -> Result<Vec<u8>, ClientError> {
    let too_large = || {
        ClientError::protocol(format!(
            "the response is larger than {MAX_BODY_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::from_transport(&e, server))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parses JSON without ever quoting the input in the error: a misplaced
/// token must not end up in an error message.
fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "read",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "unexpected content",
            serde_json::error::Category::Eof => "truncated",
        };
        ClientError::protocol(format!(
            "the {what} is not the expected JSON ({kind} at line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

fn oauth_error(reply: &Reply) -> Option<OAuthError> {
    serde_json::from_slice(&reply.body).ok()
}

fn unexpected_status(reply: &Reply) -> ClientError {
    ClientError::ServerError {
        status: reply.status.as_u16(),
    }
}

fn verify_error(what: &str, e: VerifyError, now: OffsetDateTime) -> ClientError {
    let reason = match e {
        VerifyError::Expired { at } => format!(
            "the {what} expired at {at}; if that is wrong, check this computer's date and time"
        ),
        VerifyError::NotYetValid { at } => {
            return ClientError::ClockBehind {
                what: what.to_owned(),
                valid_from: at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| at.to_string()),
                behind: duration_in_words(at - now),
            }
        }
        other => format!(
            "the {what} failed verification: {}",
            clean(&other.to_string())
        ),
    };
    ClientError::protocol(reason)
}

/// How far this computer's clock may be from the server's `Date` and still
/// count as right (the `Date` header has whole seconds; networks add delay).
const CLOCK_TOLERANCE: time::Duration = time::Duration::minutes(5);

/// The server's clock from the answer's `Date` header (RFC 9110 IMF-fixdate).
fn server_date(reply: &Reply) -> Option<OffsetDateTime> {
    let value = reply.headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalised() {
        let cases = [
            (
                "https://Licenses.Example.com/",
                "https://licenses.example.com",
            ),
            (
                "https://licenses.example.com:443",
                "https://licenses.example.com",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            (
                "  https://example.com/licensing/  ",
                "https://example.com/licensing",
            ),
        ];
        for (input, want) in cases {
            let client = LicenseClient::new(ClientConfig::new(input)).unwrap();
            assert_eq!(client.server_url(), want, "{input}");
        }
    }

    #[test]
    fn bad_server_urls_are_invalid_input() {
        for input in [
            "",
            "licenses.example.com",
            "ftp://licenses.example.com",
            "https://user:pw@licenses.example.com",
            "https://licenses.example.com/?x=1",
            "file:///etc/passwd",
        ] {
            let e = LicenseClient::new(ClientConfig::new(input)).unwrap_err();
            assert_eq!(e.code(), "invalid_input", "{input}");
            assert!(e.to_string().contains("is not valid"), "{e}");
        }
    }

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
    fn an_unreadable_ca_certificate_is_invalid_input() {
        let config = ClientConfig {
            extra_ca_pem: Some(b"not a certificate".to_vec()),
            ..ClientConfig::new("https://licenses.example.com")
        };
        let e = LicenseClient::new(config).unwrap_err();
        assert_eq!(e.code(), "invalid_input");
    }

    #[test]
    fn json_errors_never_quote_the_body() {
        let body = br#"{"access_token": 12, "token_type": "eyJsecret"}"#;
        let e = parse::<TokenResponse>(body, "token response")
            .err()
            .unwrap();
        assert!(!e.to_string().contains("eyJsecret"), "{e}");
        let body = br#"{"access_token": "a", "token_type": "Bearer", "expires_in": "eyJsecret"}"#;
        let e = parse::<TokenResponse>(body, "token response")
            .err()
            .unwrap();
        assert!(!e.to_string().contains("eyJsecret"), "{e}");
        assert_eq!(e.code(), "protocol");
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
