//! Device authorization (RFC 8628 §3.1) and the device-code grant (§3.4,
//! §3.5) of the token endpoint.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::token::{binding_of, issue, TokenForm, TokenResponse};
use super::{check_client, no_store, required, OAuthForm};
use crate::admin::ClientAddr;
use crate::error::{Error, Result};
use crate::secrets;
use crate::store::{Consumed, DeviceCodeStatus, NewDeviceCode};
use crate::{AppState, CONSOLE_CLIENT_ID};
use license_core::dpop::VerifiedProof;
use license_core::protocol::SLOW_DOWN_STEP_SECS;

#[derive(Debug, Deserialize)]
pub(super) struct DeviceAuthorizationForm {
    client_id: Option<String>,
    scope: Option<String>,
}

pub(super) async fn device_authorization(
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
    state
        .limits
        .device_authorization
        .attempt(&addr, cfg.device_authorizations_per_address, now)
        .await?
        .map_err(Error::TooManyRequests)?;
    let device_code = secrets::random_token();
    let expires_at = now + cfg.device_code_ttl_secs;
    for _ in 0..8 {
        let user_code = secrets::new_user_code();
        let stored = state
            .db
            .insert_device_code(NewDeviceCode {
                code_hash: secrets::hash(&device_code),
                user_code: user_code.clone(),
                client_id: CONSOLE_CLIENT_ID.to_owned(),
                scope: form.scope.clone(),
                now,
                expires_at,
                interval_secs: cfg.poll_interval_secs,
            })
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

pub(super) async fn device_code_grant(
    state: &AppState,
    form: &TokenForm,
    proof: Option<&VerifiedProof>,
) -> Result<TokenResponse> {
    let client_id = required(&form.client_id, "client_id")?;
    check_client(client_id)?;
    // The new chain is bound to the proof's key, if there is one.
    let dpop_jkt = binding_of(state, proof)?;
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
                .consume_device_code(code.id, device_id, client_id, dpop_jkt.as_deref(), now)
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
            let jkt = dpop_jkt.as_deref();
            let issued = issue(state, chain, &subject, client_id, jkt, &refresh, None, now).await?;
            Ok(issued.ok_or_else(|| Error::internal("fresh chain lost its first token"))?)
        }
    }
}
