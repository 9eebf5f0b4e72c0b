//! `healthcheck-wrong-port`: a service's healthcheck probes `localhost:<port>` where the
//! port belongs to another service (or is the host side of its own mapping), not to the
//! service itself.

use std::sync::LazyLock;

use regex::Regex;

use super::health::compose_probe;
use super::{built_dockerfile, interpolate};
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::parse::dockerfile::Keyword;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::dockerfile::final_image_stages;
use crate::rules::scan::regex;
use crate::views::{Compose, ComposeService};

/// Flags healthchecks probing a port the service does not listen on.
pub struct HealthcheckWrongPort;

static META: RuleMeta = RuleMeta {
    id: "healthcheck-wrong-port",
    title: "Healthcheck probes another service's port",
    family: "compose",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Probe the port the container itself listens on (the right-hand, container side \
           of `ports:`): inside the container `localhost` is the container, not the host \
           or the other services.",
};

static LOCAL_PORT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]):(\d{2,5})\b"));

/// `8000`, `8000-8002`.
fn port_range(s: &str) -> Vec<u32> {
    let s = s.trim();
    match s.split_once('-') {
        Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
            (Ok(a), Ok(b)) if a <= b && b - a < 1024 => (a..=b).collect(),
            _ => Vec::new(),
        },
        None => s.parse().map(|p| vec![p]).unwrap_or_default(),
    }
}

/// The ports a service declares: (host side, container side).
#[derive(Debug, Default)]
struct Ports {
    host: Vec<u32>,
    container: Vec<u32>,
}

fn ports_of(cx: &FileCx<'_>, svc: &ComposeService<'_>) -> Ports {
    let mut p = Ports::default();
    for entry in svc.node.get("ports").map(Node::items).unwrap_or_default() {
        if entry.is_map() {
            if let Some(t) = entry.get_str("target").and_then(interpolate) {
                p.container.extend(port_range(&t));
            }
            if let Some(h) = entry.get_str("published").and_then(interpolate) {
                p.host.extend(port_range(&h));
            }
            continue;
        }
        let Some(text) = entry.as_str().and_then(interpolate) else {
            continue;
        };
        let spec = text.split('/').next().unwrap_or("");
        let spec = spec.rsplit_once("]:").map_or(spec, |(_, r)| r);
        let parts: Vec<&str> = spec.split(':').collect();
        if let Some(c) = parts.last() {
            p.container.extend(port_range(c));
        }
        if parts.len() >= 2 {
            p.host.extend(port_range(parts[parts.len() - 2]));
        }
    }
    for e in svc.node.get("expose").map(Node::items).unwrap_or_default() {
        if let Some(t) = e.as_str().and_then(interpolate) {
            p.container
                .extend(port_range(t.split('/').next().unwrap_or("")));
        }
    }
    if let Some((_, df)) = built_dockerfile(cx.repo, cx.file.dir(), svc) {
        for stage in final_image_stages(df) {
            for inst in df
                .stage_instructions(stage)
                .filter(|i| i.keyword == Keyword::Expose)
            {
                for w in inst.args().split_whitespace() {
                    p.container
                        .extend(port_range(w.split('/').next().unwrap_or("")));
                }
            }
        }
    }
    p
}

/// Ports written in the service's command, entrypoint or environment (`--port 8001`,
/// `PORT: 3000`): it may listen there.
fn mentions(svc: &ComposeService<'_>, port: u32) -> bool {
    let needle = port.to_string();
    ["command", "entrypoint", "environment", "env_file"]
        .iter()
        .filter_map(|k| svc.node.get(k))
        .any(|n| {
            let mut hit = false;
            n.walk(&mut |x| {
                if let Some(s) = x.as_str() {
                    hit |= s.split(|c: char| !c.is_ascii_digit()).any(|d| d == needle);
                }
            });
            hit
        })
}

fn shares_network_with(other: &ComposeService<'_>, name: &str) -> bool {
    other
        .node
        .get_str("network_mode")
        .is_some_and(|m| m == format!("service:{name}"))
}

