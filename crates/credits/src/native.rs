//! The storage port on `rusqlite`, for native tests, benchmarks and tools.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};

use crate::store::{Database, DbError, Row, Value};

/// How long a statement waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// One `SQLite` connection.
pub struct NativeDb {
    conn: Connection,
}

impl NativeDb {
    /// Opens (or creates) a database file in WAL mode, waiting on busy writers.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        Ok(Self { conn })
    }

    /// A private in-memory database.
    pub fn in_memory() -> Result<Self, DbError> {
        Connection::open_in_memory()
            .map(|conn| Self { conn })
            .map_err(err)
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(err)`
fn err(e: rusqlite::Error) -> DbError {
    DbError::new(e.to_string())
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(*i),
        Value::Real(r) => V::Real(*r),
        Value::Text(t) => V::Text(t.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Database for NativeDb {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(params_from_iter(params.iter().map(to_sql)))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            out.push(Row((0..columns)
                .map(|i| from_sql(row.get_ref_unwrap(i)))
                .collect()));
        }
        Ok(out)
    }
}
