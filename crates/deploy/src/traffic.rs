//! The one seam between the controller and the data plane: a routing table
//! goes in, per-revision figures come out. The proxy implements it; unit
//! tests of the controller give it a fake whose figures they script.

use orchestra_proxy::{Proxy, RejectedRoute, RevisionStats, Route};

/// What the controller needs of the proxy.
pub trait Traffic: Send + Sync + 'static {
    /// Install every valid route of `routes`; the ones left out and why.
    fn apply_routes(&self, routes: Vec<Route>) -> Vec<RejectedRoute>;
    /// A revision's figures since it first took a request (a snapshot).
    fn stats(&self, revision: &str) -> RevisionStats;
    /// Its requests in flight now.
    fn in_flight(&self, revision: &str) -> u64;
    /// Drop what is kept about a revision that stopped.
    fn forget(&self, revision: &str);
}

impl Traffic for Proxy {
    fn apply_routes(&self, routes: Vec<Route>) -> Vec<RejectedRoute> {
        Proxy::apply_routes(self, routes)
    }

    fn stats(&self, revision: &str) -> RevisionStats {
        Proxy::stats(self, revision)
    }

    fn in_flight(&self, revision: &str) -> u64 {
        Proxy::in_flight(self, revision)
    }

    fn forget(&self, revision: &str) {
        Proxy::forget(self, revision);
    }
}
