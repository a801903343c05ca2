//! Attempt limits: sign-in (per address and per account),
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

use crate::store::{Backend, DbResult, Store};

/// Wrong sign-ins an account takes before each further attempt waits
/// ([`Backoff`]).
pub const SIGN_IN_MAX_FAILURES_PER_ACCOUNT: u32 = 5;
pub const SIGN_IN_MAX_FAILURES_PER_ADDRESS: u32 = 20;
pub const USER_CODE_MAX_FAILURES: u32 = 5;
pub const LOCK_SECS: i64 = 15 * 60;

/// The longest wait an account's backoff imposes: an attacker guessing an
/// admin's password cannot lock the admin out for longer.
pub const SIGN_IN_MAX_BACKOFF_SECS: i64 = 60;

/// Every attempt limit of the server. On SQLite (one process) the counters
/// live in memory; on PostgreSQL they live in the database (`attempts`), so
/// every replica counts the same attempts and a lockout holds on all of
/// them. Either way, the decisions are the same pure steps ([`attempt_step`],
/// [`fail_step`], [`Backoff::step`]).
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

impl Limits {
    /// Counters in memory, or in `db` when it is shared by replicas
    /// (PostgreSQL).
    pub fn new(db: &Store) -> Limits {
        let shared = (db.backend() == Backend::Postgres).then(|| db.clone());
        let limiter = |scope| Limiter(Counter::new(scope, LOCK_SECS, shared.clone()));
        Limits {
            sign_in: limiter("sign_in"),
            sign_in_account: Backoff(Counter::new(
                "sign_in_account",
                SIGN_IN_MAX_BACKOFF_SECS,
                shared.clone(),
            )),
            user_code: limiter("user_code"),
            device_authorization: limiter("device_authorization"),
            passwords: PasswordGate::default(),
        }
    }
}

/// A counter's state: attempts (or failures) and a time (the window's start,
/// or the last attempt's).
pub type Entry = (u32, i64);

/// Counters of one kind, by key: in memory, or in the shared database.
#[derive(Debug)]
struct Counter {
    scope: &'static str,
    /// An entry this long past its time is forgotten (memory).
    keep_secs: i64,
    memory: Mutex<HashMap<String, Entry>>,
    shared: Option<Store>,
}

impl Counter {
    fn new(scope: &'static str, keep_secs: i64, shared: Option<Store>) -> Counter {
        Counter {
            scope,
            keep_secs,
            memory: Mutex::default(),
            shared,
        }
    }

    /// Applies `step` to `key`'s entry (`(0, now)` when it has none), as one
    /// step: concurrent attempts, here or on another replica, each see the
    /// one before.
    async fn step<R>(
        &self,
        key: &str,
        now: i64,
        step: impl FnOnce(&mut Entry) -> R,
    ) -> DbResult<R> {
        if let Some(db) = &self.shared {
            return db.step_attempts(self.scope, key, now, step).await;
        }
        let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let keep = self.keep_secs;
            map.retain(|_, (_, at)| now < *at + keep);
        }
        Ok(step(map.entry(key.to_owned()).or_insert((0, now))))
    }

    async fn peek(&self, key: &str) -> DbResult<Option<Entry>> {
        if let Some(db) = &self.shared {
            return db.attempts(self.scope, key).await;
        }
        let map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(key).copied())
    }

    async fn remove(&self, key: &str) -> DbResult<()> {
        if let Some(db) = &self.shared {
            return db.forget_attempts(self.scope, key).await;
        }
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}

impl Default for Counter {
    fn default() -> Counter {
        Counter::new("memory", LOCK_SECS, None)
    }
}

/// A window of [`LOCK_SECS`] that starts over once it has passed.
fn window(entry: &mut Entry, now: i64) {
    if now >= entry.1 + LOCK_SECS {
        *entry = (0, now);
    }
}

/// Counts an attempt unless `max` were counted in the window:
/// `Err(seconds)` until it ends.
pub fn attempt_step(entry: &mut Entry, max: u32, now: i64) -> Result<(), i64> {
    window(entry, now);
    if entry.0 >= max {
        return Err(entry.1 + LOCK_SECS - now);
    }
    entry.0 += 1;
    Ok(())
}

/// Counts a failure.
pub fn fail_step(entry: &mut Entry, now: i64) {
    window(entry, now);
    entry.0 = entry.0.saturating_add(1);
}

