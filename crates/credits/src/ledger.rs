//! Deductions and refunds: each one atomic `INSERT ... SELECT` whose `WHERE` holds
//! the rule, so racing requests on any number of instances can never overdraw,
//! over-refund, or apply one idempotency key twice.

use serde::Serialize;

use crate::error::{CreditsError, Result};
use crate::idempotency::{Idempotency, Written, written_or_replayed};
use crate::ids::{AccountId, TransactionId};
use crate::labels::{Operation, Reason, Resource};
use crate::recharge::RechargeOutcome;
use crate::service::{Credits, Replayable};
use crate::store::{Durability, Row, Value};
use crate::tokens::{self, TokenAmount};
use crate::transaction::{TX_COLUMN_COUNT, Transaction, tx_columns};

/// Tokens consumed by an AI operation, made only of values already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DeductionRequest {
    pub(crate) account: AccountId,
    pub(crate) tokens: TokenAmount,
    pub(crate) operation: Operation,
    pub(crate) resource: Resource,
}

impl DeductionRequest {
    /// Each part was checked when it was made; together they need nothing more.
    #[must_use]
    pub fn new(
        account: AccountId,
        tokens: TokenAmount,
        operation: Operation,
        resource: Resource,
    ) -> Self {
        Self {
            account,
            tokens,
            operation,
            resource,
        }
    }
}

/// What a deduction answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeductionReceipt {
    pub transaction: Transaction,
    /// Left after the deduction and any auto-recharge it set off.
    pub available_tokens: u64,
}

/// Tokens given back for a failed operation, made only of values already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRequest {
    pub(crate) account: AccountId,
    pub(crate) deduction: Option<TransactionId>,
    pub(crate) tokens: Option<TokenAmount>,
    pub(crate) reason: Option<Reason>,
}

impl RefundRequest {
    /// `deduction` is `None` for an id this service never issued (the refund
    /// is then simply not found); `tokens` `None` refunds all that is left.
    #[must_use]
    pub fn new(
        account: AccountId,
        deduction: Option<TransactionId>,
        tokens: Option<TokenAmount>,
        reason: Option<Reason>,
    ) -> Self {
        Self {
            account,
            deduction,
            tokens,
            reason,
        }
    }
}

/// What a refund answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundReceipt {
    pub transaction: Transaction,
}

