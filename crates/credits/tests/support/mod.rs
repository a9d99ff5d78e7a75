//! A world to run the rules in: a SQLite file opened as Spin opens one (the
//! migration switches it to WAL), the sandbox provider and a clock the test moves.

#![allow(
    dead_code,
    clippy::redundant_closure_for_method_calls, // `|c| c.audit()` reads better than a path
    clippy::many_single_char_names,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::unnecessary_wraps,
    clippy::doc_markdown
)]

pub mod rules;

use std::cell::Cell;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use credits::{
    AccountId, Charge, ChargeOutcome, Clock, Credits, CreditsError, Database, DbErrorKind,
    DeductionRequest, Idempotency, IdempotencyKey, NoCache, Operation, PaymentMethodId,
    PaymentProvider, Plan, Reason, RefundRequest, Resource, Timestamp, TokenAmount, Transaction,
};
use credits_sandbox::SandboxPayments;
use credits_sqlite::NativeDb;

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
    dir: Option<tempfile::TempDir>,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credits.db");
        let mut world = Self::open(&path);
        world.dir = Some(dir);
        world.credits_with(|c| c.migrate().unwrap());
        world
    }

    /// Another connection to an existing database file.
    pub fn open(path: &Path) -> Self {
        Self {
            db: NativeDb::open(path).unwrap(),
            clock: TestClock::at("2026-11-25T10:00:00Z"),
            path: path.to_owned(),
            dir: None,
        }
    }

    /// Runs `f` with the service as a request would see it now.
    pub fn credits_with<T>(&self, f: impl FnOnce(&Credits<'_>) -> T) -> T {
        let payments = SandboxPayments::new(&self.db, self.clock.now());
        let credits = Credits::new(&self.db, &NoCache, &payments, &self.clock);
        f(&credits)
    }

    /// Runs `f` with the service over another payment provider (a test double).
    pub fn credits_paying_with<T>(
        &self,
        payments: &dyn PaymentProvider,
        f: impl FnOnce(&Credits<'_>) -> T,
    ) -> T {
        let credits = Credits::new(&self.db, &NoCache, payments, &self.clock);
        f(&credits)
    }

    /// The test clock's time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The sandbox provider as it would charge now.
    pub fn sandbox(&self) -> SandboxPayments<'_> {
        SandboxPayments::new(&self.db, self.clock.now())
    }

    /// One integer from a raw SQL query (counts, sums).
    pub fn count(&self, sql: &str) -> i64 {
        let rows = self.db.execute(sql, &[]).unwrap();
        rows[0].int(0).unwrap()
    }

    pub fn balance(&self, id: &AccountId) -> u64 {
        self.credits_with(|c| c.summary(id))
            .unwrap()
            .credits
            .balance_tokens
    }

    pub fn plan_remaining(&self, id: &AccountId) -> u64 {
        self.credits_with(|c| c.summary(id))
            .unwrap()
            .plan
            .remaining_tokens
    }

    pub fn available(&self, id: &AccountId) -> u64 {
        self.credits_with(|c| c.available_tokens(id)).unwrap()
    }

    pub fn ledger_rows(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM ledger")
    }

    /// Charges the sandbox recorded; it creates its table with the first one.
    pub fn charges(&self) -> i64 {
        match self.db.execute("SELECT COUNT(*) FROM sandbox_charges", &[]) {
            Ok(rows) => rows[0].int(0).unwrap(),
            Err(e) if e.kind == DbErrorKind::MissingSchema => 0,
            Err(e) => panic!("{e}"),
        }
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

    /// Every broken invariant: the domain's audit and the sandbox provider's.
    pub fn audit(&self) -> Result<Vec<String>, CreditsError> {
        let mut broken = self.credits_with(|c| c.audit())?;
        broken.extend(credits_sandbox::audit(&self.db)?);
        Ok(broken)
    }

    pub fn assert_books_balance(&self) {
        let broken = self.audit().unwrap();
        assert!(broken.is_empty(), "{broken:#?}");
    }
}

pub fn deduction(account: &AccountId, tokens: u64, project: Option<&str>) -> DeductionRequest {
    deduction_for(account, tokens, project, "enrichment")
}

pub fn deduction_for(
    account: &AccountId,
    tokens: u64,
    project: Option<&str>,
    operation: &str,
) -> DeductionRequest {
    DeductionRequest::new(
        account.clone(),
        TokenAmount::new(tokens).unwrap(),
        Operation::parse(operation).unwrap(),
        Resource::parse(project, Some("s-1")).unwrap(),
    )
}

pub fn refund(account: &AccountId, deduction: &Transaction, tokens: Option<u64>) -> RefundRequest {
    RefundRequest::new(
        account.clone(),
        Some(deduction.id()),
        tokens.map(|t| TokenAmount::new(t).unwrap()),
        Some(Reason::parse("job failed").unwrap()),
    )
}

/// The name of an error's variant: what a rule refused, in the domain's terms.
pub fn kind(e: &CreditsError) -> &'static str {
    match e {
        CreditsError::Invalid(_) => "Invalid",
        CreditsError::UnknownAccountKey => "UnknownAccountKey",
        CreditsError::FreePlan(_) => "FreePlan",
        CreditsError::NotFound(_) => "NotFound",
        CreditsError::InsufficientBalance { .. } => "InsufficientBalance",
        CreditsError::PaymentDeclined(_) => "PaymentDeclined",
        CreditsError::AuthenticationRequired { .. } => "AuthenticationRequired",
        CreditsError::PaymentMethodRequired => "PaymentMethodRequired",
        CreditsError::AccountExists(_) => "AccountExists",
        CreditsError::IdempotencyKeyReused => "IdempotencyKeyReused",
        CreditsError::RefundExceedsDeduction { .. } => "RefundExceedsDeduction",
        CreditsError::HoldNotHeld(_) => "HoldNotHeld",
        CreditsError::HoldExceeded { .. } => "HoldExceeded",
        CreditsError::Storage(_) => "Storage",
        CreditsError::ProviderUnavailable(_) => "ProviderUnavailable",
        CreditsError::PaymentPending(_) => "PaymentPending",
        CreditsError::Internal(_) => "Internal",
    }
}

