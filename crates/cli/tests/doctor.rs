//! `orchestra doctor` end to end: the real binary against temp projects, real
//! listeners held by the test, a real secret store, fake tools on a PATH the
//! test controls, and a real daemon started with `up -d`.
//!
//! The one test that needs a Docker Engine fails without it when CI is set;
//! elsewhere it prints a SKIP line and returns (ORCHESTRA_SKIP_DOCKER_TESTS=1
//! skips it everywhere).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// `doctor --json` (plus `extra`), parsed, with its exit code.
fn doctor_json(p: &Project, extra: &[&str], env: &[(&str, String)]) -> (Value, i32) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let mut c = p.command(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}):\n{}", text(&out)));
    (doc, code(&out))
}

/// Run `doctor` (text) with extra environment.
fn doctor_text(p: &Project, extra: &[&str], env: &[(&str, String)]) -> Output {
    let mut args = vec!["doctor"];
    args.extend_from_slice(extra);
    let mut c = p.command(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check `{id}` in {doc:#}"))
}

fn status<'a>(doc: &'a Value, id: &str) -> &'a str {
    check(doc, id)["status"].as_str().unwrap()
}

/// The text report's line for a check, and the lines indented under it.
fn block(report: &str, id: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in report.lines() {
        if line.starts_with("    ") {
            if inside {
                out.push(line);
            }
            continue;
        }
        inside = line.split_whitespace().nth(1) == Some(id);
        if inside {
            out.push(line);
        }
    }
    assert!(!out.is_empty(), "no line for `{id}` in:\n{report}");
    out.join("\n")
}

/// A directory of executables put first on PATH.
struct FakeBin(PathBuf);

