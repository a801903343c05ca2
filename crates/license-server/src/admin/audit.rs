//! The audit log: the page, and [`record`], which every admin write calls.

use askama::Template;
use axum::extract::State;

use super::page::{fmt_time, render, Layout, PageResult};
use super::session::{PermittedInOrg, ReadAudit, Session};
use crate::error::Error;
use crate::store::NewAudit;
use crate::AppState;

/// The audit entry of what an admin did in an organization, at `state`'s now.
pub(super) fn entry<'a>(
    state: &AppState,
    session: &'a Session,
    org_id: i64,
    action: &'a str,
    detail: String,
) -> NewAudit<'a> {
    NewAudit {
        at: state.now(),
        actor: &session.email,
        org_id: Some(org_id),
        action,
        detail,
    }
}

/// Writes what an admin did in an organization to its audit log.
pub(super) async fn record(
    state: &AppState,
    session: &Session,
    org_id: i64,
    action: &str,
    detail: &str,
) -> Result<(), Error> {
    let entry = entry(state, session, org_id, action, detail.to_owned());
    state.db.audit(&entry).await?;
    Ok(())
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    l: Layout,
    org_name: String,
    entries: Vec<(String, String, String, String)>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ReadAudit>,
) -> PageResult {
    let entries = state
        .db
        .audit_log(org.id, 500)
        .await?
        .into_iter()
        .map(|e| (fmt_time(Some(e.at)), e.actor, e.action, e.detail))
        .collect();
    Ok(render(&AuditPage {
        l: Layout::of(&session, Some(&org), "audit"),
        org_name: org.name.clone(),
        entries,
    }))
}
