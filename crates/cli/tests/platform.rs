//! End-to-end tests: the real orchestra binary starting real demo-service
//! processes, observed through the control API, the state database and /proc.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

fn svc(name: &str, delay: &str) -> String {
    format!(
        "  {name}:\n    command: [demo-service, --port, \"${{PORT}}\", --name, {name}, --startup-delay, {delay}]\n    healthcheck: {{ http: /health, interval: 500ms, start_period: 20s }}\n"
    )
}

#[test]
fn dependents_start_only_after_their_dependency_is_healthy_and_independents_start_together() {
    let manifest = format!(
        "services:\n{}{}    depends_on: {{ base: healthy }}\n{}    depends_on: {{ base: healthy }}\n{}    depends_on: {{ left: healthy, right: healthy }}\n",
        svc("base", "300ms"),
        svc("left", "400ms"),
        svc("right", "100ms"),
        svc("top", "0ms"),
    );
    let mut p = Project::new(&manifest);
    p.up_ok(&[]);
    let ev = p.events();
    let base_healthy = event_at(&ev, "base", "healthy");
    let left_started = event_at(&ev, "left", "started");
    let right_started = event_at(&ev, "right", "started");
    let top_started = event_at(&ev, "top", "started");
    // Nothing starts before the probe of what it waits on has passed.
    assert!(
        left_started >= base_healthy && right_started >= base_healthy,
        "{ev:#?}"
    );
    assert!(top_started >= event_at(&ev, "left", "healthy"));
    assert!(top_started >= event_at(&ev, "right", "healthy"));
    // left and right are independent: both start as soon as base is healthy,
    // not one after the other.
    assert!(
        (left_started - right_started).abs() < 250,
        "left {left_started} right {right_started}"
    );
    assert!(event_at(&ev, "right", "healthy") < event_at(&ev, "left", "healthy"));
    let states: Vec<Value> = p.services();
    assert!(
        states.iter().all(|s| s["phase"] == "healthy"),
        "{states:#?}"
    );
}

#[test]
fn completed_waits_for_a_job_to_exit_zero_and_a_failed_job_blocks_its_dependents() {
    let ok = "services:\n  migrate:\n    command: [demo-service, --job, --startup-delay, 300ms]\n  api:\n    command: [demo-service, --port, \"${PORT}\"]\n    depends_on: { migrate: { condition: completed } }\n    healthcheck: { http: /health }\n";
    let mut p = Project::new(ok);
    p.up_ok(&[]);
    let ev = p.events();
    assert!(event_at(&ev, "api", "started") >= event_at(&ev, "migrate", "completed"));
    assert_eq!(p.service("migrate")["phase"], "completed");
    drop(p);

    let bad = "services:\n  migrate:\n    command: [demo-service, --job, --exit-code, \"4\"]\n    restart: \"no\"\n  api:\n    command: [demo-service, --port, \"${PORT}\"]\n    depends_on: { migrate: { condition: completed } }\n";
    let mut p = Project::new(bad);
    let out = p.up(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("migrate") && err.contains("exited with code 4"),
        "{err}"
    );
    assert!(
        p.db_events()
            .iter()
            .all(|e| !(e.service.as_deref() == Some("api") && e.kind == "started"))
    );
}

