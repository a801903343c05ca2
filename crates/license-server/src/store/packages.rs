//! License packages, their license totals and assignments, and their mapping
//! to the license model.

use license_core::model::{self, Assignment, AssignmentKind, License, LicenseKind, LicensePackage};
use sqlx::{AnyConnection, FromRow};
use time::OffsetDateTime;

use super::audit::{self, NewAudit};
use super::sql::{execute, optional, scalar};
use super::{orgs, to_time, DbResult, OrgInput, Store};

/// A package's status. Stored as `active`, `suspended`, `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageStatus {
    Active,
    Suspended,
    Revoked,
}

impl PackageStatus {
    pub const ALL: [PackageStatus; 3] = [
        PackageStatus::Active,
        PackageStatus::Suspended,
        PackageStatus::Revoked,
    ];

    /// The stored and posted value.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageStatus::Active => "active",
            PackageStatus::Suspended => "suspended",
            PackageStatus::Revoked => "revoked",
        }
    }

    /// The status with this stored or posted value.
    pub fn parse(s: &str) -> Option<PackageStatus> {
        PackageStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl From<PackageStatus> for model::PackageStatus {
    fn from(s: PackageStatus) -> model::PackageStatus {
        match s {
            PackageStatus::Active => model::PackageStatus::Active,
            PackageStatus::Suspended => model::PackageStatus::Suspended,
            PackageStatus::Revoked => model::PackageStatus::Revoked,
        }
    }
}

/// What an assigned license is assigned to. Stored as `agent`, `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignedTo {
    Agent,
    Object,
}

impl AssignedTo {
    /// What a license of `kind` is assigned to.
    pub fn of(kind: &LicenseKind) -> AssignedTo {
        match kind.assigned_to() {
            Some(AssignmentKind::Object) => AssignedTo::Object,
            _ => AssignedTo::Agent,
        }
    }
}

