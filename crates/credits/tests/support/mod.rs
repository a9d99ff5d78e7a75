//! A world to run the rules in: a SQLite file in WAL mode, the sandbox provider
//! and a clock the test moves.

#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};

use credits::native::NativeDb;
use credits::{
    AccountId, Clock, Credits, DeductionRequest, NoCache, Operation, PaymentMethodId, Plan,
    Resource, SandboxPayments, Timestamp, TokenAmount,
};

/// A clock the test sets.
pub struct TestClock(Cell<i64>);

impl TestClock {
    pub fn at(rfc3339: &str) -> Self {
        Self(Cell::new(
            Timestamp::parse_rfc3339(rfc3339).unwrap().millis(),
        ))
    }
    pub fn set(&self, rfc3339: &str) {
        self.0
            .set(Timestamp::parse_rfc3339(rfc3339).unwrap().millis());
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.get())
    }
}

/// One connection to a database file, with its clock.
pub struct World {
    pub db: NativeDb,
    pub clock: TestClock,
    pub path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credits.db");
        let mut world = Self::open(&path);
        world._dir = Some(dir);
        world.credits_with(|c| c.migrate().unwrap());
        world
    }

    /// Another connection to an existing database file.
    pub fn open(path: &Path) -> Self {
        Self {
            db: NativeDb::open(path).unwrap(),
            clock: TestClock::at("2026-11-25T10:00:00Z"),
            path: path.to_owned(),
            _dir: None,
        }
    }

    /// Runs `f` with the service as a request would see it now.
    pub fn credits_with<T>(&self, f: impl FnOnce(&Credits<'_>) -> T) -> T {
        let payments = SandboxPayments::new(&self.db, self.clock.now());
        let credits = Credits::new(&self.db, &NoCache, &payments, &self.clock);
        f(&credits)
    }

    pub fn account(&self, id: &str, plan: Plan) -> AccountId {
        let id = AccountId::parse(id).unwrap();
        self.credits_with(|c| c.create_account(&id, plan)).unwrap();
        id
    }

    pub fn paying_account(&self, id: &str, plan: Plan, method: &str) -> AccountId {
        let id = self.account(id, plan);
        self.credits_with(|c| c.save_payment_method(&id, &PaymentMethodId::parse(method).unwrap()))
            .unwrap();
        id
    }

    pub fn assert_books_balance(&self) {
        let broken = self.credits_with(|c| c.audit()).unwrap();
        assert!(broken.is_empty(), "{broken:#?}");
    }
}

pub fn deduction(account: &AccountId, tokens: u64, project: Option<&str>) -> DeductionRequest {
    DeductionRequest {
        account: account.clone(),
        tokens: TokenAmount::new(tokens).unwrap(),
        operation: Operation::parse("enrichment").unwrap(),
        resource: Resource::parse(project, Some("s-1")).unwrap(),
    }
}
