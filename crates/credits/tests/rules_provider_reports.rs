//! What a remote payment provider reports on its own (Stripe's webhooks), how
//! long a pending purchase is charged again under its key, and the auto-recharge
//! a deduction leaves for after its answer (API.md, "Payments").
//!
//! Every test ends with the books balancing.

#![allow(clippy::doc_markdown)]

mod support;

use std::cell::{Cell, RefCell};

use credits::{
    Charge, ChargeOutcome, CreditsError, Eur, Pack, PaymentProvider, Plan, PurchaseSource,
    Transaction,
};
use support::rules::{VISA, all_history, enable_recharge};
use support::{World, deduction};

/// A remote provider whose answers the test sets: every charge answers
/// `charge_answer`, every search `found`; it records what it was asked.
struct Remote {
    charge_answer: RefCell<Result<ChargeOutcome, CreditsError>>,
    found: RefCell<Result<Option<ChargeOutcome>, CreditsError>>,
    charges: Cell<u32>,
    searches: Cell<u32>,
}

impl Remote {
    fn answering(answer: Result<ChargeOutcome, CreditsError>) -> Self {
        Self {
            charge_answer: RefCell::new(answer),
            found: RefCell::new(Ok(None)),
            charges: Cell::new(0),
            searches: Cell::new(0),
        }
    }

    fn unreachable() -> Self {
        Self::answering(Err(CreditsError::ProviderUnavailable("down".into())))
    }
}

impl PaymentProvider for Remote {
    fn charge(&self, _charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        self.charges.set(self.charges.get() + 1);
        self.charge_answer.borrow().clone()
    }

    fn find_charge(&self, _key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        self.searches.set(self.searches.get() + 1);
        self.found.borrow().clone()
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// The recharge check's sweep of pending purchases, now, over `payments`.
fn sweep(w: &World, payments: &dyn PaymentProvider) -> Result<usize, CreditsError> {
    let now = w.now();
    w.credits_paying_with(payments, |c| c.settle_stale_purchases(now))
}

/// What the provider reports of purchase `id` (for `cents`), through `payments`.
fn report(
    w: &World,
    payments: &dyn PaymentProvider,
    id: &str,
    cents: i64,
    outcome: ChargeOutcome,
) -> Result<bool, CreditsError> {
    w.credits_paying_with(payments, |c| {
        c.provider_reported(id, Eur::from_cents(cents), outcome)
    })
}

fn pending_id(w: &World) -> String {
    let rows = credits::Database::execute(
        &w.db,
        "SELECT id FROM purchases WHERE status = 'pending'",
        &[],
    )
    .unwrap();
    assert_eq!(rows.len(), 1, "one pending purchase");
    rows[0].text(0).unwrap().to_owned()
}

fn purchases_in_history(w: &World, account: &credits::AccountId) -> usize {
    all_history(w, account)
        .iter()
        .filter(|t| matches!(t, Transaction::Purchase { .. }))
        .count()
}

const HOUR: i64 = 3_600_000;

#[test]
fn a_reported_success_grants_once_even_a_purchase_marked_failed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let down = Remote::unreachable();
    let err = w
        .credits_paying_with(&down, |c| c.purchase(&acme, Pack::Standard, None))
        .unwrap_err();
    assert!(matches!(err, CreditsError::PaymentPending(_)), "{err:?}");
    let id = pending_id(&w);
    let report = |cents: i64, outcome: ChargeOutcome| report(&w, &down, &id, cents, outcome);

    // Another amount is not this purchase's payment; an unknown id is nobody's.
    assert_eq!(report(500, ChargeOutcome::Succeeded), Ok(false));
    assert_eq!(
        crate::report(&w, &down, "pur_none", 1000, ChargeOutcome::Succeeded),
        Ok(false)
    );
    assert_eq!(w.balance(&acme), 0);

    // A decline fails it; money taken afterwards still grants it, once.
    let declined = ChargeOutcome::Declined {
        message: "Your card was declined.".into(),
    };
    assert_eq!(report(1000, declined.clone()), Ok(true));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'failed'"),
        1
    );
    for _ in 0..3 {
        assert_eq!(report(1000, ChargeOutcome::Succeeded), Ok(true));
    }
    assert_eq!(w.balance(&acme), 2_500_000);
    assert_eq!(purchases_in_history(&w, &acme), 1);
    // A late decline never takes the grant back.
    assert_eq!(report(1000, declined), Ok(true));
    assert_eq!(w.balance(&acme), 2_500_000);
    assert_eq!(down.charges.get(), 1, "reports charge nothing");
    // Each outcome's event says what it was then: the grant cleared the purchase's
    // failure message, and the failure's event still carries it.
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE failure_message IS NULL"),
        1
    );
    let page = w
        .credits_with(|c| c.events(&credits::EventQuery::default()))
        .unwrap();
    let outcomes: Vec<_> = page
        .events
        .iter()
        .map(|e| {
            let p = &e.event.data["purchase"];
            let tx = p["transaction_id"].as_str().map(str::to_owned);
            (
                e.event.kind.as_str(),
                p["status"].clone(),
                p["failure_message"].clone(),
                tx,
            )
        })
        .collect();
    let granted = all_history(&w, &acme)
        .iter()
        .find(|t| matches!(t, Transaction::Purchase { .. }))
        .map(|t| t.id().to_string());
    assert_eq!(
        outcomes,
        [
            (
                "purchase.failed",
                serde_json::json!("failed"),
                serde_json::json!("Your card was declined."),
                None
            ),
            (
                "purchase.succeeded",
                serde_json::json!("succeeded"),
                serde_json::Value::Null,
                granted
            ),
        ]
    );
    w.assert_books_balance();
}

