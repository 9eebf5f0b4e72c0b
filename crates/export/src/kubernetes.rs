//! Kubernetes manifests: per service a Deployment (or an Argo Rollouts `Rollout`), a
//! Service, a ConfigMap of its environment, a PodDisruptionBudget when it has several
//! replicas, a NetworkPolicy from the dependency graph, and an Ingress (or a Gateway API
//! HTTPRoute) for its route; Secrets are referenced by versioned, hash-suffixed names.
//!
//! Files: `<service>.yaml` (built-in kinds), `<service>.rollout.yaml` and
//! `<service>.httproute.yaml` (CRDs), `volumes.yaml` (PersistentVolumeClaims) and, with
//! values, `secrets.yaml`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use orchestra_manifest::{
    Check, Condition, Manifest, Probe, Resources, Restart, Service, Sticky, Strategy, VolumeKind,
};
use serde_json::{Map, Value, json};

use crate::common::{
    container, container_port, cpu_quantity, credential, dns_label, header, memory_quantity,
    not_a_container, probe_port, secret_file, secs, short_hash, sub_second, subst_port,
};
use crate::report::{Outcome, Reporter};
use crate::{Export, ExportError, Options, OutputFile, Schema, Target};

/// The image of the init containers that wait for a dependency's port.
pub const WAIT_IMAGE: &str = "busybox:1.36";
/// The label every object carries: `managed-by: orchestra`.
pub const MANAGED_BY: &str = "orchestra";
/// The extended resource a GPU is requested as (NVIDIA's device plugin).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// A rendered service: what other services' objects need to know about it.
struct Rendered {
    name: String,
    port: u16,
    selector: Value,
    /// A one-shot job (something waits for it to complete): the Job's name.
    job: Option<String>,
}

/// The Job a one-shot service becomes: named after its revision, since a Job's pod
/// template cannot change.
fn job_name(svc: &Service) -> String {
    let mut base = dns_label(&svc.name);
    base.truncate(50);
    format!("{}-{}", base.trim_end_matches('-'), svc.revision())
}

