//! The database refuses, by itself, every statement that would move a balance
//! outside the ledger: the money rules `schema.rs` lists, tried with the SQL a
//! future bug (or a hand at the console) might run.
//!
//! Each test sets up real books through the domain (purchases, deductions, a
//! refund, a purchase left pending after its charge), runs one hostile statement
//! on the raw connection, and checks that it was refused and that nothing moved:
//! every row of every money table is as before, and the audit still balances.
//!
//! What the schema deliberately leaves open (it moves no balance): deleting or
//! replacing an idempotency key or a usage rollup row, which the audit reports.

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

mod support;

use credits::{AccountId, Database, DbErrorKind, Pack, Plan, Row};
use support::rules::{DECLINED, VISA, buy, deduct, deduct_in, method};
use support::{ChargesThenFails, World, refund, split};

/// The books a test starts from.
///
/// `acme` (Pro, 2,000,000 plan tokens a month) has, in November 2026:
/// 1. a Starter purchase: 1,000,000 credits;
/// 2. a deduction of 1,999,900, all plan tokens;
/// 3. a deduction of 150 in project `p-42`: 100 plan and 50 credit tokens;
/// 4. a refund of 30 of entry 3, all credits (120 of it left to refund);
///
/// and a Standard purchase pending: charged, its answer lost, not granted yet.
/// Balance 999,980 credits, plan used 2,000,000, `ledger_seq` 4.
///
/// `globex` (Team) has nine deductions of 100 plan tokens: entry 9 is a deduction
/// only on its ledger.
struct Scene {
    w: World,
    acme: AccountId,
    globex: AccountId,
    /// The Starter purchase granted by acme's entry 1.
    granted: String,
    /// The Standard purchase charged and still pending.
    pending: String,
}

const ACME_BALANCE: i64 = 999_980;

fn scene() -> Scene {
    let w = World::new();
    let acme = w.paying_account("acme", Plan::Pro, VISA);
    buy(&w, &acme, Pack::Starter);
    deduct(&w, &acme, 2_000_000 - 100);
    let d = deduct_in(&w, &acme, 150, Some("p-42"));
    assert_eq!(split(&d), (150, 100, 50));
    w.credits_with(|c| c.refund(&refund(&acme, &d, Some(30)), None))
        .unwrap();
    let lost = ChargesThenFails(w.sandbox());
    w.credits_paying_with(&lost, |c| c.purchase(&acme, Pack::Standard, None))
        .unwrap_err();

    let globex = w.paying_account("globex", Plan::Team, VISA);
    for _ in 0..9 {
        deduct(&w, &globex, 100);
    }

    let granted = text(&w, "SELECT id FROM purchases WHERE status = 'succeeded'");
    let pending = text(&w, "SELECT id FROM purchases WHERE status = 'pending'");
    assert_eq!(
        (w.balance(&acme), w.plan_remaining(&acme)),
        (ACME_BALANCE as u64, 0)
    );
    assert_eq!(
        w.count("SELECT ledger_seq FROM accounts WHERE id = 'acme'"),
        4
    );
    w.assert_books_balance();
    Scene {
        w,
        acme,
        globex,
        granted,
        pending,
    }
}

fn text(w: &World, sql: &str) -> String {
    let rows = w.db.execute(sql, &[]).unwrap();
    assert_eq!(rows.len(), 1, "{sql}");
    rows[0].text(0).unwrap().to_owned()
}

/// Every row of every table that holds or decides money, in a fixed order.
#[derive(Debug, PartialEq)]
struct Books {
    accounts: Vec<Row>,
    ledger: Vec<Row>,
    purchases: Vec<Row>,
    usage_daily: Vec<Row>,
    ledger_keys: Vec<Row>,
    holds: Vec<Row>,
}

