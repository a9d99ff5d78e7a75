//! The `SQLite` schema and its versioned migrations.
//!
//! Every statement is idempotent (`IF NOT EXISTS`) and runs on its own, so several
//! instances starting at once on a database without multi-statement transactions
//! (remote libSQL) can all migrate: whoever runs a statement second changes nothing.
//!
//! The money rules the schema enforces by itself, whatever the caller does:
//! - `accounts.credit_balance` moves only through ledger triggers, and a trigger
//!   aborts any ledger row whose `credit_balance_after` disagrees with it: the
//!   balance always equals the sum of the ledger;
//! - `credit_balance >= 0`: no overdraft, ever;
//! - the ledger is append-only;
//! - one grant per purchase (`ledger.purchase_id` UNIQUE), one pending auto-recharge
//!   per account, one auto-recharge per balance state ("crossing");
//! - idempotency keys are UNIQUE per account and route.

use crate::store::{Database, DbError, Value};
use crate::time::Timestamp;

/// One schema version: statements that each may run alone, any number of times.
pub struct Migration {
    pub version: i64,
    pub statements: &'static [&'static str],
}

/// All migrations, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    statements: V1,
}];

const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        plan TEXT NOT NULL,
        monthly_tokens INTEGER NOT NULL CHECK (monthly_tokens >= 0),
        key_hash TEXT NOT NULL UNIQUE,
        payment_method TEXT,
        credit_balance INTEGER NOT NULL DEFAULT 0 CHECK (credit_balance >= 0),
        -- bumped by every change of credit_balance: identifies one balance state
        credit_version INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS plan_usage (
        account_id TEXT NOT NULL REFERENCES accounts (id),
        period TEXT NOT NULL,
        used_tokens INTEGER NOT NULL CHECK (used_tokens >= 0),
        PRIMARY KEY (account_id, period)
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        kind TEXT NOT NULL CHECK (kind IN ('purchase', 'deduction', 'refund')),
        tokens INTEGER NOT NULL CHECK (tokens > 0),
        plan_tokens INTEGER NOT NULL CHECK (plan_tokens >= 0),
        credit_tokens INTEGER NOT NULL CHECK (credit_tokens >= 0),
        -- the month whose allocation plan_tokens belong to
        period TEXT,
        purchase_id TEXT UNIQUE,
        source TEXT,
        pack TEXT,
        amount_cents INTEGER,
        operation TEXT,
        project TEXT,
        session TEXT,
        refund_of INTEGER REFERENCES ledger (seq),
        reason TEXT,
        idempotency_key TEXT,
        request_hash TEXT,
        credit_balance_after INTEGER NOT NULL CHECK (credit_balance_after >= 0),
        plan_remaining_after INTEGER,
        created_at INTEGER NOT NULL,
        CHECK (kind <> 'deduction' OR plan_tokens + credit_tokens = tokens),
        CHECK (kind <> 'refund' OR plan_tokens + credit_tokens <= tokens),
        CHECK (kind <> 'purchase' OR (credit_tokens = tokens AND plan_tokens = 0))
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS ledger_idempotency
        ON ledger (account_id, kind, idempotency_key) WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ledger_by_account ON ledger (account_id, seq)",
    "CREATE INDEX IF NOT EXISTS ledger_by_kind ON ledger (account_id, kind, seq)",
    "CREATE INDEX IF NOT EXISTS ledger_by_project ON ledger (account_id, project, seq)",
    "CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger (account_id, created_at)",
    "CREATE INDEX IF NOT EXISTS ledger_refunds ON ledger (refund_of) WHERE refund_of IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS purchases (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        source TEXT NOT NULL CHECK (source IN ('manual', 'auto_recharge')),
        pack TEXT NOT NULL,
        tokens INTEGER NOT NULL CHECK (tokens > 0),
        amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
        payment_method TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        failure_message TEXT,
        idempotency_key TEXT,
        request_hash TEXT,
        -- auto-recharge: the credit_version the evaluation saw
        crossing INTEGER,
        -- auto-recharge: the deduction that set it off, if one did
        triggered_by INTEGER,
        period TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS purchases_idempotency
        ON purchases (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS purchases_one_pending_recharge
        ON purchases (account_id) WHERE source = 'auto_recharge' AND status = 'pending'",
    "CREATE UNIQUE INDEX IF NOT EXISTS purchases_one_per_crossing
        ON purchases (account_id, crossing) WHERE source = 'auto_recharge' AND status <> 'failed'",
    "CREATE INDEX IF NOT EXISTS purchases_recharge_spend
        ON purchases (account_id, period) WHERE source = 'auto_recharge'",
    "CREATE INDEX IF NOT EXISTS purchases_pending ON purchases (created_at) WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS purchases_triggered_by
        ON purchases (triggered_by) WHERE triggered_by IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS auto_recharge (
        account_id TEXT PRIMARY KEY REFERENCES accounts (id),
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
    )",
    "CREATE INDEX IF NOT EXISTS auto_recharge_enabled ON auto_recharge (account_id) WHERE enabled = 1",
    "CREATE TABLE IF NOT EXISTS sandbox_charges (
        idempotency_key TEXT PRIMARY KEY,
        payment_method TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
     BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
     BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_moves_credits AFTER INSERT ON ledger
     BEGIN
        UPDATE accounts SET
            credit_balance = credit_balance
                + CASE NEW.kind WHEN 'deduction' THEN -NEW.credit_tokens ELSE NEW.credit_tokens END,
            credit_version = credit_version + (NEW.credit_tokens > 0)
        WHERE id = NEW.account_id;
        SELECT RAISE(ABORT, 'ledger row disagrees with the account balance')
        WHERE (SELECT credit_balance FROM accounts WHERE id = NEW.account_id)
              IS NOT NEW.credit_balance_after;
     END",
    "CREATE TRIGGER IF NOT EXISTS ledger_uses_plan AFTER INSERT ON ledger
     WHEN NEW.kind = 'deduction' AND NEW.plan_tokens > 0
     BEGIN
        INSERT OR IGNORE INTO plan_usage (account_id, period, used_tokens)
            VALUES (NEW.account_id, NEW.period, 0);
        UPDATE plan_usage SET used_tokens = used_tokens + NEW.plan_tokens
            WHERE account_id = NEW.account_id AND period = NEW.period;
     END",
    "CREATE TRIGGER IF NOT EXISTS ledger_restores_plan AFTER INSERT ON ledger
     WHEN NEW.kind = 'refund' AND NEW.plan_tokens > 0
     BEGIN
        UPDATE plan_usage SET used_tokens = used_tokens - NEW.plan_tokens
            WHERE account_id = NEW.account_id AND period = NEW.period;
     END",
    "CREATE TRIGGER IF NOT EXISTS ledger_completes_purchase AFTER INSERT ON ledger
     WHEN NEW.kind = 'purchase'
     BEGIN
        UPDATE purchases SET status = 'succeeded', updated_at = NEW.created_at
            WHERE id = NEW.purchase_id AND status = 'pending';
        UPDATE auto_recharge SET declines = 0, retry_after = NULL,
                last_error_code = NULL, last_error_message = NULL, last_error_at = NULL
            WHERE account_id = NEW.account_id AND NEW.source = 'auto_recharge';
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
    "CREATE TRIGGER IF NOT EXISTS accounts_free_plan_stops_recharge AFTER UPDATE OF plan ON accounts
     WHEN NEW.plan = 'free'
     BEGIN UPDATE auto_recharge SET enabled = 0 WHERE account_id = NEW.id; END",
    "CREATE TRIGGER IF NOT EXISTS accounts_new_payment_method_restarts_recharge
     AFTER UPDATE OF payment_method ON accounts
     BEGIN
        UPDATE auto_recharge SET declines = 0, retry_after = NULL,
                last_error_code = NULL, last_error_message = NULL, last_error_at = NULL
            WHERE account_id = NEW.id;
     END",
];

/// The newest schema version this build knows.
#[must_use]
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the schema up to date. Cheap when it already is: one read.
pub fn migrate(db: &dyn Database, now: Timestamp) -> Result<(), DbError> {
    let applied = match db.execute(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        &[],
    ) {
        Ok(rows) => rows.first().map_or(Ok(0), |r| r.int(0))?,
        Err(e) if e.message.contains("no such table") => {
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                &[],
            )?;
            0
        }
        Err(e) => return Err(e),
    };
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        for statement in migration.statements {
            db.execute(statement, &[])?;
        }
        db.execute(
            "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            &[
                Value::Integer(migration.version),
                Value::Integer(now.millis()),
            ],
        )?;
    }
    Ok(())
}
