//! The vendor API's test client: every answer is checked against the
//! OpenAPI document; tokens are made on the admin page.

use license_core::jwk::JwkSet;
use license_core::token::{verify, AccountClaims, Expectation};
use serde_json::Value;

use super::common::{self, *};
use super::schema;

pub const PREFIX: &str = "/api/v1/vendor";

/// What the API answered, checked against the document.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub json: Value,
}

pub struct Api<'a> {
    pub server: &'a TestServer,
    pub doc: Value,
}

impl Api<'_> {
    pub async fn new(server: &TestServer) -> Api<'_> {
        let r = common::api()
            .get(server.url("/api/v1/vendor/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        Api {
            server,
            doc: r.json().await.unwrap(),
        }
    }

    /// `method path` with `token` (if any) and a JSON body (if any).
    pub async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = common::api().request(
            method.parse().unwrap(),
            self.server.url(&format!("{PREFIX}{path}")),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let answer = self.send(req, method, path).await;
        // A body the API accepted matches the documented request schema.
        if let (Some(b), true) = (&body, answer.status < 400) {
            let full = format!("{PREFIX}{path}");
            let t = schema::template(&self.doc, &full).unwrap();
            let op = &self.doc["paths"][t][method.to_lowercase()];
            let documented = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                !documented.is_null(),
                "{method} {t} documents no request body"
            );
            if let Err(e) = schema::check(&self.doc, documented, b, "request") {
                panic!("{method} {t}: the accepted request differs from the document: {e}");
            }
        }
        answer
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, method: &str, path: &str) -> Answer {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        let content_type = header("content-type").unwrap_or_default();
        let www_authenticate = header("www-authenticate");
        let bytes = r.bytes().await.unwrap();
        assert!(status < 500, "{method} {path}: {status} {bytes:?}");
        let full = format!("{PREFIX}{path}");
        if let Err(e) = schema::check_answer(
            &self.doc,
            method,
            &full,
            status,
            Some(&content_type),
            &bytes,
        ) {
            panic!("{e}\nbody: {}", String::from_utf8_lossy(&bytes));
        }
        if status >= 400 {
            assert_eq!(content_type, "application/problem+json", "{method} {path}");
        }
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if status >= 400 {
            assert_eq!(json["status"], status, "{json}");
            assert!(!json["detail"].as_str().unwrap().is_empty());
        }
        Answer {
            status,
            content_type,
            www_authenticate,
            json,
        }
    }
}

/// Creates a token on the admin page (signed in as `client`); returns it.
pub async fn create_token(
    server: &TestServer,
    client: &reqwest::Client,
    name: &str,
    scope: &str,
) -> String {
    let page = client
        .get(server.url("/admin/api-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let r = client
        .post(server.url("/admin/api-tokens"))
        .form(&[("csrf", csrf.as_str()), ("name", name), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let at = html.find("id=\"token\"").expect("the new token is shown");
    let start = html[at..].find("value=\"").unwrap() + at + 7;
    let end = html[start..].find('"').unwrap() + start;
    let token = html[start..end].to_owned();
    assert!(token.starts_with("lsv_") && token.len() > 40, "{token}");
    token
}

/// A vendor operator's browser and a write token named "billing".
pub async fn vendor_with_token(server: &TestServer) -> (reqwest::Client, String) {
    let client = browser();
    sign_in_vendor(server, &client).await;
    let token = create_token(server, &client, "billing", "write").await;
    (client, token)
}

pub async fn demo_org_id(api: &Api<'_>, token: &str) -> i64 {
    let orgs = api.call(Some(token), "GET", "/orgs", None).await;
    assert_eq!(orgs.status, 200);
    let demo = orgs
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Demo Store")
        .unwrap();
    demo["id"].as_i64().unwrap()
}

pub async fn jwks(server: &TestServer) -> JwkSet {
    common::api()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The license account a device receives now.
pub async fn account_of(server: &TestServer, access: &str) -> AccountClaims {
    let r = fetch_license(server, access).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let expect = Expectation::license_document(&server.base, "license-console");
    verify(
        body["license_document"].as_str().unwrap(),
        &jwks(server).await,
        &expect,
        license_server::Clock::now(&*server.clock),
    )
    .unwrap()
}
