//! Key-value stores: `fermyon:spin/key-value@2.0.0` on a SQLite file, exactly as Spin's default (`spin`) store keeps it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::{Connection, OptionalExtension};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::manifest::ComponentDecl;

wasmtime::component::bindgen!({
    path: "wit/spin",
    world: "key-value-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": OpenStore,
    },
});

use fermyon::spin::key_value::{Error, Host, HostStore, add_to_linker};

/// The label every app has, as in Spin.
pub const DEFAULT_LABEL: &str = "default";
/// File of the `default` store under the state directory (Spin's name).
pub const DEFAULT_FILE: &str = "sqlite_key_value.db";

/// Why the key-value stores could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// A component lists a store label that has no backend.
    #[error(
        "component `{component}` uses key-value store `{label}`, which is not defined (only `default` is available)"
    )]
    UnknownLabel { component: String, label: String },
}

/// A SQLite file holding every store of one label, as Spin's `spin` key-value
/// type keeps it: one connection for the whole app, opened on the first `open`
/// with rusqlite's defaults and no pragmas, and Spin's table.
struct SqliteStoreFile {
    path: PathBuf,
    conn: OnceLock<Arc<Mutex<Connection>>>,
}

impl SqliteStoreFile {
    fn connection(&self) -> rusqlite::Result<Arc<Mutex<Connection>>> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        // Two racing first opens may both connect; one connection wins, as in Spin.
        let conn = Connection::open(&self.path)?;
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

/// The application's key-value stores by label.
#[derive(Clone)]
pub struct KeyValueStores {
    stores: Arc<HashMap<String, Arc<SqliteStoreFile>>>,
}

impl KeyValueStores {
    /// The `default` store, `<state_dir>/sqlite_key_value.db`. Nothing is opened
    /// here: as in Spin, a guest's first `open` opens (and creates) the file.
    pub fn configure(state_dir: &Path) -> Self {
        let default = SqliteStoreFile {
            path: state_dir.join(DEFAULT_FILE),
            conn: OnceLock::new(),
        };
        Self {
            stores: Arc::new(HashMap::from([(
                DEFAULT_LABEL.to_string(),
                Arc::new(default),
            )])),
        }
    }

    /// A component's grant: the stores its `key_value_stores` lists, each of which
    /// must exist.
    pub fn component(
        &self,
        id: &str,
        decl: &ComponentDecl,
    ) -> Result<ComponentStores, KeyValueError> {
        let labels = &decl.key_value_stores;
        if let Some(label) = labels.iter().find(|l| !self.stores.contains_key(*l)) {
            return Err(KeyValueError::UnknownLabel {
                component: id.into(),
                label: label.clone(),
            });
        }
        Ok(ComponentStores {
            stores: self.stores.clone(),
            allowed: Arc::new(labels.iter().cloned().collect()),
        })
    }
}

/// The stores one component may open.
#[derive(Clone)]
pub struct ComponentStores {
    stores: Arc<HashMap<String, Arc<SqliteStoreFile>>>,
    allowed: Arc<HashSet<String>>,
}

impl ComponentStores {
    /// Fresh host state for one instance.
    pub fn prepare(&self) -> KeyValueInstance {
        KeyValueInstance {
            stores: self.stores.clone(),
            allowed: self.allowed.clone(),
            table: ResourceTable::new(),
        }
    }
}

/// A store handle held by a guest: the store's name and its file's connection.
pub struct OpenStore {
    label: String,
    db: Arc<Mutex<Connection>>,
}

/// Per-instance state of the key-value host.
pub struct KeyValueInstance {
    stores: Arc<HashMap<String, Arc<SqliteStoreFile>>>,
    allowed: Arc<HashSet<String>>,
    table: ResourceTable,
}

/// Runs `op` on the store's connection off the async worker threads, so a busy
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
    fn store(
        &self,
        store: &Resource<OpenStore>,
    ) -> wasmtime::Result<(String, Arc<Mutex<Connection>>)> {
        let open = self.table.get(store)?;
        Ok((open.label.clone(), open.db.clone()))
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
        let Some(file) = self.stores.get(&label).cloned() else {
            return Ok(Err(Error::NoSuchStore));
        };
        let db = tokio::task::spawn_blocking(move || file.connection())
            .await?
            .map_err(|e| Error::Other(e.to_string()));
        Ok(match db {
            Ok(db) => Ok(self.table.push(OpenStore { label, db })?),
            Err(e) => Err(e),
        })
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (label, db) = self.store(&store)?;
        Ok(with_db(db, move |c| {
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
        let (label, db) = self.store(&store)?;
        Ok(with_db(db, move |c| {
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
        let (label, db) = self.store(&store)?;
        Ok(with_db(db, move |c| {
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
        let (label, db) = self.store(&store)?;
        Ok(with_db(db, move |c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1")?
                .exists((label, key))
        })
        .await)
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let (label, db) = self.store(&store)?;
        Ok(with_db(db, move |c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
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
