//! Vendor API tokens: vendor operators create them (shown once, stored
//! only as SHA-256) and revoke them. See `crate::vendor_api`.

use askama::Template;
use axum::extract::{Path, State};

use super::audit::record_vendor;
use super::page::{fmt_time, render, see_other, text, Layout, PageResult};
use super::session::{Confirmed, ManageApiTokens, Permitted, Posted, Session};
use crate::error::Error;
use crate::store::{ApiScope, ApiToken};
use crate::vendor_api::auth::new_token;
use crate::{secrets, AppState};

struct TokenRow {
    id: i64,
    name: String,
    scope: &'static str,
    created_by: String,
    created: String,
    last_used: String,
    live: bool,
}

impl TokenRow {
    fn of(t: ApiToken) -> TokenRow {
        TokenRow {
            id: t.id,
            scope: t.scope.as_str(),
            created: fmt_time(Some(t.created_at)),
            last_used: fmt_time(t.last_used_at),
            live: t.revoked_at.is_none(),
            name: t.name,
            created_by: t.created_by,
        }
    }
}

#[derive(Template)]
#[template(path = "api_tokens.html")]
struct ApiTokensPage {
    l: Layout,
    tokens: Vec<TokenRow>,
    /// The name and value of the token just created: shown this once.
    created: Option<(String, String)>,
    base: String,
}

async fn show(
    state: &AppState,
    session: &Session,
    created: Option<(String, String)>,
) -> PageResult {
    let org = session.current_org(state).await?;
    let tokens = state.db.api_tokens().await?;
    Ok(render(&ApiTokensPage {
        l: Layout::of(session, org.as_ref(), "api-tokens"),
        tokens: tokens.into_iter().map(TokenRow::of).collect(),
        created,
        base: state.config.url(crate::vendor_api::PREFIX),
    }))
}

pub(super) async fn page(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageApiTokens>,
) -> PageResult {
    show(&state, &session, None).await
}

#[derive(serde::Deserialize)]
pub(super) struct NewTokenForm {
    csrf: String,
    name: String,
    scope: String,
}

csrf_token!(NewTokenForm);

/// Creates a token and shows it, once.
pub(super) async fn create(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageApiTokens>,
    Posted(form): Posted<NewTokenForm>,
) -> PageResult {
    let name = text(&form.name, "Name", 100, true)?;
    let scope = ApiScope::parse(&form.scope)
        .ok_or_else(|| Error::InvalidRequest("Scope: read or write".into()))?;
    let token = new_token();
    let id = state
        .db
        .create_api_token(
            &name,
            &secrets::hash(&token),
            scope,
            &session.email,
            state.now(),
        )
        .await?;
    if id.is_none() {
        return Err(
            Error::InvalidRequest(format!("a token named \"{name}\" exists already")).into(),
        );
    }
    let detail = format!("created API token \"{name}\" ({} scope)", scope.as_str());
    record_vendor(&state, &session, "api_token.created", detail).await?;
    show(&state, &session, Some((name, token))).await
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageApiTokens>,
    Path(id): Path<i64>,
    _: Confirmed,
) -> PageResult {
    let name = state
        .db
        .revoke_api_token(id, state.now())
        .await?
        .ok_or(Error::NotFound)?;
    let detail = format!("revoked API token \"{name}\"");
    record_vendor(&state, &session, "api_token.revoked", detail).await?;
    see_other("/admin/api-tokens")
}
