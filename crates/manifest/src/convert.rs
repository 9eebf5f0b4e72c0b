//! Pass 4 (convert): the node tree to typed model values, collecting every problem.
//!
//! Each field is converted on its own: a bad field yields a diagnostic and a default,
//! so one mistake never hides the next. The load fails if any diagnostic was pushed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Diagnostic;
use crate::model::{
    Build, Check, Condition, Dependency, HealthPolicy, Location, Manifest, Probe, Resources,
    Restart, RestartPolicy, Service, Workload,
};
use crate::node::{Entry, Kind, Node, join};
use crate::overlay::quoted_list;
use crate::suggest::did_you_mean;
use crate::units::{
    DURATION_EXPECTED, MEMORY_EXPECTED, normalize_signal, parse_duration, parse_memory, shell_split,
};

mod deploy;

const TOP_FIELDS: &[&str] = &["name", "services", "profiles", "health", "admin", "proxy"];
const SERVICE_FIELDS: &[&str] = &[
    "command",
    "image",
    "build",
    "entrypoint",
    "port",
    "env",
    "env_file",
    "working_dir",
    "depends_on",
    "healthcheck",
    "readiness",
    "restart",
    "replicas",
    "stop_signal",
    "stop_grace_period",
    "resources",
    "profiles",
    "route",
    "deploy",
];
/// Recognized Compose-ish keys this version cannot honour yet.
const SERVICE_UNSUPPORTED: &[&str] = &["secrets"];
const BUILD_FIELDS: &[&str] = &["context", "dockerfile", "args", "target"];
const PROBE_FIELDS: &[&str] = &[
    "http",
    "tcp",
    "exec",
    "port",
    "interval",
    "timeout",
    "retries",
    "start_period",
];
const RESTART_FIELDS: &[&str] = &["policy", "backoff", "max_restarts"];
const BACKOFF_FIELDS: &[&str] = &["initial", "max"];
const RESOURCE_FIELDS: &[&str] = &["cpus", "memory", "gpus", "pids"];
const DEPENDENCY_FIELDS: &[&str] = &["condition"];
const PORT_EXPECTED: &str = "a port number between 1 and 65535";

/// Where things are, for the semantic pass (the model keeps only some locations).
#[derive(Debug, Default)]
pub(crate) struct Meta {
    /// Every declared service name and its key location, including ones that failed.
    pub declared: Vec<(String, Location)>,
    /// Per converted service, parallel to `Manifest::services`.
    pub services: Vec<ServiceMeta>,
    /// Service names listed under top-level `profiles:`.
    pub profile_refs: Vec<NameRef>,
}

/// Locations inside one service.
#[derive(Debug, Default)]
pub(crate) struct ServiceMeta {
    /// `port:` value location and path.
    pub port: Option<(Location, String)>,
    /// Field path of each `depends_on` entry, parallel to `Service::depends_on`.
    pub dep_paths: Vec<String>,
    /// Each `env_file` entry: location and path.
    pub env_files: Vec<(Location, String)>,
}

/// A reference to a service by name, found in the manifest.
#[derive(Debug)]
pub(crate) struct NameRef {
    /// The name referred to.
    pub name: String,
    /// The owning profile.
    pub profile: String,
    /// Where.
    pub loc: Location,
    /// Field path.
    pub path: String,
}

/// Conversion state: where relative paths resolve, how null env values are looked up,
/// and the diagnostics so far.
pub(crate) struct Ctx<'a> {
    pub file: &'a Path,
    pub dir: &'a Path,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub diags: Vec<Diagnostic>,
}

/// A mapping whose keys have been checked against the known fields.
struct Fields<'n> {
    entries: &'n [Entry],
    path: String,
}

