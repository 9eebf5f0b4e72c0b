//! Compose keys to manifest fields, one key at a time, noting every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::emit::Out;
use super::refs;
use super::{ImportError, ImportNote, NoteKind};
use crate::convert::{is_env_name, is_host_path, parse_port_spec, parse_volume_short};
use crate::error::Diagnostic;
use crate::model::Location;
use crate::node::{Entry, Kind, Node, join};
use crate::units::{normalize_signal, parse_duration, parse_memory, shell_split};

/// Manifest service fields in the order they are written.
const SERVICE_ORDER: &[&str] = &[
    "image",
    "build",
    "entrypoint",
    "command",
    "working_dir",
    "user",
    "port",
    "env_file",
    "env",
    "ports",
    "volumes",
    "secrets",
    "depends_on",
    "healthcheck",
    "restart",
    "replicas",
    "resources",
    "stop_signal",
    "stop_grace_period",
    "profiles",
    "labels",
];

/// Compose service keys that are dropped with a specific explanation.
const SERVICE_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "network_mode",
        "`network_mode` is not supported: every container joins the project network",
    ),
    (
        "hostname",
        "the container hostname is not set; other services reach it by its service name",
    ),
    ("domainname", "the container domain name is not set"),
    ("extra_hosts", "extra /etc/hosts entries are not supported"),
    ("dns", "custom DNS servers are not supported"),
    ("dns_opt", "custom DNS options are not supported"),
    ("dns_search", "custom DNS search domains are not supported"),
    (
        "cap_add",
        "Linux capabilities are not changed: the container runs with the engine's defaults",
    ),
    (
        "cap_drop",
        "Linux capabilities are not changed: the container runs with the engine's defaults",
    ),
    (
        "privileged",
        "privileged mode is not supported: the container runs unprivileged",
    ),
    (
        "logging",
        "logging drivers are not used: Orchestra collects stdout and stderr (`orchestra logs SERVICE`)",
    ),
    ("tty", "no terminal is attached to services"),
    ("stdin_open", "no stdin is attached to services"),
    (
        "devices",
        "host devices are not passed through (for GPUs use `deploy.resources.reservations.devices`, which becomes `resources.gpus`)",
    ),
    (
        "runtime",
        "the container runtime is not chosen per service (for GPUs use `deploy.resources.reservations.devices`, which becomes `resources.gpus`)",
    ),
    (
        "ulimits",
        "ulimits are not set (a process limit can be `deploy.resources.limits.pids`)",
    ),
    ("shm_size", "the /dev/shm size is not set"),
    (
        "mem_reservation",
        "only limits are enforced; reservations are dropped",
    ),
    (
        "configs",
        "configs are not supported: mount the file with a bind mount under `volumes`",
    ),
    (
        "volumes_from",
        "`volumes_from` is not supported: mount the same volumes explicitly",
    ),
    (
        "pull_policy",
        "the pull policy is not set: Orchestra pulls an image when it is missing",
    ),
    (
        "platform",
        "the image platform is not chosen: the engine's default is used",
    ),
    ("read_only", "a read-only root filesystem is not supported"),
    (
        "external_links",
        "links to containers outside the project are not supported",
    ),
    ("develop", "`develop` (compose watch) is not supported"),
    (
        "pre_start",
        "lifecycle hooks are not supported: this command is not run before the container starts; run it in the entrypoint before the service's process",
    ),
    (
        "post_start",
        "lifecycle hooks are not supported: this command is not run after the container starts; run it from the entrypoint instead",
    ),
    (
        "pre_stop",
        "lifecycle hooks are not supported: this command is not run before the container stops; have the service handle its stop signal instead",
    ),
    (
        "models",
        "models are not supported: no model is provided to the service and no variables pointing at one are set; run the model server as a service",
    ),
];

/// Compose service keys without an equivalent, dropped with a generic note.
const SERVICE_OTHER_KNOWN: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "device_cgroup_rules",
    "driver_opts",
    "group_add",
    "ipc",
    "isolation",
    "label_file",
    "mac_address",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "provider",
    "security_opt",
    "storage_opt",
    "sysctls",
    "use_api_socket",
    "userns_mode",
    "uts",
];

const PROJECT_NETWORK: &str = "all services share one project network where service names resolve";

/// The manifest's top-level entries, in order.
pub(crate) type Document = Vec<(String, Out)>;

