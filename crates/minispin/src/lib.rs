//! minispin: a small Spin-compatible runtime on wasmtime that runs a `spin.toml` and its components locally and in tests.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let app = minispin::App::load("spin.toml", minispin::AppOptions::default())?;
//! let server = app.serve(std::net::TcpListener::bind("127.0.0.1:0")?)?;
//! println!("serving on {}", server.base_url());
//! server.shutdown()?;
//! # Ok(()) }
//! ```

// "SQLite" and "WebAssembly" are names, not code; backticks would only add noise.
#![allow(clippy::doc_markdown)]

pub mod build;
pub mod cron_trigger;
pub mod http_trigger;
pub mod key_value;
pub mod manifest;
pub mod outbound_http;
pub mod sqlite;
pub mod state;
pub mod stats;
pub mod variables;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use build::{BuildError, build};
pub use manifest::{Manifest, ManifestError};
pub use stats::InstantiationSummary;

use cron_trigger::{CronComponent, CronJob, CronTrigger, CronTriggerError};
use http_trigger::{HttpComponent, HttpTrigger, RouteError, Router};
use key_value::{KeyValueError, KeyValueStores};
use outbound_http::{AllowedHostError, AllowedHosts};
use sqlite::{SqliteDatabases, SqliteError};
use state::{Backends, ComponentGrants, InstanceState};
use stats::InstantiationStats;
use variables::{AppVariables, VariablesError};

