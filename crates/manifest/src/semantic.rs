//! Pass 6 (semantic checks): rules across services, on the converted model.

use std::collections::BTreeMap;
use std::path::Path;

use crate::convert::Meta;
use crate::error::Diagnostic;
use crate::model::{Condition, Manifest, Restart};
use crate::suggest::did_you_mean;

/// Checks dependencies (unknown, self, cycles, `completed` on `always`), duplicate
/// ports, duplicate routes and profile members. Every problem is pushed; nothing stops early.
pub(crate) fn check(manifest: &Manifest, meta: &Meta, diags: &mut Vec<Diagnostic>) {
    let file = manifest.file.as_path();
    let declared: Vec<&str> = meta.declared.iter().map(|(n, _)| n.as_str()).collect();
    dependencies(manifest, meta, &declared, file, diags);
    cycles(manifest, meta, file, diags);
    ports(manifest, meta, file, diags);
    routes(manifest, meta, file, diags);
    volumes(manifest, meta, file, diags);
    backup_before(manifest, meta, &declared, file, diags);
    for r in &meta.profile_refs {
        if !declared.contains(&r.name.as_str()) {
            diags.push(
                Diagnostic::new(
                    file,
                    r.loc,
                    &r.path,
                    format!("profile `{}` names unknown service `{}`", r.profile, r.name),
                )
                .hint(did_you_mean(&r.name, declared.iter().copied())),
            );
        }
    }
}

fn dependencies(
    manifest: &Manifest,
    meta: &Meta,
    declared: &[&str],
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    for (s, sm) in manifest.services.iter().zip(&meta.services) {
        for (dep, path) in s.depends_on.iter().zip(&sm.dep_paths) {
            if dep.service == s.name {
                diags.push(Diagnostic::new(
                    file,
                    dep.location,
                    path,
                    format!("service `{}` depends on itself", s.name),
                ));
            } else if !declared.contains(&dep.service.as_str()) {
                let others = declared.iter().copied().filter(|n| *n != s.name);
                diags.push(
                    Diagnostic::new(
                        file,
                        dep.location,
                        path,
                        format!("depends on unknown service `{}`", dep.service),
                    )
                    .hint(did_you_mean(&dep.service, others)),
                );
            } else if let Some(target) = manifest.service(&dep.service)
                && target.schedule.is_some()
            {
                diags.push(
                    Diagnostic::new(
                        file,
                        dep.location,
                        path,
                        format!(
                            "depends on `{}`, a scheduled job: it runs on its schedule, not before its dependents",
                            dep.service
                        ),
                    )
                    .hint(format!(
                        "remove this entry, or remove `schedule:` from `{}` to run it once at `up`",
                        dep.service
                    )),
                );
            } else if dep.condition == Condition::Completed
                && let Some(target) = manifest.service(&dep.service)
                && target.restart.policy == Restart::Always
            {
                diags.push(
                    Diagnostic::new(
                        file,
                        dep.location,
                        path,
                        format!(
                            "condition `completed` can never be met: `{}` has restart policy `always`",
                            dep.service
                        ),
                    )
                    .hint(format!(
                        "use `healthy` or `started`, or give `{}` `restart: on-failure` or `no`",
                        dep.service
                    )),
                );
            }
        }
    }
}

/// Reports each dependency cycle once: one diagnostic per strongly connected component,
/// showing one cycle through its first-declared service.
fn cycles(manifest: &Manifest, meta: &Meta, file: &Path, diags: &mut Vec<Diagnostic>) {
    let index: BTreeMap<&str, usize> = manifest
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Edges carry the index of the depends_on entry, to point the diagnostic at it.
    let edges: Vec<Vec<(usize, usize)>> = manifest
        .services
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .enumerate()
                .filter(|(_, d)| d.service != s.name)
                .filter_map(|(k, d)| index.get(d.service.as_str()).map(|&t| (t, k)))
                .collect()
        })
        .collect();
    let adjacency: Vec<Vec<usize>> = edges
        .iter()
        .map(|e| e.iter().map(|(t, _)| *t).collect())
        .collect();
    for component in strongly_connected(&adjacency) {
        if component.len() < 2 {
            continue;
        }
        let Some(&start) = component.iter().min() else {
            continue;
        };
        let Some(cycle) = shortest_cycle(&adjacency, &component, start) else {
            continue;
        };
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| manifest.services[i].name.as_str())
            .collect();
        let next = cycle.get(1).copied().unwrap_or(start);
        let Some(&(_, k)) = edges[start].iter().find(|(t, _)| *t == next) else {
            continue;
        };
        let s = &manifest.services[start];
        let path = meta.services[start]
            .dep_paths
            .get(k)
            .cloned()
            .unwrap_or_default();
        diags.push(
            Diagnostic::new(
                file,
                s.depends_on[k].location,
                path,
                format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
            )
            .hint("remove one of these `depends_on` entries".to_owned()),
        );
    }
}

