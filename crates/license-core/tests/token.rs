//! License token signing and verification, including every way a token must
//! be refused.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use ed25519_dalek::Signer as _;
use license_core::token::{decode_header, encode, verify, verify_with, MAX_TOKEN_LEN};
use license_core::{
    AccountClaims, Expectation, Jwk, JwkSet, KeyRing, LicenseClaims, Policy, VerifyError,
    LICENSE_DOCUMENT_TYP, LICENSE_TOKEN_TYP,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

fn expect() -> Expectation {
    Expectation::license_token(ISSUER, AUDIENCE)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with arbitrary header and payload JSON, signed with `key`.
fn signed(header: serde_json::Value, payload: serde_json::Value, seed: u8) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let sig = signing_key(seed).sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

fn good_header() -> serde_json::Value {
    json!({"alg": "EdDSA", "typ": LICENSE_TOKEN_TYP, "kid": kid_of(&signing_key(1))})
}

fn verify_at(token: &str, now: OffsetDateTime) -> Result<LicenseClaims, VerifyError> {
    verify(token, &jwks_of(&signing_key(1)), &expect(), now)
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[test]
fn a_signed_license_token_verifies_and_round_trips() {
    let key = signing_key(1);
    let c = claims(T0);
    let token = encode(&c, LICENSE_TOKEN_TYP, &kid_of(&key), &key);
    assert_eq!(verify_at(&token, T0), Ok(c));
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, "EdDSA");
    assert_eq!(header.typ.as_deref(), Some(LICENSE_TOKEN_TYP));
    assert_eq!(header.kid, Some(kid_of(&key)));
}

#[test]
fn a_license_document_verifies_and_defaults_an_absent_policy() {
    let key = signing_key(1);
    let doc = AccountClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "srv-1".into(),
        iat: T0.unix_timestamp(),
        nbf: T0.unix_timestamp(),
        exp: (T0 + Duration::days(3)).unix_timestamp(),
        jti: "doc-1".into(),
        account: account(None, T0 + Duration::days(30)),
        policy: Policy::default(),
        server_time: T0.unix_timestamp(),
    };
    let token = encode(&doc, LICENSE_DOCUMENT_TYP, &kid_of(&key), &key);
    let jwks = jwks_of(&key);
    let got: AccountClaims = verify(
        &token,
        &jwks,
        &Expectation::license_document(ISSUER, AUDIENCE),
        T0,
    )
    .unwrap();
    assert_eq!(got, doc);

    // A document is not a license token, and the other way round.
    assert_eq!(
        verify::<AccountClaims>(&token, &jwks, &expect(), T0),
        Err(VerifyError::WrongType {
            typ: Some(LICENSE_DOCUMENT_TYP.into())
        })
    );

    let mut payload = serde_json::to_value(&doc).unwrap();
    payload.as_object_mut().unwrap().remove("policy");
    let header = json!({"alg": "EdDSA", "typ": LICENSE_DOCUMENT_TYP, "kid": kid_of(&key)});
    let got: AccountClaims = verify(
        &signed(header, payload, 1),
        &jwks,
        &Expectation::license_document(ISSUER, AUDIENCE),
        T0,
    )
    .unwrap();
    assert_eq!(got.policy, Policy::default());
}

#[test]
fn tokens_are_refused_with_the_right_error() {
    let key = signing_key(1);
    let kid = kid_of(&key);
    let c = claims(T0);
    let good = encode(&c, LICENSE_TOKEN_TYP, &kid, &key);
    let payload = serde_json::to_value(&c).unwrap();
    let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();

    let hs256 = {
        let header = json!({"alg": "HS256", "typ": LICENSE_TOKEN_TYP, "kid": kid});
        let input = format!("{}.{}", b64(header.to_string()), p);
        // The classic confusion attack: HMAC keyed with the public key.
        let mac = hmac_sha256(key.verifying_key().as_bytes(), input.as_bytes());
        format!("{input}.{}", b64(mac))
    };
    let tampered = {
        let mut other = c.clone();
        other.org = "Evil Corp".into();
        format!("{h}.{}.{s}", b64(serde_json::to_string(&other).unwrap()))
    };
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut payload = payload.clone();
        f(&mut payload);
        signed(good_header(), payload, 1)
    };

    let cases: Vec<(&str, String, VerifyError)> = vec![
        (
            "alg none",
            format!(
                "{}.{p}.",
                b64(json!({"alg": "none", "typ": LICENSE_TOKEN_TYP, "kid": kid}).to_string())
            ),
            VerifyError::UnsupportedAlgorithm { alg: "none".into() },
        ),
        (
            "HS256 with the public key",
            hs256,
            VerifyError::UnsupportedAlgorithm {
                alg: "HS256".into(),
            },
        ),
        ("tampered claims", tampered, VerifyError::BadSignature),
        (
            "signed by another key under our kid",
            signed(good_header(), payload.clone(), 2),
            VerifyError::BadSignature,
        ),
        (
            "truncated signature",
            format!("{h}.{p}.{}", &s[..40]),
            VerifyError::BadSignature,
        ),
        (
            "unknown kid",
            signed(
                json!({"alg": "EdDSA", "typ": LICENSE_TOKEN_TYP, "kid": "k-old"}),
                payload.clone(),
                1,
            ),
            VerifyError::UnknownKey {
                kid: "k-old".into(),
            },
        ),
        (
            "no kid",
            signed(
                json!({"alg": "EdDSA", "typ": LICENSE_TOKEN_TYP}),
                payload.clone(),
                1,
            ),
            VerifyError::MissingKid,
        ),
        (
            "no typ",
            signed(json!({"alg": "EdDSA", "kid": kid}), payload.clone(), 1),
            VerifyError::WrongType { typ: None },
        ),
        (
            "wrong issuer",
            with(&|p| p["iss"] = json!("https://evil.example")),
            VerifyError::WrongIssuer {
                found: "https://evil.example".into(),
            },
        ),
        (
            "wrong audience",
            with(&|p| p["aud"] = json!("other-app")),
            VerifyError::WrongAudience {
                found: "other-app".into(),
            },
        ),
        (
            "audience as an array",
            with(&|p| p["aud"] = json!([AUDIENCE])),
            VerifyError::Malformed(String::new()),
        ),
        (
            "missing exp",
            with(&|p| {
                p.as_object_mut().unwrap().remove("exp");
            }),
            VerifyError::Malformed(String::new()),
        ),
        (
            "exp out of range",
            with(&|p| p["exp"] = json!(i64::MAX)),
            VerifyError::Malformed(String::new()),
        ),
        (
            "critical header extension",
            signed(
                json!({"alg": "EdDSA", "typ": LICENSE_TOKEN_TYP, "kid": kid, "crit": ["b64"], "b64": false}),
                payload.clone(),
                1,
            ),
            VerifyError::Malformed(String::new()),
        ),
        (
            "empty",
            String::new(),
            VerifyError::Malformed(String::new()),
        ),
        (
            "two parts",
            format!("{h}.{p}"),
            VerifyError::Malformed(String::new()),
        ),
        (
            "four parts",
            format!("{good}.{s}"),
            VerifyError::Malformed(String::new()),
        ),
        (
            "padded base64",
            format!("{h}=.{p}.{s}"),
            VerifyError::Malformed(String::new()),
        ),
        (
            "header not JSON",
            format!("{}.{p}.{s}", b64("alg=EdDSA")),
            VerifyError::Malformed(String::new()),
        ),
        (
            "too long",
            format!("{h}.{}.{s}", "A".repeat(MAX_TOKEN_LEN)),
            VerifyError::Malformed(String::new()),
        ),
    ];
    let ring = KeyRing::new(&jwks_of(&key));
    for (name, token, want) in cases {
        let got = verify_at(&token, T0);
        let with_ring = verify_with::<LicenseClaims>(&token, &ring, &expect(), T0);
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&with_ring),
            "{name}"
        );
        match (&got, &want) {
            // The message of Malformed is for logs; only the variant matters.
            (Err(VerifyError::Malformed(_)), VerifyError::Malformed(_)) => {}
            _ => assert_eq!(got, Err(want), "{name}"),
        }
    }
}

