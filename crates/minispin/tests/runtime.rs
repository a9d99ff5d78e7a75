//! minispin end to end: real `wasm32-wasip2` test components served over HTTP.
//!
//! The test components (`crates/minispin/test-components/*`) are built once per test
//! run, on first use, with the same command `spin build` would use.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use minispin::{App, AppOptions, ServerHandle};

// ---- fixtures ------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where cargo puts `wasm32-wasip2` artifacts: `$CARGO_TARGET_DIR` or `<workspace>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Builds the test components once per test run and returns their directory.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "wasm",
                "-p",
                "minispin-test-http",
                "-p",
                "minispin-test-cron",
            ])
            .status()
            .expect("run cargo to build the test components");
        assert!(status.success(), "building the test components failed");
        target_dir().join("wasm32-wasip2/wasm")
    })
}

fn http_wasm() -> String {
    wasm_dir()
        .join("minispin_test_http.wasm")
        .display()
        .to_string()
}

fn cron_wasm() -> String {
    wasm_dir()
        .join("minispin_test_cron.wasm")
        .display()
        .to_string()
}

/// A manifest with the test components mounted on several kinds of route.
fn test_manifest(outbound_port: u16, extra: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2

[application]
name = "minispin-tests"

[variables]
token = {{ required = true, secret = true }}
mode = {{ default = "slow" }}

[[trigger.http]]
route = "/..."
component = "full"

[[trigger.http]]
route = "/exact"
component = "isolated"

[[trigger.http]]
route = "/iso/..."
component = "isolated"

[[trigger.http]]
route = "/iso/deeper/..."
component = "full"

[component.full]
source = "{http}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
allowed_outbound_hosts = ["http://127.0.0.1:{outbound_port}"]
environment = {{ GREETING = "hi" }}
[component.full.variables]
token = "{{{{ token }}}}"
mode = "mode is {{{{ mode }}}}"

[component.isolated]
source = "{http}"

[component.ticker]
source = "{cron}"
key_value_stores = ["default"]
{extra}
"#,
        http = http_wasm(),
        cron = cron_wasm(),
    )
}

struct TestApp {
    dir: tempfile::TempDir,
    state_dir: PathBuf,
    server: ServerHandle,
    agent: ureq::Agent,
}

impl TestApp {
    /// Serves `test_manifest` with `extra` appended (`{port}` in it replaced by the
    /// server's port), cron schedules off unless asked.
    fn start(extra: &str, cron: bool) -> Self {
        Self::launch(extra, cron, None)
    }

    /// [`TestApp::start`] with a runtime config file holding `runtime_config`
    /// (`{dir}` in it replaced by the app's temporary directory).
    fn start_with_runtime_config(extra: &str, runtime_config: &str) -> Self {
        Self::launch(extra, false, Some(runtime_config))
    }

