//! Accepting an invitation: the single-use link itself is the credential
//! (256 random bits, stored only as a hash), so the page needs no session.
//! A new user sets a password; an existing one gains the organization.

use askama::Template;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::page::{render, Layout, MessagePage, PageResult};
use super::session::PageForm;
use crate::accounts::check_new_password;
use crate::error::Error;
use crate::store::{Accepted, Invitation};
use crate::{secrets, AppState};

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    l: Layout,
    token: String,
    email: String,
    role: &'static str,
    org: String,
    new_user: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Token {
    token: String,
}

/// The live invitation of this link, or a page saying it is not.
async fn live(state: &AppState, token: &str) -> Result<Result<Invitation, PageResult>, Error> {
    let invitation = if token.len() <= 100 {
        state
            .db
            .invitation(&secrets::hash(token), state.now())
            .await?
    } else {
        None
    };
    Ok(invitation.ok_or_else(|| {
        Ok(render(&MessagePage {
            l: Layout::anonymous(),
            title: "Invitation not valid".into(),
            kind: "error",
            message: "This invitation link was used already, has expired, or was never issued. \
                      Ask whoever invited you for a new one."
                .into(),
            link: Some(("/admin/login".into(), "Sign in".into())),
        }))
    }))
}

async fn form(
    state: &AppState,
    token: String,
    inv: Invitation,
    error: Option<String>,
) -> PageResult {
    let new_user = state.db.user_by_email(&inv.email).await?.is_none();
    Ok(render(&InvitationPage {
        l: Layout::anonymous(),
        token,
        email: inv.email,
        role: inv.role.label(),
        org: inv.org_name.unwrap_or_else(|| "every organization".into()),
        new_user,
        error,
    }))
}

pub(super) async fn page(
    State(state): State<AppState>,
    Path(Token { token }): Path<Token>,
) -> PageResult {
    match live(&state, &token).await? {
        Ok(inv) => form(&state, token, inv, None).await,
        Err(page) => page,
    }
}

#[derive(Deserialize)]
pub(super) struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn accept(
    State(state): State<AppState>,
    Path(Token { token }): Path<Token>,
    PageForm(f): PageForm<AcceptForm>,
) -> PageResult {
    let inv = match live(&state, &token).await? {
        Ok(inv) => inv,
        Err(page) => return page,
    };
    let new_user = state.db.user_by_email(&inv.email).await?.is_none();
    let hash = if new_user {
        let problem = check_new_password(&f.password)
            .err()
            .or_else(|| (f.password != f.confirm).then(|| "the passwords differ".to_owned()));
        if let Some(problem) = problem {
            return form(&state, token, inv, Some(problem)).await;
        }
        let password = f.password.clone();
        state
            .limits
            .passwords
            .run(move || secrets::hash_password(&password).map_err(|e| e.to_string()))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?
    } else {
        String::new()
    };
    let accepted = state
        .db
        .accept_invitation(&secrets::hash(&token), &hash, state.now())
        .await?;
    let message = match accepted {
        Accepted::NewUser(_) => format!(
            "Your account {} is ready. Sign in with your new password.",
            inv.email
        ),
        Accepted::ExistingUser(_) => format!(
            "{} now also administers {}. Sign in as usual.",
            inv.email,
            inv.org_name.as_deref().unwrap_or("every organization")
        ),
        Accepted::Invalid => {
            return match live(&state, &token).await? {
                Ok(_) => Err(Error::internal("invitation neither accepted nor invalid").into()),
                Err(page) => page,
            }
        }
    };
    Ok(render(&MessagePage {
        l: Layout::anonymous(),
        title: "Invitation accepted".into(),
        kind: "ok",
        message,
        link: Some(("/admin/login".into(), "Sign in".into())),
    }))
}
