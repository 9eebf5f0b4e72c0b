//! Runs rules over a repository in parallel, then applies overrides and suppressions.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use rayon::prelude::*;

use crate::AuditError;
use crate::baseline::Baseline;
use crate::config::Config;
use crate::finding::{Finding, Fnv1a};
use crate::registry;
use crate::repo::{Repository, Settings};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// What to audit and how.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Directory (or single file) to audit.
    pub root: PathBuf,
    /// Include files `.gitignore` excludes.
    pub no_ignore: bool,
    /// Validated configuration.
    pub config: Config,
    /// Settings passed to rules (stale ids, OSV database, date, rule options).
    pub settings: Settings,
    /// Previous report: its findings are not shown again.
    pub baseline: Option<Baseline>,
}

/// Findings dropped before output, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// By `# orchestra: ignore[…]` comments.
    pub inline: usize,
    /// By config `[[ignore]]` entries.
    pub config: usize,
    /// Present in the baseline.
    pub baseline: usize,
}

/// The result of an audit.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings to show, sorted by path, line, column, rule.
    pub findings: Vec<Finding>,
    /// Files collected.
    pub files_scanned: usize,
    /// Findings not shown, and why.
    pub suppressed: Suppressed,
    /// Metadata of every registered rule (enabled or not), registry order.
    pub rules: Vec<&'static RuleMeta>,
    /// Notes for the user (expired ignores, rules that crashed).
    pub notes: Vec<String>,
}

impl Report {
    /// The highest severity shown, if any finding.
    #[must_use]
    pub fn max_severity(&self) -> Option<crate::Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Load the repository at `opts.root` and audit it.
///
/// # Errors
/// The root does not exist.
pub fn audit(opts: &AuditOptions) -> Result<Report, AuditError> {
    let repo = Repository::load(&opts.root, opts.no_ignore, opts.settings.clone())?;
    Ok(audit_repository(
        &repo,
        &opts.config,
        opts.baseline.as_ref(),
    ))
}

/// Audit an already loaded repository with every enabled registered rule.
#[must_use]
pub fn audit_repository(repo: &Repository, config: &Config, baseline: Option<&Baseline>) -> Report {
    let all = registry::all();
    let metas: Vec<&'static RuleMeta> = all.iter().map(|r| r.meta()).collect();
    let enabled: Vec<&dyn Rule> = all
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| !config.disabled.contains(r.meta().id))
        .collect();
    let (raw, mut notes) = run_rules(repo, &enabled);
    let mut report = finish(repo, raw, config, baseline);
    for ig in config.expired_ignores(repo.settings.today) {
        notes.push(format!(
            "config ignore for {} expired on {}; it no longer applies",
            ig.patterns.join(", "),
            ig.expires.map(|d| d.to_string()).unwrap_or_default()
        ));
    }
    report.notes = notes;
    report.rules = metas;
    report.files_scanned = repo.files.len();
    report
}

/// Run `rules` on every file (in parallel) and once on the repository.
/// Returns raw findings and notes about rules that panicked (they never abort the run).
pub fn run_rules(repo: &Repository, rules: &[&dyn Rule]) -> (Vec<Finding>, Vec<String>) {
    // The per-file pass and the repository-wide hooks are independent: run them side by
    // side, so neither waits for the other's slowest task.
    let (per_file, repo_wide) = rayon::join(
        || run_per_file(repo, rules),
        || run_repository_wide(repo, rules),
    );
    let total = per_file
        .iter()
        .chain(&repo_wide)
        .map(|(f, _)| f.len())
        .sum();
    let mut findings = Vec::with_capacity(total);
    let mut notes = Vec::new();
    for (f, n) in per_file.into_iter().chain(repo_wide) {
        findings.extend(f);
        notes.extend(n);
    }
    (findings, notes)
}

type Results = Vec<(Vec<Finding>, Vec<String>)>;

/// Every rule's per-file hook on every file (in parallel, results in file order).
fn run_per_file(repo: &Repository, rules: &[&dyn Rule]) -> Results {
    repo.files
        .par_iter()
        .map(|file| {
            crate::heap::reserve_headroom();
            let cx = FileCx { file, repo };
            let mut found = Vec::new();
            let mut notes = Vec::new();
            for rule in rules {
                let mut sink = Sink::new(rule.meta());
                let ok = catch_unwind(AssertUnwindSafe(|| rule.check_file(&cx, &mut sink)));
                match ok {
                    Ok(()) => found.extend(sink.into_findings()),
                    Err(_) => notes.push(format!(
                        "internal error: rule {} crashed on {}; please report it",
                        rule.meta().id,
                        file.path()
                    )),
                }
            }
            (found, notes)
        })
        .collect()
}

