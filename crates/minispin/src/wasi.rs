//! WASI 0.2 as Spin gives it to a component: stdout and stderr inherited, the component's `environment` as environment variables, no files, no sockets.

use std::sync::Arc;

use wasmtime_wasi::WasiCtx;

use crate::manifest::ComponentDecl;

/// What one component gets through WASI, from its manifest declaration.
#[derive(Clone, Default)]
pub struct ComponentWasi {
    environment: Arc<Vec<(String, String)>>,
}

impl ComponentWasi {
    /// The component's grant: its `environment` table.
    pub fn component(decl: &ComponentDecl) -> Self {
        Self {
            environment: Arc::new(
                decl.environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        }
    }

    /// A fresh WASI context for one instance.
    pub fn prepare(&self) -> WasiCtx {
        let mut wasi = WasiCtx::builder();
        // Spin shows component output on its own stdout/stderr; no files, no sockets.
        wasi.inherit_stdout()
            .inherit_stderr()
            .envs(&self.environment)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        wasi.build()
    }
}
