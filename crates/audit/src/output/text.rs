//! Human output: findings grouped by file, a source snippet with carets, and the fix.
//!
//! ```text
//! Dockerfile
//!   1:6  medium  dockerfile-latest-tag  base image `python` has no tag, so it means `latest`
//!      |
//!    1 | FROM python AS build
//!      |      ^^^^^^ unpinned
//!      = fix: Pin the base image to a version tag …
//!      = docs: https://…/dockerfile-latest-tag.md
//! ```

use std::io::Write;

use super::meta_index;
use crate::finding::{Location, Severity};
use crate::repo::Repository;
use crate::runner::Report;

/// Write `report` for humans. `repo` provides source lines for snippets (optional).
///
/// # Errors
/// Write failures.
pub fn write(
    report: &Report,
    repo: Option<&Repository>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let metas = meta_index(report);
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
    if !report.findings.is_empty() {
        writeln!(out)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = report.findings.iter().filter(|f| f.severity == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    let s = &report.suppressed;
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
    write!(out, " in {} files", report.files_scanned)?;
    if s.inline + s.config + s.baseline > 0 {
        write!(
            out,
            "; suppressed: {} inline, {} by config, {} by baseline",
            s.inline, s.config, s.baseline
        )?;
    }
    writeln!(out)
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
    if loc.redact {
        shown = line
            .iter()
            .enumerate()
            .map(|(i, c)| if i >= start && i < end { '*' } else { *c })
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
    let width = expand_tabs(&line[start..end].iter().collect::<String>())
        .chars()
        .count()
        .max(1);
    writeln!(
        out,
        "   {pad} | {}{} {}",
        " ".repeat(indent),
        mark.to_string().repeat(width),
        loc.label
    )?;
    Ok(())
}