    fn launch(extra: &str, cron: bool, runtime_config: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("spin.toml");
        let extra = extra.replace("{port}", &port.to_string());
        std::fs::write(&manifest, test_manifest(port, &extra)).unwrap();
        let runtime_config_file = runtime_config.map(|text| {
            let path = dir.path().join("runtime-config.toml");
            let text = text.replace("{dir}", &dir.path().display().to_string());
            std::fs::write(&path, text).unwrap();
            path
        });
        let options = AppOptions {
            variables: HashMap::from([("token".to_string(), "t0ken".to_string())]),
            cron,
            runtime_config_file,
            ..AppOptions::default()
        };
        let app = App::load(&manifest, options).unwrap();
        let state_dir = app.state_dir().to_path_buf();
        let server = app.serve(listener).unwrap();
        Self {
            dir,
            state_dir,
            server,
            agent: agent(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    fn get(&self, path: &str) -> (u16, String) {
        read(self.agent.get(self.url(path)).call())
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        read(self.agent.post(self.url(path)).send(body))
    }

    fn delete(&self, path: &str) -> (u16, String) {
        read(self.agent.delete(self.url(path)).call())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut response = response.expect("request failed");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

fn header_value<'a>(headers: &'a str, name: &str) -> &'a str {
    headers
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {headers}"))
}

// ---- HTTP trigger and route matching ----------------------------------------

#[test]
fn serves_a_component_and_passes_spin_headers() {
    let app = TestApp::start("", false);
    assert_eq!(app.get("/hello"), (200, "hello".into()));
    let (status, headers) = app.get("/iso/headers?x=1");
    assert_eq!(status, 200);
    assert_eq!(header_value(&headers, "spin-matched-route"), "/iso/...");
    assert_eq!(
        header_value(&headers, "spin-raw-component-route"),
        "/iso/..."
    );
    assert_eq!(header_value(&headers, "spin-component-route"), "/iso");
    assert_eq!(header_value(&headers, "spin-path-info"), "/headers");
    assert_eq!(header_value(&headers, "spin-base-path"), "/");
    assert_eq!(
        header_value(&headers, "spin-full-url"),
        app.url("/iso/headers?x=1")
    );
    assert!(header_value(&headers, "spin-client-addr").starts_with("127.0.0.1:"));
}

#[test]
fn exact_routes_beat_wildcards_and_the_longest_prefix_wins() {
    let app = TestApp::start("", false);
    let route = |path: &str| {
        let (status, headers) = app.get(&format!("{path}/headers"));
        assert_eq!(status, 200, "{path}");
        header_value(&headers, "spin-matched-route").to_string()
    };
    assert_eq!(route("/iso"), "/iso/...");
    assert_eq!(route("/iso/deeper"), "/iso/deeper/...");
    assert_eq!(route("/iso/deeper/still"), "/iso/deeper/...");
    assert_eq!(route("/anything/else"), "/...");
    // `/exact` is exact: `/exact/headers` falls through to the catch-all.
    assert_eq!(route("/exact"), "/...");
    let (status, body) = app.get("/exact");
    assert_eq!((status, body.as_str()), (200, "hello"));
}

/// Polls the `default` key-value store through the app until `key` has a value.
fn wait_for_key(app: &TestApp, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, value) = app.get(&format!("/kv/{key}"));
        if status == 200 {
            return value;
        }
        assert!(Instant::now() < deadline, "`{key}` never stored");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_handler_keeps_running_after_its_response_is_complete() {
    let app = TestApp::start("", false);
    assert_eq!(app.get("/late/after"), (200, "sent".into()));
    // The response came first; the guest stores its value a second later.
    assert_eq!(app.get("/kv/after").0, 404);
    assert_eq!(wait_for_key(&app, "after"), "late");
}

#[test]
fn shutdown_waits_for_guests_still_working_after_their_response() {
    let TestApp {
        dir: _dir,
        state_dir,
        server,
        agent,
    } = TestApp::start("", false);
    let (status, body) = read(
        agent
            .get(format!("{}/late/at-exit", server.base_url()))
            .call(),
    );
    assert_eq!((status, body.as_str()), (200, "sent"));
    server.shutdown().unwrap();
    let db = rusqlite::Connection::open(state_dir.join("sqlite_key_value.db")).unwrap();
    let value: Vec<u8> = db
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'at-exit'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(value, b"late");
}

#[test]
fn a_trap_is_a_500_for_that_request_only() {
    let app = TestApp::start("", false);
    assert_eq!(app.get("/trap").0, 500);
    assert_eq!(app.get("/hello"), (200, "hello".into()));
}

#[test]
fn unknown_paths_without_a_catch_all_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
             [[trigger.http]]\nroute = \"/only\"\ncomponent = \"web\"\n\
             [component.web]\nsource = \"{}\"\n",
            http_wasm()
        ),
    )
    .unwrap();
    let app = App::load(&manifest, AppOptions::default()).unwrap();
    let server = app
        .serve(TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let agent = agent();
    let get = |p: &str| read(agent.get(format!("{}{p}", server.base_url())).call()).0;
    assert_eq!(get("/only"), 200);
    assert_eq!(get("/other"), 404);
    server.shutdown().unwrap();
}

// ---- key-value, SQLite, isolation ----------------------------------------------

#[test]
fn key_value_round_trips_and_lives_under_the_state_dir() {
    let app = TestApp::start("", false);
    assert_eq!(app.get("/kv/colour").0, 404);
    assert_eq!(app.post("/kv/colour", "blue"), (200, "stored".into()));
    assert_eq!(app.get("/kv/colour"), (200, "blue".into()));
    assert!(app.state_dir.join("sqlite_key_value.db").exists());
}

#[test]
fn sqlite_executes_statements_with_parameters() {
    let app = TestApp::start("", false);
    assert_eq!(app.post("/sqlite/hit", ""), (200, "1".into()));
    assert_eq!(app.post("/sqlite/hit", ""), (200, "2".into()));
    assert!(app.state_dir.join("sqlite_db.db").exists());
}

/// Whether a database file's header marks it as WAL (format versions 2) rather than
/// rollback journal (1).
fn is_wal(path: &Path) -> bool {
    let header = std::fs::read(path).unwrap();
    assert!(header.len() >= 100, "{} is not a database", path.display());
    header[18] == 2 && header[19] == 2
}

#[test]
fn sqlite_connections_are_opened_as_spin_opens_them() {
    let app = TestApp::start("", false);
    let query = |sql: &str| {
        let (status, body) = app.post("/sqlite/query", sql);
        assert_eq!(status, 200, "{sql}: {body}");
        body
    };
    // A fresh file: rollback journal, SQLite's default FULL sync, foreign keys as
    // the bundled SQLite (Spin's too) is compiled, rusqlite's 5 s busy timeout, and
    // nothing set by the runtime.
    assert_eq!(query("PRAGMA journal_mode"), "delete");
    assert_eq!(query("PRAGMA synchronous"), "2");
    assert_eq!(query("PRAGMA foreign_keys"), "1");
    assert_eq!(query("PRAGMA busy_timeout"), "5000");
    query("CREATE TABLE t (x)");
    let db = app.state_dir.join("sqlite_db.db");
    assert!(!is_wal(&db));
    // The app asks for WAL: the file keeps it; every new connection still starts
    // with SQLite's defaults.
    assert_eq!(query("PRAGMA journal_mode=WAL"), "wal");
    assert_eq!(query("PRAGMA journal_mode"), "wal");
    assert_eq!(query("PRAGMA synchronous"), "2");
    assert!(is_wal(&db));
}

#[test]
fn the_key_value_file_is_spins_layout_without_pragmas() {
    let app = TestApp::start("", false);
    assert_eq!(app.post("/kv/colour", "blue").0, 200);
    assert!(!is_wal(&app.state_dir.join("sqlite_key_value.db")));
}

#[test]
fn components_reach_only_the_stores_they_list() {
    let app = TestApp::start("", false);
    assert_eq!(app.get("/kv-open/default"), (200, "opened".into()));
    assert_eq!(app.get("/sqlite-open/default"), (200, "opened".into()));
    let denied = |path: &str| {
        let (status, body) = app.get(path);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("AccessDenied"), "{path}: {body}");
    };
    denied("/iso/kv-open/default");
    denied("/iso/sqlite-open/default");
    denied("/kv-open/other");
    denied("/sqlite-open/other");
}

