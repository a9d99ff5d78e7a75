//! Outbound HTTP: `wasi:http/outgoing-handler` requests, allowed only to a component's `allowed_outbound_hosts`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::manifest::{ComponentDecl, VariableDecl};
use crate::variables::{AppVariables, TemplateError};
use wasmtime_wasi_http::{Error, RequestOptions, Result as HttpResult, WasiBody, WasiHttpHooks};

/// Why an `allowed_outbound_hosts` entry was rejected.
#[derive(Debug, thiserror::Error)]
#[error("component `{component}`: allowed_outbound_hosts entry `{entry}`: {reason}")]
pub struct AllowedHostError {
    component: String,
    entry: String,
    reason: String,
}

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`, where each part may
/// be `*` and the host may be `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Suffix(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// No port written: the scheme's default port.
    SchemeDefault,
    Range(u16, u16),
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, String> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or("must start with a scheme, e.g. `https://`")?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            other => return Err(format!("scheme `{other}` is not supported for HTTP")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err("must not contain a path".into());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                (host, Some(port))
            }
            _ => (rest, None),
        };
        let host = match host {
            "" => return Err("host is empty".into()),
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                return Err("`*` may only be a whole host or a `*.` prefix".into());
            }
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        let port = match port {
            None => {
                if scheme.is_none() {
                    return Err("a `*` scheme needs an explicit port (or `:*`)".into());
                }
                PortPattern::SchemeDefault
            }
            Some("*") => PortPattern::Any,
            Some(p) => {
                let parse = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port `{s}`"));
                if let Some((lo, hi)) = p.split_once("..") {
                    PortPattern::Range(parse(lo)?, parse(hi)?)
                } else {
                    let p = parse(p)?;
                    PortPattern::Range(p, p)
                }
            }
        };
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(exact) => *exact == host,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::SchemeDefault => port == default_port(scheme),
            PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" { 80 } else { 443 }
}

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Arc<Vec<AllowedHost>>);

