//! Cloud Run: a Knative `serving.knative.dev/v1` Service per routed container service,
//! in the form `gcloud run services replace FILE` takes.

use orchestra_manifest::{Check, Manifest, Probe, Resources, Service, Strategy};
use serde_json::{Map, Value, json};

use crate::common::{
    container, container_port, cpu_quantity, credential, dns_label, header, memory_quantity,
    not_a_container, secret_file, secs, subst_port,
};
use crate::report::{Outcome, Reporter};
use crate::{Export, ExportError, Options, OutputFile, Schema, Target};

/// The accelerator a GPU service asks for (the one Cloud Run offers).
pub const ACCELERATOR: &str = "nvidia-l4";
/// Requests one instance serves at once (Cloud Run's default).
pub const CONCURRENCY: u32 = 80;
/// Seconds a request may take (Cloud Run's default).
pub const TIMEOUT_SECONDS: u32 = 300;

/// Renders `m` for Cloud Run.
///
/// # Errors
/// [`ExportError::MissingSecret`] when a referenced secret is not in `opts.secrets`.
pub fn render(m: &Manifest, opts: &Options) -> Result<Export, ExportError> {
    let mut r = Reporter::new(m);
    let mut files = Vec::new();
    for svc in &m.services {
        let Some(c) = container(&m.name, svc) else {
            r.impossible(svc, "", not_a_container(svc));
            r.finish_service(svc, "not rendered: the service is not a container");
            continue;
        };
        if svc.route.is_none() {
            r.impossible(
                svc,
                "",
                "Cloud Run services answer HTTP requests and this one has no `route:`: run it as a Cloud Run job (a one-shot) or worker pool (a background worker)",
            );
            r.finish_service(svc, "not rendered: the service has no route");
            continue;
        }
        let doc = service(&mut r, m, svc, &c, opts)?;
        r.finish_service(svc, "Cloud Run has no equivalent");
        files.push(OutputFile {
            path: format!("{}.yaml", dns_label(&svc.name)),
            contents: format!(
                "{}{}",
                header("cloudrun", m),
                crate::yaml::to_documents(&[doc])
            ),
            schema: Schema::Knative,
            sensitive: false,
        });
    }
    r.top(
        "name",
        Outcome::Mapped,
        "the `app.kubernetes.io/part-of` label of each service",
    );
    r.top("volumes", Outcome::Impossible, "Cloud Run instances have no persistent volumes: use Cloud Storage (a gcsfuse volume) or a database");
    r.top(
        "profiles",
        Outcome::Impossible,
        "every routed container service is rendered; deploy the files you want",
    );
    r.top(
        "health",
        Outcome::Impossible,
        "Cloud Run has no aggregate health threshold",
    );
    r.top(
        "admin",
        Outcome::Impossible,
        "there is no Orchestra daemon: each service's probes take the place of /health and /ready",
    );
    r.top("proxy", Outcome::Impossible, "each Cloud Run service has its own HTTPS URL; path routing across services needs a load balancer with a URL map");
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Export {
        files,
        report: r.finish(Target::Cloudrun),
    })
}

