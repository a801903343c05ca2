//! Organizations and their license account: features, hub server,
//! validity, renewal date; suspending and resuming them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Writer};
use super::{check_period, nullable, parse_time, rfc3339, text, ApiResult, Body, Id, Problem};
use crate::store::{Org, OrgInput};
use crate::AppState;

const YEAR: i64 = 365 * 86_400;
const MAX_FEATURES: usize = 100;

/// An organization and its license account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrgView {
    pub id: i64,
    pub name: String,
    pub features: Vec<String>,
    pub hub_server_name: String,
    /// Empty, or an http(s) URL.
    pub hub_server_url: String,
    #[schema(format = DateTime)]
    pub valid_from: String,
    #[schema(format = DateTime)]
    pub valid_until: String,
    #[schema(format = DateTime)]
    pub renewal_date: Option<String>,
    /// Whether the vendor has suspended it: its devices get no tokens.
    pub suspended: bool,
    #[schema(format = DateTime)]
    pub suspended_at: Option<String>,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> OrgView {
        OrgView {
            id: o.id,
            name: o.name.clone(),
            features: o.feature_list(),
            hub_server_name: o.hub_server_name.clone(),
            hub_server_url: o.hub_server_url.clone(),
            valid_from: rfc3339(o.valid_from),
            valid_until: rfc3339(o.valid_until),
            renewal_date: o.renewal_date.map(rfc3339),
            suspended: o.suspended_at.is_some(),
            suspended_at: o.suspended_at.map(rfc3339),
        }
    }
}

/// A new organization. Validity defaults to a year from now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Unique, at most 100 characters.
    pub name: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub hub_server_name: String,
    #[serde(default)]
    pub hub_server_url: String,
    /// A date (`2026-01-01`) or an RFC 3339 date-time; default now.
    pub valid_from: Option<String>,
    /// Default a year after `valid_from`.
    pub valid_until: Option<String>,
    pub renewal_date: Option<String>,
}

/// Changes to an organization's license account: only the fields given.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUpdate {
    pub features: Option<Vec<String>>,
    pub hub_server_name: Option<String>,
    pub hub_server_url: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// `null` clears the renewal date.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub renewal_date: Option<Option<String>>,
}

