//! Exercises every host interface minispin offers, one small route each; answers 200 on success.

use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingResponse, Request, Response, ResponseOutparam,
};
use spin_sdk::http_component;
use spin_sdk::{key_value, sqlite, variables};

/// Sets the response itself, so one route can keep working after it.
#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let req = match Request::try_from_incoming_request(req).await {
        Ok(req) => req,
        Err(e) => return respond(out, text(400, &format!("{e:?}"))).await,
    };
    let info = path_info(&req);
    if let ["late", key] = parts(&info).as_slice() {
        return late(out, key).await;
    }
    respond(out, route(req).await).await;
}

fn path_info(req: &Request) -> String {
    req.header("spin-path-info")
        .and_then(|h| h.as_str())
        .unwrap_or_default()
        .to_string()
}

fn parts(info: &str) -> Vec<&str> {
    info.split('/').filter(|s| !s.is_empty()).collect()
}

/// Sends a whole response, as the SDK does for a handler returning one.
async fn respond(out: ResponseOutparam, mut response: Response) {
    let body = std::mem::take(response.body_mut());
    match OutgoingResponse::try_from(response) {
        Ok(response) => {
            if let Err(e) = out.set_with_body(response, body).await {
                eprintln!("cannot send the response: {e}");
            }
        }
        Err(e) => eprintln!("cannot convert the response: {e}"),
    }
}

/// Answers `sent` and completes the body, then, a second later, stores `late` under
/// `key`: work a component does after its response is complete.
async fn late(out: ResponseOutparam, key: &str) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(200);
    // Returns once the body is written and finished.
    if let Err(e) = out.set_with_body(response, b"sent".to_vec()).await {
        eprintln!("cannot send the response: {e}");
        return;
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    if let Err(e) = key_value::Store::open_default().and_then(|s| s.set(key, b"late")) {
        eprintln!("cannot store the late value: {e:?}");
    }
}

/// Routes on the path after the matched trigger route.
async fn route(req: Request) -> Response {
    let info = path_info(&req);
    let parts = parts(&info);
    match (req.method(), parts.as_slice()) {
        (_, ["hello"] | []) => text(200, "hello"),
        (_, [.., "headers"]) => headers(&req),
        (Method::Get, ["kv", key]) => kv_get("default", key),
        (Method::Post, ["kv", key]) => kv_set("default", key, req.body()),
        (Method::Delete, ["kv", key]) => kv_delete(key),
        (_, ["kv-exists", key]) => kv_exists(key),
        (_, ["kv-keys"]) => kv_keys(),
        (Method::Get, ["kvl", label, key]) => kv_get(label, key),
        (Method::Post, ["kvl", label, key]) => kv_set(label, key, req.body()),
        (_, ["kv-open", label]) => kv_open(label),
        (_, ["sqlite-open", label]) => sqlite_open(label),
        (Method::Post, ["sqlite", "hit"]) => sqlite_hit(),
        (Method::Post, ["sqlite", "query"]) => sqlite_query("default", req.body()),
        (Method::Post, ["sqlite-label", label]) => sqlite_query(label, req.body()),
        (_, ["var", name]) => variable(name),
        (_, ["env", name]) => text(200, &std::env::var(name).unwrap_or_default()),
        (_, ["outbound"]) => outbound(req.query()).await,
        (_, ["trap"]) => panic!("this handler traps on purpose"),
        _ => text(404, "no such test route"),
    }
}

fn text(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .build()
}

/// Every `spin-*` request header, one `name: value` a line, sorted.
fn headers(req: &Request) -> Response {
    let mut lines: Vec<String> = req
        .headers()
        .filter(|(name, _)| name.starts_with("spin-"))
        .map(|(name, value)| format!("{name}: {}", value.as_str().unwrap_or("?")))
        .collect();
    lines.sort();
    text(200, &lines.join("\n"))
}

fn kv_get(label: &str, key: &str) -> Response {
    match key_value::Store::open(label).and_then(|s| s.get(key)) {
        Ok(Some(value)) => text(200, &String::from_utf8_lossy(&value)),
        Ok(None) => text(404, "missing"),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn kv_set(label: &str, key: &str, value: &[u8]) -> Response {
    match key_value::Store::open(label).and_then(|s| s.set(key, value)) {
        Ok(()) => text(200, "stored"),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn kv_delete(key: &str) -> Response {
    match key_value::Store::open_default().and_then(|s| s.delete(key)) {
        Ok(()) => text(200, "deleted"),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn kv_exists(key: &str) -> Response {
    match key_value::Store::open_default().and_then(|s| s.exists(key)) {
        Ok(exists) => text(200, &exists.to_string()),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

/// The default store's keys, sorted, comma-separated.
fn kv_keys() -> Response {
    match key_value::Store::open_default().and_then(|s| s.get_keys()) {
        Ok(mut keys) => {
            keys.sort();
            text(200, &keys.join(","))
        }
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn kv_open(label: &str) -> Response {
    match key_value::Store::open(label) {
        Ok(_) => text(200, "opened"),
        Err(e) => text(403, &format!("{e:?}")),
    }
}

fn sqlite_open(label: &str) -> Response {
    match sqlite::Connection::open(label) {
        Ok(_) => text(200, "opened"),
        Err(e) => text(403, &format!("{e:?}")),
    }
}

/// Records one hit and answers how many there are.
fn sqlite_hit() -> Response {
    let run = || -> Result<i64, sqlite::Error> {
        let db = sqlite::Connection::open_default()?;
        db.execute(
            "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, note TEXT)",
            &[],
        )?;
        db.execute(
            "INSERT INTO hits (note) VALUES (?)",
            &[sqlite::Value::Text("hit".into())],
        )?;
        let result = db.execute("SELECT COUNT(*) AS n FROM hits", &[])?;
        Ok(result
            .rows()
            .next()
            .and_then(|r| r.get::<i64>("n"))
            .unwrap_or(-1))
    };
    match run() {
        Ok(n) => text(200, &n.to_string()),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

/// Runs the body as one statement on a new connection to `label`; answers the
/// rows, one a line, values separated by `|`.
fn sqlite_query(label: &str, statement: &[u8]) -> Response {
    let statement = String::from_utf8_lossy(statement);
    let result = sqlite::Connection::open(label).and_then(|db| db.execute(&statement, &[]));
    match result {
        Ok(result) => {
            let rows: Vec<String> = result
                .rows
                .iter()
                .map(|row| {
                    row.values
                        .iter()
                        .map(|value| match value {
                            sqlite::Value::Integer(i) => i.to_string(),
                            sqlite::Value::Real(r) => r.to_string(),
                            sqlite::Value::Text(t) => t.clone(),
                            sqlite::Value::Blob(b) => format!("{b:?}"),
                            sqlite::Value::Null => "NULL".into(),
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            text(200, &rows.join("\n"))
        }
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn variable(name: &str) -> Response {
    match variables::get(name) {
        Ok(value) => text(200, &value),
        Err(e) => text(404, &format!("{e:?}")),
    }
}

/// Fetches `?url=...` and answers `upstream <status> <body>`, or 502 with the error.
async fn outbound(query: &str) -> Response {
    let url = query.strip_prefix("url=").unwrap_or(query);
    let request = Request::get(url);
    match spin_sdk::http::send::<_, Response>(request).await {
        Ok(response) => text(
            200,
            &format!(
                "upstream {} {}",
                response.status(),
                String::from_utf8_lossy(response.body())
            ),
        ),
        Err(e) => text(502, &format!("{e:?}")),
    }
}
