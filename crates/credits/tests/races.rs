//! Races: threads, each with its own SQLite connection to one database file, as
//! instances of the component would be. Nothing lost, nothing doubled, no
//! `database is locked` reaching a caller, and the books balance after each race.

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

use std::path::Path;
use std::sync::Barrier;
use std::thread;

use credits::{CreditsError, Eur, Pack, Plan, RechargeOutcome, RechargeSettings, TokenAmount};
use serde_json::json;
use support::{World, deduction, idem, kind, refund, split};

const THREADS: usize = 8;
const VISA: &str = "pm_card_visa";

/// Runs `f` on `THREADS` threads, each on its own connection, released together.
fn race<T: Send>(path: &Path, f: impl Fn(usize, &World) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    let world = World::open(path);
                    barrier.wait();
                    f(i, &world)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Only the refusals a rule gives may reach a caller: never a storage error.
fn expect_refusal(err: &CreditsError, variant: &str) {
    assert_eq!(
        kind(err),
        variant,
        "unexpected error reached a caller: {err:?}"
    );
}

#[test]
fn racing_deductions_never_overdraw_and_exactly_the_right_number_succeed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap();
    // 2,000,000 plan + 1,000,000 credits; 8 × 60 attempts of 7,000 tokens.
    let per = 7_000;
    let results = race(&w.path, |_, world| {
        let mut ok = 0u64;
        for _ in 0..60 {
            match world.credits_with(|c| c.deduct(&deduction(&acme, per, None), None)) {
                Ok(_) => ok += 1,
                Err(e) => expect_refusal(&e, "InsufficientBalance"),
            }
        }
        ok
    });
    let succeeded: u64 = results.iter().sum();
    assert_eq!(succeeded, 3_000_000 / per);
    assert_eq!(w.available(&acme), 3_000_000 % per);
    assert_eq!(w.balance(&acme), 3_000_000 % per);
    assert_eq!(w.plan_remaining(&acme), 0);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM ledger WHERE kind = 'deduction'"),
        428
    );
    w.assert_books_balance();
}

#[test]
fn racing_purchases_are_each_charged_and_granted_once() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let declined = w.paying_account("declined", Plan::Pro, "pm_card_chargeDeclined");
    race(&w.path, |i, world| {
        for _ in 0..5 {
            world
                .credits_with(|c| c.purchase(&acme, Pack::Starter, None))
                .unwrap();
            let err = world
                .credits_with(|c| c.purchase(&declined, Pack::Pro, None))
                .unwrap_err();
            expect_refusal(&err, "PaymentDeclined");
        }
        i
    });
    let n = (THREADS * 5) as i64;
    assert_eq!(w.balance(&acme), 1_000_000 * n as u64);
    assert_eq!(w.balance(&declined), 0);
    assert_eq!(w.charges(), 2 * n);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM ledger WHERE kind = 'purchase'"),
        n
    );
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'failed'"),
        n
    );
    w.assert_books_balance();
}

#[test]
fn racing_refunds_of_one_deduction_never_refund_more_than_it_took() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap();
    w.credits_with(|c| c.deduct(&deduction(&acme, 2_000_000 - 400, None), None))
        .unwrap();
    let d = w
        .credits_with(|c| c.deduct(&deduction(&acme, 1_000, None), None))
        .unwrap()
        .value
        .transaction;
    assert_eq!(split(&d), (1_000, 400, 600));
    let refund_in = |world: &World, tokens| match world
        .credits_with(|c| c.refund(&refund(&acme, &d, tokens), None))
    {
        Ok(r) => split(&r.value.transaction).0,
        Err(e) => {
            expect_refusal(&e, "RefundExceedsDeduction");
            0
        }
    };
    let mut results = race(&w.path, |_, world| {
        (0..10).map(|_| refund_in(world, Some(17))).sum::<u64>()
    });
    // Then everyone asks for the rest at once; one of them gets it.
    results.extend(race(&w.path, |_, world| refund_in(world, None)));
    assert_eq!(results.iter().sum::<u64>(), 1_000);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM ledger WHERE kind = 'refund' AND tokens = 17"),
        1_000 / 17
    );
    assert_eq!(
        w.count("SELECT COUNT(*) FROM ledger WHERE kind = 'refund'"),
        1_000 / 17 + 1
    );
    // Everything came back to where it was taken from.
    assert_eq!(
        (w.balance(&acme), w.plan_remaining(&acme)),
        (1_000_000 - 600 + 600, 400)
    );
    w.assert_books_balance();
}

