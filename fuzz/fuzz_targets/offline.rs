//! Air-gapped activation files (`license_core::offline`): any text as an
//! activation request, as a deactivation and as an activation response
//! (against a fixed anchor, install key and pending request); and, to get
//! past the signatures, the fuzzed bytes signed as a request's claims by
//! the install's key and as an offline license's claims by the server's key.
//! No panic. A request is taken only when the key in its own header signed
//! exactly its bytes (checked here apart from the code under test), for
//! this server, with the fields a request must have. A response is taken
//! only for this install and this request, when both its signed parts are
//! byte for byte what the target's own keys make of them, and each was
//! signed by the pinned server key or by a key vouched for, through a chain,
//! by genuine rollovers of it: nothing the fuzzer makes without those keys
//! licenses the install.
#![no_main]

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use license_core::anchor::{RolloverClaims, KEY_ROLLOVER_AUD, KEY_ROLLOVER_TYP};
use license_core::dpop::{key_thumbprint, thumbprint};
use license_core::jwk::{key_id, Jwk, JwkSet};
use license_core::offline::{
    read_request, verify_offline_license_signature, verify_response, ActivationResponse,
    OfflineLicenseClaims, RequestKind, ResponseCheck, SignedRequest, VerifiedActivation,
    DEACTIVATION_TYP, MAX_FILE_LEN, OFFLINE_LICENSE_TYP, REQUEST_TYP, RESPONSE_FORMAT,
};
use license_core::token::{decode_header, LICENSE_DOCUMENT_TYP};
use license_fuzz::{
    account_claims_json, header, jwk, now, server_key, sign_raw, signed_here, AUDIENCE, ISSUER,
};

/// The request this console waits an answer to.
const PENDING: &str = "req-0001";

/// This install's key (the seeds' requests are signed with it).
fn install_key() -> SigningKey {
    SigningKey::from_bytes(&[0x1a; 32])
}

static JKT: LazyLock<String> = LazyLock::new(|| key_thumbprint(&install_key()));
static OTHER_JKT: LazyLock<String> =
    LazyLock::new(|| key_thumbprint(&SigningKey::from_bytes(&[0x1b; 32])));
static ANCHOR: LazyLock<JwkSet> = LazyLock::new(|| JwkSet::new(vec![jwk(&server_key())]));

/// The headers the install puts on its requests and deactivations.
static REQUEST_HEADERS: LazyLock<[(RequestKind, Vec<u8>); 2]> = LazyLock::new(|| {
    let x = URL_SAFE_NO_PAD.encode(install_key().verifying_key().as_bytes());
    let h = |typ: &str| {
        serde_json::to_vec(&serde_json::json!({
            "typ": typ, "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}
        }))
        .expect("JSON")
    };
    [
        (RequestKind::Activate, h(REQUEST_TYP)),
        (RequestKind::Deactivate, h(DEACTIVATION_TYP)),
    ]
});

static OFFLINE_HEADER: LazyLock<Vec<u8>> =
    LazyLock::new(|| header(OFFLINE_LICENSE_TYP, &server_key()));

/// A genuine response but for its offline license, which the fuzzer writes.
static TEMPLATE: LazyLock<ActivationResponse> = LazyLock::new(|| {
    let key = server_key();
    let mut document = account_claims_json();
    document["exp"] = (now().unix_timestamp() + 31 * 86_400).into();
    let document = serde_json::to_vec(&document).expect("JSON");
    ActivationResponse {
        format: RESPONSE_FORMAT.to_owned(),
        server_url: ISSUER.to_owned(),
        keys: ANCHOR.clone(),
        license_document: sign_raw(&header(LICENSE_DOCUMENT_TYP, &key), &document, &key),
        offline_license: String::new(),
    }
});

fn check<'a>(jkt: &'a str, pending: Option<&'a str>) -> ResponseCheck<'a> {
    ResponseCheck {
        server_url: ISSUER,
        client_id: AUDIENCE,
        jkt,
        pending_request: pending,
        anchor: &ANCHOR,
    }
}

/// The key in the header of a self-signed JWS signed exactly its bytes:
/// checked without the code under test. Its `x`.
fn signed_by_its_own_key(jws: &str) -> Option<String> {
    let (input, signature) = jws.rsplit_once('.')?;
    let header = URL_SAFE_NO_PAD.decode(input.split('.').next()?).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let x = header["jwk"]["x"].as_str()?;
    let key: [u8; 32] = URL_SAFE_NO_PAD.decode(x).ok()?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&key).ok()?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(signature).ok()?.try_into().ok()?;
    key.verify_strict(input.as_bytes(), &Signature::from_bytes(&signature))
        .ok()?;
    Some(x.to_owned())
}

