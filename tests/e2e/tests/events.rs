//! Events over real HTTP: the app's components POST signed events to a receiver
//! on loopback after their answers and in recharge checks, retry on the schedule
//! (moved by the test clock), and list and redeliver them for the platform.

use std::sync::Arc;
use std::thread;

use e2e::TestApp;
use e2e::receiver::{Received, Receiver};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "whsec_e2e_events";

fn app_sending_to(receiver: &Receiver) -> TestApp {
    TestApp::start_with(&[
        ("events_url", &receiver.url()),
        ("events_host", &receiver.origin()),
        ("events_secret", SECRET),
    ])
}

/// What a platform does with `Credits-Signature`: recompute and compare.
fn verifies(event: &Received, secret: &str) -> bool {
    let header = event.header("credits-signature").expect("signed");
    let (t, v1) = header.split_once(",v1=").expect("t=...,v1=...");
    let t = t.strip_prefix("t=").expect("t=");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", event.body).as_bytes());
    mac.verify_slice(&hex::decode(v1).expect("hex")).is_ok()
}

#[test]
fn an_event_is_signed_retried_on_schedule_and_delivered_once() {
    let receiver = Receiver::start(2);
    let app = app_sending_to(&receiver);
    app.account("evt-acme", "free");
    let t0 = "2026-11-25T10:00:00Z";
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .at(t0)
        .json(&json!({"account_id": "evt-acme", "tokens": 100_000, "operation": "chat"}));
    assert_eq!(r.status, 201, "{}", r.body);
    // Sent right after the answer: the first attempt gets a 500.
    let got = receiver.wait_for(1);
    let event = got[0].json();
    assert_eq!(
        (&event["type"], &event["account_id"], &event["sequence"]),
        (&json!("credits.depleted"), &json!("evt-acme"), &json!(1))
    );
    assert_eq!(got[0].path, "/hooks/credits");
    assert_eq!(got[0].header("credits-event-id"), event["id"].as_str());
    assert!(verifies(&got[0], SECRET));
    assert!(
        !verifies(&got[0], "a-wrong-secret"),
        "a wrong secret fails verification"
    );
    let t = got[0].header("credits-signature").unwrap();
    assert!(
        t.starts_with("t=1795600800,"),
        "signed at the request's clock: {t}"
    );

    // Not due again before about a minute; then again, and after 5 more minutes.
    app.recharge_check_at("2026-11-25T10:00:30Z");
    app.recharge_check_at("2026-11-25T10:01:01Z");
    let _ = receiver.wait_for(2);
    app.recharge_check_at("2026-11-25T10:03:00Z");
    app.recharge_check_at("2026-11-25T10:06:02Z");
    let got = receiver.wait_for(3);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(receiver.got().len(), 3, "{:?}", receiver.got());
    assert!(got.iter().all(|g| g.body == got[0].body));

    let listed = app.call("GET", "/api/admin/events").service().send();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let recorded = &listed.body["events"][0];
    assert_eq!(recorded["id"], event["id"]);
    assert_eq!(
        recorded["delivery"],
        json!({"status": "delivered", "attempts": 3, "last_error": null})
    );
    // Redelivered on request: 202, and it arrives again.
    let id = event["id"].as_str().unwrap();
    let again = app
        .call("POST", &format!("/api/admin/events/{id}/redeliver"))
        .service()
        .at("2026-11-25T10:07:00Z")
        .send();
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["event"]["id"], event["id"]);
    let _ = receiver.wait_for(4);
    let nope = app
        .call("POST", "/api/admin/events/evt_000000099999/redeliver")
        .service()
        .send();
    assert_eq!(nope.code(), "not_found");
    let bad = app
        .call("GET", "/api/admin/events?after=nope")
        .service()
        .send();
    assert_eq!(bad.code(), "invalid_request");
}

#[test]
fn events_recorded_where_none_were_sent_are_delivered_by_a_later_instance() {
    // An instance without a receiver (or one that died after its change) leaves
    // its events in the outbox; the next instance that can deliver does.
    let quiet = TestApp::start();
    quiet.account("evt-outbox", "free");
    quiet.deduct("evt-outbox", 100_000);
    let receiver = Receiver::start(0);
    let sender = quiet.another_instance_with(&[
        ("events_url", &receiver.url()),
        ("events_host", &receiver.origin()),
        ("events_secret", SECRET),
    ]);
    sender.fire_cron();
    let got = receiver.wait_for(1);
    assert_eq!(got[0].json()["type"], "credits.depleted");
    assert!(verifies(&got[0], SECRET));
}

#[test]
fn racing_deductions_cross_once_and_two_instances_send_each_event_once() {
    let receiver = Receiver::start(0);
    let first = Arc::new(app_sending_to(&receiver));
    let second = Arc::new(first.another_instance_with(&[
        ("events_url", &receiver.url()),
        ("events_host", &receiver.origin()),
        ("events_secret", SECRET),
    ]));
    let key = first.paying_account("evt-race", "pro");
    let buy = first
        .call("POST", "/api/billing/credits/purchases")
        .key(&key)
        .json(&json!({"pack": "starter"}));
    assert_eq!(buy.status, 201);
    let settings = first
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(&key)
        .json(
            &json!({"enabled": true, "pack": "starter", "threshold_tokens": 500_000,
                      "monthly_limit_eur": "0.00"}),
        );
    assert_eq!(settings.status, 200, "{}", settings.body);
    first.deduct("evt-race", 2_000_000); // the plan allocation
    // 1,000,000 credits; 20 deductions of 40,000 race across the threshold.
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let app = Arc::clone(if i % 2 == 0 { &first } else { &second });
            thread::spawn(move || app.deduct("evt-race", 40_000).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 201);
    }
    // Both instances deliver at once, several times over.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let app = Arc::clone(if i % 2 == 0 { &first } else { &second });
            thread::spawn(move || app.recharge_check_at("2026-11-25T12:00:00Z"))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    thread::sleep(std::time::Duration::from_millis(500));
    let got = receiver.got();
    let low: Vec<_> = got
        .iter()
        .filter(|g| g.json()["type"] == "credits.low")
        .collect();
    assert_eq!(low.len(), 1, "one crossing, one event, sent once: {got:?}");
    let mut ids: Vec<String> = got
        .iter()
        .map(|g| g.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let sent = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), sent, "no event sent twice");
}

#[test]
fn a_receiver_that_does_not_answer_in_10_seconds_is_retried() {
    let receiver = Receiver::hanging(1);
    let app = app_sending_to(&receiver);
    app.account("evt-slow", "free");
    let started = std::time::Instant::now();
    let r = app.deduct("evt-slow", 100_000);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the answer never waits for the receiver"
    );
    let _ = receiver.wait_for(1);
    // The attempt gives up after 10 s and is recorded as failed, to retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let delivery = loop {
        let listed = app.call("GET", "/api/admin/events").service().send();
        let delivery = listed.body["events"][0]["delivery"].clone();
        if delivery["last_error"].is_string() || std::time::Instant::now() > deadline {
            break delivery;
        }
        thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(delivery["status"], "pending", "{delivery}");
    assert_eq!(delivery["attempts"], 1);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(14),
        "gave up after about 10 s, not the receiver's 15: {waited:?}"
    );
}
