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
//!   the balance it leaves (`accounts_follow_ledger`): the balance always
//!   equals the sum of the ledger, and an entry can be neither skipped, replaced
//!   nor reordered;
//! - `credit_balance >= 0`: no overdraft, ever;
//! - the ledger is append-only, and its only uniqueness is its key, which a new
//!   entry never repeats, so no `INSERT OR REPLACE` can delete an entry;
//! - a purchase entry is written only by its purchase succeeding (the purchase's
//!   trigger writes it, at the seq the purchase names): one grant per purchase;
//!   one pending auto-recharge per account; a purchase keeps what was charged
//!   for, never returns to pending, stays succeeded, and is never deleted;
//! - every entry has its account; a refund returns at most what its deduction has
//!   left, each part to where it came from; plan tokens stay within their month
//!   and the allocation; an account starts empty and, once it has a ledger, is
//!   never replaced or deleted;
//! - idempotency keys are unique per account and route;
//! - a deduction that settles a hold needs that hold live and large enough, and
//!   ends it: a hold is settled at most once.

use crate::store::{Database, DbError, DbErrorKind};

/// One schema version: statements that each may run alone, any number of times.
pub struct Migration {
    pub version: i64,
    /// Columns added to tables of earlier versions, before the statements.
    pub columns: &'static [NewColumn],
    pub statements: &'static [&'static str],
    /// `PRAGMA user_version = <version>` (a pragma takes no parameters).
    pub mark: &'static str,
    /// The object this version's last `CREATE` makes. A backend without
    /// `user_version` finds where it stands by which of these exist, newest first,
    /// instead of running every statement again (which would bring back, for a
    /// moment, triggers later versions replaced).
    pub marker: &'static str,
}

/// A column added to an existing table. `ALTER TABLE ... ADD COLUMN` has no
/// `IF NOT EXISTS`, so whether the column is there is asked with `probe`.
pub struct NewColumn {
    /// A statement that fails only while the column is missing.
    pub probe: &'static str,
    pub add: &'static str,
}

/// What every ledger entry does, in its own statement (a trigger body): the
/// account's credit balance, plan use and newest seq follow it, the daily usage
/// rollup counts it, and its idempotency key is kept.
macro_rules! entry_effects {
    () => {
        "
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
            WHERE NEW.idempotency_key IS NOT NULL;"
    };
}

/// All migrations, oldest first. Version 1 was the pre-release schema; a database
/// still on it is refused (see [`migrate`]).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 2,
        columns: &[],
        statements: V2,
        mark: "PRAGMA user_version = 2",
        marker: "accounts_balance_follows_ledger",
    },
    Migration {
        version: 3,
        columns: &[NewColumn {
            probe: "SELECT hold_id FROM ledger LIMIT 0",
            add: "ALTER TABLE ledger ADD COLUMN hold_id TEXT",
        }],
        statements: V3,
        mark: "PRAGMA user_version = 3",
        marker: "holds_by_key",
    },
    Migration {
        version: 4,
        columns: &[
            NewColumn {
                probe: "SELECT sweep_attempts FROM purchases LIMIT 0",
                add: "ALTER TABLE purchases ADD COLUMN sweep_attempts INTEGER NOT NULL DEFAULT 0",
            },
            NewColumn {
                probe: "SELECT retry_at FROM purchases LIMIT 0",
                add: "ALTER TABLE purchases ADD COLUMN retry_at INTEGER",
            },
        ],
        statements: V4,
        mark: "PRAGMA user_version = 4",
        marker: "auto_recharge_events",
    },
    Migration {
        version: 5,
        columns: &[NewColumn {
            probe: "SELECT failure_code FROM purchases LIMIT 0",
            add: "ALTER TABLE purchases ADD COLUMN failure_code TEXT",
        }],
        statements: V5,
        mark: "PRAGMA user_version = 5",
        marker: "purchase_outcome_events",
    },
    Migration {
        version: 6,
        columns: &[
            NewColumn {
                probe: "SELECT available_after FROM ledger LIMIT 0",
                add: "ALTER TABLE ledger ADD COLUMN available_after INTEGER",
            },
            NewColumn {
                probe: "SELECT entry_seq FROM events LIMIT 0",
                add: "ALTER TABLE events ADD COLUMN entry_seq INTEGER",
            },
            NewColumn {
                probe: "SELECT subject_id FROM events LIMIT 0",
                add: "ALTER TABLE events ADD COLUMN subject_id TEXT",
            },
            NewColumn {
                probe: "SELECT threshold_tokens FROM events LIMIT 0",
                add: "ALTER TABLE events ADD COLUMN threshold_tokens INTEGER",
            },
            NewColumn {
                probe: "SELECT failure_message FROM events LIMIT 0",
                add: "ALTER TABLE events ADD COLUMN failure_message TEXT",
            },
        ],
        statements: V6,
        mark: "PRAGMA user_version = 6",
        marker: "hold_events",
    },
];

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
    // answer_tokens: what the first answer counted beyond its entry: a recharge it
    // set off, less what holds reserved (so it may be negative).
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
    concat!(
        "CREATE TRIGGER IF NOT EXISTS ledger_applies AFTER INSERT ON ledger
     BEGIN",
        entry_effects!(),
        "
        UPDATE purchases SET status = 'succeeded', granted_seq = NEW.seq, updated_at = NEW.created_at
            WHERE NEW.kind = 'purchase' AND id = NEW.purchase_id AND account_id = NEW.account_id
              AND status = 'pending' AND tokens = NEW.tokens;
        SELECT RAISE(ABORT, 'a purchase entry needs its pending purchase')
            WHERE NEW.kind = 'purchase' AND changes() = 0;
     END"
    ),
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

