//! `--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it.
//!
//! A hand-written subset: every registered rule with its metadata and `helpUri`, results
//! with a physical location (1-based lines/columns, relative URIs under `%SRCROOT%`),
//! related locations, and `partialFingerprints` (our line-independent fingerprint) so
//! alerts follow moved code. `security-severity` maps our severities onto GitHub's scale.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::pretty::Pretty;

use crate::finding::{Location, Severity};
use crate::runner::Report;

/// The schema URI written in `$schema`.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub reads `security-severity` (0.0–10.0) to rank alerts.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// Start line, start column, end line, end column of a location's SARIF region.
fn region(l: &Location) -> (u32, u32, u32, u32) {
    // Whole-file locations have no line: point at the first line.
    let start_line = l.span.start.line.max(1);
    let start_col = l.span.start.col.max(1);
    let mut end_line = l.span.end.line.max(start_line);
    let mut end_col = l.span.end.col.max(1);
    if end_line == start_line && end_col <= start_col {
        end_col = start_col + 1;
    }
    if l.span.start.line == 0 {
        end_line = 1;
        end_col = 2;
    }
    (start_line, start_col, end_line, end_col)
}

fn physical(l: &Location) -> Value {
    let (start_line, start_col, end_line, end_col) = region(l);
    json!({
        "artifactLocation": { "uri": uri(&l.path), "uriBaseId": "%SRCROOT%" },
        "region": {
            "startLine": start_line,
            "startColumn": start_col,
            "endLine": end_line,
            "endColumn": end_col,
        }
    })
}

/// Percent-encode what a relative URI reference cannot hold.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// PascalCase name from a kebab-case id (`dockerfile-latest-tag` → `DockerfileLatestTag`).
/// The rule's whole page (embedded, so it needs no URL), or its one-line help.
fn help_markdown(m: &crate::rule::RuleMeta) -> String {
    crate::rule::docs_page(m.id).map_or_else(|| m.help.to_owned(), str::to_owned)
}

