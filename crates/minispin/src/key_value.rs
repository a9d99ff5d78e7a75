//! Key-value stores: the `fermyon:spin/key-value@2.0.0` host over two small ports, `StoreManager` and `Store`, with one adapter per backend (Spin's SQLite file, Redis).

mod redis;
mod sqlite;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::manifest::ComponentDecl;
use crate::runtime_config::{KeyValueStoreConfig, RuntimeConfig};

wasmtime::component::bindgen!({
    path: "wit/spin",
    world: "key-value-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": OpenStore,
    },
});

pub use fermyon::spin::key_value::Error;
use fermyon::spin::key_value::{Host, HostStore, add_to_linker};

/// The label every app has, as in Spin.
pub const DEFAULT_LABEL: &str = "default";
/// File of the `default` store under the state directory (Spin's name).
pub const DEFAULT_FILE: &str = "sqlite_key_value.db";

/// A boxed future, so the ports stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The backend of one store label: opens its stores by name.
pub trait StoreManager: Send + Sync {
    /// Opens store `name`, connecting to the backend on first use.
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn Store>, Error>>;
}

/// One open store.
pub trait Store: Send + Sync {
    /// The value of `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>>;
    /// Sets `key` to `value`.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), Error>>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>>;
    /// Whether `key` has a value.
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>>;
    /// Every key of the store, in no particular order.
    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>, Error>>;
}

/// Why the key-value stores could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// A component lists a store label that has no backend.
    #[error(
        "component `{component}` uses key-value store `{label}`, which is not defined: check the spelling, or define it in a runtime config file (`[key_value_store.{label}]`)"
    )]
    UnknownLabel { component: String, label: String },
    /// A `[key_value_store.<label>]` cannot be used.
    #[error("runtime config: key_value_store.{label}: {reason}")]
    Config { label: String, reason: String },
}

/// The application's key-value stores by label.
#[derive(Clone)]
pub struct KeyValueStores {
    managers: Arc<HashMap<String, Arc<dyn StoreManager>>>,
}

impl KeyValueStores {
    /// The stores the runtime config declares, plus `default` (Spin's
    /// `<state_dir>/sqlite_key_value.db`) unless it declares that too. Nothing is
    /// opened here: as in Spin, a guest's first `open` connects.
    pub fn configure(state_dir: &Path, config: &RuntimeConfig) -> Result<Self, KeyValueError> {
        let mut managers: HashMap<String, Arc<dyn StoreManager>> = HashMap::new();
        for (label, store) in &config.key_value_store {
            let manager: Arc<dyn StoreManager> = match store {
                // Spin resolves a relative path against the runtime config file's directory.
                KeyValueStoreConfig::Spin { path } => Arc::new(sqlite::SqliteStoreManager::new(
                    path.as_ref().map(|p| config.dir.join(p)),
                )),
                KeyValueStoreConfig::Redis { url } => {
                    Arc::new(redis::RedisStoreManager::new(url).map_err(|reason| {
                        KeyValueError::Config {
                            label: label.clone(),
                            reason,
                        }
                    })?)
                }
            };
            managers.insert(label.clone(), manager);
        }
        managers
            .entry(DEFAULT_LABEL.to_string())
            .or_insert_with(|| {
                Arc::new(sqlite::SqliteStoreManager::new(Some(
                    state_dir.join(DEFAULT_FILE),
                )))
            });
        Ok(Self {
            managers: Arc::new(managers),
        })
    }

    /// A component's grant: the stores its `key_value_stores` lists, each of which
    /// must exist.
    pub fn component(
        &self,
        id: &str,
        decl: &ComponentDecl,
    ) -> Result<ComponentStores, KeyValueError> {
        let labels = &decl.key_value_stores;
        if let Some(label) = labels.iter().find(|l| !self.managers.contains_key(*l)) {
            return Err(KeyValueError::UnknownLabel {
                component: id.into(),
                label: label.clone(),
            });
        }
        Ok(ComponentStores {
            managers: self.managers.clone(),
            allowed: Arc::new(labels.iter().cloned().collect()),
        })
    }
}

/// The stores one component may open.
#[derive(Clone)]
pub struct ComponentStores {
    managers: Arc<HashMap<String, Arc<dyn StoreManager>>>,
    allowed: Arc<HashSet<String>>,
}

impl ComponentStores {
    /// Fresh host state for one instance.
    pub fn prepare(&self) -> KeyValueInstance {
        KeyValueInstance {
            managers: self.managers.clone(),
            allowed: self.allowed.clone(),
            table: ResourceTable::new(),
        }
    }
}

/// A store handle held by a guest.
pub struct OpenStore(Arc<dyn Store>);

/// Per-instance state of the key-value host.
pub struct KeyValueInstance {
    managers: Arc<HashMap<String, Arc<dyn StoreManager>>>,
    allowed: Arc<HashSet<String>>,
    table: ResourceTable,
}

impl KeyValueInstance {
    fn store(&self, store: &Resource<OpenStore>) -> wasmtime::Result<Arc<dyn Store>> {
        Ok(self.table.get(store)?.0.clone())
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
        let Some(manager) = self.managers.get(&label).cloned() else {
            return Ok(Err(Error::NoSuchStore));
        };
        Ok(match manager.get(&label).await {
            Ok(store) => Ok(self.table.push(OpenStore(store))?),
            Err(e) => Err(e),
        })
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self.store(&store)?.get(&key).await)
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.store(&store)?.set(&key, &value).await)
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.store(&store)?.delete(&key).await)
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        Ok(self.store(&store)?.exists(&key).await)
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(self.store(&store)?.get_keys().await)
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
