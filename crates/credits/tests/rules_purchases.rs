//! Buying credit packs: who may, what a decline does, what a purchase grants.
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

use credits::{AccountId, CreditsError, Pack, Plan, PurchaseSource, Transaction};
use support::rules::{DECLINED, VISA};
use support::{World, refused};

#[test]
fn the_free_plan_may_not_buy_and_is_told_before_the_payment_method() {
    let w = World::new();
    let bare = w.account("bare", Plan::Free);
    let err = w
        .credits_with(|c| c.purchase(&bare, Pack::Starter, None))
        .unwrap_err();
    assert!(matches!(err, CreditsError::FreePlan(_)), "{err:?}");
    let with_card = w.paying_account("with-card", Plan::Free, VISA);
    assert_eq!(
        refused(w.credits_with(|c| c.purchase(&with_card, Pack::Starter, None))),
        "FreePlan"
    );
    assert_eq!((w.charges(), w.ledger_rows()), (0, 0));
    w.assert_books_balance();
}

#[test]
fn a_purchase_needs_a_payment_method() {
    let w = World::new();
    let acme = w.account("acme", Plan::Pro);
    let err = w
        .credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap_err();
    assert!(
        matches!(err, CreditsError::PaymentMethodRequired),
        "{err:?}"
    );
    let ghost = AccountId::parse("ghost").unwrap();
    assert_eq!(
        refused(w.credits_with(|c| c.purchase(&ghost, Pack::Starter, None))),
        "NotFound"
    );
    assert_eq!((w.charges(), w.ledger_rows()), (0, 0));
    w.assert_books_balance();
}

#[test]
fn a_declined_payment_grants_nothing() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, DECLINED);
    let err = w
        .credits_with(|c| c.purchase(&acme, Pack::Standard, None))
        .unwrap_err();
    assert!(matches!(err, CreditsError::PaymentDeclined(_)), "{err:?}");
    assert_eq!(w.balance(&acme), 0);
    assert_eq!(w.ledger_rows(), 0);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'failed'"),
        1
    );
    w.assert_books_balance();
}

#[test]
fn a_purchase_grants_the_packs_tokens_and_returns_the_balance() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Team, VISA);
    let mut expected = 0;
    for pack in Pack::ALL {
        let receipt = w.credits_with(|c| c.purchase(&acme, pack, None)).unwrap();
        assert!(!receipt.replayed);
        expected += pack.tokens();
        assert_eq!(receipt.value.credits.balance_tokens, expected);
        match receipt.value.transaction {
            Transaction::Purchase {
                source,
                pack: name,
                tokens,
                amount_eur,
                ..
            } => {
                assert_eq!(source, PurchaseSource::Manual);
                assert_eq!(name, pack.id());
                assert_eq!(tokens, pack.tokens());
                assert_eq!(amount_eur, pack.price());
            }
            other => panic!("not a purchase: {other:?}"),
        }
    }
    assert_eq!(w.balance(&acme), 25_500_000);
    assert_eq!(w.charges(), 4);
    // The plan allocation is untouched by purchases.
    assert_eq!(w.available(&acme), 25_500_000 + 10_000_000);
    w.assert_books_balance();
}

/// The sandbox, noting who each charge was for.
struct Noting<'a>(
    credits_sandbox::SandboxPayments<'a>,
    std::cell::RefCell<Vec<(String, PurchaseSource)>>,
);

impl credits::PaymentProvider for Noting<'_> {
    fn charge(&self, charge: &credits::Charge<'_>) -> Result<credits::ChargeOutcome, CreditsError> {
        self.1
            .borrow_mut()
            .push((charge.account.as_str().to_owned(), charge.source));
        self.0.charge(charge)
    }

    fn find_charge(&self, key: &str) -> Result<Option<credits::ChargeOutcome>, CreditsError> {
        self.0.find_charge(key)
    }
}

