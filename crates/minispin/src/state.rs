//! Per-instance store data: WASI, `wasi:http` and each Spin capability's instance state, plus the linker that wires them.

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::key_value::{KeyValueInstance, KeyValueStores};
use crate::outbound_http::{AllowedHosts, OutboundHttp};
use crate::sqlite::{SqliteDatabases, SqliteInstance};
use crate::variables::{ComponentVariables, VariablesInstance};

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

/// What a component was granted by the manifest, resolved once at start-up.
#[derive(Clone)]
pub struct ComponentGrants {
    /// Component id, for logs.
    pub id: Arc<str>,
    /// `environment`, passed through WASI.
    pub environment: Arc<Vec<(String, String)>>,
    /// `allowed_outbound_hosts`.
    pub allowed_hosts: AllowedHosts,
    /// `key_value_stores`.
    pub key_value_stores: Arc<HashSet<String>>,
    /// `sqlite_databases`.
    pub sqlite_databases: Arc<HashSet<String>>,
    /// `variables`, expanded.
    pub variables: ComponentVariables,
}

/// The application's shared backends, from which per-instance state is made.
#[derive(Clone)]
pub struct Backends {
    /// Key-value stores.
    pub key_value: KeyValueStores,
    /// SQLite databases.
    pub sqlite: SqliteDatabases,
}

impl InstanceState {
    /// Fresh state for one instance of a component.
    pub fn new(backends: &Backends, grants: &ComponentGrants) -> Self {
        let mut wasi = WasiCtx::builder();
        // Spin shows component output on its own stdout/stderr; no files, no sockets.
        wasi.inherit_stdout()
            .inherit_stderr()
            .envs(&grants.environment)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound: OutboundHttp::new(grants.id.clone(), grants.allowed_hosts.clone()),
            key_value: backends.key_value.instance(grants.key_value_stores.clone()),
            sqlite: backends.sqlite.instance(grants.sqlite_databases.clone()),
            variables: grants.variables.instance(),
        }
    }

    /// The `wasi:http` view, for building incoming requests and response outparams.
    pub fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        self.http()
    }
}

/// A linker with every host interface minispin offers: WASI 0.2, `wasi:http`
/// outgoing requests, and Spin's key-value, SQLite and variables.
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
