//! Crash recovery: a purchase whose outcome was lost is granted exactly once later.
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

use std::panic::{AssertUnwindSafe, catch_unwind};

use credits::{CreditsError, Pack, Plan};
use serde_json::json;
use support::rules::{VISA, auto_purchases, enable_recharge};
use support::{ChargesThenFails, ChargesThenPanics, World, idem, refused};

#[test]
fn a_purchase_lost_after_charging_is_granted_exactly_once_later() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let lost = ChargesThenFails(w.sandbox());
    let err = w
        .credits_paying_with(&lost, |c| c.purchase(&acme, Pack::Standard, None))
        .unwrap_err();
    // Its outcome unknown, the purchase is answered pending (202), with its id.
    let CreditsError::PaymentPending(pending) = &err else {
        panic!("{err:?}")
    };
    assert!(pending.id.starts_with("pur_"), "{pending:?}");
    assert_eq!(
        (
            pending.status,
            pending.pack.as_str(),
            pending.amount_eur.to_string()
        ),
        ("pending", "standard", "10.00".to_owned())
    );
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    w.assert_books_balance();

    // Not stale yet: left alone.
    let now = w.now();
    assert_eq!(
        w.credits_with(|c| c.settle_stale_purchases(now.plus_millis(-60_000)))
            .unwrap(),
        0
    );
    assert_eq!(
        w.credits_with(|c| c.settle_stale_purchases(now)).unwrap(),
        1
    );
    assert_eq!(
        w.credits_with(|c| c.settle_stale_purchases(now)).unwrap(),
        0
    );
    assert_eq!(
        (w.balance(&acme), w.charges(), w.ledger_rows()),
        (2_500_000, 1, 1)
    );
    w.assert_books_balance();
}

#[test]
fn a_purchase_retried_with_its_key_after_a_crash_is_granted_once() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let key = idem("buy-1", &json!({"pack": "plus"}));
    let dies = ChargesThenPanics(w.sandbox());
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        w.credits_paying_with(&dies, |c| c.purchase(&acme, Pack::Plus, Some(&key)))
    }));
    assert!(crashed.is_err());
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    let retry = w
        .credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&key)))
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value.credits.balance_tokens, 7_000_000);
    let again = w
        .credits_with(|c| c.purchase(&acme, Pack::Plus, Some(&key)))
        .unwrap();
    assert_eq!(again.value.transaction, retry.value.transaction);
    w.clock.advance_ms(120_000);
    assert_eq!(w.credits_with(|c| c.recharge_check()).unwrap().checked, 0);
    assert_eq!(
        (w.balance(&acme), w.charges(), w.ledger_rows()),
        (7_000_000, 1, 1)
    );
    w.assert_books_balance();
}

#[test]
fn an_auto_recharge_that_died_after_charging_is_granted_once_by_a_later_check() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    let dies = ChargesThenPanics(w.sandbox());
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        w.credits_paying_with(&dies, |c| c.recharge_check())
    }));
    assert!(crashed.is_err());
    assert_eq!((w.balance(&acme), w.charges()), (0, 1));
    // While it is pending, nothing else is bought for this balance.
    assert_eq!(
        w.credits_with(|c| c.recharge_check()).unwrap().skipped,
        ["acme"]
    );
    w.clock.advance_ms(60_000);
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert!(report.recharged.is_empty() && report.skipped.is_empty() && report.failed.is_empty());
    assert_eq!(
        (w.balance(&acme), w.charges(), auto_purchases(&w, &acme)),
        (2_500_000, 1, 1)
    );
    assert_eq!(
        w.credits_with(|c| c.recharge_settings(&acme))
            .unwrap()
            .spent_this_month_eur
            .to_string(),
        "10.00"
    );
    w.assert_books_balance();
}

/// A provider that cannot be reached for one payment method (its outcome stays
/// unknown) and is the sandbox for every other.
struct UnreachableFor<'a>(&'static str, credits_sandbox::SandboxPayments<'a>);

impl credits::PaymentProvider for UnreachableFor<'_> {
    fn charge(&self, charge: &credits::Charge<'_>) -> Result<credits::ChargeOutcome, CreditsError> {
        if charge.payment_method == self.0 {
            return Err(CreditsError::ProviderUnavailable(
                "provider timed out".into(),
            ));
        }
        self.1.charge(charge)
    }

    fn find_charge(&self, key: &str) -> Result<Option<credits::ChargeOutcome>, CreditsError> {
        self.1.find_charge(key)
    }
}

