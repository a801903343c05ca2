//! Which notifications are owed, at every threshold, and that each is owed
//! once.

mod common;

use common::*;
use license_core::{notices_due, DeliveredNotices, LicenseState, NoticeKind};
use time::{Duration, OffsetDateTime};

const HOUR: Duration = Duration::HOUR;
const DAY: Duration = Duration::DAY;

/// The id owed for the family whose ids start with `prefix`, asking with
/// nothing delivered yet.
fn owed(state: &LicenseState, now: OffsetDateTime, prefixes: &[&str]) -> Option<String> {
    let due = notices_due(state, &DeliveredNotices::new(), now);
    let mut ids = due
        .into_iter()
        .map(|n| n.id)
        .filter(|id| prefixes.iter().any(|p| id.starts_with(p)));
    let first = ids.next();
    assert_eq!(ids.next(), None, "one notice per family");
    first
}

fn check(state: &LicenseState, prefixes: &[&str], cases: &[(OffsetDateTime, Option<String>)]) {
    for (now, want) in cases {
        assert_eq!(&owed(state, *now, prefixes), want, "at {now}");
    }
}

#[test]
fn token_notices_at_each_threshold() {
    let state = licensed_state();
    let exp: OffsetDateTime = T0 + DAY * 3;
    let key = format!("tok-1@{}", exp.unix_timestamp());
    let warn = |secs: i64| Some(format!("token-expiring:{key}:{secs}s"));
    let expired = Some(format!("token-expired:{key}"));
    check(
        &state,
        &["token-"],
        &[
            (exp - HOUR * 24 - SEC, None),
            (exp - HOUR * 24, warn(86_400)),
            (exp - HOUR * 24 + SEC, warn(86_400)),
            (exp - HOUR * 6 - SEC, warn(86_400)),
            (exp - HOUR * 6, warn(21_600)),
            (exp - HOUR * 6 + SEC, warn(21_600)),
            (exp - HOUR - SEC, warn(21_600)),
            (exp - HOUR, warn(3_600)),
            (exp - HOUR + SEC, warn(3_600)),
            (exp - SEC, warn(3_600)),
            (exp, expired.clone()),
            (exp + SEC, expired),
        ],
    );
}

#[test]
fn grace_notices_at_each_threshold() {
    let state = licensed_state();
    let key = T0.unix_timestamp();
    let end = T0 + DAY * 3;
    let started = Some(format!("grace-started:{key}"));
    let ending = |l: &str| Some(format!("grace-ending:{key}:{l}"));
    let over = Some(format!("grace-expired:{key}"));
    check(
        &state,
        &["grace-"],
        &[
            (T0 + HOUR * 24 - SEC, None),
            (T0 + HOUR * 24, started.clone()),
            (T0 + HOUR * 24 + SEC, started.clone()),
            (end - HOUR * 24 - SEC, started),
            (end - HOUR * 24, ending("24h")),
            (end - HOUR * 24 + SEC, ending("24h")),
            (end - HOUR - SEC, ending("24h")),
            (end - HOUR, ending("1h")),
            (end - HOUR + SEC, ending("1h")),
            (end - SEC, ending("1h")),
            (end, over.clone()),
            (end + SEC, over),
        ],
    );
}

#[test]
fn renewal_notices_at_each_threshold() {
    let mut state = licensed_state();
    let date: OffsetDateTime = T0 + DAY * 200;
    // Keep the verification fresh so only the renewal family speaks.
    state.last_verified = Some(date - DAY * 31);
    let key = date.unix_timestamp();
    let near = |d: u32| Some(format!("renewal-near:{key}:{d}d"));
    let expired = Some(format!("license-expired:{key}"));
    check(
        &state,
        &["renewal-", "license-"],
        &[
            (date - DAY * 30 - SEC, None),
            (date - DAY * 30, near(30)),
            (date - DAY * 30 + SEC, near(30)),
            (date - DAY * 7 - SEC, near(30)),
            (date - DAY * 7, near(7)),
            (date - DAY * 7 + SEC, near(7)),
            (date - DAY - SEC, near(7)),
            (date - DAY, near(1)),
            (date - DAY + SEC, near(1)),
            (date - SEC, near(1)),
            (date, expired.clone()),
            (date + SEC, expired),
        ],
    );
}

