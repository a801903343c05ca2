//! HTTP client of the license server (device authorization, refresh, license
//! fetch, revoke). Every token and signed document it receives is verified with
//! `license-core` before anything else sees it.
//!
//! - Discovery through the server's RFC 8414 metadata; its `issuer` must be
//!   the configured server URL (normalised), and every token and license
//!   document must carry that issuer and the console's client id.
//! - Device Authorization Grant (RFC 8628): [`LicenseClient::start_device_authorization`],
//!   then [`LicenseClient::wait_for_tokens`] (the polling loop, cancellable)
//!   or [`LicenseClient::poll_once`] (the "Complete Authorization" button).
//! - [`LicenseClient::refresh`], [`LicenseClient::fetch_license`],
//!   [`LicenseClient::revoke`]; the JWK Set is cached and fetched again once
//!   when a token names an unknown key.
//! - Every byte from the network is hostile: bodies are capped at
//!   [`MAX_BODY_BYTES`], redirects are not followed, URLs the UI will open
//!   must be http(s), and server text is shortened before it reaches an
//!   error message.
//! - Proxies come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`,
//!   `ALL_PROXY`, `NO_PROXY`); a TLS-inspecting proxy's CA certificate can be
//!   added with [`ClientConfig::extra_ca_pem`].
//! - Tokens and device codes are [`Secret`]s: they print as `[redacted]` and
//!   are never logged.
//! - DPoP (RFC 9449): with the install's [`DpopKey`] in
//!   [`ClientConfig::dpop_key`], the client sends proofs on the device-code
//!   grant, refreshes, the license fetch and revocation, so the server binds
//!   the tokens to the key ([`TokenType::DPoP`]); it retries once when the
//!   server asks for a nonce and keeps the latest nonce for its next proofs.
//!   Without a key, tokens are Bearer. See [`dpop`].
//! - The **Test connection** check, step by step (name, TCP, TLS, metadata,
//!   clock) with the firewall rule to ask for: [`connectivity::check`].
//!
//! ```no_run
//! # async fn example() -> Result<(), license_client::ClientError> {
//! use license_client::{ClientConfig, LicenseClient};
//! use time::OffsetDateTime;
//! use license_client::CancellationToken;
//!
//! let client = LicenseClient::new(ClientConfig::new("https://licenses.example.com"))?;
//! let auth = client.start_device_authorization().await?;
//! println!("Enter {} at {}", auth.user_code, auth.verification_uri);
//! let tokens = client
//!     .wait_for_tokens(&auth, CancellationToken::new(), OffsetDateTime::now_utc)
//!     .await?;
//! let document = client.fetch_license(&tokens.access_token, OffsetDateTime::now_utc()).await?;
//! println!("Licensed to {}", document.claims.account.organization);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod client;
pub mod connectivity;
pub mod desktop_proxy;
pub mod dpop;
mod error;
mod secret;
mod server_url;

pub use client::{
    ClientConfig, DeviceAuthorization, LicenseClient, LicenseDocument, PollControl, PollOutcome,
    PollProgress, ServerMetadata, TokenSet, TokenType, DEFAULT_CLIENT_ID,
    DEFAULT_POLL_INTERVAL_SECS, MAX_BODY_BYTES, SLOW_DOWN_STEP_SECS,
};
pub use dpop::DpopKey;
pub use error::ClientError;
pub use secret::Secret;
pub use server_url::normalize_server_url;

/// Re-exported so callers need not depend on `tokio-util` for cancelling
/// [`LicenseClient::wait_for_tokens`].
pub use tokio_util::sync::CancellationToken;
