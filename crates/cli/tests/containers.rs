//! Container services end to end: the real orchestra binary driving a real
//! Docker Engine (start one with `scripts/docker.sh`, which also imports the
//! `local/busybox:1` base image), observed through the control API, the
//! state database and the Engine itself (the docker CLI).
//!
//! Without an Engine these tests fail and say how to start one, unless
//! ORCHESTRA_SKIP_DOCKER_TESTS=1 is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use serde_json::Value;

const IMAGE: &str = "local/busybox:1";

/// The Engine's socket, checked to answer; `None` when the tests are skipped.
fn engine() -> Option<String> {
    if std::env::var("ORCHESTRA_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("ORCHESTRA_SKIP_DOCKER_TESTS=1: skipping a container test");
        return None;
    }
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let socket = host.strip_prefix("unix://").unwrap_or(&host).to_owned();
    let answers = (|| {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.contains(" 200 ").then_some(())
    })();
    assert!(
        answers.is_some(),
        "no Docker Engine answers on {socket} (DOCKER_HOST={host}): start one with \
         `export DOCKER_HOST=unix://$(scripts/docker.sh)` and run the tests again \
         (or set ORCHESTRA_SKIP_DOCKER_TESTS=1 to skip the container tests)"
    );
    let img = docker(&["image", "inspect", IMAGE]);
    assert!(
        img.status.success(),
        "the Engine has no {IMAGE} image: run scripts/docker.sh, which imports it"
    );
    Some(host)
}

