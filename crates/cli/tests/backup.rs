//! Backups end to end: real `redis-server` and Postgres run as services, backed up,
//! damaged, restored and verified through the real binary.
//!
//! Postgres refuses to run as root, and process services have no `user:` here, so when
//! the tests run as root the service command is `runuser -u postgres -- postgres ...`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Project, wait_for};
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

/// Whether the Debian tools a test needs are here: required under CI, skipped loudly
/// elsewhere (scripts/test.sh installs redis-server, redis-tools and postgresql).
fn have(tools: &[&str], package: &str) -> bool {
    let missing: Vec<&&str> = tools
        .iter()
        .filter(|t| !Path::new(t).is_file() && !on_path(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing:?} missing and CI is set: install Debian's {package} (scripts/test.sh does)"
    );
    eprintln!(
        "SKIP: {missing:?} not installed (apt-get install -y {package}): skipping a backup test"
    );
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let o = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "redis-cli {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn port_of(p: &Project, service: &str) -> u16 {
    wait_for(30, "a healthy replica with a port", || {
        let s = p.service(service);
        let r = &s["replicas"][0];
        (r["healthy"] == true)
            .then(|| r["port"].as_u64().map(|v| v as u16))
            .flatten()
    })
}

fn pid_of(p: &Project, service: &str) -> i64 {
    p.service(service)["replicas"][0]["pid"].as_i64().unwrap()
}

