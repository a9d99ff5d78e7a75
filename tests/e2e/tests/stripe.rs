//! Payments through Stripe (API.md, "Payments"), end to end: the real
//! components served from `spin.toml` with `payment_provider = "stripe"`, their
//! outbound HTTP pointed at our Stripe-compatible test server, and Stripe's
//! webhooks signed as Stripe signs them.

use std::thread;
use std::time::{Duration, Instant};

use credits::{Clock as _, SystemClock};
use e2e::{Reply, TestApp};
use fake_stripe::{FakeStripe, Mode, SECRET};
use serde_json::{Value, json};

const WEBHOOK_SECRET: &str = "whsec_e2e_webhooks";

fn stripe_app(stripe: &FakeStripe) -> TestApp {
    TestApp::start_with(&[
        ("payment_provider", "stripe"),
        ("stripe_secret_key", SECRET),
        ("stripe_webhook_secret", WEBHOOK_SECRET),
        ("stripe_publishable_key", "pk_test_e2e"),
        ("stripe_api_base", &stripe.base()),
    ])
}

/// A pro account whose `card` was saved the way the dashboard saves one: a
/// SetupIntent from the setup route, confirmed (here: attached by the test
/// server), then the payment method PUT.
fn account_with_card(app: &TestApp, stripe: &FakeStripe, id: &str, card: &str) -> String {
    let key = app.account(id, "pro");
    let r = app
        .call("POST", "/api/billing/payment-method/setup")
        .key(&key)
        .send();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["provider"], "stripe");
    assert_eq!(r.body["publishable_key"], "pk_test_e2e");
    let secret = r.body["client_secret"].as_str().unwrap();
    assert!(
        secret.starts_with("seti_") && secret.contains("_secret_"),
        "{secret}"
    );
    let customer = stripe.customer_of(id).expect("a customer for the account");
    stripe.attach(card, &customer);
    let r = app
        .call("PUT", "/api/billing/payment-method")
        .key(&key)
        .json(&json!({ "payment_method": card }));
    assert_eq!(r.status, 200, "{}", r.body);
    key
}

fn buy(app: &TestApp, key: &str, pack: &str, idempotency_key: &str) -> Reply {
    app.call("POST", "/api/billing/credits/purchases")
        .key(key)
        .idempotency(idempotency_key)
        .json(&json!({ "pack": pack }))
}

fn balance(app: &TestApp, key: &str) -> u64 {
    let r = app.call("GET", "/api/billing/credits").key(key).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["credits"]["balance_tokens"].as_u64().unwrap()
}

fn purchases(app: &TestApp, key: &str) -> Vec<Value> {
    app.all_transactions(key)
        .into_iter()
        .filter(|t| t["type"] == "purchase")
        .collect()
}

/// Delivers an event signed with the app's webhook secret now.
fn deliver(app: &TestApp, payload: &str) -> Reply {
    let signature = fake_stripe::signature(payload, WEBHOOK_SECRET, fake_stripe::unix_now());
    deliver_signed(app, payload, Some(&signature))
}

fn deliver_signed(app: &TestApp, payload: &str, signature: Option<&str>) -> Reply {
    let mut call = app
        .call("POST", "/api/webhooks/stripe")
        .header("content-type", "application/json; charset=utf-8");
    if let Some(signature) = signature {
        call = call.header("stripe-signature", signature);
    }
    call.raw(payload.as_bytes())
}

/// The request time `minutes` from now, for the test clock.
fn minutes_later(minutes: i64) -> String {
    SystemClock.now().plus_millis(minutes * 60_000).to_rfc3339()
}

fn hours_later(hours: i64) -> String {
    minutes_later(hours * 60)
}