impl FakeBin {
    fn new(p: &Project) -> Self {
        let dir = p.path().join("fakebin");
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// An executable `name` that prints `output` and exits 0.
    fn tool(&self, name: &str, output: &str) -> &Self {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn path_env(&self) -> (&'static str, String) {
        ("PATH", format!("{}:{}", self.0.display(), path_env()))
    }
}

/// A Docker socket nobody listens on.
fn no_docker(p: &Project) -> (&'static str, String) {
    (
        "DOCKER_HOST",
        format!("unix://{}", p.path().join("no-docker.sock").display()),
    )
}

fn routed_manifest(proxy_port: u16) -> String {
    format!(
        "name: doc\n\
         services:\n  \
           web:\n    \
             command: [demo-service, --port, \"${{PORT}}\", --name, web]\n    \
             route: /\n    \
             healthcheck: {{ http: /health }}\n\
         admin: {{ listen: \"127.0.0.1:0\" }}\n\
         proxy: {{ listen: \"127.0.0.1:{proxy_port}\" }}\n"
    )
}

#[test]
fn a_process_only_manifest_skips_docker_and_gpu_and_its_ports_pass() {
    let p = Project::new(&routed_manifest(free_port()));
    let (doc, rc) = doctor_json(&p, &[], &[]);
    assert_eq!(rc, i32::from(doc["counts"]["fail"].as_u64() != Some(0)));
    assert_eq!(rc, 0, "{doc:#}");
    for id in ["docker", "gpu", "cgroups", "secrets", "tools"] {
        assert_eq!(status(&doc, id), "skip", "{id}: {doc:#}");
        assert!(
            !check(&doc, id)["summary"].as_str().unwrap().is_empty(),
            "a skip says why"
        );
    }
    assert!(
        check(&doc, "docker")["summary"]
            .as_str()
            .unwrap()
            .contains("`image` or `build`")
    );
    assert_eq!(status(&doc, "port.proxy.listen"), "pass", "{doc:#}");
    assert_eq!(status(&doc, "port.admin.listen"), "pass", "{doc:#}");
    assert_eq!(status(&doc, "manifest"), "pass");
    assert_eq!(status(&doc, "state.db"), "pass");

    // The text report: one line per check with its symbol.
    let out = doctor_text(&p, &[], &[]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("- docker "), "{report}");
    assert!(report.contains("✓ port.proxy.listen "), "{report}");
    assert!(report.lines().last().unwrap().starts_with("doctor: "));
    // Nothing was created: no --fix.
    assert!(!p.path().join(".orchestra").exists());
}

#[test]
fn a_port_held_by_another_listener_fails_naming_the_port_and_the_field() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let published = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = published.local_addr().unwrap().port();
    let mut manifest = routed_manifest(port);
    manifest = manifest.replace(
        "admin:",
        &format!(
            "  db:\n    image: local/busybox:1\n    ports: [\"127.0.0.1:{host_port}:6379\"]\nadmin:"
        ),
    );
    let p = Project::new(&manifest);
    let env = [no_docker(&p)];
    let out = doctor_text(&p, &[], &env);
    let report = text(&out);
    assert_eq!(code(&out), 1, "{report}");

    let proxy = block(&report, "port.proxy.listen");
    assert!(proxy.starts_with("✗ "), "{proxy}");
    let fix = proxy
        .lines()
        .find(|l| l.trim_start().starts_with("fix:"))
        .unwrap();
    assert!(fix.contains(&format!("port {port}")), "{fix}");
    assert!(fix.contains("proxy.listen"), "{fix}");

    let db = block(&report, "port.services.db.ports[0]");
    assert!(db.starts_with("✗ "), "{db}");
    assert!(db.contains(&format!("port {host_port}")), "{db}");
    assert!(
        db.contains("fix: ") && db.contains("services.db.ports[0]"),
        "{db}"
    );

    // No Engine on that socket: the docker check fails and says how to start one.
    let docker = block(&report, "docker");
    assert!(
        docker.starts_with("✗ ") && docker.contains("fix: "),
        "{docker}"
    );
    assert!(docker.contains("no-docker.sock"), "{docker}");

    let (doc, rc) = doctor_json(&p, &[], &env);
    assert_eq!(rc, 1);
    assert_eq!(status(&doc, "port.proxy.listen"), "fail");
    drop((held, published));
}

#[test]
fn a_secret_missing_from_the_store_or_a_key_without_access_fails_with_a_fix() {
    let p = Project::new(
        "name: sec\nservices:\n  api:\n    command: [sleep, \"100\"]\n    secrets: [DB_PASSWORD]\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let out = doctor_text(&p, &[], &[]);
    let report = text(&out);
    assert_eq!(code(&out), 1, "{report}");
    let sec = block(&report, "secrets");
    assert!(
        sec.starts_with("✗ ") && sec.contains("DB_PASSWORD"),
        "{sec}"
    );
    assert!(
        sec.contains("fix: ") && sec.contains("`orchestra secrets set DB_PASSWORD`"),
        "{sec}"
    );

    // Stored with this project's key: it decrypts, and the value is never shown.
    let value = "hunter2-not-for-printing";
    let mut c = p.command(&["secrets", "set", "DB_PASSWORD"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), value.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let (doc, _) = doctor_json(&p, &[], &[]);
    assert_eq!(status(&doc, "secrets"), "pass", "{doc:#}");
    let out = doctor_text(&p, &[], &[]);
    assert!(!text(&out).contains(value));
    assert!(!doc.to_string().contains(value));

    // Another person's key, which the store was not encrypted to.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("orchestra.yaml"),
        "name: o\nservices:\n  x:\n    command: [sleep, \"1\"]\n",
    )
    .unwrap();
    let other_key = other.path().join("key.txt");
    let init = std::process::Command::new(orchestra_bin())
        .args(["secrets", "init"])
        .current_dir(other.path())
        .env("ORCHESTRA_AGE_KEY_FILE", &other_key)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init));
    let env = [("ORCHESTRA_AGE_KEY_FILE", other_key.display().to_string())];
    let out = doctor_text(&p, &[], &env);
    let report = text(&out);
    assert_eq!(code(&out), 1, "{report}");
    let sec = block(&report, "secrets");
    assert!(
        sec.starts_with("✗ ") && sec.contains("recipients.txt"),
        "{sec}"
    );
    assert!(
        sec.contains("fix: ") && sec.contains("orchestra secrets recipients add age1"),
        "{sec}"
    );

