//! Compact JWS (JWT): any string as a license token, a license account
//! document or a key rollover, verified against a fixed JWK Set at a fixed
//! time. No panic; nothing verifies unless this target's key signed exactly
//! these bytes (no forgery, no second encoding of a signature); what
//! verifies meets its expectation.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use license_core::anchor::{RolloverClaims, KEY_ROLLOVER_AUD, KEY_ROLLOVER_TYP};
use license_core::jwk::{JwkSet, KeyRing};
use license_core::token::{
    decode_header, verify, verify_with, AccountClaims, Expectation, LicenseClaims,
};
use license_fuzz::{document_expectation, jwks, now, signed_here, token_expectation};

static JWKS: LazyLock<JwkSet> = LazyLock::new(jwks);
static RING: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(&jwks()));

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let now = now();
    let header = decode_header(token);

    let license = verify::<LicenseClaims>(token, &JWKS, &token_expectation(), now);
    // Both ways of holding the keys give the same answer.
    assert_eq!(
        license,
        verify_with::<LicenseClaims>(token, &RING, &token_expectation(), now)
    );
    let document = verify::<AccountClaims>(token, &JWKS, &document_expectation(), now);
    let rollover_expect = Expectation {
        audience: KEY_ROLLOVER_AUD.to_owned(),
        typ: KEY_ROLLOVER_TYP,
        ..token_expectation()
    };
    let rollover = verify::<RolloverClaims>(token, &JWKS, &rollover_expect, now);

    let verified = [license.is_ok(), document.is_ok(), rollover.is_ok()];
    assert!(
        verified.iter().filter(|v| **v).count() <= 1,
        "one token passed for two kinds"
    );
    if verified.contains(&true) {
        assert!(signed_here(token), "forgery accepted: {token}");
        let header = header.expect("a verified token has a readable header");
        assert_eq!(header.alg, "EdDSA");
    }
    let t = now.unix_timestamp();
    let within = |nbf: i64, exp: i64| nbf.saturating_sub(60) <= t && t < exp.saturating_add(60);
    if let Ok(c) = &license {
        assert!(c.iss == license_fuzz::ISSUER && c.aud == license_fuzz::AUDIENCE);
        assert!(
            within(c.nbf, c.exp),
            "a token outside its validity verified"
        );
        let _ = (c.expires_at(), c.renewal_date_time());
    }
    if let Ok(c) = &document {
        assert!(c.iss == license_fuzz::ISSUER && c.aud == license_fuzz::AUDIENCE);
        assert!(
            within(c.nbf, c.exp),
            "a document outside its validity verified"
        );
    }
});
