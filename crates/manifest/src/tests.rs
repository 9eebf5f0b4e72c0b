//! Loader tests: passes in isolation, then whole manifests, good and bad.

use std::time::Duration;

use super::*;
use crate::interpolate::{interpolate, parse_dotenv};
use crate::units::{normalize_signal, parse_memory, shell_split};
use std::path::PathBuf;

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn vars(pairs: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        environment: None,
        vars: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn ok(src: &str) -> Manifest {
    ok_with(src, &opts())
}

fn ok_with(src: &str, o: &LoadOptions) -> Manifest {
    match load_str(src, Path::new("/proj/orchestra.yaml"), o) {
        Ok(m) => m,
        Err(LoadError::Invalid(diags)) => {
            let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!("unexpected diagnostics:\n{}", text.join("\n"))
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn errs(src: &str) -> Vec<Diagnostic> {
    errs_with(src, &opts())
}

fn errs_with(src: &str, o: &LoadOptions) -> Vec<Diagnostic> {
    match load_str(src, Path::new("/proj/orchestra.yaml"), o) {
        Ok(m) => panic!("expected diagnostics, got {m:#?}"),
        Err(LoadError::Invalid(diags)) => diags,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The single diagnostic of `src`.
fn one(src: &str) -> Diagnostic {
    let mut d = errs(src);
    assert_eq!(d.len(), 1, "expected one diagnostic, got {d:#?}");
    d.remove(0)
}

#[track_caller]
fn at(d: &Diagnostic, line: usize, col: usize, path: &str) {
    assert_eq!(
        (d.line, d.col, d.path.as_str()),
        (line, col, path),
        "wrong position for: {d}"
    );
}

fn lookup_from<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn interp(s: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
    interpolate(s, &lookup_from(pairs))
}

// ---------------------------------------------------------------- interpolation

#[test]
fn interpolation_basic_forms() {
    let v = [("A", "a"), ("EMPTY", "")];
    assert_eq!(interp("${A}", &v).unwrap(), "a");
    assert_eq!(interp("x$A/y", &v).unwrap(), "xa/y");
    assert_eq!(interp("${UNSET}", &v).unwrap(), "");
    assert_eq!(interp("$UNSET.", &v).unwrap(), ".");
    assert_eq!(interp("no vars", &v).unwrap(), "no vars");
    assert_eq!(interp("héllo ${A} wörld", &v).unwrap(), "héllo a wörld");
}

#[test]
fn interpolation_colon_dash_vs_dash() {
    let v = [("A", "a"), ("EMPTY", "")];
    // `:-` replaces unset and empty; `-` only unset.
    assert_eq!(interp("${EMPTY:-d}", &v).unwrap(), "d");
    assert_eq!(interp("${EMPTY-d}", &v).unwrap(), "");
    assert_eq!(interp("${UNSET:-d}", &v).unwrap(), "d");
    assert_eq!(interp("${UNSET-d}", &v).unwrap(), "d");
    assert_eq!(interp("${A:-d}", &v).unwrap(), "a");
    assert_eq!(interp("${A-d}", &v).unwrap(), "a");
    assert_eq!(interp("${UNSET:-}", &v).unwrap(), "");
}

#[test]
fn interpolation_alternatives_and_required() {
    let v = [("A", "a"), ("EMPTY", "")];
    assert_eq!(interp("${A:+yes}", &v).unwrap(), "yes");
    assert_eq!(interp("${EMPTY:+yes}", &v).unwrap(), "");
    assert_eq!(interp("${EMPTY+yes}", &v).unwrap(), "yes");
    assert_eq!(interp("${UNSET+yes}", &v).unwrap(), "");
    assert_eq!(interp("${A:?need A}", &v).unwrap(), "a");
    assert_eq!(interp("${EMPTY?need}", &v).unwrap(), "");
    let e = interp("${EMPTY:?must be set}", &v).unwrap_err();
    assert!(e.contains("`EMPTY`") && e.contains("must be set"), "{e}");
    let e = interp("${UNSET?}", &v).unwrap_err();
    assert!(e.contains("`UNSET` is not set"), "{e}");
}

#[test]
fn interpolation_dollar_escape_and_nesting() {
    let v = [("A", "a"), ("B", "b")];
    assert_eq!(interp("$$", &v).unwrap(), "$");
    assert_eq!(interp("$${A}", &v).unwrap(), "${A}");
    assert_eq!(interp("cost: 5$", &v).unwrap(), "cost: 5$");
    assert_eq!(interp("${X:-${B:-x}}", &v).unwrap(), "b");
    assert_eq!(interp("${X:-${Y:-x}}", &v).unwrap(), "x");
    assert_eq!(interp("${X:-pre-${A}-post}", &v).unwrap(), "pre-a-post");
    assert_eq!(interp("${A:-${NOPE:?not evaluated}}", &v).unwrap(), "a");
    assert!(interp("${X:-${Y:?deep}}", &v).unwrap_err().contains("deep"));
    assert!(interp("${A", &v).is_err());
    assert!(interp("${}", &v).is_err());
    assert!(interp("${A B}", &v).is_err());
}

#[test]
fn interpolation_keeps_port() {
    let v = [("PORT", "1234")];
    assert_eq!(interp("--port=${PORT}", &v).unwrap(), "--port=${PORT}");
    assert_eq!(interp("--port=$PORT", &v).unwrap(), "--port=${PORT}");
    assert_eq!(interp("${PORT:-3000}", &v).unwrap(), "${PORT}");
    assert_eq!(interp("${PORT:+has-port}", &v).unwrap(), "has-port");
    // `$PORTAL` is another variable.
    assert_eq!(interp("$PORTAL", &[("PORTAL", "p")]).unwrap(), "p");
}

#[test]
fn interpolation_in_manifest_values_not_keys() {
    let m = ok_with(
        "services:\n  api:\n    command: [\"./api\", \"--port\", \"${PORT}\", \"${FLAG:-x}\"]\n    env:\n      ${KEY}: ${VAL}\n      LIT: $$HOME\n",
        &vars(&[("KEY", "k"), ("VAL", "v"), ("FLAG", "f")]),
    );
    let api = m.service("api").unwrap();
    assert_eq!(
        api.workload,
        Workload::Process {
            command: vec![
                "./api".into(),
                "--port".into(),
                "${PORT}".into(),
                "f".into()
            ]
        }
    );
    assert_eq!(api.env.get("${KEY}").map(String::as_str), Some("v"));
    assert_eq!(api.env.get("LIT").map(String::as_str), Some("$HOME"));
}

#[test]
fn interpolation_types_follow_the_substituted_text() {
    let m = ok_with(
        "services:\n  api:\n    command: x\n    port: ${API_PORT:-8080}\n    replicas: \"${N}\"\n",
        &vars(&[("N", "3")]),
    );
    let api = m.service("api").unwrap();
    assert_eq!(api.port, Some(8080));
    assert_eq!(api.replicas, 3);
}

#[test]
fn dotenv_file_beside_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# comment\n\nexport IMAGE=postgres:16\nGREETING=\"hello\\nworld\"\nSINGLE='a $b'\nBOTH=from-dotenv # trailing\n",
    )
    .unwrap();
    let file = dir.path().join("orchestra.yaml");
    let src = "services:\n  db:\n    image: ${IMAGE}\n    env:\n      G: ${GREETING}\n      S: ${SINGLE}\n      B: ${BOTH}\n";
    let m = load_str(src, &file, &vars(&[("BOTH", "from-vars")])).unwrap();
    let db = m.service("db").unwrap();
    assert!(matches!(&db.workload, Workload::Image { image, .. } if image == "postgres:16"));
    assert_eq!(db.env["G"], "hello\nworld");
    assert_eq!(db.env["S"], "a $b");
    // Injected variables win over `.env`.
    assert_eq!(db.env["B"], "from-vars");
    let m = load_str(src, &file, &opts()).unwrap();
    assert_eq!(m.service("db").unwrap().env["B"], "from-dotenv");
}

#[test]
fn dotenv_parse_errors_are_reported_against_the_env_file() {
    let (vars, errors) = parse_dotenv("A=1\nnot a line\nB = 2\n");
    assert_eq!(vars.get("A").map(String::as_str), Some("1"));
    assert_eq!(vars.get("B").map(String::as_str), Some("2"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, 2);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "OK=1\nBROKEN\n").unwrap();
    let file = dir.path().join("orchestra.yaml");
    let Err(LoadError::Invalid(d)) = load_str("services:\n  a:\n    command: x\n", &file, &opts())
    else {
        panic!("expected an error");
    };
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].file, dir.path().join(".env"));
    assert_eq!((d[0].line, d[0].col), (2, 1));
}

#[test]
fn required_variable_error_points_at_the_scalar() {
    let d = one(
        "services:\n  api:\n    command: x\n    env:\n      DB_URL: ${DATABASE_URL:?set DATABASE_URL}\n",
    );
    at(&d, 5, 15, "services.api.env.DB_URL");
    assert!(d.message.contains("set DATABASE_URL"), "{d}");
    assert_eq!(
        d.found.as_deref(),
        Some("\"${DATABASE_URL:?set DATABASE_URL}\"")
    );
}

// ---------------------------------------------------------------- env files

#[test]
fn env_files_are_overlaid_by_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("common.env"), "A=file\nB=file\n").unwrap();
    std::fs::write(dir.path().join("local.env"), "B=local\nC=local\n").unwrap();
    let file = dir.path().join("orchestra.yaml");
    let src = "services:\n  api:\n    command: x\n    env_file: [common.env, ./local.env]\n    env:\n      C: explicit\n    working_dir: ./api\n";
    let m = load_str(src, &file, &opts()).unwrap();
    let api = m.service("api").unwrap();
    assert_eq!(api.env["A"], "file");
    assert_eq!(api.env["B"], "local");
    assert_eq!(api.env["C"], "explicit");
    assert_eq!(
        api.env_files,
        vec![dir.path().join("common.env"), dir.path().join("local.env")]
    );
    assert_eq!(api.working_dir, Some(dir.path().join("api")));
}

