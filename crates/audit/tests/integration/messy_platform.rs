//! The messy-platform fixture (tests/fixtures/messy-platform): the exact findings of the
//! secrets, workflows, drift, identifiers and dependencies families.

use std::path::PathBuf;

use crate::common::run_json;

const FAMILIES: &[&str] = &[
    "secret-",
    "workflow-",
    "drift-",
    "stale-id",
    "mixed-cloud-",
    "dependency-",
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn exact_findings_of_the_repository_families() {
    let root = fixtures().join("messy-platform");
    let osv = fixtures().join("osv");
    let (code, report) = run_json(&[
        root.to_str().unwrap(),
        "--stale-id",
        "acme-legacy-9876",
        "--osv-db",
        osv.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let mut got: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["locations"][0]["path"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(rule, _)| FAMILIES.iter().any(|p| rule.starts_with(p)))
        .collect();
    got.sort();
    let expected: Vec<(String, String)> = [
        ("dependency-known-vulnerability", "services/api/poetry.lock"),
        ("dependency-known-vulnerability", "services/api/poetry.lock"),
        (
            "dependency-known-vulnerability",
            "services/api/requirements.txt",
        ),
        (
            "dependency-known-vulnerability",
            "services/api/requirements.txt",
        ),
        ("dependency-known-vulnerability", "web/package-lock.json"),
        ("drift-action-version", ".github/workflows/ci.yml"),
        ("drift-base-image", "docker-compose.yml"),
        ("drift-requirements-lock", "services/api/requirements.txt"),
        ("drift-tool-version", ".tool-versions"),
        ("drift-tool-version", "services/api/Dockerfile"),
        ("drift-tool-version", "services/api/poetry.lock"),
        ("drift-tool-version", "web/Dockerfile"),
        ("mixed-cloud-projects", "scripts/push-image.sh"),
        ("mixed-cloud-regions", "scripts/push-image.sh"),
        ("secret-committed-file", ".env"),
        ("secret-committed-file", "deploy/tls/server.key"),
        (
            "secret-gcp-service-account-key",
            "infra/keys/ci-deployer.json",
        ),
        ("secret-generic-assignment", ".env"),
        ("secret-htpasswd-entry", "deploy/nginx/.htpasswd"),
        ("secret-provider-token", ".env"),
        ("secret-url-credentials", ".env"),
        ("stale-id", "scripts/push-image.sh"),
        ("stale-id", "scripts/push-image.sh"),
        ("stale-id", "scripts/push-image.sh"),
        ("stale-id", "scripts/push-image.sh"),
        (
            "workflow-deploy-without-concurrency",
            ".github/workflows/deploy.yml",
        ),
        ("workflow-duplicate-deploy", ".github/workflows/deploy.yml"),
        (
            "workflow-excessive-permissions",
            ".github/workflows/release.yml",
        ),
        (
            "workflow-long-lived-cloud-key",
            ".github/workflows/deploy.yml",
        ),
        ("workflow-missing-permissions", ".github/workflows/ci.yml"),
        (
            "workflow-template-injection",
            ".github/workflows/triage.yml",
        ),
        (
            "workflow-test-continue-on-error",
            ".github/workflows/ci.yml",
        ),
        ("workflow-unpinned-action", ".github/workflows/ci.yml"),
        ("workflow-unpinned-action", ".github/workflows/deploy.yml"),
    ]
    .iter()
    .map(|(r, p)| ((*r).to_string(), (*p).to_string()))
    .collect();
    assert_eq!(got, expected);
    // Secrets never leave the fixture, whatever the finding.
    let text = report.to_string();
    for secret in [
        "Rk3vX9qL2mW8",
        "fgXg4QjhvWkW",
        "Qm7vX2pL9sK4wR8z",
        "u7Kp2Xq9Lm4Vz8Rt",
        "HqJZimcKQFAMYayBlzkrA",
    ] {
        assert!(!text.contains(secret), "report leaks {secret}");
    }
}

#[test]
fn without_stale_ids_or_database_those_rules_stay_silent() {
    let root = fixtures().join("messy-platform");
    let (_, report) = run_json(&[root.to_str().unwrap(), "--osv-db", "/nonexistent/osv"]);
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(!rules.contains(&"stale-id"));
    assert!(!rules.contains(&"dependency-known-vulnerability"));
    assert!(rules.contains(&"mixed-cloud-projects"));
}
