//! OAuth endpoints: metadata (RFC 8414), device authorization (RFC 8628),
//! token (device code and refresh token grants), revocation (RFC 7009), JWKS.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use license_core::token::{encode, verify, Expectation, LicenseClaims, LICENSE_TOKEN_TYP};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admin::ClientAddr;
use crate::error::{Error, Result};
use crate::secrets;
use crate::store::{
    Consumed, DeviceCodeStatus, Exchanged, NewAudit, NewTokens, RefreshRow, TokenSubject,
};
use crate::{AppState, CONSOLE_CLIENT_ID};

pub use license_core::protocol::DEVICE_CODE_GRANT;
use license_core::protocol::{
    GRANT_TYPES, METADATA_PATH, REFRESH_TOKEN_GRANT, SLOW_DOWN_STEP_SECS,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/oauth/device_authorization", post(device_authorization))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
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
        "license_endpoint": c.url("/api/v1/license"),
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
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

#[derive(Debug, Deserialize)]
struct DeviceAuthorizationForm {
    client_id: Option<String>,
    scope: Option<String>,
}

async fn device_authorization(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    OAuthForm(form): OAuthForm<DeviceAuthorizationForm>,
) -> Result<Response> {
    check_client(required(&form.client_id, "client_id")?)?;
    if form.scope.as_deref().is_some_and(|s| s.len() > 256) {
        return Err(Error::InvalidRequest("scope too long".into()));
    }
    let now = state.now();
    let cfg = &state.config;
    // Each authorization is a row until its code expires: bounded per
    // address, counted before anything is stored.
    let started = &state.limits.device_authorization;
    started
        .check(&addr, cfg.device_authorizations_per_address, now)
        .map_err(Error::TooManyRequests)?;
    started.fail(&addr, now);
    let device_code = secrets::random_token();
    let expires_at = now + cfg.device_code_ttl_secs;
    for _ in 0..8 {
        let user_code = secrets::new_user_code();
        let stored = state
            .db
            .insert_device_code(
                &secrets::hash(&device_code),
                &user_code,
                CONSOLE_CLIENT_ID,
                form.scope.as_deref(),
                now,
                expires_at,
                cfg.poll_interval_secs,
            )
            .await?;
        if stored {
            let shown = secrets::display_user_code(&user_code);
            return Ok(no_store(json!({
                "device_code": device_code,
                "user_code": shown,
                "verification_uri": cfg.url("/device"),
                "verification_uri_complete": cfg.url(&format!("/device?user_code={shown}")),
                "expires_in": cfg.device_code_ttl_secs,
                "interval": cfg.poll_interval_secs,
            })));
        }
    }
    Err(Error::internal("could not draw a unique user code"))
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

async fn token(
    State(state): State<AppState>,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response> {
    let response = match required(&form.grant_type, "grant_type")? {
        DEVICE_CODE_GRANT => device_code_grant(&state, &form).await?,
        REFRESH_TOKEN_GRANT => refresh_grant(&state, &form).await?,
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(Error::UnsupportedGrantType(format!(
                "unsupported grant_type {shown:?}"
            )));
        }
    };
    Ok(no_store(response))
}

async fn device_code_grant(state: &AppState, form: &TokenForm) -> Result<TokenResponse> {
    let client_id = required(&form.client_id, "client_id")?;
    check_client(client_id)?;
    let device_code = required(&form.device_code, "device_code")?;
    let now = state.now();
    let code = state
        .db
        .device_code(&secrets::hash(device_code))
        .await?
        .ok_or_else(|| Error::InvalidGrant("unknown device_code".into()))?;
    if code.client_id != client_id {
        return Err(Error::InvalidGrant(
            "device_code was issued to another client".into(),
        ));
    }
    let already_used = || Error::InvalidGrant("device_code has already been used".into());
    if code.status == DeviceCodeStatus::Used {
        return Err(already_used());
    }
    if now >= code.expires_at {
        return Err(Error::ExpiredToken);
    }
    // RFC 8628 §3.5: polling faster than the interval earns slow_down and a
    // longer interval for every later request.
    if let Some(last) = code.last_poll_at {
        if now - last < code.interval_secs {
            let interval = code.interval_secs + SLOW_DOWN_STEP_SECS as i64;
            state.db.record_poll(code.id, now, interval).await?;
            return Err(Error::SlowDown(interval));
        }
    }
    state
        .db
        .record_poll(code.id, now, code.interval_secs)
        .await?;
    match code.status {
        DeviceCodeStatus::Pending => Err(Error::AuthorizationPending),
        DeviceCodeStatus::Denied => Err(Error::AccessDenied),
        DeviceCodeStatus::Used => Err(already_used()),
        DeviceCodeStatus::Approved => {
            let device_id = code
                .device_id
                .ok_or_else(|| Error::internal("approved code without device"))?;
            let chain = match state
                .db
                .consume_device_code(code.id, device_id, client_id, now)
                .await?
            {
                Consumed::Chain(chain) => chain,
                Consumed::AlreadyUsed => return Err(already_used()),
                // Revoked after approval: the admin's later word stands.
                Consumed::DeviceRevoked => return Err(Error::AccessDenied),
            };
            let subject = state
                .db
                .token_subject(device_id)
                .await?
                .ok_or_else(|| Error::InvalidGrant("the device no longer exists".into()))?;
            let refresh = secrets::random_token();
            let issued = issue(state, chain, &subject, client_id, &refresh, None, now).await?;
            Ok(issued.ok_or_else(|| Error::internal("fresh chain lost its first token"))?)
        }
    }
}

/// Signs a new license token, stores the pair. With `previous`, that refresh
/// token is atomically marked used; `None` if another request won the race.
async fn issue(
    state: &AppState,
    chain_id: i64,
    subject: &TokenSubject,
    client_id: &str,
    refresh_token: &str,
    previous: Option<&[u8]>,
    now: i64,
) -> Result<Option<TokenResponse>> {
    let cfg = &state.config;
    let claims = LicenseClaims {
        iss: cfg.issuer.clone(),
        aud: client_id.to_owned(),
        sub: subject.server_id.clone(),
        iat: now,
        nbf: now,
        exp: now + cfg.token_ttl_secs,
        jti: format!("{chain_id}.{}", secrets::random_token()),
        org: subject.org_name.clone(),
        features: subject.feature_list(),
        renewal_date: subject.renewal_date,
        hub_server_name: subject.hub_server_name.clone(),
        hub_server_url: subject.hub_server_url.clone(),
    };
    let ring = state.keys.ring();
    let access_token = encode(&claims, LICENSE_TOKEN_TYP, &ring.current_kid, &ring.current);
    let exchanged = match previous {
        Some(hash) => Some(Exchanged {
            hash: hash.to_vec(),
            successor_claims: serde_json::to_string(&claims).map_err(Error::internal)?,
        }),
        None => None,
    };
    let stored = state
        .db
        .store_tokens(NewTokens {
            chain_id,
            client_id: client_id.to_owned(),
            subject: subject.clone(),
            refresh_hash: secrets::hash(refresh_token),
            refresh_expires_at: now + cfg.refresh_token_ttl_secs,
            access_expires_at: claims.exp,
            kid: ring.current_kid.clone(),
            key_last_exp: state.keys.needs_last_exp(&ring.current_kid, claims.exp),
            now,
            exchanged,
        })
        .await?;
    Ok(stored.then(|| TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: cfg.token_ttl_secs,
        refresh_token: refresh_token.to_owned(),
    }))
}

async fn refresh_grant(state: &AppState, form: &TokenForm) -> Result<TokenResponse> {
    let presented = required(&form.refresh_token, "refresh_token")?;
    if let Some(client_id) = form.client_id.as_deref() {
        check_client(client_id)?;
    }
    let now = state.now();
    let hash = secrets::hash(presented);
    let invalid = || Error::InvalidGrant("invalid refresh token".into());
    for _ in 0..2 {
        let row = state.db.refresh_token(&hash).await?.ok_or_else(invalid)?;
        if form
            .client_id
            .as_deref()
            .is_some_and(|c| c != row.client_id)
        {
            return Err(invalid());
        }
        if row.chain_revoked.is_some() || row.device_revoked.is_some() {
            return Err(Error::InvalidGrant(
                "the license of this device has been revoked".into(),
            ));
        }
        if now >= row.expires_at {
            return Err(Error::InvalidGrant("refresh token expired".into()));
        }
        match row.used_at {
            None => {
                let successor = state.keys.ring().successor(presented);
                let issued = issue(
                    state,
                    row.chain_id,
                    &row.subject,
                    &row.client_id,
                    &successor,
                    Some(&hash),
                    now,
                )
                .await?;
                match issued {
                    Some(response) => return Ok(response),
                    // Lost a race with a concurrent exchange of the same token,
                    // or the chain was revoked since the lookup: look again (in
                    // the database) and treat it as a retry, a reuse or a
                    // revocation.
                    None => continue,
                }
            }
            Some(used_at) => {
                if now - used_at <= state.config.refresh_retry_window_secs {
                    // A lost response retried: the successor, if still unused.
                    if let Some(successor) = unused_successor(state, presented).await? {
                        if let Some(response) = reissue(state, &row, &successor, now)? {
                            return Ok(response);
                        }
                    }
                }
                // Reuse of a rotated refresh token: someone else may hold it.
                // Revoke the whole chain (OAuth 2.0 Security BCP §4.14).
                state.db.revoke_chain(row.chain_id, now).await?;
                state.cache.chain_revoked();
                let detail = format!(
                    "refresh token reuse detected; token chain {} revoked",
                    row.chain_id
                );
                let org_id = state
                    .db
                    .device(row.subject.device_id)
                    .await?
                    .map(|d| d.org_id);
                state
                    .db
                    .audit(&NewAudit {
                        at: now,
                        actor: "system",
                        org_id,
                        action: "token.reuse_detected",
                        detail,
                    })
                    .await?;
                tracing::warn!(chain = row.chain_id, "refresh token reuse; chain revoked");
                return Err(invalid());
            }
        }
    }
    Err(invalid())
}

/// The successor `presented` was exchanged for, derived with whichever
/// refresh-successor key made it, if it is stored and still unused.
async fn unused_successor(state: &AppState, presented: &str) -> Result<Option<String>> {
    let ring = state.keys.ring();
    for candidate in ring.successor_candidates(presented) {
        match state
            .db
            .refresh_token_used(&secrets::hash(&candidate))
            .await?
        {
            Some(false) => return Ok(Some(candidate)),
            Some(true) => return Ok(None),
            None => continue,
        }
    }
    Ok(None)
}

/// The response the client lost: the same access token (Ed25519 signatures are
/// deterministic, so re-signing the stored claims with the same key yields the
/// same bytes) and the same derived refresh token.
fn reissue(
    state: &AppState,
    row: &RefreshRow,
    successor: &str,
    now: i64,
) -> Result<Option<TokenResponse>> {
    let (Some(claims_json), Some(kid)) = (&row.successor_claims, &row.successor_kid) else {
        return Ok(None);
    };
    let claims: LicenseClaims = serde_json::from_str(claims_json).map_err(Error::internal)?;
    let ring = state.keys.ring();
    let Some(key) = ring.signing_key(kid) else {
        return Ok(None);
    };
    Ok(Some(TokenResponse {
        access_token: encode(&claims, LICENSE_TOKEN_TYP, kid, key),
        token_type: "Bearer",
        expires_in: (claims.exp - now).max(0),
        refresh_token: successor.to_owned(),
    }))
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
}

/// RFC 7009. Revokes the token's whole chain; unknown tokens get 200 too.
async fn revoke(
    State(state): State<AppState>,
    OAuthForm(form): OAuthForm<RevokeForm>,
) -> Result<Response> {
    let token = required(&form.token, "token")?;
    if let Some(client_id) = form.client_id.as_deref() {
        check_client(client_id)?;
    }
    let now = state.now();
    let chain = if let Some(row) = state.db.refresh_token(&secrets::hash(token)).await? {
        Some((row.chain_id, row.subject.device_id))
    } else {
        // An access token: accept it even if expired, but only with a valid
        // signature, so nobody can revoke by guessing a jti.
        let ring = state.keys.ring();
        let expect = Expectation::license_token(&state.config.issuer, CONSOLE_CLIENT_ID);
        let at = unverified_exp(token)
            .map(|exp| (exp - 1).min(now))
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or_else(|| state.clock.now());
        let verified = verify::<LicenseClaims>(token, &ring.jwks, &expect, at);
        match verified {
            Ok(claims) => match chain_of(&claims.jti) {
                Some(chain) => state
                    .db
                    .chain(chain)
                    .await?
                    .map(|a| (a.chain_id, a.device_id)),
                None => None,
            },
            Err(_) => None,
        }
    };
    if let Some((chain_id, device_id)) = chain {
        state.db.revoke_chain(chain_id, now).await?;
        state.cache.chain_revoked();
        if let Some(device) = state.db.device(device_id).await? {
            let detail = format!(
                "license removed from device \"{}\" ({})",
                device.name, device.server_id
            );
            state
                .db
                .audit(&NewAudit {
                    at: now,
                    actor: "console",
                    org_id: Some(device.org_id),
                    action: "device.license_removed",
                    detail,
                })
                .await?;
        }
    }
    Ok(no_store(json!({})))
}

/// The token chain a license token belongs to (its `jti` is `<chain>.<random>`).
pub fn chain_of(jti: &str) -> Option<i64> {
    jti.split_once('.')?.0.parse().ok()
}

/// The `exp` claim of a compact JWS, read without verifying anything; only
/// used to pick the instant at which the signature is then verified.
fn unverified_exp(token: &str) -> Option<i64> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}
