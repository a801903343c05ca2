//! Who is asking: the session cookie, the extractors that require a signed-in
//! admin ([`Admin`]), one working in an organization ([`OrgAdmin`]), and one
//! whose role allows an action ([`Permitted`], [`PermittedInOrg`]; the role
//! check itself is `roles::Role::may`), and the CSRF check of every posted
//! form ([`Posted`]).

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::page::{percent_encode, PageError};
use crate::error::Error;
use crate::roles::{Action, Role};
use crate::store::Org;
use crate::{secrets, AppState};

pub(super) const SESSION_COOKIE: &str = "ls_session";
pub(super) const LOGIN_CSRF_COOKIE: &str = "ls_login_csrf";
pub(super) const SESSION_TTL_SECS: i64 = 12 * 3600;

/// Form body whose rejections become error pages (4xx), never 500.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
        if multipart {
            return multipart_form(req, state).await.map(PageForm);
        }
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(r) => Err(rejected(r.status(), r.body_text())),
        }
    }
}

/// A form body that could not be read: 413 past the admin pages' body
/// limit, else 400 saying why.
fn rejected(status: axum::http::StatusCode, why: String) -> PageError {
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        PageError(Error::PayloadTooLarge)
    } else {
        PageError(Error::InvalidRequest(why))
    }
}

/// A `multipart/form-data` form (one with a file to upload), read into the
/// same form type: every part is a text field, a file's content included.
/// The body limit of the admin pages bounds it; a part that is not UTF-8
/// text is refused, and of two parts with one name the first non-empty is
/// kept.
async fn multipart_form<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, PageError> {
    let unreadable =
        |status, e: String| rejected(status, format!("the form could not be read: {e}"));
    let mut parts = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|r| unreadable(r.status(), r.body_text()))?;
    let mut fields = serde_json::Map::new();
    loop {
        let part = match parts.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(e) => return Err(unreadable(e.status(), e.body_text())),
        };
        let Some(name) = part.name().map(str::to_owned) else {
            continue;
        };
        let file = part.file_name().is_some();
        let bytes = part
            .bytes()
            .await
            .map_err(|e| unreadable(e.status(), e.body_text()))?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            PageError(Error::InvalidRequest(if file {
                "the file chosen is not a text file; choose the file the License Console saved"
                    .into()
            } else {
                format!("the field {name} is not text")
            }))
        })?;
        let keep = fields
            .get(&name)
            .and_then(|v| v.as_str())
            .is_some_and(|v| !v.trim().is_empty());
        if !keep {
            fields.insert(name, serde_json::Value::String(text));
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| unreadable(axum::http::StatusCode::BAD_REQUEST, e.to_string()))
}

/// The caller's address, for rate limits: the peer's, or, when the peer is
/// a trusted reverse proxy (`--trusted-proxy`), the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let trusted = &state.config.trusted_proxies;
        let Some(peer) = peer else {
            return Ok(ClientAddr("unknown".into()));
        };
        if !trusted.contains(&peer) {
            return Ok(ClientAddr(peer.to_string()));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let client = forwarded
            .iter()
            .rev()
            .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer);
        Ok(ClientAddr(client.to_string()))
    }
}

/// The name a cookie goes by: with the `__Host-` prefix when the server is
/// reached over https, so the browser takes it only as Secure, for this
/// host and path `/` (no subdomain or http page can set or shadow it).
fn cookie_name(state: &AppState, name: &str) -> String {
    if state.config.secure_cookies() {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of the cookie `name` (as [`cookie_name`] spells it).
pub(super) fn cookie<'a>(state: &AppState, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let name = cookie_name(state, name);
    let name = name.as_str();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let name = cookie_name(state, name);
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

pub(super) fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Clone)]
pub(super) struct Session {
    pub(super) id_hash: Vec<u8>,
    pub(super) user_id: i64,
    pub(super) email: String,
    pub(super) role: Role,
    pub(super) org_id: Option<i64>,
    pub(super) csrf: String,
}

impl Session {
    /// The organization the session works in, if one is chosen (for the
    /// layout of pages outside any organization).
    pub(super) async fn current_org(&self, state: &AppState) -> Result<Option<Org>, Error> {
        match self.org_id {
            Some(id) => Ok(state.db.org(id).await?),
            None => Ok(None),
        }
    }

    /// Whether the signed-in user's role allows `action`.
    pub(super) fn may(&self, action: Action) -> bool {
        self.role.may(action)
    }

    /// `Ok` when the role allows `action`; 403 otherwise.
    pub(super) fn check(&self, action: Action) -> Result<(), Error> {
        if self.may(action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} is for the vendor's operators; an organization admin cannot do it",
                action.label()
            )))
        }
    }
}

