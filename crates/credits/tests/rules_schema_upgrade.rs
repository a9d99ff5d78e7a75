//! A database written by an earlier schema version is upgraded in place, its
//! books intact, and works the new way at once.

#![allow(
    clippy::doc_markdown,
    clippy::redundant_closure_for_method_calls // `|c| c.migrate()` reads better than a path
)]

mod support;

use credits::schema;
use credits::{Database, Pack};
use credits_sqlite::NativeDb;
use support::World;

/// 2025-11-25T12:00:00Z, when the books below were written.
const NOON: i64 = 1_764_072_000_000;

/// Runs `sql` with `?1` bound to [`NOON`] if it names it.
fn at_noon(db: &NativeDb, sql: &str) {
    let noon = [credits::Value::Integer(NOON)];
    let params: &[credits::Value] = if sql.contains("?1") { &noon } else { &[] };
    db.execute(sql, params).unwrap();
}

/// acme on the Pro plan with a card, as every version's books below begin.
const ACME_PRO: &str =
    "INSERT INTO accounts (id, plan, monthly_tokens, key_hash, payment_method, created_at)
     VALUES ('acme', 'pro', 2000000, 'hash-of-acme', 'pm_card_visa', ?1)";

/// Builds `version`'s schema and writes `statements` into it at noon.
fn write_books(db: &NativeDb, version: i64, statements: &[&str]) {
    schema::migrate_to(db, version).unwrap();
    for statement in statements {
        at_noon(db, statement);
    }
}

/// Version 4's books, written the version-4 way: acme (Pro) granted a Starter pack
/// by a raw purchase entry (version 4's grant), one deduction of 100 credit tokens,
/// and a Standard purchase left pending after its charge.
fn version_4_books(db: &NativeDb) {
    write_books(
        db,
        4,
        &[
            ACME_PRO,
            "INSERT INTO purchases (id, account_id, source, pack, tokens, amount_cents, payment_method,
                                    status, period, created_at, updated_at)
             VALUES ('pu_granted', 'acme', 'manual', 'starter', 1000000, 500, 'pm_card_visa',
                     'pending', '2025-11', ?1, ?1)",
            "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, purchase_id,
                                 source, pack, amount_cents, credit_balance_after, created_at)
             VALUES ('acme', 1, 'purchase', 1000000, 0, 1000000, 'pu_granted',
                     'manual', 'starter', 500, 1000000, ?1)",
            "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                                 operation, credit_balance_after, plan_remaining_after, created_at)
             VALUES ('acme', 2, 'deduction', 100, 0, 100, '2025-11', 'chat', 999900, 0, ?1)",
            "INSERT INTO purchases (id, account_id, source, pack, tokens, amount_cents, payment_method,
                                    status, period, created_at, updated_at)
             VALUES ('pu_pending', 'acme', 'manual', 'standard', 2500000, 1000, 'pm_card_visa',
                     'pending', '2025-11', ?1, ?1)",
            // The sandbox charged both.
            "CREATE TABLE sandbox_charges (idempotency_key TEXT PRIMARY KEY, payment_method TEXT NOT NULL,
                amount_cents INTEGER NOT NULL, outcome TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID",
            "INSERT INTO sandbox_charges VALUES ('pu_granted', 'pm_card_visa', 500, 'succeeded', ?1),
                                                ('pu_pending', 'pm_card_visa', 1000, 'succeeded', ?1)",
        ],
    );
    let granted = db
        .execute(
            "SELECT status, granted_seq FROM purchases WHERE id = 'pu_granted'",
            &[],
        )
        .unwrap();
    assert_eq!(
        granted[0].text(0).unwrap(),
        "succeeded",
        "version 4 granted it"
    );
}