impl<'n> Fields<'n> {
    /// The entry for `key`, null values included.
    fn entry(&self, key: &str) -> Option<&'n Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value of `key`; an explicit null counts as absent, so an overlay can unset a field.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entry(key)
            .map(|e| &e.value)
            .filter(|v| v.kind != Kind::Null)
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

impl Ctx<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn diag(&self, loc: Location, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.file, loc, path, message)
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        let d = self
            .diag(node.loc, path, "wrong type")
            .found(node.describe())
            .expected(expected);
        self.push(d);
    }

    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
        unsupported: &[&str],
    ) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            self.type_error(node, path, "a mapping");
            return None;
        };
        for e in entries {
            let p = join(path, &e.key);
            if known.contains(&e.key.as_str()) || e.key.starts_with("x-") {
                continue;
            }
            let d = if unsupported.contains(&e.key.as_str()) {
                self.diag(
                    e.key_loc,
                    &p,
                    format!("`{}` is not supported yet by this version", e.key),
                )
            } else {
                let d = self.diag(e.key_loc, &p, format!("unknown field `{}`", e.key));
                // The full list only when there is no likely typo to point at.
                match did_you_mean(&e.key, known.iter().copied()) {
                    Some(hint) => d.hint(hint),
                    None => d.expected(format!("one of {}", quoted_list(known))),
                }
            };
            self.push(d);
        }
        Some(Fields {
            entries,
            path: path.to_owned(),
        })
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s) => Some(s.clone()),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    fn nonempty_string(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            let d = self
                .diag(node.loc, path, "must not be empty")
                .found("an empty string");
            self.push(d);
            return None;
        }
        Some(s)
    }

    fn uint(&mut self, node: &Node, path: &str, min: u64, max: u64, expected: &str) -> Option<u64> {
        let Kind::Scalar(s) = &node.kind else {
            self.type_error(node, path, expected);
            return None;
        };
        let t = s.trim();
        let message = match t.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => return Some(v),
            Ok(_) => "out of range",
            Err(_) if t.parse::<i128>().is_ok() => "out of range",
            Err(_) => "not a whole number",
        };
        let d = self
            .diag(node.loc, path, message)
            .found(node.describe())
            .expected(expected);
        self.push(d);
        None
    }

    fn u32_field(&mut self, node: &Node, path: &str, min: u32, expected: &str) -> Option<u32> {
        let v = self.uint(node, path, u64::from(min), u64::from(u32::MAX), expected)?;
        u32::try_from(v).ok()
    }

    fn port(&mut self, node: &Node, path: &str) -> Option<u16> {
        let v = self.uint(node, path, 1, 65535, PORT_EXPECTED)?;
        u16::try_from(v).ok()
    }

    fn duration(&mut self, node: &Node, path: &str, positive: bool) -> Option<Duration> {
        let s = self.string(node, path)?;
        match parse_duration(&s) {
            Ok(d) if positive && d.is_zero() => {
                let d = self
                    .diag(node.loc, path, "duration must be greater than zero")
                    .found(node.describe())
                    .expected(DURATION_EXPECTED);
                self.push(d);
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                let t = s.trim();
                let hint = (!t.is_empty() && t.parse::<f64>().is_ok())
                    .then(|| format!("add a unit, e.g. `{t}s`"));
                let d = self
                    .diag(node.loc, path, "invalid duration")
                    .found(node.describe())
                    .expected(DURATION_EXPECTED)
                    .hint(hint);
                self.push(d);
                None
            }
        }
    }

    /// A list of strings.
    fn string_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Kind::Seq(items) = &node.kind else {
            self.type_error(node, path, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(item, &format!("{path}[{i}]")) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// argv: a list of strings or a string split shell-like; never empty.
    fn argv(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let argv = match &node.kind {
            Kind::Scalar(s) => match shell_split(s) {
                Ok(v) => v,
                Err(e) => {
                    let d = self
                        .diag(node.loc, path, format!("cannot split command: {e}"))
                        .found(node.describe());
                    self.push(d);
                    return None;
                }
            },
            Kind::Seq(_) => self.string_list(node, path)?,
            _ => {
                self.type_error(node, path, "a list of strings or a command string");
                return None;
            }
        };
        if argv.is_empty() {
            let d = self
                .diag(node.loc, path, "command must not be empty")
                .found(node.describe())
                .expected("at least the program to run");
            self.push(d);
            return None;
        }
        Some(argv)
    }

    /// `{K: V}` or `[K=V]`; a null value / bare `K` takes the variable's value, if set.
    fn env_map(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match &node.kind {
            Kind::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    if !self.env_key(&e.key, e.key_loc, &p) {
                        continue;
                    }
                    match &e.value.kind {
                        Kind::Scalar(s) => {
                            out.insert(e.key.clone(), s.clone());
                        }
                        Kind::Null => {
                            if let Some(v) = (self.lookup)(&e.key) {
                                out.insert(e.key.clone(), v);
                            }
                        }
                        _ => self.type_error(&e.value, &p, "a string, number or boolean"),
                    }
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    let Some(s) = self.string(item, &p) else {
                        continue;
                    };
                    let (key, value) = match s.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (s.clone(), None),
                    };
                    if !self.env_key(&key, item.loc, &p) {
                        continue;
                    }
                    if let Some(v) = value.or_else(|| (self.lookup)(&key)) {
                        out.insert(key, v);
                    }
                }
            }
            _ => self.type_error(node, path, "a mapping or a list of KEY=VALUE strings"),
        }
        out
    }

    fn env_key(&mut self, key: &str, loc: Location, path: &str) -> bool {
        if key.is_empty() || key.contains('=') || key.chars().any(char::is_whitespace) {
            let d = self
                .diag(loc, path, "invalid variable name")
                .found(format!("{key:?}"))
                .expected("a name without `=` or whitespace");
            self.push(d);
            return false;
        }
        true
    }

    /// A path from the manifest, resolved against its directory.
    fn resolve(&self, p: &str) -> PathBuf {
        self.dir.join(p).components().collect()
    }
}

