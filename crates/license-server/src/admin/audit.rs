//! The audit log: the page, and [`record`], which every admin write calls.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::page::{fmt_time, render, Layout, PageResult};
use super::session::{PermittedInOrg, ReadAudit, Session};
use crate::error::Error;
use crate::roles::Action;
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

/// Writes what a vendor operator did outside any organization (API tokens,
/// signing keys) to the audit log of everything.
pub(super) async fn record_vendor(
    state: &AppState,
    session: &Session,
    action: &str,
    detail: String,
) -> Result<(), Error> {
    let entry = NewAudit {
        at: state.now(),
        actor: &session.email,
        org_id: None,
        action,
        detail,
    };
    state.db.audit(&entry).await?;
    Ok(())
}

/// Entries per page.
const PAGE: i64 = 200;

struct EntryRow {
    at: String,
    org: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    l: Layout,
    org_name: String,
    /// Every organization's entries and the server's own (vendor operators).
    everything: bool,
    /// Whether the signed-in user may see everything.
    may_see_everything: bool,
    entries: Vec<EntryRow>,
    /// The query of the next (older) page, if there is one.
    older: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    /// `all`: every organization's log and the server's own entries.
    scope: Option<String>,
    /// Entries older than this id.
    before: Option<i64>,
}

/// The audit log of the organization being worked in; with `?scope=all`, a
/// vendor operator's log of everything (every organization, and what the
/// CLI and the API did outside any). Newest first, paged.
pub(super) async fn page(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ReadAudit>,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let everything = q.scope.as_deref() == Some("all");
    if everything {
        session.check(Action::SeeEveryOrganization)?;
    }
    let filter = (!everything).then_some(org.id);
    let rows = state.db.audit_page(filter, q.before, PAGE).await?;
    let names: HashMap<i64, String> = if everything {
        state
            .db
            .orgs()
            .await?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect()
    } else {
        HashMap::new()
    };
    let older = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten()
        .map(|id| match everything {
            true => format!("?scope=all&before={id}"),
            false => format!("?before={id}"),
        });
    let entries = rows
        .into_iter()
        .map(|e| EntryRow {
            at: fmt_time(Some(e.at)),
            org: e
                .org_id
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| "—".into()),
            actor: e.actor,
            action: e.action,
            detail: e.detail,
        })
        .collect();
    Ok(render(&AuditPage {
        l: Layout::of(&session, Some(&org), "audit"),
        org_name: org.name.clone(),
        everything,
        may_see_everything: session.may(Action::SeeEveryOrganization),
        entries,
        older,
    }))
}
