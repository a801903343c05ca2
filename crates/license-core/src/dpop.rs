//! DPoP (RFC 9449): proofs of possession of the console's key, which bind
//! its tokens to the install. A token copied off the wire (a TLS-inspecting
//! proxy, a log) is useless without the private key, which stays in the
//! console's OS keychain.
//!
//! Pure: [`proof`] makes a proof, [`verify_proof`] checks its form, key,
//! signature, method, URI and access-token hash; the server adds what needs
//! state (its clock, its nonces, the replay cache of `jti`s). Only Ed25519
//! (`EdDSA`) keys are accepted, as for every other signature here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jwk::Jwk;

/// The JWS `typ` of a DPoP proof.
pub const DPOP_TYP: &str = "dpop+jwt";
/// The algorithms a proof may use (the server's metadata publishes these):
/// Ed25519 under its RFC 8037 name and its RFC 9864 fully-specified name
/// (openid-client 6 writes the latter).
pub const SIGNING_ALGS: &[&str] = &["EdDSA", "Ed25519"];
/// How far a proof's `iat` may be from the server's time, either way, when
/// the proof carries no server nonce.
pub const IAT_WINDOW_SECS: i64 = 300;
/// Proofs longer than this are refused before decoding.
pub const MAX_PROOF_LEN: usize = 4096;

/// Why a proof was refused. Each is `invalid_dpop_proof` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Not a compact JWS with the claims a proof has.
    #[error("malformed DPoP proof: {0}")]
    Malformed(String),
    /// The header's `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's type must be dpop+jwt")]
    WrongType,
    /// Signed with another algorithm than EdDSA.
    #[error("the DPoP proof must be signed with EdDSA (Ed25519)")]
    UnsupportedAlgorithm,
    /// The header's `jwk` is no public Ed25519 key.
    #[error("the DPoP proof's key is not a public Ed25519 JWK")]
    BadKey,
    /// The signature is not the header key's.
    #[error("the DPoP proof's signature does not verify")]
    BadSignature,
    /// Made for another method or URI.
    #[error("the DPoP proof is for {found}, not this request")]
    WrongRequest {
        /// The proof's `htm htu`, shortened.
        found: String,
    },
    /// Missing or wrong `ath` on a request with an access token.
    #[error("the DPoP proof does not carry the access token's hash (ath)")]
    WrongAccessToken,
}

/// The claims of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofClaims {
    /// Unique per proof; the server refuses a `jti` seen before.
    pub jti: String,
    /// The HTTP method.
    pub htm: String,
    /// The request URI without query and fragment.
    pub htu: String,
    /// When the proof was made, unix seconds (the client's clock).
    pub iat: i64,
    /// The access token's hash, on requests that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    /// The server's latest `DPoP-Nonce`, when it asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ProofHeader {
    typ: String,
    alg: String,
    jwk: PublicJwk,
}

/// A public key in a proof's header: no `kid`, and never a private part.
#[derive(Serialize, Deserialize)]
struct PublicJwk {
    kty: String,
    crv: String,
    x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
}

/// What the server learns from a proof that passed [`verify_proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The key's JWK SHA-256 thumbprint (RFC 7638): what tokens are bound to.
    pub jkt: String,
    /// The proof's claims.
    pub claims: ProofClaims,
}

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The URI as the server is reached (its issuer plus the path).
    pub uri: &'a str,
    /// The access token the request carries, if any.
    pub access_token: Option<&'a str>,
}

/// The JWK SHA-256 thumbprint (RFC 7638) of an Ed25519 public key given as
/// its base64url `x`.
pub fn thumbprint(x: &str) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The thumbprint of a signing key's public half.
pub fn key_thumbprint(key: &SigningKey) -> String {
    thumbprint(&URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()))
}

/// `ath`: the base64url SHA-256 of an access token.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The URI a proof names for a request to `uri`: without query or fragment.
pub fn htu_of(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    &uri[..end]
}

/// Makes a proof for `method uri` (with the hash of `access_token`, and
/// `nonce`, when given), signed with `key`, dated `iat`, unique by `jti`.
pub fn proof(
    key: &SigningKey,
    request: &ProofRequest<'_>,
    iat: i64,
    jti: &str,
    nonce: Option<&str>,
) -> String {
    let claims = ProofClaims {
        jti: jti.to_owned(),
        htm: request.method.to_owned(),
        htu: htu_of(request.uri).to_owned(),
        iat,
        ath: request.access_token.map(access_token_hash),
        nonce: nonce.map(str::to_owned),
    };
    sign_self(key, DPOP_TYP, &claims)
}