impl AllowedHosts {
    /// Parses a component's entries; a bad entry is a start-up error.
    pub fn parse(component: &str, entries: &[String]) -> Result<Self, AllowedHostError> {
        let hosts = entries
            .iter()
            .map(|entry| {
                AllowedHost::parse(entry).map_err(|reason| AllowedHostError {
                    component: component.into(),
                    entry: entry.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(Arc::new(hosts)))
    }

    /// A component's grant: its `allowed_outbound_hosts`, with `{{ variable }}`
    /// templates resolved from the application variables, as Spin resolves them.
    /// Spin resolves per instance; minispin's variables never change while it runs,
    /// so once at start-up is the same.
    pub fn component(
        id: &str,
        decl: &ComponentDecl,
        decls: &BTreeMap<String, VariableDecl>,
        variables: &AppVariables,
    ) -> Result<Self, AllowedHostError> {
        let error = |entry: &str, reason: String| AllowedHostError {
            component: id.into(),
            entry: entry.into(),
            reason,
        };
        let mut entries = Vec::with_capacity(decl.allowed_outbound_hosts.len());
        for template in &decl.allowed_outbound_hosts {
            if !template.contains("{{") {
                entries.push(template.clone());
                continue;
            }
            let expanded = variables.expand(template, decls).map_err(|e| match e {
                TemplateError::Malformed => error(template, "malformed template".into()),
                TemplateError::Undeclared(name) => error(
                    template,
                    format!("refers to `{name}`, which is not an application variable"),
                ),
            })?;
            let Some(entry) = expanded.value else {
                return Err(error(template, "a variable it uses has no value".into()));
            };
            if let Err(reason) = AllowedHost::parse(&entry) {
                // Never show a secret's value, not even in part.
                let reason = if expanded.secret {
                    "resolves to an invalid entry (not shown: it uses a secret variable)".into()
                } else {
                    format!("resolves to `{entry}`: {reason}")
                };
                return Err(error(template, reason));
            }
            entries.push(entry);
        }
        Self::parse(id, &entries)
    }

    /// Fresh `wasi:http` hooks for one instance of component `id`.
    pub fn prepare(&self, id: Arc<str>) -> OutboundHttp {
        OutboundHttp {
            component: id,
            allowed: self.clone(),
        }
    }

    /// Whether a request to this absolute URI may leave the component.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or_else(|| default_port(scheme));
        self.0
            .iter()
            .any(|allowed| allowed.allows(scheme, host, port))
    }
}

/// Per-instance `wasi:http` hooks that enforce the component's allowed hosts.
pub struct OutboundHttp {
    component: Arc<str>,
    allowed: AllowedHosts,
}

type SendResult = Box<
    dyn Future<
            Output = HttpResult<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = HttpResult<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = HttpResult<()>> + Send>,
    ) -> SendResult {
        if !self.allowed.allows(request.uri()) {
            // Spin's wording, so logs read the same in both runtimes.
            tracing::error!(
                component = %self.component,
                uri = %request.uri(),
                "A component tried to make an HTTP request to a non-allowed host"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        drop(fut);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = HttpResult<()>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(ToString::to_string).collect();
        AllowedHosts::parse("c", &entries).unwrap()
    }

    #[test]
    fn exact_hosts_match_scheme_host_and_default_port() {
        let hosts = allowed(&["https://api.example.com"]);
        assert!(hosts.allows(&"https://api.example.com/x".parse().unwrap()));
        assert!(!hosts.allows(&"http://api.example.com/x".parse().unwrap()));
        assert!(!hosts.allows(&"https://api.example.com:8443/x".parse().unwrap()));
        assert!(!hosts.allows(&"https://evil.com/x".parse().unwrap()));
    }

    #[test]
    fn wildcards_and_ports() {
        let hosts = allowed(&["*://*.example.com:*", "http://127.0.0.1:3000..3010"]);
        assert!(hosts.allows(&"http://a.example.com:81/".parse().unwrap()));
        assert!(!hosts.allows(&"http://example.org/".parse().unwrap()));
        assert!(hosts.allows(&"http://127.0.0.1:3005/".parse().unwrap()));
        assert!(!hosts.allows(&"http://127.0.0.1:3011/".parse().unwrap()));
        assert!(allowed(&[]).0.is_empty());
    }

    fn resolve(template: &str, secret: bool) -> Result<AllowedHosts, AllowedHostError> {
        let decls = BTreeMap::from([(
            "upstream".to_string(),
            VariableDecl {
                secret,
                ..VariableDecl::default()
            },
        )]);
        let overrides = std::collections::HashMap::from([(
            "upstream".to_string(),
            "http://127.0.0.1:8081".to_string(),
        )]);
        let variables = AppVariables::resolve(&decls, &overrides, |_| None).unwrap();
        let decl = ComponentDecl {
            allowed_outbound_hosts: vec![template.to_string()],
            ..ComponentDecl::default()
        };
        AllowedHosts::component("c", &decl, &decls, &variables)
    }

    #[test]
    fn templates_resolve_from_application_variables() {
        let hosts = resolve("{{ upstream }}", false).unwrap();
        assert!(hosts.allows(&"http://127.0.0.1:8081/v1".parse().unwrap()));
        assert!(!hosts.allows(&"http://127.0.0.1:8082/v1".parse().unwrap()));
        assert!(
            resolve("{{ nope }}", false)
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
        assert!(resolve("{{ upstream", false).is_err());
        // A secret never shows in the error, even when it makes the entry invalid.
        let err = resolve("{{ upstream }}/path", true)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("127.0.0.1"), "{err}");
        let err = resolve("{{ upstream }}/path", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("127.0.0.1:8081/path"), "{err}");
    }

    #[test]
    fn bad_entries_are_errors() {
        let bad = |e: &str| AllowedHosts::parse("c", &[e.to_string()]).is_err();
        assert!(bad("example.com"));
        assert!(bad("ftp://example.com"));
        assert!(bad("*://example.com"));
        assert!(bad("https://exa*mple.com"));
    }
}
