//! The HTTP trigger: Spin's route matching, Spin's request headers, and one fresh instance per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use wasmtime::Store;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::state::{Backends, ComponentGrants, InstanceState};
use crate::stats::InstantiationStats;

/// Why a route could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The route text breaks Spin's route syntax.
    #[error("route `{route}`: {reason}")]
    Invalid { route: String, reason: String },
    /// Two triggers claim the same route.
    #[error("route `{route}` is used by both `{first}` and `{second}`")]
    Duplicate {
        route: String,
        first: String,
        second: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `:name`, one path segment.
    Param(String),
}

/// One `[[trigger.http]]` route: exact (`/a/b`) or trailing wildcard (`/a/...`).
#[derive(Debug, Clone)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

impl Route {
    /// Parses a route as Spin writes them.
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        let invalid = |reason: &str| RouteError::Invalid {
            route: raw.into(),
            reason: reason.into(),
        };
        if !raw.starts_with('/') {
            return Err(invalid("must start with `/`"));
        }
        let (prefix, wildcard) = match raw.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for part in prefix.split('/').filter(|s| !s.is_empty()) {
            if part == "..." {
                return Err(invalid("`...` may only end a route"));
            }
            segments.push(match part.strip_prefix(':') {
                Some("") => return Err(invalid("`:` needs a name")),
                Some(name) => Segment::Param(name.into()),
                None => Segment::Literal(part.into()),
            });
        }
        Ok(Self {
            raw: raw.into(),
            segments,
            wildcard,
        })
    }

    /// The route as written in the manifest (`spin-raw-component-route`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its wildcard (`spin-component-route`).
    fn base(&self) -> String {
        if self.segments.is_empty() {
            return if self.wildcard {
                String::new()
            } else {
                "/".into()
            };
        }
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => {
                    out.push(':');
                    out.push_str(p);
                }
            }
        }
        out
    }

    /// Rank among matching routes, highest wins: exact before wildcard, then more
    /// segments, then more literal segments.
    fn rank(&self) -> (bool, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!self.wildcard, self.segments.len(), literals)
    }

    fn matches<'p>(&self, path: &[&'p str]) -> Option<Vec<(String, &'p str)>> {
        if path.len() < self.segments.len() || (!self.wildcard && path.len() != self.segments.len())
        {
            return None;
        }
        let mut captures = Vec::new();
        for (segment, part) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => captures.push((name.clone(), *part)),
            }
        }
        Some(captures)
    }
}

/// What the router found for a path.
#[derive(Debug)]
pub struct RouteMatch<'a> {
    /// Index of the trigger in manifest order.
    pub trigger: usize,
    /// The matched route.
    pub route: &'a Route,
    /// The path after the matched part (`spin-path-info`).
    pub path_info: String,
    /// `:name` captures.
    pub captures: Vec<(String, String)>,
}

/// Spin's router: exact routes beat wildcards; among wildcards the longest prefix wins.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    /// Builds a router from `(route, component)` pairs in manifest order.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RouteError> {
        let mut out: Vec<(Route, String)> = Vec::new();
        for (raw, component) in routes {
            let route = Route::parse(raw)?;
            if let Some((_, first)) = out
                .iter()
                .find(|(r, _)| r.segments == route.segments && r.wildcard == route.wildcard)
            {
                return Err(RouteError::Duplicate {
                    route: raw.into(),
                    first: first.clone(),
                    second: component.into(),
                });
            }
            out.push((route, component.into()));
        }
        Ok(Self { routes: out })
    }

    /// `(route, component)` in manifest order.
    pub fn routes(&self) -> impl Iterator<Item = (&Route, &str)> {
        self.routes.iter().map(|(r, c)| (r, c.as_str()))
    }

    /// The best route for a request path, if any.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (trigger, route, captures) = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, (route, _))| route.matches(&parts).map(|c| (i, route, c)))
            // max_by_key keeps the last maximum; reverse so manifest order breaks ties.
            .rev()
            .max_by_key(|(_, route, _)| route.rank())?;
        let path_info = if route.wildcard {
            let rest = &parts[route.segments.len()..];
            if rest.is_empty() && route.segments.is_empty() {
                "/".to_string()
            } else if rest.is_empty() {
                String::new()
            } else {
                let mut s = String::new();
                for part in rest {
                    s.push('/');
                    s.push_str(part);
                }
                if path.ends_with('/') {
                    s.push('/');
                }
                s
            }
        } else {
            String::new()
        };
        Some(RouteMatch {
            trigger,
            route,
            path_info,
            captures: captures
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
        })
    }

    /// The component a trigger index routes to.
    pub fn component(&self, trigger: usize) -> &str {
        &self.routes[trigger].1
    }
}

/// One HTTP component ready to serve: its pre-instantiation and its grants.
pub struct HttpComponent {
    pre: ProxyPre<InstanceState>,
    grants: ComponentGrants,
}

impl HttpComponent {
    /// Checks that the component exports `wasi:http/incoming-handler`.
    pub fn new(pre: InstancePre<InstanceState>, grants: ComponentGrants) -> wasmtime::Result<Self> {
        Ok(Self {
            pre: ProxyPre::new(pre)?,
            grants,
        })
    }
}

