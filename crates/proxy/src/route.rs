//! The routing table as the deploy controller writes it, and its validation.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use hyper::header::HeaderName;

use crate::error::RouteIssue;

/// Where requests for one service go.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Service name, for errors and logs.
    pub service: String,
    /// Exact host to match (port ignored, case-insensitive); `None` matches any host.
    pub host: Option<String>,
    /// Path prefix matched on segment boundaries: `/api` matches `/api` and `/api/x`, not
    /// `/apix`. `/` matches everything.
    pub path_prefix: String,
    /// Remove the prefix before forwarding (`/api/x` → `/x`).
    pub strip_prefix: bool,
    /// Revisions, stable first: the order fixes how sticky clients move (see [`Sticky`]).
    pub targets: Vec<Target>,
    /// Keep each client on one revision.
    pub sticky: Option<Sticky>,
    /// How a revision's replicas share its requests.
    pub balance: Balance,
    /// Hold new requests (up to `pause_timeout`) until a later table unpauses the route.
    pub paused: bool,
    /// When set, answer every request with 503 and this body.
    pub maintenance: Option<String>,
}

/// One revision of a service and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Revision name; stats and in-flight counts are kept under it.
    pub revision: String,
    /// Relative share of new traffic; 0 takes no new requests (draining).
    pub weight: u32,
    /// Replica addresses.
    pub upstreams: Vec<SocketAddr>,
    /// A static site the proxy serves itself instead of forwarding (`upstreams` is then
    /// empty). `None` with no upstreams: the revision is not ready yet.
    pub site: Option<StaticSite>,
}

/// A directory served as a static site (see `static_files` for the rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSite {
    /// The directory; nothing outside it is served, symbolic links included.
    pub root: PathBuf,
    /// A missing page (a path without an extension, or a request that accepts HTML) is
    /// answered with the root's `index.html` (single-page applications).
    pub spa: bool,
    /// The directory never changes while it is served (a deploy's snapshot): lookups and
    /// small files are kept in memory instead of being read again for every request.
    pub immutable: bool,
}

/// The key that keeps a client on one revision. Keys hash into 10,000 slots mapped through the
/// cumulative weights in target order, so as a later target's weight grows, clients only move
/// toward it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sticky {
    /// Cookie name; set (HttpOnly, Path=/) with a random key when the client has none.
    Cookie(String),
    /// Request header name; requests without it are spread by weight.
    Header(String),
}

/// How a revision's replicas share requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each replica in turn.
    #[default]
    RoundRobin,
    /// The replica with the fewest requests in progress.
    LeastOutstanding,
}

/// The path prefix without its trailing slashes; `""` for the root.
pub(crate) fn normalize_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

fn valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Every problem in `routes`, in route order; empty when the table is usable.
///
/// A route is checked on its own first; then, among the routes with no problem of their own,
/// a later route with the same host and normalized prefix as an earlier one is a problem of
/// the later one (so a broken first copy never keeps a good second one out).
pub(crate) fn validate(routes: &[Route]) -> Vec<RouteIssue> {
    let mut issues = Vec::new();
    let mut seen: HashMap<(Option<String>, &str), usize> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        let own = route_issues(i, r);
        if !own.is_empty() {
            issues.extend(own);
            continue;
        }
        let key = (
            r.host.as_ref().map(|h| h.to_ascii_lowercase()),
            normalize_prefix(&r.path_prefix),
        );
        match seen.get(&key) {
            Some(&first) => issues.push(RouteIssue {
                route: i,
                service: r.service.clone(),
                field: "path_prefix".into(),
                message: format!(
                    "service `{}` has the same host and path prefix as routes[{first}] (service `{}`)",
                    r.service, routes[first].service
                ),
            }),
            None => {
                seen.insert(key, i);
            }
        }
    }
    issues
}

