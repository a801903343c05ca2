//! The console's state file: any bytes into the license-core parts of the
//! console's `Persisted` state (license state, notices delivered, policy,
//! JWK Set, the cached license document), and into `LicenseState`,
//! `DeliveredNotices` and `Policy` alone. No panic, in parsing or in any
//! decision made from what was parsed; the cached document never verifies
//! against the anchor unless this target's key signed it.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use license_core::jwk::JwkSet;
use license_core::token::{verify, AccountClaims};
use license_core::{DeliveredNotices, LicenseState, Policy};
use license_fuzz::{document_expectation, exercise_decisions, jwks, now, signed_here};
use serde::Deserialize;

static ANCHOR: LazyLock<JwkSet> = LazyLock::new(jwks);

/// The license-core fields of src-tauri's `store::Persisted` (the console's
/// own settings are left out; serde skips them).
#[derive(Deserialize, Default)]
#[serde(default)]
#[allow(dead_code)]
struct Persisted {
    version: u32,
    server_url: Option<String>,
    server_id: Option<String>,
    license_document: Option<String>,
    jwks: Option<JwkSet>,
    state: LicenseState,
    delivered: DeliveredNotices,
}

fuzz_target!(|data: &[u8]| {
    let now = now();
    if let Ok(file) = serde_json::from_slice::<Persisted>(data) {
        exercise_decisions(&file.state, &file.delivered, now);
        if let Some(doc) = &file.license_document {
            if verify::<AccountClaims>(doc, &ANCHOR, &document_expectation(), now).is_ok() {
                assert!(signed_here(doc), "a forged cached document verified");
            }
        }
        for jwk in file.jwks.iter().flat_map(|s| &s.keys) {
            let _ = jwk.verifying_key();
        }
    }
    if let Ok(state) = serde_json::from_slice::<LicenseState>(data) {
        exercise_decisions(&state, &DeliveredNotices::new(), now);
    }
    if let Ok(policy) = serde_json::from_slice::<Policy>(data) {
        let _ = (policy.refresh_interval(), policy.grace_period());
        let _ = (policy.renewal_warning(), policy.clock_tolerance());
        let _ = policy.token_expiry_warnings();
        let state = LicenseState {
            policy,
            ..LicenseState::default()
        };
        exercise_decisions(&state, &DeliveredNotices::new(), now);
    }
    if let Ok(delivered) = serde_json::from_slice::<DeliveredNotices>(data) {
        exercise_decisions(&LicenseState::default(), &delivered, now);
    }
});
