//! One error type for the HTTP surface. OAuth errors use RFC 6749's codes;
//! internal details are logged and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use license_core::protocol::poll_error;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("the user has not yet approved the device")]
    AuthorizationPending,
    #[error("polling too fast; wait {0} seconds between requests")]
    SlowDown(i64),
    #[error("the user denied the authorization")]
    AccessDenied,
    #[error("the device code has expired; start again")]
    ExpiredToken,
    /// A license token refused; it came as `Bearer`.
    #[error("{0}")]
    InvalidToken(String),
    /// A license token refused; it came as `DPoP` (see [`Error::in_dpop`]).
    #[error("{0}")]
    InvalidDpopToken(String),
    #[error("{message}")]
    InvalidDpopProof {
        message: String,
        endpoint: crate::dpop::Endpoint,
    },
    #[error("a fresh DPoP nonce is required")]
    UseDpopNonce {
        nonce: String,
        endpoint: crate::dpop::Endpoint,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many attempts; try again in {0} seconds")]
    TooManyRequests(i64),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::keys::KeyError> for Error {
    fn from(e: crate::keys::KeyError) -> Error {
        match e {
            crate::keys::KeyError::Db(e) => Error::Db(e),
            other => Error::internal(other),
        }
    }
}

impl Error {
    /// The error of a request whose token came with the `DPoP` scheme: a
    /// refused token is challenged as DPoP, not Bearer.
    pub fn in_dpop(self) -> Error {
        match self {
            Error::InvalidToken(message) => Error::InvalidDpopToken(message),
            other => other,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Error {
        Error::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidRequest(_)
            | Error::InvalidGrant(_)
            | Error::UnsupportedGrantType(_)
            | Error::AuthorizationPending
            | Error::SlowDown(_)
            | Error::AccessDenied
            | Error::ExpiredToken => StatusCode::BAD_REQUEST,
            Error::InvalidClient(_) | Error::InvalidToken(_) | Error::InvalidDpopToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Error::InvalidDpopProof { endpoint, .. } | Error::UseDpopNonce { endpoint, .. } => {
                match endpoint {
                    crate::dpop::Endpoint::Token => StatusCode::BAD_REQUEST,
                    crate::dpop::Endpoint::Resource => StatusCode::UNAUTHORIZED,
                }
            }
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Db(e) if unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Db(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidClient(_) => "invalid_client",
            Error::InvalidGrant(_) => "invalid_grant",
            Error::UnsupportedGrantType(_) => "unsupported_grant_type",
            Error::AuthorizationPending => poll_error::AUTHORIZATION_PENDING,
            Error::SlowDown(_) => poll_error::SLOW_DOWN,
            Error::AccessDenied => poll_error::ACCESS_DENIED,
            Error::ExpiredToken => poll_error::EXPIRED_TOKEN,
            Error::InvalidToken(_) | Error::InvalidDpopToken(_) => "invalid_token",
            Error::InvalidDpopProof { .. } => "invalid_dpop_proof",
            Error::UseDpopNonce { .. } => "use_dpop_nonce",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound => "not_found",
            Error::PayloadTooLarge => "request_too_large",
            Error::TooManyRequests(_) => "too_many_requests",
            Error::Db(e) if unavailable(e) => "temporarily_unavailable",
            Error::Db(_) | Error::Internal(_) => "server_error",
        }
    }

    /// The text sent to the client: never the internal detail.
    pub fn public_message(&self) -> String {
        match self {
            Error::Db(e) if unavailable(e) => {
                "the database is unavailable; try again shortly".to_owned()
            }
            Error::Db(_) | Error::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = json!({ "error": self.code(), "error_description": self.public_message() });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Error::InvalidToken(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Error::InvalidClient(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"license-server\""),
                );
            }
            Error::InvalidDpopProof { endpoint, .. } | Error::UseDpopNonce { endpoint, .. } => {
                if let Error::UseDpopNonce { nonce, .. } = &self {
                    if let Ok(v) = HeaderValue::from_str(nonce) {
                        headers.insert("dpop-nonce", v);
                    }
                }
                if *endpoint == crate::dpop::Endpoint::Resource {
                    headers.insert(header::WWW_AUTHENTICATE, dpop_challenge(self.code()));
                }
            }
            Error::InvalidDpopToken(_) => {
                headers.insert(header::WWW_AUTHENTICATE, dpop_challenge(self.code()));
            }
            Error::TooManyRequests(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            Error::Db(e) if unavailable(e) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(DB_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

/// Clients are asked to come back this many seconds after a 503.
const DB_RETRY_AFTER_SECS: &str = "5";

/// Whether `e` says the database cannot be reached (down, restarting, the
/// network, no connection free in time) rather than that a statement
/// failed: such a request is answered 503 with `Retry-After`, and the
/// pools reconnect by themselves once the database is back.
pub fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception), 57P01..57P03 (the
        // server shuts down or is starting), 53300 (too many connections).
        sqlx::Error::Database(d) => d.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

/// `WWW-Authenticate: DPoP error="…", algs="…"` (RFC 9449 §7.1).
fn dpop_challenge(code: &str) -> HeaderValue {
    let algs = license_core::dpop::SIGNING_ALGS.join(" ");
    HeaderValue::from_str(&format!("DPoP error=\"{code}\", algs=\"{algs}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("DPoP"))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
