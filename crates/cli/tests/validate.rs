//! `orchestra validate` through the real binary: every error, with
//! file:line:col and the field path, and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Project;
use serde_json::Value;

/// Validate `manifest`; return the (line, col, path, message) of each error.
fn errors(manifest: &str) -> Vec<(u64, u64, String, String)> {
    let p = Project::new(manifest);
    let out = p.run(&["validate", "--json"]);
    assert_eq!(out.status.code(), Some(1), "invalid manifests exit 1");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["col"].as_u64().unwrap(),
                e["path"].as_str().unwrap().to_owned(),
                format!(
                    "{} {} {} {}",
                    e["message"].as_str().unwrap_or(""),
                    e["found"].as_str().unwrap_or(""),
                    e["expected"].as_str().unwrap_or(""),
                    e["hint"].as_str().unwrap_or("")
                ),
            )
        })
        .collect()
}

fn one(manifest: &str, line: u64, col: u64, path: &str, needle: &str) {
    let errs = errors(manifest);
    assert!(
        errs.iter()
            .any(|(l, c, p, m)| *l == line && *c == col && p == path && m.contains(needle)),
        "expected {line}:{col} {path} containing {needle:?}, got {errs:#?}"
    );
}

#[test]
fn unknown_field_has_a_did_you_mean_hint() {
    one(
        "services:\n  api:\n    command: [x]\n    helthcheck: { http: /health }\n",
        4,
        5,
        "services.api.helthcheck",
        "healthcheck",
    );
}

#[test]
fn bad_duration_names_the_field() {
    one(
        "services:\n  api:\n    command: [x]\n    healthcheck: { http: /health, interval: 2 seconds }\n",
        4,
        45,
        "services.api.healthcheck.interval",
        "duration",
    );
}

#[test]
fn unknown_dependency() {
    one(
        "services:\n  api:\n    command: [x]\n    depends_on: [stroe]\n  store:\n    command: [y]\n",
        4,
        18,
        "services.api.depends_on[0]",
        "store",
    );
}

#[test]
fn dependency_cycle_shows_its_path() {
    let errs = errors(
        "services:\n  a:\n    command: [x]\n    depends_on: [b]\n  b:\n    command: [x]\n    depends_on: [c]\n  c:\n    command: [x]\n    depends_on: [a]\n",
    );
    assert_eq!(errs.len(), 1, "one cycle, reported once: {errs:#?}");
    assert!(errs[0].3.contains("a -> b -> c -> a"), "{errs:#?}");
}

#[test]
fn duplicate_port() {
    one(
        "services:\n  api:\n    command: [x]\n    port: 8000\n  web:\n    command: [y]\n    port: 8000\n",
        7,
        11,
        "services.web.port",
        "8000",
    );
}

#[test]
fn wrong_type() {
    one(
        "services:\n  api:\n    command: [x]\n    replicas: [2]\n",
        4,
        15,
        "services.api.replicas",
        "sequence",
    );
}

#[test]
fn bad_restart_policy() {
    one(
        "services:\n  api:\n    command: [x]\n    restart: sometimes\n",
        4,
        14,
        "services.api.restart",
        "on-failure",
    );
}

#[test]
fn missing_workload() {
    let errs = errors("services:\n  api:\n    port: 8000\n");
    assert!(
        errs.iter()
            .any(|(l, _, p, m)| *l == 2 && p == "services.api" && m.contains("command")),
        "{errs:#?}"
    );
}

#[test]
fn bad_stop_signal_and_threshold() {
    one(
        "services:\n  api:\n    command: [x]\n    stop_signal: SIGFOO\n",
        4,
        18,
        "services.api.stop_signal",
        "SIGFOO",
    );
    one(
        "services:\n  api:\n    command: [x]\nhealth: { threshold: 80 }\n",
        4,
        22,
        "health.threshold",
        "80%",
    );
}

