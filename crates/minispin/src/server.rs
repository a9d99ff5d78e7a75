//! Serving an app: HTTP and the cron schedules on a tokio runtime until shut down, from the caller's runtime ([`App::run`]) or a thread of its own ([`App::serve`]).

use std::net::SocketAddr;

use crate::{App, AppError};

impl App {
    /// Serves HTTP (and cron, if enabled) on `listener` until `shutdown` resolves,
    /// then waits for in-flight requests. Must run inside a multi-thread tokio runtime.
    pub async fn run(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), AppError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let cron = if self.inner.cron_enabled && !self.inner.cron.jobs().is_empty() {
            Some(tokio::spawn(
                self.inner.cron.clone().run(wait(stopped.clone())),
            ))
        } else {
            None
        };
        let http = self.inner.http.clone().serve(
            listener,
            async move {
                shutdown.await;
                let _ = stop.send(true);
            },
            self.inner.shutdown_grace,
        );
        let served = http.await;
        if let Some(cron) = cron {
            let _ = cron.await;
        }
        tracing::info!("shut down; {}", self.instantiation_stats());
        served.map_err(|e| AppError::Server(e.to_string()))
    }

    /// Serves on `listener` from a background thread with its own tokio runtime,
    /// for callers without one (tests, tools). Stop it with [`ServerHandle::shutdown`]
    /// or by dropping the handle.
    pub fn serve(&self, listener: std::net::TcpListener) -> Result<ServerHandle, AppError> {
        let server = |e: std::io::Error| AppError::Server(e.to_string());
        let addr = listener.local_addr().map_err(server)?;
        listener.set_nonblocking(true).map_err(server)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("minispin-worker")
            .build()
            .map_err(server)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = self.clone();
        let thread = std::thread::Builder::new()
            .name(format!("minispin-{}", self.inner.manifest.application.name))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| AppError::Server(e.to_string()))?;
                    app.run(listener, async {
                        let _ = stopped.await;
                    })
                    .await
                })
            })
            .map_err(server)?;
        Ok(ServerHandle {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            app: self.clone(),
        })
    }
}

/// A running server started by [`App::serve`].
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), AppError>>>,
    app: App,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for building request URLs.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The application being served.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops accepting, waits for in-flight requests and the cron schedules, and
    /// returns the server's outcome.
    pub fn shutdown(mut self) -> Result<(), AppError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), AppError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| AppError::Server("server thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