// Token holds, and the guards that refuse money moved outside the ledger by SQL
// a future bug might run. `holds` comes last among what writes need: every
// statement that writes a hold or settles one names it, so none runs before the
// trigger that ends a hold with its entry. Each guard is a trigger that RAISEs,
// since a conflict clause (`OR IGNORE`, `OR REPLACE`) can skip a CHECK but never
// a RAISE.
const V3: &[&str] = &[
    // Replaces accounts_balance_follows_ledger (dropped below): also an account
    // keeps its id, its allocation is its plan's (the catalog of API.md; see
    // `catalog::tests`), its plan use is never negative and never rises above the
    // allocation (a plan moved down may leave it above; it then only falls).
    "CREATE TRIGGER IF NOT EXISTS accounts_follow_ledger BEFORE UPDATE ON accounts
     WHEN NEW.id IS NOT OLD.id
       OR (NEW.monthly_tokens IS NOT OLD.monthly_tokens AND NEW.monthly_tokens IS NOT
           CASE NEW.plan WHEN 'free' THEN 100000 WHEN 'pro' THEN 2000000
                         WHEN 'team' THEN 10000000 END)
       OR ((NEW.credit_balance IS NOT OLD.credit_balance OR NEW.plan_used IS NOT OLD.plan_used
            OR NEW.plan_period IS NOT OLD.plan_period OR NEW.ledger_seq IS NOT OLD.ledger_seq)
           AND (NEW.ledger_seq IS NOT OLD.ledger_seq + 1
                OR NEW.credit_balance IS NOT (SELECT credit_balance_after FROM ledger
                                              WHERE account_id = NEW.id AND seq = NEW.ledger_seq)
                OR NEW.plan_used < 0
                OR (NEW.plan_used > NEW.monthly_tokens
                    AND (NEW.plan_used > OLD.plan_used OR NEW.plan_period IS NOT OLD.plan_period))))
     BEGIN SELECT RAISE(ABORT, 'balances move only with the next ledger entry'); END",
    "DROP TRIGGER IF EXISTS accounts_balance_follows_ledger",
    // A new account has nothing; an account with a ledger is never replaced or deleted.
    "CREATE TRIGGER IF NOT EXISTS accounts_start_empty BEFORE INSERT ON accounts
     WHEN NEW.credit_balance IS NOT 0 OR NEW.plan_used IS NOT 0 OR NEW.ledger_seq IS NOT 0
       OR NEW.plan_period IS NOT NULL OR EXISTS (SELECT 1 FROM accounts WHERE id = NEW.id)
     BEGIN SELECT RAISE(ABORT, 'an account starts empty, once'); END",
    "CREATE TRIGGER IF NOT EXISTS accounts_keep_ledger BEFORE DELETE ON accounts
     WHEN EXISTS (SELECT 1 FROM ledger WHERE account_id = OLD.id)
     BEGIN SELECT RAISE(ABORT, 'an account with a ledger is never deleted'); END",
    // A purchase keeps what was charged for, starts pending, succeeds only with
    // the entry that grants it, stays succeeded, and is never deleted.
    "CREATE TRIGGER IF NOT EXISTS purchases_keep_terms BEFORE UPDATE ON purchases
     WHEN NEW.id IS NOT OLD.id OR NEW.account_id IS NOT OLD.account_id
       OR NEW.source IS NOT OLD.source OR NEW.pack IS NOT OLD.pack
       OR NEW.tokens IS NOT OLD.tokens OR NEW.amount_cents IS NOT OLD.amount_cents
       OR (OLD.status = 'succeeded'
           AND (NEW.status IS NOT 'succeeded' OR NEW.granted_seq IS NOT OLD.granted_seq))
       OR (NEW.status = 'succeeded' AND OLD.status IS NOT 'succeeded' AND NOT EXISTS (
              SELECT 1 FROM ledger WHERE account_id = NEW.account_id AND seq = NEW.granted_seq
                                     AND kind = 'purchase' AND purchase_id = NEW.id))
     BEGIN SELECT RAISE(ABORT, 'a purchase keeps its terms and succeeds only with its grant'); END",
    "CREATE TRIGGER IF NOT EXISTS purchases_start_pending BEFORE INSERT ON purchases
     WHEN NEW.status IS NOT 'pending' OR NEW.granted_seq IS NOT NULL
       OR EXISTS (SELECT 1 FROM purchases WHERE id = NEW.id)
     BEGIN SELECT RAISE(ABORT, 'a purchase starts pending, once'); END",
    "CREATE TRIGGER IF NOT EXISTS purchases_no_delete BEFORE DELETE ON purchases
     BEGIN SELECT RAISE(ABORT, 'purchases are never deleted'); END",
    // A settlement is the deduction that names its hold; it ends the hold in the
    // same statement, once, and only while the hold is live and covers it.
    "CREATE TRIGGER IF NOT EXISTS ledger_settles_hold AFTER INSERT ON ledger
     WHEN NEW.hold_id IS NOT NULL
     BEGIN
        UPDATE holds SET status = 'settled', settled_tokens = NEW.tokens, settled_seq = NEW.seq,
                         end_key = NEW.idempotency_key, end_hash = NEW.request_hash,
                         ended_at = NEW.created_at
        WHERE account_id = NEW.account_id AND id = NEW.hold_id AND status = 'held'
          AND expires_at > NEW.created_at AND tokens >= NEW.tokens
          AND plan_tokens >= NEW.plan_tokens AND period = NEW.period AND NEW.kind = 'deduction';
        SELECT RAISE(ABORT, 'a settlement needs its live hold') WHERE changes() = 0;
     END",
    // period: the month whose allocation plan_tokens reserve. A hold reserves
    // while status = 'held' and expires_at is ahead; 'expired' only records it.
    // answer_available: what the creating request answered, for its replays.
    // end_key/end_hash: the idempotency key and body of the settle or void.
    "CREATE TABLE IF NOT EXISTS holds (
        account_id TEXT NOT NULL,
        id TEXT NOT NULL,
        tokens INTEGER NOT NULL CHECK (tokens > 0),
        plan_tokens INTEGER NOT NULL CHECK (plan_tokens >= 0),
        credit_tokens INTEGER NOT NULL CHECK (credit_tokens >= 0),
        period TEXT NOT NULL,
        operation TEXT NOT NULL,
        project TEXT,
        session TEXT,
        status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'voided', 'expired')),
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        create_key TEXT,
        create_hash TEXT,
        answer_available INTEGER,
        settled_tokens INTEGER,
        settled_seq INTEGER,
        end_key TEXT,
        end_hash TEXT,
        end_available INTEGER,
        ended_at INTEGER,
        PRIMARY KEY (account_id, id),
        CHECK (plan_tokens + credit_tokens = tokens)
    ) WITHOUT ROWID",
    // A hold keeps its terms, and once ended stays ended: settled once at most.
    "CREATE TRIGGER IF NOT EXISTS holds_keep_terms BEFORE UPDATE ON holds
     WHEN NEW.account_id IS NOT OLD.account_id OR NEW.id IS NOT OLD.id
       OR NEW.tokens IS NOT OLD.tokens OR NEW.plan_tokens IS NOT OLD.plan_tokens
       OR NEW.credit_tokens IS NOT OLD.credit_tokens OR NEW.period IS NOT OLD.period
       OR NEW.expires_at IS NOT OLD.expires_at
       OR (OLD.status IS NOT 'held' AND NEW.status IS NOT OLD.status)
     BEGIN SELECT RAISE(ABORT, 'a hold keeps its terms and ends once'); END",
    "CREATE INDEX IF NOT EXISTS holds_live ON holds (account_id, expires_at) WHERE status = 'held'",
    "CREATE UNIQUE INDEX IF NOT EXISTS holds_by_key
        ON holds (account_id, create_key) WHERE create_key IS NOT NULL",
];