fn features(list: Vec<String>) -> ApiResult<Vec<String>> {
    if list.len() > MAX_FEATURES {
        return Err(Problem::invalid(format!(
            "features: at most {MAX_FEATURES}"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for f in list {
        let f = text(&f, "features[]", 100, true)?;
        if f.contains(',') {
            return Err(Problem::invalid("features[]: no commas in a feature"));
        }
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

fn hub_url(url: &str) -> ApiResult<String> {
    let url = text(url, "hub_server_url", 500, false)?;
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !url.is_empty() && !scheme_ok {
        return Err(Problem::invalid(
            "hub_server_url must start with https:// or http://",
        ));
    }
    Ok(url)
}

/// The organization named by the path; 404 for any other id.
pub async fn find(state: &AppState, id: i64) -> ApiResult<Org> {
    state
        .db
        .org(id)
        .await?
        .ok_or_else(|| Problem::not_found("organization"))
}

/// Lists every organization, by name.
#[utoipa::path(get, operation_id = "list_orgs", path = "/api/v1/vendor/orgs", tag = "organizations",
    responses((status = 200, description = "Every organization, by name", body = [OrgView])))]
pub async fn list(State(state): State<AppState>, _: Caller) -> ApiResult<Json<Vec<OrgView>>> {
    let orgs = state.db.orgs().await?;
    Ok(Json(orgs.iter().map(OrgView::from).collect()))
}

/// Creates an organization (write scope).
#[utoipa::path(post, operation_id = "create_org", path = "/api/v1/vendor/orgs", tag = "organizations", request_body = NewOrg,
    responses(
        (status = 201, description = "Created", body = OrgView),
        (status = 409, description = "An organization has this name",
            body = super::ProblemBody, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    writer: Writer,
    Body(new): Body<NewOrg>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    let name = text(&new.name, "name", 100, true)?;
    let now = state.now();
    let valid_from = match &new.valid_from {
        Some(s) => parse_time("valid_from", s)?,
        None => now,
    };
    let valid_until = match &new.valid_until {
        Some(s) => parse_time("valid_until", s)?,
        None => valid_from.saturating_add(YEAR),
    };
    check_period(valid_from, valid_until)?;
    let input = OrgInput {
        name: name.clone(),
        features: features(new.features)?,
        hub_server_name: text(&new.hub_server_name, "hub_server_name", 200, false)?,
        hub_server_url: hub_url(&new.hub_server_url)?,
        renewal_date: match &new.renewal_date {
            Some(s) => Some(parse_time("renewal_date", s)?),
            None => None,
        },
        valid_from,
        valid_until,
    };
    if state.db.org_by_name(&name).await?.is_some() {
        return Err(Problem::conflict(format!(
            "an organization named \"{name}\" exists"
        )));
    }
    let id = state.db.create_org(&input, now).await?;
    let detail = format!("created organization \"{name}\"");
    writer
        .record(&state, Some(id), "organization.created", detail)
        .await?;
    let org = find(&state, id).await?;
    Ok((StatusCode::CREATED, Json(OrgView::from(&org))))
}

/// One organization.
#[utoipa::path(get, operation_id = "get_org", path = "/api/v1/vendor/orgs/{org_id}", tag = "organizations",
    params(("org_id" = i64, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization", body = OrgView)))]
pub async fn get(State(state): State<AppState>, _: Caller, Id(id): Id) -> ApiResult<Json<OrgView>> {
    Ok(Json(OrgView::from(&find(&state, id).await?)))
}

/// Changes an organization's license account (write scope): only the
/// fields given.
#[utoipa::path(patch, operation_id = "update_org", path = "/api/v1/vendor/orgs/{org_id}", tag = "organizations",
    params(("org_id" = i64, Path, description = "The organization's id")),
    request_body = OrgUpdate,
    responses((status = 200, description = "The organization as changed", body = OrgView)))]
pub async fn update(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
    Body(change): Body<OrgUpdate>,
) -> ApiResult<Json<OrgView>> {
    let org = find(&state, id).await?;
    let mut input = org.input();
    if let Some(f) = change.features {
        input.features = features(f)?;
    }
    if let Some(n) = &change.hub_server_name {
        input.hub_server_name = text(n, "hub_server_name", 200, false)?;
    }
    if let Some(u) = &change.hub_server_url {
        input.hub_server_url = hub_url(u)?;
    }
    if let Some(s) = &change.valid_from {
        input.valid_from = parse_time("valid_from", s)?;
    }
    if let Some(s) = &change.valid_until {
        input.valid_until = parse_time("valid_until", s)?;
    }
    check_period(input.valid_from, input.valid_until)?;
    match &change.renewal_date {
        Some(Some(s)) => input.renewal_date = Some(parse_time("renewal_date", s)?),
        Some(None) => input.renewal_date = None,
        None => {}
    }
    state.db.update_org(id, &input).await?;
    state.cache.account_changed();
    let detail = format!(
        "account updated: features [{}], hub server \"{}\" <{}>, valid {} – {}, renewal date {}",
        input.features.join(", "),
        input.hub_server_name,
        input.hub_server_url,
        rfc3339(input.valid_from),
        rfc3339(input.valid_until),
        input.renewal_date.map(rfc3339).unwrap_or_default()
    );
    writer
        .record(&state, Some(id), "account.updated", detail)
        .await?;
    Ok(Json(OrgView::from(&find(&state, id).await?)))
}

/// Suspends an organization (write scope): its devices get no tokens and
/// no license until it is resumed.
#[utoipa::path(post, operation_id = "suspend_org", path = "/api/v1/vendor/orgs/{org_id}/suspend", tag = "organizations",
    params(("org_id" = i64, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization, suspended", body = OrgView)))]
pub async fn suspend(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<Json<OrgView>> {
    let org = find(&state, id).await?;
    if org.suspended_at.is_none() {
        state.db.set_org_suspended(id, Some(state.now())).await?;
        state.cache.chain_revoked();
        state.cache.account_changed();
        let detail = format!("suspended organization \"{}\"", org.name);
        writer
            .record(&state, Some(id), "organization.suspended", detail)
            .await?;
    }
    Ok(Json(OrgView::from(&find(&state, id).await?)))
}

/// Resumes a suspended organization (write scope).
#[utoipa::path(post, operation_id = "resume_org", path = "/api/v1/vendor/orgs/{org_id}/resume", tag = "organizations",
    params(("org_id" = i64, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization, resumed", body = OrgView)))]
pub async fn resume(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<Json<OrgView>> {
    let org = find(&state, id).await?;
    if org.suspended_at.is_some() {
        state.db.set_org_suspended(id, None).await?;
        state.cache.account_changed();
        let detail = format!("resumed organization \"{}\"", org.name);
        writer
            .record(&state, Some(id), "organization.resumed", detail)
            .await?;
    }
    Ok(Json(OrgView::from(&find(&state, id).await?)))
}
