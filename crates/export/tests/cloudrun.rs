//! `orchestra export cloudrun`: Knative Services as `gcloud run services replace` takes
//! them, checked structurally (no schema is published for them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use orchestra_export::{Options, Outcome, Target, checks, export, yaml::parse_documents};
use serde_json::json;

fn options(m: &orchestra_manifest::Manifest) -> Options {
    Options {
        secrets: common::secrets(m, false),
        ..Options::default()
    }
}

#[test]
fn a_gpu_canary_is_a_traffic_split_with_an_accelerator_and_pinned_secrets() {
    let m = common::load(&common::fixture("canary/orchestra.yaml"));
    let mut opts = options(&m);
    opts.stable_revisions
        .insert("llm".into(), "0123456789ab".into());
    let e = export(&m, Target::Cloudrun, &opts).unwrap();
    let paths: Vec<&str> = e.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["llm.yaml", "web.yaml"]);
    for f in &e.files {
        let docs = parse_documents(&f.contents).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            checks::knative_service(&docs[0]),
            Vec::<String>::new(),
            "{}",
            f.contents
        );
    }
    let llm = &parse_documents(&e.files[0].contents).unwrap()[0];
    let revision = format!("llm-{}", m.service("llm").unwrap().revision());
    assert_eq!(llm["spec"]["template"]["metadata"]["name"], revision);
    assert_eq!(
        llm["spec"]["traffic"],
        json!([
            { "revisionName": "llm-0123456789ab", "percent": 90, "tag": "stable" },
            { "revisionName": revision, "percent": 10, "tag": "canary" },
        ])
    );
    let ann = &llm["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["autoscaling.knative.dev/minScale"], "3");
    assert_eq!(ann["autoscaling.knative.dev/maxScale"], "3");
    let spec = &llm["spec"]["template"]["spec"];
    assert_eq!(
        spec["nodeSelector"]["run.googleapis.com/accelerator"],
        "nvidia-l4"
    );
    assert_eq!(spec["containerConcurrency"], 80);
    assert_eq!(spec["timeoutSeconds"], 300);
    let c = &spec["containers"][0];
    assert_eq!(
        c["resources"]["limits"],
        json!({ "cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1" })
    );
    let env = c["env"].as_array().unwrap();
    let key = env.iter().find(|v| v["name"] == "API_KEY").unwrap();
    assert_eq!(
        key["valueFrom"]["secretKeyRef"],
        json!({ "name": "API_KEY", "key": "2" })
    );
    let tls = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == "TLS_KEY")
        .unwrap();
    assert_eq!(
        tls["secret"]["items"],
        json!([{ "key": "3", "path": "server.key" }])
    );

    // Without the stable revision the new one takes everything, and the report says so.
    let e = export(&m, Target::Cloudrun, &options(&m)).unwrap();
    let llm = &parse_documents(&e.files[0].contents).unwrap()[0];
    assert_eq!(
        llm["spec"]["traffic"],
        json!([{ "revisionName": revision, "percent": 100, "tag": "canary" }])
    );
    assert_eq!(checks::knative_service(llm), Vec::<String>::new());
    let n = e.report.find("services.llm.deploy.strategy");
    assert!(n[0].message.contains("--stable llm=REVISION"), "{}", n[0]);
}

#[test]
fn only_routed_containers_become_services() {
    let m = common::load(&common::root().join("examples/ai-platform-containers/orchestra.yaml"));
    let e = export(&m, Target::Cloudrun, &options(&m)).unwrap();
    let paths: Vec<&str> = e.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["api.yaml"]);
    let docs = parse_documents(&e.files[0].contents).unwrap();
    assert_eq!(checks::knative_service(&docs[0]), Vec::<String>::new());
    for (path, outcome) in [
        ("services.store", Outcome::Impossible),
        ("services.web", Outcome::Impossible),
        ("services.api.readiness", Outcome::Impossible),
        ("services.api.healthcheck", Outcome::Mapped),
    ] {
        let n = e.report.find(path);
        assert_eq!(n.len(), 1, "{path}: {:#?}", e.report.notes);
        assert_eq!(n[0].outcome, outcome, "{}", n[0]);
    }
    // An exec healthcheck cannot be a Cloud Run probe: reported, not rendered.
    let (_, gpu) = common::import(&common::fixture("gpu-platform/docker-compose.yml"));
    let err = export(&gpu, Target::Cloudrun, &options(&gpu)).unwrap_err();
    assert!(err.to_string().contains("no `route:`"), "{err}");
}
