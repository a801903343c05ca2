//! The license domain: what a license account is, how a license token is
//! verified, and every decision that depends on time. No I/O lives here; every
//! function that needs the time takes `now` as an argument.
//!
//! - [`model`]: license account, license packages, licenses, policy.
//! - [`jwk`]: the license server's public keys (JWK Set, Ed25519).
//! - [`token`]: signing and verifying license tokens (EdDSA JWT).
//! - [`mod@assess`]: status, verification and grace period, token expiry, next
//!   refresh and clock rollback, as pure functions of the state and `now`.
//! - [`notice`]: which notifications are owed now, delivered once each.
//! - [`anchor`]: the server's keys as pinned, and how they may change.
//! - [`offline`]: air-gapped activation by file (request, response,
//!   offline license, deactivation).
//! - [`clock`]: the one [`Clock`] trait the shells read the time from.
//! - [`protocol`]: the OAuth constants client and server share.
//! - [`seal`]: the MAC over the console's own state file.
//! - [`wording`]: durations in words, one wording everywhere.
//!
//! A shell reads the clock once per tick and passes it in:
//!
//! ```
//! use license_core::{assess, notices_due, DeliveredNotices, LicenseState, LicenseStatus};
//! use time::macros::datetime;
//!
//! let now = datetime!(2030-06-01 12:00 UTC); // the shell's clock, read once
//! let mut state = LicenseState::default();   // restored from disk
//! let mut delivered = DeliveredNotices::new(); // restored from disk
//! state.observe(now);
//!
//! let assessment = assess(&state, now);
//! assert_eq!(assessment.status, LicenseStatus::Unlicensed);
//! assert_eq!(assessment.status.label(), "Not licensed");
//! for notice in notices_due(&state, &delivered, now) {
//!     // show notice.title and notice.body, then:
//!     delivered.mark(&notice);
//! }
//! // Sleep until assessment.next_refresh_at (if any), refresh, and record
//! // the outcome with state.record_success / state.record_failure.
//! ```

#![warn(missing_docs)]

pub mod anchor;
pub mod assess;
pub mod clock;
pub mod dpop;
pub mod jwk;
pub mod model;
pub mod notice;
pub mod offline;
mod plan;
pub mod protocol;
pub mod seal;
pub mod token;
pub mod wording;

pub use assess::{
    assess, check_clock, next_refresh, Assessment, ClockCheck, LicenseState, LicenseStatus,
    TokenExpiry, Verification,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use jwk::{key_id, Jwk, JwkSet, KeyRing};
pub use model::{
    Assignment, AssignmentKind, License, LicenseAccount, LicenseKind, LicensePackage,
    PackageStatus, Policy,
};
pub use notice::{
    notices_due, state_tampered_notice, DeliveredNotices, Notice, NoticeKind, Severity,
};
pub use token::{
    decode_header, encode, verify, verify_with, AccountClaims, Expectation, Header, LicenseClaims,
    RegisteredClaims, VerifyError, LICENSE_DOCUMENT_TYP, LICENSE_TOKEN_TYP,
};
