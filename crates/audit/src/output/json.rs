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

use std::collections::BTreeMap;

use serde::Serialize;

use super::meta_index;
use crate::finding::{Confidence, Severity};
use crate::runner::Report;

/// The schema version written in `version`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    tool: Tool,
    findings: Vec<JsonFinding<'a>>,
    summary: Summary<'a>,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    title: &'a str,
    severity: Severity,
    confidence: Confidence,
    message: &'a str,
    help: &'a str,
    docs: String,
    fingerprint: &'a str,
    locations: Vec<JsonLocation<'a>>,
}

#[derive(Serialize)]
struct JsonLocation<'a> {
    path: &'a str,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    label: &'a str,
    primary: bool,
}

#[derive(Serialize)]
struct Summary<'a> {
    files_scanned: usize,
    findings: usize,
    by_severity: BTreeMap<&'static str, usize>,
    suppressed: Suppressed,
    notes: &'a [String],
}

#[derive(Serialize)]
struct Suppressed {
    inline: usize,
    config: usize,
    baseline: usize,
}

/// Write `report` as JSON.
///
/// # Errors
/// Write failures.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let metas = meta_index(report);
    let findings = report
        .findings
        .iter()
        .map(|f| {
            let meta = metas.get(f.rule);
            JsonFinding {
                rule: f.rule,
                title: meta.map_or("", |m| m.title),
                severity: f.severity,
                confidence: f.confidence,
                message: &f.message,
                help: &f.help,
                docs: meta.map(|m| m.docs_url()).unwrap_or_default(),
                fingerprint: &f.fingerprint,
                locations: f
                    .locations
                    .iter()
                    .enumerate()
                    .map(|(i, l)| JsonLocation {
                        path: &l.path,
                        line: l.span.start.line,
                        column: l.span.start.col,
                        end_line: l.span.end.line,
                        end_column: l.span.end.col,
                        label: &l.label,
                        primary: i == 0,
                    })
                    .collect(),
            }
        })
        .collect();
    let mut by_severity = BTreeMap::new();
    for s in Severity::ALL {
        by_severity.insert(
            s.as_str(),
            report.findings.iter().filter(|f| f.severity == s).count(),
        );
    }
    let doc = JsonReport {
        version: SCHEMA_VERSION,
        tool: Tool {
            name: "orchestra-audit",
            version: env!("CARGO_PKG_VERSION"),
        },
        findings,
        summary: Summary {
            files_scanned: report.files_scanned,
            findings: report.findings.len(),
            by_severity,
            suppressed: Suppressed {
                inline: report.suppressed.inline,
                config: report.suppressed.config,
                baseline: report.suppressed.baseline,
            },
            notes: &report.notes,
        },
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
