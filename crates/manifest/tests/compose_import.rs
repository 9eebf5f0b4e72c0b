//! `orchestra import`: every Compose file under `tests/compose/` is imported and compared
//! with its golden files (`<name>.orchestra.yaml`, `<name>.notes.txt`; regenerate with
//! `UPDATE_GOLDEN=1`), the result must load as a valid manifest, and the loaded manifest
//! must behave as the Compose file did for the fields Orchestra supports, checked
//! against an independent reading of the Compose file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orchestra_manifest::compose::{Import, ImportError, import_file, import_str};
use orchestra_manifest::{LoadError, LoadOptions, Manifest, load_str};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose")
}

/// Every `<name>.yml` Compose file under `tests/compose/`, sorted.
fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Variables the fixtures' `${X:?}` and `~` need at load time.
fn load_vars() -> LoadOptions {
    let vars: BTreeMap<String, String> = [
        ("HOME", "/home/test"),
        ("POSTGRES_PASSWORD", "s3cret"),
        ("REGISTRY", "registry.example.com"),
        ("API_TAG", "1.4.2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    LoadOptions {
        environment: None,
        vars,
    }
}

fn notes_text(import: &Import) -> String {
    let mut s = format!("{}\n", import.summary());
    for n in &import.notes {
        // A note on included or extended content names its file, relative to the fixtures.
        if let Some(f) = &n.file {
            let f = f.strip_prefix(fixture_dir()).unwrap_or(f);
            s.push_str(&format!("{}:", f.display()));
        }
        s.push_str(&format!("{n}\n"));
    }
    s
}

fn load_output(compose: &Path, yaml: &str) -> Manifest {
    // The manifest is meant to sit beside the Compose file.
    let out = compose.with_file_name("orchestra.yaml");
    match load_str(yaml, &out, &load_vars()) {
        Ok(m) => m,
        Err(LoadError::Invalid(d)) => {
            let text: Vec<String> = d.iter().map(ToString::to_string).collect();
            panic!(
                "{}: the imported manifest does not load:\n{}\n---\n{yaml}",
                compose.display(),
                text.join("\n")
            )
        }
        Err(e) => panic!("{}: {e}", compose.display()),
    }
}

#[test]
fn fixtures_match_golden_files_and_load() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = fixtures();
    let mut failures = Vec::new();
    for compose in &files {
        let import = import_file(compose).unwrap_or_else(|e| panic!("{}: {e}", compose.display()));
        let name = stem(compose);
        let golden_yaml = compose.with_file_name(format!("{name}.orchestra.yaml"));
        let golden_notes = compose.with_file_name(format!("{name}.notes.txt"));
        let notes = notes_text(&import);
        if update {
            std::fs::write(&golden_yaml, &import.yaml).unwrap();
            std::fs::write(&golden_notes, &notes).unwrap();
        } else {
            let want_yaml = std::fs::read_to_string(&golden_yaml).unwrap_or_default();
            let want_notes = std::fs::read_to_string(&golden_notes).unwrap_or_default();
            if want_yaml != import.yaml {
                failures.push(format!(
                    "{} differs:\n{}",
                    golden_yaml.display(),
                    import.yaml
                ));
            }
            if want_notes != notes {
                failures.push(format!("{} differs:\n{notes}", golden_notes.display()));
            }
        }
        load_output(compose, &import.yaml);
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with UPDATE_GOLDEN=1 to accept)",
        failures.join("\n")
    );
    assert!(files.len() >= 15, "only {} fixtures", files.len());
}

// ------------------------------------------------------------------ behaviour
//
// An independent reading of the Compose files (saphyr's plain loader, its own merge-key
// handling, Compose's defaults) that says what each service should do; the imported and
// re-loaded manifest must agree on every supported field the fixture spells out without
// `${...}` (those are resolved only at load time).

use orchestra_manifest::{
    Check, Condition, ProbeFailure, Resources, Restart, Workload, parse_duration,
};
use saphyr::{ScalarStyle, Yaml, YamlLoader};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    S(String),
    L(Vec<V>),
    M(Vec<(String, V)>),
}

impl V {
    fn get(&self, key: &str) -> Option<&V> {
        match self {
            V::M(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| **v != V::Null),
            _ => None,
        }
    }

    fn s(&self) -> Option<&str> {
        match self {
            V::S(s) => Some(s),
            _ => None,
        }
    }

    fn list(&self) -> &[V] {
        match self {
            V::L(items) => items,
            _ => &[],
        }
    }

    fn entries(&self) -> &[(String, V)] {
        match self {
            V::M(entries) => entries,
            _ => &[],
        }
    }
}

fn read_compose(text: &str) -> V {
    let mut loader: YamlLoader<Yaml> = YamlLoader::default();
    loader.early_parse(false);
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    parser.load(&mut loader, true).unwrap();
    let docs = loader.into_documents();
    to_v(&docs[0])
}

