//! Auto-recharge: its settings, when it buys, its monthly limit and its declines.
//!
//! Rules of API.md that the domain crate owns, with each of their error paths,
//! driven natively on a SQLite file. Every test ends with the books balancing.

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

use std::cell::Cell;

use credits::{
    AccountId, CreditsError, Eur, Pack, Plan, PurchaseSource, RechargeOutcome, RechargeSettings,
    TokenAmount, Transaction,
};
use serde_json::json;
use support::rules::{
    DECLINED, VISA, all_history, auto_purchases, buy, enable_recharge, method, settings,
};
use support::{ChargesThenFails, DeclinesFirst, World, deduction, idem, refused, split};

const DAY_MS: i64 = 86_400_000;

#[test]
fn recharge_settings_are_validated_and_default_to_off() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(!view.enabled);
    assert_eq!((view.pack, view.threshold_tokens), (None, None));
    assert_eq!(view.monthly_limit_eur.to_string(), "50.00");
    assert_eq!(view.spent_this_month_eur.to_string(), "0.00");
    assert_eq!(view.last_error, None);

    let t = Some(TokenAmount::new(1).unwrap());
    assert_eq!(
        refused(RechargeSettings::new(true, None, t, None)),
        "Invalid"
    );
    assert_eq!(
        refused(RechargeSettings::new(true, Some(Pack::Starter), None, None)),
        "Invalid"
    );
    assert!(TokenAmount::new(0).is_err(), "threshold_tokens >= 1");
    assert!(Eur::parse("-1.00").is_err() && Eur::parse("5").is_err());

    // Disabled needs neither; the limit defaults to 50.00; 0.00 is valid.
    let off = RechargeSettings::new(false, None, None, None).unwrap();
    let view = w
        .credits_with(|c| c.save_recharge_settings(&acme, &off))
        .unwrap();
    assert!(!view.enabled);
    assert_eq!(view.monthly_limit_eur.to_string(), "50.00");
    let on = RechargeSettings::new(true, Some(Pack::Plus), t, Some(Eur::parse("0.00").unwrap()))
        .unwrap();
    let view = w
        .credits_with(|c| c.save_recharge_settings(&acme, &on))
        .unwrap();
    assert!(view.enabled);
    assert_eq!(
        (view.pack.as_deref(), view.threshold_tokens),
        (Some("plus"), Some(1))
    );
    assert_eq!(view.monthly_limit_eur.to_string(), "0.00");
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme)).unwrap(),
        view
    );
    w.assert_books_balance();
}

#[test]
fn enabling_auto_recharge_needs_a_paid_plan_then_a_payment_method() {
    let w = World::new();
    let free = w.account("free", Plan::Free);
    let on = settings(Pack::Starter, 1000, "50.00");
    let err = w
        .credits_with(|c| c.save_recharge_settings(&free, &on))
        .unwrap_err();
    assert!(matches!(err, CreditsError::FreePlan(_)), "{err:?}");
    let free_card = w.paying_account("free-card", Plan::Free, VISA);
    assert_eq!(
        refused(w.credits_with(|c| c.save_recharge_settings(&free_card, &on))),
        "FreePlan"
    );
    let pro = w.account("pro", Plan::Pro);
    let err = w
        .credits_with(|c| c.save_recharge_settings(&pro, &on))
        .unwrap_err();
    assert!(
        matches!(err, CreditsError::PaymentMethodRequired),
        "{err:?}"
    );
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.save_recharge_settings(&ghost, &on))),
        "NotFound"
    );
    // Turning it off is allowed on any plan.
    let off = RechargeSettings::new(false, None, None, None).unwrap();
    w.credits_with(|c| c.save_recharge_settings(&free, &off))
        .unwrap();
    assert_eq!(w.credits_with(|c| c.recharge_check()).unwrap().checked, 0);
    w.assert_books_balance();
}

#[test]
fn saving_buys_nothing_and_the_next_evaluation_buys_below_the_threshold() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    // The plan allocation (2,000,000) does not count: credits are 0 < threshold.
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    assert_eq!((w.balance(&acme), w.charges()), (0, 0));
    let outcome = w
        .credits_with(|c| c.evaluate_recharge(&acme, None))
        .unwrap();
    assert_eq!(outcome, RechargeOutcome::Recharged { tokens: 2_500_000 });
    assert_eq!(w.balance(&acme), 2_500_000);
    // Not below any more: nothing more to buy.
    assert_eq!(
        w.credits_with(|c| c.evaluate_recharge(&acme, None))
            .unwrap(),
        RechargeOutcome::NotNeeded
    );
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert_eq!(view.spent_this_month_eur.to_string(), "10.00");
    match &all_history(&w, &acme)[0] {
        Transaction::Purchase { source, pack, .. } => {
            assert_eq!(
                (*source, pack.as_str()),
                (PurchaseSource::AutoRecharge, "standard")
            );
        }
        other => panic!("not a purchase: {other:?}"),
    }
    w.assert_books_balance();
}