/// Renders `m` for Kubernetes.
///
/// # Errors
/// [`ExportError::MissingSecret`] when a referenced secret is not in `opts.secrets`.
pub fn render(m: &Manifest, opts: &Options) -> Result<Export, ExportError> {
    let mut r = Reporter::new(m);
    let project = dns_label(&m.name);
    // A service something waits on to complete is a one-shot job.
    let jobs: BTreeSet<&str> = m
        .services
        .iter()
        .flat_map(|s| &s.depends_on)
        .filter(|d| d.condition == Condition::Completed)
        .map(|d| d.service.as_str())
        .collect();
    let mut rendered: BTreeMap<String, Rendered> = BTreeMap::new();
    for svc in &m.services {
        if container(&m.name, svc).is_some() {
            rendered.insert(
                svc.name.clone(),
                Rendered {
                    name: dns_label(&svc.name),
                    port: container_port(svc),
                    selector: selector(&project, svc),
                    job: jobs.contains(svc.name.as_str()).then(|| job_name(svc)),
                },
            );
        }
    }
    // Who depends on whom, for the NetworkPolicies.
    let mut dependents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for svc in &m.services {
        for d in &svc.depends_on {
            dependents
                .entry(d.service.as_str())
                .or_default()
                .insert(svc.name.as_str());
        }
    }

    let mut files: BTreeMap<String, (Vec<Value>, Schema)> = BTreeMap::new();
    let mut secret_objects: BTreeMap<String, Value> = BTreeMap::new();
    let mut claims: BTreeMap<String, Value> = BTreeMap::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for svc in &m.services {
        let Some(c) = container(&m.name, svc) else {
            r.impossible(svc, "", not_a_container(svc));
            r.finish_service(svc, "not rendered: the service is not a container");
            continue;
        };
        if let Some(other) = taken.get(&dns_label(&svc.name)).copied() {
            r.impossible(
                svc,
                "",
                format!(
                    "its Kubernetes name `{}` is also `{other}`'s: rename one of them",
                    dns_label(&svc.name)
                ),
            );
            r.finish_service(svc, "not rendered: its name is taken");
            continue;
        }
        taken.insert(dns_label(&svc.name), &svc.name);
        let mut ctx = Svc {
            m,
            svc,
            opts,
            project: &project,
            rendered: &rendered,
            r: &mut r,
            docs: Vec::new(),
            secret_objects: &mut secret_objects,
            claims: &mut claims,
            secret_mounts: Vec::new(),
        };
        let (docs, extra) = ctx.render(&c, dependents.get(svc.name.as_str()))?;
        r.finish_service(svc, "not rendered for Kubernetes");
        let name = dns_label(&svc.name);
        files.insert(format!("{name}.yaml"), (docs, Schema::Kubernetes));
        for (suffix, doc, schema) in extra {
            files.insert(format!("{name}.{suffix}.yaml"), (vec![doc], schema));
        }
    }
    top_level_notes(&mut r, m, opts);
    let mut out: Vec<OutputFile> = files
        .into_iter()
        .map(|(path, (docs, schema))| OutputFile {
            contents: format!("{}{}", header("k8s", m), crate::yaml::to_documents(&docs)),
            path,
            schema,
            sensitive: false,
        })
        .collect();
    if !claims.is_empty() {
        let docs: Vec<Value> = claims.into_values().collect();
        out.push(OutputFile {
            path: "volumes.yaml".to_owned(),
            contents: format!("{}{}", header("k8s", m), crate::yaml::to_documents(&docs)),
            schema: Schema::Kubernetes,
            sensitive: false,
        });
    }
    if !secret_objects.is_empty() {
        let docs: Vec<Value> = secret_objects.into_values().collect();
        out.push(OutputFile {
            path: "secrets.yaml".to_owned(),
            contents: format!("{}{}", header("k8s", m), crate::yaml::to_documents(&docs)),
            schema: Schema::Kubernetes,
            sensitive: true,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Export {
        files: out,
        report: r.finish(Target::K8s),
    })
}

fn top_level_notes(r: &mut Reporter<'_>, m: &Manifest, opts: &Options) {
    r.top(
        "name",
        Outcome::Mapped,
        "the `app.kubernetes.io/instance` and `part-of` labels",
    );
    r.top(
        "volumes",
        Outcome::Approximated,
        "each named volume is a PersistentVolumeClaim in volumes.yaml (ReadWriteOnce, 1Gi: set the size and class your cluster needs)",
    );
    r.top(
        "profiles",
        Outcome::Impossible,
        "Kubernetes has no profiles: every container service is rendered; apply the files of the ones you want",
    );
    r.top(
        "health",
        Outcome::Impossible,
        "Kubernetes judges each Deployment on its own; no aggregate health threshold",
    );
    r.top(
        "admin",
        Outcome::Impossible,
        "there is no Orchestra daemon in the cluster; each pod's probes take the place of /health and /ready",
    );
    let via = if opts.gateway.is_some() {
        "the Gateway"
    } else {
        "the ingress controller"
    };
    r.top(
        "proxy",
        Outcome::Impossible,
        format!("{via} listens instead of Orchestra's proxy: its listeners, workers, limits and trusted proxies are configured there"),
    );
    if m.proxy.tls.is_some() {
        r.top(
            "proxy.tls",
            Outcome::Impossible,
            "certificates are files here: create a `kubernetes.io/tls` Secret from them (`kubectl create secret tls`) and name it in the Ingress's `spec.tls` or the Gateway's listener",
        );
    }
}

/// The labels that select a service's pods.
fn selector(project: &str, svc: &Service) -> Value {
    json!({
        "app.kubernetes.io/name": dns_label(&svc.name),
        "app.kubernetes.io/instance": project,
    })
}

/// Whether `s` is a valid label value (and key name part).
fn label_value_ok(s: &str) -> bool {
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

fn label_key_ok(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    !name.is_empty()
        && label_value_ok(name)
        && prefix.is_none_or(|p| {
            !p.is_empty()
                && p.len() <= 253
                && p.split('.').all(|l| !l.is_empty() && dns_label(l) == l)
        })
}

struct Svc<'a, 'm> {
    m: &'m Manifest,
    svc: &'m Service,
    opts: &'a Options,
    project: &'a str,
    rendered: &'a BTreeMap<String, Rendered>,
    r: &'a mut Reporter<'m>,
    docs: Vec<Value>,
    secret_objects: &'a mut BTreeMap<String, Value>,
    claims: &'a mut BTreeMap<String, Value>,
    /// Secrets given as files: (object, key, file name).
    secret_mounts: Vec<(String, String, String)>,
}

type Extra = Vec<(&'static str, Value, Schema)>;

impl Svc<'_, '_> {
    fn name(&self) -> String {
        dns_label(&self.svc.name)
    }

    fn labels(&self) -> Value {
        let mut l = selector(self.project, self.svc);
        let map = l.as_object_mut().expect("selector is an object");
        map.insert(
            "app.kubernetes.io/version".into(),
            json!(self.svc.revision()),
        );
        map.insert("app.kubernetes.io/part-of".into(), json!(self.project));
        map.insert("app.kubernetes.io/managed-by".into(), json!(MANAGED_BY));
        l
    }

    fn meta(&self, name: &str) -> Value {
        json!({ "name": name, "labels": self.labels() })
    }

    fn render(
        &mut self,
        c: &crate::common::Container<'_>,
        dependents: Option<&BTreeSet<&str>>,
    ) -> Result<(Vec<Value>, Extra), ExportError> {
        let svc = self.svc;
        let name = self.name();
        let port = container_port(svc);
        let mut extra: Extra = Vec::new();
        if name != svc.name {
            self.r.approx(
                svc,
                "",
                format!("named `{name}`: Kubernetes names are lowercase letters, digits and `-`"),
            );
        }
        let mut pod = Map::new();
        let mut cont = Map::new();
        cont.insert("name".into(), json!(name));
        cont.insert("image".into(), json!(c.image));
        if c.built {
            self.r.approx(
                svc,
                "build",
                format!(
                    "the image is `{}`, the tag `orchestra up` builds: build and push it to a registry the cluster pulls from, and set `image:` to that reference",
                    c.image
                ),
            );
        } else {
            self.r.mapped(svc, "image", "container image");
        }
        if let Some(ep) = c.entrypoint {
            cont.insert("command".into(), argv(ep, port));
            self.r.mapped(
                svc,
                "entrypoint",
                "container `command` (the image's ENTRYPOINT)",
            );
        }
        if let Some(cmd) = c.command {
            cont.insert("args".into(), argv(cmd, port));
            self.r
                .mapped(svc, "command", "container `args` (the image's CMD)");
        }
        if svc.port.is_none() && (svc.route.is_some() || svc.healthcheck.is_some()) {
            self.r.approx(
                svc,
                "",
                format!("no `port:`: the container port is taken to be {port} (`PORT` inside a container without one); set `port:` if the image listens elsewhere"),
            );
        }
        self.r.mapped(
            svc,
            "port",
            format!("containerPort {port} and the Service's port"),
        );
        let mut ports = vec![json!({ "name": "http", "containerPort": port, "protocol": "TCP" })];
        let mut seen: BTreeSet<(u16, String)> = BTreeSet::from([(port, "TCP".to_owned())]);
        for (i, p) in svc.ports.iter().enumerate() {
            let proto = p.protocol.to_ascii_uppercase();
            if seen.insert((p.container_port, proto.clone())) {
                let name = if proto == "TCP" {
                    format!("port-{}", p.container_port)
                } else {
                    format!("port-{}-{}", p.container_port, proto.to_ascii_lowercase())
                };
                ports.push(json!({
                    "name": name,
                    "containerPort": p.container_port,
                    "protocol": proto,
                }));
            }
            if p.host_port.is_some() {
                self.r.approx(
                    svc,
                    &format!("ports[{i}]"),
                    "no host port is published: the port is a containerPort and a port of the Service; reach it from outside with `kubectl port-forward`, a NodePort or LoadBalancer Service",
                );
            } else {
                self.r.mapped(
                    svc,
                    &format!("ports[{i}]"),
                    "a containerPort and a port of the Service",
                );
            }
        }
        // Probes may name a port of their own: it must be one the container declares.
        for probe in [&svc.healthcheck, &svc.readiness].into_iter().flatten() {
            if let Some(p) = probe_port(&probe.check, port)
                && seen.insert((p, "TCP".to_owned()))
            {
                ports.push(
                    json!({ "name": format!("probe-{p}"), "containerPort": p, "protocol": "TCP" }),
                );
            }
        }
        cont.insert("ports".into(), Value::Array(ports.clone()));
        if let Some(wd) = &svc.working_dir {
            cont.insert("workingDir".into(), json!(wd.display().to_string()));
            self.r.mapped(svc, "working_dir", "container `workingDir`");
        }

        let (env, env_from) = self.env(port)?;
        cont.insert("env".into(), Value::Array(env));
        if !env_from.is_empty() {
            cont.insert("envFrom".into(), Value::Array(env_from));
        }

        self.probes(&mut cont, port);
        let tolerations = self.resources(&mut cont);
        let (volumes, mounts) = self.volumes()?;
        if !mounts.is_empty() {
            cont.insert("volumeMounts".into(), Value::Array(mounts));
        }
        if let Some(user) = &svc.user {
            match user_ids(user) {
                Some((uid, gid)) => {
                    let mut sc = json!({ "runAsUser": uid });
                    if let Some(g) = gid {
                        sc["runAsGroup"] = json!(g);
                    }
                    cont.insert("securityContext".into(), sc);
                    self.r.mapped(svc, "user", "container `securityContext.runAsUser`/`runAsGroup`");
                }
                None => self.r.impossible(
                    svc,
                    "user",
                    format!("`{user}` is a user name: Kubernetes runs containers by numeric id (`runAsUser`); write the uid"),
                ),
            }
        }

        pod.insert("containers".into(), json!([Value::Object(cont)]));
        let init = self.depends_on();
        if !init.is_empty() {
            pod.insert("initContainers".into(), Value::Array(init));
        }
        if !volumes.is_empty() {
            pod.insert("volumes".into(), Value::Array(volumes));
        }
        if !tolerations.is_empty() {
            pod.insert("tolerations".into(), Value::Array(tolerations));
        }
        let grace = secs(svc.stop_grace_period, 0).max(secs(svc.deploy.drain_timeout, 0));
        pod.insert("terminationGracePeriodSeconds".into(), json!(grace));
        self.r.mapped(
            svc,
            "stop_grace_period",
            format!("`terminationGracePeriodSeconds: {grace}` (the longer of it and deploy.drain_timeout)"),
        );
        if svc.stop_signal == "SIGTERM" {
            self.r.mapped(
                svc,
                "stop_signal",
                "Kubernetes stops containers with SIGTERM",
            );
        } else {
            self.r.impossible(
                svc,
                "stop_signal",
                format!("Kubernetes stops containers with SIGTERM, not {}: set `STOPSIGNAL {}` in the image", svc.stop_signal, svc.stop_signal),
            );
        }
        let job = self.rendered.get(&svc.name).and_then(|r| r.job.clone());
        if job.is_some() {
            pod.insert("restartPolicy".into(), json!("Never"));
            self.job_restart();
        } else {
            self.restart();
        }

        let mut pod_labels = self.labels();
        let mut annotations = Map::new();
        for (k, v) in &svc.labels {
            if label_key_ok(k) && label_value_ok(v) {
                pod_labels[k] = json!(v);
            } else {
                annotations.insert(k.clone(), json!(v));
            }
        }
        if !svc.labels.is_empty() {
            self.r.service(
                svc,
                "labels",
                if annotations.is_empty() { Outcome::Mapped } else { Outcome::Approximated },
                if annotations.is_empty() {
                    "labels of the pods".to_owned()
                } else {
                    format!(
                        "labels of the pods; {} that are not valid Kubernetes labels are pod annotations",
                        annotations.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
            );
        }
        let mut template_meta = json!({ "labels": pod_labels });
        if !annotations.is_empty() {
            template_meta["annotations"] = Value::Object(annotations);
        }
        let template = json!({ "metadata": template_meta, "spec": Value::Object(pod) });

        let selector = selector(self.project, svc);
        if let Some(job) = job {
            return Ok(self.job(&job, template, dependents, &ports));
        }
        self.r
            .mapped(svc, "replicas", format!("`replicas: {}`", svc.replicas));
        let canary = svc.deploy.strategy == Strategy::Canary;
        let workload = if canary && self.opts.argo_rollouts {
            let doc = json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "metadata": self.meta(&name),
                "spec": {
                    "replicas": svc.replicas,
                    "selector": { "matchLabels": selector },
                    "template": template,
                    "strategy": { "canary": { "steps": self.rollout_steps() } },
                },
            });
            extra.push(("rollout", doc, Schema::ArgoRollout));
            None
        } else {
            Some(json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": self.meta(&name),
                "spec": {
                    "replicas": svc.replicas,
                    "selector": { "matchLabels": selector },
                    "strategy": self.strategy(),
                    "template": template,
                },
            }))
        };
        self.deploy_notes();

        let mut service_ports =
            vec![json!({ "name": "http", "port": port, "targetPort": "http", "protocol": "TCP" })];
        for p in ports.iter().skip(1) {
            if p["name"].as_str().is_some_and(|n| n.starts_with("port-")) {
                service_ports.push(json!({
                    "name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": p["protocol"],
                }));
            }
        }
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(&name),
            "spec": { "selector": selector, "ports": service_ports },
        });
        let mut docs = std::mem::take(&mut self.docs);
        docs.extend(workload);
        docs.push(service);
        if svc.replicas > 1 {
            docs.push(json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": self.meta(&name),
                "spec": { "maxUnavailable": 1, "selector": { "matchLabels": selector } },
            }));
        }
        docs.push(self.network_policy(dependents, &service_ports));
        if let Some(route) = self.route(port) {
            match route {
                (doc, Schema::Kubernetes) => docs.push(doc),
                (doc, schema) => extra.push(("httproute", doc, schema)),
            }
        }
        Ok((docs, extra))
    }

    /// `env`, `env_file` and `secrets`: plain variables in a ConfigMap, credential-looking
    /// ones in a Secret, store secrets by versioned references.
    fn env(&mut self, port: u16) -> Result<(Vec<Value>, Vec<Value>), ExportError> {
        let svc = self.svc;
        let name = self.name();
        let mut env = vec![
            json!({ "name": "PORT", "value": port.to_string() }),
            json!({ "name": "ORCHESTRA_SERVICE", "value": svc.name }),
        ];
        let mut env_from = Vec::new();
        let mut plain = Map::new();
        let mut private: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &svc.env {
            if svc.secrets.contains(k) || k == "PORT" {
                continue;
            }
            let v = subst_port(v, port);
            if credential(k, &v) {
                private.insert(k.clone(), v);
            } else {
                plain.insert(k.clone(), json!(v));
            }
        }
        if !plain.is_empty() {
            let cm_name = format!(
                "{name}-env-{}",
                short_hash(serde_json::to_string(&plain).unwrap_or_default().as_bytes())
            );
            env_from.push(json!({ "configMapRef": { "name": cm_name } }));
            self.docs.push(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": self.meta(&cm_name),
                "immutable": true,
                "data": plain,
            }));
        }
        if !private.is_empty() {
            let joined: String = private.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let secret_name = format!("{name}-env-{}", short_hash(joined.as_bytes()));
            env_from.push(json!({ "secretRef": { "name": secret_name } }));
            let keys = private.keys().cloned().collect::<Vec<_>>().join(", ");
            if self.opts.include_secret_values {
                let data: Map<String, Value> = private
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            json!(base64::engine::general_purpose::STANDARD.encode(v)),
                        )
                    })
                    .collect();
                self.secret_objects.insert(
                    secret_name.clone(),
                    json!({
                        "apiVersion": "v1", "kind": "Secret", "metadata": self.meta(&secret_name),
                        "type": "Opaque", "immutable": true, "data": data,
                    }),
                );
            }
            for k in private.keys() {
                let field = if svc.env_file_vars.contains(k) {
                    "env_file".to_owned()
                } else {
                    format!("env.{k}")
                };
                self.r.approx(
                    svc,
                    &field,
                    format!(
                        "`{k}` looks like a credential, so it is in the Secret `{secret_name}` (keys {keys}), not the ConfigMap{}",
                        if self.opts.include_secret_values { " (secrets.yaml)" } else { ": create it, or export with --include-secret-values" }
                    ),
                );
            }
        }
        for (k, _) in plain.iter() {
            if !svc.env_file_vars.contains(k) {
                self.r.mapped(
                    svc,
                    &format!("env.{k}"),
                    "the service's ConfigMap (envFrom)",
                );
            }
        }
        for (i, _) in svc.env_files.iter().enumerate() {
            let field = if svc.field_locations.contains_key(&format!("env_file[{i}]")) {
                format!("env_file[{i}]")
            } else {
                "env_file".to_owned()
            };
            self.r.mapped(svc, &field, "its variables are in the service's ConfigMap (credential-looking ones in its Secret)");
        }
        for (i, secret) in svc.secrets.iter().enumerate() {
            let field = format!("secrets[{i}]");
            let at = svc.secret_locations.get(i).copied().unwrap_or(svc.location);
            let path = format!("services.{}.{field}", svc.name);
            let Some(info) = self.opts.secrets.get(secret) else {
                return Err(ExportError::MissingSecret {
                    file: self.m.file.clone(),
                    at,
                    path,
                    name: secret.clone(),
                });
            };
            let object = format!(
                "{}-v{}-{}",
                dns_label(secret),
                info.version,
                &info.digest[..info.digest.len().min(10)]
            );
            if self.opts.include_secret_values {
                let Some(value) = &info.value else {
                    return Err(ExportError::MissingSecretValue {
                        file: self.m.file.clone(),
                        at,
                        path,
                        name: secret.clone(),
                    });
                };
                self.secret_objects.insert(
                    object.clone(),
                    json!({
                        "apiVersion": "v1", "kind": "Secret",
                        "metadata": {
                            "name": object,
                            "labels": {
                                "app.kubernetes.io/part-of": self.project,
                                "app.kubernetes.io/managed-by": MANAGED_BY,
                            },
                        },
                        "type": "Opaque", "immutable": true,
                        "data": { secret.clone(): base64::engine::general_purpose::STANDARD.encode(value) },
                    }),
                );
            }
            let file = secret_file(svc, secret);
            let as_file = file.is_some();
            if let Some(file) = file {
                let path = format!("/run/secrets/{file}");
                env.push(json!({ "name": format!("{secret}_FILE"), "value": path }));
                self.secret_mounts
                    .push((object.clone(), secret.clone(), file));
            } else {
                env.push(json!({
                    "name": secret,
                    "valueFrom": { "secretKeyRef": { "name": object, "key": secret } },
                }));
            }
            self.r.mapped(
                svc,
                &field,
                format!(
                    "version {} as the Secret `{object}`{}{}",
                    info.version,
                    if as_file {
                        format!(", a file under /run/secrets (`{secret}_FILE`)")
                    } else {
                        format!(", key `{secret}` (secretKeyRef)")
                    },
                    if self.opts.include_secret_values {
                        " (secrets.yaml)"
                    } else {
                        ": create it from the store, or export with --include-secret-values"
                    }
                ),
            );
        }
        Ok((env, env_from))
    }

    fn probes(&mut self, cont: &mut Map<String, Value>, port: u16) {
        let svc = self.svc;
        if let Some(h) = &svc.healthcheck {
            // Orchestra probes quickly until the first success, and allows start_period
            // plus `retries` probes for it: the startup probe does the same at 1 s.
            let budget = secs(h.start_period, 0) + u64::from(h.retries.max(1));
            let mut startup = action(&h.check, port);
            startup["periodSeconds"] = json!(1);
            startup["timeoutSeconds"] = json!(secs(h.timeout, 1));
            startup["failureThreshold"] = json!(budget);
            cont.insert("startupProbe".into(), startup);
            cont.insert("livenessProbe".into(), timed(&h.check, h, port));
            self.r.service(
                svc,
                "healthcheck",
                Outcome::Mapped,
                format!("startupProbe (every 1s, {budget} failures allowed: start_period then retries) and livenessProbe"),
            );
            if svc.healthcheck.is_some()
                && svc.field_locations.contains_key("healthcheck.start_period")
            {
                self.r.mapped(
                    svc,
                    "healthcheck.start_period",
                    format!("startupProbe failureThreshold {budget} at periodSeconds 1"),
                );
            }
            for (field, d) in [("interval", h.interval), ("timeout", h.timeout)] {
                if sub_second(d) {
                    self.r.approx(
                        svc,
                        &format!("healthcheck.{field}"),
                        format!(
                            "{}: Kubernetes counts probe times in whole seconds, rounded up to {}s",
                            crate::common::duration_text(d),
                            secs(d, 1)
                        ),
                    );
                }
            }
            self.check_notes("healthcheck", &h.check);
        }
        match (&svc.readiness, &svc.healthcheck) {
            (Some(p), _) => {
                cont.insert("readinessProbe".into(), timed(&p.check, p, port));
                self.r
                    .service(svc, "readiness", Outcome::Mapped, "readinessProbe");
                self.check_notes("readiness", &p.check);
            }
            (None, Some(h)) => {
                // Dependents wait for the healthcheck in Orchestra: so does the Service.
                cont.insert("readinessProbe".into(), timed(&h.check, h, port));
            }
            (None, None) => {}
        }
    }

    fn check_notes(&mut self, field: &str, check: &Check) {
        if let Check::Exec { command } = check
            && command.iter().any(|a| a.contains("${PORT}"))
        {
            self.r.mapped(
                self.svc,
                &format!("{field}.exec"),
                "exec probe; `${PORT}` is the container port",
            );
        }
    }

    /// Resources; the tolerations GPUs need.
    fn resources(&mut self, cont: &mut Map<String, Value>) -> Vec<Value> {
        let svc = self.svc;
        let Resources {
            cpus,
            memory,
            gpus,
            pids,
        } = svc.resources;
        let mut limits = Map::new();
        if let Some(c) = cpus {
            limits.insert("cpu".into(), json!(cpu_quantity(c)));
            self.r.mapped(
                svc,
                "resources.cpus",
                format!("cpu limit and request {}", cpu_quantity(c)),
            );
        }
        if let Some(b) = memory {
            limits.insert("memory".into(), json!(memory_quantity(b)));
            self.r.mapped(
                svc,
                "resources.memory",
                format!("memory limit and request {}", memory_quantity(b)),
            );
        }
        let mut tolerations = Vec::new();
        if let Some(g) = gpus {
            let n = if g == Resources::ALL_GPUS {
                self.r.approx(svc, "resources.gpus", format!("`all` has no Kubernetes equivalent: 1 `{GPU_RESOURCE}` is requested; write the count the service needs"));
                1
            } else {
                self.r.mapped(svc, "resources.gpus", format!("`{GPU_RESOURCE}: {g}` (limit and request) and a toleration of GPU nodes' taint"));
                g
            };
            limits.insert(GPU_RESOURCE.into(), json!(n.to_string()));
            tolerations
                .push(json!({ "key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule" }));
        }
        if pids.is_some() {
            self.r.impossible(
                svc,
                "resources.pids",
                "a pod's process limit is the kubelet's `podPidsLimit`, not a field of the pod",
            );
        }
        if !limits.is_empty() {
            // Orchestra enforces limits and reserves nothing less: requests equal limits
            // (the Guaranteed QoS class; extended resources need them equal anyway).
            cont.insert(
                "resources".into(),
                json!({ "limits": limits.clone(), "requests": limits }),
            );
        }
        tolerations
    }

    fn volumes(&mut self) -> Result<(Vec<Value>, Vec<Value>), ExportError> {
        let svc = self.svc;
        let mut volumes = Vec::new();
        let mut mounts = Vec::new();
        for (i, v) in svc.volumes.iter().enumerate() {
            let field = format!("volumes[{i}]");
            let vol = format!("vol-{i}");
            let source = match (v.kind, &v.source) {
                (VolumeKind::Named, Some(name)) => {
                    let claim = format!("{}-{}", self.project, dns_label(name));
                    self.claims.entry(claim.clone()).or_insert_with(|| json!({
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {
                            "name": claim,
                            "labels": { "app.kubernetes.io/part-of": self.project, "app.kubernetes.io/managed-by": MANAGED_BY },
                        },
                        "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
                    }));
                    let shared = if svc.replicas > 1 {
                        "; ReadWriteOnce lets only one node mount it, so the replicas must share a node or use ReadWriteMany storage"
                    } else {
                        ""
                    };
                    self.r.approx(svc, &field, format!("the PersistentVolumeClaim `{claim}` (1Gi, ReadWriteOnce: set the size and class){shared}"));
                    json!({ "persistentVolumeClaim": { "claimName": claim } })
                }
                (VolumeKind::Named, None) => {
                    self.r.approx(
                        svc,
                        &field,
                        "an emptyDir: an anonymous volume lives as long as the pod",
                    );
                    json!({ "emptyDir": {} })
                }
                (VolumeKind::Tmpfs, _) => {
                    self.r.mapped(svc, &field, "an emptyDir in memory");
                    json!({ "emptyDir": { "medium": "Memory" } })
                }
                (VolumeKind::Bind, src) => {
                    self.r.impossible(
                        svc,
                        &field,
                        format!("a bind mount of {} from this machine: nodes do not have it; bake the files into the image or use a ConfigMap or volume", src.as_deref().unwrap_or("?")),
                    );
                    continue;
                }
            };
            let mut vj = json!({ "name": vol });
            if let (Value::Object(o), Value::Object(src)) = (&mut vj, source) {
                o.extend(src);
            }
            volumes.push(vj);
            let mut mount = json!({ "name": vol, "mountPath": v.target });
            if v.read_only {
                mount["readOnly"] = json!(true);
            }
            mounts.push(mount);
        }
        for (i, (object, key, file)) in std::mem::take(&mut self.secret_mounts)
            .into_iter()
            .enumerate()
        {
            let vol = format!("secret-{i}");
            volumes.push(json!({ "name": vol, "secret": { "secretName": object, "items": [{ "key": key, "path": file }] } }));
            mounts.push(json!({ "name": vol, "mountPath": format!("/run/secrets/{file}"), "subPath": file, "readOnly": true }));
        }
        Ok((volumes, mounts))
    }

    /// `depends_on`: an init container per `healthy` dependency that waits for its
    /// Service's port (a Service answers once a pod is ready).
    fn depends_on(&mut self) -> Vec<Value> {
        let svc = self.svc;
        let mut init = Vec::new();
        let wait_on = svc.depends_on.iter().enumerate();
        for (i, d) in wait_on {
            let field = if svc
                .field_locations
                .contains_key(&format!("depends_on.{}", d.service))
            {
                format!("depends_on.{}", d.service)
            } else {
                format!("depends_on[{i}]")
            };
            let Some(dep) = self.rendered.get(&d.service) else {
                self.r.impossible(
                    svc,
                    &field,
                    format!(
                        "`{}` is not rendered (not a container), so nothing can wait for it",
                        d.service
                    ),
                );
                continue;
            };
            match d.condition {
                Condition::Healthy if dep.job.is_some() => self.r.approx(
                    svc,
                    &field,
                    format!("`{}` is a one-shot Job with no Service to wait for; nothing waits for it", d.service),
                ),
                Condition::Healthy => {
                    let script = format!(
                        "until nc -z -w 2 {n} {p}; do echo waiting for {n}:{p}; sleep 1; done",
                        n = dep.name,
                        p = dep.port
                    );
                    init.push(json!({
                        "name": format!("wait-for-{}", dep.name),
                        "image": WAIT_IMAGE,
                        "command": ["sh", "-c", script],
                        "resources": { "limits": { "cpu": "50m", "memory": "16Mi" }, "requests": { "cpu": "50m", "memory": "16Mi" } },
                    }));
                    self.r.mapped(svc, &field, format!("the init container `wait-for-{}` waits until the Service {}:{} answers (it does once a pod is ready)", dep.name, dep.name, dep.port));
                }
                Condition::Started => self.r.approx(
                    svc,
                    &field,
                    format!("pods start in any order: nothing waits for `{}` to start; the service must retry until it answers", d.service),
                ),
                Condition::Completed => match &dep.job {
                    Some(job) => self.r.approx(
                        svc,
                        &field,
                        format!("`{}` is the Job `{job}`, which runs once when applied; nothing here waits for it to finish: apply it first and `kubectl wait --for=condition=complete job/{job}`", d.service),
                    ),
                    None => self.r.approx(
                        svc,
                        &field,
                        format!("nothing waits for `{}` to finish", d.service),
                    ),
                },
            }
        }
        init
    }

    /// A one-shot service: a Job (no Service, no disruption budget, no route).
    fn job(
        &mut self,
        job: &str,
        template: Value,
        dependents: Option<&BTreeSet<&str>>,
        ports: &[Value],
    ) -> (Vec<Value>, Extra) {
        let svc = self.svc;
        let backoff = match svc.restart.policy {
            Restart::No => 0,
            Restart::OnFailure | Restart::Always => svc.restart.max_restarts.unwrap_or(6),
        };
        self.r.service(
            svc,
            "",
            Outcome::Mapped,
            format!("a one-shot job (a dependent waits for it to complete): the Job `{job}`, named after the revision since a Job cannot change; backoffLimit {backoff}"),
        );
        self.r.mapped(
            svc,
            "replicas",
            format!("`completions` and `parallelism`: {}", svc.replicas),
        );
        if svc.route.is_some() {
            self.r.impossible(
                svc,
                "route",
                "a one-shot job serves no requests: nothing is routed to it",
            );
        }
        for f in ["deploy", "port", "ports"] {
            self.r.service_if_written(
                svc,
                f,
                Outcome::Impossible,
                "a Job runs once per revision: it has no Service and no rollout",
            );
        }
        let doc = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.meta(job),
            "spec": {
                "backoffLimit": backoff,
                "completions": svc.replicas,
                "parallelism": svc.replicas,
                "template": template,
            },
        });
        let service_ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({ "port": p["containerPort"], "protocol": p["protocol"] }))
            .collect();
        let mut docs = std::mem::take(&mut self.docs);
        docs.push(doc);
        docs.push(self.network_policy(dependents, &service_ports));
        (docs, Vec::new())
    }

    fn job_restart(&mut self) {
        let svc = self.svc;
        let field = if svc.field_locations.contains_key("restart.policy") {
            "restart.policy"
        } else {
            "restart"
        };
        match svc.restart.policy {
            Restart::No => {
                self.r
                    .mapped(svc, field, "`backoffLimit: 0`: a failed run is not retried")
            }
            _ => self.r.mapped(
                svc,
                field,
                "`backoffLimit`: failed runs are retried that many times",
            ),
        }
        self.r.service_if_written(
            svc,
            "restart.backoff",
            Outcome::Impossible,
            "the Job controller's own back-off applies (10 s doubling, up to 6 min)",
        );
    }

    fn restart(&mut self) {
        let svc = self.svc;
        match svc.restart.policy {
            Restart::Always => self.r.mapped(svc, "restart.policy", "a Deployment restarts its containers (`restartPolicy: Always`)"),
            Restart::OnFailure => self.r.service_if_written(
                svc,
                "restart.policy",
                Outcome::Approximated,
                "a Deployment restarts its containers whatever their exit status (`restartPolicy: Always`)",
            ),
            Restart::No => self.r.approx(
                svc,
                if svc.field_locations.contains_key("restart.policy") { "restart.policy" } else { "restart" },
                "a Deployment always restarts its containers; a one-shot job belongs in a Job (`restartPolicy: Never`)",
            ),
        }
        for f in ["restart.backoff", "restart.max_restarts"] {
            self.r.service_if_written(svc, f, Outcome::Impossible, "the kubelet's own back-off applies (10 s doubling to 5 min, CrashLoopBackOff, never given up)");
        }
    }

    fn strategy(&mut self) -> Value {
        match self.svc.deploy.strategy {
            Strategy::Recreate => json!({ "type": "Recreate" }),
            // New pods start beside the old ones and take traffic once ready.
            Strategy::BlueGreen => {
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "100%", "maxUnavailable": 0 } })
            }
            Strategy::Canary => {
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } })
            }
        }
    }

    fn rollout_steps(&self) -> Value {
        let d = &self.svc.deploy;
        let pause = crate::common::duration_text(d.step_interval);
        let mut steps = Vec::new();
        for w in &d.steps {
            steps.push(json!({ "setWeight": w }));
            if *w < 100 {
                steps.push(json!({ "pause": { "duration": pause } }));
            }
        }
        Value::Array(steps)
    }

    fn deploy_notes(&mut self) {
        let svc = self.svc;
        let d = &svc.deploy;
        let field = if svc.field_locations.contains_key("deploy.strategy") {
            "deploy.strategy"
        } else {
            "deploy"
        };
        match d.strategy {
            Strategy::Recreate => self.r.service_if_written(svc, field, Outcome::Mapped, "`strategy: Recreate`"),
            Strategy::BlueGreen => self.r.approx(
                svc,
                field,
                "blue-green: a rolling update that starts every new pod first (maxSurge 100%, maxUnavailable 0); traffic moves pod by pod as they become ready, not all at once",
            ),
            Strategy::Canary if self.opts.argo_rollouts => self.r.service(
                svc,
                field,
                Outcome::Approximated,
                format!(
                    "an Argo Rollouts canary ({}.rollout.yaml): weights {:?} by replica count (no traffic router), a pause of {} at each step",
                    dns_label(&svc.name),
                    d.steps,
                    crate::common::duration_text(d.step_interval)
                ),
            ),
            Strategy::Canary => self.r.approx(
                svc,
                field,
                "a canary needs Argo Rollouts (--rollouts argo); this is a rolling update of one pod at a time",
            ),
        }
        let canary = d.strategy == Strategy::Canary && self.opts.argo_rollouts;
        if canary {
            self.r
                .mapped(svc, "deploy.steps", "Rollout `setWeight` steps");
            self.r
                .mapped(svc, "deploy.step_interval", "Rollout `pause` between steps");
        } else {
            for f in ["deploy.steps", "deploy.step_interval"] {
                self.r.service_if_written(
                    svc,
                    f,
                    Outcome::Impossible,
                    "there are no canary steps without --rollouts argo",
                );
            }
        }
        self.r.service_if_written(svc, "deploy.verify", Outcome::Impossible, "no analysis is generated: compare error rate and p99 with an Argo Rollouts AnalysisTemplate or Flagger against your metrics");
        self.r.service_if_written(svc, "deploy.keep_warm", Outcome::Impossible, "old pods are not kept warm: `kubectl rollout undo` starts the previous ReplicaSet again");
        self.r.service_if_written(svc, "deploy.drain_timeout", Outcome::Approximated, "part of terminationGracePeriodSeconds: a terminating pod leaves the Service's endpoints and has that long to finish");
        self.r.service_if_written(svc, "deploy.hooks", Outcome::Impossible, "deploy hooks do not exist: run `pre` as a Job before applying, smoke tests as a Rollout analysis or a CI step");
    }

    fn network_policy(&mut self, dependents: Option<&BTreeSet<&str>>, ports: &[Value]) -> Value {
        let svc = self.svc;
        let name = self.name();
        let allowed_ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({ "port": p["port"], "protocol": p["protocol"] }))
            .collect();
        let mut from: Vec<Value> = dependents
            .into_iter()
            .flatten()
            .filter_map(|d| self.rendered.get(*d))
            .map(|d| json!({ "podSelector": { "matchLabels": d.selector } }))
            .collect();
        let routed = svc.route.is_some();
        if routed {
            let ns = self
                .opts
                .ingress_namespace
                .as_deref()
                .unwrap_or("ingress-nginx");
            from.push(json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } } }));
        }
        let ingress = if from.is_empty() {
            json!([])
        } else {
            json!([{ "from": from, "ports": allowed_ports }])
        };
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": self.meta(&name),
            "spec": {
                "podSelector": { "matchLabels": selector(self.project, svc) },
                "policyTypes": ["Ingress"],
                "ingress": ingress,
            },
        })
    }

    fn route(&mut self, port: u16) -> Option<(Value, Schema)> {
        let svc = self.svc;
        let route = svc.route.as_ref()?;
        let name = self.name();
        let strip = route.strip_prefix && route.path != "/";
        if let Some(gateway) = &self.opts.gateway {
            let mut rule = json!({
                "matches": [{ "path": { "type": "PathPrefix", "value": route.path } }],
                "backendRefs": [{ "name": name, "port": port }],
            });
            if strip {
                rule["filters"] = json!([{ "type": "URLRewrite", "urlRewrite": { "path": { "type": "ReplacePrefixMatch", "replacePrefixMatch": "/" } } }]);
            }
            let mut spec = json!({ "parentRefs": [{ "name": gateway }], "rules": [rule] });
            if let Some(h) = &route.host {
                spec["hostnames"] = json!([h]);
            }
            self.r.service(
                svc,
                "route",
                Outcome::Mapped,
                format!(
                    "an HTTPRoute ({name}.httproute.yaml) on the Gateway `{gateway}`{}",
                    if strip {
                        ", the prefix rewritten to /"
                    } else {
                        ""
                    }
                ),
            );
            self.route_extras(route);
            return Some((
                json!({ "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": self.meta(&name), "spec": spec }),
                Schema::GatewayApi,
            ));
        }
        let mut rule = json!({
            "http": { "paths": [{ "path": route.path, "pathType": "Prefix", "backend": { "service": { "name": name, "port": { "number": port } } } }] },
        });
        if let Some(h) = &route.host {
            rule["host"] = json!(h);
        }
        self.r.service(
            svc,
            "route",
            Outcome::Mapped,
            "an Ingress rule (pathType Prefix) to the Service",
        );
        if strip {
            self.r.service(
                svc,
                if svc.field_locations.contains_key("route.strip_prefix") { "route.strip_prefix" } else { "route" },
                Outcome::Approximated,
                "an Ingress forwards the full path: stripping the prefix needs a controller annotation (ingress-nginx: `nginx.ingress.kubernetes.io/rewrite-target`) or --gateway (an HTTPRoute URLRewrite)",
            );
        }
        self.route_extras(route);
        Some((
            json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": self.meta(&name), "spec": { "rules": [rule] } }),
            Schema::Kubernetes,
        ))
    }

    fn route_extras(&mut self, route: &orchestra_manifest::RouteSpec) {
        let svc = self.svc;
        if let Some(s) = &route.sticky {
            let what = match s {
                Sticky::Cookie(c) => format!("cookie `{c}`"),
                Sticky::Header(h) => format!("header `{h}`"),
            };
            self.r.service(svc, "route.sticky", Outcome::Impossible, format!("sticky sessions by {what} are a controller feature (ingress-nginx `affinity: cookie` annotations, Gateway API session persistence)"));
        }
        self.r.service_if_written(svc, "route.balance", Outcome::Impossible, "kube-proxy picks endpoints itself; least-outstanding balancing is a controller or mesh setting");
        self.r.mapped(svc, "route.host", "the rule's host");
        self.r.mapped(svc, "route.path", "the rule's path prefix");
    }
}