fn to_v(y: &Yaml) -> V {
    match y {
        Yaml::Representation(_, _, Some(tag))
            if tag.is_yaml_core_schema() && tag.suffix == "null" =>
        {
            V::Null
        }
        Yaml::Representation(text, style, tag) => {
            // `!!str null` is a string; `!override null` is null.
            if *style == ScalarStyle::Plain
                && tag.as_ref().is_none_or(|t| !t.is_yaml_core_schema())
                && matches!(&**text, "" | "~" | "null" | "Null" | "NULL")
            {
                V::Null
            } else {
                V::S(text.to_string())
            }
        }
        Yaml::Sequence(items) => V::L(items.iter().map(to_v).collect()),
        Yaml::Mapping(map) => {
            let mut own: Vec<(String, V)> = Vec::new();
            let mut merged: Vec<(String, V)> = Vec::new();
            // Compose's `KEY: !reset ...` unsets KEY, merged values included.
            let mut reset: Vec<String> = Vec::new();
            for (k, v) in map {
                let key = match to_v(k) {
                    V::S(s) => s,
                    _ => String::new(),
                };
                let tag = match v {
                    Yaml::Representation(_, _, Some(t)) | Yaml::Tagged(t, _) => Some(t),
                    _ => None,
                };
                if tag.is_some_and(|t| t.handle == "!" && t.suffix == "reset") {
                    reset.push(key);
                } else if key == "<<" {
                    let sources = match to_v(v) {
                        V::L(items) => items,
                        one => vec![one],
                    };
                    for source in sources {
                        for (mk, mv) in source.entries() {
                            if !merged.iter().any(|(k, _)| k == mk) {
                                merged.push((mk.clone(), mv.clone()));
                            }
                        }
                    }
                } else {
                    own.push((key, to_v(v)));
                }
            }
            for (k, v) in merged {
                if !own.iter().any(|(o, _)| *o == k) && !reset.contains(&k) {
                    own.push((k, v));
                }
            }
            V::M(own)
        }
        Yaml::Tagged(_, inner) => to_v(inner),
        _ => V::Null,
    }
}

fn templated(v: &V) -> bool {
    match v {
        V::S(s) => s.contains('$'),
        V::L(items) => items.iter().any(templated),
        V::M(entries) => entries.iter().any(|(_, v)| templated(v)),
        V::Null => false,
    }
}