#[test]
fn missing_env_file_is_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orchestra.yaml");
    let src = "services:\n  api:\n    command: x\n    env_file: missing.env\n";
    let Err(LoadError::Invalid(d)) = load_str(src, &file, &opts()) else {
        panic!("expected an error");
    };
    assert_eq!(d.len(), 1);
    at(&d[0], 4, 15, "services.api.env_file");
    assert_eq!(d[0].message, "env file not found");
}

// ---------------------------------------------------------------- overlays

const OVERLAY: &str = "\
services:
  api:
    command: [./api, --dev]
    port: 8080
    env:
      LOG: debug
      KEEP: yes
    healthcheck:
      http: /health
      retries: 5
env:
  prod:
    services:
      api:
        command: [./api]
        env:
          LOG: info
        healthcheck:
          interval: 5s
  staging:
    name: ${MUST_NOT_BE_EVALUATED:?only prod is applied}
";

#[test]
fn overlay_deep_merges_maps_and_replaces_the_rest() {
    let o = LoadOptions {
        environment: Some("prod".into()),
        vars: BTreeMap::new(),
    };
    let m = ok_with(OVERLAY, &o);
    assert_eq!(m.environment.as_deref(), Some("prod"));
    let api = m.service("api").unwrap();
    assert_eq!(
        api.workload,
        Workload::Process {
            command: vec!["./api".into()]
        }
    );
    assert_eq!(api.port, Some(8080));
    assert_eq!(api.env["LOG"], "info");
    assert_eq!(api.env["KEEP"], "yes");
    let hc = api.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, Duration::from_secs(5));
    assert_eq!(hc.retries, 5);
    assert_eq!(
        hc.check,
        Check::Http {
            path: "/health".into(),
            port: None
        }
    );
}

#[test]
fn overlay_is_ignored_without_environment() {
    let m = ok(OVERLAY);
    assert_eq!(m.environment, None);
    let api = m.service("api").unwrap();
    assert_eq!(api.env["LOG"], "debug");
    assert_eq!(
        api.healthcheck.as_ref().unwrap().interval,
        Duration::from_secs(1)
    );
}

#[test]
fn unknown_environment_lists_known_ones() {
    let o = LoadOptions {
        environment: Some("prd".into()),
        vars: BTreeMap::new(),
    };
    let d = errs_with(OVERLAY, &o);
    assert_eq!(d.len(), 1, "{d:#?}");
    at(&d[0], 11, 1, "env");
    assert_eq!(d[0].message, "unknown environment `prd`");
    assert_eq!(d[0].expected.as_deref(), Some("one of `prod`, `staging`"));
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `prod`?"));

    let d = errs_with("services:\n  a:\n    command: x\n", &o);
    at(&d[0], 1, 1, "env");
}

