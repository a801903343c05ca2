//! Token revocation (RFC 7009).

use axum::extract::State;
use axum::response::Response;
use license_core::token::{verify, Expectation, LicenseClaims};
use serde::Deserialize;
use serde_json::json;

use super::{check_client, no_store, required, OAuthForm};
use crate::error::Result;
use crate::secrets;
use crate::store::NewAudit;
use crate::{AppState, CONSOLE_CLIENT_ID};

#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
}

/// RFC 7009. Revokes the token's whole chain; unknown tokens get 200 too.
pub(super) async fn revoke(
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
