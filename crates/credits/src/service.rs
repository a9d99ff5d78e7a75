//! The service every adapter calls: one value per request, over the ports.

use crate::clock::Clock;
use crate::payment::PaymentProvider;
use crate::schema;
use crate::store::{Database, KeyValue};
use crate::time::Timestamp;

/// Prepaid credits over a database, a cache, a payment provider and a clock.
pub struct Credits<'a> {
    pub(crate) db: &'a dyn Database,
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
            db,
            cache,
            payments,
            clock,
        }
    }

    /// Applies pending schema migrations; one read when there are none.
    pub fn migrate(&self) -> crate::Result<()> {
        schema::migrate(self.db, self.clock.now())?;
        Ok(())
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
