//! Human output: a summary first (counts by severity and by rule, then the secrets to
//! rotate with every location), then one block per group of repeats, most severe first,
//! each with a source snippet and the fix. `--expand` ([`Layout::Expanded`]) lists every
//! finding on its own instead, by file, after the same summary.
//!
//! ```text
//! 3 findings (1 critical, 2 medium) in 12 files
//! by rule:
//!   critical  secret-provider-token  1
//!   medium    stale-id               2
//!
//! fix these first: 1 secret to rotate
//!   1. critical  GitHub token `ghp_************` is committed in plain text
//!        .env:2
//!        deploy/ci.sh:4
//!
//! critical  secret-provider-token: the same secret at 2 locations
//!   GitHub token `ghp_************` is committed in plain text
//!   - .env:2:14
//!   - deploy/ci.sh:4:7
//!      |
//!    2 | GITHUB_TOKEN=****************
//!      |              ^^^^^^^^^^^^^^^^ GitHub token
//!      = fix: Revoke it under GitHub Settings …
//!      = docs: orchestra audit --explain secret-provider-token
//!
//! medium  stale-id: `old-project` 2 times in deploy/x.yaml (lines 3, 9)
//!   stale identifier `old-project` is still referenced
//!      |
//!    3 | project: old-project
//!      |          ^^^^^^^^^^^ stale
//!      = fix: Replace it everywhere with `orchestra fix rename-id OLD NEW` …
//!      = docs: orchestra audit --explain stale-id
//!
//! 3 findings (1 critical, 2 medium) in 12 files
//! ```

use std::collections::HashMap;
use std::io::Write;

use super::meta_index;
use crate::finding::{Finding, Location, Severity};
use crate::group::{self, Group, GroupKind};
use crate::repo::Repository;
use crate::rule::RuleMeta;
use crate::runner::Report;

/// How findings are laid out after the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// One block per group of repeats, most severe first.
    #[default]
    Grouped,
    /// Every finding on its own, by file (`--expand`).
    Expanded,
}

/// At most this many line numbers in a group's header, then `…`.
const MAX_LINES: usize = 8;
/// A masked secret shows at most this many `*`, then `…`.
const MAX_MASK: usize = 24;
/// At most this many distinct messages listed in a group, then a count.
const MAX_MESSAGES: usize = 10;

/// Write `report` for humans. `repo` provides source lines for snippets (optional).
///
/// # Errors
/// Write failures.
pub fn write(
    report: &Report,
    repo: Option<&Repository>,
    layout: Layout,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let metas = meta_index(report);
    if !report.findings.is_empty() {
        let groups = group::group(&report.findings);
        summary(report, &groups, out)?;
        match layout {
            Layout::Grouped => {
                for g in &groups {
                    writeln!(out)?;
                    write_group(report, repo, &metas, g, out)?;
                }
            }
            Layout::Expanded => {
                writeln!(out)?;
                expanded(report, repo, &metas, out)?;
            }
        }
        writeln!(out)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    totals(report, out)?;
    let s = &report.suppressed;
    if s.inline + s.config + s.baseline > 0 {
        write!(
            out,
            "; suppressed: {} inline, {} by config, {} by baseline",
            s.inline, s.config, s.baseline
        )?;
    }
    writeln!(out)
}

/// `N findings (1 critical, 2 medium) in M files`, without a newline.
fn totals(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let by = group::by_severity(&report.findings);
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter(|s| by[**s as usize] > 0)
        .map(|s| format!("{} {s}", by[*s as usize]))
        .collect();
    let total = report.findings.len();
    write!(
        out,
        "{} finding{}",
        total,
        if total == 1 { "" } else { "s" }
    )?;
    if !counts.is_empty() {
        write!(out, " ({})", counts.join(", "))?;
    }
    write!(out, " in {} files", report.files_scanned)
}

/// Counts by severity and by rule, then the secrets to rotate.
fn summary(report: &Report, groups: &[Group], out: &mut dyn Write) -> std::io::Result<()> {
    totals(report, out)?;
    writeln!(out)?;
    let rows = group::by_rule(&report.findings);
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    writeln!(out, "by rule:")?;
    for (rule, severity, n) in &rows {
        writeln!(out, "  {:<8}  {rule:<width$}  {n}", severity.as_str())?;
    }
    let rotate = group::to_rotate(groups);
    if rotate.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "fix these first: {} secret{} to rotate",
        rotate.len(),
        if rotate.len() == 1 { "" } else { "s" }
    )?;
    for (n, g) in rotate.iter().enumerate() {
        let first = &report.findings[g.findings[0]];
        writeln!(
            out,
            "  {}. {}  {} ({})",
            n + 1,
            g.severity,
            first.message,
            g.rules.join(", ")
        )?;
        for &i in &g.findings {
            if let Some(l) = report.findings[i].primary() {
                writeln!(out, "       {}", at_line(l))?;
            }
        }
    }
    Ok(())
}

