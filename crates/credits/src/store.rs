//! Storage ports: the two small interfaces every backend implements.
//!
//! The domain speaks SQL to a [`Database`] one statement at a time, because on a
//! remote libSQL database each statement may run on its own: no transaction spans
//! two calls. Every rule that must hold under races lives inside one statement
//! (constraints, triggers, `INSERT ... SELECT ... RETURNING`).

use std::fmt;

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row; columns are addressed by position, in `SELECT`/`RETURNING` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// The integer in column `i`.
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        match self.0.get(i) {
            Some(Value::Integer(v)) => Ok(*v),
            other => Err(DbError::shape(i, "integer", other)),
        }
    }

    /// The integer in column `i`, or `None` for SQL NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// The text in column `i`.
    pub fn text(&self, i: usize) -> Result<&str, DbError> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(v),
            other => Err(DbError::shape(i, "text", other)),
        }
    }

    /// The text in column `i`, or `None` for SQL NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// A non-negative integer column as a token count.
    pub fn tokens(&self, i: usize) -> Result<u64, DbError> {
        let v = self.int(i)?;
        u64::try_from(v)
            .map_err(|_| DbError::other(format!("column {i}: negative token count {v}")))
    }
}

/// What kind of failure a backend reported. Each adapter classifies its own
/// backend's errors once; the domain decides on these, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A UNIQUE or PRIMARY KEY constraint refused the write: a racing twin got there first.
    UniqueViolation,
    /// A CHECK constraint refused the write (a guard like `credit_balance >= 0`).
    CheckViolation,
    /// Another writer held the database for longer than the adapter waits.
    Busy,
    /// A table or column the statement names does not exist (yet): the schema is older.
    MissingSchema,
    /// Anything else, including a trigger's `RAISE` (a broken invariant).
    Other,
}

/// What a backend reports when a statement fails. A failed statement changed nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("database: {message}")]
pub struct DbError {
    pub kind: DbErrorKind,
    pub message: String,
}

impl DbError {
    pub fn new(kind: DbErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A failure of no particular kind.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(DbErrorKind::Other, message)
    }

    fn shape(i: usize, want: &str, got: Option<&Value>) -> Self {
        Self::other(format!("column {i}: expected {want}, got {got:?}"))
    }

    #[must_use]
    pub fn is_unique_violation(&self) -> bool {
        self.kind == DbErrorKind::UniqueViolation
    }

    #[must_use]
    pub fn is_check_violation(&self) -> bool {
        self.kind == DbErrorKind::CheckViolation
    }
}

/// How much of a commit must reach the disk before a write returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the process; the newest commits may be lost to a power
    /// failure (`SQLite`: WAL with `synchronous = NORMAL`, automatic checkpoints
    /// every 10,000 WAL pages).
    Relaxed,
    /// Survives a power failure, with every commit before it (`synchronous = FULL`,
    /// a new connection's default).
    Full,
}

impl Durability {
    /// The statements that ask a `SQLite` connection for this durability, to run in
    /// order, one per call (Spin's `execute` runs one statement). `Full` is a new
    /// connection's default and needs nothing then; after `Relaxed` it sets
    /// `synchronous` back (the longer checkpoint interval may stay: a `FULL` commit
    /// waits for the whole WAL, so it loses nothing by it).
    ///
    /// A relaxed connection checkpoints every 10,000 WAL pages instead of
    /// `SQLite`'s 1,000. A checkpoint first makes the whole WAL durable, so its cost
    /// follows the WAL bytes written since the last one: the longer interval
    /// saves about a fifth in all, but puts a checkpoint in one deduction in about
    /// 1,500 instead of one in 150, and the WAL stays bounded (about 40 MB of 4 KiB
    /// pages). Measured in `crates/credits/BENCHMARKS.md`.
    #[must_use]
    pub fn sqlite_pragmas(self) -> &'static [&'static str] {
        match self {
            Self::Relaxed => &[
                "PRAGMA synchronous = NORMAL",
                "PRAGMA wal_autocheckpoint = 10000",
            ],
            Self::Full => &["PRAGMA synchronous = FULL"],
        }
    }
}

/// A SQL database: one statement with positional parameters (`?1`, `?2`, ...) per call.
pub trait Database {
    /// Runs one statement and returns its rows (empty for statements without any).
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;

    /// Asks for the durability of the writes that follow on this connection. A
    /// backend that decides durability itself (a remote libSQL) ignores it.
    fn set_durability(&self, _durability: Durability) -> Result<(), DbError> {
        Ok(())
    }
}

impl<T: Database + ?Sized> Database for &T {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        (**self).execute(sql, params)
    }

    fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        (**self).set_durability(durability)
    }
}

/// A key-value store for what can be rebuilt from the database (lookups, caches).
pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, DbError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), DbError>;
}

/// A key-value store that remembers nothing: every lookup falls through to SQL.
pub struct NoCache;

impl KeyValue for NoCache {
    fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, DbError> {
        Ok(None)
    }
    fn set(&self, _key: &str, _value: &[u8]) -> Result<(), DbError> {
        Ok(())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(v) => write!(f, "{v}"),
            Value::Real(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "{v:?}"),
            Value::Blob(v) => write!(f, "<{} bytes>", v.len()),
        }
    }
}