#[test]
fn racing_retries_of_one_key_write_once_and_answer_alike() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let deduct_key = idem("job-1", &json!({"tokens": 999}));
    let buy_key = idem("buy-1", &json!({"pack": "plus"}));
    let results = race(&w.path, |_, world| {
        let mut answers = Vec::new();
        for _ in 0..4 {
            let d = world
                .credits_with(|c| c.deduct(&deduction(&acme, 999, None), Some(&deduct_key)))
                .unwrap();
            let p = world
                .credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&buy_key)))
                .unwrap();
            answers.push((d, p));
        }
        answers
    });
    let all: Vec<_> = results.into_iter().flatten().collect();
    let (first_d, first_p) = &all[0];
    for (d, p) in &all {
        assert_eq!(d.value.transaction, first_d.value.transaction);
        assert_eq!(p.value.transaction, first_p.value.transaction);
    }
    assert_eq!(all.iter().filter(|(d, _)| !d.replayed).count(), 1);
    assert_eq!(all.iter().filter(|(_, p)| !p.replayed).count(), 1);
    // And a refund key raced the same way.
    let refund_key = idem("refund-1", &json!({"tokens": 1}));
    let refunds = race(&w.path, |_, world| {
        world
            .credits_with(|c| {
                c.refund(
                    &refund(&acme, &first_d.value.transaction, Some(1)),
                    Some(&refund_key),
                )
            })
            .unwrap()
    });
    assert!(refunds.iter().all(|r| r.value == refunds[0].value));
    assert_eq!(refunds.iter().filter(|r| !r.replayed).count(), 1);

    assert_eq!(w.ledger_rows(), 3);
    assert_eq!(w.charges(), 1);
    assert_eq!(w.balance(&acme), 7_000_000);
    assert_eq!(w.plan_remaining(&acme), 2_000_000 - 999 + 1);
    w.assert_books_balance();
}

#[test]
fn racing_recharge_evaluations_of_one_balance_buy_one_pack() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let settings = RechargeSettings::new(
        true,
        Some(Pack::Standard),
        Some(TokenAmount::new(500_000).unwrap()),
        Some(Eur::parse("50.00").unwrap()),
    )
    .unwrap();
    // Use the plan up first, so later deductions take credits.
    w.credits_with(|c| c.deduct(&deduction(&acme, 2_000_000, None), None))
        .unwrap();
    w.credits_with(|c| c.save_recharge_settings(&acme, &settings))
        .unwrap();
    for round in 1..=4 {
        let outcomes = race(&w.path, |i, world| {
            if i % 2 == 0 {
                world
                    .credits_with(|c| c.evaluate_recharge(&acme, None))
                    .unwrap()
            } else {
                let report = world.credits_with(|c| c.recharge_check()).unwrap();
                assert_eq!(report.checked, 1);
                assert!(report.failed.is_empty());
                if report.recharged.is_empty() {
                    RechargeOutcome::NotNeeded
                } else {
                    RechargeOutcome::Recharged { tokens: 2_500_000 }
                }
            }
        });
        let bought = outcomes
            .iter()
            .filter(|o| matches!(o, RechargeOutcome::Recharged { .. }))
            .count();
        assert_eq!(bought, 1, "round {round}: {outcomes:?}");
        assert_eq!(w.count("SELECT COUNT(*) FROM purchases"), i64::from(round));
        assert_eq!(
            w.balance(&acme),
            2_600_000 - 100_000 * u64::from(round == 1)
        );
        // Back below the threshold for the next round, with auto-recharge paused so
        // the deduction does not buy by itself.
        let off = RechargeSettings::new(false, None, None, None).unwrap();
        w.credits_with(|c| c.save_recharge_settings(&acme, &off))
            .unwrap();
        let balance = w.balance(&acme);
        w.credits_with(|c| c.deduct(&deduction(&acme, balance - 100_000, None), None))
            .unwrap();
        w.credits_with(|c| c.save_recharge_settings(&acme, &settings))
            .unwrap();
    }
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .spent_this_month_eur
            .to_string(),
        "40.00"
    );
    w.assert_books_balance();
}

#[test]
fn racing_deductions_that_cross_the_threshold_stay_within_the_monthly_limit() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let other = w.paying_account("other", Plan::Team, VISA);
    let settings = RechargeSettings::new(
        true,
        Some(Pack::Starter),
        Some(TokenAmount::new(600_000).unwrap()),
        Some(Eur::parse("20.00").unwrap()),
    )
    .unwrap();
    w.credits_with(|c| c.save_recharge_settings(&acme, &settings))
        .unwrap();
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap();
    w.credits_with(|c| c.deduct(&deduction(&acme, 2_000_000, None), None))
        .unwrap();
    let results = race(&w.path, |i, world| {
        let mut ok = 0u64;
        for _ in 0..40 {
            let account = if i == 0 { &other } else { &acme };
            match world.credits_with(|c| c.deduct(&deduction(account, 50_000, None), None)) {
                Ok(_) => ok += 1,
                Err(e) => expect_refusal(&e, "InsufficientBalance"),
            }
        }
        ok
    });
    // A deduction racing a recharge under way may find the credits short; once the
    // racers are done, deduct what is left, one at a time.
    let mut after = 0;
    while w
        .credits_with(|c| c.deduct(&deduction(&acme, 50_000, None), None))
        .is_ok()
    {
        after += 1;
    }
    // 1,000,000 bought by hand + at most 4 starter packs (€20.00) by auto-recharge.
    let spent = w.count(
        "SELECT COALESCE(SUM(amount_cents), 0) FROM purchases
         WHERE account_id = 'acme' AND source = 'auto_recharge' AND status = 'succeeded'",
    );
    assert_eq!(spent, 2000, "the limit was reached, and not passed");
    let acme_ok: u64 = results[1..].iter().sum::<u64>() + after;
    assert_eq!(acme_ok * 50_000 + w.balance(&acme), 5_000_000);
    assert_eq!(results[0], 40);
    w.assert_books_balance();
}