fn backups(p: &Project, service: &str) -> Vec<Value> {
    let out = ok(p.run(&["backup", "list", service, "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["backups"].as_array().cloned().unwrap()
}

fn flip_a_byte(file: &Path) {
    let mut b = std::fs::read(file).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x40;
    std::fs::write(file, b).unwrap();
}

const REDIS: &str = r#"
name: backups
services:
  cache:
    command: [redis-server, --port, "${PORT}", --bind, 127.0.0.1, --dir, ./data, --save, "", --appendonly, "no"]
    healthcheck: { exec: [redis-cli, -p, "${PORT}", ping], interval: 1s }
    backup: { kind: redis, keep: 2, schedule: "0 3 * * *" }
  app:
    command: [demo-service, --port, "${PORT}"]
    depends_on: { cache: { condition: healthy } }
"#;

#[test]
#[cfg_attr(
    missing_redis,
    ignore = "redis-server is not installed (apt-get install -y redis-server redis-tools)"
)]
fn redis_backup_restore_verify_and_a_damaged_backup_is_refused() {
    if !have(&["redis-server", "redis-cli"], "redis-server redis-tools") {
        return;
    }
    let mut p = Project::new(REDIS);
    std::fs::create_dir(p.path().join("data")).unwrap();
    p.up_ok(&[]);
    let port = port_of(&p, "cache");
    redis_cli(port, &["SET", "k1", "v1"]);
    redis_cli(port, &["SET", "k2", "v2"]);

    let out = ok(p.run(&["backup", "run", "cache"]));
    assert!(
        out.contains("✓ cache: backup ") && out.contains("not encrypted"),
        "{out}"
    );
    let list = backups(&p, "cache");
    assert_eq!(list.len(), 1);
    let first = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["kind"], "redis");
    assert_eq!(list[0]["sha256"].as_str().unwrap().len(), 64);
    let table = ok(p.run(&["backup", "list", "cache"]));
    assert!(table.contains(&first) && table.contains("redis"), "{table}");

    // The data changes after the backup.
    redis_cli(port, &["FLUSHALL"]);
    redis_cli(port, &["SET", "k3", "v3"]);

    let out = ok(p.run(&["backup", "verify", "cache"]));
    assert!(
        out.contains(&format!("backup {first} restores: 2 keys")),
        "{out}"
    );
    assert_eq!(
        redis_cli(port, &["DBSIZE"]),
        "1",
        "verify does not touch the running server"
    );

    let app_pid = pid_of(&p, "app");
    let out = ok(p.run(&["backup", "restore", "cache"]));
    assert!(
        out.contains(&format!("✓ cache: restored backup {first}")),
        "{out}"
    );
    assert!(out.contains("held and started again: app"), "{out}");
    let port = port_of(&p, "cache");
    assert_eq!(redis_cli(port, &["GET", "k1"]), "v1");
    assert_eq!(redis_cli(port, &["GET", "k2"]), "v2");
    assert_eq!(redis_cli(port, &["EXISTS", "k3"]), "0");
    port_of(&p, "app");
    assert_ne!(
        pid_of(&p, "app"),
        app_pid,
        "the dependent was stopped and started again"
    );

    // Retention: keep 2.
    redis_cli(port, &["SET", "k4", "v4"]);
    ok(p.run(&["backup", "run", "cache"]));
    let out = ok(p.run(&["backup", "run", "cache"]));
    assert!(out.contains(&format!("retention removed {first}")), "{out}");
    let list = backups(&p, "cache");
    assert_eq!(list.len(), 2);
    let newest = list[1].clone();

    // A damaged backup is refused before anything stops.
    let dir = p.path().join(".orchestra/backups/cache");
    let file = dir.join(newest["file"].as_str().unwrap());
    let recorded = newest["sha256"].as_str().unwrap().to_owned();
    flip_a_byte(&file);
    let pid = pid_of(&p, "cache");
    let o = p.run(&["backup", "restore", "cache"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to restore from") && err.contains(&file.display().to_string()),
        "{err}"
    );
    assert!(err.contains(&recorded), "names the recorded sum: {err}");
    let actual = sha256_of(&file);
    assert!(
        err.contains(&actual),
        "names the file's sum {actual}: {err}"
    );
    assert_eq!(pid_of(&p, "cache"), pid, "the service kept running");
    assert_eq!(redis_cli(port, &["GET", "k4"]), "v4", "with its data");
    let o = p.run(&["backup", "verify", "cache"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("refusing"),
        "{}",
        text(&o)
    );

    // An unknown id is named.
    let o = p.run(&["backup", "restore", "cache", "--from", "nope"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no backup `nope` of `cache`"),
        "{}",
        text(&o)
    );
}

fn sha256_of(file: &Path) -> String {
    let o = Command::new("sha256sum").arg(file).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// argv prefix that runs a postgres binary as a user it accepts.
fn as_pg(bin: &str) -> Vec<String> {
    let path = format!("{PG_BIN}/{bin}");
    if nix::unistd::geteuid().is_root() {
        vec![
            "runuser".into(),
            "-u".into(),
            "postgres".into(),
            "--".into(),
            path,
        ]
    } else {
        vec![path]
    }
}

/// A data directory made by initdb, owned by whoever runs postgres.
fn initdb(project: &Path) -> PathBuf {
    std::fs::set_permissions(project, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = project.join("pgdata");
    std::fs::create_dir(&data).unwrap();
    if nix::unistd::geteuid().is_root() {
        let u = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        nix::unistd::chown(&data, Some(u.uid), Some(u.gid)).unwrap();
    }
    let mut argv = as_pg("initdb");
    argv.extend(
        [
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]
        .map(String::from),
    );
    let o = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    assert!(o.status.success(), "initdb: {}", text(&o));
    data
}

fn psql(port: u16, sql: &str) -> String {
    let o = Command::new("psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "psql {sql}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// A fresh cluster in `dir`, and the argv that serves it on `${PORT}` (as the postgres user).
fn pg_server(dir: &Path) -> Vec<String> {
    let data = initdb(dir);
    let mut server = as_pg("postgres");
    let d = data.display().to_string();
    server.extend(
        [
            "-D",
            &d,
            "-k",
            &d,
            "-p",
            "${PORT}",
            "-c",
            "listen_addresses=127.0.0.1",
        ]
        .map(String::from),
    );
    server
}

fn quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
#[cfg_attr(
    missing_postgres,
    ignore = "Postgres is not installed (apt-get install -y postgresql)"
)]
fn postgres_restore_and_a_migration_restore_point_that_rollback_brings_back() {
    if !have(
        &[
            &format!("{PG_BIN}/postgres"),
            "pg_dump",
            "pg_restore",
            "psql",
            "pg_isready",
        ],
        "postgresql",
    ) {
        return;
    }
    let mut p = Project::new("services: {}\n");
    let server = pg_server(p.path());
    let manifest = format!(
        r#"
name: pgbackups
services:
  db:
    command: [{server}]
    stop_signal: SIGINT
    healthcheck: {{ exec: [pg_isready, -h, 127.0.0.1, -p, "${{PORT}}"], interval: 1s, start_period: 30s }}
    backup: {{ kind: postgres, keep: 5 }}
  api:
    command: [demo-service, --port, "${{PORT}}", --version, "${{DEMO_VERSION:-v1}}"]
    depends_on: {{ db: {{ condition: healthy }} }}
    route: /
    healthcheck: {{ http: /health }}
    deploy:
      strategy: blue-green
      keep_warm: 5m
      backup_before: [db]
      hooks:
        pre: [[sh, -c, "psql -X -h 127.0.0.1 -p $(cat db.port) -U postgres -d postgres -v ON_ERROR_STOP=1 -c 'ALTER TABLE items ADD COLUMN price int' -c 'UPDATE items SET name = upper(name)'"]]
"#,
        server = quoted(&server)
    );
    p.write("orchestra.yaml", &manifest);
    ok(p.run(&["validate"]));
    p.up_ok(&["--proxy", "127.0.0.1:0"]);
    let port = port_of(&p, "db");
    p.write("db.port", &port.to_string());
    psql(
        port,
        "CREATE TABLE items (name text); INSERT INTO items VALUES ('apple'), ('pear')",
    );

    // Back up, drop, restore, read back.
    ok(p.run(&["backup", "run", "db"]));
    psql(port, "DROP TABLE items");
    let out = ok(p.run(&["backup", "verify", "db"]));
    assert!(out.contains("1 tables: public.items"), "{out}");
    let out = ok(p.run(&["backup", "restore", "db"]));
    assert!(out.contains("held and started again: api"), "{out}");
    assert_eq!(
        psql(
            port,
            "SELECT string_agg(name, ',' ORDER BY name) FROM items"
        ),
        "apple,pear"
    );

    // A migration with backup_before leaves a restore point.
    let mut c = p.command(&["deploy", "api", "--wait"]);
    c.env("DEMO_VERSION", "v2");
    let out = ok(c.output().unwrap());
    assert!(out.contains("succeeded") || out.contains("live"), "{out}");
    assert_eq!(
        psql(
            port,
            "SELECT string_agg(name, ',' ORDER BY name) FROM items"
        ),
        "APPLE,PEAR"
    );
    let hist: Value = serde_json::from_str(&ok(p.run(&["history", "api", "--json"]))).unwrap();
    let rel = &hist[0];
    let point = rel["restore_points"][0].clone();
    assert_eq!(point["service"], "db", "{rel}");
    let id = point["backup"].as_str().unwrap().to_owned();
    let list = backups(&p, "db");
    let entry = list
        .iter()
        .find(|b| b["id"] == id.as_str())
        .expect("the restore point is in the catalog");
    assert_eq!(entry["release"], rel["id"]);

    // Rolling back with --restore-data brings the old data back.
    let out = ok(p.run(&["rollback", "api", "--restore-data"]));
    assert!(
        out.contains(&format!(
            "restore point of release {}: db backup {id}",
            rel["id"]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("✓ db: restored backup {id}")),
        "{out}"
    );
    assert_eq!(
        psql(
            port,
            "SELECT string_agg(name, ',' ORDER BY name) FROM items"
        ),
        "apple,pear"
    );
    assert_eq!(
        psql(
            port,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'price'"
        ),
        "0",
        "the migration's column is gone"
    );
    port_of(&p, "api");
}

#[test]
#[cfg_attr(
    missing_redis,
    ignore = "redis-server is not installed (apt-get install -y redis-server redis-tools)"
)]
fn with_age_recipients_backups_are_encrypted_and_still_restore() {
    if !have(&["redis-server", "redis-cli"], "redis-server redis-tools") {
        return;
    }
    let mut p = Project::new(REDIS);
    std::fs::create_dir(p.path().join("data")).unwrap();
    ok(p.run(&["secrets", "init"]));
    p.up_ok(&[]);
    let port = port_of(&p, "cache");
    redis_cli(port, &["SET", "secret-key", "secret-value"]);

    let out = ok(p.run(&["backup", "run", "cache"]));
    assert!(out.contains(", encrypted,"), "{out}");
    let b = backups(&p, "cache").remove(0);
    assert_eq!(b["encrypted"], true);
    let file = p
        .path()
        .join(".orchestra/backups/cache")
        .join(b["file"].as_str().unwrap());
    assert!(
        file.to_str().unwrap().ends_with(".rdb.age"),
        "{}",
        file.display()
    );
    let stored = std::fs::read(&file).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1"), "an age file");
    assert!(
        !stored.windows(12).any(|w| w == b"secret-value"),
        "no plaintext at rest"
    );
    assert_eq!(sha256_of(&file), b["sha256"].as_str().unwrap());

    redis_cli(port, &["FLUSHALL"]);
    let out = ok(p.run(&["backup", "verify", "cache"]));
    assert!(out.contains("restores: 1 keys"), "{out}");
    ok(p.run(&["backup", "restore", "cache"]));
    let port = port_of(&p, "cache");
    assert_eq!(redis_cli(port, &["GET", "secret-key"]), "secret-value");

    // A service without a block, and one that is not in the manifest, are named.
    let o = p.run(&["backup", "run", "app"]);
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("`app` has no `backup:` block"),
        "{}",
        text(&o)
    );
    let o = p.run(&["backup", "list", "nosuch"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no service `nosuch`"),
        "{}",
        text(&o)
    );
}

#[test]
#[cfg_attr(
    missing_redis,
    ignore = "redis-server is not installed (apt-get install -y redis-server redis-tools)"
)]
fn a_backup_schedule_takes_backups_at_its_ticks_and_lists_them_as_a_job() {
    if !have(&["redis-server", "redis-cli"], "redis-server redis-tools") {
        return;
    }
    let mut p = Project::new(
        r#"
name: scheduled-backups
services:
  cache:
    command: [redis-server, --port, "${PORT}", --bind, 127.0.0.1, --dir, ./data, --save, ""]
    healthcheck: { exec: [redis-cli, -p, "${PORT}", ping], interval: 1s }
    backup: { kind: redis, schedule: "@every 1s", keep: 2 }
"#,
    );
    std::fs::create_dir(p.path().join("data")).unwrap();
    p.up_ok(&[]);
    let port = port_of(&p, "cache");
    redis_cli(port, &["SET", "k", "v"]);

    // Three ticks: retention keeps the newest two of them.
    let finished = wait_for(30, "three scheduled backups", || {
        let done: Vec<Value> = p
            .events()
            .into_iter()
            .filter(|e| e["kind"] == "backup-finished" && e["service"] == "cache")
            .collect();
        (done.len() >= 3).then_some(done)
    });
    for e in &finished {
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.contains("succeeded") && reason.contains("backup "),
            "{e}"
        );
    }
    let list = backups(&p, "cache");
    assert_eq!(
        list.len(),
        2,
        "keep: 2 holds after every scheduled run: {list:?}"
    );

    let jobs: Value = serde_json::from_str(&ok(p.run(&["jobs", "--json"]))).unwrap();
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "backup:cache")
        .cloned()
        .unwrap_or_else(|| panic!("backup:cache is listed: {jobs}"));
    assert_eq!(job["kind"], "backup");
    assert!(job["next_run_at_ms"].as_i64().is_some(), "{job}");
    // `jobs run` takes one now, like `backup run` (unless a tick's backup is going).
    let o = p.run(&["jobs", "run", "backup:cache"]);
    let all = text(&o);
    assert!(
        (o.status.success() && all.contains("started run")) || all.contains("is still running"),
        "{all}"
    );
}