/// The problems of one route on its own. A target with weight but no upstreams is not one:
/// its replicas are not ready yet, and a request that picks it gets a 503 until they are.
fn route_issues(i: usize, r: &Route) -> Vec<RouteIssue> {
    let mut issues = Vec::new();
    let mut issue = |field: String, message: &str| {
        issues.push(RouteIssue {
            route: i,
            service: r.service.clone(),
            field,
            message: message.to_string(),
        });
    };
    if r.service.trim().is_empty() {
        issue("service".into(), "must not be empty");
    }
    if let Some(h) = &r.host
        && (h.is_empty() || h.contains(['/', ' ']))
    {
        issue("host".into(), "must be a host name without scheme or path");
    }
    if !r.path_prefix.starts_with('/') {
        issue("path_prefix".into(), "must start with '/'");
    } else if r.path_prefix.contains(['?', '#']) {
        issue("path_prefix".into(), "must not contain '?' or '#'");
    }
    match &r.sticky {
        Some(Sticky::Cookie(name)) if !valid_cookie_name(name) => {
            issue("sticky".into(), "cookie name must be a non-empty token");
        }
        Some(Sticky::Header(name)) if HeaderName::from_bytes(name.as_bytes()).is_err() => {
            issue("sticky".into(), "not a valid header name");
        }
        _ => {}
    }
    let mut revisions = HashSet::new();
    for (t, target) in r.targets.iter().enumerate() {
        if let Some(site) = &target.site {
            if !target.upstreams.is_empty() {
                issue(
                    format!("targets[{t}].site"),
                    "a static site is served by the proxy, so it has no upstreams",
                );
            }
            if !site.root.is_absolute() {
                issue(
                    format!("targets[{t}].site.root"),
                    "must be an absolute path",
                );
            }
        }
        if target.revision.is_empty() {
            issue(format!("targets[{t}].revision"), "must not be empty");
        } else if !revisions.insert(target.revision.as_str()) {
            issue(
                format!("targets[{t}].revision"),
                "listed twice in the same route",
            );
        }
    }
    let total: u64 = r.targets.iter().map(|t| u64::from(t.weight)).sum();
    if total == 0 && r.maintenance.is_none() && !r.paused {
        issue(
            "targets".into(),
            "no target has weight > 0 (set maintenance or paused to take the route out)",
        );
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route {
            service: "api".into(),
            host: None,
            path_prefix: prefix.into(),
            strip_prefix: false,
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

    #[test]
    fn a_good_table_has_no_issues() {
        assert!(validate(&[route("/"), route("/api")]).is_empty());
    }

    #[test]
    fn collects_every_issue_with_its_field() {
        let mut bad = route("api");
        bad.service = String::new();
        bad.sticky = Some(Sticky::Cookie("a b".into()));
        bad.targets.push(Target {
            revision: "v1".into(),
            weight: 5,
            upstreams: vec![],
            site: None,
        });
        let mut zero = route("/z");
        zero.targets[0].weight = 0;
        let mut dup = route("/api/");
        dup.service = "api2".into();
        let issues = validate(&[bad, zero, route("/api"), dup]);
        let fields: Vec<_> = issues.iter().map(|i| (i.route, i.field.as_str())).collect();
        assert_eq!(
            fields,
            [
                (0, "service"),
                (0, "path_prefix"),
                (0, "sticky"),
                (0, "targets[1].revision"),
                (1, "targets"),
                (3, "path_prefix"),
            ]
        );
        assert_eq!(
            issues[5].message,
            "service `api2` has the same host and path prefix as routes[2] (service `api`)"
        );
    }

    #[test]
    fn weight_without_upstreams_is_valid() {
        let mut r = route("/");
        r.targets[0].upstreams.clear();
        assert!(validate(&[r]).is_empty());
    }

    #[test]
    fn duplicates_compare_hosts_without_case_and_skip_broken_routes() {
        let mut a = route("/");
        a.host = Some("Shop.Example".into());
        let mut b = route("");
        b.host = Some("shop.example".into());
        // Broken (`""` does not start with '/'), so it claims nothing.
        assert_eq!(validate(&[a.clone(), b]).len(), 1);
        let mut b = route("/");
        b.host = Some("shop.example".into());
        let issues = validate(&[a.clone(), b.clone()]);
        assert_eq!(
            issues.iter().map(|i| i.route).collect::<Vec<_>>(),
            [1],
            "{issues:?}"
        );
        // A broken first copy leaves the second one unopposed.
        a.sticky = Some(Sticky::Cookie(String::new()));
        let issues = validate(&[a, b]);
        assert_eq!(
            issues
                .iter()
                .map(|i| (i.route, i.field.as_str()))
                .collect::<Vec<_>>(),
            [(0, "sticky")]
        );
    }

    #[test]
    fn zero_weight_is_fine_in_maintenance() {
        let mut r = route("/");
        r.targets.clear();
        r.maintenance = Some("back soon".into());
        assert!(validate(&[r]).is_empty());
    }

    #[test]
    fn prefixes_normalize() {
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("/api/"), "/api");
        assert_eq!(normalize_prefix("/api"), "/api");
    }
}
