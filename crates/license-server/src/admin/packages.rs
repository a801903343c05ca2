//! License packages: the list (with the account form), creating one, the
//! package page, updating and renewing it, assigning licenses.

use askama::Template;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use license_core::model::LicenseKind;
use serde::Deserialize;

use super::audit::{entry, record};
use super::page::PageError;
use super::page::{changed, fmt_date, parse_period, render, text, Layout, PageResult};
use super::session::{Confirmed, ManagePackages, Permission, PermittedInOrg, Posted, ReadPackages};
use super::DAY;
use crate::error::Error;
use crate::store::{build_packages, AssignedTo, Package, PackageStatus, PackageUpdate};
use crate::AppState;

struct PackageRow {
    id: i64,
    code: String,
    name: String,
    status: &'static str,
    status_class: &'static str,
    valid_from: String,
    valid_until: String,
    summary: String,
}

/// The class of a status's pill.
fn status_class(status: PackageStatus) -> &'static str {
    match status {
        PackageStatus::Active => "ok",
        PackageStatus::Suspended => "warn",
        PackageStatus::Revoked => "bad",
    }
}

fn status_label(status: PackageStatus) -> &'static str {
    license_core::model::PackageStatus::from(status).label()
}

#[derive(Template)]
#[template(path = "packages.html")]
struct PackagesPage {
    l: Layout,
    org_name: String,
    packages: Vec<PackageRow>,
    features: String,
    hub_server_name: String,
    hub_server_url: String,
    valid_from: String,
    valid_until: String,
    renewal_date: String,
    today: String,
    next_year: String,
    notice: Option<String>,
    error: Option<String>,
    suspended: bool,
    /// How many days an offline license lasts (`crate::offline`).
    offline_days: u32,
}

pub(super) async fn list(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ReadPackages>,
) -> PageResult {
    let (packages, licenses, assignments) = state.db.packages(org.id).await?;
    let model = build_packages(&packages, &licenses, &assignments);
    let rows = packages
        .iter()
        .zip(model)
        .map(|(p, m)| {
            let summary = m
                .licenses
                .iter()
                .map(|l| format!("{} {}/{}", l.kind.label(), l.used, l.total))
                .collect::<Vec<_>>()
                .join(" · ");
            PackageRow {
                id: p.id,
                code: m.id,
                name: p.name.clone(),
                status: status_label(p.status),
                status_class: status_class(p.status),
                valid_from: fmt_date(Some(p.valid_from)),
                valid_until: fmt_date(Some(p.valid_until)),
                summary: if summary.is_empty() {
                    "—".into()
                } else {
                    summary
                },
            }
        })
        .collect();
    let now = state.now();
    Ok(render(&PackagesPage {
        l: Layout::of(&session, Some(&org), "packages"),
        org_name: org.name.clone(),
        packages: rows,
        features: org.feature_list().join(", "),
        hub_server_name: org.hub_server_name.clone(),
        hub_server_url: org.hub_server_url.clone(),
        valid_from: fmt_date(Some(org.valid_from)),
        valid_until: fmt_date(Some(org.valid_until)),
        renewal_date: fmt_date(org.renewal_date),
        today: fmt_date(Some(now)),
        next_year: fmt_date(Some(now + 365 * DAY)),
        notice: None,
        error: None,
        suspended: org.suspended_at.is_some(),
        offline_days: org.offline_days,
    }))
}

#[derive(Deserialize)]
pub(super) struct NewPackageForm {
    csrf: String,
    name: String,
    valid_from: String,
    valid_until: String,
}

impl NewPackageForm {
    /// The name and the period, checked.
    fn checked(&self) -> Result<(String, i64, i64), Error> {
        let name = text(&self.name, "Name", 200, true)?;
        let (from, until) = parse_period(&self.valid_from, &self.valid_until)?;
        Ok((name, from, until))
    }
}