#[test]
fn a_manual_purchase_waiting_for_its_cardholder_ignores_an_authentication_failure() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let asks = Remote::answering(Ok(ChargeOutcome::AuthenticationRequired {
        message: "confirm it".into(),
        client_secret: "pi_1_secret_2".into(),
    }));
    let err = w
        .credits_paying_with(&asks, |c| c.purchase(&acme, Pack::Starter, None))
        .unwrap_err();
    assert!(
        matches!(err, CreditsError::AuthenticationRequired { .. }),
        "{err:?}"
    );
    let id = pending_id(&w);
    let waiting = ChargeOutcome::AuthenticationRequired {
        message: "still".into(),
        client_secret: String::new(),
    };
    assert_eq!(report(&w, &asks, &id, 500, waiting), Ok(true));
    assert_eq!(pending_id(&w), id, "still waiting");
    assert_eq!(
        report(&w, &asks, &id, 500, ChargeOutcome::Succeeded),
        Ok(true)
    );
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn after_23_hours_a_pending_purchase_is_only_looked_up() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let down = Remote::unreachable();
    let _ = w.credits_paying_with(&down, |c| c.purchase(&acme, Pack::Starter, None));
    assert_eq!(down.charges.get(), 1);

    // Within 23 hours the sweep repeats the charge under the same key (and,
    // with no outcome an hour on, searches: here the search fails too).
    *down.found.borrow_mut() = Err(CreditsError::ProviderUnavailable("down".into()));
    w.clock.advance_ms(2 * HOUR);
    let swept = sweep(&w, &down);
    assert!(swept.is_ok(), "{swept:?}");
    assert_eq!(down.charges.get(), 2);

    // Past 23 hours: searched, never charged again; money found is granted.
    w.clock.advance_ms(22 * HOUR);
    *down.found.borrow_mut() = Ok(Some(ChargeOutcome::Succeeded));
    assert_eq!(sweep(&w, &down), Ok(1));
    assert_eq!(down.charges.get(), 2, "not charged under a forgotten key");
    assert!(down.searches.get() >= 1);
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn a_provider_that_answered_without_charging_fails_the_purchase_an_hour_on() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    // A stored server error under the key, and no payment found for it.
    let stored_error = Remote::answering(Ok(ChargeOutcome::NotCharged));
    let err = w
        .credits_paying_with(&stored_error, |c| c.purchase(&acme, Pack::Starter, None))
        .unwrap_err();
    assert!(matches!(err, CreditsError::PaymentPending(_)), "{err:?}");

    // Within the hour a search may lag: still pending.
    w.clock.advance_ms(10 * 60_000);
    assert_eq!(sweep(&w, &stored_error), Ok(0));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    // An hour on, nothing was charged: failed as canceled (no decline counted).
    w.clock.advance_ms(2 * HOUR);
    assert_eq!(sweep(&w, &stored_error), Ok(1));
    assert_eq!(
        w.count(
            "SELECT COUNT(*) FROM purchases WHERE status = 'failed' AND failure_code = 'canceled'"
        ),
        1
    );
    assert_eq!(w.balance(&acme), 0);
    w.assert_books_balance();
}

#[test]
fn a_provider_that_times_out_for_hours_never_gets_its_purchase_failed() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let down = Remote::unreachable();
    let _ = w.credits_paying_with(&down, |c| c.purchase(&acme, Pack::Starter, None));
    // Its search finds nothing either: the charge that timed out may still land.
    for _ in 0..5 {
        w.clock.advance_ms(2 * HOUR);
        assert_eq!(sweep(&w, &down), Ok(0));
    }
    assert_eq!(
        w.count("SELECT COUNT(*) FROM purchases WHERE status = 'pending'"),
        1
    );
    w.assert_books_balance();
}

