//! Token revocation (RFC 7009).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use license_core::token::{verify, Expectation, LicenseClaims};
use serde::Deserialize;
use serde_json::json;

use super::{check_client, no_store, required, OAuthForm};
use crate::dpop::{check_binding, Endpoint, Expected};
use crate::error::Result;
use crate::secrets;
use crate::store::NewAudit;
use crate::{AppState, CONSOLE_CLIENT_ID};

#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
}

/// RFC 7009. Revokes the token's whole chain; unknown and expired tokens
/// get 200 too, and revoke nothing.
pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<RevokeForm>,
) -> Result<Response> {
    let token = required(&form.token, "token")?;
    if let Some(client_id) = form.client_id.as_deref() {
        check_client(client_id)?;
    }
    let now = state.now();
    let proof = state
        .dpop
        .check(
            &state.keys.ring(),
            &state.config,
            &headers,
            Expected {
                method: "POST",
                path: "/oauth/revoke",
                access_token: None,
                endpoint: Endpoint::Token,
            },
            now,
        )
        .await?;
    // Only a live token revokes: an expired one seen on the wire or in an
    // old log cannot be used to take a customer's license away.
    // A token bound to a DPoP key revokes only with a proof by that key:
    // a copy of it cannot take the customer's license away.
    let chain = match state.db.refresh_token(&secrets::hash(token)).await? {
        Some(row) if now < row.expires_at => {
            check_binding(
                row.dpop_jkt.as_deref(),
                proof.as_ref(),
                false,
                Endpoint::Token,
            )?;
            Some((row.chain_id, row.subject.device_id))
        }
        Some(_) => None,
        None => {
            // An access token: only with a valid signature (nobody revokes by
            // guessing a jti), and unexpired.
            let ring = state.keys.ring();
            let expect = Expectation::license_token(&state.config.issuer, CONSOLE_CLIENT_ID);
            match verify::<LicenseClaims>(token, &ring.jwks, &expect, state.clock.now()) {
                Ok(claims) => match chain_of(&claims.jti) {
                    Some(chain) => {
                        let bound = claims.cnf.as_ref().map(|c| c.jkt.as_str());
                        check_binding(bound, proof.as_ref(), false, Endpoint::Token)?;
                        state
                            .db
                            .chain(chain)
                            .await?
                            .map(|a| (a.chain_id, a.device_id))
                    }
                    None => None,
                },
                Err(_) => None,
            }
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
