//! Key-value stores: `fermyon:spin/key-value@2.0.0` backed by SQLite, as Spin's default store is.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

wasmtime::component::bindgen!({
    path: "wit/spin",
    world: "key-value-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": OpenStore,
    },
});

use fermyon::spin::key_value::{Error, Host, HostStore, add_to_linker};

/// The only label available without a runtime config file, as in Spin.
pub const DEFAULT_LABEL: &str = "default";
/// File of the `default` store under the state directory (Spin's name).
pub const DEFAULT_FILE: &str = "sqlite_key_value.db";

/// Why the key-value backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// The SQLite file could not be opened or prepared.
    #[error("cannot open key-value database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A component lists a store label that has no backend.
    #[error(
        "component `{component}` uses key-value store `{label}`, which is not defined (only `default` is available)"
    )]
    UnknownLabel { component: String, label: String },
}

/// The application's key-value backend: one SQLite file holding every store.
#[derive(Clone)]
pub struct KeyValueStores {
    db: Arc<Mutex<Connection>>,
}

impl KeyValueStores {
    /// Opens (creating if needed) `<state_dir>/sqlite_key_value.db`.
    pub fn open(state_dir: &Path) -> Result<Self, KeyValueError> {
        let path = state_dir.join(DEFAULT_FILE);
        let open_err = |source| KeyValueError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // Spin's own schema, so a `.spin/` directory works with either runtime.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS spin_key_value (
               store TEXT NOT NULL,
               key   TEXT NOT NULL,
               value BLOB NOT NULL,
               PRIMARY KEY (store, key)
             );",
        )
        .map_err(open_err)?;
        Ok(Self {
            db: Arc::new(Mutex::new(conn)),
        })
    }

    /// Checks a component's `key_value_stores` against the stores that exist.
    pub fn check_labels(&self, component: &str, labels: &[String]) -> Result<(), KeyValueError> {
        match labels.iter().find(|l| *l != DEFAULT_LABEL) {
            Some(label) => Err(KeyValueError::UnknownLabel {
                component: component.into(),
                label: label.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Per-instance host state for a component allowed the given labels.
    pub fn instance(&self, allowed: Arc<HashSet<String>>) -> KeyValueInstance {
        KeyValueInstance {
            db: self.db.clone(),
            allowed,
            table: ResourceTable::new(),
        }
    }
}

/// A store handle held by a guest.
pub struct OpenStore {
    label: String,
}

/// Per-instance state of the key-value host.
pub struct KeyValueInstance {
    db: Arc<Mutex<Connection>>,
    allowed: Arc<HashSet<String>>,
    table: ResourceTable,
}

/// Runs `op` on the shared connection off the async worker threads, so a busy
/// database never stalls other requests.
async fn with_db<R: Send + 'static>(
    db: Arc<Mutex<Connection>>,
    op: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(move || {
        let conn = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        op(&conn)
    })
    .await
    .map_err(|e| Error::Other(e.to_string()))?
    .map_err(|e| Error::Other(e.to_string()))
}

impl KeyValueInstance {
    fn label(&self, store: &Resource<OpenStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(store)?.label.clone())
    }
}

impl Host for KeyValueInstance {}

impl HostStore for KeyValueInstance {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        // Spin answers access-denied before it looks whether the store exists.
        if !self.allowed.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        if label != DEFAULT_LABEL {
            return Ok(Err(Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(OpenStore { label })?))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let label = self.label(&store)?;
        Ok(with_db(self.db.clone(), move |c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row((label, key), |row| row.get(0))
                .optional()
        })
        .await)
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.label(&store)?;
        Ok(with_db(self.db.clone(), move |c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute((label, key, value))
            .map(drop)
        })
        .await)
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.label(&store)?;
        Ok(with_db(self.db.clone(), move |c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute((label, key))
                .map(drop)
        })
        .await)
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let label = self.label(&store)?;
        Ok(with_db(self.db.clone(), move |c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists((label, key))
        })
        .await)
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let label = self.label(&store)?;
        Ok(with_db(self.db.clone(), move |c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?
                .query_map([label], |row| row.get(0))?
                .collect()
        })
        .await)
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

/// Adds `fermyon:spin/key-value@2.0.0` to a linker whose store data holds a
/// [`KeyValueInstance`].
pub fn link<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KeyValueInstance,
) -> wasmtime::Result<()> {
    add_to_linker::<T, HasSelf<KeyValueInstance>>(linker, get)
}
