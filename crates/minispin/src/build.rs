//! `minispin build`: runs each component's `build.command` like `spin build`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest::{Manifest, ManifestError};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The shell could not be started.
    #[error("component `{component}`: cannot run `{command}` in {dir}: {source}")]
    Spawn {
        component: String,
        command: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("component `{component}`: `{command}` failed with {status}")]
    Failed {
        component: String,
        command: String,
        status: std::process::ExitStatus,
    },
}

/// Builds every component of the manifest at `manifest_path` that has a build
/// command, in manifest (id) order, stopping at the first failure. Commands run
/// through `sh -c` in the manifest's directory, or `workdir` relative to it.
pub fn build(manifest_path: &Path) -> Result<(), BuildError> {
    let manifest = Manifest::load(manifest_path)?;
    build_components(&manifest, None)
}

/// Builds the given components (all when `only` is `None`).
pub fn build_components(manifest: &Manifest, only: Option<&[String]>) -> Result<(), BuildError> {
    for (id, component) in &manifest.components {
        if only.is_some_and(|only| !only.contains(id)) {
            continue;
        }
        let Some(build) = &component.build else {
            println!("{id}: no build command; skipping");
            continue;
        };
        let dir = match &build.workdir {
            Some(workdir) => manifest.dir.join(workdir),
            None => manifest.dir.clone(),
        };
        println!("Building component {id} with `{}`", build.command);
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&dir)
            .status()
            .map_err(|source| BuildError::Spawn {
                component: id.clone(),
                command: build.command.clone(),
                dir: dir.clone(),
                source,
            })?;
        if !status.success() {
            return Err(BuildError::Failed {
                component: id.clone(),
                command: build.command.clone(),
                status,
            });
        }
    }
    println!("Finished building all Spin components");
    Ok(())
}