// ---------------------------------------------------------------- scalar formats

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
    assert_eq!(
        parse_duration("1h2m3s4ms"),
        Ok(Duration::new(3723, 4_000_000))
    );
    assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    for bad in [
        "",
        "5",
        "2 seconds",
        "s",
        "1.2.3s",
        "-1s",
        "1d",
        "1m 30s",
        "ms5",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn memory_sizes() {
    assert_eq!(parse_memory("1024"), Ok(1024));
    assert_eq!(parse_memory("512Mi"), Ok(512 << 20));
    assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
    assert_eq!(parse_memory("512m"), Ok(512 << 20));
    assert_eq!(parse_memory("1g"), Ok(1 << 30));
    assert_eq!(parse_memory("256MB"), Ok(256 << 20));
    assert_eq!(parse_memory("64k"), Ok(64 << 10));
    assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
    assert_eq!(parse_memory("100b"), Ok(100));
    for bad in ["", "0", "lots", "12zb", "1.2.3g", "-1g", "Mi"] {
        assert!(parse_memory(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn signals_and_command_splitting() {
    assert_eq!(normalize_signal("int"), Ok("SIGINT".into()));
    assert_eq!(normalize_signal("SIGQUIT"), Ok("SIGQUIT".into()));
    assert_eq!(normalize_signal("sigusr1"), Ok("SIGUSR1".into()));
    assert_eq!(normalize_signal("SIGTREM"), Err(Some("SIGTERM".into())));
    assert_eq!(normalize_signal("9"), Err(None));
    assert_eq!(
        shell_split(r#"python -m http.server  'a b' "c \"d\"" e\ f"#).unwrap(),
        vec!["python", "-m", "http.server", "a b", "c \"d\"", "e f"]
    );
    assert_eq!(shell_split("x ''").unwrap(), vec!["x", ""]);
    assert!(shell_split("echo 'oops").is_err());
}

// ---------------------------------------------------------------- YAML features

#[test]
fn anchors_aliases_and_merge_keys() {
    let m = ok("\
x-defaults: &defaults
  restart: always
  stop_signal: INT
  env: &env
    LOG: info
x-probe: &probe
  http: /health
  interval: 2s
services:
  api:
    <<: *defaults
    command: ./api
    stop_signal: QUIT
    healthcheck:
      <<: *probe
      interval: 3s
  worker:
    <<: [*defaults, {replicas: 2, restart: no}]
    command: ./worker
    env: *env
");
    let api = m.service("api").unwrap();
    assert_eq!(api.restart.policy, Restart::Always);
    assert_eq!(api.stop_signal, "SIGQUIT");
    assert_eq!(api.env["LOG"], "info");
    let hc = api.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, Duration::from_secs(3));
    assert!(matches!(&hc.check, Check::Http { path, .. } if path == "/health"));
    let worker = m.service("worker").unwrap();
    // The first merge source wins over later ones.
    assert_eq!(worker.restart.policy, Restart::Always);
    assert_eq!(worker.replicas, 2);
    assert_eq!(worker.stop_signal, "SIGINT");
    assert_eq!(worker.env["LOG"], "info");
}

#[test]
fn errors_inside_merged_content_point_at_the_anchor() {
    let d = one(
        "x-base: &base\n  stop_signal: SIGNOPE\nservices:\n  api:\n    <<: *base\n    command: x\n",
    );
    at(&d, 2, 16, "services.api.stop_signal");
}

// ---------------------------------------------------------------- full manifest

#[test]
fn full_manifest_and_defaults() {
    let m = ok("\
name: shop
services:
  db:
    image: postgres:16
    port: 5432
    healthcheck:
      exec: pg_isready -h localhost
    restart: always
  migrate:
    build:
      context: ./migrations
      dockerfile: Migrate.Dockerfile
      args: [VERSION=1.10, DEBUG]
      target: run
    command: [migrate, up]
    depends_on:
      db: healthy
    restart: \"no\"
  api:
    command: ./api --port ${PORT}
    port: 8080
    env: { RATE: 1.10, ON: true, EMPTY: \"\" }
    depends_on:
      db: { condition: service_healthy }
      migrate: completed
    healthcheck: { http: /health, port: 9090, interval: 500ms, timeout: 250ms, retries: 2, start_period: 1m }
    readiness: { tcp: true }
    restart:
      policy: on-failure
      backoff: { initial: 1s, max: 1m }
      max_restarts: 5
    replicas: 3
    stop_signal: sigint
    stop_grace_period: 30s
    resources: { cpus: 0.5, memory: 512Mi, gpus: 1, pids: 100 }
    profiles: [web]
    x-notes: anything
  web:
    build: ./web
    entrypoint: [node]
    depends_on: [api]
    readiness: { tcp: 3000 }
profiles:
  backend: [db, api]
health:
  threshold: 80%
admin:
  listen: 127.0.0.1:7070
x-anything: { ignored: true }
");
    assert_eq!(m.name, "shop");
    assert_eq!(m.dir, PathBuf::from("/proj"));
    let names: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "migrate", "api", "web"]);
    assert_eq!(m.profiles["backend"], vec!["db", "api"]);
    assert!((m.health.threshold - 0.8).abs() < 1e-9);
    assert_eq!(m.admin_listen.as_deref(), Some("127.0.0.1:7070"));

    let db = m.service("db").unwrap();
    assert_eq!(db.location, Location { line: 3, col: 3 });
    assert_eq!(
        db.healthcheck.as_ref().unwrap().check,
        Check::Exec {
            command: vec!["pg_isready".into(), "-h".into(), "localhost".into()]
        }
    );
    // Defaults.
    assert_eq!(db.replicas, 1);
    assert_eq!(db.stop_signal, "SIGTERM");
    assert_eq!(db.stop_grace_period, Duration::from_secs(10));
    let hc = db.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, Duration::from_secs(1));
    assert_eq!(hc.timeout, Duration::from_secs(1));
    assert_eq!(hc.retries, 3);
    assert_eq!(hc.start_period, Duration::from_secs(30));
    assert_eq!(db.restart.backoff_initial, Duration::from_millis(500));
    assert_eq!(db.restart.backoff_max, Duration::from_secs(30));
    assert_eq!(db.restart.max_restarts, None);
    assert_eq!(db.resources, Resources::default());

    let migrate = m.service("migrate").unwrap();
    assert_eq!(migrate.restart.policy, Restart::No);
    let Workload::Build {
        build,
        command,
        entrypoint,
    } = &migrate.workload
    else {
        panic!("expected build");
    };
    assert_eq!(build.context, PathBuf::from("/proj/migrations"));
    assert_eq!(build.dockerfile, Some(PathBuf::from("Migrate.Dockerfile")));
    assert_eq!(build.args.get("VERSION").map(String::as_str), Some("1.10"));
    assert!(!build.args.contains_key("DEBUG"));
    assert_eq!(build.target.as_deref(), Some("run"));
    assert_eq!(
        command.as_deref(),
        Some(&["migrate".to_owned(), "up".to_owned()][..])
    );
    assert_eq!(entrypoint, &None);
    assert_eq!(migrate.depends_on[0].condition, Condition::Healthy);

    let api = m.service("api").unwrap();
    assert_eq!(
        api.workload,
        Workload::Process {
            command: vec!["./api".into(), "--port".into(), "${PORT}".into()]
        }
    );
    assert_eq!(api.env["RATE"], "1.10");
    assert_eq!(api.env["ON"], "true");
    assert_eq!(api.env["EMPTY"], "");
    assert_eq!(
        api.depends_on,
        vec![
            Dependency {
                service: "db".into(),
                condition: Condition::Healthy,
                location: Location { line: 24, col: 7 }
            },
            Dependency {
                service: "migrate".into(),
                condition: Condition::Completed,
                location: Location { line: 25, col: 7 }
            },
        ]
    );
    let hc = api.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.check,
        Check::Http {
            path: "/health".into(),
            port: Some(9090)
        }
    );
    assert_eq!(hc.interval, Duration::from_millis(500));
    assert_eq!(hc.timeout, Duration::from_millis(250));
    assert_eq!(hc.retries, 2);
    assert_eq!(hc.start_period, Duration::from_secs(60));
    assert_eq!(
        api.readiness.as_ref().unwrap().check,
        Check::Tcp { port: None }
    );
    assert_eq!(
        api.restart,
        RestartPolicy {
            policy: Restart::OnFailure,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_restarts: Some(5),
        }
    );
    assert_eq!(api.replicas, 3);
    assert_eq!(api.stop_signal, "SIGINT");
    assert_eq!(api.stop_grace_period, Duration::from_secs(30));
    assert_eq!(
        api.resources,
        Resources {
            cpus: Some(0.5),
            memory: Some(512 << 20),
            gpus: Some(1),
            pids: Some(100)
        }
    );
    assert_eq!(api.profiles, vec!["web"]);

    let web = m.service("web").unwrap();
    assert!(matches!(
        &web.workload,
        Workload::Build { build, command: None, entrypoint: Some(e) }
            if build.context == Path::new("/proj/web") && e == &["node"]
    ));
    assert_eq!(web.depends_on[0].condition, Condition::Started);
    assert_eq!(
        web.readiness.as_ref().unwrap().check,
        Check::Tcp { port: Some(3000) }
    );
}

#[test]
fn name_defaults_to_the_directory() {
    let m = ok("services:\n  a:\n    command: x\n");
    assert_eq!(m.name, "proj");
    assert_eq!(m.file, PathBuf::from("/proj/orchestra.yaml"));
    assert_eq!(m.health, HealthPolicy { threshold: 1.0 });
    assert_eq!(m.admin_listen, None);
    let m = ok("services:\n  a:\n    command: x\nhealth: { threshold: 0.75 }\n");
    assert!((m.health.threshold - 0.75).abs() < 1e-9);
}

// ---------------------------------------------------------------- revisions

#[test]
fn revision_is_stable_and_content_based() {
    let src = "services:\n  api:\n    command: [./api, --fast]\n    env: { A: \"1\" }\n  db:\n    command: [./api, --fast]\n    env: { A: \"1\" }\n";
    let a = ok(src);
    let b = ok(src);
    let rev = a.service("api").unwrap().revision();
    assert_eq!(rev.len(), 12);
    assert!(
        rev.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(rev, b.service("api").unwrap().revision());
    // Moving the service in the file changes nothing.
    let moved = ok(&format!("# a comment\n\n{src}"));
    assert_eq!(rev, moved.service("api").unwrap().revision());
    // A different definition gives a different revision.
    let changed = ok(&src.replacen("--fast", "--slow", 1));
    assert_ne!(rev, changed.service("api").unwrap().revision());
    let env_changed = ok(&src.replacen("A: \"1\"", "A: \"2\"", 1));
    assert_ne!(rev, env_changed.service("api").unwrap().revision());
    // Same content, other name: the name is part of the definition.
    assert_ne!(rev, a.service("db").unwrap().revision());
}

#[test]
fn revision_ignores_dependency_locations() {
    let a = ok("services:\n  db:\n    command: x\n  api:\n    command: y\n    depends_on: [db]\n");
    let b = ok(
        "services:\n  db:\n    command: x\n  api:\n    command: y\n    depends_on:\n      - db\n",
    );
    assert_eq!(
        a.service("api").unwrap().revision(),
        b.service("api").unwrap().revision()
    );
}

// ---------------------------------------------------------------- bad manifests

#[test]
fn bad_unknown_field_with_hint() {
    let d = one("services:\n  api:\n    command: x\n    helthcheck:\n      http: /\n");
    at(&d, 4, 5, "services.api.helthcheck");
    assert_eq!(d.message, "unknown field `helthcheck`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `healthcheck`?"));

    let d = one(
        "services:\n  api:\n    command: x\n    healthcheck:\n      http: /\n      intreval: 2s\n",
    );
    at(&d, 6, 7, "services.api.healthcheck.intreval");
    assert_eq!(d.hint.as_deref(), Some("did you mean `interval`?"));

    let d = errs("servics:\n  api:\n    command: x\n");
    assert_eq!(d.len(), 2, "{d:#?}");
    at(&d[0], 1, 1, "servics");
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `services`?"));
    at(&d[1], 1, 1, "services");
    assert_eq!(d[1].message, "missing required field `services`");

    // No plausible typo: the known fields are listed instead.
    let d = one("services:\n  api:\n    command: x\n    frobnicate: 1\n");
    assert_eq!(d.hint, None);
    assert!(d.expected.as_deref().unwrap().contains("`healthcheck`"));
}

#[test]
fn bad_duration() {
    let d = one(
        "services:\n  api:\n    command: x\n    healthcheck:\n      http: /health\n      interval: 2 seconds\n",
    );
    at(&d, 6, 17, "services.api.healthcheck.interval");
    assert_eq!(d.message, "invalid duration");
    assert_eq!(d.found.as_deref(), Some("\"2 seconds\""));
    assert_eq!(
        d.to_string(),
        "/proj/orchestra.yaml:6:17: services.api.healthcheck.interval: invalid duration: found \"2 seconds\", expected a duration such as 500ms, 2s, 1m30s"
    );
    let d = one("services:\n  api:\n    command: x\n    stop_grace_period: 10\n");
    at(&d, 4, 24, "services.api.stop_grace_period");
    assert_eq!(d.hint.as_deref(), Some("add a unit, e.g. `10s`"));
}

#[test]
fn bad_depends_on_target() {
    let d = one(
        "services:\n  api:\n    command: x\n    depends_on: [db, postgress]\n  postgres:\n    image: postgres\n  db:\n    image: postgres\n",
    );
    at(&d, 4, 22, "services.api.depends_on[1]");
    assert_eq!(d.message, "depends on unknown service `postgress`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `postgres`?"));
}

#[test]
fn bad_dependency_cycle_reports_the_path_once() {
    let d = one("\
services:
  a:
    command: x
    depends_on: [b]
  b:
    command: x
    depends_on:
      c: healthy
  c:
    command: x
    depends_on:
      - a
");
    at(&d, 4, 18, "services.a.depends_on[0]");
    assert_eq!(d.message, "dependency cycle: a -> b -> c -> a");
}

#[test]
fn bad_self_dependency_and_two_separate_cycles() {
    let d = errs(
        "\
services:
  a:
    command: x
    depends_on: [a]
  b:
    command: x
    depends_on: [c]
  c:
    command: x
    depends_on: [b]
  d:
    command: x
    depends_on: [e]
  e:
    command: x
    depends_on: [d]
",
    );
    assert_eq!(d.len(), 3, "{d:#?}");
    at(&d[0], 4, 18, "services.a.depends_on[0]");
    assert_eq!(d[0].message, "service `a` depends on itself");
    at(&d[1], 7, 18, "services.b.depends_on[0]");
    assert_eq!(d[1].message, "dependency cycle: b -> c -> b");
    at(&d[2], 13, 18, "services.d.depends_on[0]");
    assert_eq!(d[2].message, "dependency cycle: d -> e -> d");
}

#[test]
fn bad_duplicate_port() {
    let d = one(
        "services:\n  api:\n    command: x\n    port: 8080\n  web:\n    command: y\n    port: 8080\n",
    );
    at(&d, 7, 11, "services.web.port");
    assert_eq!(d.message, "port 8080 is already used by service `api`");
}

#[test]
fn a_pinned_port_is_for_one_replica_of_an_unrouted_process() {
    let m = ok("services:\n  workers:\n    command: x\n    port: 6390\n    replicas: 2\n");
    assert_eq!(m.service("workers").unwrap().pinned_port(), None);
    // Routed, each replica has its own PORT behind the proxy; one replica may pin it.
    let m = ok(
        "services:\n  api:\n    command: x\n    port: 8000\n    replicas: 2\n    route: /api\n  redis:\n    command: x\n    port: 6390\n",
    );
    assert_eq!(m.service("api").unwrap().pinned_port(), None);
    assert_eq!(m.service("redis").unwrap().pinned_port(), Some(6390));
}

#[test]
fn bad_wrong_type() {
    let d = one("services:\n  api:\n    image:\n      - postgres\n");
    at(&d, 4, 7, "services.api.image");
    assert_eq!(d.message, "wrong type");
    assert_eq!(d.found.as_deref(), Some("a sequence"));
    assert_eq!(d.expected.as_deref(), Some("a string"));

    let d = one("services:\n  api:\n    command: x\n    port: http\n");
    at(&d, 4, 11, "services.api.port");
    assert_eq!(
        d.expected.as_deref(),
        Some("a port number between 1 and 65535")
    );
    let d = one("services:\n  api:\n    command: x\n    port: 70000\n");
    assert_eq!(d.message, "out of range");

    let d = one("services: [api]\n");
    at(&d, 1, 11, "services");
    assert_eq!(d.found.as_deref(), Some("a sequence"));
}

#[test]
fn bad_restart_policy() {
    let d = one("services:\n  api:\n    command: x\n    restart: unless-stopped\n");
    at(&d, 4, 14, "services.api.restart");
    assert_eq!(d.message, "unknown restart policy");
    assert!(d.hint.as_deref().unwrap().contains("`always`"));

    let d = one("services:\n  api:\n    command: x\n    restart:\n      policy: allways\n");
    at(&d, 5, 15, "services.api.restart.policy");
    assert_eq!(d.hint.as_deref(), Some("did you mean `always`?"));

    let d = one(
        "services:\n  api:\n    command: x\n    restart:\n      backoff: { initial: 1m, max: 10s }\n",
    );
    at(&d, 5, 27, "services.api.restart.backoff.initial");
    assert_eq!(d.message, "backoff `initial` is greater than `max`");
}

#[test]
fn bad_missing_workload() {
    let d = one("services:\n  api:\n    port: 8080\n");
    at(&d, 2, 3, "services.api");
    assert_eq!(d.message, "missing workload");

    let d = one("services:\n  api:\n    image: a\n    build: .\n");
    at(&d, 4, 5, "services.api.build");
    let d = one("services:\n  api:\n    command: a\n    entrypoint: b\n");
    at(&d, 4, 5, "services.api.entrypoint");
}

#[test]
fn bad_stop_signal() {
    let d = one("services:\n  api:\n    command: x\n    stop_signal: SIGTREM\n");
    at(&d, 4, 18, "services.api.stop_signal");
    assert_eq!(d.message, "unknown signal");
    assert_eq!(d.hint.as_deref(), Some("did you mean `SIGTERM`?"));
}

#[test]
fn bad_threshold() {
    let d = one("services:\n  api:\n    command: x\nhealth:\n  threshold: 80\n");
    at(&d, 5, 14, "health.threshold");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"80%\"?"));
    let d = one("services:\n  api:\n    command: x\nhealth:\n  threshold: 120%\n");
    at(&d, 5, 14, "health.threshold");
    let d = one("services:\n  api:\n    command: x\nhealth:\n  threshold: most\n");
    assert_eq!(d.message, "invalid threshold");
}

#[test]
fn bad_yaml_syntax() {
    let d = one("services:\n  api:\n    command: [a, b\n    port: 1\n");
    at(&d, 4, 9, "");
    assert!(d.message.starts_with("invalid YAML: "), "{d}");
    let d = one("services:\n  api:\n    command: a\n  api:\n    command: b\n");
    at(&d, 4, 3, "");
    assert!(d.message.contains("duplicated key"), "{d}");
}

#[test]
fn bad_missing_required_variable() {
    let d =
        one("services:\n  api:\n    image: \"registry/${IMAGE:?set IMAGE to the api image}\"\n");
    at(&d, 3, 12, "services.api.image");
    assert_eq!(
        d.message,
        "required variable `IMAGE` is not set or empty: set IMAGE to the api image"
    );
}

#[test]
fn bad_memory() {
    let d = one("services:\n  api:\n    command: x\n    resources:\n      memory: 12zb\n");
    at(&d, 5, 15, "services.api.resources.memory");
    assert!(d.message.starts_with("invalid memory size"), "{d}");
    assert_eq!(d.found.as_deref(), Some("\"12zb\""));
}

#[test]
fn bad_http_path() {
    let d = one("services:\n  api:\n    command: x\n    readiness:\n      http: ready\n");
    at(&d, 5, 13, "services.api.readiness.http");
    assert_eq!(d.message, "invalid HTTP path");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"/ready\"?"));
}

