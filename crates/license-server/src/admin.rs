//! Server-rendered admin pages: sign-in, organization choice, Authorize
//! Device (RFC 8628 verification URI), devices, license packages, audit log.
//!
//! Sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure when the
//! issuer is https), stored server-side only as its SHA-256. Every form
//! carries a CSRF token derived from the session id (sign-in uses a
//! double-submit cookie instead, as there is no session yet).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use license_core::model::{AssignmentKind, LicenseKind};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::Date;

use crate::api::{build_packages, to_time};
use crate::error::Error;
use crate::limits::{
    SIGN_IN_MAX_FAILURES_PER_ACCOUNT, SIGN_IN_MAX_FAILURES_PER_ADDRESS, USER_CODE_MAX_FAILURES,
};
use crate::store::{Device, Org, OrgInput};
use crate::{secrets, AppState};

const SESSION_COOKIE: &str = "ls_session";
const LOGIN_CSRF_COOKIE: &str = "ls_login_csrf";
const SESSION_TTL_SECS: i64 = 12 * 3600;
const DAY: i64 = 86_400;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/admin", get(|| async { Redirect::to("/admin/devices") }))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/orgs", get(orgs_page).post(choose_org))
        .route("/admin/orgs/new", post(create_org))
        .route("/device", get(device_page).post(device_submit))
        .route("/device/confirm", post(device_confirm))
        .route("/admin/devices", get(devices_page).post(register_device))
        .route("/admin/devices/{id}/revoke", post(revoke_device))
        .route("/admin/packages", get(packages_page).post(create_package))
        .route("/admin/account", post(update_account))
        .route(
            "/admin/packages/{id}",
            get(package_page).post(update_package),
        )
        .route("/admin/packages/{id}/renew", post(renew_package))
        .route("/admin/packages/{id}/assignments", post(add_assignment))
        .route(
            "/admin/packages/{id}/assignments/{aid}/delete",
            post(delete_assignment),
        )
        .route("/admin/audit", get(audit_page))
}

// ---------------------------------------------------------------- plumbing

/// An error shown as a page.
pub struct PageError(Error);

impl<E: Into<Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "page failed");
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            s if s.is_client_error() => "Request not accepted",
            _ => "Something went wrong",
        };
        let page = MessagePage {
            l: Layout::anonymous(),
            title: title.into(),
            kind: "error",
            message: self.0.public_message(),
            link: Some(("/admin".into(), "Back to the admin pages".into())),
        };
        (status, render(&page)).into_response()
    }
}

type PageResult = Result<Response, PageError>;

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = Html(html).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert("x-frame-options", HeaderValue::from_static("DENY"));
            h.insert(
                "content-security-policy",
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            );
            h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
        }
    }
}

/// Form body whose rejections become error pages (4xx), never 500.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(PageError(Error::PayloadTooLarge))
            }
            Err(r) => Err(PageError(Error::InvalidRequest(r.body_text()))),
        }
    }
}

/// The caller's address, for rate limits.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// Only local paths: no open redirects.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/admin".to_owned(),
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fmt_time(t: Option<i64>) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.and_then(to_time)
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| "—".into())
}

fn fmt_date(t: Option<i64>) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    t.and_then(to_time)
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_default()
}

fn parse_date(s: &str, field: &str) -> Result<i64, Error> {
    let fmt = format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| Error::InvalidRequest(format!("{field}: expected a date like 2025-12-31")))
}

fn text(s: &str, field: &str, max: usize, required: bool) -> Result<String, Error> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(Error::InvalidRequest(format!("{field} is required")));
    }
    if t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "{field}: at most {max} characters, no control characters"
        )));
    }
    Ok(t.to_owned())
}

// ---------------------------------------------------------------- sessions

#[derive(Clone)]
struct Session {
    id_hash: Vec<u8>,
    user_id: i64,
    email: String,
    org_id: Option<i64>,
    csrf: String,
}

fn csrf_for(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"license-server/csrf/v1\0");
    h.update(session_id.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

async fn load_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Error> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if id.len() > 100 {
        return Ok(None);
    }
    let id_hash = secrets::hash(id);
    Ok(state
        .db
        .session(&id_hash, state.now())
        .await?
        .map(|row| Session {
            id_hash,
            user_id: row.user_id,
            email: row.email,
            org_id: row.org_id,
            csrf: csrf_for(id),
        }))
}

fn to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
    Redirect::to(&format!("/admin/login?next={}", percent_encode(next))).into_response()
}