fn books(w: &World) -> Books {
    let all = |sql: &str| w.db.execute(sql, &[]).unwrap();
    Books {
        accounts: all("SELECT * FROM accounts ORDER BY id"),
        ledger: all("SELECT * FROM ledger ORDER BY account_id, seq"),
        purchases: all("SELECT * FROM purchases ORDER BY id"),
        usage_daily: all(
            "SELECT * FROM usage_daily ORDER BY account_id, day, operation, has_project, project",
        ),
        ledger_keys: all("SELECT * FROM ledger_keys ORDER BY account_id, kind, key"),
        holds: all("SELECT * FROM holds ORDER BY account_id, id"),
    }
}

impl Scene {
    /// `sql` fails, for a rule's sake, and leaves every book as it was.
    fn refuses(&self, sql: &str) {
        self.refuses_with(sql, &[]);
    }

    /// [`refuses`](Self::refuses), with values bound to `?1`, `?2`, ...
    fn refuses_with(&self, sql: &str, params: &[credits::Value]) {
        let before = books(&self.w);
        let result = self.w.db.execute(sql, params);
        let err = match result {
            Ok(rows) => panic!(
                "accepted: {sql}\nreturned {rows:?}\nbooks now {:#?}\naudit {:#?}",
                books(&self.w),
                self.w.audit()
            ),
            Err(e) => e,
        };
        // A typo is no refusal: the statement must be one SQLite runs.
        assert_ne!(err.kind, DbErrorKind::MissingSchema, "{err}: {sql}");
        assert!(!err.message.contains("syntax error"), "{err}: {sql}");
        self.nothing_moved(&before);
    }

    /// `sql` writes nothing: refused, or a row skipped by its conflict clause.
    fn writes_nothing(&self, sql: &str) {
        let before = books(&self.w);
        if let Err(e) = self.w.db.execute(sql, &[]) {
            assert_ne!(e.kind, DbErrorKind::MissingSchema, "{e}: {sql}");
            assert!(!e.message.contains("syntax error"), "{e}: {sql}");
        }
        self.nothing_moved(&before);
    }

    fn nothing_moved(&self, before: &Books) {
        assert_eq!(&books(&self.w), before);
        assert_eq!(
            (
                self.w.balance(&self.acme),
                self.w.plan_remaining(&self.acme)
            ),
            (ACME_BALANCE as u64, 0)
        );
        self.w.assert_books_balance();
    }

    fn now(&self) -> i64 {
        self.w.now().millis()
    }
}

/// A ledger row as raw SQL would write it: every column the domain fills, so
/// that what a test breaks is the one rule it names.
struct Entry<'a> {
    account: &'a str,
    seq: i64,
    kind: &'a str,
    tokens: i64,
    plan: i64,
    credit: i64,
    period: Option<&'a str>,
    purchase_id: Option<&'a str>,
    refund_of: Option<i64>,
    balance_after: i64,
    created_at: i64,
}

impl<'a> Entry<'a> {
    fn deduction(account: &'a str, seq: i64, plan: i64, credit: i64, after: i64) -> Self {
        Self {
            account,
            seq,
            kind: "deduction",
            tokens: plan + credit,
            plan,
            credit,
            period: Some("2026-11"),
            purchase_id: None,
            refund_of: None,
            balance_after: after,
            created_at: 0,
        }
    }

    fn refund(account: &'a str, seq: i64, of: i64, plan: i64, credit: i64, after: i64) -> Self {
        Self {
            kind: "refund",
            refund_of: Some(of),
            ..Self::deduction(account, seq, plan, credit, after)
        }
    }

    fn purchase(account: &'a str, seq: i64, purchase_id: &'a str, tokens: i64, after: i64) -> Self {
        Self {
            kind: "purchase",
            tokens,
            plan: 0,
            credit: tokens,
            period: None,
            purchase_id: Some(purchase_id),
            ..Self::deduction(account, seq, 0, 0, after)
        }
    }

    fn at(self, created_at: i64) -> Self {
        Self { created_at, ..self }
    }

