//! Spin variables: application values from overrides, `SPIN_VARIABLE_*` and defaults, and the `fermyon:spin/variables@2.0.0` host.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::manifest::{ComponentDecl, VariableDecl, check_variable_name};

wasmtime::component::bindgen!({
    path: "wit/spin",
    world: "variables-host",
});

use fermyon::spin::variables::{Error, Host, add_to_linker};

/// Prefix of the environment variables that Spin's environment provider reads.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// Why variables could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum VariablesError {
    /// A required variable has no value from any provider.
    #[error(
        "required variable `{name}` has no value: set {ENV_PREFIX}{} or give it a default",
        name.to_uppercase()
    )]
    MissingRequired { name: String },
    /// A component template refers to an application variable that is not declared.
    #[error(
        "component `{component}` variable `{variable}` refers to undeclared `{{{{ {reference} }}}}`"
    )]
    UndeclaredReference {
        component: String,
        variable: String,
        reference: String,
    },
    /// A component template has an unclosed or empty `{{ }}`.
    #[error("component `{component}` variable `{variable}`: malformed template `{template}`")]
    MalformedTemplate {
        component: String,
        variable: String,
        template: String,
    },
}

/// Resolved application variables. Values of secret variables live here too but are
/// never formatted by `Debug`.
#[derive(Clone, Default)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl std::fmt::Debug for AppVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be secrets.
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl AppVariables {
    /// Resolves every declared variable: `overrides` first, then `env` (looked up as
    /// `SPIN_VARIABLE_<NAME>`), then the manifest default. A required variable without
    /// a value is an error; an optional one without a value stays unset.
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        overrides: &HashMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, VariablesError> {
        let mut values = HashMap::new();
        for (name, decl) in decls {
            let value = overrides
                .get(name)
                .cloned()
                .or_else(|| env(&format!("{ENV_PREFIX}{}", name.to_uppercase())))
                .or_else(|| decl.default.clone());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if decl.required => {
                    return Err(VariablesError::MissingRequired { name: name.clone() });
                }
                None => {}
            }
        }
        Ok(Self { values })
    }

    /// Expands a component's `variables` templates into the values it can `get`.
    /// Templates whose application variable has no value are left out, so `get`
    /// answers `undefined` for them, as in Spin.
    pub fn component(
        &self,
        component: &str,
        decls: &BTreeMap<String, VariableDecl>,
        decl: &ComponentDecl,
    ) -> Result<ComponentVariables, VariablesError> {
        let mut values = HashMap::new();
        for (variable, template) in &decl.variables {
            match self.expand(template, decls) {
                Ok(expanded) => {
                    if let Some(value) = expanded.value {
                        values.insert(variable.clone(), value);
                    }
                }
                Err(TemplateError::Malformed) => {
                    return Err(VariablesError::MalformedTemplate {
                        component: component.into(),
                        variable: variable.clone(),
                        template: template.clone(),
                    });
                }
                Err(TemplateError::Undeclared(reference)) => {
                    return Err(VariablesError::UndeclaredReference {
                        component: component.into(),
                        variable: variable.clone(),
                        reference,
                    });
                }
            }
        }
        Ok(ComponentVariables(Arc::new(values)))
    }

    /// Expands `{{ name }}` references to application variables in `template`,
    /// as Spin's expression resolver does for component variables and
    /// `allowed_outbound_hosts`.
    pub fn expand(
        &self,
        template: &str,
        decls: &BTreeMap<String, VariableDecl>,
    ) -> Result<Expanded, TemplateError> {
        let mut out = String::new();
        let mut rest = template;
        let mut complete = true;
        let mut secret = false;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Malformed)?;
            let reference = after[..end].trim();
            if reference.is_empty() {
                return Err(TemplateError::Malformed);
            }
            let decl = decls
                .get(reference)
                .ok_or_else(|| TemplateError::Undeclared(reference.into()))?;
            secret |= decl.secret;
            match self.values.get(reference) {
                Some(value) => out.push_str(value),
                None => complete = false,
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(Expanded {
            value: complete.then_some(out),
            secret,
        })
    }
}

/// A template with its references replaced.
pub struct Expanded {
    /// The text, or `None` when a referenced variable has no value.
    pub value: Option<String>,
    /// Whether a referenced variable is secret, so the text must not be shown.
    pub secret: bool,
}

