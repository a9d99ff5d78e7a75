//! The runtime config file (`spin up --runtime-config-file`), as Spin reads the parts minispin supports: `[key_value_store.<label>]` (`spin`, `redis`) and `[sqlite_database.<label>]` (`spin`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a runtime config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    /// The file could not be read.
    #[error("cannot read runtime config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or a key or store type minispin does not know; names it.
    #[error(
        "invalid runtime config file {path}: {source}(minispin supports [key_value_store.<label>] with type \"spin\" or \"redis\", and [sqlite_database.<label>] with type \"spin\")"
    )]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

/// A parsed runtime config file. Without one, an app has Spin's defaults.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `[key_value_store.<label>]`.
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    /// `[sqlite_database.<label>]`.
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabaseConfig>,
    /// The file's directory: Spin resolves a relative key-value `path` from here.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// One `[key_value_store.<label>]`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyValueStoreConfig {
    /// Spin's SQLite store: `path` (relative to the runtime config file's
    /// directory), or in memory without one.
    Spin { path: Option<PathBuf> },
    /// A Redis server: `url = "redis://host:port"`.
    Redis { url: String },
}

/// One `[sqlite_database.<label>]`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SqliteDatabaseConfig {
    /// A local database: `path` (relative to the current directory, as Spin
    /// resolves it), or a fresh in-memory database per connection without one.
    Spin { path: Option<PathBuf> },
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Labels and types only: a Redis URL may hold a password.
        let kind = |store: &KeyValueStoreConfig| match store {
            KeyValueStoreConfig::Spin { .. } => "spin",
            KeyValueStoreConfig::Redis { .. } => "redis",
        };
        f.debug_struct("RuntimeConfig")
            .field(
                "key_value_store",
                &self
                    .key_value_store
                    .iter()
                    .map(|(label, store)| (label, kind(store)))
                    .collect::<Vec<_>>(),
            )
            .field(
                "sqlite_database",
                &self.sqlite_database.keys().collect::<Vec<_>>(),
            )
            .field("dir", &self.dir)
            .finish()
    }
}

impl RuntimeConfig {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses file text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, RuntimeConfigError> {
        let mut config: Self =
            toml::from_str(text).map_err(|source| RuntimeConfigError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        config.dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig, String> {
        RuntimeConfig::parse(Path::new("/etc/app/runtime.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_spin_and_redis_stores_and_spin_databases() {
        let config = parse(
            r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:6379"

[key_value_store.cache]
type = "spin"
path = "cache.db"

[key_value_store.scratch]
type = "spin"

[sqlite_database.ledger]
type = "spin"
path = "data/ledger.db"
"#,
        )
        .unwrap();
        assert_eq!(config.dir, Path::new("/etc/app"));
        assert!(matches!(
            &config.key_value_store["default"],
            KeyValueStoreConfig::Redis { url } if url == "redis://127.0.0.1:6379"
        ));
        assert!(matches!(
            &config.key_value_store["cache"],
            KeyValueStoreConfig::Spin { path: Some(p) } if p == Path::new("cache.db")
        ));
        assert!(matches!(
            &config.key_value_store["scratch"],
            KeyValueStoreConfig::Spin { path: None }
        ));
        assert!(matches!(
            &config.sqlite_database["ledger"],
            SqliteDatabaseConfig::Spin { path: Some(p) } if p == Path::new("data/ledger.db")
        ));
    }

    /// The file `deploy/` keeps for real Spin, read verbatim: Redis key-value and a
    /// shared SQLite file, which the e2e Redis scenario runs (tests/e2e/tests/runtime_config.rs).
    #[test]
    fn reads_the_deploy_file_verbatim() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/runtime-config.example.toml"
        ));
        let config = RuntimeConfig::load(path).unwrap();
        assert_eq!(
            config.key_value_store.keys().collect::<Vec<_>>(),
            ["default"]
        );
        assert!(matches!(
            &config.key_value_store["default"],
            KeyValueStoreConfig::Redis { url } if redis::Client::open(url.as_str()).is_ok()
        ));
        assert_eq!(
            config.sqlite_database.keys().collect::<Vec<_>>(),
            ["default"]
        );
        assert!(matches!(
            &config.sqlite_database["default"],
            SqliteDatabaseConfig::Spin { path: Some(p) } if p.is_absolute()
        ));
    }

    #[test]
    fn unknown_keys_and_types_are_errors_that_name_them() {
        let err = parse("[key_value_store.x]\ntype = \"spin\"\npth = \"a.db\"\n").unwrap_err();
        assert!(err.contains("pth"), "{err}");
        let err = parse("[key_value_store.x]\ntype = \"azure_cosmos\"\n").unwrap_err();
        assert!(err.contains("azure_cosmos"), "{err}");
        let err = parse("[sqlite_database.x]\ntype = \"libsql\"\n").unwrap_err();
        assert!(err.contains("libsql"), "{err}");
        let err = parse("[key_value_store.x]\nurl = \"redis://h\"\n").unwrap_err();
        assert!(err.contains("type"), "{err}");
        let err = parse("[llm_compute]\ntype = \"spin\"\n").unwrap_err();
        assert!(err.contains("llm_compute"), "{err}");
        let err = parse("[key_value_store.x]\ntype = \"redis\"\n").unwrap_err();
        assert!(err.contains("url"), "{err}");
    }
}
