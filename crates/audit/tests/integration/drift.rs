//! Drift family end to end: inline ignores on one pin, cross-file findings.

use crate::common::{run_json, write_files};

fn drift(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with("drift-"))
        .collect()
}

#[test]
fn python_drift_and_an_ignored_pin() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("api/Dockerfile", "FROM python:3.10-slim\n"),
            ("worker/Dockerfile", "FROM python:3.11-slim\n"),
            (".python-version", "3.11\n"),
        ],
    );
    let root = dir.path().to_str().unwrap();
    let (_, report) = run_json(&[root]);
    let d = drift(&report);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["locations"][0]["path"], "api/Dockerfile");
    // The odd pin is intentional: an inline ignore on it silences the finding.
    write_files(
        dir.path(),
        &[(
            "api/Dockerfile",
            "# orchestra: ignore[drift-tool-version] legacy image until Q3\nFROM python:3.10-slim\n",
        )],
    );
    let (_, report) = run_json(&[root]);
    assert!(drift(&report).is_empty());
}