/// Converts the (interpolated, overlaid) tree. Always returns a manifest; it is only
/// meaningful when no diagnostics were pushed.
pub(crate) fn convert(
    root: Option<&Node>,
    ctx: &mut Ctx<'_>,
    default_name: String,
) -> (Manifest, Meta) {
    let mut manifest = Manifest {
        name: default_name,
        file: ctx.file.to_path_buf(),
        dir: ctx.dir.to_path_buf(),
        services: Vec::new(),
        profiles: BTreeMap::new(),
        health: HealthPolicy::default(),
        admin_listen: None,
        proxy_listen: None,
        environment: None,
    };
    let mut meta = Meta::default();
    let start = Location { line: 1, col: 1 };
    let Some(root) = root else {
        let d = ctx
            .diag(start, "services", "the manifest is empty")
            .expected("a mapping with at least `services:`");
        ctx.push(d);
        return (manifest, meta);
    };
    let Some(f) = ctx.fields(root, "", TOP_FIELDS, &[]) else {
        return (manifest, meta);
    };

    if let Some(n) = f.get("name")
        && let Some(name) = ctx.nonempty_string(n, "name")
    {
        manifest.name = name;
    }

    match f.entry("services") {
        None => {
            let d = ctx
                .diag(root.loc, "services", "missing required field `services`")
                .expected("a mapping of service name to service");
            ctx.push(d);
        }
        Some(e) => match &e.value.kind {
            Kind::Map(entries) if !entries.is_empty() => {
                for s in entries {
                    meta.declared.push((s.key.clone(), s.key_loc));
                    if let Some((service, smeta)) = service(ctx, s) {
                        manifest.services.push(service);
                        meta.services.push(smeta);
                    }
                }
            }
            Kind::Map(_) | Kind::Null => {
                let d = ctx
                    .diag(e.key_loc, "services", "no services defined")
                    .expected("at least one service");
                ctx.push(d);
            }
            _ => ctx.type_error(&e.value, "services", "a mapping of service name to service"),
        },
    }

    if let Some(n) = f.get("profiles") {
        profiles(ctx, n, &mut manifest, &mut meta);
    }
    if let Some(n) = f.get("health")
        && let Some(hf) = ctx.fields(n, "health", &["threshold"], &[])
        && let Some(t) = hf.get("threshold")
        && let Some(threshold) = threshold(ctx, t)
    {
        manifest.health.threshold = threshold;
    }
    if let Some(n) = f.get("admin")
        && let Some(af) = ctx.fields(n, "admin", &["listen"], &[])
        && let Some(l) = af.get("listen")
        && let Some(listen) = ctx.string(l, "admin.listen")
    {
        if listen.trim().parse::<SocketAddr>().is_ok() {
            manifest.admin_listen = Some(listen.trim().to_owned());
        } else {
            let d = ctx
                .diag(l.loc, "admin.listen", "invalid listen address")
                .found(l.describe())
                .expected("an IP address and port such as 127.0.0.1:7070");
            ctx.push(d);
        }
    }
    if let Some(n) = f.get("proxy") {
        manifest.proxy_listen = deploy::proxy(ctx, n);
    }
    (manifest, meta)
}