impl From<AssignedTo> for AssignmentKind {
    fn from(a: AssignedTo) -> AssignmentKind {
        match a {
            AssignedTo::Agent => AssignmentKind::Agent,
            AssignedTo::Object => AssignmentKind::Object,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct Package {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub status: PackageStatus,
    pub valid_from: i64,
    pub valid_until: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct PackageLicense {
    pub package_id: i64,
    pub kind: String,
    pub total: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AssignmentRow {
    pub id: i64,
    pub package_id: i64,
    pub kind: String,
    pub name: String,
    pub assignment_kind: AssignedTo,
}

/// What an admin may change on a package.
#[derive(Debug, Clone)]
pub struct PackageUpdate<'a> {
    pub name: &'a str,
    pub status: PackageStatus,
    pub valid_from: i64,
    pub valid_until: i64,
}

/// `SELECT` the columns of [`Package`] `FROM packages`, then the rest.
macro_rules! select_packages {
    ($rest:literal) => {
        concat!(
            "SELECT id, org_id, name, status, valid_from, valid_until FROM packages ",
            $rest
        )
    };
}

async fn update(conn: &mut AnyConnection, id: i64, p: &PackageUpdate<'_>) -> DbResult<()> {
    let sql = "UPDATE packages SET name = $1, status = $2, valid_from = $3, valid_until = $4
                WHERE id = $5";
    let package = args![p.name, p.status, p.valid_from, p.valid_until, id];
    execute(conn, sql, package).await?;
    Ok(())
}

/// Sets how many licenses of `kind` the package holds (none: no row).
async fn set_total(conn: &mut AnyConnection, id: i64, kind: &str, total: i64) -> DbResult<()> {
    if total == 0 {
        let sql = "DELETE FROM package_licenses WHERE package_id = $1 AND kind = $2";
        execute(conn, sql, args![id, kind]).await?;
    } else {
        let sql = "INSERT INTO package_licenses (package_id, kind, total) VALUES ($1, $2, $3)
                   ON CONFLICT (package_id, kind) DO UPDATE SET total = excluded.total";
        execute(conn, sql, args![id, kind, total]).await?;
    }
    Ok(())
}

impl Store {
    pub async fn create_package(
        &self,
        org_id: i64,
        name: &str,
        valid_from: i64,
        valid_until: i64,
    ) -> DbResult<i64> {
        let sql =
            "INSERT INTO packages (org_id, name, valid_from, valid_until) VALUES ($1, $2, $3, $4)
                   RETURNING id";
        scalar(
            &self.write,
            sql,
            args![org_id, name, valid_from, valid_until],
        )
        .await
    }

    /// Updates a package and its license totals, with the audit entry, in
    /// one transaction.
    pub async fn update_package(
        &self,
        id: i64,
        p: &PackageUpdate<'_>,
        totals: &[(LicenseKind, i64)],
        entry: &NewAudit<'_>,
    ) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        update(&mut tx, id, p).await?;
        for (kind, total) in totals {
            set_total(&mut tx, id, kind.as_str(), *total).await?;
        }
        audit::insert(&mut tx, entry).await?;
        tx.commit().await
    }

    /// Renews a package (`p`) and extends its organization's account
    /// (`org`), with the audit entry, in one transaction.
    pub async fn renew_package(
        &self,
        id: i64,
        p: &PackageUpdate<'_>,
        org_id: i64,
        org: &OrgInput,
        entry: &NewAudit<'_>,
    ) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        update(&mut tx, id, p).await?;
        orgs::update(&mut tx, org_id, org).await?;
        audit::insert(&mut tx, entry).await?;
        tx.commit().await?;
        self.issued.forget_all();
        Ok(())
    }

    pub async fn set_license_total(&self, package_id: i64, kind: &str, total: i64) -> DbResult<()> {
        set_total(&mut *self.write.acquire().await?, package_id, kind, total).await
    }

    pub async fn add_assignment(
        &self,
        package_id: i64,
        kind: &LicenseKind,
        name: &str,
    ) -> DbResult<()> {
        let sql = "INSERT INTO assignments (package_id, kind, name, assignment_kind)
                   VALUES ($1, $2, $3, $4)";
        let to = AssignedTo::of(kind);
        execute(&self.write, sql, args![package_id, kind.as_str(), name, to]).await?;
        Ok(())
    }

    pub async fn delete_assignment(&self, package_id: i64, id: i64) -> DbResult<()> {
        let sql = "DELETE FROM assignments WHERE package_id = $1 AND id = $2";
        execute(&self.write, sql, args![package_id, id]).await?;
        Ok(())
    }

    pub async fn package(&self, id: i64) -> DbResult<Option<Package>> {
        let sql = select_packages!("WHERE id = $1");
        optional(&self.read, sql, args![id]).await
    }

    /// Packages of an organization with their licenses and assignments.
    pub async fn packages(
        &self,
        org_id: i64,
    ) -> DbResult<(Vec<Package>, Vec<PackageLicense>, Vec<AssignmentRow>)> {
        let mut conn = self.read.acquire().await?;
        let packages = select_packages!("WHERE org_id = $1 ORDER BY id");
        let packages = sqlx::query_as_with(packages, args![org_id])
            .fetch_all(&mut *conn)
            .await?;
        let licenses = "SELECT l.package_id, l.kind, l.total
                          FROM package_licenses l JOIN packages p ON p.id = l.package_id
                         WHERE p.org_id = $1";
        let licenses = sqlx::query_as_with(licenses, args![org_id])
            .fetch_all(&mut *conn)
            .await?;
        let assignments = "SELECT a.id, a.package_id, a.kind, a.name, a.assignment_kind
                             FROM assignments a JOIN packages p ON p.id = a.package_id
                            WHERE p.org_id = $1 ORDER BY a.id";
        let assignments = sqlx::query_as_with(assignments, args![org_id])
            .fetch_all(&mut *conn)
            .await?;
        Ok((packages, licenses, assignments))
    }

    /// Packages of an organization in the license model.
    pub async fn license_packages(&self, org_id: i64) -> DbResult<Vec<LicensePackage>> {
        let (packages, licenses, assignments) = self.packages(org_id).await?;
        Ok(build_packages(&packages, &licenses, &assignments))
    }
}

/// Rows -> the license model. Kinds in the model's display order.
pub fn build_packages(
    packages: &[Package],
    licenses: &[PackageLicense],
    assignments: &[AssignmentRow],
) -> Vec<LicensePackage> {
    packages
        .iter()
        .map(|p| {
            let mut rows: Vec<&PackageLicense> =
                licenses.iter().filter(|l| l.package_id == p.id).collect();
            rows.sort_by_key(|l| LicenseKind::from_wire(&l.kind));
            let licenses = rows
                .into_iter()
                .map(|l| {
                    let assigned: Vec<Assignment> = assignments
                        .iter()
                        .filter(|a| a.package_id == p.id && a.kind == l.kind)
                        .map(|a| Assignment {
                            name: a.name.clone(),
                            kind: a.assignment_kind.into(),
                        })
                        .collect();
                    License {
                        kind: LicenseKind::from_wire(&l.kind),
                        total: u32::try_from(l.total).unwrap_or(0),
                        used: u32::try_from(assigned.len()).unwrap_or(u32::MAX),
                        assignments: assigned,
                    }
                })
                .collect();
            LicensePackage {
                id: format!("PKG-{:05}", p.id),
                name: p.name.clone(),
                status: p.status.into(),
                verified: p.status == PackageStatus::Active,
                last_verified: None,
                valid_from: to_time(p.valid_from).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                valid_until: to_time(p.valid_until).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                licenses,
            }
        })
        .collect()
}

super::sql::text_column!(PackageStatus { Active => "active", Suspended => "suspended", Revoked => "revoked" });

super::sql::text_column!(AssignedTo { Agent => "agent", Object => "object" });