/// `path:line` (or just `path` for a whole-file location).
fn at_line(l: &Location) -> String {
    if l.span.start.line == 0 {
        l.path.clone()
    } else {
        format!("{}:{}", l.path, l.span.start.line)
    }
}

/// `path:line:col` (or just `path`).
fn at_col(l: &Location) -> String {
    if l.span.start.line == 0 {
        l.path.clone()
    } else {
        format!("{}:{}:{}", l.path, l.span.start.line, l.span.start.col)
    }
}

/// `(lines 3, 9, 27, …)` for findings in one file.
fn line_list(findings: &[&Finding]) -> String {
    let mut lines: Vec<u32> = findings
        .iter()
        .filter_map(|f| f.primary())
        .map(|l| l.span.start.line)
        .filter(|&n| n > 0)
        .collect();
    lines.dedup();
    if lines.is_empty() {
        return String::new();
    }
    let mut shown: Vec<String> = lines.iter().take(MAX_LINES).map(u32::to_string).collect();
    if lines.len() > MAX_LINES {
        shown.push("\u{2026}".to_string());
    }
    let word = if lines.len() == 1 { "line" } else { "lines" };
    format!(" ({word} {})", shown.join(", "))
}

/// One group: a header, what was found, the first occurrence's snippet, the fix.
fn write_group(
    report: &Report,
    repo: Option<&Repository>,
    metas: &HashMap<&'static str, &'static RuleMeta>,
    g: &Group,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let items: Vec<&Finding> = g.findings.iter().map(|&i| &report.findings[i]).collect();
    let first = items[0];
    let Some(primary) = first.primary() else {
        return Ok(());
    };
    let n = items.len();
    if n == 1 {
        writeln!(out, "{}  {}  {}", g.severity, g.rule, at_col(primary))?;
        writeln!(out, "  {}", first.message)?;
    } else {
        match g.kind {
            GroupKind::Secret => {
                writeln!(
                    out,
                    "{}  {}: the same secret at {n} locations",
                    g.severity,
                    g.rules.join(", ")
                )?;
                writeln!(out, "  {}", first.message)?;
                for f in &items {
                    if let Some(l) = f.primary() {
                        writeln!(out, "  - {}", at_col(l))?;
                    }
                }
            }
            GroupKind::Name | GroupKind::File => {
                let path = g.path.as_deref().unwrap_or("");
                let name = g
                    .name
                    .as_deref()
                    .map(|n| format!(" `{n}`"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}  {}:{name} {n} times in {path}{}",
                    g.severity,
                    g.rule,
                    line_list(&items)
                )?;
                messages(&items, out)?;
            }
        }
    }
    for (i, loc) in first.locations.iter().enumerate() {
        snippet(out, repo, loc, i == 0, &primary.path)?;
    }
    writeln!(out, "     = fix: {}", first.help)?;
    if let Some(m) = metas.get(first.rule) {
        writeln!(out, "     = docs: orchestra audit --explain {}", m.id)?;
    }
    Ok(())
}