fn profiles(ctx: &mut Ctx<'_>, node: &Node, manifest: &mut Manifest, meta: &mut Meta) {
    let Kind::Map(entries) = &node.kind else {
        ctx.type_error(
            node,
            "profiles",
            "a mapping of profile name to a list of services",
        );
        return;
    };
    for e in entries {
        let p = join("profiles", &e.key);
        let Kind::Seq(items) = &e.value.kind else {
            ctx.type_error(&e.value, &p, "a list of service names");
            continue;
        };
        let mut names = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{p}[{i}]");
            if let Some(name) = ctx.string(item, &ip) {
                meta.profile_refs.push(NameRef {
                    name: name.clone(),
                    profile: e.key.clone(),
                    loc: item.loc,
                    path: ip,
                });
                names.push(name);
            }
        }
        manifest.profiles.insert(e.key.clone(), names);
    }
}

/// `"80%"` or a fraction `0.8`.
fn threshold(ctx: &mut Ctx<'_>, node: &Node) -> Option<f64> {
    const EXPECTED: &str = "a percentage such as \"80%\" or a fraction between 0 and 1";
    let path = "health.threshold";
    let Kind::Scalar(s) = &node.kind else {
        ctx.type_error(node, path, EXPECTED);
        return None;
    };
    let t = s.trim();
    let (value, percent) = match t.strip_suffix('%') {
        Some(p) => (p.trim().parse::<f64>().ok(), true),
        None => (t.parse::<f64>().ok(), false),
    };
    let Some(v) = value.filter(|v| v.is_finite()) else {
        let d = ctx
            .diag(node.loc, path, "invalid threshold")
            .found(node.describe())
            .expected(EXPECTED);
        ctx.push(d);
        return None;
    };
    let fraction = if percent { v / 100.0 } else { v };
    if (0.0..=1.0).contains(&fraction) {
        return Some(fraction);
    }
    let hint = (!percent && v > 1.0 && v <= 100.0).then(|| format!("did you mean \"{t}%\"?"));
    let d = ctx
        .diag(node.loc, path, "threshold out of range")
        .found(node.describe())
        .expected(EXPECTED)
        .hint(hint);
    ctx.push(d);
    None
}

fn valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn service(ctx: &mut Ctx<'_>, entry: &Entry) -> Option<(Service, ServiceMeta)> {
    let name = entry.key.clone();
    let path = join("services", &name);
    if !valid_service_name(&name) {
        let d = ctx
            .diag(entry.key_loc, &path, "invalid service name")
            .found(format!("{name:?}"))
            .expected("letters, digits, `-`, `_` and `.`, starting with a letter or digit");
        ctx.push(d);
    }
    let f = ctx.fields(&entry.value, &path, SERVICE_FIELDS, SERVICE_UNSUPPORTED)?;
    let mut meta = ServiceMeta::default();

    let workload = workload(ctx, &f, entry);

    let port = f.get("port").and_then(|n| {
        let p = f.path("port");
        let port = ctx.port(n, &p)?;
        meta.port = Some((n.loc, p));
        Some(port)
    });

    let mut env_files = Vec::new();
    if let Some(n) = f.get("env_file") {
        let p = f.path("env_file");
        let list: Vec<(&Node, String)> = match &n.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (item, format!("{p}[{i}]")))
                .collect(),
            _ => vec![(n, p)],
        };
        for (item, ip) in list {
            if let Some(s) = ctx.nonempty_string(item, &ip) {
                env_files.push(ctx.resolve(&s));
                meta.env_files.push((item.loc, ip));
            }
        }
    }

    let env = f
        .get("env")
        .map(|n| ctx.env_map(n, &f.path("env")))
        .unwrap_or_default();
    let working_dir = f
        .get("working_dir")
        .and_then(|n| ctx.nonempty_string(n, &f.path("working_dir")))
        .map(|s| ctx.resolve(&s));
    let depends_on = f
        .get("depends_on")
        .map(|n| depends_on(ctx, n, &f.path("depends_on"), &mut meta))
        .unwrap_or_default();
    let healthcheck = f
        .get("healthcheck")
        .and_then(|n| probe(ctx, n, &f.path("healthcheck")));
    let readiness = f
        .get("readiness")
        .and_then(|n| probe(ctx, n, &f.path("readiness")));
    let restart = f
        .get("restart")
        .and_then(|n| restart(ctx, n, &f.path("restart")))
        .unwrap_or_else(default_restart);
    let replicas = f
        .get("replicas")
        .and_then(|n| ctx.u32_field(n, &f.path("replicas"), 1, "a whole number of at least 1"))
        .unwrap_or(1);
    let stop_signal = f
        .get("stop_signal")
        .and_then(|n| stop_signal(ctx, n, &f.path("stop_signal")))
        .unwrap_or_else(|| "SIGTERM".to_owned());
    let stop_grace_period = f
        .get("stop_grace_period")
        .and_then(|n| ctx.duration(n, &f.path("stop_grace_period"), false))
        .unwrap_or(Duration::from_secs(10));
    let resources = f
        .get("resources")
        .map(|n| resources(ctx, n, &f.path("resources")))
        .unwrap_or_default();
    let profiles = f
        .get("profiles")
        .and_then(|n| ctx.string_list(n, &f.path("profiles")))
        .unwrap_or_default();

    let route = f
        .get("route")
        .and_then(|n| deploy::route(ctx, n, &f.path("route")));
    let routed = f.get("route").is_some();
    let deploy = f
        .get("deploy")
        .and_then(|n| deploy::deploy(ctx, n, &f.path("deploy"), routed))
        .unwrap_or_else(|| orchestra_deploy_default(routed));

    let service = Service {
        name,
        location: entry.key_loc,
        workload: workload?,
        port,
        env,
        env_files,
        working_dir,
        depends_on,
        healthcheck,
        readiness,
        restart,
        replicas,
        stop_signal,
        stop_grace_period,
        resources,
        profiles,
        route,
        deploy,
    };
    Some((service, meta))
}

