//! The audit log, newest first, paged by entry id.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::orgs::find as find_org;
use super::{rfc3339, ApiResult, Params, Problem};
use crate::AppState;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this organization's entries.
    pub org_id: Option<i64>,
    /// At most this many entries (1 to 500; default 100).
    pub limit: Option<i64>,
    /// Only entries older than this one: the `next_before` of the page
    /// before.
    pub before: Option<i64>,
}

/// An audit log entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// The user's email, `api:<token name>`, or `system`.
    pub actor: String,
    pub org_id: Option<i64>,
    pub action: String,
    pub detail: String,
}

/// A page of the audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The audit log, newest first (of every organization, or of one).
#[utoipa::path(get, operation_id = "list_audit", path = "/api/v1/vendor/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of entries, newest first", body = AuditPage)))]
pub async fn list(
    State(state): State<AppState>,
    _: Caller,
    Params(q): Params<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit: a number from 1 to {MAX_LIMIT}"
        )));
    }
    if let Some(org_id) = q.org_id {
        find_org(&state, org_id).await?;
    }
    let rows = state.db.audit_page(q.org_id, q.before, limit).await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let entries = rows
        .into_iter()
        .map(|r| AuditEntryView {
            id: r.id,
            at: rfc3339(r.at),
            actor: r.actor,
            org_id: r.org_id,
            action: r.action,
            detail: r.detail,
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
