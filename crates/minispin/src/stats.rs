//! Instantiation timing: how long making a fresh instance takes, per request and per tick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters updated by every instantiation; cheap enough to keep always on.
#[derive(Debug, Default)]
pub struct InstantiationStats {
    count: AtomicU64,
    total_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

/// A snapshot of [`InstantiationStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstantiationSummary {
    /// Instances made.
    pub count: u64,
    /// Mean time to instantiate.
    pub mean: Duration,
    /// Slowest instantiation.
    pub max: Duration,
}

impl InstantiationStats {
    /// Records one instantiation.
    pub fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Runs an instantiation and records how long it took.
    pub async fn time<T>(&self, instantiate: impl Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let out = instantiate.await;
        self.record(started.elapsed());
        out
    }

    /// The counters so far.
    pub fn summary(&self) -> InstantiationSummary {
        let count = self.count.load(Ordering::Relaxed);
        let total = self.total_nanos.load(Ordering::Relaxed);
        InstantiationSummary {
            count,
            mean: Duration::from_nanos(total.checked_div(count).unwrap_or(0)),
            max: Duration::from_nanos(self.max_nanos.load(Ordering::Relaxed)),
        }
    }
}

impl std::fmt::Display for InstantiationSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} instantiations, mean {:.1}µs, max {:.1}µs",
            self.count,
            self.mean.as_secs_f64() * 1e6,
            self.max.as_secs_f64() * 1e6
        )
    }
}
