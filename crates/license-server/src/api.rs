//! `GET /api/v1/license`: the signed license account of the calling device.
//!
//! This is the hot path (every console calls it at every refresh), so it
//! keeps two caches, both dropped wholesale on any change they depend on:
//! verified tokens (signature, jti, chain and device checked against the
//! database) and each organization's packages. Revocations and admin edits
//! happen in this process and clear them; run one server process per
//! database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use license_core::model::{LicenseAccount, LicensePackage};
use license_core::token::{
    encode, verify, AccountClaims, Expectation, LicenseClaims, LICENSE_DOCUMENT_TYP,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::dpop::{check_binding, Endpoint, Expected};
use crate::error::{Error, Result};
use crate::keys::KeyRing;
use crate::metrics::CacheKind;
use crate::peers::{Change, Peers};
use crate::store::{to_time, DbResult, Org, Store};
use crate::{secrets, AppState, Config, CONSOLE_CLIENT_ID};

pub fn routes() -> Router<AppState> {
    Router::new().route(LICENSE_PATH, get(license))
}

/// Where the license document is served.
pub const LICENSE_PATH: &str = "/api/v1/license";

const CACHE_LIMIT: usize = 100_000;
/// `last seen` is written at most this often per device.
const LAST_SEEN_EVERY_SECS: i64 = 60;

#[derive(Clone)]
struct VerifiedToken {
    claims: Arc<LicenseClaims>,
    device_id: i64,
    org_id: i64,
}

/// An organization's license account, minus the per-device fields.
pub struct OrgAccount {
    pub org: Org,
    pub packages: Vec<LicensePackage>,
}

impl OrgAccount {
    /// The account as the database holds it now (no cache).
    pub async fn load(db: &Store, org_id: i64) -> DbResult<Option<OrgAccount>> {
        let Some(org) = db.org(org_id).await? else {
            return Ok(None);
        };
        let packages = db.license_packages(org_id).await?;
        Ok(Some(OrgAccount { org, packages }))
    }
}

/// Whom a license document is for, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    /// The device's Server ID.
    pub server_id: &'a str,
    /// The client it is for (`aud`).
    pub audience: &'a str,
    /// Its expiry: the license token's, or the offline expiry.
    pub exp: i64,
}

/// The signed license document of `account` for `doc` at `now`, signed by
/// the current key: the one construction behind `/api/v1/license` and
/// offline activation (`crate::offline`).
pub fn sign_document(
    config: &Config,
    ring: &KeyRing,
    account: &OrgAccount,
    doc: Document<'_>,
    now: OffsetDateTime,
) -> String {
    let now_unix = now.unix_timestamp();
    let packages = account
        .packages
        .iter()
        .cloned()
        .map(|mut p| {
            if p.verified {
                p.last_verified = Some(now);
            }
            p
        })
        .collect();
    let org = &account.org;
    let document = AccountClaims {
        iss: config.issuer.clone(),
        aud: doc.audience.to_owned(),
        sub: doc.server_id.to_owned(),
        iat: now_unix,
        nbf: now_unix,
        exp: doc.exp,
        jti: secrets::random_token(),
        account: LicenseAccount {
            server_id: doc.server_id.to_owned(),
            organization: org.name.clone(),
            hub_server_name: org.hub_server_name.clone(),
            hub_server_url: org.hub_server_url.clone(),
            features: org.feature_list(),
            renewal_date: org.renewal_date.and_then(to_time),
            valid_from: to_time(org.valid_from).unwrap_or(now),
            valid_until: to_time(org.valid_until).unwrap_or(now),
            packages,
        },
        policy: config.policy.clone(),
        server_time: now_unix,
    };
    encode(
        &document,
        LICENSE_DOCUMENT_TYP,
        &ring.current_kid,
        &ring.current,
    )
}

