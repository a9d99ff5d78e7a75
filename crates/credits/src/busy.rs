//! How a statement waits for other writers: a little inside `SQLite`, then tries
//! a millisecond apart. Every adapter runs its statements through
//! [`wait_while_busy`], so the domain's, the sandbox's and Stripe's tables all wait
//! the same way; retrying is safe because a statement that reported busy wrote
//! nothing.
//!
//! Spin opens connections with rusqlite's 5 s busy timeout, whose waits grow to
//! 100 ms apart, so under load a writer that lost a few times slept on while the
//! lock was free. At 32 connections deductions had a 0.56–0.64 s p99; with this
//! policy 0.15–0.27 s (`crates/credits/BENCHMARKS.md`, "busy waits").

use std::time::{Duration, Instant};

use crate::store::{DbError, DbErrorKind};

/// What an `SQLite` adapter runs once on each connection it opens: `SQLite` then
/// tries a busy statement again at 1, 3, 8 and 10 ms before reporting busy.
pub const SQLITE_BUSY_WAIT: &str = "PRAGMA busy_timeout = 10";

/// Between two tries. Short, because a longer pause only makes the writers that
/// waited longest wait longer still: that is the tail.
const PAUSE: Duration = Duration::from_millis(1);

/// Then the statement reports busy: the patience of rusqlite's default (Spin's).
/// A limit in time, not tries, because a backend may report busy at once (two
/// rollback-journal writers that could deadlock, or a migration beside a first
/// write) as well as after its own waits.
const LIMIT: Duration = Duration::from_secs(5);

/// Runs `statement` until it does not report busy, or until the limit has passed
/// since it first did.
///
/// # Errors
/// What `statement` last returned: its own error, or busy once the limit passed.
pub fn wait_while_busy<T>(mut statement: impl FnMut() -> Result<T, DbError>) -> Result<T, DbError> {
    let mut waits = Waits::new(LIMIT);
    loop {
        match statement() {
            Err(e) if e.kind == DbErrorKind::Busy && waits.again() => {}
            result => return result,
        }
    }
}

/// One statement's waits, timed from its first busy answer.
struct Waits {
    since: Option<Instant>,
    limit: Duration,
}

impl Waits {
    fn new(limit: Duration) -> Self {
        Self { since: None, limit }
    }

    /// Pauses and says to try again, or says to give up once the limit has passed.
    fn again(&mut self) -> bool {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.limit {
            return false;
        }
        std::thread::sleep(PAUSE);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> DbError {
        DbError::new(DbErrorKind::Busy, "database is locked")
    }

    #[test]
    fn a_statement_told_busy_at_once_tries_again_a_millisecond_later() {
        let mut tries = 0;
        let started = Instant::now();
        let answer = wait_while_busy(|| {
            tries += 1;
            if tries <= 300 { Err(busy()) } else { Ok(tries) }
        });
        assert_eq!(
            answer.unwrap(),
            301,
            "limited by time, not by a count of tries"
        );
        assert!(started.elapsed() < LIMIT);
    }

    #[test]
    fn other_errors_are_not_tried_again() {
        let mut tries = 0;
        let answer: Result<(), _> = wait_while_busy(|| {
            tries += 1;
            Err(DbError::new(
                DbErrorKind::UniqueViolation,
                "UNIQUE constraint failed",
            ))
        });
        assert_eq!(answer.unwrap_err().kind, DbErrorKind::UniqueViolation);
        assert_eq!(tries, 1);
    }

    #[test]
    fn waits_give_up_once_the_limit_has_passed() {
        let limit = Duration::from_millis(50);
        let mut waits = Waits::new(limit);
        let started = Instant::now();
        let mut tries = 1;
        while waits.again() {
            tries += 1;
        }
        assert!(started.elapsed() >= limit);
        assert!((2..=51).contains(&tries), "{tries} tries");
    }
}
