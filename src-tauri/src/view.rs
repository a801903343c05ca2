//! What the panel shows, as one DTO built by a pure function of the verified
//! license account, the persisted state and `now`. The UI renders it and only
//! ticks the grace-period countdown between updates.

use license_core::wording::duration_in_words;
use license_core::PackageStatus;
use license_core::{
    assess, Assessment, ClockCheck, LicenseAccount, LicenseState, LicenseStatus, TokenExpiry,
    Verification,
};
use serde::{Deserialize, Serialize};

use crate::store::StateIntegrity;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as RFC 3339 text, the form every DTO carries.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Where the license stands, as the UI branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatusCode {
    /// No license yet.
    Unlicensed,
    /// Licensed and in force.
    Licensed,
    /// Licensed, near its renewal date.
    RequiresRenewal,
    /// Past its renewal date.
    ExpiredRequiresRenewal,
    /// Revoked by the server.
    Revoked,
}

impl From<LicenseStatus> for LicenseStatusCode {
    fn from(status: LicenseStatus) -> Self {
        match status {
            LicenseStatus::Unlicensed => Self::Unlicensed,
            LicenseStatus::Licensed => Self::Licensed,
            LicenseStatus::RequiresRenewal { .. } => Self::RequiresRenewal,
            LicenseStatus::ExpiredRequiresRenewal { .. } => Self::ExpiredRequiresRenewal,
            LicenseStatus::Revoked => Self::Revoked,
        }
    }
}

/// Where verification with the license server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum VerificationCode {
    /// Never verified.
    Never,
    /// Verified within the refresh interval.
    Verified,
    /// Verification failing; the grace period runs.
    GracePeriod,
    /// The grace period is over.
    GraceExpired,
    /// Licensed by file (air-gapped); the offline license runs.
    Offline,
    /// The offline license has run out.
    OfflineExpired,
}

impl From<Verification> for VerificationCode {
    fn from(verification: Verification) -> Self {
        match verification {
            Verification::Never => Self::Never,
            Verification::Verified { .. } => Self::Verified,
            Verification::GracePeriod { .. } => Self::GracePeriod,
            Verification::GraceExpired { .. } => Self::GraceExpired,
            Verification::Offline { .. } => Self::Offline,
            Verification::OfflineExpired { .. } => Self::OfflineExpired,
        }
    }
}

/// Whether a license package is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PackageStatusCode {
    /// In force.
    Active,
    /// Paused; may come back.
    Suspended,
    /// Withdrawn for good.
    Revoked,
}

impl From<PackageStatus> for PackageStatusCode {
    fn from(status: PackageStatus) -> Self {
        match status {
            PackageStatus::Active => Self::Active,
            PackageStatus::Suspended => Self::Suspended,
            PackageStatus::Revoked => Self::Revoked,
        }
    }
}

/// One license of a license package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PackageRow {
    /// Package id.
    pub id: String,
    /// Package name.
    pub name: String,
    /// Whether the package is in force.
    pub status: PackageStatusCode,
    /// "Active", "Suspended" or "Revoked".
    pub status_label: String,
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
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    /// Where the license stands.
    pub status: LicenseStatusCode,
    /// "Not licensed", "Licensed", "Requires Renewal", "Expired - Requires
    /// Renewal", "Revoked", with " (offline)" when licensed by file.
    pub status_label: String,
    /// Where verification with the server stands.
    pub verification: VerificationCode,
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
    pub grace_left_secs: Option<u32>,
    /// The server's grace period in words ("3 days"), whatever its state.
    pub grace_period: String,
    /// Licensed by file: the offline license's expiry (RFC 3339).
    pub offline_until: Option<String>,
    /// Seconds the offline license has left at `now` (the UI counts down
    /// from here).
    pub offline_left_secs: Option<u32>,
    /// When the console refreshes next (RFC 3339).
    pub next_refresh_at: Option<String>,
    /// The clock was set back by this many seconds beyond the tolerance.
    pub clock_rolled_back_secs: Option<u32>,
    /// Number of licenses.
    pub license_count: u32,
    /// Number of licenses in use.
    pub used_count: u32,
    /// License packages.
    pub packages: Vec<PackageRow>,
    /// Whether the state file read at start was the one last written; when
    /// not, the panel says so (and the signed document's facts decided).
    pub state_integrity: StateIntegrity,
    /// The time this view was computed (RFC 3339).
    pub now: String,
}

/// A whole number of seconds as the UI counts them: never negative, and
/// saturated rather than wrapped.
fn whole_secs(d: time::Duration) -> u32 {
    u32::try_from(d.whole_seconds().max(0)).unwrap_or(u32::MAX)
}

fn packages(account: &LicenseAccount) -> Vec<PackageRow> {
    account
        .packages
        .iter()
        .map(|p| PackageRow {
            id: p.id.clone(),
            name: p.name.clone(),
            status: p.status.into(),
            status_label: p.status.label().to_string(),
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
            (Some(rfc3339(ends_at)), Some(whole_secs(left)))
        }
        Verification::GraceExpired { ended_at } => (Some(rfc3339(ended_at)), Some(0)),
        _ => (None, None),
    };
    let (offline_until, offline_left_secs) = match a.verification {
        Verification::Offline { until, left } => (Some(rfc3339(until)), Some(whole_secs(left))),
        Verification::OfflineExpired { ended_at } => (Some(rfc3339(ended_at)), Some(0)),
        _ => (None, None),
    };
    let status_label = if offline_until.is_some() && a.status != LicenseStatus::Unlicensed {
        format!("{} (offline)", a.status.label())
    } else {
        a.status.label().to_string()
    };
    LicenseView {
        status: a.status.into(),
        status_label,
        verification: a.verification.into(),
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
        grace_period: duration_in_words(time::Duration::seconds(
            i64::try_from(state.policy.grace_period_secs).unwrap_or(i64::MAX),
        )),
        offline_until,
        offline_left_secs,
        next_refresh_at: a.next_refresh_at.map(rfc3339),
        clock_rolled_back_secs: match a.clock {
            ClockCheck::RolledBack { by } => Some(whole_secs(by)),
            ClockCheck::Ok => None,
        },
        license_count: account.map_or(0, LicenseAccount::license_count),
        used_count: account.map_or(0, LicenseAccount::used_count),
        packages: account.map(packages).unwrap_or_default(),
        state_integrity: StateIntegrity::Intact,
        now: rfc3339(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use license_core::Policy;
    use time::macros::datetime;
    use time::Duration;

    #[test]
    fn the_grace_countdown_and_its_length_come_from_the_servers_policy() {
        let verified = datetime!(2030-01-01 0:00 UTC);
        let state = LicenseState {
            policy: Policy {
                grace_period_secs: 12 * 3600,
                ..Policy::default()
            },
            last_verified: Some(verified),
            last_failure: Some(verified + Duration::hours(1)),
            consecutive_failures: 1,
            ..LicenseState::default()
        };
        let view = build(&state, None, None, verified + Duration::hours(2));
        assert_eq!(view.verification, VerificationCode::GracePeriod);
        assert_eq!(view.grace_period, "12 hours");
        assert_eq!(view.grace_left_secs, Some(10 * 3600));
        let end = verified + Duration::hours(12);
        let view = build(&state, None, None, end - Duration::seconds(1));
        assert_eq!(view.grace_left_secs, Some(1));
        let view = build(&state, None, None, end + Duration::seconds(1));
        assert_eq!(view.verification, VerificationCode::GraceExpired);
        assert_eq!(view.grace_left_secs, Some(0));
    }
}
