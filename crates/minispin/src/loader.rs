//! Loading components: one shared engine, a compile cache keyed by file, and each component linked and pre-instantiated once with its grants.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::AppError;
use crate::instance::{Capabilities, ComponentCapabilities, InstanceState};
use crate::manifest::Manifest;

/// A component ready to instantiate: its `InstancePre` and what it was granted.
#[derive(Clone)]
pub struct Prepared {
    /// Made once; instantiated per request or tick.
    pub pre: InstancePre<InstanceState>,
    /// The component's grants, from which each instance's state is made.
    pub capabilities: ComponentCapabilities,
}

/// Compiles and links components for one app, once each.
pub struct Loader<'a> {
    manifest: &'a Manifest,
    engine: Engine,
    linker: Linker<InstanceState>,
    capabilities: &'a Capabilities,
    prepared: HashMap<String, Prepared>,
}

impl<'a> Loader<'a> {
    /// A loader for the app's components on the shared engine.
    pub fn new(manifest: &'a Manifest, capabilities: &'a Capabilities) -> Result<Self, AppError> {
        let engine = shared_engine()?;
        let linker =
            crate::instance::linker(&engine).map_err(|e| AppError::Engine(format!("{e:#}")))?;
        Ok(Self {
            manifest,
            engine,
            linker,
            capabilities,
            prepared: HashMap::new(),
        })
    }

    fn source(&self, id: &str) -> PathBuf {
        self.manifest.source_path(&self.manifest.components[id])
    }

    /// An error about component `id`, naming its file.
    pub fn component_error(&self, id: &str, what: &str, e: &wasmtime::Error) -> AppError {
        AppError::Component {
            component: id.into(),
            path: self.source(id),
            reason: format!("{what}: {e:#}"),
        }
    }

    /// The component's `InstancePre` and grants, made on first use.
    pub fn prepare(&mut self, id: &str) -> Result<Prepared, AppError> {
        if let Some(ready) = self.prepared.get(id) {
            return Ok(ready.clone());
        }
        let capabilities = self.capabilities.component(self.manifest, id)?;
        let path = self.source(id);
        let component = compile(&self.engine, &path).map_err(|reason| AppError::Component {
            component: id.into(),
            path: path.clone(),
            reason,
        })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| self.component_error(id, "cannot link (an import minispin lacks?)", &e))?;
        let ready = Prepared { pre, capabilities };
        self.prepared.insert(id.into(), ready.clone());
        Ok(ready)
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