/// Signed in, or a redirect to the sign-in page and back.
async fn require(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Session, Response> {
    match load_session(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(to_login(uri)),
        Err(e) => Err(PageError(e).into_response()),
    }
}

/// Signed in with an organization chosen (and still a member of it).
async fn require_org(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Session, Org), Response> {
    let session = require(state, headers, uri).await?;
    let to_orgs = || {
        let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
        Redirect::to(&format!("/admin/orgs?next={}", percent_encode(next))).into_response()
    };
    let Some(org_id) = session.org_id else {
        return Err(to_orgs());
    };
    let member = state.db.is_member(session.user_id, org_id).await;
    let org = state.db.org(org_id).await;
    match (member, org) {
        (Ok(true), Ok(Some(org))) => Ok((session, org)),
        (Err(e), _) | (_, Err(e)) => Err(PageError(e.into()).into_response()),
        _ => Err(to_orgs()),
    }
}

/// A signed-in admin; any other request is sent to sign in and back.
struct Admin(Session);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = require(state, &parts.headers, &parts.uri).await?;
        parts.extensions.insert(session.clone());
        Ok(Admin(session))
    }
}

/// A signed-in admin working in an organization they still belong to; any
/// other request is sent to sign in or to choose the organization.
struct OrgAdmin {
    session: Session,
    org: Org,
}

impl FromRequestParts<AppState> for OrgAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (session, org) = require_org(state, &parts.headers, &parts.uri).await?;
        parts.extensions.insert(session.clone());
        Ok(OrgAdmin { session, org })
    }
}

/// A form whose CSRF token matches the session. Goes last among a handler's
/// arguments, after [`Admin`] or [`OrgAdmin`], which find the session.
struct Posted<T>(T);

/// A form that carries the CSRF token of the session it was served in.
trait CsrfToken {
    fn csrf(&self) -> &str;
}

macro_rules! csrf_token {
    ($($form:ty),*) => {
        $(impl CsrfToken for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

csrf_token!(
    CsrfForm,
    ChooseOrgForm,
    NameForm,
    DeviceForm,
    AccountForm,
    NewPackageForm,
    PackageForm,
    AssignmentForm
);

impl<T: DeserializeOwned + CsrfToken> FromRequest<AppState> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let session = req.extensions().get::<Session>().cloned();
        let PageForm(form) = PageForm::<T>::from_request(req, state).await?;
        let session = session.ok_or_else(|| Error::internal("form read before its session"))?;
        check_csrf(&session, form.csrf())?;
        Ok(Posted(form))
    }
}

/// Writes what an admin did in an organization to its audit log.
async fn record(
    state: &AppState,
    session: &Session,
    org_id: i64,
    action: &str,
    detail: &str,
) -> Result<(), Error> {
    state
        .db
        .audit(state.now(), &session.email, Some(org_id), action, detail)
        .await?;
    Ok(())
}

fn check_csrf(session: &Session, presented: &str) -> Result<(), Error> {
    if secrets::constant_time_eq(session.csrf.as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "the form expired or came from another site; reload the page and try again".into(),
        ))
    }
}

// ---------------------------------------------------------------- layout

pub struct Layout {
    signed_in: bool,
    email: String,
    org_name: Option<String>,
    csrf: String,
    active: &'static str,
}

impl Layout {
    fn anonymous() -> Layout {
        Layout {
            signed_in: false,
            email: String::new(),
            org_name: None,
            csrf: String::new(),
            active: "",
        }
    }