#[test]
fn a_saved_card_buys_a_pack_with_one_payment_intent() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-buyer", "pm_card_visa");
    let card = json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030});
    let r = app.call("GET", "/api/billing/credits").key(&key).send();
    assert_eq!(
        (&r.body["payment_method"], &r.body["card"]),
        (&json!("pm_card_visa"), &card)
    );

    // A card of another customer (or none) is refused and changes nothing.
    let r = app
        .call("PUT", "/api/billing/payment-method")
        .key(&key)
        .json(&json!({"payment_method": "pm_card_mastercard"}));
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);
    let r = app
        .call("GET", "/api/billing/payment-method")
        .key(&key)
        .send();
    assert_eq!(
        (&r.body["payment_method"], &r.body["card"]),
        (&json!("pm_card_visa"), &card)
    );

    let r = buy(&app, &key, "standard", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["credits"]["balance_tokens"], 2_500_000);
    let pis = stripe.payment_intents();
    assert_eq!(pis.len(), 1);
    let request = stripe
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.target == "/v1/payment_intents")
        .unwrap();
    let form = request.form();
    let purchase_id = form["metadata[purchase_id]"].clone();
    assert!(purchase_id.starts_with("pur_"), "{purchase_id}");
    assert_eq!(
        request.header("idempotency-key"),
        Some(purchase_id.as_str())
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    for (name, value) in [
        ("amount", "1000"),
        ("currency", "eur"),
        ("payment_method", "pm_card_visa"),
        ("off_session", "true"),
        ("confirm", "true"),
        ("metadata[account_id]", "st-buyer"),
        ("metadata[source]", "manual"),
    ] {
        assert_eq!(form[name], value, "{name}");
    }
    assert_eq!(
        form["customer"],
        stripe.customer_of("st-buyer").unwrap(),
        "the setup's customer, kept"
    );
    assert_eq!(stripe.customer_count(), 1);

    // The same request again answers the first answer; Stripe is not asked again.
    let r = buy(&app, &key, "standard", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(stripe.payment_intents().len(), 1);
    assert_eq!(balance(&app, &key), 2_500_000);
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn a_declined_card_answers_stripes_message_and_grants_nothing() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(
        &app,
        &stripe,
        "st-declined",
        "pm_card_chargeDeclinedInsufficientFunds",
    );
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!((r.status, r.code()), (402, "payment_failed"), "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("insufficient funds"), "{message}");
    assert_eq!(balance(&app, &key), 0);
    assert!(purchases(&app, &key).is_empty());
}

#[test]
fn a_purchase_needing_authentication_is_granted_once_by_stripes_webhook() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-3ds", "pm_card_authenticationRequired");
    let r = buy(&app, &key, "standard", "buy-1");
    assert_eq!(
        (r.status, r.code()),
        (402, "authentication_required"),
        "{}",
        r.body
    );
    let client_secret = r.body["error"]["client_secret"].as_str().unwrap();
    assert!(
        client_secret.starts_with("pi_") && client_secret.contains("_secret_"),
        "{client_secret}"
    );
    let pi = stripe.payment_intents().pop().unwrap();
    let pi_id = pi["id"].as_str().unwrap().to_owned();

    // Stripe reports the off-session attempt failed for authentication: the
    // purchase keeps waiting for the cardholder.
    let failed = fake_stripe::event("evt_3ds_failed", "payment_intent.payment_failed", &pi);
    let r = deliver(&app, &failed);
    assert_eq!((r.status, &r.body), (200, &json!({"received": true})));
    assert_eq!(balance(&app, &key), 0);

    // Forged, altered, stale or unsigned deliveries are refused and change nothing.
    let succeeded = stripe.complete_authentication(&pi_id);
    let payload = fake_stripe::event("evt_3ds_ok", "payment_intent.succeeded", &succeeded);
    let now = fake_stripe::unix_now();
    let forged = fake_stripe::signature(&payload, "whsec_someone_else", now);
    let stale = fake_stripe::signature(&payload, WEBHOOK_SECRET, now - 301);
    let altered = payload.replace("\"amount\":1000", "\"amount\":100");
    let good_for_original = fake_stripe::signature(&payload, WEBHOOK_SECRET, now);
    for (body, signature) in [
        (payload.as_str(), Some(forged.as_str())),
        (payload.as_str(), Some(stale.as_str())),
        (payload.as_str(), None),
        (payload.as_str(), Some("t=1,v1=00")),
        (altered.as_str(), Some(good_for_original.as_str())),
    ] {
        let r = deliver_signed(&app, body, signature);
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_request"),
            "{signature:?}"
        );
    }
    assert_eq!(balance(&app, &key), 0);

    // Delivered three times at once, beside a recharge check that also settles
    // pending purchases (this one is stale two minutes on): one grant.
    let at = minutes_later(2);
    thread::scope(|s| {
        let deliveries: Vec<_> = (0..3)
            .map(|_| s.spawn(|| deliver(&app, &payload)))
            .collect();
        let check = s.spawn(|| app.recharge_check_at(&at));
        for delivery in deliveries {
            let r = delivery.join().unwrap();
            assert_eq!((r.status, &r.body), (200, &json!({"received": true})));
        }
        check.join().unwrap();
    });
    assert_eq!(balance(&app, &key), 2_500_000);
    let bought = purchases(&app, &key);
    assert_eq!(bought.len(), 1, "{bought:?}");
    assert_eq!(bought[0]["source"], "manual");
    // The same request with the same key now answers the grant.
    let r = buy(&app, &key, "standard", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["credits"]["balance_tokens"], 2_500_000);
    assert_eq!(stripe.payment_intents().len(), 1);
    app.assert_ledger_matches_balance(&key);

    // An event of a type we do not handle, or about nothing of ours, is received.
    let other = fake_stripe::event("evt_other", "customer.created", &json!({"id": "cus_x"}));
    assert_eq!(deliver(&app, &other).status, 200);
    let stranger = fake_stripe::event(
        "evt_stranger",
        "payment_intent.succeeded",
        &json!({"id": "pi_x", "object": "payment_intent", "status": "succeeded",
                "amount": 1000, "currency": "eur", "metadata": {}}),
    );
    assert_eq!(deliver(&app, &stranger).status, 200);
    assert_eq!(balance(&app, &key), 2_500_000);
}