/// Tarjan's algorithm; components come out in no particular order.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(st: &mut State<'_>, v: usize) {
        st.index[v] = Some(st.next);
        st.low[v] = st.next;
        st.next += 1;
        st.stack.push(v);
        st.on_stack[v] = true;
        for &w in &st.adj[v] {
            match st.index[w] {
                None => {
                    visit(st, w);
                    st.low[v] = st.low[v].min(st.low[w]);
                }
                Some(iw) if st.on_stack[w] => st.low[v] = st.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(st.low[v]) == st.index[v] {
            let mut component = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            st.out.push(component);
        }
    }
    let n = adj.len();
    let mut st = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if st.index[v].is_none() {
            visit(&mut st, v);
        }
    }
    st.out
}

/// The shortest cycle from `start` back to itself within `component` (BFS), as the list
/// of nodes starting with `start` (without repeating it at the end).
fn shortest_cycle(adj: &[Vec<usize>], component: &[usize], start: usize) -> Option<Vec<usize>> {
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &adj[v] {
            if w == start {
                let mut path = vec![v];
                let mut cur = v;
                while cur != start {
                    cur = *parent.get(&cur)?;
                    path.push(cur);
                }
                path.reverse();
                return Some(path);
            }
            if component.contains(&w) && w != start && !parent.contains_key(&w) {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

/// A host port in use: port, protocol, address (`None`: all addresses) and owner.
struct HostPort<'a> {
    port: u16,
    protocol: &'a str,
    ip: Option<&'a str>,
    service: &'a str,
}

impl HostPort<'_> {
    fn clashes(&self, other: &HostPort<'_>) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && match (self.ip, other.ip) {
                (Some(a), Some(b)) => a == b || is_any(a) || is_any(b),
                _ => true,
            }
    }
}

fn is_any(ip: &str) -> bool {
    matches!(ip, "0.0.0.0" | "::")
}