/// Why a template could not be expanded.
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// An unclosed or empty `{{ }}`.
    Malformed,
    /// A reference to an application variable that is not declared.
    Undeclared(String),
}

/// The variables one component can read, shared by all of its instances.
#[derive(Clone, Default)]
pub struct ComponentVariables(Arc<HashMap<String, String>>);

impl ComponentVariables {
    /// Fresh host state for one instance.
    pub fn prepare(&self) -> VariablesInstance {
        VariablesInstance(self.clone())
    }
}

/// Per-instance state of the variables host.
pub struct VariablesInstance(ComponentVariables);

impl Host for VariablesInstance {
    fn get(&mut self, name: String) -> Result<String, Error> {
        if let Err(reason) = check_variable_name(&name) {
            return Err(Error::InvalidName(format!("{name:?}: {reason}")));
        }
        (self.0)
            .0
            .get(&name)
            .cloned()
            .ok_or_else(|| Error::Undefined(format!("no variable for {name:?} in this component")))
    }
}

/// Adds `fermyon:spin/variables@2.0.0` to a linker whose store data holds a
/// [`VariablesInstance`].
pub fn link<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut VariablesInstance,
) -> wasmtime::Result<()> {
    add_to_linker::<T, HasSelf<VariablesInstance>>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls() -> BTreeMap<String, VariableDecl> {
        BTreeMap::from([
            (
                "token".to_string(),
                VariableDecl {
                    required: true,
                    secret: true,
                    ..VariableDecl::default()
                },
            ),
            (
                "mode".to_string(),
                VariableDecl {
                    default: Some("slow".into()),
                    ..VariableDecl::default()
                },
            ),
        ])
    }

    #[test]
    fn environment_beats_default_and_override_beats_environment() {
        let env = |k: &str| match k {
            "SPIN_VARIABLE_TOKEN" => Some("from-env".to_string()),
            "SPIN_VARIABLE_MODE" => Some("fast".to_string()),
            _ => None,
        };
        let vars = AppVariables::resolve(&decls(), &HashMap::new(), env).unwrap();
        assert_eq!(vars.values["token"], "from-env");
        assert_eq!(vars.values["mode"], "fast");
        let overrides = HashMap::from([("token".to_string(), "over".to_string())]);
        let vars = AppVariables::resolve(&decls(), &overrides, env).unwrap();
        assert_eq!(vars.values["token"], "over");
    }

    #[test]
    fn missing_required_variable_is_an_error_naming_it() {
        let err = AppVariables::resolve(&decls(), &HashMap::new(), |_| None).unwrap_err();
        assert!(err.to_string().contains("SPIN_VARIABLE_TOKEN"), "{err}");
    }

    fn with_variables(variables: BTreeMap<String, String>) -> ComponentDecl {
        ComponentDecl {
            variables,
            ..ComponentDecl::default()
        }
    }

    #[test]
    fn templates_expand_and_get_checks_names() {
        let overrides = HashMap::from([("token".to_string(), "t".to_string())]);
        let vars = AppVariables::resolve(&decls(), &overrides, |_| None).unwrap();
        let templates = BTreeMap::from([
            ("auth".to_string(), "Bearer {{ token }}".to_string()),
            ("mode".to_string(), "{{mode}}".to_string()),
        ]);
        let component = vars
            .component("c", &decls(), &with_variables(templates))
            .unwrap();
        let mut host = component.prepare();
        assert_eq!(host.get("auth".into()).unwrap(), "Bearer t");
        assert_eq!(host.get("mode".into()).unwrap(), "slow");
        assert!(matches!(host.get("token".into()), Err(Error::Undefined(_))));
        assert!(matches!(host.get("Bad".into()), Err(Error::InvalidName(_))));
        let bad = BTreeMap::from([("x".to_string(), "{{ nope }}".to_string())]);
        assert!(vars.component("c", &decls(), &with_variables(bad)).is_err());
    }

    #[test]
    fn debug_never_shows_values() {
        let overrides = HashMap::from([("token".to_string(), "s3cret".to_string())]);
        let vars = AppVariables::resolve(&decls(), &overrides, |_| None).unwrap();
        assert!(!format!("{vars:?}").contains("s3cret"));
    }
}
