//! `orchestra fix rename-id OLD NEW [PATH]`: rewrite every reference to an identifier in
//! the text files under PATH, atomically per file, then verify none remains.
//!
//! Matching follows the `stale-id` rule: OLD must stand alone as an identifier (the
//! characters around it are not letters, digits or `_`), so renaming `acme-prod` leaves
//! `acme-prod2` alone. Files are found by the same `.gitignore`-aware walk as `orchestra
//! audit`; binary files are never touched, lockfiles only with `include_lockfiles`, and
//! the audit configuration (`.orchestra-audit.toml`, which lists stale ids) is kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::collect::{self, Collected};
use crate::config::CONFIG_FILE;
use crate::rules::scan::find_identifier;

/// What to rename where.
#[derive(Clone, Debug)]
pub struct RenameOptions {
    /// The identifier to replace.
    pub old: String,
    /// The replacement.
    pub new: String,
    /// Directory (or file) to rewrite.
    pub root: PathBuf,
    /// Compute and report, write nothing.
    pub dry_run: bool,
    /// Rewrite lockfiles too.
    pub include_lockfiles: bool,
    /// Include files that .gitignore excludes.
    pub no_ignore: bool,
}

/// One changed line: 1-based number, before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineChange {
    /// 1-based line number.
    pub line: u32,
    /// The line before.
    pub before: String,
    /// The line after.
    pub after: String,
}

/// The changes to one file.
#[derive(Clone, Debug)]
pub struct FileChange {
    /// Path relative to the root.
    pub path: String,
    /// Number of replacements.
    pub count: usize,
    /// Changed lines.
    pub lines: Vec<LineChange>,
}

/// The outcome of a rename.
#[derive(Clone, Debug, Default)]
pub struct RenameReport {
    /// Files rewritten (or that would be, in a dry run), in path order.
    pub changed: Vec<FileChange>,
    /// Lockfiles holding OLD that were left alone, with their occurrence counts.
    pub skipped_lockfiles: Vec<(String, usize)>,
    /// Binary or non-UTF-8 files holding OLD (never rewritten).
    pub skipped_binary: Vec<String>,
    /// The audit configuration, kept as is although it mentions OLD.
    pub skipped_config: Option<String>,
    /// `path:line` of occurrences still present after writing (should be empty).
    pub remaining: Vec<(String, u32)>,
}

impl RenameReport {
    /// Total replacements.
    #[must_use]
    pub fn replacements(&self) -> usize {
        self.changed.iter().map(|c| c.count).sum()
    }
}

/// Replace each standalone occurrence of `old` in `text` by `new`; returns the new text
/// and the number of replacements.
#[must_use]
pub fn replace_identifier(text: &str, old: &str, new: &str) -> (String, usize) {
    let ranges = find_identifier(text, old);
    if ranges.is_empty() {
        return (text.to_string(), 0);
    }
    let mut out = String::with_capacity(text.len() + ranges.len() * new.len());
    let mut last = 0;
    for r in &ranges {
        out.push_str(&text[last..r.start]);
        out.push_str(new);
        last = r.end;
    }
    out.push_str(&text[last..]);
    (out, ranges.len())
}

/// Occurrences of `old` that are not part of an occurrence of `new` (when `new` contains
/// `old`, as in `acme` → `acme-eu`), as byte ranges.
#[must_use]
pub fn remaining_occurrences(text: &str, old: &str, new: &str) -> Vec<std::ops::Range<usize>> {
    let news = if new.contains(old) {
        find_identifier(text, new)
    } else {
        Vec::new()
    };
    find_identifier(text, old)
        .into_iter()
        .filter(|r| !news.iter().any(|n| n.start <= r.start && r.end <= n.end))
        .collect()
}

fn line_of(text: &str, offset: usize) -> u32 {
    text[..offset].bytes().filter(|b| *b == b'\n').count() as u32 + 1
}

fn changed_lines(before: &str, after: &str, old: &str) -> Vec<LineChange> {
    let mut out = Vec::new();
    let a: Vec<&str> = after.lines().collect();
    for r in find_identifier(before, old) {
        let line = line_of(before, r.start);
        if out.last().is_some_and(|l: &LineChange| l.line == line) {
            continue;
        }
        let b = before.lines().nth(line as usize - 1).unwrap_or("");
        // Replacements never add or remove line breaks (ids have none), so line
        // numbers line up.
        let n = a.get(line as usize - 1).copied().unwrap_or("");
        out.push(LineChange {
            line,
            before: b.to_string(),
            after: n.to_string(),
        });
    }
    out
}

enum Content {
    Text(String),
    Binary(Vec<u8>),
}

