//! Every time boundary of the license decisions, one second before and after.

mod common;

use common::*;
use license_core::assess::{refresh_jitter, retry_backoff, MAX_RETRY};
use license_core::{
    assess, check_clock, next_refresh, ClockCheck, LicenseClaims, LicenseState, LicenseStatus,
    Policy, TokenExpiry, Verification,
};
use time::{Duration, OffsetDateTime};

const HOUR: Duration = Duration::HOUR;
const DAY: Duration = Duration::DAY;

#[test]
fn status_labels_are_exactly_the_panel_texts() {
    let d = T0;
    assert_eq!(LicenseStatus::Licensed.label(), "Licensed");
    assert_eq!(
        LicenseStatus::RequiresRenewal { renewal_date: d }.label(),
        "Requires Renewal"
    );
    assert_eq!(
        LicenseStatus::ExpiredRequiresRenewal { renewal_date: d }.to_string(),
        "Expired - Requires Renewal"
    );
    assert_eq!(LicenseStatus::Unlicensed.label(), "Not licensed");
    assert_eq!(LicenseStatus::Revoked.label(), "Revoked");
}

#[test]
fn status_at_the_renewal_thresholds() {
    let renewal = T0 + DAY * 200;
    let state = licensed_state();
    let renewing = LicenseStatus::RequiresRenewal {
        renewal_date: renewal,
    };
    let expired = LicenseStatus::ExpiredRequiresRenewal {
        renewal_date: renewal,
    };
    let cases = [
        (renewal - DAY * 30 - SEC, LicenseStatus::Licensed),
        (renewal - DAY * 30, renewing),
        (renewal - DAY * 30 + SEC, renewing),
        (renewal - SEC, renewing),
        (renewal, expired),
        (renewal + SEC, expired),
    ];
    for (now, want) in cases {
        assert_eq!(assess(&state, now).status, want, "at {now}");
    }
}

#[test]
fn the_end_of_the_validity_period_caps_the_renewal_date() {
    let valid_until = T0 + DAY * 10;
    let mut state = licensed_state();
    state.account = Some(account(Some(T0 + DAY * 200), valid_until));
    let want = |now| assess(&state, now).status;
    assert_eq!(
        want(valid_until - SEC),
        LicenseStatus::RequiresRenewal {
            renewal_date: valid_until
        }
    );
    assert_eq!(
        want(valid_until),
        LicenseStatus::ExpiredRequiresRenewal {
            renewal_date: valid_until
        }
    );

    // No renewal date: the validity period alone decides.
    let valid_until = T0 + DAY * 100;
    state.account = Some(account(None, valid_until));
    assert_eq!(
        assess(&state, valid_until - DAY * 30 - SEC).status,
        LicenseStatus::Licensed
    );
    assert!(matches!(
        assess(&state, valid_until - DAY * 30).status,
        LicenseStatus::RequiresRenewal { .. }
    ));
    assert!(matches!(
        assess(&state, valid_until + SEC).status,
        LicenseStatus::ExpiredRequiresRenewal { .. }
    ));
}

#[test]
fn unlicensed_and_revoked() {
    assert_eq!(
        assess(&LicenseState::default(), T0).status,
        LicenseStatus::Unlicensed
    );
    let mut state = licensed_state();
    state.revoked = true;
    assert_eq!(assess(&state, T0).status, LicenseStatus::Revoked);
    assert_eq!(next_refresh(&state, T0), None);

    let mut state = licensed_state();
    for p in &mut state.account.as_mut().unwrap().packages {
        p.status = license_core::PackageStatus::Revoked;
    }
    assert_eq!(assess(&state, T0).status, LicenseStatus::Revoked);
}

#[test]
fn verification_at_the_refresh_interval_and_grace_end() {
    let state = licensed_state();
    let grace = |now: OffsetDateTime| Verification::GracePeriod {
        since_verified_at: T0,
        ends_at: T0 + DAY * 3,
        left: T0 + DAY * 3 - now,
    };
    let expired = Verification::GraceExpired {
        ended_at: T0 + DAY * 3,
    };
    let verified = Verification::Verified { at: T0 };
    let cases = [
        (T0, verified),
        (T0 + HOUR * 24 - SEC, verified),
        (T0 + HOUR * 24, grace(T0 + HOUR * 24)),
        (T0 + HOUR * 24 + SEC, grace(T0 + HOUR * 24 + SEC)),
        (T0 + DAY * 3 - SEC, grace(T0 + DAY * 3 - SEC)),
        (T0 + DAY * 3, expired),
        (T0 + DAY * 3 + SEC, expired),
    ];
    for (now, want) in cases {
        assert_eq!(assess(&state, now).verification, want, "at {now}");
    }
    assert_eq!(
        assess(&LicenseState::default(), T0).verification,
        Verification::Never
    );
    let labels: Vec<_> = [T0, T0 + HOUR * 25, T0 + DAY * 4]
        .into_iter()
        .map(|now| {
            let v = assess(&state, now).verification;
            (v.label(), v.is_usable())
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("Verified", true),
            ("Grace period", true),
            ("Grace period over", false)
        ]
    );
}