fn orchestra_deploy_default(routed: bool) -> crate::model::DeploySpec {
    crate::model::DeploySpec::default_for(routed)
}

/// `command` / `image` / `build` (+ `entrypoint`): exactly one of them defines the workload.
fn workload(ctx: &mut Ctx<'_>, f: &Fields<'_>, entry: &Entry) -> Option<Workload> {
    // Presence decides the kind, so a present-but-invalid field does not also produce
    // a "missing workload" error.
    let command = f.get("command").map(|n| ctx.argv(n, &f.path("command")));
    let entrypoint = f
        .get("entrypoint")
        .map(|n| ctx.argv(n, &f.path("entrypoint")));
    let image = f
        .get("image")
        .map(|n| ctx.nonempty_string(n, &f.path("image")));
    let build = f.get("build").map(|n| build(ctx, n, &f.path("build")));

    match (image, build) {
        (Some(_), Some(_)) => {
            let loc = f.entry("build").map_or(entry.key_loc, |e| e.key_loc);
            let d = ctx
                .diag(
                    loc,
                    &f.path("build"),
                    "`image` and `build` cannot both be set",
                )
                .hint("use `image` to run an existing image, or `build` to build one".to_owned());
            ctx.push(d);
            None
        }
        (Some(image), None) => Some(Workload::Image {
            image: image?,
            command: present(command)?,
            entrypoint: present(entrypoint)?,
        }),
        (None, Some(build)) => Some(Workload::Build {
            build: build?,
            command: present(command)?,
            entrypoint: present(entrypoint)?,
        }),
        (None, None) => {
            if entrypoint.is_some() {
                let loc = f.entry("entrypoint").map_or(entry.key_loc, |e| e.key_loc);
                let d = ctx
                    .diag(
                        loc,
                        &f.path("entrypoint"),
                        "`entrypoint` needs `image` or `build`",
                    )
                    .hint("for a local process, put the whole argv in `command`".to_owned());
                ctx.push(d);
            }
            match command {
                Some(command) => Some(Workload::Process { command: command? }),
                None => {
                    let d = ctx
                        .diag(entry.key_loc, &f.path.clone(), "missing workload")
                        .expected("one of `command`, `image` or `build`");
                    ctx.push(d);
                    None
                }
            }
        }
    }
}

