//! License account documents and license tokens past the signature: the
//! target signs the fuzzed bytes as the claims of a document and of a token
//! with the server's key, so every claim parser and check is reached. No
//! panic; only claims that meet the expectation verify; a verified document
//! round-trips through JSON, and everything the console decides from it
//! (status, grace period, notices, next refresh) runs without panicking.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use license_core::jwk::JwkSet;
use license_core::token::{
    verify, AccountClaims, LicenseClaims, LICENSE_DOCUMENT_TYP, LICENSE_TOKEN_TYP,
};
use license_core::{DeliveredNotices, LicenseState};
use license_fuzz::{
    document_expectation, exercise_decisions, header, jwks, now, server_key, sign_raw,
    token_expectation, AUDIENCE, ISSUER,
};
use time::OffsetDateTime;

static JWKS: LazyLock<JwkSet> = LazyLock::new(jwks);
static DOCUMENT_HEADER: LazyLock<Vec<u8>> =
    LazyLock::new(|| header(LICENSE_DOCUMENT_TYP, &server_key()));
static TOKEN_HEADER: LazyLock<Vec<u8>> = LazyLock::new(|| header(LICENSE_TOKEN_TYP, &server_key()));

fn within(nbf: i64, exp: i64) -> bool {
    let t = now().unix_timestamp();
    nbf.saturating_sub(60) <= t && t < exp.saturating_add(60)
}

fuzz_target!(|data: &[u8]| {
    let key = server_key();
    let now = now();

    let document = sign_raw(&DOCUMENT_HEADER, data, &key);
    if let Ok(claims) = verify::<AccountClaims>(&document, &JWKS, &document_expectation(), now) {
        assert!(claims.iss == ISSUER && claims.aud == AUDIENCE);
        assert!(within(claims.nbf, claims.exp));
        let json = serde_json::to_vec(&claims).expect("verified claims serialize");
        let back: AccountClaims = serde_json::from_slice(&json).expect("and parse back");
        assert_eq!(back, claims);

        let account = &claims.account;
        let _ = (account.license_count(), account.used_count());
        let _ = (account.renewal_deadline(), account.all_packages_revoked());
        for license in account.packages.iter().flat_map(|p| &p.licenses) {
            assert!(license.available() <= license.total);
            let _ = (license.kind.label(), license.kind.assigned_to());
        }
        let mut state = LicenseState {
            account: Some(account.clone()),
            policy: claims.policy.clone(),
            ..LicenseState::default()
        };
        state.record_success(
            now,
            OffsetDateTime::from_unix_timestamp(claims.server_time).ok(),
        );
        exercise_decisions(&state, &DeliveredNotices::new(), now);
    }

    let token = sign_raw(&TOKEN_HEADER, data, &key);
    if let Ok(claims) = verify::<LicenseClaims>(&token, &JWKS, &token_expectation(), now) {
        assert!(claims.iss == ISSUER && claims.aud == AUDIENCE);
        assert!(within(claims.nbf, claims.exp));
        let mut state = LicenseState::default();
        state.apply_token(&claims);
        assert!(
            state.token_expires_at.is_some(),
            "a verified token has an expiry"
        );
        exercise_decisions(&state, &DeliveredNotices::new(), now);
    }
});