/// An argv with `${PORT}` filled in.
fn argv(args: &[String], port: u16) -> Value {
    Value::Array(args.iter().map(|a| json!(subst_port(a, port))).collect())
}

/// What a probe runs.
fn action(check: &Check, port: u16) -> Value {
    match check {
        Check::Http { path, port: p } => {
            json!({ "httpGet": { "path": path, "port": p.unwrap_or(port) } })
        }
        Check::Tcp { port: p } => json!({ "tcpSocket": { "port": p.unwrap_or(port) } }),
        Check::Exec { command } => json!({ "exec": { "command": argv(command, port) } }),
    }
}

fn timed(check: &Check, p: &Probe, port: u16) -> Value {
    let mut v = action(check, port);
    v["periodSeconds"] = json!(secs(p.interval, 1));
    v["timeoutSeconds"] = json!(secs(p.timeout, 1));
    v["failureThreshold"] = json!(p.retries.max(1));
    v
}

/// `uid` or `uid:gid`; `None` for a name.
fn user_ids(user: &str) -> Option<(u64, Option<u64>)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = u.parse().ok()?;
    let gid = match g {
        Some(g) => Some(g.parse().ok()?),
        None => None,
    };
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest(text: &str) -> Manifest {
        let dir = std::env::temp_dir();
        orchestra_manifest::load_str(text, &dir.join("orchestra.yaml"), &Default::default())
            .unwrap()
    }

    #[test]
    fn names_that_clash_once_lowercased_are_reported_not_overwritten() {
        let m = manifest("services:\n  api_v1:\n    image: a\n  api-v1:\n    image: b\n");
        let e = render(&m, &Options::default()).unwrap();
        assert_eq!(e.files.len(), 1);
        assert!(e.files[0].contents.contains("image: a"));
        let n = e.report.find("services.api-v1");
        assert_eq!(n[0].outcome, Outcome::Impossible, "{n:?}");
        assert!(n[0].message.contains("`api_v1`"), "{n:?}");
    }

    #[test]
    fn a_port_published_for_tcp_and_udp_gets_two_names() {
        let m = manifest(
            "services:\n  dns:\n    image: coredns\n    port: 8053\n    ports: [\"53:53/udp\", \"53:53\"]\n",
        );
        let e = render(&m, &Options::default()).unwrap();
        let docs = crate::yaml::parse_documents(&e.files[0].contents).unwrap();
        let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["http", "port-53-udp", "port-53"]);
        assert_eq!(crate::checks::kubernetes(&docs), Vec::<String>::new());
    }
}