#[test]
fn yaml_syntax_error_has_a_location() {
    let errs = errors("services:\n  api:\n    command: [x\n  web: {}\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].0 >= 3, "{errs:#?}");
}

#[test]
fn completed_on_a_service_that_always_restarts() {
    one(
        "services:\n  job:\n    command: [x]\n    restart: always\n  api:\n    command: [y]\n    depends_on: { job: { condition: completed } }\n",
        7,
        19,
        "services.api.depends_on.job",
        "always",
    );
}

#[test]
fn every_error_is_reported_at_once_and_rendered_with_the_source_line() {
    let p = Project::new(
        "services:\n  api:\n    command: [x]\n    healthcheck: { http: health, retries: 0 }\n    replica: 2\n  web:\n    command: [y]\n    depends_on: [nope]\n  worker:\n    port: 9000\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "orchestra.yaml:4:",
        "services.api.healthcheck.http",
        "services.api.healthcheck.retries",
        "services.api.replica",
        "did you mean `replicas`",
        "services.worker: missing workload",
        "services.web.depends_on[0]",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(
        err.contains("4 |     healthcheck: { http: health, retries: 0 }"),
        "source line shown:\n{err}"
    );
    assert!(err.contains(" errors found"), "{err}");
}

#[test]
fn a_valid_manifest_exits_zero_and_env_overlays_are_checked() {
    let p = Project::new(
        "services:\n  api:\n    command: [x]\nenv:\n  prod:\n    services:\n      api: { replicas: 3 }\n",
    );
    let out = p.run(&["validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    let out = p.run(&["validate", "--env", "prod", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"]["services"][0]["replicas"], 3);
    let out = p.run(&["validate", "--env", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("prod"),
        "known environments are listed"
    );
}

#[test]
fn no_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::orchestra_bin())
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no orchestra.yaml (or compose.yaml, docker-compose.yml) found")
    );
}

#[test]
fn import_writes_a_valid_manifest_and_reports_what_it_changed() {
    let p = Project::new("services: {}\n");
    p.write(
        "docker-compose.yml",
        "x-common: &common\n  restart: unless-stopped\nservices:\n  redis:\n    <<: *common\n    image: redis:7\n    healthcheck:\n      test: [\"CMD\", \"redis-cli\", \"ping\"]\n      interval: 5s\n    networks: [backend]\n  api:\n    <<: *common\n    image: acme/api:${API_TAG:-1.0}\n    depends_on:\n      redis: { condition: service_healthy }\n    privileged: true\nnetworks:\n  backend: {}\n",
    );
    let out = p.run(&["import", "docker-compose.yml", "-o", "imported.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("docker-compose.yml:") && err.contains("services.api.privileged"),
        "{err}"
    );
    assert!(
        err.contains("unsupported") && err.contains("mapped"),
        "{err}"
    );
    assert!(err.contains("imported.yaml: valid, 2 services"), "{err}");
    let yaml = std::fs::read_to_string(p.path().join("imported.yaml")).unwrap();
    assert!(yaml.contains("${API_TAG:-1.0}"), "kept as written: {yaml}");
    assert!(yaml.contains("redis-cli"), "{yaml}");
    // Refuses to overwrite, and reports a broken compose file with its location.
    let out = p.run(&["import", "docker-compose.yml", "-o", "imported.yaml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    p.write("bad.yml", "services:\n  api: [oops\n");
    let out = p.run(&["import", "bad.yml", "-o", "-"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.yml:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn import_to_stdout_exits_one_when_its_output_does_not_validate() {
    let p = Project::new("services: {}\n");
    p.write(
        "c.yaml",
        "services:\n  api:\n    image: redis:7.2\n    ports: [\"80:80\", \"80:80\"]\n",
    );
    let out = p.run(&["import", "c.yaml", "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("orchestra.yaml (stdout)") && err.contains("published twice"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("services:"));
    p.write("ok.yaml", "services:\n  api:\n    image: redis:7.2\n");
    assert!(p.run(&["import", "ok.yaml", "-o", "-"]).status.success());
}

#[test]
fn import_strict_refuses_unknown_keys_and_dropped_dependencies() {
    let p = Project::new("services: {}\n");
    p.write(
        "compose.yaml",
        "services:\n  api:\n    image: acme/api:1\n    enviroment: { A: \"1\" }\n    depends_on: [db, cache]\n  cache:\n    build: git@github.com:acme/cache.git\n",
    );
    let out = p.run(&["import", "compose.yaml", "--strict", "-o", "strict.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--strict: nothing written: 3 unknown key(s) or dropped dependencies"),
        "{err}"
    );
    assert!(
        err.contains("compose.yaml:4:5: services.api.enviroment: unsupported: unknown Compose key"),
        "{err}"
    );
    assert!(
        err.contains("compose.yaml:5:18: services.api.depends_on[0]"),
        "{err}"
    );
    assert!(
        err.contains(
            "compose.yaml:5:22: services.api.depends_on[1]: unsupported: `cache` was not imported"
        ),
        "{err}"
    );
    assert!(!p.path().join("strict.yaml").exists());
    // Without --strict the same file imports, with the same notes.
    let out = p.run(&["import", "compose.yaml", "-o", "loose.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A clean file passes --strict, other notes notwithstanding.
    p.write(
        "clean.yaml",
        "services:\n  api:\n    image: acme/api:1\n    container_name: api\n    privileged: true\n",
    );
    let out = p.run(&["import", "clean.yaml", "--strict", "-o", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn import_follows_extends_with_composes_merge_rules() {
    let p = Project::new("services: {}\n");
    p.write(
        "compose.yaml",
        "services:\n  base:\n    image: acme/base:1\n    command: [serve, --fast]\n    environment: [A=1, B=2]\n    expose: [\"9100\"]\n    user: app\n  web:\n    extends: base\n    command: [serve, --slow]\n    environment:\n      B: \"3\"\n    expose: [\"9100\", \"9200\"]\n    user: !reset null\n  worker:\n    extends:\n      file: shared/common.yaml\n      service: job\n    ports: [\"8102:81\"]\n    environment: !override\n      ONLY: \"1\"\n",
    );
    std::fs::create_dir_all(p.path().join("shared/job")).unwrap();
    p.write(
        "shared/common.yaml",
        "services:\n  job:\n    build: ./job\n    env_file: ./job.env\n    environment: { DROPPED: \"1\" }\n    command: run-job\n    ports: [\"8101:80\"]\n",
    );
    p.write("shared/job/Dockerfile", "FROM scratch\n");
    p.write("shared/job.env", "X=1\n");
    let out = p.run(&["import", "compose.yaml", "-o", "imported.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("imported.yaml: valid, 3 services"), "{err}");
    let yaml = std::fs::read_to_string(p.path().join("imported.yaml")).unwrap();
    let web = service_block(&yaml, "web");
    assert!(web.contains("image: acme/base:1"), "{yaml}");
    // command replaces; environment merges by key.
    assert!(web.contains("command: [serve, --slow]"), "{yaml}");
    assert!(
        web.contains("A: \"1\"") && web.contains("B: \"3\""),
        "{yaml}"
    );
    assert!(!web.contains("user:"), "`!reset` unsets: {yaml}");
    assert!(service_block(&yaml, "base").contains("user: app"), "{yaml}");
    // A base in another directory: its paths are rebased; `!override` replaces.
    let worker = service_block(&yaml, "worker");
    assert!(worker.contains("build: ./shared/job"), "{yaml}");
    assert!(worker.contains("env_file: [./shared/job.env]"), "{yaml}");
    assert!(
        worker.contains("ONLY: \"1\"") && !worker.contains("DROPPED"),
        "{yaml}"
    );
    assert!(worker.contains("command: [run-job]"), "{yaml}");
    // Ports append.
    assert!(
        worker.contains("- \"8101:80\"\n      - \"8102:81\""),
        "{yaml}"
    );
}

/// The lines of service `name` in an imported manifest.
fn service_block<'a>(yaml: &'a str, name: &str) -> &'a str {
    let start = yaml
        .find(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("no service {name} in:\n{yaml}"));
    let rest = &yaml[start + 1..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn import_follows_include_and_notes_point_at_the_included_file() {
    let p = Project::new("services: {}\n");
    p.write(
        "compose.yaml",
        "include:\n  - db/compose.yaml\n  - path: cache/compose.yaml\n    env_file: cache/.env\nservices:\n  api:\n    image: acme/api:1\n    depends_on: [db, cache]\n",
    );
    std::fs::create_dir_all(p.path().join("db/data")).unwrap();
    std::fs::create_dir_all(p.path().join("cache")).unwrap();
    p.write(
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:16\n    volumes: [\"./data:/var/lib/postgresql/data\", \"dbdata:/backup\"]\n    privileged: true\nvolumes:\n  dbdata: {}\n",
    );
    p.write(
        "cache/compose.yaml",
        "name: cache\nservices:\n  cache:\n    image: redis:7\n",
    );
    let out = p.run(&["import", "compose.yaml", "-o", "imported.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("imported.yaml: valid, 3 services"), "{err}");
    // A note about an included service names the included file and its position.
    assert!(
        err.contains("db/compose.yaml:5:5: services.db.privileged: unsupported"),
        "{err}"
    );
    assert!(
        err.contains("compose.yaml:4:5: include[1].env_file: mapped"),
        "{err}"
    );
    assert!(
        err.contains("cache/compose.yaml:1:1: name: ignored"),
        "{err}"
    );
    let yaml = std::fs::read_to_string(p.path().join("imported.yaml")).unwrap();
    let db = service_block(&yaml, "db");
    assert!(
        db.contains("- ./db/data:/var/lib/postgresql/data"),
        "{yaml}"
    );
    assert!(db.contains("- dbdata:/backup"), "{yaml}");
    assert!(yaml.contains("volumes:\n  dbdata:"), "{yaml}");
    assert!(
        service_block(&yaml, "cache").contains("image: redis:7"),
        "{yaml}"
    );
}

#[test]
fn import_reports_broken_extends_and_include_at_their_positions() {
    let p = Project::new("services: {}\n");
    p.write(
        "compose.yaml",
        "include:\n  - other.yaml\n  - gone.yaml\nservices:\n  a:\n    extends: b\n    image: x\n  b:\n    extends: { service: a }\n  c:\n    extends: nope\n  d:\n    extends: { file: missing.yaml, service: x }\n  e:\n    image: y\n",
    );
    p.write("other.yaml", "services:\n  e:\n    image: z\n");
    let out = p.run(&["import", "compose.yaml", "-o", "imported.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!p.path().join("imported.yaml").exists());
    for want in [
        "compose.yaml:9:25: services.b.extends: `extends` cycle: `a` extends `b` extends `a`",
        "compose.yaml:11:14: services.c.extends: `extends`: there is no service `nope` in compose.yaml",
        "compose.yaml:13:22: services.d.extends.file: cannot read missing.yaml",
        "compose.yaml:3:5: include[1]: cannot read gone.yaml",
        "other.yaml:2:3: services.e: service `e` is defined twice: at compose.yaml:14:3 and at other.yaml:2:3",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The cycle is reported once, not once per service in it.
    assert_eq!(err.matches("`extends` cycle").count(), 1, "{err}");
}

#[test]
fn import_strict_refuses_unknown_nested_keys_with_their_positions() {
    let p = Project::new("services: {}\n");
    p.write(
        "compose.yaml",
        "services:\n  api:\n    image: acme/api:1\n    healthcheck:\n      test: [CMD, \"true\"]\n      intervall: 5s\n    deploy:\n      resources:\n        limits: { memory: 1g, bogus: 2 }\n",
    );
    let out = p.run(&["import", "compose.yaml", "--strict", "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("compose.yaml:6:7: services.api.healthcheck.intervall: unsupported: unknown key `intervall`: not carried over (did you mean `interval`?)"),
        "{err}"
    );
    assert!(
        err.contains("compose.yaml:9:31: services.api.deploy.resources.limits.bogus: unsupported: unknown key `bogus`"),
        "{err}"
    );
    // Without --strict they are notes and the import succeeds.
    let out = p.run(&["import", "compose.yaml", "-o", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compose files using `extends` (same file and `file:` another directory), checked
/// against Debian's `docker-compose config`.
const DIFFERENTIAL: &[(&str, &[(&str, &str)])] = &[
    (
        "same-file",
        &[(
            "compose.yaml",
            "services:\n  base:\n    image: acme/base:1\n    command: [serve, --fast]\n    environment: [A=1, B=2]\n    expose: [\"80\"]\n  web:\n    extends: base\n    command: serve --slow\n    environment:\n      B: \"3\"\n      C: \"4\"\n    ports: [\"8002:81\"]\n    depends_on: [db]\n  db:\n    image: postgres:16\n    environment: { POSTGRES_PASSWORD: pw }\n",
        )],
    ),
    (
        "chain-and-file",
        &[
            (
                "compose.yaml",
                "services:\n  api:\n    extends:\n      file: common/base.yaml\n      service: app\n    environment:\n      ROLE: api\n  jobs:\n    extends: api\n    command: [worker, --queue, default]\n    ports: [\"9002:8001\"]\n    depends_on: [cache]\n  cache:\n    image: redis:7\n    command: redis-server --save \"\"\n",
            ),
            (
                "common/base.yaml",
                "services:\n  app:\n    extends: root\n    image: acme/app:2\n    environment:\n      LOG: debug\n  root:\n    image: acme/root:1\n    command: [app, serve]\n    environment: [LOG=info, TZ=UTC]\n",
            ),
        ],
    ),
];

/// Compose's effective services (`docker-compose config`) as {image, command,
/// environment, ports, depends_on} per service.
const COMPOSE_FACTS: &str = r#"
import json, shlex, sys, yaml
doc = yaml.safe_load(sys.stdin)
out = {}
for name, s in doc["services"].items():
    cmd = s.get("command")
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    env = s.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    ports = []
    for p in s.get("ports") or []:
        if isinstance(p, dict):
            ports.append("%s:%s" % (p.get("published"), p["target"]))
        else:
            ports.append(str(p))
    deps = s.get("depends_on") or []
    out[name] = {"image": s.get("image"), "command": cmd,
                 "environment": {k: str(v) for k, v in env.items()},
                 "ports": ports, "depends_on": sorted(deps)}
print(json.dumps(out))
"#;

/// The same facts from `orchestra validate --json` on the imported manifest.
fn orchestra_facts(manifest: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for s in manifest["services"].as_array().unwrap() {
        let none = Vec::new();
        let ports: Vec<String> = s["ports"]
            .as_array()
            .unwrap_or(&none)
            .iter()
            .map(|p| format!("{}:{}", p["host_port"], p["container_port"]))
            .collect();
        let mut deps: Vec<String> = s["depends_on"]
            .as_array()
            .unwrap_or(&none)
            .iter()
            .map(|d| d["service"].as_str().unwrap().to_owned())
            .collect();
        deps.sort();
        out.insert(
            s["name"].as_str().unwrap().to_owned(),
            serde_json::json!({
                "image": s["workload"]["image"],
                "command": s["workload"]["command"],
                "environment": s["env"],
                "ports": ports,
                "depends_on": deps,
            }),
        );
    }
    Value::Object(out)
}

#[test]
#[cfg_attr(
    missing_docker_compose,
    ignore = "docker-compose is not installed (apt-get install -y docker-compose)"
)]
fn import_of_extends_gives_the_services_docker_compose_config_gives() {
    let have = std::process::Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "docker-compose missing and CI is set: install Debian's docker-compose (scripts/test.sh does)"
        );
        eprintln!("SKIP: docker-compose not installed (apt-get install -y docker-compose)");
        return;
    }
    for (name, files) in DIFFERENTIAL {
        let p = Project::new("services: {}\n");
        for (path, text) in *files {
            if let Some(dir) = std::path::Path::new(path).parent() {
                std::fs::create_dir_all(p.path().join(dir)).unwrap();
            }
            p.write(path, text);
        }
        let config = std::process::Command::new("docker-compose")
            .args(["-f", "compose.yaml", "config"])
            .current_dir(p.path())
            .output()
            .unwrap();
        assert!(
            config.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&config.stderr)
        );
        let mut py = std::process::Command::new("python3")
            .args(["-c", COMPOSE_FACTS])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(py.stdin.as_mut().unwrap(), &config.stdout).unwrap();
        drop(py.stdin.take());
        let facts = py.wait_with_output().unwrap();
        assert!(facts.status.success(), "{name}: python3 failed");
        let compose: Value = serde_json::from_slice(&facts.stdout).unwrap();

        let out = p.run(&["import", "compose.yaml", "-o", "orchestra.yaml", "--force"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = p.run(&["validate", "--json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["valid"], true, "{name}: {doc}");
        assert_eq!(orchestra_facts(&doc["manifest"]), compose, "{name}");
    }
}