#[test]
fn stripe_unreachable_leaves_the_purchase_pending_and_a_check_grants_it_once() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-down", "pm_card_visa");
    stripe.set_mode(Mode::Drop);
    let r = buy(&app, &key, "plus", "buy-1");
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["purchase"]["status"], "pending");
    assert_eq!(r.body["purchase"]["amount_eur"], "25.00");
    assert_eq!(balance(&app, &key), 0);
    assert!(stripe.payment_intents().is_empty());

    stripe.set_mode(Mode::Normal);
    let r = app.recharge_check_at(&hours_later(1));
    assert_eq!(r.body["failed"], json!([]), "{}", r.body);
    assert_eq!(balance(&app, &key), 7_000_000);
    app.recharge_check_at(&hours_later(2));
    assert_eq!(stripe.payment_intents().len(), 1, "charged once");
    assert_eq!(purchases(&app, &key).len(), 1);
    // The client's retry with its key answers the grant.
    let r = buy(&app, &key, "plus", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn a_purchase_pending_for_a_day_is_found_by_search_never_charged_again() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-slow", "pm_card_visa");
    stripe.set_mode(Mode::Processing);
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 202, "{}", r.body);
    stripe.set_mode(Mode::Normal);
    let pi = stripe.payment_intents().pop().unwrap();
    // The bank settles it, and the webhook is lost.
    stripe.set_status(pi["id"].as_str().unwrap(), "succeeded");

    let before = stripe.requests().len();
    app.recharge_check_at(&hours_later(24));
    assert_eq!(balance(&app, &key), 1_000_000);
    let asked: Vec<String> = stripe.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert!(
        asked
            .iter()
            .all(|a| a.starts_with("GET /v1/payment_intents/search")),
        "only a search after 23 hours: {asked:?}"
    );
    assert_eq!(stripe.payment_intents().len(), 1);
}

#[test]
fn a_stored_stripe_error_with_no_payment_behind_it_fails_the_purchase_after_an_hour() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-5xx", "pm_card_visa");
    stripe.set_mode(Mode::ServerError);
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 202, "{}", r.body);
    stripe.set_mode(Mode::Normal);
    // Stripe answers the stored 500 to the same key; its search finds nothing.
    app.recharge_check_at(&minutes_later(10));
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 202, "still pending within the hour: {}", r.body);
    app.recharge_check_at(&hours_later(2));
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!((r.status, r.code()), (402, "payment_failed"), "{}", r.body);
    assert_eq!(balance(&app, &key), 0);
    assert!(stripe.payment_intents().is_empty(), "never charged");
}

