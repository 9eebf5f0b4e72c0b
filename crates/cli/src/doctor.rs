//! `orchestra doctor`: is this machine ready for this manifest? Each check
//! looks at one thing `up` will need, offline and without changing anything
//! (unless `--fix`), and says pass, warn, fail or skip (with the reason), with
//! a `fix:` for every warning and failure.
//!
//! What may block (the Docker Engine, `TOOL --version`, `nvidia-smi`, the
//! project's daemon) runs concurrently under short timeouts, so a doctor run
//! takes about as long as its slowest answer.

mod engine;
mod host;
mod ports;
mod secrets;
mod tools;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use orchestra_manifest::{LoadError, Manifest, Service, Workload};
use orchestra_server::Paths;
use serde::Serialize;

use crate::args::DoctorArgs;
use crate::project;

/// The version of `--json`'s document. Adding fields keeps it; renaming or
/// removing one, or changing a meaning, bumps it.
pub const SCHEMA: u32 = 1;

/// How long one external command (`TOOL --version`, `nvidia-smi -L`) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the Docker Engine and the project's daemon have to answer.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(1);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not needed by this manifest.
    Skip,
    /// Fine.
    Pass,
    /// `up` will work, but something is off.
    Warn,
    /// `up` will fail, or not do what the manifest asks.
    Fail,
}

impl Status {
    fn symbol(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier (`docker`, `port.proxy.listen`, `tool.node`...).
    pub id: String,
    /// The outcome.
    pub status: Status,
    /// One line: what was found (for a skip, why it is not needed).
    pub summary: String,
    /// More lines, when there is more to say.
    pub detail: Option<String>,
    /// What to do about a warning or a failure.
    pub fix: Option<String>,
    /// What `--fix` changed for this check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<String>,
}

impl Check {
    fn new(id: &str, status: Status, summary: impl Into<String>) -> Self {
        Self {
            id: id.to_owned(),
            status,
            summary: summary.into(),
            detail: None,
            fix: None,
            fixed: Vec::new(),
        }
    }

    /// A passing check.
    pub fn pass(id: &str, summary: impl Into<String>) -> Self {
        Self::new(id, Status::Pass, summary)
    }

    /// A check this manifest does not need, and why.
    pub fn skip(id: &str, reason: impl Into<String>) -> Self {
        Self::new(id, Status::Skip, reason)
    }

    /// A warning and what to do about it.
    pub fn warn(id: &str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, summary).with_fix(fix)
    }

    /// A failure and what to do about it.
    pub fn fail(id: &str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, summary).with_fix(fix)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Adds detail lines.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let d = detail.into();
        if !d.is_empty() {
            self.detail = Some(d);
        }
        self
    }
}

/// What the checks read: the manifest, the services `up` would run with the
/// same `--env` and `--profile`, and where the project keeps its files.
pub struct Ctx<'a> {
    /// The loaded manifest.
    pub manifest: &'a Manifest,
    /// The selected services, in start order.
    pub selected: Vec<&'a Service>,
    /// `.orchestra/` and its files.
    pub paths: Paths,
    /// `--fix`: make the safe changes.
    pub fix: bool,
}

impl Ctx<'_> {
    /// The selected container services (`image` or `build`).
    pub fn containers(&self) -> impl Iterator<Item = &Service> {
        self.selected
            .iter()
            .copied()
            .filter(|s| !matches!(s.workload, Workload::Process { .. }))
    }

    /// Whether a selected service has a `route:` (the proxy starts).
    pub fn routed(&self) -> bool {
        self.selected.iter().any(|s| s.route.is_some())
    }

    /// The selected services' names.
    pub fn names(&self) -> Vec<String> {
        self.selected.iter().map(|s| s.name.clone()).collect()
    }

    /// A path as the user reads it: relative to the manifest's directory when inside it.
    pub fn show(&self, p: &Path) -> String {
        p.strip_prefix(&self.manifest.dir)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .unwrap_or(p)
            .display()
            .to_string()
    }
}