/// `Err(seconds)` while the entry has `max` failures within its window.
pub fn check_entry(entry: Option<Entry>, max: u32, now: i64) -> Result<(), i64> {
    match entry {
        Some((n, start)) if n >= max && now < start + LOCK_SECS => Err(start + LOCK_SECS - now),
        _ => Ok(()),
    }
}

/// Failures (or attempts) per key within a window of [`LOCK_SECS`].
#[derive(Debug, Default)]
pub struct Limiter(Counter);

impl Limiter {
    /// `Err(seconds)` while `key` has `max` failures within the window.
    pub async fn check(&self, key: &str, max: u32, now: i64) -> DbResult<Result<(), i64>> {
        Ok(check_entry(self.0.peek(key).await?, max, now))
    }

    pub async fn fail(&self, key: &str, now: i64) -> DbResult<()> {
        self.0.step(key, now, |e| fail_step(e, now)).await
    }

    /// Counts an attempt before the work it guards, in one step with the
    /// check: concurrent attempts cannot all pass the check before any is
    /// counted. `Err(seconds)` when `key` has `max` attempts in the window.
    pub async fn attempt(&self, key: &str, max: u32, now: i64) -> DbResult<Result<(), i64>> {
        self.0.step(key, now, |e| attempt_step(e, max, now)).await
    }

    /// Takes one counted attempt back (it succeeded).
    pub async fn forgive(&self, key: &str, now: i64) -> DbResult<()> {
        self.0.step(key, now, |e| e.0 = e.0.saturating_sub(1)).await
    }

    pub async fn reset(&self, key: &str) -> DbResult<()> {
        self.0.remove(key).await
    }
}

/// Attempts per key with exponential backoff: after `max` failures, each
/// further attempt waits 1 s, 2 s, 4 s ... after the last one, never more
/// than [`SIGN_IN_MAX_BACKOFF_SECS`]. Attempts are counted before the work
/// they guard ([`Backoff::attempt`]); a success resets the key.
#[derive(Debug, Default)]
pub struct Backoff(Counter);

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

    /// Counts an attempt on the entry (attempts, time of the last), or
    /// `Err(seconds)` to wait first.
    pub fn step(entry: &mut Entry, max: u32, now: i64) -> Result<(), i64> {
        let open_at = entry.1 + Self::delay(entry.0, max);
        if now < open_at {
            return Err(open_at - now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        Ok(())
    }

    /// Counts an attempt on `key`, or `Err(seconds)` to wait first.
    pub async fn attempt(&self, key: &str, max: u32, now: i64) -> DbResult<Result<(), i64>> {
        self.0.step(key, now, |e| Self::step(e, max, now)).await
    }

    /// Forgets `key` (a success).
    pub async fn reset(&self, key: &str) -> DbResult<()> {
        self.0.remove(key).await
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

    fn backoff(entry: &mut Entry, now: i64) -> Result<(), i64> {
        Backoff::step(entry, 5, now)
    }

    #[test]
    fn the_backoff_doubles_after_the_free_attempts_up_to_a_minute() {
        let mut e = (0, 100);
        for _ in 0..5 {
            assert_eq!(backoff(&mut e, 100), Ok(()));
        }
        assert_eq!(backoff(&mut e, 100), Err(1));
        assert_eq!(backoff(&mut e, 101), Ok(()));
        assert_eq!(backoff(&mut e, 102), Err(1));
        assert_eq!(backoff(&mut e, 103), Ok(()));
        assert_eq!(backoff(&mut e, 103), Err(4));
        for n in 8..40 {
            assert!(Backoff::delay(n, 5) <= SIGN_IN_MAX_BACKOFF_SECS, "{n}");
        }
        assert_eq!(Backoff::delay(40, 5), SIGN_IN_MAX_BACKOFF_SECS);
    }

    #[tokio::test]
    async fn attempts_are_counted_with_the_check() {
        let l = Limiter::default();
        for _ in 0..3 {
            assert!(l.attempt("k", 3, 0).await.unwrap().is_ok());
        }
        assert_eq!(l.attempt("k", 3, 0).await.unwrap(), Err(LOCK_SECS));
        l.forgive("k", 0).await.unwrap();
        assert!(l.attempt("k", 3, 0).await.unwrap().is_ok());
        assert!(
            l.attempt("k", 3, LOCK_SECS).await.unwrap().is_ok(),
            "a new window"
        );
        l.fail("f", 0).await.unwrap();
        assert_eq!(l.check("f", 1, 10).await.unwrap(), Err(LOCK_SECS - 10));
        l.reset("f").await.unwrap();
        assert_eq!(l.check("f", 1, 10).await.unwrap(), Ok(()));
    }
}