#[test]
fn a_key_that_is_not_ed25519_is_a_bad_key() {
    let key = signing_key(1);
    let token = encode(&claims(T0), LICENSE_TOKEN_TYP, &kid_of(&key), &key);
    let jwks = JwkSet::new(vec![Jwk {
        crv: "P-256".into(),
        ..Jwk::from_verifying_key(&kid_of(&key), &key.verifying_key())
    }]);
    assert_eq!(
        verify::<LicenseClaims>(&token, &jwks, &expect(), T0),
        Err(VerifyError::BadKey)
    );
    assert_eq!(
        verify_with::<LicenseClaims>(&token, &KeyRing::new(&jwks), &expect(), T0),
        Err(VerifyError::BadKey)
    );
}

#[test]
fn a_key_rotation_keeps_old_tokens_valid() {
    let (old, new) = (signing_key(1), signing_key(2));
    let jwks = JwkSet::new(vec![
        Jwk::from_verifying_key(&kid_of(&new), &new.verifying_key()),
        Jwk::from_verifying_key(&kid_of(&old), &old.verifying_key()),
    ]);
    let ring = KeyRing::new(&jwks);
    for key in [&old, &new] {
        let token = encode(&claims(T0), LICENSE_TOKEN_TYP, &kid_of(key), key);
        assert!(verify::<LicenseClaims>(&token, &jwks, &expect(), T0).is_ok());
        assert!(verify_with::<LicenseClaims>(&token, &ring, &expect(), T0).is_ok());
    }
}