#[test]
fn a_failed_attempt_starts_the_grace_period_at_once_and_a_success_ends_it() {
    let mut state = licensed_state();
    state.record_failure(T0 + HOUR);
    assert_eq!(
        assess(&state, T0 + HOUR).verification,
        Verification::GracePeriod {
            since_verified_at: T0,
            ends_at: T0 + DAY * 3,
            left: DAY * 3 - HOUR,
        }
    );
    state.record_success(T0 + HOUR * 2, Some(T0 + HOUR * 2));
    assert_eq!(
        assess(&state, T0 + HOUR * 2).verification,
        Verification::Verified { at: T0 + HOUR * 2 }
    );
}

#[test]
fn token_expiry_at_every_warning_threshold() {
    let state = licensed_state();
    let exp = T0 + DAY * 3;
    let soon = |now: OffsetDateTime, threshold: Duration| TokenExpiry::ExpiresSoon {
        expires_at: exp,
        left: exp - now,
        threshold,
    };
    let valid = |now: OffsetDateTime| TokenExpiry::Valid {
        expires_at: exp,
        left: exp - now,
    };
    let mut cases = vec![];
    let thresholds = [HOUR * 24, HOUR * 6, HOUR];
    for (i, t) in thresholds.into_iter().enumerate() {
        let before = exp - t - SEC;
        let want_before = match i {
            0 => valid(before),
            _ => soon(before, thresholds[i - 1]),
        };
        cases.push((before, want_before));
        cases.push((exp - t, soon(exp - t, t)));
        cases.push((exp - t + SEC, soon(exp - t + SEC, t)));
    }
    cases.push((exp - SEC, soon(exp - SEC, HOUR)));
    cases.push((exp, TokenExpiry::Expired { expired_at: exp }));
    cases.push((exp + SEC, TokenExpiry::Expired { expired_at: exp }));
    // The state is also verified late in these cases; make sure that does not
    // change the token's answer.
    for (now, want) in cases {
        assert_eq!(assess(&state, now).token, want, "at {now}");
    }
    assert_eq!(
        assess(&LicenseState::default(), T0).token,
        TokenExpiry::NoToken
    );
}

#[test]
fn apply_token_takes_expiry_and_id() {
    let mut state = LicenseState::default();
    let claims: LicenseClaims = claims(T0);
    state.apply_token(&claims);
    assert_eq!(state.token_expires_at, Some(T0 + DAY * 3));
    assert_eq!(state.token_id.as_deref(), Some("tok-1"));
}

#[test]
fn clock_rollback_at_the_tolerance() {
    let tol = Duration::minutes(5);
    let cases = [
        (T0 - tol + SEC, ClockCheck::Ok),
        (T0 - tol, ClockCheck::Ok),
        (T0 - tol - SEC, ClockCheck::RolledBack { by: tol + SEC }),
        (T0 + HOUR, ClockCheck::Ok),
    ];
    for (now, want) in cases {
        assert_eq!(check_clock(Some(T0), now, tol), want, "at {now}");
    }
    assert_eq!(check_clock(None, T0, tol), ClockCheck::Ok);
}

#[test]
fn setting_the_clock_back_extends_nothing() {
    let mut state = licensed_state();
    let late = T0 + DAY * 3 - HOUR;
    state.observe(late);
    let honest = assess(&state, late);
    let cheat = assess(&state, T0 + HOUR);
    assert_eq!(cheat.verification, honest.verification);
    assert_eq!(cheat.token, honest.token);
    assert_eq!(cheat.status, honest.status);
    assert_eq!(
        cheat.clock,
        ClockCheck::RolledBack {
            by: DAY * 3 - HOUR * 2
        }
    );
    assert_eq!(honest.clock, ClockCheck::Ok);
}

#[test]
fn an_online_success_confirmed_by_the_server_clears_a_clock_once_set_forward() {
    let mut state = licensed_state();
    state.observe(T0 + DAY * 365); // someone set the clock a year ahead once
    let now = T0 + HOUR;
    state.record_success(now, Some(now + SEC * 30));
    let a = assess(&state, now);
    assert_eq!(a.clock, ClockCheck::Ok);
    assert_eq!(a.verification, Verification::Verified { at: now });

    // Without the server's word the highest time seen is kept.
    let mut state = licensed_state();
    state.observe(T0 + DAY * 365);
    state.record_success(now, None);
    assert!(matches!(
        assess(&state, now).clock,
        ClockCheck::RolledBack { .. }
    ));
}

