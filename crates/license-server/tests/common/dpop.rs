//! A console's DPoP key in tests: proofs, token requests with them, the
//! device flow bound to the key.

use ed25519_dalek::SigningKey;
use license_core::dpop::{proof, ProofRequest};
use license_core::token::LicenseClaims;

use super::*;

/// A console's DPoP key and its proofs.
pub struct Install {
    pub key: SigningKey,
    next_jti: std::cell::Cell<u32>,
}

impl Install {
    pub fn new(seed: u8) -> Install {
        Install {
            key: SigningKey::from_bytes(&[seed; 32]),
            next_jti: std::cell::Cell::new(0),
        }
    }

    /// A proof for `method path` at the server's time (`iat_offset` from it).
    pub fn proof_at(
        &self,
        server: &TestServer,
        method: &str,
        path: &str,
        token: Option<&str>,
        iat_offset: i64,
        nonce: Option<&str>,
    ) -> String {
        let n = self.next_jti.get() + 1;
        self.next_jti.set(n);
        let uri = server.url(path);
        let request = ProofRequest {
            method,
            uri: &uri,
            access_token: token,
        };
        let iat = server.state.now() + iat_offset;
        proof(&self.key, &request, iat, &format!("jti-{n}"), nonce)
    }

    pub fn proof(
        &self,
        server: &TestServer,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> String {
        self.proof_at(server, method, path, token, 0, None)
    }
}

pub async fn token_request(
    server: &TestServer,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, serde_json::Value, Option<String>) {
    let mut r = api().post(server.url("/oauth/token")).form(form);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let nonce = r
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.json().await.unwrap(), nonce)
}

pub fn refresh_form(token: &str) -> [(&str, &str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", "license-console"),
    ]
}

/// The device flow with a proof: the pair is bound to `install`'s key.
pub async fn license_with_dpop(server: &TestServer, install: &Install) -> serde_json::Value {
    let client = browser();
    sign_in(server, &client).await;
    let auth = start_device_authorization(server).await;
    decide_on_page(
        server,
        &client,
        "Store 001 POS Server",
        &auth.user_code,
        "authorize",
    )
    .await;
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", auth.device_code.as_str()),
        ("client_id", "license-console"),
    ];
    let proof = install.proof(server, "POST", "/oauth/token", None);
    let (status, body, _) = token_request(server, &form, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub fn claims_of(token: &str) -> LicenseClaims {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `GET /api/v1/license` with `Authorization: {scheme} {token}` and, if
/// given, a `DPoP` proof.
pub async fn fetch(
    server: &TestServer,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let mut r = api()
        .get(server.url("/api/v1/license"))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    r.send().await.unwrap()
}