#[test]
fn sixty_four_concurrent_requests_are_all_answered_correctly() {
    let app = TestApp::start("", false);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let app = &app;
                scope.spawn(move || {
                    let key = format!("/kv/key-{i}");
                    assert_eq!(app.post(&key, &format!("value-{i}")).0, 200);
                    assert_eq!(app.get(&key), (200, format!("value-{i}")));
                    let (status, count) = app.post("/sqlite/hit", "");
                    assert_eq!(status, 200, "{count}");
                    count.parse::<u32>().unwrap()
                })
            })
            .collect();
        let counts: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(counts.iter().max(), Some(&64));
    });
    assert_eq!(app.post("/sqlite/hit", ""), (200, "65".into()));
}

// ---- runtime config: Spin paths, Redis ------------------------------------------

/// A component listing labelled stores and databases, on `/lab/...`.
fn labelled_component(key_value: &str, sqlite: &str) -> String {
    format!(
        "[component.labelled]\nsource = \"{}\"\nkey_value_stores = [{key_value}]\n\
         sqlite_databases = [{sqlite}]\n\
         [[trigger.http]]\nroute = \"/lab/...\"\ncomponent = \"labelled\"\n",
        http_wasm()
    )
}

#[test]
fn runtime_config_spin_stores_and_databases_live_where_spin_puts_them() {
    let extra = labelled_component(r#""default", "cache""#, r#""default", "ledger""#);
    let app = TestApp::start_with_runtime_config(
        &extra,
        "[key_value_store.default]\ntype = \"spin\"\npath = \"kv/custom.db\"\n\
         [key_value_store.cache]\ntype = \"spin\"\n\
         [sqlite_database.ledger]\ntype = \"spin\"\npath = \"{dir}/data/ledger.db\"\n",
    );
    let dir = app.dir.path();
    // `default` is replaced; its relative path is from the runtime config's directory.
    assert_eq!(app.post("/lab/kv/colour", "blue"), (200, "stored".into()));
    assert_eq!(app.get("/lab/kv/colour"), (200, "blue".into()));
    assert!(dir.join("kv/custom.db").exists());
    assert!(!app.state_dir.join("sqlite_key_value.db").exists());
    // A `spin` store without a path is in memory, shared by the app's instances.
    assert_eq!(app.post("/lab/kvl/cache/x", "1"), (200, "stored".into()));
    assert_eq!(app.get("/lab/kvl/cache/x"), (200, "1".into()));
    // A declared database label works; `default` stays in the state directory.
    let query = |label: &str, sql: &str| app.post(&format!("/lab/sqlite-label/{label}"), sql);
    assert_eq!(query("ledger", "CREATE TABLE t (x)").0, 200);
    assert!(dir.join("data/ledger.db").exists());
    assert_eq!(query("default", "CREATE TABLE t (x)").0, 200);
    assert!(app.state_dir.join("sqlite_db.db").exists());
}

#[test]
fn labels_need_a_runtime_config_and_its_unknown_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    let write_manifest = |key_value: &str, sqlite: &str| {
        std::fs::write(
            &manifest,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
                 [component.web]\nsource = \"{}\"\n\
                 key_value_stores = [{key_value}]\nsqlite_databases = [{sqlite}]\n",
                http_wasm()
            ),
        )
        .unwrap();
    };
    let load = |runtime_config: Option<&str>| {
        let runtime_config_file = runtime_config.map(|text| {
            let path = dir.path().join("runtime-config.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        App::load(
            &manifest,
            AppOptions {
                runtime_config_file,
                ..AppOptions::default()
            },
        )
        .err()
        .map(|e| e.to_string())
    };
    write_manifest(r#""cache""#, "");
    let err = load(None).unwrap();
    assert!(
        err.contains("`cache`") && err.contains("key_value_store"),
        "{err}"
    );
    assert_eq!(
        load(Some("[key_value_store.cache]\ntype = \"spin\"\n")),
        None
    );
    write_manifest("", r#""ledger""#);
    let err = load(None).unwrap();
    assert!(
        err.contains("`ledger`") && err.contains("sqlite_database"),
        "{err}"
    );
    let err = load(Some(
        "[sqlite_database.ledger]\ntype = \"spin\"\npth = \"x\"\n",
    ))
    .unwrap();
    assert!(err.contains("pth"), "{err}");
    let err = load(Some("[key_value_store.cache]\ntype = \"mongo\"\n")).unwrap();
    assert!(err.contains("mongo"), "{err}");
}

/// A throwaway `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    child: std::process::Child,
    url: String,
}

impl RedisServer {
    /// Starts one, or `None` (with a message) when `redis-server` is not installed.
    fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install -y redis-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_redis_key_value_store_from_the_runtime_config() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let app = TestApp::start_with_runtime_config(
        "",
        &format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url
        ),
    );
    assert_eq!(app.get("/kv/colour").0, 404);
    assert_eq!(app.get("/kv-exists/colour"), (200, "false".into()));
    assert_eq!(app.post("/kv/colour", "blue"), (200, "stored".into()));
    assert_eq!(app.post("/kv/size", "9"), (200, "stored".into()));
    assert_eq!(app.get("/kv/colour"), (200, "blue".into()));
    assert_eq!(app.get("/kv-exists/colour"), (200, "true".into()));
    assert_eq!(app.get("/kv-keys"), (200, "colour,size".into()));

    // Really in Redis, laid out as Spin's Redis store lays it: the key, raw bytes.
    let mut direct = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let value: Vec<u8> = redis::Commands::get(&mut direct, "colour").unwrap();
    assert_eq!(value, b"blue");
    let _: () = redis::Commands::set(&mut direct, "from-outside", "hi").unwrap();
    assert_eq!(app.get("/kv/from-outside"), (200, "hi".into()));

    assert_eq!(app.delete("/kv/colour"), (200, "deleted".into()));
    assert_eq!(app.get("/kv/colour").0, 404);
    assert_eq!(app.get("/kv-exists/colour"), (200, "false".into()));
    let exists: bool = redis::Commands::exists(&mut direct, "colour").unwrap();
    assert!(!exists);
    assert_eq!(app.get("/kv-keys"), (200, "from-outside,size".into()));
    assert!(!app.state_dir.join("sqlite_key_value.db").exists());
}

// ---- variables, environment ----------------------------------------------------

#[test]
fn variables_expand_templates_and_unknown_names_are_undefined() {
    let app = TestApp::start("", false);
    assert_eq!(app.get("/var/token"), (200, "t0ken".into()));
    assert_eq!(app.get("/var/mode"), (200, "mode is slow".into()));
    let (status, body) = app.get("/var/nope");
    assert_eq!(status, 404);
    assert!(body.contains("Undefined"), "{body}");
    // `isolated` declares no variables.
    assert_eq!(app.get("/iso/var/token").0, 404);
    assert_eq!(app.get("/env/GREETING"), (200, "hi".into()));
}

// ---- outbound HTTP -------------------------------------------------------------

#[test]
fn outbound_http_reaches_allowed_hosts_only() {
    let app = TestApp::start("", false);
    let port = app.server.local_addr().port();
    let (status, body) = app.get(&format!("/outbound?url=http://127.0.0.1:{port}/hello"));
    assert_eq!((status, body.as_str()), (200, "upstream 200 hello"));
    let (status, body) = app.get(&format!("/outbound?url=http://localhost:{port}/hello"));
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    // `isolated` allows no hosts at all.
    let (status, body) = app.get(&format!("/iso/outbound?url=http://127.0.0.1:{port}/hello"));
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn allowed_outbound_hosts_templates_resolve_from_application_variables() {
    let extra = format!(
        "[variables.upstream]\ndefault = \"http://127.0.0.1:{{port}}\"\n\
         [component.templated]\nsource = \"{}\"\nallowed_outbound_hosts = [\"{{{{ upstream }}}}\"]\n\
         [[trigger.http]]\nroute = \"/tpl/...\"\ncomponent = \"templated\"\n",
        http_wasm()
    );
    let app = TestApp::start(&extra, false);
    let port = app.server.local_addr().port();
    let (status, body) = app.get(&format!("/tpl/outbound?url=http://127.0.0.1:{port}/hello"));
    assert_eq!((status, body.as_str()), (200, "upstream 200 hello"));
    let (status, body) = app.get(&format!("/tpl/outbound?url=http://localhost:{port}/hello"));
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn an_allowed_outbound_hosts_template_naming_no_variable_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
             [component.web]\nsource = \"{}\"\nallowed_outbound_hosts = [\"{{{{ nope }}}}\"]\n",
            http_wasm()
        ),
    )
    .unwrap();
    let err = App::load(&manifest, AppOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

// ---- cron ---------------------------------------------------------------------

#[test]
fn a_cron_component_fires_in_process() {
    let extra = "[[trigger.cron]]\ncomponent = \"ticker\"\ncron_expression = \"0 0 0 1 1 *\"\n";
    let app = TestApp::start(extra, false);
    assert_eq!(app.get("/kv/cron-count").0, 404);
    app.server.app().fire_cron_blocking("ticker").unwrap();
    app.server.app().fire_cron_blocking("ticker").unwrap();
    assert_eq!(app.get("/kv/cron-count"), (200, "2".into()));
    let (_, last) = app.get("/kv/cron-last");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(last.parse().unwrap()) < 60, "{last}");
    assert!(app.server.app().fire_cron_blocking("full").is_err());
}

#[test]
fn the_cron_schedule_runs_while_serving() {
    let extra = "[[trigger.cron]]\ncomponent = \"ticker\"\ncron_expression = \"* * * * * *\"\n";
    let app = TestApp::start(extra, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, count) = app.get("/kv/cron-count");
        if status == 200 && count.parse::<u32>().unwrap() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "cron did not fire twice in 10 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---- start-up checks ------------------------------------------------------------

#[test]
fn a_component_importing_something_missing_fails_at_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A component that imports Spin's LLM interface, which minispin does not offer.
    std::fs::write(
        dir.path().join("llm.wat"),
        r#"(component (import "fermyon:spin/llm@2.0.0" (instance (export "infer" (func)))))"#,
    )
    .unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"llm\"\n\
         [component.llm]\nsource = \"llm.wat\"\n",
    )
    .unwrap();
    let err = App::load(&manifest, AppOptions::default())
        .err()
        .unwrap()
        .to_string();
    eprintln!("{err}");
    assert!(err.contains("fermyon:spin/llm@2.0.0"), "{err}");
    assert!(err.contains("`llm`"), "{err}");
}