/// Why an application could not be loaded or served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A variable could not be resolved.
    #[error(transparent)]
    Variables(#[from] VariablesError),
    /// The key-value backend failed or a label is unknown.
    #[error(transparent)]
    KeyValue(#[from] KeyValueError),
    /// The SQLite backend failed or a label is unknown.
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    /// An `allowed_outbound_hosts` entry is invalid.
    #[error(transparent)]
    AllowedHost(#[from] AllowedHostError),
    /// A route is invalid or duplicated.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A cron trigger is invalid.
    #[error(transparent)]
    Cron(#[from] CronTriggerError),
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The wasmtime engine could not be configured.
    #[error("cannot configure wasmtime: {0}")]
    Engine(String),
    /// A component could not be read, compiled or linked (e.g. an import the
    /// runtime does not provide), or lacks the export its trigger calls.
    #[error("component `{component}` ({path}): {reason}")]
    Component {
        component: String,
        path: PathBuf,
        reason: String,
    },
    /// The server could not start or failed.
    #[error("server: {0}")]
    Server(String),
}

/// How to run an application. `Default` matches `spin up`.
#[derive(Clone)]
pub struct AppOptions {
    /// Where key-value and SQLite files live; `None` means `.spin` next to the manifest.
    pub state_dir: Option<PathBuf>,
    /// Variable values that win over `SPIN_VARIABLE_*` and manifest defaults.
    pub variables: HashMap<String, String>,
    /// Whether `serve`/`run` also run the cron schedules.
    pub cron: bool,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            state_dir: None,
            variables: HashMap::new(),
            cron: true,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variable names only: values may be secrets.
        f.debug_struct("AppOptions")
            .field("state_dir", &self.state_dir)
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("cron", &self.cron)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// A loaded application: every component compiled and pre-instantiated once.
/// Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    manifest: Manifest,
    state_dir: PathBuf,
    http: Arc<HttpTrigger>,
    cron: Arc<CronTrigger>,
    cron_enabled: bool,
    shutdown_grace: Duration,
    stats: Arc<InstantiationStats>,
}

impl App {
    /// Loads the manifest, resolves variables, opens the state directory and
    /// compiles and links every component a trigger uses. Fails on anything `spin up`
    /// would refuse at start-up, naming it.
    pub fn load(manifest_path: impl AsRef<Path>, options: AppOptions) -> Result<Self, AppError> {
        let AppOptions {
            state_dir,
            variables,
            cron: cron_enabled,
            shutdown_grace,
        } = options;
        let manifest = Manifest::load(manifest_path.as_ref())?;
        let state_dir = state_dir.unwrap_or_else(|| manifest.dir.join(".spin"));
        std::fs::create_dir_all(&state_dir).map_err(|source| AppError::StateDir {
            path: state_dir.clone(),
            source,
        })?;
        let app_variables =
            AppVariables::resolve(&manifest.variables, &variables, |k| std::env::var(k).ok())?;
        let backends = Backends {
            key_value: KeyValueStores::open(&state_dir)?,
            sqlite: SqliteDatabases::open(&state_dir)?,
        };
        let engine = shared_engine()?;
        let linker = state::linker(&engine).map_err(|e| AppError::Engine(format!("{e:#}")))?;
        let stats = Arc::new(InstantiationStats::default());

        let mut loader = Loader {
            manifest: &manifest,
            engine: &engine,
            linker: &linker,
            app_variables: &app_variables,
            backends: &backends,
            pres: HashMap::new(),
        };

        let router = Router::new(
            manifest
                .http_triggers
                .iter()
                .map(|t| (t.route.as_str(), t.component.as_str())),
        )?;
        let mut http_ready: HashMap<String, Arc<HttpComponent>> = HashMap::new();
        let mut http_components = Vec::new();
        for trigger in &manifest.http_triggers {
            let id = &trigger.component;
            if !http_ready.contains_key(id) {
                let (pre, grants) = loader.prepare(id)?;
                let ready = HttpComponent::new(pre, grants).map_err(|e| {
                    loader.component_error(id, "has no wasi:http/incoming-handler export", &e)
                })?;
                http_ready.insert(id.clone(), Arc::new(ready));
            }
            http_components.push(http_ready[id].clone());
        }

        let mut cron_ready: HashMap<String, Arc<CronComponent>> = HashMap::new();
        let mut jobs = Vec::new();
        for trigger in &manifest.cron_triggers {
            let id = &trigger.component;
            let schedule = cron_trigger::parse_schedule(id, &trigger.cron_expression)?;
            if !cron_ready.contains_key(id) {
                let (pre, grants) = loader.prepare(id)?;
                let ready = CronComponent::new(pre, grants).map_err(|e| {
                    loader.component_error(
                        id,
                        "has no fermyon:spin-cron handle-cron-event export",
                        &e,
                    )
                })?;
                cron_ready.insert(id.clone(), Arc::new(ready));
            }
            jobs.push(CronJob::new(
                id.clone(),
                trigger.cron_expression.clone(),
                schedule,
                cron_ready[id].clone(),
            ));
        }

        let http = Arc::new(HttpTrigger::new(
            router,
            http_components,
            backends.clone(),
            stats.clone(),
        ));
        let cron = Arc::new(CronTrigger::new(jobs, backends, stats.clone()));
        Ok(Self {
            inner: Arc::new(AppInner {
                manifest,
                state_dir,
                http,
                cron,
                cron_enabled,
                shutdown_grace,
                stats,
            }),
        })
    }

    /// The manifest the app was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The directory holding key-value and SQLite files.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// `(route, component)` for every HTTP trigger, in manifest order.
    pub fn routes(&self) -> Vec<(String, String)> {
        self.inner
            .http
            .router()
            .routes()
            .map(|(route, component)| (route.raw().to_string(), component.to_string()))
            .collect()
    }

    /// `(component, cron_expression)` for every cron trigger.
    pub fn cron_jobs(&self) -> Vec<(String, String)> {
        self.inner
            .cron
            .jobs()
            .iter()
            .map(|j| (j.component.clone(), j.expression.clone()))
            .collect()
    }

    /// Instantiation timings since load (HTTP requests and cron ticks).
    pub fn instantiation_stats(&self) -> InstantiationSummary {
        self.inner.stats.summary()
    }

    /// Spin's start-up text: where it listens and the available routes.
    pub fn startup_text(&self, addr: SocketAddr) -> String {
        use std::fmt::Write;
        let mut text = format!("Serving http://{addr}\nAvailable Routes:\n");
        for (route, component) in self.routes() {
            let (path, wildcard) = match route.strip_suffix("...") {
                Some(prefix) => (prefix.trim_end_matches('/').to_string(), " (wildcard)"),
                None => (route.clone(), ""),
            };
            let _ = writeln!(text, "  {component}: http://{addr}{path}{wildcard}");
        }
        for (component, expression) in self.cron_jobs() {
            let _ = writeln!(text, "  {component}: cron `{expression}`");
        }
        text
    }

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

    /// Runs every cron job of `component` once, now, in a fresh instance, as a tick
    /// would. Works whether or not the schedules are running.
    pub async fn fire_cron(&self, component: &str) -> Result<(), AppError> {
        self.inner
            .cron
            .fire(component)
            .await
            .map_err(|e| AppError::Component {
                component: component.into(),
                path: PathBuf::new(),
                reason: format!("cron tick failed: {e:#}"),
            })
    }

    /// [`App::fire_cron`] for callers without a tokio runtime.
    pub fn fire_cron_blocking(&self, component: &str) -> Result<(), AppError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::Server(e.to_string()))?
            .block_on(self.fire_cron(component))
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

/// Compiles and links components for one app, once each.
struct Loader<'a> {
    manifest: &'a Manifest,
    engine: &'a Engine,
    linker: &'a Linker<InstanceState>,
    app_variables: &'a AppVariables,
    backends: &'a Backends,
    pres: HashMap<String, (InstancePre<InstanceState>, ComponentGrants)>,
}

impl Loader<'_> {
    fn source(&self, id: &str) -> PathBuf {
        self.manifest.source_path(&self.manifest.components[id])
    }

    fn component_error(&self, id: &str, what: &str, e: &wasmtime::Error) -> AppError {
        AppError::Component {
            component: id.into(),
            path: self.source(id),
            reason: format!("{what}: {e:#}"),
        }
    }

    /// The component's `InstancePre` and grants, made on first use.
    fn prepare(
        &mut self,
        id: &str,
    ) -> Result<(InstancePre<InstanceState>, ComponentGrants), AppError> {
        if let Some(ready) = self.pres.get(id) {
            return Ok(ready.clone());
        }
        let decl = &self.manifest.components[id];
        self.backends
            .key_value
            .check_labels(id, &decl.key_value_stores)?;
        self.backends
            .sqlite
            .check_labels(id, &decl.sqlite_databases)?;
        let grants = ComponentGrants {
            id: Arc::from(id),
            environment: Arc::new(
                decl.environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            allowed_hosts: AllowedHosts::parse(id, &decl.allowed_outbound_hosts)?,
            key_value_stores: Arc::new(
                decl.key_value_stores
                    .iter()
                    .cloned()
                    .collect::<HashSet<_>>(),
            ),
            sqlite_databases: Arc::new(
                decl.sqlite_databases
                    .iter()
                    .cloned()
                    .collect::<HashSet<_>>(),
            ),
            variables: self.app_variables.for_component(
                id,
                &self.manifest.variables,
                &decl.variables,
            )?,
        };
        let path = self.source(id);
        let component = compile(self.engine, &path).map_err(|reason| AppError::Component {
            component: id.into(),
            path: path.clone(),
            reason,
        })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| self.component_error(id, "cannot link (an import minispin lacks?)", &e))?;
        self.pres.insert(id.into(), (pre.clone(), grants.clone()));
        Ok((pre, grants))
    }
}

/// One engine per process, so several apps (tests) share the instance pool and
/// compiled components.
fn shared_engine() -> Result<Engine, AppError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut pool = PoolingAllocationConfig::default();
            // Spin's order of magnitude: enough for many concurrent requests.
            pool.total_component_instances(1000)
                .total_core_instances(4000)
                .total_memories(1000)
                .total_tables(2000)
                .total_stacks(1000);
            let mut config = Config::new();
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            Engine::new(&config).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(AppError::Engine)
}

/// Compiles a component, reusing an earlier compile of the same unchanged file.
fn compile(engine: &Engine, path: &Path) -> Result<Component, String> {
    type Key = (PathBuf, SystemTime, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, Component>>> = OnceLock::new();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read component: {e} (build it first: `minispin build`)"))?;
    let key = (
        path.canonicalize().unwrap_or_else(|_| path.to_owned()),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
    );
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(component) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        return Ok(component.clone());
    }
    let component =
        Component::from_file(engine, path).map_err(|e| format!("cannot compile: {e:#}"))?;
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, component.clone());
    Ok(component)
}
