//! Ed25519 signing keys: the current one signs, older ones stay published in
//! the JWKS until every token they signed has expired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use license_core::anchor::{sign_rollover, MAX_ROLLOVERS};
use license_core::jwk::{key_id, Jwk, JwkSet};
use rand::rngs::OsRng;

use crate::store::{KeyRow, Store};
use crate::{secrets, AppState};

#[derive(Clone)]
pub struct Keys(
    Arc<RwLock<Arc<KeyRing>>>,
    Arc<std::sync::Mutex<HashMap<String, i64>>>,
);

/// `last_exp` is written ahead by this much, so it is updated about once per
/// this many seconds instead of on every token.
const LAST_EXP_STEP_SECS: i64 = 300;

pub struct KeyRing {
    pub current_kid: String,
    pub current: SigningKey,
    by_kid: HashMap<String, SigningKey>,
    pub jwks: JwkSet,
    /// Pre-rendered JWKS document.
    pub jwks_json: String,
    /// Refresh-successor keys, newest first (never empty).
    successor_keys: Vec<[u8; 32]>,
    /// The DPoP nonce keys derived from them, in the same order: every
    /// replica reads the same keys, so each takes the others' nonces.
    nonce_keys: Vec<[u8; 32]>,
    /// A rotation calls for a rollover not signed yet.
    pub rollovers_missing: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no signing key in the database; run `license-server init` first")]
    NoKey,
    #[error("a stored signing key is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl KeyRing {
    /// The ring of these keys. `rollovers` (signed by, vouched for, JWS) are
    /// published beside the keys, except those of a withdrawn key.
    pub fn from_rows(
        rows: &[KeyRow],
        successor_rows: &[Vec<u8>],
        rollovers: &[(String, String, String)],
        now: i64,
    ) -> Result<KeyRing, KeyError> {
        let successor_keys = successor_rows
            .iter()
            .map(|k| {
                <[u8; 32]>::try_from(k.as_slice())
                    .map_err(|_| KeyError::Corrupt("a refresh-successor key".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if successor_keys.is_empty() {
            return Err(KeyError::NoKey);
        }
        let mut by_kid = HashMap::new();
        let mut jwks = JwkSet::default();
        let mut current = None;
        for row in rows {
            let corrupt = || KeyError::Corrupt(row.kid.clone());
            // An erased private key is an empty blob.
            let key = match row.secret_key.len() {
                0 => None,
                _ => {
                    let seed: [u8; 32] = row
                        .secret_key
                        .as_slice()
                        .try_into()
                        .map_err(|_| corrupt())?;
                    Some(SigningKey::from_bytes(&seed))
                }
            };
            let public = match (&row.public_key, &key) {
                (Some(bytes), _) => {
                    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| corrupt())?;
                    VerifyingKey::from_bytes(&bytes).map_err(|_| corrupt())?
                }
                (None, Some(key)) => key.verifying_key(),
                (None, None) => return Err(corrupt()),
            };
            if row.retired_at.is_none() {
                current = Some((row.kid.clone(), key.clone().ok_or_else(corrupt)?));
            }
            // Published while it signs, and afterwards until its last token
            // expires, unless withdrawn.
            let live = row.retired_at.is_none() || row.last_exp > now;
            if live && row.withdrawn_at.is_none() {
                jwks.keys.push(Jwk::from_verifying_key(&row.kid, &public));
            }
            if let (Some(key), None) = (key, row.withdrawn_at) {
                by_kid.insert(row.kid.clone(), key);
            }
        }
        let (current_kid, current) = current.ok_or(KeyError::NoKey)?;
        let withdrawn = |kid: &str| {
            rows.iter()
                .any(|r| r.kid == kid && r.withdrawn_at.is_some())
        };
        let published: Vec<String> = rollovers
            .iter()
            .filter(|(by, next, _)| !withdrawn(by) && !withdrawn(next))
            .map(|(_, _, jws)| jws.clone())
            .collect();
        let skip = published.len().saturating_sub(MAX_ROLLOVERS);
        jwks.rollovers = published[skip..].to_vec();
        let jwks_json =
            serde_json::to_string(&jwks).map_err(|e| KeyError::Corrupt(e.to_string()))?;
        Ok(KeyRing {
            current_kid,
            current,
            by_kid,
            jwks,
            jwks_json,
            nonce_keys: successor_keys.iter().map(nonce_key).collect(),
            successor_keys,
            rollovers_missing: unsigned_rollovers(rows, rollovers).next().is_some(),
        })
    }

    /// The private key of `kid`, if it is still stored (used to re-issue the
    /// exact same token inside the refresh retry window).
    pub fn signing_key(&self, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(kid)
    }

    /// Keys of DPoP nonces, newest (the one that makes them) first.
    pub fn nonce_keys(&self) -> &[[u8; 32]] {
        &self.nonce_keys
    }

    /// The refresh token that follows `previous`, derived with the newest
    /// refresh-successor key.
    pub fn successor(&self, previous: &str) -> String {
        secrets::successor_refresh_token(&self.successor_keys[0], previous)
    }

    /// Every token that may have followed `previous`: derived with each
    /// refresh-successor key, newest first, then as servers before keyed
    /// successors derived it. For recognizing a retried exchange.
    pub fn successor_candidates<'a>(
        &'a self,
        previous: &'a str,
    ) -> impl Iterator<Item = String> + 'a {
        self.successor_keys
            .iter()
            .map(move |key| secrets::successor_refresh_token(key, previous))
            .chain(std::iter::once(secrets::legacy_successor_refresh_token(
                previous,
            )))
    }
}

/// The DPoP nonce key derived from a refresh-successor key (another use of
/// the same secret, so another label).
fn nonce_key(successor_key: &[u8; 32]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(successor_key).expect("HMAC takes any key length");
    mac.update(b"license-server/dpop-nonce-key/v1");
    mac.finalize().into_bytes().into()
}

impl Keys {
    pub async fn load(store: &Store, now: i64) -> Result<Keys, KeyError> {
        // A database from before keyed successors gets its first key here,
        // and its keys their public halves.
        store
            .ensure_successor_key(&secrets::random_key(), now)
            .await?;
        for row in store.keys().await? {
            if let (None, Ok(seed)) = (
                &row.public_key,
                <[u8; 32]>::try_from(row.secret_key.as_slice()),
            ) {
                let public = SigningKey::from_bytes(&seed).verifying_key();
                store.set_public_key(&row.kid, public.as_bytes()).await?;
            }
        }
        let ring = load_ring(store, now).await?;
        Ok(Keys(Arc::new(RwLock::new(Arc::new(ring))), Arc::default()))
    }

