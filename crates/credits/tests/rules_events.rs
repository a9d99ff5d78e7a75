//! Events (API.md, "Events"): recorded by the statement that makes the change,
//! once per crossing or month as the rules say, and delivered signed, at least
//! once, on the retry schedule.

#![allow(clippy::redundant_closure_for_method_calls)] // `|c| c.recharge_check()` reads better

mod support;

use std::cell::RefCell;
use std::collections::VecDeque;

use credits::{
    AccountId, Database, DeliveryOutcome, EventId, EventQuery, EventTransport, EventsTarget, Pack,
    Plan, SignedEvent, signature,
};
use serde_json::json;
use support::rules::{DECLINED, VISA, buy, deduct, enable_recharge, hold, method};
use support::{World, deduction};

/// Every recorded event of `account`, in order.
fn recorded(w: &World, account: &AccountId) -> Vec<credits::Event> {
    w.credits_with(|c| c.events(&EventQuery::new(None, Some(500)).unwrap()))
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event)
        .filter(|e| e.account_id == account.as_str())
        .collect()
}

/// `(type, sequence)` of every recorded event of `account`, in order.
fn events_of(w: &World, account: &AccountId) -> Vec<(String, i64)> {
    recorded(w, account)
        .into_iter()
        .map(|e| (e.kind, e.sequence))
        .collect()
}

fn types(w: &World, account: &AccountId) -> Vec<String> {
    events_of(w, account).into_iter().map(|(t, _)| t).collect()
}

/// A receiver that answers as scripted (then 2xx), recording what it got.
#[derive(Default)]
struct Receiver {
    answers: RefCell<VecDeque<DeliveryOutcome>>,
    got: RefCell<Vec<SignedEvent>>,
}

impl Receiver {
    fn failing(times: usize) -> Self {
        let r = Self::default();
        for _ in 0..times {
            r.answers
                .borrow_mut()
                .push_back(DeliveryOutcome::Failed("HTTP 500".into()));
        }
        r
    }
}

impl EventTransport for Receiver {
    fn deliver(&self, url: &str, event: &SignedEvent) -> DeliveryOutcome {
        assert_eq!(url, TARGET_URL);
        self.got.borrow_mut().push(event.clone());
        self.answers
            .borrow_mut()
            .pop_front()
            .unwrap_or(DeliveryOutcome::Delivered)
    }
}

const TARGET_URL: &str = "http://127.0.0.1:9/events";

fn target() -> EventsTarget {
    EventsTarget {
        url: TARGET_URL.into(),
        secret: "whsec_events".into(),
    }
}

#[test]
fn credits_low_is_recorded_once_per_crossing_enabled_or_not() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Free, VISA); // auto-recharge not allowed
    // Free plans cannot enable auto-recharge, but a threshold saved disabled counts.
    let pro = w.paying_account("pro", Plan::Pro, VISA);
    buy(&w, &pro, Pack::Starter); // 1,000,000 credits
    enable_recharge(&w, &pro, Pack::Starter, 600_000, "0.00"); // limit 0: never buys
    deduct(&w, &pro, 2_000_000); // the plan allocation
    deduct(&w, &pro, 300_000); // 700,000 left: above
    assert!(types(&w, &pro).iter().all(|t| t != "credits.low"));
    deduct(&w, &pro, 200_000); // 500,000: crossed
    deduct(&w, &pro, 100_000); // 400,000: still below, no new crossing
    assert_eq!(
        types(&w, &pro)
            .iter()
            .filter(|t| *t == "credits.low")
            .count(),
        1
    );
    buy(&w, &pro, Pack::Standard); // 2,900,000: above again
    deduct(&w, &pro, 2_400_000); // 500,000: a second crossing
    assert_eq!(
        types(&w, &pro)
            .iter()
            .filter(|t| *t == "credits.low")
            .count(),
        2
    );
    // No settings, no threshold: nothing.
    deduct(&w, &acme, 100_000);
    assert!(types(&w, &acme).iter().all(|t| t != "credits.low"));
}