#[test]
fn clock_rollback_notice_at_the_tolerance() {
    let mut state = licensed_state();
    let seen = T0 + HOUR * 2;
    state.observe(seen);
    let id = Some(format!("clock-rollback:{}", seen.unix_timestamp()));
    check(
        &state,
        &["clock-"],
        &[
            (seen - Duration::minutes(5) + SEC, None),
            (seen - Duration::minutes(5), None),
            (seen - Duration::minutes(5) - SEC, id.clone()),
            (T0, id),
        ],
    );
}

#[test]
fn a_revoked_license_owes_only_the_revocation() {
    let mut state = licensed_state();
    state.revoked = true;
    let due = notices_due(&state, &DeliveredNotices::new(), T0 + DAY * 5);
    let ids: Vec<_> = due.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["revoked:srv-1"]);
    assert_eq!(due[0].kind, NoticeKind::Revoked);
}

#[test]
fn asking_again_or_after_a_restart_owes_nothing_new() {
    let state = licensed_state();
    let now = T0 + DAY * 3 - Duration::minutes(30);
    let mut delivered = DeliveredNotices::new();
    let due = notices_due(&state, &delivered, now);
    let kinds: Vec<_> = due.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeKind::GraceEnding, NoticeKind::TokenExpiring]);
    for n in &due {
        delivered.mark(n);
    }
    assert!(notices_due(&state, &delivered, now).is_empty());

    let restored: DeliveredNotices =
        serde_json::from_str(&serde_json::to_string(&delivered).unwrap()).unwrap();
    assert_eq!(restored, delivered);
    assert!(notices_due(&state, &restored, now).is_empty());
    // Later, but no new threshold crossed: still nothing.
    assert!(notices_due(&state, &restored, now + Duration::minutes(20)).is_empty());
}

#[test]
fn crossing_several_thresholds_at_once_sends_the_most_urgent_and_marks_the_rest() {
    let state = licensed_state();
    let exp: OffsetDateTime = T0 + DAY * 3;
    let key = format!("tok-1@{}", exp.unix_timestamp());
    let now = exp - Duration::minutes(30);
    let due = notices_due(&state, &DeliveredNotices::new(), now);
    let token = due
        .iter()
        .find(|n| n.kind == NoticeKind::TokenExpiring)
        .unwrap();
    assert_eq!(token.id, format!("token-expiring:{key}:3600s"));
    assert_eq!(
        token.supersedes,
        [
            format!("token-expiring:{key}:86400s"),
            format!("token-expiring:{key}:21600s"),
        ]
    );
    let mut delivered = DeliveredNotices::new();
    delivered.mark(token);
    for id in &token.supersedes {
        assert!(delivered.contains(id));
    }
}

#[test]
fn walking_through_time_delivers_every_notice_once_in_order() {
    let state = licensed_state();
    let mut delivered = DeliveredNotices::new();
    let mut sent = Vec::new();
    let mut now = T0;
    while now <= T0 + DAY * 4 {
        for n in notices_due(&state, &delivered, now) {
            assert!(!sent.contains(&n.id), "{} sent twice", n.id);
            delivered.mark(&n);
            sent.push(n.id);
        }
        now += Duration::minutes(7);
    }
    let exp = (T0 + Duration::days(3)).unix_timestamp();
    let v = T0.unix_timestamp();
    let want = [
        format!("grace-started:{v}"),
        format!("grace-ending:{v}:24h"),
        format!("token-expiring:tok-1@{exp}:86400s"),
        format!("token-expiring:tok-1@{exp}:21600s"),
        format!("grace-ending:{v}:1h"),
        format!("token-expiring:tok-1@{exp}:3600s"),
        format!("grace-expired:{v}"),
        format!("token-expired:tok-1@{exp}"),
    ];
    assert_eq!(sent, want);
}

