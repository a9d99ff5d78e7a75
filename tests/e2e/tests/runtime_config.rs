//! The deploy runtime-config file, tried for real: Debian's `redis-server` on a free
//! loopback port as the key-value store, one SQLite file shared by two minispin
//! instances (two `spin up` processes on one host), and races across them.
//!
//! The runtime config is `deploy/runtime-config.example.toml` itself with only its
//! Redis URL and SQLite path replaced, so the file operators deploy is the one tried.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use e2e::{Reply, TestApp, repo_root};
use serde_json::{Value, json};

/// The deploy file and the two values in it that the test replaces.
const DEPLOY_FILE: &str = "deploy/runtime-config.example.toml";
const DEPLOY_REDIS_URL: &str = "url = \"redis://redis.internal:6379\"";
const DEPLOY_SQLITE_PATH: &str = "path = \"/var/lib/credits/credits.db\"";

// ---- redis-server and a raw RESP client ---------------------------------------------

/// A throwaway `redis-server` on a free loopback port, nothing saved to disk,
/// killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Self {
        match Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: this test runs the app on a real Redis. \
                 Install Debian's (`apt-get install -y redis-server`, as scripts/test.sh does)."
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        }
        let dir = tempfile::tempdir().expect("redis dir");
        // A free port can be taken between finding it and redis binding it: retry.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(mut conn) = Resp::connect(port)
                    && conn.command(&["PING"]) == RespValue::Simple("PONG".into())
                {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if child.try_wait().expect("redis-server status").is_some() {
                    break; // the port was taken: try another
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server did not answer PING on port {port} within 10 s");
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start on a free loopback port (5 tries)");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> Resp {
        Resp::connect(self.port).expect("connect to redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, PartialEq)]
enum RespValue {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<RespValue>),
}

/// Just enough RESP2 to look into the store as an operator would with `redis-cli`.
struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Resp {
    fn connect(port: u16) -> std::io::Result<Self> {
        let writer = TcpStream::connect(("127.0.0.1", port))?;
        writer.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            reader: BufReader::new(writer.try_clone()?),
            writer,
        })
    }

    fn command(&mut self, args: &[&str]) -> RespValue {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).expect("send to redis");
        self.read().expect("redis reply")
    }

    fn read(&mut self) -> std::io::Result<RespValue> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end_matches("\r\n");
        let bad = || std::io::Error::other(format!("bad RESP line {line:?}"));
        let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
        let int = || rest.parse::<i64>().map_err(|_| bad());
        Ok(match kind {
            "+" => RespValue::Simple(rest.to_owned()),
            "-" => RespValue::Error(rest.to_owned()),
            ":" => RespValue::Int(int()?),
            "$" => match usize::try_from(int()?) {
                Err(_) => RespValue::Bulk(None),
                Ok(n) => {
                    let mut buf = vec![0; n + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(n);
                    RespValue::Bulk(Some(buf))
                }
            },
            "*" => match usize::try_from(int()?) {
                Err(_) => RespValue::Array(Vec::new()),
                Ok(n) => RespValue::Array((0..n).map(|_| self.read()).collect::<Result<_, _>>()?),
            },
            _ => return Err(bad()),
        })
    }

    fn get(&mut self, key: &str) -> Option<String> {
        match self.command(&["GET", key]) {
            RespValue::Bulk(value) => value.map(|v| String::from_utf8(v).expect("UTF-8 value")),
            other => panic!("GET {key}: {other:?}"),
        }
    }

    fn keys(&mut self, pattern: &str) -> BTreeSet<String> {
        match self.command(&["KEYS", pattern]) {
            RespValue::Array(keys) => keys
                .into_iter()
                .map(|k| match k {
                    RespValue::Bulk(Some(k)) => String::from_utf8(k).expect("UTF-8 key"),
                    other => panic!("KEYS {pattern}: {other:?}"),
                })
                .collect(),
            other => panic!("KEYS {pattern}: {other:?}"),
        }
    }

    fn del(&mut self, key: &str) {
        assert_eq!(self.command(&["DEL", key]), RespValue::Int(1), "DEL {key}");
    }
}

// ---- the runtime config ------------------------------------------------------------

/// The deploy file with its Redis URL and SQLite path pointed at this test's.
fn deploy_file_for(redis_url: &str, sqlite_path: &Path) -> String {
    let text = std::fs::read_to_string(repo_root().join(DEPLOY_FILE)).expect("deploy file");
    for needle in [DEPLOY_REDIS_URL, DEPLOY_SQLITE_PATH] {
        assert_eq!(
            text.matches(needle).count(),
            1,
            "{DEPLOY_FILE} should hold `{needle}` once (the test replaces it)"
        );
    }
    let path = sqlite_path.to_str().expect("UTF-8 temp path");
    assert!(!path.contains(['"', '\\']), "plain TOML string: {path}");
    text.replace(DEPLOY_REDIS_URL, &format!("url = \"{redis_url}\""))
        .replace(DEPLOY_SQLITE_PATH, &format!("path = \"{path}\""))
}