    fn of(session: &Session, org: Option<&Org>, active: &'static str) -> Layout {
        Layout {
            signed_in: true,
            email: session.email.clone(),
            org_name: org.map(|o| o.name.clone()),
            csrf: session.csrf.clone(),
            active,
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    l: Layout,
    title: String,
    kind: &'static str,
    message: String,
    link: Option<(String, String)>,
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    login_csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    let login_csrf = secrets::random_token();
    let page = LoginPage {
        l: Layout::anonymous(),
        login_csrf: login_csrf.clone(),
        next: safe_next(q.next.as_deref()),
        email: String::new(),
        error: None,
    };
    with_cookie(
        render(&page),
        set_cookie(&state, LOGIN_CSRF_COOKIE, &login_csrf, 3600),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
    next: Option<String>,
}

/// A valid argon2id hash of a random password, so unknown accounts take as
/// long to reject as wrong passwords.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    secrets::hash_password(&secrets::random_token()).unwrap_or_default()
});

async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref());
    let relogin = |error: &str, status: StatusCode| {
        let login_csrf = secrets::random_token();
        let page = LoginPage {
            l: Layout::anonymous(),
            login_csrf: login_csrf.clone(),
            next: next.clone(),
            email: form.email.chars().take(200).collect(),
            error: Some(error.to_owned()),
        };
        with_cookie(
            (status, render(&page)).into_response(),
            set_cookie(&state, LOGIN_CSRF_COOKIE, &login_csrf, 3600),
        )
    };
    let cookie_csrf = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_csrf.is_empty()
        || !secrets::constant_time_eq(cookie_csrf.as_bytes(), form.csrf.as_bytes())
    {
        return Ok(relogin(
            "The sign-in form expired. Please try again.",
            StatusCode::BAD_REQUEST,
        ));
    }
    let now = state.now();
    let email = form.email.trim().to_lowercase();
    let addr_key = format!("addr:{addr}");
    let user_key = format!("user:{email}");
    let limiter = &state.limits.sign_in;
    if let Err(wait) = limiter
        .check(&addr_key, SIGN_IN_MAX_FAILURES_PER_ADDRESS, now)
        .and(limiter.check(&user_key, SIGN_IN_MAX_FAILURES_PER_ACCOUNT, now))
    {
        let minutes = (wait + 59) / 60;
        return Ok(relogin(
            &format!("Too many failed sign-ins. Try again in {minutes} minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let user = if email.len() <= 254 && form.password.len() <= 1024 {
        state.db.user_by_email(&email).await?
    } else {
        None
    };
    // argon2 is slow on purpose: keep it off the async workers.
    let password = form.password.clone();
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || secrets::verify_password(&password, &stored))
        .await
        .map_err(Error::internal)?;
    let Some(user) = user.filter(|_| ok) else {
        limiter.fail(&addr_key, now);
        limiter.fail(&user_key, now);
        tracing::info!(addr = %addr, "sign-in failed");
        return Ok(relogin(
            "Wrong email or password.",
            StatusCode::UNAUTHORIZED,
        ));
    };
    limiter.reset(&user_key);
    let session_id = secrets::random_token();
    let id_hash = secrets::hash(&session_id);
    state
        .db
        .create_session(&id_hash, user.id, now, now + SESSION_TTL_SECS)
        .await?;
    let orgs = state.db.user_orgs(user.id).await?;
    if let [only] = orgs.as_slice() {
        state.db.set_session_org(&id_hash, only.id).await?;
    }
    let target = if orgs.len() == 1 || next.starts_with("/admin/orgs") {
        next
    } else {
        format!("/admin/orgs?next={}", percent_encode(&next))
    };
    let response = with_cookie(
        Redirect::to(&target).into_response(),
        set_cookie(&state, SESSION_COOKIE, &session_id, SESSION_TTL_SECS),
    );
    Ok(with_cookie(
        response,
        set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
    ))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    // Signed out already: nothing to protect, just go to the sign-in page.
    if let Some(session) = load_session(&state, &headers).await? {
        check_csrf(&session, &form.csrf)?;
        state.db.delete_session(&session.id_hash).await?;
    }
    Ok(with_cookie(
        Redirect::to("/admin/login").into_response(),
        set_cookie(&state, SESSION_COOKIE, "", 0),
    ))
}

// ---------------------------------------------------------------- organizations

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    l: Layout,
    orgs: Vec<(i64, String)>,
    next: String,
}

