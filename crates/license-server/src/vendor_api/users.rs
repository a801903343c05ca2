//! Users and invitations: list users, invite one (the single-use link is
//! in the answer, once), disable, enable, remove.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Writer};
use super::orgs::find as find_org;
use super::{rfc3339, ApiResult, Body, Id, Params, Problem};
use crate::accounts::{check_email, INVITATION_TTL_SECS};
use crate::roles::Role;
use crate::store::{NewInvitation, UserChange, UserSummary};
use crate::{secrets, AppState};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// The vendor's operators: every organization.
    Vendor,
    /// A customer's admin: their organizations.
    OrgAdmin,
}

impl From<Role> for UserRole {
    fn from(r: Role) -> UserRole {
        match r {
            Role::Vendor => UserRole::Vendor,
            Role::OrgAdmin => UserRole::OrgAdmin,
        }
    }
}

impl From<UserRole> for Role {
    fn from(r: UserRole) -> Role {
        match r {
            UserRole::Vendor => Role::Vendor,
            UserRole::OrgAdmin => Role::OrgAdmin,
        }
    }
}

/// A user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub role: UserRole,
    /// The organizations the user is a member of (a vendor operator works
    /// in every one, member or not).
    pub org_ids: Vec<i64>,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Only the members of this organization.
    pub org_id: Option<i64>,
}

/// An invitation to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitationRequest {
    pub email: String,
    pub role: UserRole,
    /// Required for an organization admin; none for a vendor operator.
    pub org_id: Option<i64>,
}

/// An invitation: its link is shown here once and never again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: i64,
    pub email: String,
    pub role: UserRole,
    pub org_id: Option<i64>,
    /// The single-use link that sets the new user's password.
    pub link: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

async fn views(state: &AppState, users: Vec<UserSummary>) -> ApiResult<Vec<UserView>> {
    let memberships = state.db.memberships().await?;
    Ok(users
        .into_iter()
        .map(|u| UserView {
            org_ids: memberships
                .iter()
                .filter(|(user, _)| *user == u.id)
                .map(|(_, org)| *org)
                .collect(),
            id: u.id,
            email: u.email,
            role: u.role.into(),
            disabled: u.disabled_at.is_some(),
            disabled_at: u.disabled_at.map(rfc3339),
            created_at: rfc3339(u.created_at),
        })
        .collect())
}

async fn find(state: &AppState, id: i64) -> ApiResult<UserView> {
    let user = state.db.user(id).await?;
    let user = user.ok_or_else(|| Problem::not_found("user"))?;
    let all = state.db.users().await?;
    let summary = all.into_iter().filter(|u| u.id == user.id).collect();
    views(state, summary)
        .await?
        .pop()
        .ok_or_else(|| Problem::not_found("user"))
}

/// Every user (or an organization's members), by email.
#[utoipa::path(get, operation_id = "list_users", path = "/api/v1/vendor/users", tag = "users", params(UsersQuery),
    responses((status = 200, description = "Users, by email", body = [UserView])))]
pub async fn list(
    State(state): State<AppState>,
    _: Caller,
    Params(q): Params<UsersQuery>,
) -> ApiResult<Json<Vec<UserView>>> {
    let users = match q.org_id {
        Some(org_id) => {
            find_org(&state, org_id).await?;
            state.db.org_members(org_id).await?
        }
        None => state.db.users().await?,
    };
    Ok(Json(views(&state, users).await?))
}

/// Invites a user (write scope): a single-use link that expires in 7 days.
/// Accepting it sets the new user's password, or adds the organization to
/// an existing user.
#[utoipa::path(post, operation_id = "invite_user", path = "/api/v1/vendor/invitations", tag = "users",
    request_body = NewInvitationRequest,
    responses((status = 201, description = "The invitation, with its link (shown once)",
        body = InvitationView)))]
