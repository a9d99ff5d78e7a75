//! The `spin.toml` manifest (`spin_manifest_version = 2`): parsing and structural checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML for a Spin manifest; unknown keys land here, named.
    #[error("invalid manifest {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// The file parses but breaks one of Spin's rules.
    #[error("invalid manifest {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// A parsed, checked `spin.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where the manifest was read from.
    pub path: PathBuf,
    /// The manifest's directory: relative `source` and build paths start here.
    pub dir: PathBuf,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`: application variables by name.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[[trigger.http]]` in manifest order.
    pub http_triggers: Vec<HttpTriggerDecl>,
    /// `[[trigger.cron]]` in manifest order.
    pub cron_triggers: Vec<CronTriggerDecl>,
    /// `[component.<id>]` by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// `[application]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The application's name.
    pub name: String,
    /// Free-form version string.
    pub version: Option<String>,
    /// Free-form description.
    pub description: Option<String>,
    /// Authors, free-form.
    #[serde(default)]
    pub authors: Vec<String>,
}

/// One entry of `[variables]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    /// Value used when no provider has one.
    pub default: Option<String>,
    /// Start-up fails when no provider has a value.
    #[serde(default)]
    pub required: bool,
    /// The value must never be logged.
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTriggerDecl {
    /// Exact (`/a/b`) or wildcard (`/a/...`) route.
    pub route: String,
    /// Id of the component that handles it.
    pub component: String,
    /// Optional trigger id (Spin accepts it; unused here).
    pub id: Option<String>,
    /// Optional executor; only Spin's default one is supported.
    pub executor: Option<Executor>,
}

/// `executor = { type = "spin" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executor {
    /// Executor kind; only `spin` is supported.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One `[[trigger.cron]]` (spin-trigger-cron plugin).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronTriggerDecl {
    /// Id of the component to run.
    pub component: String,
    /// Six- or seven-field cron expression, seconds first.
    pub cron_expression: String,
}

/// `[component.<id>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDecl {
    /// Path of the `.wasm` component, relative to the manifest directory.
    pub source: String,
    /// Free-form description.
    pub description: Option<String>,
    /// Component variables: name to template (`"{{ app_var }}"` or literal text).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables visible to the component through WASI.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Outbound HTTP destinations, e.g. `https://api.example.com`.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open.
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// `[component.<id>.build]`.
    pub build: Option<BuildDecl>,
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDecl {
    /// Shell command that produces `source`.
    pub command: String,
    /// Directory to run it in, relative to the manifest directory.
    pub workdir: Option<String>,
    /// Files `spin watch` would watch; accepted and ignored.
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: i64,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, ComponentDecl>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<HttpTriggerDecl>,
    #[serde(default)]
    cron: Vec<CronTriggerDecl>,
}

impl Manifest {
    /// Reads and checks the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses manifest text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|source| ManifestError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let invalid = |reason: String| ManifestError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if raw.spin_manifest_version != 2 {
            return Err(invalid(format!(
                "spin_manifest_version is {}, only 2 is supported",
                raw.spin_manifest_version
            )));
        }
        for (name, decl) in &raw.variables {
            check_variable_name(name).map_err(|e| invalid(format!("variable `{name}`: {e}")))?;
            if decl.required && decl.default.is_some() {
                return Err(invalid(format!(
                    "variable `{name}` is required and has a default; choose one"
                )));
            }
        }
        for (id, component) in &raw.component {
            check_component_id(id).map_err(|e| invalid(format!("component `{id}`: {e}")))?;
            for name in component.variables.keys() {
                check_variable_name(name)
                    .map_err(|e| invalid(format!("component `{id}` variable `{name}`: {e}")))?;
            }
        }
        if let Some(executor) = raw
            .trigger
            .http
            .iter()
            .filter_map(|t| t.executor.as_ref())
            .find(|e| e.kind != "spin")
        {
            return Err(invalid(format!(
                "executor type `{}` is not supported (only `spin`)",
                executor.kind
            )));
        }
        let known = |component: &str| raw.component.contains_key(component);
        for trigger in &raw.trigger.http {
            if !known(&trigger.component) {
                return Err(invalid(format!(
                    "trigger.http route `{}` names component `{}`, which is not defined",
                    trigger.route, trigger.component
                )));
            }
        }
        for trigger in &raw.trigger.cron {
            if !known(&trigger.component) {
                return Err(invalid(format!(
                    "trigger.cron names component `{}`, which is not defined",
                    trigger.component
                )));
            }
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            path: path.to_owned(),
            dir,
            application: raw.application,
            variables: raw.variables,
            http_triggers: raw.trigger.http,
            cron_triggers: raw.trigger.cron,
            components: raw.component,
        })
    }

    /// The absolute-or-manifest-relative path of a component's `.wasm`.
    pub fn source_path(&self, component: &ComponentDecl) -> PathBuf {
        self.dir.join(&component.source)
    }
}

/// Spin's rule for variable names: lowercase letters, digits and single underscores,
/// starting with a letter.
pub fn check_variable_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("must not be empty".into());
    };
    if !first.is_ascii_lowercase() {
        return Err("must start with a lowercase letter".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("may contain only lowercase letters, digits and underscores".into());
    }
    if name.contains("__") || name.ends_with('_') {
        return Err("must not contain `__` or end with `_`".into());
    }
    Ok(())
}

/// Spin's rule for component ids: kebab-case words of lowercase letters and digits.
fn check_component_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && id.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err("ids are kebab-case: lowercase letters and digits in words joined by `-`".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
token = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.cron]]
component = "web"
cron_expression = "*/5 * * * * *"
[component.web]
source = "web.wasm"
key_value_stores = ["default"]
[component.web.variables]
token = "{{ token }}"
[component.web.build]
command = "true"
"#;

    #[test]
    fn parses_a_minimal_manifest() {
        let m = Manifest::parse(Path::new("/app/spin.toml"), MINIMAL).unwrap();
        assert_eq!(m.application.name, "app");
        assert_eq!(m.http_triggers[0].route, "/...");
        assert_eq!(m.cron_triggers[0].cron_expression, "*/5 * * * * *");
        assert_eq!(m.dir, Path::new("/app"));
        assert!(m.variables["token"].secret);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let text = MINIMAL.replace("source = \"web.wasm\"", "source = \"web.wasm\"\nsorce = 1");
        let err = Manifest::parse(Path::new("spin.toml"), &text).unwrap_err();
        assert!(err.to_string().contains("sorce"), "{err}");
        let text = MINIMAL.replace("[[trigger.cron]]", "[[trigger.redis]]");
        let err = Manifest::parse(Path::new("spin.toml"), &text).unwrap_err();
        assert!(err.to_string().contains("redis"), "{err}");
    }

    #[test]
    fn triggers_must_name_defined_components() {
        let text = MINIMAL.replace("component = \"web\"\ncron", "component = \"nope\"\ncron");
        let err = Manifest::parse(Path::new("spin.toml"), &text).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(check_variable_name("service_token").is_ok());
        assert!(check_variable_name("Token").is_err());
        assert!(check_variable_name("a__b").is_err());
        assert!(check_variable_name("1a").is_err());
    }
}
