//! Users: the vendor operators see and manage everyone (invite, disable,
//! enable, remove); an organization admin sees the admins of their
//! organization, invites more and removes them from it.

use askama::Template;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::audit::record;
use super::page::{fmt_time, render, see_other, Layout, MessagePage, PageResult};
use super::session::{Confirmed, ManageOrgAdmins, ManageUsers, Permitted, PermittedInOrg, Posted};
use crate::accounts::{check_email, INVITATION_TTL_SECS};
use crate::error::Error;
use crate::roles::{Action, Role};
use crate::store::{NewInvitation, UserChange, UserSummary};
use crate::{secrets, AppState};

struct UserRow {
    id: i64,
    email: String,
    role: &'static str,
    orgs: String,
    status: &'static str,
    status_class: &'static str,
    created: String,
    is_self: bool,
}

impl UserRow {
    fn of(u: UserSummary, self_id: i64) -> UserRow {
        let (status, status_class) = match u.disabled_at {
            Some(_) => ("Disabled", "bad"),
            None => ("Active", "ok"),
        };
        UserRow {
            id: u.id,
            orgs: if u.role.may(Action::SeeEveryOrganization) {
                "All organizations".into()
            } else {
                u.orgs
            },
            email: u.email,
            role: u.role.label(),
            status,
            status_class,
            created: fmt_time(Some(u.created_at)),
            is_self: u.id == self_id,
        }
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    l: Layout,
    org_id: i64,
    org_name: String,
    /// Everyone (vendor operators) or the organization's admins.
    everyone: bool,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    orgs: Vec<(i64, String)>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrgAdmins>,
) -> PageResult {
    let everyone = session.may(Action::ManageUsers);
    let users = if everyone {
        state.db.users().await?
    } else {
        state.db.org_members(org.id).await?
    };
    let orgs = if everyone {
        state.db.orgs().await?
    } else {
        vec![org.clone()]
    };
    Ok(render(&UsersPage {
        l: Layout::of(&session, Some(&org), "users"),
        org_id: org.id,
        org_name: org.name.clone(),
        everyone,
        users: users
            .into_iter()
            .map(|u| UserRow::of(u, session.user_id))
            .collect(),
        roles: Role::ALL.iter().map(|r| (r.as_str(), r.label())).collect(),
        orgs: orgs.into_iter().map(|o| (o.id, o.name)).collect(),
    }))
}

#[derive(Deserialize)]
pub(super) struct InviteForm {
    csrf: String,
    email: String,
    role: Option<String>,
    org_id: Option<String>,
}

csrf_token!(InviteForm);

/// Invites a user: a single-use link, shown once, that expires. An
/// organization admin invites admins of their organization; a vendor
/// operator invites anyone, to any organization.
pub(super) async fn invite(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrgAdmins>,
    Posted(form): Posted<InviteForm>,
) -> PageResult {
    let email = check_email(&form.email).map_err(Error::InvalidRequest)?;
    let role = match form.role.as_deref() {
        None | Some("") => Role::OrgAdmin,
        Some(r) => Role::parse(r).ok_or_else(|| Error::InvalidRequest("unknown role".into()))?,
    };
    let org_id = match (role, form.org_id.as_deref().map(str::trim)) {
        (Role::Vendor, _) => None,
        (Role::OrgAdmin, None | Some("")) => Some(org.id),
        (Role::OrgAdmin, Some(id)) => Some(
            id.parse::<i64>()
                .map_err(|_| Error::InvalidRequest("unknown organization".into()))?,
        ),
    };
    // Vendor operators, or admins of another organization, are the
    // vendor's to invite.
    if role == Role::Vendor || org_id != Some(org.id) {
        session.check(Action::ManageUsers)?;
    }
    let org_name = match org_id {
        Some(id) => Some(state.db.org(id).await?.ok_or(Error::NotFound)?.name),
        None => None,
    };
    let token = secrets::random_token();
    let now = state.now();
    let expires_at = now + INVITATION_TTL_SECS;
    state
        .db
        .create_invitation(&NewInvitation {
            token_hash: &secrets::hash(&token),
            email: &email,
            role,
            org_id,
            invited_by: &session.email,
            now,
            expires_at,
        })
        .await?;
    let to = org_name.as_deref().unwrap_or("every organization");
    let detail = format!("invited {email} as {} ({to})", role.label());
    record(
        &state,
        &session,
        org_id.unwrap_or(org.id),
        "user.invited",
        &detail,
    )
    .await?;
    Ok(render(&InvitedPage {
        l: Layout::of(&session, Some(&org), "users"),
        email,
        role: role.label(),
        org: to.to_owned(),
        link: state.config.url(&format!("/admin/invitations/{token}")),
        expires: fmt_time(Some(expires_at)),
    }))
}

#[derive(Template)]
#[template(path = "invited.html")]
struct InvitedPage {
    l: Layout,
    email: String,
    role: &'static str,
    org: String,
    link: String,
    expires: String,
}

#[derive(Deserialize)]
pub(super) struct UserId {
    id: i64,
}

/// Disables, enables or removes a user (vendor operators only). The last
/// vendor operator who can sign in stays.
async fn change_user(
    state: &AppState,
    session: &super::session::Session,
    id: i64,
    what: UserAction,
) -> PageResult {
    let user = state.db.user(id).await?.ok_or(Error::NotFound)?;
    let changed = match what {
        UserAction::Disable => state.db.set_user_disabled(id, Some(state.now())).await?,
        UserAction::Enable => state.db.set_user_disabled(id, None).await?,
        UserAction::Remove => state.db.remove_user(id).await?,
    };
    match changed {
        UserChange::Done => {}
        UserChange::NoSuchUser => return Err(Error::NotFound.into()),
        UserChange::LastVendorOperator => {
            return Err(Error::InvalidRequest(format!(
                "{} is the last vendor operator who can sign in; invite another one first",
                user.email
            ))
            .into())
        }
    }
    let (action, verb) = match what {
        UserAction::Disable => ("user.disabled", "disabled"),
        UserAction::Enable => ("user.enabled", "enabled"),
        UserAction::Remove => ("user.removed", "removed"),
    };
    let org = session.org_id.unwrap_or_default();
    record(
        state,
        session,
        org,
        action,
        &format!("{verb} {}", user.email),
    )
    .await?;
    see_other("/admin/users")
}

#[derive(Clone, Copy)]
enum UserAction {
    Disable,
    Enable,
    Remove,
}

pub(super) async fn disable(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageUsers>,
    Path(UserId { id }): Path<UserId>,
    _: Confirmed,
) -> PageResult {
    change_user(&state, &session, id, UserAction::Disable).await
}

pub(super) async fn enable(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageUsers>,
    Path(UserId { id }): Path<UserId>,
    _: Confirmed,
) -> PageResult {
    change_user(&state, &session, id, UserAction::Enable).await
}

pub(super) async fn remove(
    State(state): State<AppState>,
    Permitted { session, .. }: Permitted<ManageUsers>,
    Path(UserId { id }): Path<UserId>,
    _: Confirmed,
) -> PageResult {
    change_user(&state, &session, id, UserAction::Remove).await
}

/// Takes a user out of the organization being worked in.
pub(super) async fn leave(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrgAdmins>,
    Path(UserId { id }): Path<UserId>,
    _: Confirmed,
) -> PageResult {
    let user = state.db.user(id).await?.ok_or(Error::NotFound)?;
    if !state.db.is_member(id, org.id).await? {
        return Err(Error::NotFound.into());
    }
    if user.role == Role::Vendor {
        session.check(Action::ManageUsers)?;
    }
    state.db.remove_member(id, org.id).await?;
    let detail = format!("removed {} from \"{}\"", user.email, org.name);
    record(&state, &session, org.id, "user.left", &detail).await?;
    if id == session.user_id {
        return Ok(render(&MessagePage {
            l: Layout::of(&session, None, ""),
            title: "You left the organization".into(),
            kind: "info",
            message: format!("You are no longer an admin of {}.", org.name),
            link: Some(("/admin/orgs".into(), "Organizations".into())),
        }));
    }
    see_other("/admin/users")
}
