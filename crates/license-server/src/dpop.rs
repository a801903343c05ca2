//! DPoP (RFC 9449) on the server: the checks that need state. The proof's
//! form, key, signature, method, URI and access-token hash are checked by
//! `license_core::dpop::verify_proof`; here: the server's nonces, the
//! freshness of `iat`, and the replay cache of `jti`s.
//!
//! Nonces are stateless: the minute they were made and an HMAC of it with a
//! key every replica derives from the newest refresh-successor key
//! ([`KeyRing::nonce_keys`]; older keys' nonces are still taken), valid for
//! [`NONCE_MINUTES`]. A proof with a valid
//! nonce may carry any `iat` (a console whose clock is wrong still works);
//! one without a nonce must be within `IAT_WINDOW_SECS` of the server's time,
//! or the answer asks for a nonce (`use_dpop_nonce`). With `--dpop-nonce`
//! every proof needs one.
//!
//! The replay cache lives in this process and, when replicas share a
//! PostgreSQL database, in the database too (`dpop_proofs`): a proof taken
//! by one replica is refused by every other.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use license_core::dpop::{
    iat_acceptable, verify_proof, ProofRequest, VerifiedProof, IAT_WINDOW_SECS,
};
use sha2::Sha256;

use crate::config::Config;
use crate::error::Error;
use crate::keys::KeyRing;
use crate::store::{Backend, Store};

/// How long a nonce is accepted, in minutes (it is made for the minute).
pub const NONCE_MINUTES: i64 = 5;
/// At most this many proofs are remembered; past it, proofs are refused
/// until old ones expire (bounded memory).
const MAX_REMEMBERED: usize = 200_000;

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub method: &'static str,
    /// The path on this server (the proof names the issuer's URL of it).
    pub path: &'a str,
    /// The access token the request carries, whose hash the proof names.
    pub access_token: Option<&'a str>,
    pub endpoint: Endpoint,
}

/// Where a proof is checked: the token endpoint answers 400, a resource
/// (the license endpoint) 401 with a `DPoP` challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Resource,
}

#[derive(Default)]
pub struct DpopGuard {
    /// `jkt:jti` of each proof taken, with when it may be forgotten.
    seen: Mutex<HashMap<String, i64>>,
    /// The database replicas share (PostgreSQL), which remembers proofs for
    /// all of them.
    shared: Option<Store>,
}

/// The nonce's MAC for `minute` under `key`.
fn mac(key: &[u8; 32], minute: i64) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"license-server/dpop-nonce/v1\0");
    mac.update(&minute.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// A fresh nonce for `now`, made with the newest of `keys`.
fn nonce_with(keys: &[[u8; 32]], now: i64) -> String {
    let minute = now.div_euclid(60);
    let mut bytes = minute.to_be_bytes().to_vec();
    bytes.extend_from_slice(&mac(&keys[0], minute));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `nonce` was made by one of `keys` within [`NONCE_MINUTES`].
fn nonce_valid_with(keys: &[[u8; 32]], nonce: &str, now: i64) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce.as_bytes()) else {
        return false;
    };
    if bytes.len() != 24 {
        return false;
    }
    let minute = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let current = now.div_euclid(60);
    (current - NONCE_MINUTES..=current).contains(&minute)
        && keys
            .iter()
            .any(|key| crate::secrets::constant_time_eq(&bytes[8..], &mac(key, minute)))
}

impl DpopGuard {
    pub fn new(db: &Store) -> DpopGuard {
        DpopGuard {
            seen: Mutex::default(),
            shared: (db.backend() == Backend::Postgres).then(|| db.clone()),
        }
    }

    /// A fresh nonce for `now`.
    pub fn nonce(ring: &KeyRing, now: i64) -> String {
        nonce_with(ring.nonce_keys(), now)
    }

