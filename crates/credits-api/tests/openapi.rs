//! The `OpenAPI` document (`GET /api/openapi.json`) is true: it is written by hand,
//! so these tests drive every route through the same router the components use and
//! validate every answer — successes and errors — against the document's schema
//! for that operation and status, with unknown fields refused (a field the code
//! adds without documenting it fails here). They also check that every route of
//! `API.md`, of `spin.toml` and of the router is in the document, and the reverse.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use credits::NoCache;
use credits_api::{Config, Env, Request, Stores, routes};
use credits_sqlite::NativeDb;
use serde_json::{Value, json};

const SERVICE: &str = "test-service-token";
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Routes of `API.md` the code does not serve yet. Each must answer the router's
/// 404; once one is served, this test fails until the document describes it.
const NOT_YET: [(&str, &str); 0] = [];
/// Served by the `dashboard` component, which `routes::serve` does not know;
/// the browser tests and schemathesis cover it.
const DASHBOARD: &str = "/";

fn document() -> Value {
    serde_json::from_str(routes::openapi::DOCUMENT).expect("openapi.json is JSON")
}

/// Unknown properties refused in every object schema that lists its properties:
/// the served document leaves them open (API.md lets answers gain fields), the
/// test does not (the document must name every field the code sends).
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let is_object = match map.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            if is_object && map.contains_key("properties") {
                map.entry("additionalProperties").or_insert(json!(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Follows a `#/components/...` reference.
fn resolve<'d>(doc: &'d Value, value: &'d Value) -> &'d Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {pointer}")),
        None => value,
    }
}

/// Whether `path` (concrete) is an instance of `template` (`{param}` segments).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

/// The documented path for a concrete one, preferring literal segments.
fn template_of<'d>(doc: &'d Value, path: &str) -> Option<&'d str> {
    let paths = doc["paths"].as_object()?;
    paths
        .keys()
        .filter(|t| matches_template(t, path))
        .min_by_key(|t| t.matches('{').count())
        .map(String::as_str)
}

/// Documented operations: (method, path template).
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

struct Api {
    db: NativeDb,
    config: Config,
    doc: Value,
    /// Every (method, template, status) answered, for the coverage check.
    seen: std::cell::RefCell<BTreeSet<(String, String, u16)>>,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = NativeDb::open(&dir.path().join("db.sqlite")).unwrap();
        Self {
            db,
            config: Config::default(),
            doc: document(),
            seen: std::cell::RefCell::default(),
            _dir: dir,
        }
    }

    /// Sends a request and checks its answer against the document.
    fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let content_type = body.map(|_| "application/json");
        self.raw(method, uri, token, content_type, bytes, headers)
    }

    fn raw(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req: Request = builder.body(body).unwrap();
        let env = Env {
            stores: Stores {
                db: &self.db,
                cache: &NoCache,
                stripe: &credits_service::NoNetwork,
            },
            config: &self.config,
            service_token: Some(SERVICE),
            test_clock: true,
            after: None,
        };
        let resp = routes::serve(&env, &req);
        let answer = Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
        };
        self.check(method, req.uri().path(), &answer);
        answer
    }

    /// The answer is one the document gives for this operation and status.
    fn check(&self, method: &str, path: &str, answer: &Answer) {
        let what = format!("{method} {path} -> {}: {}", answer.status, answer.body);
        let template = template_of(&self.doc, path);
        let operation =
            template.and_then(|t| self.doc["paths"][t].get(method.to_lowercase().as_str()));
        let response = match (answer.status, operation) {
            // Answers to no documented operation: the shared responses describe them.
            (404, None) => &self.doc["components"]["responses"]["NotFound"],
            (405, None) => &self.doc["components"]["responses"]["MethodNotAllowed"],
            (_, None) => panic!("undocumented operation: {what}"),
            (status, Some(op)) => resolve(
                &self.doc,
                op["responses"]
                    .get(status.to_string())
                    .unwrap_or_else(|| panic!("undocumented status: {what}")),
            ),
        };
        self.seen.borrow_mut().insert((
            method.to_owned(),
            template.unwrap_or("-").to_owned(),
            answer.status,
        ));
        self.check_headers(response, answer, &what);
        let content_type = answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let schema = response["content"]
            .get(content_type)
            .unwrap_or_else(|| panic!("undocumented content type {content_type:?}: {what}"))
            ["schema"]
            .clone();
        validate(&self.doc, schema, &answer.body, &what);
        if let Some(codes) = response.get("x-error-codes").and_then(Value::as_array) {
            assert!(
                codes.contains(&answer.body["error"]["code"]),
                "error code not in x-error-codes {codes:?}: {what}"
            );
        }
    }

    /// Headers the API defines are documented where they appear, and required
    /// ones are present.
    fn check_headers(&self, response: &Value, answer: &Answer, what: &str) {
        let documented: BTreeMap<String, &Value> = response["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_lowercase(), resolve(&self.doc, v)))
                    .collect()
            })
            .unwrap_or_default();
        for name in ["idempotent-replayed", "allow"] {
            if answer.headers.contains_key(name) {
                assert!(documented.contains_key(name), "undocumented {name}: {what}");
            }
        }
        for (name, header) in &documented {
            if header["required"] == json!(true) {
                assert!(
                    answer.headers.contains_key(name.as_str()),
                    "no {name}: {what}"
                );
            }
        }
    }

    fn account(&self, id: &str, plan: &str) -> String {
        let a = self.send(
            "POST",
            "/api/admin/accounts",
            Some(SERVICE),
            Some(&json!({"account_id": id, "plan": plan})),
            &[],
        );
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["api_key"].as_str().unwrap().to_owned()
    }
}

