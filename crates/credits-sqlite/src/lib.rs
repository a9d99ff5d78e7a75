//! The domain's storage port on `rusqlite`, for native tests, benchmarks and tools.
//!
//! A connection is opened the way Spin's `SQLite` host opens one (`Connection::open`)
//! and then set up as the Spin adapter sets it up (its busy wait), so native figures
//! and behaviour match a deployment: the schema's migration switches the file to
//! WAL, and the domain asks for durability per write.

use std::cell::Cell;
use std::path::Path;

use credits::{
    Database, DbError, DbErrorKind, Durability, Row, SQLITE_BUSY_WAIT, Value, wait_while_busy,
};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ffi, params_from_iter};

/// One `SQLite` connection.
pub struct NativeDb {
    conn: Connection,
    durability: Cell<Durability>,
}

impl NativeDb {
    /// Opens (or creates) a database file as Spin does, then sets the busy wait the
    /// Spin adapter sets ([`SQLITE_BUSY_WAIT`]).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path).map_err(classify)?;
        conn.execute_batch(SQLITE_BUSY_WAIT).map_err(classify)?;
        Ok(Self::wrap(conn))
    }

    /// A private in-memory database.
    pub fn in_memory() -> Result<Self, DbError> {
        Connection::open_in_memory()
            .map(Self::wrap)
            .map_err(classify)
    }

    fn wrap(conn: Connection) -> Self {
        Self {
            conn,
            // SQLite's default for a new connection.
            durability: Cell::new(Durability::Full),
        }
    }

    /// The connection, for tests that need raw SQL beyond the port.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Sorts a rusqlite error into the kinds the domain decides on.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(classify)`
pub fn classify(e: rusqlite::Error) -> DbError {
    let message = e.to_string();
    let kind = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            // Not `DatabaseLocked`: a lock this connection holds itself never clears
            // by waiting (and Spin's adapter reads it as other, too).
            ErrorCode::DatabaseBusy => DbErrorKind::Busy,
            ErrorCode::ConstraintViolation => match failure.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    DbErrorKind::UniqueViolation
                }
                ffi::SQLITE_CONSTRAINT_CHECK => DbErrorKind::CheckViolation,
                _ => DbErrorKind::Other,
            },
            _ if is_missing_schema(&message) => DbErrorKind::MissingSchema,
            _ => DbErrorKind::Other,
        },
        _ if is_missing_schema(&message) => DbErrorKind::MissingSchema,
        _ => DbErrorKind::Other,
    };
    DbError::new(kind, message)
}

/// `SQLite` reports an unknown table or column only in its message (`SQLITE_ERROR`).
fn is_missing_schema(message: &str) -> bool {
    message.contains("no such table") || message.contains("no such column")
}

fn to_sql(v: &Value) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match v {
        Value::Null => ValueRef::Null,
        Value::Integer(i) => ValueRef::Integer(*i),
        Value::Real(r) => ValueRef::Real(*r),
        Value::Text(t) => ValueRef::Text(t.as_bytes()),
        Value::Blob(b) => ValueRef::Blob(b),
    })
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
        wait_while_busy(|| self.execute_once(sql, params))
    }

    fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        if self.durability.get() != durability {
            for pragma in durability.sqlite_pragmas() {
                wait_while_busy(|| self.conn.execute_batch(pragma).map_err(classify))?;
            }
            self.durability.set(durability);
        }
        Ok(())
    }
}

impl NativeDb {
    fn execute_once(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(classify)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(params_from_iter(params.iter().map(to_sql)))
            .map_err(classify)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(classify)? {
            out.push(Row((0..columns)
                .map(|i| from_sql(row.get_ref_unwrap(i)))
                .collect()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn pragma(db: &NativeDb, name: &str) -> i64 {
        db.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn each_durability_pragma_is_one_statement_as_spin_runs_them() {
        let db = NativeDb::in_memory().unwrap();
        for durability in [Durability::Relaxed, Durability::Full] {
            for sql in durability.sqlite_pragmas() {
                // rusqlite's `prepare`, which Spin's host uses, refuses a second statement.
                db.conn.prepare(sql).unwrap();
            }
        }
    }

    #[test]
    fn a_writer_kept_waiting_tries_again_until_the_lock_is_free() {
        let dir = std::env::temp_dir().join(format!("credits-sqlite-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("busy.db");
        let _ = std::fs::remove_file(&path);
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); BEGIN IMMEDIATE")
            .unwrap();
        let waiter = NativeDb::open(&path).unwrap();
        assert_eq!(pragma(&waiter, "busy_timeout"), 10);

        // One try: SQLite's own waits end after 10 ms, not rusqlite's 5 s.
        let started = Instant::now();
        let err = waiter
            .execute_once("INSERT INTO t VALUES (1)", &[])
            .unwrap_err();
        assert_eq!(err.kind, DbErrorKind::Busy);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );

        // The statement: tried again until the holder commits.
        let hold = Duration::from_millis(200);
        let started = Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(hold);
            holder.execute_batch("COMMIT").unwrap();
        });
        waiter.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        assert!(started.elapsed() >= hold / 2, "{:?}", started.elapsed());
        release.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn relaxed_checkpoints_less_often_and_full_waits_for_the_disk_again() {
        let db = NativeDb::in_memory().unwrap();
        assert_eq!(pragma(&db, "synchronous"), 2, "a new connection is FULL");
        assert_eq!(pragma(&db, "wal_autocheckpoint"), 1000);
        db.set_durability(Durability::Relaxed).unwrap();
        assert_eq!(pragma(&db, "synchronous"), 1);
        assert_eq!(pragma(&db, "wal_autocheckpoint"), 10_000);
        db.set_durability(Durability::Full).unwrap();
        assert_eq!(pragma(&db, "synchronous"), 2);
    }
}
