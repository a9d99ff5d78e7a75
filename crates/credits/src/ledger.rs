//! Deductions and refunds: each one atomic `INSERT ... SELECT` whose `WHERE` holds
//! the rule, so racing requests on any number of instances can never overdraw,
//! over-refund, or apply one idempotency key twice.

use serde::Serialize;

use crate::error::{CreditsError, Result};
use crate::idempotency::{Idempotency, Written, written_or_replayed};
use crate::ids::{AccountId, TransactionId};
use crate::labels::{Operation, Reason, Resource};
use crate::service::{Credits, Replayable};
use crate::store::{Row, Value};
use crate::tokens::{self, TokenAmount};
use crate::transaction::{TX_COLUMN_COUNT, Transaction, tx_columns};

/// Tokens consumed by an AI operation.
#[derive(Debug, Clone, PartialEq)]
pub struct DeductionRequest {
    pub account: AccountId,
    pub tokens: TokenAmount,
    pub operation: Operation,
    pub resource: Resource,
}

/// What a deduction answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeductionReceipt {
    pub transaction: Transaction,
    /// Left after the deduction and any auto-recharge it set off.
    pub available_tokens: u64,
}

/// Tokens given back for a failed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRequest {
    pub account: AccountId,
    /// As sent: an id this service never issued is simply not found.
    pub deduction_id: String,
    /// `None`: all that is left to refund.
    pub tokens: Option<TokenAmount>,
    pub reason: Option<Reason>,
}

/// What a refund answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundReceipt {
    pub transaction: Transaction,
}

/// Plan allocation first, then credits; all or nothing. The `WHERE` refuses an
/// overdraft; the schema's CHECK on the balance would refuse it again.
const DEDUCT: &str = concat!(
    "WITH state AS (
        SELECT a.id AS account_id, a.credit_balance AS credits,
               MAX(0, a.monthly_tokens - COALESCE(u.used_tokens, 0)) AS plan_left
        FROM accounts a
        LEFT JOIN plan_usage u ON u.account_id = a.id AND u.period = ?2
        WHERE a.id = ?1
    ), split AS (
        SELECT account_id, credits, plan_left, MIN(?3, plan_left) AS plan_part FROM state
    )
    INSERT INTO ledger (account_id, kind, tokens, plan_tokens, credit_tokens, period,
                        operation, project, session, idempotency_key, request_hash,
                        credit_balance_after, plan_remaining_after, created_at)
    SELECT account_id, 'deduction', ?3, plan_part, ?3 - plan_part, ?2,
           ?4, ?5, ?6, ?7, ?8,
           credits - (?3 - plan_part), plan_left - plan_part, ?9
    FROM split
    WHERE ?3 - plan_part <= credits
    RETURNING ",
    tx_columns!(),
    ", credit_balance_after, plan_remaining_after"
);

/// An earlier deduction with this key, its body fingerprint and what it left.
const DEDUCTION_BY_KEY: &str = concat!(
    "SELECT ",
    tx_columns!(),
    ", credit_balance_after, plan_remaining_after, request_hash,
       (SELECT COALESCE(SUM(p.tokens), 0) FROM purchases p
        WHERE p.triggered_by = ledger.seq AND p.status = 'succeeded')
    FROM ledger WHERE account_id = ?1 AND kind = 'deduction' AND idempotency_key = ?2"
);

/// Credit tokens back first, then plan tokens to the deduction's month, restored
/// only while that month lasts. Refunds of one deduction never exceed it.
const REFUND: &str = concat!(
    "WITH d AS (
        SELECT l.seq, l.account_id, l.tokens, l.credit_tokens, l.period, l.operation,
               l.project, l.session,
               (SELECT COALESCE(SUM(r.tokens), 0) FROM ledger r WHERE r.refund_of = l.seq) AS refunded,
               (SELECT COALESCE(SUM(r.credit_tokens), 0) FROM ledger r WHERE r.refund_of = l.seq) AS credit_refunded
        FROM ledger l
        WHERE l.seq = ?1 AND l.account_id = ?2 AND l.kind = 'deduction'
    ), amount AS (
        SELECT d.*, COALESCE(?3, d.tokens - d.refunded) AS wanted FROM d
    ), split AS (
        SELECT amount.*, MIN(wanted, credit_tokens - credit_refunded) AS credit_back FROM amount
    )
    INSERT INTO ledger (account_id, kind, tokens, plan_tokens, credit_tokens, period,
                        operation, project, session, refund_of, reason,
                        idempotency_key, request_hash, credit_balance_after, created_at)
    SELECT s.account_id, 'refund', s.wanted,
           CASE WHEN s.period = ?4 THEN s.wanted - s.credit_back ELSE 0 END,
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
    tx_columns!(),
    ", request_hash FROM ledger WHERE account_id = ?1 AND kind = 'refund' AND idempotency_key = ?2"
);