#[test]
fn jitter_is_per_device_deterministic_and_within_five_percent() {
    let interval = HOUR * 24;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200 {
        let j = refresh_jitter(&format!("srv-{i}"), interval);
        assert!(j.abs() <= Duration::minutes(72), "{j}");
        assert_eq!(j, refresh_jitter(&format!("srv-{i}"), interval));
        seen.insert(j.whole_seconds());
    }
    // A fleet spreads out rather than refreshing at the same second.
    assert!(seen.len() > 190, "{}", seen.len());
    assert_eq!(refresh_jitter("srv-1", SEC * 10), Duration::ZERO);
}

#[test]
fn next_refresh_after_success_is_the_interval_plus_jitter() {
    let state = licensed_state();
    let want = T0 + HOUR * 24 + refresh_jitter("srv-1", HOUR * 24);
    assert_eq!(next_refresh(&state, T0), Some(want));
    assert_eq!(assess(&state, T0 + HOUR).next_refresh_at, Some(want));
}

#[test]
fn backoff_doubles_from_one_minute_to_an_hour() {
    let want = [0, 1, 2, 4, 8, 16, 32, 60, 60, 60];
    for (n, minutes) in want.into_iter().enumerate() {
        assert_eq!(retry_backoff(n as u32), Duration::minutes(minutes), "n={n}");
    }
    assert_eq!(retry_backoff(u32::MAX), MAX_RETRY);

    let mut state = licensed_state();
    let mut at = T0 + HOUR * 24;
    for minutes in [1, 2, 4, 8, 16, 32, 60, 60] {
        state.record_failure(at);
        let next = next_refresh(&state, at).unwrap();
        assert_eq!(next, at + Duration::minutes(minutes));
        at = next;
    }
}

#[test]
fn a_refresh_is_never_planned_past_the_grace_end() {
    let mut state = licensed_state();
    let grace_end = T0 + DAY * 3;
    state.record_failure(grace_end - Duration::minutes(10));
    state.consecutive_failures = 20;
    assert_eq!(
        next_refresh(&state, grace_end - Duration::minutes(10)),
        Some(grace_end)
    );

    // A policy whose refresh interval outlasts the grace period.
    let mut state = licensed_state();
    state.policy = Policy {
        refresh_interval_secs: 5 * 86_400,
        ..Policy::default()
    };
    // (Without a token: a token would be renewed at 80 % of its life first.)
    state.token_expires_at = None;
    assert_eq!(next_refresh(&state, T0), Some(grace_end));

    // Once the grace period is over, keep retrying with the backoff.
    let mut state = licensed_state();
    state.record_failure(grace_end + SEC);
    assert_eq!(
        next_refresh(&state, grace_end + SEC),
        Some(grace_end + SEC + Duration::minutes(1))
    );
}

#[test]
fn next_refresh_for_unverified_and_zero_interval_states() {
    assert_eq!(next_refresh(&LicenseState::default(), T0), None);

    let mut state = licensed_state();
    state.last_verified = None;
    assert_eq!(next_refresh(&state, T0 + HOUR), Some(T0 + HOUR));

    let mut state = licensed_state();
    state.policy.refresh_interval_secs = 0;
    let floor = Duration::minutes(1);
    assert_eq!(
        next_refresh(&state, T0),
        Some(T0 + floor + refresh_jitter("srv-1", floor))
    );
}

#[test]
fn next_refresh_keeps_the_wait_when_the_clock_was_set_back() {
    let mut state = licensed_state();
    state.observe(T0 + HOUR * 10);
    let honest = next_refresh(&state, T0 + HOUR * 10).unwrap();
    let rolled_back = next_refresh(&state, T0 + HOUR * 4).unwrap();
    assert_eq!(honest - (T0 + HOUR * 10), rolled_back - (T0 + HOUR * 4));
}

#[test]
fn state_round_trips_and_an_empty_document_is_unlicensed() {
    let mut state = licensed_state();
    state.record_failure(T0 + HOUR);
    let json = serde_json::to_string(&state).unwrap();
    assert!(json.contains("\"last_verified\":\"2030-06-01T00:00:00Z\""));
    let back: LicenseState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    let empty: LicenseState = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, LicenseState::default());
    assert_eq!(assess(&empty, T0).status, LicenseStatus::Unlicensed);
}

#[test]
fn a_token_shorter_lived_than_the_refresh_interval_is_refreshed_before_it_lapses() {
    let verified = time::macros::datetime!(2030-06-01 12:00 UTC);
    let mut state = license_core::LicenseState::default();
    state.record_success(verified, Some(verified));
    state.token_expires_at = Some(verified + time::Duration::minutes(50));
    let at = license_core::next_refresh(&state, verified).expect("planned");
    assert_eq!(at, verified + time::Duration::minutes(40));

    // A token longer-lived than the interval leaves the 24 h plan alone.
    state.token_expires_at = Some(verified + time::Duration::days(3));
    let at = license_core::next_refresh(&state, verified).expect("planned");
    assert!((at - (verified + time::Duration::hours(24))).abs() <= time::Duration::minutes(72));
}

