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
    Build, Check, Condition, Dependency, HealthPolicy, Location, Manifest, PortMapping, Probe,
    ProbeFailure, Resources, Restart, RestartPolicy, SecretDelivery, SecretOptions, Service,
    TracesSpec, Volume, VolumeKind, Workload,
};
use crate::node::{Entry, Kind, Node, join};
use crate::overlay::quoted_list;
use crate::suggest::did_you_mean;
use crate::units::{
    DURATION_EXPECTED, MEMORY_EXPECTED, normalize_signal, parse_duration, parse_memory, shell_split,
};

mod backup;
mod deploy;
mod job;
mod site;

#[cfg(test)]
pub(crate) use deploy::{CidrError, parse_cidr as deploy_parse_cidr};

const TOP_FIELDS: &[&str] = &[
    "name", "services", "volumes", "profiles", "health", "admin", "control", "proxy", "traces",
];
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
    "ports",
    "volumes",
    "secrets",
    "user",
    "labels",
    "route",
    "deploy",
    "backup",
    "schedule",
    "timezone",
    "concurrency",
];
/// Recognized Compose-ish keys this version cannot honour yet.
const SERVICE_UNSUPPORTED: &[&str] = &[];
const PORT_LONG_FIELDS: &[&str] = &["target", "published", "host_ip", "protocol"];
const VOLUME_LONG_FIELDS: &[&str] = &["type", "source", "target", "read_only"];
const ENV_FILE_FIELDS: &[&str] = &["path", "required"];
/// What a `ports` entry looks like, for messages.
pub(crate) const PORT_SPEC_EXPECTED: &str = "`CONTAINER_PORT`, `HOST_PORT:CONTAINER_PORT` or `HOST_IP:HOST_PORT:CONTAINER_PORT`, optionally ending in `/tcp`, `/udp` or `/sctp`";
/// What a short `volumes` entry looks like, for messages.
pub(crate) const VOLUME_SPEC_EXPECTED: &str = "`NAME:/container/path`, `./host/path:/container/path` or `/container/path`, optionally ending in `:ro` or `:rw`";
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
    "on_failure",
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
    /// Each `env_file` entry: location, path and whether the file must exist.
    pub env_files: Vec<(Location, String, bool)>,
    /// Host ports published, parallel to `Service::ports`: location and path of the entry.
    pub ports: Vec<(Location, String)>,
    /// Named volumes mounted: name, location and path of the entry.
    pub volume_refs: Vec<NameRef>,
    /// Where the route's path prefix is written (the `path` value, else the `route` value)
    /// and its field path, when the service has a valid route.
    pub route: Option<(Location, String)>,
    /// Each `deploy.backup_before` entry: service name, location and field path.
    pub backup_before: Vec<(String, Location, String)>,
}

