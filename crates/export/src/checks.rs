//! Checks over exported files that no schema expresses, as pure functions over the
//! parsed documents ([`crate::yaml::parse_documents`]). Each returns the problems found,
//! one sentence each naming the object; an empty list is a pass.

use serde_json::Value;

/// Every pod template in `docs`: (object `Kind/name`, template).
fn pod_templates(docs: &[Value]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("Deployment" | "Rollout" | "StatefulSet" | "Job")
            )
        })
        .map(|d| (object(d), &d["spec"]["template"]))
        .collect()
}

fn object(d: &Value) -> String {
    format!(
        "{}/{}",
        d["kind"].as_str().unwrap_or("?"),
        d["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    let main = spec["containers"].as_array().into_iter().flatten();
    let init = spec["initContainers"].as_array().into_iter().flatten();
    main.chain(init)
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// GPUs (`nvidia.com/gpu`) are requested exactly as they are limited, and a container
/// that asks for them runs on a pod that tolerates GPU nodes' taint.
#[must_use]
pub fn gpu_requests_equal_limits(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (obj, t) in pod_templates(docs) {
        for c in containers(&t["spec"]) {
            let limit = &c["resources"]["limits"]["nvidia.com/gpu"];
            let request = &c["resources"]["requests"]["nvidia.com/gpu"];
            if limit.is_null() && request.is_null() {
                continue;
            }
            if limit != request {
                problems.push(format!("{obj}: container {}: nvidia.com/gpu request {request} differs from limit {limit}", c["name"]));
            }
            let tolerated = t["spec"]["tolerations"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["key"] == "nvidia.com/gpu"));
            if !tolerated {
                problems.push(format!(
                    "{obj}: container {} asks for GPUs without a toleration of `nvidia.com/gpu`",
                    c["name"]
                ));
            }
        }
    }
    problems
}

/// Every probe's port (a number or a name) is one of its container's `ports`.
#[must_use]
pub fn probe_ports_exist(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (obj, t) in pod_templates(docs) {
        for c in containers(&t["spec"]) {
            let ports: Vec<&Value> = c["ports"].as_array().into_iter().flatten().collect();
            for kind in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let probe = &c[kind];
                let port = if probe["httpGet"].is_object() {
                    &probe["httpGet"]["port"]
                } else if probe["tcpSocket"].is_object() {
                    &probe["tcpSocket"]["port"]
                } else {
                    continue;
                };
                let found = ports.iter().any(|p| match port {
                    Value::String(name) => p["name"].as_str() == Some(name),
                    n => &p["containerPort"] == n,
                });
                if !found {
                    problems.push(format!("{obj}: container {}: the {kind} port {port} is not a port of the container", c["name"]));
                }
            }
        }
    }
    problems
}

/// Every Service's selector selects some pod template's labels, and its named
/// `targetPort`s are ports of those pods' containers.
#[must_use]
pub fn service_selectors_match(docs: &[Value]) -> Vec<String> {
    let templates = pod_templates(docs);
    let mut problems = Vec::new();
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "Service" && d["apiVersion"] == "v1")
    {
        let selector = &d["spec"]["selector"];
        let matched: Vec<&Value> = templates
            .iter()
            .filter(|(_, t)| selects(selector, &t["metadata"]["labels"]))
            .map(|(_, t)| *t)
            .collect();
        if matched.is_empty() {
            problems.push(format!(
                "{}: the selector {selector} matches no pod template",
                object(d)
            ));
            continue;
        }
        for p in d["spec"]["ports"].as_array().into_iter().flatten() {
            if let Value::String(name) = &p["targetPort"] {
                let exists = matched.iter().all(|t| {
                    containers(&t["spec"]).any(|c| {
                        c["ports"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|cp| cp["name"].as_str() == Some(name))
                    })
                });
                if !exists {
                    problems.push(format!(
                        "{}: targetPort `{name}` is not a container port of the pods it selects",
                        object(d)
                    ));
                }
            }
        }
    }
    problems
}