#[test]
fn bad_probe_shapes() {
    let d = one(
        "services:\n  api:\n    command: x\n    healthcheck:\n      http: /\n      tcp: true\n",
    );
    at(&d, 6, 7, "services.api.healthcheck.tcp");
    let d = one(
        "services:\n  api:\n    command: x\n    healthcheck:\n      retries: 0\n      exec: [true]\n",
    );
    at(&d, 5, 16, "services.api.healthcheck.retries");
    let d = one("services:\n  api:\n    command: x\n    healthcheck:\n      interval: 1s\n");
    at(&d, 5, 7, "services.api.healthcheck");
    assert_eq!(d.message, "missing check");
}

#[test]
fn bad_deploy_field() {
    let d = one("services:\n  api:\n    command: x\n    deploy:\n      replicas: 2\n");
    at(&d, 5, 7, "services.api.deploy.replicas");
    assert_eq!(d.message, "unknown field `replicas`");
    let d = one("services:\n  api:\n    command: x\n    deploy: { strategy: canary }\n");
    at(&d, 4, 25, "services.api.deploy.strategy");
    assert!(d.message.contains("needs a `route:`"), "{}", d.message);
    let d = one(
        "services:\n  api:\n    command: x\n    route: /api\n    deploy: { steps: [50, 10] }\n",
    );
    at(&d, 5, 27, "services.api.deploy.steps[1]");
}

#[test]
fn bad_completed_on_always() {
    let d = one(
        "services:\n  job:\n    command: x\n    restart: always\n  api:\n    command: y\n    depends_on:\n      job: { condition: completed }\n",
    );
    at(&d, 8, 7, "services.api.depends_on.job");
    assert!(d.message.contains("`completed` can never be met"), "{d}");
}

#[test]
fn bad_profile_member_and_condition() {
    let d = errs(
        "services:\n  api:\n    command: x\n    depends_on: { api2: ready }\n  api2:\n    command: y\nprofiles:\n  dev: [api, apii]\n",
    );
    assert_eq!(d.len(), 2, "{d:#?}");
    at(&d[0], 4, 25, "services.api.depends_on.api2");
    assert_eq!(d[0].message, "unknown condition");
    at(&d[1], 8, 14, "profiles.dev[1]");
    assert_eq!(d[1].hint.as_deref(), Some("did you mean `api`?"));
}

#[test]
fn control_listen() {
    let m = ok("services:\n  a:\n    command: x\ncontrol:\n  listen: 127.0.0.1:7071\n");
    assert_eq!(m.control_listen.as_deref(), Some("127.0.0.1:7071"));
    let m = ok("services:\n  a:\n    command: x\n");
    assert_eq!(m.control_listen, None);
    let d = one("services:\n  a:\n    command: x\ncontrol:\n  listen: localhost\n");
    at(&d, 5, 11, "control.listen");
    assert_eq!(d.message, "invalid listen address");
    let d = one("services:\n  a:\n    command: x\ncontrol:\n  listne: 127.0.0.1:1\n");
    at(&d, 5, 3, "control.listne");
}

#[test]
fn bad_admin_and_empty_manifests() {
    let d = one("services:\n  a:\n    command: x\nadmin:\n  listen: localhost\n");
    at(&d, 5, 11, "admin.listen");
    let d = one("");
    at(&d, 1, 1, "services");
    let d = one("name: x\n");
    assert_eq!(d.message, "missing required field `services`");
    let d = one("services: {}\n");
    at(&d, 1, 1, "services");
    assert_eq!(d.message, "no services defined");
}

#[test]
fn bad_multiple_errors_in_one_service() {
    let d = errs(
        "\
services:
  api:
    command: []
    port: 0
    replicas: -1
    env: [\"=x\"]
    stop_grace_period: soon
",
    );
    let got: Vec<(usize, usize, &str)> =
        d.iter().map(|d| (d.line, d.col, d.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, 14, "services.api.command"),
            (4, 11, "services.api.port"),
            (5, 15, "services.api.replicas"),
            (6, 11, "services.api.env[0]"),
            (7, 24, "services.api.stop_grace_period"),
        ]
    );
}

#[test]
fn many_errors_are_all_reported_in_file_order() {
    let src = "\
name: demo
servics: {}
services:
  api:
    command: [./api, --port, $PORT]
    port: 8080
    helthcheck: {}
    healthcheck:
      http: health
      interval: 2 seconds
    depends_on: [db, cache]
    restart: sometimes
    stop_signal: SIGFOO
    resources: { memory: lots, cpus: 0 }
  db:
    command: [postgres]
    port: 8080
    depends_on:
      api: healthy
  web:
    deploy: { strategy: canary }
    env: { TOKEN: \"${TOKEN:?missing token}\" }
profiles:
  dev: [api, wbe]
health:
  threshold: 80
admin:
  listen: nowhere
";
    let d = errs(src);
    let got: Vec<(usize, usize, &str)> =
        d.iter().map(|d| (d.line, d.col, d.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, 1, "servics"),
            (7, 5, "services.api.helthcheck"),
            (9, 13, "services.api.healthcheck.http"),
            (10, 17, "services.api.healthcheck.interval"),
            (11, 18, "services.api.depends_on[0]"),
            (11, 22, "services.api.depends_on[1]"),
            (12, 14, "services.api.restart"),
            (13, 18, "services.api.stop_signal"),
            (14, 26, "services.api.resources.memory"),
            (14, 38, "services.api.resources.cpus"),
            (17, 11, "services.db.port"),
            (20, 3, "services.web"),
            (21, 25, "services.web.deploy.strategy"),
            (22, 19, "services.web.env.TOKEN"),
            (24, 14, "profiles.dev[1]"),
            (26, 14, "health.threshold"),
            (28, 11, "admin.listen"),
        ],
        "{d:#?}"
    );
    assert_eq!(d[4].message, "dependency cycle: api -> db -> api");
    let err = LoadError::Invalid(d);
    assert_eq!(err.to_string(), "17 error(s) in manifest");
}

// ---------------------------------------------------------------- files

#[test]
fn find_and_load_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    assert!(matches!(
        find_manifest(&nested),
        Err(LoadError::NotFound { .. })
    ));
    let file = dir.path().join("orchestra.yml");
    std::fs::write(&file, "services:\n  a:\n    command: x\n").unwrap();
    assert_eq!(find_manifest(&nested).unwrap(), file);
    assert_eq!(find_manifest(&file).unwrap(), file);
    let m = load(&file, &opts()).unwrap();
    assert_eq!(m.services.len(), 1);
    assert!(matches!(
        load(&dir.path().join("nope.yaml"), &opts()),
        Err(LoadError::Io { .. })
    ));
}

#[test]
fn diagnostic_display() {
    let d = Diagnostic::new(
        Path::new("orchestra.yaml"),
        Location { line: 12, col: 17 },
        "services.api.x",
        "bad",
    )
    .found("\"y\"")
    .expected("z")
    .hint(Some("try w".to_owned()));
    assert_eq!(
        d.to_string(),
        "orchestra.yaml:12:17: services.api.x: bad: found \"y\", expected z (hint: try w)"
    );
    let d = Diagnostic::new(Path::new("f"), Location { line: 1, col: 2 }, "", "oops");
    assert_eq!(d.to_string(), "f:1:2: oops");
}

// ---------------------------------------------------------------- container fields

