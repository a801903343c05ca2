//! The trust anchor: the license server's keys as a console pinned them,
//! and the one rule by which a pinned set may change.
//!
//! A console pins the server's JWK Set when an admin authorizes it, and
//! keeps it where the customer's files cannot change it (the OS keychain);
//! the cached license document is verified against it and nothing else.
//! Later key sets come from the license server over the verified connection
//! and replace the anchor only through [`accept_key_set`]: a set that keeps
//! at least one trusted key (the server rotates by publishing the new key
//! beside the old one for a token lifetime) is taken; a set that drops every
//! trusted key is refused unless a [key rollover](sign_rollover) signed by a
//! trusted key vouches for one of its keys. A file edited to hold a key of
//! the attacker's own never gets there: the anchor is not in the file.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use license_core::anchor::{accept_key_set, sign_rollover};
//! use license_core::jwk::{key_id, Jwk, JwkSet};
//! use time::macros::datetime;
//!
//! let issuer = "https://licenses.example.com";
//! let now = datetime!(2030-01-01 0:00 UTC);
//! let old = SigningKey::from_bytes(&[1; 32]);
//! let new = SigningKey::from_bytes(&[2; 32]);
//! let old_kid = key_id(&old.verifying_key());
//! let new_jwk = Jwk::from_verifying_key(&key_id(&new.verifying_key()), &new.verifying_key());
//! let pinned = JwkSet::single(&old.verifying_key());
//! let offered = JwkSet::new(vec![new_jwk.clone()]);
//!
//! // Without a rollover, a set that drops every pinned key is refused.
//! assert!(accept_key_set(issuer, &pinned, &offered, &[], now).is_err());
//! // With one signed by the pinned key, the new set is the anchor.
//! let rollover = sign_rollover(issuer, &old_kid, &old, &new_jwk, now);
//! let anchor = accept_key_set(issuer, &pinned, &offered, &[rollover], now).unwrap();
//! assert_eq!(anchor.keys, vec![new_jwk]);
//! ```

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::jwk::{key_id, Jwk, JwkSet};
use crate::token::{encode, registered_claims, verify, Expectation, VerifyError};

/// Header `typ` of a key rollover.
pub const KEY_ROLLOVER_TYP: &str = "key-rollover+jwt";
/// `aud` of a key rollover: no token of another kind can pass for one.
pub const KEY_ROLLOVER_AUD: &str = "license-server/key-rollover";
/// At most this many rollovers are looked at per key set.
pub const MAX_ROLLOVERS: usize = 64;
/// A rollover vouches for its key for this long (the server publishes its
/// rollovers for as long as consoles may come back).
const ROLLOVER_LIFETIME: time::Duration = time::Duration::days(3650);

/// What a key rollover says: "`next` is a key of `iss` too", signed by a key
/// of `iss` already trusted (named by the JWS header's `kid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloverClaims {
    /// The server.
    pub iss: String,
    /// Always [`KEY_ROLLOVER_AUD`].
    pub aud: String,
    /// When it was signed, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// The key vouched for.
    pub next: Jwk,
}

registered_claims!(RolloverClaims);

/// Signs a rollover: the key `old_kid`/`old` vouches for `next`.
pub fn sign_rollover(
    issuer: &str,
    old_kid: &str,
    old: &SigningKey,
    next: &Jwk,
    now: OffsetDateTime,
) -> String {
    let at = now.unix_timestamp();
    let claims = RolloverClaims {
        iss: issuer.to_owned(),
        aud: KEY_ROLLOVER_AUD.to_owned(),
        iat: at,
        nbf: at,
        exp: (now + ROLLOVER_LIFETIME).unix_timestamp(),
        next: next.clone(),
    };
    encode(&claims, KEY_ROLLOVER_TYP, old_kid, old)
}

/// Why a key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// No offered key is pinned or vouched for by a rollover of a pinned key.
    #[error(
        "the license server's keys ({offered}) include none of the keys this console trusts, \
         and no key rollover signed by a trusted key vouches for them"
    )]
    NoTrustedKey {
        /// The offered key ids, comma-separated.
        offered: String,
    },
}

/// The new anchor from an `offered` key set and the server's `rollovers`,
/// given the `pinned` one: the offered set, when it keeps a key that is
/// pinned or vouched for, through a chain of rollovers, by a pinned key.
/// Keys the server dropped leave the anchor with it.
pub fn accept_key_set(
    issuer: &str,
    pinned: &JwkSet,
    offered: &JwkSet,
    rollovers: &[String],
    now: OffsetDateTime,
) -> Result<JwkSet, AnchorError> {
    let keeps = |trusted: &[Jwk]| {
        offered
            .keys
            .iter()
            .any(|k| trusted.iter().any(|t| same_key(t, k)))
    };
    let mut trusted: Vec<Jwk> = pinned.keys.clone();
    if !keeps(&trusted) {
        trusted = vouched_closure(issuer, trusted, rollovers, now);
    }
    if !keeps(&trusted) {
        return Err(no_trusted_key(offered));
    }
    Ok(JwkSet::new(offered.keys.clone()))
}

/// The `offered` keys this side may verify signatures with: those pinned,
/// or vouched for through a chain of `rollovers` from a pinned key; an
/// error when there is none. Unlike [`accept_key_set`] (for sets fetched
/// from the server itself), a key merely listed beside a trusted one counts
/// for nothing: this is the check for key sets that come in a file.
pub fn vouched_keys(
    issuer: &str,
    pinned: &JwkSet,
    offered: &JwkSet,
    rollovers: &[String],
    now: OffsetDateTime,
) -> Result<JwkSet, AnchorError> {
    let trusted = vouched_closure(issuer, pinned.keys.clone(), rollovers, now);
    let keys: Vec<Jwk> = offered
        .keys
        .iter()
        .filter(|k| trusted.iter().any(|t| same_key(t, k)))
        .cloned()
        .collect();
    if keys.is_empty() {
        return Err(no_trusted_key(offered));
    }
    Ok(JwkSet::new(keys))
}

