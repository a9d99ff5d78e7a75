//! Token holds: tokens reserved before a streaming AI call, settled for what it
//! used or voided when it fails.
//!
//! A hold writes no ledger entry: the balance stays the sum of the ledger, and what
//! live holds reserve is subtracted wherever availability is computed (deductions,
//! other holds, the auto-recharge threshold, the summary). A hold reserves until
//! `expires_at` whatever its stored status says, so expiry needs no scheduler; the
//! recharge check only records it. Each write is one statement: creating inserts
//! the hold where the tokens are available; settling inserts the deduction, whose
//! trigger ends the hold in the same statement; settling nothing and voiding end
//! the hold with one `UPDATE ... WHERE status = 'held'`. Whichever of settle, void
//! and expiry comes first ends a hold; the others find it no longer held.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::{CreditsError, Result};
use crate::idempotency::{Idempotency, Written, written_or_replayed};
use crate::ids::{AccountId, TransactionId, random_hex};
use crate::labels::{Operation, Resource};
use crate::ledger::check_fingerprint;
use crate::recharge::RechargeOutcome;
use crate::service::{Credits, Replayable};
use crate::store::{Durability, Row, Value};
use crate::time::Timestamp;
use crate::tokens::{self, MAX_JSON_TOKENS, TokenAmount};
use crate::transaction::{Transaction, tx_columns};

/// How long a hold lasts unless said otherwise, and at most.
pub const DEFAULT_HOLD_SECONDS: u32 = 600;
pub const MAX_HOLD_SECONDS: u32 = 86_400;

/// A hold id: `hold_` and 128 random bits, so it reveals nothing of other holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HoldId(String);

impl HoldId {
    const PREFIX: &'static str = "hold_";

    fn generate() -> Result<Self> {
        Ok(Self(format!("{}{}", Self::PREFIX, random_hex(16)?)))
    }

    /// Reads an id this service could have issued; anything else is `None`
    /// (simply not found).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        (hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key a settle or void stores: the hold's own scope, and a tab no
    /// `Idempotency-Key` can hold, so it never meets a key of another route.
    fn end_key(&self, idem: &Idempotency) -> String {
        format!("{}\t{}", self.0, idem.key.as_str())
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for HoldId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A hold's lifetime in seconds: 1–86,400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLifetime(u32);

impl HoldLifetime {
    pub fn new(seconds: Option<u64>) -> Result<Self> {
        match seconds {
            None => Ok(Self(DEFAULT_HOLD_SECONDS)),
            Some(s) if (1..=u64::from(MAX_HOLD_SECONDS)).contains(&s) => {
                Ok(Self(u32::try_from(s).unwrap_or(MAX_HOLD_SECONDS)))
            }
            Some(_) => Err(CreditsError::invalid(format!(
                "expires_in_seconds must be an integer from 1 to {MAX_HOLD_SECONDS}"
            ))),
        }
    }

    fn millis(self) -> i64 {
        i64::from(self.0) * 1000
    }
}

/// Tokens to reserve for an AI call whose size is known only at its end, made
/// only of values already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRequest {
    pub(crate) account: AccountId,
    pub(crate) tokens: TokenAmount,
    pub(crate) operation: Operation,
    pub(crate) resource: Resource,
    pub(crate) lifetime: HoldLifetime,
}

impl HoldRequest {
    /// Each part was checked when it was made; together they need nothing more.
    #[must_use]
    pub fn new(
        account: AccountId,
        tokens: TokenAmount,
        operation: Operation,
        resource: Resource,
        lifetime: HoldLifetime,
    ) -> Self {
        Self {
            account,
            tokens,
            operation,
            resource,
            lifetime,
        }
    }
}

/// How many tokens a call used: 0 up to what its hold reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledTokens(u64);

impl SettledTokens {
    pub fn new(tokens: u64) -> Result<Self> {
        if tokens <= MAX_JSON_TOKENS {
            Ok(Self(tokens))
        } else {
            Err(CreditsError::invalid(format!(
                "tokens must be an integer from 0 to {MAX_JSON_TOKENS}"
            )))
        }
    }

    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }

    fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Held,
    Settled,
    Voided,
    Expired,
}

/// A hold as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hold {
    pub id: HoldId,
    pub tokens: u64,
    pub plan_tokens: u64,
    pub credit_tokens: u64,
    pub operation: String,
    pub resource: Resource,
    pub status: HoldStatus,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_tokens: Option<u64>,
}

