//! Workflow family end to end: rule options from the config file, cross-file deploys.

use crate::common::{run_json, write_files};

const CI: &str = "on:\n  push:\n    branches: [main]\npermissions:\n  contents: read\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: codecov/codecov-action@v4\n      - uses: someone/setup-thing@main\n";

fn unpinned(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "workflow-unpinned-action")
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pin_policy_comes_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[(".github/workflows/ci.yml", CI)]);
    let root = dir.path().to_str().unwrap();
    let (_, report) = run_json(&[root]);
    assert_eq!(unpinned(&report).len(), 2, "{:?}", unpinned(&report));
    write_files(
        dir.path(),
        &[(
            ".orchestra-audit.toml",
            "[rules.workflow-unpinned-action]\npin = \"tag\"\n",
        )],
    );
    let (_, report) = run_json(&[root]);
    let msgs = unpinned(&report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("someone/setup-thing"));
}

#[test]
fn duplicate_deploys_name_every_workflow() {
    let deploy = "on:\n  push:\n    branches: [main]\npermissions:\n  contents: read\nconcurrency: prod\njobs:\n  deploy:\n    steps:\n      - run: gcloud run deploy api --region us-central1\n";
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (".github/workflows/deploy.yml", deploy),
            (".github/workflows/deploy-copy.yml", deploy),
        ],
    );
    let (_, report) = run_json(&[dir.path().to_str().unwrap()]);
    let dup: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "workflow-duplicate-deploy")
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["locations"].as_array().unwrap().len(), 2);
    assert!(
        dup[0]["message"]
            .as_str()
            .unwrap()
            .contains(".github/workflows/deploy-copy.yml, .github/workflows/deploy.yml")
    );
}
