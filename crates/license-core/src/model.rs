//! The license account as the console shows it: license packages, licenses
//! and the policy the license server sends with them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Duration, OffsetDateTime};

/// Everything the license server says about one device (one Server ID).
///
/// This is what the "Manage license account" panel shows: status, Server ID,
/// organization, hub server, features, renewal date, validity period and the
/// license packages with their licenses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct LicenseAccount {
    /// The device identity at the authorization server.
    pub server_id: String,
    /// The organization the device is licensed to.
    pub organization: String,
    /// Name of the hub server this server connects to, as entered at the
    /// authorization server.
    pub hub_server_name: String,
    /// URL of the hub server this server connects to.
    pub hub_server_url: String,
    /// Licensed features (typically only `xms`).
    #[serde(default)]
    pub features: Vec<String>,
    /// The date by which the license must be renewed, when there is one.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub renewal_date: Option<OffsetDateTime>,
    /// Start of the account's validity period.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    /// End of the account's validity period.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// The license packages of the account.
    #[serde(default)]
    pub packages: Vec<LicensePackage>,
}

impl LicenseAccount {
    /// Number of licenses over all license packages (the sum of the totals).
    ///
    /// Saturates at `u32::MAX` rather than overflowing on absurd input.
    pub fn license_count(&self) -> u32 {
        self.packages
            .iter()
            .flat_map(|p| &p.licenses)
            .fold(0u32, |sum, l| sum.saturating_add(l.total))
    }

    /// Number of licenses in use over all license packages.
    pub fn used_count(&self) -> u32 {
        self.packages
            .iter()
            .flat_map(|p| &p.licenses)
            .fold(0u32, |sum, l| sum.saturating_add(l.used))
    }

    /// The date by which the license must be renewed: the renewal date when
    /// the server sent one, capped by the end of the validity period (a
    /// license is never valid past `valid_until`, whatever the renewal date).
    pub fn renewal_deadline(&self) -> OffsetDateTime {
        match self.renewal_date {
            Some(d) => d.min(self.valid_until),
            None => self.valid_until,
        }
    }

    /// Whether the account has license packages and every one is revoked.
    pub fn all_packages_revoked(&self) -> bool {
        !self.packages.is_empty()
            && self
                .packages
                .iter()
                .all(|p| p.status == PackageStatus::Revoked)
    }
}

/// A license package: a bundle of licenses bought together, verified as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct LicensePackage {
    /// Identifier of the package at the license server.
    pub id: String,
    /// Name shown to the user.
    pub name: String,
    /// Whether the package is active, suspended or revoked.
    pub status: PackageStatus,
    /// Whether the last verification of this package succeeded.
    #[serde(default)]
    pub verified: bool,
    /// When the package was last verified successfully.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_verified: Option<OffsetDateTime>,
    /// Start of the package's validity period.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    /// End of the package's validity period.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// The licenses of the package, one entry per kind.
    #[serde(default)]
    pub licenses: Vec<License>,
}

/// The state of a license package at the license server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageStatus {
    /// The package is in force.
    Active,
    /// The package is paused (for example, unpaid) and may come back.
    Suspended,
    /// The package was withdrawn for good.
    Revoked,
}

impl PackageStatus {
    /// Human label: "Active", "Suspended" or "Revoked".
    pub fn label(self) -> &'static str {
        match self {
            PackageStatus::Active => "Active",
            PackageStatus::Suspended => "Suspended",
            PackageStatus::Revoked => "Revoked",
        }
    }
}

/// Licenses of one kind within a license package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct License {
    /// What the license covers.
    pub kind: LicenseKind,
    /// How many licenses of this kind the package holds.
    pub total: u32,
    /// How many are in use.
    #[serde(default)]
    pub used: u32,
    /// What each used license is assigned to.
    #[serde(default)]
    pub assignments: Vec<Assignment>,
}

impl License {
    /// Licenses still free (never negative, even if the server reports more
    /// used than total).
    pub fn available(&self) -> u32 {
        self.total.saturating_sub(self.used)
    }
}

/// What a used license is assigned to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Assignment {
    /// Name of the agent or the backed-up object.
    pub name: String,
    /// Whether `name` is an agent or a backed-up object.
    pub kind: AssignmentKind,
}

/// Licenses are assigned either to agents doing backup or to backed-up
/// objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    /// An agent doing backup (endpoint, server, worker).
    Agent,
    /// A backed-up object (Microsoft 365 user, Git repository).
    Object,
}

