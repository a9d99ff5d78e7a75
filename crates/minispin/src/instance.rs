//! One instance's store: WASI, `wasi:http` and each capability's per-instance state, made the same way for every trigger, plus the linker that wires them.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::AppError;
use crate::key_value::{ComponentStores, KeyValueInstance, KeyValueStores};
use crate::manifest::Manifest;
use crate::outbound_http::{AllowedHosts, OutboundHttp};
use crate::runtime_config::RuntimeConfig;
use crate::sqlite::{ComponentDatabases, SqliteDatabases, SqliteInstance};
use crate::variables::{AppVariables, ComponentVariables, VariablesInstance};
use crate::wasi::ComponentWasi;

/// Everything one instance of one component can reach. A fresh one is made for
/// every request and every cron tick.
pub struct InstanceState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundHttp,
    key_value: KeyValueInstance,
    sqlite: SqliteInstance,
    variables: VariablesInstance,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl InstanceState {
    /// The `wasi:http` view, for building incoming requests and response outparams.
    pub fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        self.http()
    }
}

/// Every capability configured for the application, as Spin's factors are
/// configured once per app.
pub struct Capabilities {
    variables: AppVariables,
    key_value: KeyValueStores,
    sqlite: SqliteDatabases,
}

impl Capabilities {
    /// Configures each capability for the app.
    pub fn configure(
        state_dir: &Path,
        runtime_config: &RuntimeConfig,
        variables: AppVariables,
    ) -> Result<Self, AppError> {
        Ok(Self {
            variables,
            key_value: KeyValueStores::configure(state_dir, runtime_config)?,
            sqlite: SqliteDatabases::configure(state_dir, runtime_config)?,
        })
    }

    /// What component `id` may reach: each capability computes its own grant from
    /// the component's declaration. Fails on anything `spin up` refuses at start-up.
    pub fn component(
        &self,
        manifest: &Manifest,
        id: &str,
    ) -> Result<ComponentCapabilities, AppError> {
        let decl = &manifest.components[id];
        Ok(ComponentCapabilities {
            wasi: ComponentWasi::component(decl),
            key_value: self.key_value.component(id, decl)?,
            sqlite: self.sqlite.component(id, decl)?,
            variables: self.variables.component(id, &manifest.variables, decl)?,
            outbound: AllowedHosts::component(id, decl, &manifest.variables, &self.variables)?,
            id: Arc::from(id),
        })
    }
}

/// What one component was granted, resolved once at start-up.
#[derive(Clone)]
pub struct ComponentCapabilities {
    id: Arc<str>,
    wasi: ComponentWasi,
    key_value: ComponentStores,
    sqlite: ComponentDatabases,
    variables: ComponentVariables,
    outbound: AllowedHosts,
}

impl ComponentCapabilities {
    /// A store with fresh state for one instance of the component: the one way both
    /// triggers make them.
    pub fn new_store(&self, engine: &Engine) -> Store<InstanceState> {
        let state = InstanceState {
            table: ResourceTable::new(),
            wasi: self.wasi.prepare(),
            http: WasiHttpCtx::new(),
            outbound: self.outbound.prepare(self.id.clone()),
            key_value: self.key_value.prepare(),
            sqlite: self.sqlite.prepare(),
            variables: self.variables.prepare(),
        };
        Store::new(engine, state)
    }
}

/// A linker with every host interface minispin offers: WASI 0.2, `wasi:http`
/// outgoing requests, Spin's key-value, SQLite and variables, and the cron types.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker: Linker<InstanceState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::key_value::link(&mut linker, |s| &mut s.key_value)?;
    crate::sqlite::link(&mut linker, |s| &mut s.sqlite)?;
    crate::variables::link(&mut linker, |s| &mut s.variables)?;
    crate::cron_trigger::link(&mut linker)?;
    Ok(linker)
}
