//! Random sequences of holds mixed with everything else against a simple model:
//! holds made, settled (for nothing, part, all, too much), voided, read and
//! retried, beside deductions, refunds, purchases, plan changes, recharge checks
//! and clock jumps across months and across expiry.
//!
//! Every answer is checked against the model (which learns only from what the
//! operations answered), and after every step: `audit()` is empty, the balance is
//! the sum of the ledger and never negative, plan use never rises above the
//! allocation, `available_tokens` = remaining + balance − `held_tokens`, and what
//! live holds reserve of credits is never more than the credit balance.

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

use credits::{
    AccountId, CreditsError, Database, Hold, HoldStatus, Pack, Plan, SettledTokens, Transaction,
    Value,
};
use proptest::prelude::*;
use serde_json::json;
use support::rules::{VISA, hold_request};
use support::{World, deduction, idem, kind, refund, split};

const ACCOUNTS: usize = 3;
const LIFETIMES: [u64; 5] = [1, 60, 600, 3_600, 86_400];

#[derive(Debug, Clone)]
enum Op {
    Hold {
        acct: usize,
        tokens: u64,
        lifetime: usize,
        keyed: bool,
    },
    Retry {
        pick: usize,
        same_body: bool,
    },
    Settle {
        pick: usize,
        foreign: bool,
        /// 0: nothing, 1: part, 2: all, 3: one more than held.
        how: u8,
        part: u64,
    },
    Void {
        pick: usize,
        foreign: bool,
    },
    Read {
        pick: usize,
        foreign: bool,
    },
    Deduct {
        acct: usize,
        tokens: u64,
    },
    Refund {
        pick: usize,
        tokens: Option<u64>,
    },
    Buy {
        acct: usize,
        pack: Pack,
    },
    ChangePlan {
        acct: usize,
        plan: Plan,
    },
    Check,
    Clock {
        ms: i64,
    },
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![Just(Plan::Free), Just(Plan::Pro), Just(Plan::Team)]
}

fn tokens() -> impl Strategy<Value = u64> {
    prop_oneof![1..1_000u64, 1_000..500_000u64, 500_000..6_000_000u64]
}

fn op() -> impl Strategy<Value = Op> {
    let acct = 0..ACCOUNTS;
    prop_oneof![
        8 => (acct.clone(), tokens(), 0..LIFETIMES.len(), prop::bool::weighted(0.3))
            .prop_map(|(acct, tokens, lifetime, keyed)| Op::Hold { acct, tokens, lifetime, keyed }),
        2 => (any::<usize>(), prop::bool::weighted(0.7))
            .prop_map(|(pick, same_body)| Op::Retry { pick, same_body }),
        6 => (any::<usize>(), prop::bool::weighted(0.1), 0..4u8, any::<u64>())
            .prop_map(|(pick, foreign, how, part)| Op::Settle { pick, foreign, how, part }),
        3 => (any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(pick, foreign)| Op::Void { pick, foreign }),
        1 => (any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, foreign)| Op::Read { pick, foreign }),
        5 => (acct.clone(), tokens()).prop_map(|(acct, tokens)| Op::Deduct { acct, tokens }),
        3 => (
            any::<usize>(),
            prop_oneof![Just(None), (1..2_000u64).prop_map(Some), (1..3_000_000u64).prop_map(Some)]
        )
            .prop_map(|(pick, tokens)| Op::Refund { pick, tokens }),
        2 => (acct.clone(), prop_oneof![Just(Pack::Starter), Just(Pack::Standard), Just(Pack::Plus)])
            .prop_map(|(acct, pack)| Op::Buy { acct, pack }),
        1 => (acct, plan()).prop_map(|(acct, plan)| Op::ChangePlan { acct, plan }),
        1 => Just(Op::Check),
        4 => prop::sample::select(vec![
                1_000i64, 30_000, 600_000, 3_600_000, 12 * 3_600_000, 10 * 86_400_000, 25 * 86_400_000
            ])
            .prop_map(|ms| Op::Clock { ms }),
    ]
}