/// Runs `count` calls at once, alternating between the two hosts; answers in order.
fn race(
    hosts: &[Arc<TestApp>; 2],
    count: usize,
    call: impl Fn(usize, &TestApp) -> Reply + Send + Sync + 'static,
) -> Vec<Reply> {
    let call = Arc::new(call);
    let handles: Vec<_> = (0..count)
        .map(|i| {
            let host = Arc::clone(&hosts[i % 2]);
            let call = Arc::clone(&call);
            thread::spawn(move || call(i, &host))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn summary(host: &TestApp, key: &str) -> Value {
    let r = host
        .call("GET", "/api/billing/credits?limit=1")
        .key(key)
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn auto_recharge(host: &TestApp, key: &str, enabled: bool) {
    let body = if enabled {
        json!({"enabled": true, "pack": "standard", "threshold_tokens": 1_000})
    } else {
        json!({"enabled": false})
    };
    let r = host
        .call("PUT", "/api/billing/credits/auto-recharge")
        .key(key)
        .json(&body);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Recharge checks on both hosts at once (the HTTP route, and the cron component
/// for a third of them): how many HTTP answers report buying for `account` (a cron
/// tick answers nothing; the ledger says how many packs were bought).
fn racing_recharge_checks(hosts: &[Arc<TestApp>; 2], count: usize, account: &str) -> usize {
    let replies = race(hosts, count, |i, host| {
        if i % 6 >= 4 {
            host.fire_cron();
            Reply {
                status: 200,
                body: json!({"recharged": []}),
                headers: std::collections::HashMap::new(),
            }
        } else {
            host.call("POST", "/api/internal/recharge-check")
                .service()
                .send()
        }
    });
    replies
        .iter()
        .inspect(|r| assert_eq!(r.status, 200, "{}", r.body))
        .filter(|r| {
            r.body["recharged"]
                .as_array()
                .expect("recharged")
                .iter()
                .any(|id| id == account)
        })
        .count()
}

fn auto_purchases(host: &TestApp, key: &str) -> usize {
    host.all_transactions(key)
        .iter()
        .filter(|t| t["type"] == "purchase" && t["source"] == "auto_recharge")
        .count()
}

// ---- the scenario ------------------------------------------------------------------

#[test]
fn two_instances_on_redis_and_one_sqlite_file_from_the_deploy_runtime_config() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let mut kv = redis.client();
    let tmp = tempfile::tempdir().expect("tmp");
    let shared_db: PathBuf = tmp.path().join("shared.db");
    let config_path = tmp.path().join("runtime-config.toml");
    std::fs::write(&config_path, deploy_file_for(&redis.url(), &shared_db)).expect("write");
    let hosts = [
        Arc::new(TestApp::start_with_runtime_config(&config_path)),
        Arc::new(TestApp::start_with_runtime_config(&config_path)),
    ];
    let [a, b] = &hosts;
    eprintln!(
        "redis-server and two instances up in {:?}",
        started.elapsed()
    );

    // -- Account keys: the lookup cache lives in Redis, shared by both hosts. --
    let key = a.account("rc-keys", "pro"); // created on one host ...
    assert!(shared_db.is_file(), "the SQLite file the config names");
    assert_eq!(kv.keys("*"), BTreeSet::new(), "creating caches nothing");
    assert_eq!(summary(b, &key)["account_id"], "rc-keys"); // ... known on the other
    let cached = kv.keys("account-key:*");
    assert_eq!(
        cached.len(),
        1,
        "the first key request caches it: {cached:?}"
    );
    let cache_key = cached.first().unwrap().clone();
    assert_eq!(kv.get(&cache_key).as_deref(), Some("rc-keys"));
    kv.del(&cache_key); // flushed: the other host finds it in SQL and caches it again
    assert_eq!(summary(a, &key)["account_id"], "rc-keys");
    assert_eq!(kv.get(&cache_key).as_deref(), Some("rc-keys"));
    kv.del(&cache_key); // and now a crowd on both hosts, with wrong keys among them
    let replies = race(&hosts, 40, {
        let key = key.clone();
        move |i, host| {
            let bearer = if i % 5 == 4 {
                "ck_live_not-a-key"
            } else {
                &key
            };
            host.call("GET", "/api/billing/credits?limit=1")
                .key(bearer)
                .send()
        }
    });
    for (i, r) in replies.iter().enumerate() {
        if i % 5 == 4 {
            assert_eq!(r.status, 401, "{i}: {}", r.body);
        } else {
            assert_eq!(
                (r.status, &r.body["account_id"]),
                (200, &json!("rc-keys")),
                "{i}"
            );
        }
    }
    assert_eq!(
        kv.keys("*"),
        BTreeSet::from([cache_key.clone()]),
        "one entry per key; unknown keys are never cached"
    );
    assert_eq!(kv.get(&cache_key).as_deref(), Some("rc-keys"));

    // -- The last tokens: 60 deductions of 2,500 for a free plan's 100,000. --
    let last = b.account("rc-last", "free");
    let replies = race(&hosts, 60, |_, host| host.deduct("rc-last", 2_500));
    let mut left = BTreeSet::new();
    for r in &replies {
        match r.status {
            201 => assert!(left.insert(r.body["available_tokens"].as_u64().unwrap())),
            402 => assert_eq!(r.code(), "insufficient_balance", "{}", r.body),
            _ => panic!("{}: {}", r.status, r.body),
        }
    }
    assert_eq!(
        left,
        (0..40).map(|n| n * 2_500).collect(),
        "exactly 40 fit, each saw the one before it"
    );
    for host in &hosts {
        let s = host.assert_ledger_matches_balance(&last);
        assert_eq!(
            (&s["available_tokens"], &s["plan"]["used_tokens"]),
            (&json!(0), &json!(100_000)),
            "{s}"
        );
        assert_eq!(host.all_transactions(&last).len(), 40);
    }

    // -- Recharge checks on both hosts at once: one pack per crossing. --
    let auto = a.paying_account("rc-auto", "pro"); // 2,000,000 plan tokens, no credits
    auto_recharge(b, &auto, true); // standard pack (2,500,000 for €10) below 1,000 credits
    // Crossing 1: credits 0 < 1,000 from the start.
    let reported = racing_recharge_checks(&hosts, 24, "rc-auto");
    assert!(reported <= 1, "{reported} answers report a purchase");
    let s = b.assert_ledger_matches_balance(&auto);
    assert_eq!(s["credits"]["balance_tokens"], 2_500_000, "one pack: {s}");
    assert_eq!(s["auto_recharge"]["spent_this_month_eur"], "10.00");
    // Crossing 2: below the threshold while off, then the checks race again.
    auto_recharge(a, &auto, false);
    assert_eq!(a.deduct("rc-auto", 2_000_000).status, 201); // the plan's tokens
    assert_eq!(b.deduct("rc-auto", 2_499_500).status, 201); // credits: 500 left
    auto_recharge(b, &auto, true);
    let reported = racing_recharge_checks(&hosts, 24, "rc-auto");
    assert!(reported <= 1, "{reported} answers report a purchase");
    let s = a.assert_ledger_matches_balance(&auto);
    assert_eq!(s["credits"]["balance_tokens"], 2_500_500, "one pack: {s}");
    assert_eq!(s["auto_recharge"]["spent_this_month_eur"], "20.00");
    // Crossing 3: ten deductions on both hosts take the credits below the threshold
    // (only the last one does: 250,500 are left after nine) while recharge checks
    // race them on both hosts.
    let replies = race(&hosts, 30, |i, host| {
        if i % 3 == 0 {
            host.deduct("rc-auto", 250_000)
        } else {
            host.call("POST", "/api/internal/recharge-check")
                .service()
                .send()
        }
    });
    for (i, r) in replies.iter().enumerate() {
        let want = if i % 3 == 0 { 201 } else { 200 };
        assert_eq!(r.status, want, "{i}: {}", r.body);
    }
    for host in &hosts {
        let s = host.assert_ledger_matches_balance(&auto);
        // 2,500,500 − 10 × 250,000 + one pack = 2,500,500.
        assert_eq!(s["credits"]["balance_tokens"], 2_500_500, "one pack: {s}");
        assert_eq!(s["auto_recharge"]["spent_this_month_eur"], "30.00");
        assert_eq!(auto_purchases(host, &auto), 3);
    }

    // -- The books, as each host reads them from the one SQLite file. --
    for key in [&key, &last, &auto] {
        let (on_a, on_b) = (
            a.assert_ledger_matches_balance(key),
            b.assert_ledger_matches_balance(key),
        );
        assert_eq!(on_a, on_b, "both hosts read the same books");
        assert_eq!(a.all_transactions(key), b.all_transactions(key));
    }
    assert_eq!(
        kv.keys("account-key:*").len(),
        3,
        "the three account keys used"
    );
    eprintln!("scenario done in {:?}", started.elapsed());
}

/// The deploy file names exactly the stores the app uses and nothing minispin (or
/// Spin) would refuse: it loads as `spin up --runtime-config-file` would load it.
#[test]
fn the_deploy_runtime_config_loads_with_the_app() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config_path = tmp.path().join("runtime-config.toml");
    // The deploy file's own URL (nothing connects before a request); only the
    // SQLite path moves, since loading creates its directory.
    let text = deploy_file_for(
        "redis://redis.internal:6379",
        &tmp.path().join("db/credits.db"),
    );
    std::fs::write(&config_path, text).expect("write");
    let app = TestApp::start_with_runtime_config(&config_path);
    assert!(
        tmp.path().join("db").is_dir(),
        "the SQLite section was read"
    );
    let r = app.call("GET", "/api/openapi.json").send();
    assert_eq!(r.status, 200);
}
