//! The account summary and the transaction history, newest first, paged by a
//! cursor that stays stable while new entries are written.

use serde::Serialize;

use crate::error::{CreditsError, Result};
use crate::hold::Held;
use crate::ids::{AccountId, TransactionId};
use crate::purchase::CreditBalance;
use crate::recharge::{RechargeSettingsView, settings_columns, settings_view};
use crate::service::Credits;
use crate::store::Value;
use crate::time::Timestamp;
use crate::transaction::{Transaction, TransactionKind, tx_columns};

/// Page size bounds of the history.
pub const MAX_PAGE: u32 = 200;
pub const DEFAULT_PAGE: u32 = 50;

/// The plan part of the summary: this month's allocation and its use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanUsage {
    pub name: String,
    pub monthly_tokens: u64,
    pub used_tokens: u64,
    pub remaining_tokens: u64,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
}

/// Balance, plan and auto-recharge of one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSummary {
    pub account_id: AccountId,
    pub plan: PlanUsage,
    pub credits: CreditBalance,
    /// Plan remainder plus credits, less what live holds reserve.
    pub available_tokens: u64,
    /// What live holds reserve (plan and credit parts; a hold's plan part only in
    /// the month it was made).
    pub held_tokens: u64,
    pub auto_recharge: RechargeSettingsView,
    /// Extension: the saved payment method, so the dashboard can show it.
    pub payment_method: Option<String>,
}

/// `GET /api/billing/credits`: the summary and one page of history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    #[serde(flatten)]
    pub summary: AccountSummary,
    #[serde(flatten)]
    pub page: HistoryPage,
}

/// One page of transactions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPage {
    pub transactions: Vec<Transaction>,
    pub next_cursor: Option<TransactionId>,
}

/// Which page of which transactions.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    limit: u32,
    cursor: Option<TransactionId>,
    kind: Option<TransactionKind>,
    project: Option<String>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE,
            cursor: None,
            kind: None,
            project: None,
        }
    }
}

impl HistoryQuery {
    /// `limit` must be 1–200 (default 50); the cursor (see
    /// [`parse_cursor`](Self::parse_cursor)) is checked against the account's
    /// history when the page is read.
    pub fn new(
        limit: Option<u32>,
        cursor: Option<TransactionId>,
        kind: Option<TransactionKind>,
        project: Option<String>,
    ) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(CreditsError::invalid(format!(
                "limit must be an integer from 1 to {MAX_PAGE}"
            )));
        }
        Ok(Self {
            limit,
            cursor,
            kind,
            project,
        })
    }

    /// Reads a cursor a page returned (`next_cursor`); anything else is refused
    /// here, before any storage is asked.
    pub fn parse_cursor(text: &str) -> Result<TransactionId> {
        TransactionId::parse(text).ok_or_else(foreign_cursor)
    }
}

fn foreign_cursor() -> CreditsError {
    CreditsError::invalid("cursor is not one this history returned")
}

// One statement per filter combination, so each uses its own index.
const PAGE_ALL: &str = concat!(
    "SELECT ",
    tx_columns!(),
    " FROM ledger WHERE account_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
);
const PAGE_BY_KIND: &str = concat!(
    "SELECT ",
    tx_columns!(),
    " FROM ledger WHERE account_id = ?1 AND kind = ?4 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
);
const PAGE_BY_PROJECT: &str = concat!(
    "SELECT ",
    tx_columns!(),
    " FROM ledger WHERE account_id = ?1 AND project = ?4 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
);
const PAGE_BY_KIND_AND_PROJECT: &str = concat!(
    "SELECT ",
    tx_columns!(),
    " FROM ledger WHERE account_id = ?1 AND project = ?5 AND kind = ?4 AND seq < ?2
      ORDER BY seq DESC LIMIT ?3"
);

