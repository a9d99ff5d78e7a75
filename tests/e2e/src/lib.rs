//! End-to-end tests: the app's own `spin.toml` and release components, served by
//! minispin on loopback, driven over real HTTP like a dashboard or back end would.

use std::collections::HashMap;
use std::net::TcpListener;

pub mod receiver;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

/// The service token the test apps run with.
pub const SERVICE: &str = "e2e-service-token";

/// The repository root, where `spin.toml` lives.
#[must_use]
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Builds every component of `spin.toml` once per test run (as `spin build` does).
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        minispin::build(&repo_root().join("spin.toml")).expect("components build");
    });
}

/// A running app with its own state directory.
pub struct TestApp {
    server: Option<minispin::ServerHandle>,
    base: String,
    agent: ureq::Agent,
    state: Option<tempfile::TempDir>,
    state_path: PathBuf,
}

impl TestApp {
    /// Serves the real `spin.toml` with a fresh database, the test clock on and the
    /// cron schedule off (tests fire it on purpose).
    #[must_use]
    pub fn start() -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let mut app = Self::start_on(state.path());
        app.state = Some(state);
        app
    }

    /// A second host on this app's database files: another `spin up` process
    /// sharing the state directory, as instances on several machines share libSQL.
    #[must_use]
    pub fn another_instance(&self) -> Self {
        Self::start_on(&self.state_path)
    }

    /// A fresh app with more Spin variables (e.g. where events go).
    #[must_use]
    pub fn start_with(extra: &[(&str, &str)]) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let mut app = Self::start_on_with(state.path(), extra);
        app.state = Some(state);
        app
    }

    /// Another instance on this app's database, with its own variables.
    #[must_use]
    pub fn another_instance_with(&self, extra: &[(&str, &str)]) -> Self {
        Self::start_on_with(&self.state_path, extra)
    }

    /// A fresh app whose stores come from a Spin runtime config file, as
    /// `spin up --runtime-config-file FILE` reads it; its own state directory keeps
    /// whatever the file leaves to Spin's defaults. Several apps on one file are
    /// several hosts sharing what the file names (a Redis server, an SQLite path).
    #[must_use]
    pub fn start_with_runtime_config(runtime_config_file: &Path) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let mut app = Self::launch(state.path(), &[], Some(runtime_config_file));
        app.state = Some(state);
        app
    }

    fn start_on(state_path: &Path) -> Self {
        Self::start_on_with(state_path, &[])
    }

    fn start_on_with(state_path: &Path, extra: &[(&str, &str)]) -> Self {
        Self::launch(state_path, extra, None)
    }

    fn launch(state_path: &Path, extra: &[(&str, &str)], runtime_config: Option<&Path>) -> Self {
        ensure_built();
        let mut variables = HashMap::from([
            ("service_token".to_owned(), SERVICE.to_owned()),
            ("test_clock".to_owned(), "true".to_owned()),
        ]);
        variables.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let options = minispin::AppOptions {
            state_dir: Some(state_path.to_owned()),
            variables,
            cron: false,
            runtime_config_file: runtime_config.map(Path::to_owned),
            ..minispin::AppOptions::default()
        };
        let app = minispin::App::load(repo_root().join("spin.toml"), options).expect("app loads");
        let server = app
            .serve(TcpListener::bind("127.0.0.1:0").expect("bind"))
            .expect("serves");
        let base = server.base_url();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            server: Some(server),
            base,
            agent,
            state: None,
            state_path: state_path.to_owned(),
        }
    }

    /// One app shared by the tests of a binary that use unique account ids.
    #[must_use]
    pub fn shared() -> Arc<TestApp> {
        static APP: OnceLock<Arc<TestApp>> = OnceLock::new();
        APP.get_or_init(|| Arc::new(TestApp::start())).clone()
    }

    /// Runs the scheduled component once, as the cron trigger would.
    pub fn fire_cron(&self) {
        let server = self.server.as_ref().expect("running");
        server
            .app()
            .fire_cron_blocking("recharge-cron")
            .expect("cron component runs");
    }

    /// Sends a request; `body` is sent as JSON.
    pub fn call(&self, method: &str, path: &str) -> Call<'_> {
        Call {
            app: self,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
        }
    }

    /// Creates an account and returns its key.
    pub fn account(&self, id: &str, plan: &str) -> String {
        let r = self
            .call("POST", "/api/admin/accounts")
            .service()
            .json(&json!({"account_id": id, "plan": plan}));
        assert_eq!(r.status, 201, "create {id}: {}", r.body);
        r.body["api_key"].as_str().expect("api_key").to_owned()
    }

    /// Creates a paid account with a card that succeeds, and returns its key.
    pub fn paying_account(&self, id: &str, plan: &str) -> String {
        let key = self.account(id, plan);
        let r = self
            .call("PUT", "/api/billing/payment-method")
            .key(&key)
            .json(&json!({"payment_method": "pm_card_visa"}));
        assert_eq!(r.status, 200, "{}", r.body);
        key
    }

    /// Runs the recharge check (`POST /api/internal/recharge-check`) at a test
    /// clock time; it must answer 200.
    pub fn recharge_check_at(&self, at: &str) -> Reply {
        let r = self
            .call("POST", "/api/internal/recharge-check")
            .service()
            .at(at)
            .send();
        assert_eq!(r.status, 200, "{}", r.body);
        r
    }

    /// Deducts tokens through the service route.
    pub fn deduct(&self, account: &str, tokens: u64) -> Reply {
        self.call("POST", "/api/billing/credits/deductions")
            .service()
            .json(&json!({"account_id": account, "tokens": tokens, "operation": "enrichment"}))
    }

    /// Every transaction of the account, paging through the whole history.
    pub fn all_transactions(&self, key: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/billing/credits?limit=200&cursor={c}"),
                None => "/api/billing/credits?limit=200".to_owned(),
            };
            let r = self.call("GET", &path).key(key).send();
            assert_eq!(r.status, 200, "{}", r.body);
            out.extend(
                r.body["transactions"]
                    .as_array()
                    .expect("transactions")
                    .iter()
                    .cloned(),
            );
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// The books balance over HTTP: the credit balance equals the ledger's sum.
    pub fn assert_ledger_matches_balance(&self, key: &str) -> Value {
        let summary = self
            .call("GET", "/api/billing/credits?limit=1")
            .key(key)
            .send()
            .body;
        let mut sum: i128 = 0;
        for t in self.all_transactions(key) {
            let credit = i128::from(t["credit_tokens"].as_u64().unwrap_or(0));
            sum += match t["type"].as_str() {
                Some("purchase") => i128::from(t["tokens"].as_u64().expect("tokens")),
                Some("deduction") => -credit,
                _ => credit,
            };
        }
        let balance = i128::from(
            summary["credits"]["balance_tokens"]
                .as_u64()
                .expect("balance"),
        );
        assert_eq!(balance, sum, "credit balance vs ledger sum");
        summary
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown();
        }
    }
}

