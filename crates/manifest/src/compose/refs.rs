//! Cross-references between services that the import changes: names and addresses
//! that are dropped (`container_name`, `hostname`, network aliases, static IPs,
//! network names) but still written in other values, and images one service builds
//! and another runs.

use super::emit::Out;
use crate::model::Location;
use crate::node::{Entry, Kind, Node, join};

/// A name or address that no longer reaches a service after the import.
pub(super) struct Dropped {
    /// The text as written in values (`symphainy-redis`, `172.20.0.5`).
    pub text: String,
    /// What it was: "the `container_name` of `redis`", "the network `backend`".
    pub what: String,
    /// What to write instead, if anything.
    pub instead: Option<String>,
}

/// Every dropped name and address the services declare.
pub(super) fn dropped_names(services: &[Entry], networks: Option<&Node>) -> Vec<Dropped> {
    let mut out: Vec<Dropped> = Vec::new();
    let mut add = |text: &str, what: String, service: Option<&str>| {
        let text = text.trim();
        // A name equal to the service's own still reaches it.
        if text.is_empty() || Some(text) == service || out.iter().any(|d| d.text == text) {
            return;
        }
        out.push(Dropped {
            text: text.to_owned(),
            what,
            instead: service.map(str::to_owned),
        });
    };
    for s in services {
        let Kind::Map(fields) = &s.value.kind else {
            continue;
        };
        let name = s.key.as_str();
        for f in fields {
            match (f.key.as_str(), &f.value.kind) {
                ("container_name" | "hostname", Kind::Scalar(v)) => {
                    add(v, format!("the `{}` of `{name}`", f.key), Some(name));
                }
                ("networks", Kind::Map(nets)) => {
                    for n in nets {
                        let Kind::Map(opts) = &n.value.kind else {
                            continue;
                        };
                        for o in opts {
                            match (o.key.as_str(), &o.value.kind) {
                                ("aliases", Kind::Seq(items)) => {
                                    for i in items {
                                        if let Kind::Scalar(a) = &i.kind {
                                            add(
                                                a,
                                                format!("a network alias of `{name}`"),
                                                Some(name),
                                            );
                                        }
                                    }
                                }
                                ("ipv4_address" | "ipv6_address", Kind::Scalar(ip)) => {
                                    add(ip, format!("the static address of `{name}`"), Some(name));
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Node {
        kind: Kind::Map(nets),
        ..
    }) = networks
    {
        for n in nets.iter().filter(|n| !n.key.starts_with("x-")) {
            let named = match &n.value.kind {
                Kind::Map(opts) => opts.iter().find_map(|o| match (&*o.key, &o.value.kind) {
                    ("name", Kind::Scalar(v)) => Some(v.clone()),
                    _ => None,
                }),
                _ => None,
            };
            for text in std::iter::once(n.key.clone()).chain(named) {
                // Short, common words (`default`, `web`) would match too much.
                if text.len() >= 4 && text != "default" {
                    add(&text, format!("the network `{}`", n.key), None);
                }
            }
        }
    }
    out
}

/// Keys whose values declare the names above rather than use them.
const DECLARING: &[&str] = &[
    "container_name",
    "hostname",
    "networks",
    "domainname",
    "image",
    "build",
];

/// Each scalar in a service that mentions a dropped name: its position, path and note.
pub(super) fn mentions(
    service: &Entry,
    path: &str,
    dropped: &[Dropped],
) -> Vec<(Location, String, String)> {
    let mut out = Vec::new();
    if let Kind::Map(fields) = &service.value.kind {
        for f in fields
            .iter()
            .filter(|f| !DECLARING.contains(&f.key.as_str()))
        {
            walk(&f.value, &join(path, &f.key), dropped, &mut out);
        }
    }
    out
}

fn walk(node: &Node, path: &str, dropped: &[Dropped], out: &mut Vec<(Location, String, String)>) {
    match &node.kind {
        Kind::Scalar(s) => {
            for d in dropped.iter().filter(|d| mentions_host(s, &d.text)) {
                let message = match &d.instead {
                    Some(svc) => format!(
                        "mentions `{}`, {}, which Orchestra does not keep: containers reach each other by service name, so write `{svc}` here",
                        d.text, d.what
                    ),
                    None => format!(
                        "mentions `{}`, {}, which is not created: all services share the project network `orchestra_<project>`",
                        d.text, d.what
                    ),
                };
                out.push((node.loc, path.to_owned(), message));
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), dropped, out);
            }
        }
        Kind::Map(entries) => {
            for e in entries {
                walk(&e.value, &join(path, &e.key), dropped, out);
            }
        }
        Kind::Null => {}
    }
}

/// Whether `s` uses `host` as a whole host name or address: not inside a longer name
/// (`redis` is not in `redis-cache` or `myredis`).
pub(super) fn mentions_host(s: &str, host: &str) -> bool {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    s.match_indices(host).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let after = s[i + host.len()..].chars().next();
        !before.is_some_and(name_char)
            && !after.is_some_and(|c| name_char(c) && c != '.')
            // `host.` followed by more name is a longer domain, a trailing dot is not.
            && !s[i + host.len()..]
                .strip_prefix('.')
                .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()))
    })
}

/// The `build` a service with `image: <tag>` should get because another service
/// builds `<tag>`.
pub(super) fn built_image<'a>(
    built: &'a [(String, String, Out)],
    image: &str,
) -> Option<&'a (String, String, Out)> {
    built.iter().find(|(tag, _, _)| tag == image)
}

#[cfg(test)]
mod tests {
    use super::mentions_host;

    #[test]
    fn a_host_is_matched_as_a_whole_name() {
        assert!(mentions_host(
            "redis://symphainy-redis:6379/0",
            "symphainy-redis"
        ));
        assert!(mentions_host("symphainy-redis", "symphainy-redis"));
        assert!(mentions_host("http://172.20.0.5:8080/", "172.20.0.5"));
        assert!(mentions_host("host=db.", "db"));
        assert!(!mentions_host(
            "redis://my-symphainy-redis:6379",
            "symphainy-redis"
        ));
        assert!(!mentions_host("symphainy-redis-2", "symphainy-redis"));
        assert!(!mentions_host("172.20.0.50", "172.20.0.5"));
        assert!(!mentions_host("db.example.com", "db"));
    }
}
