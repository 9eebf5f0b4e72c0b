//! `committed-terraform-state`: Terraform state (`*.tfstate`, `*.tfstate.backup`) or a
//! saved plan (`*.tfplan`, `tfplan`) in the repository. State is read to say whether it
//! holds secret values (attributes named like passwords and keys with values,
//! `sensitive_attributes`, sensitive outputs): high when it does, medium otherwise.

use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::knowledge::secret_name_matches;
use crate::parse::{Document, Node, NodeKind};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::source::Span;

/// Reports committed Terraform state and plan files.
pub struct CommittedTerraformState;

static META: RuleMeta = RuleMeta {
    id: "committed-terraform-state",
    title: "Terraform state or plan committed",
    family: "hygiene",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Move state to a remote backend with encryption and locking (gcs, s3, azurerm, \
           Terraform Cloud), `git rm --cached` the file, add `*.tfstate*` and `*.tfplan` to \
           .gitignore, and rotate every secret the state held (it stays in git history).",
};

/// A saved plan (`terraform plan -out=tfplan`): a zip of the configuration, the prior
/// state and the variable values.
fn is_plan(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "tfplan" || lower.ends_with(".tfplan")
}

/// Words that make an attribute a secret in state, beyond the shared list.
const MORE_SECRET: &[&str] = &["secret_data", "client_key", "connection_string"];
/// Suffixes of attributes about a secret rather than holding one.
const MORE_NOT: &[&str] = &[
    "_version",
    "_required",
    "_rotation",
    "_count",
    "_prefix",
    "_suffix",
    "_format",
    "_algorithm",
    "_wo_version",
    "_arns",
    "_ids",
    "_names",
];

/// A value that names a secret (`projects/p/secrets/db`, an ARN) instead of holding it.
fn is_reference(value: &str) -> bool {
    value.starts_with("arn:") || value.starts_with("projects/") || value.contains("/secrets/")
}

/// What a state holds that is secret: attribute names (deduplicated, in file order) and
/// the span of the first one.
#[derive(Default)]
struct Secrets {
    names: Vec<String>,
    first: Option<Span>,
    sensitive_marks: bool,
}

impl Secrets {
    fn add(&mut self, name: &str, span: Span) {
        if self.first.is_none() {
            self.first = Some(span);
        }
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
    }
}

/// A string value (JSON strings are quoted scalars) that is not empty.
fn has_value(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Scalar { text, quoted } => *quoted && !text.trim().is_empty(),
        NodeKind::Seq(items) => items.iter().any(has_value),
        NodeKind::Map(entries) => entries.iter().any(|e| has_value(&e.value)),
    }
}

fn scan(node: &Node, out: &mut Secrets) {
    for e in node.entries() {
        let key = e.key_str();
        if key == "sensitive_attributes" || key == "sensitive_values" {
            if !e.value.items().is_empty() || !e.value.entries().is_empty() {
                out.sensitive_marks = true;
                if out.first.is_none() {
                    out.first = Some(e.key.span);
                }
            }
            continue;
        }
        if secret_name_matches(key, MORE_SECRET, MORE_NOT) {
            let held = match e.value.as_str() {
                Some(v) if matches!(e.value.kind, NodeKind::Scalar { quoted: true, .. }) => {
                    !v.trim().is_empty() && !is_reference(v)
                }
                Some(_) => false,
                None => !e.value.is_null() && has_value(&e.value),
            };
            if held {
                out.add(key, e.key.span);
                continue;
            }
        }
        scan(&e.value, out);
    }
    for item in node.items() {
        scan(item, out);
    }
    // `outputs.<name>` with `"sensitive": true` and a value.
    if node.get("sensitive").and_then(Node::as_bool) == Some(true)
        && node.get("value").is_some_and(has_value)
    {
        out.sensitive_marks = true;
        if out.first.is_none() {
            out.first = Some(node.span);
        }
    }
}