/// `orchestra doctor`
pub async fn run(file: Option<&Path>, a: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let usage = ExitCode::from(2);
    // Without a manifest there is nothing to check against: a usage error.
    let refuse = |message: String| -> anyhow::Result<ExitCode> {
        if a.json {
            let doc = serde_json::json!({
                "schema": SCHEMA,
                "errors": [{ "message": message }],
                "checks": [],
                "counts": Counts::default(),
            });
            print_out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        } else {
            eprintln!("error: {message}");
        }
        Ok(ExitCode::from(2))
    };
    let path = match project::manifest_path(file) {
        Ok(p) => p,
        Err(e) => return refuse(format!("{e:#}")),
    };
    let options = project::load_options(a.environment.as_deref());
    let manifest = match orchestra_manifest::load(&path, &options) {
        Ok(m) => m,
        Err(LoadError::Invalid(diags)) => {
            if a.json {
                let doc = serde_json::json!({
                    "schema": SCHEMA,
                    "manifest": path,
                    "errors": diags,
                    "checks": [],
                    "counts": Counts::default(),
                });
                print_out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
            } else {
                eprint!("{}", project::render_diagnostics(&diags));
                eprintln!(
                    "doctor: the manifest has errors; fix them first (`orchestra validate` shows the same)"
                );
            }
            return Ok(usage);
        }
        Err(e) => return refuse(e.to_string()),
    };
    let plan = match orchestra_plan::select(&manifest, &a.profiles, &[])
        .and_then(|sel| orchestra_plan::plan(&manifest, &sel))
    {
        Ok(p) => p,
        Err(e) => return refuse(e.to_string()),
    };
    let ctx = Ctx {
        manifest: &manifest,
        selected: plan
            .order
            .iter()
            .filter_map(|n| manifest.service(n))
            .collect(),
        paths: Paths::for_project(&manifest.dir),
        fix: a.fix,
    };
    let checks = run_checks(&ctx).await;
    let counts = Counts::of(&checks);
    let text = if a.json {
        let report = Report {
            schema: SCHEMA,
            manifest: &manifest.file,
            project: &manifest.name,
            environment: manifest.environment.as_deref(),
            profiles: &a.profiles,
            checks: &checks,
            counts,
            fixed: checks.iter().flat_map(|c| &c.fixed).collect(),
        };
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        render(&checks, &counts)
    };
    print_out(&text)?;
    let failed = counts.fail > 0 || (a.strict && counts.warn > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--json`'s document.
#[derive(Debug, Serialize)]
struct Report<'a> {
    schema: u32,
    manifest: &'a Path,
    project: &'a str,
    environment: Option<&'a str>,
    profiles: &'a [String],
    checks: &'a [Check],
    counts: Counts,
    fixed: Vec<&'a String>,
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Every check, in a fixed order; the ones that may block run concurrently.
async fn run_checks(ctx: &Ctx<'_>) -> Vec<Check> {
    let needs_engine = ctx.containers().next().is_some();
    let engine = tokio::spawn(engine::probe(needs_engine));
    let wants_gpus = ctx
        .selected
        .iter()
        .any(|s| s.resources.gpus.is_some_and(|n| n > 0));
    let gpus = tokio::spawn(engine::list_gpus(wants_gpus));
    let pins = tools::pins(ctx);
    let versions = tokio::spawn(tools::probe(
        ctx.manifest.dir.clone(),
        pins.iter().map(|p| p.tool.clone()).collect::<BTreeSet<_>>(),
    ));
    let daemon = tokio::spawn(ports::daemon(ctx.paths.socket.clone()));

    // The local checks run meanwhile on this thread; the spawned ones on the runtime's workers.
    let mut checks = vec![manifest_check(ctx)];
    let local = ports::bind_all(ctx);
    let host = vec![
        host::disk(ctx),
        host::open_files(ctx),
        host::state_dir(ctx),
        host::state_db(ctx),
        secrets::check(ctx),
    ];

    let engine = engine.await.unwrap_or_else(|e| engine::Probe::Failed {
        summary: format!("asking the Docker Engine failed: {e}"),
        fix: "run `orchestra doctor` again; `docker version` shows whether the Engine answers"
            .into(),
    });
    checks.push(engine::docker_check(ctx, &engine));
    let gpus = gpus.await.unwrap_or(engine::Gpus::NotAsked);
    checks.push(engine::gpu_check(ctx, &engine, &gpus));
    checks.push(engine::cgroup_check(ctx, &engine));
    let daemon = daemon.await.unwrap_or_default();
    checks.extend(ports::checks(ctx, local, &daemon));
    checks.extend(host);
    let versions = versions.await.unwrap_or_default();
    checks.extend(tools::checks(ctx, &pins, &versions));
    checks
}

fn manifest_check(ctx: &Ctx<'_>) -> Check {
    let m = ctx.manifest;
    let env = m
        .environment
        .as_deref()
        .map(|e| format!(", env `{e}`"))
        .unwrap_or_default();
    Check::pass(
        "manifest",
        format!(
            "{} is valid: project `{}`, {} of {} service{} selected{env}",
            m.file.display(),
            m.name,
            ctx.selected.len(),
            m.services.len(),
            if m.services.len() == 1 { "" } else { "s" },
        ),
    )
}

/// How many checks ended each way.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Warned.
    pub warn: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

impl Counts {
    fn of(checks: &[Check]) -> Self {
        let mut c = Counts::default();
        for k in checks {
            match k.status {
                Status::Pass => c.pass += 1,
                Status::Warn => c.warn += 1,
                Status::Fail => c.fail += 1,
                Status::Skip => c.skip += 1,
            }
        }
        c
    }
}

/// One line per check, then its detail and fix lines indented under it.
fn render(checks: &[Check], counts: &Counts) -> String {
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{} {:width$}  {}\n",
            c.status.symbol(),
            c.id,
            c.summary
        ));
        if matches!(c.status, Status::Warn | Status::Fail)
            && let Some(d) = &c.detail
        {
            for line in d.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        for f in &c.fixed {
            out.push_str(&format!("    fixed: {f}\n"));
        }
        if let Some(f) = &c.fix {
            out.push_str(&format!("    fix: {f}\n"));
        }
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    out.push_str(&format!(
        "doctor: {} passed, {}, {} failed, {} skipped\n",
        counts.pass,
        plural(counts.warn, "warning", "warnings"),
        counts.fail,
        counts.skip
    ));
    out
}

/// The executable `name` would run as, searching PATH like a shell.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What a command printed, or why it gave nothing.
#[derive(Debug, Clone)]
pub enum Ran {
    /// It exited 0: stdout then stderr.
    Ok(String),
    /// It exited non-zero: its output.
    Failed(String),
    /// It did not finish within the timeout (it is killed).
    TimedOut,
    /// It could not be started.
    NotStarted(String),
}

/// Run `program args` in `dir` with [`COMMAND_TIMEOUT`], stdin closed.
pub async fn run_command(program: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Ran {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd.output()).await {
        Err(_) => Ran::TimedOut,
        Ok(Err(e)) => Ran::NotStarted(e.to_string()),
        Ok(Ok(out)) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                Ran::Ok(text)
            } else {
                Ran::Failed(text)
            }
        }
    }
}

/// `0o640` as a person writes it.
pub fn mode_str(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_report_has_a_line_per_check_and_fix_lines_under_failures() {
        let checks = vec![
            Check::pass("manifest", "ok"),
            Check::skip("docker", "no containers"),
            Check::warn("disk", "low", "free some").detail("a\nb"),
            Check::fail("port.proxy.listen", "taken", "free it"),
        ];
        let text = render(&checks, &Counts::of(&checks));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "✓ manifest           ok");
        assert_eq!(lines[1], "- docker             no containers");
        assert_eq!(lines[2], "! disk               low");
        assert_eq!(lines[3], "    a");
        assert_eq!(lines[5], "    fix: free some");
        assert_eq!(lines[6], "✗ port.proxy.listen  taken");
        assert_eq!(lines[7], "    fix: free it");
        assert_eq!(lines[8], "doctor: 1 passed, 1 warning, 1 failed, 1 skipped");
    }
}
