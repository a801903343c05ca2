//! What the panel shows, as one DTO built by a pure function of the verified
//! license account, the persisted state and `now`. The UI renders it and only
//! ticks the grace-period countdown between updates.

use license_core::{
    assess, Assessment, ClockCheck, LicenseAccount, LicenseState, LicenseStatus, TokenExpiry,
    Verification,
};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as RFC 3339 text, the form every DTO carries.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// One license of a license package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(export, export_to = "../../ui/src/lib/bindings/")
)]
#[serde(rename_all = "camelCase")]
pub struct LicenseRow {
    /// Wire name of the kind (`endpoint`, `microsoft_365_user`, or a newer one).
    pub kind: String,
    /// Label of the kind ("Endpoint", "Microsoft 365 user", ...).
    pub label: String,
    /// Licenses bought.
    pub total: u32,
    /// Licenses in use.
    pub used: u32,
    /// What each used license is assigned to.
    pub assigned_to: Vec<String>,
}

/// One license package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(export, export_to = "../../ui/src/lib/bindings/")
)]
#[serde(rename_all = "camelCase")]
pub struct PackageRow {
    /// Package id.
    pub id: String,
    /// Package name.
    pub name: String,
    /// "Active", "Suspended" or "Revoked".
    pub status: String,
    /// Whether the package is verified.
    pub verified: bool,
    /// Last verification time of the package (RFC 3339).
    pub last_verified: Option<String>,
    /// Validity period start (RFC 3339).
    pub valid_from: String,
    /// Validity period end (RFC 3339).
    pub valid_until: String,
    /// Licenses of the package.
    pub licenses: Vec<LicenseRow>,
}

/// The whole "Manage license account" panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(export, export_to = "../../ui/src/lib/bindings/")
)]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    /// `unlicensed`, `licensed`, `requires_renewal`, `expired_requires_renewal`, `revoked`.
    #[cfg_attr(
        test,
        ts(
            type = r#""unlicensed" | "licensed" | "requires_renewal" | "expired_requires_renewal" | "revoked""#
        )
    )]
    pub status: &'static str,
    /// "Not licensed", "Licensed", "Requires Renewal", "Expired - Requires Renewal", "Revoked".
    pub status_label: &'static str,
    /// `never`, `verified`, `grace_period`, `grace_expired`.
    #[cfg_attr(
        test,
        ts(type = r#""never" | "verified" | "grace_period" | "grace_expired""#)
    )]
    pub verification: &'static str,
    /// The license server this console talks to.
    pub server_url: Option<String>,
    /// Server ID of this device.
    pub server_id: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// License Renewal Date (RFC 3339).
    pub renewal_date: Option<String>,
    /// Validity period start.
    pub valid_from: Option<String>,
    /// Validity period end.
    pub valid_until: Option<String>,
    /// Features.
    pub features: Vec<String>,
    /// Hub Server Name.
    pub hub_server_name: Option<String>,
    /// Hub Server URL.
    pub hub_server_url: Option<String>,
    /// Token Expiry (RFC 3339).
    pub token_expires_at: Option<String>,
    /// The token is inside a warning threshold or expired.
    pub token_warning: bool,
    /// The token has expired.
    pub token_expired: bool,
    /// Last successful verification (RFC 3339).
    pub last_verified: Option<String>,
    /// Last failed verification attempt (RFC 3339).
    pub last_failure: Option<String>,
    /// End of the grace period while verification is failing (RFC 3339).
    pub grace_ends_at: Option<String>,
    /// Seconds of grace left at `now` (the UI counts down from here).
    #[cfg_attr(test, ts(type = "number | null"))]
    pub grace_left_secs: Option<i64>,
    /// When the console refreshes next (RFC 3339).
    pub next_refresh_at: Option<String>,
    /// The clock was set back by this many seconds beyond the tolerance.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub clock_rolled_back_secs: Option<i64>,
    /// Number of licenses.
    pub license_count: u32,
    /// Number of licenses in use.
    pub used_count: u32,
    /// License packages.
    pub packages: Vec<PackageRow>,
    /// The time this view was computed (RFC 3339).
    pub now: String,
}