impl Credits<'_> {
    /// Plan, credits, availability and auto-recharge settings.
    pub fn summary(&self, account: &AccountId) -> Result<AccountSummary> {
        let now = self.now();
        let month = now.month();
        let rows = self.db.execute(
            concat!(
                "SELECT a.plan, a.monthly_tokens,
                        CASE WHEN a.plan_period = ?2 THEN a.plan_used ELSE 0 END,
                        a.credit_balance, a.payment_method, ",
                settings_columns!(),
                ", ",
                plan_left!(),
                ", held.plan_held, held.credit_held
                 FROM accounts a LEFT JOIN auto_recharge s ON s.account_id = a.id, (",
                held!("?1", "?3"),
                ") AS held WHERE a.id = ?1"
            ),
            &[
                account.as_str().into(),
                month.key().into(),
                Value::Integer(now.millis()),
            ],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("account"))?;
        let monthly_tokens = row.tokens(1)?;
        let used_tokens = row.tokens(2)?;
        // What deductions can take now; the same rule as theirs (a clock moved
        // back behind the newest month with plan use finds none left).
        let remaining_tokens = row.tokens(13)?;
        let balance_tokens = row.tokens(3)?;
        let held = Held {
            plan: row.tokens(14)?,
            credit: row.tokens(15)?,
        };
        Ok(AccountSummary {
            account_id: account.clone(),
            plan: PlanUsage {
                name: row.text(0)?.to_owned(),
                monthly_tokens,
                used_tokens,
                remaining_tokens,
                period_start: month.start(),
                period_end: month.end(),
            },
            credits: CreditBalance { balance_tokens },
            available_tokens: held.available(remaining_tokens, balance_tokens),
            held_tokens: held.reserved(remaining_tokens, balance_tokens),
            auto_recharge: settings_view(row, 5)?,
            payment_method: row.opt_text(4)?.map(str::to_owned),
        })
    }

    /// Plan remainder plus credits, less what live holds reserve, right now.
    pub fn available_tokens(&self, account: &AccountId) -> Result<u64> {
        let now = self.now();
        let rows = self.db.execute(
            concat!(
                "SELECT ",
                plan_left!(),
                ", credit_balance, held.plan_held, held.credit_held FROM accounts, (",
                held!("?1", "?3"),
                ") AS held WHERE id = ?1"
            ),
            &[
                account.as_str().into(),
                now.month().key().into(),
                Value::Integer(now.millis()),
            ],
        )?;
        let row = rows.first().ok_or(CreditsError::NotFound("account"))?;
        let held = Held {
            plan: row.tokens(2)?,
            credit: row.tokens(3)?,
        };
        Ok(held.available(row.tokens(0)?, row.tokens(1)?))
    }

    /// The summary with one page of history.
    pub fn statement(&self, account: &AccountId, query: &HistoryQuery) -> Result<Statement> {
        let summary = self.summary(account)?;
        let page = self.history(account, query)?;
        Ok(Statement { summary, page })
    }

    /// One page of history, newest first. The cursor is the id of the last entry of
    /// the previous page; entries written meanwhile sort before it, so paging on
    /// returns every entry exactly once.
    pub fn history(&self, account: &AccountId, query: &HistoryQuery) -> Result<HistoryPage> {
        let before = match query.cursor {
            None => i64::MAX,
            Some(cursor) => self.cursor_position(account, cursor)?,
        };
        let mut params = vec![
            account.as_str().into(),
            Value::Integer(before),
            Value::Integer(i64::from(query.limit) + 1),
        ];
        // Statements take exactly the parameters they name.
        let sql = match (query.kind, &query.project) {
            (None, None) => PAGE_ALL,
            (Some(kind), None) => {
                params.push(kind.as_str().into());
                PAGE_BY_KIND
            }
            (None, Some(project)) => {
                params.push(project.as_str().into());
                PAGE_BY_PROJECT
            }
            (Some(kind), Some(project)) => {
                params.extend([kind.as_str().into(), project.as_str().into()]);
                PAGE_BY_KIND_AND_PROJECT
            }
        };
        let rows = self.db.execute(sql, &params)?;
        let more = rows.len() > query.limit as usize;
        let transactions = rows
            .iter()
            .take(query.limit as usize)
            .map(Transaction::from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if more {
            transactions.last().map(Transaction::id)
        } else {
            None
        };
        Ok(HistoryPage {
            transactions,
            next_cursor,
        })
    }

    fn cursor_position(&self, account: &AccountId, cursor: TransactionId) -> Result<i64> {
        let rows = self.db.execute(
            "SELECT seq FROM ledger WHERE seq = ?1 AND account_id = ?2",
            &[Value::Integer(cursor.seq()), account.as_str().into()],
        )?;
        rows.first().ok_or_else(foreign_cursor)?;
        Ok(cursor.seq())
    }
}
