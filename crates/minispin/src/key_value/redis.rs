//! The `redis` key-value backend, laid out as Spin's: each key is the Redis key itself and each value its raw bytes, whatever the store's name; `get-keys` is `KEYS *`.

use std::sync::Arc;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::{BoxFuture, Error, Store, StoreManager};

/// One `redis` store label: a server, connected on first `open` and reconnected by
/// the connection manager after a failure.
pub struct RedisStoreManager {
    client: redis::Client,
    conn: Arc<OnceCell<ConnectionManager>>,
}

impl RedisStoreManager {
    /// A backend for `url` (`redis://[user:password@]host[:port][/db]`). Checks
    /// the URL only; nothing connects until a guest opens a store.
    pub fn new(url: &str) -> Result<Self, String> {
        // The URL may hold a password: name the problem, never the URL.
        let client = redis::Client::open(url)
            .map_err(|e| format!("`url` is not a usable Redis URL ({:?})", e.kind()))?;
        Ok(Self {
            client,
            conn: Arc::new(OnceCell::new()),
        })
    }
}

/// A Redis failure as the guest sees it, logged once here as Spin logs it.
fn other(e: &redis::RedisError) -> Error {
    tracing::warn!("key-value (redis): {e}");
    Error::Other(e.to_string())
}

impl StoreManager for RedisStoreManager {
    fn get<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Result<Arc<dyn Store>, Error>> {
        Box::pin(async move {
            let conn = self
                .conn
                .get_or_try_init(|| self.client.get_connection_manager())
                .await
                .map_err(|e| other(&e))?;
            Ok(Arc::new(RedisStore { conn: conn.clone() }) as Arc<dyn Store>)
        })
    }
}

/// An open Redis store: a handle on the shared, multiplexed connection.
struct RedisStore {
    conn: ConnectionManager,
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        let mut conn = self.conn.clone();
        Box::pin(async move { conn.get(key).await.map_err(|e| other(&e)) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), Error>> {
        let mut conn = self.conn.clone();
        Box::pin(async move { conn.set(key, value).await.map_err(|e| other(&e)) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let mut conn = self.conn.clone();
        Box::pin(async move { conn.del(key).await.map_err(|e| other(&e)) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let mut conn = self.conn.clone();
        Box::pin(async move { conn.exists(key).await.map_err(|e| other(&e)) })
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        let mut conn = self.conn.clone();
        Box::pin(async move { conn.keys("*").await.map_err(|e| other(&e)) })
    }
}
