//! The adapter against a Stripe-compatible server on loopback: every charge
//! outcome, idempotency, form encoding, customers, SetupIntents, payment methods,
//! reconciliation and the secret key kept out of sight.

mod support;

use std::time::Duration;

use credits::{
    AccountId, Charge, ChargeOutcome, CreditsError, Eur, PaymentProvider, PurchaseSource,
};
use credits_stripe::{
    ChargeResult, SecretKey, StripeCharge, StripeClient, StripeError, StripePayments,
    TransportError,
};
use support::{Clients as _, FakeStripe, Mode, SECRET, UreqTransport};

/// A server with one customer for `acc_1`.
fn setup() -> (FakeStripe, StripeClient<UreqTransport>, String) {
    let stripe = FakeStripe::start();
    let client = stripe.client();
    let customer = client.create_customer("acc_1").expect("customer");
    (stripe, client, customer)
}

fn charge<'a>(customer: &'a str, purchase: &'a str, method: &'a str) -> StripeCharge<'a> {
    StripeCharge {
        purchase_id: purchase,
        account_id: "acc_1",
        customer,
        payment_method: method,
        amount: Eur::from_cents(1000),
        source: PurchaseSource::AutoRecharge,
    }
}

#[test]
fn a_charge_that_succeeds_sends_stripes_form_and_headers() {
    let (stripe, client, customer) = setup();
    let result = client
        .create_payment_intent(&charge(&customer, "pur_ok", "pm_card_visa"))
        .unwrap();
    assert!(
        matches!(result, ChargeResult::Succeeded { ref payment_intent } if payment_intent.starts_with("pi_"))
    );

    let sent = stripe.last_request();
    assert_eq!(
        (sent.method.as_str(), sent.target.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(sent.header("idempotency-key"), Some("pur_ok"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sent.header("stripe-version"),
        Some(credits_stripe::STRIPE_VERSION)
    );
    // Brackets are percent-encoded on the wire, as form encoding has them.
    assert!(
        sent.body.contains("metadata%5Baccount_id%5D=acc_1"),
        "{}",
        sent.body
    );
    let form = sent.form();
    for (name, value) in [
        ("amount", "1000"),
        ("currency", "eur"),
        ("customer", customer.as_str()),
        ("payment_method", "pm_card_visa"),
        ("off_session", "true"),
        ("confirm", "true"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
        ("metadata[account_id]", "acc_1"),
        ("metadata[purchase_id]", "pur_ok"),
        ("metadata[source]", "auto_recharge"),
    ] {
        assert_eq!(form.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(form.len(), 11, "{form:?}");
}

#[test]
fn form_values_with_reserved_characters_round_trip() {
    let (stripe, client, customer) = setup();
    let mut odd = charge(&customer, "pur_odd", "pm_card_visa");
    odd.account_id = "acc with&=+[]ü";
    client.create_payment_intent(&odd).unwrap();
    assert_eq!(
        stripe.last_request().form()["metadata[account_id]"],
        "acc with&=+[]ü"
    );
}

#[test]
fn card_declines_carry_stripes_message() {
    let (_stripe, client, customer) = setup();
    let declined = client
        .create_payment_intent(&charge(&customer, "pur_dec", "pm_card_chargeDeclined"))
        .unwrap();
    let ChargeResult::Declined {
        payment_intent,
        code,
        decline_code,
        message,
    } = declined
    else {
        panic!("{declined:?}");
    };
    assert!(payment_intent.is_some_and(|pi| pi.starts_with("pi_")));
    assert_eq!(code.as_deref(), Some("card_declined"));
    assert_eq!(decline_code.as_deref(), Some("generic_decline"));
    assert_eq!(message, "Your card was declined.");

    let no_funds = client
        .create_payment_intent(&charge(
            &customer,
            "pur_nsf",
            "pm_card_chargeDeclinedInsufficientFunds",
        ))
        .unwrap();
    assert!(matches!(
        no_funds,
        ChargeResult::Declined { ref decline_code, ref message, .. }
            if decline_code.as_deref() == Some("insufficient_funds") && message == "Your card has insufficient funds."
    ));
}

#[test]
fn authentication_required_gives_the_client_secret() {
    let (_stripe, client, customer) = setup();
    let result = client
        .create_payment_intent(&charge(
            &customer,
            "pur_3ds",
            "pm_card_authenticationRequired",
        ))
        .unwrap();
    let ChargeResult::AuthenticationRequired {
        payment_intent,
        client_secret,
        message,
    } = result
    else {
        panic!("{result:?}");
    };
    assert!(client_secret.starts_with(&format!("{payment_intent}_secret_")));
    assert!(message.contains("requires authentication"), "{message}");
}

#[test]
fn processing_is_no_outcome_yet() {
    let (stripe, client, customer) = setup();
    stripe.set_mode(Mode::Processing);
    let result = client
        .create_payment_intent(&charge(&customer, "pur_proc", "pm_card_visa"))
        .unwrap();
    assert!(matches!(result, ChargeResult::Processing { .. }));
    assert!(matches!(
        result.into_outcome(),
        Err(CreditsError::ProviderUnavailable(_))
    ));
}

#[test]
fn a_timeout_is_pending_and_the_same_key_later_answers_the_first_outcome() {
    let (stripe, client, customer) = setup();
    stripe.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let purchase = charge(&customer, "pur_slow", "pm_card_visa");
    assert_eq!(
        client.create_payment_intent(&purchase),
        Err(StripeError::Transport(TransportError::Timeout))
    );
    stripe.set_mode(Mode::Normal);
    // Stripe charged while the client gave up; the repeat must not charge again.
    let again = client.create_payment_intent(&purchase).unwrap();
    assert!(matches!(again, ChargeResult::Succeeded { .. }));
    assert_eq!(stripe.payment_intent_count(), 1);
    assert_eq!(client.find_payment_intent("pur_slow").unwrap(), Some(again));
}

#[test]
fn a_5xx_is_pending_is_answered_again_and_search_finds_nothing_charged() {
    let (stripe, client, customer) = setup();
    stripe.set_mode(Mode::ServerError);
    let purchase = charge(&customer, "pur_500", "pm_card_visa");
    assert_eq!(
        client.create_payment_intent(&purchase),
        Err(StripeError::Server { status: 500 })
    );
    stripe.set_mode(Mode::Normal);
    // Stripe stores a 5xx under the key too: the repeat answers it again.
    assert_eq!(
        client.create_payment_intent(&purchase),
        Err(StripeError::Server { status: 500 })
    );
    assert_eq!(client.find_payment_intent("pur_500"), Ok(None));
    let search = stripe.last_request();
    assert_eq!(search.method, "GET");
    assert_eq!(
        search.target,
        "/v1/payment_intents/search?query=metadata%5B%27purchase_id%27%5D%3A%27pur_500%27"
    );
}

#[test]
fn a_dropped_connection_is_a_network_error() {
    let (stripe, client, customer) = setup();
    stripe.set_mode(Mode::Drop);
    let result = client.create_payment_intent(&charge(&customer, "pur_drop", "pm_card_visa"));
    assert!(
        matches!(
            result,
            Err(StripeError::Transport(TransportError::Network(_)))
        ),
        "{result:?}"
    );
}

#[test]
fn the_same_key_never_charges_twice_and_other_parameters_are_refused() {
    let (stripe, client, customer) = setup();
    let purchase = charge(&customer, "pur_twice", "pm_card_visa");
    let first = client.create_payment_intent(&purchase).unwrap();
    let second = client.create_payment_intent(&purchase).unwrap();
    assert_eq!(first, second);
    assert_eq!(stripe.payment_intent_count(), 1);
    for request in stripe.requests().iter().skip(1) {
        assert_eq!(request.header("idempotency-key"), Some("pur_twice"));
    }

    let mut changed = purchase.clone();
    changed.amount = Eur::from_cents(2000);
    let refused = client.create_payment_intent(&changed);
    assert!(
        matches!(refused, Err(StripeError::Api { status: 400, ref error }) if error.kind == "idempotency_error"),
        "{refused:?}"
    );
    assert_eq!(stripe.payment_intent_count(), 1);
}

#[test]
fn a_search_finds_the_purchases_payment_intent_by_its_outcome() {
    let (_stripe, client, customer) = setup();
    client
        .create_payment_intent(&charge(&customer, "pur_a", "pm_card_visa"))
        .unwrap();
    client
        .create_payment_intent(&charge(&customer, "pur_b", "pm_card_chargeDeclined"))
        .unwrap();
    client
        .create_payment_intent(&charge(
            &customer,
            "pur_c",
            "pm_card_authenticationRequired",
        ))
        .unwrap();
    assert!(matches!(
        client.find_payment_intent("pur_a"),
        Ok(Some(ChargeResult::Succeeded { .. }))
    ));
    assert!(matches!(
        client.find_payment_intent("pur_b"),
        Ok(Some(ChargeResult::Declined { .. }))
    ));
    assert!(matches!(
        client.find_payment_intent("pur_c"),
        Ok(Some(ChargeResult::AuthenticationRequired { .. }))
    ));
    assert_eq!(client.find_payment_intent("pur_none"), Ok(None));
}

#[test]
fn canceling_a_waiting_payment_intent_declines_it_but_never_undoes_money_taken() {
    let (_stripe, client, customer) = setup();
    let ChargeResult::AuthenticationRequired { payment_intent, .. } = client
        .create_payment_intent(&charge(
            &customer,
            "pur_wait",
            "pm_card_authenticationRequired",
        ))
        .unwrap()
    else {
        panic!("not waiting");
    };
    assert!(matches!(
        client.cancel_payment_intent(&payment_intent),
        Ok(ChargeResult::Declined { .. })
    ));
    // Canceled already: Stripe refuses with the PaymentIntent, still a decline.
    assert!(matches!(
        client.cancel_payment_intent(&payment_intent),
        Ok(ChargeResult::Declined { .. })
    ));

    let ChargeResult::Succeeded { payment_intent } = client
        .create_payment_intent(&charge(&customer, "pur_paid", "pm_card_visa"))
        .unwrap()
    else {
        panic!("not paid");
    };
    assert!(matches!(
        client.cancel_payment_intent(&payment_intent),
        Ok(ChargeResult::Succeeded { .. })
    ));
    assert!(matches!(
        client.cancel_payment_intent("pi/../../v1/customers"),
        Err(StripeError::Invalid(_))
    ));
}

#[test]
fn one_customer_per_account_by_its_idempotency_key() {
    let (stripe, client, first) = setup();
    let sent = stripe.last_request();
    assert_eq!(sent.target, "/v1/customers");
    assert_eq!(sent.header("idempotency-key"), Some("customer-acc_1"));
    assert_eq!(sent.form()["metadata[account_id]"], "acc_1");
    assert_eq!(client.create_customer("acc_1").unwrap(), first);
    assert_ne!(client.create_customer("acc_2").unwrap(), first);
    assert_eq!(
        stripe.last_request().header("idempotency-key"),
        Some("customer-acc_2")
    );
}

#[test]
fn a_setup_intent_for_off_session_use() {
    let (stripe, client, customer) = setup();
    let setup = client.create_setup_intent(&customer, "acc_1").unwrap();
    assert!(
        setup
            .client_secret
            .starts_with(&format!("{}_secret_", setup.id))
    );
    let form = stripe.last_request().form();
    assert_eq!(form["customer"], customer);
    assert_eq!(form["usage"], "off_session");
    assert_eq!(form["metadata[account_id]"], "acc_1");
    assert!(matches!(
        client.create_setup_intent("cus_nobody", "acc_1"),
        Err(StripeError::Api { status: 400, .. })
    ));
}

#[test]
fn a_payment_method_shows_its_card_and_whether_it_is_the_customers() {
    let (stripe, client, customer) = setup();
    let method = client
        .retrieve_payment_method("pm_card_visa")
        .unwrap()
        .unwrap();
    assert!(!method.is_attached_to(&customer));
    let card = method.card.unwrap();
    assert_eq!(
        (
            card.brand.as_str(),
            card.last4.as_str(),
            card.exp_month,
            card.exp_year
        ),
        ("visa", "4242", 12, 2030)
    );
    assert_eq!(
        serde_json::to_value(&card).unwrap(),
        serde_json::json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030})
    );
    stripe.attach("pm_card_visa", &customer);
    let method = client
        .retrieve_payment_method("pm_card_visa")
        .unwrap()
        .unwrap();
    assert!(method.is_attached_to(&customer));
    assert!(!method.is_attached_to("cus_other"));
    assert_eq!(
        stripe.last_request().target,
        "/v1/payment_methods/pm_card_visa"
    );

    assert_eq!(client.retrieve_payment_method("pm_unknown"), Ok(None));
    // A 404 that is not Stripe's "no such object" (a wrong API base) is an error.
    let misrouted = StripeClient::new(
        UreqTransport::new(Duration::from_millis(500)),
        SecretKey::new(SECRET),
        &format!("{}/elsewhere", stripe.base()),
    );
    assert!(matches!(
        misrouted.retrieve_payment_method("pm_card_visa"),
        Err(StripeError::Api { status: 404, .. })
    ));
    let before = stripe.requests().len();
    assert!(matches!(
        client.retrieve_payment_method("pm_x/../../customers"),
        Err(StripeError::Invalid(_))
    ));
    assert_eq!(stripe.requests().len(), before, "nothing sent");
}

#[test]
fn the_domain_port_maps_every_outcome() {
    let (stripe, client, customer) = setup();
    let customers = move |charge: &Charge<'_>| {
        assert!(charge.idempotency_key.starts_with("pur_"));
        assert_eq!(charge.account.as_str(), "acc_1");
        Ok(customer.clone())
    };
    let payments = StripePayments::new(client, customers);
    let account = AccountId::parse("acc_1").unwrap();
    let pay = |purchase: &str, method: &str| {
        payments.charge(&Charge {
            idempotency_key: purchase,
            payment_method: method,
            amount: Eur::from_cents(500),
            account: &account,
            source: PurchaseSource::Manual,
        })
    };
    assert_eq!(pay("pur_1", "pm_card_visa"), Ok(ChargeOutcome::Succeeded));
    assert_eq!(stripe.last_request().form()["metadata[source]"], "manual");
    assert_eq!(
        pay("pur_2", "pm_card_chargeDeclined"),
        Ok(ChargeOutcome::Declined {
            message: "Your card was declined.".into()
        })
    );
    let Ok(ChargeOutcome::AuthenticationRequired {
        message,
        client_secret,
    }) = pay("pur_3", "pm_card_authenticationRequired")
    else {
        panic!("authentication required expected")
    };
    assert_eq!(
        message,
        "Your card was declined. This transaction requires authentication."
    );
    assert!(
        client_secret.starts_with("pi_") && client_secret.contains("_secret_"),
        "{client_secret}"
    );
    for mode in [
        Mode::Processing,
        Mode::ServerError,
        Mode::Drop,
        Mode::Slow(Duration::from_secs(1)),
    ] {
        stripe.set_mode(mode);
        let purchase = format!("pur_{mode:?}").replace(['(', ')', ' ', '.'], "_");
        assert!(
            matches!(
                pay(&purchase, "pm_card_visa"),
                Err(CreditsError::ProviderUnavailable(_))
            ),
            "{mode:?}"
        );
    }
    stripe.set_mode(Mode::Normal);
    // A refused request (other parameters under a used key) is no outcome either.
    assert!(matches!(
        payments.charge(&Charge {
            idempotency_key: "pur_1",
            payment_method: "pm_card_visa",
            amount: Eur::from_cents(900),
            account: &account,
            source: PurchaseSource::Manual,
        }),
        Err(CreditsError::ProviderUnavailable(_))
    ));
    // An error of the lookup fails the charge before anything is sent.
    let failing = StripePayments::new(stripe.client(), |_: &Charge<'_>| {
        Err(CreditsError::PaymentMethodRequired)
    });
    let before = stripe.requests().len();
    assert_eq!(
        failing.charge(&Charge {
            idempotency_key: "pur_9",
            payment_method: "pm_card_visa",
            amount: Eur::from_cents(500),
            account: &account,
            source: PurchaseSource::AutoRecharge,
        }),
        Err(CreditsError::PaymentMethodRequired)
    );
    assert_eq!(stripe.requests().len(), before);
}

#[test]
fn the_secret_key_never_shows() {
    let (stripe, client, customer) = setup();
    assert!(!format!("{client:?}").contains(SECRET));
    let payments = StripePayments::new(stripe.client(), |_: &Charge<'_>| {
        Err(CreditsError::PaymentMethodRequired)
    });
    assert!(!format!("{payments:?}").contains(SECRET));

    // The fake echoes a wrong key in its 401 message, as a careless server might.
    let wrong = stripe.client_with_key("sk_test_WrongKey123");
    let refused = wrong
        .create_payment_intent(&charge(&customer, "pur_key", "pm_card_visa"))
        .unwrap_err();
    assert!(
        matches!(refused, StripeError::Api { status: 401, .. }),
        "{refused:?}"
    );
    assert!(
        !refused.to_string().contains("sk_test_WrongKey123"),
        "{refused}"
    );
    assert!(
        !format!("{refused:?}").contains("sk_test_WrongKey123"),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("[redacted]"), "{refused}");
}

#[test]
fn requests_hide_the_authorization_header_in_debug() {
    use credits_stripe::{Method, StripeRequest};
    let request = StripeRequest {
        method: Method::Post,
        base: "https://api.stripe.com".into(),
        path: "/v1/customers".into(),
        headers: vec![
            ("Authorization".into(), format!("Bearer {SECRET}")),
            ("Idempotency-Key".into(), "customer-acc_1".into()),
        ],
        body: String::new(),
    };
    let shown = format!("{request:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("customer-acc_1"), "{shown}");
    assert_eq!(request.url(), "https://api.stripe.com/v1/customers");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert!(!format!("{:?}", credits_stripe::SecretKey::new(SECRET)).contains(SECRET));
}