#[test]
fn a_charge_names_its_account_and_whether_a_person_or_auto_recharge_asked() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let globex = w.paying_account("globex", Plan::Pro, VISA);
    support::rules::enable_recharge(&w, &globex, Pack::Starter, 1_000, "50.00");
    let noting = Noting(w.sandbox(), std::cell::RefCell::default());
    w.credits_paying_with(&noting, |c| c.purchase(&acme, Pack::Starter, None))
        .unwrap();
    w.credits_paying_with(&noting, |c| c.recharge_check())
        .unwrap();
    assert_eq!(
        noting.1.into_inner(),
        [
            ("acme".to_owned(), PurchaseSource::Manual),
            ("globex".to_owned(), PurchaseSource::AutoRecharge)
        ]
    );
    w.assert_books_balance();
}

/// A bank that asks the cardholder to confirm every charge (3-D Secure) until
/// `confirmed` names the purchase; then the charge goes through the sandbox.
struct AsksToConfirm<'a>(
    credits_sandbox::SandboxPayments<'a>,
    std::cell::RefCell<Vec<String>>,
);

impl credits::PaymentProvider for AsksToConfirm<'_> {
    fn charge(&self, charge: &credits::Charge<'_>) -> Result<credits::ChargeOutcome, CreditsError> {
        if self.1.borrow().iter().any(|k| k == charge.idempotency_key) {
            return self.0.charge(charge);
        }
        Ok(credits::ChargeOutcome::AuthenticationRequired {
            message: "This transaction requires authentication.".into(),
            client_secret: format!("pi_{}_secret_x", charge.idempotency_key),
        })
    }

    fn find_charge(&self, key: &str) -> Result<Option<credits::ChargeOutcome>, CreditsError> {
        self.0.find_charge(key)
    }
}

#[test]
fn a_purchase_the_bank_wants_confirmed_waits_pending_and_is_granted_once_confirmed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let bank = AsksToConfirm(w.sandbox(), std::cell::RefCell::default());
    let key = support::idem("buy-1", &serde_json::json!({"pack": "standard"}));
    let first = w.credits_paying_with(&bank, |c| c.purchase(&acme, Pack::Standard, Some(&key)));
    let Err(CreditsError::AuthenticationRequired { client_secret, .. }) = first else {
        panic!("{first:?}")
    };
    assert!(client_secret.starts_with("pi_pur_"), "{client_secret}");
    assert_eq!((w.balance(&acme), w.charges()), (0, 0));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    // The same request again: still waiting, the same client secret.
    let again = w.credits_paying_with(&bank, |c| c.purchase(&acme, Pack::Standard, Some(&key)));
    assert!(
        matches!(&again, Err(CreditsError::AuthenticationRequired { client_secret: s, .. }) if *s == client_secret),
        "{again:?}"
    );
    // A recharge check leaves it waiting (and not counted as settled).
    w.clock.advance_ms(61_000);
    assert!(w.credits_paying_with(&bank, |c| c.recharge_check()).is_ok());
    assert_eq!(w.balance(&acme), 0);
    // The cardholder confirms; the same request now answers the grant, once.
    let purchase_id = client_secret
        .strip_prefix("pi_")
        .and_then(|s| s.strip_suffix("_secret_x"))
        .unwrap()
        .to_owned();
    bank.1.borrow_mut().push(purchase_id);
    let granted = w
        .credits_paying_with(&bank, |c| c.purchase(&acme, Pack::Standard, Some(&key)))
        .unwrap();
    assert_eq!(granted.value.credits.balance_tokens, 2_500_000);
    w.credits_paying_with(&bank, |c| c.purchase(&acme, Pack::Standard, Some(&key)))
        .unwrap();
    assert_eq!((w.balance(&acme), w.charges()), (2_500_000, 1));
    w.assert_books_balance();
}

#[test]
fn an_auto_recharge_the_bank_wants_confirmed_is_a_decline_saying_so() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    support::rules::enable_recharge(&w, &acme, Pack::Starter, 1_000, "50.00");
    let bank = AsksToConfirm(w.sandbox(), std::cell::RefCell::default());
    w.credits_paying_with(&bank, |c| c.recharge_check())
        .unwrap();
    assert_eq!((w.balance(&acme), w.charges()), (0, 0));
    let settings = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    let error = serde_json::to_value(&settings.last_error).unwrap();
    assert_eq!(error["code"], "authentication_required", "{error}");
    assert_eq!(w.count("SELECT declines FROM auto_recharge"), 1);
    w.assert_books_balance();
}
