//! In-memory attempt limits: sign-in (per address and per account),
//! user-code entry (per session and per address), and device authorizations
//! started (per address: each keeps a row until its code expires).
//!
//! A mistyped user code cannot be attributed to a device code, so instead of
//! locking a device code (RFC 8628 §5.1) entry is locked for the caller: after
//! [`USER_CODE_MAX_FAILURES`] wrong codes within the window, that session and
//! that address cannot enter codes for [`LOCK_SECS`].

use std::collections::HashMap;
use std::sync::Mutex;

pub const SIGN_IN_MAX_FAILURES_PER_ACCOUNT: u32 = 5;
pub const SIGN_IN_MAX_FAILURES_PER_ADDRESS: u32 = 20;
pub const USER_CODE_MAX_FAILURES: u32 = 5;
pub const LOCK_SECS: i64 = 15 * 60;

#[derive(Debug, Default)]
pub struct Limits {
    pub sign_in: Limiter,
    pub user_code: Limiter,
    pub device_authorization: Limiter,
}

#[derive(Debug, Default)]
pub struct Limiter {
    // key -> (failures, window start)
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

impl Limiter {
    /// `Err(seconds)` while `key` has `max` failures within the window.
    pub fn check(&self, key: &str, max: u32, now: i64) -> Result<(), i64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(&(n, start)) if n >= max && now < start + LOCK_SECS => {
                Err(start + LOCK_SECS - now)
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, key: &str, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now < *start + LOCK_SECS);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        if now >= entry.1 + LOCK_SECS {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
