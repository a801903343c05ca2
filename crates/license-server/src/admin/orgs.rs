//! Choosing the organization to work in, and creating one.

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::audit::record;
use super::login::NextQuery;
use super::page::{render, safe_next, see_other, text, Layout, PageResult};
use super::session::{Admin, ManageOrganizations, NameForm, Permitted, Posted};
use super::DAY;
use crate::error::Error;
use crate::roles::Action;
use crate::store::OrgInput;
use crate::AppState;

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    l: Layout,
    orgs: Vec<(i64, String)>,
    next: String,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Admin(session): Admin,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let orgs = state.db.user_orgs(session.user_id, session.role).await?;
    let current = session.current_org(&state).await?;
    let page = OrgsPage {
        l: Layout::of(&session, current.as_ref(), ""),
        orgs: orgs.into_iter().map(|o| (o.id, o.name)).collect(),
        next: safe_next(q.next.as_deref()),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub(super) struct ChooseOrgForm {
    csrf: String,
    org_id: i64,
    next: Option<String>,
}

csrf_token!(ChooseOrgForm);

pub(super) async fn choose(
    State(state): State<AppState>,
    Admin(session): Admin,
    Posted(form): Posted<ChooseOrgForm>,
) -> PageResult {
    let allowed = if session.may(Action::SeeEveryOrganization) {
        state.db.org(form.org_id).await?.is_some()
    } else {
        state.db.is_member(session.user_id, form.org_id).await?
    };
    if !allowed {
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
    see_other(&next)
}

pub(super) async fn create(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageOrganizations>,
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
    state.db.set_session_org(&session.id_hash, id).await?;
    record(
        &state,
        &session,
        id,
        "organization.created",
        &format!("created organization \"{name}\""),
    )
    .await?;
    see_other("/admin/packages")
}
