//! How many SQL statements and key-value calls each route runs, on a warm cache
//! and a migrated database: on Spin every statement is a host call (and with
//! libSQL a network round trip). Prints the README's table; asserts the counts
//! the request path is designed for, so a regression shows up here. Then asks
//! SQLite for the plan of every statement the routes ran: none reads a table
//! or index from end to end.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

use credits::{Database, DbError, Durability, KeyValue, Row, Value};
use credits_api::{Config, Env, Request, Stores, routes};
use credits_sqlite::NativeDb;
use serde_json::{Value as Json, json};

const SERVICE: &str = "test-service-token";

/// A database that counts what it runs, and keeps each statement's text.
struct Counting {
    db: NativeDb,
    statements: Cell<usize>,
    texts: RefCell<BTreeSet<String>>,
}

impl Database for Counting {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.statements.set(self.statements.get() + 1);
        self.texts.borrow_mut().insert(sql.to_owned());
        self.db.execute(sql, params)
    }

    fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        // A fresh connection per request, as on Spin: a change is a pragma.
        if durability != Durability::Full {
            self.statements.set(self.statements.get() + 1);
        }
        Ok(())
    }
}

/// A key-value store in memory that counts its calls.
#[derive(Default)]
struct CountingKv {
    map: RefCell<HashMap<String, Vec<u8>>>,
    calls: Cell<usize>,
}

impl KeyValue for CountingKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        self.calls.set(self.calls.get() + 1);
        Ok(self.map.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), DbError> {
        self.calls.set(self.calls.get() + 1);
        self.map.borrow_mut().insert(key.into(), value.to_vec());
        Ok(())
    }
}