    // No key at all.
    let env = [(
        "ORCHESTRA_AGE_KEY_FILE",
        p.path().join("nowhere/key.txt").display().to_string(),
    )];
    let (doc, rc) = doctor_json(&p, &[], &env);
    assert_eq!(rc, 1);
    let sec = check(&doc, "secrets");
    assert_eq!(sec["status"], "fail");
    assert!(
        sec["summary"].as_str().unwrap().contains("no age identity"),
        "{sec}"
    );
    assert!(
        sec["fix"]
            .as_str()
            .unwrap()
            .contains("orchestra secrets init")
    );
}

#[test]
fn a_pinned_tool_version_that_differs_from_path_warns_and_fails_under_strict() {
    let p = Project::new(
        "name: tools\nservices:\n  api:\n    command: [sleep, \"100\"]\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let bin = FakeBin::new(&p);
    bin.tool("doctortool", "doctortool version 1.5.0 (test build)");
    p.write(".tool-versions", "doctortool 2.0.0\n");
    let env = [bin.path_env()];

    let (doc, rc) = doctor_json(&p, &[], &env);
    let tool = check(&doc, "tool.doctortool");
    assert_eq!(tool["status"], "warn", "{doc:#}");
    let summary = tool["summary"].as_str().unwrap();
    assert!(
        summary.contains("1.5.0")
            && summary.contains("2.0.0")
            && summary.contains(".tool-versions"),
        "{summary}"
    );
    assert!(tool["fix"].as_str().unwrap().contains(".tool-versions"));
    assert_eq!(rc, 0, "a warning alone exits 0: {doc:#}");

    let out = doctor_text(&p, &["--strict"], &env);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let line = block(&text(&out), "tool.doctortool");
    assert!(line.starts_with("! ") && line.contains("fix: "), "{line}");

    // The same version: it passes (and --strict exits 1 only if something else warns).
    p.write(".tool-versions", "doctortool 1.5\n");
    let (doc, _) = doctor_json(&p, &[], &env);
    assert_eq!(status(&doc, "tool.doctortool"), "pass", "{doc:#}");
    let (doc, rc) = doctor_json(&p, &["--strict"], &env);
    let warned = doc["counts"]["warn"].as_u64().unwrap() + doc["counts"]["fail"].as_u64().unwrap();
    assert_eq!(rc, i32::from(warned > 0), "{doc:#}");

    // A pinned tool that is not on PATH warns too.
    p.write(".tool-versions", "doctortool 1.5\nabsenttool-xyz 3.1\n");
    let (doc, _) = doctor_json(&p, &[], &env);
    let absent = check(&doc, "tool.absenttool-xyz");
    assert_eq!(absent["status"], "warn");
    assert!(absent["summary"].as_str().unwrap().contains("not on PATH"));

    // When the manifest's own command runs the tool, a mismatch fails.
    p.write(".tool-versions", "doctortool 2.0.0\n");
    p.write(
        "orchestra.yaml",
        "name: tools\nservices:\n  api:\n    command: [doctortool, serve]\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let (doc, rc) = doctor_json(&p, &[], &env);
    let tool = check(&doc, "tool.doctortool");
    assert_eq!(tool["status"], "fail", "{doc:#}");
    assert!(
        tool["summary"]
            .as_str()
            .unwrap()
            .contains("services.api.command")
    );
    assert_eq!(rc, 1);
}

#[test]
fn gpus_are_counted_with_nvidia_smi() {
    let p = Project::new(
        "name: gpu\nservices:\n  train:\n    command: [sleep, \"100\"]\n    resources: { gpus: 2 }\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let bin = FakeBin::new(&p);
    bin.tool(
        "nvidia-smi",
        "GPU 0: NVIDIA Test GPU (UUID: GPU-00000000-0000-0000-0000-000000000000)",
    );
    let env = [bin.path_env()];
    let (doc, rc) = doctor_json(&p, &[], &env);
    let gpu = check(&doc, "gpu");
    assert_eq!(gpu["status"], "fail", "{doc:#}");
    assert!(
        gpu["summary"].as_str().unwrap().contains("asks for 2 GPUs"),
        "{gpu}"
    );
    assert!(gpu["fix"].is_string());
    assert_eq!(rc, 1);

    p.write(
        "orchestra.yaml",
        "name: gpu\nservices:\n  train:\n    command: [sleep, \"100\"]\n    resources: { gpus: 1 }\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let (doc, _) = doctor_json(&p, &[], &env);
    assert_eq!(status(&doc, "gpu"), "pass", "{doc:#}");
    assert_eq!(status(&doc, "docker"), "skip", "a process needs no Engine");
}

#[test]
fn the_json_report_has_a_versioned_schema() {
    let p = Project::new(&format!(
        "{}env:\n  ci: {{ services: {{ web: {{ replicas: 2 }} }} }}\n",
        routed_manifest(free_port())
    ));
    let (doc, rc) = doctor_json(&p, &["--env", "ci"], &[]);
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["project"], "doc");
    assert_eq!(doc["environment"], "ci");
    assert!(
        doc["manifest"]
            .as_str()
            .unwrap()
            .ends_with("orchestra.yaml")
    );
    assert!(doc["fixed"].as_array().unwrap().is_empty());
    let checks = doc["checks"].as_array().unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut counted = std::collections::BTreeMap::<String, u64>::new();
    for c in checks {
        let keys: std::collections::BTreeSet<&str> =
            c.as_object().unwrap().keys().map(String::as_str).collect();
        let want: std::collections::BTreeSet<&str> =
            ["id", "status", "summary", "detail", "fix"].into();
        assert_eq!(keys, want, "{c}");
        let st = c["status"].as_str().unwrap();
        assert!(["pass", "warn", "fail", "skip"].contains(&st), "{c}");
        assert!(!c["summary"].as_str().unwrap().is_empty(), "{c}");
        assert!(c["detail"].is_null() || c["detail"].is_string(), "{c}");
        if st == "warn" || st == "fail" {
            assert!(!c["fix"].as_str().unwrap_or_default().is_empty(), "{c}");
        }
        assert!(
            ids.insert(c["id"].as_str().unwrap().to_owned()),
            "duplicate {c}"
        );
        *counted.entry(st.to_owned()).or_default() += 1;
    }
    for st in ["pass", "warn", "fail", "skip"] {
        assert_eq!(
            doc["counts"][st].as_u64().unwrap(),
            counted.get(st).copied().unwrap_or(0),
            "{st}"
        );
    }
    assert_eq!(rc, i32::from(counted.contains_key("fail")));
    for id in [
        "manifest",
        "docker",
        "gpu",
        "cgroups",
        "disk",
        "open-files",
        "state.dir",
        "state.db",
    ] {
        assert!(ids.contains(id), "{id} missing: {ids:?}");
    }

    let help = p.run(&["doctor", "--help"]);
    let help = text(&help);
    for word in [
        "skipped",
        "docker",
        "proxy.listen",
        "--strict",
        "--fix",
        "schema",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn a_manifest_with_errors_prints_them_and_exits_2() {
    let p = Project::new("name: bad\nservices:\n  api:\n    comand: [sleep, \"1\"]\n");
    let out = p.run(&["doctor"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("orchestra.yaml:4:"), "{err}");
    let out = p.run(&["doctor", "--json"]);
    assert_eq!(code(&out), 2);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    assert!(!doc["errors"].as_array().unwrap().is_empty());
    assert!(doc["checks"].as_array().unwrap().is_empty());
}

#[test]
fn with_a_running_daemon_its_proxy_port_is_in_use_by_this_project_and_state_db_reads() {
    let port = free_port();
    let mut p = Project::new(&routed_manifest(port));
    p.up_ok(&[]);
    let (doc, rc) = doctor_json(&p, &[], &[]);
    let proxy = check(&doc, "port.proxy.listen");
    assert_eq!(proxy["status"], "pass", "{doc:#}");
    assert!(
        proxy["summary"]
            .as_str()
            .unwrap()
            .contains("in use by this project's daemon"),
        "{proxy}"
    );
    let db = check(&doc, "state.db");
    assert_eq!(db["status"], "pass", "{doc:#}");
    assert!(db["summary"].as_str().unwrap().contains("schema version"));
    assert_eq!(status(&doc, "state.dir"), "pass");
    assert_eq!(rc, 0, "{doc:#}");
    // The daemon is still serving through the port doctor found in use.
    let (code, _) = http_get(&format!("127.0.0.1:{port}"), "/health").unwrap();
    assert_eq!(code, 200);
}

#[test]
fn fix_makes_the_state_private_and_says_what_it_did() {
    let p = Project::new(
        "name: fix\nservices:\n  api:\n    command: [sleep, \"100\"]\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let root = p.path().join(".orchestra");
    let out = doctor_text(&p, &["--fix"], &[]);
    assert!(text(&out).contains("fixed: created"), "{}", text(&out));
    let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);

    let db = root.join("state.db");
    drop(orchestra_state::StateStore::open(&db).unwrap());
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (doc, _) = doctor_json(&p, &[], &[]);
    assert_eq!(status(&doc, "state.dir"), "warn", "{doc:#}");
    assert_eq!(status(&doc, "state.db"), "warn", "{doc:#}");
    assert!(
        check(&doc, "state.db")["fix"]
            .as_str()
            .unwrap()
            .contains("chmod 600")
    );
    assert_eq!(mode(&db), 0o644, "without --fix nothing changes");

    let (doc, _) = doctor_json(&p, &["--fix"], &[]);
    assert_eq!(status(&doc, "state.dir"), "pass", "{doc:#}");
    assert_eq!(status(&doc, "state.db"), "pass", "{doc:#}");
    let fixed: Vec<&str> = doc["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        fixed.iter().any(|f| f.starts_with("chmod 700")),
        "{fixed:?}"
    );
    assert!(
        fixed.iter().any(|f| f.starts_with("chmod 600")),
        "{fixed:?}"
    );
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&db), 0o600);
}

/// The Engine's socket when one answers; `None` (after a SKIP line) when the
/// test is to be skipped; a failure under CI without one.
fn engine() -> Option<String> {
    if std::env::var("ORCHESTRA_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIP: ORCHESTRA_SKIP_DOCKER_TESTS=1: skipping a doctor test that needs Docker");
        return None;
    }
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let socket = host.strip_prefix("unix://").unwrap_or(&host).to_owned();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Some(host);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no Docker Engine answers on {socket} and CI is set: start one with \
         `export DOCKER_HOST=unix://$(scripts/docker.sh)`"
    );
    eprintln!(
        "SKIP: no Docker Engine answers on {socket}: skipping a doctor test that needs Docker \
         (`export DOCKER_HOST=unix://$(scripts/docker.sh)` starts one)"
    );
    None
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn with_an_engine_the_docker_check_passes_with_its_api_version() {
    let Some(host) = engine() else {
        return;
    };
    let p = Project::new(
        "name: eng\nservices:\n  db:\n    image: local/busybox:1\n    command: [sleep, \"100\"]\n    resources: { memory: 64Mi }\nadmin: { listen: \"127.0.0.1:0\" }\n",
    );
    let (doc, _) = doctor_json(&p, &[], &[("DOCKER_HOST", host)]);
    let docker = check(&doc, "docker");
    assert_eq!(docker["status"], "pass", "{doc:#}");
    assert!(
        docker["summary"].as_str().unwrap().contains("API 1."),
        "{docker}"
    );
    // The Engine said which limits it enforces.
    let cg = check(&doc, "cgroups");
    assert_ne!(cg["status"], "skip", "{cg}");
    assert!(cg["summary"].as_str().unwrap().contains("memory"), "{cg}");
    assert_eq!(status(&doc, "gpu"), "skip");
}