fn status_code(status: LicenseStatus) -> &'static str {
    match status {
        LicenseStatus::Unlicensed => "unlicensed",
        LicenseStatus::Licensed => "licensed",
        LicenseStatus::RequiresRenewal { .. } => "requires_renewal",
        LicenseStatus::ExpiredRequiresRenewal { .. } => "expired_requires_renewal",
        LicenseStatus::Revoked => "revoked",
    }
}

fn packages(account: &LicenseAccount) -> Vec<PackageRow> {
    account
        .packages
        .iter()
        .map(|p| PackageRow {
            id: p.id.clone(),
            name: p.name.clone(),
            status: p.status.label().to_string(),
            verified: p.verified,
            last_verified: p.last_verified.map(rfc3339),
            valid_from: rfc3339(p.valid_from),
            valid_until: rfc3339(p.valid_until),
            licenses: p
                .licenses
                .iter()
                .map(|l| LicenseRow {
                    kind: l.kind.as_str().to_string(),
                    label: l.kind.label().to_string(),
                    total: l.total,
                    used: l.used,
                    assigned_to: l.assignments.iter().map(|a| a.name.clone()).collect(),
                })
                .collect(),
        })
        .collect()
}

/// Builds the panel from the persisted state (whose `account` must already be
/// verified) at `now`.
pub fn build(
    state: &LicenseState,
    server_url: Option<&str>,
    server_id: Option<&str>,
    now: OffsetDateTime,
) -> LicenseView {
    let a: Assessment = assess(state, now);
    let account = state.account.as_ref();
    let (grace_ends_at, grace_left_secs) = match a.verification {
        Verification::GracePeriod { ends_at, left, .. } => {
            (Some(rfc3339(ends_at)), Some(left.whole_seconds().max(0)))
        }
        Verification::GraceExpired { ended_at } => (Some(rfc3339(ended_at)), Some(0)),
        _ => (None, None),
    };
    LicenseView {
        status: status_code(a.status),
        status_label: a.status.label(),
        verification: match a.verification {
            Verification::Never => "never",
            Verification::Verified { .. } => "verified",
            Verification::GracePeriod { .. } => "grace_period",
            Verification::GraceExpired { .. } => "grace_expired",
        },
        server_url: server_url.map(str::to_string),
        server_id: account
            .map(|acc| acc.server_id.clone())
            .or(server_id.map(str::to_string)),
        organization: account.map(|acc| acc.organization.clone()),
        renewal_date: account.and_then(|acc| acc.renewal_date).map(rfc3339),
        valid_from: account.map(|acc| rfc3339(acc.valid_from)),
        valid_until: account.map(|acc| rfc3339(acc.valid_until)),
        features: account.map(|acc| acc.features.clone()).unwrap_or_default(),
        hub_server_name: account.map(|acc| acc.hub_server_name.clone()),
        hub_server_url: account.map(|acc| acc.hub_server_url.clone()),
        token_expires_at: a.token.expires_at().map(rfc3339),
        token_warning: matches!(
            a.token,
            TokenExpiry::ExpiresSoon { .. } | TokenExpiry::Expired { .. }
        ),
        token_expired: matches!(a.token, TokenExpiry::Expired { .. }),
        last_verified: state.last_verified.map(rfc3339),
        last_failure: state.last_failure.map(rfc3339),
        grace_ends_at,
        grace_left_secs,
        next_refresh_at: a.next_refresh_at.map(rfc3339),
        clock_rolled_back_secs: match a.clock {
            ClockCheck::RolledBack { by } => Some(by.whole_seconds()),
            ClockCheck::Ok => None,
        },
        license_count: account.map_or(0, LicenseAccount::license_count),
        used_count: account.map_or(0, LicenseAccount::used_count),
        packages: account.map(packages).unwrap_or_default(),
        now: rfc3339(now),
    }
}
