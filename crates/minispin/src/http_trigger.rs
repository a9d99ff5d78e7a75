//! The HTTP trigger: routes each request as Spin does, adds Spin's headers, and runs it in a fresh instance.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::instance::{ComponentCapabilities, InstanceState};
use crate::loader::Prepared;
use crate::router::Router;
use crate::spin_headers::set_spin_headers;
use crate::stats::InstantiationStats;

/// One HTTP component ready to serve: its pre-instantiation and its grants.
pub struct HttpComponent {
    pre: ProxyPre<InstanceState>,
    capabilities: ComponentCapabilities,
}

impl HttpComponent {
    /// Checks that the component exports `wasi:http/incoming-handler`.
    pub fn new(prepared: Prepared) -> wasmtime::Result<Self> {
        Ok(Self {
            pre: ProxyPre::new(prepared.pre)?,
            capabilities: prepared.capabilities,
        })
    }
}

/// The HTTP trigger of an application.
pub struct HttpTrigger {
    router: Router,
    /// Indexed like the router's triggers.
    components: Vec<Arc<HttpComponent>>,
    stats: Arc<InstantiationStats>,
    guests: Arc<GuestTasks>,
}

/// Guest tasks still running. A component may keep working after its response is
/// complete (Spin lets it), so shutdown waits for these, not only for connections.
#[derive(Default)]
struct GuestTasks {
    running: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one running guest task until dropped, even if the task panics.
struct Running(Arc<GuestTasks>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl GuestTasks {
    fn spawn<F>(self: &Arc<Self>, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.clone());
        tokio::spawn(async move {
            let _running = running;
            task.await
        })
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl HttpTrigger {
    /// An HTTP trigger over a router and one ready component per route.
    pub fn new(
        router: Router,
        components: Vec<Arc<HttpComponent>>,
        stats: Arc<InstantiationStats>,
    ) -> Self {
        Self {
            router,
            components,
            stats,
            guests: Arc::default(),
        }
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Accepts connections until `shutdown` resolves, then lets in-flight requests
    /// and guests still working after their response finish (up to `grace` in all).
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
        let deadline = tokio::time::Instant::now() + grace;
        if tokio::time::timeout_at(deadline, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests still running after {grace:?}; closing");
        }
        if tokio::time::timeout_at(deadline, self.guests.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("components still running after {grace:?}; stopping them");
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
        let mut store = component.capabilities.new_store(component.pre.engine());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http_view()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http_view().new_response_outparam(sender)?;
        let stats = self.stats.clone();
        // Its own task, so the guest can stream the body after the head is sent and
        // keep working after the body is complete; shutdown waits for it.
        let task = self.guests.spawn(async move {
            let proxy = stats
                .time(component.pre.instantiate_async(&mut store))
                .await?;
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

fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
