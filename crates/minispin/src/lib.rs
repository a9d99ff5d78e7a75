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

mod build;
mod cron_trigger;
mod http_trigger;
mod instance;
mod key_value;
mod loader;
mod manifest;
mod outbound_http;
mod router;
mod runtime_config;
mod server;
mod spin_headers;
mod sqlite;
mod stats;
mod variables;
mod wasi;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use build::{BuildError, build};
pub use cron_trigger::CronTriggerError;
pub use key_value::KeyValueError;
pub use manifest::{
    Application, BuildDecl, ComponentDecl, CronTriggerDecl, Executor, HttpTriggerDecl, Manifest,
    ManifestError, VariableDecl,
};
pub use outbound_http::AllowedHostError;
pub use router::RouteError;
pub use runtime_config::RuntimeConfigError;
pub use server::ServerHandle;
pub use sqlite::SqliteError;
pub use stats::InstantiationSummary;
pub use variables::VariablesError;

use cron_trigger::{CronComponent, CronJob, CronTrigger};
use http_trigger::{HttpComponent, HttpTrigger};
use instance::Capabilities;
use loader::Loader;
use router::Router;
use runtime_config::RuntimeConfig;
use stats::InstantiationStats;
use variables::AppVariables;

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
    /// The runtime config file is unreadable or invalid.
    #[error(transparent)]
    RuntimeConfig(#[from] RuntimeConfigError),
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
    /// A Spin runtime config file (`spin up --runtime-config-file`): key-value
    /// stores and SQLite databases by label. `None` means Spin's defaults.
    pub runtime_config_file: Option<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            state_dir: None,
            variables: HashMap::new(),
            cron: true,
            shutdown_grace: Duration::from_secs(10),
            runtime_config_file: None,
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
            .field("runtime_config_file", &self.runtime_config_file)
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
            runtime_config_file,
        } = options;
        let manifest = Manifest::load(manifest_path.as_ref())?;
        let state_dir = state_dir.unwrap_or_else(|| manifest.dir.join(".spin"));
        std::fs::create_dir_all(&state_dir).map_err(|source| AppError::StateDir {
            path: state_dir.clone(),
            source,
        })?;
        let app_variables =
            AppVariables::resolve(&manifest.variables, &variables, |k| std::env::var(k).ok())?;
        let runtime_config = match &runtime_config_file {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        let capabilities = Capabilities::configure(&state_dir, &runtime_config, app_variables)?;
        let stats = Arc::new(InstantiationStats::default());
        let mut loader = Loader::new(&manifest, &capabilities)?;

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
                let ready = HttpComponent::new(loader.prepare(id)?).map_err(|e| {
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
                let ready = CronComponent::new(loader.prepare(id)?).map_err(|e| {
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

        let http = Arc::new(HttpTrigger::new(router, http_components, stats.clone()));
        let cron = Arc::new(CronTrigger::new(jobs, stats.clone()));
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
