//! `--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it.
//!
//! A hand-written subset: every registered rule with its metadata and `helpUri`, results
//! with a physical location (1-based lines/columns, relative URIs under `%SRCROOT%`),
//! related locations, and `partialFingerprints` (our line-independent fingerprint) so
//! alerts follow moved code. `security-severity` maps our severities onto GitHub's scale.

use serde_json::{Value, json};

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

fn physical(l: &Location) -> Value {
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
                    "markdown": format!("{}\n\n[Documentation]({})", m.help, m.docs_url()),
                },
                "helpUri": m.docs_url(),
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
                    "informationUri": "https://github.com/orchestra-rs/orchestra",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// Write `report` as SARIF 2.1.0.
///
/// # Errors
/// Write failures.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    writeln!(out)
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