#[test]
fn a_component_without_the_triggers_export_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"cron\"\n\
             [component.cron]\nsource = \"{}\"\nkey_value_stores = [\"default\"]\n",
            cron_wasm()
        ),
    )
    .unwrap();
    let err = App::load(&manifest, AppOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("incoming-handler"), "{err}");
}

#[test]
fn a_required_variable_without_a_value_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, test_manifest(1, "")).unwrap();
    let err = App::load(&manifest, AppOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("SPIN_VARIABLE_TOKEN"), "{err}");
}

// ---- performance ---------------------------------------------------------------

#[test]
/// Counts instantiations; how fast they are is measured by `scripts/bench-runtime.sh`,
/// not asserted here (a timed assertion is flaky on a busy machine).
fn instantiation_is_measured_per_request() {
    let app = TestApp::start("", false);
    for _ in 0..200 {
        assert_eq!(app.get("/hello").0, 200);
    }
    let stats = app.server.app().instantiation_stats();
    eprintln!("instantiation: {stats}");
    assert!(stats.count >= 200);
    assert!(stats.mean > Duration::ZERO, "{stats}");
}

// ---- the command line ---------------------------------------------------------------

#[test]
fn build_runs_each_command_in_the_manifest_directory_or_workdir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
         [component.a]\nsource = \"a.wasm\"\n[component.a.build]\ncommand = \"echo a > built-a\"\n\
         [component.b]\nsource = \"b.wasm\"\n[component.b.build]\ncommand = \"echo b > built-b\"\nworkdir = \"sub\"\n",
    )
    .unwrap();
    minispin::build(&manifest).unwrap();
    assert!(dir.path().join("built-a").exists());
    assert!(dir.path().join("sub/built-b").exists());
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
         [component.a]\nsource = \"a.wasm\"\n[component.a.build]\ncommand = \"exit 3\"\n",
    )
    .unwrap();
    let err = minispin::build(&manifest).unwrap_err().to_string();
    assert!(err.contains("exit 3"), "{err}");
}

