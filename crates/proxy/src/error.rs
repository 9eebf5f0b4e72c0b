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

fn list(issues: &[RouteIssue]) -> String {
    let parts: Vec<String> = issues.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