#[test]
fn a_new_token_and_a_new_verification_re_arm_the_warnings() {
    let mut state = licensed_state();
    let mut delivered = DeliveredNotices::new();
    let now = T0 + DAY * 3 - Duration::minutes(30);
    for n in notices_due(&state, &delivered, now) {
        delivered.mark(&n);
    }
    // The console comes online: new verification, new token for 3 days.
    state.record_success(now, Some(now));
    state.token_expires_at = Some(now + DAY * 3);
    state.token_id = Some("tok-2".into());
    assert!(notices_due(&state, &delivered, now).is_empty());

    let later = now + DAY * 3 - Duration::minutes(30);
    let kinds: Vec<_> = notices_due(&state, &delivered, later)
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(kinds, [NoticeKind::GraceEnding, NoticeKind::TokenExpiring]);
}

#[test]
fn notices_speak_plainly() {
    let state = licensed_state();
    let due = notices_due(&state, &DeliveredNotices::new(), T0 + DAY * 3 - HOUR * 5);
    let token = due
        .iter()
        .find(|n| n.kind == NoticeKind::TokenExpiring)
        .unwrap();
    assert_eq!(token.title, "License token expires soon");
    assert_eq!(
        token.body,
        "The license token expires on 2030-06-04 00:00 UTC (in about 5 hours). Connect this \
         server to the internet so it can get a new license token from the authorization server."
    );
    let grace = due
        .iter()
        .find(|n| n.kind == NoticeKind::GraceEnding)
        .unwrap();
    assert!(
        grace.body.contains("the service may stop"),
        "{}",
        grace.body
    );
}

/// Licensed by file at T0: an offline license `off-1` until T0 + 30 days,
/// no license token, the renewal far off.
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
fn offline_notices_at_each_threshold() {
    let state = offline_state();
    let until: OffsetDateTime = T0 + DAY * 30;
    let key = format!("off-1@{}", until.unix_timestamp());
    let expiring = |l: &str| Some(format!("offline-expiring:{key}:{l}"));
    let expired = Some(format!("offline-expired:{key}"));
    check(
        &state,
        &["offline-"],
        &[
            (T0, None),
            (until - DAY * 7 - SEC, None),
            (until - DAY * 7, expiring("7d")),
            (until - DAY * 7 + SEC, expiring("7d")),
            (until - DAY - SEC, expiring("7d")),
            (until - DAY, expiring("1d")),
            (until - DAY + SEC, expiring("1d")),
            (until - HOUR - SEC, expiring("1d")),
            (until - HOUR, expiring("1h")),
            (until - HOUR + SEC, expiring("1h")),
            (until - SEC, expiring("1h")),
            (until, expired.clone()),
            (until + SEC, expired.clone()),
            (until + DAY * 100, expired),
        ],
    );
    // Nothing of the online families while licensed by file: no grace
    // period, no token.
    for now in [T0, until - HOUR, until + DAY] {
        let others: Vec<_> = notices_due(&state, &DeliveredNotices::new(), now)
            .into_iter()
            .filter(|n| !n.id.starts_with("offline-"))
            .map(|n| n.id)
            .collect();
        assert!(others.is_empty(), "at {now}: {others:?}");
    }
}

#[test]
fn offline_notices_are_delivered_once_each_in_order() {
    let state = offline_state();
    let until: OffsetDateTime = T0 + DAY * 30;
    let key = format!("off-1@{}", until.unix_timestamp());
    let mut delivered = DeliveredNotices::new();
    let mut sent = Vec::new();
    let mut now = T0;
    while now <= until + DAY * 2 {
        for n in notices_due(&state, &delivered, now) {
            assert!(!sent.contains(&n.id), "{} sent twice", n.id);
            delivered.mark(&n);
            sent.push(n.id);
        }
        now += Duration::minutes(7);
    }
    assert_eq!(
        sent,
        [
            format!("offline-expiring:{key}:7d"),
            format!("offline-expiring:{key}:1d"),
            format!("offline-expiring:{key}:1h"),
            format!("offline-expired:{key}"),
        ]
    );
    // After a restart with what was delivered: nothing again, at any time.
    let restored: DeliveredNotices =
        serde_json::from_str(&serde_json::to_string(&delivered).unwrap()).unwrap();
    for now in [until - DAY * 7, until - HOUR, until, until + DAY * 30] {
        assert!(notices_due(&state, &restored, now).is_empty(), "at {now}");
    }
}