    /// Remembers a proof; `false` if it was taken before, here or (through
    /// the shared database) on another replica.
    async fn first_use(&self, jkt: &str, jti: &str, now: i64) -> Result<bool, Error> {
        let key = format!("{jkt}:{jti}");
        // Long enough to outlive both the iat window and a nonce.
        let keep = (2 * IAT_WINDOW_SECS).max(60 * (NONCE_MINUTES + 1));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= MAX_REMEMBERED {
                seen.retain(|_, forget_at| *forget_at > now);
                if seen.len() >= MAX_REMEMBERED {
                    return Err(Error::TooManyRequests(60));
                }
            }
            if seen.get(&key).is_some_and(|forget_at| *forget_at > now) {
                return Ok(false);
            }
            seen.insert(key.clone(), now + keep);
        }
        match &self.shared {
            Some(db) => Ok(db.take_dpop_proof(&key, now, now + keep).await?),
            None => Ok(true),
        }
    }

    /// The request's DPoP proof, checked, if it has one: for the request
    /// `expected` describes, at the server's `now`.
    pub async fn check(
        &self,
        ring: &KeyRing,
        config: &Config,
        headers: &HeaderMap,
        expected: Expected<'_>,
        now: i64,
    ) -> Result<Option<VerifiedProof>, Error> {
        let Expected {
            method,
            path,
            access_token,
            endpoint,
        } = expected;
        let invalid = |message: String| Error::InvalidDpopProof { message, endpoint };
        let mut values = headers.get_all("dpop").iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid("more than one DPoP header".into()));
        }
        let proof = value
            .to_str()
            .map_err(|_| invalid("the DPoP header is not ASCII".into()))?;
        let uri = config.url(path);
        let request = ProofRequest {
            method,
            uri: &uri,
            access_token,
        };
        let verified = verify_proof(proof, &request).map_err(|e| invalid(e.to_string()))?;
        let fresh = match verified.claims.nonce.as_deref() {
            Some(nonce) => nonce_valid_with(ring.nonce_keys(), nonce, now),
            None => !config.dpop_nonce && iat_acceptable(verified.claims.iat, now),
        };
        if !fresh {
            return Err(Error::UseDpopNonce {
                nonce: Self::nonce(ring, now),
                endpoint,
            });
        }
        if !self
            .first_use(&verified.jkt, &verified.claims.jti, now)
            .await?
        {
            return Err(invalid("this DPoP proof was used before".into()));
        }
        Ok(Some(verified))
    }
}

/// Whether a chain bound to `bound` (or not bound) may be used with
/// `proof`: a bound chain only with a proof by its key; an unbound one with
/// or without a proof, unless the server requires DPoP.
pub fn check_binding(
    bound: Option<&str>,
    proof: Option<&VerifiedProof>,
    require_dpop: bool,
    endpoint: Endpoint,
) -> Result<(), Error> {
    let invalid = |message: &str| Error::InvalidDpopProof {
        message: message.to_owned(),
        endpoint,
    };
    match (bound, proof) {
        (Some(jkt), Some(p)) if p.jkt == jkt => Ok(()),
        (Some(_), Some(_)) => Err(invalid("the token is bound to another DPoP key")),
        (Some(_), None) => Err(invalid(
            "the token is bound to a DPoP key: send a DPoP proof",
        )),
        (None, None) if require_dpop => Err(invalid("this server requires a DPoP proof")),
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_last_five_minutes_and_are_this_servers() {
        let keys = [[1u8; 32], [2u8; 32]];
        let n = nonce_with(&keys, 6000);
        assert!(nonce_valid_with(&keys, &n, 6000));
        assert!(nonce_valid_with(&keys, &n, 6000 + 5 * 60 + 59));
        assert!(!nonce_valid_with(&keys, &n, 6000 + 6 * 60));
        assert!(
            !nonce_valid_with(&keys, &n, 5999 - 60),
            "not before its minute"
        );
        assert!(!nonce_valid_with(&[[3u8; 32]], &n, 6000), "another key");
        assert!(
            nonce_valid_with(&[[3u8; 32], [1u8; 32]], &n, 6000),
            "an older key still takes its nonces"
        );
        assert!(!nonce_valid_with(&keys, "garbage", 6000));
    }

    #[tokio::test]
    async fn a_proof_is_taken_once() {
        let guard = DpopGuard::default();
        assert!(guard.first_use("k", "j", 100).await.unwrap());
        assert!(!guard.first_use("k", "j", 101).await.unwrap());
        assert!(guard.first_use("k", "j2", 101).await.unwrap());
        assert!(guard.first_use("k2", "j", 101).await.unwrap());
    }
}