/// A reference by name (to a service or a volume), found in the manifest.
#[derive(Debug)]
pub(crate) struct NameRef {
    /// The name referred to.
    pub name: String,
    /// The owning profile (or service, for a volume).
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
        self.map_key(key, loc, path, "variable")
    }

    /// A key of a `KEY=VALUE` mapping (`what`: variable, label).
    fn map_key(&mut self, key: &str, loc: Location, path: &str, what: &str) -> bool {
        if key.is_empty() || key.contains('=') || key.chars().any(char::is_whitespace) {
            let d = self
                .diag(loc, path, format!("invalid {what} name"))
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
        volumes: Vec::new(),
        admin_listen: None,
        control_listen: None,
        proxy: Default::default(),
        traces: None,
        environment: None,
        field_locations: BTreeMap::new(),
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
    manifest.field_locations = field_locations(root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("services."))
        .collect();

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

    if let Some(n) = f.get("volumes") {
        manifest.volumes = declared_volumes(ctx, n);
    }
    if let Some(n) = f.get("profiles") {
        profiles(ctx, n, &mut manifest, &mut meta);
    }
    if let Some(n) = f.get("health")
        && let Some(hf) = ctx.fields(n, "health", &["threshold"], &[])
        && let Some(t) = hf.get("threshold")
        && let Some(threshold) = fraction(ctx, t, "health.threshold", "threshold")
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
    if let Some(n) = f.get("control")
        && let Some(cf) = ctx.fields(n, "control", &["listen"], &[])
        && let Some(l) = cf.get("listen")
        && let Some(listen) = ctx.string(l, "control.listen")
    {
        if listen.trim().parse::<SocketAddr>().is_ok() {
            manifest.control_listen = Some(listen.trim().to_owned());
        } else {
            let d = ctx
                .diag(l.loc, "control.listen", "invalid listen address")
                .found(l.describe())
                .expected("an IP address and port such as 127.0.0.1:7071");
            ctx.push(d);
        }
    }
    if let Some(n) = f.get("proxy") {
        manifest.proxy = deploy::proxy(ctx, n);
    }
    if let Some(n) = f.get("traces") {
        manifest.traces = traces(ctx, n);
    }
    (manifest, meta)
}

/// Top-level `volumes: { NAME: {} }`.
fn declared_volumes(ctx: &mut Ctx<'_>, node: &Node) -> Vec<String> {
    let Kind::Map(entries) = &node.kind else {
        ctx.type_error(node, "volumes", "a mapping of volume name to `{}`");
        return Vec::new();
    };
    let mut names = Vec::new();
    for e in entries {
        let p = join("volumes", &e.key);
        if e.key.starts_with("x-") {
            continue;
        }
        if !valid_volume_name(&e.key) {
            let d = ctx
                .diag(e.key_loc, &p, "invalid volume name")
                .found(format!("{:?}", e.key))
                .expected("letters, digits, `-`, `_` and `.`, starting with a letter or digit");
            ctx.push(d);
            continue;
        }
        match &e.value.kind {
            Kind::Null => {}
            Kind::Map(options) => {
                for o in options.iter().filter(|o| !o.key.starts_with("x-")) {
                    let d = ctx
                        .diag(o.key_loc, &join(&p, &o.key), format!("unknown field `{}`", o.key))
                        .expected("an empty mapping `{}`")
                        .hint("volume options (driver, external, name) are not supported: Orchestra manages named volumes itself".to_owned());
                    ctx.push(d);
                }
            }
            _ => ctx.type_error(&e.value, &p, "an empty mapping `{}`"),
        }
        names.push(e.key.clone());
    }
    names
}

fn valid_volume_name(name: &str) -> bool {
    valid_service_name(name)
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

/// `"80%"` or a fraction `0.8` (`what` names it in messages).
fn fraction(ctx: &mut Ctx<'_>, node: &Node, path: &str, what: &str) -> Option<f64> {
    const EXPECTED: &str = "a percentage such as \"80%\" or a fraction between 0 and 1";
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
            .diag(node.loc, path, format!("invalid {what}"))
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
        .diag(node.loc, path, format!("{what} out of range"))
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

    // A static route's directory is the workload: nothing runs.
    let static_route = f.get("route").filter(|n| site::declared(n));
    let workload = match static_route {
        Some(n) => site::workload(ctx, &f, n, &f.path("route")),
        None => workload(ctx, &f, entry),
    };

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
            if let Some((s, loc, required)) = env_file_entry(ctx, item, &ip) {
                env_files.push(ctx.resolve(&s));
                meta.env_files.push((loc, ip, required));
            }
        }
    }

    let optional_env_files = env_files
        .iter()
        .zip(&meta.env_files)
        .filter(|(_, (_, _, required))| !required)
        .map(|(p, _)| p.clone())
        .collect();
    let env = f
        .get("env")
        .map(|n| ctx.env_map(n, &f.path("env")))
        .unwrap_or_default();
    let container = f.get("image").is_some() || f.get("build").is_some();
    if let (Some(n), Some(value)) = (f.get("env"), env.get("PORT")) {
        port_in_env(ctx, n, &f.path("env"), value, port, container);
    }
    let working_dir = f.get("working_dir").and_then(|n| {
        let p = f.path("working_dir");
        let s = ctx.nonempty_string(n, &p)?;
        if !container {
            return Some(ctx.resolve(&s));
        }
        // A path inside the container: Docker needs it absolute and it is not resolved.
        if s.starts_with('/') {
            return Some(PathBuf::from(s));
        }
        let d = ctx
            .diag(
                n.loc,
                &p,
                "a container's working directory must be absolute",
            )
            .found(n.describe())
            .expected("a path inside the container starting with `/`");
        ctx.push(d);
        None
    });
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
    let mut restart = f
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
    let ports = f
        .get("ports")
        .map(|n| ports(ctx, n, &f.path("ports"), &mut meta))
        .unwrap_or_default();
    let volumes = f
        .get("volumes")
        .map(|n| volumes(ctx, n, &f.path("volumes"), &name, &mut meta))
        .unwrap_or_default();
    let (secrets, secret_locations, secret_options) = f
        .get("secrets")
        .map(|n| secrets(ctx, n, &f.path("secrets")))
        .unwrap_or_default();
    let user = f
        .get("user")
        .and_then(|n| ctx.nonempty_string(n, &f.path("user")));
    let labels = f
        .get("labels")
        .map(|n| labels(ctx, n, &f.path("labels")))
        .unwrap_or_default();
    if !container && static_route.is_none() {
        container_only(
            ctx,
            &f,
            "ports",
            "a process service is reached on its `port`",
        );
        container_only(ctx, &f, "volumes", "a process uses host paths directly");
        if let (Some(n), Some(u)) = (f.get("user"), user.as_deref()) {
            job::process_user(ctx, n, &f.path("user"), u);
        }
    }
    let schedule = job::schedule(ctx, &f, &mut restart, replicas);
    job::static_schedule(ctx, &f, workload.as_ref());

    let route = f.get("route").and_then(|n| {
        let p = f.path("route");
        if static_route.is_none() {
            site::check_spa_without_static(ctx, n, &p);
        }
        let mut spec = deploy::route(ctx, n, &p)?;
        // The request path below a static route's prefix names the file.
        if static_route.is_some() && !site::writes_strip_prefix(n) {
            spec.strip_prefix = true;
        }
        meta.route = Some(deploy::route_location(n, &p));
        Some(spec)
    });
    let routed = f.get("route").is_some();
    let deploy = f
        .get("deploy")
        .and_then(|n| deploy::deploy(ctx, n, &f.path("deploy"), routed))
        .unwrap_or_else(|| orchestra_deploy_default(routed));
    let mut deploy = deploy;
    if let Some(n) = f.get("deploy")
        && let Kind::Map(entries) = &n.kind
        && let Some(e) = entries.iter().find(|e| e.key == "backup_before")
        && e.value.kind != Kind::Null
        && let Some(list) =
            backup::backup_before(ctx, &e.value, &join(&f.path("deploy"), "backup_before"))
    {
        deploy.backup_before = list.iter().map(|(n, _, _)| n.clone()).collect();
        meta.backup_before = list;
    }
    let backup = f.get("backup").and_then(|n| {
        let p = f.path("backup");
        if static_route.is_some() {
            let d = ctx
                .diag(n.loc, &p, "a static route has no data to back up")
                .expected("`backup:` on a service that runs (`command`, `image` or `build`)");
            ctx.push(d);
            return None;
        }
        backup::backup(ctx, n, &p)
    });

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
        ports,
        volumes,
        secrets,
        secret_locations,
        secret_options,
        secret_versions: BTreeMap::new(),
        secret_files: BTreeMap::new(),
        user,
        schedule,
        labels,
        route,
        deploy,
        field_locations: field_locations(&entry.value),
        env_file_vars: std::collections::BTreeSet::new(),
        optional_env_files,
        backup,
    };
    Some((service, meta))
}

