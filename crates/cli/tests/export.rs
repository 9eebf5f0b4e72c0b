//! `orchestra export` through the real binary: files written (and rewritten identically),
//! stale files removed, stdout, the report with file:line:col and as JSON, secrets read
//! from the real store (references by default, values on request), bad input refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::Project;
use serde_json::Value;

const MANIFEST: &str = "\
name: shop
services:
  db:
    image: postgres:16-alpine
    port: 5432
    healthcheck: { tcp: true }
  api:
    image: example/api:1
    port: 8080
    route: /api
    replicas: 2
    depends_on: { db: healthy }
    secrets: [DB_PASSWORD]
    healthcheck: { http: /health, start_period: 5s }
    deploy: { strategy: canary, steps: [20, 100] }
  job:
    command: [make, migrate]
env:
  prod: { services: { api: { replicas: 4 } } }
";

fn ok(p: &Project, args: &[&str]) -> (String, String) {
    let out = p.run(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn set_secret(p: &Project, name: &str, value: &str) {
    set_secret_in(p, name, value, "default");
}

fn set_secret_in(p: &Project, name: &str, value: &str, env: &str) {
    let mut child = p
        .command(&["secrets", "set", name, "--env", env])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn k8s_writes_the_same_bytes_twice_and_reports_with_positions() {
    let p = Project::new(MANIFEST);
    set_secret(&p, "DB_PASSWORD", "hunter2-v1");
    let (_, stderr) = ok(&p, &["export", "k8s", "-o", "out"]);
    let first = files(&p.path().join("out"));
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["api.yaml", "db.yaml"]);
    // The report: what is lost, at the manifest's line and column.
    assert!(
        stderr.contains("orchestra.yaml:16:3: services.job: impossible: a process service"),
        "{stderr}"
    );
    assert!(
        stderr.contains("services.api.deploy.strategy: approximated:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exported 2 files for k8s to out: "),
        "{stderr}"
    );
    // No value without --include-secret-values; the reference names version 1.
    let api = String::from_utf8(first[0].1.clone()).unwrap();
    assert!(!api.contains("hunter2"));
    assert!(api.contains("secretName: db-password-v1-"), "{api}");

    ok(&p, &["export", "k8s", "-o", "out"]);
    assert_eq!(
        files(&p.path().join("out")),
        first,
        "a second export changed the files"
    );

    // A new version is a new Secret name; a service removed since loses its file.
    set_secret(&p, "DB_PASSWORD", "hunter2-v2");
    p.write(
        "orchestra.yaml",
        &MANIFEST
            .replace("  db:\n    image", "  database:\n    image")
            .replace("{ db: healthy }", "{ database: healthy }"),
    );
    let (_, stderr) = ok(&p, &["export", "k8s", "-o", "out"]);
    let names: Vec<String> = files(&p.path().join("out"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["api.yaml", "database.yaml"], "{stderr}");
    assert!(stderr.contains("removed out/db.yaml"), "{stderr}");
    let api = std::fs::read_to_string(p.path().join("out/api.yaml")).unwrap();
    assert!(api.contains("secretName: db-password-v2-"), "{api}");
}

#[test]
fn values_stdout_json_and_errors() {
    let p = Project::new(MANIFEST);
    // A secret missing from the store: named at its reference; nothing written.
    let out = p.run(&["export", "k8s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("orchestra.yaml:13:15: services.api.secrets[0]"),
        "{stderr}"
    );
    assert!(!p.path().join("out").exists());

    set_secret(&p, "DB_PASSWORD", "hunter2");
    let (_, stderr) = ok(
        &p,
        &["export", "k8s", "-o", "out", "--include-secret-values"],
    );
    assert!(
        stderr.contains("secrets.yaml holds secret values"),
        "{stderr}"
    );
    let secrets = p.path().join("out/secrets.yaml");
    let text = std::fs::read_to_string(&secrets).unwrap();
    assert!(text.contains("DB_PASSWORD: aHVudGVyMg=="), "{text}"); // base64 of hunter2
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // -o -: one YAML stream on stdout; the report on stderr.
    let (stdout, _) = ok(&p, &["export", "k8s", "-o", "-", "--rollouts", "argo"]);
    assert!(stdout.contains("kind: Rollout"), "{stdout}");
    assert!(stdout.contains("kind: Deployment"), "{stdout}");

    // --env: the overlay applies, and the secrets come from that environment.
    set_secret_in(&p, "DB_PASSWORD", "prod-password", "prod");
    let (stdout, _) = ok(&p, &["export", "k8s", "-o", "-", "--env", "prod"]);
    assert!(stdout.contains("replicas: 4"), "{stdout}");
    let (stdout, _) = ok(&p, &["export", "k8s", "-o", "-"]);
    assert!(
        stdout.contains("replicas: 2") && !stdout.contains("replicas: 4"),
        "{stdout}"
    );

    // --json: every note, with positions, and the counts.
    let (stdout, _) = ok(
        &p,
        &[
            "export",
            "cloudrun",
            "-o",
            "cr",
            "--json",
            "--stable",
            "api=0123456789ab",
        ],
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["target"], "cloudrun");
    assert_eq!(v["files"][0]["path"], "api.yaml");
    let notes = v["notes"].as_array().unwrap();
    let route = notes
        .iter()
        .find(|n| n["path"] == "services.api.route")
        .unwrap();
    assert_eq!(
        (route["line"].as_u64(), route["col"].as_u64()),
        (Some(10), Some(5))
    );
    assert_eq!(route["outcome"], "mapped");
    let total = v["counts"]["mapped"].as_u64().unwrap()
        + v["counts"]["approximated"].as_u64().unwrap()
        + v["counts"]["impossible"].as_u64().unwrap();
    assert_eq!(total as usize, notes.len());
    let cr = std::fs::read_to_string(p.path().join("cr/api.yaml")).unwrap();
    assert!(cr.contains("revisionName: api-0123456789ab"), "{cr}");

    // Compose: to stdout by default; a file only with --force over an existing one.
    let (stdout, _) = ok(&p, &["export", "compose"]);
    assert!(stdout.contains("services:\n  db:"), "{stdout}");
    p.write("compose.out.yaml", "keep me");
    let out = p.run(&["export", "compose", "-o", "compose.out.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --force"));
    assert_eq!(
        std::fs::read_to_string(p.path().join("compose.out.yaml")).unwrap(),
        "keep me"
    );
    ok(
        &p,
        &["export", "compose", "-o", "compose.out.yaml", "--force"],
    );
    assert!(
        std::fs::read_to_string(p.path().join("compose.out.yaml"))
            .unwrap()
            .contains("image: \"postgres:16-alpine\"")
    );

    // Bad arguments say what is wrong.
    let out = p.run(&["export", "cloudrun", "--stable", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected SERVICE=REVISION"));
    let out = p.run(&["export", "cloudrun", "--stable", "ghost=1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service `ghost`"));
    let out = p.run(&["export", "k8s", "-o", "-", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json prints the report on stdout"));
}

#[test]
fn an_invalid_manifest_is_reported_as_validate_reports_it() {
    let p = Project::new("services:\n  api:\n    image: x\n    replicas: zero\n");
    let out = p.run(&["export", "k8s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("orchestra.yaml:4:15: services.api.replicas"),
        "{stderr}"
    );
    assert!(!p.path().join("out").exists());
}
