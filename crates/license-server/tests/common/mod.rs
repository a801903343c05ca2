//! A real server on 127.0.0.1:0 with a temporary database and a clock the
//! test moves.
//!
//! The database is a temporary SQLite file, or, when
//! `LICENSE_SERVER_TEST_POSTGRES` holds a PostgreSQL admin URL (as
//! `scripts/pg-cluster.sh start` prints it), a new database of its own in
//! that cluster: `scripts/test.sh` runs the suite both ways.
#![allow(dead_code)]

pub mod dpop;

use std::sync::Arc;

use license_server::store::Location;
use license_server::{demo, keys, AppState, Config, Keys, ManualClock, Store};
use time::OffsetDateTime;

pub struct TestServer {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    /// Of `demo::DEMO_ADMIN`, the organization admin of Demo Store.
    pub admin_password: String,
    /// Of `demo::DEMO_VENDOR`, the vendor operator.
    pub vendor_password: String,
    /// The database, as `--db` names it.
    pub db: Location,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir).await;
    let store = Store::connect(&db).await.unwrap();
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let now = start.unix_timestamp();
    keys::rotate(&store, now).await.unwrap();
    let sign_ins = demo::seed(&store, now).await.unwrap().unwrap();
    let keys = Keys::load(&store, now).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::new(&base);
    tweak(&mut config);
    let state = AppState::new(store, keys, clock.clone(), config);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let serving = state.clone();
    tokio::spawn(async move {
        license_server::serve(listener, serving, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestServer {
        base,
        clock,
        state,
        admin_password: sign_ins.admin_password,
        vendor_password: sign_ins.vendor_password,
        db,
        _dir: dir,
        shutdown: Some(tx),
    }
}

/// The cluster `LICENSE_SERVER_TEST_POSTGRES` names, if any.
pub fn postgres_cluster() -> Option<String> {
    std::env::var("LICENSE_SERVER_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A fresh database: a new one in the PostgreSQL cluster, or an SQLite file
/// in `dir`.
pub async fn test_database(dir: &tempfile::TempDir) -> Location {
    let Some(admin) = postgres_cluster() else {
        return Location::Sqlite(dir.path().join("license.db"));
    };
    use sqlx::Connection as _;
    let name = format!("t_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    Location::Postgres(format!("{base}/{name}"))
}

/// Everything stored in `table`, as text: for SQLite the database file and
/// its WAL, for PostgreSQL every row as PostgreSQL prints it.
pub async fn stored_text(server: &TestServer, table: &str) -> String {
    match &server.db {
        Location::Sqlite(path) => {
            let mut raw = std::fs::read(path).unwrap();
            raw.extend(std::fs::read(format!("{}-wal", path.display())).unwrap_or_default());
            String::from_utf8_lossy(&raw).into_owned()
        }
        Location::Postgres(_) => {
            let sql = format!("SELECT CAST(t AS TEXT) FROM {table} t");
            let rows: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(&server.raw_db().await)
                .await
                .unwrap();
            rows.join("\n")
        }
    }
}

/// A server the helpers can talk to: a [`TestServer`] or a base URL
/// (`"http://127.0.0.1:PORT"`, say a replica behind a proxy).
pub trait Site {
    fn url(&self, path: &str) -> String;
}

impl Site for TestServer {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Site for str {
    fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl TestServer {
    /// `--db` for the server's command line: the file's path or the URL.
    pub fn db_arg(&self) -> String {
        match &self.db {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => url.clone(),
        }
    }

    /// A pool of its own on the server's database, to look at the rows.
    pub async fn raw_db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match &self.db {
            Location::Sqlite(path) => format!("sqlite://{}", path.display()),
            Location::Postgres(url) => url.clone(),
        };
        sqlx::AnyPool::connect(&url).await.unwrap()
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(time::Duration::seconds(secs));
    }
}

/// A browser-like client: cookies, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn api() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// The option value of a `<select>` entry labelled `label`.
pub fn option_value(html: &str, label: &str) -> String {
    let end = html
        .find(&format!(">{label}</option>"))
        .unwrap_or_else(|| panic!("no option {label}"));
    let start = html[..end].rfind("value=\"").unwrap() + 7;
    let stop = html[start..].find('"').unwrap() + start;
    html[start..stop].to_owned()
}

/// Signs in through the login form (CSRF included) as the organization
/// admin of Demo Store.
pub async fn sign_in(server: &TestServer, client: &reqwest::Client) {
    sign_in_as(server, client, demo::DEMO_ADMIN, &server.admin_password).await
}

/// Signs in as the vendor operator.
pub async fn sign_in_vendor(server: &TestServer, client: &reqwest::Client) {
    sign_in_as(server, client, demo::DEMO_VENDOR, &server.vendor_password).await
}

/// Signs in through the login form with these credentials; with one
/// organization (an organization admin of one), the session starts in it.
pub async fn sign_in_as(
    server: &(impl Site + ?Sized),
    client: &reqwest::Client,
    email: &str,
    password: &str,
) {
    let status = sign_in_status(server, client, email, password).await;
    assert_eq!(status, 303, "sign-in should redirect");
}

/// Posts the login form with these credentials; the answer's status (303
/// signed in, 401 wrong password, 403 disabled, 429 too many attempts).
pub async fn sign_in_status(
    server: &(impl Site + ?Sized),
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> u16 {
    let page = page_text(server, client, "/admin/login").await;
    let csrf = hidden(&page, "csrf");
    let r = client
        .post(server.url("/admin/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// The body of `GET path`.
pub async fn page_text(
    server: &(impl Site + ?Sized),
    client: &reqwest::Client,
    path: &str,
) -> String {
    let r = client.get(server.url(path)).send().await.unwrap();
    r.text().await.unwrap()
}

/// Posts a form as a signed-in admin would: the CSRF token from `page`,
/// then `fields` to `path`. The status and the body.
pub async fn post_form(
    server: &(impl Site + ?Sized),
    client: &reqwest::Client,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let html = page_text(server, client, page).await;
    let csrf = hidden(&html, "csrf");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let r = client
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub interval: i64,
    pub json: serde_json::Value,
}

pub async fn start_device_authorization(server: &TestServer) -> DeviceAuthorization {
    let json = device_authorization_at(&server.base).await;
    DeviceAuthorization {
        device_code: json["device_code"].as_str().unwrap().to_owned(),
        user_code: json["user_code"].as_str().unwrap().to_owned(),
        interval: json["interval"].as_i64().unwrap(),
        json,
    }
}

/// `POST /oauth/device_authorization` as the console, to the server at
/// `base` (one in this process or a spawned binary): the 200 answer's body.
pub async fn device_authorization_at(base: &str) -> serde_json::Value {
    let r = api()
        .post(format!("{base}/oauth/device_authorization"))
        .form(&[("client_id", "license-console")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A spawned `license-server` process, killed when dropped.
pub struct Spawned(pub std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Authorize Device through the admin pages: choose the device, enter the
/// user code, confirm with `decision` ("authorize" or "deny").
pub async fn decide_on_page(
    server: &(impl Site + ?Sized),
    client: &reqwest::Client,
    device: &str,
    user_code: &str,
    decision: &str,
) -> String {
    let page = client
        .get(server.url(&format!("/device?user_code={user_code}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let device_id = option_value(&page, device);
    let confirm = client
        .post(server.url("/device"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("device", &device_id),
            ("new_device_name", ""),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("Authorize this device?"), "{confirm}");
    assert!(confirm.contains(device) && confirm.contains("Demo Store"));
    let done = client
        .post(server.url("/device/confirm"))
        .form(&[
            ("csrf", hidden(&confirm, "csrf").as_str()),
            ("device", &hidden(&confirm, "device")),
            ("new_device_name", &hidden(&confirm, "new_device_name")),
            ("user_code", &hidden(&confirm, "user_code")),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    done.text().await.unwrap()
}

pub async fn poll(server: &(impl Site + ?Sized), device_code: &str) -> (u16, serde_json::Value) {
    let r = api()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", "license-console"),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

pub async fn refresh(
    server: &(impl Site + ?Sized),
    refresh_token: &str,
) -> (u16, serde_json::Value) {
    let r = api()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "license-console"),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `GET /api/v1/license` with a bearer token.
pub async fn fetch_license(server: &TestServer, access_token: &str) -> reqwest::Response {
    dpop::fetch(server, "Bearer", access_token, None).await
}

/// A licensed device: the whole flow through the admin pages. Returns the token response.
pub async fn license_device(server: &TestServer, device: &str) -> serde_json::Value {
    let client = browser();
    sign_in(server, &client).await;
    let auth = start_device_authorization(server).await;
    decide_on_page(server, &client, device, &auth.user_code, "authorize").await;
    let (status, body) = poll(server, &auth.device_code).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The OAuth `error` code of an error response's body.
pub fn error_of(body: &serde_json::Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}
