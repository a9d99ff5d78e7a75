//! Usage for charts: tokens deducted net of refunds, grouped by day, project or
//! operation. A refund counts at its own time, in its deduction's group.
//!
//! Whole UTC days come from `usage_daily`, the rollup each ledger entry updates in
//! its own statement, so a month's report reads a few rows per day whatever the
//! size of the ledger; only the parts of a range that cut a day in two are read
//! from the ledger (by time).

use serde::Serialize;

use crate::error::{CreditsError, Result};
use crate::ids::AccountId;
use crate::service::Credits;
use crate::store::Value;
use crate::time::Timestamp;

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGrouping {
    Day,
    Project,
    Operation,
}

impl UsageGrouping {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "day" => Ok(Self::Day),
            "project" => Ok(Self::Project),
            "operation" => Ok(Self::Operation),
            _ => Err(CreditsError::invalid(
                "group_by must be day, project or operation",
            )),
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Project => "project",
            Self::Operation => "operation",
        }
    }
}

/// A half-open range `[from, to)` and a grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageQuery {
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    group_by: UsageGrouping,
}

impl UsageQuery {
    /// `from` must be before `to` when both are given; a missing bound is the
    /// current month's.
    pub fn new(
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        group_by: UsageGrouping,
    ) -> Result<Self> {
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(CreditsError::invalid("from must be before to"));
        }
        Ok(Self { from, to, group_by })
    }
}

const DAY_MS: i64 = 86_400_000;

/// Net tokens per group: whole days `[?5, ?6)` (day numbers) from the rollup, and
/// the edges `[?2, ?7)` and `[?8, ?3)` from the ledger.
const USAGE: &str = "WITH parts (grp, tokens) AS (
        SELECT CASE ?4 WHEN 'day' THEN strftime('%Y-%m-%d', day * 86400, 'unixepoch')
                       WHEN 'project' THEN CASE has_project WHEN 1 THEN project END
                       ELSE operation END,
               tokens
        FROM usage_daily WHERE account_id = ?1 AND day >= ?5 AND day < ?6
        UNION ALL
        SELECT CASE ?4 WHEN 'day' THEN strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')
                       WHEN 'project' THEN project
                       ELSE operation END,
               CASE kind WHEN 'deduction' THEN tokens ELSE -tokens END
        FROM ledger
        WHERE account_id = ?1 AND created_at >= ?2 AND created_at < ?7
          AND kind IN ('deduction', 'refund')
        UNION ALL
        SELECT CASE ?4 WHEN 'day' THEN strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')
                       WHEN 'project' THEN project
                       ELSE operation END,
               CASE kind WHEN 'deduction' THEN tokens ELSE -tokens END
        FROM ledger
        WHERE account_id = ?1 AND created_at >= ?8 AND created_at < ?3
          AND kind IN ('deduction', 'refund')
    )
    SELECT grp, SUM(tokens) FROM parts GROUP BY grp ORDER BY grp";

/// What the usage route answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub group_by: &'static str,
    pub groups: Vec<UsageGroup>,
}

/// Net tokens of one group; `key` is null for deductions without a project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageGroup {
    pub key: Option<String>,
    pub tokens: i64,
}

impl Credits<'_> {
    /// Net usage per group in the range (default: the current month).
    pub fn usage(&self, account: &AccountId, query: &UsageQuery) -> Result<UsageReport> {
        self.require_account(account)?;
        let month = self.now().month();
        let from = query.from.unwrap_or(month.start());
        let to = query.to.unwrap_or(month.end());
        if from >= to {
            return Err(CreditsError::invalid("from must be before to"));
        }
        // Whole days inside [from, to); the rest of the range is its edges.
        let first_day =
            from.millis().div_euclid(DAY_MS) + i64::from(from.millis().rem_euclid(DAY_MS) != 0);
        let end_day = to.millis().div_euclid(DAY_MS);
        let (days, left_end, right_start) = if first_day < end_day {
            ((first_day, end_day), first_day * DAY_MS, end_day * DAY_MS)
        } else {
            ((0, 0), to.millis(), to.millis())
        };
        let rows = self.db.execute(
            USAGE,
            &[
                account.as_str().into(),
                Value::Integer(from.millis()),
                Value::Integer(to.millis()),
                query.group_by.as_str().into(),
                Value::Integer(days.0),
                Value::Integer(days.1),
                Value::Integer(left_end),
                Value::Integer(right_start),
            ],
        )?;
        let groups = rows
            .iter()
            .map(|r| {
                Ok(UsageGroup {
                    key: r.opt_text(0)?.map(str::to_owned),
                    tokens: r.int(1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(UsageReport {
            from,
            to,
            group_by: query.group_by.as_str(),
            groups,
        })
    }
}