/// A request being put together.
pub struct Call<'a> {
    app: &'a TestApp,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

/// A response: status, headers we care about, and the body as JSON (or a string).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: HashMap<String, String>,
}

impl Reply {
    /// The API error code, or `""`.
    #[must_use]
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Call<'_> {
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn service(self) -> Self {
        self.header("authorization", &format!("Bearer {SERVICE}"))
    }

    #[must_use]
    pub fn key(self, key: &str) -> Self {
        self.header("authorization", &format!("Bearer {key}"))
    }

    #[must_use]
    pub fn idempotency(self, key: &str) -> Self {
        self.header("idempotency-key", key)
    }

    #[must_use]
    pub fn at(self, time: &str) -> Self {
        self.header("x-test-clock", time)
    }

    /// Sends `body` as `application/json`.
    pub fn json(self, body: &Value) -> Reply {
        let raw = body.to_string().into_bytes();
        self.header("content-type", "application/json").raw(&raw)
    }

    /// Sends without a body.
    pub fn send(self) -> Reply {
        self.raw(&[])
    }

    /// Sends these bytes as the body, with whatever headers were set.
    pub fn raw(self, body: &[u8]) -> Reply {
        let url = format!("{}{}", self.app.base, self.path);
        let mut req = http_request(&self.method, &url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req.body(body.to_vec()).expect("request");
        let mut resp = self.app.agent.run(req).expect("HTTP exchange");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            headers,
        }
    }
}

fn http_request(method: &str, url: &str) -> ureq::http::request::Builder {
    ureq::http::Request::builder().method(method).uri(url)
}
