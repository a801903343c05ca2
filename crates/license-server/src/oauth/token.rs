//! The token endpoint: grant dispatch, the refresh grant with rotation and
//! retry, and issuing (or re-issuing) a token pair.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use license_core::dpop::VerifiedProof;
use license_core::token::{encode, Confirmation, LicenseClaims, LICENSE_TOKEN_TYP};
use serde::{Deserialize, Serialize};

use super::device::device_code_grant;
use super::{check_client, no_store, required, OAuthForm, DEVICE_CODE_GRANT};
use crate::dpop::{check_binding, Endpoint, Expected};
use crate::error::{Error, Result};
use crate::secrets;
use crate::store::{Exchanged, NewAudit, NewTokens, OnCopy, RefreshRow, TokenSubject};
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

/// The grant types the token endpoint knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    DeviceCode,
    RefreshToken,
}

impl Grant {
    /// The form's grant type; `unsupported_grant_type` for any other.
    fn of(form: &TokenForm) -> Result<Grant> {
        match required(&form.grant_type, "grant_type")? {
            DEVICE_CODE_GRANT => Ok(Grant::DeviceCode),
            REFRESH_TOKEN_GRANT => Ok(Grant::RefreshToken),
            other => {
                let shown: String = other.chars().take(64).collect();
                Err(Error::UnsupportedGrantType(format!(
                    "unsupported grant_type {shown:?}"
                )))
            }
        }
    }

    /// How the metrics name it.
    fn label(self) -> &'static str {
        match self {
            Grant::DeviceCode => "device_code",
            Grant::RefreshToken => "refresh_token",
        }
    }
}

pub(super) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response> {
    let (label, answer) = match Grant::of(&form) {
        Ok(grant) => (
            grant.label(),
            grant_tokens(&state, &headers, &form, grant).await,
        ),
        Err(e) => ("unsupported", Err(e)),
    };
    let outcome = answer.as_ref().map_or_else(Error::code, |_| "issued");
    crate::metrics::global().grant(label, outcome);
    answer
}

async fn grant_tokens(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
    grant: Grant,
) -> Result<Response> {
    let now = state.now();
    let proof = state
        .dpop
        .check(
            &state.keys.ring(),
            &state.config,
            headers,
            Expected {
                method: "POST",
                path: "/oauth/token",
                access_token: None,
                endpoint: Endpoint::Token,
            },
            now,
        )
        .await?;
    let response = match grant {
        Grant::DeviceCode => device_code_grant(state, form, proof.as_ref()).await?,
        Grant::RefreshToken => refresh_grant(state, form, proof.as_ref()).await?,
    };
    let mut response = no_store(response);
    if state.config.dpop_nonce {
        if let Ok(nonce) =
            HeaderValue::from_str(&crate::dpop::DpopGuard::nonce(&state.keys.ring(), now))
        {
            response.headers_mut().insert("dpop-nonce", nonce);
        }
    }
    Ok(response)
}

/// The key a new token chain is bound to: the proof's, if the grant had
/// one; a grant without one is refused when the server requires DPoP.
pub(super) fn binding_of(
    state: &AppState,
    proof: Option<&VerifiedProof>,
) -> Result<Option<String>> {
    check_binding(None, proof, state.config.require_dpop, Endpoint::Token)?;
    Ok(proof.map(|p| p.jkt.clone()))
}

/// `DPoP` for a token bound to a key, `Bearer` otherwise.
fn token_type(claims: &LicenseClaims) -> &'static str {
    if claims.cnf.is_some() {
        "DPoP"
    } else {
        "Bearer"
    }
}

/// Signs a new license token, stores the pair. With `previous`, that refresh
/// token is atomically marked used; `None` if another request won the race.
/// The new pair is bound to `dpop_jkt` (the chain's key) when given.
#[allow(clippy::too_many_arguments)]
pub(super) async fn issue(
    state: &AppState,
    chain_id: i64,
    subject: &TokenSubject,
    client_id: &str,
    dpop_jkt: Option<&str>,
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
        cnf: dpop_jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
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
            dpop_jkt: dpop_jkt.map(str::to_owned),
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
        token_type: token_type(&claims),
        access_token,
        expires_in: cfg.token_ttl_secs,
        refresh_token: refresh_token.to_owned(),
    }))
}