// Events to the platform, recorded by the statement that makes the change they
// report (here, its triggers), and the stale-purchase sweep's backoff.
const V4: &[&str] = &[
    "DROP TRIGGER IF EXISTS ledger_entry_rules",
    // Every entry has its account; a refund returns at most what its deduction has
    // left, each part to where it came from; a deduction's plan tokens belong to
    // its own month or an earlier one, and those of an ended month are taken only
    // by settling a hold made in it. (Version 3 had a first draft of this guard,
    // replaced here: a guard may be missing for a moment, never doubled.)
    "CREATE TRIGGER IF NOT EXISTS ledger_entry_rules BEFORE INSERT ON ledger
     BEGIN
        SELECT RAISE(ABORT, 'an entry needs its account')
        WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE id = NEW.account_id);
        SELECT RAISE(ABORT, 'a refund returns at most what its deduction has left')
        WHERE NEW.kind = 'refund' AND NOT EXISTS (
            SELECT 1 FROM ledger d
            WHERE d.account_id = NEW.account_id AND d.seq = NEW.refund_of AND d.kind = 'deduction'
              AND (SELECT NEW.tokens + COALESCE(SUM(r.tokens), 0) <= d.tokens
                          AND NEW.credit_tokens + COALESCE(SUM(r.credit_tokens), 0) <= d.credit_tokens
                          AND NEW.plan_tokens + COALESCE(SUM(r.plan_tokens), 0) <= d.plan_tokens
                   FROM ledger r
                   WHERE r.account_id = d.account_id AND r.refund_of = d.seq));
        SELECT RAISE(ABORT, 'a deduction never takes plan tokens of a month after its own time')
        WHERE NEW.kind = 'deduction' AND NEW.plan_tokens > 0
          AND NEW.period > strftime('%Y-%m', NEW.created_at / 1000, 'unixepoch');
        SELECT RAISE(ABORT, 'plan tokens of an ended month are taken only by settling its hold')
        WHERE NEW.kind = 'deduction' AND NEW.plan_tokens > 0 AND NEW.hold_id IS NULL
          AND NEW.period < (SELECT plan_period FROM accounts WHERE id = NEW.account_id);
     END",

    // id: the global order events are listed and delivered in; sequence counts
    // each account's events from 1. once_key makes "once per month" a constraint.
    // claimed_until: an instance is sending it; no other does until then.
    "CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        account_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        once_key TEXT,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        claimed_until INTEGER,
        last_error TEXT,
        UNIQUE (account_id, sequence)
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_once ON events (account_id, once_key)
        WHERE once_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_due ON events (next_attempt_at) WHERE status = 'pending'",
    // credits.low: a deduction took the credit balance from at least the threshold
    // to below it (once per crossing, enabled or not); credits.depleted: nothing is
    // available after it, holds counted. The WHEN keeps both off the path of a
    // deduction that records nothing: plan-only, or no threshold crossed, and no
    // hold probe unless plan and credits are nearly gone.
    "CREATE TRIGGER IF NOT EXISTS ledger_events AFTER INSERT ON ledger
     WHEN NEW.kind = 'deduction' AND (
          (NEW.credit_tokens > 0 AND NEW.credit_balance_after < (
               SELECT threshold_tokens FROM auto_recharge WHERE account_id = NEW.account_id)
           AND NEW.credit_balance_after + NEW.credit_tokens >= (
               SELECT threshold_tokens FROM auto_recharge WHERE account_id = NEW.account_id))
       OR (NEW.hold_id IS NULL AND NEW.credit_balance_after + COALESCE(NEW.plan_remaining_after, 0) <= (
               SELECT COALESCE(SUM(tokens), 0) FROM holds
               WHERE account_id = NEW.account_id AND status = 'held' AND expires_at > NEW.created_at)))
     BEGIN
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        SELECT NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id), 'credits.low',
               json_object('balance_tokens', NEW.credit_balance_after,
                           'threshold_tokens', s.threshold_tokens,
                           'transaction_id', printf('tx_%012d', NEW.seq)),
               NEW.created_at, NEW.created_at
        FROM auto_recharge s
        WHERE s.account_id = NEW.account_id AND NEW.credit_tokens > 0
          AND NEW.credit_balance_after < s.threshold_tokens
          AND NEW.credit_balance_after + NEW.credit_tokens >= s.threshold_tokens;
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        SELECT NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id), 'credits.depleted',
               json_object('available_tokens', 0, 'transaction_id', printf('tx_%012d', NEW.seq)),
               NEW.created_at, NEW.created_at
        FROM (SELECT COALESCE(SUM(CASE WHEN period = NEW.period THEN plan_tokens ELSE 0 END), 0) AS plan_held,
                     COALESCE(SUM(credit_tokens), 0) AS credit_held
              FROM holds WHERE account_id = NEW.account_id AND status = 'held'
                           AND expires_at > NEW.created_at) AS h
        WHERE NEW.hold_id IS NULL
          AND MAX(0, COALESCE(NEW.plan_remaining_after, 0) - h.plan_held)
              + NEW.credit_balance_after - h.credit_held <= 0;
     END",
    "CREATE TRIGGER IF NOT EXISTS holds_events AFTER INSERT ON holds
     WHEN NEW.answer_available = 0
     BEGIN
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        VALUES (NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id), 'credits.depleted',
                json_object('available_tokens', 0, 'hold_id', NEW.id), NEW.created_at, NEW.created_at);
     END",
    // A purchase's outcome; an auto-recharge decline is auto_recharge.failed
    // (authentication_required included).
    "CREATE TRIGGER IF NOT EXISTS purchases_events AFTER UPDATE OF status ON purchases
     WHEN OLD.status = 'pending' AND NEW.status IN ('succeeded', 'failed')
     BEGIN
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        VALUES (NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id),
               CASE NEW.source WHEN 'manual' THEN 'purchase.' ELSE 'auto_recharge.' END || NEW.status,
               json_object('purchase', json_object(
                   'id', NEW.id, 'source', NEW.source, 'pack', NEW.pack, 'tokens', NEW.tokens,
                   'amount_eur', printf('%d.%02d', NEW.amount_cents / 100, NEW.amount_cents % 100),
                   'status', NEW.status,
                   'transaction_id', CASE WHEN NEW.granted_seq IS NOT NULL
                                          THEN printf('tx_%012d', NEW.granted_seq) END,
                   'failure_message', NEW.failure_message)),
               NEW.updated_at, NEW.updated_at);
     END",
    "CREATE TRIGGER IF NOT EXISTS auto_recharge_events AFTER UPDATE OF enabled ON auto_recharge
     WHEN OLD.enabled = 1 AND NEW.enabled = 0 AND NEW.declines >= 3
     BEGIN
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        VALUES (NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id), 'auto_recharge.disabled',
               json_object('settings', json_object(
                   'enabled', json('false'), 'pack', NEW.pack,
                   'threshold_tokens', NEW.threshold_tokens,
                   'monthly_limit_eur', printf('%d.%02d', NEW.monthly_limit_cents / 100,
                                               NEW.monthly_limit_cents % 100),
                   'last_error', json_object('code', NEW.last_error_code,
                                             'message', NEW.last_error_message))),
               NEW.last_error_at, NEW.last_error_at);
     END",
];

