//! The payment provider as the operator configures it (API.md, "Payments"): a
//! configuration that cannot charge refuses every route that would, naming the
//! variable, and never charges through the sandbox in its place.

use e2e::TestApp;
use serde_json::json;

fn refused_naming(app: &TestApp, key: &str, variable: &str) {
    let r = app
        .call("POST", "/api/billing/credits/purchases")
        .key(key)
        .json(&json!({"pack": "starter"}));
    assert_eq!((r.status, r.code()), (500, "internal_error"), "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(variable), "{message}");
    let r = app
        .call("POST", "/api/internal/recharge-check")
        .service()
        .send();
    assert_eq!((r.status, r.code()), (500, "internal_error"), "{}", r.body);
    // Nothing was bought, and what does not charge still works.
    let r = app.call("GET", "/api/billing/credits").key(key).send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["credits"]["balance_tokens"], 0);
    let r = app
        .call("POST", "/api/billing/credits/deductions")
        .service()
        .json(&json!({"account_id": "cfg-acme", "tokens": 10, "operation": "chat"}));
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn stripe_without_its_secret_key_refuses_to_charge_and_names_the_variable() {
    let app = TestApp::start_with(&[
        ("payment_provider", "stripe"),
        ("stripe_webhook_secret", "whsec_e2e"),
    ]);
    let key = app.paying_account("cfg-acme", "pro");
    refused_naming(&app, &key, "stripe_secret_key");
}

#[test]
fn stripe_is_refused_by_this_version_rather_than_charged_through_the_sandbox() {
    let app = TestApp::start_with(&[
        ("payment_provider", "stripe"),
        ("stripe_secret_key", "sk_test_e2e_not_logged"),
        ("stripe_webhook_secret", "whsec_e2e"),
    ]);
    let key = app.paying_account("cfg-acme", "pro");
    refused_naming(&app, &key, "payment_provider");
}