/// Compose's word splitting for string commands (quotes group, no shell).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in s.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn argv(v: &V) -> Vec<String> {
    match v {
        V::S(s) => words(s),
        V::L(items) => items
            .iter()
            .filter_map(|i| i.s().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn bytes(s: &str) -> u64 {
    let s = s.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?}"),
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = (num.parse::<f64>().unwrap() * mult) as u64;
    n
}

fn dur(v: Option<&V>, default: Duration, zero_is_default: bool) -> Option<Duration> {
    match v {
        None => Some(default),
        Some(v) if templated(v) => None,
        Some(v) => {
            let d = parse_duration(v.s().unwrap()).unwrap();
            Some(if d.is_zero() && zero_is_default {
                default
            } else {
                d
            })
        }
    }
}

/// A Docker healthcheck with Docker's defaults; `None` timings are `${...}`.
#[derive(Debug)]
struct ExpectedProbe {
    exec: Vec<String>,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    retries: u32,
    start_period: Option<Duration>,
}

/// What Compose would run a service with: `None` healthcheck fields are not checked.
#[derive(Debug)]
struct Expected {
    healthcheck: Option<ExpectedProbe>,
    restart: Option<(Restart, Option<u32>)>,
    replicas: Option<u32>,
}

fn imported(svc: &V) -> bool {
    let local_build = match svc.get("build") {
        None => false,
        Some(V::S(s)) => !s.contains("://"),
        Some(b) => b
            .get("context")
            .and_then(V::s)
            .is_none_or(|c| !c.contains("://")),
    };
    svc.get("extends").is_none() && (svc.get("image").is_some() || local_build)
}

fn expected(svc: &V) -> Expected {
    let hc = svc.get("healthcheck");
    let disabled = hc
        .and_then(|h| h.get("disable"))
        .and_then(V::s)
        .is_some_and(|s| s == "true");
    let test = hc.and_then(|h| h.get("test"));
    let exec = match test {
        _ if disabled => None,
        None => None,
        Some(V::S(s)) => Some(vec!["sh".into(), "-c".into(), s.clone()]),
        Some(V::L(items)) => {
            let w: Vec<String> = items
                .iter()
                .filter_map(|i| i.s().map(str::to_owned))
                .collect();
            match w.first().map(String::as_str) {
                Some("CMD") => Some(w[1..].to_vec()),
                Some("CMD-SHELL") => Some(vec!["sh".into(), "-c".into(), w[1..].join(" ")]),
                _ => None,
            }
        }
        Some(_) => None,
    };
    let healthcheck = exec.map(|exec| {
        let h = hc.unwrap();
        let thirty = Duration::from_secs(30);
        let retries = h
            .get("retries")
            .and_then(V::s)
            .map_or(3, |r| r.parse::<u32>().unwrap());
        ExpectedProbe {
            exec,
            interval: dur(h.get("interval"), thirty, true),
            timeout: dur(h.get("timeout"), thirty, true),
            retries: if retries == 0 { 3 } else { retries },
            start_period: dur(h.get("start_period"), Duration::ZERO, false),
        }
    });
    let deploy = svc.get("deploy");
    // `deploy.restart_policy` wins over `restart`, as in Compose.
    let restart = match deploy.and_then(|d| d.get("restart_policy")) {
        Some(p) => {
            let policy = match p.get("condition").and_then(V::s) {
                Some("none") => Restart::No,
                Some("on-failure") => Restart::OnFailure,
                _ => Restart::Always,
            };
            let max = p
                .get("max_attempts")
                .and_then(V::s)
                .map(|m| m.parse().unwrap());
            Some((policy, max))
        }
        None => match svc.get("restart") {
            Some(v) if templated(v) => None,
            Some(v) => {
                let s = v.s().unwrap();
                Some(match s {
                    "no" => (Restart::No, None),
                    "always" | "unless-stopped" => (Restart::Always, None),
                    "on-failure" => (Restart::OnFailure, None),
                    other => {
                        let n = other.strip_prefix("on-failure:").unwrap().parse().unwrap();
                        (Restart::OnFailure, Some(n))
                    }
                })
            }
            None => Some((Restart::No, None)),
        },
    };
    let replicas = match deploy.and_then(|d| d.get("replicas")).or(svc.get("scale")) {
        None => Some(1),
        Some(v) if templated(v) => None,
        Some(v) => Some(v.s().unwrap().parse::<u32>().unwrap().max(1)),
    };
    Expected {
        healthcheck,
        restart,
        replicas,
    }
}

fn condition(c: Option<&str>) -> Condition {
    match c {
        Some("service_healthy") => Condition::Healthy,
        Some("service_completed_successfully") => Condition::Completed,
        _ => Condition::Started,
    }
}

/// Every service's dependencies as Compose starts them, limited to imported services.
fn expected_deps(svc: &V, names: &[String]) -> BTreeMap<String, Condition> {
    let mut deps = BTreeMap::new();
    match svc.get("depends_on") {
        Some(V::L(items)) => {
            for i in items {
                deps.insert(i.s().unwrap().to_owned(), Condition::Started);
            }
        }
        Some(V::M(entries)) => {
            for (k, v) in entries {
                deps.insert(k.clone(), condition(v.get("condition").and_then(V::s)));
            }
        }
        _ => {}
    }
    if let Some(links) = svc.get("links") {
        for l in links.list() {
            let name = l.s().unwrap().split(':').next().unwrap().to_owned();
            deps.entry(name).or_insert(Condition::Started);
        }
    }
    deps.retain(|k, _| names.contains(k));
    deps
}

/// Short port strings and long-form ports without ranges or variables:
/// (host port, container port, protocol).
fn expected_ports(svc: &V) -> Vec<(Option<u16>, u16, String)> {
    let mut out = Vec::new();
    for p in svc.get("ports").map(V::list).unwrap_or_default() {
        if templated(p) {
            continue;
        }
        match p {
            V::S(s) if !s.contains('-') && !s.contains('[') => {
                let (spec, proto) = s.split_once('/').unwrap_or((s, "tcp"));
                let parts: Vec<&str> = spec.split(':').collect();
                let container = parts.last().unwrap().parse().unwrap();
                let host = match parts.len() {
                    1 => None,
                    n => parts[n - 2].parse().ok(),
                };
                out.push((host, container, proto.to_owned()));
            }
            V::M(_) => {
                let container = p.get("target").and_then(V::s).unwrap().parse().unwrap();
                let host = p
                    .get("published")
                    .and_then(V::s)
                    .map(|h| h.parse().unwrap());
                let proto = p.get("protocol").and_then(V::s).unwrap_or("tcp").to_owned();
                out.push((host, container, proto));
            }
            _ => {}
        }
    }
    out
}

/// `s` with each `${...}` replaced by `VAR`.
fn without_vars(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        out.push_str("VAR");
        rest = rest[i..].split_once('}').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

/// Container paths mounted (volumes of supported types, and `tmpfs`).
fn expected_mounts(svc: &V) -> Vec<String> {
    let mut out = Vec::new();
    for v in svc.get("volumes").map(V::list).unwrap_or_default() {
        match v {
            V::S(s) => {
                // `${DATA_DIR:-./data}:/data`: a variable is one source word.
                let s = without_vars(s);
                let parts: Vec<&str> = s.split(':').collect();
                let target = if parts.len() == 1 { parts[0] } else { parts[1] };
                out.push(target.to_owned());
            }
            V::M(_) => {
                let kind = v.get("type").and_then(V::s).unwrap_or_default();
                if matches!(kind, "volume" | "bind" | "tmpfs") {
                    out.push(v.get("target").and_then(V::s).unwrap().to_owned());
                }
            }
            _ => {}
        }
    }
    match svc.get("tmpfs") {
        Some(V::S(s)) => out.push(s.split(':').next().unwrap().to_owned()),
        Some(V::L(items)) => {
            for i in items {
                out.push(i.s().unwrap().split(':').next().unwrap().to_owned());
            }
        }
        _ => {}
    }
    out.sort();
    out
}

fn expected_gpus(svc: &V) -> Option<u32> {
    if svc.get("gpus").and_then(V::s) == Some("all") {
        return Some(Resources::ALL_GPUS);
    }
    // A service-level `gpus:` list holds GPU requests without `capabilities`.
    let service_level = svc.get("gpus");
    let devices = match service_level {
        Some(list) => list,
        None => svc
            .get("deploy")
            .and_then(|d| d.get("resources"))
            .and_then(|r| r.get("reservations"))
            .and_then(|r| r.get("devices"))?,
    };
    let mut total = None;
    for d in devices.list() {
        let caps = d.get("capabilities").map(V::list).unwrap_or_default();
        if !caps.iter().any(|c| c.s() == Some("gpu")) && service_level.is_none() {
            continue;
        }
        let n = if let Some(ids) = d.get("device_ids") {
            u32::try_from(ids.list().len()).unwrap()
        } else {
            match d.get("count").and_then(V::s) {
                Some("all") => Resources::ALL_GPUS,
                Some(n) => n.parse().unwrap(),
                None => Resources::ALL_GPUS,
            }
        };
        total = Some(match total {
            None => n,
            Some(t) if t == Resources::ALL_GPUS || n == Resources::ALL_GPUS => Resources::ALL_GPUS,
            Some(t) => t + n,
        });
    }
    total
}

fn check_service(fixture: &str, dir: &Path, svc: &V, names: &[String], m: &Manifest, name: &str) {
    let s = m
        .service(name)
        .unwrap_or_else(|| panic!("{fixture}: service `{name}` missing"));
    let ctx = format!("{fixture}: services.{name}");

    // What runs.
    let image = svc.get("image");
    let (command, entrypoint) = match (&s.workload, svc.get("build")) {
        (
            Workload::Build {
                build,
                command,
                entrypoint,
            },
            Some(b),
        ) => {
            let context = match b {
                V::S(c) => c.as_str(),
                _ => b.get("context").and_then(V::s).unwrap_or("."),
            };
            let want: PathBuf = dir.join(context).components().collect();
            assert_eq!(build.context, want, "{ctx}.build");
            (command, entrypoint)
        }
        (
            Workload::Image {
                image: got,
                command,
                entrypoint,
            },
            None,
        ) => {
            let want = image.unwrap();
            if !templated(want) {
                assert_eq!(Some(got.as_str()), want.s(), "{ctx}.image");
            }
            (command, entrypoint)
        }
        (w, _) => panic!("{ctx}: unexpected workload {w:?}"),
    };
    for (key, got) in [("command", command), ("entrypoint", entrypoint)] {
        match svc.get(key) {
            Some(v) if !argv(v).is_empty() && !templated(v) => {
                assert_eq!(got.as_ref(), Some(&argv(v)), "{ctx}.{key}");
            }
            Some(_) => {}
            None => assert_eq!(got, &None, "{ctx}.{key}"),
        }
    }

    // Start order.
    let got: BTreeMap<String, Condition> = s
        .depends_on
        .iter()
        .map(|d| (d.service.clone(), d.condition))
        .collect();
    assert_eq!(got, expected_deps(svc, names), "{ctx}.depends_on");

    // Health, restarts, scale.
    let e = expected(svc);
    match (&e.healthcheck, &s.healthcheck) {
        (None, got) => assert_eq!(got, &None, "{ctx}.healthcheck"),
        (Some(want), Some(p)) => {
            let exec = &want.exec;
            if !exec.iter().any(|w| w.contains('$')) {
                assert_eq!(
                    p.check,
                    Check::Exec {
                        command: exec.clone()
                    },
                    "{ctx}.healthcheck.test"
                );
            }
            for (want, got, what) in [
                (want.interval, p.interval, "interval"),
                (want.timeout, p.timeout, "timeout"),
                (want.start_period, p.start_period, "start_period"),
            ] {
                if let Some(want) = want {
                    assert_eq!(want, got, "{ctx}.healthcheck.{what}");
                }
            }
            assert_eq!(want.retries, p.retries, "{ctx}.healthcheck.retries");
            // Compose never restarts a container for failing its healthcheck.
            assert_eq!(p.on_failure, ProbeFailure::None, "{ctx}.healthcheck");
        }
        (Some(_), None) => panic!("{ctx}: healthcheck missing"),
    }
    if let Some((policy, max)) = e.restart {
        assert_eq!(s.restart.policy, policy, "{ctx}.restart");
        assert_eq!(s.restart.max_restarts, max, "{ctx}.restart max");
    }
    if let Some(replicas) = e.replicas {
        assert_eq!(s.replicas, replicas, "{ctx}.replicas");
    }

    // Environment spelled out in the file (env files add more).
    let env: Vec<(String, String)> = match svc.get("environment") {
        Some(V::M(entries)) => entries
            .iter()
            .filter_map(|(k, v)| v.s().map(|v| (k.clone(), v.to_owned())))
            .collect(),
        Some(V::L(items)) => items
            .iter()
            .filter_map(|i| {
                i.s()?
                    .split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect(),
        _ => Vec::new(),
    };
    for (k, v) in env.iter().filter(|(k, v)| !v.contains('$') && k != "PORT") {
        assert_eq!(s.env.get(k), Some(v), "{ctx}.environment.{k}");
    }
    // What the app listens on: PORT, else the one published container port. Orchestra
    // sets PORT to `port`, so PORT itself is never in `env`.
    assert_eq!(s.env.get("PORT"), None, "{ctx}.environment.PORT");
    let ports = svc.get("ports").map(V::list).unwrap_or_default();
    let plain_ports = ports
        .iter()
        .all(|p| !templated(p) && p.s().is_none_or(|s| !s.contains('-')));
    let want_port = match env.iter().find(|(k, _)| k == "PORT") {
        Some((_, v)) if v.contains('$') => None,
        Some((_, v)) => Some(v.parse::<u16>().ok()),
        None if plain_ports => {
            let mut tcp: Vec<u16> = expected_ports(svc)
                .into_iter()
                .filter(|(_, _, proto)| proto == "tcp")
                .map(|(_, c, _)| c)
                .collect();
            tcp.dedup();
            Some(match tcp.as_slice() {
                [one] => Some(*one),
                _ => None,
            })
        }
        None => None,
    };
    if let Some(want) = want_port {
        assert_eq!(s.port, want, "{ctx}.port");
    }

    // Published ports and mounts.
    for (host, container, proto) in expected_ports(svc) {
        assert!(
            s.ports.iter().any(|p| p.host_port == host
                && p.container_port == container
                && p.protocol == proto),
            "{ctx}.ports: {host:?}:{container}/{proto} missing from {:?}",
            s.ports
        );
    }
    let mut got: Vec<String> = s.volumes.iter().map(|v| v.target.clone()).collect();
    got.sort();
    let want: Vec<String> = expected_mounts(svc)
        .into_iter()
        .filter(|t| !t.starts_with("\\\\"))
        .collect();
    assert_eq!(got, want, "{ctx}.volumes");

    // Everything else Orchestra carries over.
    let profiles: Vec<String> = svc
        .get("profiles")
        .map(|p| {
            p.list()
                .iter()
                .filter_map(|i| i.s().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(s.profiles, profiles, "{ctx}.profiles");
    let secrets = svc.get("secrets").map_or(0, |l| l.list().len());
    assert_eq!(s.secrets.len(), secrets, "{ctx}.secrets");
    // Real-time signals are beyond Orchestra's signal list (the importer notes them).
    if let Some(sig) = svc
        .get("stop_signal")
        .and_then(V::s)
        .filter(|s| !s.starts_with("SIGRT"))
    {
        assert_eq!(s.stop_signal, sig, "{ctx}.stop_signal");
    }
    if let Some(g) = svc.get("stop_grace_period").and_then(V::s) {
        assert_eq!(
            s.stop_grace_period,
            parse_duration(g).unwrap(),
            "{ctx}.stop_grace_period"
        );
    }
    if let Some(u) = svc.get("user").and_then(V::s) {
        assert_eq!(s.user.as_deref(), Some(u), "{ctx}.user");
    }
    let limits = svc
        .get("deploy")
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("limits"));
    let memory = limits
        .and_then(|l| l.get("memory"))
        .or(svc.get("mem_limit"))
        .and_then(V::s);
    assert_eq!(s.resources.memory, memory.map(bytes), "{ctx}.memory");
    let cpus = limits
        .and_then(|l| l.get("cpus"))
        .or(svc.get("cpus"))
        .and_then(V::s);
    assert_eq!(
        s.resources.cpus,
        cpus.map(|c| c.parse().unwrap()),
        "{ctx}.cpus"
    );
    assert_eq!(s.resources.gpus, expected_gpus(svc), "{ctx}.gpus");
}

#[test]
fn imported_manifests_behave_as_the_compose_files_did() {
    for compose in fixtures() {
        let fixture = stem(&compose);
        let text = std::fs::read_to_string(&compose).unwrap();
        // This reader sees one file: a fixture with `extends` or `include` is checked by
        // its golden file and by the CLI's differential test against docker-compose.
        if text.contains("extends:") || text.contains("\ninclude:") {
            continue;
        }
        let doc = read_compose(&text);
        let import = import_str(&text, &compose).unwrap();
        let m = load_output(&compose, &import.yaml);
        let services = doc.get("services").unwrap().entries();
        let names: Vec<String> = services
            .iter()
            .filter(|(_, s)| imported(s))
            .map(|(n, _)| n.clone())
            .collect();
        let got: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(got, names, "{fixture}: services");
        let dir = compose.parent().unwrap();
        for (name, svc) in services.iter().filter(|(_, s)| imported(s)) {
            // Running the image another service builds is building it the same way.
            let builder = services.iter().find(|(_, b)| {
                b.get("build").is_some()
                    && svc.get("build").is_none()
                    && b.get("image") == svc.get("image")
            });
            let svc = match (builder, svc) {
                (Some((_, b)), V::M(entries)) => {
                    let mut entries: Vec<(String, V)> = entries
                        .iter()
                        .filter(|(k, _)| k != "image")
                        .cloned()
                        .collect();
                    entries.push(("build".into(), b.get("build").unwrap().clone()));
                    V::M(entries)
                }
                _ => svc.clone(),
            };
            check_service(&fixture, dir, &svc, &names, &m, name);
        }
        // Named volumes are declared exactly when some service mounts one.
        for v in m.services.iter().flat_map(|s| &s.volumes) {
            if let (orchestra_manifest::VolumeKind::Named, Some(n)) = (v.kind, &v.source) {
                assert!(m.volumes.contains(n), "{fixture}: volume {n} undeclared");
            }
        }
    }
}

// ------------------------------------------------------------------ errors and API

#[test]
fn syntax_errors_have_a_location() {
    let err = import_str(
        "services:\n  web:\n    image: [nginx\n    ports: []\n",
        Path::new("docker-compose.yml"),
    )
    .unwrap_err();
    let ImportError::Syntax(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((d.line, d.col), (4, 10), "{d}");
    assert!(
        err.to_string()
            .starts_with("docker-compose.yml:4:10: invalid YAML"),
        "{err}"
    );

    let err = import_str("services: {}\n---\nservices: {}\n", Path::new("c.yml")).unwrap_err();
    assert!(
        err.to_string()
            .contains("a Compose file must be a single YAML document"),
        "{err}"
    );
    let err = import_str("a: *nowhere\n", Path::new("c.yml")).unwrap_err();
    assert!(matches!(err, ImportError::Syntax(_)), "{err:?}");
}

#[test]
fn files_without_services_are_not_compose_files() {
    for (src, want) in [
        ("", "c.yml:1:1: the file is empty"),
        (
            "- a\n- b\n",
            "c.yml:1:1: not a Compose file: the top level is not a mapping",
        ),
        (
            "name: x\nvolumes: {}\n",
            "c.yml:1:1: not a Compose file: there is no `services` key",
        ),
        (
            "services: [web]\n",
            "c.yml:1:11: services: `services` is not a mapping",
        ),
        ("services: {}\n", "c.yml:1:1: services: no services defined"),
        (
            "services:\n  a:\n    environment: {}\n",
            "c.yml:1:1: services: no service could be imported",
        ),
    ] {
        let err = import_str(src, Path::new("c.yml")).unwrap_err();
        assert!(
            matches!(err, ImportError::NotCompose(_)),
            "{src:?}: {err:?}"
        );
        assert!(err.to_string().starts_with(want), "{src:?}: {err}");
    }
    let err = import_file(Path::new("/nonexistent/docker-compose.yml")).unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }), "{err:?}");
}

#[test]
fn notes_display_and_summary() {
    let import = import_str(
        "version: '3'\nservices:\n  web:\n    image: nginx\n    networks: [a]\n    privileged: true\n",
        Path::new("docker-compose.yml"),
    )
    .unwrap();
    assert_eq!(import.summary(), "1 mapped, 1 unsupported, 1 ignored");
    let lines: Vec<String> = import.notes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "1:1: version: ignored: `version` is obsolete in Compose and means nothing here",
            "5:5: services.web.networks: mapped: dropped: all services share one project network where service names resolve",
            "6:5: services.web.privileged: unsupported: privileged mode is not supported: the container runs unprivileged",
        ]
    );
    assert!(import.yaml.starts_with(
        "# Imported from docker-compose.yml by `orchestra import`.\n# 1 mapped, 1 unsupported, 1 ignored (positions are in docker-compose.yml):\n#   1:1: version: ignored:"
    ));
}

#[test]
fn notes_for_content_merged_into_many_services_are_reported_once() {
    let import = import_str(
        "x-c: &c\n  networks: [n]\nservices:\n  a:\n    <<: *c\n    image: x\n  b:\n    <<: *c\n    image: y\n",
        Path::new("c.yml"),
    )
    .unwrap();
    let mapped: Vec<String> = import
        .notes
        .iter()
        .filter(|n| n.kind == orchestra_manifest::compose::NoteKind::Mapped)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        mapped,
        [
            "2:3: services.a.networks: mapped: dropped: all services share one project network where service names resolve; the same for `b`"
        ]
    );
}

#[test]
fn a_typo_of_a_compose_key_gets_a_did_you_mean() {
    let text =
        "services:\n  api:\n    image: redis:7.2\n    enviroment:\n      A: b\nvolumez: {}\n";
    let import = import_str(text, Path::new("compose.yaml")).unwrap();
    let notes = notes_text(&import);
    assert!(
        notes.contains(
            "unknown Compose key `enviroment`; not carried over (did you mean `environment`?)"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("unknown Compose key `volumez` (did you mean `volumes`?)"),
        "{notes}"
    );
    // A key far from every known one gets no guess.
    let import = import_str(
        "services:\n  api:\n    image: x\n    zzzqqq: 1\n",
        Path::new("c.yaml"),
    )
    .unwrap();
    assert!(!notes_text(&import).contains("did you mean"));
}

// ------------------------------------------------------------------ notes that are true

/// The notes of importing `text` (a Compose file named `c.yml`), one per line.
fn notes_of(text: &str) -> String {
    let import = import_str(text, Path::new("c.yml")).unwrap_or_else(|e| panic!("{e}"));
    notes_text(&import)
}

#[test]
fn init_true_is_what_orchestra_does_anyway() {
    let notes = notes_of("services:\n  a:\n    image: x\n    init: true\n");
    assert!(!notes.contains("init"), "{notes}");
    assert!(
        notes.starts_with("0 mapped, 0 unsupported, 0 ignored"),
        "{notes}"
    );
    let notes = notes_of("services:\n  a:\n    image: x\n    init: false\n");
    assert!(
        notes.contains(
            "4:5: services.a.init: mapped: Orchestra always runs an init process as PID 1"
        ),
        "{notes}"
    );
}

#[test]
fn shell_syntax_is_noted_only_where_no_shell_reads_it() {
    let note = "shell syntax such as";
    for command in [
        r#"sh -c "a && b""#,
        "bash -c 'echo $(date) | tee /tmp/x'",
        r#"/bin/sh -ec "until nc -z db 5432; do sleep 1; done""#,
        r#"sh -c "echo \"$(hostname)\" > /tmp/h""#,
        r#"echo "a|b" 'c > d'"#,
    ] {
        let text = format!("services:\n  a:\n    image: x\n    command: {command:?}\n");
        let notes = notes_of(&text);
        assert!(!notes.contains(note), "{command}: {notes}");
    }
    for command in [
        "echo starting && exec sleep infinity",
        r#"sh -c "echo a" && echo b"#,
        "cat /etc/hosts | grep db",
        "run > /tmp/log",
        r#"echo "$(date)""#,
        "echo `date`",
    ] {
        let text = format!("services:\n  a:\n    image: x\n    entrypoint: {command:?}\n");
        let notes = notes_of(&text);
        assert!(notes.contains(note), "{command}: {notes}");
    }
}

#[test]
fn the_local_driver_is_the_default_and_not_a_problem() {
    let notes = notes_of(
        "services:\n  a:\n    image: x\nvolumes:\n  data:\n    driver: local\n  nfs:\n    driver: nfs-plugin\nnetworks:\n  back:\n    driver: local\n",
    );
    assert!(!notes.contains("`local`"), "{notes}");
    assert!(!notes.contains("volumes.data"), "{notes}");
    assert!(
        notes.contains(
            "8:5: volumes.nfs.driver: unsupported: volume driver `nfs-plugin` is not supported"
        ),
        "{notes}"
    );
    assert!(!notes.contains("networks.back"), "{notes}");
    assert!(notes.contains("1 mapped, 1 unsupported"), "{notes}");
}

#[test]
fn an_external_volume_is_replaced_by_a_new_empty_one() {
    let notes = notes_of(
        "services:\n  a:\n    image: x\nvolumes:\n  models:\n    external: true\n    name: shared-models\n  cache:\n    external: true\n  tmp:\n    external: false\n",
    );
    assert!(
        notes.contains("6:5: volumes.models.external: mapped: Compose used the existing volume `shared-models`; Orchestra creates a new, empty volume of its own for this project instead, so the data in `shared-models` is not there"),
        "{notes}"
    );
    assert!(
        notes.contains(
            "9:5: volumes.cache.external: mapped: Compose used the existing volume `cache`;"
        ),
        "{notes}"
    );
    assert!(!notes.contains("volumes.tmp"), "{notes}");
}

#[test]
fn lifecycle_hooks_and_models_are_known_keys_and_not_supported() {
    let notes = notes_of(
        "services:\n  a:\n    image: x\n    pre_start:\n      - command: ./migrate\n    post_start:\n      - command: ./register\n    pre_stop:\n      - command: ./flush\n    models: [llm]\nmodels:\n  llm:\n    model: ai/smollm2\n",
    );
    assert!(!notes.contains("unknown"), "{notes}");
    for (at, key) in [
        (
            "4:5: services.a.pre_start",
            "lifecycle hooks are not supported",
        ),
        (
            "6:5: services.a.post_start",
            "lifecycle hooks are not supported",
        ),
        (
            "8:5: services.a.pre_stop",
            "lifecycle hooks are not supported",
        ),
        ("10:5: services.a.models", "models are not supported"),
        ("11:1: models", "models are not supported"),
    ] {
        assert!(
            notes.contains(&format!("{at}: unsupported: {key}")),
            "{at}: {notes}"
        );
    }
    // A typo of a hook still gets a guess.
    let notes = notes_of("services:\n  a:\n    image: x\n    pre_strat: []\n");
    assert!(notes.contains("did you mean `pre_start`?"), "{notes}");
}

#[test]
fn a_pids_limit_of_minus_one_is_no_limit() {
    for text in [
        "services:\n  a:\n    image: x\n    pids_limit: -1\n",
        "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n          pids: -1\n",
    ] {
        let import = import_str(text, Path::new("c.yml")).unwrap();
        assert!(import.notes.is_empty(), "{}", notes_text(&import));
        let m = load_output(Path::new("c.yml"), &import.yaml);
        assert_eq!(m.services[0].resources.pids, None, "{}", import.yaml);
    }
    let notes = notes_of("services:\n  a:\n    image: x\n    pids_limit: -2\n");
    assert!(
        notes.contains("`-2` is not a whole number of at least 1"),
        "{notes}"
    );
}

#[test]
fn values_of_the_wrong_shape_are_errors_with_a_position() {
    for (body, want) in [
        (
            "    deploy: oops\n",
            "c.yml:4:13: services.a.deploy: invalid `deploy`: found \"oops\", expected a mapping",
        ),
        (
            "    secrets: db_password\n",
            "c.yml:4:14: services.a.secrets: invalid `secrets`: found \"db_password\", expected a list",
        ),
        (
            "    secrets: [[x]]\n",
            "c.yml:4:15: services.a.secrets[0]: invalid `secrets[0]`: found a sequence, expected a secret name",
        ),
        (
            "    deploy:\n      resources:\n        limits: \"1\"\n",
            "c.yml:6:17: services.a.deploy.resources.limits: invalid `limits`: found \"1\", expected a mapping",
        ),
        (
            "    deploy:\n      resources: [1]\n",
            "c.yml:5:18: services.a.deploy.resources: invalid `resources`: found a sequence, expected a mapping",
        ),
        (
            "    deploy:\n      restart_policy: always\n",
            "c.yml:5:23: services.a.deploy.restart_policy: invalid `restart_policy`: found \"always\", expected a mapping",
        ),
        (
            "    healthcheck: true\n",
            "c.yml:4:18: services.a.healthcheck: invalid `healthcheck`: found \"true\", expected a mapping",
        ),
    ] {
        let text = format!("services:\n  a:\n    image: x\n{body}");
        let err = import_str(&text, Path::new("c.yml")).unwrap_err();
        assert!(matches!(err, ImportError::Invalid(_)), "{body}: {err:?}");
        assert!(err.to_string().starts_with(want), "{body}: {err}");
        // Loading the Compose file directly fails the same way.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compose.yaml");
        std::fs::write(&path, &text).unwrap();
        match orchestra_manifest::load(&path, &load_vars()) {
            Err(LoadError::Invalid(d)) => assert_eq!(d.len(), 1, "{body}: {d:?}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // Every one is reported, in file order; top-level shapes too.
    let err = import_str(
        "services:\n  a:\n    image: x\n    healthcheck: true\n    deploy: oops\nvolumes:\n  data: big\nsecrets: [s]\n",
        Path::new("c.yml"),
    )
    .unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(ToOwned::to_owned).collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[2].starts_with("c.yml:7:9: volumes.data: invalid `data`"),
        "{err}"
    );
    assert!(
        lines[3].starts_with("c.yml:8:10: secrets: invalid `secrets`"),
        "{err}"
    );
    // Unset (null) values are fine.
    notes_of("services:\n  a:\n    image: x\n    deploy:\n    healthcheck:\n    secrets:\n");
}

#[test]
fn deploy_restart_policy_wins_over_restart_in_any_order() {
    let policy = "    deploy:\n      restart_policy:\n        condition: on-failure\n        max_attempts: 4\n        delay: 3s\n";
    for text in [
        format!("services:\n  a:\n    image: x\n    restart: always\n{policy}"),
        format!("services:\n  a:\n    image: x\n{policy}    restart: always\n"),
        // Through merge keys, either way round.
        format!("x-r: &r\n  restart: always\nservices:\n  a:\n    <<: *r\n    image: x\n{policy}"),
        "x-d: &d\n  deploy:\n    restart_policy:\n      condition: on-failure\n      max_attempts: 4\n      delay: 3s\nservices:\n  a:\n    image: x\n    <<: *d\n    restart: always\n".to_owned(),
    ] {
        let import = import_str(&text, Path::new("c.yml")).unwrap();
        let notes = notes_text(&import);
        let m = load_output(Path::new("c.yml"), &import.yaml);
        let r = &m.services[0].restart;
        assert_eq!(r.policy, Restart::OnFailure, "{text}\n{}", import.yaml);
        assert_eq!(r.max_restarts, Some(4), "{text}");
        assert_eq!(r.backoff_initial, Duration::from_secs(3), "{text}");
        assert_eq!(r.backoff_max, Duration::from_secs(3), "{text}");
        assert!(
            notes.contains("services.a.restart: mapped: `deploy.restart_policy` is set too and takes precedence, as in Compose; this value is not used"),
            "{text}\n{notes}"
        );
        assert!(
            notes.contains("services.a.deploy.restart_policy.delay: mapped: kept as a fixed delay"),
            "{text}\n{notes}"
        );
    }
}

#[test]
fn a_zero_restart_delay_says_what_is_used_instead() {
    let notes = notes_of(
        "services:\n  a:\n    image: x\n    deploy:\n      restart_policy:\n        delay: 0s\n",
    );
    assert!(
        notes.contains("6:9: services.a.deploy.restart_policy.delay: mapped: a zero delay is not kept: Orchestra waits its default backoff"),
        "{notes}"
    );
}

#[test]
fn an_unknown_yaml_tag_is_an_error_at_its_position() {
    let err = import_str(
        "services:\n  web:\n    image: nginx\n    command: !shell echo hi\n",
        Path::new("compose.yaml"),
    )
    .unwrap_err();
    let ImportError::Syntax(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (d.line, d.col, d.path.as_str()),
        (4, 14, "services.web.command"),
        "{d}"
    );
    assert!(
        err.to_string().contains("unknown YAML tag `!shell`"),
        "{err}"
    );
    // `!reset` unsets a key; in a list it has nothing to unset.
    let err = import_str(
        "services:\n  web:\n    image: nginx\n    ports: [!reset \"80\"]\n",
        Path::new("compose.yaml"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("compose.yaml:4:13: services.web.ports[0]: `!reset` unsets a key"),
        "{err}"
    );
    let err = import_str(
        "services:\n  web:\n    image: !!binary aGk=\n",
        Path::new("compose.yaml"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unsupported YAML tag `!!binary`"),
        "{err}"
    );
}
