//! `orchestra export k8s`: the demo platform with containers, an imported Compose platform
//! with GPUs, secrets and dependency conditions, and a canary fixture, each validated by
//! kubernetes-validate --strict for Kubernetes 1.30 to 1.35 and by the structural checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{documents, fixture, import, load, root, secrets};
use orchestra_export::{Export, ExportError, Options, Outcome, Schema, Target, checks, export};
use orchestra_manifest::Manifest;
use serde_json::{Value, json};

fn k8s(m: &Manifest, opts: &Options) -> Export {
    export(m, Target::K8s, opts).unwrap()
}

fn with_secrets(m: &Manifest, values: bool) -> Options {
    Options {
        secrets: secrets(m, values),
        include_secret_values: values,
        ..Options::default()
    }
}

/// Validates the files kubernetes-validate has schemas for; the structural checks run on
/// everything.
fn validate(export: &Export) {
    let docs = documents(&export.files);
    assert_eq!(checks::kubernetes(&docs), Vec::<String>::new());
    for d in docs.iter().filter(|d| d["kind"] == "HTTPRoute") {
        assert_eq!(checks::http_route(d, &docs), Vec::<String>::new());
    }
    let Some(tool) = common::kubernetes_validate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::write(export, dir.path());
    let files: Vec<&str> = export
        .files
        .iter()
        .filter(|f| f.schema == Schema::Kubernetes)
        .map(|f| f.path.as_str())
        .collect();
    common::validate_strict(&tool, dir.path(), &files);
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in {docs:#?}"))
}

fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

#[test]
#[cfg_attr(
    missing_kubernetes_validate,
    ignore = "kubernetes-validate is not installed (pip install kubernetes-validate)"
)]
fn the_demo_platform_with_containers_validates_and_says_what_it_leaves_out() {
    let path = root().join("examples/ai-platform-containers/orchestra.yaml");
    let m = load(&path);
    let e = k8s(&m, &Options::default());
    validate(&e);
    let paths: Vec<&str> = e.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["api.yaml", "store.yaml", "volumes.yaml"]);
    let docs = documents(&e.files);

    let api = find(&docs, "Deployment", "api");
    let init = &api["spec"]["template"]["spec"]["initContainers"];
    assert_eq!(init.as_array().unwrap().len(), 1, "{init:#}");
    assert_eq!(init[0]["name"], "wait-for-store");
    assert!(
        init[0]["command"][2]
            .as_str()
            .unwrap()
            .contains("nc -z -w 2 store 8080")
    );
    let c = container(api);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
    // start_period 30s plus 3 retries, probed every second.
    assert_eq!(c["startupProbe"]["failureThreshold"], 33);
    assert_eq!(
        c["resources"]["limits"],
        json!({ "cpu": "1", "memory": "128Mi" })
    );
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
    let ingress = find(&docs, "Ingress", "api");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["path"],
        "/api"
    );

    // The store accepts only the API (its one dependent that is rendered).
    let np = find(&docs, "NetworkPolicy", "store");
    let from = &np["spec"]["ingress"][0]["from"];
    assert_eq!(from.as_array().unwrap().len(), 1, "{from:#}");
    assert_eq!(
        from[0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "api"
    );
    // The API is routed: the ingress controller's namespace may reach it.
    let np = find(&docs, "NetworkPolicy", "api");
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    let labels = &find(&docs, "Deployment", "store")["metadata"]["labels"];
    for key in ["name", "instance", "version", "part-of", "managed-by"] {
        assert!(
            labels[format!("app.kubernetes.io/{key}")].is_string(),
            "{key}: {labels:#}"
        );
    }

    // Processes cannot run on Kubernetes: said at the service's key.
    let text = std::fs::read_to_string(&path).unwrap();
    for svc in ["migrate", "worker", "web"] {
        let notes = e.report.find(&format!("services.{svc}"));
        assert_eq!(notes.len(), 1, "{svc}: {notes:?}");
        assert_eq!(notes[0].outcome, Outcome::Impossible);
        let line = text.lines().position(|l| l == format!("  {svc}:")).unwrap() + 1;
        assert_eq!((notes[0].line, notes[0].col), (line, 3), "{svc}");
    }
    let dep = e.report.find("services.api.depends_on.migrate");
    assert_eq!(dep[0].outcome, Outcome::Impossible, "{dep:?}");
}

