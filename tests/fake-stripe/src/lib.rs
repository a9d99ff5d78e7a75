//! A Stripe-compatible test server on loopback, and Stripe's side of webhooks:
//! events as Stripe builds them, signed as Stripe signs them.
//!
//! The server implements only the endpoints the adapter calls, with Stripe's
//! shapes and strictness where it matters: form bodies, the secret key checked,
//! idempotency keys (same key and parameters: the stored answer again, 5xx
//! included; other parameters: `400 idempotency_error`; failed validation stores
//! nothing) and Stripe's test payment methods. Switches make it slow, fail with a
//! 5xx, drop the connection or leave PaymentIntents `processing`.
//!
//! [`browser`] adds what Stripe.js calls with the publishable key, for the
//! dashboard's browser tests; `src/main.rs` runs the server as a process.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The secret key the server accepts.
pub const SECRET: &str = "sk_test_51FakeSecretKeyForTests";

pub mod browser;
pub use browser::PUBLISHABLE_KEY;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Acts on the request, then answers only after this long.
    Slow(Duration),
    /// Answers `500 api_error` (stored under the idempotency key, as Stripe does).
    ServerError,
    /// Reads the request and closes the connection without answering.
    Drop,
    /// New PaymentIntents stay `processing`.
    Processing,
    /// Acts on the request, then answers `200` with a body that is not JSON
    /// (a proxy's error page); the idempotency key keeps the real answer.
    Garbled,
    /// New PaymentIntents come back in a status the app does not know.
    UnknownStatus,
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and raw query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded form body.
    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

struct StoredAnswer {
    endpoint: String,
    params: Vec<(String, String)>,
    status: u16,
    body: String,
}

struct State {
    mode: Mode,
    next_id: u64,
    idempotency: HashMap<String, StoredAnswer>,
    customers: HashMap<String, Value>,
    payment_intents: Vec<Value>,
    /// Payment method id → the customer it is attached to.
    attached: HashMap<String, String>,
    requests: Vec<Recorded>,
    browser: browser::BrowserSide,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_Fake{:06}", self.next_id)
    }
}

/// The server; it runs until the test process ends.
pub struct FakeStripe {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeStripe {
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts on this loopback port (0: any free one).
    pub fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Normal,
            next_id: 0,
            idempotency: HashMap::new(),
            customers: HashMap::new(),
            payment_intents: Vec::new(),
            attached: HashMap::new(),
            requests: Vec::new(),
            browser: browser::BrowserSide::default(),
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || serve(stream, &state));
            }
        });
        Self { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Attaches a payment method to a customer, as confirming a SetupIntent does.
    pub fn attach(&self, payment_method: &str, customer: &str) {
        self.state
            .lock()
            .unwrap()
            .attached
            .insert(payment_method.into(), customer.into());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("a request")
    }

    pub fn payment_intent_count(&self) -> usize {
        self.state.lock().unwrap().payment_intents.len()
    }

    /// Every PaymentIntent created, oldest first.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.state.lock().unwrap().payment_intents.clone()
    }

    /// The PaymentIntent of a purchase (by `metadata[purchase_id]`).
    pub fn payment_intent_of(&self, purchase_id: &str) -> Option<Value> {
        self.payment_intents()
            .into_iter()
            .find(|pi| pi["metadata"]["purchase_id"] == json!(purchase_id))
    }

    /// The cardholder confirmed (3-D Secure) in the browser: the PaymentIntent
    /// succeeds. Answers it, as `payment_intent.succeeded` carries it.
    pub fn complete_authentication(&self, payment_intent: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let pi = state
            .payment_intents
            .iter_mut()
            .find(|pi| pi["id"] == json!(payment_intent))
            .expect("a PaymentIntent of this server");
        pi["status"] = json!("succeeded");
        pi["last_payment_error"] = Value::Null;
        pi.clone()
    }

    /// Sets what a PaymentIntent's later retrieval and search show (a
    /// `processing` one settling, say).
    pub fn set_status(&self, payment_intent: &str, status: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let pi = state
            .payment_intents
            .iter_mut()
            .find(|pi| pi["id"] == json!(payment_intent))
            .expect("a PaymentIntent of this server");
        pi["status"] = json!(status);
        pi.clone()
    }

    /// The customer Stripe holds for an account, if one was created.
    pub fn customer_of(&self, account_id: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .customers
            .values()
            .find(|c| c["metadata"]["account_id"] == json!(account_id))
            .and_then(|c| c["id"].as_str().map(str::to_owned))
    }

    /// A customer made outside the app (an operator's existing one).
    pub fn create_customer(&self, name: &str) -> String {
        let mut state = self.state.lock().unwrap();
        let id = state.id("cus");
        let customer = json!({"id": id, "object": "customer", "name": name, "metadata": {}});
        state.customers.insert(id.clone(), customer);
        id
    }

    /// How many customers exist.
    pub fn customer_count(&self) -> usize {
        self.state.lock().unwrap().customers.len()
    }
}

