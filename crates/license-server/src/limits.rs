//! In-memory attempt limits: sign-in (per address and per account),
//! user-code entry (per session and per address), and device authorizations
//! started (per address: each keeps a row until its code expires).
//!
//! A mistyped user code cannot be attributed to a device code, so instead of
//! locking a device code (RFC 8628 §5.1) entry is locked for the caller: after
//! [`USER_CODE_MAX_FAILURES`] wrong codes within the window, that session and
//! that address cannot enter codes for [`LOCK_SECS`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Wrong sign-ins an account takes before each further attempt waits
/// ([`Backoff`]).
pub const SIGN_IN_MAX_FAILURES_PER_ACCOUNT: u32 = 5;
pub const SIGN_IN_MAX_FAILURES_PER_ADDRESS: u32 = 20;
pub const USER_CODE_MAX_FAILURES: u32 = 5;
pub const LOCK_SECS: i64 = 15 * 60;

/// The longest wait an account's backoff imposes: an attacker guessing an
/// admin's password cannot lock the admin out for longer.
pub const SIGN_IN_MAX_BACKOFF_SECS: i64 = 60;

#[derive(Debug, Default)]
pub struct Limits {
    /// Sign-in attempts per client address (15-minute lock).
    pub sign_in: Limiter,
    /// Sign-in attempts per account (exponential backoff, at most a minute).
    pub sign_in_account: Backoff,
    pub user_code: Limiter,
    pub device_authorization: Limiter,
    /// At most one password check at a time per core.
    pub passwords: PasswordGate,
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

    /// Counts an attempt before the work it guards, in one step with the
    /// check: concurrent attempts cannot all pass the check before any is
    /// counted. `Err(seconds)` when `key` has `max` attempts in the window.
    pub fn attempt(&self, key: &str, max: u32, now: i64) -> Result<(), i64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now < *start + LOCK_SECS);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        if now >= entry.1 + LOCK_SECS {
            *entry = (0, now);
        }
        if entry.0 >= max {
            return Err(entry.1 + LOCK_SECS - now);
        }
        entry.0 += 1;
        Ok(())
    }

    /// Takes one counted attempt back (it succeeded).
    pub fn forgive(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Attempts per key with exponential backoff: after `max` failures, each
/// further attempt waits 1 s, 2 s, 4 s ... after the last one, never more
/// than [`SIGN_IN_MAX_BACKOFF_SECS`]. Attempts are counted before the work
/// they guard ([`Backoff::attempt`]); a success resets the key.
#[derive(Debug, Default)]
pub struct Backoff {
    // key -> (attempts, time of the last)
    attempts: Mutex<HashMap<String, (u32, i64)>>,
}

impl Backoff {
    /// The wait after `n` attempts, with `max` free.
    fn delay(n: u32, max: u32) -> i64 {
        match n.checked_sub(max) {
            None => 0,
            Some(extra) => 1i64
                .checked_shl(extra)
                .unwrap_or(i64::MAX)
                .min(SIGN_IN_MAX_BACKOFF_SECS),
        }
    }

    /// Counts an attempt on `key`, or `Err(seconds)` to wait first.
    pub fn attempt(&self, key: &str, max: u32, now: i64) -> Result<(), i64> {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, last)| now < *last + SIGN_IN_MAX_BACKOFF_SECS);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        let open_at = entry.1 + Self::delay(entry.0, max);
        if now < open_at {
            return Err(open_at - now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        Ok(())
    }

    /// Forgets `key` (a success).
    pub fn reset(&self, key: &str) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Bounds password checks (argon2, memory-hard on purpose) to one at a time
/// per core, so a flood of sign-ins queues instead of taking memory by the
/// gigabyte. Counts the checks run, and the most ever run at once.
#[derive(Debug)]
pub struct PasswordGate {
    permits: tokio::sync::Semaphore,
    size: usize,
    in_flight: AtomicUsize,
    /// Password checks run so far.
    pub runs: AtomicU64,
    /// The most password checks that ever ran at once.
    pub most_at_once: AtomicUsize,
}

impl Default for PasswordGate {
    fn default() -> Self {
        let size = std::thread::available_parallelism().map_or(1, usize::from);
        PasswordGate {
            permits: tokio::sync::Semaphore::new(size),
            size,
            in_flight: AtomicUsize::new(0),
            runs: AtomicU64::new(0),
            most_at_once: AtomicUsize::new(0),
        }
    }
}

impl PasswordGate {
    /// How many checks may run at once (the number of cores).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `check` on a blocking thread once a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the gate is never closed");
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        let result = tokio::task::spawn_blocking(check).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_after_the_free_attempts_up_to_a_minute() {
        let b = Backoff::default();
        for _ in 0..5 {
            assert_eq!(b.attempt("a", 5, 100), Ok(()));
        }
        assert_eq!(b.attempt("a", 5, 100), Err(1));
        assert_eq!(b.attempt("a", 5, 101), Ok(()));
        assert_eq!(b.attempt("a", 5, 102), Err(1));
        assert_eq!(b.attempt("a", 5, 103), Ok(()));
        assert_eq!(b.attempt("a", 5, 103), Err(4));
        for n in 8..40 {
            assert!(Backoff::delay(n, 5) <= SIGN_IN_MAX_BACKOFF_SECS, "{n}");
        }
        assert_eq!(Backoff::delay(40, 5), SIGN_IN_MAX_BACKOFF_SECS);
        b.reset("a");
        assert_eq!(b.attempt("a", 5, 103), Ok(()));
    }

    #[test]
    fn attempts_are_counted_with_the_check() {
        let l = Limiter::default();
        for _ in 0..3 {
            assert!(l.attempt("k", 3, 0).is_ok());
        }
        assert_eq!(l.attempt("k", 3, 0), Err(LOCK_SECS));
        l.forgive("k");
        assert!(l.attempt("k", 3, 0).is_ok());
        assert!(l.attempt("k", 3, LOCK_SECS).is_ok(), "a new window");
    }
}