/// The kind of a license.
///
/// A kind this version does not know (sent by a newer server) is kept as
/// [`LicenseKind::Other`] and shown as is, never rejected. Serialized as a
/// snake_case string; `Other(s)` serializes back to `s`.
///
/// ```
/// use license_core::LicenseKind;
/// let k: LicenseKind = serde_json::from_str("\"microsoft_365_user\"").unwrap();
/// assert_eq!(k, LicenseKind::Microsoft365User);
/// assert_eq!(k.label(), "Microsoft 365 user");
/// let new: LicenseKind = serde_json::from_str("\"quantum_worker\"").unwrap();
/// assert_eq!(new, LicenseKind::Other("quantum_worker".into()));
/// assert_eq!(serde_json::to_string(&new).unwrap(), "\"quantum_worker\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LicenseKind {
    /// An endpoint agent (workstation, laptop).
    Endpoint,
    /// A server agent.
    Server,
    /// A feature worker.
    FeatureWorker,
    /// A cloud worker.
    CloudWorker,
    /// A local worker.
    LocalWorker,
    /// A backed-up Microsoft 365 user.
    Microsoft365User,
    /// A backed-up Git repository.
    GitRepository,
    /// A kind unknown to this version, kept verbatim.
    Other(String),
}

impl LicenseKind {
    /// Every kind this version knows, in display order.
    pub const ALL: &'static [LicenseKind] = &[
        LicenseKind::Endpoint,
        LicenseKind::Server,
        LicenseKind::FeatureWorker,
        LicenseKind::CloudWorker,
        LicenseKind::LocalWorker,
        LicenseKind::Microsoft365User,
        LicenseKind::GitRepository,
    ];

    /// The wire name (snake_case); for `Other` the string as received.
    pub fn as_str(&self) -> &str {
        match self {
            LicenseKind::Endpoint => "endpoint",
            LicenseKind::Server => "server",
            LicenseKind::FeatureWorker => "feature_worker",
            LicenseKind::CloudWorker => "cloud_worker",
            LicenseKind::LocalWorker => "local_worker",
            LicenseKind::Microsoft365User => "microsoft_365_user",
            LicenseKind::GitRepository => "git_repository",
            LicenseKind::Other(s) => s,
        }
    }

    /// The kind for a wire name; unknown names become `Other`.
    pub fn from_wire(s: &str) -> LicenseKind {
        LicenseKind::ALL
            .iter()
            .find(|k| k.as_str() == s)
            .cloned()
            .unwrap_or_else(|| LicenseKind::Other(s.to_owned()))
    }

    /// Human label ("Endpoint", "Microsoft 365 user", ...); for `Other` the
    /// string as received, so the user still sees something meaningful.
    pub fn label(&self) -> &str {
        match self {
            LicenseKind::Endpoint => "Endpoint",
            LicenseKind::Server => "Server",
            LicenseKind::FeatureWorker => "Feature worker",
            LicenseKind::CloudWorker => "Cloud worker",
            LicenseKind::LocalWorker => "Local worker",
            LicenseKind::Microsoft365User => "Microsoft 365 user",
            LicenseKind::GitRepository => "Git repository",
            LicenseKind::Other(s) => s,
        }
    }

    /// Whether licenses of this kind are assigned to agents (as opposed to
    /// backed-up objects); `None` for an unknown kind.
    pub fn assigned_to(&self) -> Option<AssignmentKind> {
        match self {
            LicenseKind::Endpoint
            | LicenseKind::Server
            | LicenseKind::FeatureWorker
            | LicenseKind::CloudWorker
            | LicenseKind::LocalWorker => Some(AssignmentKind::Agent),
            LicenseKind::Microsoft365User | LicenseKind::GitRepository => {
                Some(AssignmentKind::Object)
            }
            LicenseKind::Other(_) => None,
        }
    }
}

impl std::fmt::Display for LicenseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for LicenseKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LicenseKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(LicenseKind::from_wire(&s))
    }
}

/// Timing rules sent by the license server; every field falls back to its
/// default when absent, so an older or newer server never breaks the console.
///
/// Defaults: refresh every 24 hours, 3 days of offline grace period, renewal
/// warning 30 days before the renewal date, token expiry warnings 24 h, 6 h
/// and 1 h before expiry, 5 minutes of clock tolerance.
///
/// ```
/// use license_core::Policy;
/// let p: Policy = serde_json::from_str(r#"{"grace_period_secs": 7200}"#).unwrap();
/// assert_eq!(p.grace_period_secs, 7200);
/// assert_eq!(p.refresh_interval_secs, Policy::default().refresh_interval_secs);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct Policy {
    /// How often the license is refreshed, in seconds (default 24 h).
    pub refresh_interval_secs: u64,
    /// How long the device keeps working without a successful verification,
    /// counted from the last success, in seconds (default 3 days).
    pub grace_period_secs: u64,
    /// How many days before the renewal date the status becomes
    /// "Requires Renewal" (default 30).
    pub renewal_warning_days: u32,
    /// Seconds before token expiry at which to warn (default 24 h, 6 h, 1 h).
    pub token_expiry_warnings_secs: Vec<u64>,
    /// How far the clock may go back before it counts as a rollback, in
    /// seconds (default 5 minutes).
    pub clock_tolerance_secs: u64,
}