#[derive(Deserialize)]
pub(super) struct PackageForm {
    csrf: String,
    name: String,
    status: String,
    valid_from: String,
    valid_until: String,
    total_endpoint: Option<String>,
    total_server: Option<String>,
    total_feature_worker: Option<String>,
    total_cloud_worker: Option<String>,
    total_local_worker: Option<String>,
    total_microsoft_365_user: Option<String>,
    total_git_repository: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AssignmentForm {
    csrf: String,
    kind: String,
    name: String,
}

csrf_token!(NewPackageForm, PackageForm, AssignmentForm);

pub(super) async fn create(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManagePackages>,
    Posted(form): Posted<NewPackageForm>,
) -> PageResult {
    let (name, from, until) = form.checked()?;
    let id = state.db.create_package(org.id, &name, from, until).await?;
    record(
        &state,
        &session,
        org.id,
        "package.created",
        &format!("created license package \"{name}\""),
    )
    .await?;
    changed(&state, &format!("/admin/packages/{id}"))
}

struct KindRow {
    kind: String,
    label: String,
    assigned_to: &'static str,
    used: u32,
    total: u32,
}

struct AssignmentView {
    id: i64,
    name: String,
    kind: String,
}

#[derive(Template)]
#[template(path = "package_edit.html")]
struct PackagePage {
    l: Layout,
    id: i64,
    code: String,
    name: String,
    status: String,
    statuses: Vec<(&'static str, &'static str)>,
    valid_from: String,
    valid_until: String,
    kinds: Vec<KindRow>,
    assignments: Vec<AssignmentView>,
    error: Option<String>,
}

/// A license package of the admin's organization, named by the path's
/// `{id}`, for a role that may `P`; any other package is not found.
pub(super) struct OrgPackage<P>(PermittedInOrg<P>, Package);

#[derive(Deserialize)]
struct PackageId {
    id: i64,
}

impl<P: Permission> FromRequestParts<AppState> for OrgPackage<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let admin = PermittedInOrg::<P>::from_request_parts(parts, state).await?;
        let Path(PackageId { id }) = Path::<PackageId>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let package = state.db.package(id).await;
        match package {
            Ok(Some(package)) if package.org_id == admin.org.id => Ok(OrgPackage(admin, package)),
            Ok(_) => Err(PageError(Error::NotFound).into_response()),
            Err(e) => Err(PageError(e.into()).into_response()),
        }
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    OrgPackage(PermittedInOrg { session, org, .. }, package): OrgPackage<ReadPackages>,
) -> PageResult {
    let id = package.id;
    let (_, licenses, assignments) = state.db.packages(org.id).await?;
    let kinds = LicenseKind::ALL
        .iter()
        .map(|k| {
            let total = licenses
                .iter()
                .find(|l| l.package_id == id && l.kind == k.as_str())
                .map(|l| u32::try_from(l.total).unwrap_or(0))
                .unwrap_or(0);
            let used = assignments
                .iter()
                .filter(|a| a.package_id == id && a.kind == k.as_str())
                .count();
            KindRow {
                kind: k.as_str().to_owned(),
                label: k.label().to_owned(),
                assigned_to: match AssignedTo::of(k) {
                    AssignedTo::Object => "Backed-up objects",
                    AssignedTo::Agent => "Agents",
                },
                used: u32::try_from(used).unwrap_or(u32::MAX),
                total,
            }
        })
        .collect();
    let assignments = assignments
        .into_iter()
        .filter(|a| a.package_id == id)
        .map(|a| AssignmentView {
            id: a.id,
            name: a.name,
            kind: LicenseKind::from_wire(&a.kind).label().to_owned(),
        })
        .collect();
    Ok(render(&PackagePage {
        l: Layout::of(&session, Some(&org), "packages"),
        id,
        code: format!("PKG-{id:05}"),
        name: package.name,
        status: package.status.as_str().to_owned(),
        statuses: PackageStatus::ALL
            .into_iter()
            .map(|s| (s.as_str(), status_label(s)))
            .collect(),
        valid_from: fmt_date(Some(package.valid_from)),
        valid_until: fmt_date(Some(package.valid_until)),
        kinds,
        assignments,
        error: None,
    }))
}