    /// `<verb> ledger (...) VALUES (...)`, e.g. `INSERT OR REPLACE INTO`.
    fn sql(&self, verb: &str) -> String {
        let text = |v: Option<&str>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
        // source, pack, amount_cents, operation, project, session, reason
        let details = match self.kind {
            "purchase" => "'manual', 'starter', 500, NULL, NULL, NULL, NULL",
            "refund" => "NULL, NULL, NULL, 'enrichment', 'p-42', 's-1', 'job failed'",
            _ => "NULL, NULL, NULL, 'enrichment', 'p-42', 's-1', NULL",
        };
        format!(
            "{verb} ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, period,
                purchase_id, refund_of, credit_balance_after, created_at,
                source, pack, amount_cents, operation, project, session, reason)
             VALUES ('{}', {}, '{}', {}, {}, {}, {}, {}, {}, {}, {}, {details})",
            self.account,
            self.seq,
            self.kind,
            self.tokens,
            self.plan,
            self.credit,
            text(self.period),
            text(self.purchase_id),
            self.refund_of.map_or("NULL".to_owned(), |s| s.to_string()),
            self.balance_after,
            self.created_at,
        )
    }
}

// ---------------------------------------------------------------------------
// The control: a raw entry that breaks no rule is written, so the refusals
// below are the rules' doing, not a malformed row's.

#[test]
fn a_well_formed_raw_entry_is_accepted_and_the_books_still_balance() {
    let s = scene();
    let sql = Entry::deduction("acme", 5, 0, 20, ACME_BALANCE - 20)
        .at(s.now())
        .sql("INSERT INTO");
    s.w.db.execute(&sql, &[]).unwrap();
    assert_eq!(s.w.balance(&s.acme), ACME_BALANCE as u64 - 20);
    s.w.assert_books_balance();
}

// ---------------------------------------------------------------------------
// The ledger is append-only: no entry is replaced, changed or deleted.

#[test]
fn insert_or_replace_of_an_existing_entry_is_refused() {
    let s = scene();
    // Entry 3 again, as a 1-token deduction: REPLACE would delete the original
    // (delete triggers do not fire for REPLACE) and write this one instead.
    let sql = Entry::deduction("acme", 3, 0, 1, ACME_BALANCE - 1)
        .at(s.now())
        .sql("INSERT OR REPLACE INTO");
    s.refuses(&sql);
}

#[test]
fn insert_or_replace_of_the_newest_entry_is_refused() {
    let s = scene();
    // The newest entry (the refund, 4) replaced by a bigger refund of entry 3.
    let sql = Entry::refund("acme", 4, 3, 0, 50, ACME_BALANCE + 20)
        .at(s.now())
        .sql("INSERT OR REPLACE INTO");
    s.refuses(&sql);
}

#[test]
fn replace_into_the_ledger_is_refused() {
    let s = scene();
    // The Starter grant (entry 1) replaced by a grant of the pending Standard
    // purchase: 2,500,000 credits in place of 1,000,000.
    let sql = Entry::purchase("acme", 1, &s.pending, 2_500_000, 2_500_000)
        .at(s.now())
        .sql("REPLACE INTO");
    s.refuses(&sql);
}

#[test]
fn insert_or_ignore_of_a_duplicate_entry_writes_nothing() {
    let s = scene();
    // IGNORE skips a row that breaks a constraint without an error: what matters
    // is that nothing is written, and nothing is.
    let sql = Entry::deduction("acme", 2, 0, 1, ACME_BALANCE - 1)
        .at(s.now())
        .sql("INSERT OR IGNORE INTO");
    s.writes_nothing(&sql);
}