fn pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Build the SARIF log as a JSON value.
#[must_use]
pub fn to_value(report: &Report) -> Value {
    let rules: Vec<Value> = report
        .rules
        .iter()
        .map(|m| {
            // GitHub ranks only `security`-tagged rules by security-severity.
            let kind = if m.family.contains("drift") || m.family.contains("stale") {
                "maintainability"
            } else {
                "security"
            };
            let mut tags = vec![kind.to_string()];
            if !m.family.is_empty() {
                tags.push(m.family.to_string());
            }
            json!({
                "id": m.id,
                "name": pascal(m.id),
                "shortDescription": { "text": m.title },
                "fullDescription": { "text": format!("{} {}", m.title, m.help) },
                "help": {
                    "text": m.help,
                    "markdown": help_markdown(m),
                },
                "defaultConfiguration": { "level": level(m.severity) },
                "properties": {
                    "tags": tags,
                    "precision": m.confidence.as_str(),
                    "security-severity": security_severity(m.severity),
                },
            })
        })
        .collect();
    let index = |id: &str| report.rules.iter().position(|m| m.id == id);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let primary = &f.locations[0];
            let related: Vec<Value> = f.locations[1..]
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    json!({
                        "id": i + 1,
                        "physicalLocation": physical(l),
                        "message": { "text": if l.label.is_empty() { "related" } else { &l.label } },
                    })
                })
                .collect();
            let mut result = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": { "text": format!("{}\nFix: {}", f.message, f.help) },
                "locations": [{ "physicalLocation": physical(primary) }],
                "partialFingerprints": { "orchestraFingerprint/v1": f.fingerprint },
                "properties": {
                    "severity": f.severity.as_str(),
                    "confidence": f.confidence.as_str(),
                    "security-severity": security_severity(f.severity),
                },
            });
            if let Some(i) = index(f.rule) {
                result["ruleIndex"] = json!(i);
            }
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            result
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "orchestra-audit",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// Write `report` as SARIF 2.1.0: the same bytes as
/// `serde_json::to_writer_pretty(&to_value(report))` (object keys sorted, as
/// `serde_json::Value` maps are) and a final newline, written directly in 64 KiB chunks
/// instead of through a `Value` tree.
///
/// # Errors
/// Write failures.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut w = Pretty::new(out);
    w.begin_object();
    w.field_str("$schema", SCHEMA);
    w.key("runs");
    w.begin_array();
    w.element();
    w.begin_object();
    w.field_str("columnKind", "unicodeCodePoints");
    w.key("results");
    w.begin_array();
    let index: HashMap<&str, usize> = report
        .rules
        .iter()
        .enumerate()
        .rev() // the first position wins, like `position`
        .map(|(i, m)| (m.id, i))
        .collect();
    let mut text = String::new();
    for f in &report.findings {
        w.element();
        w.begin_object();
        w.field_str("level", level(f.severity));
        w.key("locations");
        w.begin_array();
        w.element();
        w.begin_object();
        w.key("physicalLocation");
        physical_to(&mut w, &f.locations[0]);
        w.end_object();
        w.end_array();
        w.key("message");
        w.begin_object();
        text.clear();
        text.push_str(&f.message);
        text.push_str("\nFix: ");
        text.push_str(&f.help);
        w.field_str("text", &text);
        w.end_object();
        w.key("partialFingerprints");
        w.begin_object();
        w.field_str("orchestraFingerprint/v1", &f.fingerprint);
        w.end_object();
        w.key("properties");
        w.begin_object();
        w.field_str("confidence", f.confidence.as_str());
        w.field_str("security-severity", security_severity(f.severity));
        w.field_str("severity", f.severity.as_str());
        w.end_object();
        if f.locations.len() > 1 {
            w.key("relatedLocations");
            w.begin_array();
            for (i, l) in f.locations[1..].iter().enumerate() {
                w.element();
                w.begin_object();
                w.field_uint("id", i as u64 + 1);
                w.key("message");
                w.begin_object();
                w.field_str(
                    "text",
                    if l.label.is_empty() {
                        "related"
                    } else {
                        &l.label
                    },
                );
                w.end_object();
                w.key("physicalLocation");
                physical_to(&mut w, l);
                w.end_object();
            }
            w.end_array();
        }
        w.field_str("ruleId", f.rule);
        if let Some(&i) = index.get(f.rule) {
            w.field_uint("ruleIndex", i as u64);
        }
        w.end_object();
    }
    w.end_array();
    w.key("tool");
    w.begin_object();
    w.key("driver");
    w.begin_object();
    w.field_str("name", "orchestra-audit");
    w.key("rules");
    w.begin_array();
    for m in &report.rules {
        w.element();
        w.begin_object();
        w.key("defaultConfiguration");
        w.begin_object();
        w.field_str("level", level(m.severity));
        w.end_object();
        w.key("fullDescription");
        w.begin_object();
        w.field_str("text", &format!("{} {}", m.title, m.help));
        w.end_object();
        w.key("help");
        w.begin_object();
        w.field_str("markdown", &help_markdown(m));
        w.field_str("text", m.help);
        w.end_object();
        w.field_str("id", m.id);
        w.field_str("name", &pascal(m.id));
        w.key("properties");
        w.begin_object();
        w.field_str("precision", m.confidence.as_str());
        w.field_str("security-severity", security_severity(m.severity));
        w.key("tags");
        w.begin_array();
        // GitHub ranks only `security`-tagged rules by security-severity.
        let kind = if m.family.contains("drift") || m.family.contains("stale") {
            "maintainability"
        } else {
            "security"
        };
        w.element();
        w.str(kind);
        if !m.family.is_empty() {
            w.element();
            w.str(m.family);
        }
        w.end_array();
        w.end_object();
        w.key("shortDescription");
        w.begin_object();
        w.field_str("text", m.title);
        w.end_object();
        w.end_object();
    }
    w.end_array();
    w.field_str("semanticVersion", env!("CARGO_PKG_VERSION"));
    w.end_object();
    w.end_object();
    w.end_object();
    w.end_array();
    w.field_str("version", "2.1.0");
    w.end_object();
    w.raw(b"\n");
    w.finish()
}

/// [`physical`], written directly (keys sorted).
fn physical_to(w: &mut Pretty<'_>, l: &Location) {
    let (start_line, start_col, end_line, end_col) = region(l);
    w.begin_object();
    w.key("artifactLocation");
    w.begin_object();
    w.field_str("uri", &uri(&l.path));
    w.field_str("uriBaseId", "%SRCROOT%");
    w.end_object();
    w.key("region");
    w.begin_object();
    w.field_uint("endColumn", u64::from(end_col));
    w.field_uint("endLine", u64::from(end_line));
    w.field_uint("startColumn", u64::from(start_col));
    w.field_uint("startLine", u64::from(start_line));
    w.end_object();
    w.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(pascal("dockerfile-latest-tag"), "DockerfileLatestTag");
        assert_eq!(uri("a b/ü.txt"), "a%20b/%C3%BC.txt");
    }
}
