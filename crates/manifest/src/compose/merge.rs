//! Compose's merge rules, for `extends` and for an `include` whose `path` lists several
//! files: pure functions on located nodes.
//!
//! - Mappings merge by key, the overriding side winning on a conflict.
//! - `command`, `entrypoint` and `healthcheck.test` are replaced, not merged.
//! - `environment`, `labels`, `extra_hosts`, `sysctls`, `annotations`, `build.args`,
//!   `depends_on` and `networks` merge by key, in either the list or the mapping form.
//! - `volumes`, `secrets` and `configs` merge by target: an entry for the same target
//!   replaces the base's.
//! - Other sequences (`ports`, `expose`, `dns`, ...) append, a repeated entry once.
//! - `KEY: !reset ...` unsets the key; `KEY: !override ...` replaces the base's value.

use crate::node::{Entry, Kind, Node, OVERRIDE_MARK, RESET_MARK, unmarked};

/// The service `over` with `base`'s fields merged in (`over` extends `base`).
pub(crate) fn merge_service(base: &Node, over: &Node) -> Node {
    merge_value("", base, over)
}

/// Drops `!reset` entries and the `!override` marks, everywhere in `node`.
pub(crate) fn strip_marks(node: &Node) -> Node {
    let kind = match &node.kind {
        Kind::Map(entries) => Kind::Map(
            entries
                .iter()
                .filter(|e| !e.key.starts_with(RESET_MARK))
                .map(|e| Entry {
                    key: unmarked(&e.key).to_owned(),
                    key_loc: e.key_loc,
                    value: strip_marks(&e.value),
                })
                .collect(),
        ),
        Kind::Seq(items) => Kind::Seq(items.iter().map(strip_marks).collect()),
        other => other.clone(),
    };
    Node {
        loc: node.loc,
        kind,
    }
}

/// Fields that are lists or mappings of `KEY=VALUE` / `KEY: VALUE`, merged by key.
const BY_KEY: &[&str] = &[
    "environment",
    "labels",
    "extra_hosts",
    "sysctls",
    "annotations",
    "build.args",
    "depends_on",
    "networks",
    "ulimits",
];

/// Sequences whose entries are identified by their target.
const BY_TARGET: &[&str] = &["volumes", "secrets", "configs"];

/// Values replaced as a whole.
const REPLACED: &[&str] = &["command", "entrypoint", "healthcheck.test"];

fn merge_value(path: &str, base: &Node, over: &Node) -> Node {
    if REPLACED.contains(&path) {
        return strip_marks(over);
    }
    if BY_KEY.contains(&path) {
        if let (Some(b), Some(o)) = (as_map(path, base), as_map(path, over)) {
            return merge_maps(path, &b, &o, over.loc);
        }
        return strip_marks(over);
    }
    if path == "build" {
        if let (Some(b), Some(o)) = (build_map(base), build_map(over)) {
            return merge_maps(path, &b, &o, over.loc);
        }
        return strip_marks(over);
    }
    match (&base.kind, &over.kind) {
        (Kind::Map(b), Kind::Map(o)) => merge_maps(path, b, o, over.loc),
        (Kind::Seq(b), Kind::Seq(o)) => {
            let mut items: Vec<Node> = Vec::new();
            let by_target = BY_TARGET.contains(&path);
            for item in b.iter().chain(o).map(strip_marks) {
                let key = if by_target { target(path, &item) } else { None };
                if let Some(k) = key {
                    if let Some(i) = items
                        .iter()
                        .position(|x| target(path, x).as_ref() == Some(&k))
                    {
                        items[i] = item;
                        continue;
                    }
                } else if items.iter().any(|x| same(x, &item)) {
                    continue;
                }
                items.push(item);
            }
            Node {
                loc: over.loc,
                kind: Kind::Seq(items),
            }
        }
        _ => strip_marks(over),
    }
}