async fn orgs_page(
    State(state): State<AppState>,
    Admin(session): Admin,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let orgs = state.db.user_orgs(session.user_id).await?;
    let current = match session.org_id {
        Some(id) => state.db.org(id).await?,
        None => None,
    };
    let page = OrgsPage {
        l: Layout::of(&session, current.as_ref(), ""),
        orgs: orgs.into_iter().map(|o| (o.id, o.name)).collect(),
        next: safe_next(q.next.as_deref()),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct ChooseOrgForm {
    csrf: String,
    org_id: i64,
    next: Option<String>,
}

async fn choose_org(
    State(state): State<AppState>,
    Admin(session): Admin,
    Posted(form): Posted<ChooseOrgForm>,
) -> PageResult {
    if !state.db.is_member(session.user_id, form.org_id).await? {
        return Err(Error::NotFound.into());
    }
    state
        .db
        .set_session_org(&session.id_hash, form.org_id)
        .await?;
    let next = safe_next(form.next.as_deref());
    let next = if next.starts_with("/admin/orgs") || next == "/admin" {
        "/admin/devices".into()
    } else {
        next
    };
    Ok(Redirect::to(&next).into_response())
}

#[derive(Deserialize)]
struct NameForm {
    csrf: String,
    name: String,
}

async fn create_org(
    State(state): State<AppState>,
    Admin(session): Admin,
    Posted(form): Posted<NameForm>,
) -> PageResult {
    let name = text(&form.name, "Name", 100, true)?;
    if state.db.org_by_name(&name).await?.is_some() {
        return Err(Error::InvalidRequest("an organization with this name exists".into()).into());
    }
    let now = state.now();
    let id = state
        .db
        .create_org(
            &OrgInput {
                name: name.clone(),
                features: vec![],
                hub_server_name: String::new(),
                hub_server_url: String::new(),
                renewal_date: None,
                valid_from: now,
                valid_until: now + 365 * DAY,
            },
            now,
        )
        .await?;
    state.db.add_member(session.user_id, id).await?;
    state.db.set_session_org(&session.id_hash, id).await?;
    record(
        &state,
        &session,
        id,
        "organization.created",
        &format!("created organization \"{name}\""),
    )
    .await?;
    Ok(Redirect::to("/admin/packages").into_response())
}

// ---------------------------------------------------------------- Authorize Device

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    l: Layout,
    org_name: String,
    devices: Vec<(String, String)>,
    selected: String,
    new_device_name: String,
    user_code: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct DeviceQuery {
    user_code: Option<String>,
}

fn device_page_for(session: &Session, org: &Org, devices: &[Device]) -> DevicePage {
    DevicePage {
        l: Layout::of(session, Some(org), "device"),
        org_name: org.name.clone(),
        devices: devices
            .iter()
            .map(|d| {
                let label = if d.revoked_at.is_some() {
                    format!("{} (revoked)", d.name)
                } else {
                    d.name.clone()
                };
                (d.id.to_string(), label)
            })
            .collect(),
        selected: devices
            .first()
            .map(|d| d.id.to_string())
            .unwrap_or_else(|| "new".into()),
        new_device_name: String::new(),
        user_code: String::new(),
        error: None,
    }
}

async fn device_page(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Query(q): Query<DeviceQuery>,
) -> PageResult {
    let devices = state.db.devices(org.id).await?;
    let mut page = device_page_for(&session, &org, &devices);
    page.user_code = q.user_code.unwrap_or_default().chars().take(12).collect();
    Ok(render(&page))
}

#[derive(Deserialize)]
struct DeviceForm {
    csrf: String,
    device: String,
    #[serde(default)]
    new_device_name: String,
    user_code: String,
    decision: Option<String>,
}

/// The device the admin chose: an existing one of the organization or a new name.
enum Chosen {
    Existing(Device),
    New(String),
}

/// Validates the form; on a problem, the form again with a message.
async fn check_device_form(
    state: &AppState,
    session: &Session,
    org: &Org,
    addr: &str,
    form: &DeviceForm,
) -> Result<Result<(Chosen, crate::store::DeviceCode, String), Response>, Error> {
    let now = state.now();
    let devices = state.db.devices(org.id).await?;
    let again = |message: String, status: StatusCode| {
        let mut page = device_page_for(session, org, &devices);
        page.selected = form.device.chars().take(20).collect();
        page.new_device_name = form.new_device_name.chars().take(100).collect();
        page.user_code = form.user_code.chars().take(12).collect();
        page.error = Some(message);
        (status, render(&page)).into_response()
    };
    let session_key = format!("session:{}", URL_SAFE_NO_PAD.encode(&session.id_hash));
    let addr_key = format!("addr:{addr}");
    let limiter = &state.limits.user_code;
    if let Err(wait) = limiter
        .check(&session_key, USER_CODE_MAX_FAILURES, now)
        .and(limiter.check(&addr_key, USER_CODE_MAX_FAILURES * 4, now))
    {
        let minutes = (wait + 59) / 60;
        return Ok(Err(again(
            format!("Too many wrong user codes. Code entry is locked for {minutes} minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        )));
    }
    let pending = match secrets::normalize_user_code(&form.user_code) {
        Some(code) => state.db.pending_device_code(&code, now).await?,
        None => None,
    };
    let Some(pending) = pending else {
        limiter.fail(&session_key, now);
        limiter.fail(&addr_key, now);
        return Ok(Err(again(
            "This user code is not valid or has expired. Check the code shown on the device."
                .into(),
            StatusCode::BAD_REQUEST,
        )));
    };
    let chosen = if form.device == "new" {
        let name = match text(&form.new_device_name, "New device name", 100, true) {
            Ok(n) => n,
            Err(e) => return Ok(Err(again(e.public_message(), StatusCode::BAD_REQUEST))),
        };
        if devices.iter().any(|d| d.name == name) {
            return Ok(Err(again(
                format!("A device named \"{name}\" exists already; choose it from the list."),
                StatusCode::BAD_REQUEST,
            )));
        }
        Chosen::New(name)
    } else {
        let found = form
            .device
            .parse::<i64>()
            .ok()
            .and_then(|id| devices.iter().find(|d| d.id == id).cloned());
        match found {
            Some(d) => Chosen::Existing(d),
            None => {
                return Ok(Err(again(
                    "Choose a device.".into(),
                    StatusCode::BAD_REQUEST,
                )))
            }
        }
    };
    let code = pending.user_code.clone();
    Ok(Ok((chosen, pending, code)))
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage {
    l: Layout,
    org_name: String,
    device_label: String,
    server_id: String,
    device: String,
    new_device_name: String,
    user_code: String,
    user_code_display: String,
}

async fn device_submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    OrgAdmin { session, org }: OrgAdmin,
    Posted(form): Posted<DeviceForm>,
) -> PageResult {
    let (chosen, _pending, code) =
        match check_device_form(&state, &session, &org, &addr, &form).await? {
            Ok(v) => v,
            Err(page) => return Ok(page),
        };
    let (device_label, server_id, device) = match &chosen {
        Chosen::Existing(d) => (d.name.clone(), d.server_id.clone(), d.id.to_string()),
        Chosen::New(name) => (
            format!("{name} (new device)"),
            "assigned on authorization".to_owned(),
            "new".to_owned(),
        ),
    };
    let page = ConfirmPage {
        l: Layout::of(&session, Some(&org), "device"),
        org_name: org.name.clone(),
        device_label,
        server_id,
        device,
        new_device_name: match &chosen {
            Chosen::New(n) => n.clone(),
            Chosen::Existing(_) => String::new(),
        },
        user_code_display: secrets::display_user_code(&code),
        user_code: code,
    };
    Ok(render(&page))
}

async fn device_confirm(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    OrgAdmin { session, org }: OrgAdmin,
    Posted(form): Posted<DeviceForm>,
) -> PageResult {
    let approve = match form.decision.as_deref() {
        Some("authorize") => true,
        Some("deny") => false,
        _ => return Err(Error::InvalidRequest("choose Authorize or Deny".into()).into()),
    };
    let (chosen, pending, _code) =
        match check_device_form(&state, &session, &org, &addr, &form).await? {
            Ok(v) => v,
            Err(page) => return Ok(page),
        };
    let now = state.now();
    let device = match chosen {
        Chosen::Existing(d) => Some(d),
        Chosen::New(name) if approve => Some(register(&state, &session, &org, &name).await?),
        Chosen::New(_) => None,
    };
    let decided = state
        .db
        .decide_device_code(
            pending.id,
            approve,
            device.as_ref().map(|d| d.id),
            Some(session.user_id),
            now,
        )
        .await?;
    if !decided {
        return Err(Error::InvalidRequest("this user code is no longer pending".into()).into());
    }
    let name = device
        .as_ref()
        .map(|d| d.name.clone())
        .unwrap_or_else(|| form.new_device_name.clone());
    let (action, detail, title, kind, message) = if approve {
        let d = device
            .as_ref()
            .map(|d| d.server_id.clone())
            .unwrap_or_default();
        (
            "device.authorized",
            format!("authorized device \"{name}\" ({d})"),
            "Device authorized",
            "ok",
            format!("{name} is now licensed for {}. Return to the device and choose Complete Authorization.", org.name),
        )
    } else {
        (
            "device.denied",
            format!("denied authorization of device \"{name}\""),
            "Authorization denied",
            "error",
            format!("The request of {name} was denied. The device receives no license."),
        )
    };
    record(&state, &session, org.id, action, &detail).await?;
    state.cache.account_changed();
    let page = MessagePage {
        l: Layout::of(&session, Some(&org), "device"),
        title: title.into(),
        kind,
        message,
        link: Some(("/admin/devices".into(), "View devices".into())),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------- devices

struct DeviceRow {
    id: i64,
    name: String,
    server_id: String,
    status: &'static str,
    status_class: &'static str,
    last_seen: String,
    token_expiry: String,
    can_revoke: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    l: Layout,
    org_name: String,
    devices: Vec<DeviceRow>,
}

async fn devices_page(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
) -> PageResult {
    let now = state.now();
    let devices = state
        .db
        .devices(org.id)
        .await?
        .into_iter()
        .map(|d| {
            let (status, status_class) = match (d.revoked_at, d.token_expiry) {
                (Some(_), _) => ("Revoked", "bad"),
                (None, Some(exp)) if exp > now => ("Licensed", "ok"),
                (None, Some(_)) => ("Token expired", "warn"),
                (None, None) if d.authorized_at.is_some() => ("License removed", "idle"),
                (None, None) => ("Not authorized", "idle"),
            };
            DeviceRow {
                id: d.id,
                name: d.name,
                server_id: d.server_id,
                status,
                status_class,
                last_seen: fmt_time(d.last_seen),
                token_expiry: fmt_time(d.token_expiry),
                can_revoke: d.revoked_at.is_none() && d.authorized_at.is_some(),
            }
        })
        .collect();
    Ok(render(&DevicesPage {
        l: Layout::of(&session, Some(&org), "devices"),
        org_name: org.name.clone(),
        devices,
    }))
}

async fn register_device(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Posted(form): Posted<NameForm>,
) -> PageResult {
    let name = text(&form.name, "Device name", 100, true)?;
    if state.db.device_by_name(org.id, &name).await?.is_some() {
        return Err(
            Error::InvalidRequest(format!("a device named \"{name}\" exists already")).into(),
        );
    }
    register(&state, &session, &org, &name).await?;
    Ok(Redirect::to("/admin/devices").into_response())
}

/// Registers a new device in the organization, with a new Server ID.
async fn register(
    state: &AppState,
    session: &Session,
    org: &Org,
    name: &str,
) -> Result<Device, Error> {
    let d = state
        .db
        .create_device(org.id, name, &secrets::new_server_id(), state.now())
        .await?;
    let detail = format!("registered device \"{}\" ({})", d.name, d.server_id);
    record(state, session, org.id, "device.registered", &detail).await?;
    Ok(d)
}

async fn revoke_device(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Path(id): Path<i64>,
    Posted(_): Posted<CsrfForm>,
) -> PageResult {
    let device = state
        .db
        .device(id)
        .await?
        .filter(|d| d.org_id == org.id)
        .ok_or(Error::NotFound)?;
    let now = state.now();
    state.db.revoke_device(device.id, now).await?;
    state.cache.account_changed();
    record(
        &state,
        &session,
        org.id,
        "device.revoked",
        &format!("revoked device \"{}\" ({})", device.name, device.server_id),
    )
    .await?;
    Ok(Redirect::to("/admin/devices").into_response())
}

// ---------------------------------------------------------------- packages

struct PackageRow {
    id: i64,
    code: String,
    name: String,
    status: &'static str,
    status_class: &'static str,
    valid_from: String,
    valid_until: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "packages.html")]
struct PackagesPage {
    l: Layout,
    org_name: String,
    packages: Vec<PackageRow>,
    features: String,
    hub_server_name: String,
    hub_server_url: String,
    valid_from: String,
    valid_until: String,
    renewal_date: String,
    today: String,
    next_year: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn packages_page(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
) -> PageResult {
    let (packages, licenses, assignments) = state.db.packages(org.id).await?;
    let model = build_packages(&packages, &licenses, &assignments);
    let rows = packages
        .iter()
        .zip(model)
        .map(|(p, m)| {
            let (status, status_class) = match p.status.as_str() {
                "active" => ("Active", "ok"),
                "suspended" => ("Suspended", "warn"),
                _ => ("Revoked", "bad"),
            };
            let summary = m
                .licenses
                .iter()
                .map(|l| format!("{} {}/{}", l.kind.label(), l.used, l.total))
                .collect::<Vec<_>>()
                .join(" · ");
            PackageRow {
                id: p.id,
                code: m.id,
                name: p.name.clone(),
                status,
                status_class,
                valid_from: fmt_date(Some(p.valid_from)),
                valid_until: fmt_date(Some(p.valid_until)),
                summary: if summary.is_empty() {
                    "—".into()
                } else {
                    summary
                },
            }
        })
        .collect();
    let now = state.now();
    Ok(render(&PackagesPage {
        l: Layout::of(&session, Some(&org), "packages"),
        org_name: org.name.clone(),
        packages: rows,
        features: org.feature_list().join(", "),
        hub_server_name: org.hub_server_name.clone(),
        hub_server_url: org.hub_server_url.clone(),
        valid_from: fmt_date(Some(org.valid_from)),
        valid_until: fmt_date(Some(org.valid_until)),
        renewal_date: fmt_date(org.renewal_date),
        today: fmt_date(Some(now)),
        next_year: fmt_date(Some(now + 365 * DAY)),
        notice: None,
        error: None,
    }))
}

#[derive(Deserialize)]
struct AccountForm {
    csrf: String,
    features: String,
    hub_server_name: String,
    hub_server_url: String,
    valid_from: String,
    valid_until: String,
    #[serde(default)]
    renewal_date: String,
}

async fn update_account(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Posted(form): Posted<AccountForm>,
) -> PageResult {
    let features: Vec<String> = text(&form.features, "Features", 500, false)?
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    let hub_server_url = text(&form.hub_server_url, "Hub server URL", 500, false)?;
    let scheme_ok = hub_server_url.starts_with("https://") || hub_server_url.starts_with("http://");
    if !hub_server_url.is_empty() && !scheme_ok {
        return Err(Error::InvalidRequest(
            "Hub server URL must start with https:// or http://".into(),
        )
        .into());
    }
    let valid_from = parse_date(&form.valid_from, "Valid from")?;
    let valid_until = parse_date(&form.valid_until, "Valid until")?;
    if valid_until <= valid_from {
        return Err(Error::InvalidRequest("Valid until must be after Valid from".into()).into());
    }
    let renewal_date = if form.renewal_date.trim().is_empty() {
        None
    } else {
        Some(parse_date(&form.renewal_date, "Renewal date")?)
    };
    let input = OrgInput {
        name: org.name.clone(),
        features,
        hub_server_name: text(&form.hub_server_name, "Hub server name", 200, false)?,
        hub_server_url,
        renewal_date,
        valid_from,
        valid_until,
    };
    state.db.update_org(org.id, &input).await?;
    state.cache.account_changed();
    let detail = format!(
        "account updated: features [{}], hub server \"{}\" <{}>, valid {} – {}, renewal date {}",
        input.features.join(", "),
        input.hub_server_name,
        input.hub_server_url,
        fmt_date(Some(valid_from)),
        fmt_date(Some(valid_until)),
        fmt_date(renewal_date)
    );
    record(&state, &session, org.id, "account.updated", &detail).await?;
    Ok(Redirect::to("/admin/packages").into_response())
}

#[derive(Deserialize)]
struct NewPackageForm {
    csrf: String,
    name: String,
    valid_from: String,
    valid_until: String,
}

async fn create_package(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Posted(form): Posted<NewPackageForm>,
) -> PageResult {
    let name = text(&form.name, "Name", 200, true)?;
    let from = parse_date(&form.valid_from, "Valid from")?;
    let until = parse_date(&form.valid_until, "Valid until")?;
    if until <= from {
        return Err(Error::InvalidRequest("Valid until must be after Valid from".into()).into());
    }
    let id = state.db.create_package(org.id, &name, from, until).await?;
    state.cache.account_changed();
    record(
        &state,
        &session,
        org.id,
        "package.created",
        &format!("created license package \"{name}\""),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/packages/{id}")).into_response())
}

struct KindRow {
    kind: String,
    label: String,
    assigned_to: &'static str,
    used: u32,
    total: u32,
}

struct AssignmentView {
    id: i64,
    name: String,
    kind: String,
}

#[derive(Template)]
#[template(path = "package_edit.html")]
struct PackagePage {
    l: Layout,
    id: i64,
    code: String,
    name: String,
    status: String,
    statuses: Vec<(&'static str, &'static str)>,
    valid_from: String,
    valid_until: String,
    kinds: Vec<KindRow>,
    assignments: Vec<AssignmentView>,
    error: Option<String>,
}

async fn package_of(state: &AppState, org: &Org, id: i64) -> Result<crate::store::Package, Error> {
    state
        .db
        .package(id)
        .await?
        .filter(|p| p.org_id == org.id)
        .ok_or(Error::NotFound)
}

async fn package_page(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Path(id): Path<i64>,
) -> PageResult {
    let package = package_of(&state, &org, id).await?;
    let (_, licenses, assignments) = state.db.packages(org.id).await?;
    let kinds = LicenseKind::ALL
        .iter()
        .map(|k| {
            let total = licenses
                .iter()
                .find(|l| l.package_id == id && l.kind == k.as_str())
                .map(|l| u32::try_from(l.total).unwrap_or(0))
                .unwrap_or(0);
            let used = assignments
                .iter()
                .filter(|a| a.package_id == id && a.kind == k.as_str())
                .count();
            KindRow {
                kind: k.as_str().to_owned(),
                label: k.label().to_owned(),
                assigned_to: match k.assigned_to() {
                    Some(AssignmentKind::Object) => "Backed-up objects",
                    _ => "Agents",
                },
                used: u32::try_from(used).unwrap_or(u32::MAX),
                total,
            }
        })
        .collect();
    let assignments = assignments
        .into_iter()
        .filter(|a| a.package_id == id)
        .map(|a| AssignmentView {
            id: a.id,
            name: a.name,
            kind: LicenseKind::from_wire(&a.kind).label().to_owned(),
        })
        .collect();
    Ok(render(&PackagePage {
        l: Layout::of(&session, Some(&org), "packages"),
        id,
        code: format!("PKG-{id:05}"),
        name: package.name,
        status: package.status,
        statuses: vec![
            ("active", "Active"),
            ("suspended", "Suspended"),
            ("revoked", "Revoked"),
        ],
        valid_from: fmt_date(Some(package.valid_from)),
        valid_until: fmt_date(Some(package.valid_until)),
        kinds,
        assignments,
        error: None,
    }))
}

#[derive(Deserialize)]
struct PackageForm {
    csrf: String,
    name: String,
    status: String,
    valid_from: String,
    valid_until: String,
    total_endpoint: Option<String>,
    total_server: Option<String>,
    total_feature_worker: Option<String>,
    total_cloud_worker: Option<String>,
    total_local_worker: Option<String>,
    total_microsoft_365_user: Option<String>,
    total_git_repository: Option<String>,
}

async fn update_package(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Path(id): Path<i64>,
    Posted(form): Posted<PackageForm>,
) -> PageResult {
    package_of(&state, &org, id).await?;
    let name = text(&form.name, "Name", 200, true)?;
    if !matches!(form.status.as_str(), "active" | "suspended" | "revoked") {
        return Err(Error::InvalidRequest("unknown status".into()).into());
    }
    let from = parse_date(&form.valid_from, "Valid from")?;
    let until = parse_date(&form.valid_until, "Valid until")?;
    if until <= from {
        return Err(Error::InvalidRequest("Valid until must be after Valid from".into()).into());
    }
    let totals = [
        (LicenseKind::Endpoint, &form.total_endpoint),
        (LicenseKind::Server, &form.total_server),
        (LicenseKind::FeatureWorker, &form.total_feature_worker),
        (LicenseKind::CloudWorker, &form.total_cloud_worker),
        (LicenseKind::LocalWorker, &form.total_local_worker),
        (
            LicenseKind::Microsoft365User,
            &form.total_microsoft_365_user,
        ),
        (LicenseKind::GitRepository, &form.total_git_repository),
    ];
    let mut parsed = Vec::new();
    for (kind, value) in totals {
        let v = value.as_deref().map(str::trim).unwrap_or("");
        let n: i64 = if v.is_empty() {
            0
        } else {
            v.parse()
                .ok()
                .filter(|n| (0..=1_000_000).contains(n))
                .ok_or_else(|| {
                    Error::InvalidRequest(format!("{}: a number from 0 to 1000000", kind.label()))
                })?
        };
        parsed.push((kind, n));
    }
    state
        .db
        .update_package(id, &name, &form.status, from, until)
        .await?;
    for (kind, n) in &parsed {
        state.db.set_license_total(id, kind.as_str(), *n).await?;
    }
    state.cache.account_changed();
    let detail = format!(
        "updated license package \"{name}\": status {}, valid {} – {}, {}",
        form.status,
        fmt_date(Some(from)),
        fmt_date(Some(until)),
        parsed
            .iter()
            .map(|(k, n)| format!("{} {n}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    record(&state, &session, org.id, "package.updated", &detail).await?;
    Ok(Redirect::to("/admin/packages").into_response())
}

async fn renew_package(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Path(id): Path<i64>,
    Posted(_): Posted<CsrfForm>,
) -> PageResult {
    let p = package_of(&state, &org, id).await?;
    let now = state.now();
    // Renewal extends from the later of today and the current end.
    let until = p.valid_until.max(now) + 365 * DAY;
    state
        .db
        .update_package(id, &p.name, "active", p.valid_from, until)
        .await?;
    let input = OrgInput {
        name: org.name.clone(),
        features: org.feature_list(),
        hub_server_name: org.hub_server_name.clone(),
        hub_server_url: org.hub_server_url.clone(),
        renewal_date: Some(org.renewal_date.unwrap_or(now).max(until)),
        valid_from: org.valid_from,
        valid_until: org.valid_until.max(until),
    };
    state.db.update_org(org.id, &input).await?;
    state.cache.account_changed();
    let detail = format!(
        "renewed license package \"{}\" until {}",
        p.name,
        fmt_date(Some(until))
    );
    record(&state, &session, org.id, "package.renewed", &detail).await?;
    Ok(Redirect::to("/admin/packages").into_response())
}

#[derive(Deserialize)]
struct AssignmentForm {
    csrf: String,
    kind: String,
    name: String,
}

async fn add_assignment(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Path(id): Path<i64>,
    Posted(form): Posted<AssignmentForm>,
) -> PageResult {
    let p = package_of(&state, &org, id).await?;
    let kind = LicenseKind::ALL
        .iter()
        .find(|k| k.as_str() == form.kind)
        .ok_or_else(|| Error::InvalidRequest("unknown license kind".into()))?;
    let name = text(&form.name, "Name", 200, true)?;
    let to = match kind.assigned_to() {
        Some(AssignmentKind::Object) => "object",
        _ => "agent",
    };
    state
        .db
        .add_assignment(id, kind.as_str(), &name, to)
        .await?;
    state.cache.account_changed();
    let detail = format!(
        "assigned a {} license of \"{}\" to \"{name}\"",
        kind.label(),
        p.name
    );
    record(&state, &session, org.id, "license.assigned", &detail).await?;
    Ok(Redirect::to(&format!("/admin/packages/{id}")).into_response())
}

async fn delete_assignment(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
    Path((id, aid)): Path<(i64, i64)>,
    Posted(_): Posted<CsrfForm>,
) -> PageResult {
    let p = package_of(&state, &org, id).await?;
    state.db.delete_assignment(id, aid).await?;
    state.cache.account_changed();
    let detail = format!("unassigned license {aid} of \"{}\"", p.name);
    record(&state, &session, org.id, "license.unassigned", &detail).await?;
    Ok(Redirect::to(&format!("/admin/packages/{id}")).into_response())
}

// ---------------------------------------------------------------- audit

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    l: Layout,
    org_name: String,
    entries: Vec<(String, String, String, String)>,
}

async fn audit_page(
    State(state): State<AppState>,
    OrgAdmin { session, org }: OrgAdmin,
) -> PageResult {
    let entries = state
        .db
        .audit_log(org.id, 500)
        .await?
        .into_iter()
        .map(|e| (fmt_time(Some(e.at)), e.actor, e.action, e.detail))
        .collect();
    Ok(render(&AuditPage {
        l: Layout::of(&session, Some(&org), "audit"),
        org_name: org.name.clone(),
        entries,
    }))
}
