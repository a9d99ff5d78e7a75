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
    let key = app.account("cfg-acme", "pro");
    refused_naming(&app, &key, "stripe_secret_key");
}

/// `stripe_api_base` is also the components' outbound grant, so a value that is
/// no URL stops the app at load, as Spin refuses such an `allowed_outbound_hosts`.
#[test]
fn stripe_with_an_api_base_that_is_no_url_does_not_start() {
    let state = tempfile::tempdir().unwrap();
    let variables = [
        ("service_token", "e2e-service"),
        ("payment_provider", "stripe"),
        ("stripe_secret_key", "sk_test_e2e_not_logged"),
        ("stripe_webhook_secret", "whsec_e2e"),
        ("stripe_api_base", "api.stripe.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let options = minispin::AppOptions {
        state_dir: Some(state.path().to_owned()),
        variables,
        cron: false,
        ..minispin::AppOptions::default()
    };
    let Err(refused) = minispin::App::load(e2e::repo_root().join("spin.toml"), options) else {
        panic!("the app loaded with an outbound host that is no URL");
    };
    let message = format!("{refused:#}");
    assert!(message.contains("api.stripe.com"), "{message}");
    assert!(!message.contains("sk_test_e2e_not_logged"), "{message}");
}
