//! Usage for charts: tokens deducted net of refunds, grouped by day, project or
//! operation. A refund counts at its own time, in its deduction's group.

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
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub group_by: UsageGrouping,
}

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
        let rows = self.db.execute(
            "SELECT CASE ?4 WHEN 'day' THEN strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')
                            WHEN 'project' THEN project
                            ELSE operation END AS grp,
                    SUM(CASE kind WHEN 'deduction' THEN tokens ELSE -tokens END)
             FROM ledger
             WHERE account_id = ?1 AND kind IN ('deduction', 'refund')
               AND created_at >= ?2 AND created_at < ?3
             GROUP BY grp ORDER BY grp",
            &[
                account.as_str().into(),
                Value::Integer(from.millis()),
                Value::Integer(to.millis()),
                query.group_by.as_str().into(),
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
