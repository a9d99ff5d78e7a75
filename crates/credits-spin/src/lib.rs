//! Spin adapters: the domain's storage ports on `spin-sdk`, the configuration
//! from Spin's variables, outbound HTTP for Stripe and event receivers, and the
//! scheduled auto-recharge check. Nothing here speaks the API's HTTP: serving
//! a route group is `credits-spin-http`'s job, so the cron component links
//! no HTTP contract.

use std::cell::{Cell, OnceCell};

use credits::Clock as _;
use credits::{
    Database, DbError, DbErrorKind, DeliveryOutcome, Durability, EventTransport, EventsTarget,
    KeyValue, NoCache, RechargeReport, Row, SQLITE_BUSY_WAIT, SignedEvent, SystemClock, Value,
    wait_while_busy,
};
use credits_service::{Config, Stores};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::{self, Connection};
use spin_sdk::variables;

/// Spin's `default` `SQLite` database as the domain's [`Database`], connected on
/// the first statement: a request that never reaches storage opens nothing.
#[derive(Default)]
pub struct SpinDb {
    conn: OnceCell<Connection>,
    /// A new connection starts with `SQLite`'s default, `synchronous = FULL`.
    durability: Cell<Option<Durability>>,
}

impl SpinDb {
    fn connection(&self) -> Result<&Connection, DbError> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn);
        }
        let conn = Connection::open_default().map_err(classify)?;
        // A backend that waits its own way (remote libSQL) may refuse it; its
        // policy then stands, and `wait_while_busy` still tries again.
        let _ = conn.execute(SQLITE_BUSY_WAIT, &[]);
        Ok(self.conn.get_or_init(|| conn))
    }
}

/// Sorts a Spin `SQLite` error into the kinds the domain decides on. Spin passes
/// `SQLite`'s failures on as text, so the text is all there is to read; this is
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
        let result =
            wait_while_busy(|| self.connection()?.execute(sql, &params).map_err(classify))?;
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
        // Every component that charges declares these (spin.toml); one that does
        // not never charges, so the sandbox it gets takes nothing.
        payments: credits_service::PaymentConfig::from_variables(|name| variables::get(name).ok()),
        shows_cards: credits_service::PaymentConfig::names_stripe(|name| variables::get(name).ok()),
    }
}

/// Sends events through Spin's outbound HTTP (the component's
/// `allowed_outbound_hosts` must list `{{ events_host }}`). It runs after the answer
/// is sent (or in the cron tick), so blocking holds up no client; a receiver gets
/// 10 s to answer (API.md), which spin-sdk's `send` cannot ask of the host, so
/// this speaks `wasi:http` directly with request options.
struct SpinEventTransport;

/// How long a receiver (or Stripe) has to connect and to answer (API.md: 10 s).
const OUTBOUND_TIMEOUT_NANOS: u64 = 10_000_000_000;

impl EventTransport for SpinEventTransport {
    fn deliver(&self, url: &str, event: &SignedEvent) -> DeliveryOutcome {
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("credits-event-id", event.id.clone()),
            ("credits-signature", event.signature.clone()),
        ];
        match post(url, &headers, event.body.as_bytes()) {
            Ok(status) if (200..300).contains(&status) => DeliveryOutcome::Delivered,
            Ok(status) => DeliveryOutcome::Failed(format!("HTTP {status}")),
            Err(why) => DeliveryOutcome::Failed(why),
        }
    }
}

/// POSTs `body` to `url` and answers the status, or why there was none.
fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    exchange("POST", url, &headers, body, false)
        .map(|(status, _)| status)
        .map_err(|e| e.to_string())
}

/// Sends Stripe's requests through Spin's outbound HTTP (the component's
/// `allowed_outbound_hosts` must list `{{ stripe_api_base }}`), giving Stripe the
/// same 10 s as an event receiver.
pub struct SpinStripeTransport;

impl credits_stripe::StripeTransport for SpinStripeTransport {
    fn send(
        &self,
        request: credits_stripe::StripeRequest,
    ) -> Result<credits_stripe::StripeResponse, credits_stripe::TransportError> {
        let (status, body) = exchange(
            request.method.as_str(),
            &request.url(),
            &request.headers,
            request.body.as_bytes(),
            true,
        )?;
        Ok(credits_stripe::StripeResponse { status, body })
    }
}

