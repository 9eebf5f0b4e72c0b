//! `backup:` of a service, and `deploy.backup_before`.

use super::{Ctx, Fields};
use crate::backup::{BackupKind, BackupSpec};
use crate::node::{Kind, Node};

const BACKUP_FIELDS: &[&str] = &[
    "kind", "schedule", "timezone", "keep", "keep_for", "dir", "verify", "database", "user", "all",
    "command", "restore",
];
const KINDS: &str = "redis, postgres or command";

/// `backup: { kind: redis | postgres | command, ... }`.
pub(super) fn backup(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BackupSpec> {
    let f = ctx.fields(node, path, BACKUP_FIELDS, &[])?;
    let mut ok = true;
    let kind_name = match f.get("kind") {
        Some(n) => match ctx.string(n, &f.path("kind")).as_deref().map(str::trim) {
            Some(k @ ("redis" | "postgres" | "command")) => Some(k.to_owned()),
            Some(_) => {
                let d = ctx
                    .diag(n.loc, &f.path("kind"), "unknown backup kind")
                    .found(n.describe())
                    .expected(KINDS);
                ctx.push(d);
                None
            }
            None => None,
        },
        None => {
            let d = ctx
                .diag(node.loc, path, "missing required field `kind`")
                .expected(KINDS);
            ctx.push(d);
            None
        }
    };
    // Fields of another kind are mistakes, not options.
    let only = |ctx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, kind: &str| {
        if let Some(e) = f.entry(key)
            && kind_name.as_deref().is_some_and(|k| k != kind)
        {
            let d = ctx
                .diag(
                    e.key_loc,
                    &f.path(key),
                    format!("`{key}` applies to `kind: {kind}` only"),
                )
                .found(format!(
                    "kind: {}",
                    kind_name.as_deref().unwrap_or_default()
                ));
            ctx.push(d);
            return false;
        }
        true
    };
    for key in ["database", "user", "all"] {
        ok &= only(ctx, &f, key, "postgres");
    }
    for key in ["command", "restore"] {
        ok &= only(ctx, &f, key, "command");
    }
    let kind = match kind_name.as_deref() {
        Some("redis") => Some(BackupKind::Redis),
        Some("postgres") => {
            let mut name = |key: &str| {
                f.get(key)
                    .map(|n| ctx.nonempty_string(n, &f.path(key)))
                    .unwrap_or_else(|| Some("postgres".to_owned()))
            };
            let database = name("database");
            let user = name("user");
            let all = match f.get("all") {
                Some(n) => ctx.boolean(n, &f.path("all")),
                None => Some(false),
            };
            if let (Some(true), Some(e)) = (all, f.entry("database")) {
                let d = ctx
                    .diag(
                        e.key_loc,
                        &f.path("database"),
                        "`all: true` dumps every database",
                    )
                    .expected("either `database:` (one database) or `all: true` (the cluster)");
                ctx.push(d);
                ok = false;
            }
            match (database, user, all) {
                (Some(database), Some(user), Some(all)) => Some(BackupKind::Postgres {
                    database,
                    user,
                    all,
                }),
                _ => None,
            }
        }
        Some("command") => {
            let mut argv = |key: &str| match f.get(key) {
                Some(n) => ctx.argv(n, &f.path(key)),
                None => {
                    let d = ctx
                        .diag(node.loc, path, format!("`kind: command` needs `{key}`"))
                        .expected(match key {
                            "command" => "`command:`, a program writing the backup to stdout",
                            _ => "`restore:`, a program reading a backup on stdin",
                        });
                    ctx.push(d);
                    None
                }
            };
            let command = argv("command");
            let restore = argv("restore");
            Some(BackupKind::Command {
                command: command?,
                restore: restore?,
            })
        }
        _ => None,
    };
    let schedule = f
        .get("schedule")
        .and_then(|n| super::job::schedule_value(ctx, &f, n));
    ok &= f.get("schedule").is_none() || schedule.is_some();
    if let (Some(e), None) = (f.entry("timezone"), f.get("schedule")) {
        let d = ctx
            .diag(
                e.key_loc,
                &f.path("timezone"),
                "`timezone` applies only to a `schedule`",
            )
            .hint("add `schedule:` (a cron expression or `@every DURATION`)".to_owned());
        ctx.push(d);
        ok = false;
    }
    let keep = f.get("keep").and_then(|n| {
        ctx.u32_field(
            n,
            &f.path("keep"),
            1,
            "a number of backups to keep, at least 1",
        )
    });
    ok &= f.get("keep").is_none() || keep.is_some();
    let keep_for = f
        .get("keep_for")
        .and_then(|n| keep_for(ctx, n, &f.path("keep_for")));
    ok &= f.get("keep_for").is_none() || keep_for.is_some();
    let dir = f.get("dir").and_then(|n| {
        let s = ctx.nonempty_string(n, &f.path("dir"))?;
        Some(ctx.resolve(s.trim()))
    });
    ok &= f.get("dir").is_none() || dir.is_some();
    let verify = f.get("verify").and_then(|n| ctx.argv(n, &f.path("verify")));
    ok &= f.get("verify").is_none() || verify.is_some();
    let kind = kind?;
    ok.then_some(BackupSpec {
        kind,
        schedule,
        keep,
        keep_for,
        dir,
        verify,
        location: node.loc,
    })
}

/// `deploy.backup_before: [SERVICE, ...]`: names with where each is written; that each
/// names a service with a `backup:` block is checked across services later.
pub(super) fn backup_before(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
) -> Option<Vec<(String, crate::model::Location, String)>> {
    let Kind::Seq(items) = &node.kind else {
        ctx.type_error(node, path, "a list of service names such as [postgres]");
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let name = ctx.nonempty_string(item, &ip)?;
        out.push((name.trim().to_owned(), item.loc, ip));
    }
    Some(out)
}

/// `30d`, `2w`, or any duration (`12h`, `90m`); greater than zero.
fn keep_for(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<std::time::Duration> {
    if let Kind::Scalar(s) = &node.kind {
        let s = s.trim();
        let days = |n: &str, per: u64| n.parse::<u64>().ok().filter(|n| *n > 0).map(|n| n * per);
        let d = match (s.strip_suffix('d'), s.strip_suffix('w')) {
            (Some(n), _) => days(n, 86_400),
            (_, Some(n)) => days(n, 7 * 86_400),
            _ => None,
        };
        if let Some(secs) = d {
            return Some(std::time::Duration::from_secs(secs));
        }
        if !s.ends_with('d') && !s.ends_with('w') && crate::units::parse_duration(s).is_ok() {
            return ctx.duration(node, path, true);
        }
    }
    let d = ctx
        .diag(node.loc, path, "invalid retention age")
        .found(node.describe())
        .expected("an age such as 30d, 2w or 12h");
    ctx.push(d);
    None
}