#[test]
fn container_fields() {
    let m = ok_with(
        "\
services:
  db:
    image: postgres:16
    ports:
      - 5432
      - \"127.0.0.1:15432:5432\"
      - 8080:80/udp
      - { target: 9000, published: 19000, host_ip: \"::1\" }
      - \"7000-7001:8000-8001\"
      - \"127.0.0.1::6000\"
    volumes:
      - pgdata:/var/lib/postgresql/data
      - ./init:/docker-entrypoint-initdb.d:ro
      - /scratch
      - ~/cache:/cache:rw
      - { type: tmpfs, target: /tmp }
      - { type: bind, source: ./certs, target: /certs, read_only: true }
      - { type: volume, source: models, target: /models }
    secrets: [OPENAI_API_KEY, db_password]
    user: \"1000:1000\"
    labels: { com.example.team: platform, tier: 1, empty: }
    working_dir: /srv
    resources: { gpus: all }
  web:
    build: ./web
    labels: [\"a=b\", flag]
volumes:
  pgdata: {}
  models:
",
        &vars(&[("HOME", "/home/me")]),
    );
    assert_eq!(m.volumes, vec!["pgdata", "models"]);
    let db = m.service("db").unwrap();
    let port = |ip: Option<&str>, host: Option<u16>, container: u16, protocol: &str| PortMapping {
        host_ip: ip.map(str::to_owned),
        host_port: host,
        container_port: container,
        protocol: protocol.to_owned(),
    };
    assert_eq!(
        db.ports,
        vec![
            port(None, None, 5432, "tcp"),
            port(Some("127.0.0.1"), Some(15432), 5432, "tcp"),
            port(None, Some(8080), 80, "udp"),
            port(Some("::1"), Some(19000), 9000, "tcp"),
            port(None, Some(7000), 8000, "tcp"),
            port(None, Some(7001), 8001, "tcp"),
            port(Some("127.0.0.1"), None, 6000, "tcp"),
        ]
    );
    let vol = |kind, source: Option<&str>, target: &str, read_only| Volume {
        kind,
        source: source.map(str::to_owned),
        target: target.to_owned(),
        read_only,
    };
    assert_eq!(
        db.volumes,
        vec![
            vol(
                VolumeKind::Named,
                Some("pgdata"),
                "/var/lib/postgresql/data",
                false
            ),
            vol(
                VolumeKind::Bind,
                Some("/proj/init"),
                "/docker-entrypoint-initdb.d",
                true
            ),
            vol(VolumeKind::Named, None, "/scratch", false),
            vol(VolumeKind::Bind, Some("/home/me/cache"), "/cache", false),
            vol(VolumeKind::Tmpfs, None, "/tmp", false),
            vol(VolumeKind::Bind, Some("/proj/certs"), "/certs", true),
            vol(VolumeKind::Named, Some("models"), "/models", false),
        ]
    );
    assert_eq!(db.secrets, vec!["OPENAI_API_KEY", "db_password"]);
    assert_eq!(db.user.as_deref(), Some("1000:1000"));
    assert_eq!(db.labels["com.example.team"], "platform");
    assert_eq!(db.labels["tier"], "1");
    assert_eq!(db.labels["empty"], "");
    // A container's working directory is a path inside it: not resolved.
    assert_eq!(db.working_dir, Some(PathBuf::from("/srv")));
    assert_eq!(db.resources.gpus, Some(Resources::ALL_GPUS));
    let web = m.service("web").unwrap();
    assert_eq!(web.labels["a"], "b");
    assert_eq!(web.labels["flag"], "");
    assert!(web.ports.is_empty() && web.volumes.is_empty() && web.secrets.is_empty());
}

#[test]
fn host_ports_may_repeat_on_other_addresses_and_protocols() {
    let m = ok(
        "services:\n  a:\n    image: x\n    ports: [\"127.0.0.1:8080:80\", \"8081:81/udp\"]\n  b:\n    image: y\n    ports: [\"127.0.0.2:8080:80\", \"8081:81\"]\n",
    );
    assert_eq!(m.services[1].ports.len(), 2);
}

#[test]
fn revision_json_omits_unset_container_fields() {
    // Manifests without the container fields hash exactly as before they existed.
    let m = ok("services:\n  api:\n    command: [./api]\n");
    let json = serde_json::to_value(&m.services[0]).unwrap();
    for key in ["ports", "volumes", "secrets", "user", "labels"] {
        assert!(json.get(key).is_none(), "{key} serialized: {json}");
    }
    let a = ok("services:\n  api:\n    image: x\n");
    let b = ok("services:\n  api:\n    image: x\n    ports: [\"80\"]\n");
    let c = ok("services:\n  api:\n    image: x\n    secrets: [TOKEN]\n");
    let revs = [&a, &b, &c].map(|m| m.services[0].revision());
    assert_ne!(revs[0], revs[1]);
    assert_ne!(revs[0], revs[2]);
    assert_eq!(revs[1], b.services[0].revision());
}

#[test]
fn optional_env_files_may_be_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.env"), "A=1\n").unwrap();
    let file = dir.path().join("orchestra.yaml");
    let src = "services:\n  api:\n    image: x\n    env_file:\n      - base.env\n      - { path: local.env, required: false }\n";
    let m = load_str(src, &file, &opts()).unwrap();
    assert_eq!(m.services[0].env["A"], "1");
    std::fs::write(dir.path().join("local.env"), "A=2\n").unwrap();
    let m = load_str(src, &file, &opts()).unwrap();
    assert_eq!(m.services[0].env["A"], "2");

    let src = "services:\n  api:\n    image: x\n    env_file:\n      - { path: missing.env }\n      - { required: false }\n      - { path: a.env, required: maybe }\n";
    let Err(LoadError::Invalid(d)) = load_str(src, &file, &opts()) else {
        panic!("expected errors");
    };
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (5, 17, "services.api.env_file[0]", "env file not found"),
            (
                6,
                9,
                "services.api.env_file[1]",
                "missing required field `path`"
            ),
            (7, 34, "services.api.env_file[2].required", "wrong type"),
        ]
    );
}

#[test]
fn bad_container_fields_on_a_process() {
    let d = errs(
        "services:\n  api:\n    command: x\n    ports: [\"80:80\"]\n    volumes: [./a:/a]\n    user: app\n",
    );
    assert_eq!(d.len(), 3, "{d:#?}");
    at(&d[0], 4, 5, "services.api.ports");
    assert_eq!(
        d[0].message,
        "`ports` only applies to containers (`image` or `build`)"
    );
    assert_eq!(
        d[0].hint.as_deref(),
        Some("a process service is reached on its `port`: use `port: <number>`")
    );
    at(&d[1], 5, 5, "services.api.volumes");
    // A process may run as a user of this machine; `app` is not one.
    at(&d[2], 6, 11, "services.api.user");
    assert_eq!(d[2].message, "no user named `app` on this machine");
}

#[test]
fn bad_port_mappings() {
    let d = errs(
        "\
services:
  api:
    image: x
    ports:
      - \"1:2:3:4\"
      - \"70000:80\"
      - \"8000-8010:80\"
      - \"80/quic\"
      - \"999.1.1.1:80:80\"
      - { published: 80 }
      - [80]
",
    );
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                5,
                9,
                "services.api.ports[0]",
                "invalid port mapping: too many `:`; put an IPv6 host address in brackets, e.g. `[::1]:8080:80`"
            ),
            (
                6,
                9,
                "services.api.ports[1]",
                "invalid port mapping: \"70000\" is not a port number between 1 and 65535"
            ),
            (
                7,
                9,
                "services.api.ports[2]",
                "invalid port mapping: a host port range needs a container port range of the same length"
            ),
            (
                8,
                9,
                "services.api.ports[3]",
                "invalid port mapping: unknown protocol \"quic\""
            ),
            (
                9,
                9,
                "services.api.ports[4]",
                "invalid port mapping: invalid host IP address \"999.1.1.1\""
            ),
            (
                10,
                9,
                "services.api.ports[5]",
                "missing required field `target`"
            ),
            (11, 9, "services.api.ports[6]", "wrong type"),
        ]
    );
    assert_eq!(d[0].found.as_deref(), Some("\"1:2:3:4\""));
    assert!(
        d[0].expected
            .as_deref()
            .unwrap()
            .contains("HOST_PORT:CONTAINER_PORT")
    );
}

#[test]
fn bad_duplicate_host_ports() {
    let d = errs(
        "\
services:
  api:
    command: x
    port: 8080
  web:
    image: nginx
    ports: [\"8080:80\", \"9000:90\", \"0.0.0.0:9000:91\"]
  other:
    image: nginx
    ports: [\"127.0.0.1:9000:80\"]
",
    );
    assert_eq!(d.len(), 3, "{d:#?}");
    at(&d[0], 7, 13, "services.web.ports[0]");
    assert_eq!(d[0].message, "port 8080 is already used by service `api`");
    at(&d[1], 7, 35, "services.web.ports[2]");
    assert_eq!(d[1].message, "host port 9000 is published twice");
    at(&d[2], 10, 13, "services.other.ports[0]");
    assert_eq!(d[2].message, "port 9000 is already used by service `web`");
}

#[test]
fn bad_volumes() {
    let d = errs(
        "\
services:
  api:
    image: x
    volumes:
      - pgdat:/data
      - cache:/cache
      - ./a:relative
      - ./b:/b:ro,z
      - { source: ./c, target: /c }
      - { type: bnd, source: ./d, target: /d }
      - { type: tmpfs, source: x, target: /e }
      - { type: bind, target: /f }
      - { type: volume, source: pgdata, target: /g, read-only: true }
      - pgdata:/data
volumes:
  pgdata: {}
  logs: { driver: local }
",
    );
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (5, 9, "services.api.volumes[0]", "undeclared volume `pgdat`"),
            (6, 9, "services.api.volumes[1]", "undeclared volume `cache`"),
            (
                7,
                9,
                "services.api.volumes[2]",
                "the container path must be absolute"
            ),
            (
                8,
                9,
                "services.api.volumes[3]",
                "invalid mount: unsupported mode \"z\" (only `ro` and `rw`)"
            ),
            (
                9,
                9,
                "services.api.volumes[4]",
                "missing required field `type`"
            ),
            (10, 17, "services.api.volumes[5].type", "unknown mount type"),
            (
                11,
                32,
                "services.api.volumes[6].source",
                "a tmpfs mount has no source"
            ),
            (
                12,
                9,
                "services.api.volumes[7]",
                "missing required field `source`"
            ),
            (
                13,
                53,
                "services.api.volumes[8].read-only",
                "unknown field `read-only`"
            ),
            (14, 9, "services.api.volumes[9]", "`/data` is mounted twice"),
            (17, 11, "volumes.logs.driver", "unknown field `driver`"),
        ]
    );
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `pgdata`?"));
    assert_eq!(
        d[1].hint.as_deref(),
        Some(
            "declare it: `volumes: { cache: {} }` at the top level, or write `./cache` for a host directory"
        )
    );
    assert_eq!(d[5].hint.as_deref(), Some("did you mean `bind`?"));
    assert_eq!(d[8].hint.as_deref(), Some("did you mean `read_only`?"));
}

