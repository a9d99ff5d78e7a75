//! How fast the ledger writes, and that reading history does not slow down as the
//! ledger grows. `cargo bench -p credits`; results in `crates/credits/BENCHMARKS.md`.
//!
//! (a) deductions per second on a SQLite file in WAL mode, one connection and
//!     2–4 threads each with its own connection, all on one account (the worst
//!     case: every write contends for the same row);
//!     a new connection per deduction, as on Spin, with requests overlapping
//!     and one at a time (`LEDGER_BENCH_ONLY_DEDUCTIONS=1` stops there;
//!     `LEDGER_BENCH_PRAGMAS` tries other settings, see `open`;
//!     `LEDGER_BENCH_PAGE_SIZE` makes the file of (a)–(c) with another page size);
//! (b) the time of one history page (limit 50) for an account with 1,000,000
//!     ledger rows against one with 1,000;
//! (c) the usage report at both sizes;
//! (d) what recording events costs a deduction that records none: the same
//!     deductions with the events trigger and without it, alternately, in one run;
//! (e) a new connection and its first statement on the schema of each version.

#![allow(
    clippy::redundant_closure_for_method_calls, // `|c| c.audit()` reads better than a path
    clippy::many_single_char_names,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::unnecessary_wraps,
    clippy::doc_markdown
)]

use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use credits::schema::MIGRATIONS;
use credits::{
    AccountId, Credits, Database, DeductionRequest, Durability, FixedClock, HistoryQuery, NoCache,
    Operation, Pack, PaymentMethodId, Plan, RechargeSettings, Resource, Timestamp, TokenAmount,
    TransactionKind, UsageGrouping, UsageQuery,
};
use credits_sandbox::SandboxPayments;
use credits_sqlite::NativeDb;

const NOW: &str = "2026-11-25T10:00:00Z";

fn now() -> Timestamp {
    Timestamp::parse_rfc3339(NOW).unwrap()
}

/// Runs `f` with the service over one connection.
fn with_credits<T>(db: &NativeDb, f: impl FnOnce(&Credits<'_>) -> T) -> T {
    let clock = FixedClock(now());
    let payments = SandboxPayments::new(db, clock.0);
    f(&Credits::new(db, &NoCache, &payments, &clock))
}

fn deduction(account: &AccountId) -> DeductionRequest {
    deduction_of(account, 1)
}

fn deduction_of(account: &AccountId, tokens: u64) -> DeductionRequest {
    DeductionRequest::new(
        account.clone(),
        TokenAmount::new(tokens).unwrap(),
        Operation::parse("enrichment").unwrap(),
        Resource::parse(Some("p-1"), Some("s-1")).unwrap(),
    )
}

/// Deductions per second with `threads` connections writing to one account.
fn deductions_per_second(
    path: &Path,
    account: &AccountId,
    threads: usize,
    per_thread: usize,
) -> f64 {
    let barrier = Barrier::new(threads);
    let elapsed: Vec<Duration> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    let db = open(path);
                    let req = deduction(account);
                    barrier.wait();
                    let start = Instant::now();
                    let mut latencies = Vec::with_capacity(per_thread);
                    with_credits(&db, |c| {
                        for _ in 0..per_thread {
                            let t = Instant::now();
                            c.deduct(&req, None).unwrap();
                            latencies.push(t.elapsed());
                        }
                    });
                    let elapsed = start.elapsed();
                    if threads == 1 {
                        latencies.sort();
                        let at = |q: f64| {
                            micros(latencies[((per_thread as f64 * q) as usize).min(per_thread - 1)])
                        };
                        println!(
                            "      one deduction: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
                            at(0.5),
                            at(0.99),
                            at(0.999),
                            at(1.0)
                        );
                    }
                    elapsed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let slowest = elapsed.into_iter().max().unwrap();
    (threads * per_thread) as f64 / slowest.as_secs_f64()
}

/// Writes `rows` one-token plan deductions for a fresh `account` in one
/// transaction, through the schema's triggers and constraints: entry `i` is the
/// account's `seq` `i`, plan usage and the usage rollup follow, and the credit
/// balance stays 0.
fn seed(conn: &rusqlite::Connection, account: &str, rows: i64, spacing_ms: i64) {
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                             operation, project, session, credit_balance_after,
                             plan_remaining_after, created_at)
         SELECT ?1, i, 'deduction', 1, 1, 0, '2026-11', 'enrichment',
                'p-' || (i % 10), 's-' || i, 0, 0, ?3 - (?2 - i) * ?4
         FROM n",
        rusqlite::params![account, rows, now().millis(), spacing_ms],
    )
    .unwrap();
}