/// What creating a hold answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldReceipt {
    pub hold: Hold,
    pub available_tokens: u64,
}

/// What settling a hold answers; no transaction when it settled 0 tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettleReceipt {
    pub transaction: Option<Transaction>,
    pub hold: Hold,
    pub available_tokens: u64,
}

/// What voiding a hold answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoidReceipt {
    pub hold: Hold,
    pub available_tokens: u64,
}

/// What a hold of the account reads back as.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldDetails {
    pub hold: Hold,
}

/// What live holds reserve out of an account's plan remainder and credit balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// Plan tokens of the current month.
    pub plan: u64,
    pub credit: u64,
}

impl Held {
    /// What holds take out of `plan_left` and `credits` (a plan moved down may
    /// leave holds reserving more plan tokens than remain).
    pub(crate) fn reserved(self, plan_left: u64, credits: u64) -> u64 {
        self.plan.min(plan_left) + self.credit.min(credits)
    }

    /// Plan remainder plus credits, net of holds.
    pub(crate) fn available(self, plan_left: u64, credits: u64) -> u64 {
        plan_left + credits - self.reserved(plan_left, credits)
    }
}

/// The hold columns [`hold_from_row`] reads, in this order.
macro_rules! hold_columns {
    () => {
        "id, tokens, plan_tokens, credit_tokens, operation, project, session, status,
         expires_at, created_at, settled_tokens"
    };
}
const HOLD_COLUMN_COUNT: usize = 11;

/// Plan allocation first, then credits, net of what live holds reserve; nothing
/// unless all of it is available. The answer's availability is computed here too.
const CREATE: &str = concat!(
    "WITH state AS (
        SELECT id AS account_id, credit_balance AS credits, ",
    plan_left!(),
    " AS plan_left FROM accounts WHERE id = ?1
    ), held AS (",
    held!("?1", "?9"),
    "), split AS (
        SELECT state.*, held.*, MIN(?3, MAX(0, plan_left - plan_held)) AS plan_part
        FROM state, held
    )
    INSERT INTO holds (account_id, id, tokens, plan_tokens, credit_tokens, period, operation,
                       project, session, status, expires_at, created_at, create_key,
                       create_hash, answer_available)
    SELECT account_id, ?10, ?3, plan_part, ?3 - plan_part, ?2, ?4, ?5, ?6, 'held', ?9 + ?11,
           ?9, ?7, ?8,
           MAX(0, plan_left - plan_held - plan_part) + credits - credit_held - (?3 - plan_part)
    FROM split
    WHERE ?3 - plan_part <= credits - credit_held
    RETURNING ",
    hold_columns!(),
    ", answer_available,
       (SELECT threshold_tokens FROM auto_recharge r
        WHERE r.account_id = holds.account_id AND r.enabled = 1)"
);

const HOLD_BY_KEY: &str = concat!(
    "SELECT ",
    hold_columns!(),
    ", answer_available, create_hash FROM holds WHERE account_id = ?1 AND create_key = ?2"
);

const HOLD_BY_ID: &str = concat!(
    "SELECT ",
    hold_columns!(),
    ", end_key, end_hash, end_available, settled_seq FROM holds WHERE account_id = ?1 AND id = ?2"
);

/// One deduction of the settled tokens, in the hold's month: plan tokens first, at
/// most the hold's and what that month has left, then credits (which the hold
/// reserved, unless a plan moved down took plan tokens it counted on). The
/// deduction's trigger ends the hold. Never at a time (`?7`, its month) before
/// the hold's month.
const SETTLE: &str = concat!(
    "WITH h AS (
        SELECT h.account_id, h.id, h.plan_tokens AS hold_plan, h.period, h.operation,
               h.project, h.session, a.credit_balance AS credits, a.ledger_seq AS last_seq,
               CASE WHEN a.plan_period IS NULL OR a.plan_period < h.period THEN a.monthly_tokens
                    WHEN a.plan_period = h.period THEN MAX(0, a.monthly_tokens - a.plan_used)
                    ELSE h.plan_tokens END AS plan_left,
               (SELECT COALESCE(SUM(o.credit_tokens), 0) FROM holds o
                WHERE o.account_id = h.account_id AND o.status = 'held' AND o.expires_at > ?4
                  AND o.id <> h.id) AS other_credit_held
        FROM holds h JOIN accounts a ON a.id = h.account_id
        WHERE h.account_id = ?1 AND h.id = ?2 AND h.status = 'held' AND h.expires_at > ?4
          AND ?3 <= h.tokens AND h.period <= ?7
    ), split AS (
        SELECT h.*, MIN(?3, hold_plan, plan_left) AS plan_part FROM h
    )
    INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                        operation, project, session, hold_id, idempotency_key, request_hash,
                        credit_balance_after, plan_remaining_after, created_at)
    SELECT account_id, last_seq + 1, 'deduction', ?3, plan_part, ?3 - plan_part, period,
           operation, project, session, id, ?5, ?6,
           credits - (?3 - plan_part), plan_left - plan_part, ?4
    FROM split
    WHERE ?3 - plan_part <= credits - other_credit_held
    RETURNING ",
    tx_columns!()
);

