//! Typed errors of the proxy's control surface (the data plane answers clients with JSON instead).

use std::fmt;

/// What [`crate::Proxy::start`] and [`crate::Proxy::set_routes`] can refuse.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listen address could not be bound.
    #[error("proxy cannot listen on {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificates or settings could not be loaded.
    #[error("proxy TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A worker thread or its runtime could not be started.
    #[error("proxy cannot start its worker threads: {0}")]
    Workers(std::io::Error),
    /// A routing table was rejected; the running table is left untouched.
    #[error("invalid routes: {}", list(.issues))]
    InvalidRoutes {
        /// Every problem found, not just the first.
        issues: Vec<RouteIssue>,
    },
}

/// One problem in a routing table, naming the route and the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteIssue {
    /// Index of the route in the table passed to `set_routes`.
    pub route: usize,
    /// The route's service name.
    pub service: String,
    /// The field at fault, e.g. `targets[1].weight`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for RouteIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "routes[{}] ({}): {}: {}",
            self.route, self.service, self.field, self.message
        )
    }
}

/// A route [`crate::Proxy::apply_routes`] left out of the table it installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRoute {
    /// Index of the route in the table passed to `apply_routes`.
    pub route: usize,
    /// The route's service name.
    pub service: String,
    /// Why, every problem of the route: `field: message`, joined by `; `.
    pub reason: String,
}

impl fmt::Display for RejectedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "routes[{}] ({}) left out: {}",
            self.route, self.service, self.reason
        )
    }
}

impl RejectedRoute {
    /// One entry per route named in `issues` (which are in route order).
    pub(crate) fn from_issues(issues: &[RouteIssue]) -> Vec<RejectedRoute> {
        let mut out: Vec<RejectedRoute> = Vec::new();
        for issue in issues {
            let part = format!("{}: {}", issue.field, issue.message);
            match out.last_mut() {
                Some(last) if last.route == issue.route => {
                    last.reason.push_str("; ");
                    last.reason.push_str(&part);
                }
                _ => out.push(RejectedRoute {
                    route: issue.route,
                    service: issue.service.clone(),
                    reason: part,
                }),
            }
        }
        out
    }
}

fn list(issues: &[RouteIssue]) -> String {
    let parts: Vec<String> = issues.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