/// Median time of one call of `f`, over `runs` calls.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn history_page(db: &NativeDb, account: &AccountId, query: &HistoryQuery) -> Duration {
    median(201, || {
        let page = with_credits(db, |c| c.history(account, query)).unwrap();
        assert!(!page.transactions.is_empty());
    })
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let db = create(&path);

    println!(
        "(a) deductions per second, SQLite file in WAL mode ({:?}, then {:?})",
        Durability::Relaxed.sqlite_pragmas(),
        std::env::var("LEDGER_BENCH_PRAGMAS").unwrap_or_default()
    );
    for threads in [1, 2, 4] {
        let account = AccountId::parse(&format!("writer-{threads}")).unwrap();
        with_credits(&db, |c| c.create_account(&account, Plan::Team)).unwrap();
        let per_thread = 20_000 / threads;
        let rate = deductions_per_second(&path, &account, threads, per_thread);
        println!(
            "    {threads} thread(s), own connection each, one account: {rate:>8.0} deductions/s ({} total), WAL file {:.1} MB",
            threads * per_thread,
            wal_megabytes(&path)
        );
    }

    let db = per_request(&path, db);
    if std::env::var_os("LEDGER_BENCH_ONLY_DEDUCTIONS").is_some() {
        return;
    }
    println!(
        "    a new connection and its first statement (schema parsed): {:.1} µs",
        micros(connection_open(&path, 501))
    );

    println!("(b) one history page (limit 50)");
    let big = AccountId::parse("big").unwrap();
    let small = AccountId::parse("small").unwrap();
    with_credits(&db, |c| c.create_account(&big, Plan::Team)).unwrap();
    with_credits(&db, |c| c.create_account(&small, Plan::Team)).unwrap();
    let start = Instant::now();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    // Both spread over the same 11.6 days, so their reports have as many groups
    // and days: only the number of ledger rows differs.
    seed(&tx, "big", 1_000_000, 1_000);
    seed(&tx, "small", 1_000, 1_000_000);
    tx.commit().unwrap();
    drop(conn);
    println!(
        "    seeded 1,001,000 ledger rows in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut broken = with_credits(&db, |c| c.audit()).unwrap();
    broken.extend(credits_sandbox::audit(&db).unwrap());
    assert!(broken.is_empty(), "{broken:#?}");

    let first = HistoryQuery::default();
    let deductions = HistoryQuery::new(
        None,
        None,
        Some(TransactionKind::Deduction),
        Some("p-3".into()),
    )
    .unwrap();
    for (name, account, rows) in [("small", &small, 1_000u64), ("big", &big, 1_000_000)] {
        // A cursor half-way down the history.
        let mut cursor = None;
        let mut depth = 0;
        while depth < rows / 2 {
            let q = HistoryQuery::new(Some(200), cursor, None, None).unwrap();
            let page = with_credits(&db, |c| c.history(account, &q)).unwrap();
            cursor = page.next_cursor;
            depth += 200;
        }
        let middle = HistoryQuery::new(None, cursor, None, None).unwrap();
        println!(
            "    {name:>5} ({rows:>9} rows): first page {:>7.1} µs, page half-way down {:>7.1} µs, filtered by type+project {:>7.1} µs",
            micros(history_page(&db, account, &first)),
            micros(history_page(&db, account, &middle)),
            micros(history_page(&db, account, &deductions)),
        );
    }

    events_cost(&dir.path().join("events.db"));
    schema_versions(dir.path());

    println!("(c) this month's usage report, grouped by day, project and operation");
    for (name, account, rows) in [("small", &small, 1_000u64), ("big", &big, 1_000_000)] {
        let times: Vec<f64> = [
            UsageGrouping::Day,
            UsageGrouping::Project,
            UsageGrouping::Operation,
        ]
        .into_iter()
        .map(|group_by| {
            let query = UsageQuery::new(None, None, group_by).unwrap();
            micros(median(201, || {
                let report = with_credits(&db, |c| c.usage(account, &query)).unwrap();
                assert!(!report.groups.is_empty());
            }))
        })
        .collect();
        println!(
            "    {name:>5} ({rows:>9} rows): by day {:>7.1} µs, by project {:>7.1} µs, by operation {:>7.1} µs",
            times[0], times[1], times[2]
        );
    }
}