#[test]
fn a_deduction_answers_without_waiting_for_the_auto_recharge_it_sets_off() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-auto", "pm_card_visa");
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(&key)
        .json(&json!({"enabled": true, "pack": "standard", "threshold_tokens": 3_000_000}));
    assert_eq!(r.status, 200, "{}", r.body);

    // Stripe takes 2 s; the pro plan's allocation goes first, then credits.
    stripe.set_mode(Mode::Slow(Duration::from_secs(2)));
    let started = Instant::now();
    let r = app.deduct("st-auto", 2_000_500);
    let took = started.elapsed();
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        took < Duration::from_millis(1_500),
        "the deduction waited for Stripe: {took:?}"
    );
    assert_eq!(
        r.body["available_tokens"], 999_500,
        "the recharge has not completed: not counted"
    );
    // The pack lands after the answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while balance(&app, &key) != 3_499_500 {
        assert!(Instant::now() < deadline, "the auto-recharge never landed");
        thread::sleep(Duration::from_millis(100));
    }
    stripe.set_mode(Mode::Normal);
    let bought = purchases(&app, &key);
    assert_eq!(bought.len(), 2, "{bought:?}");
    assert_eq!(bought[0]["source"], "auto_recharge");
    let auto = stripe.payment_intents().pop().unwrap();
    assert_eq!(auto["metadata"]["source"], "auto_recharge");
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn cards_saved_or_removed_in_stripe_reach_the_account_by_webhook() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-cards", "pm_card_visa");
    let customer = stripe.customer_of("st-cards").unwrap();

    stripe.attach("pm_card_mastercard", &customer);
    let saved = fake_stripe::event(
        "evt_seti",
        "setup_intent.succeeded",
        &json!({"id": "seti_1", "object": "setup_intent", "status": "succeeded",
                "customer": customer, "payment_method": "pm_card_mastercard",
                "metadata": {"account_id": "st-cards"}}),
    );
    assert_eq!(deliver(&app, &saved).status, 200);
    let r = app
        .call("GET", "/api/billing/payment-method")
        .key(&key)
        .send();
    assert_eq!(r.body["payment_method"], "pm_card_mastercard", "{}", r.body);
    assert_eq!(r.body["card"]["last4"], "4444", "{}", r.body);

    // A late retry of an old event does not bring back a card replaced since.
    let mut stale: Value = serde_json::from_str(&fake_stripe::event(
        "evt_seti_old",
        "setup_intent.succeeded",
        &json!({"id": "seti_0", "object": "setup_intent", "status": "succeeded",
                "customer": customer, "payment_method": "pm_card_visa",
                "metadata": {"account_id": "st-cards"}}),
    ))
    .unwrap();
    stale["created"] = json!(fake_stripe::unix_now() - 3_600);
    assert_eq!(deliver(&app, &stale.to_string()).status, 200);
    let r = app
        .call("GET", "/api/billing/payment-method")
        .key(&key)
        .send();
    assert_eq!(r.body["payment_method"], "pm_card_mastercard", "{}", r.body);

    // Detaching a card that is not the saved one changes nothing; the saved one
    // is forgotten, so a purchase asks for a new card.
    for (id, pm) in [
        ("evt_det_1", "pm_card_visa"),
        ("evt_det_2", "pm_card_mastercard"),
    ] {
        let detached = fake_stripe::event(
            id,
            "payment_method.detached",
            &json!({"id": pm, "object": "payment_method", "customer": null}),
        );
        let mut event: Value = serde_json::from_str(&detached).unwrap();
        event["data"]["previous_attributes"] = json!({ "customer": customer });
        assert_eq!(deliver(&app, &event.to_string()).status, 200);
        let r = app
            .call("GET", "/api/billing/payment-method")
            .key(&key)
            .send();
        let expected = if pm == "pm_card_visa" {
            json!("pm_card_mastercard")
        } else {
            Value::Null
        };
        assert_eq!(r.body["payment_method"], expected, "{}", r.body);
    }
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(
        (r.status, r.code()),
        (400, "payment_method_required"),
        "{}",
        r.body
    );
}

