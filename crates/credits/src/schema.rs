//! The `SQLite` schema and its versioned migrations.
//!
//! Every statement is idempotent (`IF NOT EXISTS`) and runs on its own, so several
//! instances starting at once on a database without multi-statement transactions
//! (remote libSQL) can all migrate: whoever runs a statement second changes nothing.
//! Nothing checks the schema per request: a statement that names a table or column
//! the database lacks fails without writing, the service migrates and runs it again
//! ([`crate::service`]).
//!
//! On Spin every request opens a new connection, and `SQLite` parses the whole schema
//! before its first statement, so the schema is kept lean: few objects, short
//! triggers, and partial indexes that cost nothing for the rows they leave out.
//!
//! The money rules the schema enforces by itself, whatever SQL a caller runs:
//! - `accounts.credit_balance` and the plan use move only with a new ledger entry
//!   of that account, numbered one past the last (`ledger_seq`) and agreeing with
//!   the balance it leaves (`accounts_balance_follows_ledger`): the balance always
//!   equals the sum of the ledger, and an entry can be neither skipped, replaced
//!   nor reordered;
//! - `credit_balance >= 0`: no overdraft, ever;
//! - the ledger is append-only, and its only uniqueness is its key, which a new
//!   entry never repeats, so no `INSERT OR REPLACE` can delete an entry;
//! - a purchase entry needs its pending purchase, which it completes: one grant
//!   per purchase; one pending auto-recharge per account;
//! - idempotency keys are unique per account and route.

use crate::store::{Database, DbError, DbErrorKind};

/// One schema version: statements that each may run alone, any number of times.
pub struct Migration {
    pub version: i64,
    pub statements: &'static [&'static str],
    /// `PRAGMA user_version = <version>` (a pragma takes no parameters).
    pub mark: &'static str,
}

/// All migrations, oldest first. Version 1 was the pre-release schema; a database
/// still on it is refused (see [`migrate`]).
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 2,
    statements: V2,
    mark: "PRAGMA user_version = 2",
}];

