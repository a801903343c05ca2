//! A license server for the `server_bodies` target: the real router on a
//! temporary database with the demo account, a signed-in vendor operator
//! and a vendor API token, answering one request at a time in-process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use license_server::store::ApiScope;
use license_server::{demo, keys, AppState, Config, Keys, Store, SystemClock};
use tower::ServiceExt as _;

/// How a target's bytes become a request.
pub enum Shape {
    /// A form body, as is.
    Form,
    /// A form body after the session's CSRF token (`csrf=…&`).
    AdminForm,
    /// A JSON body, with the vendor API token.
    Json,
    /// The bytes as the `DPoP` header of a refresh-grant request.
    DpopHeader,
    /// The bytes as the `Authorization` header.
    Authorization,
}

pub struct Target {
    pub method: &'static str,
    pub path: &'static str,
    pub shape: Shape,
}

const fn t(method: &'static str, path: &'static str, shape: Shape) -> Target {
    Target {
        method,
        path,
        shape,
    }
}

/// Every request the target sends.
pub const TARGETS: &[Target] = &[
    t("POST", "/oauth/device_authorization", Shape::Form),
    t("POST", "/oauth/token", Shape::Form),
    t("POST", "/oauth/revoke", Shape::Form),
    t("POST", "/device", Shape::AdminForm),
    t("POST", "/device/confirm", Shape::AdminForm),
    t("POST", "/admin/devices", Shape::AdminForm),
    t("POST", "/admin/packages", Shape::AdminForm),
    t("POST", "/admin/packages/1", Shape::AdminForm),
    t("POST", "/admin/packages/1/assignments", Shape::AdminForm),
    t("POST", "/admin/account", Shape::AdminForm),
    t("POST", "/admin/orgs/new", Shape::AdminForm),
    t("POST", "/admin/users/invite", Shape::AdminForm),
    t("POST", "/admin/devices/on-copy", Shape::AdminForm),
    t("POST", "/admin/api-tokens", Shape::AdminForm),
    t("POST", "/api/v1/vendor/orgs", Shape::Json),
    t("PATCH", "/api/v1/vendor/orgs/1", Shape::Json),
    t("POST", "/api/v1/vendor/orgs/1/packages", Shape::Json),
    t("PATCH", "/api/v1/vendor/packages/1", Shape::Json),
    t("POST", "/api/v1/vendor/invitations", Shape::Json),
    t("POST", "/oauth/token", Shape::DpopHeader),
    t("GET", "/api/v1/license", Shape::Authorization),
];

pub struct Server {
    rt: tokio::runtime::Runtime,
    app: Router,
    cookie: String,
    csrf: String,
    api_token: String,
    _dir: std::path::PathBuf,
}

/// The value of hidden input `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden input") + marker.len();
    let end = html[start..].find('"').expect("end of value") + start;
    html[start..end].to_owned()
}

impl Server {
    pub fn start() -> Server {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // libFuzzer ends the process without running destructors: the
        // database of an earlier run is removed by the next one.
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("license-fuzz-") {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = tmp.join(format!("license-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (app, vendor_password, api_token) = rt.block_on(async {
            let store = Store::open(&dir.join("fuzz.db")).await.expect("store");
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            keys::rotate(&store, now).await.expect("key");
            let sign_ins = demo::seed(&store, now).await.expect("seed").expect("fresh");
            let api_token = format!("lsv_fuzz{}", "x".repeat(40));
            let hash = license_server::secrets::hash(&api_token);
            store
                .create_api_token("fuzz", &hash, ApiScope::Write, "fuzz", now)
                .await
                .expect("api token")
                .expect("new");
            let keys = Keys::load(&store, now).await.expect("keys");
            let config = Config::new("http://127.0.0.1:9");
            let state = AppState::new(store, keys, Arc::new(SystemClock), config);
            (
                license_server::app(state),
                sign_ins.vendor_password,
                api_token,
            )
        });
        let mut server = Server {
            rt,
            app,
            cookie: String::new(),
            csrf: String::new(),
            api_token,
            _dir: dir,
        };
        server.sign_in(&vendor_password);
        server
    }

    fn call(&self, request: Request<Body>) -> (u16, Vec<(String, String)>, String) {
        self.rt.block_on(async {
            let response = self.app.clone().oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            (status, headers, String::from_utf8_lossy(&body).into_owned())
        })
    }

    /// Signs in as the vendor operator through the login form.
    fn sign_in(&mut self, password: &str) {
        let (_, headers, page) = self.call(
            Request::get("/admin/login")
                .body(Body::empty())
                .expect("request"),
        );
        let login_csrf = hidden(&page, "csrf");
        let cookie = headers
            .iter()
            .find(|(k, v)| k == "set-cookie" && v.starts_with("ls_login_csrf="))
            .map(|(_, v)| v.split(';').next().unwrap_or("").to_owned())
            .expect("login cookie");
        let form = format!(
            "csrf={login_csrf}&email={}&password={}&next=%2Fadmin",
            demo::DEMO_VENDOR,
            password
        );
        let (status, headers, _) = self.call(
            Request::post("/admin/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, cookie)
                .body(Body::from(form))
                .expect("request"),
        );
        assert_eq!(status, 303, "signed in");
        self.cookie = headers
            .iter()
            .find(|(k, v)| k == "set-cookie" && v.starts_with("ls_session="))
            .map(|(_, v)| v.split(';').next().unwrap_or("").to_owned())
            .expect("session cookie");
        let (_, _, page) = self.call(
            Request::get("/admin/devices")
                .header(header::COOKIE, &self.cookie)
                .body(Body::empty())
                .expect("request"),
        );
        self.csrf = hidden(&page, "csrf");
    }

    /// Sends `target` with `bytes`; the status, or `None` when the bytes
    /// cannot even be put in a request (a header that is not one).
    pub fn send(&self, target: &Target, bytes: &[u8]) -> Option<u16> {
        let builder = Request::builder().method(target.method).uri(target.path);
        let form = "application/x-www-form-urlencoded";
        let request = match target.shape {
            Shape::Form => builder
                .header(header::CONTENT_TYPE, form)
                .body(Body::from(bytes.to_vec())),
            Shape::AdminForm => {
                let mut body = format!("csrf={}&", self.csrf).into_bytes();
                body.extend_from_slice(bytes);
                builder
                    .header(header::CONTENT_TYPE, form)
                    .header(header::COOKIE, &self.cookie)
                    .body(Body::from(body))
            }
            Shape::Json => builder
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", self.api_token))
                .body(Body::from(bytes.to_vec())),
            Shape::DpopHeader => {
                let value = axum::http::HeaderValue::from_bytes(bytes).ok()?;
                builder
                    .header(header::CONTENT_TYPE, form)
                    .header("dpop", value)
                    .body(Body::from(
                        "grant_type=refresh_token&refresh_token=x&client_id=license-console",
                    ))
            }
            Shape::Authorization => {
                let value = axum::http::HeaderValue::from_bytes(bytes).ok()?;
                builder
                    .header(header::AUTHORIZATION, value)
                    .body(Body::empty())
            }
        };
        let (status, _, _) = self.call(request.ok()?);
        Some(status)
    }
}