struct Api {
    db: Counting,
    kv: CountingKv,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = NativeDb::open(&dir.path().join("db.sqlite")).unwrap();
        Self {
            db: Counting {
                db,
                statements: Cell::new(0),
                texts: RefCell::default(),
            },
            kv: CountingKv::default(),
            config: Config::default(),
            _dir: dir,
        }
    }

    /// Sends a request; returns status, body, statements run and key-value calls.
    fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Json>,
    ) -> (u16, Json, usize, usize) {
        let authorization = format!("Bearer {token}");
        let mut headers = vec![("authorization", authorization.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.send_raw(method, path, &headers, body)
    }

    /// Sends a request with exactly these headers and body bytes.
    fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Json, usize, usize) {
        let mut builder = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let req: Request = builder.body(body).unwrap();
        let env = Env {
            stores: Stores {
                db: &self.db,
                cache: &self.kv,
                stripe: &credits_service::NoNetwork,
            },
            config: &self.config,
            service_token: Some(SERVICE),
            test_clock: false,
            after: None,
        };
        let (s0, k0) = (self.db.statements.get(), self.kv.calls.get());
        let resp = routes::serve(&env, &req);
        let body = serde_json::from_slice(resp.body()).unwrap_or(Json::Null);
        (
            resp.status().as_u16(),
            body,
            self.db.statements.get() - s0,
            self.kv.calls.get() - k0,
        )
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table, row by row
fn statements_per_route() {
    let api = Api::new();
    let (_, created, ..) = api.send(
        "POST",
        "/api/admin/accounts",
        SERVICE,
        Some(json!({"account_id": "acme", "plan": "pro"})),
    );
    let key = created["api_key"].as_str().unwrap().to_owned();
    let deduction = json!({"account_id": "acme", "tokens": 10, "operation": "chat"});
    // Warm up as a running service would be: the key cached, the sandbox's
    // table made by an earlier purchase.
    api.send("GET", "/api/billing/credits", &key, None);
    api.send(
        "PUT",
        "/api/billing/payment-method",
        &key,
        Some(json!({"payment_method": "pm_card_visa"})),
    );
    api.send(
        "POST",
        "/api/billing/credits/purchases",
        &key,
        Some(json!({"pack": "starter"})),
    );
    let mut rows = Vec::new();
    let mut measure = |name: &str, method: &str, path: &str, token: &str, body: Option<Json>| {
        let (status, answer, statements, kv) = api.send(method, path, token, body);
        assert!(status < 300, "{name}: {status} {answer}");
        rows.push((name.to_owned(), statements, kv));
        statements
    };
    let create = measure(
        "`POST /api/admin/accounts`",
        "POST",
        "/api/admin/accounts",
        SERVICE,
        Some(json!({"account_id": "beta", "plan": "pro"})),
    );
    measure(
        "`PUT /api/admin/accounts/{id}/plan`",
        "PUT",
        "/api/admin/accounts/beta/plan",
        SERVICE,
        Some(json!({"plan": "team"})),
    );
    let deduct = measure(
        "`POST …/deductions` (sets nothing off)",
        "POST",
        "/api/billing/credits/deductions",
        SERVICE,
        Some(deduction.clone()),
    );
    let (_, first, ..) = api.send(
        "POST",
        "/api/billing/credits/deductions",
        SERVICE,
        Some(deduction),
    );
    let tx = first["transaction"]["id"].as_str().unwrap().to_owned();
    let refund = measure(
        "`POST …/refunds`",
        "POST",
        "/api/billing/credits/refunds",
        SERVICE,
        Some(json!({"account_id": "acme", "deduction_id": tx, "tokens": 1})),
    );
    let hold_body = json!({"account_id": "acme", "tokens": 10, "operation": "chat"});
    let hold = measure(
        "`POST …/holds`",
        "POST",
        "/api/billing/credits/holds",
        SERVICE,
        Some(hold_body.clone()),
    );
    let hold_id = |api: &Api| {
        let (_, made, ..) = api.send(
            "POST",
            "/api/billing/credits/holds",
            SERVICE,
            Some(hold_body.clone()),
        );
        made["hold"]["id"].as_str().unwrap().to_owned()
    };
    let (settled, voided) = (hold_id(&api), hold_id(&api));
    measure(
        "`POST …/holds/{id}/settle`",
        "POST",
        &format!("/api/billing/credits/holds/{settled}/settle"),
        SERVICE,
        Some(json!({"account_id": "acme", "tokens": 7})),
    );
    measure(
        "`POST …/holds/{id}/void`",
        "POST",
        &format!("/api/billing/credits/holds/{voided}/void"),
        SERVICE,
        Some(json!({"account_id": "acme"})),
    );
    measure(
        "`GET …/holds/{id}`",
        "GET",
        &format!("/api/billing/credits/holds/{settled}?account_id=acme"),
        SERVICE,
        None,
    );
    let catalog = measure(
        "`GET …/packs` (service token)",
        "GET",
        "/api/billing/credits/packs",
        SERVICE,
        None,
    );
    measure(
        "`GET …/packs` (account key)",
        "GET",
        "/api/billing/credits/packs",
        &key,
        None,
    );
    measure(
        "`GET /api/billing/credits`",
        "GET",
        "/api/billing/credits",
        &key,
        None,
    );
    measure(
        "`GET …/usage`",
        "GET",
        "/api/billing/credits/usage",
        &key,
        None,
    );
    measure(
        "`GET …/auto-recharge`",
        "GET",
        "/api/billing/credits/auto-recharge",
        &key,
        None,
    );
    measure(
        "`PUT /api/billing/payment-method`",
        "PUT",
        "/api/billing/payment-method",
        &key,
        Some(json!({"payment_method": "pm_card_visa"})),
    );
    let purchase = measure(
        "`POST …/purchases` (without `Idempotency-Key`; with one, 5)",
        "POST",
        "/api/billing/credits/purchases",
        &key,
        Some(json!({"pack": "starter"})),
    );
    measure(
        "`PUT …/auto-recharge`",
        "PUT",
        "/api/billing/credits/auto-recharge",
        &key,
        Some(json!({"enabled": true, "pack": "starter", "threshold_tokens": 10})),
    );
    measure(
        "`POST /api/internal/recharge-check` (nothing due)",
        "POST",
        "/api/internal/recharge-check",
        SERVICE,
        None,
    );

    let (_, events, ..) = api.send("GET", "/api/admin/events?limit=1", SERVICE, None);
    let event = events["events"][0]["id"].as_str().unwrap().to_owned();
    measure(
        "`GET /api/admin/events`",
        "GET",
        "/api/admin/events",
        SERVICE,
        None,
    );
    measure(
        "`POST /api/admin/events/{id}/redeliver` (no `events_url`)",
        "POST",
        &format!("/api/admin/events/{event}/redeliver"),
        SERVICE,
        None,
    );
    measure(
        "`GET /api/billing/payment-method`",
        "GET",
        "/api/billing/payment-method",
        &key,
        None,
    );
    measure(
        "`POST /api/billing/payment-method/setup` (sandbox)",
        "POST",
        "/api/billing/payment-method/setup",
        &key,
        None,
    );
    let description = measure(
        "`GET /api/openapi.json`",
        "GET",
        "/api/openapi.json",
        SERVICE,
        None,
    );
    rows.push(stripe_webhook());

    println!("| route | SQL statements | key-value calls |\n|---|---|---|");
    for (name, statements, kv) in &rows {
        println!("| {name} | {statements} | {kv} |");
    }
    // The request path as designed: a deduction is one statement beside its
    // durability pragma, a refund one statement (a new connection's durability is
    // the refund's); the catalog touches no store.
    assert_eq!(
        deduct, 2,
        "a deduction: the durability pragma and one statement"
    );
    assert_eq!(refund, 1, "a refund: one statement");
    assert_eq!(hold, 2, "a hold: the durability pragma and one statement");
    assert_eq!(
        catalog, 0,
        "the catalog with the service token opens no store"
    );
    assert_eq!(description, 0, "the API's description opens no store");
    assert_eq!(
        purchase, 4,
        "a purchase: its record, the charge, the grant and the granted entry"
    );
    assert_eq!(create, 1, "a new account: one statement");
    let planned = assert_no_full_scans(&api.db);
    assert!(planned >= 25, "only {planned} statements planned");
}

/// Sweeps the recharge check runs across accounts, which read an index or
/// table through: each statement by a piece of its text, and why that is bounded.
const SWEEPS: &[(&str, &str)] = &[
    (
        "UPDATE holds SET status = 'expired'",
        "lapsed holds: the partial index of live holds, as many as are in flight",
    ),
    (
        "FROM auto_recharge s JOIN accounts a",
        "accounts with auto-recharge on, once a minute: as many as have it",
    ),
];

/// `EXPLAIN QUERY PLAN` of every statement a route ran (pragmas and the
/// migration's `LIMIT 0` column probes aside): none may `SCAN` one of the app's
/// tables, whole or along an index, but the recharge check's [`SWEEPS`]. A `SCAN`
/// of a subquery's or CTE's rows, of a constant row or of the schema's catalog
/// reads none of the books. SQLite names a table by its alias in a plan, so any
/// other `SCAN` counts. The statements triggers run are not in these plans.
/// Prints the deduction's plan (the bundled SQLite's, as in BENCHMARKS.md);
/// answers how many statements it planned.
fn assert_no_full_scans(db: &Counting) -> usize {
    let texts = db.texts.borrow();
    let mut planned = 0;
    for sql in texts.iter() {
        let verb = sql.split_whitespace().next().unwrap_or("");
        if !["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains(&verb)
            || sql.ends_with("LIMIT 0")
        {
            continue;
        }
        let params = vec![Value::Null; highest_param(sql)];
        let plan: Vec<(i64, i64, String)> = db
            .db
            .execute(&format!("EXPLAIN QUERY PLAN {sql}"), &params)
            .unwrap_or_else(|e| panic!("{e}: {sql}"))
            .iter()
            .map(|row| {
                let (id, parent) = (row.int(0).unwrap(), row.int(1).unwrap());
                (id, parent, row.text(3).unwrap().to_owned())
            })
            .collect();
        planned += 1;
        let subqueries: BTreeSet<&str> = plan
            .iter()
            .filter_map(|(_, _, detail)| {
                let (step, name) = detail.split_once(' ')?;
                ["MATERIALIZE", "CO-ROUTINE"]
                    .contains(&step)
                    .then_some(name)
            })
            .collect();
        let sweep = SWEEPS.iter().any(|(text, _)| sql.contains(text));
        for (_, _, detail) in &plan {
            let Some(scanned) = detail.strip_prefix("SCAN ") else {
                continue;
            };
            let reads_no_table = scanned.starts_with("(subquery-")
                || scanned == "CONSTANT ROW"
                || scanned == "sqlite_schema"
                || subqueries.contains(scanned);
            assert!(reads_no_table || sweep, "{detail}\nin: {sql}");
        }
        if sql.starts_with("INSERT INTO ledger") && sql.contains("'deduction'") {
            println!("\nThe deduction's plan:");
            print_plan(&plan);
        }
    }
    planned
}

/// A plan as SQLite's shell draws it, one step a line under its parent.
fn print_plan(plan: &[(i64, i64, String)]) {
    let mut depth = HashMap::new();
    for (id, parent, detail) in plan {
        let level = depth.get(parent).map_or(0, |d| d + 1);
        depth.insert(*id, level);
        println!("{}{detail}", "   ".repeat(level));
    }
}

/// How many parameters `sql` binds: its highest `?N`.
fn highest_param(sql: &str) -> usize {
    sql.split('?')
        .skip(1)
        .filter_map(|after| {
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// Stripe's webhook, on an app configured for Stripe: a signed
/// `payment_intent.succeeded` about no purchase of ours (it asks Stripe nothing).
fn stripe_webhook() -> (String, usize, usize) {
    let mut api = Api::new();
    api.config.payments = credits_service::PaymentConfig::from_variables(|name| {
        match name {
            "payment_provider" => Some("stripe"),
            "stripe_secret_key" => Some("sk_test_1"),
            "stripe_webhook_secret" => Some("whsec_1"),
            _ => None,
        }
        .map(str::to_owned)
    });
    let deliver = |event: &str| {
        let payload = format!(
            r#"{{"id":"{event}","object":"event","type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_1","object":"payment_intent","status":"succeeded","metadata":{{"purchase_id":"pur_none"}}}}}}}}"#
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let signature = fake_stripe::signature(&payload, "whsec_1", i64::try_from(now).unwrap());
        let answer = api.send_raw(
            "POST",
            "/api/webhooks/stripe",
            &[
                ("content-type", "application/json"),
                ("stripe-signature", &signature),
            ],
            payload.into_bytes(),
        );
        assert_eq!((answer.0, &answer.1), (200, &json!({"received": true})));
        answer
    };
    // A first event makes the adapter's tables, as on a running service.
    deliver("evt_0");
    let (_, _, statements, kv) = deliver("evt_1");
    assert!(assert_no_full_scans(&api.db) > 0);
    (
        "`POST /api/webhooks/stripe` (`payment_intent.succeeded`, no purchase of ours)".to_owned(),
        statements,
        kv,
    )
}