#[test]
fn up_reads_spin_variables_from_the_environment_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, test_manifest(1, "")).unwrap();
    let binary = env!("CARGO_BIN_EXE_minispin");

    // Without the required variable, start-up fails and says which one.
    let output = Command::new(binary)
        .args(["up", "--listen", "127.0.0.1:0", "--file"])
        .arg(&manifest)
        .env_remove("SPIN_VARIABLE_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SPIN_VARIABLE_TOKEN"));

    let mut child = Command::new(binary)
        .args(["up", "--listen", "127.0.0.1:0", "--file"])
        .arg(&manifest)
        .env("SPIN_VARIABLE_TOKEN", "from-env")
        .env("SPIN_VARIABLE_MODE", "fast")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.strip_prefix("Serving ").expect(&first).to_string();
    let routes: Vec<String> = lines.by_ref().take(5).map(Result::unwrap).collect();
    assert_eq!(routes[0], "Available Routes:");
    assert!(routes.iter().any(|r| r.contains("full:")), "{routes:?}");

    let agent = agent();
    let get = |p: &str| read(agent.get(format!("{base}{p}")).call());
    assert_eq!(get("/var/token"), (200, "from-env".into()));
    assert_eq!(get("/var/mode"), (200, "mode is fast".into()));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "minispin did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
}
