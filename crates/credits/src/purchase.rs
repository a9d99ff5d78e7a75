//! Buying credit packs: record the attempt, charge, then grant.
//!
//! The attempt is written before the charge and the grant only after it, each one
//! statement: a crash between steps leaves a `pending` purchase that is re-driven
//! later (the charge's idempotency key is the purchase id, so the provider never
//! charges twice; the grant is conditional on `pending`, so it never grants twice).

use serde::Serialize;

use crate::catalog::Pack;
use crate::error::{CreditsError, Result};
use crate::idempotency::{Idempotency, Written, written_or_replayed};
use crate::ids::{AccountId, random_hex};
use crate::ledger::check_fingerprint;
use crate::money::Eur;
use crate::payment::{Charge, ChargeOutcome};
use crate::service::{Credits, Replayable};
use crate::store::{Durability, Value};
use crate::time::Timestamp;
use crate::transaction::{PurchaseSource, TX_COLUMN_COUNT, Transaction, tx_columns};

/// What a purchase answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurchaseReceipt {
    pub transaction: Transaction,
    pub credits: CreditBalance,
}

/// The prepaid credit balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreditBalance {
    pub balance_tokens: u64,
}

/// A purchase whose charge has no outcome yet (the provider timed out, failed or
/// is still processing): it stays pending and is settled later; the same request
/// with the same idempotency key answers its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingPurchaseView {
    pub id: String,
    pub status: &'static str,
    pub pack: String,
    pub amount_eur: Eur,
}

/// A purchase attempt that has not been granted or declined yet.
pub(crate) struct PendingPurchase {
    pub id: String,
    pub account: AccountId,
    pub source: PurchaseSource,
    pub payment_method: String,
    pub amount: Eur,
    /// When it was recorded: how long its provider remembers its key, and when
    /// "no payment found" can be believed, are counted from here.
    pub began: Timestamp,
}

impl PendingPurchase {
    /// From a row that starts `id, payment_method, amount_cents`, of a purchase
    /// whose account, source and start the caller knows.
    pub(crate) fn recorded(
        row: &crate::store::Row,
        account: AccountId,
        source: PurchaseSource,
        began: Timestamp,
    ) -> Result<Self> {
        Ok(Self {
            id: row.text(0)?.to_owned(),
            account,
            source,
            payment_method: row.text(1)?.to_owned(),
            amount: Eur::from_cents(row.int(2)?),
            began,
        })
    }

    /// From a row that starts `id, payment_method, amount_cents, account_id,
    /// source, created_at`.
    fn from_row(row: &crate::store::Row) -> Result<Self> {
        let source = if row.text(4)? == "manual" {
            PurchaseSource::Manual
        } else {
            PurchaseSource::AutoRecharge
        };
        let began = Timestamp::from_millis(row.int(5)?);
        Self::recorded(row, AccountId::parse(row.text(3)?)?, source, began)
    }
}

/// How a settled purchase ended, or why it has not yet.
pub(crate) enum Settlement {
    Granted(PurchaseReceipt),
    Declined(String),
    /// A manual purchase waiting for the cardholder to confirm it.
    Waiting {
        message: String,
        client_secret: String,
    },
}

impl Settlement {
    /// A purchase's answer: the grant, or why there is none.
    fn into_answer(self) -> Result<PurchaseReceipt> {
        match self {
            Self::Granted(receipt) => Ok(receipt),
            Self::Declined(message) => Err(CreditsError::PaymentDeclined(message)),
            Self::Waiting {
                message,
                client_secret,
            } => Err(CreditsError::AuthenticationRequired {
                message,
                client_secret,
            }),
        }
    }
}

/// The grant: the purchase succeeds, and its trigger (`purchases_grant`) writes the
/// entry at the seq named here, in the same statement. Money taken is granted
/// even if the purchase was marked failed meanwhile (a sweep that found no charge
/// racing the charge itself).
const GRANT: &str = "UPDATE purchases SET status = 'succeeded', updated_at = ?2,
        failure_code = NULL, failure_message = NULL,
        granted_seq = (SELECT ledger_seq + 1 FROM accounts WHERE id = purchases.account_id)
     WHERE id = ?1 AND status <> 'succeeded'
     RETURNING granted_seq";

