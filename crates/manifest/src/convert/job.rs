//! `schedule:`, `timezone:` and `concurrency:` (scheduled jobs), and `user:` of a process.

use crate::model::{Restart, RestartPolicy, Workload};
use crate::node::Node;
use crate::schedule::{Concurrency, JobSchedule, SCHEDULE_EXPECTED, ScheduleError, parse_schedule};

use super::{Ctx, Fields};

/// A service's `schedule` with its `timezone` and `concurrency`; checks that the rest of
/// the service fits a job. Fixes the restart policy: a job's default is `no` (each tick is
/// a new run), not `on-failure`.
pub(super) fn schedule(
    ctx: &mut Ctx<'_>,
    f: &Fields<'_>,
    restart: &mut RestartPolicy,
    replicas: u32,
) -> Option<JobSchedule> {
    let Some(node) = f.get("schedule") else {
        for key in ["timezone", "concurrency"] {
            if let Some(e) = f
                .entry(key)
                .filter(|e| e.value.kind != crate::node::Kind::Null)
            {
                let d = ctx
                    .diag(
                        e.key_loc,
                        &f.path(key),
                        format!("`{key}` applies only to a scheduled job"),
                    )
                    .hint("add `schedule:` (a cron expression or `@every DURATION`)".to_owned());
                ctx.push(d);
            }
        }
        return None;
    };
    let schedule = schedule_value(ctx, f, node)?;
    let concurrency = match f.get("concurrency") {
        None => Concurrency::default(),
        Some(n) => {
            let p = f.path("concurrency");
            match ctx.string(n, &p)?.trim() {
                "skip" => Concurrency::Skip,
                "queue" => Concurrency::Queue,
                _ => {
                    let d = ctx
                        .diag(n.loc, &p, "invalid concurrency")
                        .found(n.describe())
                        .expected("`skip` (drop a tick while a run is going) or `queue` (run right after it)");
                    ctx.push(d);
                    return None;
                }
            }
        }
    };
    not_for_jobs(
        ctx,
        f,
        "route",
        "a scheduled job runs and exits; the proxy routes to services that stay up",
    );
    not_for_jobs(
        ctx,
        f,
        "readiness",
        "a scheduled job is not a dependency anyone waits on",
    );
    if replicas > 1
        && let Some(e) = f.entry("replicas")
    {
        let d = ctx
            .diag(
                e.value.loc,
                &f.path("replicas"),
                "a scheduled job runs one process per tick",
            )
            .found(e.value.describe())
            .expected("1 (or no `replicas`)");
        ctx.push(d);
    }
    match f.get("restart") {
        None => restart.policy = Restart::No,
        Some(n) if restart.policy == Restart::Always => {
            let d = ctx
                .diag(
                    n.loc,
                    &f.path("restart"),
                    "a scheduled job cannot restart always",
                )
                .expected("`no` (the default for a job) or `on-failure` (retry a failed run)")
                .hint("each tick starts a new run; `always` would never let a run end".to_owned());
            ctx.push(d);
        }
        Some(_) => {}
    }
    Some(JobSchedule {
        schedule,
        concurrency,
    })
}

fn not_for_jobs(ctx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, hint: &str) {
    if let Some(e) = f
        .entry(key)
        .filter(|e| e.value.kind != crate::node::Kind::Null)
    {
        let d = ctx
            .diag(
                e.key_loc,
                &f.path(key),
                format!("`{key}` does not apply to a scheduled job"),
            )
            .hint(hint.to_owned());
        ctx.push(d);
    }
}

/// `schedule` on something that does not run a command.
pub(super) fn static_schedule(ctx: &mut Ctx<'_>, f: &Fields<'_>, workload: Option<&Workload>) {
    if matches!(workload, Some(Workload::Static { .. }))
        && let Some(e) = f.entry("schedule")
    {
        let d = ctx.diag(
            e.key_loc,
            &f.path("schedule"),
            "a static route serves files; nothing runs on a schedule",
        );
        ctx.push(d);
    }
}

/// The `schedule:` at `node` read with the `timezone:` beside it, by the one parser every
/// `schedule:` field uses (jobs and `backup.schedule`); a bad one is reported at the field
/// that is wrong.
pub(super) fn schedule_value(
    ctx: &mut Ctx<'_>,
    f: &Fields<'_>,
    node: &Node,
) -> Option<crate::schedule::Schedule> {
    let path = f.path("schedule");
    let text = ctx.string(node, &path)?;
    let tz_node = f.get("timezone");
    let timezone = match tz_node {
        Some(n) => Some(ctx.nonempty_string(n, &f.path("timezone"))?),
        None => None,
    };
    match parse_schedule(&text, timezone.as_deref()) {
        Ok(s) => Some(s),
        Err(e) => {
            let (loc, p, expected) = match (&e, tz_node) {
                (ScheduleError::Timezone(_) | ScheduleError::TimezoneWithEvery, Some(tz)) => (
                    tz.loc,
                    f.path("timezone"),
                    "an IANA timezone name such as UTC, Europe/Paris or America/New_York",
                ),
                _ => (node.loc, path.clone(), SCHEDULE_EXPECTED),
            };
            let d = ctx
                .diag(loc, &p, e.to_string())
                .found(match tz_node {
                    Some(tz) if p.ends_with("timezone") => tz.describe(),
                    _ => node.describe(),
                })
                .expected(expected);
            ctx.push(d);
            None
        }
    }
}

