//! Token holds over HTTP on the real components: the streaming-call pattern, a
//! hold that crosses a month, its errors, and races across two instances.

use std::sync::Arc;
use std::thread;

use e2e::TestApp;
use serde_json::{Value, json};

fn hold(app: &TestApp, account: &str, tokens: u64, at: &str) -> e2e::Reply {
    app.call("POST", "/api/billing/credits/holds")
        .service()
        .at(at)
        .json(
            &json!({"account_id": account, "tokens": tokens, "operation": "chat",
                      "resource": {"project": "p-1", "session": "s-1"}}),
        )
}

fn settle(app: &TestApp, account: &str, id: &str, tokens: u64, at: &str) -> e2e::Reply {
    app.call("POST", &format!("/api/billing/credits/holds/{id}/settle"))
        .service()
        .at(at)
        .json(&json!({"account_id": account, "tokens": tokens}))
}

fn void(app: &TestApp, account: &str, id: &str, at: &str) -> e2e::Reply {
    app.call("POST", &format!("/api/billing/credits/holds/{id}/void"))
        .service()
        .at(at)
        .json(&json!({"account_id": account}))
}

fn summary(app: &TestApp, key: &str, at: &str) -> Value {
    let r = app
        .call("GET", "/api/billing/credits")
        .key(key)
        .at(at)
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

const NOV: &str = "2026-11-30T23:55:00Z";
const DEC: &str = "2026-12-01T00:02:00Z";

#[test]
fn a_streaming_call_holds_settles_and_is_refunded_like_any_deduction() {
    let app = TestApp::shared();
    let key = app.account("hold-story", "free"); // 100,000 plan tokens
    let made = hold(&app, "hold-story", 8_000, NOV);
    assert_eq!(made.status, 201, "{}", made.body);
    let h = &made.body["hold"];
    assert_eq!(
        (
            &h["status"],
            &h["plan_tokens"],
            &h["credit_tokens"],
            &made.body["available_tokens"]
        ),
        (&json!("held"), &json!(8_000), &json!(0), &json!(92_000))
    );
    assert_eq!(h["resource"], json!({"project": "p-1", "session": "s-1"}));
    let id = h["id"].as_str().unwrap().to_owned();
    let s = summary(&app, &key, NOV);
    assert_eq!(
        (&s["held_tokens"], &s["available_tokens"]),
        (&json!(8_000), &json!(92_000))
    );
    assert_eq!(
        s["plan"]["remaining_tokens"], 100_000,
        "holds are not plan use"
    );

    // A deduction cannot take what the hold reserves.
    let too_much = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .at(NOV)
        .json(&json!({"account_id": "hold-story", "tokens": 92_001, "operation": "x"}));
    assert_eq!(
        (too_much.status, too_much.code()),
        (402, "insufficient_balance")
    );

    let read = app
        .call(
            "GET",
            &format!("/api/billing/credits/holds/{id}?account_id=hold-story"),
        )
        .service()
        .at(NOV)
        .send();
    assert_eq!((read.status, &read.body["hold"]["id"]), (200, &json!(id)));

    // Settled in the next month: its plan tokens count in November, and
    // December's allocation is whole.
    let settled = settle(&app, "hold-story", &id, 6_512, DEC);
    assert_eq!(settled.status, 201, "{}", settled.body);
    let tx = &settled.body["transaction"];
    assert_eq!(
        (
            &tx["type"],
            &tx["tokens"],
            &tx["plan_tokens"],
            &tx["hold_id"]
        ),
        (
            &json!("deduction"),
            &json!(6_512),
            &json!(6_512),
            &json!(id)
        )
    );
    assert_eq!(settled.body["hold"]["status"], "settled");
    assert_eq!(settled.body["hold"]["settled_tokens"], 6_512);
    assert_eq!(settled.body["available_tokens"], 100_000);
    let s = summary(&app, &key, DEC);
    assert_eq!(
        (&s["held_tokens"], &s["plan"]["used_tokens"]),
        (&json!(0), &json!(0))
    );

    // Ended once: settling or voiding again is a conflict, before hold_exceeded.
    let again = settle(&app, "hold-story", &id, 9_999_999, DEC);
    assert_eq!((again.status, again.code()), (409, "conflict"));
    assert_eq!(void(&app, "hold-story", &id, DEC).code(), "conflict");

    // Its deduction is refundable like any other.
    let refund = app
        .call("POST", "/api/billing/credits/refunds")
        .service()
        .at(DEC)
        .json(&json!({"account_id": "hold-story", "deduction_id": tx["id"], "tokens": 512}));
    assert_eq!(refund.status, 201, "{}", refund.body);
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn holds_answer_each_error_of_the_contract() {
    let app = TestApp::shared();
    app.account("hold-errors", "free");
    app.account("hold-other", "free");
    let at = "2026-11-10T10:00:00Z";
    // 402, nothing held.
    let r = hold(&app, "hold-errors", 100_001, at);
    assert_eq!((r.status, r.code()), (402, "insufficient_balance"));
    // Bad bodies.
    for body in [
        json!({"account_id": "hold-errors", "tokens": 0, "operation": "chat"}),
        json!({"account_id": "hold-errors", "tokens": 10, "operation": ""}),
        json!({"account_id": "hold-errors", "tokens": 10, "operation": "chat", "expires_in_seconds": 0}),
        json!({"account_id": "hold-errors", "tokens": 10, "operation": "chat", "expires_in_seconds": 86_401}),
        json!({"account_id": "hold-errors", "tokens": "10", "operation": "chat"}),
    ] {
        let r = app
            .call("POST", "/api/billing/credits/holds")
            .service()
            .at(at)
            .json(&body);
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{body}");
    }
    let made = hold(&app, "hold-errors", 1_000, at);
    let id = made.body["hold"]["id"].as_str().unwrap().to_owned();
    // 409 hold_exceeded, and the hold stays held.
    let r = settle(&app, "hold-errors", &id, 1_001, at);
    assert_eq!((r.status, r.code()), (409, "hold_exceeded"));
    // 404: another account's hold, an unknown id, a malformed id.
    assert_eq!(settle(&app, "hold-other", &id, 1, at).code(), "not_found");
    assert_eq!(
        void(
            &app,
            "hold-errors",
            "hold_0123456789abcdef0123456789abcdef",
            at
        )
        .code(),
        "not_found"
    );
    assert_eq!(void(&app, "hold-errors", "nope", at).code(), "not_found");
    let r = app
        .call("GET", &format!("/api/billing/credits/holds/{id}"))
        .service()
        .at(at)
        .send();
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_request"),
        "account_id is required"
    );
    let r = app
        .call("GET", &format!("/api/billing/credits/holds/{id}/settle"))
        .service()
        .send();
    assert_eq!(r.status, 405);
    // An account key may not hold.
    let key = app.account("hold-key", "free");
    let r = app
        .call("POST", "/api/billing/credits/holds")
        .key(&key)
        .json(&json!({"account_id": "hold-key", "tokens": 1, "operation": "chat"}));
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    // Expiry: from expires_at on it reserves nothing and reads back expired.
    let later = "2026-11-10T10:10:00Z"; // 600 s by default
    let r = app
        .call(
            "GET",
            &format!("/api/billing/credits/holds/{id}?account_id=hold-errors"),
        )
        .service()
        .at(later)
        .send();
    assert_eq!(r.body["hold"]["status"], "expired");
    assert_eq!(
        settle(&app, "hold-errors", &id, 1, later).code(),
        "conflict"
    );
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .at(later)
        .json(&json!({"account_id": "hold-errors", "tokens": 100_000, "operation": "x"}));
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn a_replayed_settle_answers_the_first_response() {
    let app = TestApp::shared();
    app.account("hold-replay", "pro");
    let at = "2026-11-10T10:00:00Z";
    let made = app
        .call("POST", "/api/billing/credits/holds")
        .service()
        .idempotency("call-1")
        .at(at)
        .json(&json!({"account_id": "hold-replay", "tokens": 5_000, "operation": "chat"}));
    let again = app
        .call("POST", "/api/billing/credits/holds")
        .service()
        .idempotency("call-1")
        .at(at)
        .json(&json!({"account_id": "hold-replay", "tokens": 5_000, "operation": "chat"}));
    assert_eq!((made.status, again.status), (201, 201));
    assert_eq!(made.body, again.body);
    let id = made.body["hold"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/billing/credits/holds/{id}/settle");
    let send = || {
        app.call("POST", &path)
            .service()
            .idempotency("end-1")
            .at(at)
            .json(&json!({"account_id": "hold-replay", "tokens": 4_000}))
    };
    let (first, replay) = (send(), send());
    assert_eq!((first.status, replay.status), (201, 201));
    assert_eq!(first.body, replay.body);
    let conflict = app
        .call("POST", &path)
        .service()
        .idempotency("end-1")
        .at(at)
        .json(&json!({"account_id": "hold-replay", "tokens": 3_000}));
    assert_eq!(conflict.code(), "idempotency_conflict");
}

#[test]
fn holds_and_deductions_on_two_instances_never_take_more_than_there_is() {
    let first = Arc::new(TestApp::start());
    let second = Arc::new(first.another_instance());
    let key = first.account("hold-race", "free"); // 100,000 plan tokens
    let at = "2026-11-10T10:00:00Z";
    let handles: Vec<_> = (0..30)
        .map(|i| {
            let app = Arc::clone(if i % 2 == 0 { &first } else { &second });
            thread::spawn(move || {
                if i % 3 == 0 {
                    app.call("POST", "/api/billing/credits/deductions")
                        .service()
                        .at(at)
                        .json(
                            &json!({"account_id": "hold-race", "tokens": 4_000, "operation": "x"}),
                        )
                } else {
                    hold(&app, "hold-race", 4_000, at)
                }
            })
        })
        .collect();
    let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let taken = replies.iter().filter(|r| r.status == 201).count();
    let refused = replies.iter().filter(|r| r.status == 402).count();
    assert_eq!((taken, refused), (25, 5), "25 × 4,000 = 100,000");
    let s = summary(&first, &key, at);
    assert_eq!(s["available_tokens"], 0);

    // One hold: settle and void race on both instances; it ends exactly once.
    let made = replies
        .iter()
        .find(|r| r.status == 201 && r.body["hold"].is_object())
        .unwrap();
    let id = made.body["hold"]["id"].as_str().unwrap().to_owned();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let app = Arc::clone(if i % 2 == 0 { &first } else { &second });
            let id = id.clone();
            thread::spawn(move || {
                if i < 5 {
                    settle(&app, "hold-race", &id, 3_000, at).status
                } else {
                    void(&app, "hold-race", &id, at).status
                }
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ended = statuses.iter().filter(|s| **s == 200 || **s == 201).count();
    assert_eq!(ended, 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9);
    first.assert_ledger_matches_balance(&key);
}
