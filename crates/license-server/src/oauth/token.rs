//! The token endpoint: grant dispatch, the refresh grant with rotation and
//! retry, and issuing (or re-issuing) a token pair.

use axum::extract::State;
use axum::response::Response;
use license_core::token::{encode, LicenseClaims, LICENSE_TOKEN_TYP};
use serde::{Deserialize, Serialize};

use super::device::device_code_grant;
use super::{check_client, no_store, required, OAuthForm, DEVICE_CODE_GRANT};
use crate::error::{Error, Result};
use crate::secrets;
use crate::store::{Exchanged, NewAudit, NewTokens, RefreshRow, TokenSubject};
use crate::AppState;
use license_core::protocol::REFRESH_TOKEN_GRANT;

#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    pub(super) device_code: Option<String>,
    refresh_token: Option<String>,
    pub(super) client_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

pub(super) async fn token(
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

/// Signs a new license token, stores the pair. With `previous`, that refresh
/// token is atomically marked used; `None` if another request won the race.
pub(super) async fn issue(
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
