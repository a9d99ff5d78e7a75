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
        "plan use equals the ledger's plan tokens of its month",
        "SELECT a.id || ' ' || a.plan_period || ': used ' || a.plan_used
         FROM accounts a
         WHERE a.plan_used <> (SELECT COALESCE(SUM(
                   CASE l.kind WHEN 'deduction' THEN l.plan_tokens ELSE -l.plan_tokens END), 0)
               FROM ledger l
               WHERE l.account_id = a.id AND l.period IS a.plan_period
                 AND l.kind IN ('deduction', 'refund'))",
    ),
    (
        "refunds never exceed their deduction",
        "SELECT 'deduction ' || d.seq FROM ledger d
         WHERE d.kind = 'deduction' AND (
             (SELECT COALESCE(SUM(r.tokens), 0) FROM ledger r INDEXED BY ledger_refunds
              WHERE r.account_id = d.account_id AND r.refund_of = d.seq) > d.tokens
          OR (SELECT COALESCE(SUM(r.credit_tokens), 0) FROM ledger r INDEXED BY ledger_refunds
              WHERE r.account_id = d.account_id AND r.refund_of = d.seq) > d.credit_tokens
          OR (SELECT COALESCE(SUM(r.plan_tokens), 0) FROM ledger r INDEXED BY ledger_refunds
              WHERE r.account_id = d.account_id AND r.refund_of = d.seq) > d.plan_tokens)",
    ),
    (
        "a purchase is granted exactly when it succeeded, by one entry of its own",
        "SELECT 'purchase ' || p.id || ' ' || p.status || ' granted by entry ' || COALESCE(p.granted_seq, '-')
         FROM purchases p
         WHERE (p.status = 'succeeded') <> EXISTS (
               SELECT 1 FROM ledger l
               WHERE l.account_id = p.account_id AND l.seq = p.granted_seq
                 AND l.kind = 'purchase' AND l.purchase_id = p.id)
         UNION ALL
         SELECT 'entry ' || l.account_id || '/' || l.seq || ' grants ' || COALESCE(l.purchase_id, 'nothing')
         FROM ledger l
         WHERE l.kind = 'purchase' AND NOT EXISTS (
               SELECT 1 FROM purchases p
               WHERE p.id = l.purchase_id AND p.account_id = l.account_id AND p.granted_seq = l.seq)",
    ),
    (
        "a hold is settled for tokens by exactly one deduction of its own",
        "SELECT 'hold ' || h.id || ' ' || h.status || ' settled by entry ' || COALESCE(h.settled_seq, '-')
         FROM holds h
         WHERE (h.status = 'settled' AND h.settled_tokens > 0) <> EXISTS (
               SELECT 1 FROM ledger l
               WHERE l.account_id = h.account_id AND l.seq = h.settled_seq AND l.hold_id = h.id
                 AND l.kind = 'deduction' AND l.tokens = h.settled_tokens
                 AND l.plan_tokens <= h.plan_tokens)
         UNION ALL
         SELECT 'entry ' || l.account_id || '/' || l.seq || ' settles ' || l.hold_id
         FROM ledger l
         WHERE l.hold_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM holds h
               WHERE h.account_id = l.account_id AND h.id = l.hold_id AND h.settled_seq = l.seq)",
    ),
    (
        "each account's entries are numbered 1, 2, 3, ... up to its ledger_seq",
        "SELECT a.id || ': ledger_seq ' || a.ledger_seq || ', ' || COUNT(l.seq) || ' entries up to '
                || COALESCE(MAX(l.seq), 0)
         FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id
         GROUP BY a.id
         HAVING a.ledger_seq <> COUNT(l.seq) OR a.ledger_seq <> COALESCE(MAX(l.seq), 0)",
    ),
    (
        "the usage rollup equals the ledger's deductions net of refunds",
        "SELECT u.account_id || ' day ' || u.day || ' ' || u.operation || ': ' || u.tokens
         FROM usage_daily u
         WHERE u.tokens <> (SELECT COALESCE(SUM(
                   CASE l.kind WHEN 'deduction' THEN l.tokens ELSE -l.tokens END), 0)
               FROM ledger l
               WHERE l.account_id = u.account_id AND l.kind IN ('deduction', 'refund')
                 AND l.created_at / 86400000 = u.day AND l.operation = u.operation
                 AND (l.project IS NOT NULL) = u.has_project AND COALESCE(l.project, '') = u.project)
         UNION ALL
         SELECT l.account_id || ' entry ' || l.seq || ' missing from the rollup'
         FROM ledger l
         WHERE l.kind IN ('deduction', 'refund') AND NOT EXISTS (
               SELECT 1 FROM usage_daily u
               WHERE u.account_id = l.account_id AND u.day = l.created_at / 86400000
                 AND u.operation = l.operation AND u.has_project = (l.project IS NOT NULL)
                 AND u.project = COALESCE(l.project, ''))",
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