/// An event's payload as Stripe sends it: `{"id", "object": "event", "type", "data": {"object"}}`.
#[must_use]
pub fn event(id: &str, kind: &str, object: &Value) -> String {
    json!({"id": id, "object": "event", "type": kind, "api_version": "2024-06-20",
        "created": unix_now(), "livemode": false, "data": {"object": object}})
    .to_string()
}

/// `Stripe-Signature` for `payload` under `secret` at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`.
#[must_use]
pub fn signature(payload: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Now, in unix seconds.
#[must_use]
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("in range")
}

/// Delivers `payload` to a webhook endpoint signed with `secret` now, as Stripe
/// does; answers the status and the body.
pub fn deliver(url: &str, secret: &str, payload: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", &signature(payload, secret, unix_now()))
        .send(payload)
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let mode = {
        let mut state = state.lock().unwrap();
        state.requests.push(request.clone());
        state.mode
    };
    if mode == Mode::Drop {
        return; // Closing without a word.
    }
    let (mut status, mut body) = respond(&mut state.lock().unwrap(), &request);
    if mode == Mode::Garbled {
        (status, body) = (200, "<html><body>502 Bad Gateway</body></html>".to_owned());
    }
    if let Mode::Slow(delay) = mode {
        thread::sleep(delay);
    }
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        target,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Request Failed",
        404 => "Not Found",
        _ => "Server Error",
    }
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> (u16, String) {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    (status, json!({ "error": error }).to_string())
}

fn respond(state: &mut State, request: &Recorded) -> (u16, String) {
    if let Some(answer) = browser::respond(state, request) {
        return answer;
    }
    // Echoes the key it was given, so the client's scrubbing is tested.
    match request.header("authorization") {
        Some(value) if value == format!("Bearer {SECRET}") => {}
        Some(value) => {
            let key = value.strip_prefix("Bearer ").unwrap_or(value);
            return error(
                401,
                "invalid_request_error",
                None,
                &format!("Invalid API Key provided: {key}"),
            );
        }
        None => {
            return error(
                401,
                "invalid_request_error",
                None,
                "You did not provide an API key.",
            );
        }
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let params: Vec<(String, String)> = if request.method == "POST" {
        if request.header("content-type") != Some("application/x-www-form-urlencoded") {
            return error(
                400,
                "invalid_request_error",
                None,
                "Stripe takes form-encoded bodies only.",
            );
        }
        form_urlencoded::parse(request.body.as_bytes())
            .into_owned()
            .collect()
    } else {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    };
    let endpoint = format!("{} {path}", request.method);
    let key = request.header("idempotency-key").map(str::to_owned);
    if let Some(key) = &key
        && let Some(stored) = state.idempotency.get(key)
    {
        if stored.endpoint == endpoint && stored.params == params {
            return (stored.status, stored.body.clone());
        }
        return error(
            400,
            "idempotency_error",
            None,
            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
        );
    }
    let (status, body) = if state.mode == Mode::ServerError {
        error(500, "api_error", None, "An unknown error occurred.")
    } else {
        route(
            state,
            &request.method,
            path,
            &params.iter().cloned().collect(),
        )
    };
    // Stripe saves an answer once the endpoint began executing: not a request that
    // failed validation.
    if let Some(key) = key
        && status != 400
    {
        state.idempotency.insert(
            key,
            StoredAnswer {
                endpoint,
                params,
                status,
                body: body.clone(),
            },
        );
    }
    (status, body)
}

fn metadata(params: &HashMap<String, String>) -> Value {
    let map: serde_json::Map<String, Value> = params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_owned(), json!(v)))
        })
        .collect();
    Value::Object(map)
}

/// Stripe's `No such customer: 'cus_x'`: `400` for an id given as a parameter,
/// `404` for one in the path.
fn no_such(status: u16, kind: &str, id: &str) -> (u16, String) {
    error(
        status,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {kind}: '{id}'"),
    )
}

fn missing(param: &str) -> (u16, String) {
    let answer = json!({"error": {"type": "invalid_request_error", "code": "parameter_missing",
        "message": format!("Missing required param: {param}."), "param": param}});
    (400, answer.to_string())
}

/// One of Stripe's test payment methods.
struct TestCard {
    brand: &'static str,
    last4: &'static str,
    /// The error code and decline code a charge fails with, if it does.
    failure: Option<(&'static str, &'static str)>,
}

fn test_card(id: &str) -> Option<TestCard> {
    let (brand, last4, failure) = match id {
        "pm_card_visa" => ("visa", "4242", None),
        "pm_card_mastercard" => ("mastercard", "4444", None),
        "pm_card_chargeDeclined" => ("visa", "0002", Some(("card_declined", "generic_decline"))),
        "pm_card_chargeDeclinedInsufficientFunds" => (
            "visa",
            "9995",
            Some(("card_declined", "insufficient_funds")),
        ),
        "pm_card_authenticationRequired" => (
            "visa",
            "3184",
            Some(("authentication_required", "authentication_required")),
        ),
        _ => return None,
    };
    Some(TestCard {
        brand,
        last4,
        failure,
    })
}