#[test]
fn a_crashing_service_is_restarted_with_growing_backoff_then_shown_crash_looping_then_given_up() {
    let m = "services:\n  flaky:\n    command: [demo-service, --port, \"${PORT}\", --exit-after, 100ms, --exit-code, \"3\"]\n    restart: { policy: on-failure, backoff: { initial: 200ms, max: 5s }, max_restarts: 4 }\n  other:\n    command: [demo-service, --port, \"${PORT}\"]\n";
    let p = Project::new(m);
    let mut fg = Foreground {
        child: p
            .command(&["up", "--admin", "off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    let state = p.path().join(".orchestra/state.db");
    let events = || -> Vec<orchestra_state::EventRecord> {
        orchestra_state::StateStore::open(&state)
            .and_then(|s| s.events(0, None, 10_000))
            .unwrap_or_default()
    };
    let ev = wait_for(30, "flaky to be given up", || {
        let ev = events();
        ev.iter()
            .any(|e| e.service.as_deref() == Some("flaky") && e.kind == "failed")
            .then_some(ev)
    });
    let flaky: Vec<&orchestra_state::EventRecord> = ev
        .iter()
        .filter(|e| e.service.as_deref() == Some("flaky"))
        .collect();
    let restarts: Vec<i64> = flaky
        .iter()
        .filter(|e| e.kind == "restarted")
        .map(|e| e.at_ms)
        .collect();
    let exits: Vec<i64> = flaky
        .iter()
        .filter(|e| e.kind == "exited")
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(restarts.len(), 4, "max_restarts 4: {flaky:#?}");
    // Backoff: 200ms, 400ms, 800ms, 1.6s (±20%), so each wait is longer than the one before.
    let gaps: Vec<i64> = restarts.iter().zip(&exits).map(|(r, e)| r - e).collect();
    assert!(gaps.windows(2).all(|w| w[1] > w[0]), "gaps {gaps:?}");
    assert!(gaps[0] >= 150 && gaps[0] <= 400, "gaps {gaps:?}");
    assert!(
        flaky
            .iter()
            .any(|e| e.kind == "crash-looping" && e.reason.contains("exited with code 3")),
        "{flaky:#?}"
    );
    let failed = flaky.iter().find(|e| e.kind == "failed").unwrap();
    assert!(
        failed.reason.contains("gave up after 4 restarts"),
        "{}",
        failed.reason
    );
    let _ = kill(Pid::from_raw(fg.pid()), Signal::SIGTERM);
    let code = wait_for(30, "foreground up to exit", || fg.child.try_wait().unwrap());
    assert!(code.success());
}

#[test]
fn crash_looping_is_visible_in_ps_with_its_reason() {
    let m = "services:\n  loop:\n    command: [sh, -c, \"echo boom; exit 7\"]\n    healthcheck: { tcp: true }\n    restart: { policy: always, backoff: { initial: 50ms, max: 200ms } }\n  ok:\n    command: [demo-service, --port, \"${PORT}\"]\n    healthcheck: { http: /health }\n";
    let mut p = Project::new(m);
    // `always` restarts forever; up -d reports the failing start and stops.
    let out = p.up(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("loop") && err.contains("exited with code 7"),
        "{err}"
    );
    assert!(
        err.contains("boom"),
        "the report shows the last log lines: {err}"
    );
    // In the foreground the daemon keeps supervising: ps shows the loop.
    let mut fg = Foreground {
        child: p
            .command(&["up", "--admin", "off"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    let s = wait_for(20, "crash-looping in ps", || {
        let out = p.run(&["ps", "--json"]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?
            .iter()
            .find(|s| s["name"] == "loop" && s["phase"] == "crash-looping")
            .cloned()
    });
    assert!(
        s["reason"].as_str().unwrap().contains("exited with code 7"),
        "{s:#?}"
    );
    let h = p.run(&["health"]);
    assert!(
        !h.status.success(),
        "1/2 healthy is below the default 100% threshold"
    );
    let _ = kill(Pid::from_raw(fg.pid()), Signal::SIGINT);
    wait_for(30, "foreground up to stop", || fg.child.try_wait().unwrap());
}

#[test]
fn a_failing_liveness_probe_restarts_the_service() {
    let m = "services:\n  api:\n    command: [demo-service, --port, \"${PORT}\", --unhealthy-after, 700ms]\n    healthcheck: { http: /health, interval: 200ms, retries: 2, start_period: 10s }\n    restart: { policy: on-failure, backoff: { initial: 100ms } }\n";
    let mut p = Project::new(m);
    p.up_ok(&[]);
    let ev = wait_for(20, "a restart after unhealthy", || {
        let ev = p.events();
        ev.iter().any(|e| e["kind"] == "restarted").then_some(ev)
    });
    let kinds: Vec<&str> = ev.iter().filter_map(|e| e["kind"].as_str()).collect();
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(
        pos("healthy") < pos("unhealthy") && pos("unhealthy") < pos("restarted"),
        "{kinds:?}"
    );
    let unhealthy = ev.iter().find(|e| e["kind"] == "unhealthy").unwrap();
    assert!(
        unhealthy["reason"].as_str().unwrap().contains("503"),
        "{unhealthy}"
    );
}

#[test]
fn down_stops_in_reverse_dependency_order_and_leaves_no_process() {
    let m = format!(
        "services:\n{}{}    depends_on: {{ db: healthy }}\n{}    depends_on: {{ api: healthy }}\n",
        svc("db", "0ms"),
        svc("api", "0ms"),
        svc("web", "0ms")
    );
    let mut p = Project::new(&m);
    p.up_ok(&[]);
    let pgids = p.pgids();
    assert_eq!(pgids.len(), 3);
    let out = p.down();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(groups_gone(&pgids), "processes left after down");
    let ev = p.db_events();
    let stopped: Vec<&str> = ev
        .iter()
        .filter(|e| e.kind == "stopped")
        .filter_map(|e| e.service.as_deref())
        .collect();
    assert_eq!(stopped, ["web", "api", "db"]);
    assert!(!p.path().join(".orchestra/orchestra.sock").exists());
}

#[test]
fn ctrl_c_in_the_foreground_stops_everything() {
    let m = format!(
        "services:\n{}{}    depends_on: {{ a: healthy }}\n",
        svc("a", "200ms"),
        svc("b", "0ms")
    );
    let p = Project::new(&m);
    let mut fg = Foreground {
        child: p
            .command(&["up", "--admin", "off"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    };
    let stdout = fg.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    wait_for(20, "all services healthy", || {
        while let Ok(l) = rx.try_recv() {
            seen.push(l);
        }
        seen.iter()
            .any(|l| l.contains("all 2 services healthy"))
            .then_some(())
    });
    assert!(
        seen.iter().any(|l| l.contains("waiting for a (healthy)")),
        "progress shows waiting: {seen:#?}"
    );
    let pgids = p.pgids();
    kill(Pid::from_raw(fg.pid()), Signal::SIGINT).unwrap();
    let st = wait_for(30, "foreground up to exit", || fg.child.try_wait().unwrap());
    assert!(st.success());
    assert!(groups_gone(&pgids), "processes left after Ctrl-C");
}

#[test]
fn sigkill_of_the_daemon_takes_every_service_down_and_leftovers_are_reaped_next_time() {
    let m = format!(
        "services:\n{}  sh:\n    command: [sh, -c, \"sleep 300 & sleep 300\"]\n",
        svc("api", "0ms")
    );
    let mut p = Project::new(&m);
    p.up_ok(&[]);
    let pgids = p.pgids();
    assert_eq!(pgids.len(), 2);
    let daemon = p.daemon_pid().unwrap();
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    // Children die with the daemon, grandchildren (sleep) included.
    wait_for(10, "every process group to be gone", || {
        groups_gone(&pgids).then_some(())
    });

    // A leftover that escaped (recorded in state as running) is reaped by the next daemon.
    let mut stray = std::process::Command::new("sleep");
    stray.arg("300");
    std::os::unix::process::CommandExt::process_group(&mut stray, 0);
    let mut stray = stray.spawn().unwrap();
    let spid = stray.id() as i32;
    let ticks = orchestra_runtime::procfs::stat(spid).unwrap().start_ticks;
    {
        let store =
            orchestra_state::StateStore::open(&p.path().join(".orchestra/state.db")).unwrap();
        let run = store
            .begin_run(std::path::Path::new("x"), None, &[], 1)
            .unwrap();
        store
            .record_process(run, "api", 0, "old", spid, spid, ticks)
            .unwrap();
    }
    p.up_ok(&[]);
    let st = wait_for(10, "the stray to be killed", || stray.try_wait().unwrap());
    assert!(!st.success());
    let ev = p.events();
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "reaped"
                && e["reason"].as_str().unwrap().contains(&spid.to_string())),
        "{ev:#?}"
    );
}

fn failing(manifest: &str) -> String {
    let mut p = Project::new(manifest);
    p.write("script.sh", "#!/bin/sh\necho hi\n");
    let out = p.up(&[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure:\n{err}");
    // up -d stops what it started.
    assert!(
        !p.path().join(".orchestra/orchestra.sock").exists(),
        "daemon left running"
    );
    err
}

#[test]
fn failure_report_names_a_service_listening_on_another_port() {
    let port = free_port();
    let err = failing(&format!(
        "services:\n  api:\n    command: [demo-service, --port, \"{port}\"]\n    healthcheck: {{ http: /health, interval: 100ms, retries: 2, start_period: 1s }}\n"
    ));
    assert!(
        err.contains(&format!("listens on port {port} instead")),
        "{err}"
    );
    assert!(
        err.contains("likely cause") && err.contains("last probes"),
        "{err}"
    );
}

#[test]
fn failure_report_names_a_probe_path_answering_404_and_the_path_served() {
    let err = failing(
        "services:\n  api:\n    command: [demo-service, --port, \"${PORT}\", --health-path, /healthz]\n    healthcheck: { http: /health, interval: 100ms, retries: 2, start_period: 500ms }\n",
    );
    assert!(err.contains("GET /health answers 404"), "{err}");
    assert!(err.contains("use `http: /healthz`"), "{err}");
    assert!(
        err.contains("listening on 127.0.0.1:"),
        "the last log lines are shown: {err}"
    );
}

#[test]
fn failure_report_names_a_start_period_shorter_than_the_start() {
    let err = failing(
        "services:\n  model:\n    command: [demo-service, --port, \"${PORT}\", --startup-delay, 10s]\n    healthcheck: { http: /health, interval: 100ms, retries: 2, start_period: 500ms }\n",
    );
    assert!(err.contains("nothing is listening on port"), "{err}");
    assert!(
        err.contains("start_period is 500ms") && err.contains("raise start_period"),
        "{err}"
    );
}

#[test]
fn failure_report_names_a_command_not_found_and_permission_denied() {
    let err = failing("services:\n  api:\n    command: [no-such-model-server, --serve]\n");
    assert!(
        err.contains("command not found: `no-such-model-server`"),
        "{err}"
    );
    let err = failing("services:\n  api:\n    command: [./script.sh]\n");
    assert!(
        err.contains("permission denied: `./script.sh` is not executable"),
        "{err}"
    );
}

#[test]
fn failure_report_names_an_exit_before_healthy_with_its_logs() {
    let err = failing(
        "services:\n  api:\n    command: [sh, -c, \"echo loading weights; echo out of memory >&2; exit 3\"]\n    healthcheck: { http: /health, start_period: 10s }\n    restart: \"no\"\n",
    );
    assert!(
        err.contains("exited with code 3 before becoming healthy"),
        "{err}"
    );
    assert!(
        err.contains("loading weights") && err.contains("out of memory"),
        "{err}"
    );
}

#[test]
fn interpolation_overlays_and_profiles_reach_the_processes() {
    let m = "services:\n  api:\n    command: [demo-service, --port, \"${PORT}\", --version, \"${API_VERSION:-v7}\", --name, \"${NAME_FROM_DOTENV}\"]\n    healthcheck: { http: /health }\n  worker:\n    command: [demo-service, --port, \"${PORT}\"]\n    profiles: [batch]\n  extra:\n    command: [demo-service, --port, \"${PORT}\"]\nprofiles:\n  lean: [api]\nenv:\n  prod:\n    services:\n      api: { replicas: 2 }\n";
    let mut p = Project::new(m);
    p.write(".env", "NAME_FROM_DOTENV=from-dotenv\n");
    p.up_ok(&["--env", "prod", "--profile", "lean"]);
    let names: Vec<String> = p
        .services()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["api"], "profile lean runs api only");
    let api = p.service("api");
    let reps = api["replicas"].as_array().unwrap();
    assert_eq!(reps.len(), 2, "prod overlay: 2 replicas");
    let port = reps[0]["port"].as_u64().unwrap();
    let (code, body) = http_get(&format!("127.0.0.1:{port}"), "/").unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("\"version\":\"v7\"") && body.contains("from-dotenv"),
        "{body}"
    );
    p.down();

    // Without a profile: services with `profiles:` stay off.
    p.up_ok(&[]);
    let names: Vec<String> = p
        .services()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["api", "extra"]);
    p.down();

    let bad = Project::new(
        "services:\n  api:\n    command: [x, \"${MUST_BE_SET:?set MUST_BE_SET to the model path}\"]\n",
    );
    let out = bad.run(&["validate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orchestra.yaml:3:") && err.contains("set MUST_BE_SET to the model path"),
        "{err}"
    );
}

#[test]
fn admin_health_follows_the_threshold_and_control_commands_work() {
    let m = format!(
        "services:\n{}{}{}{}{}health: {{ threshold: 80% }}\n",
        svc("a", "0ms"),
        svc("b", "0ms"),
        svc("c", "0ms"),
        svc("d", "0ms"),
        svc("e", "0ms")
    );
    let mut p = Project::new(&m);
    let out = p.up_ok(&[]);
    let addr = out
        .split("admin http://")
        .nth(1)
        .and_then(|s| s.split("/health").next())
        .unwrap()
        .to_owned();
    let (code, body) = http_get(&addr, "/health").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(http_get(&addr, "/ready").unwrap().0, 200);
    assert!(p.run(&["stop", "e"]).status.success());
    assert_eq!(p.service("e")["phase"], "stopped");
    let (code, body) = http_get(&addr, "/health").unwrap();
    assert_eq!(code, 200, "4/5 meets 80%: {body}");
    assert_eq!(http_get(&addr, "/ready").unwrap().0, 503);
    assert!(p.run(&["stop", "d"]).status.success());
    let (code, body) = http_get(&addr, "/health").unwrap();
    assert_eq!(code, 503, "3/5 is below 80%: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["services"]["d"]["state"], "stopped");
    assert!(p.run(&["start", "d"]).status.success());
    wait_for(10, "d healthy again", || {
        (p.service("d")["phase"] == "healthy").then_some(())
    });
    assert_eq!(http_get(&addr, "/health").unwrap().0, 200);
    let before = p.service("a")["replicas"][0]["pid"].as_i64().unwrap();
    assert!(p.run(&["restart", "a"]).status.success());
    wait_for(10, "a restarted", || {
        let a = p.service("a");
        (a["phase"] == "healthy" && a["replicas"][0]["pid"].as_i64() != Some(before)).then_some(())
    });
    let out = p.run(&["stop", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service `nope`"));
}

#[test]
fn logs_are_captured_to_files_and_served_with_tail_and_follow() {
    let m = "services:\n  chatty:\n    command: [sh, -c, \"for i in 1 2 3 4 5; do echo line-$$i; done; echo to-stderr >&2; yes x | head -c 80000 | tr -d '\\n'; echo; exec demo-service --port $PORT\"]\n    healthcheck: { tcp: true }\n";
    let mut p = Project::new(m);
    p.up_ok(&[]);
    let out = wait_for(10, "log lines", || {
        let out = p.run(&["logs", "chatty", "--tail", "50"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("listening on").then_some(text)
    });
    assert!(
        out.contains("chatty.0 | line-1") && out.contains("chatty.0 | to-stderr"),
        "{out}"
    );
    let tail = String::from_utf8_lossy(&p.run(&["logs", "chatty", "-n", "2"]).stdout).into_owned();
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let file = std::fs::read_to_string(p.path().join(".orchestra/logs/chatty.log")).unwrap();
    assert!(
        file.contains("chatty.0 | line-5") && file.contains("chatty.0 err | to-stderr"),
        "{file}"
    );
    // 40,000 bytes without a newline: cut into pieces of at most 16 KiB, nothing lost.
    let pieces: Vec<usize> = file
        .lines()
        .filter_map(|l| l.split_once("chatty.0 | x").map(|(_, rest)| rest.len() + 1))
        .collect();
    assert_eq!(pieces, [16384, 16384, 7232], "{pieces:?}");
    // -f streams lines as they come.
    let mut follow = Foreground {
        child: p
            .command(&["logs", "-f", "chatty", "-n", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    };
    let stdout = follow.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    // Give the follower time to connect before the restart produces lines.
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.run(&["restart", "chatty"]).status.success());
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(line.contains("chatty.0"), "{line}");
}

#[test]
fn up_refuses_a_second_daemon_and_down_without_one_is_harmless() {
    let mut p = Project::new(&format!("services:\n{}", svc("a", "0ms")));
    let out = p.run(&["down"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
    let out = p.run(&["ps"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    p.up_ok(&[]);
    let out = p.up(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    assert_eq!(
        p.service("a")["phase"],
        "healthy",
        "the running platform is untouched"
    );
}

/// `THP_enabled` from /proc/PID/status: 0 once the process turned transparent huge pages off.
fn thp_enabled(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn the_daemon_and_shims_keep_huge_pages_off_but_services_get_the_machines_policy() {
    if thp_enabled("self").is_empty() {
        return; // a kernel without the field (before 5.0) cannot be asked
    }
    let mut p = Project::new(&format!("services:\n{}", svc("a", "0ms")));
    p.up_ok(&[]);
    let daemon = p.daemon_pid().expect("daemon pid").to_string();
    let shim = p.pgids()[0].to_string();
    // The service is the shim's only child.
    let service = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
                    == Some(shim.clone())
            })
        })
        .expect("the service process under its shim");
    assert_eq!(thp_enabled(&daemon), "0", "daemon");
    assert_eq!(thp_enabled(&shim), "0", "shim");
    assert_eq!(thp_enabled(&service), thp_enabled("self"), "service");
}

#[test]
fn an_unrouted_process_with_a_port_listens_on_it_across_restarts() {
    let port = common::free_port();
    let mut p = Project::new(&format!(
        r#"
services:
  store:
    command: [demo-service, --port, "${{PORT}}", --name, store]
    port: {port}
    healthcheck: {{ http: /health, interval: 1s }}
"#
    ));
    p.up_ok(&[]);
    let addr = format!("127.0.0.1:{port}");
    let listed = |p: &Project| p.service("store")["replicas"][0]["port"].as_u64();
    assert_eq!(listed(&p), Some(u64::from(port)));
    let (status, _) = common::http_get(&addr, "/health").expect("the pinned port answers");
    assert_eq!(status, 200);
    let first = p.service("store")["replicas"][0]["pid"].as_i64();
    let o = p.run(&["restart", "store"]);
    assert!(o.status.success(), "{o:?}");
    common::wait_for(30, "store restarted and healthy on its port", || {
        let s = p.service("store");
        let r = &s["replicas"][0];
        (r["healthy"] == true && r["pid"].as_i64() != first).then_some(())
    });
    assert_eq!(listed(&p), Some(u64::from(port)));
    assert_eq!(common::http_get(&addr, "/health").map(|r| r.0), Some(200));
}
