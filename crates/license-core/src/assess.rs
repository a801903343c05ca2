//! Every time-based decision about a license, as pure functions of the
//! persisted [`LicenseState`] and `now`: license status, verification and
//! grace period, token expiry, next refresh and clock rollback.
//!
//! # Clock rollback
//!
//! Each decision uses the *effective time*: the latest of `now` and every
//! time the state has seen (`highest_seen`, `last_verified`,
//! `last_failure`). Setting the clock back therefore never extends the grace
//! period or the token's life, and no status moves backwards.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::model::{LicenseAccount, Policy};
use crate::token::LicenseClaims;

pub use crate::plan::{
    next_refresh, refresh_jitter, retry_backoff, FIRST_RETRY, MAX_RETRY, MIN_REFRESH_INTERVAL,
};

/// What the console persists about its license between runs; the input of
/// every decision. The shell updates it with [`LicenseState::observe`],
/// [`LicenseState::record_success`], [`LicenseState::record_failure`] and
/// [`LicenseState::apply_token`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct LicenseState {
    /// The license account, when the device is licensed.
    pub account: Option<LicenseAccount>,
    /// The policy last received from the license server.
    pub policy: Policy,
    /// Token expiry of the current license token.
    #[serde(with = "time::serde::rfc3339::option")]
    pub token_expires_at: Option<OffsetDateTime>,
    /// `jti` of the current license token.
    pub token_id: Option<String>,
    /// Last successful verification with the license server.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_verified: Option<OffsetDateTime>,
    /// Last failed verification attempt.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_failure: Option<OffsetDateTime>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// The license server said this device's license was revoked.
    pub revoked: bool,
    /// The highest wall-clock time ever observed (for rollback detection).
    #[serde(with = "time::serde::rfc3339::option")]
    pub highest_seen: Option<OffsetDateTime>,
    /// Licensed by file (air-gapped): the verified offline license's expiry.
    /// While set, the console neither refreshes nor counts a grace period.
    #[serde(with = "time::serde::rfc3339::option")]
    pub offline_until: Option<OffsetDateTime>,
    /// `jti` of the offline license.
    pub offline_id: Option<String>,
}

impl LicenseState {
    /// The latest time the state has seen: `highest_seen`, `last_verified`
    /// or `last_failure`, whichever is latest.
    pub fn latest_seen(&self) -> Option<OffsetDateTime> {
        [self.highest_seen, self.last_verified, self.last_failure]
            .into_iter()
            .flatten()
            .max()
    }

    /// The time every decision uses: `now`, or a later time already seen if
    /// the clock was set back.
    pub fn effective_now(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.latest_seen().map_or(now, |seen| seen.max(now))
    }

    /// Remember `now` as seen (call on every tick and at start).
    pub fn observe(&mut self, now: OffsetDateTime) {
        self.highest_seen = Some(self.highest_seen.map_or(now, |h| h.max(now)));
    }

    /// Record a successful verification at `now`.
    ///
    /// `server_time` is the license server's clock from the response
    /// ([`crate::token::AccountClaims::server_time`]), when known. If it
    /// agrees with `now` within the clock tolerance, the local clock is
    /// confirmed and `highest_seen` is re-anchored to `now`, which clears a
    /// rollback alarm caused by a clock once set too far *forward*. Otherwise
    /// the highest time seen is kept, so an online success with a clock set
    /// back cannot be used to stretch offline time.
    pub fn record_success(&mut self, now: OffsetDateTime, server_time: Option<OffsetDateTime>) {
        let confirmed =
            server_time.is_some_and(|s| (s - now).abs() <= self.policy.clock_tolerance());
        if confirmed {
            self.highest_seen = Some(now);
            self.last_failure = self.last_failure.filter(|f| *f <= now);
        } else {
            self.observe(now);
        }
        self.last_verified = Some(now);
        self.consecutive_failures = 0;
    }

    /// Record a failed verification attempt at `now`.
    pub fn record_failure(&mut self, now: OffsetDateTime) {
        self.observe(now);
        self.last_failure = Some(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
    }

    /// Take the token expiry and id of a newly verified license token.
    pub fn apply_token(&mut self, claims: &LicenseClaims) {
        self.token_expires_at = claims.expires_at();
        self.token_id = Some(claims.jti.clone());
    }
}

/// The license status shown in the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LicenseStatus {
    /// No license account: the device must be authorized.
    Unlicensed,
    /// A valid license.
    Licensed,
    /// The renewal date is within the renewal warning window.
    RequiresRenewal {
        /// The date by which the license must be renewed.
        renewal_date: OffsetDateTime,
    },
    /// The renewal date has passed.
    ExpiredRequiresRenewal {
        /// The date the license should have been renewed by.
        renewal_date: OffsetDateTime,
    },
    /// The license server revoked the license.
    Revoked,
}

