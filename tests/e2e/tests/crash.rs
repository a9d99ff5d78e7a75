//! A runtime process killed with SIGKILL while money moves: requests in flight
//! die wherever they are (between a purchase's charge and its grant, mid
//! deduction), the process restarts on the same files, and the next recharge
//! check finishes what was left. Then the books balance exactly: every charge is
//! granted once, nothing is granted without a charge, the balance is the ledger.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use credits::Timestamp;
use credits_service::{Config, Stores};
use credits_sqlite::NativeDb;
use e2e::{SERVICE, repo_root};
use serde_json::{Value, json};

/// `minispin up` as its own process, so it can be killed outright.
struct Runtime {
    child: Child,
    base: String,
}

impl Runtime {
    fn start(state: &Path) -> Self {
        let binary = repo_root().join("target/debug/minispin");
        assert!(
            binary.exists(),
            "{} is missing: scripts/test.sh builds it (cargo build -p minispin)",
            binary.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args(["up", "--no-cron", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--file")
            .arg(repo_root().join("spin.toml"))
            .arg("--state-dir")
            .arg(state)
            .args(["--variable", &format!("service_token={SERVICE}")])
            .args(["--variable", "test_clock=true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("minispin starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while ureq::get(&format!("{base}/")).call().is_err() {
            assert!(Instant::now() < deadline, "minispin did not come up");
            thread::sleep(Duration::from_millis(50));
        }
        Self { child, base }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown, no flush, no handler finishing its work.
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    at: &str,
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-test-clock", at);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .expect("request");
    match agent.run(req) {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_json().unwrap_or(Value::Null),
        ),
        Err(_) => (0, Value::Null), // the process died mid-request
    }
}

const T0: &str = "2026-11-25T10:00:00Z";

#[test]
fn killed_mid_flight_the_books_still_balance_after_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let first = Runtime::start(state.path());
    let accounts: Vec<(String, String)> = (0..4)
        .map(|i| {
            let id = format!("crash-{i}");
            let (s, b) = send(
                &first.base,
                "POST",
                "/api/admin/accounts",
                SERVICE,
                Some(json!({"account_id": id, "plan": "pro"})),
                T0,
            );
            assert_eq!(s, 201, "{b}");
            let key = b["api_key"].as_str().unwrap().to_owned();
            let (s, _) = send(
                &first.base,
                "PUT",
                "/api/billing/payment-method",
                &key,
                Some(json!({"payment_method": "pm_card_visa"})),
                T0,
            );
            assert_eq!(s, 200);
            let (s, _) = send(
                &first.base,
                "PUT",
                "/api/billing/credits/auto-recharge",
                &key,
                Some(json!({"enabled": true, "pack": "starter", "threshold_tokens": 2_500_000})),
                T0,
            );
            assert_eq!(s, 200);
            (id, key)
        })
        .collect();

    // Purchases, deductions (each setting off an auto-recharge) and holds, from
    // several threads, until the process dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let base = first.base.clone();
    let workers: Vec<_> = accounts
        .iter()
        .cloned()
        .map(|(id, key)| {
            let (stop, base) = (Arc::clone(&stop), base.clone());
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let _ = match n % 3 {
                        0 => send(
                            &base,
                            "POST",
                            "/api/billing/credits/purchases",
                            &key,
                            Some(json!({"pack": "starter"})),
                            T0,
                        ),
                        1 => send(
                            &base,
                            "POST",
                            "/api/billing/credits/deductions",
                            SERVICE,
                            Some(json!({"account_id": id, "tokens": 300_000, "operation": "x"})),
                            T0,
                        ),
                        _ => send(
                            &base,
                            "POST",
                            "/api/billing/credits/holds",
                            SERVICE,
                            Some(json!({"account_id": id, "tokens": 1_000, "operation": "x"})),
                            T0,
                        ),
                    };
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1_500));
    first.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    // A new process on the same files; the recharge check finishes what was left
    // pending (after the 60 s the sweep waits, on the test clock).
    let second = Runtime::start(state.path());
    for minutes in [2, 10, 30] {
        let at = Timestamp::parse_rfc3339(T0)
            .unwrap()
            .plus_millis(minutes * 60_000)
            .to_rfc3339();
        let (s, b) = send(
            &second.base,
            "POST",
            "/api/internal/recharge-check",
            SERVICE,
            None,
            &at,
        );
        assert_eq!(s, 200, "{b}");
    }
    drop(second);

    let db = NativeDb::open(&state.path().join("sqlite_db.db")).unwrap();
    let stores = Stores {
        db: &db,
        cache: &credits::NoCache,
        stripe: &credits_service::NoNetwork,
    };
    let broken = credits_service::audit(
        stores,
        &Config::default(),
        Timestamp::parse_rfc3339(T0).unwrap(),
    )
    .unwrap();
    assert!(
        broken.is_empty(),
        "after SIGKILL and a restart: {broken:#?}"
    );
    let pending = db_count(
        &db,
        "SELECT COUNT(*) FROM purchases WHERE status = 'pending'",
    );
    assert_eq!(
        pending, 0,
        "every purchase the kill left pending was finished"
    );
    let granted = db_count(
        &db,
        "SELECT COUNT(*) FROM purchases WHERE status = 'succeeded'",
    );
    assert!(granted > 0, "the run bought something");
}

fn db_count(db: &NativeDb, sql: &str) -> i64 {
    use credits::Database as _;
    db.execute(sql, &[]).unwrap()[0].int(0).unwrap()
}
