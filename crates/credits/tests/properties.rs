//! Random sequences of operations against a simple model: whatever the order of
//! purchases, deductions, refunds, plan and settings changes, recharge checks,
//! month changes and idempotent retries, the books balance.
//!
//! After every step: the credit balance and this month's plan usage equal the
//! model's (which is fed only by what the operations answered), the plan never
//! gave more than its allocation, no refund exceeded its deduction, no month's
//! auto-recharge spending passed the limit in force, and `audit()` is empty.

#![allow(
    clippy::redundant_closure_for_method_calls, // `|c| c.audit()` reads better than a path
    clippy::many_single_char_names,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::unnecessary_wraps,
    clippy::doc_markdown
)]

mod support;

use std::collections::{HashMap, HashSet};

use credits::{
    AccountId, CreditsError, Database, Eur, Pack, PaymentMethodId, Plan, PurchaseSource,
    RechargeSettings, TokenAmount, Transaction,
};
use proptest::prelude::*;
use serde_json::json;
use support::{World, deduction, idem, kind, refund, split};

const MAX_ACCOUNTS: usize = 4;
const DECLINED: &str = "pm_card_chargeDeclined";

#[derive(Debug, Clone)]
enum Op {
    Create {
        plan: Plan,
    },
    Method {
        acct: usize,
        declined: bool,
    },
    Buy {
        acct: usize,
        pack: Pack,
        key: Option<u8>,
    },
    Deduct {
        acct: usize,
        tokens: u64,
        project: Option<u8>,
        key: Option<u8>,
    },
    Refund {
        acct: usize,
        pick: usize,
        own: bool,
        tokens: Option<u64>,
        key: Option<u8>,
    },
    ChangePlan {
        acct: usize,
        plan: Plan,
    },
    Settings {
        acct: usize,
        enabled: bool,
        pack: Pack,
        threshold: u64,
        limit_cents: i64,
    },
    Check,
    Clock {
        ms: i64,
    },
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![Just(Plan::Free), Just(Plan::Pro), Just(Plan::Team)]
}

fn pack() -> impl Strategy<Value = Pack> {
    prop_oneof![
        Just(Pack::Starter),
        Just(Pack::Standard),
        Just(Pack::Plus),
        Just(Pack::Pro)
    ]
}

/// A few keys only, so retries (same body) and conflicts (other body) happen.
fn key() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![2 => Just(None), 1 => (0u8..3).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    let acct = 0..MAX_ACCOUNTS;
    prop_oneof![
        2 => plan().prop_map(|plan| Op::Create { plan }),
        2 => (acct.clone(), prop::bool::weighted(0.2))
            .prop_map(|(acct, declined)| Op::Method { acct, declined }),
        3 => (acct.clone(), pack(), key()).prop_map(|(acct, pack, key)| Op::Buy { acct, pack, key }),
        8 => (
            acct.clone(),
            prop_oneof![1..1_000u64, 1_000..500_000u64, 500_000..8_000_000u64],
            prop::option::of(0u8..3),
            key()
        )
            .prop_map(|(acct, tokens, project, key)| Op::Deduct { acct, tokens, project, key }),
        4 => (
            acct.clone(),
            any::<usize>(),
            prop::bool::weighted(0.85),
            prop_oneof![Just(None), (1..2_000u64).prop_map(Some), (1..4_000_000u64).prop_map(Some)],
            key()
        )
            .prop_map(|(acct, pick, own, tokens, key)| Op::Refund { acct, pick, own, tokens, key }),
        1 => (acct.clone(), plan()).prop_map(|(acct, plan)| Op::ChangePlan { acct, plan }),
        2 => (
            acct,
            prop::bool::weighted(0.8),
            pack(),
            prop_oneof![1..1_000u64, 100_000..20_000_000u64],
            prop::sample::select(vec![0i64, 500, 1_000, 2_500, 5_000, 12_000])
        )
            .prop_map(|(acct, enabled, pack, threshold, limit_cents)| Op::Settings {
                acct, enabled, pack, threshold, limit_cents
            }),
        2 => Just(Op::Check),
        3 => prop::sample::select(vec![60_000i64, 3_600_000, 86_400_000, 10 * 86_400_000, 25 * 86_400_000])
            .prop_map(|ms| Op::Clock { ms }),
    ]
}

