//! OAuth endpoints: metadata (RFC 8414), device authorization (RFC 8628,
//! `device`), token (device code and refresh token grants, `token`),
//! revocation (RFC 7009, `revoke`), JWKS.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::{AppState, CONSOLE_CLIENT_ID};

mod device;
mod revoke;
mod token;

pub use license_core::protocol::DEVICE_CODE_GRANT;
use license_core::protocol::{GRANT_TYPES, METADATA_PATH};
pub use revoke::chain_of;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/oauth/device_authorization",
            post(device::device_authorization),
        )
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(revoke::revoke))
}

/// `application/x-www-form-urlencoded` body whose rejections are OAuth
/// errors (JSON, 4xx) instead of axum's plain-text ones.
pub struct OAuthForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OAuthForm<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(OAuthForm(v)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::PayloadTooLarge)
            }
            Err(rejection) => Err(Error::InvalidRequest(rejection.body_text())),
        }
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(Error::InvalidRequest(format!("missing parameter: {name}"))),
    }
}

fn check_client(client_id: &str) -> Result<()> {
    if client_id == CONSOLE_CLIENT_ID {
        Ok(())
    } else {
        Err(Error::InvalidClient("unknown client_id".into()))
    }
}

/// JSON with `Cache-Control: no-store` (RFC 6749 §5.1).
fn no_store(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn metadata(State(state): State<AppState>) -> Response {
    let c = &state.config;
    Json(json!({
        "issuer": c.issuer,
        "device_authorization_endpoint": c.url("/oauth/device_authorization"),
        "token_endpoint": c.url("/oauth/token"),
        "revocation_endpoint": c.url("/oauth/revoke"),
        "jwks_uri": c.url("/.well-known/jwks.json"),
        "license_endpoint": c.url(crate::api::LICENSE_PATH),
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "dpop_signing_alg_values_supported": license_core::dpop::SIGNING_ALGS,
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.keys.ring();
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        ring.jwks_json.clone(),
    )
        .into_response()
}