/// What the model knows of one account: what the `accounts` row should hold.
struct Account {
    id: AccountId,
    plan: Plan,
    credits: u64,
    /// The newest month with plan use, and its use.
    plan_period: Option<String>,
    plan_used: u64,
}

impl Account {
    /// The allocation left in `month` (a month before the newest with use has none).
    fn plan_left(&self, month: &str) -> u64 {
        let monthly = self.plan.monthly_tokens();
        match self.plan_period.as_deref() {
            None => monthly,
            Some(p) if p < month => monthly,
            Some(p) if p == month => monthly.saturating_sub(self.plan_used),
            Some(_) => 0,
        }
    }

    /// A deduction's or refund's plan tokens of `period`, as the ledger applies them.
    fn apply_plan(&mut self, period: &str, plan: u64, deducted: bool) {
        if plan == 0 || self.plan_period.as_deref().is_some_and(|p| period < p) {
            return;
        }
        if deducted {
            if self.plan_period.as_deref() == Some(period) {
                self.plan_used += plan;
            } else {
                self.plan_period = Some(period.to_owned());
                self.plan_used = plan;
            }
        } else {
            self.plan_used -= plan;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    No,
    Settled(u64),
    Voided,
}

struct ModelHold {
    acct: usize,
    hold: Hold,
    period: String,
    ended: Ended,
    /// The key it was made with, its body and the answer's availability.
    key: Option<(String, serde_json::Value, u64)>,
}

impl ModelHold {
    fn live(&self, now: i64) -> bool {
        self.ended == Ended::No && self.hold.expires_at.millis() > now
    }

    fn status(&self, now: i64) -> HoldStatus {
        match self.ended {
            Ended::Settled(_) => HoldStatus::Settled,
            Ended::Voided => HoldStatus::Voided,
            Ended::No if self.live(now) => HoldStatus::Held,
            Ended::No => HoldStatus::Expired,
        }
    }
}

/// A hold to act on: mostly one of the newest three (still live more often),
/// sometimes any.
fn chosen(m: &Model, pick: usize) -> Option<usize> {
    let n = m.holds.len();
    if n == 0 {
        None
    } else if !pick.is_multiple_of(4) {
        Some(n - 1 - (pick / 4) % n.min(3))
    } else {
        Some((pick / 4) % n)
    }
}

struct Deducted {
    acct: usize,
    tx: Transaction,
    period: String,
    refunded: u64,
    credit_refunded: u64,
}

struct Model {
    accounts: Vec<Account>,
    holds: Vec<ModelHold>,
    deductions: Vec<Deducted>,
    ledger_rows: i64,
    keys: u32,
}

impl Model {
    /// `(plan of this month, credit)` that live holds of the account reserve.
    fn held(&self, acct: usize, month: &str, now: i64) -> (u64, u64) {
        self.holds
            .iter()
            .filter(|h| h.acct == acct && h.live(now))
            .fold((0, 0), |(p, c), h| {
                (
                    p + if h.period == month {
                        h.hold.plan_tokens
                    } else {
                        0
                    },
                    c + h.hold.credit_tokens,
                )
            })
    }

    /// `(remaining, balance, held, available)` as the summary must show them.
    fn figures(&self, acct: usize, month: &str, now: i64) -> (u64, u64, u64, u64) {
        let a = &self.accounts[acct];
        let left = a.plan_left(month);
        let (plan_held, credit_held) = self.held(acct, month, now);
        let held = plan_held.min(left) + credit_held.min(a.credits);
        (left, a.credits, held, left + a.credits - held)
    }

    /// How a deduction or a new hold of `tokens` would split, if it fits.
    fn split_new(&self, acct: usize, tokens: u64, month: &str, now: i64) -> Option<(u64, u64)> {
        let a = &self.accounts[acct];
        let (plan_held, credit_held) = self.held(acct, month, now);
        let plan = tokens.min(a.plan_left(month).saturating_sub(plan_held));
        let credit = tokens - plan;
        (i128::from(credit) <= i128::from(a.credits) - i128::from(credit_held))
            .then_some((plan, credit))
    }
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(fail(format!($($fmt)+)));
        }
    };
}

