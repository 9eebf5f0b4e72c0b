//! End to end: scheduled jobs run by the daemon at their ticks, never
//! overlapping under `concurrency: skip`, on demand with `jobs run`, with
//! every run in the event log; and process services running as another user.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Project, wait_for};
use serde_json::Value;

fn jobs(p: &Project) -> Vec<Value> {
    p.json_list(&["jobs", "--json"])
}

fn job(p: &Project, name: &str) -> Value {
    jobs(p)
        .into_iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name}"))
}

fn finished_runs(j: &Value) -> Vec<Value> {
    j["runs"].as_array().cloned().unwrap_or_default()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `start NANOS` / `end NANOS` lines a job wrote, paired per run.
fn intervals(log: &str) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut open = None;
    for line in log.lines() {
        let (what, at) = line.split_once(' ').unwrap();
        let at: u128 = at.trim().parse().unwrap();
        match what {
            "start" => {
                assert!(
                    open.is_none(),
                    "a run started before the last ended:\n{log}"
                );
                open = Some(at);
            }
            "end" => out.push((open.take().expect("end without start"), at)),
            other => panic!("unexpected line {other}"),
        }
    }
    out
}

#[test]
fn every_2s_jobs_run_at_their_ticks_never_overlap_under_skip_and_run_on_demand() {
    let mut p = Project::new(
        r#"
name: jobs
services:
  quick:
    command: [sh, -c, "echo quick-run $$ORCHESTRA_SERVICE"]
    schedule: "@every 2s"
  slow:
    # Longer than its interval: ticks come while it runs.
    command: [sh, -c, "echo start $(date +%s%N) >> slow.log; sleep 3; echo end $(date +%s%N) >> slow.log"]
    schedule: "@every 2s"
    concurrency: skip
  nightly:
    command: [sh, -c, "echo nightly-output; exit 3"]
    schedule: "0 3 * * *"
    timezone: Europe/Paris
  web:
    command: [sleep, "1000"]
"#,
    );
    let up_at = orchestra_state::now_ms();
    p.up_ok(&[]);

    // `up` does not run a job; only `web` is a service in `ps`.
    let names: Vec<String> = p
        .services()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["web"]);
    let nightly = job(&p, "nightly");
    assert_eq!(nightly["schedule"], "0 3 * * * (Europe/Paris)");
    assert!(nightly["running"].is_null() && finished_runs(&nightly).is_empty());
    let next = nightly["next_run_at_ms"].as_i64().unwrap();
    assert!(
        next > up_at && next <= up_at + 24 * 3_600_000,
        "next run {next} is not within a day of {up_at}"
    );

    // Two runs of `quick` at its ticks, each succeeded with its output kept.
    let quick = wait_for(30, "two runs of quick", || {
        let j = job(&p, "quick");
        (finished_runs(&j).len() >= 2).then_some(j)
    });
    let runs = finished_runs(&quick);
    for r in &runs[..2] {
        assert_eq!(r["trigger"], "schedule", "{r}");
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["outcome"], "succeeded", "{r}");
        let logs = r["logs"].as_array().unwrap();
        assert!(
            logs.iter()
                .any(|l| l.as_str().unwrap().ends_with("| quick-run quick")),
            "{r}"
        );
    }
    let logs = p.run(&["logs", "quick"]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("quick-run quick"),
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        stderr(&logs)
    );
    let gap =
        runs[1]["started_at_ms"].as_i64().unwrap() - runs[0]["started_at_ms"].as_i64().unwrap();
    assert!(gap >= 1_500, "runs {gap} ms apart for @every 2s");

    // `jobs run` while `slow` runs, under skip: refused, and says why.
    wait_for(30, "a run of slow going", || {
        let j = job(&p, "slow");
        (!j["running"].is_null()).then_some(())
    });
    let out = p.run(&["jobs", "run", "slow"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`slow` is still running"),
        "{}",
        stderr(&out)
    );

    // `jobs run` starts one now; its end, exit code and log lines are events.
    let out = p.run(&["jobs", "run", "nightly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nightly: started run 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ended = wait_for(20, "the nightly run to end", || {
        let j = job(&p, "nightly");
        finished_runs(&j).first().cloned()
    });
    assert_eq!(ended["trigger"], "manual");
    assert_eq!(ended["exit_code"], 3);
    assert_eq!(ended["outcome"], "failed");
    let events = p.events();
    let of = |svc: &str, kind: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["service"] == svc && e["kind"] == kind)
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(of("nightly", "job-started"), ["run 1 (run now)"]);
    let fin = of("nightly", "job-finished");
    assert_eq!(fin.len(), 1, "{fin:?}");
    assert!(
        fin[0].starts_with("run 1 failed: exit code 3 after "),
        "{}",
        fin[0]
    );
    assert!(fin[0].contains("| nightly-output"), "{}", fin[0]);
    assert!(
        of("quick", "job-finished")
            .iter()
            .any(|r| r.contains("succeeded: exit code 0") && r.contains("| quick-run quick")),
        "{events:#?}"
    );

    // Clear errors for names that are not jobs.
    let out = p.run(&["jobs", "run", "web"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`web` is not a scheduled job"),
        "{}",
        stderr(&out)
    );
    let out = p.run(&["jobs", "run", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no service `nope`"),
        "{}",
        stderr(&out)
    );

    // `slow` (3 s runs every 2 s) ran at least twice, one run at a time, dropping ticks.
    let log_path = p.path().join("slow.log");
    let spans = wait_for(40, "two complete runs of slow", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let spans = intervals(&log);
        (spans.len() >= 2).then_some(spans)
    });
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "runs overlap: {spans:?}");
    }
    assert!(
        p.events()
            .iter()
            .any(|e| e["service"] == "slow" && e["kind"] == "job-skipped"),
        "no skipped tick recorded"
    );
    assert!(job(&p, "slow")["skipped"].as_u64().unwrap() >= 1);

    // `down` stops a run that is going and records it.
    wait_for(30, "a run of slow going", || {
        (!job(&p, "slow")["running"].is_null()).then_some(())
    });
    let out = p.down();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = p.db_events();
    let last_slow = db
        .iter()
        .rev()
        .find(|e| e.service.as_deref() == Some("slow") && e.kind == "job-finished")
        .expect("a finished event for slow");
    assert!(
        last_slow.reason.contains(" stopped: "),
        "{}",
        last_slow.reason
    );
    std::thread::sleep(Duration::from_millis(100));
    let log = std::fs::read_to_string(&log_path).unwrap();
    let started = log.lines().filter(|l| l.starts_with("start")).count();
    std::thread::sleep(Duration::from_millis(2500));
    let later = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        later.lines().filter(|l| l.starts_with("start")).count(),
        started,
        "a run started after down"
    );
}