/// What the model knows of one account.
struct Account {
    id: AccountId,
    plan: Plan,
    method: Option<&'static str>,
    credits: u64,
    /// Plan tokens used per month.
    used: HashMap<String, u64>,
    /// The auto-recharge limit in force.
    limit_cents: i64,
}

/// A deduction and what has been refunded of it.
struct Deducted {
    acct: usize,
    tx: Transaction,
    month: String,
    refunded: u64,
    credit_refunded: u64,
}

/// What an idempotency key answered first.
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Tx(Transaction),
    Declined,
}

struct Model {
    accounts: Vec<Account>,
    deductions: Vec<Deducted>,
    keys: HashMap<(usize, &'static str, u8), (serde_json::Value, Stored)>,
    ledger_rows: i64,
    /// Auto-recharge purchases `verify` has counted, by id.
    purchases_seen: HashSet<String>,
}

fn test_case_error(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(test_case_error(format!($($fmt)+)));
        }
    };
}

/// The refusal must be this variant of [`CreditsError`] (see [`kind`]).
fn expect_refusal<T: std::fmt::Debug>(
    result: Result<T, CreditsError>,
    variant: &str,
) -> Result<(), TestCaseError> {
    match result {
        Err(e) if kind(&e) == variant => Ok(()),
        other => Err(test_case_error(format!(
            "expected {variant}, got {other:?}"
        ))),
    }
}

fn ok<T>(result: Result<T, CreditsError>) -> Result<T, TestCaseError> {
    result.map_err(|e| test_case_error(format!("unexpected error: {e:?}")))
}

impl Model {
    /// Looks an idempotency key up: `Some(Ok(stored))` for a replay,
    /// `Some(Err(()))` for a conflict, `None` when the request runs fresh.
    fn replay(
        &self,
        acct: usize,
        route: &'static str,
        key: Option<u8>,
        body: &serde_json::Value,
    ) -> Option<Result<Stored, ()>> {
        let (stored_body, stored) = self.keys.get(&(acct, route, key?))?;
        Some(if stored_body == body {
            Ok(stored.clone())
        } else {
            Err(())
        })
    }

