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
        u64::try_from(v).map_err(|_| DbError::new(format!("column {i}: negative token count {v}")))
    }
}

/// What a backend reports when a statement fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("database: {message}")]
pub struct DbError {
    pub message: String,
}

impl DbError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    fn shape(i: usize, want: &str, got: Option<&Value>) -> Self {
        Self::new(format!("column {i}: expected {want}, got {got:?}"))
    }

    /// A UNIQUE constraint refused the write: a racing twin got there first.
    pub fn is_unique_violation(&self) -> bool {
        self.message.contains("UNIQUE constraint failed")
    }

    /// A CHECK constraint refused the write (a guard like `credit_balance >= 0`).
    pub fn is_check_violation(&self) -> bool {
        self.message.contains("CHECK constraint failed")
    }
}

/// A SQL database: one statement with positional parameters (`?1`, `?2`, ...) per call.
pub trait Database {
    /// Runs one statement and returns its rows (empty for statements without any).
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
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