/// The location of every key and list item under a service, by path below it.
fn field_locations(node: &Node) -> BTreeMap<String, Location> {
    fn walk(node: &Node, path: &str, depth: usize, out: &mut BTreeMap<String, Location>) {
        if depth > 4 {
            return;
        }
        match &node.kind {
            Kind::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    out.entry(p.clone()).or_insert(e.key_loc);
                    walk(&e.value, &p, depth + 1, out);
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    out.entry(p.clone()).or_insert(item.loc);
                    walk(item, &p, depth + 1, out);
                }
            }
            Kind::Null | Kind::Scalar(_) => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(node, "", 0, &mut out);
    out
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
    let on_failure = f
        .entry("on_failure")
        .and_then(|e| probe_failure(ctx, e, &f.path("on_failure"), path))
        .unwrap_or_default();
    Some(Probe {
        check: check?,
        interval,
        timeout,
        retries,
        start_period,
        on_failure,
    })
}

/// `env.PORT`: Orchestra sets `PORT` itself (a container's `port`, a process replica's
/// own free port), so a different value would be overridden without a word. Allowed
/// when it says the same: `${PORT}`, or a container's `port`.
fn port_in_env(
    ctx: &mut Ctx<'_>,
    env: &Node,
    path: &str,
    value: &str,
    port: Option<u16>,
    container: bool,
) {
    if value == "${PORT}" || (container && port.is_some() && value.parse::<u16>().ok() == port) {
        return;
    }
    let (loc, p) = match &env.kind {
        Kind::Map(entries) => entries
            .iter()
            .find(|e| e.key == "PORT")
            .map_or((env.loc, path.to_owned()), |e| (e.value.loc, join(path, "PORT"))),
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .find(|(_, i)| matches!(&i.kind, Kind::Scalar(s) if s == "PORT" || s.starts_with("PORT=")))
            .map_or((env.loc, path.to_owned()), |(i, n)| (n.loc, format!("{path}[{i}]"))),
        _ => (env.loc, path.to_owned()),
    };
    let hint = match (container, value.parse::<u16>()) {
        (true, Ok(n)) if n > 0 => format!(
            "write `port: {n}` (the port the program listens on inside the container) and remove `PORT` from `env`: Orchestra then sets PORT={n}"
        ),
        (true, _) => "remove `PORT` from `env`; `port:` says which port the program listens on inside the container".to_owned(),
        (false, _) => "remove `PORT` from `env`: each replica listens on its own free port, passed as PORT (write `${PORT}` where the command needs it)".to_owned(),
    };
    let what = if container {
        port.map_or_else(
            || "the image's one EXPOSEd port, else 8080".to_owned(),
            |n| format!("the service's `port` ({n})"),
        )
    } else {
        "each replica's own free port".to_owned()
    };
    let d = ctx
        .diag(
            loc,
            &p,
            format!("`PORT` is set by Orchestra (to {what}) and would override this value"),
        )
        .found(format!("PORT={value}"))
        .hint(hint);
    ctx.push(d);
}

