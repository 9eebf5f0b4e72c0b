//! A Compose file: what Docker Compose runs of the manifest's containers, written so that
//! `orchestra import` reads it back to the same definitions.

use std::path::Path;

use orchestra_manifest::{
    Check, Condition, Manifest, Resources, Restart, Service, VolumeKind, Workload,
};
use serde_json::{Map, Value, json};

use crate::common::{duration_text, header, not_a_container};
use crate::report::{Outcome, Reporter};
use crate::{Export, ExportError, Options, OutputFile, Schema, Target};

/// The file name an export writes by default.
pub const FILE_NAME: &str = "compose.yaml";

/// Renders `m` as one Compose file.
///
/// # Errors
/// None today; the signature matches the other targets.
pub fn render(m: &Manifest, _opts: &Options) -> Result<Export, ExportError> {
    let mut r = Reporter::new(m);
    let mut services = Vec::new();
    let mut secrets = Map::new();
    for svc in &m.services {
        if matches!(
            svc.workload,
            Workload::Process { .. } | Workload::Static { .. }
        ) {
            r.impossible(svc, "", not_a_container(svc));
            r.finish_service(svc, "not rendered: the service is not a container");
            continue;
        }
        let out = service(&mut r, m, svc, &mut secrets);
        r.finish_service(svc, "Compose has no equivalent");
        services.push((svc.name.clone(), Value::Object(out)));
    }
    r.top("name", Outcome::Mapped, "the Compose project `name`");
    r.top("volumes", Outcome::Mapped, "top-level `volumes`");
    r.top("profiles", Outcome::Impossible, "Compose profiles are named on each service (`profiles:`); a top-level list has no equivalent: add the profile to each service it names");
    r.top(
        "health",
        Outcome::Impossible,
        "Compose has no aggregate health threshold",
    );
    r.top(
        "admin",
        Outcome::Impossible,
        "Compose serves no /health or /ready of its own",
    );
    r.top(
        "proxy",
        Outcome::Impossible,
        "Compose has no proxy: publish ports or run a reverse proxy service",
    );
    let mut doc = Map::new();
    doc.insert("name".into(), json!(m.name));
    let has_services = !services.is_empty();
    doc.insert("services".into(), crate::yaml::ordered(services));
    if !m.volumes.is_empty() {
        let vols: Map<String, Value> = m.volumes.iter().map(|v| (v.clone(), json!({}))).collect();
        doc.insert("volumes".into(), Value::Object(vols));
    }
    if !secrets.is_empty() {
        doc.insert("secrets".into(), Value::Object(secrets));
    }
    let mut doc = Value::Object(doc);
    escape_dollars(&mut doc);
    let files = if has_services {
        vec![OutputFile {
            path: FILE_NAME.to_owned(),
            contents: format!("{}{}", header("compose", m), crate::yaml::to_document(&doc)),
            schema: Schema::Compose,
            sensitive: false,
        }]
    } else {
        Vec::new()
    };
    Ok(Export {
        files,
        report: r.finish(Target::Compose),
    })
}