/// Every rule's repository-wide hook (in parallel, results in registry order).
fn run_repository_wide(repo: &Repository, rules: &[&dyn Rule]) -> Results {
    rules
        .par_iter()
        .map(|rule| {
            let mut sink = Sink::new(rule.meta());
            match catch_unwind(AssertUnwindSafe(|| rule.check_repository(repo, &mut sink))) {
                Ok(()) => (sink.into_findings(), Vec::new()),
                Err(_) => (
                    Vec::new(),
                    vec![format!(
                        "internal error: rule {} crashed on the repository; please report it",
                        rule.meta().id
                    )],
                ),
            }
        })
        .collect()
}

/// Fingerprint, apply overrides and suppressions, sort and de-duplicate.
pub(crate) fn finish(
    repo: &Repository,
    raw: Vec<Finding>,
    config: &Config,
    baseline: Option<&Baseline>,
) -> Report {
    /// What happens to one raw finding before the baseline (which counts, so is applied
    /// in order afterwards).
    enum Fate {
        Empty,
        Inline,
        Config,
        Keep(Finding),
    }
    // Overrides, inline and config ignores and fingerprints are per finding: in parallel.
    let fates: Vec<Fate> = raw
        .into_par_iter()
        .map(|mut f| {
            if f.locations.is_empty() {
                return Fate::Empty;
            }
            if let Some(s) = config.severity.get(f.rule) {
                f.severity = *s;
            }
            let rule = f.rule;
            let ignored = |loc: &crate::finding::Location| {
                loc.span.start.line > 0
                    && repo
                        .file(&loc.path)
                        .is_some_and(|file| file.ignores.suppresses(rule, loc.span.start.line))
            };
            if ignored(&f.locations[0]) {
                return Fate::Inline;
            }
            // An ignore on a secondary location drops just that location (e.g. one pin of
            // a drift finding that is different on purpose).
            if f.locations.len() > 1 {
                let primary = f.locations.remove(0);
                f.locations.retain(|l| !ignored(l));
                f.locations.insert(0, primary);
            }
            let path = &f.locations[0].path;
            if config
                .ignores
                .iter()
                .any(|i| i.covers(rule, path, repo.settings.today))
            {
                return Fate::Config;
            }
            f.fingerprint = fingerprint(repo, &f);
            Fate::Keep(f)
        })
        .collect();
    let mut suppressed = Suppressed::default();
    let mut remaining: HashMap<String, usize> = baseline.map(Baseline::counts).unwrap_or_default();
    let mut findings = Vec::with_capacity(fates.len());
    for fate in fates {
        let f = match fate {
            Fate::Empty => continue,
            Fate::Inline => {
                suppressed.inline += 1;
                continue;
            }
            Fate::Config => {
                suppressed.config += 1;
                continue;
            }
            Fate::Keep(f) => f,
        };
        if let Some(n) = remaining.get_mut(&f.fingerprint)
            && *n > 0
        {
            *n -= 1;
            suppressed.baseline += 1;
            continue;
        }
        findings.push(f);
    }
    // Stable, like the `sort_by_cached_key(Finding::sort_key)` it replaces, without
    // cloning every path and message into a key.
    findings.par_sort_by(Finding::cmp_sort_key);
    findings
        .dedup_by(|a, b| a.rule == b.rule && a.message == b.message && a.locations == b.locations);
    Report {
        findings,
        suppressed,
        ..Report::default()
    }
}

/// Identity of a finding that survives code moving: rule, file, the primary line's text
/// (whitespace-normalized) and the message — never line numbers.
fn fingerprint(repo: &Repository, f: &Finding) -> String {
    let loc = &f.locations[0];
    // `fnv1a(&[rule, path, line, message])` with the line's words joined by single
    // spaces, hashed as they are read instead of collected into a string first.
    let mut h = Fnv1a::new();
    h.part(f.rule);
    h.part(&loc.path);
    if loc.span.start.line != 0
        && let Some(file) = repo.file(&loc.path)
    {
        for (i, word) in file
            .source
            .line(loc.span.start.line)
            .split_whitespace()
            .enumerate()
        {
            if i > 0 {
                h.bytes(b" ");
            }
            h.bytes(word.as_bytes());
        }
    }
    h.end_part();
    h.part(&f.message);
    format!("{:016x}", h.finish())
}
