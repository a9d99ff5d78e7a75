//! Auto-recharge: the settings, the policy, and the evaluation that buys a pack
//! when the credit balance falls below the threshold.
//!
//! An evaluation is one `INSERT ... SELECT` of a pending purchase whose `WHERE` is
//! the whole policy (enabled, paid plan, payment method, below the threshold, not
//! waiting after a decline, within this month's limit). A partial UNIQUE index
//! makes "one pack per crossing" a database fact: one pending auto-recharge per
//! account. While it is pending no other evaluation buys; when it ends, the grant
//! has moved the balance to a new state, or the decline has started the wait — so
//! evaluations racing on any number of instances that see the same balance buy one
//! pack between them.

use serde::Serialize;

use crate::catalog::Pack;
use crate::error::{CreditsError, Result};
use crate::ids::{AccountId, TransactionId, random_hex};
use crate::money::Eur;
use crate::purchase::{PendingPurchase, Settlement};
use crate::service::Credits;
use crate::store::{Durability, Row, Value};
use crate::time::Timestamp;
use crate::tokens::TokenAmount;
use crate::transaction::PurchaseSource;

/// The default monthly spending limit: €50.00.
pub const DEFAULT_MONTHLY_LIMIT_CENTS: i64 = 5000;

/// How long a purchase may stay pending before an evaluation finishes it.
pub const STALE_PURCHASE_MILLIS: i64 = 60_000;

/// Settings as a `PUT` states them, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RechargeSettings {
    enabled: bool,
    pack: Option<Pack>,
    threshold_tokens: Option<TokenAmount>,
    monthly_limit: Eur,
}

impl RechargeSettings {
    /// `pack` and `threshold_tokens` are required when enabled; the limit defaults
    /// to €50.00.
    pub fn new(
        enabled: bool,
        pack: Option<Pack>,
        threshold_tokens: Option<TokenAmount>,
        monthly_limit: Option<Eur>,
    ) -> Result<Self> {
        if enabled && (pack.is_none() || threshold_tokens.is_none()) {
            return Err(CreditsError::invalid(
                "pack and threshold_tokens are required when enabled is true",
            ));
        }
        Ok(Self {
            enabled,
            pack,
            threshold_tokens,
            monthly_limit: monthly_limit.unwrap_or(Eur::from_cents(DEFAULT_MONTHLY_LIMIT_CENTS)),
        })
    }
}

/// The settings as stored, with this month's spending and the last error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RechargeSettingsView {
    pub enabled: bool,
    pub pack: Option<String>,
    pub threshold_tokens: Option<u64>,
    pub monthly_limit_eur: Eur,
    pub spent_this_month_eur: Eur,
    pub last_error: Option<RechargeError>,
}

/// Why the last auto-recharge failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RechargeError {
    pub code: String,
    pub message: String,
    pub at: Timestamp,
}

/// What one evaluation did for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RechargeOutcome {
    /// Not enabled, or the balance is not below the threshold.
    NotNeeded,
    /// A pack was bought; this many tokens were granted.
    Recharged { tokens: u64 },
    /// Below the threshold but not bought: the limit, a wait after a decline, or a
    /// purchase already under way for this crossing.
    Skipped,
    /// The payment was declined.
    Failed,
}

/// What `POST /api/internal/recharge-check` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RechargeReport {
    pub checked: u64,
    pub recharged: Vec<String>,
    pub skipped: Vec<String>,
    pub failed: Vec<String>,
}

/// The columns [`settings_view`] reads, from `accounts a LEFT JOIN auto_recharge s`
/// with the month in `?2`.
macro_rules! settings_columns {
    () => {
        "s.enabled, s.pack, s.threshold_tokens, s.monthly_limit_cents,
         s.last_error_code, s.last_error_message, s.last_error_at,
         (SELECT COALESCE(SUM(p.amount_cents), 0) FROM purchases p
          WHERE p.account_id = a.id AND p.source = 'auto_recharge'
            AND p.period = ?2 AND p.status = 'succeeded')"
    };
}
pub(crate) use settings_columns;

/// The settings as [`settings_columns!`] selects them, from column `at` on.
pub(crate) fn settings_view(row: &Row, at: usize) -> Result<RechargeSettingsView> {
    let last_error = match (
        row.opt_text(at + 4)?,
        row.opt_text(at + 5)?,
        row.opt_int(at + 6)?,
    ) {
        (Some(code), Some(message), Some(time)) => Some(RechargeError {
            code: code.to_owned(),
            message: message.to_owned(),
            at: Timestamp::from_millis(time),
        }),
        _ => None,
    };
    Ok(RechargeSettingsView {
        enabled: row.opt_int(at)? == Some(1),
        pack: row.opt_text(at + 1)?.map(str::to_owned),
        threshold_tokens: row.opt_int(at + 2)?.and_then(|t| u64::try_from(t).ok()),
        monthly_limit_eur: Eur::from_cents(
            row.opt_int(at + 3)?.unwrap_or(DEFAULT_MONTHLY_LIMIT_CENTS),
        ),
        spent_this_month_eur: Eur::from_cents(row.int(at + 7)?),
        last_error,
    })
}