impl LicenseStatus {
    /// The text shown to the user: "Licensed", "Requires Renewal",
    /// "Expired - Requires Renewal", "Not licensed" or "Revoked".
    pub fn label(&self) -> &'static str {
        match self {
            LicenseStatus::Unlicensed => "Not licensed",
            LicenseStatus::Licensed => "Licensed",
            LicenseStatus::RequiresRenewal { .. } => "Requires Renewal",
            LicenseStatus::ExpiredRequiresRenewal { .. } => "Expired - Requires Renewal",
            LicenseStatus::Revoked => "Revoked",
        }
    }

    /// Whether the license still lets the service run.
    pub fn is_valid(&self) -> bool {
        matches!(
            self,
            LicenseStatus::Licensed | LicenseStatus::RequiresRenewal { .. }
        )
    }
}

impl std::fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How recent the last successful verification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verification {
    /// Never verified.
    Never,
    /// Verified within the refresh interval, and no attempt failed since.
    Verified {
        /// Time of the last successful verification.
        at: OffsetDateTime,
    },
    /// Running on the offline grace period: an attempt failed since the
    /// last success, or the refresh interval has passed without one.
    GracePeriod {
        /// Time of the last successful verification.
        since_verified_at: OffsetDateTime,
        /// When the grace period ends (last success + grace period).
        ends_at: OffsetDateTime,
        /// Time left, always positive.
        left: Duration,
    },
    /// The grace period is over: the service may stop.
    GraceExpired {
        /// When the grace period ended.
        ended_at: OffsetDateTime,
    },
    /// Licensed by file (air-gapped), the offline license still runs.
    Offline {
        /// The offline expiry.
        until: OffsetDateTime,
        /// Time left, always positive.
        left: Duration,
    },
    /// The offline license has run out: the service may stop.
    OfflineExpired {
        /// When it ran out.
        ended_at: OffsetDateTime,
    },
}

impl Verification {
    /// Short text for the panel: "Never verified", "Verified",
    /// "Grace period" or "Grace period over".
    pub fn label(&self) -> &'static str {
        match self {
            Verification::Never => "Never verified",
            Verification::Verified { .. } => "Verified",
            Verification::GracePeriod { .. } => "Grace period",
            Verification::GraceExpired { .. } => "Grace period over",
            Verification::Offline { .. } => "Offline license",
            Verification::OfflineExpired { .. } => "Offline license expired",
        }
    }

    /// Whether the service may keep running (verified or within the grace
    /// period).
    pub fn is_usable(&self) -> bool {
        matches!(
            self,
            Verification::Verified { .. }
                | Verification::GracePeriod { .. }
                | Verification::Offline { .. }
        )
    }
}

/// The license token's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenExpiry {
    /// No license token.
    NoToken,
    /// Valid, no warning threshold crossed.
    Valid {
        /// The token expiry.
        expires_at: OffsetDateTime,
        /// Time left.
        left: Duration,
    },
    /// Valid, but a warning threshold is crossed.
    ExpiresSoon {
        /// The token expiry.
        expires_at: OffsetDateTime,
        /// Time left (at most `threshold`).
        left: Duration,
        /// The most urgent threshold crossed (e.g. 6 h when 5 h are left).
        threshold: Duration,
    },
    /// The token has expired: a new one must be obtained online.
    Expired {
        /// The token expiry.
        expired_at: OffsetDateTime,
    },
}

impl TokenExpiry {
    /// The token expiry, when there is a token.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        match *self {
            TokenExpiry::NoToken => None,
            TokenExpiry::Valid { expires_at, .. } | TokenExpiry::ExpiresSoon { expires_at, .. } => {
                Some(expires_at)
            }
            TokenExpiry::Expired { expired_at } => Some(expired_at),
        }
    }
}

/// Whether the clock was set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockCheck {
    /// The clock did not go back beyond the tolerance.
    Ok,
    /// `now` is earlier than a time already seen, by more than the tolerance.
    RolledBack {
        /// How far back the clock is.
        by: Duration,
    },
}

/// Everything the console shows or plans about its license at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assessment {
    /// License status.
    pub status: LicenseStatus,
    /// Verification and grace period.
    pub verification: Verification,
    /// Token expiry.
    pub token: TokenExpiry,
    /// When to refresh next, on the device clock (see [`next_refresh`]).
    pub next_refresh_at: Option<OffsetDateTime>,
    /// Clock rollback check.
    pub clock: ClockCheck,
    /// The effective time the assessment was made at (see the module docs).
    pub effective_now: OffsetDateTime,
}

