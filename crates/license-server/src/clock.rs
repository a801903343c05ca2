//! The server's time source: `license-core`'s one [`Clock`]. Production reads
//! the system clock; tests move a [`ManualClock`] instead of sleeping.

pub use license_core::clock::{Clock, ManualClock, SystemClock};
