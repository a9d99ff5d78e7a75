//! Plans: a change applies at once; the free plan has no auto-recharge.
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

use credits::{AccountId, Pack, Plan};
use support::rules::{VISA, deduct, enable_recharge};
use support::{World, deduction, refused};

#[test]
fn a_plan_change_applies_to_the_current_month_at_once() {
    let w = World::new();
    let acme = w.account("acme", Plan::Pro);
    deduct(&w, &acme, 1_500_000);
    assert_eq!(w.plan_remaining(&acme), 500_000);

    w.credits_with(|c| c.change_plan(&acme, Plan::Team))
        .unwrap();
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!(
        (
            s.plan.name.as_str(),
            s.plan.monthly_tokens,
            s.plan.used_tokens
        ),
        ("team", 10_000_000, 1_500_000)
    );
    assert_eq!(s.plan.remaining_tokens, 8_500_000);
    assert_eq!(s.available_tokens, 8_500_000);

    // Down to free: used exceeds the allocation, remaining stops at 0.
    w.credits_with(|c| c.change_plan(&acme, Plan::Free))
        .unwrap();
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!((s.plan.remaining_tokens, s.available_tokens), (0, 0));
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))),
        "InsufficientBalance"
    );

    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.change_plan(&ghost, Plan::Pro))),
        "NotFound"
    );
    w.assert_books_balance();
}

#[test]
fn moving_to_free_disables_auto_recharge() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    assert!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    w.credits_with(|c| c.change_plan(&acme, Plan::Free))
        .unwrap();
    assert!(
        !w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    // Back on a paid plan it stays off, and nothing is bought.
    w.credits_with(|c| c.change_plan(&acme, Plan::Pro)).unwrap();
    assert!(
        !w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .enabled
    );
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(report.checked, 0);
    assert_eq!(w.balance(&acme), 0);
    w.assert_books_balance();
}

#[test]
fn a_clock_moved_back_behind_the_newest_month_with_plan_use_finds_no_plan_tokens() {
    let w = World::new();
    let acme = w.account("acme", Plan::Pro);
    let november = deduct(&w, &acme, 1_000);
    w.clock.set("2026-12-05T10:00:00Z");
    deduct(&w, &acme, 2_000);
    // Back in November (only a test clock can go there): the month is over, so
    // the summary, deductions and refunds all agree that no plan tokens are left
    // and none come back.
    w.clock.set("2026-11-28T10:00:00Z");
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!((s.plan.remaining_tokens, s.available_tokens), (0, 0));
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))),
        "InsufficientBalance"
    );
    let back = w
        .credits_with(|c| c.refund(&support::refund(&acme, &november, None), None))
        .unwrap()
        .value
        .transaction;
    assert_eq!(support::split(&back), (1_000, 0, 0));
    w.clock.set("2026-12-05T11:00:00Z");
    assert_eq!(w.plan_remaining(&acme), 2_000_000 - 2_000);
    w.assert_books_balance();
}
