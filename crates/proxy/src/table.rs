//! The compiled routing table: what the request path reads after one atomic load.
//!
//! Compiling resolves everything a request would otherwise look up: each target's stats counters,
//! each replica's breaker, cumulative weights, header names. Routes are sorted so the first match
//! wins: routes for an exact host before host-less ones, longer prefixes before shorter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use hyper::header::HeaderName;

use crate::route::{Balance, Route, Sticky, Target, normalize_prefix};
use crate::select;
use crate::static_files::Site;
use crate::stats::{MetricsRegistry, RevisionMetrics};
use crate::upstream::{UpstreamRegistry, UpstreamState};

pub(crate) enum CompiledSticky {
    Cookie(String),
    Header(HeaderName),
}

pub(crate) struct CompiledTarget {
    pub(crate) metrics: Arc<RevisionMetrics>,
    pub(crate) upstreams: Vec<Arc<UpstreamState>>,
    /// With no upstreams and no site: the 503 body for requests that pick this target anyway.
    pub(crate) not_ready: Option<Bytes>,
    /// A static site: answered from its directory instead of an upstream.
    pub(crate) site: Option<Arc<Site>>,
    /// Rotation for round robin and tie-breaking.
    pub(crate) next: AtomicUsize,
}

pub(crate) struct CompiledRoute {
    /// Lowercased.
    host: Option<String>,
    /// Normalized: no trailing slash, `""` for the root.
    prefix: String,
    pub(crate) strip_prefix: bool,
    pub(crate) targets: Vec<CompiledTarget>,
    /// Cumulative weights in target order, counting only targets with upstreams when any
    /// has them (their weights renormalized among themselves); else the weights as given.
    pub(crate) cum: Vec<u64>,
    pub(crate) sticky: Option<CompiledSticky>,
    pub(crate) balance: Balance,
    pub(crate) paused: bool,
    pub(crate) maintenance: Option<Bytes>,
    /// Counter for the weighted spread of unsticky requests.
    pub(crate) spread: AtomicU64,
}

impl CompiledRoute {
    pub(crate) fn total_weight(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// The target for an unsticky request.
    pub(crate) fn pick_weighted(&self) -> Option<usize> {
        if self.targets.len() == 1 {
            return (self.total_weight() > 0).then_some(0);
        }
        let total = self.total_weight();
        if total == 0 {
            return None;
        }
        let n = self.spread.fetch_add(1, Ordering::Relaxed);
        select::pick_by_point(&self.cum, select::spread_point(n, total))
    }

    /// The path to forward: the prefix removed when the route strips it.
    pub(crate) fn forwarded_path<'a>(&self, path: &'a str) -> &'a str {
        if !self.strip_prefix {
            return path;
        }
        match path.get(self.prefix.len()..) {
            Some("") | None => "/",
            Some(rest) => rest,
        }
    }

    fn matches(&self, host: Option<&str>, path: &str) -> bool {
        if let Some(want) = &self.host {
            match host {
                Some(h) if h.eq_ignore_ascii_case(want) => {}
                _ => return false,
            }
        }
        path_has_prefix(path, &self.prefix)
    }
}

/// Cumulative weights for picking a target: a target without upstreams (or a site) keeps its
/// share only when no weighted target has any, so a canary that is up takes all the traffic of
/// a stable that is not (and the other way round); with none up, picks follow the weights as
/// given and answer 503.
fn effective_cumulative(targets: &[Target]) -> Vec<u64> {
    let ready = |t: &Target| t.weight > 0 && (!t.upstreams.is_empty() || t.site.is_some());
    if targets.iter().any(ready) {
        select::cumulative(targets.iter().map(|t| if ready(t) { t.weight } else { 0 }))
    } else {
        select::cumulative(targets.iter().map(|t| t.weight))
    }
}