fn service(
    r: &mut Reporter<'_>,
    m: &Manifest,
    svc: &Service,
    secrets: &mut Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let (command, entrypoint) = match &svc.workload {
        Workload::Image {
            image,
            command,
            entrypoint,
        } => {
            out.insert("image".into(), json!(image));
            r.mapped(svc, "image", "`image`");
            (command, entrypoint)
        }
        Workload::Build {
            build,
            command,
            entrypoint,
        } => {
            let mut b = Map::new();
            b.insert("context".into(), json!(relative(&m.dir, &build.context)));
            if let Some(d) = &build.dockerfile {
                b.insert("dockerfile".into(), json!(d.display().to_string()));
            }
            if !build.args.is_empty() {
                b.insert("args".into(), json!(build.args));
            }
            if let Some(t) = &build.target {
                b.insert("target".into(), json!(t));
            }
            out.insert("build".into(), Value::Object(b));
            r.mapped(svc, "build", "`build`");
            (command, entrypoint)
        }
        Workload::Process { .. } | Workload::Static { .. } => return out,
    };
    if let Some(c) = command {
        out.insert("command".into(), json!(c));
        r.mapped(svc, "command", "`command`");
    }
    if let Some(e) = entrypoint {
        out.insert("entrypoint".into(), json!(e));
        r.mapped(svc, "entrypoint", "`entrypoint`");
    }
    let uses_port = command
        .iter()
        .chain(entrypoint)
        .flatten()
        .any(|a| a.contains("${PORT}"))
        || svc.env.values().any(|v| v.contains("${PORT}"));
    if uses_port {
        r.approx(svc, if command.is_some() { "command" } else { "" }, "Docker Compose reads `${PORT}` from the environment or .env (set PORT); Orchestra fills it with the replica's port");
    }
    if let Some(p) = svc.port {
        out.insert("expose".into(), json!([p.to_string()]));
        r.approx(svc, "port", format!("`expose: [\"{p}\"]`: other containers reach the service on {p}; Compose has no stable port behind a proxy (and `orchestra import` drops `expose`)"));
    }
    let inline: Map<String, Value> = svc
        .env
        .iter()
        .filter(|(k, _)| !svc.env_file_vars.contains(*k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if !inline.is_empty() {
        out.insert("environment".into(), Value::Object(inline));
        r.mapped(svc, "env", "`environment`");
    }
    if !svc.env_files.is_empty() {
        let files: Vec<Value> = svc
            .env_files
            .iter()
            .map(|p| {
                if svc.optional_env_files.contains(p) {
                    json!({ "path": relative(&m.dir, p), "required": false })
                } else {
                    json!(relative(&m.dir, p))
                }
            })
            .collect();
        out.insert("env_file".into(), Value::Array(files));
        r.mapped(svc, "env_file", "`env_file`");
    }
    if let Some(wd) = &svc.working_dir {
        out.insert("working_dir".into(), json!(wd.display().to_string()));
        r.mapped(svc, "working_dir", "`working_dir`");
    }
    if !svc.depends_on.is_empty() {
        let deps = crate::yaml::ordered(svc.depends_on.iter().map(|d| {
            let c = match d.condition {
                Condition::Started => "service_started",
                Condition::Healthy => "service_healthy",
                Condition::Completed => "service_completed_successfully",
            };
            (d.service.clone(), json!({ "condition": c }))
        }));
        out.insert("depends_on".into(), deps);
        r.mapped(svc, "depends_on", "`depends_on` with the same conditions");
    }
    if let Some(h) = &svc.healthcheck {
        let test = match &h.check {
            Check::Exec { command } => match command.as_slice() {
                [sh, c, script] if sh == "sh" && c == "-c" => json!(["CMD-SHELL", script]),
                _ => {
                    let mut t = vec![json!("CMD")];
                    t.extend(command.iter().map(|a| json!(a)));
                    Value::Array(t)
                }
            },
            Check::Http { path, port } => {
                let p = port
                    .or(svc.port)
                    .map_or_else(|| "${PORT}".to_owned(), |p| p.to_string());
                r.approx(svc, "healthcheck", format!("Compose has no HTTP probe: the test runs `wget -q --spider http://localhost:{p}{path}` in the container, which needs wget in the image (imported back it is an exec probe)"));
                json!([
                    "CMD-SHELL",
                    format!("wget -q --spider http://localhost:{p}{path} || exit 1")
                ])
            }
            Check::Tcp { port } => {
                let p = port
                    .or(svc.port)
                    .map_or_else(|| "${PORT}".to_owned(), |p| p.to_string());
                r.approx(svc, "healthcheck", format!("Compose has no TCP probe: the test runs `nc -z localhost {p}` in the container, which needs nc in the image (imported back it is an exec probe)"));
                json!(["CMD-SHELL", format!("nc -z localhost {p} || exit 1")])
            }
        };
        if matches!(h.check, Check::Exec { .. }) {
            r.mapped(
                svc,
                "healthcheck",
                "`healthcheck` (test, interval, timeout, retries, start_period)",
            );
        }
        out.insert(
            "healthcheck".into(),
            json!({
                "test": test,
                "interval": duration_text(h.interval),
                "timeout": duration_text(h.timeout),
                "retries": h.retries,
                "start_period": duration_text(h.start_period),
            }),
        );
    }
    if svc.readiness.is_some() {
        r.impossible(
            svc,
            "readiness",
            "Compose has one healthcheck: `service_healthy` dependents wait for it alone",
        );
    }
    let restart = match (svc.restart.policy, svc.restart.max_restarts) {
        (Restart::No, _) => "no".to_owned(),
        (Restart::Always, _) => "always".to_owned(),
        (Restart::OnFailure, Some(n)) => format!("on-failure:{n}"),
        (Restart::OnFailure, None) => "on-failure".to_owned(),
    };
    out.insert("restart".into(), json!(restart));
    r.mapped(svc, "restart.policy", format!("`restart: {restart}`"));
    r.mapped(svc, "restart.max_restarts", format!("`restart: {restart}`"));
    if !svc.field_locations.contains_key("restart.policy") {
        r.mapped(svc, "restart", format!("`restart: {restart}`"));
    }
    r.service_if_written(
        svc,
        "restart.backoff",
        Outcome::Impossible,
        "the Engine's own restart delay applies (100 ms doubling, reset after 10 s up)",
    );

    let mut deploy = Map::new();
    if svc.replicas != 1 {
        deploy.insert("replicas".into(), json!(svc.replicas));
    }
    r.mapped(svc, "replicas", "`deploy.replicas`");
    let Resources {
        cpus,
        memory,
        gpus,
        pids,
    } = svc.resources;
    let mut limits = Map::new();
    if let Some(c) = cpus {
        limits.insert("cpus".into(), json!(cpus_text(c)));
    }
    if let Some(b) = memory {
        limits.insert("memory".into(), json!(memory_text(b)));
    }
    if let Some(p) = pids {
        limits.insert("pids".into(), json!(p));
    }
    let mut resources = Map::new();
    if !limits.is_empty() {
        resources.insert("limits".into(), Value::Object(limits));
    }
    if let Some(g) = gpus {
        let count = if g == Resources::ALL_GPUS {
            json!("all")
        } else {
            json!(g)
        };
        resources.insert(
            "reservations".into(),
            json!({ "devices": [{ "driver": "nvidia", "count": count, "capabilities": ["gpu"] }] }),
        );
    }
    if !resources.is_empty() {
        deploy.insert("resources".into(), Value::Object(resources));
    }
    r.mapped(
        svc,
        "resources",
        "`deploy.resources` (limits; GPUs as an nvidia device reservation)",
    );
    if !deploy.is_empty() {
        out.insert("deploy".into(), Value::Object(deploy));
    }
    if svc.stop_signal != "SIGTERM" || svc.field_locations.contains_key("stop_signal") {
        out.insert("stop_signal".into(), json!(svc.stop_signal));
        r.mapped(svc, "stop_signal", "`stop_signal`");
    }
    out.insert(
        "stop_grace_period".into(),
        json!(duration_text(svc.stop_grace_period)),
    );
    r.mapped(svc, "stop_grace_period", "`stop_grace_period`");
    if !svc.profiles.is_empty() {
        out.insert("profiles".into(), json!(svc.profiles));
        r.mapped(svc, "profiles", "`profiles`");
    }
    if !svc.ports.is_empty() {
        let ports: Vec<Value> = svc
            .ports
            .iter()
            .map(|p| {
                let mut s = String::new();
                if let Some(ip) = &p.host_ip {
                    if ip.contains(':') {
                        s.push_str(&format!("[{ip}]:"));
                    } else {
                        s.push_str(&format!("{ip}:"));
                    }
                }
                if let Some(h) = p.host_port {
                    s.push_str(&format!("{h}:"));
                } else if p.host_ip.is_some() {
                    s.push(':');
                }
                s.push_str(&p.container_port.to_string());
                if p.protocol != "tcp" {
                    s.push_str(&format!("/{}", p.protocol));
                }
                json!(s)
            })
            .collect();
        out.insert("ports".into(), Value::Array(ports));
        r.mapped(svc, "ports", "`ports`");
    }
    let mut volumes = Vec::new();
    for v in &svc.volumes {
        let ro = if v.read_only { ":ro" } else { "" };
        match (v.kind, &v.source) {
            (VolumeKind::Named, Some(n)) => volumes.push(json!(format!("{n}:{}{ro}", v.target))),
            (VolumeKind::Named, None) => volumes.push(json!(v.target)),
            (VolumeKind::Bind, Some(src)) => {
                volumes.push(json!(format!(
                    "{}:{}{ro}",
                    relative(&m.dir, Path::new(src)),
                    v.target
                )));
            }
            (VolumeKind::Bind, None) => {}
            // The long form keeps the mounts in their order.
            (VolumeKind::Tmpfs, _) => volumes.push(json!({ "type": "tmpfs", "target": v.target })),
        }
    }
    if !volumes.is_empty() {
        out.insert("volumes".into(), Value::Array(volumes));
    }
    r.mapped(svc, "volumes", "`volumes`");
    if !svc.secrets.is_empty() {
        out.insert("secrets".into(), json!(svc.secrets));
        for (i, s) in svc.secrets.iter().enumerate() {
            secrets.insert(s.clone(), json!({ "environment": s }));
            let field = format!("secrets[{i}]");
            if svc.secret_options.contains_key(s) {
                r.approx(svc, &field, format!("Compose mounts the secret as the file /run/secrets/{s}, from the variable {s} of the environment that runs `docker compose`; `as`, `target` and `version` have no equivalent"));
            } else {
                r.approx(svc, &field, format!("Compose mounts the secret as the file /run/secrets/{s}, from the variable {s} of the environment that runs `docker compose`, not from Orchestra's store"));
            }
        }
    }
    if let Some(u) = &svc.user {
        out.insert("user".into(), json!(u));
        r.mapped(svc, "user", "`user`");
    }
    if !svc.labels.is_empty() {
        out.insert("labels".into(), json!(svc.labels));
        r.mapped(svc, "labels", "`labels`");
    }
    if svc.route.is_some() {
        r.impossible(svc, "route", "Compose has no proxy: publish the port (`ports:`) or run a reverse proxy service in front");
    }
    if svc.field_locations.contains_key("deploy") {
        r.impossible(
            svc,
            "deploy",
            "Compose replaces containers in place: no blue-green, canary, verification or hooks",
        );
    }
    out
}

/// A path under the manifest directory as `./rel`, else as it is.
fn relative(dir: &Path, p: &Path) -> String {
    match p.strip_prefix(dir) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => format!("./{}", rel.display()),
        Err(_) => p.display().to_string(),
    }
}

fn cpus_text(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{c:.0}")
    } else {
        format!("{c}")
    }
}

/// Bytes in Compose's units (binary): `64m`, `2g`.
fn memory_text(b: u64) -> String {
    for (unit, size) in [
        ("t", 1u64 << 40),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
    ] {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}b")
}

/// Compose interpolates `$` in every value: the manifest's values are already
/// interpolated, so a literal `$` is written `$$`. `${PORT}` stays a reference.
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => {
            *s = s.replace('$', "$$").replace("$${PORT}", "${PORT}");
        }
        Value::Array(items) => items.iter_mut().for_each(escape_dollars),
        Value::Object(map) => map.values_mut().for_each(escape_dollars),
        _ => {}
    }
}