// Leaner per request (on Spin each request parses the schema and compiles every
// trigger its statement may fire): a grant starts from its purchase, whose
// trigger writes the entry, so a deduction's statement no longer compiles the
// purchase triggers; the deduction events drop the WHEN that repeated their
// bodies. Each replacement is created before the old one is dropped: where each
// statement runs alone, the moment with both refuses writes (two balance
// updates for one entry break accounts_follow_ledger), never doubles them.
const V5: &[&str] = &[
    // Version 4's ledger_entry_rules, and a purchase entry is the grant its
    // purchase's trigger writes (purchases_grant): it needs the purchase already
    // succeeded with this entry's seq and tokens, so no raw entry grants anything.
    "CREATE TRIGGER IF NOT EXISTS ledger_rules BEFORE INSERT ON ledger
     BEGIN
        SELECT RAISE(ABORT, 'an entry needs its account')
        WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE id = NEW.account_id);
        SELECT RAISE(ABORT, 'a purchase entry is written only by its purchase succeeding')
        WHERE NEW.kind = 'purchase' AND NOT EXISTS (
            SELECT 1 FROM purchases WHERE id = NEW.purchase_id AND account_id = NEW.account_id
              AND status = 'succeeded' AND granted_seq = NEW.seq AND tokens = NEW.tokens);
        SELECT RAISE(ABORT, 'a refund returns at most what its deduction has left')
        WHERE NEW.kind = 'refund' AND NOT EXISTS (
            SELECT 1 FROM ledger d
            WHERE d.account_id = NEW.account_id AND d.seq = NEW.refund_of AND d.kind = 'deduction'
              AND (SELECT NEW.tokens + TOTAL(r.tokens) <= d.tokens
                          AND NEW.credit_tokens + TOTAL(r.credit_tokens) <= d.credit_tokens
                          AND NEW.plan_tokens + TOTAL(r.plan_tokens) <= d.plan_tokens
                   FROM ledger r
                   WHERE r.account_id = d.account_id AND r.refund_of = d.seq));
        SELECT RAISE(ABORT, 'a deduction never takes plan tokens of a month after its own time')
        WHERE NEW.kind = 'deduction' AND NEW.plan_tokens > 0
          AND NEW.period > strftime('%Y-%m', NEW.created_at / 1000, 'unixepoch');
        SELECT RAISE(ABORT, 'plan tokens of an ended month are taken only by settling its hold')
        WHERE NEW.kind = 'deduction' AND NEW.plan_tokens > 0 AND NEW.hold_id IS NULL
          AND NEW.period < (SELECT plan_period FROM accounts WHERE id = NEW.account_id);
     END",
    "DROP TRIGGER IF EXISTS ledger_entry_rules",
    // Version 2's ledger_applies without the grant: the balance, the plan use,
    // the usage rollup and the idempotency key follow each entry.
    concat!(
        "CREATE TRIGGER IF NOT EXISTS ledger_records AFTER INSERT ON ledger
     BEGIN",
        entry_effects!(),
        "
     END"
    ),
    "DROP TRIGGER IF EXISTS ledger_applies",
    // A purchase keeps what was charged for and starts pending (purchases_start_pending);
    // it never returns to pending, stays succeeded once it is, and names its
    // grant's seq only by succeeding. (Failed may still become succeeded: money a
    // provider took late is granted.)
    "CREATE TRIGGER IF NOT EXISTS purchases_terms BEFORE UPDATE ON purchases
     WHEN NEW.id IS NOT OLD.id OR NEW.account_id IS NOT OLD.account_id
       OR NEW.source IS NOT OLD.source OR NEW.pack IS NOT OLD.pack
       OR NEW.tokens IS NOT OLD.tokens OR NEW.amount_cents IS NOT OLD.amount_cents
       OR (NEW.status = 'pending' AND OLD.status IS NOT 'pending')
       OR (OLD.status = 'succeeded' AND NEW.status IS NOT 'succeeded')
       OR (NEW.granted_seq IS NOT OLD.granted_seq
           AND NOT (NEW.status = 'succeeded' AND OLD.status IS NOT 'succeeded'))
     BEGIN SELECT RAISE(ABORT, 'a purchase keeps its terms, never returns to pending and stays succeeded'); END",
    "DROP TRIGGER IF EXISTS purchases_keep_terms",
    // The grant: a purchase succeeds in the statement that writes its entry, at
    // the seq it names (accounts_follow_ledger takes only the next one; a missing
    // seq or account fails NOT NULL), so it is granted exactly once.
    "CREATE TRIGGER IF NOT EXISTS purchases_grant AFTER UPDATE OF status ON purchases
     WHEN NEW.status = 'succeeded' AND OLD.status IS NOT 'succeeded'
     BEGIN
        INSERT INTO ledger (account_id, seq, kind, tokens, plan_tokens, credit_tokens, purchase_id,
                            source, pack, amount_cents, credit_balance_after, created_at)
        VALUES (NEW.account_id, NEW.granted_seq, 'purchase', NEW.tokens, 0, NEW.tokens, NEW.id,
                NEW.source, NEW.pack, NEW.amount_cents,
                (SELECT credit_balance FROM accounts WHERE id = NEW.account_id) + NEW.tokens,
                NEW.updated_at);
     END",
    // Version 4's ledger_events: credits.low once per crossing of the threshold
    // (enabled or not), credits.depleted when nothing is available after a
    // deduction, holds counted. Without a WHEN that repeats the bodies: each is
    // one indexed probe on a deduction that records nothing.
    "CREATE TRIGGER IF NOT EXISTS deduction_events AFTER INSERT ON ledger
     WHEN NEW.kind = 'deduction'
     BEGIN
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        SELECT NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id), 'credits.low',
               json_object('balance_tokens', NEW.credit_balance_after, 'threshold_tokens', threshold_tokens,
                           'transaction_id', printf('tx_%012d', NEW.seq)),
               NEW.created_at, NEW.created_at
        FROM auto_recharge WHERE account_id = NEW.account_id
          AND NEW.credit_balance_after < threshold_tokens
          AND NEW.credit_balance_after + NEW.credit_tokens >= threshold_tokens;
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        SELECT NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id), 'credits.depleted',
               json_object('available_tokens', 0, 'transaction_id', printf('tx_%012d', NEW.seq)),
               NEW.created_at, NEW.created_at
        FROM (SELECT TOTAL(IIF(period = NEW.period, plan_tokens, 0)) AS plan, TOTAL(credit_tokens) AS credit
              FROM holds WHERE account_id = NEW.account_id AND status = 'held' AND expires_at > NEW.created_at)
        WHERE NEW.hold_id IS NULL
          AND MAX(0, IFNULL(NEW.plan_remaining_after, 0) - plan) + NEW.credit_balance_after - credit <= 0;
     END",
    "DROP TRIGGER IF EXISTS ledger_events",
    // Version 2's purchases_decline_counts, for declines only: failure_code
    // 'canceled' is an auto-recharge the sweep dropped uncharged because the
    // account's settings no longer allowed it; the code of a decline (NULL:
    // payment_failed) becomes the settings' last_error code. Dropped before it is
    // created again: a decline in between goes uncounted, never counted twice.
    "DROP TRIGGER IF EXISTS purchases_decline_counts",
    "CREATE TRIGGER IF NOT EXISTS purchases_decline_counts AFTER UPDATE OF status ON purchases
     WHEN OLD.status = 'pending' AND NEW.status = 'failed' AND NEW.source = 'auto_recharge'
       AND NEW.failure_code IS NOT 'canceled'
     BEGIN
        UPDATE auto_recharge SET
            declines = declines + 1,
            retry_after = NEW.updated_at + 86400000,
            enabled = IIF(declines >= 2, 0, enabled),
            last_error_code = IFNULL(NEW.failure_code, 'payment_failed'),
            last_error_message = IIF(declines >= 2,
                'Auto-recharge was disabled after 3 declined payments in a row: ', '')
                || IFNULL(NEW.failure_message, 'declined'),
            last_error_at = NEW.updated_at
        WHERE account_id = NEW.account_id;
     END",
    // Version 4's purchases_events, also for money taken after a purchase was
    // failed (it is granted then). Created after purchases_decline_counts: SQLite
    // runs the newer trigger first, so a decline's event comes before the
    // auto_recharge.disabled it may cause.
    "CREATE TRIGGER IF NOT EXISTS purchase_outcome_events AFTER UPDATE OF status ON purchases
     WHEN NEW.status IN ('succeeded', 'failed') AND OLD.status IS NOT NEW.status
     BEGIN
        INSERT INTO events (account_id, sequence, type, data, created_at, next_attempt_at)
        VALUES (NEW.account_id, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id),
               IIF(NEW.source = 'manual', 'purchase.', 'auto_recharge.') || NEW.status,
               json_object('purchase', json_object(
                   'id', NEW.id, 'source', NEW.source, 'pack', NEW.pack, 'tokens', NEW.tokens,
                   'amount_eur', printf('%d.%02d', NEW.amount_cents / 100, NEW.amount_cents % 100),
                   'status', NEW.status,
                   'transaction_id', IIF(NEW.granted_seq IS NULL, NULL, printf('tx_%012d', NEW.granted_seq)),
                   'failure_message', NEW.failure_message)),
               NEW.updated_at, NEW.updated_at);
     END",
    "DROP TRIGGER IF EXISTS purchases_events",
];