/// `on_failure: restart | none`; only a healthcheck restarts, so readiness has none.
fn probe_failure(ctx: &mut Ctx<'_>, e: &Entry, p: &str, probe: &str) -> Option<ProbeFailure> {
    if !probe.ends_with(".healthcheck") {
        let d = ctx
            .diag(e.key_loc, p, "`on_failure` applies only to `healthcheck`")
            .hint(
                "a failing readiness probe never restarts a replica; remove `on_failure`"
                    .to_owned(),
            );
        ctx.push(d);
        return None;
    }
    let v = &e.value;
    let s = ctx.nonempty_string(v, p)?;
    match s.as_str() {
        "restart" => Some(ProbeFailure::Restart),
        "none" => Some(ProbeFailure::None),
        _ => {
            let d = ctx
                .diag(v.loc, p, "invalid `on_failure`")
                .found(v.describe())
                .expected("`restart` (stop and start the replica again) or `none` (mark it unhealthy and keep it running)");
            ctx.push(d);
            None
        }
    }
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

/// `traces: { endpoint, sample }`.
fn traces(ctx: &mut Ctx<'_>, node: &Node) -> Option<TracesSpec> {
    let f = ctx.fields(node, "traces", &["endpoint", "sample"], &[])?;
    let Some(e) = f.get("endpoint") else {
        let d = ctx
            .diag(node.loc, "traces.endpoint", "missing traces endpoint")
            .expected("an OTLP/HTTP base URL such as http://127.0.0.1:4318");
        ctx.push(d);
        return None;
    };
    let endpoint = ctx.string(e, "traces.endpoint")?.trim().to_owned();
    let host = endpoint.strip_prefix("http://").unwrap_or("");
    let host = host.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        let d = ctx
            .diag(e.loc, "traces.endpoint", "invalid traces endpoint")
            .found(e.describe())
            .expected("an OTLP/HTTP base URL such as http://127.0.0.1:4318");
        ctx.push(d);
        return None;
    }
    let sample = match f.get("sample") {
        Some(s) => fraction(ctx, s, "traces.sample", "sample")?,
        None => 1.0,
    };
    Some(TracesSpec { endpoint, sample })
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
    r.gpus = f.get("gpus").and_then(|n| match &n.kind {
        Kind::Scalar(s) if s.trim() == "all" => Some(Resources::ALL_GPUS),
        _ => ctx.u32_field(n, &f.path("gpus"), 0, "a whole number of GPUs or `all`"),
    });
    r.pids = f
        .get("pids")
        .and_then(|n| ctx.u32_field(n, &f.path("pids"), 1, "a whole number of at least 1"));
    r
}

/// One `env_file` entry: `path` or `{ path, required }`. Returns the path, where it is
/// and whether the file must exist.
fn env_file_entry(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<(String, Location, bool)> {
    if let Kind::Map(_) = node.kind {
        let f = ctx.fields(node, path, ENV_FILE_FIELDS, &[])?;
        let required = match f.get("required") {
            Some(n) => ctx.boolean(n, &f.path("required"))?,
            None => true,
        };
        let Some(p) = f.get("path") else {
            let d = ctx
                .diag(node.loc, path, "missing required field `path`")
                .expected("the env file's path");
            ctx.push(d);
            return None;
        };
        let s = ctx.nonempty_string(p, &f.path("path"))?;
        return Some((s, p.loc, required));
    }
    let s = ctx.nonempty_string(node, path)?;
    Some((s, node.loc, true))
}

/// A field that only containers have, set on a process service.
fn container_only(ctx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, hint: &str) {
    if let Some(e) = f.entry(key).filter(|e| e.value.kind != Kind::Null) {
        let d = ctx
            .diag(
                e.key_loc,
                &f.path(key),
                format!("`{key}` only applies to containers (`image` or `build`)"),
            )
            .hint(if key == "ports" {
                format!("{hint}: use `port: <number>`")
            } else {
                hint.to_owned()
            });
        ctx.push(d);
    }
}

impl Ctx<'_> {
    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        if let Kind::Scalar(s) = &node.kind {
            match s.trim() {
                "true" | "True" | "TRUE" => return Some(true),
                "false" | "False" | "FALSE" => return Some(false),
                _ => {}
            }
        }
        let d = self
            .diag(node.loc, path, "wrong type")
            .found(node.describe())
            .expected("`true` or `false`");
        self.push(d);
        None
    }
}

