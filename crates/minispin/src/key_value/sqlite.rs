//! The `spin` key-value backend: every store of a label in one SQLite file (or in memory), in Spin's `spin_key_value` table, through one connection opened on first use with rusqlite's defaults and no pragmas.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::{Connection, OptionalExtension};

use super::{BoxFuture, Error, Store, StoreManager};

/// One `spin` store label: a SQLite file, or an in-memory database when the
/// runtime config gives no `path`.
pub struct SqliteStoreManager(Arc<StoreFile>);

struct StoreFile {
    path: Option<PathBuf>,
    conn: OnceLock<Arc<Mutex<Connection>>>,
}

impl SqliteStoreManager {
    /// A store backend at `path` (created on first use), or in memory.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self(Arc::new(StoreFile {
            path,
            conn: OnceLock::new(),
        }))
    }
}

impl StoreFile {
    fn connection(&self) -> rusqlite::Result<Arc<Mutex<Connection>>> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        // Two racing first opens may both connect; one connection wins, as in Spin.
        let conn = match &self.path {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    // Spin creates the file's directory too.
                    let _ = std::fs::create_dir_all(parent);
                }
                Connection::open(path)?
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
               store TEXT NOT NULL,
               key   TEXT NOT NULL,
               value BLOB NOT NULL,
               PRIMARY KEY (store, key)
             )",
            [],
        )?;
        Ok(self.conn.get_or_init(|| Arc::new(Mutex::new(conn))).clone())
    }
}

impl StoreManager for SqliteStoreManager {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn Store>, Error>> {
        let file = self.0.clone();
        let name = name.to_string();
        Box::pin(async move {
            // Opening touches the file: off the async workers.
            let db = tokio::task::spawn_blocking(move || file.connection())
                .await
                .map_err(other)?
                .map_err(other)?;
            Ok(Arc::new(SqliteStore { name, db }) as Arc<dyn Store>)
        })
    }
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

/// One store of a `spin` label: its rows of the shared table.
struct SqliteStore {
    name: String,
    db: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Runs `op` on the connection off the async worker threads, so a busy
    /// database never stalls other requests.
    fn run<R: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection, &str) -> rusqlite::Result<R> + Send + 'static,
    ) -> BoxFuture<'static, Result<R, Error>> {
        let db = self.db.clone();
        let name = self.name.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                op(&conn, &name)
            })
            .await
            .map_err(other)?
            .map_err(other)
        })
    }
}

impl Store for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        let key = key.to_string();
        self.run(move |c, store| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row((store, key), |row| row.get(0))
                .optional()
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), Error>> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.run(move |c, store| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute((store, key, value))
            .map(drop)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let key = key.to_string();
        self.run(move |c, store| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute((store, key))
                .map(drop)
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let key = key.to_string();
        self.run(move |c, store| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1")?
                .exists((store, key))
        })
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        self.run(|c, store| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                .query_map([store], |row| row.get(0))?
                .collect()
        })
    }
}