/// One outbound exchange: the status and (if `read_body`) the body, or why
/// there was no complete answer.
fn exchange(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    read_body: bool,
) -> Result<(u16, Vec<u8>), credits_stripe::TransportError> {
    use credits_stripe::TransportError;
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    };
    use wasi::io::streams::StreamError;

    let network = |what: String| TransportError::Network(what);
    let uri: http::Uri = url.parse().map_err(|e| network(format!("bad URL: {e}")))?;
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .collect();
    if !body.is_empty() || method == "POST" {
        entries.push((
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&entries).map_err(|e| network(format!("headers: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let scheme = if uri.scheme_str() == Some("https") {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let method = if method == "GET" {
        Method::Get
    } else {
        Method::Post
    };
    let parts = request
        .set_method(&method)
        .and(request.set_scheme(Some(&scheme)))
        .and(request.set_authority(uri.authority().map(http::uri::Authority::as_str)))
        .and(
            request.set_path_with_query(uri.path_and_query().map(http::uri::PathAndQuery::as_str)),
        );
    parts.map_err(|()| network("bad URL".to_owned()))?;
    let options = RequestOptions::new();
    let timeouts = options
        .set_connect_timeout(Some(OUTBOUND_TIMEOUT_NANOS))
        .and(options.set_first_byte_timeout(Some(OUTBOUND_TIMEOUT_NANOS)))
        .and(options.set_between_bytes_timeout(Some(OUTBOUND_TIMEOUT_NANOS)));
    // A host without timeouts still answers, later: better than not sending.
    let options = timeouts.is_ok().then_some(options);
    let outgoing = request
        .body()
        .map_err(|()| network("no request body".to_owned()))?;
    let failed = |e: ErrorCode| match e {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => TransportError::Timeout,
        other => TransportError::Network(format!("{other:?}")),
    };
    let response = outgoing_handler::handle(request, options).map_err(failed)?;
    {
        let stream = outgoing
            .write()
            .map_err(|()| network("no body stream".to_owned()))?;
        // One blocking write takes at most 4,096 bytes.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| network(format!("sending the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(failed)?;
    let answered = loop {
        if let Some(answered) = response.get() {
            break answered;
        }
        response.subscribe().block();
    };
    let response = answered
        .map_err(|()| network("response taken".to_owned()))?
        .map_err(failed)?;
    let status = response.status();
    if !read_body {
        return Ok((status, Vec::new()));
    }
    let incoming = response
        .consume()
        .map_err(|()| network("response body taken".to_owned()))?;
    let stream = incoming
        .stream()
        .map_err(|()| network("response body stream taken".to_owned()))?;
    let mut received = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(network(format!(
                    "reading the answer: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
    drop(stream);
    Ok((status, received))
}

/// What one invocation (a request or a cron tick) works with: the stores, each
/// opened when first used and then kept for the work after the answer too (a
/// second connection would parse the schema again), and the configuration.
pub struct Invocation {
    db: SpinDb,
    kv: SpinKv,
    config: Config,
}

impl Invocation {
    /// Reads the configuration; opens nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            db: SpinDb::default(),
            kv: SpinKv::default(),
            config: config(),
        }
    }

    /// The platform's stores, as the service takes them.
    #[must_use]
    pub fn stores(&self) -> Stores<'_> {
        Stores {
            db: &self.db,
            cache: &self.kv,
            stripe: &SpinStripeTransport,
        }
    }

    /// This component's configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Delivers what is due at `now`; a failure waits for the next request or tick.
    pub fn deliver_events(&self, now: credits::Timestamp) {
        if let Err(e) =
            credits_service::deliver_events(self.stores(), &self.config, now, &SpinEventTransport)
        {
            eprintln!("event delivery: {e}");
        }
    }
}

impl Default for Invocation {
    fn default() -> Self {
        Self::new()
    }
}

/// The scheduled auto-recharge evaluation (the cron component's whole job), then
/// the delivery of what is due.
pub fn recharge_check() -> Result<RechargeReport, String> {
    let invocation = Invocation::new();
    let report = credits_service::recharge_check(invocation.stores(), invocation.config())
        .map_err(|e| e.to_string());
    invocation.deliver_events(SystemClock.now());
    report
}