#[test]
fn version_4_books_upgrade_in_place_and_the_pending_purchase_is_granted_the_new_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credits.db");
    version_4_books(&NativeDb::open(&path).unwrap());
    let w = World::open(&path);
    w.clock.set("2025-11-25T12:05:00Z");
    w.credits_with(|c| c.migrate()).unwrap();
    assert_eq!(
        w.count("PRAGMA user_version"),
        credits::schema::latest_version()
    );
    let acme = credits::AccountId::parse("acme").unwrap();
    assert_eq!(w.balance(&acme), 999_900);
    w.assert_books_balance();

    // The sweep finishes the pending purchase: the re-charge answers the first
    // outcome, and the grant now starts from the purchase.
    w.credits_with(|c| c.recharge_check()).unwrap();
    assert_eq!(w.balance(&acme), 999_900 + 2_500_000);
    assert_eq!(w.charges(), 2);
    // New writes work: a purchase, a deduction, its refund.
    w.credits_with(|c| c.purchase(&acme, Pack::Plus, None))
        .unwrap();
    let d = w
        .credits_with(|c| c.deduct(&support::deduction(&acme, 2_000_100, None), None))
        .unwrap()
        .value
        .transaction;
    w.credits_with(|c| c.refund(&support::refund(&acme, &d, None), None))
        .unwrap();
    assert_eq!(w.balance(&acme), 999_900 + 2_500_000 + 7_000_000);
    w.assert_books_balance();
    // A raw version-4 grant is refused now.
    let raw = w.db.execute(
        "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, purchase_id,
                             source, pack, amount_cents, credit_balance_after, created_at)
         SELECT 'acme', ledger_seq + 1, 'purchase', 1000000, 0, 1000000, 'pu_granted',
                'manual', 'starter', 500, credit_balance + 1000000, 0 FROM accounts WHERE id = 'acme'",
        &[],
    );
    assert!(raw.is_err(), "{raw:?}");
}

/// `(type, data)` of every event, as the table stores them.
fn stored_events(db: &NativeDb) -> Vec<(String, serde_json::Value)> {
    db.execute("SELECT type, data FROM events ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| {
            let data = serde_json::from_str(r.text(1).unwrap()).unwrap();
            (r.text(0).unwrap().to_owned(), data)
        })
        .collect()
}

/// `(type, data)` of every event, as the service lists them.
fn listed(w: &World) -> Vec<(String, serde_json::Value)> {
    w.credits_with(|c| c.events(&credits::EventQuery::default()))
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.event.kind, e.event.data))
        .collect()
}

/// Version 5's books with events recorded the version-5 way (their `data` built
/// by the triggers): acme (Pro) granted a Starter pack, then deducted to nothing.
fn version_5_books(db: &NativeDb) {
    write_books(
        db,
        5,
        &[
            ACME_PRO,
            "INSERT INTO purchases (id, account_id, source, pack, tokens, amount_cents, payment_method,
                                    status, period, created_at, updated_at)
             VALUES ('pur_granted', 'acme', 'manual', 'starter', 1000000, 500, 'pm_card_visa',
                     'pending', '2025-11', ?1, ?1)",
            "UPDATE purchases SET status = 'succeeded', granted_seq = 1, updated_at = ?1
             WHERE id = 'pur_granted'",
            "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                                 operation, credit_balance_after, plan_remaining_after, created_at)
             VALUES ('acme', 2, 'deduction', 3000000, 2000000, 1000000, '2025-11', 'chat', 0, 0, ?1)",
        ],
    );
}

#[test]
fn version_5_events_keep_their_data_and_new_ones_are_recorded_the_version_6_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credits.db");
    let db = NativeDb::open(&path).unwrap();
    version_5_books(&db);
    let stored = stored_events(&db);
    assert_eq!(
        stored.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["purchase.succeeded", "credits.depleted"],
        "version 5 recorded both"
    );
    drop(db);

    let w = World::open(&path);
    w.clock.set("2025-11-25T12:05:00Z");
    w.credits_with(|c| c.migrate()).unwrap();
    assert_eq!(w.count("PRAGMA user_version"), 6);
    assert_eq!(listed(&w), stored, "read as version 5 wrote them");

    // A new pack, then a deduction to nothing: recorded the version 6 way (no
    // data stored), read the same way as before.
    let acme = credits::AccountId::parse("acme").unwrap();
    w.credits_with(|c| c.purchase(&acme, Pack::Starter, None))
        .unwrap();
    let last = w
        .credits_with(|c| c.deduct(&support::deduction(&acme, 1_000_000, None), None))
        .unwrap()
        .value
        .transaction;
    assert_eq!(w.count("SELECT COUNT(*) FROM events WHERE data = ''"), 2);
    let events = listed(&w);
    assert_eq!(events[..2], stored[..]);
    assert_eq!(events[2].0, "purchase.succeeded");
    assert_eq!(events[2].1["purchase"]["transaction_id"], "tx_000000000003");
    assert_eq!(
        events[3],
        (
            "credits.depleted".to_owned(),
            serde_json::json!({"available_tokens": 0, "transaction_id": last.id().to_string()})
        )
    );
    assert_eq!(
        stored[1].1,
        serde_json::json!({"available_tokens": 0, "transaction_id": "tx_000000000002"}),
        "the same shape both ways"
    );
    w.assert_books_balance();
}

