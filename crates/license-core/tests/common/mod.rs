//! Builders shared by the integration tests.
#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use license_core::assess::LicenseState;
use license_core::model::{
    Assignment, AssignmentKind, License, LicenseAccount, LicenseKind, LicensePackage, PackageStatus,
};
use license_core::{JwkSet, LicenseClaims, LicenseStatus};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A fixed moment the tests count from.
pub const T0: OffsetDateTime = datetime!(2030-06-01 00:00 UTC);
pub const SEC: Duration = Duration::SECOND;
pub const ISSUER: &str = "https://licenses.example";
pub const AUDIENCE: &str = "license-console";

pub fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn jwks_of(key: &SigningKey) -> JwkSet {
    JwkSet::single(&key.verifying_key())
}

pub fn kid_of(key: &SigningKey) -> String {
    license_core::key_id(&key.verifying_key())
}

pub fn claims(now: OffsetDateTime) -> LicenseClaims {
    LicenseClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "srv-1".into(),
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: (now + Duration::days(3)).unix_timestamp(),
        jti: "tok-1".into(),
        org: "Acme".into(),
        features: vec!["xms".into()],
        renewal_date: Some((now + Duration::days(200)).unix_timestamp()),
        hub_server_name: "hub-1".into(),
        hub_server_url: "https://hub.example".into(),
        cnf: None,
    }
}

pub fn account(
    renewal_date: Option<OffsetDateTime>,
    valid_until: OffsetDateTime,
) -> LicenseAccount {
    LicenseAccount {
        server_id: "srv-1".into(),
        organization: "Acme".into(),
        hub_server_name: "hub-1".into(),
        hub_server_url: "https://hub.example".into(),
        features: vec!["xms".into()],
        renewal_date,
        valid_from: T0 - Duration::days(365),
        valid_until,
        packages: vec![LicensePackage {
            id: "pkg-1".into(),
            name: "Backup".into(),
            status: PackageStatus::Active,
            verified: true,
            last_verified: Some(T0),
            valid_from: T0 - Duration::days(365),
            valid_until,
            licenses: vec![
                License {
                    kind: LicenseKind::Endpoint,
                    total: 10,
                    used: 1,
                    assignments: vec![Assignment {
                        name: "laptop-7".into(),
                        kind: AssignmentKind::Agent,
                    }],
                },
                License {
                    kind: LicenseKind::Microsoft365User,
                    total: 25,
                    used: 0,
                    assignments: vec![],
                },
            ],
        }],
    }
}

/// Licensed at T0, verified at T0, renewal in 200 days, token for 3 days.
pub fn licensed_state() -> LicenseState {
    let mut state = LicenseState {
        account: Some(account(
            Some(T0 + Duration::days(200)),
            T0 + Duration::days(400),
        )),
        token_expires_at: Some(T0 + Duration::days(3)),
        token_id: Some("tok-1".into()),
        ..LicenseState::default()
    };
    state.record_success(T0, Some(T0));
    state
}

/// Order of the statuses in time: a status may only move up without a refresh.
pub fn status_rank(s: &LicenseStatus) -> u8 {
    match s {
        LicenseStatus::Unlicensed => 0,
        LicenseStatus::Licensed => 1,
        LicenseStatus::RequiresRenewal { .. } => 2,
        LicenseStatus::ExpiredRequiresRenewal { .. } => 3,
        LicenseStatus::Revoked => 4,
    }
}
