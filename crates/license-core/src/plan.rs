//! Refresh planning: when the console asks the license server again, as
//! pure functions of the persisted [`LicenseState`] and `now` (interval,
//! per-device jitter, retry backoff, the grace-period deadline). Re-exported
//! from [`crate::assess`].

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::assess::LicenseState;

/// Shortest refresh interval ever planned, whatever the policy says, so a
/// zero interval cannot make the console hammer the server.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::minutes(1);
/// First retry delay after a failed refresh; doubles per failure.
pub const FIRST_RETRY: Duration = Duration::minutes(1);
/// Longest retry delay after failed refreshes.
pub const MAX_RETRY: Duration = Duration::hours(1);

/// Delay before retrying after `consecutive_failures` failed refreshes:
/// zero for none, then 1 min, 2 min, 4 min, ... capped at 1 h.
pub fn retry_backoff(consecutive_failures: u32) -> Duration {
    if consecutive_failures == 0 {
        return Duration::ZERO;
    }
    // 2^6 minutes already exceeds the cap; clamping the exponent avoids overflow.
    let doublings = (consecutive_failures - 1).min(6);
    (FIRST_RETRY * (1i32 << doublings)).min(MAX_RETRY)
}

/// The per-device offset added to the refresh interval, so a fleet does not
/// refresh at the same second: a value in `[-5%, +5%]` of `interval` (whole
/// seconds; about ±72 minutes for 24 hours), taken from the SHA-256 of the
/// Server ID. The same device always gets the same offset.
///
/// ```
/// use license_core::assess::refresh_jitter;
/// use time::Duration;
/// let j = refresh_jitter("srv-1", Duration::hours(24));
/// assert!(j.abs() <= Duration::minutes(72));
/// assert_eq!(j, refresh_jitter("srv-1", Duration::hours(24)));
/// ```
pub fn refresh_jitter(server_id: &str, interval: Duration) -> Duration {
    let span = interval.whole_seconds().max(0) / 20;
    if span == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(server_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = u64::from_be_bytes(first);
    // span <= i64::MAX / 20, so 2 * span + 1 cannot overflow.
    let width = (2 * span + 1) as u64;
    Duration::seconds((h % width) as i64 - span)
}

/// When to refresh the license next, or `None` when there is nothing to
/// refresh (not licensed, or revoked).
///
/// - After a success: last success + refresh interval (at least
///   [`MIN_REFRESH_INTERVAL`]) + [`refresh_jitter`].
/// - After failures: last failure + [`retry_backoff`] (1 min doubling to 1 h).
/// - Never past the end of the grace period while it can still be saved: a
///   plan that would land after it is moved to the grace end.
/// - A license account that was never verified is refreshed at once.
///
/// The result is on the device clock: if the clock was set back, the plan is
/// shifted back by the same amount so the wait stays right. It may be in the
/// past, meaning "refresh now".
///
/// ```
/// use license_core::assess::{next_refresh, LicenseState};
/// use time::macros::datetime;
/// use time::Duration;
///
/// let verified = datetime!(2030-06-01 12:00 UTC);
/// let mut state = LicenseState::default();
/// state.record_success(verified, None);
/// let at = next_refresh(&state, verified).unwrap();
/// assert!((at - (verified + Duration::hours(24))).abs() <= Duration::minutes(72));
///
/// state.record_failure(at);
/// state.record_failure(at + Duration::minutes(1));
/// // Two failures: retry 2 minutes after the last one.
/// assert_eq!(
///     next_refresh(&state, at + Duration::minutes(1)),
///     Some(at + Duration::minutes(3))
/// );
/// ```
pub fn next_refresh(state: &LicenseState, now: OffsetDateTime) -> Option<OffsetDateTime> {
    // Revoked, or licensed by file: nothing to refresh online.
    if state.revoked || state.offline_until.is_some() {
        return None;
    }
    let eff = state.effective_now(now);
    let failed_retry = match (state.consecutive_failures, state.last_failure) {
        (0, _) | (_, None) => None,
        (n, Some(f)) => Some(f.saturating_add(retry_backoff(n))),
    };
    let planned = match state.last_verified {
        None if state.account.is_none() => return None,
        None => failed_retry.unwrap_or(eff),
        Some(verified) => {
            let interval = state.policy.refresh_interval().max(MIN_REFRESH_INTERVAL);
            let server_id = state.account.as_ref().map_or("", |a| a.server_id.as_str());
            let mut scheduled = verified
                .saturating_add(interval)
                .saturating_add(refresh_jitter(server_id, interval));
            // A license token shorter-lived than the refresh interval is
            // renewed at 80 % of its remaining life, so it never lapses.
            if let Some(expires) = state.token_expires_at.filter(|e| *e > verified) {
                scheduled = scheduled.min(verified.saturating_add((expires - verified) * 0.8));
            }
            let plan = failed_retry.unwrap_or(scheduled);
            let grace_end = verified.saturating_add(state.policy.grace_period());
            let last_attempt = state.last_failure.map_or(verified, |f| f.max(verified));
            if plan > grace_end && last_attempt < grace_end {
                grace_end
            } else {
                plan
            }
        }
    };
    Some(planned.saturating_sub(eff - now))
}
