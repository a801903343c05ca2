//! Sign-in and sign-out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{percent_encode, render, safe_next, Layout, PageResult};
use super::session::{
    check_csrf, cookie, load_session, set_cookie, with_cookie, ClientAddr, CsrfForm, PageForm,
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL_SECS,
};
use crate::error::Error;
use crate::limits::{SIGN_IN_MAX_FAILURES_PER_ACCOUNT, SIGN_IN_MAX_FAILURES_PER_ADDRESS};
use crate::{secrets, AppState};

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
pub(super) struct NextQuery {
    pub(super) next: Option<String>,
}

/// The sign-in form, with a fresh double-submit CSRF cookie.
fn login_form(state: &AppState, next: String, email: String, error: Option<String>) -> Response {
    let login_csrf = secrets::random_token();
    let page = LoginPage {
        l: Layout::anonymous(),
        login_csrf: login_csrf.clone(),
        next,
        email,
        error,
    };
    with_cookie(
        render(&page),
        set_cookie(state, LOGIN_CSRF_COOKIE, &login_csrf, 3600),
    )
}

pub(super) async fn page(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    login_form(&state, safe_next(q.next.as_deref()), String::new(), None)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
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

pub(super) async fn submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref());
    let relogin = |error: &str, status: StatusCode| {
        let email = form.email.chars().take(200).collect();
        let page = login_form(&state, next.clone(), email, Some(error.to_owned()));
        (status, page).into_response()
    };
    let cookie_csrf = cookie(&state, &headers, LOGIN_CSRF_COOKIE).unwrap_or("");
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
    let limits = &state.limits;
    // Each attempt is counted before its password is checked, so a flood
    // of concurrent attempts cannot all get past the limits first.
    let mut counted = limits
        .sign_in
        .attempt(&addr_key, SIGN_IN_MAX_FAILURES_PER_ADDRESS, now)
        .await?;
    if counted.is_ok() {
        counted = limits
            .sign_in_account
            .attempt(&user_key, SIGN_IN_MAX_FAILURES_PER_ACCOUNT, now)
            .await?;
        if counted.is_err() {
            limits.sign_in.forgive(&addr_key, now).await?;
        }
    }
    if let Err(wait) = counted {
        let when = if wait < 60 {
            format!("{wait} seconds")
        } else {
            format!("{} minutes", (wait + 59) / 60)
        };
        return Ok(relogin(
            &format!("Too many failed sign-ins. Try again in {when}."),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let user = if email.len() <= 254 && form.password.len() <= 1024 {
        state.db.user_by_email(&email).await?
    } else {
        None
    };
    // argon2 is slow and memory-hard on purpose: off the async workers, and
    // one at a time per core.
    let password = form.password.clone();
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = limits
        .passwords
        .run(move || secrets::verify_password(&password, &stored))
        .await
        .map_err(Error::internal)?;
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(addr = %addr, "sign-in failed");
        return Ok(relogin(
            "Wrong email or password.",
            StatusCode::UNAUTHORIZED,
        ));
    };
    if user.disabled_at.is_some() {
        return Ok(relogin(
            "This account is disabled. Ask the vendor's operators to enable it.",
            StatusCode::FORBIDDEN,
        ));
    }
    limits.sign_in.forgive(&addr_key, now).await?;
    limits.sign_in_account.reset(&user_key).await?;
    let session_id = secrets::random_token();
    let id_hash = secrets::hash(&session_id);
    let orgs = state.db.user_orgs(user.id, user.role).await?;
    // With one organization, the session starts in it.
    let only = match orgs.as_slice() {
        [only] => Some(only.id),
        _ => None,
    };
    state
        .db
        .create_session(&id_hash, user.id, only, now, now + SESSION_TTL_SECS)
        .await?;
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

pub(super) async fn logout(
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