fn route(
    state: &mut State,
    method: &str,
    path: &str,
    params: &HashMap<String, String>,
) -> (u16, String) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v1", "customers"]) => {
            let id = state.id("cus");
            let customer = json!({"id": id, "object": "customer", "metadata": metadata(params)});
            state.customers.insert(id, customer.clone());
            (200, customer.to_string())
        }
        ("POST", ["v1", "setup_intents"]) => {
            let Some(customer) = params.get("customer") else {
                return missing("customer");
            };
            if !state.customers.contains_key(customer) {
                return no_such(400, "customer", customer);
            }
            let id = state.id("seti");
            let answer = json!({"id": id, "object": "setup_intent", "client_secret": format!("{id}_secret_abc"),
                "customer": customer, "usage": params.get("usage").map_or("off_session", String::as_str),
                "status": "requires_payment_method", "metadata": metadata(params)});
            state
                .browser
                .setup_intents
                .insert(id.clone(), answer.clone());
            (200, answer.to_string())
        }
        ("GET", ["v1", "payment_methods", id]) => match test_card(id) {
            Some(TestCard { brand, last4, .. }) => {
                let answer = json!({"id": id, "object": "payment_method", "type": "card",
                    "customer": state.attached.get(*id),
                    "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2030,
                             "country": "US", "funding": "credit"}});
                (200, answer.to_string())
            }
            None => no_such(404, "PaymentMethod", id),
        },
        ("POST", ["v1", "payment_intents"]) => create_payment_intent(state, params),
        ("GET", ["v1", "payment_intents", "search"]) => {
            let query = params.get("query").map_or("", String::as_str);
            let Some(purchase) = query
                .strip_prefix("metadata['purchase_id']:'")
                .and_then(|q| q.strip_suffix('\''))
            else {
                return error(
                    400,
                    "invalid_request_error",
                    None,
                    "Unsupported search query.",
                );
            };
            let data: Vec<&Value> = state
                .payment_intents
                .iter()
                .filter(|pi| pi["metadata"]["purchase_id"] == json!(purchase))
                .collect();
            let answer = json!({"object": "search_result", "url": "/v1/payment_intents/search",
                "has_more": false, "next_page": null, "data": data});
            (200, answer.to_string())
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => {
            let Some(pi) = state
                .payment_intents
                .iter_mut()
                .find(|pi| pi["id"] == json!(id))
            else {
                return no_such(404, "payment_intent", id);
            };
            if matches!(pi["status"].as_str(), Some("succeeded" | "canceled")) {
                let answer = json!({"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                    "message": format!("You cannot cancel this PaymentIntent because it has a status of {}.", pi["status"].as_str().unwrap_or("")),
                    "payment_intent": pi}});
                return (400, answer.to_string());
            }
            pi["status"] = json!("canceled");
            pi["cancellation_reason"] = json!(params.get("cancellation_reason"));
            (200, pi.to_string())
        }
        _ => error(
            404,
            "invalid_request_error",
            None,
            &format!("Unrecognized request URL ({method}: {path})."),
        ),
    }
}

fn create_payment_intent(state: &mut State, params: &HashMap<String, String>) -> (u16, String) {
    for required in ["amount", "currency", "customer", "payment_method"] {
        if !params.contains_key(required) {
            return missing(required);
        }
    }
    let Some(amount) = params["amount"].parse::<i64>().ok().filter(|a| *a >= 50) else {
        return error(
            400,
            "invalid_request_error",
            Some("amount_too_small"),
            "Amount must be at least €0.50 eur",
        );
    };
    let customer = &params["customer"];
    if !state.customers.contains_key(customer) {
        return no_such(400, "customer", customer);
    }
    let payment_method = &params["payment_method"];
    let Some(TestCard { failure, .. }) = test_card(payment_method) else {
        return no_such(400, "PaymentMethod", payment_method);
    };
    let id = state.id("pi");
    let mut pi = json!({"id": id, "object": "payment_intent", "amount": amount,
        "currency": params["currency"], "customer": customer, "payment_method": payment_method,
        "client_secret": format!("{id}_secret_xyz"), "metadata": metadata(params),
        "last_payment_error": null, "status": "succeeded"});
    let processing = state.mode == Mode::Processing;
    let answer = match failure {
        _ if processing => {
            pi["status"] = json!("processing");
            (200, pi.to_string())
        }
        _ if state.mode == Mode::UnknownStatus => {
            pi["status"] = json!("requires_capture");
            (200, pi.to_string())
        }
        None => (200, pi.to_string()),
        Some((code, decline_code)) => {
            let message = match decline_code {
                "insufficient_funds" => "Your card has insufficient funds.",
                "authentication_required" => {
                    "Your card was declined. This transaction requires authentication."
                }
                _ => "Your card was declined.",
            };
            let error = json!({"type": "card_error", "code": code, "decline_code": decline_code,
                "message": message, "payment_method": {"id": payment_method}});
            pi["status"] = json!("requires_payment_method");
            pi["last_payment_error"] = error.clone();
            let mut error = error;
            error["payment_intent"] = pi.clone();
            (402, json!({ "error": error }).to_string())
        }
    };
    state.payment_intents.push(pi);
    answer
}
