//! SQLite databases: `fermyon:spin/sqlite@2.0.0` as Spin's in-process SQLite does it: a new connection for every `open`, no pragmas, no pool.

use std::collections::HashMap;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::manifest::ComponentDecl;
use crate::runtime_config::{RuntimeConfig, SqliteDatabaseConfig};

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

/// The label every app has, as in Spin.
pub const DEFAULT_LABEL: &str = "default";
/// File of the `default` database under the state directory (Spin's name).
pub const DEFAULT_FILE: &str = "sqlite_db.db";
/// Connections one instance may hold open at once (Spin's resource table size).
const MAX_CONNECTIONS: usize = 256;

/// Why the SQLite databases could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// A component lists a database label that has no backend.
    #[error(
        "component `{component}` uses SQLite database `{label}`, which is not defined: check the spelling, or define it in a runtime config file (`[sqlite_database.{label}]`)"
    )]
    UnknownLabel { component: String, label: String },
    /// A `[sqlite_database.<label>]` cannot be used.
    #[error("runtime config: sqlite_database.{label}: {reason}")]
    Config { label: String, reason: String },
}

/// Where a database lives. Like Spin's `InProcDatabaseLocation`: a file, or (a
/// `type = "spin"` database without `path`) a fresh in-memory database per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A private in-memory database for each connection.
    InMemory,
    /// A database file, created on first use.
    Path(PathBuf),
}

impl DatabaseLocation {
    /// Opens a new connection exactly as Spin does: `rusqlite::Connection::open`
    /// with rusqlite's defaults (read-write, create, URI names, its 5 s busy
    /// timeout) and no pragmas, so journal mode, `synchronous` and foreign keys are
    /// whatever SQLite and the file say.
    fn connect(&self) -> rusqlite::Result<Connection> {
        match self {
            Self::InMemory => Connection::open_in_memory(),
            Self::Path(path) => Connection::open(path),
        }
    }
}

/// The application's SQLite databases by label.
#[derive(Clone)]
pub struct SqliteDatabases {
    databases: Arc<HashMap<String, DatabaseLocation>>,
}

impl SqliteDatabases {
    /// The databases the runtime config declares, plus `default` (Spin's
    /// `<state_dir>/sqlite_db.db`) unless it declares that too. Nothing is opened
    /// here: as in Spin, a file is opened (and created) by a guest's first statement.
    pub fn configure(state_dir: &Path, config: &RuntimeConfig) -> Result<Self, SqliteError> {
        let mut databases = HashMap::new();
        for (label, database) in &config.sqlite_database {
            let SqliteDatabaseConfig::Spin { path } = database;
            let location = match path {
                None => DatabaseLocation::InMemory,
                Some(path) => {
                    // Spin resolves a relative path against the current directory
                    // (not the runtime config file's, unlike key-value) and creates
                    // the file's directory.
                    let path = std::path::absolute(path).map_err(|e| SqliteError::Config {
                        label: label.clone(),
                        reason: format!("path {}: {e}", path.display()),
                    })?;
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| SqliteError::Config {
                            label: label.clone(),
                            reason: format!("cannot create {}: {e}", parent.display()),
                        })?;
                    }
                    DatabaseLocation::Path(path)
                }
            };
            databases.insert(label.clone(), location);
        }
        databases
            .entry(DEFAULT_LABEL.to_string())
            .or_insert_with(|| DatabaseLocation::Path(state_dir.join(DEFAULT_FILE)));
        Ok(Self {
            databases: Arc::new(databases),
        })
    }

    /// A component's grant: the databases its `sqlite_databases` lists, each of
    /// which must exist.
    pub fn component(
        &self,
        id: &str,
        decl: &ComponentDecl,
    ) -> Result<ComponentDatabases, SqliteError> {
        let labels = &decl.sqlite_databases;
        if let Some(label) = labels.iter().find(|l| !self.databases.contains_key(*l)) {
            return Err(SqliteError::UnknownLabel {
                component: id.into(),
                label: label.clone(),
            });
        }
        Ok(ComponentDatabases {
            databases: self.databases.clone(),
            allowed: Arc::new(labels.iter().cloned().collect()),
        })
    }
}

/// The databases one component may open.
#[derive(Clone)]
pub struct ComponentDatabases {
    databases: Arc<HashMap<String, DatabaseLocation>>,
    allowed: Arc<HashSet<String>>,
}