/// A compact JWS of `claims` signed by `key`, whose public half rides in the
/// header (`jwk`): a proof, or a file the console signs (an activation
/// request, a deactivation).
pub(crate) fn sign_self<C: Serialize>(key: &SigningKey, typ: &str, claims: &C) -> String {
    let header = ProofHeader {
        typ: typ.to_owned(),
        alg: "EdDSA".to_owned(),
        jwk: PublicJwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            d: None,
        },
    };
    let header = serde_json::to_vec(&header).expect("a header serializes");
    let claims = serde_json::to_vec(claims).expect("claims serialize");
    let mut jws = URL_SAFE_NO_PAD.encode(header);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut jws);
    let signature = key.sign(jws.as_bytes());
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
    jws
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, DpopError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopError::Malformed(format!("{what} is not base64url")))
}

/// Checks a proof's form, key, signature, method, URI and (on requests with
/// an access token) `ath`. Time, nonce and replay are the caller's: see
/// [`iat_acceptable`].
pub fn verify_proof(proof: &str, request: &ProofRequest<'_>) -> Result<VerifiedProof, DpopError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed("longer than 4096 bytes".into()));
    }
    let (claims, jkt) = verify_self::<ProofClaims>(proof, DPOP_TYP)?;
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(DpopError::Malformed(
            "jti must be 1 to 256 characters".into(),
        ));
    }
    if !claims.htm.eq_ignore_ascii_case(request.method) || claims.htu != htu_of(request.uri) {
        return Err(DpopError::WrongRequest {
            found: format!("{} {}", claims.htm, claims.htu)
                .chars()
                .take(200)
                .collect(),
        });
    }
    match (request.access_token, &claims.ath) {
        (Some(token), Some(ath)) if *ath == access_token_hash(token) => {}
        (None, _) => {}
        _ => return Err(DpopError::WrongAccessToken),
    }
    Ok(VerifiedProof { jkt, claims })
}

/// Checks a JWS made by [`sign_self`]: its form, `typ`, algorithm, header
/// key and signature; its claims and the key's thumbprint.
pub(crate) fn verify_self<C: serde::de::DeserializeOwned>(
    jws: &str,
    typ: &str,
) -> Result<(C, String), DpopError> {
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let header: serde_json::Value = serde_json::from_slice(&b64(h, "header")?)
        .map_err(|e| DpopError::Malformed(format!("header: {e}")))?;
    if header.get("crit").is_some() {
        return Err(DpopError::Malformed("unsupported crit header".into()));
    }
    let header: ProofHeader =
        serde_json::from_value(header).map_err(|e| DpopError::Malformed(format!("header: {e}")))?;
    if header.typ != typ {
        return Err(DpopError::WrongType);
    }
    if !SIGNING_ALGS.contains(&header.alg.as_str()) {
        return Err(DpopError::UnsupportedAlgorithm);
    }
    if header.jwk.d.is_some() {
        return Err(DpopError::BadKey);
    }
    let jwk = Jwk {
        kty: header.jwk.kty,
        crv: header.jwk.crv,
        x: header.jwk.x,
        kid: String::new(),
        alg: None,
        use_: None,
    };
    let key = jwk.verifying_key().map_err(|_| DpopError::BadKey)?;
    // A signature of the wrong length was cut short, not forged.
    let signature: [u8; 64] = b64(s, "signature")?
        .try_into()
        .map_err(|_| DpopError::Malformed("the signature is incomplete".into()))?;
    let signed = &jws[..h.len() + 1 + p.len()];
    key.verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| DpopError::BadSignature)?;
    let claims: C = serde_json::from_slice(&b64(p, "claims")?)
        .map_err(|e| DpopError::Malformed(format!("claims: {e}")))?;
    Ok((claims, thumbprint(&jwk.x)))
}