#[test]
fn credits_depleted_when_nothing_is_available_holds_counted() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free); // 100,000 plan tokens
    deduct(&w, &acme, 60_000);
    assert!(types(&w, &acme).is_empty());
    deduct(&w, &acme, 40_000);
    assert_eq!(types(&w, &acme), ["credits.depleted"]);

    let beta = w.account("beta", Plan::Free);
    hold(&w, &beta, 30_000);
    // 70,000 deducted: with 30,000 held, nothing is available.
    deduct(&w, &beta, 70_000);
    assert_eq!(types(&w, &beta), ["credits.depleted"]);
    // A hold that takes the last tokens records it too.
    let gamma = w.account("gamma", Plan::Free);
    hold(&w, &gamma, 100_000);
    assert_eq!(types(&w, &gamma), ["credits.depleted"]);
}

/// `(type, data)` of every recorded event of `account`, in order.
fn data_of(w: &World, account: &AccountId) -> Vec<(String, serde_json::Value)> {
    recorded(w, account)
        .into_iter()
        .map(|e| (e.kind, e.data))
        .collect()
}

fn text(w: &World, sql: &str) -> String {
    w.db.execute(sql, &[]).unwrap()[0]
        .text(0)
        .unwrap()
        .to_owned()
}

#[test]
fn each_event_carries_what_it_is_about_as_it_was_then() {
    let w = World::new();
    let pro = w.paying_account("pro", Plan::Pro, VISA);
    let bought = buy(&w, &pro, Pack::Starter); // 1,000,000 credits
    let bought_id = text(&w, "SELECT id FROM purchases WHERE status = 'succeeded'");
    enable_recharge(&w, &pro, Pack::Starter, 600_000, "0.00"); // never buys
    deduct(&w, &pro, 2_000_000); // the plan allocation
    let crossing = deduct(&w, &pro, 500_000); // 500,000 credits: below the threshold
    let last = deduct(&w, &pro, 500_000); // nothing left
    // A threshold changed after the crossing does not change what was reported.
    enable_recharge(&w, &pro, Pack::Starter, 900_000, "0.00");
    w.credits_with(|c| c.save_payment_method(&pro, &method(DECLINED)))
        .unwrap();
    w.credits_with(|c| c.purchase(&pro, Pack::Plus, None))
        .unwrap_err();
    let failed_id = text(&w, "SELECT id FROM purchases WHERE status = 'failed'");
    let message = text(
        &w,
        "SELECT failure_message FROM purchases WHERE status = 'failed'",
    );

    let events: Vec<_> = data_of(&w, &pro)
        .into_iter()
        .filter(|(t, _)| t != "auto_recharge.limit_reached")
        .collect();
    let expected = [
        (
            "purchase.succeeded",
            json!({"purchase": {"id": bought_id, "source": "manual", "pack": "starter",
                   "tokens": 1_000_000, "amount_eur": "5.00", "status": "succeeded",
                   "transaction_id": bought.id().to_string(), "failure_message": null}}),
        ),
        (
            "credits.low",
            json!({"balance_tokens": 500_000, "threshold_tokens": 600_000,
                   "transaction_id": crossing.id().to_string()}),
        ),
        (
            "credits.depleted",
            json!({"available_tokens": 0, "transaction_id": last.id().to_string()}),
        ),
        (
            "purchase.failed",
            json!({"purchase": {"id": failed_id, "source": "manual", "pack": "plus",
                   "tokens": 7_000_000, "amount_eur": "25.00", "status": "failed",
                   "transaction_id": null, "failure_message": message}}),
        ),
    ];
    assert_eq!(
        events,
        expected.map(|(t, d)| (t.to_owned(), d)).to_vec(),
        "in order, each with its data"
    );

    // A hold that takes the last tokens names the hold.
    let free = w.account("free", Plan::Free);
    let hold_id = hold(&w, &free, 100_000).id.to_string();
    assert_eq!(
        data_of(&w, &free),
        [(
            "credits.depleted".to_owned(),
            json!({"available_tokens": 0, "hold_id": hold_id})
        )]
    );
    // What is delivered is what is listed.
    let receiver = Receiver::default();
    w.credits_with(|c| c.deliver_events(&target(), &receiver))
        .unwrap();
    let delivered: Vec<serde_json::Value> = receiver
        .got
        .borrow()
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.body).unwrap()["data"].clone())
        .collect();
    let listed: Vec<serde_json::Value> = w
        .credits_with(|c| c.events(&EventQuery::new(None, Some(500)).unwrap()))
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event.data)
        .collect();
    assert_eq!(delivered, listed);
}