/// The posted license totals, each a number from 0 to 1,000,000 (empty: 0).
fn totals(form: &PackageForm) -> Result<Vec<(LicenseKind, i64)>, Error> {
    let fields = [
        (LicenseKind::Endpoint, &form.total_endpoint),
        (LicenseKind::Server, &form.total_server),
        (LicenseKind::FeatureWorker, &form.total_feature_worker),
        (LicenseKind::CloudWorker, &form.total_cloud_worker),
        (LicenseKind::LocalWorker, &form.total_local_worker),
        (
            LicenseKind::Microsoft365User,
            &form.total_microsoft_365_user,
        ),
        (LicenseKind::GitRepository, &form.total_git_repository),
    ];
    fields
        .into_iter()
        .map(|(kind, value)| {
            let v = value.as_deref().map(str::trim).unwrap_or("");
            if v.is_empty() {
                return Ok((kind, 0));
            }
            v.parse()
                .ok()
                .filter(|n| (0..=1_000_000).contains(n))
                .map(|n| (kind.clone(), n))
                .ok_or_else(|| {
                    Error::InvalidRequest(format!("{}: a number from 0 to 1000000", kind.label()))
                })
        })
        .collect()
}

pub(super) async fn update(
    State(state): State<AppState>,
    OrgPackage(PermittedInOrg { session, org, .. }, package): OrgPackage<ManagePackages>,
    Posted(form): Posted<PackageForm>,
) -> PageResult {
    let name = text(&form.name, "Name", 200, true)?;
    let status = PackageStatus::parse(&form.status)
        .ok_or_else(|| Error::InvalidRequest("unknown status".into()))?;
    let (from, until) = parse_period(&form.valid_from, &form.valid_until)?;
    let totals = totals(&form)?;
    let detail = format!(
        "updated license package \"{name}\": status {}, valid {} – {}, {}",
        status.as_str(),
        fmt_date(Some(from)),
        fmt_date(Some(until)),
        totals
            .iter()
            .map(|(k, n)| format!("{} {n}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let update = PackageUpdate {
        name: &name,
        status,
        valid_from: from,
        valid_until: until,
    };
    let audit = entry(&state, &session, org.id, "package.updated", detail);
    state
        .db
        .update_package(package.id, &update, &totals, &audit)
        .await?;
    changed(&state, "/admin/packages")
}

pub(super) async fn renew(
    State(state): State<AppState>,
    OrgPackage(PermittedInOrg { session, org, .. }, p): OrgPackage<ManagePackages>,
    _: Confirmed,
) -> PageResult {
    let now = state.now();
    // Renewal extends from the later of today and the current end.
    let until = p.valid_until.max(now) + 365 * DAY;
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
        fmt_date(Some(until))
    );
    let audit = entry(&state, &session, org.id, "package.renewed", detail);
    state
        .db
        .renew_package(p.id, &update, org.id, &account, &audit)
        .await?;
    changed(&state, "/admin/packages")
}

pub(super) async fn assign(
    State(state): State<AppState>,
    OrgPackage(PermittedInOrg { session, org, .. }, p): OrgPackage<ManagePackages>,
    Posted(form): Posted<AssignmentForm>,
) -> PageResult {
    let id = p.id;
    let kind = LicenseKind::ALL
        .iter()
        .find(|k| k.as_str() == form.kind)
        .ok_or_else(|| Error::InvalidRequest("unknown license kind".into()))?;
    let name = text(&form.name, "Name", 200, true)?;
    state.db.add_assignment(id, kind, &name).await?;
    let detail = format!(
        "assigned a {} license of \"{}\" to \"{name}\"",
        kind.label(),
        p.name
    );
    record(&state, &session, org.id, "license.assigned", &detail).await?;
    changed(&state, &format!("/admin/packages/{id}"))
}

pub(super) async fn unassign(
    State(state): State<AppState>,
    OrgPackage(PermittedInOrg { session, org, .. }, p): OrgPackage<ManagePackages>,
    Path((id, aid)): Path<(i64, i64)>,
    _: Confirmed,
) -> PageResult {
    state.db.delete_assignment(id, aid).await?;
    let detail = format!("unassigned license {aid} of \"{}\"", p.name);
    record(&state, &session, org.id, "license.unassigned", &detail).await?;
    changed(&state, &format!("/admin/packages/{id}"))
}
