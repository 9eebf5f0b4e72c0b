//! Command-line entry points: `orchestra audit` and `orchestra fix rename-id`.
//!
//! The binary parses these `clap::Args`, calls the `run_*` function with stdout, and exits
//! with the returned code (errors exit 2).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::baseline::Baseline;
use crate::config::{CONFIG_FILE, Config, Date, FailOn};
use crate::finding::Severity;
use crate::output::{self, OutputFormat};
use crate::registry;
use crate::repo::{Repository, Settings};
use crate::runner::{Report, audit_repository};

/// Audit a repository's container, CI and infrastructure files.
///
/// One pass over Dockerfiles, compose files, GitHub workflows, dependency manifests and
/// lockfiles, env files and Terraform: misconfigurations, secrets, version drift across
/// files, stale identifiers and known-vulnerable dependencies.
///
/// Exit status: 0 when no finding reaches --fail-on, 1 when one does, 2 on errors.
/// Silence one finding with a comment `# orchestra: ignore[rule-id] reason` on its line
/// or the line above; configure rules in `.orchestra-audit.toml`.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Directory (or single file) to audit.
    #[arg(default_value = ".")]
    pub path: PathBuf,

    /// Report format: `text` for people, `json` for tools and baselines, `sarif` for
    /// GitHub code scanning.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Exit 1 when a finding is at least this severe: info, low, medium, high, critical,
    /// or `never` [default: high, or `fail-on` from the config file].
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,

    /// Show only findings that are not in this earlier `--format json` report (findings
    /// are matched without line numbers, so moved code is not new).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Configuration file [default: PATH/.orchestra-audit.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Also audit files on disk that .gitignore and .ignore exclude (.git/ is always
    /// skipped). Without it, in a git work tree the audit reads every committed file
    /// (whatever .gitignore says) plus untracked files that are not ignored.
    #[arg(long)]
    pub no_ignore: bool,

    /// An identifier that must no longer appear anywhere (an old project id, bucket,
    /// region…). Repeatable; adds to `stale-ids` in the config file.
    #[arg(long = "stale-id", value_name = "OLD")]
    pub stale_ids: Vec<String>,

    /// Offline OSV database: osv-scanner's local cache layout, `<DIR>/<Ecosystem>/all.zip`
    /// or unzipped `*.json` records. Without it, dependency rules skip themselves.
    #[arg(long, value_name = "DIR", env = "OSV_DB")]
    pub osv_db: Option<PathBuf>,

    /// Disable a rule by id. Repeatable; adds to `disable` in the config file.
    #[arg(long, value_name = "RULE")]
    pub disable: Vec<String>,

    /// Write the report to FILE instead of standard output (a one-line summary is still
    /// printed).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Text output: list every finding on its own, by file, with its snippet, instead of
    /// grouping repeats (the same secret, one rule in one file, one stale id in one
    /// file). The summary stays on top; JSON and SARIF always hold every finding.
    #[arg(long)]
    pub expand: bool,

    /// List every rule (id, severity, title) and exit.
    #[arg(long)]
    pub list_rules: bool,

    /// Print a rule's page (what it finds, why it matters, how to fix it, how to
    /// silence it) and exit. The pages are built into the binary.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
}