/// A backend as remote libSQL may be: no `PRAGMA user_version`, no transactions
/// (each statement runs alone). It records the statements that change the schema.
struct WithoutUserVersion<'a> {
    db: &'a NativeDb,
    schema_changes: std::cell::RefCell<Vec<String>>,
}

impl Database for WithoutUserVersion<'_> {
    fn execute(
        &self,
        sql: &str,
        params: &[credits::Value],
    ) -> Result<Vec<credits::Row>, credits::DbError> {
        if sql.starts_with("PRAGMA user_version") || sql.starts_with("BEGIN") {
            return Err(credits::DbError::other("not supported here"));
        }
        if ["CREATE", "DROP", "ALTER"]
            .iter()
            .any(|k| sql.starts_with(k))
        {
            self.schema_changes.borrow_mut().push(sql.to_owned());
        }
        self.db.execute(sql, params)
    }
}

fn triggers(db: &NativeDb) -> Vec<String> {
    db.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.text(0).unwrap().to_owned())
    .collect()
}

#[test]
fn without_user_version_a_migration_finds_where_it_stands_and_never_brings_back_replaced_triggers()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credits.db");
    let native = NativeDb::open(&path).unwrap();
    let remote = WithoutUserVersion {
        db: &native,
        schema_changes: std::cell::RefCell::default(),
    };
    schema::migrate(&remote).unwrap();
    let latest = triggers(&native);
    for replaced in [
        "deduction_events",
        "purchase_outcome_events",
        "holds_events",
    ] {
        assert!(
            !latest.iter().any(|t| t == replaced),
            "{replaced}: {latest:?}"
        );
    }
    // Migrating again (a statement found a column missing, say) changes nothing:
    // no replaced trigger comes back, not even for a moment.
    remote.schema_changes.borrow_mut().clear();
    schema::migrate(&remote).unwrap();
    assert_eq!(*remote.schema_changes.borrow(), Vec::<String>::new());
    assert_eq!(triggers(&native), latest);

    // A version 5 database on such a backend runs version 6 only.
    let path = dir.path().join("v5.db");
    let native = NativeDb::open(&path).unwrap();
    schema::migrate_to(&native, 5).unwrap();
    native.execute("PRAGMA user_version = 0", &[]).unwrap();
    let remote = WithoutUserVersion {
        db: &native,
        schema_changes: std::cell::RefCell::default(),
    };
    schema::migrate(&remote).unwrap();
    let version_6 = schema::MIGRATIONS.last().unwrap();
    let ran = remote.schema_changes.borrow();
    let expected: Vec<&str> = version_6
        .columns
        .iter()
        .map(|c| c.add)
        .chain(version_6.statements.iter().copied())
        .collect();
    assert_eq!(*ran, expected);
    assert_eq!(triggers(&native), latest);
}

