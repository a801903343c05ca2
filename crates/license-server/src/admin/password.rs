//! Changing one's own password: the current one first (counted against the
//! account's sign-in backoff, checked behind the password gate), then the
//! new one twice. Other sessions of the user end.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audit::record;
use super::page::{render, Layout, MessagePage, PageResult};
use super::session::{Admin, Posted, Session};
use crate::accounts::check_new_password;
use crate::error::Error;
use crate::limits::SIGN_IN_MAX_FAILURES_PER_ACCOUNT;
use crate::{secrets, AppState};

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    l: Layout,
    error: Option<String>,
}

fn form(session: &Session, error: Option<String>) -> PasswordPage {
    PasswordPage {
        l: Layout::of(session, None, ""),
        error,
    }
}

pub(super) async fn page(Admin(session): Admin) -> PageResult {
    Ok(render(&form(&session, None)))
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    csrf: String,
    current: String,
    password: String,
    confirm: String,
}

csrf_token!(PasswordForm);

pub(super) async fn change(
    State(state): State<AppState>,
    Admin(session): Admin,
    Posted(f): Posted<PasswordForm>,
) -> PageResult {
    let again = |status: StatusCode, e: &str| {
        Ok((status, render(&form(&session, Some(e.to_owned())))).into_response())
    };
    if let Err(e) = check_new_password(&f.password) {
        return again(StatusCode::BAD_REQUEST, &e);
    }
    if f.password != f.confirm {
        return again(StatusCode::BAD_REQUEST, "The new passwords differ.");
    }
    let user = state
        .db
        .user(session.user_id)
        .await?
        .ok_or(Error::NotFound)?;
    let key = format!("user:{}", user.email.to_lowercase());
    let now = state.now();
    let limits = &state.limits;
    if let Err(wait) = limits
        .sign_in_account
        .attempt(&key, SIGN_IN_MAX_FAILURES_PER_ACCOUNT, now)
        .await?
    {
        let e = format!("Too many wrong passwords. Try again in {wait} seconds.");
        return again(StatusCode::TOO_MANY_REQUESTS, &e);
    }
    let (current, stored, new) = (f.current.clone(), user.password_hash.clone(), f.password);
    let checked = limits
        .passwords
        .run(move || {
            if current.len() > 1024 || !secrets::verify_password(&current, &stored) {
                return Ok(None);
            }
            secrets::hash_password(&new).map(Some)
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    let Some(hash) = checked else {
        return again(StatusCode::UNAUTHORIZED, "The current password is wrong.");
    };
    limits.sign_in_account.reset(&key).await?;
    state.db.set_password(user.id, &hash).await?;
    state
        .db
        .end_other_sessions(user.id, &session.id_hash)
        .await?;
    if let Some(org) = session.org_id {
        record(
            &state,
            &session,
            org,
            "user.password_changed",
            "changed their password",
        )
        .await?;
    }
    Ok(render(&MessagePage {
        l: Layout::of(&session, None, ""),
        title: "Password changed".into(),
        kind: "ok",
        message: "Your password is changed; your other sessions were signed out.".into(),
        link: Some(("/admin".into(), "Back to the admin pages".into())),
    }))
}
