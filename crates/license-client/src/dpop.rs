//! DPoP (RFC 9449) on the client side: the install's key, the proofs made
//! with it, and the server's nonce.
//!
//! A client built with a [`DpopKey`] (see [`ClientConfig::dpop_key`]) sends
//! a proof on the device-code grant, every refresh, the license fetch and
//! revocation. The server then binds the token chain to the key (license
//! tokens carry `cnf.jkt`, the token type is `DPoP`), and a token copied off
//! the wire is useless without the private key. The proofs themselves are
//! made by [`license_core::dpop::proof`].
//!
//! The server may ask for a nonce (`use_dpop_nonce`, with a `DPoP-Nonce`
//! header): the client retries such a request once with a fresh proof
//! carrying it, and remembers the latest nonce any answer carried for its
//! next proofs. A client without a key keeps using Bearer tokens.
//!
//! [`ClientConfig::dpop_key`]: crate::ClientConfig::dpop_key

use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use license_core::dpop::{key_thumbprint, proof, ProofRequest};
use rand::RngCore as _;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::secret::Secret;

/// The request header a proof travels in.
pub const DPOP_HEADER: &str = "DPoP";
/// The response header a server's nonce comes in.
pub const DPOP_NONCE_HEADER: &str = "DPoP-Nonce";
/// The OAuth error of a refused proof.
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
/// The OAuth error of a server that wants a proof with its nonce.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// Longest nonce the client keeps; a longer one is ignored.
const MAX_NONCE_LEN: usize = 1024;

/// The install's DPoP key: an Ed25519 key pair. Cheap to clone.
///
/// `Debug` prints only the public key's thumbprint; the private key leaves
/// this type only through [`encoded_seed`](Self::encoded_seed), a
/// [`Secret`], for the keychain.
#[derive(Clone)]
pub struct DpopKey {
    key: SigningKey,
    thumbprint: String,
}

impl DpopKey {
    /// A new random key (from the operating system's random source).
    pub fn generate() -> DpopKey {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let key = DpopKey::from_seed(&seed);
        seed.fill(0);
        key
    }

    /// The key whose 32-byte Ed25519 seed (private key) is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> DpopKey {
        DpopKey::from(SigningKey::from_bytes(seed))
    }

    /// The key stored as [`encoded_seed`](Self::encoded_seed) wrote it
    /// (32 bytes, base64url without padding); `None` for anything else.
    pub fn from_encoded_seed(encoded: &str) -> Option<DpopKey> {
        let bytes = URL_SAFE_NO_PAD.decode(encoded.trim()).ok()?;
        let seed: [u8; 32] = bytes.try_into().ok()?;
        Some(DpopKey::from_seed(&seed))
    }

    /// The private key's 32-byte seed, base64url without padding: what the
    /// console keeps in the OS keychain, and nowhere else.
    pub fn encoded_seed(&self) -> Secret {
        Secret::new(URL_SAFE_NO_PAD.encode(self.key.to_bytes()))
    }

    /// The public key's JWK SHA-256 thumbprint (RFC 7638): the `jkt` the
    /// server binds tokens to.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// An activation request or deactivation signed with this key (see
    /// `license_core::offline`); the private key never leaves this type.
    pub fn sign_offline_request(&self, claims: &license_core::offline::RequestClaims) -> String {
        license_core::offline::sign_request(&self.key, claims)
    }
}

impl From<SigningKey> for DpopKey {
    fn from(key: SigningKey) -> DpopKey {
        let thumbprint = key_thumbprint(&key);
        DpopKey { key, thumbprint }
    }
}

impl PartialEq for DpopKey {
    fn eq(&self, other: &DpopKey) -> bool {
        // The same public key means the same private key (Ed25519).
        self.thumbprint == other.thumbprint
    }
}

impl Eq for DpopKey {}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The thumbprint a license token is bound to (its `cnf.jkt`), if any.
///
/// Reads the token without verifying it: the client verified it when it
/// arrived, and the server decides anyway; this only chooses how to present
/// it (`DPoP` or `Bearer`).
pub fn bound_thumbprint(license_token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Confirmation {
        jkt: String,
    }
    #[derive(Deserialize)]
    struct Claims {
        cnf: Option<Confirmation>,
    }
    let payload = license_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    claims.cnf.map(|c| c.jkt).filter(|jkt| !jkt.is_empty())
}

/// The client's key and the latest nonce its server sent. Shared by every
/// clone of a client, so the nonce is behind a lock.
pub(crate) struct Signer {
    key: DpopKey,
    nonce: Mutex<Option<String>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub(crate) fn new(key: DpopKey) -> Signer {
        Signer {
            key,
            nonce: Mutex::new(None),
        }
    }

    pub(crate) fn key(&self) -> &DpopKey {
        &self.key
    }

    /// A proof for `method uri` (with `ath` of `access_token` when given),
    /// dated `iat`, with a fresh random `jti` and the latest nonce.
    pub(crate) fn proof(
        &self,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        iat: i64,
    ) -> String {
        let request = ProofRequest {
            method,
            uri,
            access_token,
        };
        let nonce = self.nonce();
        proof(&self.key.key, &request, iat, &new_jti(), nonce.as_deref())
    }

