//! The console reads the time only through `license-core`'s one [`Clock`],
//! once per decision, and passes it to `license-core`.

pub use license_core::clock::{Clock, SystemClock};
