//! Races on real components: many requests at once, one database.

use std::sync::Arc;
use std::thread;

use e2e::TestApp;
use serde_json::json;

#[test]
fn concurrent_deductions_never_overdraw() {
    let app = TestApp::shared();
    let key = app.account("race-last", "free"); // 100,000 plan tokens, no credits
    let handles: Vec<_> = (0..40)
        .map(|_| {
            let app = Arc::clone(&app);
            thread::spawn(move || app.deduct("race-last", 3_000).status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((ok, refused), (33, 7), "{statuses:?}"); // 33 × 3,000 ≤ 100,000 < 34 × 3,000
    let s = app.assert_ledger_matches_balance(&key);
    assert_eq!(s["plan"]["used_tokens"], 99_000);
    assert_eq!(app.all_transactions(&key).len(), 33);
}

#[test]
fn racing_duplicates_with_one_idempotency_key_move_tokens_once() {
    let app = TestApp::shared();
    let key = app.paying_account("race-idem", "pro");
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let app = Arc::clone(&app);
            let key = key.clone();
            thread::spawn(move || {
                if i % 2 == 0 {
                    app.call("POST", "/api/billing/credits/deductions").service().idempotency("same-job")
                        .json(&json!({"operation": "enrichment", "tokens": 1_000, "account_id": "race-idem"}))
                } else {
                    app.call("POST", "/api/billing/credits/purchases").key(&key).idempotency("same-buy")
                        .json(&json!({"pack": "starter"}))
                }
            })
        })
        .collect();
    let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.status, 201, "{i}: {}", r.body);
    }
    let ids = |even: bool| -> Vec<String> {
        replies
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 2 == 0) == even)
            .map(|(_, r)| r.body["transaction"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (deductions, purchases) = (ids(true), ids(false));
    assert!(
        deductions.iter().all(|id| *id == deductions[0]),
        "{deductions:?}"
    );
    assert!(
        purchases.iter().all(|id| *id == purchases[0]),
        "{purchases:?}"
    );
    assert_eq!(app.all_transactions(&key).len(), 2);
    let s = app.assert_ledger_matches_balance(&key);
    assert_eq!(s["credits"]["balance_tokens"], 1_000_000);
    assert_eq!(s["plan"]["used_tokens"], 1_000);
}

#[test]
fn racing_recharge_checks_buy_one_pack() {
    let app = Arc::new(TestApp::start());
    let key = app.paying_account("race-auto", "pro");
    let put = app
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(&key)
        .json(&json!({"enabled": true, "pack": "standard", "threshold_tokens": 1_000}));
    assert_eq!(put.status, 200, "{}", put.body);
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let app = Arc::clone(&app);
            thread::spawn(move || {
                if i % 4 == 0 {
                    app.fire_cron();
                    None
                } else {
                    Some(
                        app.call("POST", "/api/internal/recharge-check")
                            .service()
                            .send(),
                    )
                }
            })
        })
        .collect();
    let mut recharged = 0;
    for h in handles {
        if let Some(r) = h.join().unwrap() {
            assert_eq!(r.status, 200, "{}", r.body);
            recharged += r.body["recharged"].as_array().unwrap().len();
        }
    }
    assert!(
        recharged <= 1,
        "at most one evaluation reports the purchase"
    );
    let s = app.assert_ledger_matches_balance(&key);
    assert_eq!(
        s["credits"]["balance_tokens"], 2_500_000,
        "exactly one pack: {s}"
    );
    assert_eq!(s["auto_recharge"]["spent_this_month_eur"], "10.00");
}

#[test]
fn two_instances_on_one_database_never_overdraw() {
    let first = Arc::new(TestApp::start());
    let second = Arc::new(first.another_instance());
    let key = first.paying_account("race-hosts", "pro");
    let bought = first
        .call("POST", "/api/billing/credits/purchases")
        .key(&key)
        .json(&json!({"pack": "starter"}));
    assert_eq!(bought.status, 201, "{}", bought.body);
    // 2,000,000 plan + 1,000,000 credits = 3,000,000; 48 × 70,000 = 3,360,000 asked.
    let handles: Vec<_> = (0..48)
        .map(|i| {
            let host = Arc::clone(if i % 2 == 0 { &first } else { &second });
            thread::spawn(move || host.deduct("race-hosts", 70_000).status)
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|s| *s == 201)
        .count();
    assert_eq!(ok, 42, "3,000,000 / 70,000 = 42 fit");
    let s = second.assert_ledger_matches_balance(&key);
    assert_eq!(s["available_tokens"], 3_000_000 - 42 * 70_000);
    assert_eq!(
        s["credits"]["balance_tokens"],
        1_000_000 - (42 * 70_000 - 2_000_000)
    );
}