#[test]
fn bad_secrets_user_and_working_dir() {
    let d = errs(
        "\
services:
  api:
    image: x
    secrets: [db-password, TOKEN, TOKEN, 1KEY]
    working_dir: app
    user: \"\"
    secret: [A]
    resources: { gpus: some }
",
    );
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (4, 15, "services.api.secrets[0]", "invalid secret name"),
            (4, 35, "services.api.secrets[2]", "`TOKEN` is listed twice"),
            (4, 42, "services.api.secrets[3]", "invalid secret name"),
            (
                5,
                18,
                "services.api.working_dir",
                "a container's working directory must be absolute"
            ),
            (6, 11, "services.api.user", "must not be empty"),
            (7, 5, "services.api.secret", "unknown field `secret`"),
            (8, 24, "services.api.resources.gpus", "not a whole number"),
        ]
    );
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `db_password`?"));
    assert_eq!(d[2].hint.as_deref(), None);
    assert_eq!(d[5].hint.as_deref(), Some("did you mean `secrets`?"));
    assert_eq!(
        d[6].expected.as_deref(),
        Some("a whole number of GPUs or `all`")
    );
    let d = one("services:\n  api:\n    image: x\n    network_mode: host\n");
    at(&d, 4, 5, "services.api.network_mode");
    assert_eq!(d.message, "unknown field `network_mode`");
}

// ---------------------------------------------------------------- routes and verify

#[test]
fn bad_duplicate_route_names_both_services() {
    let d = one(
        "services:\n  a:\n    command: x\n    route: /api\n  b:\n    command: y\n    route: { path: /api/ }\n",
    );
    at(&d, 7, 20, "services.b.route.path");
    assert_eq!(
        d.message,
        "service `a` already routes path prefix `/api` (any host) (at /proj/orchestra.yaml:4:12, services.a.route)"
    );
    assert!(
        d.to_string()
            .starts_with("/proj/orchestra.yaml:7:20: services.b.route.path: service `a`"),
        "{d}"
    );
}

#[test]
fn bad_duplicate_route_compares_hosts_case_insensitively_and_roots() {
    // `/` and the default path (no `path:`) are both the root; hosts differ only in case.
    let d = one(
        "services:\n  a:\n    command: x\n    route: { host: Shop.Example }\n  b:\n    command: y\n    route: { host: shop.example, path: / }\n",
    );
    at(&d, 7, 40, "services.b.route.path");
    assert!(
        d.message
            .starts_with("service `a` already routes host `shop.example` and path prefix `/`"),
        "{}",
        d.message
    );
    // A route without `path` points at the route itself.
    let d = one(
        "services:\n  a:\n    command: x\n    route: /\n  b:\n    command: y\n    route: { strip_prefix: true }\n",
    );
    at(&d, 7, 12, "services.b.route");
    // A third duplicate is reported against the first route too.
    let d = errs(
        "services:\n  a:\n    command: x\n    route: /api\n  b:\n    command: y\n    route: /api\n  c:\n    command: z\n    route: /api//\n",
    );
    let got: Vec<_> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        got,
        [(7, "services.b.route"), (10, "services.c.route")],
        "{d:#?}"
    );
    assert!(d.iter().all(|d| d.message.starts_with("service `a` ")));
}

#[test]
fn nested_prefixes_and_other_hosts_are_not_duplicates() {
    let m = ok(
        "services:\n  a:\n    command: x\n    route: /api\n  b:\n    command: y\n    route: /api/v1\n  c:\n    command: z\n    route: { path: /api, host: shop.example }\n  d:\n    command: w\n    route: /apiv2\n",
    );
    assert_eq!(m.services.len(), 4);
}

#[test]
fn an_overlay_cannot_create_a_duplicate_route() {
    let src = "services:\n  a:\n    command: x\n    route: /api\n  b:\n    command: y\n    route: /b\nenv:\n  prod:\n    services:\n      b:\n        route: /api/\n";
    ok(src);
    let o = LoadOptions {
        environment: Some("prod".into()),
        vars: BTreeMap::new(),
    };
    let d = errs_with(src, &o);
    assert_eq!(d.len(), 1, "{d:#?}");
    // The location is where the overlay wrote the clashing value.
    at(&d[0], 12, 16, "services.b.route");
    assert!(
        d[0].message
            .starts_with("service `a` already routes path prefix `/api`")
    );
}

#[test]
fn verify_defaults_and_new_fields() {
    let m = ok("services:\n  api:\n    command: x\n    route: /\n");
    let v = m.service("api").unwrap().deploy.verify.clone();
    assert_eq!(v, VerifySpec::default());
    assert_eq!(v.on_inconclusive, OnInconclusive::Fail);
    assert_eq!(v.deadline, Duration::from_secs(60));
    assert_eq!(DeploySpec::default_for(false).verify, VerifySpec::default());

    let m = ok(
        "services:\n  api:\n    command: x\n    route: /\n    deploy:\n      verify: { on_inconclusive: pass, deadline: 2m, min_requests: 5 }\n",
    );
    let v = m.service("api").unwrap().deploy.verify.clone();
    assert_eq!(v.on_inconclusive, OnInconclusive::Pass);
    assert_eq!(v.deadline, Duration::from_secs(120));
    assert_eq!(v.min_requests, 5);
    assert_eq!(v.max_p99, Duration::from_millis(500));
}

#[test]
fn bad_verify_fields_are_located() {
    let d = errs(
        "services:\n  api:\n    command: x\n    route: /\n    deploy:\n      verify:\n        on_inconclusive: maybe\n        deadline: 0s\n",
    );
    let got: Vec<_> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                7,
                26,
                "services.api.deploy.verify.on_inconclusive",
                "unknown on_inconclusive"
            ),
            (
                8,
                19,
                "services.api.deploy.verify.deadline",
                "duration must be greater than zero"
            ),
        ]
    );
    assert_eq!(d[0].expected.as_deref(), Some("fail or pass"));
    let d = one(
        "services:\n  api:\n    command: x\n    route: /\n    deploy: { verify: { deadline: soon } }\n",
    );
    at(&d, 5, 35, "services.api.deploy.verify.deadline");
    assert_eq!(d.message, "invalid duration");
    let d = one(
        "services:\n  api:\n    command: x\n    route: /\n    deploy: { verify: { on_inconclusiv: pass } }\n",
    );
    at(&d, 5, 25, "services.api.deploy.verify.on_inconclusiv");
    assert_eq!(d.hint.as_deref(), Some("did you mean `on_inconclusive`?"));
}

#[test]
fn verify_defaults_leave_the_revision_unchanged() {
    // Revisions hash the serialized definition: fields left at their defaults are not
    // serialized, so adding them did not change existing revisions.
    let m = ok("services:\n  api:\n    command: x\n    route: /\n");
    let json = serde_json::to_value(&m.service("api").unwrap().deploy.verify).unwrap();
    assert_eq!(json.get("on_inconclusive"), None);
    assert_eq!(json.get("deadline"), None);
    let back: VerifySpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, VerifySpec::default());
    let set = ok(
        "services:\n  api:\n    command: x\n    route: /\n    deploy: { verify: { on_inconclusive: pass } }\n",
    );
    let json = serde_json::to_value(&set.service("api").unwrap().deploy.verify).unwrap();
    assert_eq!(json["on_inconclusive"], "pass");
    assert_ne!(
        m.service("api").unwrap().revision(),
        set.service("api").unwrap().revision()
    );
}

#[test]
fn synthetic_verification_traffic_is_parsed_and_checked() {
    let m = ok(
        "services:\n  api:\n    command: x\n    route: /\n    deploy:\n      verify: { synthetic: { path: /v1/models, rate: 20 } }\n",
    );
    let v = &m.service("api").unwrap().deploy.verify;
    assert_eq!(
        v.synthetic,
        Some(Synthetic {
            path: "/v1/models".into(),
            rate: 20
        })
    );
    let d = errs(
        "services:\n  api:\n    command: x\n    route: /\n    deploy:\n      verify:\n        synthetic: { path: health, rate: 5000 }\n",
    );
    let got: Vec<_> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (7, "services.api.deploy.verify.synthetic.path"),
            (7, "services.api.deploy.verify.synthetic.rate"),
        ]
    );
    let d = one(
        "services:\n  api:\n    command: x\n    route: /\n    deploy: { verify: { synthetic: { path: / } } }\n",
    );
    assert_eq!(d.path, "services.api.deploy.verify.synthetic");
    assert!(d.message.contains("`rate` is missing"), "{}", d.message);
}

#[test]
fn secrets_in_the_long_form_say_how_and_which_version() {
    let m = ok(
        "services:\n  api:\n    command: x\n    secrets:\n      - OPENAI_API_KEY\n      - { name: TLS_KEY, as: file, target: server.key }\n      - { name: DB_PASSWORD, version: 3 }\n      - { name: PLAIN, as: env, version: latest }\n",
    );
    let s = m.service("api").unwrap();
    assert_eq!(
        s.secrets,
        ["OPENAI_API_KEY", "TLS_KEY", "DB_PASSWORD", "PLAIN"]
    );
    assert_eq!(
        s.secret_locations
            .iter()
            .map(|l| l.line)
            .collect::<Vec<_>>(),
        [5, 6, 7, 8]
    );
    assert_eq!(
        s.secret_options["TLS_KEY"],
        SecretOptions {
            delivery: Some(SecretDelivery::File),
            target: Some("server.key".into()),
            version: None
        }
    );
    assert_eq!(s.secret_options["DB_PASSWORD"].version, Some(3));
    // `as: env` is kept (it overrides a container's default); the short form is no options.
    assert_eq!(
        s.secret_options["PLAIN"].delivery,
        Some(SecretDelivery::Env)
    );
    assert!(!s.secret_options.contains_key("OPENAI_API_KEY"));

    let d = errs(
        "services:\n  api:\n    command: x\n    secrets:\n      - { name: A, as: pipe }\n      - { name: B, version: 0 }\n      - { name: C, as: env, target: x }\n      - { as: file }\n",
    );
    let got: Vec<_> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (5, "services.api.secrets[0].as"),
            (6, "services.api.secrets[1].version"),
            (7, "services.api.secrets[2].target"),
            (8, "services.api.secrets[3]"),
        ],
        "{d:#?}"
    );
}