fn expect_refusal<T: std::fmt::Debug>(
    result: Result<T, CreditsError>,
    variant: &str,
) -> Result<(), TestCaseError> {
    match result {
        Err(e) if kind(&e) == variant => Ok(()),
        other => Err(fail(format!("expected {variant}, got {other:?}"))),
    }
}

fn ok<T>(result: Result<T, CreditsError>) -> Result<T, TestCaseError> {
    result.map_err(|e| fail(format!("unexpected error: {e:?}")))
}

fn run(plans: &[Plan], ops: &[Op]) -> Result<(), TestCaseError> {
    let w = World::new();
    // Four hours before the month ends, so that holds outlive it.
    w.clock.set("2026-11-30T20:00:00Z");
    let mut m = Model {
        accounts: Vec::new(),
        holds: Vec::new(),
        deductions: Vec::new(),
        ledger_rows: 0,
        keys: 0,
    };
    for (n, &plan) in plans.iter().enumerate() {
        let id = w.paying_account(&format!("a{n}"), plan, VISA);
        m.accounts.push(Account {
            id,
            plan,
            credits: 0,
            plan_period: None,
            plan_used: 0,
        });
    }
    let mut plan_seen = vec![(None, 0i64); plans.len()];
    for op in ops {
        step(&w, &mut m, op).map_err(|e| fail(format!("{op:?}: {e}")))?;
        verify(&w, &m, &mut plan_seen).map_err(|e| fail(format!("after {op:?}: {e}")))?;
    }
    Ok(())
}

