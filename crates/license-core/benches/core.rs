//! How long the hot paths take: verifying a license token (target < 60 µs)
//! and assessing the license state (target < 5 µs).
//!
//! `verify license token` is the steady state of the console and the server:
//! one JwkSet, many tokens. The first verification against a new set also
//! decodes and checks its keys, shown separately.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::SigningKey;
use license_core::model::{License, LicenseAccount, LicenseKind, LicensePackage, PackageStatus};
use license_core::token::{encode, verify, verify_with};
use license_core::{
    assess, notices_due, DeliveredNotices, Expectation, JwkSet, KeyRing, LicenseClaims,
    LicenseState, LICENSE_TOKEN_TYP,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2030-06-01 00:00 UTC);

fn claims() -> LicenseClaims {
    LicenseClaims {
        iss: "https://licenses.example".into(),
        aud: "license-console".into(),
        sub: "srv-1".into(),
        iat: NOW.unix_timestamp(),
        nbf: NOW.unix_timestamp(),
        exp: (NOW + Duration::days(3)).unix_timestamp(),
        jti: "tok-1".into(),
        org: "Acme".into(),
        features: vec!["xms".into()],
        renewal_date: Some((NOW + Duration::days(200)).unix_timestamp()),
        hub_server_name: "hub-1".into(),
        hub_server_url: "https://hub.example".into(),
        cnf: None,
    }
}

fn state() -> LicenseState {
    let mut state = LicenseState {
        account: Some(LicenseAccount {
            server_id: "srv-1".into(),
            organization: "Acme".into(),
            hub_server_name: "hub-1".into(),
            hub_server_url: "https://hub.example".into(),
            features: vec!["xms".into()],
            renewal_date: Some(NOW + Duration::days(20)),
            valid_from: NOW - Duration::days(300),
            valid_until: NOW + Duration::days(60),
            packages: vec![LicensePackage {
                id: "pkg-1".into(),
                name: "Backup".into(),
                status: PackageStatus::Active,
                verified: true,
                last_verified: Some(NOW),
                valid_from: NOW - Duration::days(300),
                valid_until: NOW + Duration::days(60),
                licenses: LicenseKind::ALL
                    .iter()
                    .map(|kind| License {
                        kind: kind.clone(),
                        total: 10,
                        used: 3,
                        assignments: vec![],
                    })
                    .collect(),
            }],
        }),
        token_expires_at: Some(NOW + Duration::days(3)),
        token_id: Some("tok-1".into()),
        ..LicenseState::default()
    };
    state.record_success(NOW, Some(NOW));
    state.record_failure(NOW + Duration::hours(30));
    state
}

fn benches(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[1; 32]);
    let jwks = JwkSet::single(&key.verifying_key());
    let token = encode(&claims(), LICENSE_TOKEN_TYP, &jwks.keys[0].kid, &key);
    let expect = Expectation::license_token("https://licenses.example", "license-console");
    c.bench_function("verify license token", |b| {
        b.iter(|| {
            verify::<LicenseClaims>(black_box(&token), &jwks, &expect, NOW + Duration::hours(1))
                .unwrap()
        })
    });

    let ring = KeyRing::new(&jwks);
    c.bench_function("verify license token (KeyRing)", |b| {
        b.iter(|| {
            verify_with::<LicenseClaims>(
                black_box(&token),
                &ring,
                &expect,
                NOW + Duration::hours(1),
            )
            .unwrap()
        })
    });

    // A set seen for the first time decodes its keys (once per set).
    c.bench_function("verify license token (new JwkSet)", |b| {
        b.iter_batched(
            || JwkSet::new(jwks.keys.clone()),
            |fresh| {
                verify::<LicenseClaims>(
                    black_box(&token),
                    &fresh,
                    &expect,
                    NOW + Duration::hours(1),
                )
                .unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    // The parts of a verification, to see where the time goes.
    c.bench_function("decode JWK to key", |b| {
        b.iter(|| black_box(&jwks.keys[0]).verifying_key().unwrap())
    });
    let vk = key.verifying_key();
    let (msg, _) = token.rsplit_once('.').unwrap();
    let sig = ed25519_dalek::Signer::sign(&key, msg.as_bytes());
    c.bench_function("ed25519 verify (cofactorless)", |b| {
        b.iter(|| ed25519_dalek::Verifier::verify(&vk, black_box(msg.as_bytes()), &sig).unwrap())
    });
    c.bench_function("ed25519 verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(msg.as_bytes()), &sig).unwrap())
    });

    let state = state();
    let later = NOW + Duration::hours(50);
    c.bench_function("assess", |b| b.iter(|| assess(black_box(&state), later)));

    let delivered = DeliveredNotices::new();
    c.bench_function("notices due", |b| {
        b.iter(|| notices_due(black_box(&state), &delivered, later))
    });
}

criterion_group!(core, benches);
criterion_main!(core);