/// Deductions with a new connection each, as on Spin; `db` is the one other
/// connection, closed for the second figure and opened again.
fn per_request(path: &Path, db: NativeDb) -> NativeDb {
    let account = AccountId::parse("per-request").unwrap();
    with_credits(&db, |c| c.create_account(&account, Plan::Team)).unwrap();
    println!(
        "    a new connection per deduction, requests overlapping (another connection open): {:>8.0} deductions/s",
        deductions_per_second_per_request(path, &account, 5_000)
    );
    // The last connection to close checkpoints the whole WAL, waits for the disk
    // twice and deletes the WAL: on Spin, a request that finds no other in flight.
    drop(db);
    println!(
        "    a new connection per deduction, one request at a time (none other open): {:>8.0} deductions/s",
        deductions_per_second_per_request(path, &account, 2_000)
    );
    let db = NativeDb::open(path).unwrap();
    println!(
        "    the relaxed durability's pragmas on a new connection: {:.1} µs",
        micros(durability_pragmas(path))
    );
    db
}

/// What a request on Spin pays before its first statement: a new connection and
/// the schema parsed (median of `runs`).
fn connection_open(path: &Path, runs: usize) -> Duration {
    median(runs, || {
        let db = NativeDb::open(path).unwrap();
        db.execute("SELECT 1 FROM accounts WHERE id = 'none'", &[])
            .unwrap();
    })
}