    /// The `last_exp` to store for `kid` after signing a token expiring at
    /// `exp`, or `None` when the stored value already covers it. The stored
    /// value is always at least the latest `exp` signed.
    pub fn needs_last_exp(&self, kid: &str, exp: i64) -> Option<i64> {
        let mut written = self.1.lock().unwrap_or_else(|e| e.into_inner());
        match written.get(kid) {
            Some(&w) if w >= exp => None,
            _ => {
                let ahead = exp + LAST_EXP_STEP_SECS;
                written.insert(kid.to_owned(), ahead);
                Some(ahead)
            }
        }
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the keys (after `keys rotate` from another process).
    pub async fn reload(&self, store: &Store, now: i64) -> Result<(), KeyError> {
        let ring = load_ring(store, now).await?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        Ok(())
    }
}

async fn load_ring(store: &Store, now: i64) -> Result<KeyRing, KeyError> {
    KeyRing::from_rows(
        &store.keys().await?,
        &store.successor_keys().await?,
        &store.key_rollovers().await?,
        now,
    )
}

/// The rollovers to sign: each key (with its private key) followed by a key
/// (with its public key) that it does not vouch for yet, neither withdrawn.
fn unsigned_rollovers<'a>(
    rows: &'a [KeyRow],
    done: &'a [(String, String, String)],
) -> impl Iterator<Item = (&'a KeyRow, [u8; 32], &'a KeyRow, &'a [u8])> + 'a {
    rows.windows(2).filter_map(move |pair| {
        let (old, next) = (&pair[0], &pair[1]);
        if old.withdrawn_at.is_some() || next.withdrawn_at.is_some() {
            return None;
        }
        if done
            .iter()
            .any(|(by, to, _)| *by == old.kid && *to == next.kid)
        {
            return None;
        }
        let seed = <[u8; 32]>::try_from(old.secret_key.as_slice()).ok()?;
        Some((old, seed, next, next.public_key.as_deref()?))
    })
}

/// Signs the rollovers not signed yet: each key that was replaced vouches
/// for the key after it, while its private key is still there (withdrawn
/// keys vouch for nothing and nothing vouches for them). Returns how many
/// it signed.
pub async fn sign_rollovers(store: &Store, issuer: &str, now: i64) -> Result<usize, KeyError> {
    let rows = store.keys().await?;
    let done = store.key_rollovers().await?;
    let mut signed = 0;
    for (old, seed, next, public) in unsigned_rollovers(&rows, &done) {
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| KeyError::Corrupt(next.kid.clone()))?;
        let public =
            VerifyingKey::from_bytes(&public).map_err(|_| KeyError::Corrupt(next.kid.clone()))?;
        let next_jwk = Jwk::from_verifying_key(&next.kid, &public);
        let at = time::OffsetDateTime::from_unix_timestamp(now)
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let jws = sign_rollover(
            issuer,
            &old.kid,
            &SigningKey::from_bytes(&seed),
            &next_jwk,
            at,
        );
        store
            .add_key_rollover(&old.kid, &next.kid, &jws, now)
            .await?;
        signed += 1;
    }
    Ok(signed)
}

/// Creates a new refresh-successor key that derives successors from now on
/// (older keys stay, for retried exchanges). Returns its id.
pub async fn rotate_successor_key(store: &Store, now: i64) -> Result<i64, KeyError> {
    let id = store.add_successor_key(&secrets::random_key(), now).await?;
    crate::peers::announce_keys(store).await;
    Ok(id)
}

/// Creates a new signing key that signs from now on. Returns its key id.
pub async fn rotate(store: &Store, now: i64) -> Result<String, KeyError> {
    let key = SigningKey::generate(&mut OsRng);
    let public = key.verifying_key();
    let kid = key_id(&public);
    store
        .add_key(&kid, key.to_bytes().as_slice(), public.as_bytes(), now)
        .await?;
    crate::peers::announce_keys(store).await;
    Ok(kid)
}

/// What `keys withdraw` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    /// The key that signs from now on, when the withdrawn one was signing.
    pub new_current: Option<String>,
}