/// The credit balance the threshold is compared with: net of held credit tokens.
macro_rules! net_credits {
    ($now:literal) => {
        concat!("a.credit_balance - ", credit_held!("a.id", $now))
    };
}

const EVALUATE: &str = concat!(
    "INSERT INTO purchases (id, account_id, source, pack, tokens, amount_cents, payment_method,
                            status, crossing, triggered_by, period, created_at, updated_at)
     SELECT ?1, a.id, 'auto_recharge', s.pack, s.pack_tokens, s.pack_price_cents, a.payment_method,
            'pending', a.ledger_seq, ?3, ?4, ?5, ?5
     FROM accounts a JOIN auto_recharge s ON s.account_id = a.id
     WHERE a.id = ?2 AND s.enabled = 1 AND a.plan <> 'free' AND a.payment_method IS NOT NULL
       AND ",
    net_credits!("?5"),
    " < s.threshold_tokens
       AND (s.retry_after IS NULL OR s.retry_after <= ?5)
       AND (SELECT COALESCE(SUM(p.amount_cents), 0) FROM purchases p
            WHERE p.account_id = a.id AND p.source = 'auto_recharge'
              AND p.period = ?4 AND p.status <> 'failed') + s.pack_price_cents <= s.monthly_limit_cents
     RETURNING id, payment_method, amount_cents, tokens"
);

/// Records `auto_recharge.limit_reached` when the monthly limit is what keeps a
/// crossing from being bought: once per account and month (`events_once`).
const LIMIT_REACHED: &str = concat!(
    "INSERT OR IGNORE INTO events (account_id, sequence, type, data, once_key, created_at,
                                   next_attempt_at)
     SELECT a.id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = a.id),
            'auto_recharge.limit_reached',
            json_object('pack', s.pack,
                        'price_eur', printf('%d.%02d', s.pack_price_cents / 100, s.pack_price_cents % 100),
                        'monthly_limit_eur', printf('%d.%02d', s.monthly_limit_cents / 100,
                                                    s.monthly_limit_cents % 100),
                        'spent_this_month_eur', printf('%d.%02d', m.spent / 100, m.spent % 100)),
            'limit_reached:' || ?3, ?2, ?2
     FROM accounts a JOIN auto_recharge s ON s.account_id = a.id,
          (SELECT COALESCE(SUM(p.amount_cents), 0) AS spent FROM purchases p
           WHERE p.account_id = ?1 AND p.source = 'auto_recharge' AND p.period = ?3
             AND p.status <> 'failed') AS m
     WHERE a.id = ?1 AND s.enabled = 1 AND a.plan <> 'free' AND a.payment_method IS NOT NULL
       AND ",
    net_credits!("?2"),
    " < s.threshold_tokens
       AND (s.retry_after IS NULL OR s.retry_after <= ?2)
       AND m.spent + s.pack_price_cents > s.monthly_limit_cents
     RETURNING id"
);