/// An optional field that was converted: absent is fine (`Some(None)`), present but
/// invalid fails the whole (`None`).
fn present<T>(field: Option<Option<T>>) -> Option<Option<T>> {
    field.map_or(Some(None), |v| v.map(Some))
}

fn build(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Build> {
    if let Kind::Scalar(_) = node.kind {
        let context = ctx.nonempty_string(node, path)?;
        return Some(Build {
            context: ctx.resolve(&context),
            dockerfile: None,
            args: BTreeMap::new(),
            target: None,
        });
    }
    let Kind::Map(_) = node.kind else {
        ctx.type_error(node, path, "a build context path or a mapping");
        return None;
    };
    let f = ctx.fields(node, path, BUILD_FIELDS, &[])?;
    let context = match f.get("context") {
        Some(n) => {
            let context = ctx.nonempty_string(n, &f.path("context"))?;
            ctx.resolve(&context)
        }
        None => ctx.dir.to_path_buf(),
    };
    let dockerfile = f
        .get("dockerfile")
        .and_then(|n| ctx.nonempty_string(n, &f.path("dockerfile")))
        .map(PathBuf::from);
    let args = f
        .get("args")
        .map(|n| ctx.env_map(n, &f.path("args")))
        .unwrap_or_default();
    let target = f
        .get("target")
        .and_then(|n| ctx.nonempty_string(n, &f.path("target")));
    Some(Build {
        context,
        dockerfile,
        args,
        target,
    })
}

fn condition(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Condition> {
    let s = ctx.string(node, path)?;
    // Compose's long names are accepted so that Compose files port over unchanged.
    match s.trim() {
        "started" | "service_started" => Some(Condition::Started),
        "healthy" | "service_healthy" => Some(Condition::Healthy),
        "completed" | "service_completed_successfully" => Some(Condition::Completed),
        other => {
            let d = ctx
                .diag(node.loc, path, "unknown condition")
                .found(node.describe())
                .expected("one of `started`, `healthy`, `completed`")
                .hint(did_you_mean(other, ["started", "healthy", "completed"]));
            ctx.push(d);
            None
        }
    }
}

fn depends_on(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    meta: &mut ServiceMeta,
) -> Vec<Dependency> {
    let mut deps: Vec<Dependency> = Vec::new();
    let mut add = |ctx: &mut Ctx<'_>, dep: Dependency, p: String| {
        if deps.iter().any(|d| d.service == dep.service) {
            let d = ctx
                .diag(
                    dep.location,
                    &p,
                    format!("`{}` is listed twice", dep.service),
                )
                .hint("list each dependency once".to_owned());
            ctx.push(d);
            return;
        }
        deps.push(dep);
        meta.dep_paths.push(p);
    };
    match &node.kind {
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(name) = ctx.nonempty_string(item, &p) {
                    let dep = Dependency {
                        service: name,
                        condition: Condition::Started,
                        location: item.loc,
                    };
                    add(ctx, dep, p);
                }
            }
        }
        Kind::Map(entries) => {
            for e in entries {
                let p = join(path, &e.key);
                let condition = match &e.value.kind {
                    Kind::Null => Some(Condition::Started),
                    Kind::Scalar(_) => condition(ctx, &e.value, &p),
                    Kind::Map(_) => {
                        ctx.fields(&e.value, &p, DEPENDENCY_FIELDS, &[])
                            .and_then(|f| match f.get("condition") {
                                Some(c) => condition(ctx, c, &f.path("condition")),
                                None => Some(Condition::Started),
                            })
                    }
                    Kind::Seq(_) => {
                        ctx.type_error(&e.value, &p, "a condition or a mapping with `condition`");
                        None
                    }
                };
                if let Some(condition) = condition {
                    let dep = Dependency {
                        service: e.key.clone(),
                        condition,
                        location: e.key_loc,
                    };
                    add(ctx, dep, p);
                }
            }
        }
        _ => ctx.type_error(node, path, "a list of service names or a mapping"),
    }
    deps
}