fn check_request(text: &str, kind: RequestKind, read: &SignedRequest) {
    let text = text.trim();
    assert!(!text.is_empty() && text.len() <= MAX_FILE_LEN);
    let x = signed_by_its_own_key(text).expect("a request taken without its key's signature");
    assert_eq!(read.jkt, thumbprint(&x), "the request names another key");
    let c = &read.claims;
    assert_eq!(c.kind, kind);
    assert_eq!(c.server_url, ISSUER);
    assert!(!c.request_id.is_empty() && c.request_id.len() <= 128);
    assert!(c.console_version.len() <= 64);
    if kind == RequestKind::Deactivate {
        assert!(c.license_id.is_some(), "a deactivation names no license");
    }
}

fn same_key(a: &Jwk, b: &Jwk) -> bool {
    a.kid == b.kid && a.x == b.x && a.kty == b.kty && a.crv == b.crv
}

/// A rollover signed here, of the right kind, issuer and audience, valid
/// now, for a key named by its thumbprint: the signer's kid and the key.
fn genuine_rollover(jwt: &str) -> Option<(String, Jwk)> {
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

/// The keys the pinned one vouches for through the response's genuine
/// rollovers (the pinned one included).
fn trusted(rollovers: &[String]) -> Vec<Jwk> {
    let vouched: Vec<(String, Jwk)> = rollovers
        .iter()
        .take(license_core::anchor::MAX_ROLLOVERS)
        .filter_map(|r| genuine_rollover(r))
        .collect();
    let mut trusted = ANCHOR.keys.clone();
    loop {
        let before = trusted.len();
        for (signer, next) in &vouched {
            if trusted.iter().any(|t| &t.kid == signer)
                && !trusted.iter().any(|t| same_key(t, next))
            {
                trusted.push(next.clone());
            }
        }
        if trusted.len() == before {
            return trusted;
        }
    }
}

fn within(nbf: i64, exp: i64) -> bool {
    let t = now().unix_timestamp();
    nbf.saturating_sub(60) <= t && t < exp.saturating_add(60)
}

fn check_activation(v: &VerifiedActivation) {
    let offline: &OfflineLicenseClaims = &v.offline;
    assert_eq!(offline.cnf.jkt, *JKT, "taken for another install");
    assert_eq!(offline.request_id, PENDING, "taken for another request");
    assert!(offline.iss == ISSUER && offline.aud == AUDIENCE);
    assert!(v.document.iss == ISSUER && v.document.aud == AUDIENCE);
    assert_eq!(v.document.sub, offline.sub);
    assert!(within(offline.nbf, offline.exp) && within(v.document.nbf, v.document.exp));
    assert_eq!(v.response.server_url, ISSUER);
    assert_eq!(v.anchor, v.response.keys);

    // Both parts are what the target's own keys made, byte for byte...
    let trusted = trusted(&v.response.keys.rollovers);
    for part in [&v.response.offline_license, &v.response.license_document] {
        assert!(
            signed_here(part),
            "a part not signed here was taken: {part}"
        );
        // ...by a key the anchor trusts, not merely one the file lists.
        let signer = decode_header(part).ok().and_then(|h| h.kid);
        assert!(
            trusted.iter().any(|t| Some(&t.kid) == signer.as_ref()),
            "a part signed by {signer:?}, which the anchor does not trust, was taken \
             (keys {:?}, trusted {:?})",
            v.response.keys.keys,
            trusted.iter().map(|t| &t.kid).collect::<Vec<_>>()
        );
    }
    // What the console keeps verifies again against what it pins.
    assert_eq!(
        verify_offline_license_signature(
            &v.response.offline_license,
            &v.anchor,
            ISSUER,
            AUDIENCE,
            &JKT
        )
        .as_ref(),
        Ok(offline)
    );
}

fn check_response(text: &str) {
    if let Ok(v) = verify_response(text, &check(&JKT, Some(PENDING)), now()) {
        check_activation(&v);
    }
    assert!(
        verify_response(text, &check(&JKT, None), now()).is_err(),
        "a response taken while waiting for none"
    );
    assert!(
        verify_response(text, &check(&OTHER_JKT, Some(PENDING)), now()).is_err(),
        "a response taken by another install"
    );
}

fuzz_target!(|data: &[u8]| {
    // The bytes as the claims of a request signed by the install's key.
    for (kind, header) in REQUEST_HEADERS.iter() {
        let jws = sign_raw(header, data, &install_key());
        if let Ok(read) = read_request(&jws, *kind, ISSUER) {
            check_request(&jws, *kind, &read);
            assert_eq!(read.jkt, *JKT);
        }
    }
    // The bytes as an offline license signed by the server, in an otherwise
    // genuine response.
    let response = ActivationResponse {
        offline_license: sign_raw(&OFFLINE_HEADER, data, &server_key()),
        ..TEMPLATE.clone()
    };
    check_response(&response.to_text());

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The text as a file carried by hand.
    for kind in [RequestKind::Activate, RequestKind::Deactivate] {
        if let Ok(read) = read_request(text, kind, ISSUER) {
            check_request(text, kind, &read);
        }
    }
    check_response(text);
});