impl Credits<'_> {
    /// The auto-recharge settings (defaults before the first `PUT`).
    pub fn recharge_settings(&self, account: &AccountId) -> Result<RechargeSettingsView> {
        let rows = self.db.execute(
            concat!(
                "SELECT ",
                settings_columns!(),
                " FROM accounts a LEFT JOIN auto_recharge s ON s.account_id = a.id WHERE a.id = ?1"
            ),
            &[account.as_str().into(), self.now().month().key().into()],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("account"))?;
        settings_view(row, 0)
    }

    /// Replaces the settings. Saving (even unchanged) clears the last error, ends a
    /// wait after a decline and restarts the decline count. It buys nothing: the next
    /// evaluation does.
    pub fn save_recharge_settings(
        &self,
        account: &AccountId,
        settings: &RechargeSettings,
    ) -> Result<RechargeSettingsView> {
        let check = || -> Result<()> {
            let owner = self.require_account(account)?;
            if settings.enabled && !owner.plan.may_buy_credits() {
                return Err(CreditsError::FreePlan("use auto-recharge"));
            }
            if settings.enabled && owner.payment_method.is_none() {
                return Err(CreditsError::PaymentMethodRequired);
            }
            Ok(())
        };
        check()?;
        let rows = self.db.execute(
            "INSERT INTO auto_recharge (account_id, enabled, pack, pack_tokens, pack_price_cents,
                                        threshold_tokens, monthly_limit_cents, declines)
             SELECT a.id, ?2, ?3, ?4, ?5, ?6, ?7, 0 FROM accounts a
             WHERE a.id = ?1 AND (?2 = 0 OR (a.plan <> 'free' AND a.payment_method IS NOT NULL))
             ON CONFLICT (account_id) DO UPDATE SET
                enabled = excluded.enabled, pack = excluded.pack, pack_tokens = excluded.pack_tokens,
                pack_price_cents = excluded.pack_price_cents, threshold_tokens = excluded.threshold_tokens,
                monthly_limit_cents = excluded.monthly_limit_cents, declines = 0, retry_after = NULL,
                last_error_code = NULL, last_error_message = NULL, last_error_at = NULL
             RETURNING account_id",
            &[
                account.as_str().into(),
                Value::Integer(i64::from(settings.enabled)),
                settings.pack.map(Pack::id).into(),
                settings.pack.map(|p| crate::tokens::to_sql(p.tokens())).transpose()?.into(),
                settings.pack.map(|p| p.price().cents()).into(),
                settings.threshold_tokens.map(TokenAmount::as_i64).into(),
                Value::Integer(settings.monthly_limit.cents()),
            ],
        )?;
        if rows.is_empty() {
            // The plan or payment method changed under us.
            check()?;
            return Err(CreditsError::Internal(
                "settings refused by the database".into(),
            ));
        }
        self.recharge_settings(account)
    }

    /// Evaluates one account now; buys at most one pack.
    pub fn evaluate_recharge(
        &self,
        account: &AccountId,
        triggered_by: Option<TransactionId>,
    ) -> Result<RechargeOutcome> {
        let now = self.now();
        // The purchase must outlive a power failure before its charge is tried.
        self.db.set_durability(Durability::Full)?;
        let result = self.db.execute(
            EVALUATE,
            &[
                format!("pur_{}", random_hex(16)?).into(),
                account.as_str().into(),
                triggered_by.map(TransactionId::seq).into(),
                now.month().key().into(),
                Value::Integer(now.millis()),
            ],
        );
        let rows = match result {
            // Another evaluation holds this crossing: it buys, this one does not.
            Err(e) if e.is_unique_violation() => return self.unbought(account),
            other => other?,
        };
        let Some(row) = rows.first() else {
            return self.unbought(account);
        };
        let pending =
            PendingPurchase::recorded(row, account.clone(), PurchaseSource::AutoRecharge, now)?;
        let tokens = row.tokens(3)?;
        Ok(match self.charge_new(&pending)? {
            Settlement::Granted(_) => RechargeOutcome::Recharged { tokens },
            Settlement::Declined(_) | Settlement::Waiting { .. } => RechargeOutcome::Failed,
        })
    }

    /// Why an evaluation bought nothing: not needed, or skipped.
    fn unbought(&self, account: &AccountId) -> Result<RechargeOutcome> {
        let rows = self.db.execute(
            concat!(
                "SELECT ",
                net_credits!("?2"),
                " < s.threshold_tokens FROM accounts a
                 JOIN auto_recharge s ON s.account_id = a.id
                 WHERE a.id = ?1 AND s.enabled = 1"
            ),
            &[account.as_str().into(), Value::Integer(self.now().millis())],
        )?;
        let below = rows.first().map(|r| r.int(0)).transpose()? == Some(1);
        if !below {
            return Ok(RechargeOutcome::NotNeeded);
        }
        let now = self.now();
        let recorded = self.db.execute(
            LIMIT_REACHED,
            &[
                account.as_str().into(),
                Value::Integer(now.millis()),
                now.month().key().into(),
            ],
        )?;
        if !recorded.is_empty() {
            self.note_events_due();
        }
        Ok(RechargeOutcome::Skipped)
    }

    /// The scheduled evaluation: finishes stale purchases, records expired holds,
    /// then evaluates every account with auto-recharge enabled. One account's
    /// failure (provider down, a storage error) lands it in `failed` and never
    /// stops the others.
    pub fn recharge_check(&self) -> Result<RechargeReport> {
        // Every recharge check delivers what is due, recorded here or earlier.
        self.note_events_due();
        self.settle_stale_purchases(self.now().plus_millis(-STALE_PURCHASE_MILLIS))?;
        // Bookkeeping only: an expired hold reserves nothing whether marked or not.
        let _ = self.expire_holds();
        let rows = self.db.execute(
            concat!(
                "SELECT s.account_id, ",
                net_credits!("?1"),
                " < s.threshold_tokens
                 FROM auto_recharge s JOIN accounts a ON a.id = s.account_id
                 WHERE s.enabled = 1 ORDER BY s.account_id"
            ),
            &[Value::Integer(self.now().millis())],
        )?;
        let mut report = RechargeReport {
            checked: rows.len() as u64,
            ..RechargeReport::default()
        };
        for row in &rows {
            if row.int(1)? != 1 {
                continue;
            }
            let account = AccountId::parse(row.text(0)?)?;
            let list = match self.evaluate_recharge(&account, None) {
                Ok(RechargeOutcome::NotNeeded) => continue,
                Ok(RechargeOutcome::Recharged { .. }) => &mut report.recharged,
                Ok(RechargeOutcome::Skipped) => &mut report.skipped,
                Ok(RechargeOutcome::Failed) | Err(_) => &mut report.failed,
            };
            list.push(account.to_string());
        }
        Ok(report)
    }
}