#[test]
fn purchases_and_auto_recharge_record_their_outcomes_and_three_declines_disable() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Starter);
    w.credits_with(|c| c.save_payment_method(&acme, &method(DECLINED)))
        .unwrap();
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap_err();
    assert_eq!(types(&w, &acme), ["purchase.succeeded", "purchase.failed"]);

    let bob = w.paying_account("bob", Plan::Pro, VISA);
    enable_recharge(&w, &bob, Pack::Starter, 500_000, "50.00");
    w.credits_with(|c| c.deduct(&deduction(&bob, 2_000_000, None), None))
        .unwrap();
    // The balance was 0 before: it did not fall below the threshold, so no credits.low.
    assert_eq!(
        types(&w, &bob),
        ["credits.depleted", "auto_recharge.succeeded"]
    );
    // Three declines in a row disable auto-recharge: each recorded, then disabled.
    w.credits_with(|c| c.save_payment_method(&bob, &method(DECLINED)))
        .unwrap();
    deduct(&w, &bob, 600_000); // below the threshold again
    for _ in 0..2 {
        w.clock.advance_ms(25 * 3_600_000);
        w.credits_with(|c| c.recharge_check()).unwrap();
    }
    let bob_types = types(&w, &bob);
    assert_eq!(
        bob_types
            .iter()
            .filter(|t| *t == "auto_recharge.failed")
            .count(),
        3,
        "{bob_types:?}"
    );
    assert_eq!(bob_types.last().unwrap(), "auto_recharge.disabled");
    // Sequences count each account's events from 1.
    let seqs: Vec<i64> = events_of(&w, &bob).into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>()
    );
}

#[test]
fn the_monthly_limit_is_reported_once_per_account_and_month() {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    enable_recharge(&w, &acme, Pack::Starter, 500_000, "5.00"); // one pack a month
    deduct(&w, &acme, 2_000_000); // bought once: 1,000,000 credits
    deduct(&w, &acme, 600_000); // below again: the limit stops it
    w.credits_with(|c| c.recharge_check()).unwrap();
    w.credits_with(|c| c.recharge_check()).unwrap();
    let limits = |w: &World| {
        types(w, &acme)
            .iter()
            .filter(|t| *t == "auto_recharge.limit_reached")
            .count()
    };
    assert_eq!(limits(&w), 1);
    // A new month, a new limit: bought again, and the limit again in that month.
    w.clock.set("2026-12-02T10:00:00Z");
    w.credits_with(|c| c.recharge_check()).unwrap();
    deduct(&w, &acme, 2_000_000);
    deduct(&w, &acme, 1_000_000);
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(limits(&w), 2);
}

#[test]
fn a_failed_write_records_no_event() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    // Refused: nothing deducted, nothing recorded.
    w.credits_with(|c| c.deduct(&deduction(&acme, 100_001, None), None))
        .unwrap_err();
    assert!(types(&w, &acme).is_empty());
}