/// Verified license tokens and organizations' accounts, kept in memory by
/// the license endpoint. Every change that could make an entry wrong empties
/// the cache it is in, here and, through [`Peers`], on every other replica.
#[derive(Default)]
pub struct Cache {
    tokens: Mutex<HashMap<[u8; 32], VerifiedToken>>,
    accounts: Mutex<HashMap<i64, Arc<OrgAccount>>>,
    last_seen: Mutex<HashMap<i64, i64>>,
    /// Raised before every emptying: what was read from the database
    /// before one is not cached after it.
    generation: AtomicU64,
    peers: Option<Peers>,
}

impl Cache {
    pub fn new(peers: Option<Peers>) -> Cache {
        Cache {
            peers,
            ..Cache::default()
        }
    }

    /// The other replicas, if there are any.
    pub fn peers(&self) -> Option<&Peers> {
        self.peers.as_ref()
    }

    /// After any revocation: every token is checked against the database
    /// again (a cached token does not say which chain it belongs to).
    pub fn chain_revoked(&self) {
        self.forget(Change::Revoked);
        if let Some(peers) = &self.peers {
            peers.announce(Change::Revoked);
        }
    }

    /// After any change to an organization, its packages or its devices.
    pub fn account_changed(&self) {
        self.forget(Change::Account);
        if let Some(peers) = &self.peers {
            peers.announce(Change::Account);
        }
    }

    /// Empties what `change` can make wrong, in this process only.
    pub fn forget(&self, change: Change) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if change != Change::Revoked {
            self.accounts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

#[derive(Serialize)]
struct LicenseResponse {
    license_document: String,
}

/// How the license token came: `Authorization: Bearer` or `DPoP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

fn authorization(headers: &HeaderMap) -> Result<(Scheme, &str)> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::InvalidToken("missing license token".into()))?
        .to_str()
        .map_err(|_| Error::InvalidToken("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Error::InvalidToken("malformed Authorization header".into()))?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(Error::InvalidToken(
            "expected a Bearer or DPoP token".into(),
        ));
    };
    if token.trim().is_empty() {
        return Err(Error::InvalidToken("empty token".into()));
    }
    Ok((scheme, token.trim()))
}

/// A token bound to a DPoP key is taken only as `DPoP` with a proof by
/// that key; an unbound one only as `Bearer` (RFC 9449 §7.1).
async fn check_proof(
    state: &AppState,
    headers: &HeaderMap,
    scheme: Scheme,
    token: &str,
    claims: &LicenseClaims,
    now: i64,
) -> Result<()> {
    let bound = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    match (bound, scheme) {
        (Some(_), Scheme::Bearer) => {
            return Err(Error::InvalidToken(
                "this license token is bound to a DPoP key: send it as DPoP with a proof".into(),
            ))
        }
        (None, Scheme::Dpop) => {
            return Err(Error::InvalidToken(
                "this license token is not bound to a DPoP key".into(),
            ))
        }
        _ => {}
    }
    let Some(bound) = bound else {
        return Ok(());
    };
    let proof = state
        .dpop
        .check(
            &state.keys.ring(),
            &state.config,
            headers,
            Expected {
                method: "GET",
                path: LICENSE_PATH,
                access_token: Some(token),
                endpoint: Endpoint::Resource,
            },
            now,
        )
        .await?;
    check_binding(Some(bound), proof.as_ref(), false, Endpoint::Resource)
}

async fn license(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let (scheme, token) = authorization(&headers)?;
    let answer = license_for(&state, &headers, scheme, token).await;
    match scheme {
        Scheme::Dpop => answer.map_err(Error::in_dpop),
        Scheme::Bearer => answer,
    }
}

