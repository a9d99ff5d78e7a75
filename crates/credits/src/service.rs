//! The service every adapter calls: one value per request, over the ports.

use std::cell::{Cell, RefCell};

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
    /// Whether this request may have recorded an event (or made one due), so the
    /// adapter knows to deliver after the answer; most requests record none.
    events_due: Cell<bool>,
    /// An auto-recharge evaluation left for after the answer (a remote provider).
    recharge_after: RefCell<Option<DeferredRecharge>>,
}

/// An auto-recharge evaluation a deduction or hold set off, to run after its
/// answer is sent ([`Credits::evaluate_recharge`] with these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredRecharge {
    pub account: crate::ids::AccountId,
    pub triggered_by: Option<crate::ids::TransactionId>,
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
            events_due: Cell::new(false),
            recharge_after: RefCell::new(None),
        }
    }

    /// The auto-recharge evaluation this request left for after its answer, if
    /// any. Whoever takes it runs it (or, with nothing after the answer, now);
    /// one never run is made by the next scheduled check.
    #[must_use]
    pub fn take_deferred_recharge(&self) -> Option<DeferredRecharge> {
        self.recharge_after.borrow_mut().take()
    }

    /// Leaves the evaluation for after the answer; true if the provider is
    /// remote, so the caller must not evaluate now.
    pub(crate) fn defer_recharge(
        &self,
        account: &crate::ids::AccountId,
        triggered_by: Option<crate::ids::TransactionId>,
    ) -> bool {
        if !self.payments.is_remote() {
            return false;
        }
        *self.recharge_after.borrow_mut() = Some(DeferredRecharge {
            account: account.clone(),
            triggered_by,
        });
        true
    }

    /// Whether this request may have recorded an event or made one due.
    #[must_use]
    pub fn events_may_be_due(&self) -> bool {
        self.events_due.get()
    }

    pub(crate) fn note_events_due(&self) {
        self.events_due.set(true);
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

/// The database as the rules use it: a statement that finds the schema older
/// than it needs migrates it and runs again, which is safe because a failed
/// statement wrote nothing. (Waiting for other writers is the adapter's:
/// [`crate::wait_while_busy`].)
pub(crate) struct Storage<'a> {
    db: &'a dyn Database,
}

impl Storage<'_> {
    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self.db.execute(sql, params) {
            Err(e) if e.kind == DbErrorKind::MissingSchema => {
                schema::migrate(self.db)?;
                self.db.execute(sql, params)
            }
            result => result,
        }
    }

    pub(crate) fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        self.db.set_durability(durability)
    }
}