/// `trusted` grown by every key a rollover signed by a trusted key vouches
/// for, through chains, at most one pass per rollover.
fn vouched_closure(
    issuer: &str,
    mut trusted: Vec<Jwk>,
    rollovers: &[String],
    now: OffsetDateTime,
) -> Vec<Jwk> {
    let rollovers = &rollovers[..rollovers.len().min(MAX_ROLLOVERS)];
    let mut used = vec![false; rollovers.len()];
    loop {
        let mut grew = false;
        for (i, jwt) in rollovers.iter().enumerate() {
            if used[i] {
                continue;
            }
            if let Ok(next) = vouched(issuer, &trusted, jwt, now) {
                used[i] = true;
                if !trusted.iter().any(|k| same_key(k, &next)) {
                    trusted.push(next);
                    grew = true;
                }
            }
        }
        if !grew {
            return trusted;
        }
    }
}

fn no_trusted_key(offered: &JwkSet) -> AnchorError {
    AnchorError::NoTrustedKey {
        offered: offered
            .keys
            .iter()
            .map(|k| k.kid.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The key a rollover vouches for, if a trusted key signed it and the key
/// is a usable Ed25519 key whose `kid` is its thumbprint.
fn vouched(
    issuer: &str,
    trusted: &[Jwk],
    jwt: &str,
    now: OffsetDateTime,
) -> Result<Jwk, VerifyError> {
    let expect = Expectation {
        issuer: issuer.to_owned(),
        audience: KEY_ROLLOVER_AUD.to_owned(),
        typ: KEY_ROLLOVER_TYP,
        leeway_secs: 60,
    };
    let claims: RolloverClaims = verify(jwt, &JwkSet::new(trusted.to_vec()), &expect, now)?;
    let key = claims.next.verifying_key()?;
    if key_id(&key) != claims.next.kid {
        return Err(VerifyError::BadKey);
    }
    Ok(claims.next)
}

/// Two JWKs are the same key when they name and hold the same key.
fn same_key(a: &Jwk, b: &Jwk) -> bool {
    a.kid == b.kid && a.x == b.x && a.kty == b.kty && a.crv == b.crv
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const ISS: &str = "https://licenses.example.com";
    const NOW: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

    fn key(n: u8) -> (SigningKey, Jwk) {
        let sk = SigningKey::from_bytes(&[n; 32]);
        let vk = sk.verifying_key();
        let jwk = Jwk::from_verifying_key(&key_id(&vk), &vk);
        (sk, jwk)
    }

    fn set(keys: &[&Jwk]) -> JwkSet {
        JwkSet::new(keys.iter().map(|k| (*k).clone()).collect())
    }

    #[test]
    fn a_set_keeping_a_pinned_key_is_the_new_anchor() {
        let (_, a) = key(1);
        let (_, b) = key(2);
        // Rotation: the new key published beside the old one...
        let got = accept_key_set(ISS, &set(&[&a]), &set(&[&a, &b]), &[], NOW).unwrap();
        assert_eq!(got, set(&[&a, &b]));
        // ...then the old one retired.
        let got = accept_key_set(ISS, &got, &set(&[&b]), &[], NOW).unwrap();
        assert_eq!(got, set(&[&b]));
    }

    #[test]
    fn a_set_of_strangers_is_refused() {
        let (_, a) = key(1);
        let (evil_sk, evil) = key(9);
        // A rollover signed by the stranger itself vouches for nothing.
        let self_signed = sign_rollover(ISS, &evil.kid, &evil_sk, &evil, NOW);
        let e = accept_key_set(ISS, &set(&[&a]), &set(&[&evil]), &[self_signed], NOW).unwrap_err();
        assert!(matches!(e, AnchorError::NoTrustedKey { .. }));
    }

    #[test]
    fn a_chain_of_rollovers_is_followed_in_any_order() {
        let (a_sk, a) = key(1);
        let (b_sk, b) = key(2);
        let (_, c) = key(3);
        let ab = sign_rollover(ISS, &a.kid, &a_sk, &b, NOW);
        let bc = sign_rollover(ISS, &b.kid, &b_sk, &c, NOW);
        let got = accept_key_set(ISS, &set(&[&a]), &set(&[&c]), &[bc, ab], NOW).unwrap();
        assert_eq!(got, set(&[&c]));
    }

    #[test]
    fn rollovers_of_another_issuer_or_kind_count_for_nothing() {
        let (a_sk, a) = key(1);
        let (_, b) = key(2);
        let other = sign_rollover("https://other.example", &a.kid, &a_sk, &b, NOW);
        let license_token = encode(
            &serde_json::json!({"next": b}),
            "license+jwt",
            &a.kid,
            &a_sk,
        );
        for jwt in [other, license_token] {
            assert!(accept_key_set(ISS, &set(&[&a]), &set(&[&b]), &[jwt], NOW).is_err());
        }
    }

    #[test]
    fn a_rollover_whose_kid_is_not_the_keys_thumbprint_is_refused() {
        let (a_sk, a) = key(1);
        let (_, mut b) = key(2);
        b.kid = a.kid.clone() + "x";
        let jwt = sign_rollover(ISS, &a.kid, &a_sk, &b, NOW);
        assert!(accept_key_set(ISS, &set(&[&a]), &set(&[&b]), &[jwt], NOW).is_err());
    }
}
