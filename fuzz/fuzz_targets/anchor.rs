//! The trust anchor: a fuzzed offered key set (first line, JSON) and key
//! rollovers (one compact JWS per following line) against a fixed pinned
//! set. No panic; a set is accepted only as offered, and only when it keeps
//! a pinned key or a key vouched for, through a chain, by genuine rollovers
//! (ones this target's own keys signed, byte for byte, for this issuer).
//! Nothing the fuzzer makes without those keys moves the anchor.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use license_core::anchor::{accept_key_set, RolloverClaims, KEY_ROLLOVER_AUD, KEY_ROLLOVER_TYP};
use license_core::jwk::{key_id, Jwk, JwkSet};
use license_core::token::decode_header;
use license_fuzz::{jwk, now, server_key, signed_here, ISSUER};

fn same_key(a: &Jwk, b: &Jwk) -> bool {
    a.kid == b.kid && a.x == b.x && a.kty == b.kty && a.crv == b.crv
}

/// The key a rollover vouches for, if it is genuine: signed here, of the
/// right kind, issuer and audience, valid now, for a key named by its
/// thumbprint; and the kid that signed it.
fn genuine(jwt: &str) -> Option<(String, Jwk)> {
    if !signed_here(jwt) {
        return None;
    }
    let header = decode_header(jwt).ok()?;
    if header.typ.as_deref() != Some(KEY_ROLLOVER_TYP) {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1)?).ok()?;
    let claims: RolloverClaims = serde_json::from_slice(&payload).ok()?;
    let t = now().unix_timestamp();
    let valid = claims.nbf.saturating_sub(60) <= t && t < claims.exp.saturating_add(60);
    if claims.iss != ISSUER || claims.aud != KEY_ROLLOVER_AUD || !valid {
        return None;
    }
    let key = claims.next.verifying_key().ok()?;
    let signer = header.kid?;
    (key_id(&key) == claims.next.kid).then_some((signer, claims.next))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let Ok(offered) = serde_json::from_str::<JwkSet>(lines.next().unwrap_or_default()) else {
        return;
    };
    let rollovers: Vec<String> = lines.map(str::to_owned).collect();
    let pinned = JwkSet::new(vec![jwk(&server_key())]);

    let Ok(anchor) = accept_key_set(ISSUER, &pinned, &offered, &rollovers, now()) else {
        return;
    };
    assert_eq!(
        anchor, offered,
        "the anchor is the offered set, nothing else"
    );

    // The keys trusted through genuine rollovers, following chains.
    let vouched: Vec<(String, Jwk)> = rollovers.iter().filter_map(|r| genuine(r)).collect();
    let mut trusted = pinned.keys.clone();
    loop {
        let before = trusted.len();
        for (signer, next) in &vouched {
            let signed_by_trusted = trusted.iter().any(|t| &t.kid == signer);
            if signed_by_trusted && !trusted.iter().any(|t| same_key(t, next)) {
                trusted.push(next.clone());
            }
        }
        if trusted.len() == before {
            break;
        }
    }
    assert!(
        offered
            .keys
            .iter()
            .any(|k| trusted.iter().any(|t| same_key(t, k))),
        "a key set with no trusted key became the anchor: {offered:?}"
    );
});