async fn refresh_grant(
    state: &AppState,
    form: &TokenForm,
    proof: Option<&VerifiedProof>,
) -> Result<TokenResponse> {
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
        // Before anything else: a copied token without its key is refused
        // here, and cannot even set off the reuse detection below.
        check_binding(
            row.dpop_jkt.as_deref(),
            proof,
            state.config.require_dpop,
            Endpoint::Token,
        )?;
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
                    row.dpop_jkt.as_deref(),
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
                // A lost response retried: the same pair, while its refresh
                // token is unused. For a chain bound to a DPoP key, however
                // late the retry comes: only the key's holder can present
                // it, so it is the console coming back after a crash (or a
                // copy of it, which `answer_retry` notices).
                let bound = row.dpop_jkt.is_some();
                if bound || now - used_at <= state.config.refresh_retry_window_secs {
                    if let Some(successor) = unused_successor(state, presented).await? {
                        if let Some(response) = reissue(state, &row, &successor, now)? {
                            return answer_retry(state, &row, response, now).await;
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

/// Two retries on one chain within this time mark its device a possible
/// copy.
pub const COPY_WINDOW_SECS: i64 = 7 * 86_400;

/// Whether a retry now, after the chain's previous one at `previous`, is the
/// sign of a second copy of the console. A console that crashed between the
/// server's answer and its keychain write retries once; two copies of one
/// console (a cloned VM, a restored backup) share a chain and each answers
/// the other's rotation through a retry, at every rotation. So one retry is
/// a crash, and a second within [`COPY_WINDOW_SECS`] is a copy.
pub fn possible_copy(previous: Option<i64>, now: i64) -> bool {
    previous.is_some_and(|at| now - at <= COPY_WINDOW_SECS)
}

/// Audits a retry answered with `response`; on the second within a week,
/// marks the device a possible copy and, if its organization chose so,
/// revokes the chain instead of answering.
async fn answer_retry(
    state: &AppState,
    row: &RefreshRow,
    response: TokenResponse,
    now: i64,
) -> Result<TokenResponse> {
    let device = state.db.device(row.subject.device_id).await?;
    let org_id = device.as_ref().map(|d| d.org_id);
    let name = device.as_ref().map_or("?", |d| d.name.as_str());
    let audit = |action, detail| NewAudit {
        at: now,
        actor: "system",
        org_id,
        action,
        detail,
    };
    let detail = format!(
        "refresh token presented again; the same pair answered (device \"{name}\", chain {})",
        row.chain_id
    );
    // Counted and audited in one transaction: a client that goes away
    // mid-request (a console killed) cannot leave one without the other.
    let previous = state
        .db
        .record_retry(row.chain_id, now, &audit("token.retry", detail))
        .await?;
    if !possible_copy(previous, now) {
        return Ok(response);
    }
    let already_flagged = device
        .as_ref()
        .is_some_and(|d| d.possible_copy_at.is_some());
    state.db.mark_possible_copy(row.chain_id, now).await?;
    let on_copy = match org_id {
        Some(id) => state.db.org(id).await?.map(|o| o.on_copy),
        None => None,
    };
    let revoke = on_copy == Some(OnCopy::Revoke);
    let detail = format!(
        "a second copy of device \"{name}\" seems to share its license (two retries within a week); {}",
        if revoke { "its license is revoked" } else { "flagged only" }
    );
    // Audited when the device is first flagged (and whenever it revokes),
    // not at every later retry of a flagged device.
    if revoke || !already_flagged {
        state
            .db
            .audit(&audit("device.possible_copy", detail))
            .await?;
        tracing::warn!(chain = row.chain_id, revoke, "possible copy of a console");
    }
    if revoke {
        state.db.revoke_chain(row.chain_id, now).await?;
        state.cache.chain_revoked();
        return Err(Error::InvalidGrant(
            "a copy of this console was detected; the license was revoked".into(),
        ));
    }
    Ok(response)
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

/// A retried pair whose license token has less left than this gets a fresh
/// license token (the same claims, new times).
const REISSUE_MIN_LIFETIME_SECS: i64 = 300;

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
    let mut claims: LicenseClaims = serde_json::from_str(claims_json).map_err(Error::internal)?;
    let ring = state.keys.ring();
    // The same bytes when the key that signed them is still there; once it
    // was withdrawn or erased, the same claims signed by the current key.
    let (mut kid, mut key) = match ring.signing_key(kid) {
        Some(key) => (kid.as_str(), key),
        None => (ring.current_kid.as_str(), &ring.current),
    };
    // A console that crashed before storing the pair and comes back after
    // its license token expired (a bound chain's retry has no time limit)
    // gets the same refresh token and a license token that is valid now:
    // an expired one would be refused, and the console would present the
    // same refresh token for ever.
    if claims.exp - REISSUE_MIN_LIFETIME_SECS <= now {
        claims.iat = now;
        claims.nbf = now;
        claims.exp = now + state.config.token_ttl_secs;
        claims.jti = format!("{}.{}", row.chain_id, secrets::random_token());
        (kid, key) = (ring.current_kid.as_str(), &ring.current);
    }
    Ok(Some(TokenResponse {
        token_type: token_type(&claims),
        access_token: encode(&claims, LICENSE_TOKEN_TYP, kid, key),
        expires_in: (claims.exp - now).max(0),
        refresh_token: successor.to_owned(),
    }))
}