/// The variant of the error `result` must be (see [`kind`]).
pub fn refused<T: Debug>(result: Result<T, CreditsError>) -> &'static str {
    kind(&result.expect_err("expected an error"))
}

/// An `Idempotency-Key` with the body it came with.
pub fn idem(key: &str, body: &serde_json::Value) -> Idempotency {
    Idempotency::new(IdempotencyKey::parse(key).unwrap(), body)
}

/// `(tokens, plan_tokens, credit_tokens)` of a deduction or refund.
pub fn split(tx: &Transaction) -> (u64, u64, u64) {
    match tx {
        Transaction::Deduction {
            tokens,
            plan_tokens,
            credit_tokens,
            ..
        }
        | Transaction::Refund {
            tokens,
            plan_tokens,
            credit_tokens,
            ..
        } => (*tokens, *plan_tokens, *credit_tokens),
        Transaction::Purchase { tokens, .. } => (*tokens, 0, *tokens),
    }
}

/// A provider that charges through the sandbox and then loses the answer, as a
/// crash or a timeout between the charge and the grant would.
pub struct ChargesThenFails<'a>(pub SandboxPayments<'a>);

impl PaymentProvider for ChargesThenFails<'_> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        self.0.charge(charge)?;
        Err(CreditsError::ProviderUnavailable(
            "provider connection reset".into(),
        ))
    }

    fn find_charge(&self, key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        self.0.find_charge(key)
    }
}

/// A provider that charges through the sandbox and then panics (the process dies).
pub struct ChargesThenPanics<'a>(pub SandboxPayments<'a>);

impl PaymentProvider for ChargesThenPanics<'_> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        self.0.charge(charge)?;
        panic!("instance died after charging");
    }

    fn find_charge(&self, key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        self.0.find_charge(key)
    }
}

/// A provider that declines the first `n` charges, then succeeds.
pub struct DeclinesFirst(pub Cell<u32>);

impl PaymentProvider for DeclinesFirst {
    fn charge(&self, _charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        let left = self.0.get();
        if left > 0 {
            self.0.set(left - 1);
            Ok(ChargeOutcome::Declined {
                message: "Your card was declined.".into(),
            })
        } else {
            Ok(ChargeOutcome::Succeeded)
        }
    }

    /// It keeps no record of its charges.
    fn find_charge(&self, _key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        Err(CreditsError::ProviderUnavailable("no search".into()))
    }
}