fn read(c: &Collected) -> Result<Content, AuditError> {
    let bytes = std::fs::read(&c.abs).map_err(|source| AuditError::Read {
        path: c.abs.clone(),
        source,
    })?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Ok(Content::Binary(bytes));
    }
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Content::Text(t)),
        Err(e) => Ok(Content::Binary(e.into_bytes())),
    }
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Write `text` to `path` atomically: a temporary file in the same directory with the
/// original permissions, synced, then renamed over the original.
///
/// # Errors
/// Any I/O failure; the temporary file is removed and the original left intact.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), AuditError> {
    let fail = |source| AuditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let perms = std::fs::metadata(path).map_err(fail)?.permissions();
    let tmp = dir.join(format!(
        ".{name}.orchestra-rename-{}.tmp",
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::set_permissions(&tmp, perms)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

fn is_root_config(rel: &str, root_is_file: bool) -> bool {
    !root_is_file && rel == CONFIG_FILE
}

/// Rename `opts.old` to `opts.new` under `opts.root`.
///
/// # Errors
/// Bad arguments (empty or equal ids, an id with whitespace), a missing root, or a file
/// that cannot be read or written.
pub fn rename_id(opts: &RenameOptions) -> Result<RenameReport, AuditError> {
    let (old, new) = (opts.old.as_str(), opts.new.as_str());
    if old.is_empty() || new.is_empty() {
        return Err(AuditError::Usage(
            "rename-id: OLD and NEW must not be empty".into(),
        ));
    }
    if old == new {
        return Err(AuditError::Usage(
            "rename-id: OLD and NEW are the same".into(),
        ));
    }
    if old.chars().any(char::is_whitespace) || new.contains('\n') {
        return Err(AuditError::Usage(
            "rename-id: OLD must be a single identifier without whitespace".into(),
        ));
    }
    let root_is_file = opts.root.is_file();
    let files = collect::walk(&opts.root, opts.no_ignore)?;
    let mut report = RenameReport::default();
    let mut eligible: Vec<&Collected> = Vec::new();
    for c in &files {
        let content = read(c)?;
        let text = match content {
            Content::Binary(bytes) => {
                if contains_bytes(&bytes, old.as_bytes()) {
                    report.skipped_binary.push(c.rel.clone());
                }
                continue;
            }
            Content::Text(t) => t,
        };
        if is_root_config(&c.rel, root_is_file) {
            if !find_identifier(&text, old).is_empty() {
                report.skipped_config = Some(c.rel.clone());
            }
            continue;
        }
        if c.kind.is_lockfile() && !opts.include_lockfiles {
            let n = find_identifier(&text, old).len();
            if n > 0 {
                report.skipped_lockfiles.push((c.rel.clone(), n));
            }
            continue;
        }
        eligible.push(c);
        let (after, count) = replace_identifier(&text, old, new);
        if count == 0 {
            continue;
        }
        let lines = changed_lines(&text, &after, old);
        if !opts.dry_run {
            write_atomic(&c.abs, &after)?;
        }
        report.changed.push(FileChange {
            path: c.rel.clone(),
            count,
            lines,
        });
    }
    if !opts.dry_run {
        // Re-scan what we were allowed to rewrite: nothing of OLD may remain.
        for c in eligible {
            if let Content::Text(t) = read(c)? {
                for r in remaining_occurrences(&t, old, new) {
                    report.remaining.push((c.rel.clone(), line_of(&t, r.start)));
                }
            }
        }
    }
    Ok(report)
}

fn shorten(s: &str) -> String {
    const MAX: usize = 160;
    let t = s.trim();
    if t.chars().count() <= MAX {
        t.to_string()
    } else {
        let mut out: String = t.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Print the report; returns the exit code (1 when occurrences remain).
///
/// # Errors
/// Writing to `out` failed.
pub fn print(
    report: &RenameReport,
    opts: &RenameOptions,
    out: &mut dyn Write,
) -> std::io::Result<i32> {
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("{n} {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    for c in &report.changed {
        writeln!(out, "{}: {}", c.path, plural(c.count, "replacement"))?;
        if opts.dry_run {
            for l in &c.lines {
                writeln!(out, "  {:>5} - {}", l.line, shorten(&l.before))?;
                writeln!(out, "  {:>5} + {}", l.line, shorten(&l.after))?;
            }
        }
    }
    for (path, n) in &report.skipped_lockfiles {
        writeln!(
            out,
            "skipped lockfile {path}: {} (regenerate it, or pass --include-lockfiles)",
            plural(*n, "occurrence")
        )?;
    }
    for path in &report.skipped_binary {
        writeln!(
            out,
            "skipped binary file {path}: it contains `{}`",
            opts.old
        )?;
    }
    if let Some(path) = &report.skipped_config {
        writeln!(
            out,
            "kept {path}: it names `{}` on purpose (stale ids)",
            opts.old
        )?;
    }
    let n = report.replacements();
    let files = report.changed.len();
    if opts.dry_run {
        writeln!(
            out,
            "dry run: would replace `{}` with `{}` {} in {}; nothing was written",
            opts.old,
            opts.new,
            plural(n, "time"),
            plural(files, "file")
        )?;
        return Ok(0);
    }
    writeln!(
        out,
        "replaced `{}` with `{}`: {} in {}",
        opts.old,
        opts.new,
        plural(n, "replacement"),
        plural(files, "file")
    )?;
    if report.remaining.is_empty() {
        writeln!(out, "verified: no reference to `{}` remains", opts.old)?;
        Ok(0)
    } else {
        writeln!(
            out,
            "error: {} of `{}` still remain:",
            plural(report.remaining.len(), "occurrence"),
            opts.old
        )?;
        for (path, line) in &report.remaining {
            writeln!(out, "  {path}:{line}")?;
        }
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_identifiers_only() {
        let (t, n) =
            replace_identifier("a old-p old-p2 x_old-p old-p/ \"old-p\"", "old-p", "new-p");
        assert_eq!(n, 3);
        assert_eq!(t, "a new-p old-p2 x_old-p new-p/ \"new-p\"");
    }

    #[test]
    fn new_containing_old_is_not_remaining() {
        let (t, _) = replace_identifier("gcr.io/acme/api", "acme", "acme-eu");
        assert_eq!(t, "gcr.io/acme-eu/api");
        assert!(remaining_occurrences(&t, "acme", "acme-eu").is_empty());
        assert_eq!(
            remaining_occurrences("acme acme-eu", "acme", "acme-eu").len(),
            1
        );
    }
}