/// Assess the license at `now`.
///
/// ```
/// use license_core::assess::{assess, LicenseState, LicenseStatus, Verification};
/// use time::macros::datetime;
///
/// let now = datetime!(2030-06-01 12:00 UTC);
/// let mut state = LicenseState::default();
/// assert_eq!(assess(&state, now).status, LicenseStatus::Unlicensed);
///
/// state.record_success(now, Some(now));
/// state.record_failure(now + time::Duration::hours(30));
/// let a = assess(&state, now + time::Duration::hours(30));
/// assert_eq!(
///     a.verification,
///     Verification::GracePeriod {
///         since_verified_at: now,
///         ends_at: now + time::Duration::days(3),
///         left: time::Duration::hours(42),
///     }
/// );
/// ```
pub fn assess(state: &LicenseState, now: OffsetDateTime) -> Assessment {
    let effective_now = state.effective_now(now);
    Assessment {
        status: status_at(state, effective_now),
        verification: verification_at(state, effective_now),
        token: token_expiry_at(state, effective_now),
        next_refresh_at: next_refresh(state, now),
        clock: check_clock(state.latest_seen(), now, state.policy.clock_tolerance()),
        effective_now,
    }
}

/// The license status at effective time `eff`.
fn status_at(state: &LicenseState, eff: OffsetDateTime) -> LicenseStatus {
    if state.revoked {
        return LicenseStatus::Revoked;
    }
    let Some(account) = &state.account else {
        return LicenseStatus::Unlicensed;
    };
    if account.all_packages_revoked() {
        return LicenseStatus::Revoked;
    }
    let renewal_date = account.renewal_deadline();
    if eff >= renewal_date {
        LicenseStatus::ExpiredRequiresRenewal { renewal_date }
    } else if eff >= renewal_date.saturating_sub(state.policy.renewal_warning()) {
        LicenseStatus::RequiresRenewal { renewal_date }
    } else {
        LicenseStatus::Licensed
    }
}

/// Verification state at effective time `eff`.
fn verification_at(state: &LicenseState, eff: OffsetDateTime) -> Verification {
    if let Some(until) = state.offline_until {
        return if eff >= until {
            Verification::OfflineExpired { ended_at: until }
        } else {
            Verification::Offline {
                until,
                left: until - eff,
            }
        };
    }
    let Some(at) = state.last_verified else {
        return Verification::Never;
    };
    let ends_at = at.saturating_add(state.policy.grace_period());
    if eff >= ends_at {
        return Verification::GraceExpired { ended_at: ends_at };
    }
    let overdue = eff >= at.saturating_add(state.policy.refresh_interval());
    let failed = state.consecutive_failures > 0;
    if overdue || failed {
        Verification::GracePeriod {
            since_verified_at: at,
            ends_at,
            left: ends_at - eff,
        }
    } else {
        Verification::Verified { at }
    }
}

/// Token expiry at effective time `eff`.
fn token_expiry_at(state: &LicenseState, eff: OffsetDateTime) -> TokenExpiry {
    let Some(expires_at) = state.token_expires_at else {
        return TokenExpiry::NoToken;
    };
    if eff >= expires_at {
        return TokenExpiry::Expired {
            expired_at: expires_at,
        };
    }
    let left = expires_at - eff;
    // Thresholds come largest first; the smallest crossed is the most urgent.
    match state
        .policy
        .token_expiry_warnings()
        .into_iter()
        .rev()
        .find(|&t| left <= t)
    {
        Some(threshold) => TokenExpiry::ExpiresSoon {
            expires_at,
            left,
            threshold,
        },
        None => TokenExpiry::Valid { expires_at, left },
    }
}

/// Compare `now` with the highest time ever seen: the clock was set back if
/// `now` is earlier by more than `tolerance`.
///
/// ```
/// use license_core::assess::{check_clock, ClockCheck};
/// use time::macros::datetime;
/// use time::Duration;
/// let seen = datetime!(2030-06-01 12:00 UTC);
/// let tol = Duration::minutes(5);
/// assert_eq!(check_clock(Some(seen), seen - Duration::minutes(5), tol), ClockCheck::Ok);
/// assert_eq!(
///     check_clock(Some(seen), seen - Duration::hours(2), tol),
///     ClockCheck::RolledBack { by: Duration::hours(2) }
/// );
/// ```
pub fn check_clock(
    highest_seen: Option<OffsetDateTime>,
    now: OffsetDateTime,
    tolerance: Duration,
) -> ClockCheck {
    match highest_seen {
        Some(seen) if seen - now > tolerance => ClockCheck::RolledBack { by: seen - now },
        _ => ClockCheck::Ok,
    }
}
