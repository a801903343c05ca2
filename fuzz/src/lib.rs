//! What the fuzz targets share: the fixed keys and time they verify with,
//! and the oracle that tells a token the target signed from a forgery.
//!
//! The fuzzer never sees a secret key, so any input that verifies must be
//! byte for byte what the target's own key makes of it. Ed25519 signing is
//! deterministic, so that is a plain comparison: an input that verifies but
//! differs (another encoding of the signature, a mauled signature, a weak
//! key's trivial signature) is a forgery and fails the target.

pub mod server;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use license_core::jwk::{key_id, Jwk, JwkSet};
use license_core::token::Expectation;
use time::OffsetDateTime;

/// The issuer every expectation names.
pub const ISSUER: &str = "https://licenses.example.com";
/// The audience every expectation names.
pub const AUDIENCE: &str = license_core::protocol::CONSOLE_CLIENT_ID;
/// Key id of a small-order ("weak") key in [`jwks`]: with it, the all-zero
/// signature verifies any message unless the key is refused.
pub const WEAK_KID: &str = "weak-identity";

/// The one time every target verifies at: 2030-01-01 00:00 UTC.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).expect("in range")
}

/// The server's current key (pinned, and in [`jwks`]).
pub fn server_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5e; 32])
}

/// The key a rollover of [`server_key`] vouches for.
pub fn next_key() -> SigningKey {
    SigningKey::from_bytes(&[0x6b; 32])
}

/// The key a rollover of [`next_key`] vouches for.
pub fn third_key() -> SigningKey {
    SigningKey::from_bytes(&[0x7c; 32])
}

/// Every secret key the targets hold.
pub fn own_keys() -> [SigningKey; 3] {
    [server_key(), next_key(), third_key()]
}

/// The JWK of a key, its `kid` its thumbprint (as the server publishes it).
pub fn jwk(key: &SigningKey) -> Jwk {
    let vk = key.verifying_key();
    Jwk::from_verifying_key(&key_id(&vk), &vk)
}

/// The `kid` of a key.
pub fn kid(key: &SigningKey) -> String {
    key_id(&key.verifying_key())
}

/// The JWK Set tokens are verified against: the server's key, plus the
/// identity point under [`WEAK_KID`], which must never verify anything.
pub fn jwks() -> JwkSet {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = Jwk {
        x: URL_SAFE_NO_PAD.encode(identity),
        kid: WEAK_KID.to_owned(),
        ..jwk(&server_key())
    };
    JwkSet::new(vec![jwk(&server_key()), weak])
}

/// What a license token is checked against.
pub fn token_expectation() -> Expectation {
    Expectation::license_token(ISSUER, AUDIENCE)
}

/// What a license account document is checked against.
pub fn document_expectation() -> Expectation {
    Expectation::license_document(ISSUER, AUDIENCE)
}

/// A compact JWS of these exact header and payload bytes.
pub fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let mut jwt = URL_SAFE_NO_PAD.encode(header);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jwt);
    let signature = key.sign(jwt.as_bytes());
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jwt);
    jwt
}

/// The header the server puts on a token of type `typ`.
pub fn header(typ: &str, key: &SigningKey) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": kid(key)}))
        .expect("JSON")
}

/// Whether `token` is exactly what the key its header names (one of
/// [`own_keys`]) makes of its signing input: the only tokens that may verify.
pub fn signed_here(token: &str) -> bool {
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(header) = license_core::token::decode_header(token) else {
        return false;
    };
    let Some(key) = own_keys()
        .into_iter()
        .find(|k| header.kid.as_deref() == Some(kid(k).as_str()))
    else {
        return false;
    };
    signature == URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()).to_bytes())
}

/// A license account document's claims as the server signs them, valid at
/// [`now`] (for seeds).
pub fn account_claims_json() -> serde_json::Value {
    let t = now().unix_timestamp();
    serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "srv-0001",
        "iat": t - 60, "nbf": t - 60, "exp": t + 3 * 86_400, "jti": "doc-1",
        "server_time": t - 60,
        "policy": {
            "refresh_interval_secs": 86_400, "grace_period_secs": 259_200,
            "renewal_warning_days": 30,
            "token_expiry_warnings_secs": [86_400, 21_600, 3_600],
            "clock_tolerance_secs": 300
        },
        "account": {
            "server_id": "srv-0001", "organization": "Acme",
            "hub_server_name": "hub", "hub_server_url": "https://hub.example.com",
            "features": ["xms"],
            "renewal_date": "2030-01-20T00:00:00Z",
            "valid_from": "2029-01-01T00:00:00Z",
            "valid_until": "2031-01-01T00:00:00+01:00",
            "packages": [{
                "id": "pkg-1", "name": "XMS Standard", "status": "active",
                "verified": true, "last_verified": "2029-12-31T23:00:00Z",
                "valid_from": "2029-01-01T00:00:00Z", "valid_until": "2030-12-31T00:00:00Z",
                "licenses": [
                    {"kind": "endpoint", "total": 10, "used": 2,
                     "assignments": [{"name": "pc-1", "kind": "agent"}]},
                    {"kind": "git_repository", "total": u32::MAX, "used": u32::MAX},
                    {"kind": "something_new", "total": 1}
                ]
            }, {
                "id": "pkg-2", "name": "Old", "status": "revoked",
                "valid_from": "2028-01-01T00:00:00.5-05:00", "valid_until": "2029-01-01T00:00:00Z"
            }]
        }
    })
}

/// A license token's claims as the server signs them, valid at [`now`].
pub fn license_claims_json() -> serde_json::Value {
    let t = now().unix_timestamp();
    serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "srv-0001",
        "iat": t - 60, "nbf": t - 60, "exp": t + 3600, "jti": "tok-1",
        "org": "Acme", "features": ["xms"], "renewal_date": t + 86_400,
        "hub_server_name": "hub", "hub_server_url": "https://hub.example.com"
    })
}

/// Every decision the console makes from a state, at `now` and at times
/// through and past the grace period, the way its shell steps: none may
/// panic, and the effective time never runs behind the clock.
pub fn exercise_decisions(
    state: &license_core::LicenseState,
    delivered: &license_core::DeliveredNotices,
    now: OffsetDateTime,
) {
    use license_core::{assess, next_refresh, notices_due};
    let mut state = state.clone();
    for step in [0, 3_600, 25 * 3_600, 4 * 86_400, 400 * 86_400] {
        let at = now.saturating_add(time::Duration::seconds(step));
        let a = assess(&state, at);
        assert!(
            a.effective_now >= at,
            "the effective time ran behind the clock"
        );
        let _ = (
            a.status.label(),
            a.status.is_valid(),
            a.verification.label(),
        );
        let _ = (a.token.expires_at(), a.verification.is_usable());
        let _ = next_refresh(&state, at);
        for notice in notices_due(&state, delivered, at) {
            assert!(!notice.id.is_empty() && !notice.title.is_empty());
        }
        state.record_failure(at);
    }
    state.record_success(now, Some(now));
    let _ = assess(&state, now);
}