fn service(
    r: &mut Reporter<'_>,
    m: &Manifest,
    svc: &Service,
    c: &crate::common::Container<'_>,
    opts: &Options,
) -> Result<Value, ExportError> {
    let name = dns_label(&svc.name);
    let port = container_port(svc);
    let revision = format!("{name}-{}", svc.revision());
    let mut cont = Map::new();
    cont.insert("image".into(), json!(c.image));
    if c.built {
        r.approx(svc, "build", format!("the image is `{}`, the tag `orchestra up` builds: push it to Artifact Registry and set `image:` to that reference", c.image));
    } else {
        r.mapped(svc, "image", "container image");
    }
    if let Some(ep) = c.entrypoint {
        cont.insert("command".into(), argv(ep, port));
        r.mapped(svc, "entrypoint", "container `command`");
    }
    if let Some(cmd) = c.command {
        cont.insert("args".into(), argv(cmd, port));
        r.mapped(svc, "command", "container `args`");
    }
    cont.insert(
        "ports".into(),
        json!([{ "name": "http1", "containerPort": port }]),
    );
    r.mapped(
        svc,
        "port",
        format!("containerPort {port} (Cloud Run sets PORT to it)"),
    );
    r.mapped(
        svc,
        "route",
        "the service's own URL: Cloud Run routes every path of it to the container",
    );
    if svc.route.as_ref().is_some_and(|rt| rt.path != "/") {
        r.approx(svc, "route.path", "the service answers at the root of its own URL: a path prefix across services needs a load balancer URL map");
    }
    for f in [
        "route.strip_prefix",
        "route.sticky",
        "route.balance",
        "route.host",
    ] {
        r.service_if_written(svc, f, Outcome::Impossible, "Cloud Run routes requests itself: configure it on a load balancer (or a domain mapping for `host`)");
    }
    if let Some(wd) = &svc.working_dir {
        cont.insert("workingDir".into(), json!(wd.display().to_string()));
        r.mapped(svc, "working_dir", "container `workingDir`");
    }

    let mut env = Vec::new();
    for (k, v) in &svc.env {
        if svc.secrets.contains(k) || k == "PORT" {
            continue;
        }
        let field = if svc.env_file_vars.contains(k) {
            "env_file".to_owned()
        } else {
            format!("env.{k}")
        };
        let v = subst_port(v, port);
        if credential(k, &v) {
            let secret = dns_label(&format!("{}-{k}", svc.name));
            env.push(json!({ "name": k, "valueFrom": { "secretKeyRef": { "name": secret, "key": "latest" } } }));
            r.approx(svc, &field, format!("`{k}` looks like a credential: it is read from the Secret Manager secret `{secret}` (latest version), which you create; the value is not written"));
        } else {
            env.push(json!({ "name": k, "value": v }));
            r.mapped(svc, &field, "container `env`");
        }
    }
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, s) in svc.secrets.iter().enumerate() {
        let field = format!("secrets[{i}]");
        let at = svc.secret_locations.get(i).copied().unwrap_or(svc.location);
        let Some(info) = opts.secrets.get(s) else {
            return Err(ExportError::MissingSecret {
                file: m.file.clone(),
                at,
                path: format!("services.{}.{field}", svc.name),
                name: s.clone(),
            });
        };
        let version = info.version.to_string();
        if let Some(file) = secret_file(svc, s) {
            let vol = format!("secret-{i}");
            let dir = format!("/run/secrets/{}", dns_label(s));
            volumes.push(json!({ "name": vol, "secret": { "secretName": s, "items": [{ "key": version, "path": file }] } }));
            mounts.push(json!({ "name": vol, "mountPath": dir, "readOnly": true }));
            env.push(json!({ "name": format!("{s}_FILE"), "value": format!("{dir}/{file}") }));
            r.mapped(svc, &field, format!("the Secret Manager secret `{s}` version {version}, mounted as a file (`{s}_FILE`); copy it there from the store"));
        } else {
            env.push(json!({ "name": s, "valueFrom": { "secretKeyRef": { "name": s, "key": version } } }));
            r.mapped(svc, &field, format!("the Secret Manager secret `{s}` pinned at version {version} (secretKeyRef); copy it there from the store"));
        }
    }
    if !env.is_empty() {
        cont.insert("env".into(), Value::Array(env));
    }
    for (i, _) in svc.env_files.iter().enumerate() {
        r.mapped(
            svc,
            &format!("env_file[{i}]"),
            "its variables are container `env`",
        );
    }
    if !mounts.is_empty() {
        cont.insert("volumeMounts".into(), Value::Array(mounts));
    }

    let Resources {
        cpus,
        memory,
        gpus,
        pids,
    } = svc.resources;
    let mut limits = Map::new();
    let mut template_annotations = Map::new();
    let mut node_selector = None;
    if let Some(c) = cpus {
        limits.insert("cpu".into(), json!(cpu_quantity(c)));
        r.mapped(svc, "resources.cpus", "cpu limit");
    }
    if let Some(b) = memory {
        limits.insert("memory".into(), json!(memory_quantity(b)));
        r.mapped(svc, "resources.memory", "memory limit");
    }
    if let Some(g) = gpus {
        if g == 1 {
            r.mapped(svc, "resources.gpus", format!("one `nvidia.com/gpu` on an `{ACCELERATOR}` accelerator (node selector `run.googleapis.com/accelerator`)"));
        } else {
            r.approx(svc, "resources.gpus", format!("Cloud Run gives an instance one GPU: one `nvidia.com/gpu` on an `{ACCELERATOR}` accelerator"));
        }
        limits.insert("nvidia.com/gpu".into(), json!("1"));
        // An instance with a GPU has at least 4 CPUs and 16 GiB.
        if cpus.is_none_or(|c| c < 4.0) {
            limits.insert("cpu".into(), json!("4"));
            r.approx(
                svc,
                if cpus.is_some() {
                    "resources.cpus"
                } else {
                    "resources.gpus"
                },
                "4 CPUs: the least Cloud Run gives an instance with a GPU",
            );
        }
        if memory.is_none_or(|b| b < 16 << 30) {
            limits.insert("memory".into(), json!("16Gi"));
            r.approx(
                svc,
                if memory.is_some() {
                    "resources.memory"
                } else {
                    "resources.gpus"
                },
                "16Gi of memory: the least Cloud Run gives an instance with a GPU",
            );
        }
        node_selector = Some(json!({ "run.googleapis.com/accelerator": ACCELERATOR }));
        // GPUs need instance-based billing (CPU always allocated).
        template_annotations.insert("run.googleapis.com/cpu-throttling".into(), json!("false"));
        template_annotations.insert(
            "run.googleapis.com/gpu-zonal-redundancy-disabled".into(),
            json!("true"),
        );
    }
    if pids.is_some() {
        r.impossible(svc, "resources.pids", "Cloud Run sets no process limit");
    }
    if !limits.is_empty() {
        cont.insert("resources".into(), json!({ "limits": limits }));
    }

    if let Some(h) = &svc.healthcheck {
        match (probe(&h.check, h, port, true), probe(&h.check, h, port, false)) {
            (Some(startup), Some(liveness)) => {
                cont.insert("startupProbe".into(), startup);
                cont.insert("livenessProbe".into(), liveness);
                r.service(svc, "healthcheck", Outcome::Mapped, "startupProbe (start_period plus retries) and livenessProbe");
            }
            _ => r.impossible(svc, "healthcheck", "Cloud Run probes are HTTP, TCP or gRPC, not commands: give the service an HTTP health endpoint"),
        }
    }
    if svc.readiness.is_some() {
        r.impossible(svc, "readiness", "Cloud Run has no readiness probe: an instance takes requests once its startup probe passes");
    }

    let replicas = svc.replicas.to_string();
    template_annotations.insert("autoscaling.knative.dev/minScale".into(), json!(replicas));
    template_annotations.insert("autoscaling.knative.dev/maxScale".into(), json!(replicas));
    r.service(
        svc,
        if svc.field_locations.contains_key("replicas") { "replicas" } else { "" },
        Outcome::Approximated,
        format!("minScale = maxScale = {replicas}: Orchestra runs a fixed number of replicas; raise maxScale to let Cloud Run scale out"),
    );
    if svc.stop_signal != "SIGTERM" {
        r.impossible(svc, "stop_signal", "Cloud Run stops instances with SIGTERM");
    } else {
        r.mapped(svc, "stop_signal", "Cloud Run stops instances with SIGTERM");
    }
    r.service_if_written(
        svc,
        "stop_grace_period",
        Outcome::Impossible,
        "Cloud Run gives an instance 10 s after SIGTERM",
    );
    r.service_if_written(
        svc,
        "restart",
        Outcome::Impossible,
        "Cloud Run replaces instances that exit or fail their liveness probe",
    );
    r.service_if_written(
        svc,
        "depends_on",
        Outcome::Impossible,
        "Cloud Run services start independently: each must retry its dependencies",
    );
    r.service_if_written(
        svc,
        "volumes",
        Outcome::Impossible,
        "no persistent volumes: use Cloud Storage (gcsfuse) or a database",
    );
    r.service_if_written(
        svc,
        "ports",
        Outcome::Impossible,
        "a Cloud Run service receives requests on one port",
    );
    r.service_if_written(svc, "user", Outcome::Impossible, "the image's USER applies");
    if !svc.labels.is_empty() {
        r.approx(
            svc,
            "labels",
            "annotations of the service (Cloud Run labels allow only lowercase keys and values)",
        );
    }
    r.service_if_written(
        svc,
        "profiles",
        Outcome::Impossible,
        "every routed container service is rendered",
    );

    let mut spec = Map::new();
    spec.insert("containerConcurrency".into(), json!(CONCURRENCY));
    spec.insert("timeoutSeconds".into(), json!(TIMEOUT_SECONDS));
    spec.insert("containers".into(), json!([Value::Object(cont)]));
    if !volumes.is_empty() {
        spec.insert("volumes".into(), Value::Array(volumes));
    }
    if let Some(ns) = node_selector {
        spec.insert("nodeSelector".into(), ns);
    }

    let traffic = traffic(r, svc, &revision, opts);
    let mut meta_annotations = Map::new();
    meta_annotations.insert("run.googleapis.com/ingress".into(), json!("all"));
    for (k, v) in &svc.labels {
        meta_annotations.insert(k.clone(), json!(v));
    }
    Ok(json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/part-of": dns_label(&m.name),
                "app.kubernetes.io/managed-by": crate::kubernetes::MANAGED_BY,
            },
            "annotations": meta_annotations,
        },
        "spec": {
            "template": {
                "metadata": { "name": revision, "annotations": template_annotations },
                "spec": spec,
            },
            "traffic": traffic,
        },
    }))
}

