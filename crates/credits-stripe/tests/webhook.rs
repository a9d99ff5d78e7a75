//! Webhook signatures and the handled events.

use credits_stripe::{
    EventKind, PaymentError, WebhookError, parse_event, verify_and_parse, verify_signature,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec_test_secret";
const NOW: i64 = 1_700_000_000;

/// A `v1` signature made here with the same crates; the fixed vector below checks
/// them against Python's `hmac`.
fn sign(payload: &[u8], t: i64, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn a_valid_signature_is_accepted() {
    let payload = br#"{"id":"evt_1"}"#;
    // python3: hmac.new(b"whsec_test_secret", b'1700000000.{"id":"evt_1"}', sha256).hexdigest()
    let known = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
    assert_eq!(sign(payload, NOW, SECRET), known);
    let header = format!("t={NOW},v1={known}");
    assert_eq!(verify_signature(payload, &header, SECRET, NOW), Ok(()));
    // Spaces after commas, a v0 and unknown schemes are ignored.
    let header = format!("t={NOW}, v0=abc, v1={known}, x=1");
    assert_eq!(verify_signature(payload, &header, SECRET, NOW), Ok(()));
}

#[test]
fn another_secret_is_refused() {
    let payload = br#"{"id":"evt_1"}"#;
    let header = format!("t={NOW},v1={}", sign(payload, NOW, "whsec_other"));
    assert_eq!(
        verify_signature(payload, &header, SECRET, NOW),
        Err(WebhookError::SignatureMismatch)
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let header = format!("t={NOW},v1={}", sign(br#"{"id":"evt_1"}"#, NOW, SECRET));
    assert_eq!(
        verify_signature(br#"{"id":"evt_2"}"#, &header, SECRET, NOW),
        Err(WebhookError::SignatureMismatch)
    );
    // A signature for another timestamp does not carry over either.
    let header = format!(
        "t={},v1={}",
        NOW + 1,
        sign(br#"{"id":"evt_1"}"#, NOW, SECRET)
    );
    assert_eq!(
        verify_signature(br#"{"id":"evt_1"}"#, &header, SECRET, NOW),
        Err(WebhookError::SignatureMismatch)
    );
}

#[test]
fn t_must_be_within_300_seconds_either_way() {
    let payload = b"{}";
    for (t, ok) in [
        (NOW - 300, true),
        (NOW + 300, true),
        (NOW - 301, false),
        (NOW + 301, false),
        (0, false),
    ] {
        let header = format!("t={t},v1={}", sign(payload, t, SECRET));
        let result = verify_signature(payload, &header, SECRET, NOW);
        if ok {
            assert_eq!(result, Ok(()), "t={t}");
        } else {
            assert_eq!(
                result,
                Err(WebhookError::TimestampOutsideTolerance),
                "t={t}"
            );
        }
    }
}

#[test]
fn any_one_of_several_v1_may_match() {
    let payload = b"{}";
    let good = sign(payload, NOW, SECRET);
    let bad = sign(payload, NOW, "whsec_old");
    for header in [
        format!("t={NOW},v1={bad},v1={good}"),
        format!("t={NOW},v1={good},v1={bad}"),
        format!("t={NOW},v1=not-hex,v1={good}"),
    ] {
        assert_eq!(
            verify_signature(payload, &header, SECRET, NOW),
            Ok(()),
            "{header}"
        );
    }
    let header = format!("t={NOW},v1={bad},v1={bad}");
    assert_eq!(
        verify_signature(payload, &header, SECRET, NOW),
        Err(WebhookError::SignatureMismatch)
    );
}

#[test]
fn missing_or_malformed_headers_are_refused() {
    let payload = b"{}";
    let good = sign(payload, NOW, SECRET);
    for (header, error) in [
        ("", WebhookError::MissingHeader),
        ("garbage", WebhookError::MalformedHeader),
        (&format!("v1={good}") as &str, WebhookError::MalformedHeader),
        (&format!("t=soon,v1={good}"), WebhookError::MalformedHeader),
        (&format!("t={NOW}"), WebhookError::NoSignature),
        (&format!("t={NOW},v0={good}"), WebhookError::NoSignature),
        (&format!("t={NOW},v1="), WebhookError::SignatureMismatch),
    ] {
        assert_eq!(
            verify_signature(payload, header, SECRET, NOW),
            Err(error),
            "{header}"
        );
    }
    let header = format!("t={NOW},v1={good}");
    assert_eq!(
        verify_signature(payload, &header, "", NOW),
        Err(WebhookError::NoSecret)
    );
}

fn event(kind: &str, object: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_123","object":"event","api_version":"2024-06-20","created":1700000000,
            "livemode":false,"pending_webhooks":1,"type":"{kind}",
            "data":{{"object":{object}{extra}}}}}"#
    )
    .into_bytes()
}

const PAYMENT_INTENT: &str = r#"{"id":"pi_1","object":"payment_intent","amount":1000,"currency":"eur",
    "customer":"cus_1","status":"succeeded","client_secret":"pi_1_secret_x",
    "metadata":{"account_id":"acc_1","purchase_id":"pur_1","source":"manual"},
    "last_payment_error":null}"#;

#[test]
fn payment_intent_events_are_read() {
    let parsed = parse_event(&event("payment_intent.succeeded", PAYMENT_INTENT, "")).unwrap();
    assert_eq!(parsed.id, "evt_123");
    assert_eq!(parsed.created, NOW);
    assert!(!parsed.livemode);
    let EventKind::PaymentIntentSucceeded(pi) = parsed.kind else {
        panic!("{parsed:?}");
    };
    assert_eq!(pi.id, "pi_1");
    assert_eq!((pi.amount, pi.currency.as_str()), (1000, "eur"));
    assert_eq!(pi.customer.as_deref(), Some("cus_1"));
    assert_eq!(pi.purchase_id.as_deref(), Some("pur_1"));
    assert_eq!(pi.account_id.as_deref(), Some("acc_1"));
    assert_eq!(pi.source.as_deref(), Some("manual"));
    assert_eq!(pi.last_payment_error, None);

    let failed = PAYMENT_INTENT
        .replace(r#""status":"succeeded""#, r#""status":"requires_payment_method""#)
        .replace(
            r#""last_payment_error":null"#,
            r#""last_payment_error":{"type":"card_error","code":"authentication_required",
                "decline_code":"authentication_required","message":"This transaction requires authentication."}"#,
        );
    let parsed = parse_event(&event("payment_intent.payment_failed", &failed, "")).unwrap();
    let EventKind::PaymentIntentFailed(pi) = parsed.kind else {
        panic!("{parsed:?}");
    };
    assert_eq!(pi.status, "requires_payment_method");
    assert_eq!(
        pi.last_payment_error,
        Some(PaymentError {
            code: Some("authentication_required".into()),
            decline_code: Some("authentication_required".into()),
            message: Some("This transaction requires authentication.".into()),
        })
    );

    let canceled = PAYMENT_INTENT.replace(r#""status":"succeeded""#, r#""status":"canceled""#);
    let parsed = parse_event(&event("payment_intent.canceled", &canceled, "")).unwrap();
    assert!(
        matches!(parsed.kind, EventKind::PaymentIntentCanceled(ref pi) if pi.status == "canceled")
    );

    // A PaymentIntent that is not ours: no metadata, an expanded customer.
    let foreign = r#"{"id":"pi_9","object":"payment_intent","amount":50,"currency":"usd",
        "customer":{"id":"cus_9","object":"customer"},"status":"succeeded","metadata":{}}"#;
    let parsed = parse_event(&event("payment_intent.succeeded", foreign, "")).unwrap();
    let EventKind::PaymentIntentSucceeded(pi) = parsed.kind else {
        panic!("{parsed:?}");
    };
    assert_eq!(
        (pi.purchase_id, pi.customer.as_deref()),
        (None, Some("cus_9"))
    );
}

#[test]
fn setup_and_payment_method_events_are_read() {
    let setup = r#"{"id":"seti_1","object":"setup_intent","customer":"cus_1",
        "payment_method":"pm_1","status":"succeeded","usage":"off_session",
        "metadata":{"account_id":"acc_1"}}"#;
    let parsed = parse_event(&event("setup_intent.succeeded", setup, "")).unwrap();
    let EventKind::SetupIntentSucceeded(si) = parsed.kind else {
        panic!("{parsed:?}");
    };
    assert_eq!(si.id, "seti_1");
    assert_eq!(si.customer.as_deref(), Some("cus_1"));
    assert_eq!(si.payment_method.as_deref(), Some("pm_1"));
    assert_eq!(si.account_id.as_deref(), Some("acc_1"));

    let detached = r#"{"id":"pm_1","object":"payment_method","type":"card","customer":null,
        "card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030}}"#;
    let parsed = parse_event(&event(
        "payment_method.detached",
        detached,
        r#","previous_attributes":{"customer":"cus_1"}"#,
    ))
    .unwrap();
    let EventKind::PaymentMethodDetached(pm) = parsed.kind else {
        panic!("{parsed:?}");
    };
    assert_eq!(pm.id, "pm_1");
    assert_eq!(pm.previous_customer.as_deref(), Some("cus_1"));
}

#[test]
fn other_types_are_named_and_bad_events_refused() {
    let parsed = parse_event(&event(
        "charge.refunded",
        r#"{"id":"ch_1","whatever":[1]}"#,
        "",
    ))
    .unwrap();
    assert_eq!(parsed.kind, EventKind::Other("charge.refunded".into()));
    assert!(matches!(
        parse_event(b"not json"),
        Err(WebhookError::MalformedEvent(_))
    ));
    // A handled type whose object lacks what it needs.
    assert!(matches!(
        parse_event(&event(
            "payment_intent.succeeded",
            r#"{"object":"payment_intent"}"#,
            ""
        )),
        Err(WebhookError::MalformedEvent(_))
    ));
}

#[test]
fn verify_and_parse_checks_first() {
    let payload = event("payment_intent.succeeded", PAYMENT_INTENT, "");
    let header = format!("t={NOW},v1={}", sign(&payload, NOW, SECRET));
    assert!(verify_and_parse(&payload, &header, SECRET, NOW).is_ok());
    assert_eq!(
        verify_and_parse(&payload, &header, "whsec_other", NOW),
        Err(WebhookError::SignatureMismatch)
    );
}
