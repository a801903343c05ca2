//! An organization's license account: features, hub server, validity and
//! renewal date, offline period (edited on the packages page).

use axum::extract::State;
use license_core::offline::MAX_OFFLINE_DAYS;
use serde::Deserialize;

use super::audit::record;
use super::page::{changed, fmt_date, parse_date, parse_period, text, PageResult};
use super::session::{Confirmed, ManageOrganizations, PermittedInOrg, Posted};
use crate::error::Error;
use crate::store::OrgInput;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct AccountForm {
    csrf: String,
    features: String,
    hub_server_name: String,
    hub_server_url: String,
    valid_from: String,
    valid_until: String,
    #[serde(default)]
    renewal_date: String,
}

csrf_token!(AccountForm);

pub(super) async fn update(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrganizations>,
    Posted(form): Posted<AccountForm>,
) -> PageResult {
    let features: Vec<String> = text(&form.features, "Features", 500, false)?
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    let hub_server_url = text(&form.hub_server_url, "Hub server URL", 500, false)?;
    let scheme_ok = hub_server_url.starts_with("https://") || hub_server_url.starts_with("http://");
    if !hub_server_url.is_empty() && !scheme_ok {
        return Err(Error::InvalidRequest(
            "Hub server URL must start with https:// or http://".into(),
        )
        .into());
    }
    let (valid_from, valid_until) = parse_period(&form.valid_from, &form.valid_until)?;
    let renewal_date = if form.renewal_date.trim().is_empty() {
        None
    } else {
        Some(parse_date(&form.renewal_date, "Renewal date")?)
    };
    let input = OrgInput {
        name: org.name.clone(),
        features,
        hub_server_name: text(&form.hub_server_name, "Hub server name", 200, false)?,
        hub_server_url,
        renewal_date,
        valid_from,
        valid_until,
    };
    state.db.update_org(org.id, &input).await?;
    let detail = format!(
        "account updated: features [{}], hub server \"{}\" <{}>, valid {} – {}, renewal date {}",
        input.features.join(", "),
        input.hub_server_name,
        input.hub_server_url,
        fmt_date(Some(valid_from)),
        fmt_date(Some(valid_until)),
        fmt_date(renewal_date)
    );
    record(&state, &session, org.id, "account.updated", &detail).await?;
    changed(&state, "/admin/packages")
}

#[derive(Deserialize)]
pub(super) struct OfflineDaysForm {
    csrf: String,
    offline_days: String,
}

csrf_token!(OfflineDaysForm);

/// How many days the organization's offline licenses last (air-gapped
/// activation by file; `crate::offline`).
pub(super) async fn set_offline_days(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrganizations>,
    Posted(form): Posted<OfflineDaysForm>,
) -> PageResult {
    let days = form
        .offline_days
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_OFFLINE_DAYS).contains(d))
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "Offline period: a whole number of days from 1 to {MAX_OFFLINE_DAYS}"
            ))
        })?;
    state.db.set_offline_days(org.id, days).await?;
    let detail = format!("offline period: {days} days (was {})", org.offline_days);
    record(
        &state,
        &session,
        org.id,
        "organization.offline_days",
        &detail,
    )
    .await?;
    changed(&state, "/admin/packages")
}

/// Suspends the organization: its devices' grants and license fetches are
/// refused until it is resumed.
pub(super) async fn suspend(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrganizations>,
    _: Confirmed,
) -> PageResult {
    state
        .db
        .set_org_suspended(org.id, Some(state.now()))
        .await?;
    state.cache.chain_revoked();
    let detail = format!("suspended organization \"{}\"", org.name);
    record(&state, &session, org.id, "organization.suspended", &detail).await?;
    changed(&state, "/admin/packages")
}

pub(super) async fn resume(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageOrganizations>,
    _: Confirmed,
) -> PageResult {
    state.db.set_org_suspended(org.id, None).await?;
    let detail = format!("resumed organization \"{}\"", org.name);
    record(&state, &session, org.id, "organization.resumed", &detail).await?;
    changed(&state, "/admin/packages")
}
