//! License tokens: compact JWS (JWT) signed with Ed25519, shared by the
//! license server (which signs) and the console (which verifies offline).
//!
//! Only `alg: "EdDSA"` is accepted; the algorithm is never taken from the
//! token to choose how to verify, so `none` and HS256 tokens "signed" with
//! the public key are rejected before any key is touched.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::jwk::{JwkSet, KeyRing};
use crate::model::{LicenseAccount, Policy};

/// JWS header `typ` of a license token.
pub const LICENSE_TOKEN_TYP: &str = "license+jwt";
/// JWS header `typ` of the signed license account document.
pub const LICENSE_DOCUMENT_TYP: &str = "license-account+jwt";
/// The only accepted JWS algorithm.
pub const ALG: &str = "EdDSA";
/// Default leeway for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;
/// Tokens longer than this are rejected as malformed before any decoding,
/// so hostile input costs no more than a length check.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed compact JWS, or claims missing or of the wrong type.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm other than EdDSA (including `none`).
    #[error("unsupported signature algorithm {alg:?}")]
    UnsupportedAlgorithm {
        /// The algorithm the header named.
        alg: String,
    },
    /// The header has no `kid`, so no key can be chosen.
    #[error("token header has no key id")]
    MissingKid,
    /// No key in the JWK Set has the header's `kid`.
    #[error("unknown signing key {kid:?}")]
    UnknownKey {
        /// The key id the header named.
        kid: String,
    },
    /// The matching JWK is not a usable Ed25519 public key.
    #[error("the signing key is not a usable Ed25519 key")]
    BadKey,
    /// The signature does not match the key and content.
    #[error("bad signature")]
    BadSignature,
    /// The header `typ` is not the expected one (for example a license
    /// account document presented as a license token).
    #[error("wrong token type {typ:?}")]
    WrongType {
        /// The `typ` the header carried.
        typ: Option<String>,
    },
    /// The `iss` claim is not the expected issuer.
    #[error("wrong issuer {found:?}")]
    WrongIssuer {
        /// The issuer the token named.
        found: String,
    },
    /// The `aud` claim is not the expected audience.
    #[error("wrong audience {found:?}")]
    WrongAudience {
        /// The audience the token named.
        found: String,
    },
    /// The token expired (`exp`, past the leeway).
    #[error("token expired at {at}")]
    Expired {
        /// The token's `exp`.
        at: OffsetDateTime,
    },
    /// The token is not valid yet (`nbf`, beyond the leeway).
    #[error("token not valid before {at}")]
    NotYetValid {
        /// The token's `nbf`.
        at: OffsetDateTime,
    },
}

/// The JWS header of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Signature algorithm; only `"EdDSA"` is accepted.
    pub alg: String,
    /// Token type, [`LICENSE_TOKEN_TYP`] or [`LICENSE_DOCUMENT_TYP`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Id of the signing key in the JWK Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// The header as parsed for verification: `crit` names extensions this code
/// does not implement, so a token carrying it must be refused (RFC 7515).
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims every verifiable token carries.
pub trait RegisteredClaims {
    /// Issuer (`iss`).
    fn iss(&self) -> &str;
    /// Audience (`aud`).
    fn aud(&self) -> &str;
    /// Expiry (`exp`), unix seconds.
    fn exp(&self) -> i64;
    /// Not before (`nbf`), unix seconds.
    fn nbf(&self) -> i64;
}

/// Claims of a license token: the registered JWT claims plus what the
/// console needs to show the license panel while offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseClaims {
    /// Issuer: the license server's URL.
    pub iss: String,
    /// Audience: the console's client id.
    pub aud: String,
    /// Subject: the Server ID.
    pub sub: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds: the token expiry shown in the panel.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Organization name.
    pub org: String,
    /// Licensed features.
    #[serde(default)]
    pub features: Vec<String>,
    /// License renewal date, unix seconds, when there is one.
    #[serde(default)]
    pub renewal_date: Option<i64>,
    /// Hub server name.
    #[serde(default)]
    pub hub_server_name: String,
    /// Hub server URL.
    #[serde(default)]
    pub hub_server_url: String,
    /// The key the token is bound to (RFC 9449 `cnf.jkt`): only requests
    /// with a DPoP proof by that key may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// A token's confirmation claim (RFC 7800), here only the DPoP key's JWK
/// thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint (RFC 7638) of the DPoP key.
    pub jkt: String,
}

impl LicenseClaims {
    /// The token expiry as a date (`None` if out of range, which
    /// [`verify`] never lets through).
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(self.exp).ok()
    }

    /// The renewal date as a date.
    pub fn renewal_date_time(&self) -> Option<OffsetDateTime> {
        self.renewal_date
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
    }
}

/// Claims of the signed license account document: the full license account
/// and the policy, so the console can trust a cached copy offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountClaims {
    /// Issuer: the license server's URL.
    pub iss: String,
    /// Audience: the console's client id.
    pub aud: String,
    /// Subject: the Server ID.
    pub sub: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Unique document id.
    pub jti: String,
    /// The license account.
    pub account: LicenseAccount,
    /// The policy; defaults apply to absent fields.
    #[serde(default)]
    pub policy: Policy,
    /// The server's clock when signing, unix seconds (lets the console notice
    /// a badly set local clock).
    pub server_time: i64,
}

/// Implements [`RegisteredClaims`] for a claims type with `iss`, `aud`,
/// `exp` and `nbf` fields.
macro_rules! registered_claims {
    ($t:ty) => {
        impl $crate::token::RegisteredClaims for $t {
            fn iss(&self) -> &str {
                &self.iss
            }
            fn aud(&self) -> &str {
                &self.aud
            }
            fn exp(&self) -> i64 {
                self.exp
            }
            fn nbf(&self) -> i64 {
                self.nbf
            }
        }
    };
}
pub(crate) use registered_claims;
registered_claims!(LicenseClaims);
registered_claims!(AccountClaims);

/// What a verifier expects of a token besides a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Required header `typ` (compared ignoring ASCII case and an
    /// `application/` prefix, RFC 7515).
    pub typ: &'static str,
    /// Leeway for `exp` and `nbf`, in seconds (negative counts as zero).
    pub leeway_secs: i64,
}

impl Expectation {
    /// Expect a license token from `issuer` for `audience`, 60 s leeway.
    pub fn license_token(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Expectation {
            issuer: issuer.into(),
            audience: audience.into(),
            typ: LICENSE_TOKEN_TYP,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// Expect a license account document from `issuer` for `audience`, 60 s
    /// leeway.
    pub fn license_document(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Expectation {
            typ: LICENSE_DOCUMENT_TYP,
            ..Expectation::license_token(issuer, audience)
        }
    }
}

/// Sign `claims` as a compact JWS with header
/// `{"alg":"EdDSA","typ":typ,"kid":kid}`.
///
/// # Panics
///
/// If `claims` cannot be serialized to JSON, which cannot happen for
/// [`LicenseClaims`] and [`AccountClaims`] (only maps with non-string keys
/// fail).
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use license_core::token::{decode_header, encode, LICENSE_TOKEN_TYP};
/// let key = SigningKey::from_bytes(&[9; 32]);
/// let jwt = encode(&serde_json::json!({"sub": "srv-1"}), LICENSE_TOKEN_TYP, "k1", &key);
/// let header = decode_header(&jwt).unwrap();
/// assert_eq!(header.alg, "EdDSA");
/// assert_eq!(header.kid.as_deref(), Some("k1"));
/// ```
pub fn encode<C: Serialize>(claims: &C, typ: &str, kid: &str, key: &SigningKey) -> String {
    let header = Header {
        alg: ALG.to_owned(),
        typ: Some(typ.to_owned()),
        kid: Some(kid.to_owned()),
    };
    let header = serde_json::to_vec(&header).expect("a header always serializes");
    let payload = serde_json::to_vec(claims).expect("claims serialize to JSON");
    let mut jwt = URL_SAFE_NO_PAD.encode(header);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jwt);
    let signature = key.sign(jwt.as_bytes());
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jwt);
    jwt
}