/// Validates `instance` against `schema`, whose `#/components/...` references
/// resolve to the document's components (strict, as [`strict`] makes them).
fn validate(doc: &Value, mut schema: Value, instance: &Value, what: &str) {
    let mut components = doc["components"].clone();
    strict(&mut components);
    strict(&mut schema);
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": components,
    });
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("bad schema for {what}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}\n  does not match: {errors:#?}");
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("<none>")
}

/// Accounts, plans, the catalog, payment methods, purchases and auto-recharge.
fn account_routes(api: &Api) -> String {
    let key = api.account("acme", "pro");
    let free = api.account("freeco", "free");
    let declining = api.account("declining", "pro");
    let a = api.send(
        "POST",
        "/api/admin/accounts",
        Some(SERVICE),
        Some(&json!({"account_id": "acme"})),
        &[],
    );
    assert_eq!((a.status, code(&a)), (409, "conflict"));
    let a = api.send(
        "POST",
        "/api/admin/accounts",
        Some(SERVICE),
        Some(&json!({"account_id": "bad id!"})),
        &[],
    );
    assert_eq!(a.status, 400);
    let plan = |id: &str, plan: &str| {
        api.send(
            "PUT",
            &format!("/api/admin/accounts/{id}/plan"),
            Some(SERVICE),
            Some(&json!({ "plan": plan })),
            &[],
        )
    };
    assert_eq!(plan("acme", "team").status, 200);
    assert_eq!(plan("acme", "pro").status, 200);
    assert_eq!(plan("ghost", "pro").status, 404);
    for token in [SERVICE, key.as_str()] {
        let a = api.send("GET", "/api/billing/credits/packs", Some(token), None, &[]);
        assert_eq!(a.status, 200);
    }
    let purchase = |token: &str, pack: &str, idem: &str| {
        api.send(
            "POST",
            "/api/billing/credits/purchases",
            Some(token),
            Some(&json!({ "pack": pack })),
            &[("idempotency-key", idem)],
        )
    };
    assert_eq!(
        code(&purchase(&free, "starter", "f")),
        "plan_upgrade_required"
    );
    assert_eq!(
        code(&purchase(&key, "starter", "p0")),
        "payment_method_required"
    );
    let save = |token: &str, pm: &str| {
        api.send(
            "PUT",
            "/api/billing/payment-method",
            Some(token),
            Some(&json!({ "payment_method": pm })),
            &[],
        )
    };
    let a = api.send("GET", "/api/billing/payment-method", Some(&key), None, &[]);
    assert_eq!((a.status, &a.body["payment_method"]), (200, &Value::Null));
    let a = api.send(
        "POST",
        "/api/billing/payment-method/setup",
        Some(&key),
        None,
        &[],
    );
    assert_eq!((a.status, &a.body), (201, &json!({"provider": "sandbox"})));
    assert_eq!(save(&key, "pm_card_visa").status, 200);
    assert_eq!(save(&key, "card").status, 400);
    assert_eq!(save(&declining, "pm_card_chargeDeclined").status, 200);
    assert_eq!(purchase(&key, "standard", "p1").status, 201);
    let replay = purchase(&key, "standard", "p1");
    assert_eq!(replay.status, 201);
    assert!(replay.headers.contains_key("idempotent-replayed"));
    assert_eq!(code(&purchase(&key, "plus", "p1")), "idempotency_conflict");
    assert_eq!(
        code(&purchase(&declining, "starter", "d1")),
        "payment_failed"
    );
    assert_eq!(code(&purchase(&key, "mega", "p2")), "invalid_request");
    auto_recharge(api, &key, &free, &declining);
    key
}