/// All traffic to the new revision, or a canary's first step beside the stable one.
fn traffic(r: &mut Reporter<'_>, svc: &Service, revision: &str, opts: &Options) -> Value {
    let d = &svc.deploy;
    let field = if svc.field_locations.contains_key("deploy.strategy") {
        "deploy.strategy"
    } else {
        "deploy"
    };
    let pending = [
        "deploy.verify",
        "deploy.hooks",
        "deploy.keep_warm",
        "deploy.drain_timeout",
    ];
    for f in pending {
        r.service_if_written(svc, f, Outcome::Impossible, "Cloud Run does not verify, hook or drain a rollout: run those checks in the pipeline that calls `gcloud run services update-traffic`");
    }
    if d.strategy != Strategy::Canary {
        r.service_if_written(svc, field, Outcome::Approximated, "all traffic moves to the new revision once it is ready (Cloud Run keeps the old one for `update-traffic` rollbacks)");
        return json!([{ "latestRevision": true, "percent": 100 }]);
    }
    let first = d.steps.first().copied().unwrap_or(100).min(100);
    let rest: Vec<String> = d.steps.iter().skip(1).map(ToString::to_string).collect();
    let name = dns_label(&svc.name);
    match opts.stable_revisions.get(&svc.name) {
        Some(stable) if first < 100 => {
            let stable_rev = format!("{name}-{stable}");
            r.approx(
                svc,
                field,
                format!(
                    "the first canary step: {first}% to `{revision}` (tag canary), {}% to `{stable_rev}` (tag stable); the next steps ({}) are `gcloud run services update-traffic {name} --to-revisions {revision}=N` every {}",
                    100 - first,
                    rest.join(", "),
                    crate::common::duration_text(d.step_interval)
                ),
            );
            json!([
                { "revisionName": stable_rev, "percent": 100 - first, "tag": "stable" },
                { "revisionName": revision, "percent": first, "tag": "canary" },
            ])
        }
        _ => {
            r.approx(
                svc,
                field,
                format!("no stable revision was given (`--stable {}=REVISION`): the new revision `{revision}` takes all traffic, tagged canary", svc.name),
            );
            json!([{ "revisionName": revision, "percent": 100, "tag": "canary" }])
        }
    }
}

