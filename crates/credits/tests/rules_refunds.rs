//! Refunds: credits back first, then plan tokens; never more than the deduction took.
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

use credits::{AccountId, CreditsError, Pack, Plan, RefundRequest, Transaction, TransactionId};
use support::rules::{VISA, buy, deduct, deduct_in};
use support::{World, deduction_for, refund, refused, split};

/// A Pro account whose next deduction of 150 takes 100 plan and 50 credit tokens.
fn mixed_deduction(w: &World) -> (AccountId, Transaction) {
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(w, &acme, Pack::Starter);
    deduct(w, &acme, 2_000_000 - 100);
    let d = deduct_in(w, &acme, 150, Some("p-42"));
    assert_eq!(split(&d), (150, 100, 50));
    assert_eq!((w.balance(&acme), w.plan_remaining(&acme)), (999_950, 0));
    (acme, d)
}

#[test]
fn refunds_give_credit_tokens_back_first_then_plan_tokens() {
    let w = World::new();
    let (acme, d) = mixed_deduction(&w);
    let r1 = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), None))
        .unwrap();
    assert_eq!(split(&r1.value.transaction), (30, 0, 30));
    assert_eq!((w.balance(&acme), w.plan_remaining(&acme)), (999_980, 0));
    let r2 = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(40)), None))
        .unwrap();
    assert_eq!(split(&r2.value.transaction), (40, 20, 20));
    assert_eq!((w.balance(&acme), w.plan_remaining(&acme)), (1_000_000, 20));
    // No amount: all that is left (80 plan tokens).
    let r3 = w
        .credits_with(|c| c.refund(&refund(&acme, &d, None), None))
        .unwrap();
    assert_eq!(split(&r3.value.transaction), (80, 80, 0));
    assert_eq!(
        (w.balance(&acme), w.plan_remaining(&acme)),
        (1_000_000, 100)
    );
    w.assert_books_balance();
}

#[test]
fn a_refund_in_a_later_month_restores_no_plan_tokens() {
    let w = World::new();
    let (acme, d) = mixed_deduction(&w);
    w.clock.set("2026-12-02T08:00:00Z");
    let dec_before = w.credits_with(|c| c.summary(&acme)).unwrap().plan;
    let r = w
        .credits_with(|c| c.refund(&refund(&acme, &d, None), None))
        .unwrap()
        .value;
    // All 150 count as refunded; 50 credits come back, the 100 plan tokens of an
    // ended month restore nothing.
    assert_eq!(split(&r.transaction), (150, 0, 50));
    assert_eq!(w.balance(&acme), 1_000_000);
    assert_eq!(
        w.credits_with(|c| c.summary(&acme)).unwrap().plan,
        dec_before
    );
    // The account keeps the use of its newest month with plan use: still November.
    let nov_used =
        w.count("SELECT plan_used FROM accounts WHERE id = 'acme' AND plan_period = '2026-11'");
    assert_eq!(nov_used, 2_000_000);
    let err = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(1)), None))
        .unwrap_err();
    assert_eq!(
        err,
        CreditsError::RefundExceedsDeduction {
            requested: 1,
            refundable: 0
        }
    );
    w.assert_books_balance();
}

#[test]
fn refunds_never_add_up_to_more_than_the_deduction() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let d = deduct(&w, &acme, 100);
    let err = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(101)), None))
        .unwrap_err();
    assert!(
        matches!(err, CreditsError::RefundExceedsDeduction { .. }),
        "{err:?}"
    );
    w.credits_with(|c| c.refund(&refund(&acme, &d, Some(60)), None))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.refund(&refund(&acme, &d, Some(41)), None))
            .unwrap_err(),
        CreditsError::RefundExceedsDeduction {
            requested: 41,
            refundable: 40
        }
    );
    let rest = w
        .credits_with(|c| c.refund(&refund(&acme, &d, None), None))
        .unwrap()
        .value;
    assert_eq!(split(&rest.transaction), (40, 40, 0));
    // Nothing left: a default refund is refused too, and writes nothing.
    let rows = w.ledger_rows();
    assert_eq!(
        refused(w.credits_with(|c| c.refund(&refund(&acme, &d, None), None))),
        "RefundExceedsDeduction"
    );
    assert_eq!(w.ledger_rows(), rows);
    assert_eq!(w.plan_remaining(&acme), 100_000);
    w.assert_books_balance();
}

#[test]
fn only_a_deduction_of_the_same_account_can_be_refunded() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let globex = w.account("globex", Plan::Free);
    let theirs = deduct(&w, &globex, 100);
    let purchase = buy(&w, &acme, Pack::Starter);
    let mine = deduct(&w, &acme, 100);
    let a_refund = w
        .credits_with(|c| c.refund(&refund(&acme, &mine, Some(1)), None))
        .unwrap()
        .value
        .transaction;

    let rows = w.ledger_rows();
    for other in [&theirs, &purchase, &a_refund] {
        let err = w
            .credits_with(|c| c.refund(&refund(&acme, other, None), None))
            .unwrap_err();
        assert!(
            matches!(err, CreditsError::NotFound(_)),
            "{other:?}: {err:?}"
        );
    }
    for garbage in [
        "",
        "tx_1",
        "tx_999999999999",
        "nope",
        "tx_-00000000001",
        "../1",
    ] {
        let req = RefundRequest::new(acme.clone(), TransactionId::parse(garbage), None, None);
        assert_eq!(
            refused(w.credits_with(|c| c.refund(&req, None))),
            "NotFound",
            "{garbage:?}"
        );
    }
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.refund(&refund(&ghost, &mine, None), None))),
        "NotFound"
    );
    assert_eq!(w.ledger_rows(), rows);
    w.assert_books_balance();
}

#[test]
fn a_refund_carries_its_deductions_operation_and_resource() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let req = deduction_for(&acme, 500, Some("p-42"), "hygiene");
    let d = w
        .credits_with(|c| c.deduct(&req, None))
        .unwrap()
        .value
        .transaction;
    let r = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(200)), None))
        .unwrap()
        .value
        .transaction;
    match r {
        Transaction::Refund {
            refund_of,
            reason,
            operation,
            resource,
            ..
        } => {
            assert_eq!(refund_of, d.id());
            assert_eq!(reason.as_deref(), Some("job failed"));
            assert_eq!(operation, "hygiene");
            assert_eq!(resource.project(), Some("p-42"));
            assert_eq!(resource.session(), Some("s-1"));
        }
        other => panic!("not a refund: {other:?}"),
    }
    // Without a reason, and a deduction without a project: nulls read back.
    let bare = deduct(&w, &acme, 10);
    let req = RefundRequest::new(acme.clone(), Some(bare.id()), None, None);
    match w
        .credits_with(|c| c.refund(&req, None))
        .unwrap()
        .value
        .transaction
    {
        Transaction::Refund {
            reason, resource, ..
        } => {
            assert_eq!(reason, None);
            assert_eq!(resource.project(), None);
        }
        other => panic!("not a refund: {other:?}"),
    }
    w.assert_books_balance();
}
