//! The request headers Spin adds for a component: the full URL, the matched route, the path info, the client address and the route's `:name` captures.

use std::net::SocketAddr;

use hyper::Request;
use hyper::header::{HOST, HeaderName, HeaderValue};

use crate::router::RouteMatch;

/// Spin's request headers, overwriting any a client sent.
pub fn set_spin_headers<B>(
    req: &mut Request<B>,
    found: &RouteMatch<'_>,
    local: SocketAddr,
    client: SocketAddr,
) {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| local.to_string(), str::to_string);
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_string();
    let route = found.route;
    let mut headers: Vec<(String, String)> = vec![
        (
            "spin-full-url".into(),
            format!("http://{host}{path_and_query}"),
        ),
        ("spin-path-info".into(), found.path_info.clone()),
        ("spin-matched-route".into(), route.raw().into()),
        ("spin-raw-component-route".into(), route.raw().into()),
        ("spin-component-route".into(), route.base()),
        ("spin-base-path".into(), "/".into()),
        ("spin-client-addr".into(), client.to_string()),
    ];
    for (name, value) in &found.captures {
        headers.push((format!("spin-path-match-{name}"), value.clone()));
    }
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            req.headers_mut().insert(name, value);
        }
    }
}
