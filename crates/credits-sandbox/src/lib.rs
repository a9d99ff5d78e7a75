//! The built-in sandbox payment provider: Stripe's test-mode outcomes without a
//! network. `pm_card_chargeDeclined` is declined, every other method succeeds.
//!
//! Charges are recorded in the app's database, in a table this crate owns and
//! creates on first use, so a repeated idempotency key returns the first outcome
//! as a real provider would.

use credits::{
    Charge, ChargeOutcome, CreditsError, Database, DbError, DbErrorKind, PaymentProvider,
    Timestamp, Value,
};

/// The sandbox's table: one row per idempotency key, the first outcome wins.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS sandbox_charges (
    idempotency_key TEXT PRIMARY KEY,
    payment_method TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID";

const CHARGE: &str = "INSERT INTO sandbox_charges (idempotency_key, payment_method, amount_cents, outcome, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = excluded.idempotency_key
     RETURNING outcome";

/// The sandbox provider over the app's database, charging at `now`.
pub struct SandboxPayments<'a> {
    db: &'a dyn Database,
    now: Timestamp,
}

impl<'a> SandboxPayments<'a> {
    /// The payment method the sandbox always declines.
    pub const DECLINED_METHOD: &'static str = "pm_card_chargeDeclined";

    #[must_use]
    pub fn new(db: &'a dyn Database, now: Timestamp) -> Self {
        Self { db, now }
    }

    fn record(&self, charge: &Charge<'_>, outcome: &str) -> Result<Vec<credits::Row>, DbError> {
        let params = [
            charge.idempotency_key.into(),
            charge.payment_method.into(),
            Value::Integer(charge.amount.cents()),
            outcome.into(),
            Value::Integer(self.now.millis()),
        ];
        match self.db.execute(CHARGE, &params) {
            // The table is created on first use; the failed insert wrote nothing.
            Err(e) if e.kind == DbErrorKind::MissingSchema => {
                self.db.execute(CREATE_TABLE, &[])?;
                self.db.execute(CHARGE, &params)
            }
            other => other,
        }
    }
}

impl PaymentProvider for SandboxPayments<'_> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        let declined = charge.payment_method == Self::DECLINED_METHOD;
        let outcome = if declined { "declined" } else { "succeeded" };
        let rows = self.record(charge, outcome)?;
        let stored = rows
            .first()
            .map(|r| r.text(0).map(str::to_owned))
            .transpose()?;
        match stored.as_deref() {
            Some("succeeded") => Ok(ChargeOutcome::Succeeded),
            Some(_) => Ok(ChargeOutcome::Declined {
                message: "Your card was declined.".into(),
            }),
            None => Err(CreditsError::Internal("sandbox charge not recorded".into())),
        }
    }

    fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        let rows = match self.db.execute(
            "SELECT outcome FROM sandbox_charges WHERE idempotency_key = ?1",
            &[idempotency_key.into()],
        ) {
            // No table yet: nothing was ever charged.
            Err(e) if e.kind == DbErrorKind::MissingSchema => return Ok(None),
            other => other?,
        };
        rows.first()
            .map(|row| {
                Ok(match row.text(0)? {
                    "succeeded" => ChargeOutcome::Succeeded,
                    _ => ChargeOutcome::Declined {
                        message: "Your card was declined.".into(),
                    },
                })
            })
            .transpose()
    }
}

/// Purchases whose settlement disagrees with the sandbox's charge, as
/// `"purchase <id> <status> but charge <outcome>"`: what an audit adds for the sandbox.
pub fn audit(db: &dyn Database) -> Result<Vec<String>, DbError> {
    let rows = match db.execute(
        "SELECT 'purchase ' || p.id || ' ' || p.status || ' but charge ' || c.outcome
         FROM purchases p JOIN sandbox_charges c ON c.idempotency_key = p.id
         WHERE p.status <> 'pending'
           AND (p.status = 'succeeded') <> (c.outcome = 'succeeded')",
        &[],
    ) {
        Err(e) if e.kind == DbErrorKind::MissingSchema => return Ok(Vec::new()),
        other => other?,
    };
    rows.iter()
        .map(|r| {
            r.text(0)
                .map(|t| format!("no settled purchase was charged differently than it ended: {t}"))
        })
        .collect()
}
