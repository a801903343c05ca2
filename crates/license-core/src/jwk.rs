//! Public keys of the license server as a JWK Set (RFC 7517), Ed25519 only
//! (RFC 8037 "OKP" keys).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::OnceLock;

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::token::VerifyError;

/// One public key in JWK form (`kty: "OKP"`, `crv: "Ed25519"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type; must be `"OKP"`.
    pub kty: String,
    /// Curve; must be `"Ed25519"`.
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    /// Key id, matched against the `kid` of a token header.
    pub kid: String,
    /// Algorithm the key is meant for; when present it must be `"EdDSA"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use; when present it must be `"sig"`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The JWK of an Ed25519 public key, with `alg: "EdDSA"` and `use: "sig"`.
    ///
    /// ```
    /// use ed25519_dalek::SigningKey;
    /// use license_core::jwk::{key_id, Jwk};
    /// let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    /// let jwk = Jwk::from_verifying_key(&key_id(&key), &key);
    /// assert_eq!(jwk.verifying_key().unwrap(), key);
    /// ```
    pub fn from_verifying_key(kid: &str, key: &VerifyingKey) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: kid.to_owned(),
            alg: Some("EdDSA".to_owned()),
            use_: Some("sig".to_owned()),
        }
    }

    /// The Ed25519 key this JWK holds.
    ///
    /// Fails with [`VerifyError::BadKey`] for any other key type, curve,
    /// algorithm or use, for a malformed `x`, and for weak (small-order)
    /// keys, which would accept forged signatures.
    pub fn verifying_key(&self) -> Result<VerifyingKey, VerifyError> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(VerifyError::BadKey);
        }
        if self.alg.as_deref().is_some_and(|a| a != "EdDSA") {
            return Err(VerifyError::BadKey);
        }
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(VerifyError::BadKey);
        }
        // 32 bytes encode to 43 characters; checking first bounds the work.
        if self.x.len() != 43 {
            return Err(VerifyError::BadKey);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| VerifyError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| VerifyError::BadKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| VerifyError::BadKey)?;
        // A key with a small-order component admits more than one valid
        // signature per message; honest Ed25519 keys never have one. Refusing
        // such keys here is what lets verification use the cheaper
        // cofactorless check with no malleability (see `token::verify`).
        if key.is_weak() || !key.to_edwards().is_torsion_free() {
            return Err(VerifyError::BadKey);
        }
        Ok(key)
    }
}

/// A JWK Set: the keys the license server publishes (`{"keys": [...]}`).
///
/// Keys are decoded on first use and the decoded keys are kept with the set,
/// so verifying many tokens against one set decodes each key once. A cached
/// key is used only while its JWK is unchanged: editing `keys` afterwards is
/// safe, it only costs a fresh decode.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, current and recently retired.
    pub keys: Vec<Jwk>,
    /// Key rollovers the server publishes beside its keys (JWS, see
    /// `anchor::sign_rollover`): each retired key vouching for the key that
    /// followed it, so a console that was away through whole rotations
    /// follows the chain from the key it pinned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollovers: Vec<String>,
    #[serde(skip)]
    decoded: OnceLock<Vec<DecodedKey>>,
}

/// A JWK and what decoding it gave.
#[derive(Clone)]
struct DecodedKey {
    jwk: Jwk,
    key: Result<VerifyingKey, VerifyError>,
}

impl PartialEq for JwkSet {
    fn eq(&self, other: &JwkSet) -> bool {
        self.keys == other.keys
    }
}

impl Eq for JwkSet {}

impl std::fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwkSet").field("keys", &self.keys).finish()
    }
}

impl JwkSet {
    /// A set of these keys.
    pub fn new(keys: Vec<Jwk>) -> JwkSet {
        JwkSet {
            keys,
            rollovers: Vec::new(),
            decoded: OnceLock::new(),
        }
    }

    /// The decoded public key with this `kid`: [`VerifyError::UnknownKey`]
    /// if the set has none, [`VerifyError::BadKey`] if it is not a usable
    /// Ed25519 key. Decodes each key once (see the type's documentation).
    pub fn verifying_key(&self, kid: &str) -> Result<VerifyingKey, VerifyError> {
        let jwk = self.find(kid).ok_or_else(|| VerifyError::UnknownKey {
            kid: kid.to_owned(),
        })?;
        match self.decoded().iter().find(|d| d.jwk == *jwk) {
            Some(d) => d.key.clone(),
            None => jwk.verifying_key(),
        }
    }

    /// Every key, decoded on the first call.
    fn decoded(&self) -> &[DecodedKey] {
        self.decoded.get_or_init(|| {
            self.keys
                .iter()
                .map(|jwk| DecodedKey {
                    jwk: jwk.clone(),
                    key: jwk.verifying_key(),
                })
                .collect()
        })
    }

    /// The key with this `kid`, if the set has one.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// A set holding one key whose `kid` is its [`key_id`].
    pub fn single(key: &VerifyingKey) -> JwkSet {
        JwkSet::new(vec![Jwk::from_verifying_key(&key_id(key), key)])
    }
}