/// Run the docker CLI against the test Engine.
fn docker(args: &[&str]) -> Output {
    let bin = if std::path::Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI ({bin}): {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Ids of the project's containers (running or not).
fn containers(project: &str) -> Vec<String> {
    let o = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=orchestra.project={project}"),
    ]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn network_exists(project: &str) -> bool {
    docker(&["network", "inspect", &format!("orchestra_{project}")])
        .status
        .success()
}

/// `docker inspect -f FORMAT ID`, trimmed.
fn inspect(id: &str, format: &str) -> String {
    let o = docker(&["inspect", "-f", format, id]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// A project whose containers and network are removed however the test ends.
struct Platform {
    p: Project,
    name: String,
}

impl Platform {
    /// `services` is the YAML under `services:`, indented by two spaces.
    fn new(tag: &str, services: &str) -> Platform {
        let name = format!("ct-{tag}-{}", std::process::id());
        let p = Project::new(&format!("name: {name}\nservices:\n{services}"));
        Platform { p, name }
    }

    fn replicas(&self, service: &str) -> Vec<Value> {
        self.p.service(service)["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn container_of(&self, service: &str) -> String {
        self.replicas(service)[0]["container"]
            .as_str()
            .unwrap_or_else(|| panic!("{service} has no container: {:#?}", self.replicas(service)))
            .to_owned()
    }

    fn port_of(&self, service: &str) -> u16 {
        self.replicas(service)[0]["port"].as_u64().unwrap() as u16
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.p.down();
        if let Some(pid) = self.p.daemon_pid()
            && orchestra_runtime::procfs::alive(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for id in containers(&self.name) {
            let _ = docker(&["rm", "-f", "-v", &id]);
        }
        let _ = docker(&["network", "rm", &format!("orchestra_{}", self.name)]);
        let o = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=orchestra.project={}", self.name),
        ]);
        for v in String::from_utf8_lossy(&o.stdout).lines() {
            let _ = docker(&["volume", "rm", v]);
        }
    }
}

fn httpd(name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    image: {IMAGE}\n    command: [httpd, -f, -p, \"${{PORT}}\", -h, /www]\n    healthcheck: {{ http: /, interval: 300ms, start_period: 20s }}\n    stop_grace_period: 2s\n{extra}"
    )
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_container_comes_up_healthy_with_its_limits_and_down_leaves_no_container_or_network() {
    let Some(_) = engine() else { return };
    let mut c = Platform::new(
        "life",
        &httpd(
            "web",
            "    resources: { cpus: 0.5, memory: 64Mi, pids: 64 }\n    labels: { team: search }\n    volumes: [\"data:/data\", \"./conf:/conf:ro\", /scratch]\nvolumes:\n  data: {}\n",
        ),
    );
    std::fs::create_dir_all(c.p.path().join("conf")).unwrap();
    c.p.up_ok(&[]);
    let id = c.container_of("web");
    assert_eq!(c.p.service("web")["phase"], "healthy");
    assert_eq!(containers(&c.name), std::slice::from_ref(&id));
    assert!(network_exists(&c.name));
    // Reachable on the published loopback port the status reports.
    let (code, body) = http_get(&format!("127.0.0.1:{}", c.port_of("web")), "/").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("hello from busybox"), "{body}");
    // Limits and labels as the Engine applied them.
    assert_eq!(
        inspect(
            &id,
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}"
        ),
        "500000000 67108864 64 no"
    );
    assert_eq!(
        inspect(
            &id,
            "{{index .Config.Labels \"orchestra.service\"}} {{index .Config.Labels \"team\"}}"
        ),
        "web search"
    );
    // A named volume of the project, a read-only bind mount, an anonymous volume.
    let volume = format!("{}_data", c.name);
    let conf = c.p.path().join("conf");
    let mounts = inspect(
        &id,
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}};{{end}}",
    );
    assert!(
        mounts.contains(&format!("volume {volume} /data true;")),
        "{mounts}"
    );
    assert!(mounts.contains(" /scratch true;"), "{mounts}");
    assert!(
        inspect(
            &id,
            "{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}};{{end}}"
        )
        .contains(&format!("{}:/conf:false;", conf.display())),
        "{mounts}"
    );
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty(), "containers left after down");
    assert!(!network_exists(&c.name), "network left after down");
    // Data outlives `down`...
    assert!(docker(&["volume", "inspect", &volume]).status.success());
    // ...unless asked otherwise.
    c.p.up_ok(&[]);
    let out = c.p.run(&["down", "--volumes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("removed volume {volume}")),
        "{}",
        text(&out)
    );
    assert!(!docker(&["volume", "inspect", &volume]).status.success());
    assert!(containers(&c.name).is_empty());
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_process_that_depends_on_a_healthy_container_starts_after_it_is_healthy() {
    let Some(_) = engine() else { return };
    let services = format!(
        "  store:\n    image: {IMAGE}\n    command: [sh, -c, \"sleep 0.5; exec httpd -f -p $$PORT -h /www\"]\n    healthcheck: {{ http: /, interval: 300ms, start_period: 20s }}\n  api:\n    command: [demo-service, --port, \"${{PORT}}\"]\n    healthcheck: {{ http: /health }}\n    depends_on: {{ store: healthy }}\n"
    );
    let mut c = Platform::new("gate", &services);
    c.p.up_ok(&[]);
    let ev = c.p.events();
    let store_started = event_at(&ev, "store", "started");
    let store_healthy = event_at(&ev, "store", "healthy");
    let api_started = event_at(&ev, "api", "started");
    assert!(store_healthy - store_started >= 400, "{ev:#?}");
    assert!(api_started >= store_healthy, "{ev:#?}");
    assert!(
        ev.iter()
            .any(|e| e["service"] == "api" && e["kind"] == "waiting"),
        "{ev:#?}"
    );
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_crashing_container_is_restarted_by_orchestra_and_its_output_reaches_the_logs() {
    let Some(_) = engine() else { return };
    let services = format!(
        "  flaky:\n    image: {IMAGE}\n    command: [sh, -c, \"echo to-stdout $$ORCHESTRA_SERVICE; echo to-stderr >&2; sleep 0.3; exit 1\"]\n    restart: {{ policy: on-failure, backoff: {{ initial: 100ms, max: 500ms }} }}\n  steady:\n    image: {IMAGE}\n    command: [sh, -c, \"echo steady-line; exec sleep 600\"]\n"
    );
    let c = Platform::new("crash", &services);
    // In the foreground: `up -d` would stop at the first crash.
    let _fg = Foreground {
        child: c
            .p
            .command(&["up", "--admin", "off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    let db = c.p.path().join(".orchestra/state.db");
    let ev = wait_for(30, "two restarts of flaky", || {
        let ev = orchestra_state::StateStore::open(&db)
            .and_then(|s| s.events(0, None, 10_000))
            .ok()?;
        (ev.iter()
            .filter(|e| e.service.as_deref() == Some("flaky") && e.kind == "restarted")
            .count()
            >= 2)
            .then_some(ev)
    });
    let exited: Vec<&str> = ev
        .iter()
        .filter(|e| e.service.as_deref() == Some("flaky") && e.kind == "exited")
        .map(|e| e.reason.as_str())
        .collect();
    assert!(
        !exited.is_empty() && exited.iter().all(|r| r.contains("exited with code 1")),
        "{exited:#?}"
    );
    // Each restart is a fresh container; the crashed ones are gone.
    let running = wait_for(10, "one container per replica", || {
        let ids = containers(&c.name);
        (ids.len() == 2).then_some(ids)
    });
    assert_eq!(running.len(), 2);

    let logs = text(&c.p.run(&["logs", "flaky", "-n", "200"]));
    assert!(logs.contains("to-stdout flaky"), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("err") && l.contains("to-stderr")),
        "stderr lines are marked: {logs}"
    );
    let steady = wait_for(10, "steady's output", || {
        let l = text(&c.p.run(&["logs", "steady"]));
        l.contains("steady-line").then_some(l)
    });
    assert!(!steady.contains("to-stdout"), "{steady}");
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_build_service_is_built_from_its_dockerfile_and_a_failing_step_is_named() {
    let Some(_) = engine() else { return };
    let mut c = Platform::new(
        "build",
        "  site:\n    build: { context: site, args: { GREETING: built-by-orchestra } }\n    healthcheck: { http: /index.html, interval: 300ms, start_period: 20s }\n",
    );
    let site = c.p.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("Dockerfile"),
        "FROM local/busybox:1\nARG GREETING\nCOPY . /www/\nRUN echo $GREETING > /www/greeting.txt\nEXPOSE 8088\nCMD [\"httpd\", \"-f\", \"-p\", \"8088\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(site.join("index.html"), "site-index").unwrap();
    std::fs::write(site.join("secret.key"), "do-not-ship").unwrap();
    std::fs::write(site.join(".dockerignore"), "*.key\n").unwrap();
    c.p.up_ok(&[]);
    let addr = format!("127.0.0.1:{}", c.port_of("site"));
    assert_eq!(
        http_get(&addr, "/greeting.txt").unwrap().1.trim(),
        "built-by-orchestra"
    );
    assert_eq!(
        http_get(&addr, "/secret.key").unwrap().0,
        404,
        ".dockerignore honoured"
    );
    // The single EXPOSEd port is the container port.
    let id = c.container_of("site");
    assert!(
        inspect(
            &id,
            "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}{{end}}"
        )
        .contains("8088/tcp")
    );
    let revision = c.p.service("site")["revision"].as_str().unwrap().to_owned();
    assert!(
        inspect(&id, "{{.Config.Image}}").ends_with(&format!("-site:{revision}")),
        "tagged orchestra/<project>-<service>:<revision>"
    );
    let logs = text(&c.p.run(&["logs", "site", "-n", "200"]));
    assert!(
        logs.contains("build: Step 1/"),
        "build progress in the log: {logs}"
    );
    drop(c);

    let mut bad = Platform::new("badbuild", "  site:\n    build: { context: site }\n");
    std::fs::create_dir_all(bad.p.path().join("site")).unwrap();
    std::fs::write(
        bad.p.path().join("site/Dockerfile"),
        "FROM local/busybox:1\nRUN echo failing on purpose; exit 3\n",
    )
    .unwrap();
    let out = bad.p.up(&[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("at Step 2/") && t.contains(": RUN echo failing on purpose"),
        "{t}"
    );
    assert!(t.contains("returned a non-zero code: 3"), "{t}");
    assert!(containers(&bad.name).is_empty(), "nothing half-created");
    assert!(!network_exists(&bad.name));
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn engine_refusals_are_reported_with_what_to_do() {
    let Some(_) = engine() else { return };
    // No image and no registry: a short pull, then advice.
    let mut c = Platform::new(
        "noimage",
        "  ghost:\n    image: orchestra-test.invalid/ghost:1\n",
    );
    let out = c.p.up(&[]);
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("not present locally") && t.contains("docker load"),
        "{t}"
    );
    drop(c);

    // A host port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut c = Platform::new(
        "porttaken",
        &format!(
            "  web:\n    image: {IMAGE}\n    command: [httpd, -f, -p, \"8080\", -h, /www]\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
        ),
    );
    let out = c.p.up(&[]);
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains(&format!("host port {port} is already in use")),
        "{t}"
    );
    assert!(containers(&c.name).is_empty(), "nothing half-created: {t}");
    drop(c);

    // GPUs from an Engine without a GPU runtime.
    let mut c = Platform::new(
        "gpu",
        &format!(
            "  model:\n    image: {IMAGE}\n    command: [sleep, \"60\"]\n    resources: {{ gpus: 1 }}\n"
        ),
    );
    let out = c.p.up(&[]);
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("no GPU runtime") && t.contains("NVIDIA Container Toolkit"),
        "{t}"
    );
    drop(c);

    // No Engine at all.
    let c = Platform::new("noengine", &format!("  web:\n    image: {IMAGE}\n"));
    let out =
        c.p.command(&["up", "-d", "--admin", "off", "--timeout", "30s"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("Docker Engine is not running") && t.contains("scripts/docker.sh"),
        "{t}"
    );
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn after_a_sigkill_the_containers_keep_running_and_the_next_daemon_adopts_or_removes_them() {
    let Some(_) = engine() else { return };
    let services = |v: &str| httpd("web", &format!("    env: {{ VERSION: {v} }}\n"));
    let mut c = Platform::new("adopt", &services("one"));
    c.p.up_ok(&[]);
    let id = c.container_of("web");
    let port = c.port_of("web");
    let kill_daemon = |c: &Platform| {
        let pid = c.p.daemon_pid().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_for(10, "the daemon to die", || {
            (!orchestra_runtime::procfs::alive(pid)).then_some(())
        });
    };
    kill_daemon(&c);
    // Not a child of the daemon: it still serves.
    assert_eq!(inspect(&id, "{{.State.Running}}"), "true");
    assert_eq!(http_get(&format!("127.0.0.1:{port}"), "/").unwrap().0, 200);

    // Same definition: the running container is adopted, not replaced.
    c.p.up_ok(&[]);
    assert_eq!(c.container_of("web"), id);
    assert_eq!(c.port_of("web"), port);
    let ev = c.p.events();
    assert!(
        ev.iter().any(|e| e["service"] == "web"
            && e["kind"] == "started"
            && e["reason"].as_str().unwrap().contains("adopted")),
        "{ev:#?}"
    );
    assert_eq!(containers(&c.name).len(), 1);

    // Killed again, then started with another definition: the old container goes.
    kill_daemon(&c);
    c.p.write(
        "orchestra.yaml",
        &format!("name: {}\nservices:\n{}", c.name, services("two")),
    );
    c.p.up_ok(&[]);
    let new_id = c.container_of("web");
    assert_ne!(new_id, id);
    assert_eq!(containers(&c.name), [new_id]);
    let db = c.p.db_events();
    assert!(
        db.iter()
            .any(|e| e.kind == "reaped" && e.reason.contains("no longer wanted")),
        "{:#?}",
        db.iter().map(|e| (&e.kind, &e.reason)).collect::<Vec<_>>()
    );
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
    assert!(!network_exists(&c.name));
}

/// GETs through the proxy from two threads until stopped; counts failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: &str, path: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let threads = (0..2)
            .map(|_| {
                let (stop, ok, failed, seen) =
                    (stop.clone(), ok.clone(), failed.clone(), seen.clone());
                let (addr, path) = (addr.to_owned(), path.to_owned());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match http_get(&addr, &path) {
                            Some((200, body)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                let body = body.trim().to_owned();
                                let mut s = seen.lock().unwrap();
                                if s.last() != Some(&body) {
                                    s.push(body);
                                }
                            }
                            other => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                eprintln!("failed request: {other:?}");
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            seen,
            threads,
        }
    }

    fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let seen = self.seen.lock().unwrap().clone();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            seen,
        )
    }
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_blue_green_deploy_of_a_container_runs_both_revisions_side_by_side_without_a_failed_request() {
    let Some(_) = engine() else { return };
    let services = format!(
        "  api:\n    image: {IMAGE}\n    command: [sh, -c, \"mkdir -p /srv && echo $$APP_VERSION > /srv/version && exec httpd -f -p $$PORT -h /srv\"]\n    env: {{ APP_VERSION: \"${{APP_VERSION:-v1}}\" }}\n    route: {{ path: /api, strip_prefix: true }}\n    healthcheck: {{ http: /version, interval: 200ms, start_period: 20s, retries: 2 }}\n    deploy: {{ strategy: blue-green, keep_warm: 5m, drain_timeout: 2s }}\n    stop_grace_period: 2s\n"
    );
    let mut c = Platform::new("deploy", &services);
    let out = c.p.up_ok(&["--proxy", "127.0.0.1:0"]);
    let proxy = out.split("proxy http://").nth(1).unwrap().trim().to_owned();
    assert_eq!(http_get(&proxy, "/api/version").unwrap().1.trim(), "v1");
    let old = c.container_of("api");

    let load = Load::start(&proxy, "/api/version");
    std::thread::sleep(Duration::from_millis(300));
    let out =
        c.p.command(&["deploy", "api", "--wait"])
            .env("APP_VERSION", "v2")
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for(10, "v2 to serve", || {
        (http_get(&proxy, "/api/version")?.1.trim() == "v2").then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, seen) = load.finish();
    assert_eq!(failed, 0, "{ok} ok");
    assert!(ok > 20, "only {ok} requests");
    assert_eq!(seen.first().map(String::as_str), Some("v1"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("v2"), "{seen:?}");

    // The old revision stays warm beside the new one: two containers, two
    // revisions, two host ports.
    let ids = containers(&c.name);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&old));
    let revisions: std::collections::BTreeSet<String> = ids
        .iter()
        .map(|id| inspect(id, "{{index .Config.Labels \"orchestra.revision\"}}"))
        .collect();
    assert_eq!(revisions.len(), 2, "{revisions:?}");
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
    assert!(!network_exists(&c.name));
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_multi_service_compose_file_is_imported_and_brought_up_healthy() {
    let Some(_) = engine() else { return };
    let c = Platform::new("compose", "  placeholder:\n    command: [x]\n");
    let compose = r#"name: NAME
x-web: &web
  image: IMAGE
  healthcheck:
    test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"]
    interval: 1s
    start_period: 20s
services:
  store:
    <<: *web
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
  migrate:
    image: IMAGE
    command: ["sh", "-c", "echo migrated"]
  api:
    <<: *web
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    environment:
      STORE_URL: http://store:8080/
    depends_on:
      store: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
    deploy: { resources: { limits: { cpus: "0.5", memory: 64M } } }
  web:
    <<: *web
    command: ["sh", "-c", "wget -q -O /dev/null http://api:8080/ && exec httpd -f -p 8080 -h /www"]
    depends_on: [api]
    networks: [front]
networks:
  front: {}
"#
    .replace("NAME", &c.name)
    .replace("IMAGE", IMAGE);
    c.p.write("docker-compose.yml", &compose);
    let out = c.p.run(&["import", "docker-compose.yml", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("services.web.networks"),
        "the network mapping is reported: {}",
        text(&out)
    );
    let mut c = c;
    c.p.up_ok(&[]);
    // As in Compose, `up` waits for `web`'s check only if something needs it healthy.
    wait_for(30, "web healthy", || {
        (c.p.service("web")["phase"] == "healthy").then_some(())
    });
    let phases: Vec<(String, String)> =
        c.p.services()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["phase"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    assert_eq!(
        phases,
        [
            ("store".to_owned(), "healthy".to_owned()),
            ("migrate".to_owned(), "completed".to_owned()),
            ("api".to_owned(), "healthy".to_owned()),
            ("web".to_owned(), "healthy".to_owned()),
        ]
    );
    let api = c.container_of("api");
    assert_eq!(
        inspect(&api, "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}"),
        "500000000 67108864"
    );
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn up_runs_a_bare_compose_file_without_an_orchestra_yaml() {
    let Some(_) = engine() else { return };
    let mut c = Platform::new("bare", "  placeholder:\n    command: [x]\n");
    std::fs::remove_file(c.p.path().join("orchestra.yaml")).unwrap();
    let compose = format!(
        "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    container_name: front\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1\"]\n      interval: 1s\n      start_period: 20s\n",
        c.name
    );
    c.p.write("compose.yaml", &compose);
    let out = c.p.run(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("running compose.yaml as imported"),
        "{}",
        text(&out)
    );
    let out = c.p.up(&[]);
    assert!(out.status.success(), "{}", text(&out));
    // The import report says what changed, at the Compose file's line.
    assert!(
        text(&out).contains("compose.yaml:5:5: services.web.container_name"),
        "{}",
        text(&out)
    );
    wait_for(30, "web healthy", || {
        (c.p.service("web")["phase"] == "healthy").then_some(())
    });
    assert!(
        !c.p.path().join("orchestra.yaml").exists(),
        "nothing was written"
    );
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn a_container_gets_its_secrets_as_files_never_in_its_config() {
    let Some(_) = engine() else { return };
    let value = "container-secret-5c1e9a";
    let mut c = Platform::new(
        "secret",
        &format!(
            "  db:\n    image: {IMAGE}\n    command: [sh, -c, \"md5sum < $$DB_PASSWORD_FILE; echo env=$${{DB_PASSWORD:-unset}} file=$$DB_PASSWORD_FILE; exec httpd -f -p $$PORT -h /www\"]\n    secrets: [DB_PASSWORD]\n    healthcheck: {{ http: /, interval: 300ms, start_period: 20s }}\n    stop_grace_period: 2s\n"
        ),
    );
    {
        use std::io::Write;
        let mut cmd = c.p.command(&["secrets", "set", "DB_PASSWORD"]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    c.p.up_ok(&[]);
    let id = c.container_of("db");
    let logs = wait_for(20, "the container's first lines", || {
        let l = text(&c.p.run(&["logs", "db"]));
        l.contains("env=").then_some(l)
    });
    let digest = {
        use std::io::Write;
        let mut m = Command::new("md5sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        m.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
        let out = String::from_utf8(m.wait_with_output().unwrap().stdout).unwrap();
        out.split_whitespace().next().unwrap().to_owned()
    };
    assert!(logs.contains(&digest), "the file holds the value: {logs}");
    assert!(
        logs.contains("env=unset file=/run/secrets/DB_PASSWORD"),
        "{logs}"
    );
    // The container's config has the path, not the value.
    let config = text(&docker(&["inspect", &id]));
    assert!(!config.contains(value), "docker inspect shows the value");
    assert!(config.contains("DB_PASSWORD_FILE=/run/secrets/DB_PASSWORD"));
    let source = inspect(
        &id,
        "{{range .Mounts}}{{if eq .Destination \"/run/secrets\"}}{{.Source}} {{.RW}}{{end}}{{end}}",
    );
    assert!(
        source.starts_with("/dev/shm/orchestra-") && source.ends_with(" false"),
        "{source}"
    );
    let dir = source.split(' ').next().unwrap().to_owned();
    assert!(c.p.down().status.success());
    assert!(
        !std::path::Path::new(&dir).exists(),
        "the files go with the container"
    );
}

/// A project run from a bare `compose.yaml` (imported in memory by every command).
fn compose_platform(tag: &str, services: &str) -> Platform {
    let c = Platform::new(tag, "  placeholder:\n    command: [x]\n");
    std::fs::remove_file(c.p.path().join("orchestra.yaml")).unwrap();
    let compose = format!(
        "name: {}\nservices:\n{}",
        c.name,
        services.replace("IMAGE", IMAGE)
    );
    c.p.write("compose.yaml", &compose);
    c
}

/// A Compose healthcheck that always fails, counting its runs in /tmp/probes.
const SICK: &str = r#"  sick:
    image: IMAGE
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "echo probe >> /tmp/probes; exit 1"]
      interval: 200ms
      timeout: 5s
      retries: 2
"#;

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn an_imported_service_whose_check_always_fails_keeps_running_and_up_succeeds() {
    let Some(_) = engine() else { return };
    let services = format!(
        "{SICK}  app:\n    image: IMAGE\n    command: [\"sleep\", \"3600\"]\n    stop_grace_period: 1s\n    depends_on: [sick]\n"
    );
    let mut c = compose_platform("sick", &services);
    let out = c.p.up_ok(&[]);
    assert!(
        out.contains("sick running") && out.contains("nothing waits on it being healthy"),
        "{out}"
    );
    let id = c.container_of("sick");
    wait_for(30, "sick unhealthy", || {
        (c.p.service("sick")["phase"] == "unhealthy").then_some(())
    });
    // Probed on after it turned unhealthy, in the same container: never restarted.
    wait_for(30, "more probes after unhealthy", || {
        let o = docker(&["exec", &id, "cat", "/tmp/probes"]);
        (String::from_utf8_lossy(&o.stdout).lines().count() >= 6).then_some(())
    });
    assert_eq!(c.container_of("sick"), id);
    assert_eq!(inspect(&id, "{{.State.Running}}"), "true");
    let sick = c.p.service("sick");
    assert_eq!(sick["phase"], "unhealthy", "{sick:#}");
    assert_eq!(sick["replicas"][0]["restarts"], 0, "{sick:#}");
    let ev = c.p.events();
    let kinds: Vec<&str> = ev
        .iter()
        .filter(|e| e["service"] == "sick")
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"unhealthy"), "{kinds:?}");
    assert!(
        !kinds.contains(&"restarted") && !kinds.contains(&"exited"),
        "{kinds:?}"
    );
    assert_eq!(c.p.service("app")["phase"], "healthy");
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn up_fails_when_a_dependent_needs_an_imported_service_healthy_that_never_is() {
    let Some(_) = engine() else { return };
    let services = format!(
        "{SICK}  api:\n    image: IMAGE\n    command: [\"sleep\", \"3600\"]\n    depends_on:\n      sick: {{ condition: service_healthy }}\n"
    );
    let mut c = compose_platform("sickdep", &services);
    let out = c.p.up(&[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sick did not become healthy")
            && err.contains("kept running: on_failure is none"),
        "{err}"
    );
    assert!(containers(&c.name).is_empty(), "up stops what it started");
}

#[test]
#[cfg_attr(skip_docker, ignore = "ORCHESTRA_SKIP_DOCKER_TESTS=1")]
fn an_imported_service_gets_the_port_its_app_listens_on_and_its_working_dir() {
    let Some(_) = engine() else { return };
    // busybox's image EXPOSEs nothing: without `port:` PORT would be 8080.
    let services = r#"  api:
    image: IMAGE
    environment: { PORT: "8000", MODE: demo }
    ports: ["8000"]
    command: ["sh", "-c", "exec httpd -f -p $$PORT -h /www"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8000/ || exit 1"]
      interval: 300ms
      start_period: 20s
  files:
    image: IMAGE
    working_dir: /www
    ports: ["9000"]
    command: ["httpd", "-f", "-p", "9000", "-h", "."]
    stop_grace_period: 1s
"#;
    let mut c = compose_platform("port", services);
    c.p.up_ok(&[]);
    wait_for(30, "api healthy", || {
        (c.p.service("api")["phase"] == "healthy").then_some(())
    });
    let api = c.container_of("api");
    let env = inspect(&api, "{{range .Config.Env}}{{.}};{{end}}");
    assert!(
        env.contains("PORT=8000;") && env.contains("MODE=demo;"),
        "{env}"
    );
    assert!(!env.contains("PORT=8080"), "{env}");
    // Orchestra's own published port reaches the app's port.
    let (code, body) = http_get(&format!("127.0.0.1:{}", c.port_of("api")), "/").unwrap();
    assert_eq!(code, 200, "{body}");
    // `working_dir` is where the container's process runs: `httpd -h .` serves /www.
    let files = c.container_of("files");
    assert_eq!(inspect(&files, "{{.Config.WorkingDir}}"), "/www");
    let (code, body) = wait_for(30, "files answers", || {
        http_get(&format!("127.0.0.1:{}", c.port_of("files")), "/")
    });
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("hello from busybox"), "{body}");
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_bare_compose_file_with_extends_and_include_runs_with_the_merged_services() {
    let Some(_) = engine() else { return };
    let services = r#"  web:
    extends:
      file: parts/base.yaml
      service: httpd
    environment: { ROLE: web }
include:
  - parts/extra.yaml
"#;
    let mut c = compose_platform("extends", services);
    std::fs::create_dir_all(c.p.path().join("parts/site")).unwrap();
    c.p.write(
        "parts/base.yaml",
        &r#"services:
  httpd:
    image: IMAGE
    environment: { MODE: base, ROLE: base }
    volumes: ["./site:/www/site:ro"]
    command: ["httpd", "-f", "-p", "9000", "-h", "/www"]
    ports: ["9000"]
    stop_grace_period: 1s
"#
        .replace("IMAGE", IMAGE),
    );
    c.p.write(
        "parts/site/index.html",
        "served from the base's directory\n",
    );
    c.p.write(
        "parts/extra.yaml",
        &"services:\n  worker:\n    image: IMAGE\n    command: [sleep, \"3600\"]\n    stop_grace_period: 1s\n"
            .replace("IMAGE", IMAGE),
    );
    c.p.up_ok(&[]);
    // The extending service has the base's image, command and mount, and both
    // environments merged, its own value winning.
    let web = c.container_of("web");
    let env = inspect(&web, "{{range .Config.Env}}{{.}};{{end}}");
    assert!(
        env.contains("MODE=base;") && env.contains("ROLE=web;"),
        "{env}"
    );
    // The base's `./site` is its own directory's, not the project's.
    let (code, body) = wait_for(30, "web answers", || {
        http_get(
            &format!("127.0.0.1:{}", c.port_of("web")),
            "/site/index.html",
        )
    });
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("served from the base's directory"), "{body}");
    // The included file's service runs too.
    assert!(!c.container_of("worker").is_empty());
    let out = c.p.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers(&c.name).is_empty());
}