/// Every NetworkPolicy's `podSelector`, and each `from` pod selector, selects some pod
/// template (a policy that selects nothing protects nothing).
#[must_use]
pub fn network_policy_selectors_match(docs: &[Value]) -> Vec<String> {
    let templates = pod_templates(docs);
    let any = |sel: &Value| {
        templates
            .iter()
            .any(|(_, t)| selects(&sel["matchLabels"], &t["metadata"]["labels"]))
    };
    let mut problems = Vec::new();
    for d in docs.iter().filter(|d| d["kind"] == "NetworkPolicy") {
        if !any(&d["spec"]["podSelector"]) {
            problems.push(format!(
                "{}: podSelector {} matches no pod template",
                object(d),
                d["spec"]["podSelector"]
            ));
        }
        for rule in d["spec"]["ingress"].as_array().into_iter().flatten() {
            for from in rule["from"].as_array().into_iter().flatten() {
                if from["podSelector"].is_object()
                    && from["namespaceSelector"].is_null()
                    && !any(&from["podSelector"])
                {
                    problems.push(format!(
                        "{}: the peer {} matches no pod template",
                        object(d),
                        from["podSelector"]
                    ));
                }
            }
        }
    }
    problems
}

/// All the Kubernetes checks above.
#[must_use]
pub fn kubernetes(docs: &[Value]) -> Vec<String> {
    let mut p = gpu_requests_equal_limits(docs);
    p.extend(probe_ports_exist(docs));
    p.extend(service_selectors_match(docs));
    p.extend(network_policy_selectors_match(docs));
    p.extend(
        docs.iter()
            .filter(|d| d["kind"] == "Rollout")
            .flat_map(argo_rollout),
    );
    p
}

/// An Argo Rollouts `Rollout` (its CRD publishes no schema): the API version, a selector
/// that matches the template, and canary steps of increasing weights (0..=100) and pauses.
#[must_use]
pub fn argo_rollout(doc: &Value) -> Vec<String> {
    let obj = object(doc);
    let mut problems = Vec::new();
    if doc["apiVersion"] != "argoproj.io/v1alpha1" || doc["kind"] != "Rollout" {
        problems.push(format!("{obj}: not an argoproj.io/v1alpha1 Rollout"));
    }
    if !selects(
        &doc["spec"]["selector"]["matchLabels"],
        &doc["spec"]["template"]["metadata"]["labels"],
    ) {
        problems.push(format!(
            "{obj}: spec.selector does not match the template's labels"
        ));
    }
    if doc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        problems.push(format!("{obj}: the template has no containers"));
    }
    let Some(steps) = doc["spec"]["strategy"]["canary"]["steps"].as_array() else {
        problems.push(format!("{obj}: no spec.strategy.canary.steps"));
        return problems;
    };
    let mut last = 0;
    for (i, s) in steps.iter().enumerate() {
        let keys: Vec<&String> = s
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        match keys.as_slice() {
            [k] if *k == "setWeight" => match s["setWeight"].as_u64() {
                Some(w) if w <= 100 && w >= last => last = w,
                _ => problems.push(format!(
                    "{obj}: step {i}: setWeight {} is not between the previous weight and 100",
                    s["setWeight"]
                )),
            },
            [k] if *k == "pause" => {
                let d = &s["pause"]["duration"];
                if !(d.is_null() || d.is_u64() || d.as_str().is_some_and(valid_duration)) {
                    problems.push(format!(
                        "{obj}: step {i}: pause duration {d} is not a duration"
                    ));
                }
            }
            _ => problems.push(format!("{obj}: step {i} is neither setWeight nor pause")),
        }
    }
    problems
}

/// A Gateway API HTTPRoute: version, parents, and backends that are Services of `docs`
/// on one of their ports.
#[must_use]
pub fn http_route(doc: &Value, docs: &[Value]) -> Vec<String> {
    let obj = object(doc);
    let mut problems = Vec::new();
    if doc["apiVersion"] != "gateway.networking.k8s.io/v1" || doc["kind"] != "HTTPRoute" {
        problems.push(format!(
            "{obj}: not a gateway.networking.k8s.io/v1 HTTPRoute"
        ));
    }
    if doc["spec"]["parentRefs"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        problems.push(format!("{obj}: no parentRefs"));
    }
    for rule in doc["spec"]["rules"].as_array().into_iter().flatten() {
        for b in rule["backendRefs"].as_array().into_iter().flatten() {
            let ok = docs.iter().any(|d| {
                d["kind"] == "Service"
                    && d["metadata"]["name"] == b["name"]
                    && d["spec"]["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p["port"] == b["port"])
            });
            if !ok {
                problems.push(format!(
                    "{obj}: backend {}:{} is not a Service port",
                    b["name"], b["port"]
                ));
            }
        }
    }
    problems
}

fn valid_duration(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "ms" | "s" | "m" | "h" | "")
}