/// The three base64url parts of a compact JWS, size-checked.
fn split(token: &str) -> Result<(&str, &str, &str), VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed(format!(
            "token longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(VerifyError::Malformed(
            "expected three dot-separated parts".to_owned(),
        )),
    }
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(format!("{what} is not base64url")))
}

fn raw_header(part: &str) -> Result<RawHeader, VerifyError> {
    serde_json::from_slice(&b64(part, "header")?)
        .map_err(|e| VerifyError::Malformed(format!("header: {e}")))
}

/// Read a token's header without verifying anything (for logging and key
/// selection; never trust it).
pub fn decode_header(token: &str) -> Result<Header, VerifyError> {
    let (header, _, _) = split(token)?;
    let raw = raw_header(header)?;
    Ok(Header {
        alg: raw.alg,
        typ: raw.typ,
        kid: raw.kid,
    })
}

/// RFC 7515 section 4.1.9: media types compare ignoring ASCII case, and the
/// `application/` prefix may be left out.
fn typ_matches(found: &str, expected: &str) -> bool {
    let bare = match found.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &found[12..],
        _ => found,
    };
    bare.eq_ignore_ascii_case(expected)
}

fn timestamp(t: i64, what: &str) -> Result<OffsetDateTime, VerifyError> {
    OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| VerifyError::Malformed(format!("{what} out of range")))
}

/// Verify a token's signature against `jwks` and its claims against
/// `expect` at time `now`, and return the claims.
///
/// Checks, in order: size and shape, `alg` (EdDSA only), `typ`, `kid` and
/// key, signature, claims JSON, `iss`, `aud`, `exp` and `nbf` (each with
/// `expect.leeway_secs`). A token expires at `exp + leeway` exactly. Never
/// panics, whatever the input.
///
/// On the console, pass [`crate::LicenseState::effective_now`] rather than
/// the raw clock, so setting the clock back does not revive an expired token.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use license_core::jwk::JwkSet;
/// use license_core::token::{encode, verify, Expectation, LicenseClaims, VerifyError, LICENSE_TOKEN_TYP};
/// use time::macros::datetime;
///
/// let key = SigningKey::from_bytes(&[5; 32]);
/// let jwks = JwkSet::single(&key.verifying_key());
/// let kid = &jwks.keys[0].kid;
/// let now = datetime!(2030-01-01 12:00 UTC);
/// let claims = LicenseClaims {
///     iss: "https://licenses.example".into(), aud: "console".into(), sub: "srv-1".into(),
///     iat: now.unix_timestamp(), nbf: now.unix_timestamp(),
///     exp: now.unix_timestamp() + 3 * 86_400, jti: "t-1".into(), org: "Acme".into(),
///     features: vec!["xms".into()], renewal_date: None,
///     hub_server_name: "hub".into(), hub_server_url: "https://hub.example".into(),
///     cnf: None,
/// };
/// let jwt = encode(&claims, LICENSE_TOKEN_TYP, kid, &key);
/// let expect = Expectation::license_token("https://licenses.example", "console");
/// let got: LicenseClaims = verify(&jwt, &jwks, &expect, now).unwrap();
/// assert_eq!(got, claims);
///
/// let later = now + time::Duration::days(4);
/// assert!(matches!(
///     verify::<LicenseClaims>(&jwt, &jwks, &expect, later),
///     Err(VerifyError::Expired { .. })
/// ));
/// ```
pub fn verify<C: DeserializeOwned + RegisteredClaims>(
    token: &str,
    jwks: &JwkSet,
    expect: &Expectation,
    now: OffsetDateTime,
) -> Result<C, VerifyError> {
    verify_inner(token, expect, now, |kid| jwks.verifying_key(kid))
}

