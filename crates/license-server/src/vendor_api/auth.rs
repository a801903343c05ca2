//! Who is calling: a vendor API token (`Authorization: Bearer <token>`),
//! looked up by its SHA-256. [`Caller`] needs any live token; [`Writer`]
//! one with the `write` scope. An unknown, revoked or missing token is 401
//! with `WWW-Authenticate: Bearer`; a read token that tries to write, 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use super::problem::Problem;
use crate::store::{ApiScope, NewAudit};
use crate::{secrets, AppState};

/// Every token starts with this, so a leaked one is recognizable.
pub const TOKEN_PREFIX: &str = "lsv_";

/// A new token: the prefix and 256 random bits.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", secrets::random_token())
}

/// The caller of a vendor API request: a live token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scope: ApiScope,
}

impl Caller {
    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }
}

/// The bearer token of the request, if it has one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(token) = bearer(parts) else {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "send a vendor API token: Authorization: Bearer <token>",
            ));
        };
        let token = state
            .db
            .use_api_token(&secrets::hash(token), state.now())
            .await?
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "the API token is unknown or revoked",
                )
            })?;
        Ok(Caller {
            name: token.name,
            scope: token.scope,
        })
    }
}

/// The caller of a request that changes something: a `write` token.
#[derive(Debug, Clone)]
pub struct Writer(pub Caller);

impl FromRequestParts<AppState> for Writer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.scope != ApiScope::Write {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the API token \"{}\" has the read scope; this needs a write token",
                    caller.name
                ),
            ));
        }
        Ok(Writer(caller))
    }
}

impl Writer {
    /// Writes what the caller did (in `org_id`, if any) to the audit log.
    pub async fn record(
        &self,
        state: &AppState,
        org_id: Option<i64>,
        action: &str,
        detail: String,
    ) -> Result<(), Problem> {
        let entry = self.entry(state, org_id, action, detail);
        state.db.audit(&entry.get()).await?;
        Ok(())
    }

    /// The audit entry of what the caller did, for a store method that
    /// writes it in its own transaction.
    pub fn entry<'a>(
        &self,
        state: &AppState,
        org_id: Option<i64>,
        action: &'a str,
        detail: String,
    ) -> OwnedAudit<'a> {
        OwnedAudit {
            at: state.now(),
            actor: self.0.actor(),
            org_id,
            action,
            detail,
        }
    }
}

/// A [`NewAudit`] that owns its actor.
pub struct OwnedAudit<'a> {
    at: i64,
    actor: String,
    org_id: Option<i64>,
    action: &'a str,
    detail: String,
}

impl OwnedAudit<'_> {
    pub fn get(&self) -> NewAudit<'_> {
        NewAudit {
            at: self.at,
            actor: &self.actor,
            org_id: self.org_id,
            action: self.action,
            detail: self.detail.clone(),
        }
    }
}