// ---------------------------------------------------------------- proxy

const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

/// A project directory with these files, and the manifest `src` loaded from it.
fn load_in(files: &[(&str, &str)], src: &str) -> (tempfile::TempDir, Result<Manifest, LoadError>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let file = dir.path().join("orchestra.yaml");
    std::fs::write(&file, src).unwrap();
    let loaded = load(&file, &opts());
    (dir, loaded)
}

fn load_errs(files: &[(&str, &str)], src: &str) -> Vec<Diagnostic> {
    match load_in(files, src).1 {
        Err(LoadError::Invalid(d)) => d,
        other => panic!("expected diagnostics, got {other:#?}"),
    }
}

const SERVICES: &str = "services:\n  api:\n    command: x\n    route: /\n";

#[test]
fn proxy_section_with_tls_and_sni_certificates() {
    let src = format!(
        "{SERVICES}proxy:\n  listen: 127.0.0.1:8080\n  workers: 2\n  max_connections: 10000\n  trusted_proxies: [10.0.0.0/8, \"::1/128\", 192.168.1.7]\n  tls:\n    listen: \"127.0.0.1:8443\"\n    cert: cert.pem\n    key: key.pem\n    certs:\n      - {{ cert: sni/a.pem, key: sni/a-key.pem }}\n    redirect: true\n"
    );
    let files = [
        ("cert.pem", CERT_PEM),
        ("key.pem", KEY_PEM),
        ("sni/a.pem", CERT_PEM),
        // PKCS#1 and SEC1 keys are fine too.
        (
            "sni/a-key.pem",
            "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
        ),
    ];
    let (dir, loaded) = load_in(&files, &src);
    let m = loaded.unwrap();
    let p = &m.proxy;
    assert_eq!(p.listen.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(p.workers, Some(2));
    assert_eq!(p.max_connections, Some(10000));
    let nets: Vec<String> = p.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
    let tls = p.tls.as_ref().unwrap();
    assert_eq!(tls.listen, "127.0.0.1:8443");
    assert!(tls.redirect);
    let root: PathBuf = std::path::absolute(dir.path()).unwrap();
    assert_eq!(
        tls.certs,
        [
            CertPair {
                cert: root.join("cert.pem"),
                key: root.join("key.pem")
            },
            CertPair {
                cert: root.join("sni/a.pem"),
                key: root.join("sni/a-key.pem")
            },
        ]
    );
}

#[test]
fn proxy_defaults() {
    let m = ok(SERVICES);
    assert_eq!(m.proxy, ProxySpec::default());
    let (_dir, loaded) = load_in(
        &[("c.pem", CERT_PEM), ("k.pem", KEY_PEM)],
        &format!("{SERVICES}proxy:\n  tls: {{ cert: c.pem, key: k.pem }}\n"),
    );
    let tls = loaded.unwrap().proxy.tls.unwrap();
    assert_eq!(tls.listen, DEFAULT_TLS_LISTEN);
    assert!(!tls.redirect);
    assert_eq!(tls.certs.len(), 1);
}

#[test]
fn proxy_field_errors_name_the_field() {
    let d = errs(&format!(
        "{SERVICES}proxy:\n  listen: nowhere\n  workers: 0\n  max_connections: -1\n  trusted_proxies: [10.0.0.1/8, 10.0.0.0/33, not-an-ip, \"::1/x\"]\n  wrkers: 2\n"
    ));
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (6, 11, "proxy.listen", "invalid listen address"),
            (7, 12, "proxy.workers", "out of range"),
            (8, 20, "proxy.max_connections", "out of range"),
            (
                9,
                21,
                "proxy.trusted_proxies[0]",
                "address has bits set past the prefix"
            ),
            (
                9,
                33,
                "proxy.trusted_proxies[1]",
                "prefix length out of range"
            ),
            (9, 46, "proxy.trusted_proxies[2]", "invalid network"),
            (9, 57, "proxy.trusted_proxies[3]", "invalid network"),
            (10, 3, "proxy.wrkers", "unknown field `wrkers`"),
        ],
        "{d:#?}"
    );
    assert_eq!(d[3].hint.as_deref(), Some("did you mean `10.0.0.0/8`?"));
    assert_eq!(
        d[4].expected.as_deref(),
        Some("a prefix length from 0 to 32")
    );
    assert!(
        d[1].expected
            .as_deref()
            .unwrap()
            .contains("one per CPU core")
    );
    assert_eq!(d[7].hint.as_deref(), Some("did you mean `workers`?"));
    let d = one(&format!(
        "{SERVICES}proxy:\n  trusted_proxies: 10.0.0.0/8\n"
    ));
    at(&d, 6, 20, "proxy.trusted_proxies");
}

#[test]
fn tls_files_must_exist_and_hold_pem() {
    let src = format!(
        "{SERVICES}proxy:\n  tls:\n    cert: missing.pem\n    key: cert.pem\n    certs:\n      - {{ cert: key.pem, key: enc.pem }}\n      - {{ cert: cert.pem }}\n    redirect: yes\n    tls: 1\n"
    );
    let files = [
        ("cert.pem", CERT_PEM),
        ("key.pem", KEY_PEM),
        (
            "enc.pem",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ),
    ];
    let d = load_errs(&files, &src);
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (7, 11, "proxy.tls.cert", "certificate file not found"),
            (8, 10, "proxy.tls.key", "not a PEM private key"),
            (10, 17, "proxy.tls.certs[0].cert", "not a PEM certificate"),
            (
                10,
                31,
                "proxy.tls.certs[0].key",
                "the private key is encrypted"
            ),
            (11, 9, "proxy.tls.certs[1]", "`key` is missing"),
            (12, 15, "proxy.tls.redirect", "wrong type"),
            (13, 5, "proxy.tls.tls", "unknown field `tls`"),
        ],
        "{d:#?}"
    );
    // The path as resolved, and where it is resolved from.
    assert!(
        d[0].found.as_deref().unwrap().ends_with("/missing.pem"),
        "{d:#?}"
    );
    assert_eq!(
        d[0].hint.as_deref(),
        Some("paths are relative to the manifest's directory")
    );
}

#[test]
fn tls_listener_needs_its_own_address() {
    let (_dir, loaded) = load_in(
        &[("c.pem", CERT_PEM), ("k.pem", KEY_PEM)],
        &format!(
            "{SERVICES}proxy:\n  listen: 127.0.0.1:8080\n  tls: {{ listen: 127.0.0.1:8080, cert: c.pem, key: k.pem }}\n"
        ),
    );
    let Err(LoadError::Invalid(d)) = loaded else {
        panic!("expected diagnostics")
    };
    assert_eq!(d.len(), 1, "{d:#?}");
    at(&d[0], 7, 18, "proxy.tls.listen");
    assert_eq!(d[0].message, "the TLS listener needs an address of its own");
    let d = load_errs(
        &[],
        &format!("{SERVICES}proxy:\n  tls: {{ listen: \"localhost:1\" }}\n"),
    );
    // `cert` and `key` are missing, at the mapping; then the bad address.
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["proxy.tls", "proxy.tls", "proxy.tls.listen"],
        "{d:#?}"
    );
}

#[test]
fn cidr_parsing_and_membership() {
    use crate::convert::deploy_parse_cidr as parse;
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let net = parse("10.0.0.0/8").unwrap();
    assert!(net.contains(&ip("10.200.3.4")));
    assert!(!net.contains(&ip("11.0.0.1")));
    assert!(!net.contains(&ip("::1")));
    let all = parse("0.0.0.0/0").unwrap();
    assert!(all.contains(&ip("8.8.8.8")));
    let one = parse("::1").unwrap();
    assert_eq!(one.prefix_len(), 128);
    assert!(one.contains(&ip("::1")));
    assert!(!one.contains(&ip("::2")));
    assert!(parse("fd00::/8").unwrap().contains(&ip("fdab::1")));
    assert!(parse("10.0.0.0/").is_err());
    assert!(parse("10.0.0.0/+8").is_err());
    assert!(parse("/8").is_err());
    assert!(parse("10.0.0.0/33").is_err());
    assert_eq!(
        parse("10.1.2.3/8").unwrap_err(),
        crate::convert::CidrError::HostBits("10.0.0.0/8".parse().unwrap())
    );
}

// ---------------------------------------------------------------- static sites

/// A project directory with a built `dist/` and this manifest; the load's result.
fn static_project(
    manifest: &str,
    files: &[(&str, &str)],
) -> (tempfile::TempDir, Result<Manifest, LoadError>) {
    load_in(files, manifest)
}