/// A Knative `serving.knative.dev/v1` Service as Cloud Run takes it: names, scale
/// annotations, concurrency and timeout bounds, one container with one port, a traffic
/// split that adds up to 100 with unique tags, Secret Manager versions in
/// `secretKeyRef.key`, and an accelerator beside every GPU limit.
#[must_use]
pub fn knative_service(doc: &Value) -> Vec<String> {
    let obj = object(doc);
    let mut p = Vec::new();
    if doc["apiVersion"] != "serving.knative.dev/v1" || doc["kind"] != "Service" {
        p.push(format!("{obj}: not a serving.knative.dev/v1 Service"));
    }
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let name_ok = !name.is_empty()
        && name.len() <= 49
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !name_ok {
        p.push(format!(
            "{obj}: `{name}` is not a Cloud Run service name (lowercase, digits, `-`, at most 49)"
        ));
    }
    let template = &doc["spec"]["template"];
    let revision = template["metadata"]["name"].as_str().unwrap_or_default();
    if !revision.starts_with(&format!("{name}-")) || revision.len() > 63 {
        p.push(format!(
            "{obj}: the revision name `{revision}` must be `{name}-...`, at most 63 characters"
        ));
    }
    let ann = &template["metadata"]["annotations"];
    let scale = |k: &str| ann[k].as_str().map(|s| s.parse::<u32>());
    match (
        scale("autoscaling.knative.dev/minScale"),
        scale("autoscaling.knative.dev/maxScale"),
    ) {
        (Some(Ok(min)), Some(Ok(max))) if min <= max && max >= 1 => {}
        (min, max) => p.push(format!(
            "{obj}: minScale {min:?} / maxScale {max:?} are not whole numbers with min <= max"
        )),
    }
    let spec = &template["spec"];
    if spec["containerConcurrency"]
        .as_u64()
        .is_none_or(|c| c > 1000)
    {
        p.push(format!(
            "{obj}: containerConcurrency {} is not 0..=1000",
            spec["containerConcurrency"]
        ));
    }
    if spec["timeoutSeconds"]
        .as_u64()
        .is_none_or(|t| !(1..=3600).contains(&t))
    {
        p.push(format!(
            "{obj}: timeoutSeconds {} is not 1..=3600",
            spec["timeoutSeconds"]
        ));
    }
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.len() != 1 {
        p.push(format!(
            "{obj}: {} containers where one serves",
            containers.len()
        ));
    }
    for c in &containers {
        if c["ports"].as_array().is_none_or(|ps| ps.len() != 1) {
            p.push(format!("{obj}: a container must declare exactly one port"));
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let key = &e["valueFrom"]["secretKeyRef"]["key"];
            if !key.is_null()
                && !key
                    .as_str()
                    .is_some_and(|k| k == "latest" || k.parse::<u32>().is_ok())
            {
                p.push(format!(
                    "{obj}: env {}: secretKeyRef.key {key} is not a Secret Manager version",
                    e["name"]
                ));
            }
        }
        for probe in ["startupProbe", "livenessProbe"] {
            let pr = &c[probe];
            if pr.is_object() && pr["timeoutSeconds"].as_u64() > pr["periodSeconds"].as_u64() {
                p.push(format!(
                    "{obj}: {probe} timeoutSeconds is longer than periodSeconds"
                ));
            }
            if pr["exec"].is_object() {
                p.push(format!(
                    "{obj}: {probe} is an exec probe, which Cloud Run does not run"
                ));
            }
        }
        if !c["resources"]["limits"]["nvidia.com/gpu"].is_null()
            && spec["nodeSelector"]["run.googleapis.com/accelerator"]
                .as_str()
                .is_none()
        {
            p.push(format!(
                "{obj}: a GPU limit without a `run.googleapis.com/accelerator` node selector"
            ));
        }
    }
    let traffic = doc["spec"]["traffic"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total: u64 = traffic.iter().filter_map(|t| t["percent"].as_u64()).sum();
    if total != 100 {
        p.push(format!(
            "{obj}: traffic percents add up to {total}, not 100"
        ));
    }
    let mut tags = std::collections::BTreeSet::new();
    for t in &traffic {
        let named = t["revisionName"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("{name}-")));
        if !(named || t["latestRevision"] == true) {
            p.push(format!("{obj}: traffic target {t} names no revision of this service and is not latestRevision"));
        }
        if let Some(tag) = t["tag"].as_str()
            && !tags.insert(tag.to_owned())
        {
            p.push(format!("{obj}: traffic tag `{tag}` appears twice"));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(labels: Value, container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "api" },
            "spec": { "selector": { "matchLabels": labels }, "template": {
                "metadata": { "labels": labels }, "spec": { "containers": [container] } } },
        })
    }

    #[test]
    fn each_kubernetes_check_catches_its_mistake() {
        let labels = json!({ "app": "api" });
        let gpu = json!({ "name": "api", "ports": [{ "name": "http", "containerPort": 80 }],
            "resources": { "limits": { "nvidia.com/gpu": "2" }, "requests": { "nvidia.com/gpu": "1" } },
            "livenessProbe": { "httpGet": { "path": "/", "port": 81 } } });
        let docs = vec![
            deployment(labels.clone(), gpu),
            json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "api" },
                "spec": { "selector": { "app": "other" }, "ports": [{ "port": 80, "targetPort": "http" }] } }),
            json!({ "kind": "NetworkPolicy", "metadata": { "name": "api" }, "spec": {
                "podSelector": { "matchLabels": { "app": "api" } },
                "ingress": [{ "from": [{ "podSelector": { "matchLabels": { "app": "nobody" } } }] }] } }),
        ];
        let gpu = gpu_requests_equal_limits(&docs);
        assert_eq!(gpu.len(), 2, "{gpu:?}");
        assert!(gpu[0].contains("differs from limit"));
        assert!(gpu[1].contains("toleration"));
        let probes = probe_ports_exist(&docs);
        assert_eq!(probes.len(), 1, "{probes:?}");
        assert!(probes[0].contains("livenessProbe port 81"));
        let svc = service_selectors_match(&docs);
        assert_eq!(svc.len(), 1);
        assert!(svc[0].contains("matches no pod template"));
        let np = network_policy_selectors_match(&docs);
        assert_eq!(np.len(), 1, "{np:?}");
        assert!(np[0].contains("nobody"));
    }

    #[test]
    fn matching_objects_pass() {
        let labels = json!({ "app": "api" });
        let c = json!({ "name": "api", "ports": [{ "name": "http", "containerPort": 80 }],
            "resources": { "limits": { "nvidia.com/gpu": "1" }, "requests": { "nvidia.com/gpu": "1" } },
            "readinessProbe": { "httpGet": { "path": "/", "port": "http" } } });
        let mut d = deployment(labels, c);
        d["spec"]["template"]["spec"]["tolerations"] =
            json!([{ "key": "nvidia.com/gpu", "operator": "Exists" }]);
        let docs = vec![
            d,
            json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "api" },
                "spec": { "selector": { "app": "api" }, "ports": [{ "port": 80, "targetPort": "http" }] } }),
        ];
        assert_eq!(kubernetes(&docs), Vec::<String>::new());
    }

    #[test]
    fn rollout_and_knative_checks_catch_mistakes() {
        let bad = json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": { "name": "api" },
            "spec": { "selector": { "matchLabels": { "app": "api" } },
                "template": { "metadata": { "labels": { "app": "api" } }, "spec": { "containers": [{}] } },
                "strategy": { "canary": { "steps": [{ "setWeight": 50 }, { "setWeight": 10 }, { "pause": { "duration": "soon" } }] } } } });
        let p = argo_rollout(&bad);
        assert_eq!(p.len(), 2, "{p:?}");
        let ksvc = json!({ "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": { "name": "api" },
            "spec": { "template": { "metadata": { "name": "web-1", "annotations": {
                "autoscaling.knative.dev/minScale": "3", "autoscaling.knative.dev/maxScale": "1" } },
                "spec": { "containerConcurrency": 80, "timeoutSeconds": 300, "containers": [{
                    "ports": [{ "containerPort": 80 }],
                    "env": [{ "name": "K", "valueFrom": { "secretKeyRef": { "name": "K", "key": "K" } } }],
                    "resources": { "limits": { "nvidia.com/gpu": "1" } } }] } },
                "traffic": [{ "revisionName": "api-1", "percent": 60, "tag": "a" }, { "latestRevision": true, "percent": 30, "tag": "a" }] } });
        let p = knative_service(&ksvc);
        for needle in [
            "revision name",
            "minScale",
            "secretKeyRef.key",
            "accelerator",
            "add up to 90",
            "appears twice",
        ] {
            assert!(p.iter().any(|m| m.contains(needle)), "{needle}: {p:?}");
        }
    }
}