impl Rule for HealthcheckWrongPort {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_compose(&self, cx: &FileCx<'_>, compose: &Compose<'_>, out: &mut Sink) {
        let ports: Vec<Ports> = compose.services.iter().map(|s| ports_of(cx, s)).collect();
        for (i, svc) in compose.services.iter().enumerate() {
            // `network_mode: host` / `service:x`: localhost is somebody else's.
            if svc.node.get("network_mode").is_some() {
                continue;
            }
            let Some((cmd, test)) = svc.node.get("healthcheck").and_then(compose_probe) else {
                continue;
            };
            let own = &ports[i];
            if own.container.is_empty() {
                continue; // nothing known about where it listens
            }
            let text = cmd.text();
            let Some(c) = LOCAL_PORT.captures(&text) else {
                continue;
            };
            let Some(port) = c.get(1).and_then(|m| m.as_str().parse::<u32>().ok()) else {
                continue;
            };
            let shared: Vec<usize> = compose
                .services
                .iter()
                .enumerate()
                .filter(|(_, o)| shares_network_with(o, svc.name))
                .map(|(j, _)| j)
                .collect();
            if own.container.contains(&port)
                || shared.iter().any(|j| ports[*j].container.contains(&port))
                || mentions(svc, port)
            {
                continue;
            }
            let span = cx
                .source()
                .find_in(test.span.range(), &format!(":{port}"))
                .unwrap_or(test.span);
            let listens = own
                .container
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let other = compose.services.iter().enumerate().find(|(j, _)| {
                *j != i
                    && !shared.contains(j)
                    && (ports[*j].container.contains(&port) || ports[*j].host.contains(&port))
            });
            let message = if let Some((_, o)) = other {
                format!(
                    "service `{}` probes port {port}, which is `{}`'s; it listens on {listens}",
                    svc.name, o.name
                )
            } else if own.host.contains(&port) {
                format!(
                    "service `{}` probes port {port}, the host side of its own mapping; \
                     inside the container it listens on {listens}",
                    svc.name
                )
            } else {
                continue;
            };
            out.report(cx.loc(span, format!("port {port}")), message)
                .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn run(compose: &str) -> Vec<crate::Finding> {
        run_rule(&HealthcheckWrongPort, &[("compose.yaml", compose)])
    }

    #[test]
    fn flags_another_services_port() {
        let f = run(
            "services:\n  api:\n    image: api:1\n    ports: [\"8000:8000\"]\n  web:\n    image: web:1\n    ports: [\"3000:3000\"]\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]\n",
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("`api`'s"), "{}", f[0].message);
        assert!(f[0].message.contains("listens on 3000"));
        assert_eq!(f[0].locations[0].span.start.line, 9);
    }

    #[test]
    fn flags_the_host_side_of_its_own_mapping() {
        let f = run(
            "services:\n  api:\n    image: api:1\n    ports: [\"8001:8000\"]\n    healthcheck:\n      test: curl -f http://127.0.0.1:8001/health\n",
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("host side"));
    }

    #[test]
    fn reads_expose_of_the_built_dockerfile() {
        let compose = "services:\n  api:\n    build: ./api\n    healthcheck:\n      test: curl -f http://localhost:5432/\n  db:\n    image: postgres:16\n    ports: [\"5432:5432\"]\n";
        let f = run_rule(
            &HealthcheckWrongPort,
            &[
                ("compose.yaml", compose),
                ("api/Dockerfile", "FROM python:3.12\nEXPOSE 8000\n"),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn accepts_own_ports_and_unknowns() {
        for ok in [
            // its own container port
            "services:\n  api:\n    image: a:1\n    ports: [\"8001:8000\"]\n    healthcheck:\n      test: curl -f http://localhost:8000/\n  b:\n    image: b:1\n    ports: [\"8001:8001\"]\n",
            // nothing known about where it listens
            "services:\n  api:\n    image: a:1\n    healthcheck:\n      test: curl -f http://localhost:8080/\n  b:\n    image: b:1\n    ports: [\"8080:8080\"]\n",
            // the command says where it listens
            "services:\n  api:\n    image: a:1\n    command: uvicorn app:app --port 9000\n    expose: [\"8000\"]\n    healthcheck:\n      test: curl -f http://localhost:9000/\n  b:\n    image: b:1\n    ports: [\"9000:9000\"]\n",
            // shares the network namespace
            "services:\n  vpn:\n    image: v:1\n    ports: [\"1194:1194\"]\n    healthcheck:\n      test: curl -f http://localhost:8080/\n  app:\n    image: a:1\n    network_mode: service:vpn\n    expose: [\"8080\"]\n  other:\n    image: o:1\n    ports: [\"8080:8080\"]\n",
            "services:\n  api:\n    image: a:1\n    network_mode: host\n    ports: [\"80:80\"]\n    healthcheck:\n      test: curl -f http://localhost:8000/\n  b:\n    image: b:1\n    ports: [\"8000:8000\"]\n",
            // a port nobody declares
            "services:\n  api:\n    image: a:1\n    ports: [\"80:80\"]\n    healthcheck:\n      test: curl -f http://localhost:9999/\n",
        ] {
            assert!(run(ok).is_empty(), "{ok}: {:?}", run(ok));
        }
    }
}