#[test]
fn delivery_is_signed_retried_on_schedule_and_fails_after_three_days() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    deduct(&w, &acme, 100_000); // credits.depleted
    let receiver = Receiver::failing(2);
    let deliver =
        |w: &World, r: &Receiver| w.credits_with(|c| c.deliver_events(&target(), r)).unwrap();
    assert_eq!(deliver(&w, &receiver).failed, 1);
    // Not due again before about a minute.
    w.clock.advance_ms(30_000);
    assert_eq!(
        deliver(&w, &receiver).failed + deliver(&w, &receiver).delivered,
        0
    );
    w.clock.advance_ms(31_000);
    assert_eq!(deliver(&w, &receiver).failed, 1); // 2nd attempt, next in 5 min
    w.clock.advance_ms(4 * 60_000);
    assert_eq!(deliver(&w, &receiver).delivered, 0);
    w.clock.advance_ms(61_000);
    assert_eq!(deliver(&w, &receiver).delivered, 1);
    let got = receiver.got.borrow();
    assert_eq!(got.len(), 3);
    // Each attempt is signed as API.md says, at the request's time.
    let last = got.last().unwrap();
    let t: i64 = last.signature[2..last.signature.find(',').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(t, w.now().millis() / 1000);
    assert_eq!(last.signature, signature("whsec_events", t, &last.body));
    assert_ne!(last.signature, signature("wrong-secret", t, &last.body));
    let body: serde_json::Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(
        (
            &body["type"],
            &body["account_id"],
            &body["sequence"],
            &body["id"]
        ),
        (
            &serde_json::json!("credits.depleted"),
            &serde_json::json!("acme"),
            &serde_json::json!(1),
            &serde_json::json!(last.id)
        )
    );
    let page = w
        .credits_with(|c| c.events(&EventQuery::default()))
        .unwrap();
    let delivery = &page.events[0].delivery;
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts),
        ("delivered", 3)
    );

    // An event nobody takes is marked failed 3 days after it was recorded.
    let beta = w.account("beta", Plan::Free);
    deduct(&w, &beta, 100_000);
    let never = Receiver::failing(1_000);
    for _ in 0..40 {
        deliver(&w, &never);
        w.clock.advance_ms(3_600_000 * 2);
    }
    let page = w
        .credits_with(|c| c.events(&EventQuery::default()))
        .unwrap();
    let failed = &page.events[1].delivery;
    assert_eq!(failed.status, "failed");
    assert!(
        (5..=20).contains(&failed.attempts),
        "1, 5, 30 min, 2 h, then 6-hourly for 3 days: {}",
        failed.attempts
    );
    // Redelivery makes it due now, and it is sent again.
    let id = page.events[1].event.id;
    let again = w.credits_with(|c| c.redeliver(Some(id))).unwrap();
    assert_eq!(again.event.delivery.status, "pending");
    let ok = Receiver::default();
    assert_eq!(deliver(&w, &ok).delivered, 1);
    assert!(
        w.credits_with(|c| c.redeliver(EventId::parse("evt_000000009999")))
            .is_err()
    );
}

#[test]
fn a_claimed_event_is_not_sent_by_another_instance_in_the_same_window() {
    let w = World::new();
    let acme = w.account("acme", Plan::Free);
    deduct(&w, &acme, 100_000);
    // Instance one claims it and dies before recording the outcome.
    w.db.execute(
        "UPDATE events SET claimed_until = ?1, attempts = attempts + 1",
        &[credits::Value::Integer(w.now().millis() + 30_000)],
    )
    .unwrap();
    let other = Receiver::default();
    assert_eq!(
        w.credits_with(|c| c.deliver_events(&target(), &other))
            .unwrap()
            .delivered,
        0
    );
    // After the claim lapses, it is delivered: at least once.
    w.clock.advance_ms(31_000);
    assert_eq!(
        w.credits_with(|c| c.deliver_events(&target(), &other))
            .unwrap()
            .delivered,
        1
    );
}

#[test]
fn events_page_oldest_first() {
    let w = World::new();
    for id in ["a", "b", "c"] {
        let acct = w.account(id, Plan::Free);
        deduct(&w, &acct, 100_000);
    }
    let first = w
        .credits_with(|c| c.events(&EventQuery::new(None, Some(2)).unwrap()))
        .unwrap();
    assert_eq!(first.events.len(), 2);
    let rest = w
        .credits_with(|c| c.events(&EventQuery::new(first.next_after, Some(2)).unwrap()))
        .unwrap();
    assert_eq!(rest.events.len(), 1);
    assert_eq!(rest.next_after, None);
    assert_eq!(rest.events[0].event.account_id, "c");
    assert!(EventQuery::new(None, Some(0)).is_err());
    assert!(EventQuery::new(None, Some(501)).is_err());
}