/// Plan allocation first, then credits, net of what live holds reserve; all or
/// nothing. The `WHERE` refuses an overdraft (the schema would refuse it again).
/// The entry records what is available after it, holds counted (its events
/// trigger reads that), and the statement returns the auto-recharge threshold, so
/// a deduction that sets nothing off is this one statement. Nested subqueries
/// rather than CTEs: SQLite compiles them in about a third less time, and on Spin it
/// compiles this statement, with its triggers, on every request.
const DEDUCT: &str = concat!(
    "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                        operation, project, session, idempotency_key, request_hash,
                        credit_balance_after, plan_remaining_after, available_after, created_at)
    SELECT id, ledger_seq + 1, 'deduction', ?3, plan_part, ?3 - plan_part, ?2,
           ?4, ?5, ?6, ?7, ?8,
           credit_balance - ?3 + plan_part, plan_left - plan_part,
           MAX(0, plan_left - plan_part - plan_held) + credit_balance - ?3 + plan_part - credit_held,
           ?9
    FROM (SELECT *, MIN(?3, MAX(0, plan_left - plan_held)) AS plan_part
          FROM (SELECT id, ledger_seq, credit_balance, ",
    plan_left!(),
    " AS plan_left, plan_held, credit_held
                FROM accounts, (",
    held!("?1", "?9"),
    ") WHERE id = ?1))
    WHERE ?3 - plan_part <= credit_balance - credit_held
    RETURNING ",
    tx_columns!(),
    ", credit_balance_after, plan_remaining_after, available_after,
       (SELECT IIF(enabled = 1, threshold_tokens, -threshold_tokens) FROM auto_recharge
        WHERE account_id = ?1)"
);

/// The entry an idempotency key of this account and kind wrote.
macro_rules! entry_by_key {
    () => {
        " FROM ledger l JOIN ledger_keys k
            ON k.account_id = l.account_id AND k.seq = l.seq AND k.kind = ?3 AND k.key = ?2
          WHERE l.account_id = ?1"
    };
}

/// An earlier deduction with this key, its body fingerprint and what it answered.
const DEDUCTION_BY_KEY: &str = concat!(
    "SELECT ",
    tx_columns!("l."),
    ", l.credit_balance_after, l.plan_remaining_after, l.request_hash, k.answer_tokens",
    entry_by_key!()
);

/// Credit tokens back first, then plan tokens to the deduction's month, restored
/// only while that month lasts. Refunds of one deduction never exceed it. The
/// sums name their index: left to itself, the planner walks the account's whole
/// ledger by its primary key.
const REFUND: &str = concat!(
    "WITH d AS (
        SELECT l.seq, l.account_id, l.tokens, l.credit_tokens, l.period, l.operation,
               l.project, l.session,
               (SELECT COALESCE(SUM(r.tokens), 0) FROM ledger r INDEXED BY ledger_refunds
                WHERE r.account_id = l.account_id AND r.refund_of = l.seq) AS refunded,
               (SELECT COALESCE(SUM(r.credit_tokens), 0) FROM ledger r INDEXED BY ledger_refunds
                WHERE r.account_id = l.account_id AND r.refund_of = l.seq) AS credit_refunded
        FROM ledger l
        WHERE l.account_id = ?2 AND l.seq = ?1 AND l.kind = 'deduction'
    ), amount AS (
        SELECT d.*, COALESCE(?3, d.tokens - d.refunded) AS wanted FROM d
    ), split AS (
        SELECT amount.*, MIN(wanted, credit_tokens - credit_refunded) AS credit_back FROM amount
    )
    INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                        operation, project, session, refund_of, reason,
                        idempotency_key, request_hash, credit_balance_after, created_at)
    SELECT s.account_id, a.ledger_seq + 1, 'refund', s.wanted,
           CASE WHEN s.period = ?4 AND s.period >= COALESCE(a.plan_period, s.period)
                THEN s.wanted - s.credit_back ELSE 0 END,
           s.credit_back, s.period, s.operation, s.project, s.session, s.seq, ?5,
           ?6, ?7, a.credit_balance + s.credit_back, ?8
    FROM split s JOIN accounts a ON a.id = s.account_id
    WHERE s.wanted >= 1 AND s.wanted <= s.tokens - s.refunded
    RETURNING ",
    tx_columns!(),
    ", request_hash"
);

const REFUND_BY_KEY: &str = concat!(
    "SELECT ",
    tx_columns!("l."),
    ", l.request_hash",
    entry_by_key!()
);

