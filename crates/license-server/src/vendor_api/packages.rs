//! License packages of an organization and their license totals: list,
//! create, change (name, status, validity, totals), renew.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use license_core::model::LicenseKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Writer};
use super::orgs::find as find_org;
use super::{check_period, parse_time, rfc3339, text, ApiResult, Body, Id, Problem};
use crate::store::{AssignmentRow, Package, PackageLicense, PackageStatus, PackageUpdate};
use crate::AppState;

const YEAR: i64 = 365 * 86_400;
/// The most licenses of one kind a package holds.
pub const MAX_TOTAL: i64 = 1_000_000;

/// A package's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
    Revoked,
}

impl From<PackageStatus> for Status {
    fn from(s: PackageStatus) -> Status {
        match s {
            PackageStatus::Active => Status::Active,
            PackageStatus::Suspended => Status::Suspended,
            PackageStatus::Revoked => Status::Revoked,
        }
    }
}

impl From<Status> for PackageStatus {
    fn from(s: Status) -> PackageStatus {
        match s {
            Status::Active => PackageStatus::Active,
            Status::Suspended => PackageStatus::Suspended,
            Status::Revoked => PackageStatus::Revoked,
        }
    }
}

/// Licenses of one kind in a package.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LicenseView {
    /// `endpoint`, `server`, `feature_worker`, ...
    pub kind: String,
    pub total: i64,
    /// How many are assigned.
    pub used: i64,
}

/// A license package.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PackageView {
    pub id: i64,
    /// As the console shows it: `PKG-00001`.
    pub code: String,
    pub org_id: i64,
    pub name: String,
    pub status: Status,
    #[schema(format = DateTime)]
    pub valid_from: String,
    #[schema(format = DateTime)]
    pub valid_until: String,
    /// Kinds with a total above 0, in the console's order.
    pub licenses: Vec<LicenseView>,
}

/// A new license package. Validity defaults to a year from now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPackage {
    /// At most 200 characters.
    pub name: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// License totals by kind (0 to 1,000,000); kinds not named hold none.
    #[serde(default)]
    pub totals: BTreeMap<String, i64>,
}

/// Changes to a license package: only the fields given. `totals` changes
/// only the kinds it names (0 removes a kind).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageChange {
    pub name: Option<String>,
    pub status: Option<Status>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    #[serde(default)]
    pub totals: BTreeMap<String, i64>,
}

/// The totals of a request, checked.
fn totals(given: &BTreeMap<String, i64>) -> ApiResult<Vec<(LicenseKind, i64)>> {
    given
        .iter()
        .map(|(kind, total)| {
            let kind = LicenseKind::ALL
                .iter()
                .find(|k| k.as_str() == kind)
                .ok_or_else(|| {
                    let known: Vec<&str> = LicenseKind::ALL.iter().map(|k| k.as_str()).collect();
                    Problem::invalid(format!(
                        "totals: unknown license kind {:?}; one of {}",
                        kind.chars().take(50).collect::<String>(),
                        known.join(", ")
                    ))
                })?;
            if !(0..=MAX_TOTAL).contains(total) {
                return Err(Problem::invalid(format!(
                    "totals.{}: a number from 0 to {MAX_TOTAL}",
                    kind.as_str()
                )));
            }
            Ok((kind.clone(), *total))
        })
        .collect()
}

/// The view of `p`, from its organization's license and assignment rows.
fn view_of(p: &Package, licenses: &[PackageLicense], assignments: &[AssignmentRow]) -> PackageView {
    let mut rows: Vec<_> = licenses.iter().filter(|l| l.package_id == p.id).collect();
    rows.sort_by_key(|l| LicenseKind::from_wire(&l.kind));
    let licenses = rows
        .into_iter()
        .map(|l| LicenseView {
            kind: l.kind.clone(),
            total: l.total,
            used: assignments
                .iter()
                .filter(|a| a.package_id == p.id && a.kind == l.kind)
                .count() as i64,
        })
        .collect();
    PackageView {
        id: p.id,
        code: format!("PKG-{:05}", p.id),
        org_id: p.org_id,
        name: p.name.clone(),
        status: p.status.into(),
        valid_from: rfc3339(p.valid_from),
        valid_until: rfc3339(p.valid_until),
        licenses,
    }
}

/// The package with this id, and its view.
async fn view(state: &AppState, id: i64) -> ApiResult<(Package, PackageView)> {
    let package = state
        .db
        .package(id)
        .await?
        .ok_or_else(|| Problem::not_found("license package"))?;
    let (_, licenses, assignments) = state.db.packages(package.org_id).await?;
    let view = view_of(&package, &licenses, &assignments);
    Ok((package, view))
}

/// The license packages of an organization.
#[utoipa::path(get, operation_id = "list_packages", path = "/api/v1/vendor/orgs/{org_id}/packages", tag = "packages",
    params(("org_id" = i64, Path, description = "The organization's id")),
    responses((status = 200, description = "Its packages, oldest first", body = [PackageView])))]
pub async fn list(
    State(state): State<AppState>,
    _: Caller,
    Id(org_id): Id,
) -> ApiResult<Json<Vec<PackageView>>> {
    find_org(&state, org_id).await?;
    let (packages, licenses, assignments) = state.db.packages(org_id).await?;
    let views = packages
        .iter()
        .map(|p| view_of(p, &licenses, &assignments))
        .collect();
    Ok(Json(views))
}

