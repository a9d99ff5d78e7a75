//! The clock port: production reads the system clock, tests and the API's test
//! clock pin the time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::Timestamp;

/// Where "now" comes from.
pub trait Clock {
    fn now(&self) -> Timestamp;
}

/// The machine's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp::from_millis(ms)
    }
}

/// A clock stopped at one instant (the `X-Test-Clock` header, unit tests).
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
