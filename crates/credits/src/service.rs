//! The service every adapter calls: one value per request, over the ports.

use std::time::Duration;

use crate::clock::Clock;
use crate::payment::PaymentProvider;
use crate::schema;
use crate::store::{Database, DbError, DbErrorKind, Durability, KeyValue, Row, Value};
use crate::time::Timestamp;

/// Prepaid credits over a database, a cache, a payment provider and a clock.
pub struct Credits<'a> {
    pub(crate) db: Storage<'a>,
    pub(crate) cache: &'a dyn KeyValue,
    pub(crate) payments: &'a dyn PaymentProvider,
    pub(crate) clock: &'a dyn Clock,
}

/// A result that may have been answered from an earlier request with the same
/// idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayable<T> {
    pub value: T,
    pub replayed: bool,
}

impl<T> Replayable<T> {
    pub(crate) fn fresh(value: T) -> Self {
        Self {
            value,
            replayed: false,
        }
    }

    pub(crate) fn replayed(value: T) -> Self {
        Self {
            value,
            replayed: true,
        }
    }
}

impl<'a> Credits<'a> {
    #[must_use]
    pub fn new(
        db: &'a dyn Database,
        cache: &'a dyn KeyValue,
        payments: &'a dyn PaymentProvider,
        clock: &'a dyn Clock,
    ) -> Self {
        Self {
            db: Storage { db },
            cache,
            payments,
            clock,
        }
    }

    /// Applies pending schema migrations now. Not needed before serving: the
    /// first statement that finds its table missing migrates.
    pub fn migrate(&self) -> crate::Result<()> {
        schema::migrate(self.db.db)?;
        Ok(())
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// How long a statement keeps retrying while other writers hold the database,
/// beyond what the backend itself waits.
const BUSY_RETRIES: u32 = 20;
const BUSY_PAUSE: Duration = Duration::from_millis(5);

/// The database as the rules use it: a statement that finds the schema older
/// than it needs migrates it and runs again, and one that finds the database
/// busy waits its turn. Both are safe because a failed statement wrote nothing.
pub(crate) struct Storage<'a> {
    db: &'a dyn Database,
}

impl Storage<'_> {
    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut migrated = false;
        let mut busy = 0;
        loop {
            match self.db.execute(sql, params) {
                Err(e) if e.kind == DbErrorKind::MissingSchema && !migrated => {
                    match schema::migrate(self.db) {
                        Ok(()) => migrated = true,
                        // Another instance is migrating: wait, then try again.
                        Err(e) if e.kind == DbErrorKind::Busy && busy < BUSY_RETRIES => {
                            busy += 1;
                            std::thread::sleep(BUSY_PAUSE);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.kind == DbErrorKind::Busy && busy < BUSY_RETRIES => {
                    busy += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                result => return result,
            }
        }
    }

    pub(crate) fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        self.db.set_durability(durability)
    }
}
