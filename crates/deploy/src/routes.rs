//! From the deployer's view of each service (which revision is stable, which
//! is the canary and at what weight) to the proxy's routing table: a pure
//! function, so the table is always derived, never edited in place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use orchestra_manifest::{Balance as BalanceSpec, RouteSpec, Sticky as StickySpec};
use orchestra_proxy::{Balance, Route, StaticSite, Sticky, Target};

/// How one service's traffic is split now.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The route as the manifest gives it.
    pub spec: RouteSpec,
    /// Revision id and runtime instance key of the stable revision.
    pub stable: (String, String),
    /// The canary, if one is being verified: (revision, instance key, weight in percent).
    pub canary: Option<(String, String, u32)>,
    /// Hold requests instead of forwarding them.
    pub paused: bool,
    /// Answer 503 with this page.
    pub maintenance: Option<String>,
}

/// Build the proxy's table. `addrs` gives the ready replica addresses of an
/// instance key; `sites` the directory a static site's instance is served
/// from, once it is up.
pub fn table<F, G>(splits: &BTreeMap<String, Split>, addrs: F, sites: G) -> Vec<Route>
where
    F: Fn(&str) -> Vec<SocketAddr>,
    G: Fn(&str) -> Option<PathBuf>,
{
    splits
        .iter()
        .map(|(service, s)| {
            let canary_weight = s.canary.as_ref().map(|c| c.2.min(100)).unwrap_or(0);
            let target = |revision: &str, key: &str, weight: u32| {
                let site = sites(key).map(|root| StaticSite {
                    root,
                    spa: s.spec.spa,
                    // A snapshot is never written again once made.
                    immutable: true,
                });
                Target {
                    revision: revision.to_owned(),
                    weight,
                    upstreams: if site.is_some() {
                        Vec::new()
                    } else {
                        addrs(key)
                    },
                    site,
                }
            };
            let mut targets = vec![target(&s.stable.0, &s.stable.1, 100 - canary_weight)];
            if let Some((rev, key, _)) = &s.canary {
                targets.push(target(rev, key, canary_weight));
            }
            Route {
                service: service.clone(),
                host: s.spec.host.clone(),
                path_prefix: s.spec.path.clone(),
                strip_prefix: s.spec.strip_prefix,
                targets,
                sticky: s.spec.sticky.as_ref().map(|k| match k {
                    StickySpec::Cookie(c) => Sticky::Cookie(c.clone()),
                    StickySpec::Header(h) => Sticky::Header(h.clone()),
                }),
                balance: match s.spec.balance {
                    BalanceSpec::RoundRobin => Balance::RoundRobin,
                    BalanceSpec::LeastOutstanding => Balance::LeastOutstanding,
                },
                paused: s.paused,
                maintenance: s.maintenance.clone(),
            }
        })
        .collect()
}

/// The canary weights of a rollout: the manifest's steps, ending at 100.
pub fn steps(spec: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = spec
        .iter()
        .copied()
        .filter(|w| *w > 0 && *w <= 100)
        .collect();
    out.dedup();
    if out.last() != Some(&100) {
        out.push(100);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(canary: Option<u32>) -> Split {
        Split {
            spec: RouteSpec {
                path: "/api".into(),
                host: None,
                strip_prefix: true,
                sticky: Some(StickySpec::Cookie("orchestra".into())),
                balance: BalanceSpec::RoundRobin,
                spa: false,
            },
            stable: ("r1".into(), "api@r1".into()),
            canary: canary.map(|w| ("r2".into(), "api@r2".into(), w)),
            paused: false,
            maintenance: None,
        }
    }

    #[test]
    fn weights_split_between_stable_and_canary() {
        let mut m = BTreeMap::new();
        m.insert("api".to_owned(), split(Some(10)));
        let t = table(
            &m,
            |k| {
                vec![SocketAddr::from((
                    [127, 0, 0, 1],
                    if k == "api@r1" { 1 } else { 2 },
                ))]
            },
            |_| None,
        );
        assert_eq!(t.len(), 1);
        let w: Vec<(String, u32, u16)> = t[0]
            .targets
            .iter()
            .map(|t| (t.revision.clone(), t.weight, t.upstreams[0].port()))
            .collect();
        assert_eq!(w, [("r1".into(), 90, 1), ("r2".into(), 10, 2)]);
        assert!(t[0].strip_prefix);
    }

    #[test]
    fn no_canary_sends_everything_to_stable() {
        let mut m = BTreeMap::new();
        m.insert("api".to_owned(), split(None));
        let t = table(&m, |_| Vec::new(), |_| None);
        assert_eq!(t[0].targets.len(), 1);
        assert_eq!(t[0].targets[0].weight, 100);
    }

    #[test]
    fn a_static_revision_is_served_from_its_snapshot_once_up() {
        let mut m = BTreeMap::new();
        let mut s = split(Some(50));
        s.spec.spa = true;
        m.insert("web".to_owned(), s);
        let roots = |k: &str| (k == "api@r2").then(|| PathBuf::from("/state/static/web/r2"));
        let t = table(&m, |_| vec![SocketAddr::from(([127, 0, 0, 1], 9))], roots);
        let [stable, canary] = &t[0].targets[..] else {
            panic!("{t:?}");
        };
        // Not a site (or not up yet): forwarded as before.
        assert_eq!(stable.site, None);
        assert_eq!(stable.upstreams.len(), 1);
        assert_eq!(
            canary.site,
            Some(StaticSite {
                root: "/state/static/web/r2".into(),
                spa: true,
                immutable: true,
            })
        );
        assert!(canary.upstreams.is_empty());
    }

    #[test]
    fn steps_always_end_at_full_traffic() {
        assert_eq!(steps(&[10, 50]), [10, 50, 100]);
        assert_eq!(steps(&[10, 50, 100]), [10, 50, 100]);
        assert_eq!(steps(&[]), [100]);
    }
}