/// Maps a parsed Compose document: the manifest's top-level entries and the notes.
pub(crate) fn map_compose(
    root: Option<&Node>,
    file: &Path,
) -> Result<(Document, Vec<ImportNote>), ImportError> {
    let not_compose = |loc: Location, path: &str, message: &str| {
        ImportError::NotCompose(Box::new(
            Diagnostic::new(file, loc, path, message)
                .expected("a Compose file with a `services:` mapping"),
        ))
    };
    let start = Location { line: 1, col: 1 };
    let Some(root) = root else {
        return Err(not_compose(start, "", "the file is empty"));
    };
    let Kind::Map(top) = &root.kind else {
        return Err(not_compose(
            root.loc,
            "",
            "not a Compose file: the top level is not a mapping",
        ));
    };
    let Some(services) = top.iter().find(|e| e.key == "services") else {
        return Err(not_compose(
            root.loc,
            "",
            "not a Compose file: there is no `services` key",
        ));
    };
    let Kind::Map(service_entries) = &services.value.kind else {
        return Err(not_compose(
            services.value.loc,
            "services",
            "`services` is not a mapping of service name to service",
        ));
    };
    if service_entries.is_empty() {
        return Err(not_compose(
            services.key_loc,
            "services",
            "no services defined",
        ));
    }

    let mut m = Mapper {
        file: file.to_path_buf(),
        ..Mapper::default()
    };
    let mut name = None;
    for e in top {
        let p = e.key.clone();
        match e.key.as_str() {
            "services" => {}
            "name" => match &e.value.kind {
                Kind::Scalar(s) => name = Some(Out::str(s)),
                _ => m.unsupported(e.key_loc, &p, "`name` is not a string"),
            },
            "version" => m.ignored(
                e.key_loc,
                &p,
                "`version` is obsolete in Compose and means nothing here",
            ),
            "volumes" => m.top_volumes(e),
            "secrets" => m.top_secrets(e),
            "networks" => m.mapped(
                e.key_loc,
                &p,
                format!("networks are not declared: {PROJECT_NETWORK}"),
            ),
            "configs" => m.unsupported(
                e.key_loc,
                &p,
                "configs are not supported: mount each file with a bind mount under a service's `volumes`",
            ),
            "models" => m.unsupported(
                e.key_loc,
                &p,
                "models are not supported: Orchestra does not pull or serve AI models (Docker Model Runner); run the model server as a service",
            ),
            k if k.starts_with("x-") => m.extension(e, &p),
            _ => m.strict(
                e.key_loc,
                &p,
                format!(
                    "unknown Compose key `{}`{}",
                    e.key,
                    hint(&e.key, TOP_KEYS)
                ),
            ),
        }
    }

    let mut svcs: Vec<Svc> = service_entries.iter().map(|e| m.service(e)).collect();
    m.cross_check(&mut svcs);
    let networks = top.iter().find(|e| e.key == "networks").map(|e| &e.value);
    let dropped = refs::dropped_names(service_entries, networks);
    for e in service_entries {
        for (loc, p, message) in refs::mentions(e, &join("services", &e.key), &dropped) {
            m.mapped(loc, &p, message);
        }
    }
    m.share_builds(&mut svcs);
    if !m.errors.is_empty() {
        m.errors.sort_by_key(|d| (d.line, d.col));
        return Err(ImportError::Invalid(m.errors));
    }

    let services_loc = services.key_loc;
    let mut services = Vec::new();
    for s in svcs.into_iter().filter(|s| !s.skip) {
        let fields = SERVICE_ORDER
            .iter()
            .filter_map(|k| s.fields.get(k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        services.push((s.name, Out::Map(fields, false)));
    }
    if services.is_empty() {
        return Err(not_compose(
            services_loc,
            "services",
            "no service could be imported: each needs `image` or `build`",
        ));
    }

    let mut doc = Vec::new();
    if let Some(name) = name {
        doc.push(("name".to_owned(), name));
    }
    doc.push(("services".to_owned(), Out::Map(services, false)));
    if !m.volumes.is_empty() {
        let vols = m
            .volumes
            .iter()
            .map(|n| (n.clone(), Out::Map(Vec::new(), true)))
            .collect();
        doc.push(("volumes".to_owned(), Out::Map(vols, false)));
    }
    Ok((doc, m.notes))
}

/// One service being imported.
#[derive(Default)]
struct Svc {
    name: String,
    /// Manifest fields by name; written in [`SERVICE_ORDER`].
    fields: BTreeMap<&'static str, Out>,
    /// `depends_on` entries (and the dependencies `links` imply).
    deps: Vec<Dep>,
    /// `depends_on` was a list (or absent): written as a list when all are `started`.
    deps_short: bool,
    /// A healthcheck was carried over.
    has_healthcheck: bool,
    /// Not imported (neither `image` nor `build`).
    skip: bool,
    /// Resources set from the service level (`mem_limit`, `cpus`, ...), overridden by
    /// `deploy.resources.limits`.
    resources: Vec<(String, Out, Location, String)>,
    /// `image:` where and as written: the tag a `build` produces, or the image it runs.
    image: Option<(String, Location, String)>,
}

struct Dep {
    service: String,
    condition: &'static str,
    loc: Location,
    path: String,
}

#[derive(Default)]
struct Mapper {
    /// The Compose file, for errors.
    file: PathBuf,
    notes: Vec<ImportNote>,
    /// Values Compose rejects; any one fails the import.
    errors: Vec<Diagnostic>,
    /// Named volumes to declare, in order of declaration (or first use).
    volumes: Vec<String>,
    /// Secrets declared under top-level `secrets`.
    secrets: Vec<String>,
}

impl Mapper {
    fn note(&mut self, loc: Location, path: &str, kind: NoteKind, message: impl Into<String>) {
        self.notes.push(ImportNote {
            line: loc.line,
            col: loc.col,
            path: path.to_owned(),
            kind,
            message: message.into(),
            strict: false,
            file: None,
        });
    }

    /// An unknown key or a dropped dependency: unsupported, and refused by `--strict`.
    fn strict(&mut self, loc: Location, path: &str, message: impl Into<String>) {
        self.note(loc, path, NoteKind::Unsupported, message);
        if let Some(n) = self.notes.last_mut() {
            n.strict = true;
        }
    }

    fn mapped(&mut self, loc: Location, path: &str, message: impl Into<String>) {
        self.note(loc, path, NoteKind::Mapped, message);
    }

    fn unsupported(&mut self, loc: Location, path: &str, message: impl Into<String>) {
        self.note(loc, path, NoteKind::Unsupported, message);
    }

    fn ignored(&mut self, loc: Location, path: &str, message: impl Into<String>) {
        self.note(loc, path, NoteKind::Ignored, message);
    }

    fn extension(&mut self, e: &Entry, path: &str) {
        let message = if path.contains('.') {
            "extension field: not carried over"
        } else {
            "extension field: not carried over (anchors defined in it still apply where they are merged)"
        };
        self.ignored(e.key_loc, path, message);
    }

    /// A value Compose rejects: `expected` says what it must be.
    fn invalid(&mut self, v: &Node, path: &str, expected: &str) {
        let field = path.rsplit('.').next().unwrap_or(path);
        self.errors.push(
            Diagnostic::new(&self.file, v.loc, path, format!("invalid `{field}`"))
                .found(v.describe())
                .expected(expected),
        );
    }

    /// The entries of a mapping; `None` for null (unset) and, with an error, for
    /// anything else.
    fn mapping<'a>(&mut self, v: &'a Node, path: &str) -> Option<&'a [Entry]> {
        match &v.kind {
            Kind::Map(entries) => Some(entries),
            Kind::Null => None,
            _ => {
                self.invalid(v, path, "a mapping");
                None
            }
        }
    }

    /// A key this mapping does not know, in a mapping whose known keys were handled.
    fn other_key(&mut self, e: &Entry, path: &str) {
        if e.key.starts_with("x-") {
            self.extension(e, path);
        } else if NESTED_KEYS.contains(&e.key.as_str()) {
            self.unsupported(
                e.key_loc,
                path,
                format!("`{}` is not supported and was not carried over", e.key),
            );
        } else {
            // Not a key Compose defines in a service's nested mappings: a typo or a
            // newer key, which `--strict` refuses.
            self.strict(
                e.key_loc,
                path,
                format!(
                    "unknown key `{}`: not carried over{}",
                    e.key,
                    hint(&e.key, NESTED_KEYS)
                ),
            );
        }
    }

    /// A string (numbers and booleans are strings here); notes anything else.
    fn scalar(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s) => Some(s.clone()),
            _ => {
                self.unsupported(
                    node.loc,
                    path,
                    format!(
                        "{what} must be a string, found {}; not carried over",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    /// A list of strings, or one string as a list of one.
    fn strings(&mut self, node: &Node, path: &str, what: &str) -> Vec<(String, Location, String)> {
        match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let p = format!("{path}[{i}]");
                    self.scalar(item, &p, what).map(|s| (s, item.loc, p))
                })
                .collect(),
            Kind::Scalar(s) => vec![(s.clone(), node.loc, path.to_owned())],
            Kind::Null => Vec::new(),
            Kind::Map(_) => {
                self.unsupported(
                    node.loc,
                    path,
                    format!("{what} must be a list, found a mapping; not carried over"),
                );
                Vec::new()
            }
        }
    }

    fn top_volumes(&mut self, e: &Entry) {
        let Some(vols) = self.mapping(&e.value, "volumes") else {
            return;
        };
        for v in vols {
            let p = join("volumes", &v.key);
            if v.key.starts_with("x-") {
                self.extension(v, &p);
                continue;
            }
            if let Some(opts) = self.mapping(&v.value, &p) {
                let text = |k: &str| {
                    opts.iter()
                        .find(|o| o.key == k)
                        .and_then(|o| match &o.value.kind {
                            Kind::Scalar(s) => Some(s.trim().to_owned()),
                            _ => None,
                        })
                };
                // The volume Compose would have used: `name`, or the key itself.
                let external_name = text("name").unwrap_or_else(|| v.key.clone());
                for o in opts {
                    let op = join(&p, &o.key);
                    let value = text(&o.key).unwrap_or_default();
                    match o.key.as_str() {
                        "external" if is_false(&value) => {}
                        "external" => self.mapped(
                            o.key_loc,
                            &op,
                            format!("Compose used the existing volume `{external_name}`; Orchestra creates a new, empty volume of its own for this project instead, so the data in `{external_name}` is not there (copy it in, or bind-mount a host directory)"),
                        ),
                        "name" => self.unsupported(
                            o.key_loc,
                            &op,
                            "a custom volume name is not supported: Orchestra names the project's volumes itself",
                        ),
                        // The default driver: what Orchestra uses.
                        "driver" if value == "local" => {}
                        "driver" => self.unsupported(
                            o.key_loc,
                            &op,
                            format!("volume driver `{value}` is not supported: the engine's default local volume is used"),
                        ),
                        "driver_opts" | "labels" => self.unsupported(
                            o.key_loc,
                            &op,
                            format!("volume `{}` is not supported: the engine's default local volume is used", o.key),
                        ),
                        _ => self.other_key(o, &op),
                    }
                }
            }
            self.declare_volume(&v.key);
        }
    }

    fn declare_volume(&mut self, name: &str) {
        if !self.volumes.iter().any(|n| n == name) {
            self.volumes.push(name.to_owned());
        }
    }

    fn top_secrets(&mut self, e: &Entry) {
        let Some(secrets) = self.mapping(&e.value, "secrets") else {
            return;
        };
        for s in secrets {
            let p = join("secrets", &s.key);
            if s.key.starts_with("x-") {
                self.extension(s, &p);
                continue;
            }
            let mut source = String::new();
            if let Some(opts) = self.mapping(&s.value, &p) {
                for o in opts {
                    let op = join(&p, &o.key);
                    let value = match &o.value.kind {
                        Kind::Scalar(v) => v.clone(),
                        _ => String::new(),
                    };
                    match o.key.as_str() {
                        "file" => source = format!("the file `{value}`"),
                        "environment" => source = format!("the variable `{value}`"),
                        "external" => source = "an external secret store".to_owned(),
                        "name" => self.mapped(
                            o.key_loc,
                            &op,
                            format!("the secret's platform name `{value}` is not used: Orchestra's secret store holds it as `{}`", env_name(&s.key)),
                        ),
                        _ => self.other_key(o, &op),
                    }
                }
            }
            let secret = env_name(&s.key);
            // --from-file keeps the file's bytes exactly (stdin loses one trailing newline).
            let how = match (
                source.strip_prefix("the file "),
                source.strip_prefix("the variable "),
            ) {
                (Some(f), _) => format!(
                    "`orchestra secrets set {secret} --from-file {}`",
                    f.trim_matches('`')
                ),
                (_, Some(v)) => format!(
                    "`printf %s \"${}\" | orchestra secrets set {secret}`",
                    v.trim_matches('`')
                ),
                _ => format!("`orchestra secrets set {secret}`"),
            };
            let from = if source.is_empty() {
                String::new()
            } else {
                format!(" Compose read its value from {source};")
            };
            self.mapped(
                s.key_loc,
                &p,
                format!("secret values are not declared in the manifest:{from} store it in Orchestra's secret store with {how}"),
            );
            self.secrets.push(s.key.clone());
        }
    }

    fn service(&mut self, entry: &Entry) -> Svc {
        let path = join("services", &entry.key);
        let mut svc = Svc {
            name: entry.key.clone(),
            ..Svc::default()
        };
        let entries: &[Entry] = self.mapping(&entry.value, &path).unwrap_or(&[]);
        let has = |k: &str| {
            entries
                .iter()
                .any(|e| e.key == k && e.value.kind != Kind::Null)
        };
        let has_build = has("build");
        let mut links: Vec<Dep> = Vec::new();
        for e in entries {
            let p = join(&path, &e.key);
            let v = &e.value;
            match e.key.as_str() {
                "image" => {
                    if let Some(s) = self.scalar(v, &p, "`image`") {
                        svc.image = Some((s.clone(), e.key_loc, p.clone()));
                        if has_build {
                            self.mapped(
                                e.key_loc,
                                &p,
                                format!("Compose builds `build` and tags the result `{s}`; Orchestra builds from `build` and names the image itself, so `image` is dropped"),
                            );
                        } else {
                            svc.fields.insert("image", Out::str(s));
                        }
                    }
                }
                "build" => self.build(&mut svc, v, &p),
                "command" | "entrypoint" => self.argv(&mut svc, e, &p),
                "environment" => {
                    let env = self.env(v, &p);
                    if !env.is_empty() {
                        svc.fields.insert("env", Out::Map(env, false));
                    }
                }
                "env_file" => self.env_file(&mut svc, v, &p),
                "ports" => self.ports(&mut svc, v, &p),
                "volumes" => self.volumes(&mut svc, v, &p),
                "tmpfs" => self.tmpfs(&mut svc, v, &p),
                "depends_on" => self.depends_on(&mut svc, v, &p),
                "healthcheck" => self.healthcheck(&mut svc, e, &p),
                "deploy" => self.deploy(&mut svc, v, &p),
                // As in Compose, `deploy.restart_policy` wins wherever it is written.
                "restart" if deploy_has(entries, "restart_policy") => self.mapped(
                    e.key_loc,
                    &p,
                    "`deploy.restart_policy` is set too and takes precedence, as in Compose; this value is not used",
                ),
                "restart" => self.restart(&mut svc, v, &p),
                "scale" => {
                    if has("deploy") && deploy_has(entries, "replicas") {
                        self.mapped(e.key_loc, &p, "`deploy.replicas` is used instead");
                    } else if let Some(o) = self.count(v, &p, 1) {
                        svc.fields.insert("replicas", o);
                    }
                }
                "profiles" => {
                    let list = self.strings(v, &p, "`profiles`");
                    if !list.is_empty() {
                        let items = list.into_iter().map(|(s, _, _)| Out::str(s)).collect();
                        svc.fields.insert("profiles", Out::flow_list(items));
                    }
                }
                "secrets" => self.service_secrets(&mut svc, v, &p),
                "stop_signal" => {
                    if let Some(sig) = self.scalar(v, &p, "`stop_signal`") {
                        if sig.contains('$') || normalize_signal(&sig).is_ok() {
                            svc.fields.insert("stop_signal", Out::str(sig));
                        } else {
                            self.unsupported(
                                v.loc,
                                &p,
                                format!("`{sig}` is not a signal Orchestra knows; SIGTERM is used"),
                            );
                        }
                    }
                }
                "stop_grace_period" => {
                    if let Some(o) = self.duration(v, &p) {
                        svc.fields.insert("stop_grace_period", o);
                    }
                }
                "user" => {
                    if let Some(s) = self.scalar(v, &p, "`user`") {
                        svc.fields.insert("user", Out::str(s));
                    }
                }
                "labels" => {
                    let labels = self.labels(v, &p);
                    if !labels.is_empty() {
                        svc.fields.insert("labels", Out::Map(labels, false));
                    }
                }
                "working_dir" => {
                    if let Some(s) = self.scalar(v, &p, "`working_dir`") {
                        svc.fields.insert("working_dir", Out::str(s));
                    }
                }
                "mem_limit" => {
                    if let Some(o) = self.memory(v, &p) {
                        svc.resources.push(("memory".into(), o, e.key_loc, p));
                    }
                }
                "cpus" => {
                    if let Some(o) = self.cpus(v, &p) {
                        svc.resources.push(("cpus".into(), o, e.key_loc, p));
                    }
                }
                "pids_limit" => {
                    if let Some(o) = self.pids(v, &p) {
                        svc.resources.push(("pids".into(), o, e.key_loc, p));
                    }
                }
                "gpus" => {
                    if let Some(o) = self.service_gpus(v, &p) {
                        svc.resources.push(("gpus".into(), o, e.key_loc, p));
                    }
                }
                "networks" => {
                    let aliases = network_aliases(v);
                    let extra = if aliases.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; the aliases {} are not kept, so refer to this service as `{}`",
                            aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
                            svc.name
                        )
                    };
                    self.mapped(e.key_loc, &p, format!("dropped: {PROJECT_NETWORK}{extra}"));
                }
                "container_name" => self.mapped(
                    e.key_loc,
                    &p,
                    "dropped: Orchestra names containers itself (one per replica and revision); other services reach this one by its service name",
                ),
                "expose" => self.mapped(
                    e.key_loc,
                    &p,
                    format!("dropped: {PROJECT_NETWORK}, and every port is reachable there"),
                ),
                "links" => {
                    for (link, loc, lp) in self.strings(v, &p, "a link") {
                        let target = link.split(':').next().unwrap_or_default().trim();
                        links.push(Dep {
                            service: target.to_owned(),
                            condition: "started",
                            loc,
                            path: lp,
                        });
                    }
                    self.mapped(
                        e.key_loc,
                        &p,
                        format!("dropped: {PROJECT_NETWORK}; link aliases are not kept, and the start order a link implies is kept in `depends_on`"),
                    );
                }
                // Orchestra always runs its containers with an init as PID 1 (Docker's
                // `--init`), so `init: true` is what happens anyway.
                "init" => {
                    if let Some(s) = self.scalar(v, &p, "`init`")
                        && is_false(&s)
                    {
                        self.mapped(
                            e.key_loc,
                            &p,
                            "Orchestra always runs an init process as PID 1 (Docker's `--init`), which forwards signals and reaps zombies; the service's own process does not run as PID 1",
                        );
                    }
                }
                k if k.starts_with("x-") => self.extension(e, &p),
                k => {
                    if let Some((_, why)) = SERVICE_UNSUPPORTED.iter().find(|(n, _)| *n == k) {
                        self.unsupported(e.key_loc, &p, *why);
                    } else if SERVICE_OTHER_KNOWN.contains(&k) {
                        self.unsupported(
                            e.key_loc,
                            &p,
                            format!("`{k}` is not supported and was not carried over"),
                        );
                    } else {
                        self.strict(
                            e.key_loc,
                            &p,
                            format!(
                                "unknown Compose key `{k}`; not carried over{}",
                                hint(k, SERVICE_KEYS)
                            ),
                        );
                    }
                }
            }
        }
        if svc.deps.is_empty() {
            svc.deps_short = true;
        }
        for l in links {
            if !svc.deps.iter().any(|d| d.service == l.service) {
                svc.deps.push(l);
            }
        }
        if !svc.fields.contains_key("image") && !svc.fields.contains_key("build") {
            let why = if has_build {
                "its `build` could not be carried over"
            } else {
                "it has neither `image` nor `build`"
            };
            self.unsupported(
                entry.key_loc,
                &path,
                format!("service `{}` is not imported: {why}", svc.name),
            );
            svc.skip = true;
            return svc;
        }
        if !has("restart") && !deploy_has(entries, "restart_policy") {
            // Compose does not restart by default; Orchestra's default is `on-failure`.
            svc.fields.insert("restart", Out::str("no"));
        }
        self.finish_resources(&mut svc);
        self.service_port(&mut svc, entries, &path);
        if let Some((loc, p)) = find_port_var(&entry.value, &path) {
            self.mapped(
                loc,
                &p,
                "`PORT` is reserved in Orchestra: it always reads as the replica's own port, never from the environment; rename the variable",
            );
        }
        svc
    }

    /// `port:` from what the app listens on: `environment.PORT`, else the one container
    /// port `ports` publishes. Orchestra sets `PORT` to the service's port, so the
    /// variable is dropped from `env` and stays what Compose gave the app.
    fn service_port(&mut self, svc: &mut Svc, entries: &[Entry], path: &str) {
        let env_node = entries.iter().find(|e| e.key == "environment");
        let from_env = match svc.fields.get_mut("env") {
            Some(Out::Map(env, _)) => env
                .iter()
                .position(|(k, _)| k == "PORT")
                .map(|i| env.remove(i).1),
            _ => None,
        };
        if matches!(svc.fields.get("env"), Some(Out::Map(env, _)) if env.is_empty()) {
            svc.fields.remove("env");
        }
        let published: Vec<u16> = match svc.fields.get("ports") {
            Some(Out::Seq(items, _)) => {
                let mut ports: Vec<u16> = items
                    .iter()
                    .filter_map(|o| match o {
                        Out::Str(spec) => parse_port_spec(spec).ok(),
                        _ => None,
                    })
                    .flatten()
                    .filter(|m| m.protocol == "tcp")
                    .map(|m| m.container_port)
                    .collect();
                ports.sort_unstable();
                ports.dedup();
                ports
            }
            _ => Vec::new(),
        };
        let ports_loc = entries
            .iter()
            .find(|e| e.key == "ports")
            .map(|e| (e.key_loc, join(path, "ports")));
        if let Some(value) = from_env {
            let (loc, p) = env_node
                .and_then(|e| env_entry_loc(e, "PORT", &join(path, "environment")))
                .unwrap_or((Location { line: 1, col: 1 }, join(path, "environment")));
            match value {
                Out::Str(v) if v.trim().parse::<u16>().is_ok_and(|n| n > 0) => {
                    let n = v.trim().to_owned();
                    self.mapped(
                        loc,
                        &p,
                        format!("becomes `port: {n}`: Orchestra sets PORT to the service's port, so the app still reads PORT={n} (and Orchestra probes and proxies that port)"),
                    );
                    if let (Some((ploc, pp)), [one]) = (&ports_loc, published.as_slice())
                        && one.to_string() != n
                    {
                        self.mapped(
                            *ploc,
                            pp,
                            format!("the published container port is {one}, but PORT is {n}: check which one the app listens on"),
                        );
                    }
                    svc.fields.insert("port", Out::Plain(n));
                }
                Out::Str(v) if v.contains('$') => {
                    self.mapped(
                        loc,
                        &p,
                        format!("becomes `port: \"{v}\"` (resolved when Orchestra loads the file): Orchestra sets PORT to the service's port, so the app still reads that value"),
                    );
                    svc.fields.insert("port", Out::Str(v));
                }
                Out::Null => self.unsupported(
                    loc,
                    &p,
                    "`PORT` is not taken from the host's environment: Orchestra sets PORT to the service's port (`port:`, else the image's one EXPOSEd port, else 8080); write `port:` if the app listens elsewhere",
                ),
                _ => self.unsupported(
                    loc,
                    &p,
                    "this `PORT` is not a port number and is not passed: Orchestra sets PORT to the service's port (`port:`, else the image's one EXPOSEd port, else 8080)",
                ),
            }
            return;
        }
        if let (Some((loc, p)), [one]) = (ports_loc, published.as_slice()) {
            self.mapped(
                loc,
                &p,
                format!("the one published container port {one} becomes `port: {one}`: inside the container PORT is {one}, the port Orchestra probes and proxies"),
            );
            svc.fields.insert("port", Out::Plain(one.to_string()));
        }
    }

    /// Service-level limits, unless `deploy.resources.limits` set the same.
    fn finish_resources(&mut self, svc: &mut Svc) {
        let set = std::mem::take(&mut svc.resources);
        if set.is_empty() {
            return;
        }
        let mut res = match svc.fields.remove("resources") {
            Some(Out::Map(entries, _)) => entries,
            _ => Vec::new(),
        };
        for (key, value, loc, p) in set {
            if res.iter().any(|(k, _)| *k == key) {
                self.mapped(
                    loc,
                    &p,
                    format!("`deploy.resources` also sets {key}; that value is used"),
                );
            } else {
                res.push((key, value));
            }
        }
        res.sort_by_key(|(k, _)| resource_rank(k));
        svc.fields.insert("resources", Out::Map(res, true));
    }

    fn build(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let context_check = |m: &mut Self, s: &str, loc: Location, p: &str| {
            if s.contains("://") || s.starts_with("git@") {
                m.unsupported(
                    loc,
                    p,
                    "a remote build context is not supported: Orchestra builds from a local directory",
                );
                false
            } else {
                true
            }
        };
        match &v.kind {
            Kind::Scalar(s) => {
                if context_check(self, s, v.loc, path) {
                    svc.fields.insert("build", Out::str(s));
                }
            }
            Kind::Map(entries) => {
                let mut out = Vec::new();
                for e in entries {
                    let p = join(path, &e.key);
                    match e.key.as_str() {
                        "context" => {
                            if let Some(s) = self.scalar(&e.value, &p, "`context`")
                                && context_check(self, &s, e.value.loc, &p)
                            {
                                out.push(("context".to_owned(), Out::str(s)));
                            }
                        }
                        "dockerfile" | "target" => {
                            if let Some(s) = self.scalar(&e.value, &p, &format!("`{}`", e.key)) {
                                out.push((e.key.clone(), Out::str(s)));
                            }
                        }
                        "args" => {
                            let args = self.env(&e.value, &p);
                            if !args.is_empty() {
                                out.push(("args".to_owned(), Out::Map(args, false)));
                            }
                        }
                        _ => self.other_key(e, &p),
                    }
                }
                let order = ["context", "dockerfile", "args", "target"];
                out.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
                // `build: ./dir` when only the context is left.
                let value = match out.as_slice() {
                    [(k, Out::Str(c))] if k == "context" => Out::str(c.clone()),
                    [] => Out::str("."),
                    _ => Out::Map(out, false),
                };
                svc.fields.insert("build", value);
            }
            _ => self.unsupported(
                v.loc,
                path,
                "`build` is not a string or a mapping; not carried over",
            ),
        }
    }

    fn argv(&mut self, svc: &mut Svc, e: &Entry, path: &str) {
        let field: &'static str = if e.key == "command" {
            "command"
        } else {
            "entrypoint"
        };
        let v = &e.value;
        let argv = match &v.kind {
            Kind::Null => return,
            Kind::Scalar(s) => match shell_split(s) {
                Ok(words) => {
                    if has_shell_syntax(s, &words) {
                        self.mapped(
                            v.loc,
                            path,
                            format!("split into words like Compose does, without a shell, so shell syntax such as `&&`, `|` or `>` is passed as plain arguments; if a shell was meant, write `{field}: [sh, -c, \"...\"]`"),
                        );
                    }
                    if s.contains('$') && !words.is_empty() {
                        // Compose splits after substituting variables (a value with spaces
                        // becomes several words); the manifest loader does the same with a
                        // string, so it stays one.
                        svc.fields.insert(field, Out::str(s.trim()));
                        return;
                    }
                    words
                }
                Err(err) => {
                    self.unsupported(
                        v.loc,
                        path,
                        format!("cannot split the {field}: {err}; not carried over"),
                    );
                    return;
                }
            },
            Kind::Seq(_) => self
                .strings(v, path, &format!("`{field}`"))
                .into_iter()
                .map(|(s, _, _)| s)
                .collect(),
            Kind::Map(_) => {
                self.unsupported(
                    v.loc,
                    path,
                    format!("`{field}` is a mapping; not carried over"),
                );
                return;
            }
        };
        if argv.is_empty() {
            self.unsupported(
                v.loc,
                path,
                format!("an empty `{field}` (clearing the image's {}) is not supported; the image's is used", if field == "command" { "CMD" } else { "ENTRYPOINT" }),
            );
            return;
        }
        svc.fields.insert(
            field,
            Out::flow_list(argv.into_iter().map(Out::Str).collect()),
        );
    }

    /// `environment` / `build.args`: a mapping, or a list of `K=V` / `K`.
    fn env(&mut self, v: &Node, path: &str) -> Vec<(String, Out)> {
        let mut out: Vec<(String, Out)> = Vec::new();
        let mut put = |m: &mut Self, key: String, value: Out, loc: Location, p: &str| {
            if let Out::Str(s) = &value
                && s.contains("/run/secrets/")
            {
                m.mapped(
                    loc,
                    p,
                    "points at a Compose secret file under /run/secrets; Orchestra passes secrets as environment variables named after the secret, not as files",
                );
            }
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => out.push((key, value)),
            }
        };
        match &v.kind {
            Kind::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    match &e.value.kind {
                        Kind::Scalar(s) => put(self, e.key.clone(), Out::str(s), e.value.loc, &p),
                        Kind::Null => put(self, e.key.clone(), Out::Null, e.key_loc, &p),
                        _ => self.unsupported(
                            e.value.loc,
                            &p,
                            format!(
                                "the value is {}, not a string; not carried over",
                                e.value.describe()
                            ),
                        ),
                    }
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    let Some(s) = self.scalar(item, &p, "an entry") else {
                        continue;
                    };
                    match s.split_once('=') {
                        Some((k, val)) => put(self, k.to_owned(), Out::str(val), item.loc, &p),
                        None => put(self, s, Out::Null, item.loc, &p),
                    }
                }
            }
            Kind::Null => {}
            Kind::Scalar(_) => {
                self.unsupported(v.loc, path, "not a mapping or a list; not carried over")
            }
        }
        out
    }

    fn labels(&mut self, v: &Node, path: &str) -> Vec<(String, Out)> {
        self.env(v, path)
            .into_iter()
            .map(|(k, v)| match v {
                Out::Null => (k, Out::str("")),
                v => (k, v),
            })
            .collect()
    }

    fn env_file(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let items: Vec<(&Node, String)> = match &v.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (n, format!("{path}[{i}]")))
                .collect(),
            Kind::Null => Vec::new(),
            _ => vec![(v, path.to_owned())],
        };
        let mut out = Vec::new();
        for (item, p) in items {
            match &item.kind {
                Kind::Scalar(s) => out.push(Out::str(s)),
                Kind::Map(entries) => {
                    let mut file = None;
                    let mut required = true;
                    for e in entries {
                        let ep = join(&p, &e.key);
                        match (e.key.as_str(), &e.value.kind) {
                            ("path", Kind::Scalar(s)) => file = Some(s.clone()),
                            ("required", Kind::Scalar(s)) => required = !is_false(s),
                            ("format", _) => self.unsupported(
                                e.key_loc,
                                &ep,
                                "env file formats other than KEY=VALUE lines are not supported",
                            ),
                            _ => self.other_key(e, &ep),
                        }
                    }
                    match file {
                        Some(f) if required => out.push(Out::str(f)),
                        Some(f) => out.push(Out::Map(
                            vec![
                                ("path".to_owned(), Out::str(f)),
                                ("required".to_owned(), Out::Plain("false".to_owned())),
                            ],
                            true,
                        )),
                        None => self.unsupported(
                            item.loc,
                            &p,
                            "an env file entry without `path`; not carried over",
                        ),
                    }
                }
                _ => self.unsupported(item.loc, &p, "not a path; not carried over"),
            }
        }
        if !out.is_empty() {
            svc.fields.insert("env_file", Out::flow_list(out));
        }
    }

    fn ports(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let Kind::Seq(items) = &v.kind else {
            if v.kind != Kind::Null {
                self.unsupported(v.loc, path, "`ports` is not a list; not carried over");
            }
            return;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let spec = match &item.kind {
                Kind::Scalar(s) => Some(s.trim().to_owned()),
                Kind::Map(entries) => self.long_port(entries, item.loc, &p),
                _ => {
                    self.unsupported(item.loc, &p, "not a port mapping; not carried over");
                    None
                }
            };
            let Some(spec) = spec else { continue };
            if !spec.contains('$')
                && let Err(e) = parse_port_spec(&spec)
            {
                self.unsupported(
                    item.loc,
                    &p,
                    format!("port mapping `{spec}` is not supported: {e}"),
                );
                continue;
            }
            out.push(Out::Str(spec));
        }
        if !out.is_empty() {
            svc.fields.insert("ports", Out::Seq(out, false));
        }
    }

    fn long_port(&mut self, entries: &[Entry], loc: Location, path: &str) -> Option<String> {
        let mut target = None;
        let mut published = None;
        let mut host_ip = None;
        let mut protocol = None;
        for e in entries {
            let p = join(path, &e.key);
            let text = match &e.value.kind {
                Kind::Scalar(s) => Some(s.trim().to_owned()),
                _ => None,
            };
            match e.key.as_str() {
                "target" => target = text,
                "published" => published = text,
                "host_ip" => host_ip = text,
                "protocol" => protocol = text,
                "mode" => {
                    if text.as_deref() != Some("host") {
                        self.unsupported(
                            e.key_loc,
                            &p,
                            "the swarm ingress mode is not supported: the port is published on this host",
                        );
                    }
                }
                "app_protocol" | "name" => self.unsupported(
                    e.key_loc,
                    &p,
                    format!("port `{}` (metadata) is not carried over", e.key),
                ),
                _ => self.other_key(e, &p),
            }
        }
        let Some(target) = target else {
            self.unsupported(loc, path, "a port without `target`; not carried over");
            return None;
        };
        let mut spec = String::new();
        match (host_ip, &published) {
            (Some(ip), _) => {
                if ip.contains(':') && !ip.contains('$') {
                    spec.push_str(&format!("[{ip}]:"));
                } else {
                    spec.push_str(&format!("{ip}:"));
                }
                spec.push_str(published.as_deref().unwrap_or(""));
                spec.push(':');
            }
            (None, Some(p)) => spec.push_str(&format!("{p}:")),
            (None, None) => {}
        }
        spec.push_str(&target);
        if let Some(proto) = protocol.filter(|p| p != "tcp") {
            spec.push_str(&format!("/{proto}"));
        }
        Some(spec)
    }

    fn volumes(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let Kind::Seq(items) = &v.kind else {
            if v.kind != Kind::Null {
                self.unsupported(v.loc, path, "`volumes` is not a list; not carried over");
            }
            return;
        };
        let mut out = match svc.fields.remove("volumes") {
            Some(Out::Seq(items, _)) => items,
            _ => Vec::new(),
        };
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let mount = match &item.kind {
                Kind::Scalar(s) => self.short_volume(s, item.loc, &p),
                Kind::Map(entries) => self.long_volume(entries, item.loc, &p),
                _ => {
                    self.unsupported(item.loc, &p, "not a mount; not carried over");
                    None
                }
            };
            out.extend(mount);
        }
        if !out.is_empty() {
            svc.fields.insert("volumes", Out::Seq(out, false));
        }
    }

    fn short_volume(&mut self, s: &str, loc: Location, path: &str) -> Option<Out> {
        let v = match parse_volume_short(s) {
            Ok(v) => v,
            Err(e) => {
                self.unsupported(loc, path, format!("mount `{s}` is not supported: {e}"));
                return None;
            }
        };
        let mut kept = Vec::new();
        for m in &v.modes {
            match *m {
                "ro" | "rw" => kept.push(*m),
                "z" | "Z" => self.unsupported(
                    loc,
                    path,
                    format!("SELinux relabeling (`{m}`) is not supported; the mode is dropped"),
                ),
                "cached" | "delegated" | "consistent" => self.mapped(
                    loc,
                    path,
                    format!("`{m}` (a Docker Desktop performance hint) has no effect here; dropped"),
                ),
                "nocopy" => self.unsupported(
                    loc,
                    path,
                    "`nocopy` is not supported: a new volume starts with the image's files at that path",
                ),
                other => self.unsupported(loc, path, format!("mount mode `{other}` is not supported; dropped")),
            }
        }
        if let Some(src) = v.source
            && !is_host_path(src)
            && !src.contains('$')
        {
            self.named_volume_used(src, loc, path);
        }
        let mut text = match v.source {
            Some(src) => format!("{src}:{}", v.target),
            None => v.target.to_owned(),
        };
        if !kept.is_empty() {
            text.push(':');
            text.push_str(&kept.join(","));
        }
        Some(Out::Str(text))
    }

    /// A named volume a service mounts: Compose requires it to be declared.
    fn named_volume_used(&mut self, name: &str, loc: Location, path: &str) {
        if !self.volumes.iter().any(|n| n == name) {
            self.mapped(
                loc,
                path,
                format!("volume `{name}` is not declared under top-level `volumes` (Compose would reject it); declared it"),
            );
            self.declare_volume(name);
        }
    }

    fn long_volume(&mut self, entries: &[Entry], loc: Location, path: &str) -> Option<Out> {
        let mut kind = None;
        let mut source = None;
        let mut target = None;
        let mut read_only = false;
        for e in entries {
            let p = join(path, &e.key);
            let text = match &e.value.kind {
                Kind::Scalar(s) => Some(s.clone()),
                _ => None,
            };
            match e.key.as_str() {
                "type" => kind = text,
                "source" => source = text,
                "target" => target = text,
                "read_only" => read_only = text.as_deref().is_some_and(|t| !is_false(t)),
                "consistency" => self.mapped(
                    e.key_loc,
                    &p,
                    "a Docker Desktop performance hint with no effect here; dropped",
                ),
                "bind" | "volume" | "tmpfs" => self.mount_options(e, &p),
                _ => self.other_key(e, &p),
            }
        }
        let kind = kind.unwrap_or_default();
        if !matches!(kind.as_str(), "volume" | "bind" | "tmpfs") {
            self.unsupported(
                loc,
                path,
                format!("mount type `{kind}` is not supported (only `volume`, `bind` and `tmpfs`); not carried over"),
            );
            return None;
        }
        let Some(target) = target else {
            self.unsupported(loc, path, "a mount without `target`; not carried over");
            return None;
        };
        if kind == "volume"
            && let Some(name) = &source
            && !name.contains('$')
        {
            self.named_volume_used(name, loc, path);
        }
        if kind == "bind" && source.is_none() {
            self.unsupported(loc, path, "a bind mount without `source`; not carried over");
            return None;
        }
        let mut out = vec![("type".to_owned(), Out::str(kind.clone()))];
        if let Some(s) = source.filter(|_| kind != "tmpfs") {
            out.push(("source".to_owned(), Out::str(s)));
        }
        out.push(("target".to_owned(), Out::str(target)));
        if read_only {
            out.push(("read_only".to_owned(), Out::Plain("true".to_owned())));
        }
        Some(Out::Map(out, true))
    }

    fn mount_options(&mut self, e: &Entry, path: &str) {
        let Some(opts) = self.mapping(&e.value, path) else {
            return;
        };
        for o in opts {
            let p = join(path, &o.key);
            let text = match &o.value.kind {
                Kind::Scalar(s) => s.as_str(),
                _ => "",
            };
            match (e.key.as_str(), o.key.as_str()) {
                ("bind", "create_host_path") if !is_false(text) => self.mapped(
                    o.key_loc,
                    &p,
                    "the host path must exist when the service starts (Compose created it)",
                ),
                ("bind", "create_host_path") => {}
                ("tmpfs", "size") => self.unsupported(o.key_loc, &p, "the tmpfs size is not limited"),
                ("tmpfs", "mode") => self.unsupported(o.key_loc, &p, "the tmpfs mode is not set"),
                ("volume", "nocopy") => self.unsupported(
                    o.key_loc,
                    &p,
                    "`nocopy` is not supported: a new volume starts with the image's files at that path",
                ),
                ("volume", "subpath") => self.unsupported(o.key_loc, &p, "mounting a volume subpath is not supported"),
                ("bind", "propagation" | "selinux") => self.unsupported(
                    o.key_loc,
                    &p,
                    format!("bind `{}` is not supported and was not carried over", o.key),
                ),
                _ => self.other_key(o, &p),
            }
        }
    }

    /// Service-level `tmpfs: /run` or `[/run, /tmp:size=64m]`.
    fn tmpfs(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let mut out = match svc.fields.remove("volumes") {
            Some(Out::Seq(items, _)) => items,
            _ => Vec::new(),
        };
        for (s, loc, p) in self.strings(v, path, "a tmpfs path") {
            let (target, opts) = s.split_once(':').unwrap_or((s.as_str(), ""));
            if !opts.is_empty() {
                self.unsupported(
                    loc,
                    &p,
                    format!("tmpfs options `{opts}` are not supported; dropped"),
                );
            }
            out.push(Out::Map(
                vec![
                    ("type".to_owned(), Out::str("tmpfs")),
                    ("target".to_owned(), Out::str(target)),
                ],
                true,
            ));
        }
        if !out.is_empty() {
            svc.fields.insert("volumes", Out::Seq(out, false));
        }
    }

    fn depends_on(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        match &v.kind {
            Kind::Seq(_) => {
                svc.deps_short = true;
                for (name, loc, p) in self.strings(v, path, "a dependency") {
                    svc.deps.push(Dep {
                        service: name,
                        condition: "started",
                        loc,
                        path: p,
                    });
                }
            }
            Kind::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    let mut condition = "started";
                    match &e.value.kind {
                        Kind::Map(opts) => {
                            for o in opts {
                                let op = join(&p, &o.key);
                                let text = match &o.value.kind {
                                    Kind::Scalar(s) => s.trim(),
                                    _ => "",
                                };
                                match o.key.as_str() {
                                    "condition" => match text {
                                        "service_started" => condition = "started",
                                        "service_healthy" => condition = "healthy",
                                        "service_completed_successfully" => condition = "completed",
                                        other => self.unsupported(
                                            o.value.loc,
                                            &op,
                                            format!("unknown condition `{other}`; `started` is used"),
                                        ),
                                    },
                                    "restart" if !is_false(text) => self.unsupported(
                                        o.key_loc,
                                        &op,
                                        format!("restarting this service when `{}` restarts is not supported", e.key),
                                    ),
                                    "required" if is_false(text) => self.unsupported(
                                        o.key_loc,
                                        &op,
                                        format!("optional dependencies are not supported: Orchestra starts `{}` and waits for it", e.key),
                                    ),
                                    "restart" | "required" => {}
                                    _ => self.other_key(o, &op),
                                }
                            }
                        }
                        Kind::Null => {}
                        Kind::Scalar(s) => {
                            self.unsupported(
                                e.value.loc,
                                &p,
                                format!("`{s}` is not a Compose dependency; `started` is used"),
                            );
                        }
                        Kind::Seq(_) => {
                            self.unsupported(e.value.loc, &p, "not a dependency; `started` is used")
                        }
                    }
                    svc.deps.push(Dep {
                        service: e.key.clone(),
                        condition,
                        loc: e.key_loc,
                        path: p,
                    });
                }
            }
            Kind::Null => {}
            Kind::Scalar(_) => self.unsupported(
                v.loc,
                path,
                "`depends_on` is not a list or a mapping; not carried over",
            ),
        }
    }

    fn healthcheck(&mut self, svc: &mut Svc, e: &Entry, path: &str) {
        let (v, key_loc) = (&e.value, e.key_loc);
        let Some(entries) = self.mapping(v, path) else {
            return;
        };
        let field = |k: &str| entries.iter().find(|e| e.key == k);
        if let Some(d) = field("disable")
            && let Kind::Scalar(s) = &d.value.kind
            && !is_false(s)
        {
            self.mapped(
                d.key_loc,
                &join(path, "disable"),
                "the healthcheck is disabled: the service counts as healthy once it runs",
            );
            return;
        }
        let exec: Vec<String> = match field("test") {
            None => {
                self.unsupported(
                    v.loc,
                    path,
                    "a healthcheck without `test` uses the image's HEALTHCHECK, which Orchestra does not read; no healthcheck",
                );
                return;
            }
            Some(t) => {
                let tp = join(path, "test");
                match &t.value.kind {
                    Kind::Scalar(s) => shell(s),
                    Kind::Seq(_) => {
                        let words: Vec<String> = self
                            .strings(&t.value, &tp, "a test word")
                            .into_iter()
                            .map(|(s, _, _)| s)
                            .collect();
                        match words.split_first() {
                            Some((first, rest)) if first == "CMD" && !rest.is_empty() => {
                                rest.to_vec()
                            }
                            Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
                                shell(&rest.join(" "))
                            }
                            Some((first, _)) if first == "NONE" => {
                                self.mapped(
                                    t.key_loc,
                                    &tp,
                                    "`NONE` disables the image's healthcheck: no healthcheck, so the service counts as healthy once it runs",
                                );
                                return;
                            }
                            _ => {
                                self.unsupported(
                                    t.value.loc,
                                    &tp,
                                    "a test must start with `CMD`, `CMD-SHELL` or `NONE` followed by the command; no healthcheck",
                                );
                                return;
                            }
                        }
                    }
                    _ => {
                        self.unsupported(t.value.loc, &tp, "not a command; no healthcheck");
                        return;
                    }
                }
            }
        };
        let mut out = vec![(
            "exec".to_owned(),
            Out::flow_list(exec.into_iter().map(Out::Str).collect()),
        )];
        // Docker's defaults, written out: Orchestra's own defaults differ.
        let mut timing: Vec<(&str, Out)> = vec![
            ("interval", Out::Plain("30s".into())),
            ("timeout", Out::Plain("30s".into())),
            ("retries", Out::Plain("3".into())),
            ("start_period", Out::Plain("0s".into())),
        ];
        for e in entries {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "test" | "disable" => {}
                "interval" | "timeout" | "start_period" => {
                    if let Some(o) = self.duration(&e.value, &p) {
                        let zero = matches!(&o, Out::Plain(s) if parse_duration(s).is_ok_and(|d| d.is_zero()));
                        if zero && e.key != "start_period" {
                            self.mapped(
                                e.key_loc,
                                &p,
                                "zero means Docker's default (30s); written as 30s",
                            );
                        } else if let Some(slot) = timing.iter_mut().find(|(k, _)| *k == e.key) {
                            slot.1 = o;
                        }
                    }
                }
                "retries" => {
                    if let Some(o) = self.count(&e.value, &p, 0) {
                        if o == Out::Plain("0".into()) {
                            self.mapped(
                                e.key_loc,
                                &p,
                                "zero means Docker's default (3); written as 3",
                            );
                        } else if let Some(slot) = timing.iter_mut().find(|(k, _)| *k == "retries")
                        {
                            slot.1 = o;
                        }
                    }
                }
                "start_interval" => self.mapped(
                    e.key_loc,
                    &p,
                    "dropped: Orchestra probes quickly during `start_period` on its own",
                ),
                _ => self.other_key(e, &p),
            }
        }
        out.extend(timing.into_iter().map(|(k, v)| (k.to_owned(), v)));
        // Compose reports health and never acts on it: no restart, and `up` waits only
        // where a dependent has `condition: service_healthy`.
        out.push(("on_failure".to_owned(), Out::Plain("none".into())));
        self.mapped(
            key_loc,
            path,
            "as in Compose, a failing check marks the service unhealthy and never restarts it (`on_failure: none`); `up` waits for it to be healthy only when a service depends on it with `condition: healthy`. Remove `on_failure: none` to have Orchestra restart it after `retries` failures",
        );
        svc.has_healthcheck = true;
        svc.fields.insert("healthcheck", Out::Map(out, false));
    }

    fn restart(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let Some(s) = self.scalar(v, path, "`restart`") else {
            return;
        };
        let s = s.trim();
        let out = match s {
            "no" | "always" | "on-failure" => Out::str(s),
            "unless-stopped" => {
                self.mapped(
                    v.loc,
                    path,
                    "`unless-stopped` becomes `always`: Orchestra has no separate policy for services stopped by hand",
                );
                Out::str("always")
            }
            // An unquoted `no` can come out of some YAML writers as `false`.
            "false" => Out::str("no"),
            _ if s.contains('$') => {
                self.mapped(
                    v.loc,
                    path,
                    "kept as written; Orchestra accepts `no`, `on-failure` and `always` (not `unless-stopped` or `on-failure:N`)",
                );
                Out::str(s)
            }
            _ => {
                match s.strip_prefix("on-failure:").map(str::trim) {
                    Some(n) if n.parse::<u32>().is_ok() => Out::Map(
                        vec![
                            ("policy".to_owned(), Out::str("on-failure")),
                            ("max_restarts".to_owned(), Out::Plain(n.to_owned())),
                        ],
                        true,
                    ),
                    _ => {
                        self.unsupported(
                        v.loc,
                        path,
                        format!("unknown restart policy `{s}`; Orchestra's default `on-failure` applies"),
                    );
                        return;
                    }
                }
            }
        };
        svc.fields.insert("restart", out);
    }

    fn deploy(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let Some(entries) = self.mapping(v, path) else {
            return;
        };
        for e in entries {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "replicas" => {
                    if let Some(o) = self.count(&e.value, &p, 0) {
                        if o == Out::Plain("0".into()) {
                            self.unsupported(
                                e.key_loc,
                                &p,
                                "zero replicas is not supported: Orchestra runs at least one (use `profiles` to leave a service out)",
                            );
                        } else {
                            svc.fields.insert("replicas", o);
                        }
                    }
                }
                "resources" => self.deploy_resources(svc, &e.value, &p),
                "restart_policy" => self.restart_policy(svc, &e.value, &p),
                "mode" => {
                    let text = match &e.value.kind {
                        Kind::Scalar(s) => s.as_str(),
                        _ => "",
                    };
                    if text != "replicated" {
                        self.unsupported(
                            e.key_loc,
                            &p,
                            format!("deploy mode `{text}` is not supported: the service runs `replicas` copies"),
                        );
                    }
                }
                "update_config" | "rollback_config" => self.mapped(
                    e.key_loc,
                    &p,
                    "dropped: Orchestra rolls out new versions with its own strategy (`deploy:` in orchestra.yaml: canary, blue-green or recreate)",
                ),
                "placement" | "endpoint_mode" | "labels" => self.unsupported(
                    e.key_loc,
                    &p,
                    format!("swarm `deploy.{}` is not supported and was not carried over", e.key),
                ),
                _ => self.other_key(e, &p),
            }
        }
    }

    fn deploy_resources(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let Some(entries) = self.mapping(v, path) else {
            return;
        };
        let mut res: Vec<(String, Out)> = Vec::new();
        for e in entries {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "limits" => {
                    let Some(limits) = self.mapping(&e.value, &p) else {
                        continue;
                    };
                    for l in limits {
                        let lp = join(&p, &l.key);
                        let value = match l.key.as_str() {
                            "cpus" => self.cpus(&l.value, &lp),
                            "memory" => self.memory(&l.value, &lp),
                            "pids" => self.pids(&l.value, &lp),
                            _ => {
                                self.other_key(l, &lp);
                                None
                            }
                        };
                        if let Some(o) = value {
                            res.push((l.key.clone(), o));
                        }
                    }
                }
                "reservations" => {
                    let Some(reservations) = self.mapping(&e.value, &p) else {
                        continue;
                    };
                    for r in reservations {
                        let rp = join(&p, &r.key);
                        match r.key.as_str() {
                            "devices" => {
                                if let Some(o) = self.devices(&r.value, &rp) {
                                    res.push(("gpus".to_owned(), o));
                                }
                            }
                            "cpus" | "memory" | "pids" => self.unsupported(
                                r.key_loc,
                                &rp,
                                "only limits are enforced; reservations are dropped",
                            ),
                            "generic_resources" => self.unsupported(
                                r.key_loc,
                                &rp,
                                "swarm generic resources are not supported",
                            ),
                            _ => self.other_key(r, &rp),
                        }
                    }
                }
                _ => self.other_key(e, &p),
            }
        }
        if !res.is_empty() {
            res.sort_by_key(|(k, _)| resource_rank(k));
            svc.fields.insert("resources", Out::Map(res, true));
        }
    }

    /// `reservations.devices`: GPU requests become a GPU count.
    fn devices(&mut self, v: &Node, path: &str) -> Option<Out> {
        let Kind::Seq(items) = &v.kind else {
            if v.kind != Kind::Null {
                self.invalid(v, path, "a list of device requests");
            }
            return None;
        };
        let mut total: Option<Out> = None;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            if let Some(o) = self.gpu_request(item, &p) {
                total = match (total, o) {
                    (None, o) => Some(o),
                    (Some(Out::Plain(a)), Out::Plain(b)) if a != "all" && b != "all" => {
                        let sum = a.parse::<u32>().unwrap_or(0) + b.parse::<u32>().unwrap_or(0);
                        Some(Out::Plain(sum.to_string()))
                    }
                    (Some(_), _) => {
                        self.mapped(item.loc, &p, "several GPU requests: all GPUs are requested");
                        Some(Out::Plain("all".to_owned()))
                    }
                };
            }
        }
        total
    }

    /// One device request (also the items of a service-level `gpus:` list).
    fn gpu_request(&mut self, item: &Node, path: &str) -> Option<Out> {
        let Kind::Map(fields) = &item.kind else {
            self.unsupported(item.loc, path, "not a device request; not carried over");
            return None;
        };
        let field = |k: &str| fields.iter().find(|e| e.key == k);
        let caps: Vec<String> = match field("capabilities").map(|e| &e.value.kind) {
            Some(Kind::Seq(c)) => c
                .iter()
                .filter_map(|n| match &n.kind {
                    Kind::Scalar(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        // A service-level `gpus:` entry is a GPU request without `capabilities`.
        let is_gpu = caps.iter().any(|c| c == "gpu") || (caps.is_empty() && path.contains(".gpus"));
        if !is_gpu {
            self.unsupported(
                item.loc,
                path,
                format!(
                    "device requests other than GPUs ({}) are not supported",
                    caps.join(", ")
                ),
            );
            return None;
        }
        // Without `count` (or `device_ids`) Compose reserves every GPU, as `count: all`.
        let mut count = Out::Plain("all".to_owned());
        for e in fields {
            let p = join(path, &e.key);
            let text = match &e.value.kind {
                Kind::Scalar(s) => s.trim().to_owned(),
                _ => String::new(),
            };
            match e.key.as_str() {
                "capabilities" => {
                    if caps.iter().any(|c| c != "gpu") {
                        self.mapped(
                            e.key_loc,
                            &p,
                            "only the `gpu` capability is requested (the NVIDIA runtime's defaults apply to the rest)",
                        );
                    }
                }
                "count" => {
                    count = if text == "all" {
                        Out::Plain("all".to_owned())
                    } else {
                        self.count(&e.value, &p, 1)?
                    };
                }
                "device_ids" => {
                    let ids = match &e.value.kind {
                        Kind::Seq(ids) => ids.len(),
                        _ => 1,
                    };
                    self.mapped(
                        e.key_loc,
                        &p,
                        format!("specific GPUs are not pinned: {ids} GPU(s) are requested, whichever are free"),
                    );
                    count = Out::Plain(ids.to_string());
                }
                "driver" if text == "nvidia" => {}
                "driver" => self.unsupported(
                    e.key_loc,
                    &p,
                    format!("GPU driver `{text}` is not supported: NVIDIA GPUs are requested"),
                ),
                "options" => self.unsupported(e.key_loc, &p, "driver options are not supported"),
                _ => self.other_key(e, &p),
            }
        }
        Some(count)
    }

    /// Service-level `gpus: all` or a list of device requests.
    fn service_gpus(&mut self, v: &Node, path: &str) -> Option<Out> {
        match &v.kind {
            Kind::Scalar(s) if s.trim() == "all" => Some(Out::Plain("all".to_owned())),
            Kind::Seq(_) => self.devices(v, path),
            _ => {
                self.unsupported(
                    v.loc,
                    path,
                    "`gpus` must be `all` or a list of device requests",
                );
                None
            }
        }
    }

    fn restart_policy(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        let Some(entries) = self.mapping(v, path) else {
            return;
        };
        let mut policy = "always";
        let mut out = Vec::new();
        for e in entries {
            let p = join(path, &e.key);
            let text = match &e.value.kind {
                Kind::Scalar(s) => s.trim().to_owned(),
                _ => String::new(),
            };
            match e.key.as_str() {
                "condition" => {
                    policy = match text.as_str() {
                        "none" => "no",
                        "on-failure" => "on-failure",
                        "any" => "always",
                        other => {
                            self.unsupported(e.value.loc, &p, format!("unknown condition `{other}`; `always` (Compose's default) is used"));
                            "always"
                        }
                    };
                }
                "max_attempts" => {
                    if let Some(o) = self.count(&e.value, &p, 0) {
                        out.push(("max_restarts".to_owned(), o));
                    }
                }
                "delay" => {
                    if let Some(o) = self.duration(&e.value, &p) {
                        if matches!(&o, Out::Plain(s) if parse_duration(s).is_ok_and(|d| d.is_zero()))
                        {
                            self.mapped(
                                e.key_loc,
                                &p,
                                "a zero delay is not kept: Orchestra waits its default backoff (500ms, doubling up to 30s) between restarts",
                            );
                        } else {
                            // `initial` = `max`: the same delay before every restart.
                            self.mapped(
                                e.key_loc,
                                &p,
                                "kept as a fixed delay between restarts (`backoff` with `initial` = `max`); Orchestra shortens each wait by up to 20% at random so replicas do not restart in step",
                            );
                            out.push((
                                "backoff".to_owned(),
                                Out::Map(
                                    vec![("initial".to_owned(), o.clone()), ("max".to_owned(), o)],
                                    true,
                                ),
                            ));
                        }
                    }
                }
                "window" => self.unsupported(
                    e.key_loc,
                    &p,
                    "the restart window is not supported: a restart counts as soon as the service starts again",
                ),
                _ => self.other_key(e, &p),
            }
        }
        out.insert(0, ("policy".to_owned(), Out::str(policy)));
        let value = if out.len() == 1 {
            Out::str(policy)
        } else {
            Out::Map(out, true)
        };
        svc.fields.insert("restart", value);
    }

    fn service_secrets(&mut self, svc: &mut Svc, v: &Node, path: &str) {
        const SECRET: &str = "a secret name or a mapping with `source`";
        let Kind::Seq(items) = &v.kind else {
            if v.kind != Kind::Null {
                self.invalid(v, path, &format!("a list, each item {SECRET}"));
            }
            return;
        };
        let mut names: Vec<Out> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let (name, target) = match &item.kind {
                Kind::Scalar(s) => (s.clone(), None),
                Kind::Map(entries) => {
                    let mut source = None;
                    let mut target = None;
                    for e in entries {
                        let ep = join(&p, &e.key);
                        let text = match &e.value.kind {
                            Kind::Scalar(s) => Some(s.clone()),
                            _ => None,
                        };
                        match e.key.as_str() {
                            "source" => source = text,
                            "target" => target = text,
                            "uid" | "gid" | "mode" => self.unsupported(
                                e.key_loc,
                                &ep,
                                format!("secret file `{}` does not apply: the secret is an environment variable", e.key),
                            ),
                            _ => self.other_key(e, &ep),
                        }
                    }
                    let Some(source) = source else {
                        self.unsupported(
                            item.loc,
                            &p,
                            "a secret without `source`; not carried over",
                        );
                        continue;
                    };
                    (source, target)
                }
                _ => {
                    self.invalid(item, &p, SECRET);
                    continue;
                }
            };
            let env = env_name(&name);
            let file = match &target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("/run/secrets/{t}"),
                None => format!("/run/secrets/{name}"),
            };
            let renamed = if env == name {
                String::new()
            } else {
                format!(" (renamed from `{name}`: secret names must be variable names)")
            };
            let from = if self.secrets.contains(&name) {
                String::new()
            } else {
                format!(
                    " (not declared under top-level `secrets`: store it with `orchestra secrets set {env}`)"
                )
            };
            self.mapped(
                item.loc,
                &p,
                format!("Compose mounted this secret as the file {file}; Orchestra gives it to the service as the environment variable `{env}` from its secret store{renamed}{from}"),
            );
            if !names.iter().any(|n| *n == Out::Str(env.clone())) {
                names.push(Out::Str(env));
            }
        }
        if !names.is_empty() {
            svc.fields.insert("secrets", Out::flow_list(names));
        }
    }

    /// A duration as written, if it reads as one (or is a `${...}` reference).
    fn duration(&mut self, v: &Node, path: &str) -> Option<Out> {
        let s = self.scalar(v, path, "a duration")?;
        let s = s.trim();
        if s.contains('$') {
            return Some(Out::str(s));
        }
        match parse_duration(s) {
            Ok(_) => Some(Out::Plain(s.to_owned())),
            Err(e) => {
                self.unsupported(
                    v.loc,
                    path,
                    format!("`{s}` is not a duration ({e}); not carried over"),
                );
                None
            }
        }
    }

    /// A whole number of at least `min`, as written.
    fn count(&mut self, v: &Node, path: &str, min: u32) -> Option<Out> {
        let s = self.scalar(v, path, "a number")?;
        let s = s.trim();
        if s.contains('$') {
            return Some(Out::str(s));
        }
        match s.parse::<u32>() {
            Ok(n) if n >= min => Some(Out::Plain(n.to_string())),
            _ => {
                self.unsupported(
                    v.loc,
                    path,
                    format!("`{s}` is not a whole number of at least {min}; not carried over"),
                );
                None
            }
        }
    }

    /// A process limit; `-1` is Compose's "unlimited", which is Orchestra's default.
    fn pids(&mut self, v: &Node, path: &str) -> Option<Out> {
        if matches!(&v.kind, Kind::Scalar(s) if s.trim() == "-1") {
            return None;
        }
        self.count(v, path, 1)
    }

    fn cpus(&mut self, v: &Node, path: &str) -> Option<Out> {
        let s = self.scalar(v, path, "a CPU count")?;
        let s = s.trim();
        if s.contains('$') {
            return Some(Out::str(s));
        }
        match s.parse::<f64>() {
            Ok(c) if c.is_finite() && c > 0.0 => Some(Out::Plain(s.to_owned())),
            Ok(_) => {
                self.mapped(v.loc, path, "a CPU limit of 0 means no limit; dropped");
                None
            }
            Err(_) => {
                self.unsupported(
                    v.loc,
                    path,
                    format!("`{s}` is not a number of CPUs; not carried over"),
                );
                None
            }
        }
    }

    fn memory(&mut self, v: &Node, path: &str) -> Option<Out> {
        let s = self.scalar(v, path, "a memory size")?;
        let s = s.trim();
        if s.contains('$') {
            return Some(Out::str(s));
        }
        match parse_memory(s) {
            Ok(_) => Some(Out::Plain(s.to_owned())),
            Err(e) => {
                self.unsupported(
                    v.loc,
                    path,
                    format!("`{s}` is not a memory size ({e}); not carried over"),
                );
                None
            }
        }
    }

    /// A service that runs the image another one builds (`image:` equal to the tag of a
    /// service with `build:`) builds it the same way: Orchestra names built images
    /// itself, so the tag would be pulled instead.
    fn share_builds(&mut self, svcs: &mut [Svc]) {
        let built: Vec<(String, String, Out)> = svcs
            .iter()
            .filter(|s| !s.skip)
            .filter_map(|s| {
                let build = s.fields.get("build")?;
                let (tag, _, _) = s.image.as_ref()?;
                Some((tag.clone(), s.name.clone(), build.clone()))
            })
            .collect();
        for s in svcs
            .iter_mut()
            .filter(|s| !s.skip && !s.fields.contains_key("build"))
        {
            let Some((tag, loc, p)) = &s.image else {
                continue;
            };
            if let Some((_, builder, build)) = refs::built_image(&built, tag) {
                self.mapped(
                    *loc,
                    p,
                    format!("`{tag}` is the image `{builder}` builds: Orchestra names built images itself, so this service gets the same `build` instead of pulling `{tag}`"),
                );
                s.fields.remove("image");
                s.fields.insert("build", build.clone());
            }
        }
    }

    /// Checks across services: dependencies on services that were not imported, and
    /// `healthy` on services without a healthcheck. Writes `depends_on`.
    fn cross_check(&mut self, svcs: &mut [Svc]) {
        let imported: BTreeMap<String, bool> = svcs
            .iter()
            .filter(|s| !s.skip)
            .map(|s| (s.name.clone(), s.has_healthcheck))
            .collect();
        let all: Vec<String> = svcs.iter().map(|s| s.name.clone()).collect();
        for s in svcs.iter_mut().filter(|s| !s.skip) {
            let mut kept = Vec::new();
            for d in std::mem::take(&mut s.deps) {
                match imported.get(&d.service) {
                    None if all.contains(&d.service) => {
                        self.strict(d.loc, &d.path, format!("`{}` was not imported, so this dependency is dropped", d.service));
                        continue;
                    }
                    None => {
                        self.strict(d.loc, &d.path, format!("there is no service `{}`; this dependency is dropped", d.service));
                        continue;
                    }
                    Some(false) if d.condition == "healthy" => self.mapped(
                        d.loc,
                        &d.path,
                        format!("`{}` has no healthcheck here (Compose would use its image's HEALTHCHECK, which Orchestra does not read), so it counts as healthy once it runs: add a `healthcheck` to `{}`", d.service, d.service),
                    ),
                    Some(_) => {}
                }
                kept.push(d);
            }
            if kept.is_empty() {
                continue;
            }
            let value = if s.deps_short && kept.iter().all(|d| d.condition == "started") {
                Out::flow_list(kept.iter().map(|d| Out::str(&d.service)).collect())
            } else {
                Out::Map(
                    kept.iter()
                        .map(|d| (d.service.clone(), Out::str(d.condition)))
                        .collect(),
                    false,
                )
            };
            s.fields.insert("depends_on", value);
        }
    }
}

fn resource_rank(key: &str) -> usize {
    ["cpus", "memory", "gpus", "pids"]
        .iter()
        .position(|k| *k == key)
        .unwrap_or(usize::MAX)
}

/// Whether `deploy.<key>` is set among a service's entries.
fn deploy_has(entries: &[Entry], key: &str) -> bool {
    entries.iter().any(|e| {
        e.key == "deploy"
            && matches!(&e.value.kind, Kind::Map(d) if d.iter().any(|x| x.key == key && x.value.kind != Kind::Null))
    })
}

fn is_false(s: &str) -> bool {
    matches!(s.trim(), "false" | "False" | "FALSE")
}

/// `[sh, -c, s]`: how Docker runs a `CMD-SHELL` test.
fn shell(s: &str) -> Vec<String> {
    vec!["sh".to_owned(), "-c".to_owned(), s.to_owned()]
}

/// Whether a `command`/`entrypoint` string has shell syntax that, split into words
/// without a shell, ends up as plain arguments: an operator outside quotes, or (when
/// the words do not run a shell's `-c` script) a `$(...)` or backquote substitution
/// outside single quotes. `sh -c "a && b"` has none: the shell gets the whole script.
fn has_shell_syntax(s: &str, words: &[String]) -> bool {
    let shell = runs_shell(words);
    let mut quote = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => {
                chars.next();
            }
            (None, '\'' | '"') => quote = Some(c),
            (None, '|' | ';' | '>' | '<') => return true,
            (None, '&') if chars.peek() == Some(&'&') => return true,
            (_, '`') if !shell => return true,
            (_, '$') if !shell && chars.peek() == Some(&'(') => return true,
            _ => {}
        }
    }
    false
}