// Leaner again: the events triggers record what an event is about (the entry, the
// purchase or the hold, and what may change later: the threshold crossed, the
// failure message) and leave `data` empty; `data` is built when the event is read
// (`events::event_data`). Every new connection parses the triggers, and every
// deduction compiles its events trigger, so the JSON is built where it is read,
// rarely. A deduction also records what is available after it, holds counted
// (`available_after`), so its events trigger needs no sum over the holds.
// Each old trigger is dropped before its successor is created: where each
// statement runs alone, an event may go unrecorded for that moment, never twice.
// (An instance of version 5 still running after this writes deductions without
// `available_after`, which record no `credits.depleted`, and cannot read the
// events recorded this way: it leaves them to the new instances. README,
// "Upgrading from schema v5".)
const V6: &[&str] = &[
    // What version 5 dropped after its marker, should it have stopped in between.
    "DROP TRIGGER IF EXISTS purchases_events",
    "DROP TRIGGER IF EXISTS deduction_events",
    "CREATE TRIGGER IF NOT EXISTS entry_events AFTER INSERT ON ledger
     WHEN NEW.kind = 'deduction'
     BEGIN
        INSERT INTO events (account_id, sequence, type, entry_seq, threshold_tokens, data,
                            created_at, next_attempt_at)
        SELECT NEW.account_id, (SELECT IFNULL(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id),
               'credits.low', NEW.seq, threshold_tokens, '', NEW.created_at, NEW.created_at
        FROM auto_recharge WHERE account_id = NEW.account_id
          AND NEW.credit_balance_after < threshold_tokens
          AND NEW.credit_balance_after + NEW.credit_tokens >= threshold_tokens;
        INSERT INTO events (account_id, sequence, type, entry_seq, data, created_at, next_attempt_at)
        SELECT NEW.account_id, (SELECT IFNULL(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id),
               'credits.depleted', NEW.seq, '', NEW.created_at, NEW.created_at
        WHERE NEW.available_after = 0;
     END",
    "DROP TRIGGER IF EXISTS purchase_outcome_events",
    "CREATE TRIGGER IF NOT EXISTS purchase_events AFTER UPDATE OF status ON purchases
     WHEN NEW.status IN ('succeeded', 'failed') AND OLD.status IS NOT NEW.status
     BEGIN
        INSERT INTO events (account_id, sequence, type, subject_id, failure_message, data,
                            created_at, next_attempt_at)
        VALUES (NEW.account_id, (SELECT IFNULL(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id),
               IIF(NEW.source = 'manual', 'purchase.', 'auto_recharge.') || NEW.status,
               NEW.id, NEW.failure_message, '', NEW.updated_at, NEW.updated_at);
     END",
    "DROP TRIGGER IF EXISTS holds_events",
    "CREATE TRIGGER IF NOT EXISTS hold_events AFTER INSERT ON holds
     WHEN NEW.answer_available = 0
     BEGIN
        INSERT INTO events (account_id, sequence, type, subject_id, data, created_at, next_attempt_at)
        VALUES (NEW.account_id, (SELECT IFNULL(MAX(sequence), 0) + 1 FROM events WHERE account_id = NEW.account_id),
                'credits.depleted', NEW.id, '', NEW.created_at, NEW.created_at);
     END",
];

/// The newest schema version this build knows.
#[must_use]
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the schema up to date: switches the file to WAL (a setting the file
/// keeps), then applies what is missing.
pub fn migrate(db: &dyn Database) -> Result<(), DbError> {
    migrate_to(db, latest_version())
}

/// [`migrate`], stopping at `target`: how the tests and the benchmark build the
/// schema of an earlier version.
pub fn migrate_to(db: &dyn Database, target: i64) -> Result<(), DbError> {
    use_write_ahead_log(db)?;
    // The version lives in the file's header, not in a table: nothing more to parse
    // per connection. A backend without it goes by the markers (see `version`).
    if recorded_version(db) == 0 && has_pre_release_schema(db)? {
        return Err(DbError::other(
            "this database has the pre-release schema (version 1), which is not upgraded; \
             start from a new database file",
        ));
    }
    let applied = version(db);
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > applied && m.version <= target)
    {
        // Where the backend has transactions, the new schema appears at once: no
        // writer may see the ledger before its triggers. Where each statement runs
        // alone, the order of the statements keeps that window shut (see `V2`).
        // Still busy after the wait is not a backend without transactions: going on
        // without one would migrate beside another instance's transaction.
        let atomic = match db.execute("BEGIN IMMEDIATE", &[]) {
            Err(e) if e.kind == DbErrorKind::Busy => return Err(e),
            begun => begun.is_ok(),
        };
        // Another instance may have migrated while this one waited for the lock.
        if atomic && version(db) >= migration.version {
            db.execute("COMMIT", &[])?;
            continue;
        }
        let applied = migration
            .columns
            .iter()
            .try_for_each(|column| add_column(db, column))
            .and_then(|()| {
                migration
                    .statements
                    .iter()
                    .try_for_each(|statement| db.execute(statement, &[]).map(drop))
            });
        if let Err(e) = applied {
            if atomic {
                let _ = db.execute("ROLLBACK", &[]);
            }
            return Err(e);
        }
        // Without user_version (a remote backend), the next migration finds this
        // version by its marker.
        let _ = db.execute(migration.mark, &[]);
        if atomic {
            db.execute("COMMIT", &[])?;
        }
    }
    Ok(())
}

/// The schema version in the file's header; on a backend without it (or a new
/// file), the newest version whose marker exists, 0 if none.
fn version(db: &dyn Database) -> i64 {
    let recorded = recorded_version(db);
    if recorded > 0 {
        return recorded;
    }
    MIGRATIONS
        .iter()
        .rev()
        .find(|m| {
            db.execute(
                "SELECT 1 FROM sqlite_schema WHERE name = ?1",
                &[m.marker.into()],
            )
            .is_ok_and(|rows| !rows.is_empty())
        })
        .map_or(0, |m| m.version)
}

/// `PRAGMA user_version`; 0 for a new file or a backend without it.
fn recorded_version(db: &dyn Database) -> i64 {
    db.execute("PRAGMA user_version", &[])
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.int(0).ok()))
        .unwrap_or(0)
}

/// Adds a column unless it is there. Two instances racing without transactions
/// may both try; the loser's failure is fine once the column exists.
fn add_column(db: &dyn Database, column: &NewColumn) -> Result<(), DbError> {
    if db.execute(column.probe, &[]).is_ok() {
        return Ok(());
    }
    match db.execute(column.add, &[]) {
        Err(e) if db.execute(column.probe, &[]).is_err() => Err(e),
        _ => Ok(()),
    }
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