#[test]
#[cfg_attr(
    missing_kubernetes_validate,
    ignore = "kubernetes-validate is not installed (pip install kubernetes-validate)"
)]
fn an_imported_gpu_platform_validates_with_secret_references_and_values() {
    let (_, m) = import(&fixture("gpu-platform/docker-compose.yml"));
    for values in [false, true] {
        let e = k8s(&m, &with_secrets(&m, values));
        validate(&e);
        let docs = documents(&e.files);
        let model = find(&docs, "Deployment", "model");
        let c = container(model);
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "2");
        assert_eq!(c["resources"]["requests"]["nvidia.com/gpu"], "2");
        let tolerations = &model["spec"]["template"]["spec"]["tolerations"];
        assert_eq!(tolerations[0]["key"], "nvidia.com/gpu", "{tolerations:#}");
        // start_period 10m plus 5 retries.
        assert_eq!(c["startupProbe"]["failureThreshold"], 605);
        assert_eq!(c["startupProbe"]["exec"]["command"][0], "curl");

        // depends_on: healthy waits, started and completed are approximated.
        let api = find(&docs, "Deployment", "api");
        let init: Vec<&str> = api["spec"]["template"]["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(init, ["wait-for-model", "wait-for-redis"]);
        for (dep, outcome) in [
            ("migrate", Outcome::Approximated),
            ("model", Outcome::Mapped),
            ("redis", Outcome::Mapped),
            ("embedder", Outcome::Approximated),
        ] {
            let notes = e.report.find(&format!("services.api.depends_on.{dep}"));
            assert_eq!(notes.len(), 1, "{dep}: {notes:?}");
            assert_eq!(notes[0].outcome, outcome, "{dep}: {notes:?}");
        }

        // The migration, which the API waits on to complete, is a Job named after its
        // revision that is not retried (`restart: no`), with no Service.
        let job_name = format!("migrate-{}", m.service("migrate").unwrap().revision());
        let job = find(&docs, "Job", &job_name);
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert!(
            !docs
                .iter()
                .any(|d| d["metadata"]["name"] == "migrate" && d["kind"] != "NetworkPolicy")
        );
        let wait = e.report.find("services.api.depends_on.migrate");
        assert!(
            wait[0].message.contains(&format!(
                "kubectl wait --for=condition=complete job/{job_name}"
            )),
            "{wait:?}"
        );

        // Replicas > 1: a PodDisruptionBudget; one replica: none.
        find(&docs, "PodDisruptionBudget", "api");
        find(&docs, "PodDisruptionBudget", "embedder");
        assert!(
            !docs
                .iter()
                .any(|d| d["kind"] == "PodDisruptionBudget" && d["metadata"]["name"] == "model")
        );

        // The model server accepts only the API; the database only the migration job.
        let allowed = |svc: &str| -> Vec<String> {
            find(&docs, "NetworkPolicy", svc)["spec"]["ingress"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["from"].as_array().unwrap().clone())
                .map(|f| {
                    f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(allowed("model"), ["api"]);
        assert_eq!(allowed("postgres"), ["migrate"]);
        assert!(
            allowed("api").is_empty(),
            "nobody depends on the api and it has no route"
        );

        // A store secret: a versioned, hash-suffixed Secret, given as a file (a container's
        // default); the values only with --include-secret-values.
        let env = c["env"].as_array().unwrap();
        let file_var = env.iter().find(|v| v["name"] == "hf_token_FILE").unwrap();
        assert_eq!(file_var["value"], "/run/secrets/hf_token");
        let vols = model["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap();
        let secret_name = vols
            .iter()
            .find_map(|v| v["secret"]["secretName"].as_str())
            .unwrap();
        assert!(secret_name.starts_with("hf-token-v3-"), "{secret_name}");
        assert_eq!(secret_name.len(), "hf-token-v3-".len() + 10);
        let secret_objects: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Secret").collect();
        if values {
            let s = find(&docs, "Secret", secret_name);
            assert_eq!(s["data"]["hf_token"], "dmFsdWUgb2YgaGZfdG9rZW4="); // "value of hf_token"
            assert!(
                e.files
                    .iter()
                    .any(|f| f.path == "secrets.yaml" && f.sensitive)
            );
        } else {
            assert!(secret_objects.is_empty(), "{secret_objects:#?}");
            assert!(!e.files.iter().any(|f| f.sensitive));
        }

        // env: plain values in a ConfigMap, credential-looking ones (a key, a URL with a
        // password) in a Secret.
        let api_c = container(api);
        let cm = api_c["envFrom"][0]["configMapRef"]["name"]
            .as_str()
            .unwrap();
        let cm = find(&docs, "ConfigMap", cm);
        assert_eq!(cm["data"]["WORKERS"], "4");
        assert_eq!(cm["data"]["MODEL_URL"], "http://model:8000/v1");
        assert!(
            cm["data"]["SESSION_SIGNING_KEY"].is_null() && cm["data"]["DATABASE_URL"].is_null()
        );
        let env_secret = api_c["envFrom"][1]["secretRef"]["name"].as_str().unwrap();
        assert!(env_secret.starts_with("api-env-"), "{env_secret}");
        if values {
            let s = find(&docs, "Secret", env_secret);
            assert!(s["data"]["SESSION_SIGNING_KEY"].is_string());
            assert!(s["data"]["DATABASE_URL"].is_string());
        }
        let user = &api_c["securityContext"];
        assert_eq!(user, &json!({ "runAsUser": 1000, "runAsGroup": 1000 }));
    }
}

#[test]
#[cfg_attr(
    missing_kubernetes_validate,
    ignore = "kubernetes-validate is not installed (pip install kubernetes-validate)"
)]
fn a_canary_becomes_an_argo_rollout_and_routes_an_httproute() {
    let m = load(&fixture("canary/orchestra.yaml"));
    let mut opts = with_secrets(&m, false);
    opts.argo_rollouts = true;
    opts.gateway = Some("public".to_owned());
    let e = k8s(&m, &opts);
    validate(&e);
    let paths: Vec<(&str, Schema)> = e
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.schema))
        .collect();
    assert_eq!(
        paths,
        [
            ("llm.httproute.yaml", Schema::GatewayApi),
            ("llm.rollout.yaml", Schema::ArgoRollout),
            ("llm.yaml", Schema::Kubernetes),
            ("web.httproute.yaml", Schema::GatewayApi),
            ("web.yaml", Schema::Kubernetes),
        ]
    );
    let docs = documents(&e.files);
    let rollout = find(&docs, "Rollout", "llm");
    assert_eq!(checks::argo_rollout(rollout), Vec::<String>::new());
    assert_eq!(
        rollout["spec"]["strategy"]["canary"]["steps"],
        json!([
            { "setWeight": 10 }, { "pause": { "duration": "30s" } },
            { "setWeight": 50 }, { "pause": { "duration": "30s" } },
            { "setWeight": 100 },
        ])
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "llm")
    );
    let route = find(&docs, "HTTPRoute", "llm");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    assert_eq!(route["spec"]["hostnames"], json!(["api.example.com"]));
    assert_eq!(
        route["spec"]["rules"][0]["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"],
        "/"
    );
    let c = container(rollout);
    // `${PORT}` is the container port; env secrets are secretKeyRefs to pinned versions.
    assert_eq!(c["args"][1], "8000");
    let api_key = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "API_KEY")
        .unwrap();
    let r = &api_key["valueFrom"]["secretKeyRef"];
    assert!(
        r["name"].as_str().unwrap().starts_with("api-key-v2-"),
        "{r}"
    );
    assert_eq!(r["key"], "API_KEY");
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|v| v["mountPath"] == "/run/secrets/server.key"),
        "{mounts:#?}"
    );
    // Valid labels label the pods; the others become annotations.
    let meta = &rollout["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["example.com/cost-center"], "42");
    assert_eq!(meta["annotations"]["example.com/owner"], "ML Platform");

    // Without --rollouts argo: a Deployment, and the report says the canary is lost.
    let plain = k8s(&m, &with_secrets(&m, false));
    validate(&plain);
    let docs = documents(&plain.files);
    find(&docs, "Deployment", "llm");
    find(&docs, "Ingress", "llm");
    let notes = plain.report.find("services.llm.deploy.strategy");
    assert_eq!(notes[0].outcome, Outcome::Approximated);
    assert!(notes[0].message.contains("--rollouts argo"), "{notes:?}");
}

