//! `run_audit` end to end on a fixture repository: formats, exit codes, config, baseline.

use crate::common::{fixture, rule_ids, run, run_json, write_files};

#[test]
fn json_report_has_the_versioned_schema() {
    let dir = fixture();
    let root = dir.path().to_str().unwrap();
    let (code, report) = run_json(&[root]);
    assert_eq!(report["version"], 1);
    assert_eq!(report["tool"]["name"], "orchestra-audit");
    let ids = rule_ids(&report);
    for expected in [
        "compose-port-conflict",
        "dockerfile-package-cache",
        "dockerfile-exec-form-variable",
        "dockerfile-copy-env-without-dockerignore",
        "dockerfile-root-user",
        "compose-missing-healthcheck",
    ] {
        assert!(
            ids.iter().any(|i| i == expected),
            "{expected} missing from {ids:?}"
        );
    }
    // The inline ignore in the compose file hides the privileged finding.
    assert!(!ids.iter().any(|i| i == "compose-privileged"));
    assert!(report["summary"]["suppressed"]["inline"].as_u64().unwrap() >= 1);
    // Port conflict and the .env copy are high: the default --fail-on high fails.
    assert_eq!(code, 1);
    let f = &report["findings"][0];
    for key in [
        "rule",
        "title",
        "severity",
        "confidence",
        "message",
        "help",
        "docs",
        "fingerprint",
    ] {
        assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
    }
    let loc = &f["locations"][0];
    for key in [
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "label",
        "primary",
    ] {
        assert!(loc.get(key).is_some(), "location lacks {key}: {loc}");
    }
    assert_eq!(
        report["summary"]["findings"].as_u64().unwrap() as usize,
        report["findings"].as_array().unwrap().len()
    );
    assert!(report["summary"]["files_scanned"].as_u64().unwrap() >= 4);
}

#[test]
fn fail_on_thresholds() {
    let dir = fixture();
    let root = dir.path().to_str().unwrap();
    assert_eq!(run(&[root, "--fail-on", "never"]).0, 0);
    assert_eq!(run(&[root, "--fail-on", "critical"]).0, 0);
    assert_eq!(run(&[root, "--fail-on", "low"]).0, 1);
    let clean = tempfile::tempdir().unwrap();
    write_files(
        clean.path(),
        &[(
            "Dockerfile",
            "FROM alpine:3.22\nUSER 10001\nCMD [\"true\"]\n",
        )],
    );
    let (code, out) = run(&[clean.path().to_str().unwrap(), "--fail-on", "info"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 findings"), "{out}");
}

#[test]
fn expanded_text_lists_every_finding_by_file_with_snippets() {
    let dir = fixture();
    let (_, out) = run(&[
        dir.path().to_str().unwrap(),
        "--fail-on",
        "never",
        "--expand",
    ]);
    assert!(
        out.contains("\ndocker-compose.yml\n") || out.starts_with("docker-compose.yml\n"),
        "{out}"
    );
    assert!(out.contains("services/api/Dockerfile\n"), "{out}");
    // The exec-form finding shows the line and a caret under `"${PORT}"`.
    let i = out.find("dockerfile-exec-form-variable").unwrap();
    let block = &out[i..];
    assert!(
        block.contains("6 | CMD [\"uvicorn\", \"app:app\", \"--port\", \"${PORT}\"]"),
        "{block}"
    );
    assert!(block.contains("^^^^^^^^^ stays literal"), "{block}");
    assert!(block.contains("= fix: "), "{block}");
    assert!(out.contains("suppressed: 1 inline"), "{out}");
}

#[test]
fn config_disables_overrides_and_ignores_paths() {
    let dir = fixture();
    write_files(
        dir.path(),
        &[(
            ".orchestra-audit.toml",
            "disable = [\"dockerfile-package-cache\"]\n\
fail-on = \"never\"\n\
[severity]\n\
compose-port-conflict = \"info\"\n\
[[ignore]]\n\
paths = [\"services/worker/**\"]\n\
reason = \"legacy\"\n\
[[ignore]]\n\
paths = [\"services/api/**\"]\n\
rules = [\"dockerfile-exec-form-variable\"]\n\
expires = 2020-01-01\n",
        )],
    );
    let (code, report) = run_json(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "config fail-on never");
    let ids = rule_ids(&report);
    assert!(!ids.iter().any(|i| i == "dockerfile-package-cache"));
    let findings = report["findings"].as_array().unwrap();
    let port = findings
        .iter()
        .find(|f| f["rule"] == "compose-port-conflict")
        .unwrap();
    assert_eq!(port["severity"], "info");
    assert!(findings.iter().all(|f| {
        !f["locations"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("services/worker/")
    }));
    // The expired ignore no longer applies, and a note says so.
    assert!(ids.iter().any(|i| i == "dockerfile-exec-form-variable"));
    let notes = report["summary"]["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("expired")),
        "{notes:?}"
    );
}

#[test]
fn invalid_config_lists_every_problem() {
    let dir = fixture();
    write_files(
        dir.path(),
        &[(
            "cfg.toml",
            "disable = [\"no-such-rule\"]\n[severity]\ncompose-privileged = \"extreme\"\n",
        )],
    );
    let args = crate::common::args(&[
        dir.path().to_str().unwrap(),
        "--config",
        dir.path().join("cfg.toml").to_str().unwrap(),
    ]);
    let err = orchestra_audit::cli::run_audit(&args, &mut Vec::new()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("unknown rule `no-such-rule`"), "{msg}");
    assert!(msg.contains("unknown severity `extreme`"), "{msg}");
}

#[test]
fn baseline_hides_known_findings_even_when_code_moves() {
    let dir = fixture();
    let root = dir.path().to_str().unwrap();
    let baseline = dir.path().join("baseline.json");
    let (_, out) = run(&[
        root,
        "--format",
        "json",
        "--output",
        baseline.to_str().unwrap(),
    ]);
    assert!(out.contains("report written to"), "{out}");
    // Move code down two lines and add one new problem.
    write_files(
        dir.path(),
        &[(
            "services/worker/Dockerfile",
            "# moved\n\n\
FROM python:3.12-slim\n\
RUN pip install --no-cache-dir celery\n\
USER 10001\n\
CMD [\"celery\", \"-A\", \"tasks\", \"worker\"]\n\
ADD tasks.py /app/\n",
        )],
    );
    let (code, report) = run_json(&[
        root,
        "--baseline",
        baseline.to_str().unwrap(),
        "--disable",
        "parse-error",
    ]);
    let ids = rule_ids(&report);
    assert!(
        ids.iter().all(|i| i == "dockerfile-add-instead-of-copy"),
        "only the new finding: {ids:?}"
    );
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        report["summary"]["suppressed"]["baseline"]
            .as_u64()
            .unwrap()
            >= 5
    );
    assert_eq!(code, 0, "the new finding is low");
}

#[test]
fn gitignore_is_respected_unless_no_ignore() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (".gitignore", "build/\n"),
            ("build/Dockerfile", "FROM python\n"),
            (".github/workflows/ci.yml", "on: push\njobs: {}\n"),
        ],
    );
    let root = dir.path().to_str().unwrap();
    let (_, r) = run_json(&[root, "--fail-on", "never"]);
    assert!(!rule_ids(&r).iter().any(|i| i == "dockerfile-latest-tag"));
    let (_, r) = run_json(&[root, "--no-ignore"]);
    assert!(rule_ids(&r).iter().any(|i| i == "dockerfile-latest-tag"));
    // Hidden directories such as .github are walked.
    assert!(r["summary"]["files_scanned"].as_u64().unwrap() >= 3);
}