impl Withdrawn {
    /// What the audit log says of withdrawing `kid`.
    pub fn describe(&self, kid: &str) -> String {
        match &self.new_current {
            Some(new) => format!("withdrew signing key {kid}; new signing key {new}"),
            None => format!("withdrew signing key {kid}"),
        }
    }
}

/// Withdraws signing key `kid` (one believed compromised): it leaves the
/// JWKS and its private key is erased, so tokens and documents it signed no
/// longer verify, here at the next key reload (seconds) and in consoles at
/// their next contact; consoles then refresh and get tokens of the current
/// key. The current key is first replaced by a new one. `None` if there is
/// no such key, or it was withdrawn already.
pub async fn withdraw(store: &Store, kid: &str, now: i64) -> Result<Option<Withdrawn>, KeyError> {
    let rows = store.keys().await?;
    let Some(row) = rows
        .iter()
        .find(|r| r.kid == kid && r.withdrawn_at.is_none())
    else {
        return Ok(None);
    };
    let new_current = match row.retired_at {
        None => Some(rotate(store, now).await?),
        Some(_) => None,
    };
    store.withdraw_key(kid, now).await?;
    crate::peers::announce_keys(store).await;
    Ok(Some(Withdrawn { new_current }))
}

/// How long a retired key's private key is kept: a refresh retried within
/// this time gets byte-identical tokens re-signed with it (later retries get
/// the same claims signed by the current key).
pub const RETIRED_SECRET_KEPT_SECS: i64 = 3600;

/// Reloads keys and purges expired rows periodically, so a `keys rotate` run
/// against the same database takes effect without a restart.
pub fn spawn_reload(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.tick().await;
        for round in 1u64.. {
            tick.tick().await;
            let now = state.now();
            reload_keys(&state, now).await;
            if round % PURGE_EVERY_ROUNDS == 0 {
                if let Err(e) = state.db.purge_expired(now).await {
                    tracing::warn!(error = %e, "purging expired rows failed");
                }
                let before = now - RETIRED_SECRET_KEPT_SECS;
                if let Err(e) = state.db.erase_retired_secrets(before).await {
                    tracing::warn!(error = %e, "erasing retired signing keys failed");
                }
            }
        }
    })
}

/// Keys are read again this often (a `keys rotate` or `keys withdraw` from
/// another process takes effect within it).
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// Expired rows are purged every this many reloads (30 s).
const PURGE_EVERY_ROUNDS: u64 = 6;

/// Reads the keys again, and signs the rollovers a rotation calls for (only
/// then: a reload is three reads); when a key left the JWKS (withdrawn), the
/// caches of tokens verified with it are dropped, so they stop working at
/// once.
pub async fn reload_keys(state: &AppState, now: i64) {
    let before: Vec<String> = state
        .keys
        .ring()
        .jwks
        .keys
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    if let Err(e) = state.keys.reload(&state.db, now).await {
        tracing::warn!(error = %e, "reloading signing keys failed");
        return;
    }
    if state.keys.ring().rollovers_missing {
        if let Err(e) = sign_rollovers(&state.db, &state.config.issuer, now).await {
            tracing::warn!(error = %e, "signing key rollovers failed");
        } else if let Err(e) = state.keys.reload(&state.db, now).await {
            tracing::warn!(error = %e, "reloading signing keys failed");
            return;
        }
    }
    let ring = state.keys.ring();
    if before.iter().any(|kid| ring.jwks.find(kid).is_none()) {
        state.cache.chain_revoked();
    }
}