/// Deductions per second when each one opens its own connection, as on Spin.
fn deductions_per_second_per_request(path: &Path, account: &AccountId, count: usize) -> f64 {
    let req = deduction(account);
    let start = Instant::now();
    for _ in 0..count {
        let db = open(path);
        with_credits(&db, |c| c.deduct(&req, None)).unwrap();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// The WAL file's size now (it keeps its largest size until the last
/// connection closes).
fn wal_megabytes(path: &Path) -> f64 {
    let wal = path.with_extension("db-wal");
    std::fs::metadata(wal).map_or(0.0, |m| m.len() as f64 / 1e6)
}

/// The benchmark's database, migrated; `LEDGER_BENCH_PAGE_SIZE` makes the file with
/// another page size (only possible before its first table).
fn create(path: &Path) -> NativeDb {
    let db = NativeDb::open(path).unwrap();
    if let Ok(size) = std::env::var("LEDGER_BENCH_PAGE_SIZE") {
        let size: u32 = size
            .parse()
            .expect("LEDGER_BENCH_PAGE_SIZE is a number of bytes");
        let conn = db.connection();
        conn.execute_batch(&format!("PRAGMA page_size = {size}"))
            .unwrap();
        // SQLite ignores a size it cannot take rather than failing.
        let taken: u32 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        assert_eq!(taken, size, "SQLite did not take the page size");
    }
    with_credits(&db, |c| c.migrate()).unwrap();
    db
}

/// A connection as Spin opens one. `LEDGER_BENCH_PRAGMAS` (statements separated by
/// `;`) runs after the relaxed durability's own pragmas, to compare other
/// settings: e.g. `LEDGER_BENCH_PRAGMAS="PRAGMA wal_autocheckpoint = 1000"`.
fn open(path: &Path) -> NativeDb {
    let db = NativeDb::open(path).unwrap();
    if let Some(pragmas) = std::env::var_os("LEDGER_BENCH_PRAGMAS") {
        db.set_durability(Durability::Relaxed).unwrap();
        db.connection()
            .execute_batch(pragmas.to_str().unwrap())
            .unwrap();
    }
    db
}

/// What the relaxed durability's pragmas cost on a new connection whose schema is
/// already parsed (on Spin, each is a host call besides).
fn durability_pragmas(path: &Path) -> Duration {
    let mut times: Vec<Duration> = (0..501)
        .map(|_| {
            let db = NativeDb::open(path).unwrap();
            db.execute("SELECT 1 FROM accounts WHERE id = 'none'", &[])
                .unwrap();
            let start = Instant::now();
            db.set_durability(Durability::Relaxed).unwrap();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// (d) Deductions that take credits on an account with a threshold they never
/// cross: the events trigger probes the settings and records nothing. Measured
/// with the trigger and without it (the schema before events), alternately.
fn events_cost(path: &Path) {
    let db = NativeDb::open(path).unwrap();
    let account = AccountId::parse("events").unwrap();
    with_credits(&db, |c| {
        c.migrate().unwrap();
        c.create_account(&account, Plan::Pro).unwrap();
        let visa = PaymentMethodId::parse("pm_card_visa").unwrap();
        c.save_payment_method(&account, &visa).unwrap();
        for _ in 0..3 {
            c.purchase(&account, Pack::Plus, None).unwrap();
        }
        let threshold = TokenAmount::new(1_000_000).unwrap();
        let settings = RechargeSettings::new(false, Some(Pack::Starter), Some(threshold), None);
        c.save_recharge_settings(&account, &settings.unwrap())
            .unwrap();
        c.deduct(&deduction_of(&account, 2_000_000), None).unwrap();
    });
    let trigger = credits::schema::MIGRATIONS
        .iter()
        .flat_map(|m| m.statements.iter())
        .rfind(|s| s.contains("TRIGGER IF NOT EXISTS entry_events"))
        .expect("the events trigger");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        db.execute(trigger, &[]).unwrap();
        with.push(deductions_per_second(path, &account, 1, 5_000));
        db.execute("DROP TRIGGER entry_events", &[]).unwrap();
        without.push(deductions_per_second(path, &account, 1, 5_000));
    }
    db.execute(trigger, &[]).unwrap();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "(d) deductions that record no event (credit tokens, a threshold never crossed), one connection: \
         {:>8.0}/s with the events trigger, {:>8.0}/s without it (median of 3 alternating runs)",
        median(with),
        median(without)
    );
}

/// (e) What a new connection's schema costs at each version: a file per version,
/// built by that version's migrations, opened and asked one statement in turn,
/// interleaved so the machine's drift hits every version alike. Another
/// connection stays open on each file, so no close checkpoints.
fn schema_versions(dir: &Path) {
    println!(
        "(e) a new connection and its first statement, by schema version (median of 101, best of 10 interleaved rounds)"
    );
    let files: Vec<(i64, std::path::PathBuf, NativeDb)> = MIGRATIONS
        .iter()
        .map(|last| {
            let path = dir.join(format!("schema-v{}.db", last.version));
            let db = NativeDb::open(&path).unwrap();
            credits::schema::migrate_to(&db, last.version).unwrap();
            (last.version, path, db)
        })
        .collect();
    let mut best = vec![f64::MAX; files.len()];
    for _ in 0..10 {
        for (i, (_, path, _)) in files.iter().enumerate() {
            best[i] = best[i].min(micros(connection_open(path, 101)));
        }
    }
    for ((version, _, db), micros) in files.iter().zip(best) {
        let count = |kind: &str| {
            db.execute(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = ?1 AND sql IS NOT NULL",
                &[kind.into()],
            )
            .unwrap()[0]
                .int(0)
                .unwrap()
        };
        println!(
            "    version {version}: {micros:>6.1} µs ({} tables, {} indexes, {} triggers)",
            count("table"),
            count("index"),
            count("trigger")
        );
    }
}
