//! Every error code of API.md, tenant isolation, and bad input that changes nothing.

use e2e::{SERVICE, TestApp};
use serde_json::json;

#[test]
fn every_error_code_has_its_status() {
    let app = TestApp::shared();
    let key = app.account("err-acme", "pro");
    let free = app.account("err-free", "free");

    let r = app.call("GET", "/api/nowhere").send();
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app
        .call("DELETE", "/api/billing/credits/purchases")
        .key(&key)
        .send();
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
    assert_eq!(r.headers.get("allow").map(String::as_str), Some("POST"));
    let r = app.call("GET", "/api/billing/credits").send();
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = app
        .call("GET", "/api/billing/credits")
        .key("ck_not_a_key")
        .send();
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .key(&key)
        .json(&json!({}));
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app.call("GET", "/api/billing/credits").service().send();
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .call("POST", "/api/billing/credits/purchases")
        .key(&free)
        .json(&json!({"pack": "starter"}));
    assert_eq!((r.status, r.code()), (403, "plan_upgrade_required"));
    let r = app
        .call("POST", "/api/billing/credits/purchases")
        .key(&key)
        .json(&json!({"pack": "starter"}));
    assert_eq!((r.status, r.code()), (400, "payment_method_required"));
    let r = app
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(&key)
        .json(&json!({"enabled": true, "pack": "starter", "threshold_tokens": 5}));
    assert_eq!((r.status, r.code()), (400, "payment_method_required"));
    let r = app
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(&free)
        .json(&json!({"enabled": true, "pack": "starter", "threshold_tokens": 5}));
    assert_eq!((r.status, r.code()), (403, "plan_upgrade_required"));
    let r = app.deduct("err-acme", 2_000_001);
    assert_eq!((r.status, r.code()), (402, "insufficient_balance"));
    app.call("PUT", "/api/billing/payment-method")
        .key(&key)
        .json(&json!({"payment_method": "pm_card_chargeDeclined"}));
    let r = app
        .call("POST", "/api/billing/credits/purchases")
        .key(&key)
        .json(&json!({"pack": "starter"}));
    assert_eq!((r.status, r.code()), (402, "payment_failed"));
    let r = app
        .call("POST", "/api/admin/accounts")
        .service()
        .json(&json!({"account_id": "err-acme"}));
    assert_eq!((r.status, r.code()), (409, "conflict"));
    let d = app.deduct("err-acme", 10);
    let r = app.call("POST", "/api/billing/credits/refunds").service()
        .json(&json!({"account_id": "err-acme", "deduction_id": d.body["transaction"]["id"], "tokens": 11}));
    assert_eq!((r.status, r.code()), (409, "refund_exceeds_deduction"));
    let big = vec![b' '; 64 * 1024 + 1];
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .header("content-type", "application/json")
        .raw(&big);
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .header("content-type", "text/plain")
        .raw(b"{}");
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .idempotency("k")
        .json(&json!({"account_id": "err-acme", "tokens": 1, "operation": "x"}));
    assert_eq!(r.status, 201);
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .idempotency("k")
        .json(&json!({"account_id": "err-acme", "tokens": 2, "operation": "x"}));
    assert_eq!((r.status, r.code()), (409, "idempotency_conflict"));
    for r in [&r] {
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}

#[test]
fn malformed_bodies_are_invalid_requests_and_change_nothing() {
    let app = TestApp::shared();
    let key = app.paying_account("err-bodies", "pro");
    let deduction_bodies = [
        json!({"account_id": "err-bodies", "tokens": "100", "operation": "x"}),
        json!({"account_id": "err-bodies", "tokens": 1.5, "operation": "x"}),
        json!({"account_id": "err-bodies", "tokens": 0, "operation": "x"}),
        json!({"account_id": "err-bodies", "tokens": -1, "operation": "x"}),
        json!({"account_id": "err-bodies", "tokens": 9_007_199_254_740_992_u64, "operation": "x"}),
        json!({"account_id": "err-bodies", "tokens": 1, "operation": ""}),
        json!({"account_id": "err-bodies", "tokens": 1, "operation": "x".repeat(65)}),
        json!({"account_id": "err-bodies", "tokens": 1, "operation": "x", "resource": {"project": "p".repeat(129)}}),
        json!({"account_id": "bad id!", "tokens": 1, "operation": "x"}),
        json!({"tokens": 1, "operation": "x"}),
        json!([1, 2]),
    ];
    for body in &deduction_bodies {
        let r = app
            .call("POST", "/api/billing/credits/deductions")
            .service()
            .json(body);
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_request"),
            "{body}: {}",
            r.body
        );
    }
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .header("content-type", "application/json")
        .raw(b"{\"tokens\": ");
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .idempotency("tab\tkey")
        .json(&json!({"account_id": "err-bodies", "tokens": 1, "operation": "x"}));
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    for body in [json!({"pack": "mega"}), json!({"pack": 5}), json!({})] {
        let r = app
            .call("POST", "/api/billing/credits/purchases")
            .key(&key)
            .json(&body);
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{body}");
    }
    for body in [
        json!({"enabled": true, "pack": "starter"}),
        json!({"enabled": true, "pack": "starter", "threshold_tokens": 0}),
        json!({"enabled": true, "pack": "starter", "threshold_tokens": 5, "monthly_limit_eur": 50}),
        json!({"enabled": true, "pack": "starter", "threshold_tokens": 5, "monthly_limit_eur": "50.5"}),
        json!({"enabled": "yes"}),
    ] {
        let r = app
            .call("PUT", "/api/billing/credits/auto-recharge")
            .key(&key)
            .json(&body);
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{body}");
    }
    for pm in ["card_visa", "pm_", "pm_bad-char"] {
        let r = app
            .call("PUT", "/api/billing/payment-method")
            .key(&key)
            .json(&json!({"payment_method": pm}));
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{pm}");
    }
    for query in [
        "limit=0",
        "limit=201",
        "limit=x",
        "type=gift",
        "cursor=nope",
    ] {
        let r = app
            .call("GET", &format!("/api/billing/credits?{query}"))
            .key(&key)
            .send();
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{query}");
    }
    for query in [
        "group_by=week",
        "from=yesterday",
        "from=2026-11-10&to=2026-11-01",
    ] {
        let r = app
            .call("GET", &format!("/api/billing/credits/usage?{query}"))
            .key(&key)
            .send();
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{query}");
    }
    let r = app
        .call("POST", "/api/admin/accounts")
        .service()
        .json(&json!({"account_id": "x", "plan": "gold"}));
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = app
        .call("GET", "/api/billing/credits")
        .key(&key)
        .at("not a time")
        .send();
    assert_eq!((r.status, r.code()), (400, "invalid_request"));

    let s = app.call("GET", "/api/billing/credits").key(&key).send();
    assert_eq!(s.body["transactions"], json!([]), "nothing changed");
    assert_eq!(s.body["plan"]["used_tokens"], 0);
    assert_eq!(s.body["auto_recharge"]["enabled"], false);
    assert_eq!(s.body["payment_method"], "pm_card_visa");
}

#[test]
fn accounts_never_see_each_other() {
    let app = TestApp::shared();
    let a = app.account("iso-a", "pro");
    let b = app.account("iso-b", "pro");
    let d = app.deduct("iso-a", 5);
    let id = d.body["transaction"]["id"].as_str().unwrap().to_owned();
    // B's history has nothing of A's; A's cursor is not B's.
    let bs = app.call("GET", "/api/billing/credits").key(&b).send();
    assert_eq!(bs.body["account_id"], "iso-b");
    assert_eq!(bs.body["transactions"], json!([]));
    let r = app
        .call("GET", &format!("/api/billing/credits?cursor={id}"))
        .key(&b)
        .send();
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    // A refund of A's deduction in B's name is not found.
    let r = app
        .call("POST", "/api/billing/credits/refunds")
        .service()
        .json(&json!({"account_id": "iso-b", "deduction_id": id}));
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app
        .call("PUT", "/api/admin/accounts/iso-nobody/plan")
        .service()
        .json(&json!({"plan": "pro"}));
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert_ne!(a, b);
    // The service token is not an account key, and no key is the service token.
    assert_ne!(a, SERVICE);
}