    /// The latest nonce the server sent.
    pub(crate) fn nonce(&self) -> Option<String> {
        self.nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Keeps the answer's `DPoP-Nonce`, if it carries a usable one; returns
    /// whether it did.
    pub(crate) fn remember_nonce(&self, headers: &HeaderMap) -> bool {
        let Some(nonce) = nonce_of(headers) else {
            return false;
        };
        *self
            .nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(nonce);
        true
    }
}

/// Whether the answer carries a usable `DPoP-Nonce`.
pub(crate) fn has_nonce(headers: &HeaderMap) -> bool {
    nonce_of(headers).is_some()
}

/// A usable `DPoP-Nonce` header: visible ASCII without `"` and `\`
/// (RFC 9449 `NQCHAR`), not empty, not too long.
fn nonce_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(DPOP_NONCE_HEADER)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= MAX_NONCE_LEN
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    ok.then(|| value.to_owned())
}

/// 16 random bytes, base64url: unique per proof.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The DPoP error of an answer, if it has one: the OAuth `error` of a 400
/// (token and revocation endpoints) or the `error` of a 401's `DPoP`
/// challenge (resource endpoints).
pub(crate) fn dpop_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    if !status.is_client_error() {
        return None;
    }
    let from_body = serde_json::from_slice::<OAuthError>(body)
        .ok()
        .map(|e| e.error);
    let from_challenge = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            [INVALID_DPOP_PROOF, USE_DPOP_NONCE]
                .into_iter()
                .find(|e| v.contains(&format!("error=\"{e}\"")))
                .map(str::to_owned)
        });
    [from_body, from_challenge]
        .into_iter()
        .flatten()
        .find(|e| e == INVALID_DPOP_PROOF || e == USE_DPOP_NONCE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use license_core::dpop::{verify_proof, ProofRequest};
    use reqwest::header::HeaderValue;

    #[test]
    fn a_key_round_trips_through_its_encoded_seed_and_never_prints_it() {
        let key = DpopKey::generate();
        let seed = key.encoded_seed();
        let again = DpopKey::from_encoded_seed(seed.expose()).unwrap();
        assert_eq!(again, key);
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert_ne!(DpopKey::generate(), key);
        let debug = format!("{key:?} {:?}", Signer::new(key.clone()));
        assert!(!debug.contains(seed.expose()), "{debug}");
        assert!(debug.contains(key.thumbprint()), "{debug}");
        for bad in ["", "not base64!", "AAAA", &"A".repeat(44)] {
            assert!(DpopKey::from_encoded_seed(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn proofs_verify_carry_the_nonce_and_have_unique_jtis() {
        let signer = Signer::new(DpopKey::from_seed(&[7; 32]));
        let uri = "https://l.example/api/v1/license?x=1";
        let request = ProofRequest {
            method: "GET",
            uri,
            access_token: Some("tok"),
        };
        let first = signer.proof("GET", uri, Some("tok"), 1000);
        let v = verify_proof(&first, &request).unwrap();
        assert_eq!(v.jkt, signer.key().thumbprint());
        assert_eq!(v.claims.htu, "https://l.example/api/v1/license");
        assert_eq!(v.claims.iat, 1000);
        assert_eq!(v.claims.nonce, None);
        assert!(v.claims.jti.len() >= 22);

        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE_HEADER, HeaderValue::from_static("n-1"));
        assert!(signer.remember_nonce(&headers));
        let second = verify_proof(&signer.proof("GET", uri, Some("tok"), 1000), &request).unwrap();
        assert_eq!(second.claims.nonce.as_deref(), Some("n-1"));
        assert_ne!(second.claims.jti, v.claims.jti);

        // Unusable nonces are ignored; the last good one stays.
        for bad in ["", "a\"b", "a b"] {
            let mut headers = HeaderMap::new();
            headers.insert(DPOP_NONCE_HEADER, HeaderValue::from_str(bad).unwrap());
            assert!(!signer.remember_nonce(&headers), "{bad:?}");
        }
        assert!(!signer.remember_nonce(&HeaderMap::new()));
        assert_eq!(signer.nonce().as_deref(), Some("n-1"));
    }

    #[test]
    fn the_bound_thumbprint_is_read_from_cnf() {
        let token = |claims: serde_json::Value| {
            format!(
                "e30.{}.sig",
                URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
            )
        };
        let bound = token(serde_json::json!({"sub": "s", "cnf": {"jkt": "abc"}}));
        assert_eq!(bound_thumbprint(&bound).as_deref(), Some("abc"));
        let bearer = token(serde_json::json!({"sub": "s"}));
        assert_eq!(bound_thumbprint(&bearer), None);
        assert_eq!(bound_thumbprint("not a jwt"), None);
        assert_eq!(bound_thumbprint("a.!!!.c"), None);
    }

    #[test]
    fn dpop_errors_come_from_the_body_or_the_challenge() {
        let none = HeaderMap::new();
        let body = br#"{"error":"use_dpop_nonce"}"#;
        assert_eq!(
            dpop_error(StatusCode::BAD_REQUEST, &none, body).as_deref(),
            Some(USE_DPOP_NONCE)
        );
        let body = br#"{"error":"invalid_grant"}"#;
        assert_eq!(dpop_error(StatusCode::BAD_REQUEST, &none, body), None);
        let mut challenge = HeaderMap::new();
        challenge.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"DPoP error="invalid_dpop_proof", algs="EdDSA""#),
        );
        assert_eq!(
            dpop_error(StatusCode::UNAUTHORIZED, &challenge, b"").as_deref(),
            Some(INVALID_DPOP_PROOF)
        );
        assert_eq!(dpop_error(StatusCode::OK, &challenge, b""), None);
    }
}