/// The license document for `token`, which came with `scheme`.
async fn license_for(
    state: &AppState,
    headers: &HeaderMap,
    scheme: Scheme,
    token: &str,
) -> Result<Response> {
    let now = state.clock.now();
    let verified = verified_token(state, token, now).await?;
    check_proof(
        state,
        headers,
        scheme,
        token,
        &verified.claims,
        now.unix_timestamp(),
    )
    .await?;
    let account = org_account(state, verified.org_id).await?;
    let claims = &verified.claims;
    let jws = sign_document(
        &state.config,
        &state.keys.ring(),
        &account,
        Document {
            server_id: &claims.sub,
            audience: &claims.aud,
            exp: claims.exp,
        },
        now,
    );
    let now_unix = now.unix_timestamp();
    note_last_seen(state, verified.device_id, now_unix);
    let mut response = axum::Json(LicenseResponse {
        license_document: jws,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn verified_token(
    state: &AppState,
    token: &str,
    now: OffsetDateTime,
) -> Result<VerifiedToken> {
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let generation = state.cache.generation();
    let cached = state
        .cache
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let leeway = license_core::token::DEFAULT_LEEWAY_SECS;
    crate::metrics::global().cache(CacheKind::Tokens, cached.is_some());
    if let Some(v) = cached {
        if now.unix_timestamp() < v.claims.exp + leeway {
            return Ok(v);
        }
        return Err(Error::InvalidToken("the license token has expired".into()));
    }
    let ring = state.keys.ring();
    let expect = Expectation::license_token(&state.config.issuer, CONSOLE_CLIENT_ID);
    let claims = verify::<LicenseClaims>(token, &ring.jwks, &expect, now)
        .map_err(|e| Error::InvalidToken(format!("license token rejected: {e}")))?;
    let chain = crate::oauth::chain_of(&claims.jti)
        .ok_or_else(|| Error::InvalidToken("unknown license token".into()))?;
    let row = state
        .db
        .chain(chain)
        .await?
        .ok_or_else(|| Error::InvalidToken("unknown license token".into()))?;
    if row.chain_revoked.is_some() || row.device_revoked.is_some() {
        return Err(Error::InvalidToken(
            "the license token has been revoked".into(),
        ));
    }
    let device = state
        .db
        .device(row.device_id)
        .await?
        .ok_or_else(|| Error::InvalidToken("unknown device".into()))?;
    if device.server_id != claims.sub {
        return Err(Error::InvalidToken("token subject does not match".into()));
    }
    let v = VerifiedToken {
        claims: Arc::new(claims),
        device_id: device.id,
        org_id: device.org_id,
    };
    let mut tokens = state.cache.tokens.lock().unwrap_or_else(|e| e.into_inner());
    if tokens.len() >= CACHE_LIMIT {
        tokens.clear();
    }
    if state.cache.generation() == generation {
        tokens.insert(key, v.clone());
    }
    Ok(v)
}

async fn org_account(state: &AppState, org_id: i64) -> Result<Arc<OrgAccount>> {
    let generation = state.cache.generation();
    let cached = state
        .cache
        .accounts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&org_id)
        .cloned();
    crate::metrics::global().cache(CacheKind::Accounts, cached.is_some());
    if let Some(a) = cached {
        return Ok(a);
    }
    let account = Arc::new(
        OrgAccount::load(&state.db, org_id)
            .await?
            .ok_or_else(|| Error::InvalidToken("unknown organization".into()))?,
    );
    let mut accounts = state
        .cache
        .accounts
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if state.cache.generation() == generation {
        accounts.insert(org_id, account.clone());
    }
    Ok(account)
}

fn note_last_seen(state: &AppState, device_id: i64, now: i64) {
    {
        let mut seen = state
            .cache
            .last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match seen.get(&device_id) {
            Some(&at) if now - at < LAST_SEEN_EVERY_SECS && now >= at => return,
            _ => {
                seen.insert(device_id, now);
            }
        }
    }
    let db = state.db.clone();
    tokio::spawn(async move {
        if let Err(e) = db.touch_device(device_id, now).await {
            tracing::warn!(error = %e, "recording last seen failed");
        }
    });
}
