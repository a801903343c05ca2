//! Which notifications the console owes the user now.
//!
//! [`notices_due`] is a pure function of the license state, the set of
//! notices already delivered and `now`. Each notice has a stable id naming
//! what it is about (the token's `jti` and `exp`, the last verification, the
//! renewal date), so a new token or a new verification re-arms the warnings,
//! while asking twice (or after a restart with [`DeliveredNotices`]
//! restored) owes nothing new.
//!
//! # Families
//!
//! Notices come in families whose thresholds are crossed one after another:
//!
//! | family | ids, least urgent first |
//! | --- | --- |
//! | token | `token-expiring:{jti}@{exp}:{secs}s` per warning threshold, then `token-expired:{jti}@{exp}` |
//! | grace period | `grace-started:{verified}`, `grace-ending:{verified}:24h`, `grace-ending:{verified}:1h`, `grace-expired:{verified}` |
//! | renewal | `renewal-near:{date}:{days}d` for the warning window, 7 and 1 days, then `license-expired:{date}` |
//! | clock | `clock-rollback:{highest seen}` |
//! | revocation | `revoked:{server id}` |
//!
//! (`{exp}`, `{verified}`, `{date}` and `{highest seen}` are unix seconds.)
//! When several thresholds of a family are crossed at once (the console was
//! off for a while), only the most urgent is owed: a user who comes back to
//! "1 hour left" needs no "24 hours left" too. The others are listed in
//! [`Notice::supersedes`] and [`DeliveredNotices::mark`] records them with
//! it, so they are never sent later either.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::assess::{assess, ClockCheck, LicenseState, LicenseStatus, Verification};
use crate::wording::duration_in_words;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The license token expires soon (one per warning threshold).
    TokenExpiring,
    /// The license token has expired.
    TokenExpired,
    /// Verification failed (or is overdue): the grace period has started.
    VerificationFailed,
    /// The grace period ends soon (24 h, then 1 h left).
    GraceEnding,
    /// The grace period is over: the service may stop.
    GraceExpired,
    /// The renewal date is near (30, 7, 1 days).
    RenewalNear,
    /// The renewal date has passed.
    LicenseExpired,
    /// The system clock was set back.
    ClockRollback,
    /// The license was revoked.
    Revoked,
    /// The console's state file was edited, replaced, deleted or restored
    /// from an older copy.
    StateTampered,
    /// The offline license (air-gapped activation) runs out soon (7 days,
    /// 1 day, 1 hour before).
    OfflineExpiring,
    /// The offline license has run out.
    OfflineExpired,
}

/// How loudly a notice should be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing stops yet.
    Info,
    /// Act soon.
    Warning,
    /// Something stopped or is about to.
    Critical,
}

impl NoticeKind {
    /// How loudly to show a notice of this kind.
    pub fn severity(self) -> Severity {
        match self {
            NoticeKind::TokenExpiring | NoticeKind::RenewalNear => Severity::Info,
            NoticeKind::OfflineExpiring => Severity::Warning,
            NoticeKind::OfflineExpired => Severity::Critical,
            NoticeKind::VerificationFailed
            | NoticeKind::GraceEnding
            | NoticeKind::ClockRollback
            | NoticeKind::StateTampered => Severity::Warning,
            NoticeKind::TokenExpired
            | NoticeKind::GraceExpired
            | NoticeKind::LicenseExpired
            | NoticeKind::Revoked => Severity::Critical,
        }
    }
}

/// A notification owed to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Stable id; deliver each id once.
    pub id: String,
    /// What the notice is about.
    pub kind: NoticeKind,
    /// Short title.
    pub title: String,
    /// One or two sentences in plain words: what happened and what to do.
    pub body: String,
    /// Ids of less urgent notices of the same family that this one replaces;
    /// record them as delivered with it ([`DeliveredNotices::mark`]).
    #[serde(default)]
    pub supersedes: Vec<String>,
}

/// The notice owed when the console found its state file changed behind its
/// back (`what`: "was edited", "was deleted", ...) at `at`. It is owed once
/// per finding; the id carries the time found.
pub fn state_tampered_notice(what: &str, at: OffsetDateTime) -> Notice {
    Notice {
        id: format!("state-tampered-{}", at.unix_timestamp()),
        kind: NoticeKind::StateTampered,
        title: "License state file changed".to_owned(),
        body: format!(
            "The console's state file {what} outside the console. Nothing in it was used to \
             extend the license: the panel shows what the server signed. Refresh to verify now."
        ),
        supersedes: Vec::new(),
    }
}

/// The ids of notices already delivered; persist it with the license state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveredNotices(pub BTreeSet<String>);

impl DeliveredNotices {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one id; `false` if it was already there.
    pub fn insert(&mut self, id: impl Into<String>) -> bool {
        self.0.insert(id.into())
    }

    /// Whether the id was delivered.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }

    /// Record a delivered notice and every notice it supersedes.
    pub fn mark(&mut self, notice: &Notice) {
        self.insert(notice.id.clone());
        for id in &notice.supersedes {
            self.insert(id.clone());
        }
    }