/// Run `orchestra audit`; returns the process exit code.
///
/// # Errors
/// Missing path, invalid config or baseline, unwritable output.
pub fn run_audit(args: &AuditArgs, out: &mut dyn Write) -> Result<i32, AuditError> {
    let ids = registry::ids();
    if let Some(id) = &args.explain {
        return match crate::rule::docs_page(id) {
            Some(page) => {
                out.write_all(page.as_bytes())?;
                Ok(0)
            }
            None => Err(AuditError::Usage(format!(
                "--explain: unknown rule `{id}`{}; `orchestra audit --list-rules` lists them",
                registry::closest(id, &ids)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default()
            ))),
        };
    }
    if args.list_rules {
        for rule in registry::all() {
            let m = rule.meta();
            writeln!(out, "{:<40} {:<8} {}", m.id, m.severity, m.title)?;
        }
        return Ok(0);
    }
    let root_dir = if args.path.is_file() {
        args.path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        args.path.clone()
    };
    let mut config = match &args.config {
        Some(p) => Config::load(p, &ids)?,
        None => {
            let p = root_dir.join(CONFIG_FILE);
            if p.is_file() {
                Config::load(&p, &ids)?
            } else {
                Config::default()
            }
        }
    };
    let mut unknown = Vec::new();
    for id in &args.disable {
        if ids.contains(&id.as_str()) {
            config.disabled.insert(id.clone());
        } else {
            unknown.push(format!(
                "--disable: unknown rule `{id}`{}",
                registry::closest(id, &ids)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default()
            ));
        }
    }
    if !unknown.is_empty() {
        return Err(AuditError::Usage(unknown.join("\n")));
    }
    let mut stale_ids = config.stale_ids.clone();
    for s in &args.stale_ids {
        if !stale_ids.contains(s) {
            stale_ids.push(s.clone());
        }
    }
    let settings = Settings {
        stale_ids,
        osv_db: args.osv_db.clone().or_else(|| config.osv_db.clone()),
        rule_options: config.rule_options.clone(),
        today: Date::today(),
    };
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let repo = Repository::load(&args.path, args.no_ignore, settings)?;
    let report = audit_repository(&repo, &config, baseline.as_ref());
    // Only text output quotes source lines: otherwise the parsed repository is done with,
    // and freeing it (every file's text and syntax tree) happens off the critical path.
    let repo = if args.format == OutputFormat::Text {
        Some(repo)
    } else {
        drop_in_background(repo);
        None
    };

    match &args.output {
        Some(path) => {
            let mut buf = Vec::new();
            render(&report, repo.as_ref(), args, &mut buf)?;
            std::fs::write(path, buf).map_err(|source| AuditError::Write {
                path: path.clone(),
                source,
            })?;
            writeln!(
                out,
                "{} findings in {} files; report written to {}",
                report.findings.len(),
                report.files_scanned,
                path.display()
            )?;
        }
        None => match args.format {
            // Written in 64 KiB chunks (few writes, and no report-sized buffer).
            OutputFormat::Json => output::json::write(&report, out)?,
            OutputFormat::Sarif => output::sarif::write(&report, out)?,
            OutputFormat::Text => {
                // One write: stdout is line-buffered, and text is many small writes.
                let mut buf = Vec::with_capacity(64 * 1024);
                render(&report, repo.as_ref(), args, &mut buf)?;
                out.write_all(&buf)?;
            }
        },
    }
    let fail_on = args
        .fail_on
        .or(config.fail_on)
        .unwrap_or(FailOn::Severity(Severity::High));
    let code = exit_code(&report, fail_on);
    drop_in_background((report, repo));
    Ok(code)
}

/// Drop `value` on a short-lived thread. Freeing a large repository (tens of thousands
/// of small allocations) takes milliseconds that the caller need not wait for; a process
/// that exits right away skips it. Dropped in place if no thread can be started.
fn drop_in_background<T: Send + 'static>(value: T) {
    // On failure the closure, and `value` with it, is dropped here.
    let _ = std::thread::Builder::new()
        .name("audit-drop".into())
        .spawn(move || drop(value));
}

fn render(
    report: &Report,
    repo: Option<&Repository>,
    args: &AuditArgs,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match args.format {
        OutputFormat::Text => {
            let layout = if args.expand {
                output::text::Layout::Expanded
            } else {
                output::text::Layout::Grouped
            };
            output::text::write(report, repo, layout, out)
        }
        OutputFormat::Json => output::json::write(report, out),
        OutputFormat::Sarif => output::sarif::write(report, out),
    }
}

/// 1 when some finding reaches `fail_on`, else 0.
#[must_use]
pub fn exit_code(report: &Report, fail_on: FailOn) -> i32 {
    match (fail_on, report.max_severity()) {
        (FailOn::Severity(min), Some(max)) if max >= min => 1,
        _ => 0,
    }
}

/// Rename an identifier everywhere (e.g. a GCP project id after a migration).
///
/// Rewrites every reference in text files under PATH, skipping binaries and lockfiles
/// (unless --include-lockfiles), prints a per-file summary and checks none remain.
/// OLD must stand alone: `acme-prod` matches in `gcr.io/acme-prod/api` but not in
/// `acme-prod2` or `acme_prod_db`. Files are written atomically (temporary file, then
/// rename, permissions kept); .orchestra-audit.toml is left alone.
///
/// Exit status: 0 when done (or on --dry-run), 1 when references remain afterwards,
/// 2 on errors.
#[derive(clap::Args, Debug, Clone)]
pub struct RenameIdArgs {
    /// The identifier to replace.
    pub old: String,
    /// The replacement.
    pub new: String,
    /// Directory to rewrite.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Show what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also rewrite lockfiles (poetry.lock, package-lock.json, …).
    #[arg(long)]
    pub include_lockfiles: bool,
    /// Also rewrite files that .gitignore excludes.
    #[arg(long)]
    pub no_ignore: bool,
}

/// Run `orchestra fix rename-id`; returns the process exit code.
///
/// # Errors
/// Bad arguments, a missing path, unreadable or unwritable files.
pub fn run_rename_id(args: &RenameIdArgs, out: &mut dyn Write) -> Result<i32, AuditError> {
    let opts = crate::fix::rename_id::RenameOptions {
        old: args.old.clone(),
        new: args.new.clone(),
        root: args.path.clone(),
        dry_run: args.dry_run,
        include_lockfiles: args.include_lockfiles,
        no_ignore: args.no_ignore,
    };
    let report = crate::fix::rename_id::rename_id(&opts)?;
    Ok(crate::fix::rename_id::print(&report, &opts, out)?)
}