fn static_errs(manifest: &str, files: &[(&str, &str)]) -> Vec<Diagnostic> {
    match static_project(manifest, files).1 {
        Err(LoadError::Invalid(d)) => d,
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

const SITE: &str = "services:\n  web:\n    route: { path: /, static: ./dist, spa: true }\n  api:\n    command: [demo-service]\n    route: /api\n";

#[test]
fn a_static_route_makes_a_static_workload_hashed_by_content() {
    let files = [
        ("dist/index.html", "<h1>v1</h1>"),
        ("dist/assets/app-3f2a9c1b.js", "1"),
    ];
    let (dir, m) = static_project(SITE, &files);
    let m = m.unwrap();
    let web = m.service("web").unwrap();
    let Workload::Static { dir: root, content } = &web.workload else {
        panic!("{:?}", web.workload);
    };
    assert_eq!(
        *root,
        dir.path().join("dist").components().collect::<PathBuf>()
    );
    assert_eq!(content.len(), 16);
    let route = web.route.as_ref().unwrap();
    assert!(route.spa);
    assert!(
        route.strip_prefix,
        "a static route strips its prefix by default"
    );
    assert!(web.healthcheck.is_none());
    // A rebuilt directory is a new revision; the same bytes again are the same one.
    let rev = web.revision();
    std::fs::write(dir.path().join("dist/index.html"), "<h1>v2</h1>").unwrap();
    let again = load(&dir.path().join("orchestra.yaml"), &opts()).unwrap();
    assert_ne!(again.service("web").unwrap().revision(), rev);
    std::fs::write(dir.path().join("dist/index.html"), "<h1>v1</h1>").unwrap();
    let back = load(&dir.path().join("orchestra.yaml"), &opts()).unwrap();
    assert_eq!(back.service("web").unwrap().revision(), rev);
    // A route that does not write `spa` serializes as before (revisions stay what they were).
    let api = m.service("api").unwrap();
    let json = serde_json::to_string(&api.route).unwrap();
    assert!(!json.contains("spa"), "{json}");
}

#[test]
fn bad_static_directory_missing_or_without_index() {
    let d = static_errs(SITE, &[]);
    assert_eq!(d.len(), 1, "{d:#?}");
    at(&d[0], 3, 31, "services.web.route.static");
    assert_eq!(d[0].message, "static directory not found");
    assert!(d[0].found.as_deref().unwrap().contains("dist"), "{}", d[0]);

    let d = static_errs(SITE, &[("dist/app.js", "1")]);
    assert_eq!(d.len(), 1, "{d:#?}");
    at(&d[0], 3, 44, "services.web.route.spa");
    assert!(d[0].message.contains("index.html"), "{}", d[0]);
    assert!(
        d[0].found.as_deref().unwrap().ends_with("dist/index.html"),
        "{}",
        d[0]
    );

    // Without `spa`, a directory without index.html is fine.
    let (_d, m) = static_project(
        "services:\n  web:\n    route: { path: /files, static: dist }\n",
        &[("dist/a.txt", "a")],
    );
    assert!(m.is_ok(), "{m:?}");

    let d = static_errs(
        "services:\n  web:\n    route: { path: /, static: orchestra.yaml }\n",
        &[],
    );
    at(&d[0], 3, 31, "services.web.route.static");
    assert_eq!(d[0].message, "not a directory");
}

#[test]
fn bad_static_site_with_fields_that_make_no_sense_for_it() {
    let d = static_errs(
        "services:\n  web:\n    command: [npm, start]\n    healthcheck: { http: / }\n    replicas: 2\n    ports: [\"8080\"]\n    route: { path: /, static: ./dist }\n",
        &[("dist/index.html", "x")],
    );
    let got: Vec<_> = d.iter().map(|d| (d.line, d.col, d.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, 5, "services.web.command"),
            (4, 5, "services.web.healthcheck"),
            (5, 5, "services.web.replicas"),
            (6, 5, "services.web.ports"),
        ],
        "{d:#?}"
    );
    assert_eq!(
        d[0].message,
        "`command` does not apply to a static site (`route.static`): nothing runs: the proxy serves the directory"
    );
    assert!(d[0].hint.as_deref().unwrap().contains("remove `command`"));
    assert!(d[1].message.contains("snapshotted"), "{}", d[1]);
}

#[test]
fn bad_spa_without_static() {
    let d = one("services:\n  api:\n    command: x\n    route: { path: /, spa: true }\n");
    at(&d, 4, 23, "services.api.route.spa");
    assert_eq!(d.message, "`spa` applies to a static route");
}

#[test]
fn a_bare_compose_file_is_found_and_loaded_as_imported_and_a_manifest_wins_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("app");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("docker-compose.yml"),
        "services:\n  cache:\n    image: redis:7.2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("orchestra.yaml"),
        "services:\n  api:\n    command: x\n",
    )
    .unwrap();
    // The nearest directory with either wins: the Compose file below the manifest.
    let found = crate::find_manifest(&sub).unwrap();
    assert!(found.ends_with("app/docker-compose.yml"), "{found:?}");
    let m = load(&found, &opts()).unwrap();
    assert_eq!(m.services[0].name, "cache");
    assert_eq!(
        m.file, found,
        "the daemon loads the Compose file the same way"
    );
    // In one directory, orchestra.yaml beats compose.yaml.
    std::fs::write(
        sub.join("orchestra.yaml"),
        "services:\n  web:\n    command: x\n",
    )
    .unwrap();
    assert!(
        crate::find_manifest(&sub)
            .unwrap()
            .ends_with("app/orchestra.yaml")
    );
    // A Compose file that is not one says so at its own line.
    let bad = dir.path().join("compose.yaml");
    std::fs::write(&bad, "version: '3'\n").unwrap();
    match load(&bad, &opts()) {
        Err(LoadError::Invalid(d)) => assert_eq!(d[0].file, bad, "{d:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn healthcheck_on_failure_restarts_by_default_or_keeps_running() {
    let m = ok("services:
  a: { command: x, healthcheck: { tcp: true } }
  b: { command: x, healthcheck: { tcp: true, on_failure: none } }
  c: { command: x, healthcheck: { tcp: true, on_failure: restart } }
");
    let on_failure = |n: &str| {
        m.service(n)
            .unwrap()
            .healthcheck
            .as_ref()
            .unwrap()
            .on_failure
    };
    assert_eq!(on_failure("a"), ProbeFailure::Restart);
    assert_eq!(on_failure("b"), ProbeFailure::None);
    assert_eq!(on_failure("c"), ProbeFailure::Restart);
    // The default is not serialized: revisions of existing services do not change.
    assert_eq!(m.service("a").unwrap().revision(), {
        let mut c = m.service("c").unwrap().clone();
        c.name = "a".into();
        c.revision()
    });
    assert_ne!(m.service("b").unwrap().revision(), {
        let mut c = m.service("c").unwrap().clone();
        c.name = "b".into();
        c.revision()
    });

    let d =
        one("services:\n  a:\n    command: x\n    healthcheck: { tcp: true, on_failure: stop }\n");
    at(&d, 4, 43, "services.a.healthcheck.on_failure");
    assert_eq!(d.message, "invalid `on_failure`");
    let d =
        one("services:\n  a:\n    command: x\n    readiness: { tcp: true, on_failure: none }\n");
    at(&d, 4, 29, "services.a.readiness.on_failure");
    assert_eq!(d.message, "`on_failure` applies only to `healthcheck`");
}

#[test]
fn a_port_in_env_that_orchestra_would_override_is_an_error() {
    // Saying the same as Orchestra is fine.
    ok("services:
  a: { image: x, port: 8000, env: { PORT: \"8000\" } }
  b: { command: x, env: { PORT: \"${PORT}\" } }
  c: { image: x, env: [\"PORT=${PORT}\"] }
");
    let d = one("services:\n  a:\n    image: x\n    env: { PORT: \"8000\" }\n");
    at(&d, 4, 18, "services.a.env.PORT");
    assert_eq!(
        d.message,
        "`PORT` is set by Orchestra (to the image's one EXPOSEd port, else 8080) and would override this value"
    );
    assert!(
        d.hint.as_deref().unwrap().starts_with("write `port: 8000`"),
        "{d}"
    );
    let d = one("services:\n  a:\n    image: x\n    port: 80\n    env: [A=1, PORT=8000]\n");
    at(&d, 5, 16, "services.a.env[1]");
    assert!(d.message.contains("the service's `port` (80)"), "{d}");
    let d = one("services:\n  a:\n    command: x\n    env: { PORT: \"3000\" }\n");
    at(&d, 4, 18, "services.a.env.PORT");
    assert!(
        d.hint.as_deref().unwrap().contains("its own free port"),
        "{d}"
    );
}

#[test]
fn a_container_port_is_not_a_host_port_and_may_repeat() {
    // Inside each container's own network namespace: two containers may both listen on 80.
    ok(
        "services:\n  a: { image: nginx, port: 80 }\n  b: { image: nginx, port: 80 }\n  c: { command: x, port: 80 }\n",
    );
}

#[test]
fn yaml_tags_in_a_manifest_are_core_scalar_tags_only() {
    let m = ok(
        "services:\n  a:\n    command: x\n    env: { A: !!str 1.10, B: !!null , C: !!str null }\n",
    );
    let env = &m.service("a").unwrap().env;
    assert_eq!(env.get("A").map(String::as_str), Some("1.10"));
    assert_eq!(env.get("C").map(String::as_str), Some("null"));
    // Null takes the value from the environment, which has no `B`.
    assert_eq!(env.get("B"), None);
    // Compose's merge tags have no meaning in orchestra.yaml.
    let d = one("services:\n  a:\n    command: !reset x\n");
    at(&d, 3, 14, "services.a.command");
    assert_eq!(d.message, "unknown YAML tag `!reset`");
}

#[test]
fn traces_block_parses_with_defaults() {
    let m = ok("services:\n  api:\n    command: x\ntraces:\n  endpoint: http://127.0.0.1:4318\n");
    let t = m.traces.expect("traces");
    assert_eq!(t.endpoint, "http://127.0.0.1:4318");
    assert_eq!(t.sample, 1.0);
    let m = ok(
        "services:\n  api:\n    command: x\ntraces: { endpoint: \"http://c:4318/\", sample: 25% }\n",
    );
    assert_eq!(m.traces.expect("traces").sample, 0.25);
    assert!(ok("services:\n  api:\n    command: x\n").traces.is_none());
}

#[test]
fn traces_block_errors_point_at_the_field() {
    let d =
        one("services:\n  api:\n    command: x\ntraces:\n  endpoint: http://c:4318\n  smaple: 1\n");
    at(&d, 6, 3, "traces.smaple");
    assert_eq!(d.message, "unknown field `smaple`");
    let d = one("services:\n  api:\n    command: x\ntraces:\n  endpoint: https://c\n");
    at(&d, 5, 13, "traces.endpoint");
    assert_eq!(d.message, "invalid traces endpoint");
    let d = one("services:\n  api:\n    command: x\ntraces:\n  endpoint: http://c\n  sample: 2\n");
    at(&d, 6, 11, "traces.sample");
    assert_eq!(d.message, "sample out of range");
}