/// Whether a proof made at `iat` (the client's clock) may be taken at the
/// server's `now` without a nonce: within [`IAT_WINDOW_SECS`] either way.
pub fn iat_acceptable(iat: i64, now: i64) -> bool {
    (iat - now).abs() <= IAT_WINDOW_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "https://license.example/oauth/token";

    fn request(access_token: Option<&str>) -> ProofRequest<'_> {
        ProofRequest {
            method: "POST",
            uri: URI,
            access_token,
        }
    }

    #[test]
    fn a_proof_verifies_and_names_its_key() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let p = proof(&key, &request(None), 1000, "j1", Some("n1"));
        let v = verify_proof(&p, &request(None)).unwrap();
        assert_eq!(v.jkt, key_thumbprint(&key));
        assert_eq!(v.claims.nonce.as_deref(), Some("n1"));
        assert_eq!(v.claims.iat, 1000);
    }

    #[test]
    fn rfc7638_thumbprint_of_the_rfc8037_example_key() {
        // RFC 8037 appendix A.3.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        assert_eq!(thumbprint(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn a_proof_for_another_request_is_refused() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let p = proof(&key, &request(None), 1000, "j1", None);
        let other = ProofRequest {
            method: "GET",
            uri: URI,
            access_token: None,
        };
        assert!(matches!(
            verify_proof(&p, &other),
            Err(DpopError::WrongRequest { .. })
        ));
        let other = ProofRequest {
            method: "POST",
            uri: "https://evil.example/oauth/token",
            access_token: None,
        };
        assert!(matches!(
            verify_proof(&p, &other),
            Err(DpopError::WrongRequest { .. })
        ));
        // A query is not part of htu.
        let with_query = ProofRequest {
            method: "POST",
            uri: "https://license.example/oauth/token?x=1",
            access_token: None,
        };
        assert!(verify_proof(&p, &with_query).is_ok());
    }

    #[test]
    fn the_access_token_hash_must_match() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let p = proof(&key, &request(Some("token-a")), 1000, "j1", None);
        assert!(verify_proof(&p, &request(Some("token-a"))).is_ok());
        assert_eq!(
            verify_proof(&p, &request(Some("token-b"))),
            Err(DpopError::WrongAccessToken)
        );
        let without = proof(&key, &request(None), 1000, "j2", None);
        assert_eq!(
            verify_proof(&without, &request(Some("token-a"))),
            Err(DpopError::WrongAccessToken)
        );
    }

    #[test]
    fn tampering_is_refused() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let p = proof(&key, &request(None), 1000, "j1", None);
        let parts: Vec<&str> = p.split('.').collect();
        // Claims swapped for others: the signature no longer matches.
        let other = proof(&key, &request(None), 2000, "j2", None);
        let other_claims = other.split('.').nth(1).unwrap();
        let forged = format!("{}.{}.{}", parts[0], other_claims, parts[2]);
        assert_eq!(
            verify_proof(&forged, &request(None)),
            Err(DpopError::BadSignature)
        );
        // Another key in the header: the signature is not that key's.
        let mallory = SigningKey::from_bytes(&[6; 32]);
        let theirs = proof(&mallory, &request(None), 1000, "j1", None);
        let forged = format!(
            "{}.{}.{}",
            theirs.split('.').next().unwrap(),
            parts[1],
            parts[2]
        );
        assert_eq!(
            verify_proof(&forged, &request(None)),
            Err(DpopError::BadSignature)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(matches!(
                verify_proof(bad, &request(None)),
                Err(DpopError::Malformed(_))
            ));
        }
    }

    #[test]
    fn header_rules() {
        let header = |h: serde_json::Value| {
            let key = SigningKey::from_bytes(&[5; 32]);
            let p = proof(&key, &request(None), 1000, "j1", None);
            let rest: Vec<&str> = p.split('.').collect();
            let h = URL_SAFE_NO_PAD.encode(h.to_string());
            let signed = format!("{h}.{}", rest[1]);
            let sig = URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()).to_bytes());
            verify_proof(&format!("{signed}.{sig}"), &request(None))
        };
        let x = URL_SAFE_NO_PAD.encode(SigningKey::from_bytes(&[5; 32]).verifying_key().as_bytes());
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        assert!(header(serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk})).is_ok());
        assert!(
            header(serde_json::json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": jwk})).is_ok()
        );
        assert_eq!(
            header(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})),
            Err(DpopError::UnsupportedAlgorithm)
        );
        assert_eq!(
            header(serde_json::json!({"typ": "jwt", "alg": "EdDSA", "jwk": jwk})),
            Err(DpopError::WrongType)
        );
        assert_eq!(
            header(serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk})),
            Err(DpopError::UnsupportedAlgorithm)
        );
        let private = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "d": x});
        assert_eq!(
            header(serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": private})),
            Err(DpopError::BadKey)
        );
    }

    #[test]
    fn iat_window() {
        assert!(iat_acceptable(1000, 1000 + IAT_WINDOW_SECS));
        assert!(!iat_acceptable(1000, 1001 + IAT_WINDOW_SECS));
        assert!(iat_acceptable(1000 + IAT_WINDOW_SECS, 1000));
        assert!(!iat_acceptable(1001 + IAT_WINDOW_SECS, 1000));
    }
}
