//! The one time source of every shell. Decisions in this crate take `now` as
//! an argument; the server, the client and the console read it from a
//! [`Clock`] once per decision and pass it in. Tests use a [`ManualClock`]
//! and move it instead of sleeping.
//!
//! Reading the system clock is the only thing here that touches the outside
//! world, and only [`SystemClock`] does it.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// A source of the current wall-clock time, in UTC.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> ManualClock {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock by `by` (backwards when negative).
    pub fn advance(&self, by: Duration) {
        *self.lock() += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self.lock() = to;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetDateTime> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        assert_eq!(clock.now(), datetime!(2030-01-01 0:00 UTC));
        clock.advance(Duration::seconds(90));
        assert_eq!(clock.now(), datetime!(2030-01-01 0:01:30 UTC));
        clock.advance(Duration::seconds(-30));
        assert_eq!(clock.now(), datetime!(2030-01-01 0:01 UTC));
        clock.set(datetime!(2029-12-31 23:00 UTC));
        assert_eq!(clock.now(), datetime!(2029-12-31 23:00 UTC));
    }
}
