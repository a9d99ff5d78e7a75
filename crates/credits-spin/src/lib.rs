//! Spin adapters: the domain's storage ports on `spin-sdk`, and the glue every
//! credits component shares (open the stores, read the variables, serve).

use std::time::Duration;

use credits::{Database, DbError, KeyValue, NoCache, RechargeReport, Row, Value};
use credits_api::{Env, Request, Response};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::{self, Connection};
use spin_sdk::variables;

/// How often a statement is retried while another instance holds the write lock.
const BUSY_RETRIES: u32 = 50;
const BUSY_PAUSE: Duration = Duration::from_millis(20);

/// Spin's SQLite database as the domain's [`Database`].
pub struct SpinDb(Connection);

impl SpinDb {
    /// The `default` database the component lists in `sqlite_databases`.
    pub fn open_default() -> Result<Self, DbError> {
        Connection::open_default().map(Self).map_err(db_error)
    }
}

fn db_error(e: sqlite::Error) -> DbError {
    match e {
        sqlite::Error::Io(message) => DbError::new(message),
        other => DbError::new(format!("{other:?}")),
    }
}

fn is_busy(e: &DbError) -> bool {
    e.message.contains("database is locked") || e.message.contains("database is busy")
}

impl Database for SpinDb {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let params: Vec<sqlite::Value> = params.iter().map(to_spin).collect();
        let mut attempt = 0;
        loop {
            // A failed statement changed nothing, so a busy one is safe to retry.
            match self.0.execute(sql, &params).map_err(db_error) {
                Err(e) if is_busy(&e) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                Err(e) => return Err(e),
                Ok(result) => {
                    return Ok(result
                        .rows
                        .into_iter()
                        .map(|row| Row(row.values.into_iter().map(from_spin).collect()))
                        .collect());
                }
            }
        }
    }
}

fn to_spin(v: &Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Integer(i) => sqlite::Value::Integer(*i),
        Value::Real(r) => sqlite::Value::Real(*r),
        Value::Text(t) => sqlite::Value::Text(t.clone()),
        Value::Blob(b) => sqlite::Value::Blob(b.clone()),
    }
}

fn from_spin(v: sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Integer(i),
        sqlite::Value::Real(r) => Value::Real(r),
        sqlite::Value::Text(t) => Value::Text(t),
        sqlite::Value::Blob(b) => Value::Blob(b),
    }
}

/// Spin's key-value store as the domain's cache.
pub struct SpinKv(Store);

impl KeyValue for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        self.0
            .get(key)
            .map_err(|e| DbError::new(format!("key-value: {e:?}")))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), DbError> {
        self.0
            .set(key, value)
            .map_err(|e| DbError::new(format!("key-value: {e:?}")))
    }
}

/// Runs `f` with this instance's stores and variables as the API's [`Env`].
fn with_env<T>(f: impl FnOnce(&Env<'_>) -> T) -> Result<T, DbError> {
    let db = SpinDb::open_default()?;
    // The key-value store is only a cache: without it, lookups fall through to SQL.
    let kv = Store::open_default().ok().map(SpinKv);
    let cache: &dyn KeyValue = kv.as_ref().map_or(&NoCache, |kv| kv);
    let service_token = variables::get("service_token").ok();
    let env = Env {
        db: &db,
        cache,
        service_token: service_token.as_deref(),
        test_clock: variables::get("test_clock").is_ok_and(|v| v == "true"),
    };
    Ok(f(&env))
}

/// Serves one request with a route group of the API, on this instance's stores.
pub fn serve(req: &Request, group: fn(&Env<'_>, &Request) -> Response) -> Response {
    with_env(|env| group(env, req)).unwrap_or_else(|e| {
        credits_api::error_response(&credits::CreditsError::Internal(e.message))
    })
}

/// The scheduled auto-recharge evaluation (the cron component's whole job).
pub fn recharge_check() -> Result<RechargeReport, String> {
    with_env(credits_api::routes::recharge::scheduled)
        .map_err(|e| e.message)?
        .map_err(|e| e.to_string())
}