fn ports(ctx: &mut Ctx<'_>, node: &Node, path: &str, meta: &mut ServiceMeta) -> Vec<PortMapping> {
    let Kind::Seq(items) = &node.kind else {
        ctx.type_error(node, path, "a list of port mappings");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let spec = match &item.kind {
            Kind::Scalar(s) => Some(s.clone()),
            Kind::Map(_) => long_port(ctx, item, &p),
            _ => {
                ctx.type_error(item, &p, "a port mapping string or a mapping with `target`");
                None
            }
        };
        let Some(spec) = spec else { continue };
        match parse_port_spec(&spec) {
            Ok(mappings) => {
                for m in mappings {
                    meta.ports.push((item.loc, p.clone()));
                    out.push(m);
                }
            }
            Err(e) => {
                let d = ctx
                    .diag(item.loc, &p, format!("invalid port mapping: {e}"))
                    .found(format!("{spec:?}"))
                    .expected(PORT_SPEC_EXPECTED);
                ctx.push(d);
            }
        }
    }
    out
}

/// `{ target, published, host_ip, protocol }` as the equivalent short form.
fn long_port(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let f = ctx.fields(node, path, PORT_LONG_FIELDS, &[])?;
    let Some(target) = f.get("target") else {
        let d = ctx
            .diag(node.loc, path, "missing required field `target`")
            .expected("the container port");
        ctx.push(d);
        return None;
    };
    let target = ctx.port(target, &f.path("target"))?;
    let published = match f.get("published") {
        Some(n) => Some(ctx.nonempty_string(n, &f.path("published"))?),
        None => None,
    };
    let host_ip = match f.get("host_ip") {
        Some(n) => Some(ctx.nonempty_string(n, &f.path("host_ip"))?),
        None => None,
    };
    let protocol = match f.get("protocol") {
        Some(n) => Some(ctx.nonempty_string(n, &f.path("protocol"))?),
        None => None,
    };
    let mut spec = String::new();
    if let Some(ip) = host_ip {
        if ip.contains(':') {
            spec.push_str(&format!("[{ip}]:"));
        } else {
            spec.push_str(&format!("{ip}:"));
        }
        spec.push_str(published.as_deref().unwrap_or(""));
        spec.push(':');
    } else if let Some(p) = &published {
        spec.push_str(&format!("{p}:"));
    }
    spec.push_str(&target.to_string());
    if let Some(proto) = protocol {
        spec.push_str(&format!("/{proto}"));
    }
    Some(spec)
}