fn csrf_for(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"license-server/csrf/v1\0");
    h.update(session_id.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

pub(super) async fn load_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, Error> {
    let Some(id) = cookie(state, headers, SESSION_COOKIE) else {
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
            role: row.role,
            org_id: row.org_id,
            csrf: csrf_for(id),
        }))
}

/// A redirect to `page`, which sends the admin back to `uri` afterwards.
fn and_back(page: &str, uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
    Redirect::to(&format!("{page}?next={}", percent_encode(next))).into_response()
}

/// Signed in, or a redirect to the sign-in page and back.
async fn require(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Session, Response> {
    match load_session(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(and_back("/admin/login", uri)),
        Err(e) => Err(PageError(e).into_response()),
    }
}

/// Signed in with an organization chosen (and still a member of it, unless
/// the role sees every organization).
async fn require_org(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Session, Org), Response> {
    let session = require(state, headers, uri).await?;
    let Some(org_id) = session.org_id else {
        return Err(and_back("/admin/orgs", uri));
    };
    let member = if session.may(Action::SeeEveryOrganization) {
        Ok(true)
    } else {
        state.db.is_member(session.user_id, org_id).await
    };
    let org = state.db.org(org_id).await;
    match (member, org) {
        (Ok(true), Ok(Some(org))) => Ok((session, org)),
        (Err(e), _) | (_, Err(e)) => Err(PageError(e.into()).into_response()),
        _ => Err(and_back("/admin/orgs", uri)),
    }
}

/// A signed-in admin; any other request is sent to sign in and back.
pub(super) struct Admin(pub(super) Session);

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
pub(super) struct OrgAdmin {
    pub(super) session: Session,
    pub(super) org: Org,
}

impl FromRequestParts<AppState> for OrgAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (session, org) = require_org(state, &parts.headers, &parts.uri).await?;
        parts.extensions.insert(session.clone());
        Ok(OrgAdmin { session, org })
    }
}

/// An action the role check knows, as a type: the parameter of
/// [`Permitted`] and [`PermittedInOrg`].
pub(super) trait Permission {
    const ACTION: Action;
}

macro_rules! permissions {
    ($($name:ident),*) => {
        $(pub(super) struct $name;
        impl Permission for $name {
            const ACTION: Action = Action::$name;
        })*
    };
}

permissions!(
    ManageOrganizations,
    ManagePackages,
    ManageUsers,
    ManageApiTokens,
    ManageKeys,
    AuthorizeDevice,
    ManageDevices,
    ReadPackages,
    ReadAudit,
    ManageOrgAdmins,
    OfflineActivation
);

/// A signed-in admin whose role allows `P`; 403 for any other role.
pub(super) struct Permitted<P> {
    pub(super) session: Session,
    _action: PhantomData<fn() -> P>,
}

impl<P: Permission> FromRequestParts<AppState> for Permitted<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Admin(session) = Admin::from_request_parts(parts, state).await?;
        session
            .check(P::ACTION)
            .map_err(|e| PageError(e).into_response())?;
        Ok(Permitted {
            session,
            _action: PhantomData,
        })
    }
}

/// [`OrgAdmin`] whose role allows `P` in the organization; 403 for any
/// other role.
pub(super) struct PermittedInOrg<P> {
    pub(super) session: Session,
    pub(super) org: Org,
    _action: PhantomData<fn() -> P>,
}

impl<P: Permission> FromRequestParts<AppState> for PermittedInOrg<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let OrgAdmin { session, org } = OrgAdmin::from_request_parts(parts, state).await?;
        session
            .check(P::ACTION)
            .map_err(|e| PageError(e).into_response())?;
        Ok(PermittedInOrg {
            session,
            org,
            _action: PhantomData,
        })
    }
}

/// A form whose CSRF token matches the session. Goes last among a handler's
/// arguments, after [`Admin`] or [`OrgAdmin`], which find the session.
pub(super) struct Posted<T>(pub(super) T);

/// A form that carries the CSRF token of the session it was served in.
pub(super) trait CsrfToken {
    fn csrf(&self) -> &str;
}

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

pub(super) fn check_csrf(session: &Session, presented: &str) -> Result<(), Error> {
    if secrets::constant_time_eq(session.csrf.as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "the form expired or came from another site; reload the page and try again".into(),
        ))
    }
}

/// A posted form with nothing but its CSRF token, checked: the admin
/// confirmed an action (revoke, renew, unassign).
pub(super) struct Confirmed;

impl FromRequest<AppState> for Confirmed {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        Posted::<CsrfForm>::from_request(req, state).await?;
        Ok(Confirmed)
    }
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: String,
}

/// A form that names something new (an organization, a device).
#[derive(Deserialize)]
pub(super) struct NameForm {
    pub(super) csrf: String,
    pub(super) name: String,
}

csrf_token!(CsrfForm, NameForm);