/// Ends a live hold without a deduction: settled for 0, or voided.
const END_WITHOUT_ENTRY: &str = concat!(
    "UPDATE holds SET status = ?3, settled_tokens = CASE ?3 WHEN 'settled' THEN 0 END,
                      end_key = ?5, end_hash = ?6, ended_at = ?4
     WHERE account_id = ?1 AND id = ?2 AND status = 'held' AND expires_at > ?4
     RETURNING ",
    hold_columns!()
);

/// How a hold ends by request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Settle,
    Void,
}

impl Ending {
    fn status(self) -> HoldStatus {
        match self {
            Self::Settle => HoldStatus::Settled,
            Self::Void => HoldStatus::Voided,
        }
    }
}

impl HoldStatus {
    fn stored(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Settled => "settled",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }
}

/// Reads the [`hold_columns!`] of a row; a held hold past its expiry reads as
/// expired.
fn hold_from_row(row: &Row, now: Timestamp) -> Result<Hold> {
    let expires_at = Timestamp::from_millis(row.int(8)?);
    let status = match row.text(7)? {
        "held" if expires_at <= now => HoldStatus::Expired,
        "held" => HoldStatus::Held,
        "settled" => HoldStatus::Settled,
        "voided" => HoldStatus::Voided,
        "expired" => HoldStatus::Expired,
        other => {
            return Err(CreditsError::Internal(format!(
                "unknown hold status {other:?}"
            )));
        }
    };
    Ok(Hold {
        id: HoldId(row.text(0)?.to_owned()),
        tokens: row.tokens(1)?,
        plan_tokens: row.tokens(2)?,
        credit_tokens: row.tokens(3)?,
        operation: row.text(4)?.to_owned(),
        resource: Resource::stored(
            row.opt_text(5)?.map(str::to_owned),
            row.opt_text(6)?.map(str::to_owned),
        ),
        status,
        expires_at,
        created_at: Timestamp::from_millis(row.int(9)?),
        settled_tokens: row.opt_int(10)?.map(|t| u64::try_from(t).unwrap_or(0)),
    })
}

/// A hold read by id, with what its ending stored.
struct StoredHold {
    hold: Hold,
    end_key: Option<String>,
    end_hash: Option<String>,
    end_available: Option<u64>,
    settled_seq: Option<i64>,
}