#[allow(clippy::too_many_lines)]
fn step(w: &World, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let now = w.now().millis();
    let month = w.now().month().key();
    match *op {
        Op::Hold {
            acct,
            tokens,
            lifetime,
            keyed,
        } => {
            let a = &m.accounts[acct];
            let body = json!({"account_id": a.id.as_str(), "tokens": tokens, "n": m.keys});
            let key = keyed.then(|| format!("k{}", m.keys));
            m.keys += 1;
            let idem_key = key.as_ref().map(|k| idem(k, &body));
            let req = hold_request(&a.id, tokens, Some(LIFETIMES[lifetime]));
            let result = w.credits_with(|c| c.create_hold(&req, idem_key.as_ref()));
            let Some((plan, credit)) = m.split_new(acct, tokens, &month, now) else {
                return expect_refusal(result, "InsufficientBalance");
            };
            let r = ok(result)?;
            let h = &r.value.hold;
            check!(!r.replayed, "fresh hold replayed");
            check!(
                (h.tokens, h.plan_tokens, h.credit_tokens) == (tokens, plan, credit),
                "hold of {tokens}: {h:?}, expected {plan} + {credit}"
            );
            check!(
                h.status == HoldStatus::Held
                    && h.created_at.millis() == now
                    && h.expires_at.millis() == now + LIFETIMES[lifetime] as i64 * 1_000,
                "{h:?}"
            );
            let available = r.value.available_tokens;
            m.holds.push(ModelHold {
                acct,
                hold: r.value.hold,
                period: month.clone(),
                ended: Ended::No,
                key: key.map(|k| (k, body, available)),
            });
            let expected = m.figures(acct, &month, now).3;
            check!(
                available == expected,
                "answered {available}, model {expected}"
            );
        }
        Op::Retry { pick, same_body } => {
            let keyed: Vec<usize> = (0..m.holds.len())
                .filter(|&i| m.holds[i].key.is_some())
                .collect();
            let Some(&i) = keyed.get(pick % keyed.len().max(1)) else {
                return Ok(());
            };
            let mh = &m.holds[i];
            let (key, body, available) = mh.key.clone().unwrap();
            let a = &m.accounts[mh.acct];
            let (tokens, body) = if same_body {
                (mh.hold.tokens, body)
            } else {
                (mh.hold.tokens + 1, json!({"other": body}))
            };
            let req = hold_request(&a.id, tokens, Some(60));
            let result = w.credits_with(|c| c.create_hold(&req, Some(&idem(&key, &body))));
            if !same_body {
                return expect_refusal(result, "IdempotencyKeyReused");
            }
            let r = ok(result)?;
            check!(
                r.replayed
                    && r.value.hold.id == mh.hold.id
                    && r.value.available_tokens == available,
                "replay {r:?}"
            );
        }
        Op::Settle {
            pick,
            foreign,
            how,
            part,
        } => {
            let Some(i) = chosen(m, pick) else {
                return Ok(());
            };
            let owner = m.holds[i].acct;
            let asker = if foreign {
                (owner + 1) % ACCOUNTS
            } else {
                owner
            };
            let h = &m.holds[i];
            let tokens = match how {
                0 => 0,
                1 => part % (h.hold.tokens + 1),
                2 => h.hold.tokens,
                _ => h.hold.tokens + 1,
            };
            let result = w.credits_with(|c| {
                c.settle_hold(
                    &m.accounts[asker].id,
                    Some(&h.hold.id),
                    SettledTokens::new(tokens).unwrap(),
                    None,
                )
            });
            if foreign {
                return expect_refusal(result, "NotFound");
            }
            if !h.live(now) {
                return expect_refusal(result, "HoldNotHeld");
            }
            if tokens > h.hold.tokens {
                return expect_refusal(result, "HoldExceeded");
            }
            let answered = if tokens == 0 {
                let r = ok(result)?;
                check!(r.value.transaction.is_none(), "{r:?}");
                m.holds[i].ended = Ended::Settled(0);
                r.value.available_tokens
            } else {
                let a = &m.accounts[owner];
                let plan_left = match a.plan_period.as_deref() {
                    None => a.plan.monthly_tokens(),
                    Some(p) if p < h.period.as_str() => a.plan.monthly_tokens(),
                    Some(p) if p == h.period => a.plan.monthly_tokens().saturating_sub(a.plan_used),
                    Some(_) => h.hold.plan_tokens,
                };
                let plan = tokens.min(h.hold.plan_tokens).min(plan_left);
                let credit = tokens - plan;
                let other_credit_held = m.held(owner, &month, now).1 - h.hold.credit_tokens;
                if i128::from(credit) > i128::from(a.credits) - i128::from(other_credit_held) {
                    return expect_refusal(result, "InsufficientBalance");
                }
                let r = ok(result)?;
                let tx = r.value.transaction.clone().unwrap();
                check!(
                    split(&tx) == (tokens, plan, credit),
                    "settle {tokens} of {:?}: {tx:?}",
                    h.hold
                );
                check!(
                    matches!(&tx, Transaction::Deduction { hold_id: Some(id), .. } if id == h.hold.id.as_str()),
                    "{tx:?}"
                );
                let period = h.period.clone();
                let a = &mut m.accounts[owner];
                a.credits -= credit;
                a.apply_plan(&period, plan, true);
                m.ledger_rows += 1;
                m.deductions.push(Deducted {
                    acct: owner,
                    tx,
                    period,
                    refunded: 0,
                    credit_refunded: 0,
                });
                m.holds[i].ended = Ended::Settled(tokens);
                check!(
                    r.value.hold.settled_tokens == Some(tokens),
                    "{:?}",
                    r.value.hold
                );
                r.value.available_tokens
            };
            let expected = m.figures(owner, &month, now).3;
            check!(
                answered == expected,
                "available {answered}, model {expected}"
            );
        }
        Op::Void { pick, foreign } => {
            let Some(i) = chosen(m, pick) else {
                return Ok(());
            };
            let owner = m.holds[i].acct;
            let asker = if foreign {
                (owner + 1) % ACCOUNTS
            } else {
                owner
            };
            let h = &m.holds[i];
            let result =
                w.credits_with(|c| c.void_hold(&m.accounts[asker].id, Some(&h.hold.id), None));
            if foreign {
                return expect_refusal(result, "NotFound");
            }
            if !h.live(now) {
                return expect_refusal(result, "HoldNotHeld");
            }
            let r = ok(result)?;
            m.holds[i].ended = Ended::Voided;
            let expected = m.figures(owner, &month, now).3;
            check!(
                r.value.hold.status == HoldStatus::Voided && r.value.available_tokens == expected,
                "void {r:?}, model available {expected}"
            );
        }
        Op::Read { pick, foreign } => {
            let Some(i) = chosen(m, pick) else {
                return Ok(());
            };
            let h = &m.holds[i];
            let asker = if foreign {
                (h.acct + 1) % ACCOUNTS
            } else {
                h.acct
            };
            let result = w.credits_with(|c| c.hold(&m.accounts[asker].id, Some(&h.hold.id)));
            if foreign {
                return expect_refusal(result, "NotFound");
            }
            let read = ok(result)?.hold;
            check!(read.status == h.status(now), "{read:?}");
        }
        Op::Deduct { acct, tokens } => {
            let a = &m.accounts[acct];
            let result = w.credits_with(|c| c.deduct(&deduction(&a.id, tokens, None), None));
            let Some((plan, credit)) = m.split_new(acct, tokens, &month, now) else {
                return expect_refusal(result, "InsufficientBalance");
            };
            let r = ok(result)?;
            check!(
                split(&r.value.transaction) == (tokens, plan, credit),
                "deduction of {tokens}: {:?}, expected {plan} + {credit}",
                r.value.transaction
            );
            let a = &mut m.accounts[acct];
            a.credits -= credit;
            a.apply_plan(&month, plan, true);
            m.ledger_rows += 1;
            m.deductions.push(Deducted {
                acct,
                tx: r.value.transaction,
                period: month.clone(),
                refunded: 0,
                credit_refunded: 0,
            });
            let expected = m.figures(acct, &month, now).3;
            check!(
                r.value.available_tokens == expected,
                "available {}, model {expected}",
                r.value.available_tokens
            );
        }
        Op::Refund { pick, tokens } => {
            let Some(d) = (!m.deductions.is_empty()).then(|| pick % m.deductions.len()) else {
                return Ok(());
            };
            let dd = &m.deductions[d];
            let acct = dd.acct;
            let result =
                w.credits_with(|c| c.refund(&refund(&m.accounts[acct].id, &dd.tx, tokens), None));
            let (d_tokens, _, d_credit) = split(&dd.tx);
            let left = d_tokens - dd.refunded;
            let wanted = tokens.unwrap_or(left);
            if wanted == 0 || wanted > left {
                return expect_refusal(result, "RefundExceedsDeduction");
            }
            let r = ok(result)?;
            let a = &m.accounts[acct];
            let credit_back = wanted.min(d_credit - dd.credit_refunded);
            let plan_back = if dd.period == month
                && a.plan_period
                    .as_deref()
                    .is_none_or(|p| dd.period.as_str() >= p)
            {
                wanted - credit_back
            } else {
                0
            };
            check!(
                split(&r.value.transaction) == (wanted, plan_back, credit_back),
                "refund of {wanted}: {:?}",
                r.value.transaction
            );
            let period = dd.period.clone();
            let dd = &mut m.deductions[d];
            dd.refunded += wanted;
            dd.credit_refunded += credit_back;
            let a = &mut m.accounts[acct];
            a.credits += credit_back;
            a.apply_plan(&period, plan_back, false);
            m.ledger_rows += 1;
        }
        Op::Buy { acct, pack } => {
            let a = &mut m.accounts[acct];
            let result = w.credits_with(|c| c.purchase(&a.id, pack, None));
            if a.plan == Plan::Free {
                return expect_refusal(result, "FreePlan");
            }
            ok(result)?;
            a.credits += pack.tokens();
            m.ledger_rows += 1;
        }
        Op::ChangePlan { acct, plan } => {
            let a = &mut m.accounts[acct];
            ok(w.credits_with(|c| c.change_plan(&a.id, plan)))?;
            a.plan = plan;
        }
        Op::Check => {
            let report = ok(w.credits_with(|c| c.recharge_check()))?;
            check!(report.failed.is_empty(), "{report:?}");
            let unrecorded = w.count(&format!(
                "SELECT COUNT(*) FROM holds WHERE status = 'held' AND expires_at <= {now}"
            ));
            check!(
                unrecorded == 0,
                "{unrecorded} expired holds left unrecorded"
            );
        }
        Op::Clock { ms } => w.clock.advance_ms(ms),
    }
    Ok(())
}