    /// Number of ids recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was delivered yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The notices owed at `now` that are not in `delivered`, most severe first.
///
/// After showing them, record each with [`DeliveredNotices::mark`]; asking
/// again then returns nothing until a new threshold is crossed.
///
/// ```
/// use license_core::assess::LicenseState;
/// use license_core::notice::{notices_due, DeliveredNotices, NoticeKind};
/// use time::macros::datetime;
/// use time::Duration;
///
/// let now = datetime!(2030-06-01 12:00 UTC);
/// let mut state = LicenseState::default();
/// state.record_success(now - Duration::hours(36), None);
/// state.token_expires_at = Some(now + Duration::hours(5));
/// state.token_id = Some("t-1".into());
///
/// let mut delivered = DeliveredNotices::new();
/// let due = notices_due(&state, &delivered, now);
/// let kinds: Vec<_> = due.iter().map(|n| n.kind).collect();
/// assert_eq!(kinds, [NoticeKind::VerificationFailed, NoticeKind::TokenExpiring]);
/// // Only the 6 h token warning is shown; the 24 h one is superseded.
/// assert_eq!(due[1].supersedes.len(), 1);
///
/// for n in &due {
///     delivered.mark(n);
/// }
/// assert!(notices_due(&state, &delivered, now).is_empty());
/// ```
pub fn notices_due(
    state: &LicenseState,
    delivered: &DeliveredNotices,
    now: OffsetDateTime,
) -> Vec<Notice> {
    let assessment = assess(state, now);
    let eff = assessment.effective_now;
    let mut due = Vec::new();

    if assessment.status == LicenseStatus::Revoked {
        let server_id = state.account.as_ref().map_or("", |a| a.server_id.as_str());
        due.extend(most_urgent(
            vec![notice(
                format!("revoked:{server_id}"),
                NoticeKind::Revoked,
                "License revoked",
                "The license server revoked the license of this server. \
                 Authorize the device again at the authorization server to keep the service running."
                    .to_owned(),
            )],
            delivered,
        ));
    }

    if let (ClockCheck::RolledBack { by }, Some(seen)) = (assessment.clock, state.latest_seen()) {
        due.extend(most_urgent(
            vec![notice(
                format!("clock-rollback:{}", seen.unix_timestamp()),
                NoticeKind::ClockRollback,
                "System clock set back",
                format!(
                    "The system clock is about {} behind a time this server has already seen. \
                     Licensing keeps counting from the later time, so the grace period and the \
                     token expiry are not extended. Correct the clock.",
                    duration_in_words(by)
                ),
            )],
            delivered,
        ));
    }

    // A revoked license makes every other warning noise.
    if assessment.status != LicenseStatus::Revoked {
        due.extend(most_urgent(
            grace_family(state, &assessment.verification, eff),
            delivered,
        ));
        due.extend(most_urgent(token_family(state, eff), delivered));
        due.extend(most_urgent(offline_family(state, eff), delivered));
        due.extend(most_urgent(renewal_family(state, eff), delivered));
    }

    due.sort_by_key(|n| std::cmp::Reverse(n.kind.severity()));
    due
}

/// The crossed notices of the grace period family, least urgent first.
fn grace_family(
    state: &LicenseState,
    verification: &Verification,
    eff: OffsetDateTime,
) -> Vec<Notice> {
    let Some(verified) = state.last_verified else {
        return Vec::new();
    };
    let (ends_at, expired) = match *verification {
        Verification::GracePeriod { ends_at, .. } => (ends_at, false),
        Verification::GraceExpired { ended_at } => (ended_at, true),
        Verification::Never
        | Verification::Verified { .. }
        | Verification::Offline { .. }
        | Verification::OfflineExpired { .. } => return Vec::new(),
    };
    let key = verified.unix_timestamp();
    let since = date(verified);
    let mut crossed = vec![notice(
        format!("grace-started:{key}"),
        NoticeKind::VerificationFailed,
        "License not verified",
        format!(
            "The license has not been verified with the license server since {since}. \
             The service keeps working during the grace period, until {}. \
             Connect this server to the internet or refresh the license.",
            date(ends_at)
        ),
    )];
    let grace = state.policy.grace_period();
    for (label, before) in [("24h", Duration::hours(24)), ("1h", Duration::hours(1))] {
        if before < grace && eff >= ends_at.saturating_sub(before) {
            crossed.push(notice(
                format!("grace-ending:{key}:{label}"),
                NoticeKind::GraceEnding,
                "Grace period ending",
                format!(
                    "The license has not been verified since {since}. The grace period ends on {} \
                     (in about {}); after that the service may stop. Connect this server to the \
                     internet or refresh the license.",
                    date(ends_at),
                    duration_in_words(ends_at - eff)
                ),
            ));
        }
    }
    if expired {
        crossed.push(notice(
            format!("grace-expired:{key}"),
            NoticeKind::GraceExpired,
            "Grace period over",
            format!(
                "The license has not been verified since {since} and the grace period ended on {}. \
                 The service may stop. Connect this server to the internet and refresh the license.",
                date(ends_at)
            ),
        ));
    }
    crossed
}

/// The crossed notices of the offline license family, least urgent first.
fn offline_family(state: &LicenseState, eff: OffsetDateTime) -> Vec<Notice> {
    let Some(until) = state.offline_until else {
        return Vec::new();
    };
    let key = format!(
        "{}@{}",
        state.offline_id.as_deref().unwrap_or("-"),
        until.unix_timestamp()
    );
    let mut crossed = Vec::new();
    for (label, before) in [
        ("7d", Duration::days(7)),
        ("1d", Duration::days(1)),
        ("1h", Duration::hours(1)),
    ] {
        if eff >= until.saturating_sub(before) {
            crossed.push(notice(
                format!("offline-expiring:{key}:{label}"),
                NoticeKind::OfflineExpiring,
                "Offline license expires soon",
                format!(
                    "The offline license of this server expires on {} (in about {}). Save an \
                     activation request, have it answered at the Authorization server and load \
                     the activation response before then.",
                    date(until),
                    duration_in_words(until - eff)
                ),
            ));
        }
    }
    if eff >= until {
        crossed.push(notice(
            format!("offline-expired:{key}"),
            NoticeKind::OfflineExpired,
            "Offline license expired",
            format!(
                "The offline license of this server expired on {}. The service may stop. Save \
                 an activation request and load the response to license this server again.",
                date(until)
            ),
        ));
    }
    crossed
}

/// The crossed notices of the token family, least urgent first.
fn token_family(state: &LicenseState, eff: OffsetDateTime) -> Vec<Notice> {
    let Some(expires_at) = state.token_expires_at else {
        return Vec::new();
    };
    let key = format!(
        "{}@{}",
        state.token_id.as_deref().unwrap_or("-"),
        expires_at.unix_timestamp()
    );
    let mut crossed = Vec::new();
    for before in state.policy.token_expiry_warnings() {
        // Still crossed once expired, so the expiry notice supersedes them.
        if eff >= expires_at.saturating_sub(before) {
            crossed.push(notice(
                format!("token-expiring:{key}:{}s", before.whole_seconds()),
                NoticeKind::TokenExpiring,
                "License token expires soon",
                format!(
                    "The license token expires on {} (in about {}). Connect this server to the \
                     internet so it can get a new license token from the authorization server.",
                    date(expires_at),
                    duration_in_words(expires_at - eff)
                ),
            ));
        }
    }
    if eff >= expires_at {
        crossed.push(notice(
            format!("token-expired:{key}"),
            NoticeKind::TokenExpired,
            "License token expired",
            format!(
                "The license token expired on {}. Connect this server to the internet so it can \
                 get a new license token from the authorization server.",
                date(expires_at)
            ),
        ));
    }
    crossed
}

/// Days before the renewal date at which to warn, largest first.
fn renewal_thresholds(warning_days: u32) -> Vec<u32> {
    let mut days: Vec<u32> = [warning_days, 7, 1]
        .into_iter()
        .filter(|&d| d > 0 && d <= warning_days)
        .collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    days
}

/// The crossed notices of the renewal family, least urgent first.
fn renewal_family(state: &LicenseState, eff: OffsetDateTime) -> Vec<Notice> {
    let Some(account) = &state.account else {
        return Vec::new();
    };
    let deadline = account.renewal_deadline();
    let key = deadline.unix_timestamp();
    let mut crossed = Vec::new();
    for days in renewal_thresholds(state.policy.renewal_warning_days) {
        let before = Duration::days(i64::from(days));
        if eff >= deadline.saturating_sub(before) {
            crossed.push(notice(
                format!("renewal-near:{key}:{days}d"),
                NoticeKind::RenewalNear,
                "License renewal due",
                format!(
                    "The license of {} must be renewed by {} (in about {}). Renew it at the \
                     authorization server.",
                    account.organization,
                    date(deadline),
                    duration_in_words(deadline - eff)
                ),
            ));
        }
    }
    if eff >= deadline {
        crossed.push(notice(
            format!("license-expired:{key}"),
            NoticeKind::LicenseExpired,
            "License expired",
            format!(
                "The license of {} expired on {}. It must be removed and acquired again from \
                 the authorization server.",
                account.organization,
                date(deadline)
            ),
        ));
    }
    crossed
}

/// The most urgent crossed notice of a family, unless already delivered.
fn most_urgent(mut crossed: Vec<Notice>, delivered: &DeliveredNotices) -> Option<Notice> {
    let mut top = crossed.pop()?;
    if delivered.contains(&top.id) {
        return None;
    }
    top.supersedes = crossed.into_iter().map(|n| n.id).collect();
    Some(top)
}

fn notice(id: String, kind: NoticeKind, title: &str, body: String) -> Notice {
    Notice {
        id,
        kind,
        title: title.to_owned(),
        body,
        supersedes: Vec::new(),
    }
}

const DATE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute] UTC");

/// A date as the user reads it, in UTC.
fn date(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    utc.format(DATE).unwrap_or_else(|_| utc.to_string())
}