/// `prefix` (normalized) matches `path` on a segment boundary.
pub(crate) fn path_has_prefix(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

/// The host of a `Host` header or URI authority, without port, brackets kept for IPv6.
/// How `/metrics` names a route: its host (when it has one) and path prefix, `app.example/api`.
pub(crate) fn route_label(r: &Route) -> String {
    let prefix = if r.path_prefix.is_empty() {
        "/"
    } else {
        r.path_prefix.as_str()
    };
    match &r.host {
        Some(h) => format!("{}{prefix}", h.to_ascii_lowercase()),
        None => prefix.to_owned(),
    }
}

pub(crate) fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

pub(crate) struct RouteTable {
    /// The routes as given, for [`crate::Proxy::routes`].
    pub(crate) source: Arc<Vec<Route>>,
    pub(crate) routes: Vec<CompiledRoute>,
}

impl RouteTable {
    pub(crate) fn empty() -> Self {
        RouteTable {
            source: Arc::new(Vec::new()),
            routes: Vec::new(),
        }
    }

    /// Compiles a validated table.
    pub(crate) fn compile(
        routes: Vec<Route>,
        metrics: &MetricsRegistry,
        upstreams: &UpstreamRegistry,
    ) -> Self {
        let mut compiled: Vec<CompiledRoute> = routes
            .iter()
            .map(|r| CompiledRoute {
                host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
                prefix: normalize_prefix(&r.path_prefix).to_string(),
                strip_prefix: r.strip_prefix,
                targets: r
                    .targets
                    .iter()
                    .map(|t| CompiledTarget {
                        metrics: metrics.get_or_create(&t.revision, &r.service, &route_label(r)),
                        upstreams: t
                            .upstreams
                            .iter()
                            .map(|a| upstreams.get_or_create(*a))
                            .collect(),
                        next: AtomicUsize::new(0),
                        site: t.site.as_ref().map(|s| Arc::new(Site::new(s))),
                        not_ready: (t.upstreams.is_empty() && t.site.is_none()).then(|| {
                            Bytes::from(format!(
                                "no ready replica of {} (revision {}) yet\n",
                                r.service, t.revision
                            ))
                        }),
                    })
                    .collect(),
                cum: effective_cumulative(&r.targets),
                sticky: r.sticky.as_ref().and_then(|s| match s {
                    Sticky::Cookie(name) => Some(CompiledSticky::Cookie(name.clone())),
                    Sticky::Header(name) => HeaderName::from_bytes(name.as_bytes())
                        .ok()
                        .map(CompiledSticky::Header),
                }),
                balance: r.balance,
                paused: r.paused,
                maintenance: r.maintenance.clone().map(Bytes::from),
                spread: AtomicU64::new(0),
            })
            .collect();
        // Host-specific first, then longest prefix; stable, so equal keys keep table order.
        compiled.sort_by_key(|r| (r.host.is_none(), std::cmp::Reverse(r.prefix.len())));
        RouteTable {
            source: Arc::new(routes),
            routes: compiled,
        }
    }

    /// Index of the route for a request, `None` for a 404.
    pub(crate) fn find(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(host_without_port);
        self.routes.iter().position(|r| r.matches(host, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn route(host: Option<&str>, prefix: &str, strip: bool) -> Route {
        Route {
            service: format!("{host:?}{prefix}"),
            host: host.map(str::to_string),
            path_prefix: prefix.into(),
            strip_prefix: strip,
            targets: vec![Target {
                revision: "v1".into(),
                weight: 1,
                upstreams: vec!["127.0.0.1:1".parse().unwrap()],
                site: None,
            }],
            sticky: None,
            balance: Balance::RoundRobin,
            paused: false,
            maintenance: None,
        }
    }

    fn table(routes: Vec<Route>) -> RouteTable {
        RouteTable::compile(
            routes,
            &MetricsRegistry::default(),
            &UpstreamRegistry::new(1, Duration::from_secs(1), 0),
        )
    }

    fn found<'a>(t: &'a RouteTable, host: Option<&str>, path: &str) -> Option<&'a str> {
        t.find(host, path).map(|i| {
            let prefix = &t.routes[i].prefix;
            let host = &t.routes[i].host;
            t.source
                .iter()
                .find(|r| {
                    normalize_prefix(&r.path_prefix) == prefix
                        && r.host.as_ref().map(|h| h.to_ascii_lowercase()) == *host
                })
                .map_or("?", |r| r.service.as_str())
        })
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let t = table(vec![
            route(None, "/", false),
            route(None, "/api", false),
            route(None, "/api/v2/", false),
        ]);
        assert_eq!(found(&t, None, "/"), Some("None/"));
        assert_eq!(found(&t, None, "/apix"), Some("None/"));
        assert_eq!(found(&t, None, "/api"), Some("None/api"));
        assert_eq!(found(&t, None, "/api/"), Some("None/api"));
        assert_eq!(found(&t, None, "/api/v2"), Some("None/api/v2/"));
        assert_eq!(found(&t, None, "/api/v2/x"), Some("None/api/v2/"));
        assert_eq!(found(&t, None, "/api/v20"), Some("None/api"));
    }

    #[test]
    fn host_routes_win_then_fall_back() {
        let t = table(vec![
            route(None, "/", false),
            route(Some("Shop.Example"), "/", false),
            route(None, "/api", false),
        ]);
        assert_eq!(
            found(&t, Some("shop.example:8080"), "/api"),
            Some("Some(\"Shop.Example\")/")
        );
        assert_eq!(found(&t, Some("other"), "/api"), Some("None/api"));
        assert_eq!(found(&t, None, "/x"), Some("None/"));
    }

    #[test]
    fn no_match_is_none() {
        let t = table(vec![
            route(Some("a"), "/", false),
            route(None, "/api", false),
        ]);
        assert_eq!(t.find(Some("b"), "/"), None);
        assert_eq!(table(vec![]).find(None, "/"), None);
    }

    #[test]
    fn strip_prefix_keeps_a_rooted_path() {
        let t = table(vec![route(None, "/api/", true), route(None, "/", true)]);
        let api = &t.routes[t.find(None, "/api/x").unwrap()];
        assert_eq!(api.forwarded_path("/api/x/y"), "/x/y");
        assert_eq!(api.forwarded_path("/api"), "/");
        assert_eq!(api.forwarded_path("/api/"), "/");
        let root = &t.routes[t.find(None, "/z").unwrap()];
        assert_eq!(root.forwarded_path("/z"), "/z");
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("a.b:80"), "a.b");
        assert_eq!(host_without_port("a.b"), "a.b");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn targets_without_upstreams_give_way_to_ready_ones() {
        let t = |weight, ups: &[&str]| Target {
            revision: format!("r{weight}"),
            weight,
            upstreams: ups.iter().map(|a| a.parse().unwrap()).collect(),
            site: None,
        };
        // Stable (90) not up, canary (10) up: all of it to the canary.
        assert_eq!(
            effective_cumulative(&[t(90, &[]), t(10, &["127.0.0.1:1"])]),
            [0, 10]
        );
        assert_eq!(
            effective_cumulative(&[t(90, &["127.0.0.1:1"]), t(10, &[])]),
            [90, 90]
        );
        // Nothing up: the weights as given (the pick then answers 503).
        assert_eq!(effective_cumulative(&[t(90, &[]), t(10, &[])]), [90, 100]);
        // A zero-weight target with upstreams does not count as ready.
        assert_eq!(
            effective_cumulative(&[t(0, &["127.0.0.1:1"]), t(10, &[])]),
            [0, 10]
        );
        let mut r = route(None, "/", false);
        r.service = "api".into();
        r.targets = vec![t(3, &[]), t(1, &["127.0.0.1:1"])];
        let table = table(vec![r]);
        let compiled = &table.routes[0];
        assert!((0..50).all(|_| compiled.pick_weighted() == Some(1)));
        assert_eq!(
            compiled.targets[0].not_ready.as_deref(),
            Some(&b"no ready replica of api (revision r3) yet\n"[..])
        );
        assert!(compiled.targets[1].not_ready.is_none());
    }

    #[test]
    fn weighted_pick_skips_zero_weights() {
        let mut r = route(None, "/", false);
        r.targets.push(Target {
            revision: "v2".into(),
            weight: 0,
            upstreams: vec![],
            site: None,
        });
        let t = table(vec![r]);
        assert!((0..50).all(|_| t.routes[0].pick_weighted() == Some(0)));
    }
}
