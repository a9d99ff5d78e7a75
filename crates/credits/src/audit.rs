//! Invariant checks over the whole database: what the tests (and an operator)
//! run to prove that money and tokens never drifted.

use crate::error::Result;
use crate::service::Credits;

/// Each query returns one row per violation, described as text.
const CHECKS: &[(&str, &str)] = &[
    (
        "credit balance equals the sum of the ledger",
        "SELECT a.id || ': balance ' || a.credit_balance || ' but ledger sums to ' || COALESCE(SUM(
             CASE l.kind WHEN 'deduction' THEN -l.credit_tokens ELSE l.credit_tokens END), 0)
         FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id
         GROUP BY a.id
         HAVING a.credit_balance <> COALESCE(SUM(
             CASE l.kind WHEN 'deduction' THEN -l.credit_tokens ELSE l.credit_tokens END), 0)",
    ),
    (
        "plan usage equals the ledger's plan tokens of the month",
        "SELECT u.account_id || ' ' || u.period || ': used ' || u.used_tokens
         FROM plan_usage u
         WHERE u.used_tokens <> (SELECT COALESCE(SUM(
                   CASE l.kind WHEN 'deduction' THEN l.plan_tokens ELSE -l.plan_tokens END), 0)
               FROM ledger l
               WHERE l.account_id = u.account_id AND l.period = u.period
                 AND l.kind IN ('deduction', 'refund'))",
    ),
    (
        "refunds never exceed their deduction",
        "SELECT 'deduction ' || d.seq FROM ledger d
         WHERE d.kind = 'deduction' AND (
             (SELECT COALESCE(SUM(r.tokens), 0) FROM ledger r WHERE r.refund_of = d.seq) > d.tokens
          OR (SELECT COALESCE(SUM(r.credit_tokens), 0) FROM ledger r WHERE r.refund_of = d.seq) > d.credit_tokens
          OR (SELECT COALESCE(SUM(r.plan_tokens), 0) FROM ledger r WHERE r.refund_of = d.seq) > d.plan_tokens)",
    ),
    (
        "a purchase is granted exactly when it succeeded",
        "SELECT 'purchase ' || p.id || ' ' || p.status || ' with ' ||
                (SELECT COUNT(*) FROM ledger l WHERE l.purchase_id = p.id) || ' grants'
         FROM purchases p
         WHERE (p.status = 'succeeded') <> EXISTS (SELECT 1 FROM ledger l WHERE l.purchase_id = p.id)",
    ),
    (
        "no settled purchase was charged differently than it ended",
        "SELECT 'purchase ' || p.id || ' ' || p.status || ' but charge ' || c.outcome
         FROM purchases p JOIN sandbox_charges c ON c.idempotency_key = p.id
         WHERE p.status <> 'pending'
           AND (p.status = 'succeeded') <> (c.outcome = 'succeeded')",
    ),
];

impl Credits<'_> {
    /// Every broken invariant, as `"rule: detail"`; empty when the books balance.
    pub fn audit(&self) -> Result<Vec<String>> {
        let mut broken = Vec::new();
        for (rule, sql) in CHECKS {
            for row in self.db.execute(sql, &[])? {
                broken.push(format!("{rule}: {}", row.text(0)?));
            }
        }
        Ok(broken)
    }
}