#[test]
fn single_file_and_missing_path() {
    let dir = fixture();
    let file = dir.path().join("services/api/Dockerfile");
    let (_, r) = run_json(&[file.to_str().unwrap()]);
    assert_eq!(r["summary"]["files_scanned"], 1);
    assert!(
        rule_ids(&r)
            .iter()
            .any(|i| i == "dockerfile-exec-form-variable")
    );
    let args = crate::common::args(&["/definitely/not/here"]);
    assert!(orchestra_audit::cli::run_audit(&args, &mut Vec::new()).is_err());
}

#[test]
fn unknown_disable_is_a_usage_error() {
    let dir = fixture();
    let args = crate::common::args(&[dir.path().to_str().unwrap(), "--disable", "nope"]);
    assert!(orchestra_audit::cli::run_audit(&args, &mut Vec::new()).is_err());
}

#[test]
fn list_rules_prints_the_registry() {
    let (code, out) = run(&["--list-rules"]);
    assert_eq!(code, 0);
    assert!(out.contains("dockerfile-latest-tag"));
    assert!(out.lines().count() >= 18);
}

#[test]
fn parse_errors_are_findings_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("docker-compose.yml", "services:\n  api: [\n"),
            ("package.json", "{\"name\": }"),
            ("pyproject.toml", "[tool\n"),
            ("Dockerfile", "FROM alpine:3.22\nRUNN x\n"),
        ],
    );
    let (_, r) = run_json(&[dir.path().to_str().unwrap()]);
    let n = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "parse-error")
        .count();
    assert_eq!(n, 4, "{r}");
}

#[test]
fn secrets_are_masked_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "Zq8-hunter2-s3cr3t-value";
    write_files(
        dir.path(),
        &[(
            "Dockerfile",
            &format!("FROM alpine:3.22\nUSER 10001\nENV DB_PASSWORD={secret}\n"),
        )],
    );
    let root = dir.path().to_str().unwrap();
    for format in ["text", "json", "sarif"] {
        let (_, out) = run(&[root, "--format", format, "--fail-on", "never"]);
        assert!(out.contains("dockerfile-secret-in-env"), "{format}: {out}");
        assert!(!out.contains(secret), "{format} leaks the secret:\n{out}");
    }
    let (_, text) = run(&[root]);
    assert!(
        text.contains("ENV DB_PASSWORD=************************"),
        "{text}"
    );
}

#[test]
fn ignore_on_a_secondary_location_drops_only_that_location() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: a:1\n    # orchestra: ignore[compose-port-conflict] the old proxy\n    ports: [\"80:80\"]\n  b:\n    image: b:1\n    ports: [\"80:8080\"]\n",
        )],
    );
    let (_, r) = run_json(&[dir.path().to_str().unwrap(), "--fail-on", "never"]);
    let port: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "compose-port-conflict")
        .collect();
    assert_eq!(port.len(), 1);
    assert_eq!(
        port[0]["locations"].as_array().unwrap().len(),
        1,
        "{}",
        port[0]
    );
    assert_eq!(port[0]["locations"][0]["line"], 8);
}
