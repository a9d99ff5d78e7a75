//! The HTTP contract, natively: the API layer over a real `SQLite` file.

use credits::NoCache;
use credits_api::{Config, Env, Request, Stores, routes};
use credits_sqlite::NativeDb;
use serde_json::{Value, json};

const SERVICE: &str = "test-service-token";

struct Api {
    db: NativeDb,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = NativeDb::open(&dir.path().join("db.sqlite")).unwrap();
        Self { db, _dir: dir }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut builder = http::Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req: Request = builder
            .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
            .unwrap();
        let env = Env {
            stores: Stores {
                db: &self.db,
                cache: &NoCache,
                stripe: &credits_service::NoNetwork,
            },
            config: &Config::default(),
            service_token: Some(SERVICE),
            test_clock: true,
            after: None,
        };
        let resp = routes::serve(&env, &req);
        let status = resp.status().as_u16();
        let body = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
        (status, body)
    }

    fn account(&self, id: &str, plan: &str) -> String {
        let (s, b) = self.send(
            "POST",
            "/api/admin/accounts",
            Some(SERVICE),
            Some(json!({"account_id": id, "plan": plan})),
            &[],
        );
        assert_eq!(s, 201, "{b}");
        b["api_key"].as_str().unwrap().to_owned()
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[test]
fn checks_run_in_the_documented_order() {
    let api = Api::new();
    let key = api.account("acme", "pro");
    // route, then method
    assert_eq!(api.send("GET", "/nope", None, None, &[]).0, 404);
    let (s, b) = api.send("GET", "/api/billing/credits/deductions", None, None, &[]);
    assert_eq!((s, code(&b)), (405, "method_not_allowed"));
    // token, then its right
    assert_eq!(
        code(
            &api.send("POST", "/api/billing/credits/deductions", None, None, &[])
                .1
        ),
        "unauthorized"
    );
    assert_eq!(
        code(
            &api.send(
                "POST",
                "/api/billing/credits/deductions",
                Some("bogus"),
                None,
                &[]
            )
            .1
        ),
        "unauthorized"
    );
    assert_eq!(
        code(
            &api.send(
                "POST",
                "/api/billing/credits/deductions",
                Some(&key),
                None,
                &[]
            )
            .1
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            &api.send("GET", "/api/billing/credits", Some(SERVICE), None, &[])
                .1
        ),
        "forbidden"
    );
    // content type, then body
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/deductions",
        Some(SERVICE),
        None,
        &[],
    );
    assert_eq!((s, code(&b)), (415, "unsupported_media_type"));
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/deductions",
        Some(SERVICE),
        Some(json!({"account_id": "acme"})),
        &[],
    );
    assert_eq!((s, code(&b)), (400, "invalid_request"), "{b}");
    // then resources
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/deductions",
        Some(SERVICE),
        Some(json!({"account_id": "ghost", "tokens": 1, "operation": "x"})),
        &[],
    );
    assert_eq!((s, code(&b)), (404, "not_found"), "{b}");
}