// Comments stay out of the SQL: the schema's text is parsed on every new connection.
const V2: &[&str] = &[
    // The order matters where each statement runs alone (no transaction): every
    // write names `accounts`, created last, so none can run before the ledger has
    // its triggers; the guard follows at once.
    // plan_period/plan_used: the allocation used in the newest month with plan use.
    // ledger_seq: the newest ledger entry's seq, naming one balance state.
    // seq counts 1, 2, 3, ... per account, so an id reveals nothing of other
    // accounts; period is the month whose allocation plan_tokens belong to.
    // Outside the ledger, so that a conflict on a key can never delete an entry.
    // answer_tokens: what the first answer counted beyond its entry (a recharge).
    "CREATE TABLE IF NOT EXISTS ledger_keys (
        account_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        answer_tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, kind, key)
    ) WITHOUT ROWID",
    // Tokens deducted net of refunds per account, UTC day, operation and project,
    // kept by each entry's own statement: usage reports read this, not the ledger.
    "CREATE TABLE IF NOT EXISTS usage_daily (
        account_id TEXT NOT NULL,
        day INTEGER NOT NULL,
        operation TEXT NOT NULL,
        has_project INTEGER NOT NULL,
        project TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        PRIMARY KEY (account_id, day, operation, has_project, project)
    ) WITHOUT ROWID",
    // crossing: the balance state (ledger_seq) an auto-recharge evaluation saw;
    // triggered_by: the deduction that set it off; granted_seq: its ledger entry.
    "CREATE TABLE IF NOT EXISTS purchases (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('manual', 'auto_recharge')),
        pack TEXT NOT NULL,
        tokens INTEGER NOT NULL CHECK (tokens > 0),
        amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
        payment_method TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        failure_message TEXT,
        idempotency_key TEXT,
        request_hash TEXT,
        crossing INTEGER,
        triggered_by INTEGER,
        granted_seq INTEGER,
        period TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE UNIQUE INDEX IF NOT EXISTS purchases_idempotency
        ON purchases (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS purchases_one_pending_recharge
        ON purchases (account_id) WHERE source = 'auto_recharge' AND status = 'pending'",
    "CREATE INDEX IF NOT EXISTS purchases_recharge_spend
        ON purchases (account_id, period) WHERE source = 'auto_recharge'",
    "CREATE INDEX IF NOT EXISTS purchases_pending ON purchases (created_at) WHERE status = 'pending'",
    "CREATE TABLE IF NOT EXISTS auto_recharge (
        account_id TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        pack TEXT,
        pack_tokens INTEGER,
        pack_price_cents INTEGER,
        threshold_tokens INTEGER CHECK (threshold_tokens >= 1),
        monthly_limit_cents INTEGER NOT NULL CHECK (monthly_limit_cents >= 0),
        declines INTEGER NOT NULL DEFAULT 0,
        retry_after INTEGER,
        last_error_code TEXT,
        last_error_message TEXT,
        last_error_at INTEGER,
        CHECK (enabled = 0 OR (pack IS NOT NULL AND threshold_tokens IS NOT NULL))
    ) WITHOUT ROWID",
    // Plan tokens count in their month; a month before the newest with plan use
    // is over: its deductions (a late hold) and refunds change nothing now.
    "CREATE TABLE IF NOT EXISTS ledger (
        account_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('purchase', 'deduction', 'refund')),
        tokens INTEGER NOT NULL CHECK (tokens > 0),
        plan_tokens INTEGER NOT NULL CHECK (plan_tokens >= 0),
        credit_tokens INTEGER NOT NULL CHECK (credit_tokens >= 0),
        period TEXT,
        purchase_id TEXT,
        source TEXT,
        pack TEXT,
        amount_cents INTEGER,
        operation TEXT,
        project TEXT,
        session TEXT,
        refund_of INTEGER,
        reason TEXT,
        idempotency_key TEXT,
        request_hash TEXT,
        credit_balance_after INTEGER NOT NULL CHECK (credit_balance_after >= 0),
        plan_remaining_after INTEGER,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, seq),
        CHECK (kind <> 'deduction' OR plan_tokens + credit_tokens = tokens),
        CHECK (kind <> 'refund' OR plan_tokens + credit_tokens <= tokens),
        CHECK (kind <> 'purchase' OR (credit_tokens = tokens AND plan_tokens = 0))
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS ledger_by_kind ON ledger (account_id, kind, seq)",
    "CREATE INDEX IF NOT EXISTS ledger_by_project ON ledger (account_id, project, seq)",
    "CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger (account_id, created_at)",
    "CREATE INDEX IF NOT EXISTS ledger_refunds
        ON ledger (account_id, refund_of) WHERE refund_of IS NOT NULL",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
     BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
     BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_applies AFTER INSERT ON ledger
     BEGIN
        UPDATE accounts SET
            credit_balance = credit_balance
                + CASE NEW.kind WHEN 'deduction' THEN -NEW.credit_tokens ELSE NEW.credit_tokens END,
            plan_used = CASE
                WHEN NEW.plan_tokens = 0 OR NEW.period < plan_period THEN plan_used
                WHEN NEW.kind = 'refund' THEN plan_used - NEW.plan_tokens
                WHEN NEW.period IS plan_period THEN plan_used + NEW.plan_tokens
                ELSE NEW.plan_tokens END,
            plan_period = CASE WHEN NEW.plan_tokens > 0 AND NEW.kind = 'deduction'
                               THEN MAX(NEW.period, COALESCE(plan_period, '')) ELSE plan_period END,
            ledger_seq = NEW.seq
        WHERE id = NEW.account_id;
        INSERT INTO usage_daily (account_id, day, operation, has_project, project, tokens)
            SELECT NEW.account_id, NEW.created_at / 86400000, NEW.operation,
                   NEW.project IS NOT NULL, COALESCE(NEW.project, ''),
                   CASE NEW.kind WHEN 'deduction' THEN NEW.tokens ELSE -NEW.tokens END
            WHERE NEW.kind <> 'purchase'
            ON CONFLICT (account_id, day, operation, has_project, project)
            DO UPDATE SET tokens = tokens + excluded.tokens;
        INSERT INTO ledger_keys (account_id, kind, key, seq)
            SELECT NEW.account_id, NEW.kind, NEW.idempotency_key, NEW.seq
            WHERE NEW.idempotency_key IS NOT NULL;
        UPDATE purchases SET status = 'succeeded', granted_seq = NEW.seq, updated_at = NEW.created_at
            WHERE NEW.kind = 'purchase' AND id = NEW.purchase_id AND account_id = NEW.account_id
              AND status = 'pending' AND tokens = NEW.tokens;
        SELECT RAISE(ABORT, 'a purchase entry needs its pending purchase')
            WHERE NEW.kind = 'purchase' AND changes() = 0;
     END",
    "CREATE TRIGGER IF NOT EXISTS purchases_decline_counts AFTER UPDATE OF status ON purchases
     WHEN OLD.status = 'pending' AND NEW.status = 'failed' AND NEW.source = 'auto_recharge'
     BEGIN
        UPDATE auto_recharge SET
            declines = declines + 1,
            retry_after = NEW.updated_at + 86400000,
            enabled = CASE WHEN declines + 1 >= 3 THEN 0 ELSE enabled END,
            last_error_code = 'payment_failed',
            last_error_message = CASE WHEN declines + 1 >= 3
                THEN 'Auto-recharge was disabled after 3 declined payments in a row: '
                     || COALESCE(NEW.failure_message, 'declined')
                ELSE COALESCE(NEW.failure_message, 'declined') END,
            last_error_at = NEW.updated_at
        WHERE account_id = NEW.account_id;
     END",
    "CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        plan TEXT NOT NULL,
        monthly_tokens INTEGER NOT NULL CHECK (monthly_tokens >= 0),
        key_hash TEXT NOT NULL UNIQUE,
        payment_method TEXT,
        credit_balance INTEGER NOT NULL DEFAULT 0 CHECK (credit_balance >= 0),
        plan_period TEXT,
        plan_used INTEGER NOT NULL DEFAULT 0 CHECK (plan_used >= 0),
        ledger_seq INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS accounts_balance_follows_ledger
     BEFORE UPDATE OF credit_balance, plan_used, plan_period, ledger_seq ON accounts
     WHEN NEW.ledger_seq IS NOT OLD.ledger_seq + 1
       OR NEW.credit_balance IS NOT (SELECT credit_balance_after FROM ledger
                                     WHERE account_id = NEW.id AND seq = NEW.ledger_seq)
     BEGIN SELECT RAISE(ABORT, 'balances move only with the next ledger entry'); END",
];

