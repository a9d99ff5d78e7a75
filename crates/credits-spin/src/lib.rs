//! Spin adapters: the domain's storage ports on `spin-sdk`, and the glue every
//! credits component shares (open the stores when first used, read the
//! variables, serve).

use std::cell::{Cell, OnceCell};

use credits::Clock as _;
use credits::{
    Database, DbError, DbErrorKind, DeliveryOutcome, Durability, EventTransport, EventsTarget,
    KeyValue, NoCache, RechargeReport, Row, SignedEvent, SystemClock, Value,
};
use credits_api::{AfterAnswer, Config, Env, Request, Response, Stores};
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, IntoResponse, OutgoingResponse, ResponseOutparam};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::{self, Connection};
use spin_sdk::variables;

/// Spin's `default` SQLite database as the domain's [`Database`], connected on
/// the first statement: a request that never reaches storage opens nothing.
#[derive(Default)]
pub struct SpinDb {
    conn: OnceCell<Connection>,
    /// A new connection starts with SQLite's default, `synchronous = FULL`.
    durability: Cell<Option<Durability>>,
}

impl SpinDb {
    fn connection(&self) -> Result<&Connection, DbError> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn);
        }
        let conn = Connection::open_default().map_err(classify)?;
        Ok(self.conn.get_or_init(|| conn))
    }
}

/// Sorts a Spin SQLite error into the kinds the domain decides on. Spin passes
/// SQLite's failures on as text, so the text is all there is to read; this is
/// the one place that reads it.
fn classify(e: sqlite::Error) -> DbError {
    let message = match e {
        sqlite::Error::Io(message) => message,
        other => format!("{other:?}"),
    };
    let kind = if message.contains("UNIQUE constraint failed")
        || message.contains("PRIMARY KEY constraint failed")
    {
        DbErrorKind::UniqueViolation
    } else if message.contains("CHECK constraint failed") {
        DbErrorKind::CheckViolation
    } else if message.contains("database is locked") || message.contains("database is busy") {
        DbErrorKind::Busy
    } else if message.contains("no such table") || message.contains("no such column") {
        DbErrorKind::MissingSchema
    } else {
        DbErrorKind::Other
    };
    DbError::new(kind, message)
}

impl Database for SpinDb {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let params: Vec<sqlite::Value> = params.iter().map(to_spin).collect();
        let result = self.connection()?.execute(sql, &params).map_err(classify)?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| Row(row.values.into_iter().map(from_spin).collect()))
            .collect())
    }

    fn set_durability(&self, durability: Durability) -> Result<(), DbError> {
        let current = self.durability.get().unwrap_or(Durability::Full);
        if current == durability {
            return Ok(());
        }
        // One host call per pragma: Spin's `execute` runs a single statement.
        for pragma in durability.sqlite_pragmas() {
            match self.execute(pragma, &[]) {
                // A backend that keeps its own durability (remote libSQL) may refuse it.
                Err(e) if e.kind != DbErrorKind::Busy => {}
                other => {
                    other?;
                }
            }
        }
        self.durability.set(Some(durability));
        Ok(())
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

/// Spin's `default` key-value store as the domain's cache, opened on first use.
/// Without it, lookups fall through to SQL: it is only a cache.
#[derive(Default)]
pub struct SpinKv(OnceCell<Option<Store>>);

impl SpinKv {
    fn store(&self) -> Option<&Store> {
        self.0.get_or_init(|| Store::open_default().ok()).as_ref()
    }
}

impl KeyValue for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        let Some(store) = self.store() else {
            return NoCache.get(key);
        };
        store
            .get(key)
            .map_err(|e| DbError::other(format!("key-value: {e:?}")))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), DbError> {
        let Some(store) = self.store() else {
            return NoCache.set(key, value);
        };
        store
            .set(key, value)
            .map_err(|e| DbError::other(format!("key-value: {e:?}")))
    }
}

/// The service's configuration from this component's variables. Events are sent
/// only where `events_url` and `events_secret` are both set: never unsigned.
fn config() -> Config {
    let events = match (
        variables::get("events_url"),
        variables::get("events_secret"),
    ) {
        (Ok(url), Ok(secret)) if !url.is_empty() && !secret.is_empty() => {
            Some(EventsTarget { url, secret })
        }
        (Ok(url), _) if !url.is_empty() => {
            eprintln!("events_url is set but events_secret is empty: events are not sent");
            None
        }
        _ => None,
    };
    Config {
        events,
        // A component that does not declare them (only `balance` shows prices) gets the defaults.
        plan_prices: credits_service::PlanPricing::from_variables(|name| variables::get(name).ok()),
        ..Config::default()
    }
}