#[test]
fn a_story_of_purchase_deduction_refund() {
    let api = Api::new();
    let key = api.account("acme", "pro");
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/purchases",
        Some(&key),
        Some(json!({"pack": "standard"})),
        &[],
    );
    assert_eq!((s, code(&b)), (400, "payment_method_required"));
    let (s, _) = api.send(
        "PUT",
        "/api/billing/payment-method",
        Some(&key),
        Some(json!({"payment_method": "pm_card_visa"})),
        &[],
    );
    assert_eq!(s, 200);
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/purchases",
        Some(&key),
        Some(json!({"pack": "standard"})),
        &[("idempotency-key", "k1")],
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["credits"]["balance_tokens"], 2_500_000);
    let (s, b2) = api.send(
        "POST",
        "/api/billing/credits/purchases",
        Some(&key),
        Some(json!({"pack": "standard"})),
        &[("idempotency-key", "k1")],
    );
    assert_eq!((s, &b2), (201, &b));
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/deductions",
        Some(SERVICE),
        Some(json!({"account_id": "acme", "tokens": 2_000_500, "operation": "enrichment", "resource": {"project": "p-42"}})),
        &[],
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["transaction"]["credit_tokens"], 500);
    assert_eq!(b["transaction"]["resource"]["session"], Value::Null);
    let id = b["transaction"]["id"].as_str().unwrap().to_owned();
    let (s, b) = api.send(
        "POST",
        "/api/billing/credits/refunds",
        Some(SERVICE),
        Some(json!({"account_id": "acme", "deduction_id": id, "tokens": 600, "reason": "job failed"})),
        &[],
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (
            b["transaction"]["credit_tokens"].as_u64(),
            b["transaction"]["plan_tokens"].as_u64()
        ),
        (Some(500), Some(100))
    );
    let (s, b) = api.send("GET", "/api/billing/credits?limit=2", Some(&key), None, &[]);
    assert_eq!(s, 200);
    assert_eq!(b["available_tokens"], 2_500_000 + 100);
    assert_eq!(b["transactions"].as_array().unwrap().len(), 2);
    assert!(b["next_cursor"].is_string());
    let (s, b) = api.send(
        "GET",
        "/api/billing/credits/usage?group_by=project",
        Some(&key),
        None,
        &[],
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["groups"],
        json!([{"key": "p-42", "tokens": 2_000_500 - 600}])
    );
    let (s, b) = api.send(
        "GET",
        "/api/billing/credits/packs",
        Some(SERVICE),
        None,
        &[],
    );
    assert_eq!(s, 200);
    assert_eq!(b["packs"][2]["price_per_million_eur"], "3.57");
}

/// `GET …/packs` with the plans' prices configured as `vars` says.
fn catalog_with(vars: &[(&str, &str)]) -> (u16, Value) {
    let dir = tempfile::tempdir().unwrap();
    let db = NativeDb::open(&dir.path().join("db.sqlite")).unwrap();
    let config = Config {
        plan_prices: credits_api::PlanPricing::from_variables(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }),
        ..Config::default()
    };
    let env = Env {
        stores: Stores {
            db: &db,
            cache: &NoCache,
            stripe: &credits_service::NoNetwork,
        },
        config: &config,
        service_token: Some(SERVICE),
        test_clock: false,
        after: None,
    };
    let req: Request = http::Request::builder()
        .uri("/api/billing/credits/packs")
        .header("authorization", format!("Bearer {SERVICE}"))
        .body(Vec::new())
        .unwrap();
    let resp = routes::serve(&env, &req);
    (
        resp.status().as_u16(),
        serde_json::from_slice(resp.body()).unwrap(),
    )
}

#[test]
fn the_catalog_lists_the_plans_at_their_configured_prices() {
    let (s, b) = catalog_with(&[]);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["packs"].as_array().unwrap().len(), 4, "packs unchanged");
    assert_eq!(
        b["plans"],
        json!([
            {"id": "free", "monthly_tokens": 100_000, "price_eur": "0.00"},
            {"id": "pro", "monthly_tokens": 2_000_000, "price_eur": "20.00"},
            {"id": "team", "monthly_tokens": 10_000_000, "price_eur": "80.00"},
        ])
    );
    let (s, b) = catalog_with(&[
        ("plan_price_pro_eur", "25.00"),
        ("plan_price_team_eur", "99.90"),
    ]);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["plans"][1]["price_eur"], "25.00");
    assert_eq!(b["plans"][2]["price_eur"], "99.90");
}

#[test]
fn a_bad_configured_plan_price_is_an_internal_error_naming_the_variable() {
    let (s, b) = catalog_with(&[("plan_price_team_eur", "80")]);
    assert_eq!(s, 500, "{b}");
    assert_eq!(code(&b), "internal_error");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.contains("plan_price_team_eur"), "{message}");
    assert!(message.contains("\"80\""), "{message}");
}