/// The HTTP trigger of an application.
pub struct HttpTrigger {
    router: Router,
    /// Indexed like the router's triggers.
    components: Vec<Arc<HttpComponent>>,
    backends: Backends,
    stats: Arc<InstantiationStats>,
}

impl HttpTrigger {
    /// An HTTP trigger over a router and one ready component per route.
    pub fn new(
        router: Router,
        components: Vec<Arc<HttpComponent>>,
        backends: Backends,
        stats: Arc<InstantiationStats>,
    ) -> Self {
        Self {
            router,
            components,
            backends,
            stats,
        }
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Accepts connections until `shutdown` resolves, then lets in-flight requests
    /// finish (up to `grace`).
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, client) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            continue;
                        }
                    };
                    let trigger = self.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let trigger = trigger.clone();
                        async move { Ok::<_, Infallible>(trigger.handle(req, local, client).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!("connection from {client}: {e}");
                        }
                    });
                }
            }
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests still running after {grace:?}; closing");
        }
        Ok(())
    }

    /// Routes one request, runs it in a fresh instance, logs one line.
    async fn handle(
        &self,
        mut req: Request<Incoming>,
        local: SocketAddr,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let response = match self.router.route(&path) {
            None => plain(StatusCode::NOT_FOUND, "Not Found"),
            Some(found) => {
                let component = self.components[found.trigger].clone();
                set_spin_headers(&mut req, &found, local, client);
                match self.run(component, req).await {
                    Ok(response) => response,
                    Err(e) => {
                        tracing::error!(
                            component = %self.router.component(found.trigger),
                            "{method} {path} failed: {e:#}"
                        );
                        plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    }
                }
            }
        };
        tracing::info!(
            "{method} {path} {} {:.2}ms",
            response.status().as_u16(),
            start.elapsed().as_secs_f64() * 1000.0
        );
        response
    }

    async fn run(
        &self,
        component: Arc<HttpComponent>,
        req: Request<Incoming>,
    ) -> wasmtime::Result<Response<HyperOutgoingBody>> {
        let engine = component.pre.engine().clone();
        let mut store = Store::new(
            &engine,
            InstanceState::new(&self.backends, &component.grants),
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http_view()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http_view().new_response_outparam(sender)?;
        let stats = self.stats.clone();
        // Its own task, so the guest can keep streaming the body after the head is sent.
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let proxy = component.pre.instantiate_async(&mut store).await?;
            stats.record(started.elapsed());
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(wasmtime::format_err!("guest answered with error {code:?}")),
            // The outparam was dropped unset: the guest trapped or returned early.
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::format_err!(
                    "guest returned without setting a response"
                )),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(wasmtime::format_err!("guest task failed: {e}")),
            },
        }
    }
}

/// Spin's request headers, overwriting any a client sent.
fn set_spin_headers(
    req: &mut Request<Incoming>,
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

fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_router() -> Router {
        Router::new([
            ("/api/admin/accounts", "accounts"),
            ("/api/admin/accounts/...", "accounts-wild"),
            ("/api/billing/credits", "balance"),
            ("/", "dashboard"),
            ("/assets/...", "assets"),
            ("/users/:id/...", "users"),
            ("/...", "not-found"),
        ])
        .unwrap()
    }

    fn component<'a>(router: &'a Router, path: &str) -> (&'a str, String) {
        let found = router.route(path).unwrap();
        (router.component(found.trigger), found.path_info)
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = app_router();
        assert_eq!(
            component(&r, "/api/admin/accounts"),
            ("accounts", String::new())
        );
        assert_eq!(
            component(&r, "/api/admin/accounts/acme/plan"),
            ("accounts-wild", "/acme/plan".into())
        );
        assert_eq!(component(&r, "/api/billing/credits").0, "balance");
        assert_eq!(component(&r, "/api/billing/credits/x").0, "not-found");
        assert_eq!(component(&r, "/").0, "dashboard");
        assert_eq!(
            component(&r, "/assets/app.js"),
            ("assets", "/app.js".into())
        );
        assert_eq!(component(&r, "/assets"), ("assets", String::new()));
        assert_eq!(
            component(&r, "/nothing/here"),
            ("not-found", "/nothing/here".into())
        );
    }

    #[test]
    fn single_segment_parameters_are_captured() {
        let r = app_router();
        let found = r.route("/users/42/profile").unwrap();
        assert_eq!(r.component(found.trigger), "users");
        assert_eq!(found.captures, [("id".to_string(), "42".to_string())]);
        assert_eq!(found.path_info, "/profile");
    }

    #[test]
    fn without_catch_all_unknown_paths_do_not_match() {
        let r = Router::new([("/a", "a")]).unwrap();
        assert!(r.route("/b").is_none());
        assert!(r.route("/a/b").is_none());
    }

    #[test]
    fn duplicate_and_malformed_routes_are_errors() {
        assert!(Router::new([("/a", "x"), ("/a", "y")]).is_err());
        assert!(Router::new([("a", "x")]).is_err());
        assert!(Router::new([("/a/.../b", "x")]).is_err());
    }
}