/// A process's `user:` must exist on this machine: `name`, `uid` or `uid:gid`.
pub(super) fn process_user(ctx: &mut Ctx<'_>, node: &Node, path: &str, user: &str) {
    if let Err(reason) = crate::user::check(user) {
        let d = ctx
            .diag(node.loc, path, reason)
            .found(node.describe())
            .expected("a user of this machine: a name (`postgres`), a uid (`999`) or `uid:gid`");
        ctx.push(d);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::Restart;
    use crate::schedule::{Concurrency, Schedule};
    use crate::{Diagnostic, LoadError, LoadOptions, Manifest, load_str};

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

    fn where_(d: &[Diagnostic]) -> Vec<(usize, usize, &str, &str)> {
        d.iter()
            .map(|d| (d.line, d.col, d.path.as_str(), d.message.as_str()))
            .collect()
    }

    #[test]
    fn a_scheduled_job_defaults_to_no_restart_and_skip() {
        let m = load(
            "services:\n  backup:\n    command: [./backup]\n    schedule: \"@every 2s\"\n  report:\n    command: [./report]\n    schedule: \"0 3 * * *\"\n    timezone: Europe/Paris\n    concurrency: queue\n    restart: on-failure\n",
        )
        .unwrap();
        let b = m.service("backup").unwrap();
        let job = b.schedule.as_ref().unwrap();
        assert_eq!(job.concurrency, Concurrency::Skip);
        assert_eq!(b.restart.policy, Restart::No);
        let r = m.service("report").unwrap();
        let job = r.schedule.as_ref().unwrap();
        assert_eq!(job.concurrency, Concurrency::Queue);
        assert_eq!(r.restart.policy, Restart::OnFailure);
        assert_eq!(
            job.schedule,
            Schedule::Cron {
                expr: "0 3 * * *".into(),
                timezone: "Europe/Paris".into()
            }
        );
        // Services without a schedule hash as before the field existed.
        let plain = load("services:\n  api:\n    command: [./api]\n").unwrap();
        let json = serde_json::to_value(&plain.services[0]).unwrap();
        assert!(json.get("schedule").is_none(), "{json}");
    }

    #[test]
    fn bad_schedules_point_at_the_field() {
        let d = load(
            "services:\n  a:\n    command: x\n    schedule: \"0 25 * * *\"\n  b:\n    command: x\n    schedule: \"0 3 * * *\"\n    timezone: Mars/Olympus\n  c:\n    command: x\n    schedule: \"@every 0s\"\n  d:\n    command: x\n    schedule: \"* * * *\"\n    concurrency: sometimes\n",
        )
        .unwrap_err();
        assert_eq!(
            where_(&d),
            [
                (
                    4,
                    15,
                    "services.a.schedule",
                    "invalid hour field \"25\" in cron expression: number out of bounds (hour takes 0-23)"
                ),
                (
                    8,
                    15,
                    "services.b.timezone",
                    "unknown timezone \"Mars/Olympus\""
                ),
                (
                    11,
                    15,
                    "services.c.schedule",
                    "invalid `@every` interval \"0s\": must be greater than zero"
                ),
                (
                    14,
                    15,
                    "services.d.schedule",
                    "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 4"
                ),
            ]
        );
    }

    #[test]
    fn what_a_scheduled_job_cannot_be() {
        let d = load(
            "services:\n  a:\n    command: x\n    schedule: \"@every 1m\"\n    restart: always\n    replicas: 2\n    route: /a\n  b:\n    command: x\n    timezone: UTC\n  c:\n    command: x\n    depends_on: [a]\n",
        )
        .unwrap_err();
        let got: Vec<(usize, usize, &str)> =
            d.iter().map(|d| (d.line, d.col, d.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (5, 14, "services.a.restart"),
                (6, 15, "services.a.replicas"),
                (7, 5, "services.a.route"),
                (10, 5, "services.b.timezone"),
                (13, 18, "services.c.depends_on[0]"),
            ],
            "{d:#?}"
        );
        assert!(d[4].message.contains("a scheduled job"), "{}", d[4].message);
    }

    #[test]
    fn a_process_user_must_exist_here() {
        let m = load("services:\n  db:\n    command: [postgres]\n    user: nobody\n").unwrap();
        assert_eq!(m.services[0].user.as_deref(), Some("nobody"));
        let d = load("services:\n  db:\n    command: [postgres]\n    user: \"no-such-user:0\"\n")
            .unwrap_err();
        assert_eq!(
            where_(&d),
            [(
                4,
                11,
                "services.db.user",
                "no user named `no-such-user` on this machine"
            )]
        );
    }
}