impl Credits<'_> {
    /// Deducts tokens: the plan allocation first, then credits; all or nothing.
    /// One statement when it sets nothing off; a repeated idempotency key is
    /// refused by the database and answered from the first request's entry.
    pub fn deduct(
        &self,
        req: &DeductionRequest,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<DeductionReceipt>> {
        let now = self.now();
        let month = now.month().key();
        // A deduction lost to a power failure costs us its tokens, never the
        // customer money: it may skip the wait for the disk.
        self.db.set_durability(Durability::Relaxed)?;
        let result = self.db.execute(
            DEDUCT,
            &[
                req.account.as_str().into(),
                month.as_str().into(),
                Value::Integer(req.tokens.as_i64()),
                req.operation.as_str().into(),
                req.resource.project().into(),
                req.resource.session().into(),
                idem.map(|i| i.key.as_str()).into(),
                idem.map(|i| i.fingerprint.as_str()).into(),
                Value::Integer(now.millis()),
            ],
        );
        let rows =
            match written_or_replayed(result, idem, |i| self.deduction_replay(&req.account, i))? {
                Written::Rows(rows) => rows,
                Written::Replayed(receipt) => return Ok(Replayable::replayed(receipt)),
            };
        let Some(row) = rows.first() else {
            // Nothing written: an earlier request with this key is answered again
            // (its tokens may no longer be there); otherwise the balance is short.
            if let Some(idem) = idem
                && let Some(replay) = self.deduction_replay(&req.account, idem)?
            {
                return Ok(Replayable::replayed(replay));
            }
            let available = self.available_tokens(&req.account)?;
            return Err(CreditsError::InsufficientBalance {
                requested: req.tokens.get(),
                available,
            });
        };
        let transaction = Transaction::from_row(row)?;
        let credits_after = row.tokens(TX_COLUMN_COUNT)?;
        let plan_after = row.tokens(TX_COLUMN_COUNT + 1)?;
        let mut available_tokens = row.tokens(TX_COLUMN_COUNT + 2)?;
        // The threshold, negative while auto-recharge is off (it still marks
        // credits.low); what live holds take out of plan remainder and credits.
        let signed_threshold = row.opt_int(TX_COLUMN_COUNT + 3)?;
        let reserved = plan_after
            .saturating_add(credits_after)
            .saturating_sub(available_tokens);
        let below = |t: i64| i64::try_from(credits_after).is_ok_and(|c| c < t);
        // The schema records credits.low and credits.depleted with the entry; the
        // adapter delivers after the answer only when one may have been recorded.
        if available_tokens == 0 || signed_threshold.is_some_and(|t| below(t.abs())) {
            self.note_events_due();
        }
        // Beyond the entry's own figures, the answer counts the holds and any
        // recharge; a replay must say the same.
        let mut beyond_entry = -i64::try_from(reserved).unwrap_or(i64::MAX);
        // Credits net of held credit tokens below an enabled threshold. `reserved`
        // counts held plan tokens too, so this may ask for an evaluation the
        // evaluation's own statement then finds needless; it never misses one.
        let below_threshold = signed_threshold.is_some_and(|t| {
            t > 0 && i64::try_from(credits_after.saturating_sub(reserved)).is_ok_and(|c| c < t)
        });
        // The deduction is written; a recharge that fails here is retried by the
        // next evaluation and must not turn this success into an error.
        // With a remote provider it runs after the answer, which does not count it.
        if below_threshold
            && !self.defer_recharge(&req.account, Some(transaction.id()))
            && let Ok(RechargeOutcome::Recharged { tokens: granted }) =
                self.evaluate_recharge(&req.account, Some(transaction.id()))
        {
            available_tokens = tokens::add(available_tokens, granted)?;
            beyond_entry += i64::try_from(granted).unwrap_or(i64::MAX);
        }
        if beyond_entry != 0
            && let Some(idem) = idem
        {
            // A replay answers what this answer says. Should this fail, a replay
            // counts the entry alone, as if nothing else had happened yet.
            let _ = self.db.execute(
                "UPDATE ledger_keys SET answer_tokens = ?4
                 WHERE account_id = ?1 AND kind = 'deduction' AND key = ?2 AND seq = ?3",
                &[
                    req.account.as_str().into(),
                    idem.key.as_str().into(),
                    Value::Integer(transaction.id().seq()),
                    Value::Integer(beyond_entry),
                ],
            );
        }
        Ok(Replayable::fresh(DeductionReceipt {
            transaction,
            available_tokens,
        }))
    }

    fn deduction_replay(
        &self,
        account: &AccountId,
        idem: &Idempotency,
    ) -> Result<Option<DeductionReceipt>> {
        let rows = self.db.execute(
            DEDUCTION_BY_KEY,
            &[
                account.as_str().into(),
                idem.key.as_str().into(),
                "deduction".into(),
            ],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        check_fingerprint(row, TX_COLUMN_COUNT + 2, idem)?;
        let credits_after = row.tokens(TX_COLUMN_COUNT)?;
        let plan_after = row.tokens(TX_COLUMN_COUNT + 1)?;
        let beyond_entry = row.int(TX_COLUMN_COUNT + 3)?;
        let entry = i64::try_from(tokens::add(credits_after, plan_after)?).unwrap_or(i64::MAX);
        Ok(Some(DeductionReceipt {
            transaction: Transaction::from_row(row)?,
            available_tokens: u64::try_from(entry.saturating_add(beyond_entry)).unwrap_or(0),
        }))
    }

    /// Gives back what a deduction took, to where it came from. One statement
    /// when it succeeds; the checks that explain a refusal run only then.
    pub fn refund(
        &self,
        req: &RefundRequest,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<RefundReceipt>> {
        if let Some(deduction) = req.deduction {
            let now = self.now();
            // Unlike a deduction, a refund lost to a power failure would take back
            // tokens the customer was told were returned: it waits for the disk.
            self.db.set_durability(Durability::Full)?;
            let result = self.db.execute(
                REFUND,
                &[
                    Value::Integer(deduction.seq()),
                    req.account.as_str().into(),
                    req.tokens.map(TokenAmount::as_i64).into(),
                    now.month().key().into(),
                    req.reason.as_ref().map(Reason::as_str).into(),
                    idem.map(|i| i.key.as_str()).into(),
                    idem.map(|i| i.fingerprint.as_str()).into(),
                    Value::Integer(now.millis()),
                ],
            );
            match written_or_replayed(result, idem, |i| self.refund_replay(&req.account, i))? {
                Written::Replayed(receipt) => return Ok(Replayable::replayed(receipt)),
                Written::Rows(rows) => {
                    if let Some(row) = rows.first() {
                        return Ok(Replayable::fresh(RefundReceipt {
                            transaction: Transaction::from_row(row)?,
                        }));
                    }
                }
            }
        }
        // Nothing written: an earlier request with this key is answered again.
        if let Some(idem) = idem
            && let Some(replay) = self.refund_replay(&req.account, idem)?
        {
            return Ok(Replayable::replayed(replay));
        }
        Err(self.refund_refusal(&req.account, req.deduction, req.tokens)?)
    }

    fn refund_replay(
        &self,
        account: &AccountId,
        idem: &Idempotency,
    ) -> Result<Option<RefundReceipt>> {
        let rows = self.db.execute(
            REFUND_BY_KEY,
            &[
                account.as_str().into(),
                idem.key.as_str().into(),
                "refund".into(),
            ],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        check_fingerprint(row, TX_COLUMN_COUNT, idem)?;
        Ok(Some(RefundReceipt {
            transaction: Transaction::from_row(row)?,
        }))
    }

    /// Why no refund was written: the account, the deduction, what is left of it.
    fn refund_refusal(
        &self,
        account: &AccountId,
        deduction: Option<TransactionId>,
        requested: Option<TokenAmount>,
    ) -> Result<CreditsError> {
        self.require_account(account)?;
        let Some(deduction) = deduction else {
            return Ok(CreditsError::NotFound("deduction"));
        };
        let rows = self.db.execute(
            "SELECT l.tokens - (SELECT COALESCE(SUM(r.tokens), 0) FROM ledger r INDEXED BY ledger_refunds
                                WHERE r.account_id = l.account_id AND r.refund_of = l.seq)
             FROM ledger l WHERE l.account_id = ?2 AND l.seq = ?1 AND l.kind = 'deduction'",
            &[Value::Integer(deduction.seq()), account.as_str().into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(CreditsError::NotFound("deduction"));
        };
        let refundable = row.tokens(0)?;
        Ok(CreditsError::RefundExceedsDeduction {
            requested: requested.map_or(refundable, TokenAmount::get),
            refundable,
        })
    }
}

/// An idempotency key reused with another body is a conflict, never a replay.
pub(crate) fn check_fingerprint(row: &Row, column: usize, idem: &Idempotency) -> Result<()> {
    if row.opt_text(column)? == Some(idem.fingerprint.as_str()) {
        Ok(())
    } else {
        Err(CreditsError::IdempotencyKeyReused)
    }
}