/// A host port may be taken once: by a service's `port` or by a published `ports` entry.
fn ports(manifest: &Manifest, meta: &Meta, file: &Path, diags: &mut Vec<Diagnostic>) {
    let mut seen: Vec<HostPort<'_>> = Vec::new();
    for (s, sm) in manifest.services.iter().zip(&meta.services) {
        let mut wanted: Vec<(HostPort<'_>, &(crate::model::Location, String))> = Vec::new();
        // A container's `port` is inside its own network namespace, not on the host.
        let process = matches!(s.workload, crate::model::Workload::Process { .. });
        if let (true, Some(port), Some(at)) = (process, s.port, &sm.port) {
            let hp = HostPort {
                port,
                protocol: "tcp",
                ip: None,
                service: &s.name,
            };
            wanted.push((hp, at));
        }
        for (m, at) in s.ports.iter().zip(&sm.ports) {
            if let Some(port) = m.host_port {
                let hp = HostPort {
                    port,
                    protocol: &m.protocol,
                    ip: m.host_ip.as_deref(),
                    service: &s.name,
                };
                wanted.push((hp, at));
            }
        }
        for (hp, (loc, path)) in wanted {
            match seen.iter().find(|o| o.clashes(&hp)) {
                Some(first) => {
                    let (message, hint) = if first.service == hp.service {
                        (
                            format!("host port {} is published twice", hp.port),
                            "publish each host port once",
                        )
                    } else {
                        (
                            format!(
                                "port {} is already used by service `{}`",
                                hp.port, first.service
                            ),
                            "each service needs its own port",
                        )
                    };
                    diags.push(Diagnostic::new(file, *loc, path, message).hint(hint.to_owned()));
                }
                None => seen.push(hp),
            }
        }
    }
}

/// The path prefix as the proxy matches it: without trailing slashes, `""` for the root.
/// Kept identical to `normalize_prefix` in the proxy crate, which this crate does not
/// depend on: two routes are the same exactly when the proxy could not tell them apart.
fn normalize_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// Two services may not route the same host (case-insensitive; no host is its own value)
/// and the same normalized path prefix: the proxy would send all of it to one of them.
/// Nested prefixes (`/api`, `/api/v1`) are fine: the longest one wins. Overlays are merged
/// before conversion, so a duplicate an `--env` overlay creates is caught here too.
fn routes(manifest: &Manifest, meta: &Meta, file: &Path, diags: &mut Vec<Diagnostic>) {
    struct Seen<'a> {
        host: Option<String>,
        prefix: &'a str,
        service: &'a str,
        loc: crate::model::Location,
        path: &'a str,
    }
    let mut seen: Vec<Seen<'_>> = Vec::new();
    for (s, sm) in manifest.services.iter().zip(&meta.services) {
        let (Some(route), Some((loc, path))) = (&s.route, &sm.route) else {
            continue;
        };
        let host = route.host.as_ref().map(|h| h.to_ascii_lowercase());
        let prefix = normalize_prefix(&route.path);
        match seen.iter().find(|o| o.host == host && o.prefix == prefix) {
            Some(first) => {
                let shown = if prefix.is_empty() { "/" } else { prefix };
                let what = match &host {
                    Some(h) => format!("host `{h}` and path prefix `{shown}`"),
                    None => format!("path prefix `{shown}` (any host)"),
                };
                let message = format!(
                    "service `{}` already routes {what} (at {}:{}:{}, {})",
                    first.service,
                    file.display(),
                    first.loc.line,
                    first.loc.col,
                    first.path,
                );
                diags.push(Diagnostic::new(file, *loc, path, message).hint(
                    "give one of them another `path` or `host`; a trailing `/` does not make a prefix different, nested prefixes such as `/api` and `/api/v1` are fine"
                        .to_owned(),
                ));
            }
            None => seen.push(Seen {
                host,
                prefix,
                service: &s.name,
                loc: *loc,
                path,
            }),
        }
    }
}

/// Named volumes must be declared under top-level `volumes:`.
fn volumes(manifest: &Manifest, meta: &Meta, file: &Path, diags: &mut Vec<Diagnostic>) {
    for sm in &meta.services {
        for r in &sm.volume_refs {
            if manifest.volumes.contains(&r.name) {
                continue;
            }
            let hint = did_you_mean(&r.name, manifest.volumes.iter().map(String::as_str))
                .unwrap_or_else(|| {
                    format!(
                        "declare it: `volumes: {{ {}: {{}} }}` at the top level, or write `./{}` for a host directory",
                        r.name, r.name
                    )
                });
            diags.push(
                Diagnostic::new(
                    file,
                    r.loc,
                    &r.path,
                    format!("undeclared volume `{}`", r.name),
                )
                .hint(hint),
            );
        }
    }
}

/// Each `deploy.backup_before` entry names a declared service with a `backup:` block.
fn backup_before(
    manifest: &Manifest,
    meta: &Meta,
    declared: &[&str],
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    for sm in &meta.services {
        for (name, loc, path) in &sm.backup_before {
            match manifest.service(name) {
                Some(s) if s.backup.is_some() => {}
                Some(_) => diags.push(
                    Diagnostic::new(
                        file,
                        *loc,
                        path,
                        format!(
                            "`{name}` has no `backup:` block, so no restore point can be taken"
                        ),
                    )
                    .hint(format!(
                        "give `{name}` a `backup: {{ kind: redis | postgres | command }}`"
                    )),
                ),
                None if declared.contains(&name.as_str()) => {}
                None => diags.push(
                    Diagnostic::new(
                        file,
                        *loc,
                        path,
                        format!("backup_before names unknown service `{name}`"),
                    )
                    .hint(did_you_mean(name, declared.iter().copied())),
                ),
            }
        }
    }
}
