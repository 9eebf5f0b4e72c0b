//! `--format json`: a versioned, stable schema (also the `--baseline` input).
//!
//! ```json
//! {"version": 1,
//!  "tool": {"name": "orchestra-audit", "version": "0.1.0"},
//!  "findings": [{"rule": "…", "title": "…", "severity": "high", "confidence": "high",
//!                "message": "…", "help": "…", "docs": "https://…", "fingerprint": "…",
//!                "locations": [{"path": "…", "line": 1, "column": 1, "end_line": 1,
//!                               "end_column": 5, "label": "…", "primary": true}]}],
//!  "groups": [{"kind": "secret", "rule": "…", "rules": ["…"], "severity": "critical",
//!              "count": 2, "findings": [0, 4],
//!              "locations": [{"path": "…", "line": 2, "column": 14}, …]},
//!             {"kind": "name", "rule": "stale-id", "rules": ["stale-id"],
//!              "severity": "medium", "count": 14, "path": "deploy/x.yaml",
//!              "name": "old-project", "findings": [5, 6, …]}, …],
//!  "summary": {"files_scanned": 3, "findings": 1,
//!              "by_severity": {"info": 0, "low": 0, "medium": 0, "high": 1, "critical": 0},
//!              "suppressed": {"inline": 0, "config": 0, "baseline": 0}, "notes": []}}
//! ```

//!
//! `groups` ([`crate::group`]) puts every finding in exactly one group, most severe
//! first: `kind` is `secret` (the same secret value, wherever it occurs; `locations` lists
//! each finding's primary location), `name` (one rule about one named thing in one
//! file: a stale id) or `file` (one rule in one file). `findings` are indexes into
//! `findings`, most severe first. A secret's value, or a hash of it, is never written.

use super::meta_index;
use super::pretty::{Pretty, escape_str, push_uint};
use crate::finding::{Finding, Severity};
use crate::rule::{DOCS_DIR, RuleMeta};
use crate::runner::Report;

/// The schema version written in `version`.
pub const SCHEMA_VERSION: u32 = 1;

/// One finding object, as an element of the `findings` array: what the writer's
/// `begin_object`/`field_*`/`end_*` calls produce at that depth (keys at 6 spaces, the
/// locations' at 10), spelled out as literal bytes — rendering was mostly the per-call
/// bookkeeping of the general writer.
fn finding(w: &mut Pretty<'_>, f: &Finding, meta: Option<&RuleMeta>, docs: &mut String) {
    w.element();
    let out = w.buf();
    out.extend_from_slice(b"{\n      \"rule\": ");
    escape_str(out, f.rule);
    out.extend_from_slice(b",\n      \"title\": ");
    escape_str(out, meta.map_or("", |m| m.title));
    out.extend_from_slice(b",\n      \"severity\": ");
    escape_str(out, f.severity.as_str());
    out.extend_from_slice(b",\n      \"confidence\": ");
    escape_str(out, f.confidence.as_str());
    out.extend_from_slice(b",\n      \"message\": ");
    escape_str(out, &f.message);
    out.extend_from_slice(b",\n      \"help\": ");
    escape_str(out, &f.help);
    // `RuleMeta::docs_path`, without allocating per finding.
    docs.clear();
    if let Some(m) = meta {
        docs.push_str(DOCS_DIR);
        docs.push('/');
        docs.push_str(m.id);
        docs.push_str(".md");
    }
    out.extend_from_slice(b",\n      \"docs\": ");
    escape_str(out, docs);
    out.extend_from_slice(b",\n      \"fingerprint\": ");
    escape_str(out, &f.fingerprint);
    out.extend_from_slice(b",\n      \"locations\": [");
    for (i, l) in f.locations.iter().enumerate() {
        out.extend_from_slice(if i == 0 {
            b"\n        {\n          \"path\": "
        } else {
            b",\n        {\n          \"path\": "
        });
        escape_str(out, &l.path);
        out.extend_from_slice(b",\n          \"line\": ");
        push_uint(out, u64::from(l.span.start.line));
        out.extend_from_slice(b",\n          \"column\": ");
        push_uint(out, u64::from(l.span.start.col));
        out.extend_from_slice(b",\n          \"end_line\": ");
        push_uint(out, u64::from(l.span.end.line));
        out.extend_from_slice(b",\n          \"end_column\": ");
        push_uint(out, u64::from(l.span.end.col));
        out.extend_from_slice(b",\n          \"label\": ");
        escape_str(out, &l.label);
        out.extend_from_slice(if i == 0 {
            b",\n          \"primary\": true\n        }"
        } else {
            b",\n          \"primary\": false\n        }"
        });
    }
    if f.locations.is_empty() {
        out.extend_from_slice(b"]\n    }");
    } else {
        out.extend_from_slice(b"\n      ]\n    }");
    }
}

/// The `groups` member.
fn groups(w: &mut Pretty<'_>, report: &Report) {
    w.key("groups");
    w.begin_array();
    for g in crate::group::group(&report.findings) {
        w.element();
        w.begin_object();
        w.field_str("kind", g.kind.as_str());
        w.field_str("rule", g.rule);
        w.key("rules");
        w.begin_array();
        for r in &g.rules {
            w.element();
            w.str(r);
        }
        w.end_array();
        w.field_str("severity", g.severity.as_str());
        w.field_uint("count", g.count() as u64);
        if let Some(p) = &g.path {
            w.field_str("path", p);
        }
        if let Some(n) = &g.name {
            w.field_str("name", n);
        }
        w.key("findings");
        w.begin_array();
        for &i in &g.findings {
            w.element();
            w.uint(i as u64);
        }
        w.end_array();
        if g.kind == crate::group::GroupKind::Secret {
            w.key("locations");
            w.begin_array();
            for &i in &g.findings {
                let Some(l) = report.findings[i].primary() else {
                    continue;
                };
                w.element();
                w.begin_object();
                w.field_str("path", &l.path);
                w.field_uint("line", u64::from(l.span.start.line));
                w.field_uint("column", u64::from(l.span.start.col));
                w.end_object();
            }
            w.end_array();
        }
        w.end_object();
    }
    w.end_array();
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
    groups(&mut w, report);
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