fn merge_maps(path: &str, base: &[Entry], over: &[Entry], loc: crate::model::Location) -> Node {
    let mut out: Vec<Entry> = base
        .iter()
        .map(|e| Entry {
            key: unmarked(&e.key).to_owned(),
            key_loc: e.key_loc,
            value: strip_marks(&e.value),
        })
        .filter(|e| {
            !base
                .iter()
                .any(|r| r.key == format!("{RESET_MARK}{}", e.key))
        })
        .collect();
    for e in over {
        if let Some(key) = e.key.strip_prefix(RESET_MARK) {
            out.retain(|x| x.key != key);
            continue;
        }
        let (key, replace) = match e.key.strip_prefix(OVERRIDE_MARK) {
            Some(k) => (k, true),
            None => (e.key.as_str(), false),
        };
        let child = crate::node::join(path, key);
        let value = match out.iter().find(|x| x.key == key) {
            Some(b) if !replace => merge_value(&child, &b.value, &e.value),
            _ => strip_marks(&e.value),
        };
        let entry = Entry {
            key: key.to_owned(),
            key_loc: e.key_loc,
            value,
        };
        match out.iter().position(|x| x.key == key) {
            Some(i) => out[i] = entry,
            None => out.push(entry),
        }
    }
    Node {
        loc,
        kind: Kind::Map(out),
    }
}

/// A list-or-mapping field as mapping entries (`KEY=VALUE`, `host:ip`, a bare name).
fn as_map(path: &str, node: &Node) -> Option<Vec<Entry>> {
    match &node.kind {
        Kind::Map(entries) => Some(entries.clone()),
        Kind::Null => Some(Vec::new()),
        Kind::Seq(items) => items
            .iter()
            .map(|item| {
                let Kind::Scalar(s) = &item.kind else {
                    return None;
                };
                let sep = if path == "extra_hosts" && !s.contains('=') {
                    ':'
                } else {
                    '='
                };
                let (key, value) = match s.split_once(sep) {
                    Some((k, v)) => (k.to_owned(), Kind::Scalar(v.to_owned())),
                    None if path == "depends_on" => (
                        s.clone(),
                        Kind::Map(vec![Entry {
                            key: "condition".to_owned(),
                            key_loc: item.loc,
                            value: Node {
                                loc: item.loc,
                                kind: Kind::Scalar("service_started".to_owned()),
                            },
                        }]),
                    ),
                    None => (s.clone(), Kind::Null),
                };
                Some(Entry {
                    key,
                    key_loc: item.loc,
                    value: Node {
                        loc: item.loc,
                        kind: value,
                    },
                })
            })
            .collect(),
        Kind::Scalar(_) => None,
    }
}

/// `build: DIR` as `{context: DIR}`.
fn build_map(node: &Node) -> Option<Vec<Entry>> {
    match &node.kind {
        Kind::Map(entries) => Some(entries.clone()),
        Kind::Scalar(_) => Some(vec![Entry {
            key: "context".to_owned(),
            key_loc: node.loc,
            value: node.clone(),
        }]),
        _ => None,
    }
}

/// Where a volume, secret or config entry lands in the container.
fn target(path: &str, item: &Node) -> Option<String> {
    match &item.kind {
        Kind::Scalar(s) if path == "volumes" => {
            let mut parts = s.split(':');
            let first = parts.next()?;
            Some(parts.next().unwrap_or(first).to_owned())
        }
        Kind::Scalar(s) => Some(s.clone()),
        Kind::Map(entries) => {
            let get = |k: &str| {
                entries
                    .iter()
                    .find_map(|e| match (&e.value.kind, e.key == k) {
                        (Kind::Scalar(s), true) => Some(s.clone()),
                        _ => None,
                    })
            };
            get("target").or_else(|| get("source"))
        }
        _ => None,
    }
}

