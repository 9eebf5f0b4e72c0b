//! Deploys end to end: the real daemon, its real proxy, real demo-service
//! revisions, and a load generator that counts every failed request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A manifest with one routed `api` whose version comes from DEMO_VERSION.
fn manifest(deploy: &str) -> String {
    format!(
        "services:\n  api:\n    command: [demo-service, --port, \"${{PORT}}\", --name, api, --version, \"${{DEMO_VERSION:-v1}}\", --fail-rate, \"${{DEMO_FAIL_RATE:-0}}\", --health-path, \"${{HEALTH_PATH:-/health}}\"]\n    route: {{ path: /api, strip_prefix: true, sticky: {{ cookie: orch }} }}\n    healthcheck: {{ http: /health, interval: 200ms, start_period: 5s, retries: 2 }}\n    readiness: {{ http: /ready, interval: 200ms }}\n    deploy: {deploy}\n"
    )
}

/// Steady GET load through the proxy from a background thread; counts
/// failures (anything but 200, or a transport error) and versions seen.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    versions: Arc<std::sync::Mutex<Vec<String>>>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: &str, path: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let versions = Arc::new(std::sync::Mutex::new(Vec::new()));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, f, v, e) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            versions.clone(),
            errors.clone(),
        );
        let url: hyper::Uri = format!("http://{addr}{path}").parse().unwrap();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use http_body_util::BodyExt;
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
                let mut tasks = Vec::new();
                // Four concurrent keep-alive clients.
                for _ in 0..4 {
                    let (client, url, s, o, f, v, e) = (
                        client.clone(),
                        url.clone(),
                        s.clone(),
                        o.clone(),
                        f.clone(),
                        v.clone(),
                        e.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        while !s.load(Ordering::Relaxed) {
                            let res = tokio::time::timeout(Duration::from_secs(10), async {
                                let r = client.get(url.clone()).await?;
                                let status = r.status().as_u16();
                                let body = r.into_body().collect().await?.to_bytes();
                                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body))
                            })
                            .await;
                            match res {
                                Ok(Ok((200, body))) => {
                                    o.fetch_add(1, Ordering::Relaxed);
                                    let j: Value =
                                        serde_json::from_slice(&body).unwrap_or(Value::Null);
                                    if let Some(ver) = j["version"].as_str() {
                                        let mut vs = v.lock().unwrap();
                                        if vs.last().map(String::as_str) != Some(ver) {
                                            vs.push(ver.to_owned());
                                        }
                                    }
                                }
                                other => {
                                    f.fetch_add(1, Ordering::Relaxed);
                                    e.lock().unwrap().push(format!("{other:?}"));
                                }
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        });
        let l = Load {
            stop,
            ok,
            failed,
            versions,
            errors,
            handle: Some(handle),
        };
        wait_for(10, "the load generator's first answers", || {
            (l.ok.load(Ordering::Relaxed) > 10).then_some(())
        });
        l
    }

    /// Wait until the newest version answered is `v`: a request sent just
    /// before a switch still answers from the old revision.
    fn wait_last(&self, v: &str) {
        wait_for(10, &format!("the load to be answered by {v}"), || {
            (self.versions.lock().unwrap().last().map(String::as_str) == Some(v)).then_some(())
        });
    }

    /// Stop and return (ok, failed, versions in the order first seen).
    fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let errors = self.errors.lock().unwrap().clone();
        assert!(errors.is_empty() || self.failed.load(Ordering::Relaxed) > 0);
        if !errors.is_empty() {
            eprintln!("load errors: {:#?}", &errors[..errors.len().min(5)]);
        }
        let versions = self.versions.lock().unwrap().clone();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            versions,
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Start the platform with a proxy on a free port; returns the proxy address.
fn up(p: &mut Project) -> String {
    up_with(p, &[]).1
}

/// `up -d` with these extra arguments and a proxy on a free port: (what it printed, the proxy address).
fn up_with(p: &mut Project, extra: &[&str]) -> (String, String) {
    let out = p.up_ok(&[&["--proxy", "127.0.0.1:0"], extra].concat());
    let addr = out.split("proxy http://").nth(1).unwrap().trim().to_owned();
    (out, addr)
}