/// Like [`verify`], with keys decoded up front in a [`KeyRing`]. A
/// [`JwkSet`] also keeps its keys decoded after first use, so both cost the
/// same once warm; a `KeyRing` moves the decoding (a point decompression and
/// a subgroup check, about as long as one verification) to a moment of the
/// caller's choosing.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use license_core::jwk::{JwkSet, KeyRing};
/// use license_core::token::{encode, verify_with, Expectation, VerifyError, LICENSE_TOKEN_TYP};
/// use license_core::LicenseClaims;
/// use time::macros::datetime;
///
/// let key = SigningKey::from_bytes(&[5; 32]);
/// let ring = KeyRing::new(&JwkSet::single(&key.verifying_key()));
/// let jwt = encode(&serde_json::json!({}), LICENSE_TOKEN_TYP, "other-kid", &key);
/// let expect = Expectation::license_token("https://licenses.example", "console");
/// assert_eq!(
///     verify_with::<LicenseClaims>(&jwt, &ring, &expect, datetime!(2030-01-01 0:00 UTC)),
///     Err(VerifyError::UnknownKey { kid: "other-kid".into() })
/// );
/// ```
pub fn verify_with<C: DeserializeOwned + RegisteredClaims>(
    token: &str,
    keys: &KeyRing,
    expect: &Expectation,
    now: OffsetDateTime,
) -> Result<C, VerifyError> {
    verify_inner(token, expect, now, |kid| keys.key(kid))
}

fn verify_inner<C: DeserializeOwned + RegisteredClaims>(
    token: &str,
    expect: &Expectation,
    now: OffsetDateTime,
    key_for: impl FnOnce(&str) -> Result<VerifyingKey, VerifyError>,
) -> Result<C, VerifyError> {
    let (header_b64, payload_b64, signature_b64) = split(token)?;
    let header = raw_header(header_b64)?;
    if header.alg != ALG {
        return Err(VerifyError::UnsupportedAlgorithm { alg: header.alg });
    }
    if header.crit.is_some() {
        return Err(VerifyError::Malformed(
            "critical header extensions are not supported".to_owned(),
        ));
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| typ_matches(t, expect.typ))
    {
        return Err(VerifyError::WrongType { typ: header.typ });
    }
    let kid = header.kid.ok_or(VerifyError::MissingKid)?;
    let key = key_for(&kid)?;

    let signature = b64(signature_b64, "signature")?;
    let signature = Signature::from_slice(&signature).map_err(|_| VerifyError::BadSignature)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = &token.as_bytes()[..signing_input_len];
    // No signature can be mauled into a second valid one: `s` must be
    // canonical (ed25519-dalek 2 without `legacy_compatibility`), the key has
    // no small-order component (refused when the JWK is decoded), so
    // [s]B - [k]A lies in the prime-order subgroup and `R` must be its one
    // canonical encoding (compared as bytes). That is everything
    // `verify_strict` guarantees, without its second point decompression.
    ed25519_dalek::Verifier::verify(&key, signing_input, &signature)
        .map_err(|_| VerifyError::BadSignature)?;

    let claims: C = serde_json::from_slice(&b64(payload_b64, "payload")?)
        .map_err(|e| VerifyError::Malformed(format!("claims: {e}")))?;
    if claims.iss() != expect.issuer {
        return Err(VerifyError::WrongIssuer {
            found: claims.iss().to_owned(),
        });
    }
    if claims.aud() != expect.audience {
        return Err(VerifyError::WrongAudience {
            found: claims.aud().to_owned(),
        });
    }
    let exp = timestamp(claims.exp(), "exp")?;
    let nbf = timestamp(claims.nbf(), "nbf")?;
    let leeway = time::Duration::seconds(expect.leeway_secs.max(0));
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired { at: exp });
    }
    if now.saturating_add(leeway) < nbf {
        return Err(VerifyError::NotYetValid { at: nbf });
    }
    Ok(claims)
}