fn auto_recharge(api: &Api, key: &str, free: &str, declining: &str) {
    let put = |token: &str, body: Value| {
        api.send(
            "PUT",
            "/api/billing/credits/auto-recharge",
            Some(token),
            Some(&body),
            &[],
        )
    };
    let on = json!({"enabled": true, "pack": "starter", "threshold_tokens": 100_000_000});
    let a = api.send(
        "GET",
        "/api/billing/credits/auto-recharge",
        Some(key),
        None,
        &[],
    );
    assert_eq!((a.status, &a.body["enabled"]), (200, &json!(false)));
    assert_eq!(code(&put(free, on.clone())), "plan_upgrade_required");
    let nopm = api.account("nopm", "pro");
    assert_eq!(code(&put(&nopm, on.clone())), "payment_method_required");
    assert_eq!(code(&put(key, json!({"enabled": true}))), "invalid_request");
    assert_eq!(put(key, json!({"enabled": false})).status, 200);
    // A decline leaves `last_error` for the summary to show.
    assert_eq!(put(declining, on).status, 200);
    let a = api.send(
        "POST",
        "/api/internal/recharge-check",
        Some(SERVICE),
        None,
        &[],
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.body["failed"], json!(["declining"]));
    let a = api.send("GET", "/api/billing/credits", Some(declining), None, &[]);
    assert!(
        a.body["auto_recharge"]["last_error"].is_object(),
        "{}",
        a.body
    );
}

