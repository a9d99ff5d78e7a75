//! Idempotency keys: a retry is answered again and moves nothing twice.
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

use std::slice;

use credits::{CreditsError, Pack, Plan};
use serde_json::json;
use support::rules::{DECLINED, VISA, all_history, buy, deduct, method};
use support::{World, deduction, idem, refund, refused};

#[test]
fn a_repeated_deduction_is_answered_again_and_moves_nothing_twice() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let body = json!({"account_id": "acme", "tokens": 700});
    let key = idem("job-1", &body);
    let first = w
        .credits_with(|c| c.deduct(&deduction(&acme, 700, None), Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.deduct(&deduction(&acme, 700, None), Some(&key)))
        .unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(
        again.value, first.value,
        "same transaction, same available_tokens"
    );
    assert_eq!(w.plan_remaining(&acme), 100_000 - 700);
    assert_eq!(w.ledger_rows(), 1);

    // Same key, another body.
    let other = idem("job-1", &json!({"account_id": "acme", "tokens": 701}));
    let err = w
        .credits_with(|c| c.deduct(&deduction(&acme, 701, None), Some(&other)))
        .unwrap_err();
    assert!(matches!(err, CreditsError::IdempotencyKeyReused), "{err:?}");
    assert_eq!(w.ledger_rows(), 1);
    w.assert_books_balance();
}

#[test]
fn idempotency_keys_are_scoped_per_account_and_route() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let globex = w.account("globex", Plan::Free);
    let body = json!({"tokens": 5});
    let key = idem("same-key", &body);
    let a = w
        .credits_with(|c| c.deduct(&deduction(&acme, 5, None), Some(&key)))
        .unwrap();
    let g = w
        .credits_with(|c| c.deduct(&deduction(&globex, 5, None), Some(&key)))
        .unwrap();
    assert!(!a.replayed && !g.replayed);
    // Ids are numbered per account, so both may be `tx_000000000001`: what tells
    // them apart is whose ledger each is in.
    assert_eq!(
        all_history(&w, &acme),
        slice::from_ref(&a.value.transaction)
    );
    assert_eq!(
        all_history(&w, &globex),
        slice::from_ref(&g.value.transaction)
    );
    // The refund and purchase routes have their own keys.
    let r = w
        .credits_with(|c| c.refund(&refund(&acme, &a.value.transaction, None), Some(&key)))
        .unwrap();
    assert!(!r.replayed);
    let p = w
        .credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&key)))
        .unwrap();
    assert!(!p.replayed);
    assert_eq!(w.ledger_rows(), 4);
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn a_repeated_refund_is_answered_again() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    let d = deduct(&w, &acme, 100);
    let key = idem("refund-1", &json!({"tokens": 30}));
    let first = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), Some(&key)))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(w.plan_remaining(&acme), 100_000 - 70);
    let other = idem("refund-1", &json!({"tokens": 31}));
    assert_eq!(
        refused(w.credits_with(|c| c.refund(&refund(&acme, &d, Some(31)), Some(&other)))),
        "IdempotencyKeyReused"
    );
    assert_eq!(w.ledger_rows(), 2);
    w.assert_books_balance();
}

#[test]
fn a_repeated_purchase_is_answered_again_and_charged_once() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let key = idem("buy-1", &json!({"pack": "standard"}));
    let first = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, Some(&key)))
        .unwrap();
    let again = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, Some(&key)))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value.transaction, first.value.transaction);
    assert_eq!(w.balance(&acme), 2_500_000);
    assert_eq!(w.charges(), 1);
    let other = idem("buy-1", &json!({"pack": "plus"}));
    assert_eq!(
        refused(w.credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&other)))),
        "IdempotencyKeyReused"
    );
    w.assert_books_balance();
}

#[test]
fn a_declined_purchase_is_replayed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    let key = idem("buy-1", &json!({"pack": "starter"}));
    assert_eq!(
        refused(w.credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&key)))),
        "PaymentDeclined"
    );
    // Even with a working card now, the same key answers the same decline.
    w.credits_with(|c| c.save_payment_method(&acme, &method(VISA)))
        .unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&key)))),
        "PaymentDeclined"
    );
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    let fresh = idem("buy-2", &json!({"pack": "starter"}));
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, Some(&fresh)))
        .unwrap();
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn an_insufficient_balance_is_not_stored_so_a_retry_can_succeed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let body = json!({"tokens": 2_500_000});
    let key = idem("job-9", &body);
    assert_eq!(
        refused(w.credits_with(|c| c.deduct(&deduction(&acme, 2_500_000, None), Some(&key)))),
        "InsufficientBalance"
    );
    buy(&w, &acme, Pack::Starter);
    let retry = w
        .credits_with(|c| c.deduct(&deduction(&acme, 2_500_000, None), Some(&key)))
        .unwrap();
    assert!(!retry.replayed);
    assert_eq!(retry.value.available_tokens, 500_000);
    // Other refusals are not stored either: a refund that was too large.
    let big = idem("refund-9", &json!({"tokens": 3_000_000}));
    assert_eq!(
        refused(w.credits_with(|c| c.refund(
            &refund(&acme, &retry.value.transaction, Some(3_000_000)),
            Some(&big)
        ))),
        "RefundExceedsDeduction"
    );
    let ok = w
        .credits_with(|c| {
            c.refund(
                &refund(&acme, &retry.value.transaction, Some(2_500_000)),
                Some(&big),
            )
        })
        .unwrap();
    assert!(!ok.replayed);
    w.assert_books_balance();
}
