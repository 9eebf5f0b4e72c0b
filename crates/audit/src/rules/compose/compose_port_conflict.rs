//! `compose-port-conflict`: two services bind the same host port.

use super::interpolate;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::Compose;

/// Flags a host port (per address and protocol) published by two services of one file.
pub struct PortConflict;

static META: RuleMeta = RuleMeta {
    id: "compose-port-conflict",
    title: "Two services bind the same host port",
    family: "compose",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Give each service its own host port (or publish only the one that must be \
           reachable from the host); the second service will fail to start with \
           \"port is already allocated\".",
};

/// One published host port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Binding {
    ip: String,
    port: u32,
    proto: String,
}

fn conflicts(a: &Binding, b: &Binding) -> bool {
    let any = |ip: &str| matches!(ip, "" | "0.0.0.0" | "::" | "[::]");
    a.port == b.port && a.proto == b.proto && (a.ip == b.ip || any(&a.ip) || any(&b.ip))
}

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

/// Host bindings of one `ports:` entry (none when only a container port is given).
fn bindings(entry: &Node) -> Vec<Binding> {
    if entry.is_map() {
        let Some(published) = entry.get_str("published").and_then(interpolate) else {
            return Vec::new();
        };
        let ip = entry.get_str("host_ip").unwrap_or("").to_string();
        let proto = entry
            .get_str("protocol")
            .unwrap_or("tcp")
            .to_ascii_lowercase();
        return port_range(&published)
            .into_iter()
            .map(|port| Binding {
                ip: ip.clone(),
                port,
                proto: proto.clone(),
            })
            .collect();
    }
    let Some(text) = entry.as_str().and_then(interpolate) else {
        return Vec::new();
    };
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, p)) => (s.to_string(), p.to_ascii_lowercase()),
        None => (text.clone(), "tcp".to_string()),
    };
    // `[::1]:8080:80`: keep the bracketed IPv6 address whole.
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        match r.split_once("]:") {
            Some((ip, rest)) => (ip.to_string(), rest.to_string()),
            None => return Vec::new(),
        }
    } else {
        (String::new(), spec)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host) = match parts.as_slice() {
        [_container] => return Vec::new(),
        [host, _container] if ip.is_empty() => (String::new(), *host),
        [host, _container] => (ip, *host),
        [ip, host, _container] => ((*ip).to_string(), *host),
        _ => return Vec::new(),
    };
    if host.is_empty() {
        return Vec::new(); // `127.0.0.1::80`: an ephemeral host port.
    }
    port_range(host)
        .into_iter()
        .map(|port| Binding {
            ip: ip.clone(),
            port,
            proto: proto.clone(),
        })
        .collect()
}

impl Rule for PortConflict {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_compose(&self, cx: &FileCx<'_>, compose: &Compose<'_>, out: &mut Sink) {
        let mut seen: Vec<(Binding, &str, &Node)> = Vec::new();
        for svc in &compose.services {
            let Some(ports) = svc.node.get("ports") else {
                continue;
            };
            for entry in ports.items() {
                for b in bindings(entry) {
                    if let Some((_, other, other_node)) = seen
                        .iter()
                        .find(|(s, name, _)| *name != svc.name && conflicts(s, &b))
                    {
                        out.report(
                            cx.loc(entry.span, "bound again here"),
                            format!(
                                "host port {}/{} is published by both `{other}` and `{}`",
                                b.port, b.proto, svc.name
                            ),
                        )
                        .related(cx.loc(other_node.span, format!("first bound by `{other}`")))
                        .emit();
                        break;
                    }
                    seen.push((b, svc.name, entry));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn parses_short_and_long_syntax() {
        let f = crate::source::SourceFile::new(
            "c.yml",
            "- \"127.0.0.1:8080:80/udp\"\n- 9000-9001:9000-9001\n- 80\n- \"[::1]:53:53\"\n- {published: \"8443\", target: 443}\n",
        );
        let docs = crate::parse::yaml::parse(&f).unwrap();
        let all: Vec<Vec<Binding>> = docs[0].items().iter().map(bindings).collect();
        assert_eq!(
            all[0],
            [Binding {
                ip: "127.0.0.1".into(),
                port: 8080,
                proto: "udp".into()
            }]
        );
        assert_eq!(all[1].len(), 2);
        assert!(all[2].is_empty());
        assert_eq!(all[3][0].ip, "::1");
        assert_eq!(all[4][0].port, 8443);
    }

    #[test]
    fn flags_shared_host_ports() {
        let f = run_rule(
            &PortConflict,
            &[(
                "compose.yml",
                "services:\n  api:\n    image: a:1\n    ports: [\"8000:8000\"]\n  ui:\n    image: b:1\n    ports:\n      - \"127.0.0.1:8000:3000\"\n",
            )],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].locations[0].span.start.line, 8);
        assert_eq!(f[0].locations[1].span.start.line, 4);
        assert!(f[0].message.contains("`api` and `ui`"));
    }

    #[test]
    fn accepts_distinct_ports_protocols_and_addresses() {
        let f = run_rule(
            &PortConflict,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: a:1\n    ports: [\"8000:8000\", \"53:53/udp\", \"127.0.0.1:9000:9000\"]\n  b:\n    image: b:1\n    ports: [\"8001:8000\", \"53:53/tcp\", \"127.0.0.2:9000:9000\", \"8000\"]\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