impl Credits<'_> {
    /// Reserves tokens like a deduction takes them (plan allocation first, then
    /// credits), or nothing if they are not all available.
    pub fn create_hold(
        &self,
        req: &HoldRequest,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<HoldReceipt>> {
        let now = self.now();
        // Like a deduction: a hold lost to a power failure reserves nothing, and
        // its settlement is refused; no money was involved.
        self.db.set_durability(Durability::Relaxed)?;
        let id = HoldId::generate()?;
        let result = self.db.execute(
            CREATE,
            &[
                req.account.as_str().into(),
                now.month().key().into(),
                Value::Integer(req.tokens.as_i64()),
                req.operation.as_str().into(),
                req.resource.project().into(),
                req.resource.session().into(),
                idem.map(|i| i.key.as_str()).into(),
                idem.map(|i| i.fingerprint.as_str()).into(),
                Value::Integer(now.millis()),
                id.as_str().into(),
                Value::Integer(req.lifetime.millis()),
            ],
        );
        let rows = match written_or_replayed(result, idem, |i| self.hold_replay(&req.account, i))? {
            Written::Rows(rows) => rows,
            Written::Replayed(receipt) => return Ok(Replayable::replayed(receipt)),
        };
        let Some(row) = rows.first() else {
            if let Some(idem) = idem
                && let Some(replay) = self.hold_replay(&req.account, idem)?
            {
                return Ok(Replayable::replayed(replay));
            }
            let available = self.available_tokens(&req.account)?;
            return Err(CreditsError::InsufficientBalance {
                requested: req.tokens.get(),
                available,
            });
        };
        let hold = hold_from_row(row, now)?;
        let mut available_tokens = row.tokens(HOLD_COLUMN_COUNT)?;
        if available_tokens == 0 {
            // The schema recorded credits.depleted with the hold.
            self.note_events_due();
        }
        let threshold = row.opt_int(HOLD_COLUMN_COUNT + 1)?;
        if threshold.is_some()
            && let Some(granted) = self.recharge_if_below(&req.account)
        {
            available_tokens = tokens::add(available_tokens, granted)?;
            if let Some(idem) = idem {
                // A replay answers what this answer says; should this fail, it
                // leaves the recharge out, as if it had not finished yet.
                let _ = self.db.execute(
                    "UPDATE holds SET answer_available = ?3
                     WHERE account_id = ?1 AND id = ?2 AND create_key = ?4",
                    &[
                        req.account.as_str().into(),
                        hold.id.as_str().into(),
                        Value::Integer(tokens::to_sql(available_tokens)?),
                        idem.key.as_str().into(),
                    ],
                );
            }
        }
        Ok(Replayable::fresh(HoldReceipt {
            hold,
            available_tokens,
        }))
    }

    fn hold_replay(&self, account: &AccountId, idem: &Idempotency) -> Result<Option<HoldReceipt>> {
        let rows = self.db.execute(
            HOLD_BY_KEY,
            &[account.as_str().into(), idem.key.as_str().into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        check_fingerprint(row, HOLD_COLUMN_COUNT + 1, idem)?;
        // The first answer, as it was: a new hold, held, whatever became of it since.
        let mut hold = hold_from_row(row, self.now())?;
        hold.status = HoldStatus::Held;
        hold.settled_tokens = None;
        Ok(Some(HoldReceipt {
            hold,
            available_tokens: row.tokens(HOLD_COLUMN_COUNT)?,
        }))
    }

    /// Auto-recharge after a hold or a settlement, when the credit balance net of
    /// held credit tokens is below the threshold: the tokens it granted, if any.
    /// A recharge that fails is retried by the next evaluation; the write before
    /// it stands.
    fn recharge_if_below(&self, account: &AccountId) -> Option<u64> {
        if self.defer_recharge(account, None) {
            return None;
        }
        match self.evaluate_recharge(account, None) {
            Ok(RechargeOutcome::Recharged { tokens }) => Some(tokens),
            _ => None,
        }
    }

    /// Settles a hold: one deduction of `tokens` (none for 0) in the month the
    /// hold was made, and the rest released.
    pub fn settle_hold(
        &self,
        account: &AccountId,
        hold: Option<&HoldId>,
        tokens: SettledTokens,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<SettleReceipt>> {
        let Some(hold) = hold else {
            self.require_account(account)?;
            return Err(CreditsError::NotFound("hold"));
        };
        let now = self.now();
        self.db.set_durability(Durability::Relaxed)?;
        let end_key = idem.map(|i| hold.end_key(i));
        let params = [
            account.as_str().into(),
            hold.as_str().into(),
            Value::Integer(tokens.as_i64()),
            Value::Integer(now.millis()),
            end_key.as_deref().into(),
            idem.map(|i| i.fingerprint.as_str()).into(),
        ];
        let written = if tokens.get() == 0 {
            let mut with_status = params.to_vec();
            with_status[2] = HoldStatus::Settled.stored().into();
            self.db
                .execute(END_WITHOUT_ENTRY, &with_status)?
                .first()
                .map(|row| hold_from_row(row, now).map(|hold| (None, hold)))
                .transpose()?
        } else {
            let mut with_month = params.to_vec();
            with_month.push(now.month().key().into());
            let result = self.db.execute(SETTLE, &with_month);
            let replay = |i: &Idempotency| self.ending_replay(account, hold, Ending::Settle, i);
            match written_or_replayed(result, idem, replay)? {
                Written::Replayed(receipt) => return Ok(Replayable::replayed(receipt.into())),
                Written::Rows(rows) => match rows.first() {
                    Some(row) => {
                        let transaction = Transaction::from_row(row)?;
                        let stored = self.stored_hold(account, hold)?;
                        Some((Some(transaction), stored.hold))
                    }
                    None => None,
                },
            }
        };
        let Some((transaction, hold_view)) = written else {
            return match self.ending_refusal(account, hold, Ending::Settle, Some(tokens), idem)? {
                Ok(refusal) => Err(refusal),
                Err(replay) => Ok(Replayable::replayed(replay.into())),
            };
        };
        // No auto-recharge evaluation: a settlement takes no more credit than its
        // hold reserved, so the credit balance net of holds, which the hold's
        // creation was evaluated on, does not fall.
        let available_tokens = self.available_tokens(account)?;
        self.remember_end_answer(account, hold, available_tokens, idem);
        Ok(Replayable::fresh(SettleReceipt {
            transaction,
            hold: hold_view,
            available_tokens,
        }))
    }

    /// Voids a hold: everything it reserved is released.
    pub fn void_hold(
        &self,
        account: &AccountId,
        hold: Option<&HoldId>,
        idem: Option<&Idempotency>,
    ) -> Result<Replayable<VoidReceipt>> {
        let Some(hold) = hold else {
            self.require_account(account)?;
            return Err(CreditsError::NotFound("hold"));
        };
        let now = self.now();
        self.db.set_durability(Durability::Relaxed)?;
        let end_key = idem.map(|i| hold.end_key(i));
        let rows = self.db.execute(
            END_WITHOUT_ENTRY,
            &[
                account.as_str().into(),
                hold.as_str().into(),
                HoldStatus::Voided.stored().into(),
                Value::Integer(now.millis()),
                end_key.as_deref().into(),
                idem.map(|i| i.fingerprint.as_str()).into(),
            ],
        )?;
        let Some(row) = rows.first() else {
            return match self.ending_refusal(account, hold, Ending::Void, None, idem)? {
                Ok(refusal) => Err(refusal),
                Err(replay) => Ok(Replayable::replayed(VoidReceipt {
                    hold: replay.hold,
                    available_tokens: replay.available_tokens,
                })),
            };
        };
        let hold_view = hold_from_row(row, now)?;
        let available_tokens = self.available_tokens(account)?;
        self.remember_end_answer(account, hold, available_tokens, idem);
        Ok(Replayable::fresh(VoidReceipt {
            hold: hold_view,
            available_tokens,
        }))
    }

    /// A hold of the account, as it stands now.
    pub fn hold(&self, account: &AccountId, hold: Option<&HoldId>) -> Result<HoldDetails> {
        let found = match hold {
            Some(hold) => self.find_hold(account, hold)?,
            None => None,
        };
        if let Some(stored) = found {
            return Ok(HoldDetails { hold: stored.hold });
        }
        self.require_account(account)?;
        Err(CreditsError::NotFound("hold"))
    }

    /// Records as expired the holds past their expiry (they stopped reserving at
    /// `expires_at` already). Returns how many.
    pub fn expire_holds(&self) -> Result<u64> {
        let rows = self.db.execute(
            "UPDATE holds SET status = 'expired', ended_at = expires_at
             WHERE status = 'held' AND expires_at <= ?1 RETURNING id",
            &[Value::Integer(self.now().millis())],
        )?;
        Ok(rows.len() as u64)
    }

    fn find_hold(&self, account: &AccountId, hold: &HoldId) -> Result<Option<StoredHold>> {
        let rows = self
            .db
            .execute(HOLD_BY_ID, &[account.as_str().into(), hold.as_str().into()])?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let at = HOLD_COLUMN_COUNT;
        Ok(Some(StoredHold {
            hold: hold_from_row(row, self.now())?,
            end_key: row.opt_text(at)?.map(str::to_owned),
            end_hash: row.opt_text(at + 1)?.map(str::to_owned),
            end_available: row.opt_int(at + 2)?.map(|t| u64::try_from(t).unwrap_or(0)),
            settled_seq: row.opt_int(at + 3)?,
        }))
    }

    fn stored_hold(&self, account: &AccountId, hold: &HoldId) -> Result<StoredHold> {
        self.find_hold(account, hold)?
            .ok_or_else(|| CreditsError::Internal("a hold just ended vanished".into()))
    }

    /// Keeps what a settle or void answered, for its replays. Should this fail,
    /// a replay answers the availability of its own time.
    fn remember_end_answer(
        &self,
        account: &AccountId,
        hold: &HoldId,
        available: u64,
        idem: Option<&Idempotency>,
    ) {
        let Some(idem) = idem else { return };
        let Ok(available) = tokens::to_sql(available) else {
            return;
        };
        let _ = self.db.execute(
            "UPDATE holds SET end_available = ?3 WHERE account_id = ?1 AND id = ?2 AND end_key = ?4",
            &[
                account.as_str().into(),
                hold.as_str().into(),
                Value::Integer(available),
                hold.end_key(idem).into(),
            ],
        );
    }

    /// The answer of an earlier settle or void of this hold with this key.
    fn ending_replay(
        &self,
        account: &AccountId,
        hold: &HoldId,
        ending: Ending,
        idem: &Idempotency,
    ) -> Result<Option<Replay>> {
        let Some(stored) = self.find_hold(account, hold)? else {
            return Ok(None);
        };
        if stored.hold.status != ending.status()
            || stored.end_key.as_deref() != Some(hold.end_key(idem).as_str())
        {
            return Ok(None);
        }
        if stored.end_hash.as_deref() != Some(idem.fingerprint.as_str()) {
            return Err(CreditsError::IdempotencyKeyReused);
        }
        let transaction = match stored.settled_seq {
            Some(seq) => Some(self.transaction(account, TransactionId::from_seq(seq))?),
            None => None,
        };
        let available_tokens = match stored.end_available {
            Some(available) => available,
            None => self.available_tokens(account)?,
        };
        Ok(Some(Replay {
            transaction,
            hold: stored.hold,
            available_tokens,
        }))
    }

    /// Why a settle or void wrote nothing: the answer of an earlier request with
    /// this key (`Err`), or the refusal (`Ok`): unknown hold, no longer held,
    /// more than it holds, or (after a plan moved down) credits short.
    fn ending_refusal(
        &self,
        account: &AccountId,
        hold: &HoldId,
        ending: Ending,
        tokens: Option<SettledTokens>,
        idem: Option<&Idempotency>,
    ) -> Result<std::result::Result<CreditsError, Replay>> {
        if let Some(idem) = idem
            && let Some(replay) = self.ending_replay(account, hold, ending, idem)?
        {
            return Ok(Err(replay));
        }
        let Some(stored) = self.find_hold(account, hold)? else {
            self.require_account(account)?;
            return Ok(Ok(CreditsError::NotFound("hold")));
        };
        if stored.hold.status != HoldStatus::Held {
            return Ok(Ok(CreditsError::HoldNotHeld(stored.hold.status.stored())));
        }
        let requested = tokens.map_or(0, SettledTokens::get);
        if requested > stored.hold.tokens {
            return Ok(Ok(CreditsError::HoldExceeded {
                requested,
                held: stored.hold.tokens,
            }));
        }
        // A clock behind the hold's month (skew between instances, a test clock):
        // its plan tokens cannot be taken before their month begins.
        if stored.hold.created_at.month().key() > self.now().month().key() {
            return Ok(Ok(CreditsError::invalid(
                "this request's time is before the month the hold was made in",
            )));
        }
        Ok(Ok(CreditsError::InsufficientBalance {
            requested,
            available: self.available_tokens(account)?,
        }))
    }

    /// One ledger entry of the account.
    fn transaction(&self, account: &AccountId, id: TransactionId) -> Result<Transaction> {
        let rows = self.db.execute(
            concat!(
                "SELECT ",
                tx_columns!(),
                " FROM ledger WHERE account_id = ?1 AND seq = ?2"
            ),
            &[account.as_str().into(), Value::Integer(id.seq())],
        )?;
        Transaction::from_row(
            rows.first()
                .ok_or_else(|| CreditsError::Internal("a settlement's entry vanished".into()))?,
        )
    }
}

/// An earlier settle's or void's answer.
struct Replay {
    transaction: Option<Transaction>,
    hold: Hold,
    available_tokens: u64,
}

impl From<Replay> for SettleReceipt {
    fn from(replay: Replay) -> Self {
        Self {
            transaction: replay.transaction,
            hold: replay.hold,
            available_tokens: replay.available_tokens,
        }
    }
}
