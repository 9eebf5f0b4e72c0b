//! `vercel-hard-coded-rewrite-host`: a `vercel.json` rewrite, route or redirect whose
//! destination is an absolute URL on a specific backend host. Every deployment — preview,
//! staging, production — then talks to that one backend.

use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Checks `rewrites`, `routes` and `redirects` of `vercel.json`.
pub struct HardCodedRewriteHost;

static META: RuleMeta = RuleMeta {
    id: "vercel-hard-coded-rewrite-host",
    title: "vercel.json routes to a hard-coded backend host",
    family: "vercel",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Route to the backend per environment: a rewrite built from an environment \
           variable (`next.config.js` `rewrites()` reading `process.env.API_ORIGIN`, or a \
           `vercel.ts` config), a `has: [{type: host, …}]` condition per environment, or \
           the platform's route (the API as a Vercel Function or on its own domain set per \
           environment) instead of one host for every deployment.",
};

/// Hosting platforms whose hosts are one specific deployment of a backend.
const PLATFORM_SUFFIXES: &[&str] = &[
    ".run.app",
    ".herokuapp.com",
    ".onrender.com",
    ".fly.dev",
    ".railway.app",
    ".amazonaws.com",
    ".elasticbeanstalk.com",
    ".azurewebsites.net",
    ".azurecontainerapps.io",
    ".cloudfunctions.net",
    ".appspot.com",
    ".vercel.app",
    ".netlify.app",
    ".workers.dev",
    ".ondigitalocean.app",
    ".koyeb.app",
    ".ngrok.io",
    ".ngrok.app",
    ".ngrok-free.app",
];

/// Third-party services that are proxied on purpose (analytics, error reporting).
const THIRD_PARTY: &[&str] = &[
    "posthog.com",
    "segment.io",
    "segment.com",
    "mixpanel.com",
    "amplitude.com",
    "google-analytics.com",
    "googletagmanager.com",
    "googleapis.com",
    "plausible.io",
    "sentry.io",
    "hotjar.com",
    "intercom.io",
    "stripe.com",
    "github.com",
    "githubusercontent.com",
];

/// Host labels that name a backend (`api.example.com`, `backend-eu.acme.io`).
const BACKEND_LABELS: &[&str] = &["api", "backend", "server", "origin", "internal"];

fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('['))?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Why `host` is a specific backend, or `None` when it is not one.
fn backend(host: &str) -> Option<&'static str> {
    let h = host.to_ascii_lowercase();
    if h.contains('$') {
        return None;
    }
    if THIRD_PARTY
        .iter()
        .any(|d| h == *d || h.ends_with(&format!(".{d}")))
    {
        return None;
    }
    if h == "localhost" || h.parse::<std::net::IpAddr>().is_ok() {
        return Some("an address");
    }
    if PLATFORM_SUFFIXES.iter().any(|s| h.ends_with(s)) {
        return Some("a platform deployment");
    }
    let labels: Vec<&str> = h.split('.').collect();
    let sub = &labels[..labels.len().saturating_sub(2)];
    if sub.iter().any(|l| {
        l.split(['-', '_'])
            .any(|part| BACKEND_LABELS.contains(&part))
    }) {
        return Some("a backend host");
    }
    None
}

/// A rule names its host condition (`has: [{type: host}]`): already per environment.
fn host_conditioned(rule: &Node) -> bool {
    rule.get("has")
        .is_some_and(|h| h.items().iter().any(|c| c.get_str("type") == Some("host")))
}

impl Rule for HardCodedRewriteHost {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_json(&self, cx: &FileCx<'_>, root: &Node, out: &mut Sink) {
        if cx.file.kind != FileKind::VercelJson {
            return;
        }
        for (section, src_key, dest_key) in [
            ("rewrites", "source", "destination"),
            ("redirects", "source", "destination"),
            ("routes", "src", "dest"),
        ] {
            let Some(list) = root.get(section) else {
                continue;
            };
            for rule in list.items() {
                let Some(dest) = rule.get(dest_key) else {
                    continue;
                };
                let Some(url) = dest.as_str() else {
                    continue;
                };
                let Some(host) = host_of(url) else {
                    continue;
                };
                let Some(why) = backend(host) else {
                    continue;
                };
                if host_conditioned(rule) {
                    continue;
                }
                let from = rule.get_str(src_key).unwrap_or("?");
                let verb = if section == "redirects" {
                    "redirects"
                } else {
                    "proxies"
                };
                out.report(
                    cx.loc(dest.span, "hard-coded host"),
                    format!(
                        "`{section}` {verb} `{from}` to `{host}`, {why} written into \
                         vercel.json: every deployment, previews included, uses that one \
                         backend"
                    ),
                )
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn absolute_destinations_on_backend_hosts() {
        let json = r#"{
  "rewrites": [
    { "source": "/api/:path*", "destination": "https://api.acme.com/:path*" },
    { "source": "/ws", "destination": "https://acme-api-1234.a.run.app/ws" }
  ],
  "redirects": [
    { "source": "/admin", "destination": "http://10.0.0.12:8080/admin" }
  ],
  "routes": [
    { "src": "/graphql", "dest": "https://backend-prod.acme.io/graphql" }
  ]
}
"#;
        let f = run_rule(&HardCodedRewriteHost, &[("apps/web/vercel.json", json)]);
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!(
            f[0].message,
            "`rewrites` proxies `/api/:path*` to `api.acme.com`, a backend host written into \
             vercel.json: every deployment, previews included, uses that one backend"
        );
        assert_eq!(f[0].locations[0].span.start.line, 3);
        assert!(f.iter().any(|x| {
            x.message
                .contains("`redirects` redirects `/admin` to `10.0.0.12`, an address")
        }));
        assert!(
            f.iter()
                .any(|x| x.message.contains("a platform deployment"))
        );
    }

    #[test]
    fn relative_third_party_conditioned_and_other_files_are_fine() {
        let json = r#"{
  "rewrites": [
    { "source": "/(.*)", "destination": "/index.html" },
    { "source": "/ingest/:path*", "destination": "https://us.i.posthog.com/:path*" },
    { "source": "/seg/:path*", "destination": "https://api.segment.io/:path*" },
    { "source": "/api/:path*", "destination": "https://api.acme.com/:path*",
      "has": [{ "type": "host", "value": "app.acme.com" }] }
  ],
  "redirects": [
    { "source": "/docs", "destination": "https://docs.acme.com" },
    { "source": "/github", "destination": "https://github.com/acme/app" }
  ]
}
"#;
        let f = run_rule(
            &HardCodedRewriteHost,
            &[
                ("vercel.json", json),
                (
                    "package.json",
                    r#"{"rewrites": [{"source": "/a", "destination": "https://api.acme.com"}]}"#,
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