#[test]
fn a_command_backup_round_trips_and_a_failing_backup_or_restore_says_why_and_leaves_the_service_running()
 {
    let mut p = Project::new(
        r#"
name: cmdbackups
services:
  store:
    command: [demo-service, --port, "${PORT}"]
    healthcheck: { http: /health, interval: 1s }
    backup:
      kind: command
      command: [sh, -c, "cat state.txt"]
      restore: [sh, -c, "cat > state.txt"]
  broken:
    command: [demo-service, --port, "${PORT}"]
    healthcheck: { http: /health, interval: 1s }
    backup:
      kind: command
      command: [sh, -c, "echo 'disk on fire' >&2; exit 3"]
      restore: [sh, -c, "echo 'no restoring today' >&2; exit 4"]
  stubborn:
    command: [demo-service, --port, "${PORT}"]
    healthcheck: { http: /health, interval: 1s }
    backup:
      kind: command
      command: [sh, -c, "cat state.txt"]
      restore: [sh, -c, "echo 'no restoring today' >&2; exit 4"]
"#,
    );
    p.write("state.txt", "version one\n");
    ok(p.run(&["validate"]));
    p.up_ok(&[]);
    port_of(&p, "store");

    ok(p.run(&["backup", "run", "store"]));
    let list = backups(&p, "store");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["kind"], "command", "{list:?}");
    p.write("state.txt", "version two\n");
    ok(p.run(&["backup", "restore", "store"]));
    assert_eq!(
        std::fs::read_to_string(p.path().join("state.txt")).unwrap(),
        "version one\n"
    );
    port_of(&p, "store");

    // A failing backup says why, with the tool's stderr, and the service runs on.
    port_of(&p, "broken");
    let pid = pid_of(&p, "broken");
    let o = p.run(&["backup", "run", "broken"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("disk on fire"), "{}", text(&o));
    assert!(backups(&p, "broken").is_empty());
    assert_eq!(pid_of(&p, "broken"), pid, "the service was not touched");
    assert_eq!(p.service("broken")["replicas"][0]["healthy"], true);

    // A failing restore says why, and the service is running and healthy after it.
    port_of(&p, "stubborn");
    ok(p.run(&["backup", "run", "stubborn"]));
    let o = p.run(&["backup", "restore", "stubborn"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no restoring today"), "{}", text(&o));
    port_of(&p, "stubborn");
    assert_eq!(
        std::fs::read_to_string(p.path().join("state.txt")).unwrap(),
        "version one\n",
        "nothing was restored over the data"
    );
}

#[test]
#[cfg_attr(
    missing_postgres,
    ignore = "Postgres is not installed (apt-get install -y postgresql)"
)]
fn a_whole_cluster_pg_dumpall_backup_brings_back_a_dropped_database() {
    if !have(
        &[
            &format!("{PG_BIN}/postgres"),
            "pg_dumpall",
            "psql",
            "pg_isready",
        ],
        "postgresql",
    ) {
        return;
    }
    let mut p = Project::new("services: {}\n");
    let server = pg_server(p.path());
    let manifest = format!(
        r#"
name: pgall
services:
  db:
    command: [{server}]
    stop_signal: SIGINT
    healthcheck: {{ exec: [pg_isready, -h, 127.0.0.1, -p, "${{PORT}}"], interval: 1s, start_period: 30s }}
    backup: {{ kind: postgres, all: true }}
"#,
        server = quoted(&server)
    );
    p.write("orchestra.yaml", &manifest);
    ok(p.run(&["validate"]));
    p.up_ok(&[]);
    let port = port_of(&p, "db");
    psql(port, "CREATE DATABASE shop");
    let o = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "shop",
        ])
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE items (name text); INSERT INTO items VALUES ('kiwi')",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    ok(p.run(&["backup", "run", "db"]));
    assert_eq!(backups(&p, "db")[0]["kind"], "postgres");
    psql(port, "DROP DATABASE shop");
    ok(p.run(&["backup", "restore", "db"]));
    let port = port_of(&p, "db");
    let o = Command::new("psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "shop",
        ])
        .args(["-c", "SELECT name FROM items"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "kiwi",
        "{}",
        text(&o)
    );
}