#[test]
fn a_purchase_that_cannot_be_settled_does_not_stop_the_recharge_check() {
    let w = World::new();
    let stuck = w.paying_account("stuck", Plan::Pro, "pm_card_unreachable");
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let provider = || UnreachableFor("pm_card_unreachable", w.sandbox());
    assert_eq!(
        refused(w.credits_paying_with(&provider(), |c| c.purchase(&stuck, Pack::Starter, None))),
        "PaymentPending"
    );
    w.clock.advance_ms(61_000);
    // The stuck purchase stays pending; everyone else is still served.
    let report = w
        .credits_paying_with(&provider(), |c| c.recharge_check())
        .unwrap();
    assert_eq!(report.recharged, ["acme"]);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    assert_eq!((w.balance(&stuck), w.balance(&acme)), (0, 1_000_000));
    // A purchase that failed to settle waits a minute before it is tried again.
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(w.balance(&stuck), 0);
    w.clock.advance_ms(61_000);
    // Once the provider answers again, the purchase is granted, once.
    let report = w.credits_with(|c| c.recharge_check()).unwrap();
    assert!(report.recharged.is_empty());
    assert_eq!((w.balance(&stuck), w.charges()), (1_000_000, 2));
    w.assert_books_balance();
}

#[test]
fn an_evaluation_that_fails_lists_its_account_in_failed_and_the_check_goes_on() {
    let w = World::new();
    let stuck = w.paying_account("stuck", Plan::Pro, "pm_card_unreachable");
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &stuck, Pack::Starter, 500_000, "50.00");
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "50.00");
    let provider = UnreachableFor("pm_card_unreachable", w.sandbox());
    let report = w
        .credits_paying_with(&provider, |c| c.recharge_check())
        .unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.recharged, ["acme"]);
    assert_eq!(report.failed, ["stuck"]);
    assert_eq!((w.balance(&stuck), w.balance(&acme)), (0, 1_000_000));
    // Its purchase stays pending, and is granted once the provider answers.
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    w.clock.advance_ms(61_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(
        (w.balance(&stuck), w.balance(&acme)),
        (1_000_000, 1_000_000)
    );
    assert_eq!(auto_purchases(&w, &stuck), 1);
    w.assert_books_balance();
}

#[test]
fn purchases_that_keep_failing_wait_and_never_starve_newer_ones() {
    let w = World::new();
    let stuck = w.paying_account("stuck", Plan::Pro, "pm_card_unreachable");
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let provider = || UnreachableFor("pm_card_unreachable", w.sandbox());
    for _ in 0..45 {
        w.credits_paying_with(&provider(), |c| c.purchase(&stuck, Pack::Starter, None))
            .unwrap_err();
        w.clock.advance_ms(1_000);
    }
    // Newest of all: charged, its answer lost.
    let lost = ChargesThenFails(w.sandbox());
    w.credits_paying_with(&lost, |c| c.purchase(&acme, Pack::Starter, None))
        .unwrap_err();
    w.clock.advance_ms(61_000);
    // Each run tries a bounded batch, oldest first; the ones that fail wait, so the
    // next runs reach the newer purchase without any clock passing.
    for _ in 0..3 {
        w.credits_paying_with(&provider(), |c| c.recharge_check())
            .unwrap();
    }
    assert_eq!(
        w.balance(&acme),
        1_000_000,
        "the customer who paid is granted"
    );
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        45
    );
    w.assert_books_balance();
}

// ---------------------------------------------------------------------------
// A stale auto-recharge is charged only while the account's settings still allow
// it; otherwise the provider is only asked whether it charged it before.

/// acme's auto-recharge of a Standard pack left pending, uncharged (the provider
/// timed out before charging).
fn uncharged_auto_recharge(w: &World) -> credits::AccountId {
    let acme = w.paying_account("acme", Plan::Pro, "pm_card_unreachable");
    enable_recharge(w, &acme, Pack::Standard, 1_000_000, "50.00");
    let unreachable = UnreachableFor("pm_card_unreachable", w.sandbox());
    let report = w
        .credits_paying_with(&unreachable, |c| c.recharge_check())
        .unwrap();
    assert_eq!(report.failed, ["acme"]);
    assert_eq!((w.charges(), pending(w)), (0, 1));
    acme
}

fn pending(w: &World) -> i64 {
    w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'")
}

fn switch_off(w: &World, account: &credits::AccountId) {
    let off = credits::RechargeSettings::new(false, Some(Pack::Standard), None, None).unwrap();
    w.credits_with(|c| c.save_recharge_settings(account, &off))
        .unwrap();
}

