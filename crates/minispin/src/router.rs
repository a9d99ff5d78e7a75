//! Spin's HTTP route matching: exact routes beat wildcards, the longest wildcard prefix wins, `:name` matches one segment.

/// Why a route could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The route text breaks Spin's route syntax.
    #[error("route `{route}`: {reason}")]
    Invalid { route: String, reason: String },
    /// Two triggers claim the same route.
    #[error("route `{route}` is used by both `{first}` and `{second}`")]
    Duplicate {
        route: String,
        first: String,
        second: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `:name`, one path segment.
    Param(String),
}

/// One `[[trigger.http]]` route: exact (`/a/b`) or trailing wildcard (`/a/...`).
#[derive(Debug, Clone)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

impl Route {
    /// Parses a route as Spin writes them.
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        let invalid = |reason: &str| RouteError::Invalid {
            route: raw.into(),
            reason: reason.into(),
        };
        if !raw.starts_with('/') {
            return Err(invalid("must start with `/`"));
        }
        let (prefix, wildcard) = match raw.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for part in prefix.split('/').filter(|s| !s.is_empty()) {
            if part == "..." {
                return Err(invalid("`...` may only end a route"));
            }
            segments.push(match part.strip_prefix(':') {
                Some("") => return Err(invalid("`:` needs a name")),
                Some(name) => Segment::Param(name.into()),
                None => Segment::Literal(part.into()),
            });
        }
        Ok(Self {
            raw: raw.into(),
            segments,
            wildcard,
        })
    }

    /// The route as written in the manifest (`spin-raw-component-route`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its wildcard (`spin-component-route`).
    pub fn base(&self) -> String {
        if self.segments.is_empty() {
            return if self.wildcard {
                String::new()
            } else {
                "/".into()
            };
        }
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => {
                    out.push(':');
                    out.push_str(p);
                }
            }
        }
        out
    }

    /// Rank among matching routes, highest wins: exact before wildcard, then more
    /// segments, then more literal segments.
    fn rank(&self) -> (bool, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!self.wildcard, self.segments.len(), literals)
    }

    fn matches<'p>(&self, path: &[&'p str]) -> Option<Vec<(String, &'p str)>> {
        if path.len() < self.segments.len() || (!self.wildcard && path.len() != self.segments.len())
        {
            return None;
        }
        let mut captures = Vec::new();
        for (segment, part) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => captures.push((name.clone(), *part)),
            }
        }
        Some(captures)
    }
}

/// What the router found for a path.
#[derive(Debug)]
pub struct RouteMatch<'a> {
    /// Index of the trigger in manifest order.
    pub trigger: usize,
    /// The matched route.
    pub route: &'a Route,
    /// The path after the matched part (`spin-path-info`).
    pub path_info: String,
    /// `:name` captures.
    pub captures: Vec<(String, String)>,
}

/// Spin's router: exact routes beat wildcards; among wildcards the longest prefix wins.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    /// Builds a router from `(route, component)` pairs in manifest order.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RouteError> {
        let mut out: Vec<(Route, String)> = Vec::new();
        for (raw, component) in routes {
            let route = Route::parse(raw)?;
            if let Some((_, first)) = out
                .iter()
                .find(|(r, _)| r.segments == route.segments && r.wildcard == route.wildcard)
            {
                return Err(RouteError::Duplicate {
                    route: raw.into(),
                    first: first.clone(),
                    second: component.into(),
                });
            }
            out.push((route, component.into()));
        }
        Ok(Self { routes: out })
    }

    /// `(route, component)` in manifest order.
    pub fn routes(&self) -> impl Iterator<Item = (&Route, &str)> {
        self.routes.iter().map(|(r, c)| (r, c.as_str()))
    }

    /// The best route for a request path, if any.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (trigger, route, captures) = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, (route, _))| route.matches(&parts).map(|c| (i, route, c)))
            // max_by_key keeps the last maximum; reverse so manifest order breaks ties.
            .rev()
            .max_by_key(|(_, route, _)| route.rank())?;
        let path_info = if route.wildcard {
            let rest = &parts[route.segments.len()..];
            if rest.is_empty() && route.segments.is_empty() {
                "/".to_string()
            } else if rest.is_empty() {
                String::new()
            } else {
                let mut s = String::new();
                for part in rest {
                    s.push('/');
                    s.push_str(part);
                }
                if path.ends_with('/') {
                    s.push('/');
                }
                s
            }
        } else {
            String::new()
        };
        Some(RouteMatch {
            trigger,
            route,
            path_info,
            captures: captures
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
        })
    }

    /// The component a trigger index routes to.
    pub fn component(&self, trigger: usize) -> &str {
        &self.routes[trigger].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_router() -> Router {
        Router::new([
            ("/api/admin/accounts", "accounts"),
            ("/api/admin/accounts/...", "accounts-wild"),
            ("/api/billing/credits", "balance"),
            ("/", "dashboard"),
            ("/assets/...", "assets"),
            ("/users/:id/...", "users"),
            ("/...", "not-found"),
        ])
        .unwrap()
    }

    fn component<'a>(router: &'a Router, path: &str) -> (&'a str, String) {
        let found = router.route(path).unwrap();
        (router.component(found.trigger), found.path_info)
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = app_router();
        assert_eq!(
            component(&r, "/api/admin/accounts"),
            ("accounts", String::new())
        );
        assert_eq!(
            component(&r, "/api/admin/accounts/acme/plan"),
            ("accounts-wild", "/acme/plan".into())
        );
        assert_eq!(component(&r, "/api/billing/credits").0, "balance");
        assert_eq!(component(&r, "/api/billing/credits/x").0, "not-found");
        assert_eq!(component(&r, "/").0, "dashboard");
        assert_eq!(
            component(&r, "/assets/app.js"),
            ("assets", "/app.js".into())
        );
        assert_eq!(component(&r, "/assets"), ("assets", String::new()));
        assert_eq!(
            component(&r, "/nothing/here"),
            ("not-found", "/nothing/here".into())
        );
    }

    #[test]
    fn single_segment_parameters_are_captured() {
        let r = app_router();
        let found = r.route("/users/42/profile").unwrap();
        assert_eq!(r.component(found.trigger), "users");
        assert_eq!(found.captures, [("id".to_string(), "42".to_string())]);
        assert_eq!(found.path_info, "/profile");
    }

    #[test]
    fn without_catch_all_unknown_paths_do_not_match() {
        let r = Router::new([("/a", "a")]).unwrap();
        assert!(r.route("/b").is_none());
        assert!(r.route("/a/b").is_none());
    }

    #[test]
    fn duplicate_and_malformed_routes_are_errors() {
        assert!(Router::new([("/a", "x"), ("/a", "y")]).is_err());
        assert!(Router::new([("a", "x")]).is_err());
        assert!(Router::new([("/a/.../b", "x")]).is_err());
    }
}