#[test]
fn a_balance_equal_to_the_threshold_is_not_below_it() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Starter);
    enable_recharge(&w, &acme, Pack::Starter, 1_000_000, "50.00");
    assert_eq!(
        w.credits_with(|c| c.evaluate_recharge(&acme, None))
            .unwrap(),
        RechargeOutcome::NotNeeded
    );
    // A deduction from the plan only leaves credits where they were.
    let d = w
        .credits_with(|c| c.deduct(&deduction(&acme, 2_000_000, None), None))
        .unwrap()
        .value;
    assert_eq!(d.available_tokens, 1_000_000);
    assert_eq!(auto_purchases(&w, &acme), 0);
    w.assert_books_balance();
}

#[test]
fn a_deduction_crossing_the_threshold_recharges_and_reports_it() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Standard);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    // 2,000,000 plan + 1,600,000 credits: leaves 900,000 credits, below 1,000,000.
    let d = w
        .credits_with(|c| c.deduct(&deduction(&acme, 3_600_000, None), None))
        .unwrap()
        .value;
    assert_eq!(split(&d.transaction), (3_600_000, 2_000_000, 1_600_000));
    assert_eq!(d.available_tokens, 900_000 + 2_500_000);
    assert_eq!(w.balance(&acme), 3_400_000);
    assert_eq!(auto_purchases(&w, &acme), 1);
    let triggered = w.count("SELECT triggered_by FROM purchases WHERE source = 'auto_recharge'");
    assert_eq!(triggered, d.transaction.id().seq());
    // A replay of the deduction answers the same availability.
    let key = idem("k", &json!({"tokens": 1}));
    let first = w
        .credits_with(|c| c.deduct(&deduction(&acme, 3_000_000, None), Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.deduct(&deduction(&acme, 3_000_000, None), Some(&key)))
        .unwrap();
    assert_eq!(again.value, first.value);
    assert_eq!(first.value.available_tokens, 400_000 + 2_500_000);
    w.assert_books_balance();
}

#[test]
fn auto_recharge_never_spends_past_the_monthly_limit() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    // Threshold far above what packs bring: each evaluation buys one more pack.
    enable_recharge(&w, &acme, Pack::Standard, 100_000_000, "25.00");
    let outcomes: Vec<_> = (0..4)
        .map(|_| {
            w.credits_with(|c| c.evaluate_recharge(&acme, None))
                .unwrap()
        })
        .collect();
    let bought = RechargeOutcome::Recharged { tokens: 2_500_000 };
    assert_eq!(
        outcomes,
        [
            bought,
            bought,
            RechargeOutcome::Skipped,
            RechargeOutcome::Skipped
        ]
    );
    assert_eq!(w.balance(&acme), 5_000_000);
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert_eq!(view.spent_this_month_eur.to_string(), "20.00");
    // A new month has a new limit.
    w.clock.set("2026-12-01T00:00:00Z");
    assert_eq!(
        w.credits_with(|c| c.evaluate_recharge(&acme, None))
            .unwrap(),
        bought
    );
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .spent_this_month_eur
            .to_string(),
        "10.00"
    );

    let zero = w.paying_account("zero", Plan::Pro, VISA);
    enable_recharge(&w, &zero, Pack::Starter, 1, "0.00");
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.skipped, ["zero"]);
    assert_eq!(auto_purchases(&w, &zero), 0);
    w.assert_books_balance();
}

#[test]
fn still_below_after_one_pack_the_next_evaluation_buys_again() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 2_500_000, "50.00");
    for expected in [1_000_000, 2_000_000, 3_000_000] {
        let report = w.credits_with(|c| c.recharge_check()).unwrap();
        assert_eq!(report.recharged, ["acme"], "one pack per evaluation");
        assert_eq!(w.balance(&acme), expected);
    }
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(
        (report.checked, report.recharged.len(), report.skipped.len()),
        (1, 0, 0)
    );
    w.assert_books_balance();
}

#[test]
fn evaluations_that_see_the_same_balance_buy_one_pack() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    // The first evaluation's instance dies after charging: its purchase is pending
    // and the balance has not moved.
    let lost = ChargesThenFails(w.sandbox());
    assert!(
        w.credits_paying_with(&lost, |c| c.evaluate_recharge(&acme, None))
            .is_err()
    );
    assert_eq!(w.balance(&acme), 0);
    // Evaluations seeing that same balance buy nothing more.
    for _ in 0..3 {
        assert_eq!(
            w.credits_with(|c| c.evaluate_recharge(&acme, None))
                .unwrap(),
            RechargeOutcome::Skipped
        );
        let d = w
            .credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))
            .unwrap()
            .value;
        assert_eq!(d.available_tokens, w.available(&acme));
    }
    assert_eq!(w.count("SELECT COUNT(*) FROM purchases"), 1);
    w.clock.advance_ms(61_000);
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 1);
    assert!(
        report.recharged.is_empty(),
        "the stale purchase was settled, not a new one bought"
    );
    assert_eq!(
        (w.balance(&acme), w.charges(), auto_purchases(&w, &acme)),
        (1_000_000, 1, 1)
    );
    w.assert_books_balance();
}