/// Default refresh interval: 24 hours.
pub const DEFAULT_REFRESH_INTERVAL_SECS: u64 = 24 * 3600;
/// Default offline grace period: 3 days.
pub const DEFAULT_GRACE_PERIOD_SECS: u64 = 3 * 24 * 3600;
/// Default renewal warning: 30 days before the renewal date.
pub const DEFAULT_RENEWAL_WARNING_DAYS: u32 = 30;
/// Default clock tolerance: 5 minutes.
pub const DEFAULT_CLOCK_TOLERANCE_SECS: u64 = 300;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            refresh_interval_secs: DEFAULT_REFRESH_INTERVAL_SECS,
            grace_period_secs: DEFAULT_GRACE_PERIOD_SECS,
            renewal_warning_days: DEFAULT_RENEWAL_WARNING_DAYS,
            token_expiry_warnings_secs: vec![24 * 3600, 6 * 3600, 3600],
            clock_tolerance_secs: DEFAULT_CLOCK_TOLERANCE_SECS,
        }
    }
}

/// Seconds from the wire as a `Duration`, saturating instead of wrapping so a
/// hostile value cannot turn into a negative span.
pub(crate) fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX))
}

impl Policy {
    /// The refresh interval as a duration.
    pub fn refresh_interval(&self) -> Duration {
        secs(self.refresh_interval_secs)
    }

    /// The offline grace period as a duration.
    pub fn grace_period(&self) -> Duration {
        secs(self.grace_period_secs)
    }

    /// The renewal warning window as a duration.
    pub fn renewal_warning(&self) -> Duration {
        Duration::days(i64::from(self.renewal_warning_days))
    }

    /// The clock tolerance as a duration.
    pub fn clock_tolerance(&self) -> Duration {
        secs(self.clock_tolerance_secs)
    }

    /// Token expiry warning thresholds, largest (least urgent) first, without
    /// duplicates or zeros.
    pub fn token_expiry_warnings(&self) -> Vec<Duration> {
        let mut v: Vec<u64> = self
            .token_expiry_warnings_secs
            .iter()
            .copied()
            .filter(|&s| s > 0)
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v.into_iter().map(secs).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_round_trip_and_unknown_kinds_are_kept() {
        for k in LicenseKind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(serde_json::from_str::<LicenseKind>(&json).unwrap(), *k);
        }
        let other: LicenseKind = serde_json::from_str("\"tape_drive\"").unwrap();
        assert_eq!(other, LicenseKind::Other("tape_drive".into()));
        assert_eq!(other.label(), "tape_drive");
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"tape_drive\"");
    }

    #[test]
    fn kind_labels_are_human() {
        let labels: Vec<&str> = LicenseKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(
            labels,
            [
                "Endpoint",
                "Server",
                "Feature worker",
                "Cloud worker",
                "Local worker",
                "Microsoft 365 user",
                "Git repository"
            ]
        );
    }

    #[test]
    fn empty_policy_gets_every_default() {
        let p: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.refresh_interval(), Duration::hours(24));
        assert_eq!(p.grace_period(), Duration::days(3));
        assert_eq!(p.renewal_warning(), Duration::days(30));
        assert_eq!(
            p.token_expiry_warnings(),
            [Duration::hours(24), Duration::hours(6), Duration::hours(1)]
        );
        assert_eq!(p.clock_tolerance(), Duration::minutes(5));
    }

    #[test]
    fn account_round_trips_with_rfc3339_dates() {
        let json = r#"{
            "server_id": "srv-1", "organization": "Acme", "hub_server_name": "hub",
            "hub_server_url": "https://hub.example", "features": ["xms"],
            "renewal_date": "2030-01-01T00:00:00Z",
            "valid_from": "2029-01-01T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z",
            "packages": [{
                "id": "p1", "name": "Backup", "status": "suspended", "verified": true,
                "last_verified": null,
                "valid_from": "2029-01-01T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z",
                "licenses": [
                    {"kind": "endpoint", "total": 10, "used": 1,
                     "assignments": [{"name": "laptop-7", "kind": "agent"}]},
                    {"kind": "git_repository", "total": 5}
                ]
            }]
        }"#;
        let a: LicenseAccount = serde_json::from_str(json).unwrap();
        assert_eq!(a.license_count(), 15);
        assert_eq!(a.used_count(), 1);
        assert_eq!(a.packages[0].status, PackageStatus::Suspended);
        assert_eq!(a.packages[0].licenses[1].available(), 5);
        let back: LicenseAccount =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
