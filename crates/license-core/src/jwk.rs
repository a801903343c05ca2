//! Public keys of the license server as a JWK Set (RFC 7517), Ed25519 only
//! (RFC 8037 "OKP" keys).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        if key.is_weak() {
            return Err(VerifyError::BadKey);
        }
        Ok(key)
    }
}

/// A JWK Set: the keys the license server publishes (`{"keys": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, current and recently retired.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The key with this `kid`, if the set has one.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// A set holding one key whose `kid` is its [`key_id`].
    pub fn single(key: &VerifyingKey) -> JwkSet {
        JwkSet {
            keys: vec![Jwk::from_verifying_key(&key_id(key), key)],
        }
    }
}

/// A JWK Set with every key decoded once, for verifying many tokens with
/// [`crate::token::verify_with`]. A key that does not decode is remembered as
/// such and reported as [`VerifyError::BadKey`] when a token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<(String, Result<VerifyingKey, VerifyError>)>,
}

impl KeyRing {
    /// Decode every key of `jwks`.
    pub fn new(jwks: &JwkSet) -> KeyRing {
        KeyRing {
            keys: jwks
                .keys
                .iter()
                .map(|k| (k.kid.clone(), k.verifying_key()))
                .collect(),
        }
    }

    /// The key with this `kid`; [`VerifyError::UnknownKey`] if there is none,
    /// [`VerifyError::BadKey`] if it did not decode.
    pub fn key(&self, kid: &str) -> Result<VerifyingKey, VerifyError> {
        match self.keys.iter().find(|(k, _)| k == kid) {
            Some((_, key)) => key.clone(),
            None => Err(VerifyError::UnknownKey {
                kid: kid.to_owned(),
            }),
        }
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
}