pub async fn invite(
    State(state): State<AppState>,
    writer: Writer,
    Body(req): Body<NewInvitationRequest>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let email = check_email(&req.email).map_err(Problem::invalid)?;
    let org = match (req.role, req.org_id) {
        (UserRole::Vendor, Some(_)) => {
            return Err(Problem::invalid(
                "org_id: a vendor operator works in every organization; leave it out",
            ))
        }
        (UserRole::Vendor, None) => None,
        (UserRole::OrgAdmin, None) => {
            return Err(Problem::invalid(
                "org_id is required for an organization admin",
            ))
        }
        (UserRole::OrgAdmin, Some(id)) => Some(find_org(&state, id).await?),
    };
    let token = secrets::random_token();
    let now = state.now();
    let expires_at = now + INVITATION_TTL_SECS;
    let role = Role::from(req.role);
    let actor = writer.0.actor();
    let id = state
        .db
        .create_invitation(&NewInvitation {
            token_hash: &secrets::hash(&token),
            email: &email,
            role,
            org_id: org.as_ref().map(|o| o.id),
            invited_by: &actor,
            now,
            expires_at,
        })
        .await?;
    let to = org
        .as_ref()
        .map_or("every organization", |o| o.name.as_str());
    let detail = format!("invited {email} as {} ({to})", role.label());
    writer
        .record(&state, org.as_ref().map(|o| o.id), "user.invited", detail)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationView {
            id,
            email,
            role: req.role,
            org_id: org.map(|o| o.id),
            link: state.config.url(&format!("/admin/invitations/{token}")),
            expires_at: rfc3339(expires_at),
        }),
    ))
}

/// What a user change answers.
fn changed(change: UserChange) -> ApiResult<()> {
    match change {
        UserChange::Done => Ok(()),
        UserChange::NoSuchUser => Err(Problem::not_found("user")),
        UserChange::LastVendorOperator => Err(Problem::conflict(
            "this is the last vendor operator who can sign in",
        )),
    }
}

/// Removes a user (write scope); the last vendor operator stays.
#[utoipa::path(delete, operation_id = "remove_user", path = "/api/v1/vendor/users/{user_id}", tag = "users",
    params(("user_id" = i64, Path, description = "The user's id")),
    responses((status = 204, description = "Removed"),
        (status = 409, description = "The last vendor operator",
            body = super::ProblemBody, content_type = "application/problem+json")))]
pub async fn remove(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    let user = find(&state, id).await?;
    changed(state.db.remove_user(id).await?)?;
    let detail = format!("removed user {}", user.email);
    writer.record(&state, None, "user.removed", detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a user (write scope): they cannot sign in and their sessions
/// end; the last vendor operator stays.
#[utoipa::path(post, operation_id = "disable_user", path = "/api/v1/vendor/users/{user_id}/disable", tag = "users",
    params(("user_id" = i64, Path, description = "The user's id")),
    responses((status = 200, description = "The user, disabled", body = UserView),
        (status = 409, description = "The last vendor operator",
            body = super::ProblemBody, content_type = "application/problem+json")))]
pub async fn disable(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<Json<UserView>> {
    let user = find(&state, id).await?;
    if !user.disabled {
        changed(state.db.set_user_disabled(id, Some(state.now())).await?)?;
        let detail = format!("disabled user {}", user.email);
        writer.record(&state, None, "user.disabled", detail).await?;
    }
    Ok(Json(find(&state, id).await?))
}

/// Enables a disabled user (write scope).
#[utoipa::path(post, operation_id = "enable_user", path = "/api/v1/vendor/users/{user_id}/enable", tag = "users",
    params(("user_id" = i64, Path, description = "The user's id")),
    responses((status = 200, description = "The user, enabled", body = UserView)))]
pub async fn enable(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<Json<UserView>> {
    let user = find(&state, id).await?;
    if user.disabled {
        changed(state.db.set_user_disabled(id, None).await?)?;
        let detail = format!("enabled user {}", user.email);
        writer.record(&state, None, "user.enabled", detail).await?;
    }
    Ok(Json(find(&state, id).await?))
}
