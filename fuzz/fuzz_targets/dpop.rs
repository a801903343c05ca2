//! DPoP proofs (RFC 9449): any string as the `DPoP` header of a token
//! request and of a license fetch. No panic; a proof is taken only when the
//! key in its own header signed exactly its bytes (checked here again, apart
//! from the code under test), for this method and URI, with the access
//! token's hash when there is one; and what it is bound to is that key's
//! thumbprint.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use license_core::dpop::{access_token_hash, thumbprint, verify_proof, ProofRequest};

const TOKEN_URI: &str = "https://licenses.example.com/oauth/token";
const LICENSE_URI: &str = "https://licenses.example.com/api/v1/license";

/// The header key signed the signing input: checked without the code under
/// test.
fn signed_by_its_own_key(proof: &str) -> Option<String> {
    let (input, signature) = proof.rsplit_once('.')?;
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

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let requests = [
        ProofRequest {
            method: "POST",
            uri: TOKEN_URI,
            access_token: None,
        },
        ProofRequest {
            method: "GET",
            uri: LICENSE_URI,
            access_token: Some("license-token"),
        },
    ];
    for request in requests {
        if let Ok(verified) = verify_proof(proof, &request) {
            let x =
                signed_by_its_own_key(proof).expect("a proof taken without its key's signature");
            assert_eq!(verified.jkt, thumbprint(&x));
            assert!(verified.claims.htm.eq_ignore_ascii_case(request.method));
            assert_eq!(verified.claims.htu, request.uri);
            if let Some(token) = request.access_token {
                assert_eq!(
                    verified.claims.ath.as_deref(),
                    Some(access_token_hash(token).as_str())
                );
            }
        }
    }
});