#[test]
fn a_plain_insert_repeating_a_seq_is_refused() {
    let s = scene();
    let sql = Entry::deduction("acme", 4, 0, 1, ACME_BALANCE - 1)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn updating_an_entry_is_refused() {
    let s = scene();
    s.refuses("UPDATE ledger SET credit_tokens = 0, tokens = 100, plan_tokens = 100 WHERE account_id = 'acme' AND seq = 3");
}

#[test]
fn update_or_replace_of_an_entry_is_refused() {
    let s = scene();
    s.refuses("UPDATE OR REPLACE ledger SET tokens = 5000000, credit_tokens = 5000000 WHERE account_id = 'acme' AND seq = 1");
}

#[test]
fn deleting_an_entry_is_refused() {
    let s = scene();
    s.refuses("DELETE FROM ledger WHERE account_id = 'acme' AND seq = 3");
}

#[test]
fn deleting_the_whole_ledger_is_refused() {
    let s = scene();
    s.refuses("DELETE FROM ledger");
}

// ---------------------------------------------------------------------------
// Entries follow each other: seq one past the last, agreeing with the balance.

#[test]
fn an_entry_skipping_a_seq_is_refused() {
    let s = scene();
    let sql = Entry::deduction("acme", 6, 0, 20, ACME_BALANCE - 20)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_deduction_that_would_overdraw_is_refused() {
    let s = scene();
    let sql = Entry::deduction("acme", 5, 0, ACME_BALANCE + 1, -1)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_deduction_that_would_overdraw_writes_nothing_under_insert_or_ignore() {
    let s = scene();
    let sql = Entry::deduction("acme", 5, 0, ACME_BALANCE + 1, -1)
        .at(s.now())
        .sql("INSERT OR IGNORE INTO");
    s.writes_nothing(&sql);
}

#[test]
fn a_deduction_whose_balance_after_disagrees_with_the_balance_is_refused() {
    let s = scene();
    // Takes 500 credits but says the balance is untouched.
    let sql = Entry::deduction("acme", 5, 0, 500, ACME_BALANCE)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_deduction_whose_balance_after_disagrees_is_refused_under_insert_or_ignore() {
    let s = scene();
    // A trigger's RAISE(ABORT) is not a constraint IGNORE may skip.
    let sql = Entry::deduction("acme", 5, 0, 500, ACME_BALANCE)
        .at(s.now())
        .sql("INSERT OR IGNORE INTO");
    s.refuses(&sql);
}

#[test]

fn a_deduction_taking_plan_tokens_the_plan_no_longer_has_is_refused() {
    let s = scene();
    // acme used its whole allocation; this takes 500,000 more plan tokens and
    // no credit. plan_used goes to 2,500,000 of 2,000,000, and the ledger agrees,
    // so the audit stays clean: 500,000 tokens for free.
    let sql = Entry::deduction("acme", 5, 500_000, 0, ACME_BALANCE)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn a_deduction_charging_plan_tokens_of_an_ended_month_is_refused() {
    let s = scene();
    // Plan tokens of October, whose allocation is over: ledger_applies leaves
    // plan_used as it is (`NEW.period < plan_period`), so 500,000 tokens are
    // deducted from nothing. Only a late hold's settlement may do this, and
    // only within what the hold reserved.
    let sql = Entry {
        period: Some("2026-10"),
        ..Entry::deduction("acme", 5, 500_000, 0, ACME_BALANCE)
    }
    .at(s.now())
    .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn a_deduction_charging_plan_tokens_of_a_future_month_is_refused() {
    let s = scene();
    // One plan token of 2099-01: plan_period jumps there and plan_used is 1, so
    // every real deduction until then is of an "ended" month and its plan
    // tokens cost nothing.
    let sql = Entry {
        period: Some("2099-01"),
        ..Entry::deduction("acme", 5, 1, 0, ACME_BALANCE)
    }
    .at(s.now())
    .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn an_entry_of_an_account_that_does_not_exist_is_refused() {
    let s = scene();
    // ledger_applies updates no account, so no guard runs (a purchase entry
    // would still need its purchase; a deduction or refund needs nothing). The
    // entry waits for whoever creates `mallory`: its first entry collides with
    // this one, and until then the audit, which starts from accounts, sees
    // nothing. (As a refund it would also carry credits, see the refunds below.)
    let sql = Entry::deduction("mallory", 1, 1_000, 0, 0)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

// ---------------------------------------------------------------------------
// The balance and the plan use move only with the next ledger entry.

#[test]
fn setting_the_credit_balance_is_refused() {
    let s = scene();
    s.refuses("UPDATE accounts SET credit_balance = 50000000 WHERE id = 'acme'");
}

#[test]
fn setting_the_credit_balance_with_the_next_seq_is_refused() {
    let s = scene();
    // ledger_seq + 1 names no entry yet, so no balance agrees with it.
    s.refuses(
        "UPDATE accounts SET credit_balance = 50000000, ledger_seq = ledger_seq + 1 WHERE id = 'acme'",
    );
}

#[test]
fn setting_the_credit_balance_under_update_or_ignore_is_refused() {
    let s = scene();
    s.refuses("UPDATE OR IGNORE accounts SET credit_balance = 50000000 WHERE id = 'acme'");
}

#[test]
fn setting_the_plan_use_is_refused() {
    let s = scene();
    s.refuses("UPDATE accounts SET plan_used = 0 WHERE id = 'acme'");
}

#[test]
fn setting_the_ledger_seq_is_refused() {
    let s = scene();
    // Back to 2: the next entry would be a second entry 3.
    s.refuses("UPDATE accounts SET ledger_seq = 2 WHERE id = 'acme'");
}

#[test]
fn setting_the_plan_period_is_refused() {
    let s = scene();
    // A new month's plan use with the old month's count reset.
    s.refuses("UPDATE accounts SET plan_period = '2026-10' WHERE id = 'acme'");
}

#[test]
fn an_upsert_on_accounts_setting_the_balance_is_refused() {
    let s = scene();
    // DO UPDATE is an UPDATE: the guard runs.
    s.refuses(
        "INSERT INTO accounts (id, plan, monthly_tokens, key_hash, created_at)
         VALUES ('acme', 'pro', 2000000, 'x', 0)
         ON CONFLICT (id) DO UPDATE SET credit_balance = 50000000",
    );
}

#[test]

fn insert_or_replace_of_an_existing_account_is_refused() {
    let s = scene();
    // The row written again from itself: credit_balance, plan_used and
    // ledger_seq fall back to their defaults. acme loses 999,980 credits, its
    // plan use, and its next entry collides with entry 1.
    s.refuses(
        "INSERT OR REPLACE INTO accounts (id, plan, monthly_tokens, key_hash, payment_method, created_at)
         SELECT id, plan, monthly_tokens, key_hash, payment_method, created_at
         FROM accounts WHERE id = 'acme'",
    );
}

#[test]

fn replace_into_accounts_with_a_made_up_balance_is_refused() {
    let s = scene();
    // The same, but the new row names its balance: 50,000,000 credits that no
    // entry explains.
    s.refuses(
        "REPLACE INTO accounts (id, plan, monthly_tokens, key_hash, payment_method, credit_balance,
                                plan_period, plan_used, ledger_seq, created_at)
         SELECT id, plan, monthly_tokens, key_hash, payment_method, 50000000,
                plan_period, plan_used, ledger_seq, created_at
         FROM accounts WHERE id = 'acme'",
    );
}

#[test]

fn a_new_account_with_a_balance_is_refused() {
    let s = scene();
    // An account born with 50,000,000 credits and no ledger entry.
    s.refuses(
        "INSERT INTO accounts (id, plan, monthly_tokens, key_hash, credit_balance, created_at)
         VALUES ('mallory', 'pro', 2000000, 'mallory-key', 50000000, 0)",
    );
}

#[test]

fn deleting_an_account_with_a_ledger_is_refused() {
    let s = scene();
    // The balance vanishes and the ledger is orphaned; an account created again
    // under the name starts at 0 and collides with entry 1.
    s.refuses("DELETE FROM accounts WHERE id = 'acme'");
}

#[test]

fn renaming_an_account_is_refused() {
    let s = scene();
    // `mallory` now holds acme's 999,980 credits with no entry behind them, and
    // acme's ledger belongs to no account.
    s.refuses("UPDATE accounts SET id = 'mallory' WHERE id = 'acme'");
}

#[test]

fn raising_the_plan_allocation_beyond_the_plan_is_refused() {
    let s = scene();
    // A Pro account with a billion plan tokens a month: free tokens, and the
    // ledger and the audit agree with every one of them.
    s.refuses("UPDATE accounts SET monthly_tokens = 1000000000 WHERE id = 'acme'");
}

// ---------------------------------------------------------------------------
// A purchase entry is written only by its purchase succeeding: one grant.

#[test]
fn a_raw_entry_granting_the_pending_purchase_is_refused() {
    let s = scene();
    // The exact entry the grant would write, but written on its own: the purchase
    // would stay pending and the sweep would grant it a second time.
    let sql = Entry::purchase("acme", 5, &s.pending, 2_500_000, ACME_BALANCE + 2_500_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_purchase_marked_succeeded_at_the_next_seq_is_granted_once_and_the_books_balance() {
    let s = scene();
    // Not a rule the database can judge (was it charged?), but the books stay
    // whole: the purchase's trigger writes its entry, once.
    s.w.db
        .execute(
            "UPDATE purchases SET status = 'succeeded', granted_seq = 5 WHERE id = ?1",
            &[s.pending.as_str().into()],
        )
        .unwrap();
    assert_eq!(s.w.balance(&s.acme), ACME_BALANCE as u64 + 2_500_000);
    s.w.assert_books_balance();
    let again = s.w.db.execute(
        "UPDATE purchases SET status = 'succeeded', granted_seq = 6 WHERE id = ?1",
        &[s.pending.as_str().into()],
    );
    assert!(again.is_err(), "{again:?}");
    assert_eq!(s.w.balance(&s.acme), ACME_BALANCE as u64 + 2_500_000);
    s.w.assert_books_balance();
}

#[test]
fn a_purchase_marked_succeeded_at_a_wrong_seq_is_refused() {
    let s = scene();
    for seq in [
        credits::Value::Integer(4),
        credits::Value::Integer(6),
        credits::Value::Null,
    ] {
        s.refuses_with(
            "UPDATE purchases SET status = 'succeeded', granted_seq = ?2 WHERE id = ?1",
            &[s.pending.as_str().into(), seq],
        );
    }
}

#[test]
fn naming_a_grant_on_a_purchase_that_does_not_succeed_is_refused() {
    let s = scene();
    // A pending purchase pointing at entry 1 would read as granted by it.
    s.refuses_with(
        "UPDATE purchases SET granted_seq = 1 WHERE id = ?1",
        &[s.pending.as_str().into()],
    );
}

#[test]
fn a_failed_purchase_put_back_to_pending_is_refused() {
    let s = scene();
    s.w.credits_with(|c| c.save_payment_method(&s.globex, &method(DECLINED)))
        .unwrap();
    s.w.credits_with(|c| c.purchase(&s.globex, Pack::Starter, None))
        .unwrap_err();
    let failed = text(&s.w, "SELECT id FROM purchases WHERE status = 'failed'");
    // Pending again, the sweep would charge it under a settled outcome.
    s.refuses_with(
        "UPDATE purchases SET status = 'pending' WHERE id = ?1",
        &[failed.as_str().into()],
    );
}

#[test]
fn a_purchase_entry_with_no_purchase_is_refused() {
    let s = scene();
    let sql = Entry::purchase("acme", 5, "pu_made_up", 1_000_000, ACME_BALANCE + 1_000_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_purchase_entry_naming_no_purchase_id_is_refused() {
    let s = scene();
    let sql = Entry {
        purchase_id: None,
        ..Entry::purchase("acme", 5, "", 1_000_000, ACME_BALANCE + 1_000_000)
    }
    .at(s.now())
    .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_second_grant_of_a_succeeded_purchase_is_refused() {
    let s = scene();
    let sql = Entry::purchase("acme", 5, &s.granted, 1_000_000, ACME_BALANCE + 1_000_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_grant_of_another_accounts_pending_purchase_is_refused() {
    let s = scene();
    // acme's pending purchase granted to globex.
    let sql = Entry::purchase("globex", 10, &s.pending, 2_500_000, 2_500_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
    assert_eq!(s.w.balance(&s.globex), 0);
}

#[test]
fn a_grant_of_more_tokens_than_the_purchase_is_refused() {
    let s = scene();
    // The pending Standard pack is 2,500,000 tokens, not 15,000,000.
    let sql = Entry::purchase("acme", 5, &s.pending, 15_000_000, ACME_BALANCE + 15_000_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_purchase_entry_with_plan_tokens_is_refused() {
    let s = scene();
    let sql = Entry {
        plan: 1_000,
        credit: 2_500_000 - 1_000,
        ..Entry::purchase(
            "acme",
            5,
            &s.pending,
            2_500_000,
            ACME_BALANCE + 2_500_000 - 1_000,
        )
    }
    .at(s.now())
    .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn marking_a_pending_purchase_succeeded_without_a_grant_is_refused() {
    let s = scene();
    // The customer was charged for 2,500,000 tokens that are never granted: the
    // sweep only finishes pending purchases.
    s.refuses(&format!(
        "UPDATE purchases SET status = 'succeeded' WHERE id = '{}'",
        s.pending
    ));
}

#[test]

fn putting_a_succeeded_purchase_back_to_pending_is_refused() {
    let s = scene();
    // Pending again, the Starter purchase may be granted a second time by the
    // sweep (1,000,000 credits more for one charge).
    s.refuses(&format!(
        "UPDATE purchases SET status = 'pending', granted_seq = NULL WHERE id = '{}'",
        s.granted
    ));
}

#[test]

fn changing_the_tokens_of_a_pending_purchase_is_refused() {
    let s = scene();
    // The grant copies the purchase's tokens: a Standard pack charged at 10 EUR
    // would grant 15,000,000 tokens.
    s.refuses(&format!(
        "UPDATE purchases SET tokens = 15000000 WHERE id = '{}'",
        s.pending
    ));
}

#[test]

fn deleting_a_charged_pending_purchase_is_refused() {
    let s = scene();
    // The charge stays with the provider and nothing is left to grant it.
    s.refuses_with(
        "DELETE FROM purchases WHERE id = ?1",
        &[s.pending.as_str().into()],
    );
}

// ---------------------------------------------------------------------------
// Refunds never give back more than their deduction took.

#[test]

fn a_refund_beyond_what_its_deduction_has_left_is_refused() {
    let s = scene();
    // Entry 3 took 150 and has 120 left; this refunds 1,000 of it, all credits:
    // 950 credits from nothing.
    let sql = Entry::refund("acme", 5, 3, 0, 1_000, ACME_BALANCE + 1_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn a_refund_giving_back_more_credits_than_its_deduction_took_is_refused() {
    let s = scene();
    // 120 tokens, within what entry 3 has left, but all as credits: entry 3 took
    // 50 credits, 30 already back. 100 plan tokens become credits.
    let sql = Entry::refund("acme", 5, 3, 0, 120, ACME_BALANCE + 120)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn a_refund_of_a_purchase_is_refused() {
    let s = scene();
    // Entry 1 is the Starter purchase: a "refund" of it doubles the grant.
    let sql = Entry::refund("acme", 5, 1, 0, 1_000_000, ACME_BALANCE + 1_000_000)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn a_refund_of_a_deduction_of_another_account_is_refused() {
    let s = scene();
    // refund_of 9 is a deduction on globex's ledger only; on acme's it names
    // nothing (acme is at entry 4). 100 credits from nothing.
    let sql = Entry::refund("acme", 5, 9, 0, 100, ACME_BALANCE + 100)
        .at(s.now())
        .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]

fn a_refund_of_nothing_is_refused() {
    let s = scene();
    let sql = Entry {
        refund_of: None,
        ..Entry::refund("acme", 5, 0, 0, 1_000, ACME_BALANCE + 1_000)
    }
    .at(s.now())
    .sql("INSERT INTO");
    s.refuses(&sql);
}

#[test]
fn a_refund_restoring_more_plan_tokens_than_used_is_refused() {
    let s = scene();
    // 3,000,000 plan tokens back of 2,000,000 used: plan_used would go negative,
    // which its CHECK refuses.
    let sql = Entry::refund("acme", 5, 3, 3_000_000, 0, ACME_BALANCE)
        .at(s.now())
        .sql("INSERT INTO");
    // (tokens = plan + credit = 3,000,000 so the refund's own CHECK holds.)
    s.refuses(&sql);
}

#[test]

fn a_refund_restoring_more_plan_tokens_than_used_writes_nothing_under_insert_or_ignore() {
    let s = scene();
    // An outer conflict clause overrides the trigger's statements': the
    // account's CHECK (plan_used >= 0) skips the UPDATE of accounts alone, and
    // the statement succeeds. Entry 5 is written and never applied: ledger_seq
    // stays 4 (acme's next deduction collides with it), the rollup of p-42 drops
    // by 3,000,000, and the ledger no longer sums to the balance.
    let sql = Entry::refund("acme", 5, 3, 3_000_000, 0, ACME_BALANCE)
        .at(s.now())
        .sql("INSERT OR IGNORE INTO");
    s.writes_nothing(&sql);
}

#[test]

fn a_refund_restoring_more_plan_tokens_than_used_writes_nothing_under_insert_or_fail() {
    let s = scene();
    // FAIL keeps what the statement did before the failing constraint: the
    // statement reports the account's CHECK, yet entry 5 stays written and
    // unapplied, as under IGNORE.
    let sql = Entry::refund("acme", 5, 3, 3_000_000, 0, ACME_BALANCE)
        .at(s.now())
        .sql("INSERT OR FAIL INTO");
    s.writes_nothing(&sql);
}

// ---------------------------------------------------------------------------
// Tables beside the ledger that hold no money.

#[test]
fn tampering_with_idempotency_keys_moves_no_money() {
    let s = scene();
    // ledger_keys only maps a request's key to the entry it wrote: repointing or
    // deleting one changes what a replay answers (or lets a retried request
    // write a second entry, through the ledger and its guards), never a
    // balance by itself. So the schema lets it be, and the books stay whole.
    let before = books(&s.w);
    s.w.db
        .execute(
            "INSERT OR REPLACE INTO ledger_keys (account_id, kind, key, seq, answer_tokens)
             VALUES ('acme', 'deduction', 'k-1', 1, 99999999)",
            &[],
        )
        .unwrap();
    s.w.db.execute("DELETE FROM ledger_keys", &[]).unwrap();
    let after = books(&s.w);
    assert_eq!(
        (&after.accounts, &after.ledger, &after.purchases),
        (&before.accounts, &before.ledger, &before.purchases)
    );
    s.w.assert_books_balance();
}

#[test]
fn tampering_with_the_usage_rollup_moves_no_money_and_the_audit_sees_it() {
    let s = scene();
    // usage_daily feeds usage reports only; no balance reads it. A changed
    // rollup moves nothing, and the audit names it.
    let before = books(&s.w);
    s.w.db
        .execute(
            "INSERT OR REPLACE INTO usage_daily (account_id, day, operation, has_project, project, tokens)
             SELECT account_id, day, operation, has_project, project, 0 FROM usage_daily
             WHERE account_id = 'acme'",
            &[],
        )
        .unwrap();
    let after = books(&s.w);
    assert_eq!(
        (&after.accounts, &after.ledger, &after.purchases),
        (&before.accounts, &before.ledger, &before.purchases)
    );
    assert_eq!(s.w.balance(&s.acme), ACME_BALANCE as u64);
    let broken = s.w.audit().unwrap();
    assert!(
        !broken.is_empty() && broken.iter().all(|b| b.starts_with("the usage rollup")),
        "{broken:#?}"
    );
}