/// The same history written by raw statements (the triggers record the events),
/// on a version 5 file and on a version 6 file. `available_after` is what the
/// version 6 deduction statement computes; version 5 has no such column.
fn raw_history(db: &NativeDb, version_6: bool) {
    let noon = [credits::Value::Integer(NOON)];
    let run = |sql: &str| at_noon(db, sql);
    // seq, plan tokens, credit tokens, credit balance after, available after.
    let deduct = |seq: i64, plan: i64, credit: i64, after: i64, available: i64| {
        let params = [
            credits::Value::Integer(NOON),
            credits::Value::Integer(seq),
            credits::Value::Integer(plan),
            credits::Value::Integer(credit),
            credits::Value::Integer(after),
            credits::Value::Integer(available),
        ];
        let sql = if version_6 {
            "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                                 operation, credit_balance_after, plan_remaining_after,
                                 available_after, created_at)
             VALUES ('acme', ?2, 'deduction', ?3 + ?4, ?3, ?4, '2025-11', 'chat', ?5, 0, ?6, ?1)"
        } else {
            "INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                                 operation, credit_balance_after, plan_remaining_after, created_at)
             VALUES ('acme', ?2, 'deduction', ?3 + ?4, ?3, ?4, '2025-11', 'chat', ?5, 0, ?1)"
        };
        db.execute(sql, &params[..if version_6 { 6 } else { 5 }])
            .unwrap();
    };
    let purchase = |id: &str, source: &str| {
        db.execute(
            "INSERT INTO purchases (id, account_id, source, pack, tokens, amount_cents, payment_method,
                                    status, period, created_at, updated_at)
             VALUES (?2, 'acme', ?3, 'starter', 1000000, 500, 'pm_card_visa', 'pending', '2025-11', ?1, ?1)",
            &[noon[0].clone(), id.into(), source.into()],
        )
        .unwrap();
    };
    let fail = |id: &str, message: &str| {
        db.execute(
            "UPDATE purchases SET status = 'failed', failure_message = ?3, updated_at = ?1 WHERE id = ?2",
            &[noon[0].clone(), id.into(), message.into()],
        )
        .unwrap();
    };
    let grant = |id: &str, seq: i64| {
        db.execute(
            "UPDATE purchases SET status = 'succeeded', granted_seq = ?3, failure_message = NULL,
                                  updated_at = ?1 WHERE id = ?2",
            &[noon[0].clone(), id.into(), credits::Value::Integer(seq)],
        )
        .unwrap();
    };
    run(ACME_PRO);
    purchase("pur_bought", "manual");
    grant("pur_bought", 1); // purchase.succeeded
    run(
        "INSERT INTO auto_recharge (account_id, enabled, pack, pack_tokens, pack_price_cents,
                                    threshold_tokens, monthly_limit_cents)
         VALUES ('acme', 1, 'starter', 1000000, 500, 600000, 5000)",
    );
    deduct(2, 2_000_000, 0, 1_000_000, 1_000_000); // the plan: nothing recorded
    deduct(3, 0, 500_000, 500_000, 500_000); // credits.low
    run("UPDATE auto_recharge SET threshold_tokens = 900000 WHERE account_id = 'acme'");
    deduct(4, 0, 500_000, 0, 0); // credits.depleted
    purchase("pur_late", "manual");
    fail("pur_late", "Your card was declined."); // purchase.failed
    grant("pur_late", 5); // purchase.succeeded: the money came after all
    for id in ["pur_auto_1", "pur_auto_2", "pur_auto_3"] {
        purchase(id, "auto_recharge");
        fail(id, "Insufficient funds."); // auto_recharge.failed; the third disables
    }
    run(
        "INSERT INTO holds (account_id, id, tokens, plan_tokens, credit_tokens, period, operation,
                            status, expires_at, created_at, answer_available)
         VALUES ('acme', 'hold_last', 1000000, 0, 1000000, '2025-11', 'chat', 'held',
                 ?1 + 3600000, ?1, 0)",
    ); // credits.depleted by a hold
}

#[test]
fn version_6_reads_every_event_as_version_5_stored_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = NativeDb::open(&dir.path().join("v5.db")).unwrap();
    schema::migrate_to(&old, 5).unwrap();
    raw_history(&old, false);
    let stored = stored_events(&old);

    let path = dir.path().join("v6.db");
    schema::migrate(&NativeDb::open(&path).unwrap()).unwrap();
    raw_history(&NativeDb::open(&path).unwrap(), true);
    let w = World::open(&path);
    let read = listed(&w);
    let kinds: Vec<&str> = stored.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "purchase.succeeded",
            "credits.low",
            "credits.depleted",
            "purchase.failed",
            "purchase.succeeded",
            "auto_recharge.failed",
            "auto_recharge.failed",
            "auto_recharge.failed",
            "auto_recharge.disabled",
            "credits.depleted",
        ]
    );
    assert_eq!(read, stored);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM events WHERE data = ''"),
        9,
        "all but auto_recharge.disabled built when read"
    );
}

/// A database whose write lock another instance holds past the wait.
struct LockedByAnother<'a>(&'a NativeDb);

impl Database for LockedByAnother<'_> {
    fn execute(
        &self,
        sql: &str,
        params: &[credits::Value],
    ) -> Result<Vec<credits::Row>, credits::DbError> {
        if sql.starts_with("BEGIN") {
            return Err(credits::DbError::new(
                credits::DbErrorKind::Busy,
                "database is locked",
            ));
        }
        self.0.execute(sql, params)
    }
}

#[test]
fn a_migration_that_cannot_take_the_lock_changes_nothing_rather_than_go_on_without_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let native = NativeDb::open(&dir.path().join("credits.db")).unwrap();
    let err = schema::migrate(&LockedByAnother(&native)).unwrap_err();
    assert_eq!(err.kind, credits::DbErrorKind::Busy);
    let objects = native
        .execute("SELECT COUNT(*) FROM sqlite_schema", &[])
        .unwrap();
    assert_eq!(objects[0].int(0).unwrap(), 0);
}