#[test]
fn exp_and_nbf_are_enforced_one_second_either_side_of_the_leeway() {
    let key = signing_key(1);
    let c = claims(T0);
    let token = encode(&c, LICENSE_TOKEN_TYP, &kid_of(&key), &key);
    let exp = OffsetDateTime::from_unix_timestamp(c.exp).unwrap();
    let nbf = OffsetDateTime::from_unix_timestamp(c.nbf).unwrap();
    let leeway = Duration::seconds(60);

    let cases = [
        ("1 s before exp + leeway", exp + leeway - SEC, Ok(())),
        (
            "at exp + leeway",
            exp + leeway,
            Err(VerifyError::Expired { at: exp }),
        ),
        (
            "1 s after exp + leeway",
            exp + leeway + SEC,
            Err(VerifyError::Expired { at: exp }),
        ),
        (
            "1 s before nbf - leeway",
            nbf - leeway - SEC,
            Err(VerifyError::NotYetValid { at: nbf }),
        ),
        ("at nbf - leeway", nbf - leeway, Ok(())),
        ("1 s after nbf - leeway", nbf - leeway + SEC, Ok(())),
    ];
    for (name, now, want) in cases {
        assert_eq!(verify_at(&token, now).map(|_| ()), want, "{name}");
    }

    let strict = Expectation {
        leeway_secs: 0,
        ..expect()
    };
    let jwks = jwks_of(&key);
    assert!(verify::<LicenseClaims>(&token, &jwks, &strict, exp - SEC).is_ok());
    assert_eq!(
        verify::<LicenseClaims>(&token, &jwks, &strict, exp),
        Err(VerifyError::Expired { at: exp })
    );
}

#[test]
fn typ_compares_as_a_media_type() {
    let payload = serde_json::to_value(claims(T0)).unwrap();
    let kid = kid_of(&signing_key(1));
    for typ in [
        "license+jwt",
        "LICENSE+JWT",
        "application/license+jwt",
        "Application/License+JWT",
    ] {
        let token = signed(
            json!({"alg": "EdDSA", "typ": typ, "kid": kid}),
            payload.clone(),
            1,
        );
        assert!(verify_at(&token, T0).is_ok(), "{typ}");
    }
    for typ in [
        "JWT",
        "application/",
        "xlicense+jwt",
        "application/license-account+jwt",
    ] {
        let token = signed(
            json!({"alg": "EdDSA", "typ": typ, "kid": kid}),
            payload.clone(),
            1,
        );
        assert_eq!(
            verify_at(&token, T0),
            Err(VerifyError::WrongType {
                typ: Some(typ.into())
            }),
            "{typ}"
        );
    }
}

#[test]
fn unknown_claims_from_a_newer_server_are_ignored() {
    let mut payload = serde_json::to_value(claims(T0)).unwrap();
    payload["seats_color"] = json!("blue");
    let token = signed(good_header(), payload, 1);
    assert_eq!(verify_at(&token, T0).unwrap().org, "Acme");
}

#[test]
fn errors_read_well() {
    assert_eq!(
        VerifyError::UnknownKey { kid: "k1".into() }.to_string(),
        "unknown signing key \"k1\""
    );
    assert_eq!(VerifyError::BadSignature.to_string(), "bad signature");
}

/// The group order l, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn a_signature_cannot_be_mauled_into_a_second_valid_one() {
    let key = signing_key(1);
    let token = encode(&claims(T0), LICENSE_TOKEN_TYP, &kid_of(&key), &key);
    assert!(verify_at(&token, T0).is_ok());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();

    // s + l is the same scalar modulo l, but not its canonical encoding.
    let mut s_plus_l = sig;
    let mut carry = 0u16;
    for (byte, l) in s_plus_l[32..].iter_mut().zip(GROUP_ORDER) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    // R with the sign bit of x flipped: the negated point, not R.
    let mut r_negated = sig;
    r_negated[31] ^= 0x80;
    for mauled in [s_plus_l, r_negated] {
        assert_ne!(mauled, sig);
        let token = format!("{input}.{}", b64(mauled));
        assert_eq!(verify_at(&token, T0), Err(VerifyError::BadSignature));
    }
}