/// The newest schema version this build knows.
#[must_use]
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the schema up to date: switches the file to WAL (a setting the file
/// keeps), then applies what is missing.
pub fn migrate(db: &dyn Database) -> Result<(), DbError> {
    use_write_ahead_log(db)?;
    // The version lives in the file's header, not in a table: nothing more to parse
    // per connection. A backend without it reads 0 and re-runs idempotent statements.
    let applied = db
        .execute("PRAGMA user_version", &[])
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.int(0).ok()))
        .unwrap_or(0);
    if applied == 0 && has_pre_release_schema(db)? {
        return Err(DbError::other(
            "this database has the pre-release schema (version 1), which is not upgraded; \
             start from a new database file",
        ));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        // Where the backend has transactions, the new schema appears at once: no
        // writer may see the ledger before its triggers. Where each statement runs
        // alone, the order of the statements keeps that window shut (see `V2`).
        let atomic = db.execute("BEGIN IMMEDIATE", &[]).is_ok();
        let applied = migration
            .statements
            .iter()
            .try_for_each(|statement| db.execute(statement, &[]).map(drop));
        if let Err(e) = applied {
            if atomic {
                let _ = db.execute("ROLLBACK", &[]);
            }
            return Err(e);
        }
        // Without user_version (a remote backend), the next migration re-runs the
        // statements, which change nothing the second time.
        let _ = db.execute(migration.mark, &[]);
        if atomic {
            db.execute("COMMIT", &[])?;
        }
    }
    Ok(())
}

/// Version 1 kept its version in a `schema_migrations` table.
fn has_pre_release_schema(db: &dyn Database) -> Result<bool, DbError> {
    let rows = db.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
        &[],
    )?;
    Ok(!rows.is_empty())
}

/// WAL lets readers run beside the writer and commits with one append instead of
/// a rollback journal's several syncs. The mode is kept in the file, so this runs
/// with the migration, not per connection. A backend without journal modes (a
/// remote libSQL) refuses the pragma, and that is fine; a busy database is not.
fn use_write_ahead_log(db: &dyn Database) -> Result<(), DbError> {
    match db.execute("PRAGMA journal_mode = WAL", &[]) {
        Err(e) if e.kind == DbErrorKind::Busy => Err(e),
        _ => Ok(()),
    }
}