#[test]
fn an_auto_recharge_switched_off_before_its_charge_is_canceled_and_never_charged() {
    let w = World::new();
    let acme = uncharged_auto_recharge(&w);
    switch_off(&w, &acme);
    // The provider answers again (the sandbox would charge this card), but the
    // sweep only asks it: nothing charged yet, and a search may lag, so it waits.
    w.clock.advance_ms(61_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!((w.charges(), pending(&w)), (0, 1));
    // An hour after it began, "never charged" is believed: canceled.
    w.clock.advance_ms(3_600_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!((w.charges(), pending(&w), w.balance(&acme)), (0, 0, 0));
    assert_eq!(
        w.count(
            "SELECT COUNT(*) FROM purchases
             WHERE status = 'failed' AND failure_code = 'canceled' AND source = 'auto_recharge'"
        ),
        1
    );
    // Not a decline: it counts towards nothing and says nothing in the settings.
    assert_eq!(w.count("SELECT declines FROM auto_recharge"), 0);
    let settings = w.credits_with(|c| c.recharge_settings(&acme)).unwrap();
    assert!(settings.last_error.is_none(), "{settings:?}");
    assert_eq!(settings.spent_this_month_eur.to_string(), "0.00");
    w.assert_books_balance();
}

#[test]
fn an_auto_recharge_charged_before_it_was_switched_off_is_still_granted() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    let lost = ChargesThenFails(w.sandbox());
    w.credits_paying_with(&lost, |c| c.recharge_check())
        .unwrap();
    assert_eq!((w.charges(), pending(&w), w.balance(&acme)), (1, 1, 0));
    switch_off(&w, &acme);
    w.clock.advance_ms(61_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    // The customer paid: granted, and charged once.
    assert_eq!(
        (w.charges(), pending(&w), w.balance(&acme)),
        (1, 0, 2_500_000)
    );
    w.assert_books_balance();
}

#[test]
fn an_auto_recharge_over_a_lowered_limit_or_on_a_free_plan_is_never_charged() {
    let w = World::new();
    let acme = uncharged_auto_recharge(&w);
    // The limit lowered below the pack's €10.00.
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "5.00");
    let globex = w.paying_account("globex", Plan::Pro, "pm_card_unreachable");
    enable_recharge(&w, &globex, Pack::Starter, 1_000_000, "50.00");
    let unreachable = UnreachableFor("pm_card_unreachable", w.sandbox());
    w.credits_paying_with(&unreachable, |c| c.recharge_check())
        .unwrap();
    assert_eq!(pending(&w), 2);
    w.credits_with(|c| c.change_plan(&globex, Plan::Free))
        .unwrap();
    w.clock.advance_ms(3_700_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!((w.charges(), pending(&w)), (0, 0));
    assert_eq!((w.balance(&acme), w.balance(&globex)), (0, 0));
    w.assert_books_balance();
}

#[test]
fn a_stale_auto_recharge_its_settings_still_allow_is_charged_and_granted() {
    let w = World::new();
    let acme = uncharged_auto_recharge(&w);
    w.clock.advance_ms(61_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(
        (w.charges(), pending(&w), w.balance(&acme)),
        (1, 0, 2_500_000)
    );
    w.assert_books_balance();
}

/// A provider during whose charge the settings are switched off and another
/// instance's recharge check runs (it sees the purchase not allowed any more and
/// finds no charge yet); then it charges through the sandbox.
struct SwitchedOffMidCharge<'a>(&'a World, credits::AccountId);

impl credits::PaymentProvider for SwitchedOffMidCharge<'_> {
    fn charge(&self, charge: &credits::Charge<'_>) -> Result<credits::ChargeOutcome, CreditsError> {
        switch_off(self.0, &self.1);
        self.0.credits_with(|c| c.recharge_check())?;
        self.0.sandbox().charge(charge)
    }

    fn find_charge(&self, key: &str) -> Result<Option<credits::ChargeOutcome>, CreditsError> {
        self.0.sandbox().find_charge(key)
    }
}

#[test]
fn a_sweep_charging_a_purchase_holds_it_against_another_instance_canceling_it() {
    let w = World::new();
    let acme = uncharged_auto_recharge(&w);
    // Over an hour old: a sweep that finds it not allowed and uncharged cancels it.
    w.clock.advance_ms(3_700_000);
    let racing = SwitchedOffMidCharge(&w, acme.clone());
    w.credits_paying_with(&racing, |c| c.recharge_check())
        .unwrap();
    // The claimed charge went through and was granted; nothing was canceled.
    assert_eq!(
        (w.charges(), pending(&w), w.balance(&acme)),
        (1, 0, 2_500_000)
    );
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE failure_code = 'canceled'"),
        0
    );
    w.assert_books_balance();
}