#[test]
fn crossing_several_offline_thresholds_at_once_sends_the_most_urgent() {
    let state = offline_state();
    let until: OffsetDateTime = T0 + DAY * 30;
    let key = format!("off-1@{}", until.unix_timestamp());
    let mut delivered = DeliveredNotices::new();
    // Off for weeks, started again 30 minutes before the expiry.
    let due = notices_due(&state, &delivered, until - Duration::minutes(30));
    assert_eq!(due.len(), 1);
    let n = &due[0];
    assert_eq!(n.id, format!("offline-expiring:{key}:1h"));
    assert_eq!(n.kind, NoticeKind::OfflineExpiring);
    assert_eq!(n.kind.severity(), license_core::Severity::Warning);
    assert_eq!(
        n.supersedes,
        [
            format!("offline-expiring:{key}:7d"),
            format!("offline-expiring:{key}:1d")
        ]
    );
    delivered.mark(n);
    assert!(notices_due(&state, &delivered, until - SEC).is_empty());
    // Then off until past the expiry: only the expiry, once.
    let due = notices_due(&state, &delivered, until + DAY);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, NoticeKind::OfflineExpired);
    assert_eq!(due[0].kind.severity(), license_core::Severity::Critical);
    assert_eq!(due[0].supersedes.len(), 3);
    delivered.mark(&due[0]);
    assert!(notices_due(&state, &delivered, until + DAY * 2).is_empty());
}

#[test]
fn a_new_offline_license_re_arms_the_offline_notices() {
    let mut state = offline_state();
    let until: OffsetDateTime = T0 + DAY * 30;
    let mut delivered = DeliveredNotices::new();
    for n in notices_due(&state, &delivered, until - HOUR) {
        delivered.mark(&n);
    }
    // A new response loaded: a new offline license for 30 more days.
    let renewed = until - HOUR + DAY * 30;
    state.offline_until = Some(renewed);
    state.offline_id = Some("off-2".into());
    assert!(notices_due(&state, &delivered, until - HOUR).is_empty());
    let due = notices_due(&state, &delivered, renewed - DAY * 7);
    let ids: Vec<_> = due.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [format!(
            "offline-expiring:off-2@{}:7d",
            renewed.unix_timestamp()
        )]
    );
}

#[test]
fn setting_the_clock_back_neither_delays_nor_repeats_the_offline_notices() {
    let until: OffsetDateTime = T0 + DAY * 30;
    let key = format!("off-1@{}", until.unix_timestamp());
    let mut state = offline_state();
    state.observe(until);
    let mut delivered = DeliveredNotices::new();
    let due = notices_due(&state, &delivered, T0 + DAY);
    let ids: Vec<_> = due.iter().map(|n| n.id.clone()).collect();
    assert!(ids.contains(&format!("offline-expired:{key}")), "{ids:?}");
    assert!(
        ids.iter().any(|id| id.starts_with("clock-rollback:")),
        "{ids:?}"
    );
    for n in &due {
        delivered.mark(n);
    }
    assert!(notices_due(&state, &delivered, T0 + DAY * 2).is_empty());
}

#[test]
fn offline_notices_speak_plainly() {
    let state = offline_state();
    let until: OffsetDateTime = T0 + DAY * 30;
    let due = notices_due(&state, &DeliveredNotices::new(), until - HOUR * 5);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].title, "Offline license expires soon");
    assert!(
        due[0]
            .body
            .starts_with("The offline license of this server expires on 2030-07-01 00:00 UTC (in about 5 hours)."),
        "{}",
        due[0].body
    );
    let due = notices_due(&state, &DeliveredNotices::new(), until);
    assert_eq!(due[0].title, "Offline license expired");
    assert!(
        due[0].body.contains("expired on 2030-07-01 00:00 UTC"),
        "{}",
        due[0].body
    );
    assert!(
        due[0].body.contains("The service may stop"),
        "{}",
        due[0].body
    );
}