/// The invariants, after every step. `plan_seen` is each account's plan month and
/// use when last verified: use may stand above an allocation moved down, never
/// rise there.
fn verify(
    w: &World,
    m: &Model,
    plan_seen: &mut [(Option<String>, i64)],
) -> Result<(), TestCaseError> {
    let now = w.now().millis();
    let month = w.now().month().key();
    let broken = ok(w.audit())?;
    check!(broken.is_empty(), "audit: {broken:#?}");
    check!(
        w.ledger_rows() == m.ledger_rows,
        "ledger has {} rows, model {}",
        w.ledger_rows(),
        m.ledger_rows
    );
    for (n, a) in m.accounts.iter().enumerate() {
        let s = ok(w.credits_with(|c| c.summary(&a.id)))?;
        let shown = (
            s.plan.remaining_tokens,
            s.credits.balance_tokens,
            s.held_tokens,
            s.available_tokens,
        );
        check!(
            shown == m.figures(n, &month, now),
            "{}: (remaining, balance, held, available) {shown:?}, model {:?}",
            a.id,
            m.figures(n, &month, now)
        );
        check!(
            shown.3 == shown.0 + shown.1 - shown.2,
            "{}: available {shown:?}",
            a.id
        );
        let rows =
            w.db.execute(
                "SELECT a.credit_balance,
                        (SELECT COALESCE(SUM(CASE kind WHEN 'deduction' THEN -credit_tokens
                                                       ELSE credit_tokens END), 0)
                         FROM ledger WHERE account_id = a.id),
                        (SELECT COALESCE(SUM(credit_tokens), 0) FROM holds
                         WHERE account_id = a.id AND status = 'held' AND expires_at > ?2),
                        a.plan_period, a.plan_used, a.monthly_tokens
                 FROM accounts a WHERE a.id = ?1",
                &[a.id.as_str().into(), Value::Integer(now)],
            )
            .unwrap();
        let row = &rows[0];
        let (balance, ledger_sum, credit_held) = (
            row.int(0).unwrap(),
            row.int(1).unwrap(),
            row.int(2).unwrap(),
        );
        check!(balance >= 0, "{}: balance {balance}", a.id);
        check!(
            balance == ledger_sum,
            "{}: balance {balance}, ledger {ledger_sum}",
            a.id
        );
        check!(
            credit_held <= balance,
            "{}: {credit_held} credit tokens held of {balance}",
            a.id
        );
        let period = row.opt_text(3).unwrap().map(str::to_owned);
        let (used, monthly) = (row.int(4).unwrap(), row.int(5).unwrap());
        let seen = &mut plan_seen[n];
        check!(
            used <= monthly || (seen.0 == period && used <= seen.1),
            "{}: plan use rose to {used} of {monthly} ({period:?}; was {seen:?})",
            a.id
        );
        check!(
            period == a.plan_period && used == a.plan_used as i64,
            "{}: plan {period:?} {used}, model {:?} {}",
            a.id,
            a.plan_period,
            a.plan_used
        );
        *seen = (period, used);
    }
    for h in &m.holds {
        let read = ok(w.credits_with(|c| c.hold(&m.accounts[h.acct].id, Some(&h.hold.id))))?.hold;
        let settled = match h.ended {
            Ended::Settled(t) => Some(t),
            _ => None,
        };
        check!(
            read.status == h.status(now) && read.settled_tokens == settled,
            "{read:?}, model {:?} at {now}",
            h.ended
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn holds_keep_the_books_whatever_happens(
        plans in prop::collection::vec(plan(), ACCOUNTS),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(&plans, &ops)?;
    }
}
