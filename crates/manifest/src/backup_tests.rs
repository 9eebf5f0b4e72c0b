//! `backup:` and `deploy.backup_before`: what loads, and the errors with their positions.

use std::path::Path;
use std::time::Duration;

use super::*;

fn load(src: &str) -> Result<Manifest, Vec<Diagnostic>> {
    match load_str(
        src,
        Path::new("/proj/orchestra.yaml"),
        &LoadOptions::default(),
    ) {
        Ok(m) => Ok(m),
        Err(LoadError::Invalid(d)) => Err(d),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn ok(src: &str) -> Manifest {
    load(src).unwrap_or_else(|d| panic!("unexpected diagnostics: {d:#?}"))
}

fn errs(src: &str) -> Vec<Diagnostic> {
    match load(src) {
        Ok(m) => panic!("expected diagnostics, got {m:#?}"),
        Err(d) => d,
    }
}

const REDIS: &str = r#"
services:
  redis:
    command: [redis-server, --port, "${PORT}"]
    backup: { kind: redis, schedule: "0 3 * * *", keep: 7, keep_for: 30d }
"#;

#[test]
fn a_redis_block_parses_its_schedule_with_the_shared_parser() {
    let m = ok(REDIS);
    let b = m.services[0].backup.as_ref().expect("backup");
    assert_eq!(b.kind, BackupKind::Redis);
    assert_eq!(b.keep, Some(7));
    assert_eq!(b.keep_for, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(
        b.schedule,
        Some(crate::Schedule::Cron {
            expr: "0 3 * * *".into(),
            timezone: "UTC".into()
        })
    );
    assert_eq!(b.dir, None);
}

#[test]
fn a_bad_backup_schedule_or_timezone_points_at_its_field() {
    let src = "services:\n  redis:\n    command: [redis-server]\n    backup: { kind: redis, schedule: \"0 25 * * *\" }\n  pg:\n    command: [postgres]\n    backup: { kind: postgres, schedule: \"@daily\", timezone: Mars/Olympus }\n  kv:\n    command: [redis-server]\n    backup: { kind: redis, timezone: UTC }\n";
    let d = errs(src);
    let got: Vec<_> = d
        .iter()
        .map(|d| (d.line, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                4,
                "services.redis.backup.schedule",
                "invalid hour field \"25\" in cron expression: number out of bounds (hour takes 0-23)"
            ),
            (
                7,
                "services.pg.backup.timezone",
                "unknown timezone \"Mars/Olympus\""
            ),
            (
                10,
                "services.kv.backup.timezone",
                "`timezone` applies only to a `schedule`"
            ),
        ]
    );
}

#[test]
fn the_backup_block_is_not_part_of_the_revision() {
    let a = ok(REDIS);
    let b = ok(&REDIS.replace("keep: 7", "keep: 3"));
    let c = ok(&REDIS.replace("--port", "--bind"));
    assert_eq!(a.services[0].revision(), b.services[0].revision());
    assert_ne!(a.services[0].revision(), c.services[0].revision());
}

#[test]
fn postgres_defaults_and_fields() {
    let m = ok(r#"
services:
  db:
    command: [postgres]
    backup: { kind: postgres, dir: ./dumps }
  db2:
    command: [postgres]
    backup: { kind: postgres, user: app, all: true }
"#);
    let b = m.services[0].backup.as_ref().expect("backup");
    assert_eq!(
        b.kind,
        BackupKind::Postgres {
            database: "postgres".into(),
            user: "postgres".into(),
            all: false
        }
    );
    assert_eq!(b.dir.as_deref(), Some(Path::new("/proj/dumps")));
    let b2 = m.services[1].backup.as_ref().expect("backup");
    assert!(matches!(&b2.kind, BackupKind::Postgres { user, all: true, .. } if user == "app"));
}

#[test]
fn a_command_backup_needs_both_argvs() {
    let m = ok(r#"
services:
  s:
    command: [x]
    backup: { kind: command, command: "dump --port ${PORT}", restore: [load], verify: [check] }
"#);
    match &m.services[0].backup.as_ref().expect("backup").kind {
        BackupKind::Command { command, restore } => {
            assert_eq!(command, &["dump", "--port", "${PORT}"]);
            assert_eq!(restore, &["load"]);
        }
        other => panic!("{other:?}"),
    }
    let d =
        errs("services:\n  s:\n    command: [x]\n    backup: { kind: command, command: [dump] }\n");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].message, "`kind: command` needs `restore`");
    assert_eq!(
        (d[0].line, d[0].col, d[0].path.as_str()),
        (4, 13, "services.s.backup")
    );
}

#[test]
fn bad_fields_are_reported_with_positions() {
    let d = errs(
        "services:\n  s:\n    command: [x]\n    backup: { kind: mongo, keep: 0, keep_for: forever, databse: x }\n",
    );
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert!(
        got.contains(&(
            4,
            56,
            "services.s.backup.databse",
            "unknown field `databse`"
        )),
        "{got:#?}"
    );
    assert!(
        got.contains(&(4, 21, "services.s.backup.kind", "unknown backup kind")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|g| g.2 == "services.s.backup.keep"),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|g| g.2 == "services.s.backup.keep_for"),
        "{got:#?}"
    );
}

#[test]
fn fields_of_another_kind_are_refused() {
    let d = errs("services:\n  s:\n    command: [x]\n    backup: { kind: redis, database: app }\n");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].message, "`database` applies to `kind: postgres` only");
    assert_eq!(d[0].path, "services.s.backup.database");
}

#[test]
fn backup_before_must_name_a_service_with_a_backup_block() {
    let src = r#"
services:
  db:
    command: [postgres]
    backup: { kind: postgres }
  cache:
    command: [redis-server]
  api:
    command: [api]
    deploy: { backup_before: [db] }
"#;
    let m = ok(src);
    assert_eq!(m.services[2].deploy.backup_before, vec!["db".to_owned()]);
    let d = errs(&src.replace("[db]", "[db, cache, dbb]"));
    let got: Vec<(usize, usize, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                10,
                35,
                "services.api.deploy.backup_before[1]",
                "`cache` has no `backup:` block, so no restore point can be taken"
            ),
            (
                10,
                42,
                "services.api.deploy.backup_before[2]",
                "backup_before names unknown service `dbb`"
            ),
        ]
    );
    assert_eq!(d[1].hint.as_deref(), Some("did you mean `db`?"));
}