#[test]
fn a_client_retrying_after_23_hours_gets_a_lookup_not_a_second_charge() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let down = Remote::unreachable();
    let key = support::idem("buy-1", &serde_json::json!({"pack": "starter"}));
    let first = w.credits_paying_with(&down, |c| c.purchase(&acme, Pack::Starter, Some(&key)));
    assert!(
        matches!(first, Err(CreditsError::PaymentPending(_))),
        "{first:?}"
    );
    assert_eq!(down.charges.get(), 1);

    w.clock.advance_ms(24 * HOUR);
    *down.found.borrow_mut() = Ok(Some(ChargeOutcome::Succeeded));
    let again = w.credits_paying_with(&down, |c| c.purchase(&acme, Pack::Starter, Some(&key)));
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(down.charges.get(), 1, "never charged under a forgotten key");
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn with_a_remote_provider_a_deduction_leaves_its_auto_recharge_for_after_the_answer() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Standard, 1_000_000, "50.00");
    let pays = Remote::answering(Ok(ChargeOutcome::Succeeded));
    let (receipt, deferred) = w.credits_paying_with(&pays, |c| {
        let receipt = c.deduct(&deduction(&acme, 10, None), None).unwrap();
        (receipt, c.take_deferred_recharge())
    });
    assert_eq!(pays.charges.get(), 0, "the deduction charged nothing");
    let deferred = deferred.expect("an evaluation left for after the answer");
    assert_eq!(deferred.account, acme);
    assert_eq!(
        receipt.value.available_tokens,
        w.plan_remaining(&acme),
        "the answer counts no recharge"
    );
    // After the answer: one pack for the crossing, whoever runs it how often.
    for _ in 0..2 {
        let _ = w.credits_paying_with(&pays, |c| {
            c.evaluate_recharge(&deferred.account, deferred.triggered_by)
        });
    }
    assert_eq!(pays.charges.get(), 1);
    assert_eq!(w.balance(&acme), 2_500_000);
    let auto = all_history(&w, &acme)
        .into_iter()
        .filter(|t| {
            matches!(
                t,
                Transaction::Purchase {
                    source: PurchaseSource::AutoRecharge,
                    ..
                }
            )
        })
        .count();
    assert_eq!(auto, 1);

    // The sandbox answers at once: its recharge counts in the answer.
    let local = w.credits_with(|c| {
        let r = c.deduct(&deduction(&acme, 2_000_000, None), None);
        (r, c.take_deferred_recharge())
    });
    assert!(local.1.is_none());
    w.assert_books_balance();
}

#[test]
fn a_purchase_its_cardholder_never_confirms_is_given_up_after_a_day() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let asks = Remote::answering(Ok(ChargeOutcome::AuthenticationRequired {
        message: "confirm it".into(),
        client_secret: "pi_1_secret_2".into(),
    }));
    *asks.found.borrow_mut() = Ok(Some(ChargeOutcome::AuthenticationRequired {
        message: "confirm it".into(),
        client_secret: "pi_1_secret_2".into(),
    }));
    let _ = w.credits_paying_with(&asks, |c| c.purchase(&acme, Pack::Starter, None));
    for hours in [2, 21] {
        w.clock.advance_ms(hours * HOUR);
        assert_eq!(sweep(&w, &asks), Ok(0), "still waiting");
    }
    w.clock.advance_ms(2 * HOUR);
    assert_eq!(sweep(&w, &asks), Ok(1));
    let message = credits::Database::execute(
        &w.db,
        "SELECT failure_message FROM purchases WHERE status = 'failed'",
        &[],
    )
    .unwrap();
    assert_eq!(message[0].text(0).unwrap(), credits::ABANDONED);
    assert_eq!(w.balance(&acme), 0);
    // Confirmed at the last moment after all: the money is granted.
    let rows = credits::Database::execute(&w.db, "SELECT id FROM purchases", &[]).unwrap();
    let id = rows[0].text(0).unwrap();
    assert_eq!(
        report(&w, &asks, id, 500, ChargeOutcome::Succeeded),
        Ok(true)
    );
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}

#[test]
fn a_confirmation_whose_report_was_lost_is_found_by_the_next_check() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    let asks = Remote::answering(Ok(ChargeOutcome::AuthenticationRequired {
        message: "confirm it".into(),
        client_secret: "pi_1_secret_2".into(),
    }));
    let _ = w.credits_paying_with(&asks, |c| c.purchase(&acme, Pack::Starter, None));
    // The cardholder confirms; the webhook never arrives. The repeated charge
    // still answers "confirm it"; the lookup shows the money.
    *asks.found.borrow_mut() = Ok(Some(ChargeOutcome::Succeeded));
    w.clock.advance_ms(2 * 60_000);
    assert_eq!(sweep(&w, &asks), Ok(1));
    assert_eq!(w.balance(&acme), 1_000_000);
    w.assert_books_balance();
}
