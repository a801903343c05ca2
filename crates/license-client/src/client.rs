//! The client proper: configuration, discovery and the HTTP plumbing every
//! request goes through. The device flow is in `device`; tokens, license
//! documents, revocation and the JWK Set cache in `tokens`; verification in
//! `verify`; requests that carry a DPoP proof in `proved`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use license_core::clock::{Clock, SystemClock};
use license_core::jwk::JwkSet;
use license_core::protocol;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::connectivity::select_proxy;
use crate::desktop_proxy::DesktopProxy;
use crate::dpop::{DpopKey, Signer};
use crate::error::{clean, ClientError};
use crate::server_url::{parse_server_url, url_string};

mod device;
mod proved;
mod tokens;
mod verify;

pub use device::{DeviceAuthorization, PollControl, PollOutcome, PollProgress};
pub use tokens::{LicenseDocument, TokenSet, TokenType};

/// The License Console's OAuth client id.
pub const DEFAULT_CLIENT_ID: &str = protocol::CONSOLE_CLIENT_ID;
/// Largest response body accepted from the server (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
use protocol::METADATA_PATH;
pub use protocol::{DEFAULT_POLL_INTERVAL_SECS, SLOW_DOWN_STEP_SECS};

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
    /// The install's DPoP key: with one, the client sends DPoP proofs
    /// (RFC 9449) on the token grants, the license fetch and revocation, and
    /// the server binds the tokens to it. Without one, tokens are Bearer.
    pub dpop_key: Option<DpopKey>,
    /// The desktop's proxy settings, for an environment that names no
    /// proxy ([`DesktopProxy::when_environment_has_none`]). With them the
    /// client takes its proxy from these alone, as the connectivity check
    /// does; without them, from the environment.
    pub desktop_proxy: Option<DesktopProxy>,
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
            dpop_key: None,
            desktop_proxy: None,
        }
    }

    /// This configuration with `key` as the install's DPoP key.
    pub fn with_dpop_key(self, key: DpopKey) -> ClientConfig {
        ClientConfig {
            dpop_key: Some(key),
            ..self
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
    /// The JWS algorithms the server accepts in DPoP proofs (RFC 9449);
    /// empty when the server does not support DPoP.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
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
    /// The DPoP key and the server's latest nonce, when the client has a key.
    dpop: Option<Signer>,
}

impl std::fmt::Debug for LicenseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseClient")
            .field("server_url", &self.inner.server_url)
            .field("client_id", &self.inner.client_id)
            .field("dpop", &self.inner.dpop)
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
        if let Some(desktop) = &config.desktop_proxy {
            builder = builder.no_proxy();
            if let Some(proxy) = select_proxy(&config.server_url, &|name| desktop.get(name)) {
                builder = builder.proxy(proxy.to_reqwest()?);
            }
        }
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
                dpop: config.dpop_key.map(Signer::new),
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

    /// The thumbprint of the client's DPoP key, when it has one: what the
    /// server binds this client's tokens to.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.inner.dpop.as_ref().map(|s| s.key().thumbprint())
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
        // Any answer may carry the server's next DPoP nonce.
        if let Some(signer) = &self.inner.dpop {
            signer.remember_nonce(&headers);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokens::TokenResponse;

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
}