/// Creates a license package with its totals (write scope).
#[utoipa::path(post, operation_id = "create_package", path = "/api/v1/vendor/orgs/{org_id}/packages", tag = "packages",
    params(("org_id" = i64, Path, description = "The organization's id")),
    request_body = NewPackage,
    responses((status = 201, description = "Created", body = PackageView)))]
pub async fn create(
    State(state): State<AppState>,
    writer: Writer,
    Id(org_id): Id,
    Body(new): Body<NewPackage>,
) -> ApiResult<(StatusCode, Json<PackageView>)> {
    let org = find_org(&state, org_id).await?;
    let name = text(&new.name, "name", 200, true)?;
    let from = match &new.valid_from {
        Some(s) => parse_time("valid_from", s)?,
        None => state.now(),
    };
    let until = match &new.valid_until {
        Some(s) => parse_time("valid_until", s)?,
        None => from.saturating_add(YEAR),
    };
    check_period(from, until)?;
    let totals = totals(&new.totals)?;
    let id = state.db.create_package(org.id, &name, from, until).await?;
    let detail = format!("created license package \"{name}\": {}", describe(&totals));
    let update = PackageUpdate {
        name: &name,
        status: PackageStatus::Active,
        valid_from: from,
        valid_until: until,
    };
    let written = Written {
        org_id: org.id,
        action: "package.created",
        detail,
    };
    let view = write(&state, &writer, id, &update, &totals, written).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// What a package write tells the audit log.
struct Written {
    org_id: i64,
    action: &'static str,
    detail: String,
}

/// Writes package `id` (its fields and totals) with the audit entry of
/// `written` in one transaction, drops the license caches, and answers the
/// package as it is now.
async fn write(
    state: &AppState,
    writer: &Writer,
    id: i64,
    update: &PackageUpdate<'_>,
    totals: &[(LicenseKind, i64)],
    written: Written,
) -> ApiResult<PackageView> {
    let entry = writer.entry(state, Some(written.org_id), written.action, written.detail);
    state
        .db
        .update_package(id, update, totals, &entry.get())
        .await?;
    state.cache.account_changed();
    Ok(view(state, id).await?.1)
}

fn describe(totals: &[(LicenseKind, i64)]) -> String {
    totals
        .iter()
        .map(|(k, n)| format!("{} {n}", k.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One license package.
#[utoipa::path(get, operation_id = "get_package", path = "/api/v1/vendor/packages/{package_id}", tag = "packages",
    params(("package_id" = i64, Path, description = "The package's id")),
    responses((status = 200, description = "The package", body = PackageView)))]
pub async fn get(
    State(state): State<AppState>,
    _: Caller,
    Id(id): Id,
) -> ApiResult<Json<PackageView>> {
    Ok(Json(view(&state, id).await?.1))
}

/// Changes a license package's name, status, validity or totals (write
/// scope).
#[utoipa::path(patch, operation_id = "update_package", path = "/api/v1/vendor/packages/{package_id}", tag = "packages",
    params(("package_id" = i64, Path, description = "The package's id")),
    request_body = PackageChange,
    responses((status = 200, description = "The package as changed", body = PackageView)))]
pub async fn update(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
    Body(change): Body<PackageChange>,
) -> ApiResult<Json<PackageView>> {
    let (p, _) = view(&state, id).await?;
    let name = match &change.name {
        Some(n) => text(n, "name", 200, true)?,
        None => p.name.clone(),
    };
    let status = change.status.map(PackageStatus::from).unwrap_or(p.status);
    let from = match &change.valid_from {
        Some(s) => parse_time("valid_from", s)?,
        None => p.valid_from,
    };
    let until = match &change.valid_until {
        Some(s) => parse_time("valid_until", s)?,
        None => p.valid_until,
    };
    check_period(from, until)?;
    let totals = totals(&change.totals)?;
    let detail = format!(
        "updated license package \"{name}\": status {}, valid {} – {}{}{}",
        status.as_str(),
        rfc3339(from),
        rfc3339(until),
        if totals.is_empty() { "" } else { ", " },
        describe(&totals)
    );
    let update = PackageUpdate {
        name: &name,
        status,
        valid_from: from,
        valid_until: until,
    };
    let written = Written {
        org_id: p.org_id,
        action: "package.updated",
        detail,
    };
    Ok(Json(
        write(&state, &writer, id, &update, &totals, written).await?,
    ))
}

/// Renews a license package for a year from the later of today and its
/// end, makes it active, and extends the organization's validity and
/// renewal date to match (write scope).
#[utoipa::path(post, operation_id = "renew_package", path = "/api/v1/vendor/packages/{package_id}/renew", tag = "packages",
    params(("package_id" = i64, Path, description = "The package's id")),
    responses((status = 200, description = "The package, renewed", body = PackageView)))]
pub async fn renew(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<Json<PackageView>> {
    let (p, _) = view(&state, id).await?;
    let org = find_org(&state, p.org_id).await?;
    let now = state.now();
    let until = p.valid_until.max(now).saturating_add(YEAR);
    let update = PackageUpdate {
        name: &p.name,
        status: PackageStatus::Active,
        valid_from: p.valid_from,
        valid_until: until,
    };
    let mut account = org.input();
    account.renewal_date = Some(org.renewal_date.unwrap_or(now).max(until));
    account.valid_until = org.valid_until.max(until);
    let detail = format!(
        "renewed license package \"{}\" until {}",
        p.name,
        rfc3339(until)
    );
    let entry = writer.entry(&state, Some(org.id), "package.renewed", detail);
    state
        .db
        .renew_package(id, &update, org.id, &account, &entry.get())
        .await?;
    state.cache.account_changed();
    Ok(Json(view(&state, id).await?.1))
}