/// A JWK Set with every key decoded up front, for verifying many tokens with
/// [`crate::token::verify_with`]: the same keys a [`JwkSet`] decodes on
/// first use, decoded when the ring is made. A key that does not decode is
/// remembered as such and reported as [`VerifyError::BadKey`] when a token
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    jwks: JwkSet,
}

impl KeyRing {
    /// Decode every key of `jwks`.
    pub fn new(jwks: &JwkSet) -> KeyRing {
        let jwks = JwkSet::new(jwks.keys.clone());
        jwks.decoded();
        KeyRing { jwks }
    }

    /// The key with this `kid`; [`VerifyError::UnknownKey`] if there is none,
    /// [`VerifyError::BadKey`] if it did not decode.
    pub fn key(&self, kid: &str) -> Result<VerifyingKey, VerifyError> {
        self.jwks.verifying_key(kid)
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 key: base64url (no padding) of
/// the SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":"..."}`.
///
/// Stable for a key, so the server can use it as the `kid`.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
/// let kid = license_core::jwk::key_id(&key);
/// assert_eq!(kid.len(), 43);
/// assert_eq!(kid, license_core::jwk::key_id(&key));
/// ```
pub fn key_id(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    // Members in lexicographic order, no whitespace (RFC 7638 section 3).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn rfc_8037_thumbprint_example() {
        // RFC 8037 appendix A.3: the thumbprint of the A.2 public key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(key_id(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwk_round_trips_through_json() {
        let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
        let set = JwkSet::single(&key);
        let json = serde_json::to_string(&set).unwrap();
        assert!(json.contains(r#""use":"sig""#));
        let back: JwkSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        let kid = key_id(&key);
        assert_eq!(back.find(&kid).unwrap().verifying_key().unwrap(), key);
        assert!(back.find("other").is_none());
    }

    #[test]
    fn foreign_or_broken_keys_are_rejected() {
        let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
        let good = Jwk::from_verifying_key("k", &key);
        let cases = [
            Jwk {
                kty: "RSA".into(),
                ..good.clone()
            },
            Jwk {
                crv: "X25519".into(),
                ..good.clone()
            },
            Jwk {
                alg: Some("HS256".into()),
                ..good.clone()
            },
            Jwk {
                use_: Some("enc".into()),
                ..good.clone()
            },
            Jwk {
                x: "not base64!".into(),
                ..good.clone()
            },
            Jwk {
                x: URL_SAFE_NO_PAD.encode([0u8; 31]),
                ..good.clone()
            },
            // The identity point: a small-order ("weak") key.
            Jwk {
                x: URL_SAFE_NO_PAD.encode({
                    let mut b = [0u8; 32];
                    b[0] = 1;
                    b
                }),
                ..good.clone()
            },
        ];
        for jwk in cases {
            assert_eq!(jwk.verifying_key(), Err(VerifyError::BadKey), "{jwk:?}");
        }
        assert!(good.verifying_key().is_ok());
    }

    /// A good key plus a point of order 4 (the encoding with y = 0).
    fn torsioned(key: &VerifyingKey) -> [u8; 32] {
        let order_4 = VerifyingKey::from_bytes(&[0; 32]).unwrap().to_edwards();
        (key.to_edwards() + order_4).compress().to_bytes()
    }

    #[test]
    fn a_key_with_a_small_order_component_is_rejected() {
        let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
        let bytes = torsioned(&key);
        // Not small order itself, so only the torsion check can catch it.
        assert!(!VerifyingKey::from_bytes(&bytes).unwrap().is_weak());
        let jwk = Jwk {
            x: URL_SAFE_NO_PAD.encode(bytes),
            ..Jwk::from_verifying_key("k", &key)
        };
        assert_eq!(jwk.verifying_key(), Err(VerifyError::BadKey));
    }

    #[test]
    fn decoded_keys_follow_edits_of_the_set() {
        let (a, b) = (
            SigningKey::from_bytes(&[3; 32]).verifying_key(),
            SigningKey::from_bytes(&[4; 32]).verifying_key(),
        );
        let mut set = JwkSet::new(vec![Jwk::from_verifying_key("k", &a)]);
        assert_eq!(set.verifying_key("k"), Ok(a));
        // Same kid, other key: the cached decode of the old JWK is not used.
        set.keys[0] = Jwk::from_verifying_key("k", &b);
        assert_eq!(set.verifying_key("k"), Ok(b));
        set.keys[0].x = URL_SAFE_NO_PAD.encode(torsioned(&b));
        assert_eq!(set.verifying_key("k"), Err(VerifyError::BadKey));
        assert_eq!(
            set.verifying_key("other"),
            Err(VerifyError::UnknownKey {
                kid: "other".into()
            })
        );
        // Equality and cloning ignore the cache.
        let copy = set.clone();
        assert_eq!(copy, set);
        assert_eq!(copy, JwkSet::new(set.keys.clone()));
    }
}