const GRANTED: &str = concat!(
    "SELECT ",
    tx_columns!("l."),
    ", l.credit_balance_after FROM purchases p
     JOIN ledger l ON l.account_id = p.account_id AND l.seq = p.granted_seq
     WHERE p.id = ?1 AND p.status = 'succeeded'"
);

impl Credits<'_> {
    /// Buys a pack with the saved payment method.
    pub fn purchase(
        &self,
        account: &AccountId,
        pack: Pack,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<PurchaseReceipt>> {
        if let Some(idem) = idem
            && let Some(replay) = self.purchase_replay(account, idem)?
        {
            return replay.map(Replayable::replayed);
        }
        let now = self.now();
        // The purchase must outlive a power failure before its charge is tried.
        self.db.set_durability(Durability::Full)?;
        // The statement refuses a free plan and a missing payment method itself;
        // only a refusal reads the account to say why, so a purchase that goes
        // ahead reads it once. A plan or payment method that changed between the
        // two makes the purchase allowed by now: it is recorded then.
        let mut attempts = 0;
        let row = loop {
            let rows = match self.record_purchase(account, pack, idem, now)? {
                Written::Rows(rows) => rows,
                Written::Replayed(outcome) => return outcome,
            };
            if let Some(row) = rows.into_iter().next() {
                break row;
            }
            self.check_may_buy(account)?;
            attempts += 1;
            if attempts == 2 {
                return Err(CreditsError::Internal(
                    "purchase refused by the database, allowed by the account".into(),
                ));
            }
        };
        let pending =
            PendingPurchase::recorded(&row, account.clone(), PurchaseSource::Manual, self.now())?;
        answer(&pending, pack.id(), self.charge_new(&pending)).map(Replayable::fresh)
    }

    /// Records a manual purchase, pending, if the account may buy it: its row,
    /// none if refused, or the earlier purchase with the same key.
    fn record_purchase(
        &self,
        account: &AccountId,
        pack: Pack,
        idem: Option<&Idempotency>,
        now: Timestamp,
    ) -> Result<Written<Result<Replayable<PurchaseReceipt>>>> {
        let result = self.db.execute(
            "INSERT INTO purchases (id, account_id, source, pack, tokens, amount_cents, payment_method,
                                    status, idempotency_key, request_hash, period, created_at, updated_at)
             SELECT ?1, a.id, 'manual', ?3, ?4, ?5, a.payment_method,
                    'pending', ?6, ?7, ?8, ?9, ?9
             FROM accounts a
             WHERE a.id = ?2 AND a.plan <> 'free' AND a.payment_method IS NOT NULL
             RETURNING id, payment_method, amount_cents",
            &[
                format!("pur_{}", random_hex(16)?).into(),
                account.as_str().into(),
                pack.id().into(),
                Value::Integer(crate::tokens::to_sql(pack.tokens())?),
                Value::Integer(pack.price().cents()),
                idem.map(|i| i.key.as_str()).into(),
                idem.map(|i| i.fingerprint.as_str()).into(),
                now.month().key().into(),
                Value::Integer(now.millis()),
            ],
        );
        written_or_replayed(result, idem, |i| {
            Ok(self
                .purchase_replay(account, i)?
                .map(|outcome| outcome.map(Replayable::replayed)))
        })
    }

    /// A free plan may not buy (checked before the payment method).
    fn check_may_buy(&self, account: &AccountId) -> Result<()> {
        let owner = self.require_account(account)?;
        if !owner.plan.may_buy_credits() {
            return Err(CreditsError::FreePlan("buy credits"));
        }
        if owner.payment_method.is_none() {
            return Err(CreditsError::PaymentMethodRequired);
        }
        Ok(())
    }

    /// The answer of an earlier purchase with this key: its grant, its decline, or
    /// (if it never finished) the outcome of finishing it now.
    fn purchase_replay(
        &self,
        account: &AccountId,
        idem: &Idempotency,
    ) -> Result<Option<Result<PurchaseReceipt>>> {
        let rows = self.db.execute(
            "SELECT id, payment_method, amount_cents, status, failure_message, request_hash, pack,
                    created_at
             FROM purchases WHERE account_id = ?1 AND idempotency_key = ?2",
            &[account.as_str().into(), idem.key.as_str().into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        check_fingerprint(row, 5, idem)?;
        let began = Timestamp::from_millis(row.int(7)?);
        let pending =
            PendingPurchase::recorded(row, account.clone(), PurchaseSource::Manual, began)?;
        Ok(Some(match (row.text(3)?, row.opt_text(4)?) {
            ("failed", message) => Err(CreditsError::PaymentDeclined(
                message.unwrap_or("declined").to_owned(),
            )),
            _ => answer(&pending, row.text(6)?, self.settle(&pending)),
        }))
    }

    /// Charges a pending purchase (idempotently) and grants or declines it. Safe to
    /// run any number of times, concurrently: the first grant or decline wins.
    pub(crate) fn settle(&self, purchase: &PendingPurchase) -> Result<Settlement> {
        if let Some(receipt) = self.granted(&purchase.id)? {
            return Ok(Settlement::Granted(receipt));
        }
        self.charge_new(purchase)
    }

    /// [`settle`](Self::settle) for a purchase this request has just recorded,
    /// charged without first asking whether it was granted: almost never so,
    /// and harmless if it was. A racing replay with the same key or the sweep
    /// may settle it at the same time; the charge's key is the purchase id, so
    /// the provider charges once, and the grant writes its entry only on the
    /// change to succeeded, so it is granted once.
    pub(crate) fn charge_new(&self, purchase: &PendingPurchase) -> Result<Settlement> {
        // A provider forgets an idempotency key after a day: the same request
        // then would charge again, so an older purchase is only looked up.
        if purchase.began.millis() <= self.now().millis() - KEY_REMEMBERED_MILLIS {
            let found = self.payments.find_charge(&purchase.id)?;
            return self.conclude(purchase, found.unwrap_or(ChargeOutcome::NotCharged));
        }
        let outcome = self.payments.charge(&Charge {
            idempotency_key: &purchase.id,
            payment_method: &purchase.payment_method,
            amount: purchase.amount,
            account: &purchase.account,
            source: purchase.source,
        })?;
        self.conclude(purchase, outcome)
    }

    /// Grants or declines a pending purchase by what the provider answered.
    fn conclude(&self, purchase: &PendingPurchase, outcome: ChargeOutcome) -> Result<Settlement> {
        let now = self.now();
        // The grant or decline below records the purchase's event.
        self.note_events_due();
        match outcome {
            ChargeOutcome::Succeeded => {
                let result = self.db.execute(
                    GRANT,
                    &[purchase.id.as_str().into(), Value::Integer(now.millis())],
                );
                let granted_now = !result?.is_empty();
                match self.granted(&purchase.id)? {
                    Some(granted) if granted_now => {
                        if let Transaction::Purchase {
                            source: PurchaseSource::AutoRecharge,
                            ..
                        } = granted.transaction
                        {
                            // Best effort: a success only clears a past decline's traces.
                            let _ = self.clear_recharge_declines(&purchase.account);
                        }
                        Ok(Settlement::Granted(granted))
                    }
                    // Granted by a racing settle in the meantime.
                    Some(granted) => Ok(Settlement::Granted(granted)),
                    None => Err(CreditsError::Internal(format!(
                        "purchase {} is not pending",
                        purchase.id
                    ))),
                }
            }
            ChargeOutcome::Declined { message } => self.decline(purchase, &message, None),
            // Believed once a provider's search has had time to catch up: then
            // failed as canceled (no decline counted); before, still unknown.
            ChargeOutcome::NotCharged
                if purchase.began.millis() <= now.millis() - SEARCH_SETTLES_MILLIS =>
            {
                self.db.execute(
                    "UPDATE purchases SET status = 'failed', failure_code = 'canceled',
                            failure_message = ?2, updated_at = ?3
                     WHERE id = ?1 AND status = 'pending'",
                    &[
                        purchase.id.as_str().into(),
                        NEVER_CHARGED.into(),
                        Value::Integer(now.millis()),
                    ],
                )?;
                Ok(Settlement::Declined(NEVER_CHARGED.to_owned()))
            }
            ChargeOutcome::NotCharged => Err(CreditsError::ProviderUnavailable(format!(
                "no payment found for {} yet",
                purchase.id
            ))),
            // Off-session nobody can confirm: an auto-recharge's decline, whose
            // code the settings' last_error shows.
            ChargeOutcome::AuthenticationRequired { message, .. }
                if purchase.source == PurchaseSource::AutoRecharge =>
            {
                self.decline(purchase, &message, Some("authentication_required"))
            }
            // Pending until the provider reports the cardholder's answer.
            ChargeOutcome::AuthenticationRequired {
                message,
                client_secret,
            } => Ok(Settlement::Waiting {
                message,
                client_secret,
            }),
        }
    }

    fn decline(
        &self,
        purchase: &PendingPurchase,
        message: &str,
        code: Option<&str>,
    ) -> Result<Settlement> {
        self.db.execute(
            "UPDATE purchases SET status = 'failed', failure_message = ?2, failure_code = ?4,
                    updated_at = ?3
             WHERE id = ?1 AND status = 'pending'",
            &[
                purchase.id.as_str().into(),
                message.into(),
                Value::Integer(self.now().millis()),
                code.into(),
            ],
        )?;
        Ok(Settlement::Declined(message.to_owned()))
    }

    fn granted(&self, purchase_id: &str) -> Result<Option<PurchaseReceipt>> {
        let rows = self.db.execute(GRANTED, &[purchase_id.into()])?;
        rows.first().map(receipt).transpose()
    }

    /// Finishes purchases left pending since before `older_than` (a crash between
    /// charge and grant, a provider that did not answer), oldest first, a bounded
    /// number per run. One whose outcome is still unknown waits before it is tried
    /// again (1 min, doubling up to an hour), so a few that keep failing never
    /// starve the others. An auto-recharge the account's settings no longer allow
    /// (switched off, a free plan, a monthly limit lowered below it) is never
    /// charged now: the provider is only asked whether it charged it before. Returns
    /// how many were granted, declined or canceled.
    pub fn settle_stale_purchases(&self, older_than: Timestamp) -> Result<usize> {
        let now = self.now();
        let rows = self.db.execute(
            STALE,
            &[
                Value::Integer(older_than.millis()),
                Value::Integer(now.millis()),
                Value::Integer(SWEEP_BATCH),
            ],
        )?;
        let mut settled = 0;
        for row in &rows {
            let pending = PendingPurchase::from_row(row)?;
            let allowed = row.int(7)? == 1;
            let began = pending.began;
            let finished = if allowed {
                // Claimed first, so that no instance cancels it while it is charged.
                if !self.claim(&pending.id)? {
                    continue;
                }
                self.settle(&pending)
            } else {
                self.settle_uncharged(&pending)
            };
            // A cardholder who has not confirmed within a day never will: the
            // provider drops the charge (money taken meanwhile is granted).
            // A repeated charge answers the first answer ("confirm it"), so only
            // a lookup sees a cardholder who has confirmed since (in case the
            // provider's report was lost).
            let finished = match finished {
                Ok(Settlement::Waiting { .. })
                    if began.millis() <= now.millis() - CONFIRM_WITHIN_MILLIS =>
                {
                    self.payments
                        .abandon(&pending.id)
                        .and_then(|outcome| self.conclude(&pending, outcome))
                }
                Ok(waiting @ Settlement::Waiting { .. }) => {
                    match self.payments.find_charge(&pending.id) {
                        Ok(Some(ChargeOutcome::Succeeded)) => {
                            self.conclude(&pending, ChargeOutcome::Succeeded)
                        }
                        _ => Ok(waiting),
                    }
                }
                other => other,
            };
            // One waiting for its cardholder is tried again later, like one
            // whose outcome is unknown.
            if matches!(
                finished,
                Ok(Settlement::Granted(_) | Settlement::Declined(_))
            ) {
                settled += 1;
                continue;
            }
            let wait = SWEEP_FIRST_WAIT_MILLIS
                .saturating_mul(1 << row.int(6)?.clamp(0, 6))
                .min(SWEEP_LONGEST_WAIT_MILLIS);
            // Best effort: without it the purchase is simply tried on the next run.
            // It only ever moves later: another instance's claim stands.
            let _ = self.db.execute(
                "UPDATE purchases SET sweep_attempts = sweep_attempts + 1,
                        retry_at = MAX(IFNULL(retry_at, 0), ?2)
                 WHERE id = ?1 AND status = 'pending'",
                &[
                    pending.id.as_str().into(),
                    Value::Integer(now.millis() + wait),
                ],
            );
        }
        Ok(settled)
    }

    /// Applies what the payment provider reported of a purchase on its own (a
    /// webhook): money taken grants it, once, even one marked failed; a decline
    /// fails it while pending; a cardholder still to confirm changes nothing for
    /// a manual purchase. A report of `amount` other than the purchase's is not
    /// about this purchase and changes nothing. Answers whether it was about a
    /// purchase of ours (an unknown id changes nothing either).
    pub fn provider_reported(
        &self,
        purchase_id: &str,
        amount: Eur,
        outcome: ChargeOutcome,
    ) -> Result<bool> {
        let rows = self.db.execute(
            "SELECT id, payment_method, amount_cents, account_id, source, created_at
             FROM purchases WHERE id = ?1",
            &[purchase_id.into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(false);
        };
        let purchase = PendingPurchase::from_row(row)?;
        if purchase.amount != amount {
            return Ok(false);
        }
        self.conclude(&purchase, outcome)?;
        Ok(true)
    }

    /// Takes a pending purchase for the sweep to charge: no other sweep charges
    /// it, and none cancels it, until [`CLAIM_MILLIS`] have passed (by then this
    /// one has granted or declined it, backed off, or died; a dead one's charge is
    /// found by the next). False: another instance has it, or it is settled.
    fn claim(&self, purchase_id: &str) -> Result<bool> {
        let now = self.now().millis();
        let rows = self.db.execute(
            "UPDATE purchases SET retry_at = ?2
             WHERE id = ?1 AND status = 'pending' AND (retry_at IS NULL OR retry_at <= ?3)
             RETURNING id",
            &[
                purchase_id.into(),
                Value::Integer(now + CLAIM_MILLIS),
                Value::Integer(now),
            ],
        )?;
        Ok(!rows.is_empty())
    }

    /// Finishes a pending purchase without charging it: granted or declined if
    /// the provider charged it before (money taken is granted), canceled if it
    /// never did. A provider's search may lag behind its charges, so "never" is
    /// believed only of a purchase older than [`SEARCH_SETTLES_MILLIS`].
    fn settle_uncharged(&self, purchase: &PendingPurchase) -> Result<Settlement> {
        if let Some(receipt) = self.granted(&purchase.id)? {
            return Ok(Settlement::Granted(receipt));
        }
        match self.payments.find_charge(&purchase.id)? {
            Some(outcome) => {
                self.note_events_due();
                self.conclude(purchase, outcome)
            }
            None if purchase.began.millis() <= self.now().millis() - SEARCH_SETTLES_MILLIS => {
                self.note_events_due();
                let now = self.now().millis();
                // Not while a sweep that found it allowed (the settings changed
                // again) may be charging it.
                let canceled = self.db.execute(
                    "UPDATE purchases SET status = 'failed', failure_code = 'canceled',
                            failure_message = ?2, updated_at = ?3
                     WHERE id = ?1 AND status = 'pending' AND (retry_at IS NULL OR retry_at <= ?3)
                     RETURNING id",
                    &[
                        purchase.id.as_str().into(),
                        CANCELED.into(),
                        Value::Integer(now),
                    ],
                )?;
                if canceled.is_empty() {
                    return Err(CreditsError::ProviderUnavailable(format!(
                        "{} is being charged or is settled",
                        purchase.id
                    )));
                }
                Ok(Settlement::Declined(CANCELED.to_owned()))
            }
            None => Err(CreditsError::ProviderUnavailable(format!(
                "no charge found for {} yet",
                purchase.id
            ))),
        }
    }
}

/// Pending purchases due for the sweep, oldest first, and whether the account's
/// settings still allow each: a manual one always; an auto-recharge while it is
/// on, the plan may buy, and this month's auto-recharges (this one included)
/// stay within the limit.
const STALE: &str = "SELECT p.id, p.payment_method, p.amount_cents, p.account_id, p.source,
        p.created_at, p.sweep_attempts,
        p.source = 'manual' OR IFNULL(a.plan <> 'free' AND s.enabled = 1
            AND (SELECT SUM(q.amount_cents) FROM purchases q
                 WHERE q.account_id = p.account_id AND q.source = 'auto_recharge'
                   AND q.period = p.period AND q.status <> 'failed') <= s.monthly_limit_cents, 0)
     FROM purchases p JOIN accounts a ON a.id = p.account_id
     LEFT JOIN auto_recharge s ON s.account_id = p.account_id
     WHERE p.status = 'pending' AND p.created_at <= ?1 AND (p.retry_at IS NULL OR p.retry_at <= ?2)
     ORDER BY p.created_at LIMIT ?3";

/// How long a sweep's claim on a purchase lasts: well beyond a provider's
/// timeout (10 s), so a charge in flight always outlives it.
const CLAIM_MILLIS: i64 = 60_000;

/// Why a purchase was dropped uncharged.
const CANCELED: &str =
    "Canceled before it was charged: the auto-recharge settings no longer allow it.";

/// Why a purchase the provider never charged was dropped, found by a search
/// once its idempotency key may be forgotten.
const NEVER_CHARGED: &str = "Never charged: the payment provider has no payment for it.";

/// How long a manual purchase waits for its cardholder to confirm (3-D Secure).
const CONFIRM_WITHIN_MILLIS: i64 = 24 * 3_600_000;

/// How long a purchase is charged again with the same idempotency key; later it
/// is only looked up. Stripe keeps keys for 24 hours; API.md gives 23.
const KEY_REMEMBERED_MILLIS: i64 = 23 * 3_600_000;

/// How long after a purchase began a provider that finds no charge for it is
/// believed (Stripe's search index lags by about a minute; API.md gives an hour).
const SEARCH_SETTLES_MILLIS: i64 = 3_600_000;

/// Stale purchases settled per recharge check.
const SWEEP_BATCH: i64 = 20;
const SWEEP_FIRST_WAIT_MILLIS: i64 = 60_000;
const SWEEP_LONGEST_WAIT_MILLIS: i64 = 3_600_000;

/// Answers a manual purchase by how it was settled: granted, declined,
/// waiting for the cardholder, or pending while the provider's outcome is
/// unknown.
fn answer(
    pending: &PendingPurchase,
    pack: &str,
    settled: Result<Settlement>,
) -> Result<PurchaseReceipt> {
    match settled {
        Err(CreditsError::ProviderUnavailable(_)) => {
            Err(CreditsError::PaymentPending(PendingPurchaseView {
                id: pending.id.clone(),
                status: "pending",
                pack: pack.to_owned(),
                amount_eur: pending.amount,
            }))
        }
        settled => settled?.into_answer(),
    }
}

fn receipt(row: &crate::store::Row) -> Result<PurchaseReceipt> {
    Ok(PurchaseReceipt {
        transaction: Transaction::from_row(row)?,
        credits: CreditBalance {
            balance_tokens: row.tokens(TX_COLUMN_COUNT)?,
        },
    })
}