/// Deductions, refunds, the statement and usage.
fn ledger_routes(api: &Api, key: &str) {
    let deduct = |body: Value, idem: &str| {
        api.send(
            "POST",
            "/api/billing/credits/deductions",
            Some(SERVICE),
            Some(&body),
            &[("idempotency-key", idem)],
        )
    };
    let body = json!({"account_id": "acme", "tokens": 2_000_500, "operation": "enrichment",
                      "resource": {"project": "p-42"}});
    let a = deduct(body.clone(), "d1");
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["transaction"]["id"].as_str().unwrap().to_owned();
    assert!(
        deduct(body, "d1")
            .headers
            .contains_key("idempotent-replayed")
    );
    let other = json!({"account_id": "acme", "tokens": 7, "operation": "x"});
    assert_eq!(code(&deduct(other, "d1")), "idempotency_conflict");
    let huge = json!({"account_id": "acme", "tokens": 1_u64 << 50, "operation": "x"});
    assert_eq!(code(&deduct(huge, "d2")), "insufficient_balance");
    let ghost = json!({"account_id": "ghost", "tokens": 1, "operation": "x"});
    assert_eq!(deduct(ghost, "d3").status, 404);
    let refund = |body: Value| {
        api.send(
            "POST",
            "/api/billing/credits/refunds",
            Some(SERVICE),
            Some(&body),
            &[],
        )
    };
    let a = refund(
        json!({"account_id": "acme", "deduction_id": id, "tokens": 600, "reason": "job failed"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let a = refund(json!({"account_id": "acme", "deduction_id": id, "tokens": 2_000_000}));
    assert_eq!(code(&a), "refund_exceeds_deduction");
    let a = refund(json!({"account_id": "acme", "deduction_id": "tx_000000009999"}));
    assert_eq!(a.status, 404);
    for query in [
        "",
        "?limit=2",
        "?type=refund",
        "?project=p-42",
        "?limit=0",
        "?cursor=nope",
    ] {
        let uri = format!("/api/billing/credits{query}");
        let a = api.send("GET", &uri, Some(key), None, &[]);
        assert_eq!(
            a.status == 200,
            !query.contains("=0") && !query.contains("nope")
        );
        if let Some(cursor) = a.body["next_cursor"].as_str() {
            let uri = format!("/api/billing/credits?limit=2&cursor={cursor}");
            assert_eq!(api.send("GET", &uri, Some(key), None, &[]).status, 200);
        }
    }
    for query in [
        "?group_by=day",
        "?group_by=project",
        "?group_by=operation&from=2020-01-01&to=2100-01-01T00:00:00Z",
        "?group_by=week",
        "?from=2030-01-01&to=2020-01-01",
    ] {
        let uri = format!("/api/billing/credits/usage{query}");
        let a = api.send("GET", &uri, Some(key), None, &[]);
        assert_eq!(
            a.status == 200,
            !query.contains("week") && !query.contains("2030")
        );
    }
}

/// Token holds: create, read, settle (some and 0), void, conflicts, expiry.
fn hold_routes(api: &Api) {
    let create = |tokens: u64, idem: &str| {
        api.send(
            "POST",
            "/api/billing/credits/holds",
            Some(SERVICE),
            Some(
                &json!({"account_id": "acme", "tokens": tokens, "operation": "chat",
                          "resource": {"project": "p", "session": "s"}, "expires_in_seconds": 60}),
            ),
            &[("idempotency-key", idem)],
        )
    };
    let end = |id: &str, action: &str, body: Value| {
        api.send(
            "POST",
            &format!("/api/billing/credits/holds/{id}/{action}"),
            Some(SERVICE),
            Some(&body),
            &[],
        )
    };
    let read = |id: &str, query: &str, clock: Option<&str>| {
        let headers: Vec<_> = clock.map(|c| ("x-test-clock", c)).into_iter().collect();
        let uri = format!("/api/billing/credits/holds/{id}{query}");
        api.send("GET", &uri, Some(SERVICE), None, &headers)
    };
    let a = create(8000, "h1");
    assert_eq!(a.status, 201, "{}", a.body);
    let h1 = a.body["hold"]["id"].as_str().unwrap().to_owned();
    assert!(
        create(8000, "h1")
            .headers
            .contains_key("idempotent-replayed")
    );
    assert_eq!(code(&create(9, "h1")), "idempotency_conflict");
    assert_eq!(code(&create(1_u64 << 50, "h2")), "insufficient_balance");
    assert_eq!(read(&h1, "?account_id=acme", None).status, 200);
    assert_eq!(read(&h1, "", None).status, 400);
    assert_eq!(read("hold_nope", "?account_id=acme", None).status, 404);
    let too_much = json!({"account_id": "acme", "tokens": 9000});
    assert_eq!(code(&end(&h1, "settle", too_much)), "hold_exceeded");
    let a = end(&h1, "settle", json!({"account_id": "acme", "tokens": 6512}));
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["hold"]["settled_tokens"], 6512);
    let acme = json!({"account_id": "acme"});
    assert_eq!(code(&end(&h1, "void", acme.clone())), "conflict");
    let h2 = create(10, "h3").body["hold"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = end(&h2, "settle", json!({"account_id": "acme", "tokens": 0}));
    assert_eq!((a.status, &a.body["transaction"]), (201, &Value::Null));
    let h3 = create(10, "h4").body["hold"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(end(&h3, "void", acme.clone()).status, 200);
    let h4 = create(10, "h5").body["hold"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = read(&h4, "?account_id=acme", Some("2100-01-01T00:00:00Z"));
    assert_eq!(later.body["hold"]["status"], "expired");
    assert_eq!(end("hold_nope", "void", acme).status, 404);
}

/// Events: the list (pages, a malformed cursor) and a redelivery.
/// Stripe's webhook: refused unsigned (and always with the sandbox); taken,
/// signed, by an app configured for Stripe (an event type it ignores needs no
/// network).
fn stripe_webhook_route(api: &Api) {
    let payload = r#"{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
    let a = api.raw(
        "POST",
        "/api/webhooks/stripe",
        None,
        Some("application/json"),
        payload.as_bytes().to_vec(),
        &[],
    );
    assert_eq!((a.status, code(&a)), (400, "invalid_request"));
    let mut stripe = Api::new();
    stripe.config.payments = credits_service::PaymentConfig::from_variables(|name| {
        match name {
            "payment_provider" => Some("stripe"),
            "stripe_secret_key" => Some("sk_test_1"),
            "stripe_webhook_secret" => Some("whsec_1"),
            _ => None,
        }
        .map(str::to_owned)
    });
    let now = credits::Timestamp::parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
    let t = now.millis() / 1000;
    let signature = fake_stripe::signature(payload, "whsec_1", t);
    let a = stripe.raw(
        "POST",
        "/api/webhooks/stripe",
        None,
        Some("application/json"),
        payload.as_bytes().to_vec(),
        &[
            ("stripe-signature", &signature),
            ("x-test-clock", "2026-11-20T10:00:00Z"),
        ],
    );
    assert_eq!((a.status, &a.body), (200, &json!({"received": true})));
    api.seen.borrow_mut().extend(stripe.seen.take());
}

fn event_routes(api: &Api) {
    api.account("evt", "free");
    let spent = api.send(
        "POST",
        "/api/billing/credits/deductions",
        Some(SERVICE),
        Some(&json!({"account_id": "evt", "tokens": 100_000, "operation": "chat"})),
        &[],
    );
    assert_eq!(spent.status, 201, "{}", spent.body);
    let page = api.send("GET", "/api/admin/events?limit=1", Some(SERVICE), None, &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    let id = page.body["events"][0]["id"].as_str().unwrap().to_owned();
    let after = format!("/api/admin/events?after={id}&limit=500");
    assert_eq!(
        api.send("GET", &after, Some(SERVICE), None, &[]).status,
        200
    );
    let bad = api.send("GET", "/api/admin/events?after=x", Some(SERVICE), None, &[]);
    assert_eq!(code(&bad), "invalid_request");
    let again = format!("/api/admin/events/{id}/redeliver");
    assert_eq!(
        api.send("POST", &again, Some(SERVICE), None, &[]).status,
        202
    );
    let unknown = "/api/admin/events/evt_000000099999/redeliver";
    assert_eq!(
        api.send("POST", unknown, Some(SERVICE), None, &[]).status,
        404
    );
}

#[test]
fn every_answer_of_every_route_matches_the_document() {
    let api = Api::new();
    let key = account_routes(&api);
    ledger_routes(&api, &key);
    hold_routes(&api);
    event_routes(&api);
    stripe_webhook_route(&api);
    let a = api.send("GET", routes::openapi::PATH, None, None, &[]);
    assert_eq!(a.body, document());
    let a = api.send("POST", routes::openapi::PATH, None, None, &[]);
    assert_eq!(a.status, 405);
    assert_eq!(api.send("GET", "/api/nope", None, None, &[]).status, 404);
    let a = api.send("GET", "/api/billing/credits/deductions", None, None, &[]);
    assert_eq!(a.headers["allow"], "POST");
    errors_every_route_documents(&api, &key);
    // Each operation was answered with a success at least once.
    let seen = api.seen.borrow();
    for (method, path) in operations(&api.doc) {
        if path == DASHBOARD {
            continue;
        }
        assert!(
            seen.iter()
                .any(|(m, p, s)| *m == method && *p == path && (200..300).contains(s)),
            "no success seen for {method} {path}"
        );
    }
}

/// A concrete path for a template, with ids that exist where that matters not.
fn sample_path(template: &str) -> String {
    template
        .replace("{account_id}", "acme")
        .replace("{id}", "hold_00000000000000000000000000000000")
}

/// The answers every route shares: no token, the other kind of token, a body too
/// large, the wrong content type, a malformed `X-Test-Clock`.
fn errors_every_route_documents(api: &Api, key: &str) {
    for (method, path) in operations(&api.doc) {
        let op = &api.doc["paths"][&path][method.to_lowercase()];
        if op["security"] == json!([]) {
            continue;
        }
        let uri = sample_path(&path);
        let security = op["security"].to_string();
        let (right, wrong) = if security.contains("serviceToken") {
            (SERVICE, key)
        } else {
            (key, SERVICE)
        };
        let a = api.send(&method, &uri, None, None, &[]);
        assert_eq!(a.status, 401, "{method} {path}");
        if !(security.contains("serviceToken") && security.contains("accountKey")) {
            let a = api.send(&method, &uri, Some(wrong), None, &[]);
            assert_eq!(a.status, 403, "{method} {path}");
        }
        let big = vec![b' '; 64 * 1024 + 1];
        let a = api.raw(
            &method,
            &uri,
            Some(right),
            Some("application/json"),
            big,
            &[],
        );
        assert_eq!(a.status, 413, "{method} {path}");
        let example = resolve(
            &api.doc,
            &op["requestBody"]["content"]["application/json"]["schema"],
        )["examples"][0]
            .clone();
        if op.get("requestBody").is_some() {
            let a = api.raw(&method, &uri, Some(right), Some("text/plain"), vec![], &[]);
            assert_eq!(a.status, 415, "{method} {path}");
        }
        let body = op.get("requestBody").map(|_| &example);
        let a = api.send(
            &method,
            &uri,
            Some(right),
            body,
            &[("x-test-clock", "noon")],
        );
        assert_eq!(
            (a.status, code(&a)),
            (400, "invalid_request"),
            "{method} {path}"
        );
    }
}

/// What the router answers to a request without a token: `None` if no route
/// claims the path, else whether the method is taken.
fn routed(api: &Api, method: &str, path: &str) -> Option<bool> {
    let a = api.send(method, path, None, None, &[]);
    match a.status {
        404 if a.body["error"]["message"] == "route not found" => None,
        405 => Some(false),
        _ => Some(true),
    }
}

#[test]
fn the_document_names_every_route_and_only_routes() {
    let api = Api::new();
    api.account("acme", "pro");
    let ops = operations(&api.doc);
    // Every documented path takes exactly its documented methods.
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        if path == DASHBOARD {
            continue;
        }
        for method in METHODS {
            let documented = ops.contains(&(method.to_owned(), path.clone()));
            let uri = sample_path(path);
            assert_eq!(
                routed(&api, method, &uri),
                Some(documented),
                "{method} {path}: documented {documented}"
            );
        }
    }
    // Every route of spin.toml is documented (wildcards: some path under them is).
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
    let manifest = std::fs::read_to_string(manifest).unwrap();
    for line in manifest.lines() {
        let Some(route) = line
            .strip_prefix("route = \"")
            .and_then(|r| r.strip_suffix('"'))
        else {
            continue;
        };
        let documented = match route.strip_suffix("/...") {
            Some("" | "/assets") => true, // the 404 catch-all, the dashboard's files
            Some(prefix) => ops
                .iter()
                .any(|(_, p)| p.starts_with(&format!("{prefix}/"))),
            None => ops.iter().any(|(_, p)| p == route),
        };
        assert!(
            documented,
            "spin.toml routes {route}, the document lacks it"
        );
    }
}

/// `API.md` lives in the shared folder beside the repository (as on CI).
#[test]
fn every_route_of_api_md_is_documented_or_not_served_yet() {
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/API.md");
    let Ok(text) = std::fs::read_to_string(&contract) else {
        eprintln!("{} not found: skipped", contract.display());
        return;
    };
    let api = Api::new();
    let ops = operations(&api.doc);
    let mut found = BTreeSet::new();
    for span in text.split('`').skip(1).step_by(2) {
        let Some((method, rest)) = span.split_once(' ') else {
            continue;
        };
        let path = rest.split(['?', ' ']).next().unwrap_or("");
        // `/v1/...` are Stripe's routes the service calls, not ours.
        if !METHODS.contains(&method) || !path.starts_with('/') || path.starts_with("/v1/") {
            continue;
        }
        found.insert((method.to_owned(), path.to_owned()));
    }
    assert!(
        found.len() >= 15,
        "API.md parsed to too few routes: {found:?}"
    );
    for (method, path) in &found {
        if ops.contains(&(method.clone(), path.clone())) {
            continue;
        }
        assert!(
            NOT_YET.contains(&(method.as_str(), path.as_str())),
            "API.md has {method} {path}; the document lacks it"
        );
        assert_eq!(
            routed(&api, method, &sample_path(path)),
            None,
            "{method} {path} is served now: describe it in openapi.json, drop it from NOT_YET"
        );
    }
}

/// An answer no sandbox request can produce (the sandbox never asks for 3-D
/// Secure), built the way every error answer is, against the purchase's 402.
#[test]
fn an_authentication_required_answer_matches_the_document() {
    let doc = document();
    let error = credits_api::ApiError::Domain(credits::CreditsError::AuthenticationRequired {
        message: "Your card was declined. This transaction requires authentication.".into(),
        client_secret: "pi_123_secret_456".into(),
    });
    let response = credits_api::error_response(&error);
    assert_eq!(response.status(), 402);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["code"], "authentication_required");
    assert_eq!(body["error"]["client_secret"], "pi_123_secret_456");
    let documented = resolve(
        &doc,
        &doc["paths"]["/api/billing/credits/purchases"]["post"]["responses"]["402"],
    );
    assert!(
        documented["x-error-codes"]
            .as_array()
            .unwrap()
            .contains(&json!("authentication_required"))
    );
    let schema = documented["content"]["application/json"]["schema"].clone();
    validate(&doc, schema, &body, "402 authentication_required");
}

/// A purchase whose charge has no outcome yet (no sandbox charge times out), in
/// the body the purchase route gives it, against the documented 202.
#[test]
fn a_pending_purchase_answer_matches_the_document() {
    let doc = document();
    let pending = credits::PendingPurchaseView {
        id: format!("pur_{}", "0a".repeat(16)),
        status: "pending",
        pack: "standard".into(),
        amount_eur: credits::Eur::from_cents(1000),
    };
    let body = json!({ "purchase": pending });
    assert_eq!(body["purchase"]["amount_eur"], "10.00");
    let documented = resolve(
        &doc,
        &doc["paths"]["/api/billing/credits/purchases"]["post"]["responses"]["202"],
    );
    let schema = documented["content"]["application/json"]["schema"].clone();
    validate(&doc, schema, &body, "202 pending purchase");
}