/// The messages of a group in one file: once when they are all the same, else each with
/// its line.
fn messages(items: &[&Finding], out: &mut dyn Write) -> std::io::Result<()> {
    if items.iter().all(|f| f.message == items[0].message) {
        return writeln!(out, "  {}", items[0].message);
    }
    for f in items.iter().take(MAX_MESSAGES) {
        let line = f.primary().map_or(0, |l| l.span.start.line);
        writeln!(out, "  - line {line}: {}", f.message)?;
    }
    if items.len() > MAX_MESSAGES {
        writeln!(
            out,
            "  - \u{2026} and {} more (--expand lists every finding)",
            items.len() - MAX_MESSAGES
        )?;
    }
    Ok(())
}

/// Every finding on its own, grouped by file (the layout before grouping).
fn expanded(
    report: &Report,
    repo: Option<&Repository>,
    metas: &HashMap<&'static str, &'static RuleMeta>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut current: Option<&str> = None;
    for f in &report.findings {
        let primary = &f.locations[0];
        if current != Some(primary.path.as_str()) {
            if current.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "{}", primary.path)?;
            current = Some(&primary.path);
        }
        let at = if primary.span.start.line == 0 {
            "-".to_string() // the whole file
        } else {
            format!("{}:{}", primary.span.start.line, primary.span.start.col)
        };
        writeln!(out, "  {at}  {}  {}  {}", f.severity, f.rule, f.message)?;
        for (i, loc) in f.locations.iter().enumerate() {
            snippet(out, repo, loc, i == 0, &primary.path)?;
        }
        writeln!(out, "     = fix: {}", f.help)?;
        if let Some(m) = metas.get(f.rule) {
            writeln!(out, "     = docs: orchestra audit --explain {}", m.id)?;
        }
    }
    Ok(())
}

/// Tabs render as 4 spaces so carets line up.
fn expand_tabs(s: &str) -> String {
    s.replace('\t', "    ")
}

fn snippet(
    out: &mut dyn Write,
    repo: Option<&Repository>,
    loc: &Location,
    primary: bool,
    primary_path: &str,
) -> std::io::Result<()> {
    let line_no = loc.span.start.line;
    let source = repo.and_then(|r| r.file(&loc.path)).map(|f| &f.source);
    let (Some(source), true) = (source, line_no > 0) else {
        // No text to show (whole-file location, or another file we did not read).
        if !primary || !loc.label.is_empty() {
            writeln!(out, "     - {}: {}", loc.path, loc.label)?;
        }
        return Ok(());
    };
    let line: Vec<char> = source.line(line_no).chars().collect();
    let start = (loc.span.start.col.max(1) as usize - 1).min(line.len());
    let end = if loc.span.end.line == line_no {
        (loc.span.end.col.max(1) as usize - 1).clamp(start, line.len())
    } else {
        line.len()
    };
    let mut shown: String = line.iter().collect();
    // The spanned text's width under the carets.
    let mut width = expand_tabs(&line[start..end].iter().collect::<String>())
        .chars()
        .count();
    if loc.redact {
        // Masked, at most `MAX_MASK` stars wide: a kilobyte key is no wall of stars,
        // and the mask does not tell a secret's length.
        let n = end - start;
        let mask = if n > MAX_MASK {
            format!("{}\u{2026}", "*".repeat(MAX_MASK))
        } else {
            "*".repeat(n)
        };
        width = mask.chars().count();
        shown = line[..start]
            .iter()
            .copied()
            .chain(mask.chars())
            .chain(line[end..].iter().copied())
            .collect();
    }
    let gutter = line_no.to_string().len().max(3);
    let pad = " ".repeat(gutter);
    if !primary && loc.path != primary_path {
        writeln!(
            out,
            "     {pad}--> {}:{}:{}",
            loc.path, line_no, loc.span.start.col
        )?;
    }
    writeln!(out, "   {pad} |")?;
    writeln!(out, "   {line_no:>gutter$} | {}", expand_tabs(&shown))?;
    let prefix: String = line[..start].iter().collect();
    let indent = expand_tabs(&prefix).chars().count();
    let mark = if primary { '^' } else { '-' };
    let width = width.max(1);
    writeln!(
        out,
        "   {pad} | {}{} {}",
        " ".repeat(indent),
        mark.to_string().repeat(width),
        loc.label
    )?;
    Ok(())
}