fn deploy(p: &Project, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = p.command(&[&["deploy"], args].concat());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn releases(p: &Project) -> Vec<Value> {
    p.json_list(&["history", "--json"])
}

fn get_version(addr: &str) -> String {
    let (code, body) = http_get(addr, "/api/").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn blue_green_under_load_has_no_failed_request_and_warm_rollback_is_instant() {
    let mut p = Project::new(&manifest(
        "{ strategy: blue-green, keep_warm: 5m, drain_timeout: 5s }",
    ));
    let addr = up(&mut p);
    assert_eq!(get_version(&addr), "v1");
    let load = Load::start(&addr, "/api/");
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &["api", "--wait"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(10, "v2 to serve", || {
        (get_version(&addr) == "v2").then_some(())
    });
    // The old revision is warm: rollback only moves traffic (timed in bench/deploy).
    let out = p.run(&["rollback", "api"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rolled back to warm revision"), "{text}");
    assert_eq!(get_version(&addr), "v1");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, versions) = load.finish();
    assert_eq!(failed, 0, "{ok} ok");
    // Four clients interleave around each switch, so only the ends are fixed.
    assert_eq!(versions.first().unwrap(), "v1");
    assert!(versions.contains(&"v2".to_owned()), "{versions:?}");
    assert_eq!(versions.last().unwrap(), "v1");
    let rel = releases(&p);
    assert_eq!(rel[0]["strategy"], "rollback");
    assert_eq!(rel[0]["status"], "succeeded");
}

#[test]
fn canary_steps_through_weights_under_load_and_promote_skips_the_rest() {
    let mut p = Project::new(&manifest(
        "{ strategy: canary, steps: [20, 50], step_interval: 1s, keep_warm: 0s, verify: { min_requests: 5 } }",
    ));
    let addr = up(&mut p);
    let load = Load::start(&addr, "/api/");
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("at 20%") && stdout.contains("at 50%"),
        "{stdout}"
    );
    let (_, failed, versions) = load.finish();
    assert_eq!(failed, 0);
    assert_eq!(versions.last().unwrap(), "v2");
    assert_eq!(get_version(&addr), "v2");

    // A long canary, promoted by hand.
    let out = deploy(&p, &[("DEMO_VERSION", "v3")], &["--strategy", "canary"]);
    assert!(out.status.success());
    let load = Load::start(&addr, "/api/");
    wait_for(20, "the canary to take traffic", || {
        let r: Value = serde_json::from_slice(&p.run(&["history", "--json"]).stdout).ok()?;
        (r[0]["status"] == "in-progress" && r[0]["figures"]["step"].as_u64().is_some())
            .then_some(())
    });
    assert!(p.run(&["promote", "api"]).status.success());
    wait_for(10, "v3 to serve everything", || {
        (get_version(&addr) == "v3").then_some(())
    });
    let (_, failed, _) = load.finish();
    assert_eq!(failed, 0);
}

#[test]
fn abort_returns_all_traffic_to_stable_and_a_second_deploy_is_refused() {
    let mut p = Project::new(&manifest(
        "{ strategy: canary, steps: [50], step_interval: 60s, keep_warm: 0s }",
    ));
    let addr = up(&mut p);
    let load = Load::start(&addr, "/api/");
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &[]);
    assert!(out.status.success());
    wait_for(20, "the canary to take traffic", || {
        let r: Value = serde_json::from_slice(&p.run(&["history", "--json"]).stdout).ok()?;
        r[0]["figures"]["step"].as_u64().map(|_| ())
    });
    let out = deploy(&p, &[("DEMO_VERSION", "v3")], &["api"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in progress"));
    assert!(p.run(&["abort", "api"]).status.success());
    wait_for(10, "the release to end", || {
        (releases(&p)[0]["status"] == "aborted").then_some(())
    });
    let (_, failed, versions) = load.finish();
    assert_eq!(failed, 0);
    assert_eq!(versions.last().unwrap(), "v1");
    // The aborted candidate is stopped: only the stable revision runs.
    wait_for(10, "the aborted candidate to be stopped", || {
        (p.services().len() == 1).then_some(())
    });
    assert_eq!(p.service("api")["role"], "live");
}

#[test]
fn a_revision_failing_its_healthcheck_never_gets_traffic() {
    let mut p = Project::new(&manifest("{ strategy: blue-green }"));
    let addr = up(&mut p);
    let load = Load::start(&addr, "/api/");
    let out = deploy(
        &p,
        &[("DEMO_VERSION", "v2"), ("HEALTH_PATH", "/elsewhere")],
        &["api", "--wait"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not become healthy") && err.contains("never got traffic"),
        "{err}"
    );
    assert!(
        err.contains("answers 404"),
        "the failure report says why: {err}"
    );
    let (_, failed, versions) = load.finish();
    assert_eq!(failed, 0);
    assert_eq!(versions, ["v1"]);
}

#[test]
fn a_canary_failing_thirty_percent_of_requests_is_rolled_back_by_itself() {
    let mut p = Project::new(&manifest(
        "{ strategy: canary, steps: [50], step_interval: 10s, verify: { max_error_rate: 5%, min_requests: 20 } }",
    ));
    let addr = up(&mut p);
    let load = Load::start(&addr, "/api/");
    // How soon it is caught is bench/deploy's; that it is caught within its
    // step is the controller's unit test, on virtual time.
    let out = deploy(
        &p,
        &[("DEMO_VERSION", "v2"), ("DEMO_FAIL_RATE", "0.3")],
        &["--wait"],
    );
    assert!(!out.status.success());
    let (_, failed, versions) = load.finish();
    assert!(failed > 0, "the canary did fail some requests");
    assert_eq!(versions.last().unwrap(), "v1");
    let rel = &releases(&p)[0];
    assert_eq!(rel["status"], "failed");
    assert!(
        rel["reason"]
            .as_str()
            .unwrap()
            .contains("failed verification"),
        "{rel}"
    );
    let canary = &rel["figures"]["canary"];
    assert!(
        canary["errors"].as_u64().unwrap() > 0,
        "figures recorded: {rel}"
    );
    assert_eq!(get_version(&addr), "v1");
}

#[test]
fn sticky_clients_stay_on_one_revision_during_a_canary() {
    let mut p = Project::new(&manifest(
        "{ strategy: canary, steps: [50], step_interval: 60s, keep_warm: 0s }",
    ));
    let addr = up(&mut p);
    assert!(deploy(&p, &[("DEMO_VERSION", "v2")], &[]).status.success());
    wait_for(20, "the canary to take traffic", || {
        let r: Value = serde_json::from_slice(&p.run(&["history", "--json"]).stdout).ok()?;
        r[0]["figures"]["step"].as_u64().map(|_| ())
    });
    let mut seen = std::collections::BTreeSet::new();
    for key in 0..12 {
        let cookie = format!("orch=client-{key}");
        let mut versions = std::collections::BTreeSet::new();
        for _ in 0..8 {
            versions.insert(get_with_cookie(&addr, &cookie));
        }
        assert_eq!(versions.len(), 1, "client {key} saw {versions:?}");
        seen.extend(versions);
    }
    assert_eq!(
        seen.len(),
        2,
        "at 50% both revisions serve some clients: {seen:?}"
    );
    let ps = String::from_utf8_lossy(&p.run(&["ps"]).stdout).into_owned();
    assert!(
        ps.contains("└ canary 50%"),
        "ps shows the canary beside the live revision:\n{ps}"
    );
    assert!(p.run(&["abort", "api"]).status.success());
}

fn get_with_cookie(addr: &str, cookie: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/ HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let body = buf.split("\r\n\r\n").nth(1).unwrap();
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    serde_json::from_str::<Value>(&body[start..=end]).unwrap()["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Opens `/api/stream` with `n` events, 100 ms apart, on a thread; returns once the first
/// event arrived, with the thread that reads the stream to its end (a cut stream ends it).
fn open_stream(addr: &str, n: u32) -> std::thread::JoinHandle<String> {
    let a = addr.to_owned();
    let (opened, first_event) = std::sync::mpsc::channel();
    let stream = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&a).unwrap();
        write!(
            s,
            "GET /api/stream?n={n}&interval=100ms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut signalled = false;
        loop {
            let n = s.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if !signalled && String::from_utf8_lossy(&buf).contains("data: ") {
                signalled = true;
                let _ = opened.send(());
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    });
    first_event.recv_timeout(Duration::from_secs(10)).unwrap();
    stream
}

#[test]
fn a_stream_opened_before_a_switch_completes_on_the_old_revision() {
    let mut p = Project::new(&manifest(
        "{ strategy: blue-green, keep_warm: 0s, drain_timeout: 10s }",
    ));
    let addr = up(&mut p);
    // The stream is open and flowing from v1 before the deploy starts.
    let stream = open_stream(&addr, 15);
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = stream.join().unwrap();
    let events = body.matches("data: ").count();
    assert_eq!(events, 15, "{body}");
    assert!(!body.contains("\"v2\""), "the stream stayed on v1: {body}");
    assert_eq!(get_version(&addr), "v2");
}

#[test]
fn down_drains_the_proxy_before_it_stops_a_service() {
    // SIGKILL: the service cannot finish a request itself once it is told to stop.
    let text = manifest("{ drain_timeout: 10s }") + "    stop_signal: SIGKILL\n";
    let mut p = Project::new(&text);
    let addr = up(&mut p);
    let stream = open_stream(&addr, 8);
    let out = p.run(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The stream in flight when `down` came finished on the running service.
    let body = stream.join().unwrap();
    assert_eq!(body.matches("data: ").count(), 8, "{body}");
    assert!(
        body.ends_with("0\r\n\r\n"),
        "the stream ended cleanly: {body:?}"
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the proxy is gone after down"
    );
}

#[test]
fn sigkill_mid_canary_leaves_routing_and_state_in_agreement_after_restart() {
    let mut p = Project::new(&manifest(
        "{ strategy: canary, steps: [50], step_interval: 60s }",
    ));
    let addr = up(&mut p);
    assert!(deploy(&p, &[("DEMO_VERSION", "v2")], &[]).status.success());
    wait_for(20, "the canary at 50%", || {
        let r: Value = serde_json::from_slice(&p.run(&["history", "--json"]).stdout).ok()?;
        (r[0]["figures"]["step"].as_u64() == Some(50)).then_some(())
    });
    kill_daemon(&p);
    let _ = addr;
    let addr = up(&mut p);
    let rel = &releases(&p)[0];
    assert_eq!(rel["status"], "rolled-back", "{rel}");
    // The rollout agrees: everything on the stable revision, which is what runs.
    let rollouts = {
        let store =
            orchestra_state::StateStore::open(&p.path().join(".orchestra/state.db")).unwrap();
        store.rollouts().unwrap()
    };
    let r: Value = serde_json::from_str(&rollouts[0].1).unwrap();
    assert_eq!(r["phase"]["phase"], "stable", "{r}");
    assert_eq!(r["stable"]["revision"], p.service("api")["revision"]);
    for _ in 0..20 {
        assert_eq!(get_version(&addr), "v1");
    }
}

#[test]
fn cold_rollback_starts_the_old_revision_first_and_pause_holds_requests() {
    let mut p = Project::new(&manifest("{ strategy: blue-green, keep_warm: 0s }"));
    let addr = up(&mut p);
    assert!(
        deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"])
            .status
            .success()
    );
    wait_for(10, "v1 to be stopped", || {
        (p.services().len() == 1 && get_version(&addr) == "v2").then_some(())
    });
    let load = Load::start(&addr, "/api/");
    let out = p.run(&["rollback", "api"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cold revision"));
    load.wait_last("v1");
    let (_, failed, versions) = load.finish();
    assert_eq!(failed, 0);
    assert_eq!(versions.last().unwrap(), "v1");

    // Paused: a request waits instead of failing, and completes on resume.
    assert!(p.run(&["pause", "api"]).status.success());
    let a = addr.clone();
    let resumed = Arc::new(AtomicBool::new(false));
    let r = resumed.clone();
    let held = std::thread::spawn(move || {
        let v = get_version(&a);
        // Answered only after the resume was asked for.
        (v, r.load(Ordering::SeqCst))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!held.is_finished(), "the request is held while paused");
    resumed.store(true, Ordering::SeqCst);
    assert!(p.run(&["resume", "api"]).status.success());
    let (v, after_resume) = held.join().unwrap();
    assert_eq!(v, "v1");
    assert!(after_resume, "the held request completed before the resume");
    assert!(p.run(&["maintenance", "api", "on"]).status.success());
    let (code, body) = http_get(&addr, "/api/").unwrap();
    assert_eq!(code, 503);
    assert!(body.contains("maintenance"), "{body}");
    assert!(p.run(&["maintenance", "api", "off"]).status.success());
    assert_eq!(get_version(&addr), "v1");
}

/// Releases as `history --json` gives them, asserting none is left open.
fn settled_releases(p: &Project) -> Vec<Value> {
    let rel = releases(p);
    for r in &rel {
        assert!(
            r["status"] != "in-progress" && r["status"] != "live",
            "release left open: {r}"
        );
    }
    rel
}

/// The stored rollout of `api`.
fn stored_rollout(p: &Project) -> Value {
    let store = orchestra_state::StateStore::open(&p.path().join(".orchestra/state.db")).unwrap();
    let rows = store.rollouts().unwrap();
    let (_, json) = rows.iter().find(|(s, _)| s == "api").unwrap();
    serde_json::from_str(json).unwrap()
}

/// SIGKILL the daemon and wait until its socket no longer answers.
fn kill_daemon(p: &Project) {
    let daemon = p.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(10, "the daemon's socket to be dead", || {
        (!p.run(&["ps"]).status.success()).then_some(())
    });
}

#[test]
fn after_a_clean_down_the_manifest_wins_and_restore_brings_the_release_back() {
    let mut p = Project::new(&manifest("{ strategy: blue-green, keep_warm: 0s }"));
    let addr = up(&mut p);
    assert!(
        deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"])
            .status
            .success()
    );
    assert_eq!(get_version(&addr), "v2");
    assert!(p.down().status.success());
    // The api's command edited to a literal version while it was down.
    p.write(
        "orchestra.yaml",
        &manifest("{ strategy: blue-green, keep_warm: 0s }")
            .replace("${DEMO_VERSION:-v1}", "v3-edited"),
    );
    let (out, addr) = up_with(&mut p, &[]);
    assert_eq!(get_version(&addr), "v3-edited", "the edit is what runs");
    assert!(
        out.contains("differs from its last release") && out.contains("--restore"),
        "up says which services differ and how to get the release back:\n{out}"
    );
    assert!(p.down().status.success());
    let (out, addr) = up_with(&mut p, &["--restore"]);
    assert_eq!(get_version(&addr), "v2", "--restore runs the last release");
    assert!(
        out.contains("as its last release left it (--restore)"),
        "{out}"
    );
    settled_releases(&p);
}

#[test]
fn abort_acts_in_every_phase_of_a_blue_green_deploy_and_says_when_it_cannot() {
    let mut p = Project::new(&manifest(
        "{ strategy: blue-green, keep_warm: 5m, hooks: { pre: [[sleep, \"3\"]] } }",
    ));
    let addr = up(&mut p);
    let out = p.run(&["abort", "api"]);
    assert!(!out.status.success(), "nothing to abort is an error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no deploy of `api` is in progress"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // While the pre hook runs: the new revision never starts.
    assert!(deploy(&p, &[("DEMO_VERSION", "v2")], &[]).status.success());
    let out = p.run(&["abort", "api"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(releases(&p)[0]["status"], "aborted");
    assert_eq!(get_version(&addr), "v1");
    assert_eq!(p.services().len(), 1, "no candidate was started");
    // After the switch, while the old revision is warm: traffic goes back.
    p.write(
        "orchestra.yaml",
        &manifest("{ strategy: blue-green, keep_warm: 5m }"),
    );
    assert!(
        deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"])
            .status
            .success()
    );
    assert_eq!(get_version(&addr), "v2");
    assert_eq!(releases(&p)[0]["status"], "live");
    let load = Load::start(&addr, "/api/");
    assert!(p.run(&["abort", "api"]).status.success());
    assert_eq!(get_version(&addr), "v1");
    let (_, failed, _) = load.finish();
    assert_eq!(failed, 0);
    let rel = settled_releases(&p);
    assert_eq!(rel[0]["status"], "aborted", "{}", rel[0]);
    let log = std::fs::read_to_string(p.path().join(".orchestra/daemon.log")).unwrap();
    assert!(!log.contains("ERROR"), "the daemon logged errors:\n{log}");
}

#[test]
fn an_inconclusive_canary_never_promotes_unless_told_to() {
    // No traffic at all: min_requests is never met.
    let mut p = Project::new(&manifest(
        "{ strategy: canary, steps: [50], step_interval: 300ms, keep_warm: 0s, verify: { min_requests: 50, deadline: 1s } }",
    ));
    let addr = up(&mut p);
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not be verified at 50%"), "{err}");
    let rel = &settled_releases(&p)[0];
    assert_eq!(rel["status"], "failed");
    assert_eq!(rel["figures"]["inconclusive"], "fail", "{rel}");
    assert_eq!(get_version(&addr), "v1");

    p.write(
        "orchestra.yaml",
        &manifest("{ strategy: canary, steps: [50], step_interval: 300ms, keep_warm: 0s, verify: { min_requests: 50, deadline: 1s, on_inconclusive: pass } }"),
    );
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(10, "the release to succeed", || {
        (releases(&p)[0]["status"] == "succeeded").then_some(())
    });
    let rel = &releases(&p)[0];
    assert!(
        rel["reason"]
            .as_str()
            .unwrap()
            .contains("on_inconclusive: pass"),
        "the record says it passed unverified: {rel}"
    );
    assert_eq!(get_version(&addr), "v2");
}

#[test]
fn a_rollback_to_an_unknown_revision_changes_nothing_and_a_new_route_takes_effect() {
    let text = manifest("{ strategy: blue-green, keep_warm: 0s }")
        .replace("path: /api", "path: \"${ROUTE:-/api}\"");
    let mut p = Project::new(&text);
    let addr = up(&mut p);
    let out = p.run(&["rollback", "api", "--to", "0123456789abcdef"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no revision"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(releases(&p).is_empty(), "no release was started");
    // The new revision moves the route.
    let out = deploy(&p, &[("DEMO_VERSION", "v2"), ("ROUTE", "/v2")], &["--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, body) = http_get(&addr, "/v2/").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"v2\""), "{body}");
    assert_eq!(http_get(&addr, "/api/").unwrap().0, 404);
}

#[test]
fn state_is_private_and_holds_no_secret_value() {
    let secret = "sk-test-9f8e7d6c5b4a39281706"; // orchestra: ignore[secret-generic-assignment] test value
    let text = manifest("{ strategy: blue-green, keep_warm: 0s }").replace(
        "    route:",
        &format!("    env: {{ OPENAI_API_KEY: {secret}, LOG_LEVEL: debug }}\n    route:"),
    );
    let mut p = Project::new(&text);
    up(&mut p);
    assert!(
        deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"])
            .status
            .success()
    );
    use std::os::unix::fs::PermissionsExt;
    let dir = p.path().join(".orchestra");
    let mode = |f: &std::path::Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("state.db")), 0o600);
    // The value is in orchestra.yaml itself (that is the audit's business); nowhere else.
    assert!(p.down().status.success());
    std::fs::remove_file(p.path().join("orchestra.yaml")).unwrap();
    assert_nowhere(&p, &[secret]);
}

#[test]
fn sigkill_at_each_phase_recovers_to_one_answer() {
    // (deploy block, what to wait for before the kill, version served after)
    let cases = [
        (
            "{ strategy: blue-green, keep_warm: 5m, hooks: { pre: [[sleep, \"3\"]] } }",
            "pre hooks",
            "v1",
        ),
        ("{ strategy: blue-green, keep_warm: 5m }", "starting", "v1"),
        (
            "{ strategy: canary, steps: [50], step_interval: 60s }",
            "canary",
            "v1",
        ),
        (
            "{ strategy: blue-green, keep_warm: 5m, hooks: { post: [[sleep, \"3\"]] } }",
            "switched",
            "v2",
        ),
        (
            "{ strategy: canary, steps: [50], hooks: { pre: [[sleep, \"3\"]] } }",
            "pre hooks",
            "v1",
        ),
        ("{ strategy: canary, steps: [50] }", "starting", "v1"),
        // Past its only step (min_requests met by the load), watched while v1 is warm.
        (
            "{ strategy: canary, steps: [50], step_interval: 500ms, keep_warm: 5m, verify: { min_requests: 5 }, hooks: { post: [[sleep, \"3\"]] } }",
            "switched",
            "v2",
        ),
    ];
    for (block, phase, after) in cases {
        let mut p = Project::new(&manifest(block));
        let addr = up(&mut p);
        let load = Load::start(&addr, "/api/");
        // The "starting" case: a candidate that never turns healthy in time.
        let env: &[(&str, &str)] = if phase == "starting" {
            &[("DEMO_VERSION", "v2"), ("HEALTH_PATH", "/elsewhere")]
        } else {
            &[("DEMO_VERSION", "v2")]
        };
        assert!(deploy(&p, env, &[]).status.success());
        wait_for(20, phase, || {
            let r = stored_rollout(&p);
            let ph = r["phase"]["phase"].as_str().unwrap_or_default().to_owned();
            let started = r["phase"]["started"].as_bool().unwrap_or(false);
            let at = match phase {
                "pre hooks" => ph == "starting" && !started,
                "starting" => ph == "starting" && started,
                "canary" => ph == "canary",
                _ => ph == "switched",
            };
            at.then_some(())
        });
        kill_daemon(&p);
        let (ok, failed, _) = load.finish();
        eprintln!("{phase}: {failed} requests failed while the daemon was down ({ok} ok)");
        let (out, addr) = up_with(&mut p, &[]);
        assert!(
            out.contains("↺ api: release 1 "),
            "{phase}: up says what it restored:\n{out}"
        );
        let rel = settled_releases(&p);
        let r = stored_rollout(&p);
        assert_eq!(r["phase"]["phase"], "stable", "{phase}: {r}");
        let running = p.service("api")["revision"].clone();
        assert_eq!(r["stable"]["revision"], running, "{phase}: rollout vs ps");
        assert_eq!(
            rel[0]["status"],
            if after == "v2" {
                "succeeded"
            } else {
                "rolled-back"
            },
            "{phase}: {}",
            rel[0]
        );
        for _ in 0..10 {
            assert_eq!(get_version(&addr), after, "{phase}");
        }
        // The other revision stops once drained.
        wait_for(10, &format!("{phase}: one revision to run"), || {
            (p.services().len() == 1).then_some(())
        });
    }
}

#[test]
fn synthetic_traffic_verifies_a_quiet_canary_and_catches_a_bad_one() {
    // No client traffic at all: only the probes the verifier sends itself.
    let block = "{ strategy: canary, steps: [50], step_interval: 1s, keep_warm: 0s, verify: { min_requests: 20, max_error_rate: 5%, deadline: 20s, synthetic: { path: /, rate: 50 } } }";
    let mut p = Project::new(&manifest(block));
    let addr = up(&mut p);
    let out = deploy(
        &p,
        &[("DEMO_VERSION", "bad"), ("DEMO_FAIL_RATE", "0.5")],
        &["--wait"],
    );
    assert!(!out.status.success());
    let rel = &settled_releases(&p)[0];
    assert_eq!(rel["status"], "failed", "{rel}");
    assert!(
        rel["figures"]["synthetic"]["errors"].as_u64().unwrap() > 0,
        "the probes found the failures: {rel}"
    );
    assert_eq!(get_version(&addr), "v1");
    let out = deploy(&p, &[("DEMO_VERSION", "v2")], &["--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(10, "the release to succeed", || {
        (releases(&p)[0]["status"] == "succeeded").then_some(())
    });
    let rel = &releases(&p)[0];
    assert!(
        rel["figures"]["synthetic"]["requests"].as_u64().unwrap() >= 20,
        "verified on synthetic traffic: {rel}"
    );
    assert_eq!(rel["figures"]["live"]["requests"], 0, "{rel}");
    assert_eq!(get_version(&addr), "v2");
}

#[test]
fn a_route_waiting_for_its_first_ready_replica_answers_503_and_logs_nothing() {
    // Ready only 3 s after it is healthy: the route exists before any replica is ready.
    let text = "services:\n  api:\n    command: [demo-service, --port, \"${PORT}\", --not-ready-for, 3s]\n    route: /api\n    healthcheck: { http: /health, interval: 100ms }\n    readiness: { http: /ready, interval: 100ms }\n";
    let mut p = Project::new(text);
    let admin = free_port();
    let proxy = free_port();
    let mut c = p.command(&[
        "up",
        "--admin",
        &format!("127.0.0.1:{admin}"),
        "--proxy",
        &format!("127.0.0.1:{proxy}"),
    ]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let fg = c.spawn().unwrap();
    p.set_daemon_pid(fg.id() as i32);
    let addr = format!("127.0.0.1:{proxy}");
    // 404 only until the daemon publishes its first table.
    let (code, body) = wait_for(20, "the route to answer", || {
        http_get(&addr, "/api/").filter(|r| r.0 != 404)
    });
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no ready replica of api"), "{body}");
    wait_for(20, "the replica to be ready", || {
        (http_get(&addr, "/api/").map(|r| r.0) == Some(200)).then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fg.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = fg.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("rejected"),
        "waiting for a replica is not an error:\n{stderr}"
    );
}

/// `secrets set NAME` with the value on stdin.
fn set_secret(p: &Project, name: &str, value: &str) {
    let out = with_stdin(p, &["secrets", "set", name], value);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run orchestra with `input` on its stdin.
fn with_stdin(p: &Project, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = p.command(args);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What the running api last saw in MODEL_TOKEN, as the digest it wrote.
fn seen(p: &Project) -> String {
    std::fs::read_to_string(p.path().join("seen")).unwrap_or_default()
}

fn digest(value: &str) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
}

/// A routed api that writes a digest of the MODEL_TOKEN it got to `seen`, and
/// prints the value itself, which its logs must mask.
const SECRET_API: &str = "services:\n  api:\n    command: [sh, -c, \"echo got $$MODEL_TOKEN; printf %s \\\"$$MODEL_TOKEN\\\" | md5sum > seen; exec demo-service --port $$PORT --version ${DEMO_VERSION:-v1}\"]\n    secrets: [MODEL_TOKEN]\n    route: /api\n    healthcheck: { http: /health, interval: 200ms, start_period: 5s }\n    deploy: { strategy: blue-green, keep_warm: 0s }\n";

#[test]
fn a_rotation_under_load_is_a_verified_deploy_and_rollback_brings_the_old_value_back() {
    let mut p = Project::new(SECRET_API);
    let (old, new) = ("first-value-3b1d", "second-value-c07e");
    set_secret(&p, "MODEL_TOKEN", old);
    let addr = up(&mut p);
    wait_for(10, "the api to see the first value", || {
        (seen(&p) == digest(old)).then_some(())
    });
    let load = Load::start(&addr, "/api/");
    let out = with_stdin(&p, &["secrets", "rotate", "MODEL_TOKEN", "--wait"], new);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("version 2 stored") && stdout.contains("deploying api"),
        "{stdout}"
    );
    let (ok, failed, _) = load.finish();
    assert_eq!(failed, 0, "{ok} ok");
    wait_for(10, "the api to see the new value", || {
        (seen(&p) == digest(new)).then_some(())
    });
    assert_eq!(releases(&p)[0]["status"], "succeeded");
    // keep_warm 0s: the old revision stops once drained; a rollback before that
    // would reclaim the running one, so wait for it to be gone.
    wait_for(10, "the old revision to be stopped", || {
        (p.services().len() == 1).then_some(())
    });
    // Rollback starts it cold, with its own value.
    let out = p.run(&["rollback", "api"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cold revision"));
    wait_for(10, "the api to see the first value again", || {
        (seen(&p) == digest(old)).then_some(())
    });
    assert_eq!(get_version(&addr), "v1");
    // Each release records its versions; history shows what changed.
    let rel = releases(&p);
    assert_eq!(rel[0]["secrets"]["MODEL_TOKEN"], 1, "{}", rel[0]);
    assert_eq!(rel[1]["secrets"]["MODEL_TOKEN"], 2, "{}", rel[1]);
    let text = String::from_utf8_lossy(&p.run(&["history", "api"]).stdout).into_owned();
    assert!(text.contains("secrets: MODEL_TOKEN v2 -> v1"), "{text}");
    // After rotate and rollback: no value anywhere but the encrypted store.
    assert_nowhere(&p, &[old, new]);
}

#[test]
fn secrets_are_injected_pinned_to_their_version_and_never_written_in_plaintext() {
    // The service writes a digest of what it got, never the value.
    let text = SECRET_API;
    let mut p = Project::new(text);
    // Missing: validate and up name the reference and the command that fixes it.
    let out = p.run(&["validate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orchestra.yaml:4:15")
            && err.contains("secret `MODEL_TOKEN` is not in the store")
            && err.contains("orchestra secrets set MODEL_TOKEN"),
        "{err}"
    );
    let out = p.up(&["--proxy", "127.0.0.1:0"]);
    assert!(!out.status.success(), "nothing starts without its secrets");
    assert!(!p.run(&["ps"]).status.success());

    let (v1, v2, v3) = ("alpha-one-7f3a", "beta-two-91c2", "gamma-three-55d0");
    set_secret(&p, "MODEL_TOKEN", v1);
    let addr = up(&mut p);
    wait_for(10, "the api to see version 1", || {
        (seen(&p) == digest(v1)).then_some(())
    });
    // A new version ships as a new revision, verified like any deploy.
    set_secret(&p, "MODEL_TOKEN", v2);
    let load = Load::start(&addr, "/api/");
    let out = deploy(&p, &[], &["--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, failed, _) = load.finish();
    assert_eq!(failed, 0);
    wait_for(10, "the api to see version 2", || {
        (seen(&p) == digest(v2)).then_some(())
    });
    // A later version is not what the release shipped: after a crash, the
    // release's own version (2) comes back from the store.
    set_secret(&p, "MODEL_TOKEN", v3);
    kill_daemon(&p);
    std::fs::remove_file(p.path().join("seen")).unwrap();
    let (out, _) = up_with(&mut p, &[]);
    assert!(out.contains("as its last release left it"), "{out}");
    let got = wait_for(10, "the restarted api to write what it saw", || {
        Some(seen(&p)).filter(|s| !s.is_empty())
    });
    assert_eq!(got, digest(v2), "the release's version, not the latest");
    // The access log: every write and every injection, with its version.
    let events = p.db_events();
    let of = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(of("secret-set"), 3, "{events:#?}");
    assert!(
        of("secret-inject") >= 3,
        "up, deploy, up again: {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == "secret-set" && e.reason.contains("MODEL_TOKEN version 3")),
        "{events:#?}"
    );
    // Printed by the service, masked in its logs.
    let logs = String::from_utf8_lossy(&p.run(&["logs", "api"]).stdout).into_owned();
    assert!(logs.contains("got ***"), "{logs}");
    // Nowhere in the project (but the encrypted store) nor in the daemon's environment.
    let daemon = p.daemon_pid().unwrap();
    let environ = std::fs::read(format!("/proc/{daemon}/environ")).unwrap();
    for v in [v1, v2, v3] {
        assert!(!environ.windows(v.len()).any(|w| w == v.as_bytes()));
    }
    assert_nowhere(&p, &[v1, v2, v3]);
}

/// No file under the project but the encrypted store holds any of `values`.
fn assert_nowhere(p: &Project, values: &[&str]) {
    for f in walk(p.path()) {
        if f.starts_with(p.path().join("secrets")) {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        for v in values {
            assert!(
                !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                "{} holds a secret value",
                f.display()
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_secret_given_as_a_file_lives_on_tmpfs_with_its_revision_and_a_pinned_version_holds() {
    let text = "services:\n  api:\n    command: [sh, -c, \"md5sum < \\\"$$TLS_KEY_FILE\\\" > seen; printf %s \\\"$$PINNED\\\" | md5sum > pinned; echo \\\"file=$$TLS_KEY_FILE env=$${TLS_KEY:-unset}\\\" > where; exec demo-service --port $$PORT\"]\n    secrets: [{ name: TLS_KEY, as: file, target: /run/secrets/server.key }, { name: PINNED, version: 1 }]\n    route: /api\n    healthcheck: { http: /health, interval: 200ms, start_period: 5s }\n";
    let mut p = Project::new(text);
    set_secret(&p, "TLS_KEY", "key-material-4d2f");
    set_secret(&p, "PINNED", "pinned-one-77aa");
    set_secret(&p, "PINNED", "pinned-two-0b9c");
    up(&mut p);
    let read = |f: &str| std::fs::read_to_string(p.path().join(f)).unwrap_or_default();
    wait_for(10, "the api to start", || {
        (!read("where").is_empty()).then_some(())
    });
    let where_ = read("where");
    let file = where_
        .split_whitespace()
        .find_map(|w| w.strip_prefix("file="))
        .unwrap()
        .to_owned();
    assert!(
        file.starts_with("/dev/shm/orchestra-") && file.ends_with("/server.key"),
        "{where_}"
    );
    assert!(
        where_.contains("env=unset"),
        "not in the environment: {where_}"
    );
    wait_for(10, "the digests", || {
        (read("seen") == digest("key-material-4d2f")).then_some(())
    });
    assert_eq!(
        read("pinned"),
        digest("pinned-one-77aa"),
        "version 1, as pinned"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(p.down().status.success());
    assert!(
        !std::path::Path::new(&file).exists(),
        "the file goes with its revision"
    );
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error_and_nothing_starts() {
    let mut p = Project::new(SECRET_API);
    set_secret(&p, "MODEL_TOKEN", "value-for-the-old-key-91");
    let key = p.path().join(".age/key.txt");
    // Someone else's identity: not a recipient of the store.
    std::fs::remove_file(&key).unwrap();
    assert!(p.run(&["secrets", "init"]).status.success());
    let out = p.up(&["--proxy", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orchestra.yaml:4:") && err.contains("recipients.txt"),
        "the error names the reference and the store's recipients: {err}"
    );
    assert!(!p.run(&["ps"]).status.success(), "nothing started");
    // No key at all.
    std::fs::remove_file(&key).unwrap();
    let out = p.up(&["--proxy", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key.txt"),
        "the error names the key file: {err}"
    );
    assert!(!p.run(&["ps"]).status.success(), "nothing started");
}