/// The same value, wherever it is written.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Scalar(x), Kind::Scalar(y)) => x == y,
        (Kind::Null, Kind::Null) => true,
        (Kind::Seq(x), Kind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Kind::Map(x), Kind::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(a, b)| a.key == b.key && same(&a.value, &b.value))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::node::{Tags, parse_with};

    fn parse(yaml: &str) -> Node {
        parse_with(yaml, Path::new("t.yaml"), Tags::Compose)
            .expect("valid YAML")
            .expect("a document")
    }

    /// The merged value as plain data, locations left out.
    fn plain(n: &Node) -> String {
        match &n.kind {
            Kind::Null => "~".to_owned(),
            Kind::Scalar(s) => s.clone(),
            Kind::Seq(items) => format!(
                "[{}]",
                items.iter().map(plain).collect::<Vec<_>>().join(", ")
            ),
            Kind::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|e| format!("{}: {}", e.key, plain(&e.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn merged(base: &str, over: &str) -> String {
        plain(&merge_service(&parse(base), &parse(over)))
    }

    #[test]
    fn mappings_merge_and_the_extending_service_wins() {
        assert_eq!(
            merged("image: a\nuser: x\n", "image: b\nworking_dir: /w\n"),
            "{image: b, user: x, working_dir: /w}"
        );
    }

    #[test]
    fn command_and_entrypoint_are_replaced_not_appended() {
        assert_eq!(
            merged("command: [a, b]\nentrypoint: [sh]\n", "command: [c]\n"),
            "{command: [c], entrypoint: [sh]}"
        );
        assert_eq!(
            merged(
                "healthcheck: {test: [CMD, a], interval: 5s}\n",
                "healthcheck: {test: [CMD, b]}\n"
            ),
            "{healthcheck: {test: [CMD, b], interval: 5s}}"
        );
    }

    #[test]
    fn environment_merges_by_key_across_list_and_mapping_forms() {
        assert_eq!(
            merged(
                "environment: [A=1, B=2, C]\n",
                "environment: {B: '3', D: '4'}\n"
            ),
            "{environment: {A: 1, B: 3, C: ~, D: 4}}"
        );
        assert_eq!(
            merged("labels: {a: '1'}\n", "labels: [b=2, a=9]\n"),
            "{labels: {a: 9, b: 2}}"
        );
    }

    #[test]
    fn ports_and_expose_append_and_keep_a_repeated_entry_once() {
        assert_eq!(
            merged(
                "ports: ['80:80', '443:443']\nexpose: ['1']\n",
                "ports: ['8080:80', '443:443']\nexpose: ['1', '2']\n"
            ),
            "{ports: [80:80, 443:443, 8080:80], expose: [1, 2]}"
        );
    }

    #[test]
    fn volumes_and_secrets_merge_by_target() {
        assert_eq!(
            merged(
                "volumes: ['./a:/data', 'cache:/cache']\nsecrets: [s1, {source: s2, target: t}]\n",
                "volumes: ['./b:/data:ro', {type: bind, source: ./c, target: /c}]\nsecrets: [{source: s3, target: t}]\n"
            ),
            "{volumes: [./b:/data:ro, cache:/cache, {type: bind, source: ./c, target: /c}], secrets: [s1, {source: s3, target: t}]}"
        );
    }

    #[test]
    fn depends_on_short_and_long_forms_merge() {
        assert_eq!(
            merged(
                "depends_on: [db]\n",
                "depends_on: {cache: {condition: service_healthy}}\n"
            ),
            "{depends_on: {db: {condition: service_started}, cache: {condition: service_healthy}}}"
        );
    }

    #[test]
    fn build_string_and_mapping_forms_merge() {
        assert_eq!(
            merged("build: ./app\n", "build: {args: {X: '1'}}\n"),
            "{build: {context: ./app, args: {X: 1}}}"
        );
    }

    #[test]
    fn reset_unsets_and_override_replaces() {
        assert_eq!(
            merged(
                "ports: ['80:80']\nenvironment: {A: '1', B: '2'}\nuser: x\n",
                "ports: !reset []\nenvironment: !override {C: '3'}\nuser: !reset null\n"
            ),
            "{environment: {C: 3}}"
        );
        assert_eq!(
            merged(
                "environment: {A: '1', B: '2'}\n",
                "environment: {A: !reset null}\n"
            ),
            "{environment: {B: 2}}"
        );
    }

    #[test]
    fn nested_mappings_merge_deeply() {
        assert_eq!(
            merged(
                "deploy: {resources: {limits: {cpus: '1', memory: 1g}}}\n",
                "deploy: {resources: {limits: {memory: 2g}}, replicas: 2}\n"
            ),
            "{deploy: {resources: {limits: {cpus: 1, memory: 2g}}, replicas: 2}}"
        );
    }
}