impl ComponentDatabases {
    /// Fresh host state for one instance.
    pub fn prepare(&self) -> SqliteInstance {
        SqliteInstance {
            databases: self.databases.clone(),
            allowed: self.allowed.clone(),
            table: ResourceTable::new(),
            open: 0,
        }
    }
}

/// A connection held by a guest. Like Spin's `InProcConnection`, the SQLite
/// connection itself is opened by the first statement and closed when the guest
/// drops the handle or its instance ends.
pub struct OpenConnection {
    location: DatabaseLocation,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        // Closing may roll back or checkpoint: file work, so off the async workers.
        let conn = self.conn.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(conn));
        }
    }
}

/// Per-instance state of the SQLite host.
pub struct SqliteInstance {
    databases: Arc<HashMap<String, DatabaseLocation>>,
    allowed: Arc<HashSet<String>>,
    table: ResourceTable,
    open: usize,
}

impl Host for SqliteInstance {}

impl HostConnection for SqliteInstance {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        // Spin answers access-denied before it looks whether the database exists.
        if !self.allowed.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(location) = self.databases.get(&database) else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        if self.open >= MAX_CONNECTIONS {
            return Ok(Err(Error::Io("too many connections opened".into())));
        }
        if let DatabaseLocation::Path(path) = location
            && let Some(parent) = path.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            return Ok(Err(Error::Io(format!(
                "failed to create sqlite database directory '{}': {e}",
                parent.display()
            ))));
        }
        let handle = OpenConnection {
            location: location.clone(),
            conn: Arc::new(Mutex::new(None)),
        };
        self.open += 1;
        Ok(Ok(self.table.push(handle)?))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let handle = self.table.get(&connection)?;
        let (location, conn) = (handle.location.clone(), handle.conn.clone());
        // Off the async workers: opening touches the file and the busy timeout
        // may block for seconds.
        let result = tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.is_none() {
                *guard = Some(location.connect().map_err(|e| Error::Io(e.to_string()))?);
            }
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
        self.open = self.open.saturating_sub(1);
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

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| {
            row.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
    }

    #[test]
    fn a_new_connection_has_sqlites_defaults_and_rusqlites_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let location = DatabaseLocation::Path(dir.path().join("db.sqlite"));
        let conn = location.connect().unwrap();
        assert_eq!(pragma(&conn, "journal_mode"), "delete");
        assert_eq!(pragma(&conn, "synchronous"), "2");
        // rusqlite's bundled SQLite, which Spin builds too, is compiled with
        // SQLITE_DEFAULT_FOREIGN_KEYS=1: foreign keys are on without any pragma.
        assert_eq!(pragma(&conn, "foreign_keys"), "1");
        assert_eq!(pragma(&conn, "busy_timeout"), "5000");
        // Journal mode is the file's: WAL, once set, persists for the next connection.
        assert_eq!(pragma(&conn, "journal_mode=WAL"), "wal");
        drop(conn);
        let conn = location.connect().unwrap();
        assert_eq!(pragma(&conn, "journal_mode"), "wal");
        assert_eq!(pragma(&conn, "synchronous"), "2");
    }

    /// The benchmarks claim a deployment's figures, so the runtime's SQLite must be
    /// compiled as Spin's is. A `LIBSQLITE3_FLAGS` in the build (say, a
    /// `.cargo/config.toml`) turning SQLite's memory statistics off would double
    /// the app's rate without a line of the app changing; `scripts/bench-api.sh`
    /// measures such a host on purpose, in a target directory of its own.
    #[test]
    fn the_bundled_sqlite_is_compiled_as_spins() {
        let conn = DatabaseLocation::InMemory.connect().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for expected in ["THREADSAFE=1", "ENABLE_MEMORY_MANAGEMENT"] {
            assert!(
                options.iter().any(|o| o == expected),
                "{expected} missing: {options:?}"
            );
        }
        // Only a build that turns the statistics off lists the option.
        assert!(
            !options.iter().any(|o| o.starts_with("DEFAULT_MEMSTATUS")),
            "SQLite's memory statistics are off: a LIBSQLITE3_FLAGS in the build, or a \
             libsqlite3-sys upgrade (compare Spin's Cargo.lock)? {options:?}"
        );
    }

    #[test]
    fn in_memory_databases_are_private_to_their_connection() {
        let a = DatabaseLocation::InMemory.connect().unwrap();
        a.execute_batch("CREATE TABLE t (x)").unwrap();
        let b = DatabaseLocation::InMemory.connect().unwrap();
        assert!(b.execute_batch("SELECT * FROM t").is_err());
    }
}
