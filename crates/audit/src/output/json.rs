//! `--format json`: a versioned, stable schema (also the `--baseline` input).
//!
//! ```json
//! {"version": 1,
//!  "tool": {"name": "orchestra-audit", "version": "0.1.0"},
//!  "findings": [{"rule": "…", "title": "…", "severity": "high", "confidence": "high",
//!                "message": "…", "help": "…", "docs": "https://…", "fingerprint": "…",
//!                "locations": [{"path": "…", "line": 1, "column": 1, "end_line": 1,
//!                               "end_column": 5, "label": "…", "primary": true}]}],
//!  "summary": {"files_scanned": 3, "findings": 1,
//!              "by_severity": {"info": 0, "low": 0, "medium": 0, "high": 1, "critical": 0},
//!              "suppressed": {"inline": 0, "config": 0, "baseline": 0}, "notes": []}}
//! ```

use super::meta_index;
use super::pretty::Pretty;
use crate::finding::{Finding, Severity};
use crate::rule::{DOCS_BASE, RuleMeta};
use crate::runner::Report;

/// The schema version written in `version`.
pub const SCHEMA_VERSION: u32 = 1;

/// One finding object, as an element of the `findings` array.
fn finding(w: &mut Pretty<'_>, f: &Finding, meta: Option<&RuleMeta>, docs: &mut String) {
    w.element();
    w.begin_object();
    w.field_str("rule", f.rule);
    w.field_str("title", meta.map_or("", |m| m.title));
    w.field_str("severity", f.severity.as_str());
    w.field_str("confidence", f.confidence.as_str());
    w.field_str("message", &f.message);
    w.field_str("help", &f.help);
    // `RuleMeta::docs_url`, without allocating per finding.
    docs.clear();
    if let Some(m) = meta {
        docs.push_str(DOCS_BASE);
        docs.push('/');
        docs.push_str(m.id);
        docs.push_str(".md");
    }
    w.field_str("docs", docs);
    w.field_str("fingerprint", &f.fingerprint);
    w.key("locations");
    w.begin_array();
    for (i, l) in f.locations.iter().enumerate() {
        w.element();
        w.begin_object();
        w.field_str("path", &l.path);
        w.field_uint("line", u64::from(l.span.start.line));
        w.field_uint("column", u64::from(l.span.start.col));
        w.field_uint("end_line", u64::from(l.span.end.line));
        w.field_uint("end_column", u64::from(l.span.end.col));
        w.field_str("label", &l.label);
        w.key("primary");
        w.bool(i == 0);
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

/// Write `report` as JSON: the same bytes as `serde_json::to_writer_pretty` of the schema
/// in the module docs (and a final newline), written directly in 64 KiB chunks.
///
/// # Errors
/// Write failures.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let metas = meta_index(report);
    let mut w = Pretty::new(out);
    w.begin_object();
    w.field_uint("version", u64::from(SCHEMA_VERSION));
    w.key("tool");
    w.begin_object();
    w.field_str("name", "orchestra-audit");
    w.field_str("version", env!("CARGO_PKG_VERSION"));
    w.end_object();
    w.key("findings");
    w.begin_array();
    let mut docs = String::new();
    for f in &report.findings {
        finding(&mut w, f, metas.get(f.rule).copied(), &mut docs);
    }
    w.end_array();
    w.key("summary");
    w.begin_object();
    w.field_uint("files_scanned", report.files_scanned as u64);
    w.field_uint("findings", report.findings.len() as u64);
    w.key("by_severity");
    w.begin_object();
    let mut counts = [0usize; Severity::ALL.len()];
    for f in &report.findings {
        counts[f.severity as usize] += 1;
    }
    // Sorted by name, as a map of names is serialized.
    let mut by_name: Vec<(&str, usize)> = Severity::ALL
        .iter()
        .map(|s| (s.as_str(), counts[*s as usize]))
        .collect();
    by_name.sort_unstable();
    for (name, n) in by_name {
        w.field_uint(name, n as u64);
    }
    w.end_object();
    w.key("suppressed");
    w.begin_object();
    w.field_uint("inline", report.suppressed.inline as u64);
    w.field_uint("config", report.suppressed.config as u64);
    w.field_uint("baseline", report.suppressed.baseline as u64);
    w.end_object();
    w.key("notes");
    w.begin_array();
    for n in &report.notes {
        w.element();
        w.str(n);
    }
    w.end_array();
    w.end_object();
    w.end_object();
    w.raw(b"\n");
    w.finish()
}