impl Rule for CommittedTerraformState {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        let name = cx.file.name();
        let src = cx.source();
        let binary = matches!(cx.file.doc, Document::Binary);
        if cx.file.kind != FileKind::TerraformState {
            if is_plan(name) {
                out.report(
                    cx.loc(src.file_span(), "Terraform plan"),
                    format!(
                        "saved Terraform plan `{name}` is committed; a plan file holds the \
                         configuration, the prior state and the variable values, secrets \
                         included"
                    ),
                )
                .redact()
                .emit();
            }
            return;
        }
        if src.text.trim().is_empty() && !binary {
            return;
        }
        let mut secrets = Secrets::default();
        if let Document::Json(root) = &cx.file.doc {
            scan(root, &mut secrets);
        }
        if secrets.first.is_none() {
            out.report(
                cx.loc(src.file_span(), "Terraform state"),
                format!(
                    "Terraform state `{name}` is committed; state holds every resource \
                     attribute in plain text"
                ),
            )
            .redact()
            .emit();
            return;
        }
        let mut what = Vec::new();
        if !secrets.names.is_empty() {
            let shown: Vec<String> = secrets
                .names
                .iter()
                .take(5)
                .map(|n| format!("`{n}`"))
                .collect();
            let more = if secrets.names.len() > 5 { ", …" } else { "" };
            what.push(format!("{}{more}", shown.join(", ")));
        }
        if secrets.sensitive_marks {
            what.push("values Terraform marks sensitive".to_string());
        }
        let span = secrets.first.unwrap_or_else(|| src.file_span());
        out.report(
            cx.loc(span, "secret values"),
            format!(
                "Terraform state `{name}` is committed and holds secret values in plain \
                 text ({})",
                what.join("; ")
            ),
        )
        .severity(Severity::High)
        .redact()
        .emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ALNUM, random_text, run_rule};

    fn state(attributes: &str, sensitive: &str) -> String {
        format!(
            "{{\n  \"version\": 4,\n  \"resources\": [\n    {{\n      \"type\": \"x\",\n      \
             \"instances\": [\n        {{\n          \"attributes\": {{{attributes}}},\n          \
             \"sensitive_attributes\": [{sensitive}]\n        }}\n      ]\n    }}\n  ]\n}}\n"
        )
    }

    #[test]
    fn state_with_secret_attributes_is_high() {
        let pw = random_text(ALNUM, 20, 7);
        let text = state(
            &format!("\"name\": \"db\", \"password\": \"{pw}\", \"password_version\": \"2\""),
            "",
        );
        let f = run_rule(
            &CommittedTerraformState,
            &[("infra/terraform.tfstate", &text)],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::High);
        assert!(f[0].message.contains("`password`"), "{}", f[0].message);
        assert!(!f[0].message.contains("password_version"));
        assert!(!f[0].message.contains(&pw));
        assert_eq!(f[0].locations[0].span.start.line, 8);
        assert!(f[0].locations[0].redact);
    }

    #[test]
    fn sensitive_attributes_and_outputs_count() {
        let marked = state(
            "\"result\": \"abc\"",
            "[{\"type\": \"get_attr\", \"value\": \"result\"}]",
        );
        let output = "{\"version\": 4, \"outputs\": {\"db\": {\"value\": \"x\", \"sensitive\": true}}, \"resources\": []}";
        let f = run_rule(
            &CommittedTerraformState,
            &[
                ("a/terraform.tfstate", &marked),
                ("b/terraform.tfstate.backup", output),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|x| x.severity == Severity::High));
        assert!(f[0].message.contains("marks sensitive"));
    }

    #[test]
    fn state_without_secrets_is_medium_and_plans_are_reported() {
        let refs = state(
            "\"secret\": \"projects/p/secrets/db\", \"secret_id\": \"db\", \"password\": \"\", \"kms_key_id\": \"k\"",
            "",
        );
        let f = run_rule(
            &CommittedTerraformState,
            &[
                ("terraform.tfstate", &refs),
                ("plans/prod.tfplan", "PK"),
                ("tfplan", "PK"),
            ],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().all(|x| x.severity == Severity::Medium), "{f:?}");
        assert!(
            f.iter()
                .any(|x| x.message.contains("saved Terraform plan `prod.tfplan`"))
        );
    }

    #[test]
    fn other_files_and_empty_state_are_fine() {
        let f = run_rule(
            &CommittedTerraformState,
            &[
                ("terraform.tfstate", ""),
                ("infra/main.tf", "resource \"x\" \"y\" {}\n"),
                ("docs/tfplan.md", "run terraform plan -out=tfplan\n"),
                ("README.md", "never commit terraform.tfstate\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
