//! Property tests: no input makes verification panic, and the time-based
//! decisions keep their invariants for any state and any `now`.

mod common;

use common::*;
use license_core::token::{encode, verify};
use license_core::{
    assess, next_refresh, notices_due, AccountClaims, DeliveredNotices, Expectation, LicenseClaims,
    LicenseState, Policy, TokenExpiry, Verification, LICENSE_TOKEN_TYP,
};
use proptest::prelude::*;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        Just(Value::from("EdDSA")),
        Just(Value::from(ISSUER)),
        Just(Value::from(AUDIENCE)),
    ];
    let key = prop_oneof![
        Just("alg".to_owned()),
        Just("kid".to_owned()),
        Just("typ".to_owned()),
        Just("iss".to_owned()),
        Just("aud".to_owned()),
        Just("exp".to_owned()),
        Just("nbf".to_owned()),
        Just("renewal_date".to_owned()),
        "[a-z_]{1,8}",
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn at(offset_secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(offset_secs)
}

const MONTH: i64 = 30 * 86_400;

/// Any plausible persisted state around T0.
fn state() -> impl Strategy<Value = LicenseState> {
    (
        (
            proptest::option::of(-12 * MONTH..12 * MONTH),
            -12 * MONTH..12 * MONTH,
            proptest::option::of(-MONTH..MONTH),
            proptest::option::of(-MONTH..MONTH),
            0u32..12,
            prop::bool::weighted(0.1),
        ),
        (
            proptest::option::of(-MONTH..MONTH),
            proptest::option::of(-MONTH..MONTH),
            prop::bool::ANY,
            60u64..5 * 86_400,
            0u64..6 * 86_400,
            0u32..60,
        ),
        // Licensed by file now and then: an offline license ending around T0.
        (
            proptest::option::of(-MONTH..MONTH),
            prop::bool::weighted(0.8),
        ),
    )
        .prop_map(
            |(
                (renewal, valid_until, verified, failure, failures, revoked),
                (seen, token, licensed, refresh, grace, warn_days),
                (offline, offline_named),
            )| LicenseState {
                account: licensed.then(|| account(renewal.map(at), at(valid_until))),
                policy: Policy {
                    refresh_interval_secs: refresh,
                    grace_period_secs: grace,
                    renewal_warning_days: warn_days,
                    ..Policy::default()
                },
                token_expires_at: token.map(at),
                token_id: token.map(|t| format!("tok-{t}")),
                last_verified: verified.map(at),
                last_failure: failure.map(at),
                consecutive_failures: if failure.is_some() { failures } else { 0 },
                revoked,
                highest_seen: seen.map(at),
                offline_until: offline.map(at),
                offline_id: offline
                    .filter(|_| offline_named)
                    .map(|o| format!("off-{o}")),
            },
        )
}

fn verification_rank(v: &Verification) -> u8 {
    match v {
        Verification::Never => 0,
        Verification::Verified { .. } => 1,
        Verification::GracePeriod { .. } => 2,
        Verification::GraceExpired { .. } => 3,
        Verification::Offline { .. } => 1,
        Verification::OfflineExpired { .. } => 3,
    }
}

proptest! {
    #[test]
    fn verify_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let token = String::from_utf8_lossy(&bytes);
        let jwks = jwks_of(&signing_key(1));
        let expect = Expectation::license_token(ISSUER, AUDIENCE);
        prop_assert!(verify::<LicenseClaims>(&token, &jwks, &expect, T0).is_err());
        let ring = license_core::KeyRing::new(&jwks);
        prop_assert!(license_core::verify_with::<LicenseClaims>(&token, &ring, &expect, T0).is_err());
        let _ = license_core::decode_header(&token);
    }

    #[test]
    fn verify_never_panics_on_token_shaped_text(token in "[A-Za-z0-9_=.-]{0,400}") {
        let jwks = jwks_of(&signing_key(1));
        let expect = Expectation::license_token(ISSUER, AUDIENCE);
        prop_assert!(verify::<LicenseClaims>(&token, &jwks, &expect, T0).is_err());
    }

    #[test]
    fn verify_never_panics_on_arbitrary_signed_json(header in json(), payload in json(), now in -MONTH..MONTH) {
        // Signed with the real key, so parsing gets past the signature check.
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwks = jwks_of(&signing_key(1));
        let expect = Expectation::license_token(ISSUER, AUDIENCE);
        let good_header = serde_json::json!({"alg": "EdDSA", "typ": LICENSE_TOKEN_TYP, "kid": kid_of(&signing_key(1))});
        for h in [&header, &good_header] {
            let input = format!("{}.{}", b64(h), b64(&payload));
            let sig = signing_key(1).sign(input.as_bytes());
            let token = format!("{input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.to_bytes()));
            let _ = verify::<LicenseClaims>(&token, &jwks, &expect, at(now));
            let _ = verify::<AccountClaims>(&token, &jwks, &expect, at(now));
        }
    }

    #[test]
    fn verify_never_panics_on_arbitrary_claim_values(field in "iss|aud|sub|iat|nbf|exp|jti|org|features|renewal_date", value in json()) {
        let key = signing_key(1);
        let mut payload = serde_json::to_value(claims(T0)).unwrap();
        payload[field.as_str()] = value;
        let token = encode(&payload, LICENSE_TOKEN_TYP, &kid_of(&key), &key);
        let _ = verify::<LicenseClaims>(&token, &jwks_of(&key), &Expectation::license_token(ISSUER, AUDIENCE), T0);
    }

    #[test]
    fn persisted_documents_never_panic_to_read(doc in json(), now in -MONTH..MONTH) {
        let _ = serde_json::from_value::<Policy>(doc.clone());
        let _ = serde_json::from_value::<license_core::LicenseAccount>(doc.clone());
        let _ = serde_json::from_value::<DeliveredNotices>(doc.clone());
        if let Ok(state) = serde_json::from_value::<LicenseState>(doc) {
            let _ = assess(&state, at(now));
            let _ = notices_due(&state, &DeliveredNotices::new(), at(now));
        }
    }

    #[test]
    fn grace_time_left_is_never_negative_and_never_grows(state in state(), t in -MONTH..MONTH, dt in 0i64..10 * 86_400) {
        let (a1, a2) = (assess(&state, at(t)), assess(&state, at(t + dt)));
        for a in [&a1, &a2] {
            if let Verification::GracePeriod { left, .. } = a.verification {
                prop_assert!(left > Duration::ZERO);
            }
            if let TokenExpiry::Valid { left, .. } | TokenExpiry::ExpiresSoon { left, .. } = a.token {
                prop_assert!(left > Duration::ZERO);
            }
            if let Verification::Offline { left, until } = a.verification {
                prop_assert!(left > Duration::ZERO);
                prop_assert_eq!(until - left, a.effective_now);
            }
        }
        if let (Verification::GracePeriod { left: l1, .. }, Verification::GracePeriod { left: l2, .. }) = (a1.verification, a2.verification) {
            prop_assert!(l2 <= l1);
        }
        if let (Verification::Offline { left: l1, .. }, Verification::Offline { left: l2, .. }) = (a1.verification, a2.verification) {
            prop_assert!(l2 <= l1);
        }
        prop_assert!(verification_rank(&a1.verification) <= verification_rank(&a2.verification));
    }

    #[test]
    fn status_never_moves_backwards_without_a_refresh(state in state(), t in -13 * MONTH..13 * MONTH, dt in 0i64..3 * MONTH) {
        let s1 = assess(&state, at(t)).status;
        let s2 = assess(&state, at(t + dt)).status;
        prop_assert!(status_rank(&s1) <= status_rank(&s2), "{s1:?} then {s2:?}");
    }

    #[test]
    fn setting_the_clock_back_extends_nothing(state in state(), t in -MONTH..MONTH, back in 0i64..MONTH) {
        let mut state = state;
        state.observe(at(t));
        let honest = assess(&state, at(t));
        let cheat = assess(&state, at(t - back));
        prop_assert_eq!(cheat.verification, honest.verification);
        prop_assert_eq!(cheat.token, honest.token);
        prop_assert_eq!(cheat.status, honest.status);
    }

    #[test]
    fn the_notice_planner_is_idempotent(state in state(), times in prop::collection::vec(0i64..10 * 86_400, 1..12), start in -MONTH..MONTH) {
        let mut times = times;
        times.sort_unstable();
        let mut delivered = DeliveredNotices::new();
        let mut sent = std::collections::BTreeSet::new();
        for dt in times {
            let now = at(start + dt);
            for n in notices_due(&state, &delivered, now) {
                prop_assert!(sent.insert(n.id.clone()), "{} owed twice", n.id);
                delivered.mark(&n);
            }
            prop_assert!(notices_due(&state, &delivered, now).is_empty());
            let restored: DeliveredNotices = serde_json::from_str(&serde_json::to_string(&delivered).unwrap()).unwrap();
            prop_assert!(notices_due(&state, &restored, now).is_empty());
        }
    }

    #[test]
    fn a_refresh_is_never_planned_past_a_grace_end_that_can_be_saved(state in state(), t in -MONTH..MONTH) {
        let mut state = state;
        state.highest_seen = None;
        let now = at(t);
        if let (Some(verified), Some(next)) = (state.last_verified, next_refresh(&state, now)) {
            let grace_end = verified + state.policy.grace_period();
            let last_attempt = state.last_failure.map_or(verified, |f| f.max(verified));
            let eff = state.effective_now(now);
            if last_attempt < grace_end {
                // Shifted back by the rollback correction only, never later.
                prop_assert!(next <= grace_end - (eff - now));
            }
        }
    }

    #[test]
    fn licensed_offline_means_no_refresh_and_no_grace_period(state in state(), t in -MONTH..MONTH) {
        let now = at(t);
        let a = assess(&state, now);
        match state.offline_until {
            Some(until) => {
                prop_assert_eq!(next_refresh(&state, now), None);
                prop_assert_eq!(a.next_refresh_at, None);
                let usable = a.effective_now < until;
                let offline = matches!(
                    a.verification,
                    Verification::Offline { .. } | Verification::OfflineExpired { .. }
                );
                prop_assert!(offline, "{:?}", a.verification);
                prop_assert_eq!(a.verification.is_usable(), usable);
                for n in notices_due(&state, &DeliveredNotices::new(), now) {
                    prop_assert!(!n.id.starts_with("grace-"), "{}", n.id);
                }
            }
            None => {
                let offline = matches!(
                    a.verification,
                    Verification::Offline { .. } | Verification::OfflineExpired { .. }
                );
                prop_assert!(!offline, "{:?}", a.verification);
            }
        }
    }
}
