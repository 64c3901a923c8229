//! `http::router()`: routes by method and path pattern (`/items/:id`,
//! `/files/*rest`) to script handlers, and directories served by
//! `r.static_dir(prefix, dir)`. A path no route matches is a 404; a path matched
//! only under other methods is a 405 with `Allow`.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rhai::Map;

use crate::error::Error;
use crate::task::Callable;

/// One segment of a route pattern.
#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Literal(String),
    /// `:name`: one segment.
    Param(String),
    /// `*name`: the rest of the path (possibly empty).
    Rest(String),
}

#[derive(Clone)]
struct Route {
    /// `None` matches any method.
    method: Option<String>,
    pattern: Vec<Segment>,
    handler: Callable,
}

/// A directory mounted with `r.static_dir(prefix, dir)`.
#[derive(Clone)]
pub struct Mount {
    /// Path segments of the prefix.
    prefix: Vec<String>,
    /// The directory, canonical.
    pub dir: PathBuf,
}

/// A router; clones share its routes, so routes added after `serve` apply.
#[derive(Clone, Default)]
pub struct Router(Arc<RwLock<Table>>);

#[derive(Default)]
struct Table {
    routes: Vec<Route>,
    mounts: Vec<Mount>,
}

/// Where a request goes.
pub enum Target {
    /// A handler with its path parameters.
    Handler(Callable, Map),
    /// A file below a mount: the mount and the path segments below its prefix.
    File(Mount, Vec<String>),
    /// No route for the path.
    NotFound,
    /// Routes for the path exist under these methods only.
    NotAllowed(Vec<String>),
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn parse_pattern(op: &str, pattern: &str) -> Result<Vec<Segment>, Error> {
    if !pattern.starts_with('/') {
        return Err(Error::value(op, format!("a route pattern starts with '/', got {pattern:?}")));
    }
    let parts: Vec<&str> = segments(pattern).collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        out.push(if let Some(name) = part.strip_prefix(':') {
            Segment::Param(name.to_string())
        } else if let Some(name) = part.strip_prefix('*') {
            if i + 1 != parts.len() {
                return Err(Error::value(op, format!("'*{name}' must be the last segment of {pattern:?}")));
            }
            Segment::Rest(name.to_string())
        } else {
            Segment::Literal((*part).to_string())
        });
    }
    Ok(out)
}

/// The parameters of `path` (decoded segments) if it matches `pattern`.
fn matches(pattern: &[Segment], path: &[String]) -> Option<Map> {
    let mut params = Map::new();
    for (i, seg) in pattern.iter().enumerate() {
        match seg {
            Segment::Rest(name) => {
                params.insert(name.as_str().into(), path.get(i..).unwrap_or_default().join("/").into());
                return Some(params);
            }
            Segment::Literal(lit) => {
                if path.get(i) != Some(lit) {
                    return None;
                }
            }
            Segment::Param(name) => {
                params.insert(name.as_str().into(), path.get(i)?.clone().into());
            }
        }
    }
    (path.len() == pattern.len()).then_some(params)
}

impl Router {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Add a route for `method` (`None`: any method).
    pub fn add(&self, method: Option<&str>, pattern: &str, handler: Callable) -> Result<(), Error> {
        let op = format!("r.{}", method.map_or_else(|| "any".into(), str::to_ascii_lowercase));
        let pattern = parse_pattern(&op, pattern)?;
        self.write().routes.push(Route { method: method.map(str::to_ascii_uppercase), pattern, handler });
        Ok(())
    }

    /// Serve the files below `dir` under `prefix`.
    pub fn mount(&self, prefix: &str, dir: &str) -> Result<(), Error> {
        const OP: &str = "r.static_dir";
        let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(OP, &e).with_peer(dir)).and_then(|d| {
            if d.is_dir() { Ok(d) } else { Err(Error::value(OP, format!("{dir} is not a directory"))) }
        })?;
        let prefix = parse_pattern(OP, prefix)?
            .into_iter()
            .map(|s| match s {
                Segment::Literal(l) => Ok(l),
                _ => Err(Error::value(OP, "a static prefix has no parameters")),
            })
            .collect::<Result<_, _>>()?;
        self.write().mounts.push(Mount { prefix, dir: canonical });
        Ok(())
    }

    /// Route a request for `method` and the decoded `path`.
    pub fn route(&self, method: &str, path: &str) -> Target {
        let table = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let parts: Vec<String> = segments(path).map(String::from).collect();
        let lookup = if method == "HEAD" { "GET" } else { method };
        let mut allowed: Vec<String> = Vec::new();
        for route in &table.routes {
            let Some(params) = matches(&route.pattern, &parts) else { continue };
            match &route.method {
                Some(m) if m != lookup && m != method => {
                    if !allowed.contains(m) {
                        allowed.push(m.clone());
                    }
                }
                _ => return Target::Handler(route.handler.clone(), params),
            }
        }
        if matches!(method, "GET" | "HEAD") {
            for mount in &table.mounts {
                if parts.len() >= mount.prefix.len() && parts[..mount.prefix.len()] == mount.prefix[..] {
                    return Target::File(mount.clone(), parts[mount.prefix.len()..].to_vec());
                }
            }
        }
        if allowed.is_empty() {
            return Target::NotFound;
        }
        if allowed.iter().any(|m| m == "GET") {
            allowed.push("HEAD".into());
        }
        allowed.sort();
        Target::NotAllowed(allowed)
    }
}

/// A script handler: a function, or a router.
#[derive(Clone)]
pub enum Handler {
    /// Every request goes to this function.
    Function(Callable),
    /// Requests are routed.
    Router(Router),
}

impl Handler {
    /// Route a request (a plain function takes every path).
    pub fn route(&self, method: &str, path: &str) -> Target {
        match self {
            Self::Function(f) => Target::Handler(f.clone(), Map::new()),
            Self::Router(r) => r.route(method, path),
        }
    }
}

/// `http router (2 routes, 1 static mounts)`.
pub fn describe(r: &Router) -> String {
    let table = r.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    format!("http router ({} routes, {} static mounts)", table.routes.len(), table.mounts.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    fn path(p: &str) -> Vec<String> {
        segments(p).map(String::from).collect()
    }

    #[test]
    fn patterns_bind_params_and_rest() {
        let p = parse_pattern("t", "/items/:id").unwrap();
        let m = matches(&p, &path("/items/42")).unwrap();
        assert_eq!(m.get("id").map(ToString::to_string), Some("42".into()));
        assert!(matches(&p, &path("/items")).is_none());
        assert!(matches(&p, &path("/items/42/x")).is_none());
        let p = parse_pattern("t", "/f/*rest").unwrap();
        let m = matches(&p, &path("/f/a/b")).unwrap();
        assert_eq!(m.get("rest").map(ToString::to_string), Some("a/b".into()));
        assert!(parse_pattern("t", "/*a/b").is_err());
        assert!(parse_pattern("t", "x").is_err());
    }

    #[test]
    fn params_are_strings() {
        let p = parse_pattern("t", "/:a").unwrap();
        let m = matches(&p, &path("/x")).unwrap();
        assert!(m.get("a").is_some_and(Dynamic::is_string));
    }
}