/// Whether this test runs as root (needed to switch users): required under CI.
fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "switching users needs root and CI is set: run the tests as root"
    );
    eprintln!("SKIP: not root: skipping a test that runs a process as another user");
    false
}

#[test]
#[cfg_attr(not_root, ignore = "runs a process as another user: needs root")]
fn a_process_service_runs_as_its_user_with_that_users_home() {
    if !root() {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a `nobody` user");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_owned();
    // Writable by nobody; the project directory itself stays root's.
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut p = Project::new(&format!(
        r#"
name: users
services:
  db:
    command: [sh, -c, "id -u > {o}/uid; id -g > {o}/gid; echo $$HOME $$USER > {o}/env; exec sleep 1000"]
    user: nobody
  backup:
    command: [sh, -c, "id -u > {o}/job-uid"]
    user: nobody
    schedule: "@every 1h"
"#,
        o = out.display()
    ));
    p.up_ok(&[]);
    let uid = wait_for(20, "db to write its uid", || {
        std::fs::read_to_string(out.join("env"))
            .ok()
            .filter(|s| s.ends_with('\n'))?;
        std::fs::read_to_string(out.join("uid")).ok()
    });
    assert_eq!(uid.trim(), nobody.uid.to_string());
    let gid = std::fs::read_to_string(out.join("gid")).unwrap();
    assert_eq!(gid.trim(), nobody.gid.to_string());
    let env = std::fs::read_to_string(out.join("env")).unwrap();
    assert_eq!(
        env.trim(),
        format!("{} nobody", nobody.dir.display()),
        "HOME and USER"
    );
    // The whole process group runs as nobody, the shim included.
    let pid = p.service("db")["replicas"][0]["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == nobody.uid.to_string()),
        "{uid_line}"
    );

    // A scheduled job runs as its user too.
    let o = p.run(&["jobs", "run", "backup"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job_uid = wait_for(20, "backup to write its uid", || {
        std::fs::read_to_string(out.join("job-uid"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(job_uid.trim(), nobody.uid.to_string());
}

#[test]
fn validate_names_the_cron_field_and_an_unknown_user_with_file_line_col() {
    let p = Project::new(
        "services:\n  report:\n    command: [./report]\n    schedule: \"0 9 * 13 *\"\n  db:\n    command: [postgres]\n    user: no-such-user-here\n",
    );
    let out = p.run(&["validate"]);
    assert!(!out.status.success());
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        err.contains("orchestra.yaml:4:15")
            && err.contains("invalid month field \"13\" in cron expression"),
        "{err}"
    );
    assert!(
        err.contains("orchestra.yaml:7:11") && err.contains("no user named `no-such-user-here`"),
        "{err}"
    );
}

#[test]
fn under_queue_a_tick_during_a_run_runs_right_after_it_one_at_a_time() {
    let mut p = Project::new(
        r#"
services:
  sync:
    command: [sh, -c, "echo start $(date +%s%N) >> sync.log; sleep 2.5; echo end $(date +%s%N) >> sync.log"]
    schedule: "@every 1s"
    concurrency: queue
"#,
    );
    p.up_ok(&[]);
    let log_path = p.path().join("sync.log");
    let spans = wait_for(40, "three complete runs of sync", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let spans = intervals(&log);
        (spans.len() >= 3).then_some(spans)
    });
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "runs overlap: {spans:?}");
    }
    let j = job(&p, "sync");
    let runs = finished_runs(&j);
    assert_eq!(runs[0]["trigger"], "schedule", "{j}");
    // Ticks come every second during a 2.5 s run: the next run is the queued one.
    assert!(runs[1..].iter().all(|r| r["trigger"] == "queued"), "{j}");
    // A tick while one run already waits is dropped, not stacked.
    assert!(j["skipped"].as_u64().unwrap() >= 1, "{j}");
    let events = p.events();
    assert!(
        events
            .iter()
            .any(|e| e["service"] == "sync" && e["kind"] == "job-queued"),
        "{events:#?}"
    );
    // More ticks than one while a run goes add no second queued run.
    assert!(
        events.iter().any(|e| e["service"] == "sync"
            && e["kind"] == "job-skipped"
            && e["reason"].as_str().unwrap().contains("already queued")),
        "{events:#?}"
    );
}