impl Credits<'_> {
    /// Deducts tokens: the plan allocation first, then credits; all or nothing.
    pub fn deduct(
        &self,
        req: &DeductionRequest,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<DeductionReceipt>> {
        if let Some(idem) = idem
            && let Some(replay) = self.deduction_replay(&req.account, idem)?
        {
            return Ok(Replayable::replayed(replay));
        }
        let now = self.now();
        let month = now.month().key();
        let result = self.db.execute(
            DEDUCT,
            &[
                req.account.as_str().into(),
                month.as_str().into(),
                Value::Integer(req.tokens.as_i64()),
                req.operation.as_str().into(),
                req.resource.project.clone().into(),
                req.resource.session.clone().into(),
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
            let available = self.available_tokens(&req.account)?;
            return Err(CreditsError::InsufficientBalance {
                requested: req.tokens.get(),
                available,
            });
        };
        let transaction = Transaction::from_row(row)?;
        let credits_after = row.tokens(TX_COLUMN_COUNT)?;
        let plan_after = row.tokens(TX_COLUMN_COUNT + 1)?;
        let mut available_tokens = tokens::add(credits_after, plan_after)?;
        // The deduction is written; a recharge that fails here is retried by the
        // next evaluation and must not turn this success into an error.
        if let Ok(Some(granted)) =
            self.recharge_after_deduction(&req.account, transaction.id(), credits_after)
        {
            available_tokens = tokens::add(available_tokens, granted)?;
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
            &[account.as_str().into(), idem.key.as_str().into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        check_fingerprint(row, TX_COLUMN_COUNT + 2, idem)?;
        let credits_after = row.tokens(TX_COLUMN_COUNT)?;
        let plan_after = row.tokens(TX_COLUMN_COUNT + 1)?;
        let recharged = row.tokens(TX_COLUMN_COUNT + 3)?;
        Ok(Some(DeductionReceipt {
            transaction: Transaction::from_row(row)?,
            available_tokens: tokens::add(tokens::add(credits_after, plan_after)?, recharged)?,
        }))
    }

    /// Gives back what a deduction took, to where it came from.
    pub fn refund(
        &self,
        req: &RefundRequest,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<RefundReceipt>> {
        if let Some(idem) = idem
            && let Some(replay) = self.refund_replay(&req.account, idem)?
        {
            return Ok(Replayable::replayed(replay));
        }
        self.require_account(&req.account)?;
        let deduction =
            TransactionId::parse(&req.deduction_id).ok_or(CreditsError::NotFound("deduction"))?;
        let now = self.now();
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
        let rows = match written_or_replayed(result, idem, |i| self.refund_replay(&req.account, i))?
        {
            Written::Rows(rows) => rows,
            Written::Replayed(receipt) => return Ok(Replayable::replayed(receipt)),
        };
        match rows.first() {
            Some(row) => Ok(Replayable::fresh(RefundReceipt {
                transaction: Transaction::from_row(row)?,
            })),
            None => Err(self.refund_refusal(&req.account, deduction, req.tokens)?),
        }
    }

    fn refund_replay(
        &self,
        account: &AccountId,
        idem: &Idempotency,
    ) -> Result<Option<RefundReceipt>> {
        let rows = self.db.execute(
            REFUND_BY_KEY,
            &[account.as_str().into(), idem.key.as_str().into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        check_fingerprint(row, TX_COLUMN_COUNT, idem)?;
        Ok(Some(RefundReceipt {
            transaction: Transaction::from_row(row)?,
        }))
    }

    /// Why the refund statement wrote nothing.
    fn refund_refusal(
        &self,
        account: &AccountId,
        deduction: TransactionId,
        requested: Option<TokenAmount>,
    ) -> Result<CreditsError> {
        let rows = self.db.execute(
            "SELECT l.tokens - (SELECT COALESCE(SUM(r.tokens), 0) FROM ledger r WHERE r.refund_of = l.seq)
             FROM ledger l WHERE l.seq = ?1 AND l.account_id = ?2 AND l.kind = 'deduction'",
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
        Err(CreditsError::IdempotencyConflict)
    }
}
