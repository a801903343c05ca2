//! Writes the seed inputs of every target into `fuzz/corpus/<target>/`:
//! real signed tokens, documents, rollovers and sealed files made with the
//! targets' own keys, plus the forgeries the targets must refuse.
//!
//! Run: cargo run --manifest-path fuzz/Cargo.toml --example seeds

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use license_core::anchor::{accept_key_set, sign_rollover};
use license_core::jwk::JwkSet;
use license_core::seal::seal;
use license_core::token::{
    verify, AccountClaims, LicenseClaims, LICENSE_DOCUMENT_TYP, LICENSE_TOKEN_TYP,
};
use license_fuzz::*;

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed written");
}

fn json(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

fn main() {
    let key = server_key();
    let document = json(&account_claims_json());
    let token = json(&license_claims_json());
    let signed_document = sign_raw(&header(LICENSE_DOCUMENT_TYP, &key), &document, &key);
    let signed_token = sign_raw(&header(LICENSE_TOKEN_TYP, &key), &token, &key);

    // jws: genuine tokens, and forgeries that must fail.
    write("jws", "license-token", &signed_token);
    write("jws", "license-document", &signed_document);
    write(
        "jws",
        "rollover",
        sign_rollover(ISSUER, &kid(&key), &key, &jwk(&next_key()), now()),
    );
    // The weak key's trivial signature: R = identity, s = 0.
    let mut trivial = [0u8; 64];
    trivial[0] = 1;
    let weak_header =
        json(&serde_json::json!({"alg": "EdDSA", "typ": LICENSE_TOKEN_TYP, "kid": WEAK_KID}));
    write(
        "jws",
        "weak-key-forgery",
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(weak_header),
            URL_SAFE_NO_PAD.encode(&token),
            URL_SAFE_NO_PAD.encode(trivial)
        ),
    );
    let none_header = json(&serde_json::json!({"alg": "none", "typ": LICENSE_TOKEN_TYP}));
    write(
        "jws",
        "alg-none",
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(none_header),
            URL_SAFE_NO_PAD.encode(&token)
        ),
    );

    // jwk: the published set, and keys that must be refused.
    let set = JwkSet::new(vec![jwk(&key), jwk(&next_key())]);
    write("jwk", "set", serde_json::to_vec(&set).expect("JSON"));
    write(
        "jwk",
        "weak-set",
        serde_json::to_vec(&jwks()).expect("JSON"),
    );
    write("jwk", "key", serde_json::to_vec(&jwk(&key)).expect("JSON"));
    write(
        "jwk",
        "rsa",
        r#"{"kty":"RSA","crv":"","x":"","kid":"r","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB"}"#,
    );

    // license_document: claims the target signs itself.
    write("license_document", "account", &document);
    write("license_document", "token", &token);

    // anchor: offered set on the first line, rollovers after.
    let (a, b, c) = (key, next_key(), third_key());
    let line = |keys: &[&license_core::jwk::Jwk]| {
        serde_json::to_string(&JwkSet::new(keys.iter().map(|k| (*k).clone()).collect()))
            .expect("JSON")
    };
    let (ja, jb, jc) = (jwk(&a), jwk(&b), jwk(&c));
    let ab = sign_rollover(ISSUER, &kid(&a), &a, &jb, now());
    let bc = sign_rollover(ISSUER, &kid(&b), &b, &jc, now());
    write("anchor", "rotation", line(&[&ja, &jb]));
    write("anchor", "rollover", format!("{}\n{ab}", line(&[&jb])));
    write("anchor", "chain", format!("{}\n{bc}\n{ab}", line(&[&jc])));
    write("anchor", "unvouched", format!("{}\n{bc}", line(&[&jc])));
    let self_signed = sign_rollover(ISSUER, &kid(&c), &c, &jc, now());
    write(
        "anchor",
        "self-signed",
        format!("{}\n{self_signed}", line(&[&jc])),
    );
    let other_issuer = sign_rollover("https://other.example", &kid(&a), &a, &jb, now());
    write(
        "anchor",
        "other-issuer",
        format!("{}\n{other_issuer}", line(&[&jb])),
    );
    let wrong_kind = sign_raw(
        &header(LICENSE_TOKEN_TYP, &a),
        &json(&serde_json::json!({"next": jb})),
        &a,
    );
    write(
        "anchor",
        "wrong-kind",
        format!("{}\n{wrong_kind}", line(&[&jb])),
    );

    // seal: the console's envelope, sealed with the target's key.
    let body = r#"{"version":1,"state":{"consecutive_failures":0,"highest_seen":"2030-01-01T00:00:00Z"},"delivered":[]}"#;
    let sealed = |generation: u64| {
        format!(
            r#"{{"generation":{generation},"seal":"{}","state":{body}}}"#,
            seal(&[0x3c; 32], generation, body.as_bytes())
        )
    };
    write("seal", "current", sealed(5));
    write("seal", "older", sealed(2));
    write(
        "seal",
        "edited",
        sealed(5).replace("\"consecutive_failures\":0", "\"consecutive_failures\":9"),
    );

    // state: the console's state file.
    let state = serde_json::json!({
        "version": 1,
        "server_url": ISSUER,
        "server_id": "srv-0001",
        "license_document": signed_document,
        "jwks": set,
        "state": {
            "account": account_claims_json()["account"],
            "policy": account_claims_json()["policy"],
            "token_expires_at": "2030-01-01T01:00:00Z",
            "token_id": "tok-1",
            "last_verified": "2029-12-31T23:59:00Z",
            "last_failure": "2030-01-01T00:00:00+02:00",
            "consecutive_failures": 3,
            "revoked": false,
            "highest_seen": "9999-12-31T23:59:59.999999999Z"
        },
        "delivered": ["token-expiring-6h-tok-1"],
        "settings": {"notifications": true}
    });
    write("state", "state-file", json(&state));
    write(
        "state",
        "policy-extremes",
        r#"{"refresh_interval_secs":18446744073709551615,"grace_period_secs":18446744073709551615,"renewal_warning_days":4294967295,"token_expiry_warnings_secs":[18446744073709551615,0],"clock_tolerance_secs":18446744073709551615}"#,
    );
    // The genuine seeds pass, so the targets' oracles start from inputs that
    // reach the end of every check.
    let set_of =
        |keys: &[&license_core::jwk::Jwk]| JwkSet::new(keys.iter().map(|k| (*k).clone()).collect());
    let jwks = jwks();
    verify::<LicenseClaims>(&signed_token, &jwks, &token_expectation(), now())
        .expect("token seed verifies");
    verify::<AccountClaims>(&signed_document, &jwks, &document_expectation(), now())
        .expect("document seed verifies");
    let pinned = set_of(&[&ja]);
    accept_key_set(
        ISSUER,
        &pinned,
        &set_of(&[&jb]),
        std::slice::from_ref(&ab),
        now(),
    )
    .expect("rollover seed is accepted");
    accept_key_set(ISSUER, &pinned, &set_of(&[&jc]), &[bc.clone(), ab], now())
        .expect("chain seed is accepted");
    accept_key_set(ISSUER, &pinned, &set_of(&[&jc]), &[bc], now())
        .expect_err("unvouched seed is refused");
    println!("seeds written to fuzz/corpus/");
}