/// Whether `words` run a shell's script: `sh -c SCRIPT`, `/bin/bash -ec SCRIPT`, ...
fn runs_shell(words: &[String]) -> bool {
    let [program, flag, _script, ..] = words else {
        return false;
    };
    let name = program.rsplit('/').next().unwrap_or_default();
    matches!(
        name,
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh"
    ) && flag.starts_with('-')
        && !flag.starts_with("--")
        && flag.contains('c')
}

/// A secret name as an environment variable name: other characters become `_`.
fn env_name(name: &str) -> String {
    if is_env_name(name) {
        return name.to_owned();
    }
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Where `environment` sets `key` (a mapping entry's value or a `KEY=VALUE` item).
fn env_entry_loc(e: &Entry, key: &str, path: &str) -> Option<(Location, String)> {
    match &e.value.kind {
        Kind::Map(entries) => entries.iter().find(|x| x.key == key).map(|x| {
            let loc = if x.value.kind == Kind::Null {
                x.key_loc
            } else {
                x.value.loc
            };
            (loc, join(path, key))
        }),
        Kind::Seq(items) => items.iter().enumerate().find_map(|(i, n)| match &n.kind {
            Kind::Scalar(s) if s == key || s.starts_with(&format!("{key}=")) => {
                Some((n.loc, format!("{path}[{i}]")))
            }
            _ => None,
        }),
        _ => None,
    }
}

/// Aliases declared under a service's long-form `networks`.
fn network_aliases(v: &Node) -> Vec<String> {
    let Kind::Map(nets) = &v.kind else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in nets {
        if let Kind::Map(opts) = &n.value.kind
            && let Some(a) = opts.iter().find(|o| o.key == "aliases")
            && let Kind::Seq(items) = &a.value.kind
        {
            for item in items {
                if let Kind::Scalar(s) = &item.kind {
                    out.push(s.clone());
                }
            }
        }
    }
    out
}

/// The first scalar that reads the variable `PORT` (`$PORT`, `${PORT}`, `${PORT:-x}`).
fn find_port_var(node: &Node, path: &str) -> Option<(Location, String)> {
    match &node.kind {
        Kind::Scalar(s) => reads_port(s).then(|| (node.loc, path.to_owned())),
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_port_var(item, &format!("{path}[{i}]"))),
        Kind::Map(entries) => entries
            .iter()
            .find_map(|e| find_port_var(&e.value, &join(path, &e.key))),
        Kind::Null => None,
    }
}

fn reads_port(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            let rest = &s[i + 1..];
            let name = rest.strip_prefix('{').unwrap_or(rest);
            if let Some(after) = name.strip_prefix("PORT")
                && !after
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Top-level keys of the Compose specification.
const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include", "models",
];

/// Service keys of the Compose specification: a key near one of them is a typo.
const SERVICE_KEYS: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Keys of the mappings nested in a service (build, healthcheck, deploy, ports,
/// volumes, depends_on...): a key near one of them is a typo.
const NESTED_KEYS: &[&str] = &[
    "additional_contexts",
    "aliases",
    "args",
    "bind",
    "cache_from",
    "cache_to",
    "condition",
    "consistency",
    "context",
    "cpus",
    "create_host_path",
    "devices",
    "disable",
    "dockerfile",
    "dockerfile_inline",
    "driver",
    "driver_opts",
    "endpoint_mode",
    "external",
    "file",
    "format",
    "gid",
    "host_ip",
    "interval",
    "labels",
    "limits",
    "max_attempts",
    "memory",
    "mode",
    "name",
    "network",
    "no_cache",
    "nocopy",
    "options",
    "path",
    "pids",
    "placement",
    "propagation",
    "protocol",
    "published",
    "read_only",
    "replicas",
    "required",
    "reservations",
    "resources",
    "restart",
    "restart_policy",
    "retries",
    "rollback_config",
    "secrets",
    "selinux",
    "shm_size",
    "size",
    "source",
    "start_interval",
    "start_period",
    "subpath",
    "tags",
    "target",
    "test",
    "timeout",
    "tmpfs",
    "uid",
    "update_config",
    "volume",
    "window",
    "capabilities",
    "count",
    "device_ids",
    "delay",
    "app_protocol",
    "environment",
    "platforms",
    "extra_hosts",
    "isolation",
    "privileged",
    "ssh",
    "ulimits",
    "entitlements",
    "pull",
    "mode_options",
    "max_replicas_per_node",
    "constraints",
    "preferences",
    "parallelism",
    "failure_action",
    "monitor",
    "max_failure_ratio",
    "order",
    "generic_resources",
    "discrete_resource_spec",
    "kind",
    "value",
    "ipv4_address",
    "ipv6_address",
    "link_local_ips",
    "priority",
    "mac_address",
    "gw_priority",
    "interface_name",
    "content",
    "annotations",
];

/// `" (did you mean `environment`?)"` for a typo of a known key, else nothing.
fn hint(key: &str, known: &[&str]) -> String {
    crate::suggest::did_you_mean(key, known.iter().copied())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}
