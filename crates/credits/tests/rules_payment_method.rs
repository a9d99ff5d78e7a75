//! The saved payment method.
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

use credits::{AccountId, Plan};
use support::rules::{VISA, method};
use support::{World, refused};

#[test]
fn a_payment_method_is_saved_and_replaced_on_any_plan() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    assert_eq!(
        w.credits_with(|c| c.payment_method(&acme))
            .unwrap()
            .payment_method,
        None
    );
    let saved = w
        .credits_with(|c| c.save_payment_method(&acme, &method(VISA)))
        .unwrap();
    assert_eq!(saved.payment_method.as_deref(), Some(VISA));
    w.credits_with(|c| c.save_payment_method(&acme, &method("pm_card_mastercard")))
        .unwrap();
    assert_eq!(
        w.credits_with(|c| c.payment_method(&acme))
            .unwrap()
            .payment_method
            .as_deref(),
        Some("pm_card_mastercard")
    );
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.save_payment_method(&ghost, &method(VISA)))),
        "NotFound"
    );
    w.assert_books_balance();
}