#[test]
fn declines_wait_a_day_and_three_in_a_row_disable_auto_recharge() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");

    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(
        (report.checked, report.failed.clone()),
        (1, vec!["acme".to_owned()])
    );
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    let err = view.last_error.expect("last_error after a decline");
    assert_eq!(err.code, "payment_failed");
    assert_eq!(err.at, w.now());
    assert!(view.enabled);
    assert_eq!(view.spent_this_month_eur.to_string(), "0.00");

    // Waiting: skipped (also right after a deduction), until 24 hours have passed.
    w.clock.advance_ms(DAY_MS - 1);
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().skipped,
        ["acme"]
    );
    w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))
        .unwrap();
    assert_eq!(w.count("SELECT COUNT(*) FROM purchases"), 1);
    w.clock.advance_ms(1);
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    w.clock.advance_ms(DAY_MS);
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );

    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(!view.enabled, "disabled after 3 declines in a row");
    let message = view.last_error.unwrap().message;
    assert!(
        message.contains("disabled") && message.contains('3'),
        "{message}"
    );
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 0);
    assert_eq!((w.balance(&acme), w.ledger_rows()), (0, 1));
    w.assert_books_balance();
}

#[test]
fn saving_a_payment_method_ends_the_wait_and_restarts_the_count() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    w.credits_with(|c| c.recharge_check()).unwrap();
    w.clock.advance_ms(DAY_MS);
    w.credits_with(|c| c.recharge_check()).unwrap();
    // Two declines; saving the (same) method clears the error and the wait.
    w.credits_with(|c| c.save_payment_method(&acme, &method(DECLINED)))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .last_error,
        None
    );
    for _ in 0..2 {
        assert_eq!(
            w.credits_with(|c| c.recharge_check()).unwrap().failed,
            ["acme"]
        );
        w.clock.advance_ms(DAY_MS);
    }
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled,
        "the count restarted"
    );
    w.credits_with(|c| c.save_payment_method(&acme, &method(VISA)))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().recharged,
        ["acme"]
    );
    w.assert_books_balance();
}

#[test]
fn saving_the_settings_ends_the_wait_and_restarts_the_count() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    for _ in 0..2 {
        assert_eq!(
            w.credits_with(|c| c.recharge_check()).unwrap().failed,
            ["acme"]
        );
        w.clock.advance_ms(DAY_MS);
    }
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert!(
        !w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    // Re-enabling (the same settings) right away: no wait, a fresh count of three.
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(view.enabled && view.last_error.is_none());
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    // Saving again mid-wait ends the wait.
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().failed,
        ["acme"]
    );
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    w.assert_books_balance();
}

#[test]
fn a_successful_recharge_clears_the_last_error() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let flaky = DeclinesFirst(Cell::new(1));
    let check = || {
        w.credits_paying_with(&flaky, |c| c.recharge_check())
            .unwrap()
    };
    assert_eq!(check().failed, ["acme"]);
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .last_error
            .is_some()
    );
    w.clock.advance_ms(DAY_MS);
    assert_eq!(check().recharged, ["acme"]);
    let view = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert_eq!(view.last_error, None);
    assert_eq!(view.spent_this_month_eur.to_string(), "5.00");
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn the_recharge_check_reports_each_account() {
    let w = World::new();
    let names = ["acme", "globex", "initech", "hooli", "umbrella", "free"];
    let [acme, globex, initech, hooli, umbrella, free] = names.map(|n| {
        w.paying_account(
            n,
            if n == "free" { Plan::Free } else { Plan::Pro },
            if n == "initech" { DECLINED } else { VISA },
        )
    });
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00"); // recharged
    enable_recharge(&w, &globex, Pack::Starter, 500_000, "0.00"); // skipped: limit
    enable_recharge(&w, &initech, Pack::Starter, 500_000, "50.00"); // failed
    buy(&w, &hooli, Pack::Starter);
    enable_recharge(&w, &hooli, Pack::Starter, 500_000, "50.00"); // not below
    let _ = (&umbrella, &free); // never enabled
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 4);
    assert_eq!(report.recharged, ["acme"]);
    assert_eq!(report.skipped, ["globex"]);
    assert_eq!(report.failed, ["initech"]);
    // Next run: initech waits, acme is above the threshold now.
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!((report.checked, report.recharged.len()), (4, 0));
    assert_eq!(report.skipped, ["globex", "initech"]);
    assert!(report.failed.is_empty());
    w.assert_books_balance();
}