#[test]
fn report_notes_point_at_the_fields_they_are_about() {
    let path = fixture("canary/orchestra.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let m = load(&path);
    let e = k8s(&m, &with_secrets(&m, false));
    let mut checked = 0;
    for n in &e.report.notes {
        assert_eq!(n.file, path);
        let key = n.path.rsplit('.').next().unwrap();
        if key.contains('[') {
            continue;
        }
        let at = &lines[n.line - 1][n.col - 1..];
        let key = key.trim_matches('"');
        assert!(
            at.starts_with(key) || at.starts_with(&format!("\"{key}")),
            "{n}: points at `{at}`"
        );
        checked += 1;
    }
    assert!(checked > 20, "{checked} notes checked");
    // The ones a reader must act on.
    for (path, outcome) in [
        ("services.llm.route.sticky", Outcome::Impossible),
        ("services.llm.route.strip_prefix", Outcome::Approximated),
        ("services.llm.deploy.verify", Outcome::Impossible),
        ("services.web.stop_signal", Outcome::Impossible),
        ("services.llm.resources.gpus", Outcome::Mapped),
    ] {
        let notes = e.report.find(path);
        assert_eq!(notes.len(), 1, "{path}: {:#?}", e.report.notes);
        assert_eq!(notes[0].outcome, outcome, "{}", notes[0]);
    }
    // Every field written under a service has a note.
    for svc in &m.services {
        for field in svc
            .field_locations
            .keys()
            .filter(|k| !k.contains(['.', '[']))
        {
            let p = format!("services.{}.{field}", svc.name);
            assert!(
                e.report.notes.iter().any(|n| n.path == p
                    || n.path.starts_with(&format!("{p}."))
                    || n.path.starts_with(&format!("{p}["))),
                "{p} has no note"
            );
        }
    }
}

#[test]
fn two_exports_are_byte_identical() {
    let (_, gpu) = import(&fixture("gpu-platform/docker-compose.yml"));
    let manifests = [
        load(&root().join("examples/ai-platform-containers/orchestra.yaml")),
        load(&fixture("canary/orchestra.yaml")),
        gpu,
    ];
    for m in &manifests {
        for target in [Target::K8s, Target::Compose, Target::Cloudrun] {
            let mut opts = with_secrets(m, true);
            opts.argo_rollouts = true;
            let a = export(m, target, &opts);
            let b = export(m, target, &opts.clone());
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.files, b.files, "{} {}", m.name, target.as_str());
                    assert_eq!(a.report, b.report);
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{a:?} vs {b:?}"),
            }
        }
    }
}

#[test]
fn a_secret_missing_from_the_store_is_an_error_at_its_reference() {
    let path = fixture("canary/orchestra.yaml");
    let m = load(&path);
    let mut opts = with_secrets(&m, false);
    opts.secrets.remove("API_KEY");
    let err = export(&m, Target::K8s, &opts).unwrap_err();
    let ExportError::MissingSecret {
        at,
        path: field,
        name,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(name, "API_KEY");
    assert_eq!(field, "services.llm.secrets[1]");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().nth(at.line - 1).unwrap();
    assert!(line[at.col - 1..].contains("API_KEY"), "{line}");
    assert!(
        err.to_string().contains("orchestra secrets set API_KEY"),
        "{err}"
    );

    // Values asked for but not read: an error too, never an empty Secret.
    let mut opts = with_secrets(&m, true);
    opts.secrets.get_mut("HF_TOKEN").unwrap().value = None;
    let err = export(&m, Target::K8s, &opts).unwrap_err();
    assert!(
        matches!(err, ExportError::MissingSecretValue { .. }),
        "{err}"
    );
}