/// Sends events through Spin's outbound HTTP (the component's
/// `allowed_outbound_hosts` must list `{{ events_host }}`).
struct SpinEventTransport;

impl EventTransport for SpinEventTransport {
    fn deliver(&self, url: &str, event: &SignedEvent) -> DeliveryOutcome {
        let request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/json")
            .header("content-length", event.body.len())
            .header("credits-event-id", &event.id)
            .header("credits-signature", &event.signature)
            .body(event.body.clone().into_bytes());
        let request = match request {
            Ok(request) => request,
            Err(e) => return DeliveryOutcome::Failed(format!("bad request: {e}")),
        };
        // Runs after the answer is sent (or in the cron tick): blocking here holds
        // up no client.
        let sent = spin_sdk::http::run(spin_sdk::http::send::<_, http::Response<Vec<u8>>>(request));
        match sent {
            Ok(response) if response.status().is_success() => DeliveryOutcome::Delivered,
            Ok(response) => DeliveryOutcome::Failed(format!("HTTP {}", response.status().as_u16())),
            Err(e) => DeliveryOutcome::Failed(format!("no answer: {e:?}")),
        }
    }
}

/// Serves one request with a route group of the API, on this instance's stores.
pub fn serve(req: &Request, group: fn(&Env<'_>, &Request) -> Response) -> Response {
    serve_with(req, group, None)
}

fn serve_with(
    req: &Request,
    group: fn(&Env<'_>, &Request) -> Response,
    after: Option<&AfterAnswer>,
) -> Response {
    let (db, kv) = (SpinDb::default(), SpinKv::default());
    let config = config();
    let service_token = variables::get("service_token").ok();
    let env = Env {
        stores: Stores {
            db: &db,
            cache: &kv,
        },
        config: &config,
        service_token: service_token.as_deref(),
        test_clock: variables::get("test_clock").is_ok_and(|v| v == "true"),
        after,
    };
    group(&env, req)
}

/// Serves one request, sends the answer, then does what the request left for
/// after it: delivering the events it may have recorded. Spin keeps running a
/// handler after its response is complete, so no client waits for a receiver.
pub async fn serve_then_deliver(
    req: IncomingRequest,
    out: ResponseOutparam,
    group: fn(&Env<'_>, &Request) -> Response,
) {
    let after = AfterAnswer::default();
    let response = match Request::try_from_incoming_request(req).await {
        Ok(req) => serve_with(&req, group, Some(&after)),
        Err(e) => credits_api::error_response(&credits_api::ApiError::invalid(format!(
            "unreadable request: {e:?}"
        ))),
    };
    let mut response = response.into_response();
    let body = std::mem::take(response.body_mut());
    match OutgoingResponse::try_from(response) {
        Ok(outgoing) => {
            if let Err(e) = out.set_with_body(outgoing, body).await {
                eprintln!("cannot send the response: {e}");
            }
        }
        Err(e) => eprintln!("cannot convert the response: {e}"),
    }
    if let Some(now) = after.deliver_events_at() {
        deliver_events(now);
    }
}

/// Delivers what is due at `now`; a failure waits for the next request or tick.
fn deliver_events(now: credits::Timestamp) {
    let (db, kv) = (SpinDb::default(), SpinKv::default());
    let stores = Stores {
        db: &db,
        cache: &kv,
    };
    if let Err(e) = credits_service::deliver_events(stores, &config(), now, &SpinEventTransport) {
        eprintln!("event delivery: {e}");
    }
}

/// The scheduled auto-recharge evaluation (the cron component's whole job), then
/// the delivery of what is due.
pub fn recharge_check() -> Result<RechargeReport, String> {
    let (db, kv) = (SpinDb::default(), SpinKv::default());
    let stores = Stores {
        db: &db,
        cache: &kv,
    };
    let report = credits_service::recharge_check(stores, &config()).map_err(|e| e.to_string());
    deliver_events(SystemClock.now());
    report
}
