//! Fixture repositories written to a temp dir, and a clap wrapper for the CLI args.

use std::path::Path;

use clap::Parser;
use orchestra_audit::cli::{AuditArgs, run_audit};

/// A small AI-platform repository with known problems.
pub const FIXTURE: &[(&str, &str)] = &[
    (
        "services/api/Dockerfile",
        "# syntax=docker/dockerfile:1\n\
FROM python:3.12-slim\n\
RUN apt-get update && apt-get install -y curl\n\
COPY . /app\n\
EXPOSE 8000\n\
CMD [\"uvicorn\", \"app:app\", \"--port\", \"${PORT}\"]\n",
    ),
    ("services/api/.env", "SETTING=1\n"),
    (
        "services/worker/Dockerfile",
        "FROM python:3.12-slim\n\
RUN pip install --no-cache-dir celery\n\
USER 10001\n\
CMD [\"celery\", \"-A\", \"tasks\", \"worker\"]\n",
    ),
    (
        "docker-compose.yml",
        r#"services:
  api:
    build: ./services/api
    ports: ["8000:8000"]
    privileged: true  # orchestra: ignore[compose-privileged] needs GPU access for now
  worker:
    build: ./services/worker
    ports: ["8000:9000"]
    healthcheck:
      test: ["CMD", "celery", "inspect", "ping"]
    deploy:
      resources:
        limits: {memory: 1g}
"#,
    ),
];

/// Write `files` under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A temp dir holding the fixture.
pub fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), FIXTURE);
    dir
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: AuditArgs,
}

/// Parse `orchestra audit <args…>` the way the binary would.
pub fn args(argv: &[&str]) -> AuditArgs {
    let mut full = vec!["audit"];
    full.extend_from_slice(argv);
    Cli::try_parse_from(full).unwrap().args
}

/// Run the audit; returns (exit code, output).
pub fn run(argv: &[&str]) -> (i32, String) {
    let mut out = Vec::new();
    let code = run_audit(&args(argv), &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

/// Run with `--format json` and parse the output.
pub fn run_json(argv: &[&str]) -> (i32, serde_json::Value) {
    let mut full = argv.to_vec();
    full.extend_from_slice(&["--format", "json"]);
    let (code, out) = run(&full);
    (code, serde_json::from_str(&out).unwrap())
}

/// Rule ids of a JSON report's findings.
pub fn rule_ids(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}
