//! SQLite databases: `fermyon:spin/sqlite@2.0.0` on a local file with WAL and a busy timeout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

wasmtime::component::bindgen!({
    path: "wit/spin",
    world: "sqlite-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/sqlite.connection": OpenConnection,
    },
});

use fermyon::spin::sqlite::{
    Error, Host, HostConnection, QueryResult, RowResult, Value, add_to_linker,
};

/// The only label available without a runtime config file, as in Spin.
pub const DEFAULT_LABEL: &str = "default";
/// File of the `default` database under the state directory (Spin's name).
pub const DEFAULT_FILE: &str = "sqlite_db.db";
/// How long a statement waits for another instance's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reuse; opening one costs a file open and pragmas.
const MAX_IDLE: usize = 16;

/// Why the SQLite backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The database file could not be opened or prepared.
    #[error("cannot open SQLite database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A component lists a database label that has no backend.
    #[error(
        "component `{component}` uses SQLite database `{label}`, which is not defined (only `default` is available)"
    )]
    UnknownLabel { component: String, label: String },
}

/// The application's `default` database and a small pool of connections to it.
#[derive(Clone)]
pub struct SqliteDatabases {
    pool: Arc<Pool>,
}

struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    fn connect(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
        {
            return Ok(conn);
        }
        open_connection(&self.path)
    }

    fn give_back(&self, conn: Connection) {
        // A guest that trapped mid-transaction must not leave its locks to the next one.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

impl SqliteDatabases {
    /// Opens (creating if needed) `<state_dir>/sqlite_db.db` in WAL mode.
    pub fn open(state_dir: &Path) -> Result<Self, SqliteError> {
        let path = state_dir.join(DEFAULT_FILE);
        let conn = open_connection(&path).map_err(|source| SqliteError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            pool: Arc::new(Pool {
                path,
                idle: Mutex::new(vec![conn]),
            }),
        })
    }

    /// Checks a component's `sqlite_databases` against the databases that exist.
    pub fn check_labels(&self, component: &str, labels: &[String]) -> Result<(), SqliteError> {
        match labels.iter().find(|l| *l != DEFAULT_LABEL) {
            Some(label) => Err(SqliteError::UnknownLabel {
                component: component.into(),
                label: label.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Per-instance host state for a component allowed the given labels.
    pub fn instance(&self, allowed: Arc<HashSet<String>>) -> SqliteInstance {
        SqliteInstance {
            pool: self.pool.clone(),
            allowed,
            table: ResourceTable::new(),
        }
    }
}

/// A connection handle held by a guest; the connection goes back to the pool when
/// the guest drops it or its instance ends.
pub struct OpenConnection {
    conn: Arc<Mutex<Option<Connection>>>,
    pool: Arc<Pool>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(conn) = conn {
            self.pool.give_back(conn);
        }
    }
}

/// Per-instance state of the SQLite host.
pub struct SqliteInstance {
    pool: Arc<Pool>,
    allowed: Arc<HashSet<String>>,
    table: ResourceTable,
}

impl Host for SqliteInstance {}

impl HostConnection for SqliteInstance {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        if !self.allowed.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        if database != DEFAULT_LABEL {
            return Ok(Err(Error::NoSuchDatabase));
        }
        let pool = self.pool.clone();
        let conn = match tokio::task::spawn_blocking(move || pool.connect()).await? {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(Error::Io(e.to_string()))),
        };
        let handle = OpenConnection {
            conn: Arc::new(Mutex::new(Some(conn))),
            pool: self.pool.clone(),
        };
        Ok(Ok(self.table.push(handle)?))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let conn = self.table.get(&connection)?.conn.clone();
        // Off the async workers: the busy timeout may block for seconds.
        let result = tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match guard.as_ref() {
                Some(conn) => execute(conn, &statement, &parameters),
                None => Err(Error::InvalidConnection),
            }
        })
        .await?;
        Ok(result)
    }

    async fn drop(&mut self, connection: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

/// Runs one statement and collects every row, as Spin's SQLite host does.
fn execute(conn: &Connection, statement: &str, parameters: &[Value]) -> Result<QueryResult, Error> {
    let io = |e: rusqlite::Error| Error::Io(e.to_string());
    let mut stmt = conn.prepare_cached(statement).map_err(io)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let width = columns.len();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(parameters.iter().map(Param)))
        .map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let values = (0..width)
            .map(|i| row.get_ref(i).map(from_sql))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(io)?;
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

/// A guest value bound as a statement parameter.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Null => ValueRef::Null,
        }))
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Adds `fermyon:spin/sqlite@2.0.0` to a linker whose store data holds a
/// [`SqliteInstance`].
pub fn link<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut SqliteInstance,
) -> wasmtime::Result<()> {
    add_to_linker::<T, HasSelf<SqliteInstance>>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_returns_columns_and_rows_and_binds_parameters() {
        let conn = Connection::open_in_memory().unwrap();
        execute(
            &conn,
            "CREATE TABLE t (a INTEGER, b TEXT, c REAL, d BLOB)",
            &[],
        )
        .unwrap();
        execute(
            &conn,
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            &[
                Value::Integer(7),
                Value::Text("x".into()),
                Value::Real(1.5),
                Value::Null,
            ],
        )
        .unwrap();
        let result = execute(&conn, "SELECT a, b, c, d FROM t", &[]).unwrap();
        assert_eq!(result.columns, ["a", "b", "c", "d"]);
        assert_eq!(result.rows.len(), 1);
        assert!(matches!(result.rows[0].values[0], Value::Integer(7)));
        assert!(matches!(result.rows[0].values[3], Value::Null));
        let err = execute(&conn, "SELEC nonsense", &[]).unwrap_err();
        assert!(matches!(err, Error::Io(_)));
    }
}
