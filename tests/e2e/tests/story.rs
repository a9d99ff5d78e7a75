//! The product's stories, over HTTP against the real components.

use e2e::TestApp;
use serde_json::json;

#[test]
fn buy_deduct_refund_and_read_the_history() {
    let app = TestApp::shared();
    let key = app.paying_account("story-acme", "pro");

    let packs = app
        .call("GET", "/api/billing/credits/packs")
        .key(&key)
        .send();
    assert_eq!(packs.status, 200);
    assert_eq!(packs.body["packs"].as_array().unwrap().len(), 4);
    assert_eq!(
        packs.body["packs"][3],
        json!({"id": "pro", "tokens": 15_000_000, "price_eur": "50.00", "price_per_million_eur": "3.33"})
    );

    let bought = app
        .call("POST", "/api/billing/credits/purchases")
        .key(&key)
        .json(&json!({"pack": "standard"}));
    assert_eq!(bought.status, 201, "{}", bought.body);
    assert_eq!(bought.body["transaction"]["type"], "purchase");
    assert_eq!(bought.body["transaction"]["source"], "manual");
    assert_eq!(bought.body["transaction"]["amount_eur"], "10.00");
    assert_eq!(bought.body["credits"]["balance_tokens"], 2_500_000);

    // 2,000,000 plan tokens first, then 1,500 credits.
    let d = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .json(
            &json!({"account_id": "story-acme", "tokens": 2_001_500, "operation": "enrichment",
                      "resource": {"project": "p-42", "session": "s-9"}}),
        );
    assert_eq!(d.status, 201, "{}", d.body);
    let t = &d.body["transaction"];
    assert_eq!(
        (t["plan_tokens"].as_u64(), t["credit_tokens"].as_u64()),
        (Some(2_000_000), Some(1_500))
    );
    assert_eq!(t["resource"], json!({"project": "p-42", "session": "s-9"}));
    assert_eq!(d.body["available_tokens"], 2_500_000 - 1_500);

    let r = app.call("POST", "/api/billing/credits/refunds").service().json(&json!({
        "account_id": "story-acme", "deduction_id": t["id"], "tokens": 2_000, "reason": "job failed"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let rt = &r.body["transaction"];
    assert_eq!(rt["type"], "refund");
    assert_eq!(rt["refund_of"], t["id"]);
    assert_eq!(
        (rt["credit_tokens"].as_u64(), rt["plan_tokens"].as_u64()),
        (Some(1_500), Some(500))
    );
    assert_eq!(rt["operation"], "enrichment");
    assert_eq!(rt["resource"]["project"], "p-42");
    assert_eq!(rt["reason"], "job failed");

    // The rest of the deduction, by default.
    let rest = app
        .call("POST", "/api/billing/credits/refunds")
        .service()
        .json(&json!({
        "account_id": "story-acme", "deduction_id": t["id"]}));
    assert_eq!(rest.status, 201, "{}", rest.body);
    assert_eq!(rest.body["transaction"]["tokens"], 2_001_500 - 2_000);
    let over = app
        .call("POST", "/api/billing/credits/refunds")
        .service()
        .json(&json!({
        "account_id": "story-acme", "deduction_id": t["id"], "tokens": 1}));
    assert_eq!(
        (over.status, over.code()),
        (409, "refund_exceeds_deduction")
    );

    let summary = app.assert_ledger_matches_balance(&key);
    assert_eq!(summary["plan"]["used_tokens"], 0);
    assert_eq!(summary["plan"]["remaining_tokens"], 2_000_000);
    assert_eq!(summary["credits"]["balance_tokens"], 2_500_000);
    assert_eq!(summary["available_tokens"], 4_500_000);

    let all = app.all_transactions(&key);
    let kinds: Vec<_> = all.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["refund", "refund", "deduction", "purchase"],
        "newest first"
    );
    let refunds = app
        .call("GET", "/api/billing/credits?type=refund")
        .key(&key)
        .send();
    assert_eq!(refunds.body["transactions"].as_array().unwrap().len(), 2);
    let by_project = app
        .call("GET", "/api/billing/credits?project=p-42")
        .key(&key)
        .send();
    assert_eq!(by_project.body["transactions"].as_array().unwrap().len(), 3);
}

#[test]
fn paging_returns_every_transaction_once_while_new_ones_arrive() {
    let app = TestApp::shared();
    let key = app.account("story-pager", "team");
    for _ in 0..7 {
        assert_eq!(app.deduct("story-pager", 10).status, 201);
    }
    let first = app
        .call("GET", "/api/billing/credits?limit=3")
        .key(&key)
        .send();
    let mut seen: Vec<String> = first.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(app.deduct("story-pager", 10).status, 201); // written while paging
    }
    loop {
        let page = app
            .call(
                "GET",
                &format!("/api/billing/credits?limit=3&cursor={cursor}"),
            )
            .key(&key)
            .send();
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(
            page.body["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "the first 7, each once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "ids sort by creation, newest first");
    let bad = app
        .call("GET", "/api/billing/credits?cursor=tx_999999999999")
        .key(&key)
        .send();
    assert_eq!((bad.status, bad.code()), (400, "invalid_request"));
}

#[test]
fn the_allocation_renews_on_the_first_of_the_month() {
    let app = TestApp::shared();
    let key = app.account("story-months", "free");
    let nov = "2026-11-30T23:59:00Z";
    let d = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .at(nov)
        .json(&json!({"account_id": "story-months", "tokens": 100_000, "operation": "hygiene"}));
    assert_eq!(d.status, 201, "{}", d.body);
    let more = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .at(nov)
        .json(&json!({"account_id": "story-months", "tokens": 1, "operation": "hygiene"}));
    assert_eq!((more.status, more.code()), (402, "insufficient_balance"));

    let dec = "2026-12-01T00:00:00Z";
    let s = app
        .call("GET", "/api/billing/credits")
        .key(&key)
        .at(dec)
        .send();
    assert_eq!(s.body["plan"]["used_tokens"], 0);
    assert_eq!(s.body["plan"]["remaining_tokens"], 100_000);
    assert_eq!(s.body["plan"]["period_start"], "2026-12-01T00:00:00.000Z");
    assert_eq!(s.body["plan"]["period_end"], "2027-01-01T00:00:00.000Z");

    // A refund of November's plan tokens in December counts but restores nothing.
    let r = app
        .call("POST", "/api/billing/credits/refunds")
        .service()
        .at(dec)
        .json(&json!({"account_id": "story-months", "deduction_id": d.body["transaction"]["id"]}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (
            r.body["transaction"]["tokens"].as_u64(),
            r.body["transaction"]["plan_tokens"].as_u64()
        ),
        (Some(100_000), Some(0))
    );
    let s = app
        .call("GET", "/api/billing/credits")
        .key(&key)
        .at(dec)
        .send();
    assert_eq!(s.body["available_tokens"], 100_000);

    // Usage over November, net of the December refund only when December is in range.
    let nov_usage = app
        .call(
            "GET",
            "/api/billing/credits/usage?from=2026-11-01&to=2026-12-01",
        )
        .key(&key)
        .send();
    assert_eq!(
        nov_usage.body["groups"],
        json!([{"key": "2026-11-30", "tokens": 100_000}])
    );
    let dec_usage = app
        .call(
            "GET",
            "/api/billing/credits/usage?from=2026-12-01&to=2027-01-01&group_by=operation",
        )
        .key(&key)
        .send();
    assert_eq!(
        dec_usage.body["groups"],
        json!([{"key": "hygiene", "tokens": -100_000}])
    );
}

#[test]
fn plan_changes_apply_this_month() {
    let app = TestApp::shared();
    let key = app.account("story-plans", "team");
    assert_eq!(app.deduct("story-plans", 3_000_000).status, 201);
    let r = app
        .call("PUT", "/api/admin/accounts/story-plans/plan")
        .service()
        .json(&json!({"plan": "pro"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["plan"]["name"], "pro");
    assert_eq!(r.body["plan"]["remaining_tokens"], 0, "never below 0");
    assert!(r.body.get("transactions").is_none());
    let s = app.call("GET", "/api/billing/credits").key(&key).send();
    assert_eq!(s.body["available_tokens"], 0);
}

#[test]
fn auto_recharge_buys_once_per_crossing_within_the_limit() {
    let app = TestApp::shared();
    let key = app.paying_account("story-auto", "pro");
    let before = app
        .call("GET", "/api/billing/credits/auto-recharge")
        .key(&key)
        .send();
    assert_eq!(
        before.body,
        json!({"enabled": false, "pack": null, "threshold_tokens": null,
        "monthly_limit_eur": "50.00", "spent_this_month_eur": "0.00", "last_error": null})
    );

    let put = app.call("PUT", "/api/billing/credits/auto-recharge").key(&key)
        .json(&json!({"enabled": true, "pack": "plus", "threshold_tokens": 1_000_000, "monthly_limit_eur": "50.00"}));
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["pack"], "plus");
    // Saving buys nothing by itself.
    let s = app.call("GET", "/api/billing/credits").key(&key).send();
    assert_eq!(s.body["credits"]["balance_tokens"], 0);

    // The plan allocation goes first; the deduction that dips into (empty) credits
    // leaves them below the threshold and sets off a recharge.
    let d = app.deduct("story-auto", 2_000_001);
    assert_eq!((d.status, d.code()), (402, "insufficient_balance"));
    let d = app.deduct("story-auto", 1_999_999);
    assert_eq!(d.status, 201, "{}", d.body);
    assert_eq!(d.body["available_tokens"], 1 + 7_000_000, "{}", d.body);
    let d = app.deduct("story-auto", 6_500_000);
    assert_eq!(d.status, 201, "{}", d.body);
    assert_eq!(
        d.body["available_tokens"],
        500_001 + 7_000_000,
        "second crossing, second pack"
    );
    // €50 limit: a third plus pack (€75 in all) would pass it.
    let d = app.deduct("story-auto", 7_000_000);
    assert_eq!(d.status, 201, "{}", d.body);
    assert_eq!(d.body["available_tokens"], 500_001);
    let check = app
        .call("POST", "/api/internal/recharge-check")
        .service()
        .send();
    assert_eq!(check.status, 200, "{}", check.body);
    assert!(
        check.body["skipped"]
            .as_array()
            .unwrap()
            .contains(&json!("story-auto")),
        "{}",
        check.body
    );

    let settings = app
        .call("GET", "/api/billing/credits/auto-recharge")
        .key(&key)
        .send();
    assert_eq!(settings.body["spent_this_month_eur"], "50.00");
    let purchases = app
        .call("GET", "/api/billing/credits?type=purchase")
        .key(&key)
        .send();
    let sources: Vec<_> = purchases.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["source"].clone())
        .collect();
    assert_eq!(sources, [json!("auto_recharge"), json!("auto_recharge")]);
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn declined_auto_recharge_waits_then_disables_after_three() {
    let app = TestApp::start();
    let key = app.account("declines", "team");
    let pm = app
        .call("PUT", "/api/billing/payment-method")
        .key(&key)
        .json(&json!({"payment_method": "pm_card_chargeDeclined"}));
    assert_eq!(pm.status, 200);
    let put = app
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(&key)
        .json(&json!({"enabled": true, "pack": "starter", "threshold_tokens": 10}));
    assert_eq!(put.status, 200, "{}", put.body);

    let day = |d: u32| format!("2026-11-{d:02}T12:00:00Z");
    let check = |time: &str| {
        app.call("POST", "/api/internal/recharge-check")
            .service()
            .at(time)
            .send()
            .body
    };
    assert_eq!(
        check(&day(2)),
        json!({"checked": 1, "recharged": [], "skipped": [], "failed": ["declines"]})
    );
    let s = app
        .call("GET", "/api/billing/credits/auto-recharge")
        .key(&key)
        .send();
    assert_eq!(s.body["last_error"]["code"], "payment_failed");
    assert_eq!(
        check(&day(2)),
        json!({"checked": 1, "recharged": [], "skipped": ["declines"], "failed": []}),
        "waits 24 hours"
    );
    assert_eq!(check(&day(3))["failed"], json!(["declines"]));
    assert_eq!(check(&day(4))["failed"], json!(["declines"]));
    let s = app
        .call("GET", "/api/billing/credits/auto-recharge")
        .key(&key)
        .send();
    assert_eq!(s.body["enabled"], false, "{}", s.body);
    assert!(
        s.body["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 declined"),
        "{}",
        s.body
    );
    assert_eq!(check(&day(6))["checked"], 0);

    // A new card and re-enabling: the scheduled component buys.
    app.call("PUT", "/api/billing/payment-method")
        .key(&key)
        .json(&json!({"payment_method": "pm_card_visa"}));
    app.call("PUT", "/api/billing/credits/auto-recharge")
        .key(&key)
        .json(&json!({"enabled": true, "pack": "starter", "threshold_tokens": 10}));
    app.fire_cron();
    let s = app.call("GET", "/api/billing/credits").key(&key).send();
    assert_eq!(s.body["credits"]["balance_tokens"], 1_000_000, "{}", s.body);
    assert_eq!(s.body["auto_recharge"]["last_error"], json!(null));
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn the_dashboard_and_unknown_routes() {
    let app = TestApp::shared();
    let page = app.call("GET", "/").send();
    assert_eq!(page.status, 200);
    assert!(
        page.headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let missing = app.call("GET", "/api/billing/nothing-here").send();
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
}