#[test]
fn an_existing_stripe_customer_given_at_creation_is_charged() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    // The operator's customer, created in Stripe beforehand.
    let customer = stripe.create_customer("legacy");
    let r = app
        .call("POST", "/api/admin/accounts")
        .service()
        .json(&json!({"account_id": "st-legacy", "plan": "pro", "stripe_customer_id": customer}));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.body["api_key"].as_str().unwrap().to_owned();
    stripe.attach("pm_card_visa", &customer);
    let r = app
        .call("PUT", "/api/billing/payment-method")
        .key(&key)
        .json(&json!({"payment_method": "pm_card_visa"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(stripe.payment_intents()[0]["customer"], json!(customer));
    assert_eq!(stripe.customer_count(), 1, "no second customer");

    let r = app
        .call("POST", "/api/admin/accounts")
        .service()
        .json(&json!({"account_id": "st-bad", "stripe_customer_id": "acct_1"}));
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);
    // One account per customer, or one account could charge another's cards.
    let r = app
        .call("POST", "/api/admin/accounts")
        .service()
        .json(&json!({"account_id": "st-twin", "plan": "pro", "stripe_customer_id": customer}));
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);
    let r = app
        .call("POST", "/api/admin/accounts")
        .service()
        .json(&json!({"account_id": "st-twin", "plan": "pro"}));
    assert_eq!(r.status, 201, "nothing was created: {}", r.body);
}

#[test]
fn a_purchase_never_confirmed_is_failed_after_a_day_and_its_payment_intent_canceled() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-gone", "pm_card_authenticationRequired");
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.code(), "authentication_required", "{}", r.body);
    app.recharge_check_at(&hours_later(2));
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(
        r.code(),
        "authentication_required",
        "still waiting: {}",
        r.body
    );

    app.recharge_check_at(&hours_later(25));
    let pi = stripe.payment_intents().pop().unwrap();
    assert_eq!(pi["status"], "canceled");
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!((r.status, r.code()), (402, "payment_failed"), "{}", r.body);
    assert_eq!(balance(&app, &key), 0);
    assert_eq!(stripe.payment_intents().len(), 1);
}

#[test]
fn answers_that_make_no_sense_leave_the_purchase_pending_never_granted() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-odd", "pm_card_visa");

    // Money taken, but the answer is no JSON: pending, not granted on nonsense;
    // the same key later answers what Stripe stored, and that grants it.
    stripe.set_mode(Mode::Garbled);
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(balance(&app, &key), 0);
    stripe.set_mode(Mode::Normal);
    app.recharge_check_at(&minutes_later(5));
    assert_eq!(balance(&app, &key), 1_000_000);

    // A status the app does not know: pending, whatever is asked again.
    stripe.set_mode(Mode::UnknownStatus);
    let r = buy(&app, &key, "standard", "buy-2");
    assert_eq!(r.status, 202, "{}", r.body);
    stripe.set_mode(Mode::Normal);
    app.recharge_check_at(&minutes_later(5));
    app.recharge_check_at(&hours_later(2));
    assert_eq!(balance(&app, &key), 1_000_000, "nothing granted on it");
    let r = buy(&app, &key, "standard", "buy-2");
    assert_eq!(r.status, 202, "still pending: {}", r.body);
    // Stripe repeats that answer to the same key; once the key may be
    // forgotten (23 hours), the lookup sees it succeeded and grants it.
    let pi = stripe.payment_intents().pop().unwrap();
    stripe.set_status(pi["id"].as_str().unwrap(), "succeeded");
    app.recharge_check_at(&hours_later(4));
    assert_eq!(balance(&app, &key), 1_000_000);
    app.recharge_check_at(&hours_later(24));
    assert_eq!(balance(&app, &key), 3_500_000);
    assert_eq!(stripe.payment_intents().len(), 2, "one PaymentIntent each");
    app.assert_ledger_matches_balance(&key);
}

#[test]
fn a_confirmed_purchase_whose_webhook_was_lost_is_granted_by_the_next_check() {
    let stripe = FakeStripe::start();
    let app = stripe_app(&stripe);
    let key = account_with_card(&app, &stripe, "st-lost", "pm_card_authenticationRequired");
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.code(), "authentication_required", "{}", r.body);
    let pi = stripe.payment_intents().pop().unwrap();
    stripe.complete_authentication(pi["id"].as_str().unwrap());
    app.recharge_check_at(&minutes_later(2));
    assert_eq!(balance(&app, &key), 1_000_000);
    let r = buy(&app, &key, "starter", "buy-1");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(stripe.payment_intents().len(), 1);
}