fn probe(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Probe> {
    let f = ctx.fields(node, path, PROBE_FIELDS, &[])?;
    let kinds: Vec<&Entry> = ["http", "tcp", "exec"]
        .iter()
        .filter_map(|k| f.entry(k).filter(|e| e.value.kind != Kind::Null))
        .collect();
    let port = f.get("port").and_then(|n| ctx.port(n, &f.path("port")));
    let port_given = f.get("port").is_some();
    let check = match kinds.as_slice() {
        [] => {
            let d = ctx
                .diag(node.loc, path, "missing check")
                .expected("one of `http`, `tcp` or `exec`");
            ctx.push(d);
            None
        }
        [one] => {
            let p = f.path(&one.key);
            let v = &one.value;
            match one.key.as_str() {
                "http" => ctx.nonempty_string(v, &p).and_then(|path_str| {
                    if path_str.starts_with('/') {
                        Some(Check::Http {
                            path: path_str,
                            port,
                        })
                    } else {
                        let d = ctx
                            .diag(v.loc, &p, "invalid HTTP path")
                            .found(v.describe())
                            .expected("a path starting with `/`")
                            .hint(format!("did you mean \"/{path_str}\"?"));
                        ctx.push(d);
                        None
                    }
                }),
                "tcp" => tcp_check(ctx, v, &p, port, port_given),
                _ => {
                    if port_given {
                        let loc = f.entry("port").map_or(v.loc, |e| e.key_loc);
                        let d = ctx
                            .diag(
                                loc,
                                &f.path("port"),
                                "`port` does not apply to `exec` checks",
                            )
                            .hint("pass the port in the command, e.g. `${PORT}`".to_owned());
                        ctx.push(d);
                    }
                    ctx.argv(v, &p).map(|command| Check::Exec { command })
                }
            }
        }
        [_, second, ..] => {
            let d = ctx
                .diag(
                    second.key_loc,
                    &f.path(&second.key),
                    "only one check kind may be set",
                )
                .expected("exactly one of `http`, `tcp` or `exec`");
            ctx.push(d);
            None
        }
    };
    let interval = f
        .get("interval")
        .and_then(|n| ctx.duration(n, &f.path("interval"), true))
        .unwrap_or(Duration::from_secs(1));
    let timeout = f
        .get("timeout")
        .and_then(|n| ctx.duration(n, &f.path("timeout"), true))
        .unwrap_or(Duration::from_secs(1));
    let retries = f
        .get("retries")
        .and_then(|n| ctx.u32_field(n, &f.path("retries"), 1, "a whole number of at least 1"))
        .unwrap_or(3);
    let start_period = f
        .get("start_period")
        .and_then(|n| ctx.duration(n, &f.path("start_period"), false))
        .unwrap_or(Duration::from_secs(30));
    Some(Probe {
        check: check?,
        interval,
        timeout,
        retries,
        start_period,
    })
}

/// `tcp: true` (the replica's port, or `port:`) or `tcp: <port>`.
fn tcp_check(
    ctx: &mut Ctx<'_>,
    v: &Node,
    path: &str,
    port: Option<u16>,
    port_given: bool,
) -> Option<Check> {
    const EXPECTED: &str = "`true` or a port number";
    let Kind::Scalar(s) = &v.kind else {
        ctx.type_error(v, path, EXPECTED);
        return None;
    };
    match s.trim() {
        "true" | "True" | "TRUE" => Some(Check::Tcp { port }),
        "false" | "False" | "FALSE" => {
            let d = ctx
                .diag(v.loc, path, "`tcp: false` disables nothing")
                .expected(EXPECTED)
                .hint("remove the check instead".to_owned());
            ctx.push(d);
            None
        }
        _ => {
            let own = ctx.uint(v, path, 1, 65535, EXPECTED)?;
            if port_given {
                let d = ctx
                    .diag(v.loc, path, "the port is given twice")
                    .hint("use either `tcp: <port>` or `tcp: true` with `port:`".to_owned());
                ctx.push(d);
                return None;
            }
            u16::try_from(own)
                .ok()
                .map(|p| Check::Tcp { port: Some(p) })
        }
    }
}

fn default_restart() -> RestartPolicy {
    RestartPolicy {
        policy: Restart::OnFailure,
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(30),
        max_restarts: None,
    }
}

fn restart_policy(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Restart> {
    let s = ctx.string(node, path)?;
    match s.trim() {
        "no" => Some(Restart::No),
        "on-failure" => Some(Restart::OnFailure),
        "always" => Some(Restart::Always),
        other => {
            let hint = match other {
                "unless-stopped" => Some("`unless-stopped` is `always` here".to_owned()),
                "false" | "never" | "none" => Some("did you mean `no`?".to_owned()),
                "on_failure" | "onfailure" => Some("did you mean `on-failure`?".to_owned()),
                _ => did_you_mean(other, ["no", "on-failure", "always"]),
            };
            let d = ctx
                .diag(node.loc, path, "unknown restart policy")
                .found(node.describe())
                .expected("one of `no`, `on-failure`, `always`")
                .hint(hint);
            ctx.push(d);
            None
        }
    }
}

fn restart(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<RestartPolicy> {
    let mut policy = default_restart();
    if let Kind::Scalar(_) = node.kind {
        policy.policy = restart_policy(ctx, node, path)?;
        return Some(policy);
    }
    let f = ctx.fields(node, path, RESTART_FIELDS, &[])?;
    let mut ok = true;
    if let Some(n) = f.get("policy") {
        match restart_policy(ctx, n, &f.path("policy")) {
            Some(p) => policy.policy = p,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("max_restarts") {
        match ctx.u32_field(n, &f.path("max_restarts"), 0, "a whole number") {
            Some(m) => policy.max_restarts = Some(m),
            None => ok = false,
        }
    }
    if let Some(n) = f.get("backoff") {
        let bp = f.path("backoff");
        match ctx.fields(n, &bp, BACKOFF_FIELDS, &[]) {
            Some(bf) => {
                if let Some(i) = bf.get("initial") {
                    match ctx.duration(i, &bf.path("initial"), true) {
                        Some(d) => policy.backoff_initial = d,
                        None => ok = false,
                    }
                }
                if let Some(m) = bf.get("max") {
                    match ctx.duration(m, &bf.path("max"), true) {
                        Some(d) => policy.backoff_max = d,
                        None => ok = false,
                    }
                }
                if ok && policy.backoff_initial > policy.backoff_max {
                    let (loc, p) = match bf.get("initial") {
                        Some(i) => (i.loc, bf.path("initial")),
                        None => (n.loc, bp),
                    };
                    let d = ctx
                        .diag(loc, &p, "backoff `initial` is greater than `max`")
                        .found(format!(
                            "initial {:?}, max {:?}",
                            policy.backoff_initial, policy.backoff_max
                        ))
                        .expected("initial <= max");
                    ctx.push(d);
                    ok = false;
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(policy)
}

fn stop_signal(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let s = ctx.string(node, path)?;
    match normalize_signal(&s) {
        Ok(sig) => Some(sig),
        Err(closest) => {
            let d = ctx
                .diag(node.loc, path, "unknown signal")
                .found(node.describe())
                .expected("a signal name such as SIGTERM, SIGINT, SIGQUIT or SIGHUP")
                .hint(closest.map(|c| format!("did you mean `{c}`?")));
            ctx.push(d);
            None
        }
    }
}

fn resources(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Resources {
    let mut r = Resources::default();
    let Some(f) = ctx.fields(node, path, RESOURCE_FIELDS, &[]) else {
        return r;
    };
    if let Some(n) = f.get("cpus") {
        let p = f.path("cpus");
        let v = match &n.kind {
            Kind::Scalar(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match v {
            Some(v) if v.is_finite() && v > 0.0 => r.cpus = Some(v),
            _ => {
                let d = ctx
                    .diag(n.loc, &p, "invalid CPU limit")
                    .found(n.describe())
                    .expected("a number of cores greater than 0, such as 0.5 or 2");
                ctx.push(d);
            }
        }
    }
    if let Some(n) = f.get("memory")
        && let Some(s) = ctx.string(n, &f.path("memory"))
    {
        match parse_memory(&s) {
            Ok(bytes) => r.memory = Some(bytes),
            Err(e) => {
                let d = ctx
                    .diag(
                        n.loc,
                        &f.path("memory"),
                        format!("invalid memory size: {e}"),
                    )
                    .found(n.describe())
                    .expected(MEMORY_EXPECTED);
                ctx.push(d);
            }
        }
    }
    r.gpus = f
        .get("gpus")
        .and_then(|n| ctx.u32_field(n, &f.path("gpus"), 0, "a whole number of GPUs"));
    r.pids = f
        .get("pids")
        .and_then(|n| ctx.u32_field(n, &f.path("pids"), 1, "a whole number of at least 1"));
    r
}
