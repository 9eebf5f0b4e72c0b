//! End to end: examples/ai-platform-data, copied into a temp dir with free ports for
//! its pinned data services, runs healthy on real Redis and Postgres; its API answers
//! from both; a Postgres backup is taken and listed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{Project, free_port, http_get, wait_for};
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.status.success(), "command failed\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ai-platform-data")
}

/// What the example needs (its setup.sh installs it): required under CI, skipped
/// loudly elsewhere.
fn have_everything() -> bool {
    let checks: [(&str, &str); 5] = [
        ("command -v redis-server", "redis-server"),
        ("command -v redis-cli", "redis-tools"),
        ("command -v pg_isready && command -v pg_dump", "postgresql"),
        ("ls /usr/lib/postgresql/*/bin/postgres", "postgresql"),
        ("/usr/bin/python3 -c 'import psycopg2'", "python3-psycopg2"),
    ];
    let missing: Vec<&str> = checks
        .iter()
        .filter(|(check, _)| {
            !Command::new("sh")
                .args(["-c", &format!("{check} >/dev/null 2>&1")])
                .status()
                .unwrap()
                .success()
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing:?} missing and CI is set: install them from Debian (scripts/test.sh does)"
    );
    eprintln!("SKIP: Debian packages {missing:?} not installed: skipping the data example");
    false
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn validate_passes_on_the_data_example() {
    let o = Command::new(common::orchestra_bin())
        .args(["validate"])
        .current_dir(example())
        .output()
        .unwrap();
    let out = ok(o);
    assert!(out.contains("5 services"), "{out}");
}

#[test]
#[cfg_attr(
    any(missing_redis, missing_postgres, not_root),
    ignore = "needs redis-server, Postgres and root (the data example runs Postgres as its own user)"
)]
fn the_data_example_runs_healthy_its_api_uses_redis_and_postgres_and_backs_up() {
    if !have_everything() {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: the data example runs Postgres as the postgres user: needs root");
        return;
    }
    let mut p = Project::new("services: {}\n");
    copy_dir(&example(), p.path());
    // Postgres (as the postgres user) must reach its data directory inside.
    std::fs::set_permissions(p.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (redis_port, pg_port) = (free_port(), free_port());
    let proxy = format!("127.0.0.1:{}", free_port());
    let mut up = p.command(&[
        "up",
        "-d",
        "--admin",
        "127.0.0.1:0",
        "--proxy",
        &proxy,
        "--timeout",
        "120s",
    ]);
    up.env("REDIS_PORT", redis_port.to_string())
        .env("PG_PORT", pg_port.to_string());
    let o = up.output().unwrap();
    // Remember the daemon for cleanup before asserting.
    let db = p.path().join(".orchestra/state.db");
    if let Some((_, pid, _)) = orchestra_state::StateStore::open(&db)
        .ok()
        .and_then(|s| s.last_run().ok().flatten())
    {
        p.set_daemon_pid(pid as i32);
    }
    let out = ok(o);
    for s in ["redis", "postgres", "api"] {
        wait_for(60, &format!("{s} healthy"), || {
            (p.service(s)["replicas"][0]["healthy"] == true).then_some(())
        });
    }
    // The pinned data services listen where their clients expect.
    assert_eq!(
        p.service("redis")["replicas"][0]["port"].as_u64(),
        Some(u64::from(redis_port)),
        "{out}"
    );
    assert_eq!(
        p.service("postgres")["replicas"][0]["port"].as_u64(),
        Some(u64::from(pg_port))
    );

    // The API through the proxy: a visit counted in Redis and recorded in Postgres.
    let (addr, path) = (proxy.as_str(), "/api/visit");
    let first: Value = wait_for(30, "the API answers /visit", || {
        http_get(addr, path)
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
    });
    let (_, body) = http_get(addr, path).unwrap();
    let second: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        second["hits"],
        first["hits"].as_i64().unwrap() + 1,
        "{body}"
    );
    assert_eq!(
        second["rows"],
        first["rows"].as_i64().unwrap() + 1,
        "{body}"
    );
    assert_eq!(second["schema"], "0002_visits_agent", "{body}");

    // A Postgres backup, then listed.
    ok(p.run(&["backup", "run", "postgres"]));
    let list: Value =
        serde_json::from_str(&ok(p.run(&["backup", "list", "postgres", "--json"]))).unwrap();
    let backups = list["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{list}");
    assert_eq!(backups[0]["kind"], "postgres", "{list}");

    // A deploy of the API backs Postgres up first (a restore point), runs the
    // migrations as its pre hook (nothing new to apply), and the new version answers.
    let mut deploy = p.command(&["deploy", "api", "--wait"]);
    deploy
        .env("REDIS_PORT", redis_port.to_string())
        .env("PG_PORT", pg_port.to_string())
        .env("API_VERSION", "v2");
    ok(deploy.output().unwrap());
    let hist: Value = serde_json::from_str(&ok(p.run(&["history", "api", "--json"]))).unwrap();
    assert_eq!(
        hist[0]["restore_points"][0]["service"], "postgres",
        "{hist}"
    );
    let third: Value = wait_for(30, "v2 answers /visit", || {
        http_get(addr, path)
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
            .filter(|v| v["version"] == "v2")
    });
    assert!(
        third["hits"].as_i64().unwrap() > second["hits"].as_i64().unwrap(),
        "{third}"
    );
}
