//! The `minispin` command: `build` and `up`, like `spin build` and `spin up`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// A small Spin-compatible runtime: runs a spin.toml and its components locally.
#[derive(Parser)]
#[command(name = "minispin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every component's build command, like `spin build`.
    Build {
        /// The application manifest.
        #[arg(short = 'f', long = "file", default_value = "spin.toml")]
        file: PathBuf,
    },
    /// Serve the application, like `spin up`.
    Up {
        /// The application manifest.
        #[arg(short = 'f', long = "file", default_value = "spin.toml")]
        file: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Build the components first.
        #[arg(long)]
        build: bool,
        /// Where the key-value and database files live (default: `.spin` next to the manifest).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Set a variable, `name=value` (wins over `SPIN_VARIABLE_*` and defaults).
        #[arg(long = "variable", value_name = "NAME=VALUE")]
        variables: Vec<String>,
        /// Do not run the cron schedules.
        #[arg(long)]
        no_cron: bool,
        /// A Spin runtime config file: `[key_value_store.<label>]` (`spin`, `redis`)
        /// and `[sqlite_database.<label>]` (`spin`).
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_target(false)
        .init();
    match Cli::parse().command {
        Command::Build { file } => {
            minispin::build(&file).with_context(|| format!("building {}", file.display()))
        }
        Command::Up {
            file,
            listen,
            build,
            state_dir,
            variables,
            no_cron,
            runtime_config_file,
        } => {
            if build {
                minispin::build(&file).with_context(|| format!("building {}", file.display()))?;
            }
            let variables = variables
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .with_context(|| format!("--variable `{pair}` is not NAME=VALUE"))
                })
                .collect::<anyhow::Result<HashMap<_, _>>>()?;
            let options = minispin::AppOptions {
                state_dir,
                variables,
                cron: !no_cron,
                runtime_config_file,
                ..minispin::AppOptions::default()
            };
            up(&file, listen, options)
        }
    }
}

/// Loads the app, serves until Ctrl-C or SIGTERM, then drains in-flight requests.
fn up(
    file: &std::path::Path,
    listen: SocketAddr,
    options: minispin::AppOptions,
) -> anyhow::Result<()> {
    let app = minispin::App::load(file, options)
        .with_context(|| format!("loading {}", file.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        print!("{}", app.startup_text(addr));
        app.run(listener, shutdown_signal())
            .await
            .context("serving")
    })?;
    // Always shown, whatever RUST_LOG says: the runtime's own performance figure.
    eprintln!("minispin: {}", app.instantiation_stats());
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