/// Parses a short port mapping, `[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL]`,
/// where both ports may be equal-length ranges (`8000-8002:9000-9002`).
pub(crate) fn parse_port_spec(spec: &str) -> Result<Vec<PortMapping>, String> {
    let s = spec.trim();
    if s.is_empty() {
        return Err("empty".to_owned());
    }
    let (rest, protocol) = match s.rsplit_once('/') {
        Some((rest, proto)) => {
            let proto = proto.to_ascii_lowercase();
            if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                return Err(format!("unknown protocol {proto:?}"));
            }
            (rest, proto)
        }
        None => (s, "tcp".to_owned()),
    };
    let (bracketed, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r
                .split_once(']')
                .ok_or_else(|| "unclosed `[` around the host IP".to_owned())?;
            let after = after
                .strip_prefix(':')
                .ok_or_else(|| "expected `:` after the host IP".to_owned())?;
            (Some(ip), after)
        }
        None => (None, rest),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host, container) = match (bracketed, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => (Some(*ip), Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        (None, _) => {
            return Err(
                "too many `:`; put an IPv6 host address in brackets, e.g. `[::1]:8080:80`"
                    .to_owned(),
            );
        }
        (Some(_), _) => return Err("expected `[IP]:HOST_PORT:CONTAINER_PORT`".to_owned()),
    };
    let host_ip = match host_ip {
        Some(ip) => {
            let ip = ip.trim();
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("invalid host IP address {ip:?}"));
            }
            Some(ip.to_owned())
        }
        None => None,
    };
    let container = port_range(container)?;
    let host = match host.map(str::trim) {
        None => None,
        // `IP::PORT`: the engine picks the host port.
        Some("") if host_ip.is_some() => None,
        Some("") => return Err("empty host port".to_owned()),
        Some(h) => Some(port_range(h)?),
    };
    let len = container.1 - container.0;
    let mut out = Vec::new();
    match host {
        Some(h) if h.1 - h.0 != len => {
            return Err(if len == 0 {
                "a host port range needs a container port range of the same length".to_owned()
            } else {
                "the host and container port ranges differ in length".to_owned()
            });
        }
        Some(h) => {
            for k in 0..=len {
                out.push(PortMapping {
                    host_ip: host_ip.clone(),
                    host_port: Some(h.0 + k),
                    container_port: container.0 + k,
                    protocol: protocol.clone(),
                });
            }
        }
        None => {
            for k in 0..=len {
                out.push(PortMapping {
                    host_ip: host_ip.clone(),
                    host_port: None,
                    container_port: container.0 + k,
                    protocol: protocol.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// `8000` or `8000-8010`.
fn port_range(s: &str) -> Result<(u16, u16), String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u16>() {
            Ok(v) if v >= 1 => Ok(v),
            _ => Err(format!(
                "{:?} is not a port number between 1 and 65535",
                p.trim()
            )),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(format!("port range {s:?} runs backwards"));
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

/// The parts of a short volume entry, split on `:` outside `${...}`.
pub(crate) fn split_volume_spec(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// A short volume entry: `SOURCE:TARGET[:MODES]` or `TARGET`, modes comma-separated.
#[derive(Debug, PartialEq)]
pub(crate) struct VolumeShort<'a> {
    pub source: Option<&'a str>,
    pub target: &'a str,
    pub modes: Vec<&'a str>,
}

pub(crate) fn parse_volume_short(s: &str) -> Result<VolumeShort<'_>, String> {
    let parts = split_volume_spec(s);
    let (source, target, modes) = match parts.as_slice() {
        [t] => (None, *t, Vec::new()),
        [src, t] => (Some(*src), *t, Vec::new()),
        [src, t, m] => (Some(*src), *t, m.split(',').collect()),
        _ => return Err("too many `:`".to_owned()),
    };
    if source.is_some_and(str::is_empty) {
        return Err("empty source".to_owned());
    }
    if target.is_empty() {
        return Err("empty container path".to_owned());
    }
    Ok(VolumeShort {
        source,
        target,
        modes,
    })
}

/// Whether a volume source names a host path rather than a named volume.
pub(crate) fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

fn volumes(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    service: &str,
    meta: &mut ServiceMeta,
) -> Vec<Volume> {
    let Kind::Seq(items) = &node.kind else {
        ctx.type_error(node, path, "a list of mounts");
        return Vec::new();
    };
    let mut out: Vec<Volume> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let volume = match &item.kind {
            Kind::Scalar(s) => short_volume(ctx, item, s, &p),
            Kind::Map(_) => long_volume(ctx, item, &p),
            _ => {
                ctx.type_error(
                    item,
                    &p,
                    "a mount string or a mapping with `type` and `target`",
                );
                None
            }
        };
        let Some(volume) = volume else { continue };
        if let Some(first) = out.iter().find(|v| v.target == volume.target) {
            let d = ctx
                .diag(item.loc, &p, format!("`{}` is mounted twice", first.target))
                .hint("mount each container path once".to_owned());
            ctx.push(d);
            continue;
        }
        if let (VolumeKind::Named, Some(name)) = (volume.kind, &volume.source) {
            meta.volume_refs.push(NameRef {
                name: name.clone(),
                profile: service.to_owned(),
                loc: item.loc,
                path: p,
            });
        }
        out.push(volume);
    }
    out
}

fn short_volume(ctx: &mut Ctx<'_>, node: &Node, s: &str, path: &str) -> Option<Volume> {
    let parsed = parse_volume_short(s).and_then(|v| {
        let mut read_only = false;
        for m in &v.modes {
            match m.trim() {
                "ro" => read_only = true,
                "rw" => read_only = false,
                other => return Err(format!("unsupported mode {other:?} (only `ro` and `rw`)")),
            }
        }
        let (kind, source) = match v.source {
            None => (VolumeKind::Named, None),
            Some(src) if is_host_path(src) => (VolumeKind::Bind, Some(bind_source(ctx, src)?)),
            Some(name) if valid_volume_name(name) => (VolumeKind::Named, Some(name.to_owned())),
            Some(name) => return Err(format!("invalid volume name {name:?}")),
        };
        Ok(Volume {
            kind,
            source,
            target: v.target.to_owned(),
            read_only,
        })
    });
    let volume = match parsed {
        Ok(v) => v,
        Err(e) => {
            let d = ctx
                .diag(node.loc, path, format!("invalid mount: {e}"))
                .found(node.describe())
                .expected(VOLUME_SPEC_EXPECTED);
            ctx.push(d);
            return None;
        }
    };
    check_target(ctx, node, path, volume)
}

/// A bind source: `~` expanded with HOME, then resolved against the manifest directory.
fn bind_source(ctx: &Ctx<'_>, src: &str) -> Result<String, String> {
    let expanded = match src.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = (ctx.lookup)("HOME")
                .filter(|h| !h.is_empty())
                .ok_or_else(|| "`~` needs the HOME variable to be set".to_owned())?;
            format!("{home}{rest}")
        }
        Some(_) => return Err("`~user` paths are not supported".to_owned()),
        None => src.to_owned(),
    };
    Ok(ctx.resolve(&expanded).to_string_lossy().into_owned())
}

fn check_target(ctx: &mut Ctx<'_>, node: &Node, path: &str, volume: Volume) -> Option<Volume> {
    if volume.target.starts_with('/') {
        return Some(volume);
    }
    let d = ctx
        .diag(node.loc, path, "the container path must be absolute")
        .found(format!("{:?}", volume.target))
        .expected("a path inside the container starting with `/`");
    ctx.push(d);
    None
}

fn long_volume(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Volume> {
    let f = ctx.fields(node, path, VOLUME_LONG_FIELDS, &[])?;
    let kind = match f.get("type") {
        None => {
            let d = ctx
                .diag(node.loc, path, "missing required field `type`")
                .expected("one of `volume`, `bind`, `tmpfs`");
            ctx.push(d);
            None
        }
        Some(n) => {
            let s = ctx.string(n, &f.path("type"))?;
            match s.trim() {
                "volume" => Some(VolumeKind::Named),
                "bind" => Some(VolumeKind::Bind),
                "tmpfs" => Some(VolumeKind::Tmpfs),
                other => {
                    let d = ctx
                        .diag(n.loc, &f.path("type"), "unknown mount type")
                        .found(n.describe())
                        .expected("one of `volume`, `bind`, `tmpfs`")
                        .hint(did_you_mean(other, ["volume", "bind", "tmpfs"]));
                    ctx.push(d);
                    None
                }
            }
        }
    };
    let target = match f.get("target") {
        Some(n) => ctx.nonempty_string(n, &f.path("target")),
        None => {
            let d = ctx
                .diag(node.loc, path, "missing required field `target`")
                .expected("the path inside the container");
            ctx.push(d);
            None
        }
    };
    let read_only = match f.get("read_only") {
        Some(n) => ctx.boolean(n, &f.path("read_only"))?,
        None => false,
    };
    let source_node = f.get("source");
    let source_text = match source_node {
        Some(n) => Some(ctx.nonempty_string(n, &f.path("source"))?),
        None => None,
    };
    let kind = kind?;
    let sp = f.path("source");
    let source = match (kind, source_text, source_node) {
        (VolumeKind::Tmpfs, Some(_), Some(n)) => {
            let d = ctx
                .diag(n.loc, &sp, "a tmpfs mount has no source")
                .hint("remove `source`".to_owned());
            ctx.push(d);
            return None;
        }
        (VolumeKind::Bind, None, _) => {
            let d = ctx
                .diag(node.loc, path, "missing required field `source`")
                .expected("the host path to mount");
            ctx.push(d);
            return None;
        }
        (VolumeKind::Bind, Some(src), Some(n)) => match bind_source(ctx, &src) {
            Ok(s) => Some(s),
            Err(e) => {
                let d = ctx
                    .diag(n.loc, &sp, format!("invalid host path: {e}"))
                    .found(n.describe());
                ctx.push(d);
                return None;
            }
        },
        (VolumeKind::Named, Some(name), Some(n)) if !valid_volume_name(&name) => {
            let hint = is_host_path(&name).then(|| "use `type: bind` for a host path".to_owned());
            let d = ctx
                .diag(n.loc, &sp, "invalid volume name")
                .found(n.describe())
                .expected("letters, digits, `-`, `_` and `.`, starting with a letter or digit")
                .hint(hint);
            ctx.push(d);
            return None;
        }
        (_, src, _) => src,
    };
    check_target(
        ctx,
        node,
        path,
        Volume {
            kind,
            source,
            target: target?,
            read_only,
        },
    )
}

/// Whether `name` can be an environment variable name.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What `secrets:` gives a service: names, where each is written, and the
/// long-form options by name.
type Secrets = (Vec<String>, Vec<Location>, BTreeMap<String, SecretOptions>);

const SECRET_FIELDS: &[&str] = &["name", "as", "target", "version"];

/// `secrets: [NAME, { name, as: env | file, target, version }]`.
fn secrets(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Secrets {
    let Kind::Seq(items) = &node.kind else {
        ctx.type_error(node, path, "a list of secret names");
        return Default::default();
    };
    let mut out: Vec<String> = Vec::new();
    let mut at: Vec<Location> = Vec::new();
    let mut options = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (name_node, name_path, opts) = match &item.kind {
            Kind::Map(_) => {
                let Some(f) = ctx.fields(item, &p, SECRET_FIELDS, &[]) else {
                    continue;
                };
                let Some(n) = f.get("name") else {
                    let d = ctx
                        .diag(item.loc, &p, "`name` is missing")
                        .hint("write `{ name: API_KEY, as: file }`".to_owned());
                    ctx.push(d);
                    continue;
                };
                let mut o = SecretOptions::default();
                let mut ok = true;
                if let Some(a) = f.get("as") {
                    let ap = f.path("as");
                    match ctx.string(a, &ap).as_deref() {
                        Some("env") => o.delivery = Some(SecretDelivery::Env),
                        Some("file") => o.delivery = Some(SecretDelivery::File),
                        Some(_) => {
                            let d = ctx
                                .diag(a.loc, &ap, "unknown delivery")
                                .found(a.describe())
                                .expected("env or file");
                            ctx.push(d);
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                if let Some(t) = f.get("target") {
                    let tp = f.path("target");
                    match ctx.nonempty_string(t, &tp) {
                        Some(v) if o.delivery != Some(SecretDelivery::Env) => o.target = Some(v),
                        Some(_) => {
                            let d = ctx
                                .diag(t.loc, &tp, "`target` is for `as: file`")
                                .hint("drop `as: env`, or drop `target`".to_owned());
                            ctx.push(d);
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                // `latest` is the default.
                if let Some(v) = f
                    .get("version")
                    .filter(|v| !matches!(&v.kind, Kind::Scalar(s) if s.trim() == "latest"))
                {
                    match ctx.uint(
                        v,
                        &f.path("version"),
                        1,
                        u64::from(u32::MAX),
                        "a version number from 1, or `latest`",
                    ) {
                        Some(n) => o.version = u32::try_from(n).ok(),
                        None => ok = false,
                    }
                }
                if !ok {
                    continue;
                }
                (n, f.path("name"), Some(o))
            }
            _ => (item, p.clone(), None),
        };
        let Some(name) = ctx.string(name_node, &name_path) else {
            continue;
        };
        if !is_env_name(&name) {
            let fixed: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let hint = (!fixed.is_empty() && is_env_name(&fixed))
                .then(|| format!("did you mean `{fixed}`?"));
            let d = ctx
                .diag(name_node.loc, &name_path, "invalid secret name")
                .found(name_node.describe())
                .expected("a name like an environment variable: letters, digits and `_`, not starting with a digit")
                .hint(hint);
            ctx.push(d);
            continue;
        }
        if out.contains(&name) {
            let d = ctx
                .diag(
                    name_node.loc,
                    &name_path,
                    format!("`{name}` is listed twice"),
                )
                .hint("list each secret once".to_owned());
            ctx.push(d);
            continue;
        }
        if let Some(o) = opts.filter(|o| *o != SecretOptions::default()) {
            options.insert(name.clone(), o);
        }
        out.push(name);
        at.push(name_node.loc);
    }
    (out, at, options)
}

/// `{K: V}` or `[K=V]`; a null value or a bare `K` is the empty string.
fn labels(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match &node.kind {
        Kind::Map(entries) => {
            for e in entries {
                let p = join(path, &e.key);
                if !ctx.map_key(&e.key, e.key_loc, &p, "label") {
                    continue;
                }
                match &e.value.kind {
                    Kind::Scalar(s) => {
                        out.insert(e.key.clone(), s.clone());
                    }
                    Kind::Null => {
                        out.insert(e.key.clone(), String::new());
                    }
                    _ => ctx.type_error(&e.value, &p, "a string, number or boolean"),
                }
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let Some(s) = ctx.string(item, &p) else {
                    continue;
                };
                let (key, value) = s.split_once('=').unwrap_or((s.as_str(), ""));
                if ctx.map_key(key, item.loc, &p, "label") {
                    out.insert(key.to_owned(), value.to_owned());
                }
            }
        }
        _ => ctx.type_error(node, path, "a mapping or a list of KEY=VALUE strings"),
    }
    out
}