    fn remember(
        &mut self,
        acct: usize,
        route: &'static str,
        key: Option<u8>,
        body: serde_json::Value,
        stored: Stored,
    ) {
        if let Some(key) = key {
            self.keys.insert((acct, route, key), (body, stored));
        }
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let w = World::new();
    let mut m = Model {
        accounts: Vec::new(),
        deductions: Vec::new(),
        keys: HashMap::new(),
        ledger_rows: 0,
        purchases_seen: HashSet::new(),
    };
    for op in ops {
        step(&w, &mut m, op).map_err(|e| test_case_error(format!("{op:?}: {e}")))?;
        verify(&w, &mut m)?;
    }
    Ok(())
}

#[allow(clippy::too_many_lines)]
fn step(w: &World, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let month = w.now().month().key();
    let count = m.accounts.len().max(1);
    let pick = move |acct: usize| acct % count;
    if m.accounts.is_empty() && !matches!(op, Op::Create { .. } | Op::Clock { .. } | Op::Check) {
        return Ok(());
    }
    match *op {
        Op::Create { plan } => {
            let n = m.accounts.len();
            let name = format!("a{}", n % MAX_ACCOUNTS);
            let id = AccountId::parse(&name).unwrap();
            let result = w.credits_with(|c| c.create_account(&id, plan));
            if n >= MAX_ACCOUNTS {
                return expect_refusal(result, "AccountExists");
            }
            ok(result)?;
            m.accounts.push(Account {
                id,
                plan,
                method: None,
                credits: 0,
                used: HashMap::new(),
                limit_cents: 5_000,
            });
        }
        Op::Method { acct, declined } => {
            let a = &mut m.accounts[pick(acct)];
            let method = if declined { DECLINED } else { "pm_card_visa" };
            ok(w.credits_with(|c| {
                c.save_payment_method(&a.id, &PaymentMethodId::parse(method).unwrap())
            }))?;
            a.method = Some(method);
        }
        Op::Buy { acct, pack, key } => {
            let i = pick(acct);
            let body = json!({"pack": pack.id()});
            let idem_key = key.map(|k| idem(&format!("k{k}"), &body));
            let a = &m.accounts[i];
            let result = w.credits_with(|c| c.purchase(&a.id, pack, idem_key.as_ref()));
            match m.replay(i, "purchase", key, &body) {
                Some(Err(())) => return expect_refusal(result, "IdempotencyKeyReused"),
                Some(Ok(Stored::Declined)) => return expect_refusal(result, "PaymentDeclined"),
                Some(Ok(Stored::Tx(tx))) => {
                    let r = ok(result)?;
                    check!(
                        r.replayed && r.value.transaction == tx,
                        "purchase replay {r:?}"
                    );
                    return Ok(());
                }
                None => {}
            }
            if a.plan == Plan::Free {
                return expect_refusal(result, "FreePlan");
            }
            match a.method {
                None => return expect_refusal(result, "PaymentMethodRequired"),
                Some(DECLINED) => {
                    expect_refusal(result, "PaymentDeclined")?;
                    m.remember(i, "purchase", key, body, Stored::Declined);
                }
                Some(_) => {
                    let r = ok(result)?;
                    let a = &mut m.accounts[i];
                    a.credits += pack.tokens();
                    check!(!r.replayed, "fresh purchase replayed");
                    check!(
                        r.value.credits.balance_tokens == a.credits,
                        "purchase balance {r:?}"
                    );
                    check!(
                        matches!(r.value.transaction, Transaction::Purchase { source: PurchaseSource::Manual, tokens, .. } if tokens == pack.tokens()),
                        "purchase {r:?}"
                    );
                    m.ledger_rows += 1;
                    m.remember(i, "purchase", key, body, Stored::Tx(r.value.transaction));
                }
            }
        }
        Op::Deduct {
            acct,
            tokens,
            project,
            key,
        } => {
            let i = pick(acct);
            let project = project.map(|p| format!("p{p}"));
            let body = json!({"tokens": tokens, "project": project});
            let idem_key = key.map(|k| idem(&format!("k{k}"), &body));
            let a = &m.accounts[i];
            let remaining = a
                .plan
                .monthly_tokens()
                .saturating_sub(a.used.get(&month).copied().unwrap_or(0));
            let result = w.credits_with(|c| {
                c.deduct(
                    &deduction(&a.id, tokens, project.as_deref()),
                    idem_key.as_ref(),
                )
            });
            match m.replay(i, "deduction", key, &body) {
                Some(Err(())) => return expect_refusal(result, "IdempotencyKeyReused"),
                Some(Ok(stored)) => {
                    let r = ok(result)?;
                    check!(
                        r.replayed && Stored::Tx(r.value.transaction.clone()) == stored,
                        "deduction replay {r:?}"
                    );
                    return Ok(());
                }
                None => {}
            }
            if tokens > remaining + a.credits {
                return expect_refusal(result, "InsufficientBalance");
            }
            let r = ok(result)?;
            let plan_part = tokens.min(remaining);
            check!(!r.replayed, "fresh deduction replayed");
            check!(
                split(&r.value.transaction) == (tokens, plan_part, tokens - plan_part),
                "split of {tokens} with {remaining} plan left: {:?}",
                r.value.transaction
            );
            let a = &mut m.accounts[i];
            a.credits -= tokens - plan_part;
            let used = a.used.entry(month.clone()).or_insert(0);
            *used += plan_part;
            check!(
                *used <= a.plan.monthly_tokens() || plan_part == 0,
                "plan over-used: {used}"
            );
            m.ledger_rows += 1;
            m.deductions.push(Deducted {
                acct: i,
                tx: r.value.transaction.clone(),
                month: month.clone(),
                refunded: 0,
                credit_refunded: 0,
            });
            m.remember(i, "deduction", key, body, Stored::Tx(r.value.transaction));
            // What it answers is what is left after any recharge it set off: the
            // model learns about that recharge in `verify`.
            let after = ok(w.credits_with(|c| c.available_tokens(&m.accounts[i].id)))?;
            check!(
                r.value.available_tokens == after,
                "available {} but {after}",
                r.value.available_tokens
            );
        }
        Op::Refund {
            acct,
            pick: which,
            own,
            tokens,
            key,
        } => {
            let i = pick(acct);
            let candidates: Vec<usize> = (0..m.deductions.len())
                .filter(|&d| (m.deductions[d].acct == i) == own)
                .collect();
            let Some(&d) = candidates.get(which % candidates.len().max(1)) else {
                return Ok(());
            };
            let body = json!({"deduction": d, "tokens": tokens});
            let idem_key = key.map(|k| idem(&format!("k{k}"), &body));
            let req = refund(&m.accounts[i].id, &m.deductions[d].tx, tokens);
            let result = w.credits_with(|c| c.refund(&req, idem_key.as_ref()));
            match m.replay(i, "refund", key, &body) {
                Some(Err(())) => return expect_refusal(result, "IdempotencyKeyReused"),
                Some(Ok(stored)) => {
                    let r = ok(result)?;
                    check!(
                        r.replayed && Stored::Tx(r.value.transaction.clone()) == stored,
                        "refund replay {r:?}"
                    );
                    return Ok(());
                }
                None => {}
            }
            // Ids are numbered per account: another account's deduction id names
            // this account's entry of the same number, which is refunded if it is
            // a deduction, and is not found otherwise.
            let d = if own {
                d
            } else {
                let id = m.deductions[d].tx.id();
                match m
                    .deductions
                    .iter()
                    .position(|dd| dd.acct == i && dd.tx.id() == id)
                {
                    Some(mine) => mine,
                    None => return expect_refusal(result, "NotFound"),
                }
            };
            let dd = &m.deductions[d];
            let (d_tokens, _, d_credit) = split(&dd.tx);
            let left = d_tokens - dd.refunded;
            let wanted = tokens.unwrap_or(left);
            if wanted == 0 || wanted > left {
                return expect_refusal(result, "RefundExceedsDeduction");
            }
            let r = ok(result)?;
            let credit_back = wanted.min(d_credit - dd.credit_refunded);
            let plan_back = if dd.month == month {
                wanted - credit_back
            } else {
                0
            };
            check!(
                split(&r.value.transaction) == (wanted, plan_back, credit_back),
                "refund of {wanted}: {:?}",
                r.value.transaction
            );
            let dmonth = dd.month.clone();
            let dd = &mut m.deductions[d];
            dd.refunded += wanted;
            dd.credit_refunded += credit_back;
            check!(dd.refunded <= d_tokens, "over-refunded");
            let a = &mut m.accounts[i];
            a.credits += credit_back;
            *a.used.entry(dmonth).or_insert(0) -= plan_back;
            m.ledger_rows += 1;
            m.remember(i, "refund", key, body, Stored::Tx(r.value.transaction));
        }
        Op::ChangePlan { acct, plan } => {
            let a = &mut m.accounts[pick(acct)];
            ok(w.credits_with(|c| c.change_plan(&a.id, plan)))?;
            a.plan = plan;
            if plan == Plan::Free {
                check!(
                    !ok(w.credits_with(|c| c.recharge_settings(&a.id)))?.enabled,
                    "free plan recharges"
                );
            }
        }
        Op::Settings {
            acct,
            enabled,
            pack,
            threshold,
            limit_cents,
        } => {
            let a = &mut m.accounts[pick(acct)];
            let settings = RechargeSettings::new(
                enabled,
                Some(pack),
                Some(TokenAmount::new(threshold).unwrap()),
                Some(Eur::from_cents(limit_cents)),
            )
            .unwrap();
            let result = w.credits_with(|c| c.save_recharge_settings(&a.id, &settings));
            if enabled && a.plan == Plan::Free {
                return expect_refusal(result, "FreePlan");
            }
            if enabled && a.method.is_none() {
                return expect_refusal(result, "PaymentMethodRequired");
            }
            let view = ok(result)?;
            check!(
                view.enabled == enabled && view.last_error.is_none(),
                "settings {view:?}"
            );
            a.limit_cents = limit_cents;
        }
        Op::Check => {
            let report = ok(w.credits_with(|c| c.recharge_check()))?;
            let enabled = w.count("SELECT COUNT(*) FROM auto_recharge WHERE enabled = 1");
            check!(
                report.recharged.len() + report.skipped.len() + report.failed.len()
                    <= report.checked as usize,
                "report {report:?}"
            );
            // Those disabled by a third decline in this run were counted before it.
            check!(report.checked as i64 >= enabled, "report {report:?}");
        }
        Op::Clock { ms } => w.clock.advance_ms(ms),
    }
    Ok(())
}

/// The invariants, after every step.
fn verify(w: &World, m: &mut Model) -> Result<(), TestCaseError> {
    // Auto-recharges the step bought: each within the limit in force, counted
    // with every other one of its month that was not declined. (The table has no
    // rowid to tell the order of writing; a step buys at most one per account, so
    // all the others of its month are earlier ones.)
    let bought =
        w.db.execute(
            "SELECT p.id, p.account_id, p.tokens, p.status,
                    (SELECT SUM(q.amount_cents) FROM purchases q
                     WHERE q.account_id = p.account_id AND q.source = 'auto_recharge'
                       AND q.period = p.period AND q.status <> 'failed')
             FROM purchases p WHERE p.source = 'auto_recharge' ORDER BY p.created_at, p.id",
            &[],
        )
        .unwrap();
    for row in &bought {
        if !m.purchases_seen.insert(row.text(0).unwrap().to_owned()) {
            continue;
        }
        let id = row.text(1).unwrap();
        let a = m.accounts.iter_mut().find(|a| a.id.as_str() == id).unwrap();
        let status = row.text(3).unwrap();
        check!(status != "pending", "a recharge was left pending");
        if status == "succeeded" {
            a.credits += row.tokens(2).unwrap();
            m.ledger_rows += 1;
            let spent = row.int(4).unwrap();
            check!(
                spent <= a.limit_cents,
                "{id}: spent {spent} cents over the limit of {}",
                a.limit_cents
            );
        }
        check!(a.plan != Plan::Free, "{id}: recharged on the free plan");
    }
    // Every manual purchase, deduction and refund is in the model: nothing moved twice.
    check!(
        w.ledger_rows() == m.ledger_rows,
        "ledger has {} rows, model {}",
        w.ledger_rows(),
        m.ledger_rows
    );
    let month = w.now().month().key();
    for a in &m.accounts {
        let s = ok(w.credits_with(|c| c.summary(&a.id)))?;
        check!(
            s.credits.balance_tokens == a.credits,
            "{}: balance {} but model {}",
            a.id,
            s.credits.balance_tokens,
            a.credits
        );
        let used = a.used.get(&month).copied().unwrap_or(0);
        check!(
            s.plan.used_tokens == used,
            "{}: used {} but model {used}",
            a.id,
            s.plan.used_tokens
        );
        check!(
            s.plan.monthly_tokens == a.plan.monthly_tokens(),
            "plan of {}",
            a.id
        );
    }
    let broken = ok(w.audit())?;
    check!(broken.is_empty(), "audit: {broken:#?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_books_balance_whatever_happens(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}
