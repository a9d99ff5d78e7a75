//! Deductions: plan allocation first, then credits; no overdraft; the monthly renewal.
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

use credits::{AccountId, CreditsError, Pack, Plan, Transaction};
use support::rules::{VISA, buy, deduct};
use support::{World, deduction, refused, split};

#[test]
fn deductions_use_the_plan_first_then_credits() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Standard);
    let d1 = w
        .credits_with(|c| c.deduct(&deduction(&acme, 1_500_000, Some("p-42")), None))
        .unwrap()
        .value;
    assert_eq!(split(&d1.transaction), (1_500_000, 1_500_000, 0));
    assert_eq!(d1.available_tokens, 500_000 + 2_500_000);
    let d2 = w
        .credits_with(|c| c.deduct(&deduction(&acme, 1_000_000, None), None))
        .unwrap()
        .value;
    assert_eq!(split(&d2.transaction), (1_000_000, 500_000, 500_000));
    assert_eq!(d2.available_tokens, 2_000_000);
    let d3 = deduct(&w, &acme, 700);
    assert_eq!(split(&d3), (700, 0, 700));
    assert_eq!(
        (w.balance(&acme), w.plan_remaining(&acme)),
        (2_000_000 - 700, 0)
    );
    match d1.transaction {
        Transaction::Deduction {
            operation,
            resource,
            ..
        } => {
            assert_eq!(operation, "enrichment");
            assert_eq!(resource.project(), Some("p-42"));
            assert_eq!(resource.session(), Some("s-1"));
        }
        other => panic!("not a deduction: {other:?}"),
    }
    w.assert_books_balance();
}

#[test]
fn exactly_what_is_available_can_be_deducted_and_one_more_token_cannot() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Starter);
    deduct(&w, &acme, 123);
    let available = w.available(&acme);
    assert_eq!(available, 3_000_000 - 123);

    let rows = w.ledger_rows();
    let err = w
        .credits_with(|c| c.deduct(&deduction(&acme, available + 1, None), None))
        .unwrap_err();
    assert!(
        matches!(err, CreditsError::InsufficientBalance { .. }),
        "{err:?}"
    );
    assert_eq!(
        err,
        CreditsError::InsufficientBalance {
            requested: available + 1,
            available
        }
    );
    assert_eq!(w.ledger_rows(), rows, "a refused deduction writes nothing");
    assert_eq!(w.available(&acme), available);

    let all = w
        .credits_with(|c| c.deduct(&deduction(&acme, available, None), None))
        .unwrap()
        .value;
    assert_eq!(all.available_tokens, 0);
    assert_eq!(
        split(&all.transaction),
        (available, 2_000_000 - 123, 1_000_000)
    );
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&acme, 1, None), None))),
        "InsufficientBalance"
    );
    assert_eq!((w.balance(&acme), w.available(&acme)), (0, 0));

    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&ghost, 1, None), None))),
        "NotFound"
    );
    w.assert_books_balance();
}

#[test]
fn the_allocation_renews_on_the_first_of_the_month_utc_without_carry_over() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    deduct(&w, &acme, 30_000);
    w.clock.set("2026-11-30T23:59:59.999Z");
    assert_eq!(w.plan_remaining(&acme), 70_000);
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&acme, 70_001, None), None))),
        "InsufficientBalance"
    );
    // 01:00 on Dec 1st in UTC+02:00 is still November in UTC.
    w.clock.set("2026-12-01T01:00:00+02:00");
    assert_eq!(w.plan_remaining(&acme), 70_000);

    w.clock.set("2026-12-01T00:00:00Z");
    let s = w.credits_with(|c| c.summary(&acme)).unwrap();
    assert_eq!((s.plan.used_tokens, s.plan.remaining_tokens), (0, 100_000));
    assert_eq!(s.plan.period_start.to_rfc3339(), "2026-12-01T00:00:00.000Z");
    assert_eq!(s.plan.period_end.to_rfc3339(), "2027-01-01T00:00:00.000Z");
    // November's 70,000 unused tokens did not carry over.
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&acme, 100_001, None), None))),
        "InsufficientBalance"
    );
    let d = deduct(&w, &acme, 100_000);
    assert_eq!(split(&d), (100_000, 100_000, 0));
    assert_eq!(w.available(&acme), 0);
    w.assert_books_balance();
}