/// Licensed by file at T0: an offline license until T0 + 30 days, no
/// license token, never verified online.
fn offline_state() -> LicenseState {
    let mut state = LicenseState {
        account: Some(account(Some(T0 + DAY * 200), T0 + DAY * 400)),
        offline_until: Some(T0 + DAY * 30),
        offline_id: Some("off-1".into()),
        ..LicenseState::default()
    };
    state.observe(T0);
    state
}

#[test]
fn verification_at_the_offline_expiry() {
    let until = T0 + DAY * 30;
    let offline = |now: OffsetDateTime| Verification::Offline {
        until,
        left: until - now,
    };
    let expired = Verification::OfflineExpired { ended_at: until };
    // An online history (verified, failures, an old token) changes nothing
    // while licensed by file: no grace period is counted.
    let mut with_history = offline_state();
    with_history.record_success(T0 - DAY * 10, Some(T0 - DAY * 10));
    with_history.record_failure(T0 - DAY);
    with_history.token_expires_at = Some(T0 - DAY * 7);
    for state in [offline_state(), with_history] {
        let cases = [
            (T0, offline(T0)),
            (T0 + DAY * 4, offline(T0 + DAY * 4)),
            (until - SEC, offline(until - SEC)),
            (until, expired),
            (until + SEC, expired),
            (until + DAY * 400, expired),
        ];
        for (now, want) in cases {
            assert_eq!(assess(&state, now).verification, want, "at {now}");
        }
        assert_eq!(
            assess(&state, until - SEC).verification,
            Verification::Offline { until, left: SEC }
        );
    }
    let labels: Vec<_> = [until - SEC, until]
        .into_iter()
        .map(|now| {
            let v = assess(&offline_state(), now).verification;
            (v.label(), v.is_usable())
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("Offline license", true),
            ("Offline license expired", false)
        ]
    );
    // The license status still comes from the signed account.
    assert_eq!(assess(&offline_state(), T0).status, LicenseStatus::Licensed);
    assert!(matches!(
        assess(&offline_state(), T0 + DAY * 400).status,
        LicenseStatus::ExpiredRequiresRenewal { .. }
    ));
}

#[test]
fn nothing_is_refreshed_while_licensed_offline() {
    let until = T0 + DAY * 30;
    let mut state = offline_state();
    for now in [T0, until - SEC, until, until + DAY] {
        assert_eq!(next_refresh(&state, now), None, "at {now}");
        assert_eq!(assess(&state, now).next_refresh_at, None, "at {now}");
    }
    // Not even with an online past, failures pending, or a token to renew.
    state.record_success(T0 - DAY * 2, Some(T0 - DAY * 2));
    state.record_failure(T0 - HOUR);
    state.token_expires_at = Some(T0 + HOUR);
    assert_eq!(next_refresh(&state, T0), None);
    // Given up (back online): refreshing resumes.
    state.offline_until = None;
    state.offline_id = None;
    assert!(next_refresh(&state, T0).is_some());
}

#[test]
fn setting_the_clock_back_does_not_extend_the_offline_license() {
    let until = T0 + DAY * 30;
    let mut state = offline_state();
    state.observe(until);
    for back in [SEC, HOUR, DAY * 29, DAY * 365] {
        let a = assess(&state, until - back);
        assert_eq!(
            a.verification,
            Verification::OfflineExpired { ended_at: until },
            "{back} back"
        );
        assert_eq!(a.effective_now, until);
    }
    let mut state = offline_state();
    state.observe(until - HOUR);
    let cheat = assess(&state, T0 + DAY);
    assert_eq!(
        cheat.verification,
        Verification::Offline { until, left: HOUR }
    );
    assert!(matches!(cheat.clock, ClockCheck::RolledBack { .. }));
}

#[test]
fn an_offline_state_round_trips_and_older_files_read_without_it() {
    let state = offline_state();
    let json = serde_json::to_string(&state).unwrap();
    assert!(
        json.contains("\"offline_until\":\"2030-07-01T00:00:00Z\""),
        "{json}"
    );
    assert!(json.contains("\"offline_id\":\"off-1\""), "{json}");
    let back: LicenseState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    // A state file written before offline activation existed.
    let mut old: serde_json::Value = serde_json::to_value(licensed_state()).unwrap();
    let fields = old.as_object_mut().unwrap();
    fields.remove("offline_until");
    fields.remove("offline_id");
    let read: LicenseState = serde_json::from_value(old).unwrap();
    assert_eq!(read, licensed_state());
    assert_eq!(read.offline_until, None);
}