fn argv(args: &[String], port: u16) -> Value {
    Value::Array(args.iter().map(|a| json!(subst_port(a, port))).collect())
}

/// A startup (`start_period` + retries at 1 s) or liveness probe; `None` for `exec`.
fn probe(check: &Check, p: &Probe, port: u16, startup: bool) -> Option<Value> {
    let mut v = match check {
        Check::Http { path, port: pp } => {
            json!({ "httpGet": { "path": path, "port": pp.unwrap_or(port) } })
        }
        Check::Tcp { port: pp } => json!({ "tcpSocket": { "port": pp.unwrap_or(port) } }),
        Check::Exec { .. } => return None,
    };
    // Cloud Run wants a probe's timeout no longer than its period.
    let timeout = secs(p.timeout, 1);
    if startup {
        let period = timeout;
        v["periodSeconds"] = json!(period);
        v["timeoutSeconds"] = json!(timeout);
        v["failureThreshold"] =
            json!(secs(p.start_period, 0).div_ceil(period) + u64::from(p.retries.max(1)));
    } else {
        v["periodSeconds"] = json!(secs(p.interval, 1).max(timeout));
        v["timeoutSeconds"] = json!(timeout);
        v["failureThreshold"] = json!(p.retries.max(1));
    }
    Some(v)
}
