//! JWK and JWK Set (JSON): any bytes into `Jwk` and `JwkSet`, then every key
//! decoded three ways (the JWK, the set's cache, a `KeyRing`). No panic; the
//! three agree; a key that decodes is a usable Ed25519 key (no small-order
//! component) with one stable thumbprint; a set survives a JSON round trip.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use license_core::jwk::{key_id, Jwk, JwkSet, KeyRing};

fn check(jwk: &Jwk) {
    let Ok(key) = jwk.verifying_key() else {
        return;
    };
    assert!(!key.is_weak(), "a small-order key was accepted");
    assert!(
        key.to_edwards().is_torsion_free(),
        "a key with a small-order component was accepted"
    );
    assert_eq!(URL_SAFE_NO_PAD.encode(key.as_bytes()), jwk.x);
    let kid = key_id(&key);
    assert_eq!(kid.len(), 43);
    assert_eq!(Jwk::from_verifying_key(&kid, &key).verifying_key(), Ok(key));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(jwk) = serde_json::from_slice::<Jwk>(data) {
        check(&jwk);
    }
    let Ok(set) = serde_json::from_slice::<JwkSet>(data) else {
        return;
    };
    let ring = KeyRing::new(&set);
    for jwk in &set.keys {
        check(jwk);
        // A set answers for the first key with a kid.
        if set.find(&jwk.kid) == Some(jwk) {
            let direct = jwk.verifying_key();
            assert_eq!(set.verifying_key(&jwk.kid), direct);
            assert_eq!(ring.key(&jwk.kid), direct);
            assert_eq!(
                set.verifying_key(&jwk.kid),
                direct,
                "the cached decode differs"
            );
        }
    }
    let json = serde_json::to_vec(&set).expect("a JWK Set serializes");
    let back: JwkSet = serde_json::from_slice(&json).expect("and parses back");
    assert_eq!(back, set);
});
