//! `workflow-template-injection`: attacker-controlled event data (`${{
//! github.event.issue.title }}`, `github.head_ref`, …) expanded inside a `run:` script or a
//! `github-script` body, where it becomes code.

use super::{ActionRef, untrusted_contexts};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `${{ <untrusted> }}` in `run:` and `actions/github-script` `script:`.
pub struct TemplateInjection;

static META: RuleMeta = RuleMeta {
    id: "workflow-template-injection",
    title: "Untrusted input expanded into a script",
    family: "workflows",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Pass the value through an environment variable and quote it in the script: \
           `env: TITLE: ${{ github.event.issue.title }}` then `run: echo \"$TITLE\"`. \
           `${{ }}` is pasted into the script before the shell runs, so a crafted title, \
           branch name or comment runs as code.",
};

/// Inputs a caller types in (`workflow_dispatch`, `workflow_call`, `repository_dispatch`
/// payloads) expanded in `expr`: `github.event.client_payload.*`, and string inputs as
/// `inputs.*` / `github.event.inputs.*`. People with write access choose them, so these
/// are medium.
fn payload_contexts(expr: &str, root: Option<&Node>) -> Vec<String> {
    let lower = expr.to_ascii_lowercase();
    let mut out = Vec::new();
    if let Some(i) = lower.find("github.event.client_payload") {
        let end = lower[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map_or(lower.len(), |e| i + e);
        out.push(expr[i..end].to_string());
    }
    let Some(on) = root.and_then(|r| r.get("on").or_else(|| r.get("true"))) else {
        return out;
    };
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(k) = lower[from..].find("inputs.") {
        let at = from + k;
        from = at + 7;
        // `inputs.x` or `github.event.inputs.x`, not `steps.a.outputs.x` or `foo_inputs.x`.
        let prefix = &lower[..at];
        let whole = prefix.ends_with("github.event.")
            || at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric() || matches!(bytes[at - 1], b'.' | b'_'));
        if !whole {
            continue;
        }
        let name_end = lower[from..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
            .map_or(lower.len(), |e| from + e);
        let name = &expr[from..name_end];
        if name.is_empty() {
            continue;
        }
        let typed = |event: &str| {
            on.get_path(&[event, "inputs", name]).map(|i| {
                i.get_str("type")
                    .unwrap_or(if event == "workflow_dispatch" {
                        "string"
                    } else {
                        ""
                    })
            })
        };
        let kind = typed("workflow_dispatch").or_else(|| typed("workflow_call"));
        if kind == Some("string") {
            let start = if prefix.ends_with("github.event.") {
                at - 13
            } else {
                at
            };
            out.push(expr[start..name_end].to_string());
        }
    }
    out
}

fn scan(cx: &FileCx<'_>, root: Option<&Node>, script: &Node, what: &str, out: &mut Sink) {
    let Some(text) = script.as_str() else { return };
    if !text.contains("${{") {
        return;
    }
    let mut from = 0;
    let mut cursor = script.span.start.offset;
    while let Some(i) = text[from..].find("${{") {
        let start = from + i;
        let Some(len) = text[start..].find("}}") else {
            break;
        };
        let expr = &text[start..start + len + 2];
        from = start + len + 2;
        let bad = untrusted_contexts(expr);
        let payload = if bad.is_empty() {
            payload_contexts(expr, root)
        } else {
            Vec::new()
        };
        if bad.is_empty() && payload.is_empty() {
            continue;
        }
        let span = cx
            .source()
            .find_in(cursor..script.span.end.offset, expr)
            .unwrap_or(script.span);
        cursor = cursor.max(span.end.offset);
        if bad.is_empty() {
            out.report(
                cx.loc(span, "caller input"),
                format!(
                    "`{}` (chosen by whoever triggers the workflow) is expanded into {what}",
                    payload.join("`, `")
                ),
            )
            .severity(Severity::Medium)
            .emit();
            continue;
        }
        out.report(
            cx.loc(span, "untrusted input"),
            format!("`{}` is expanded into {what}", bad.join("`, `")),
        )
        .emit();
    }
}

fn check_steps(cx: &FileCx<'_>, root: Option<&Node>, steps: &[Node], out: &mut Sink) {
    for step in steps {
        if let Some(run) = step.get("run") {
            scan(cx, root, run, "a `run:` script", out);
        }
        let github_script = step
            .get_str("uses")
            .and_then(ActionRef::parse)
            .is_some_and(|a| a.repo.eq_ignore_ascii_case("actions/github-script"));
        if github_script && let Some(s) = step.get_path(&["with", "script"]) {
            scan(cx, root, s, "a `github-script` body", out);
        }
    }
}

impl Rule for TemplateInjection {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_yaml(&self, cx: &FileCx<'_>, docs: &[Node], out: &mut Sink) {
        if !matches!(cx.file.kind, FileKind::Workflow | FileKind::Action) {
            return;
        }
        for root in docs {
            if let Some(jobs) = root.get("jobs") {
                for job in jobs.entries() {
                    if let Some(steps) = job.value.get("steps") {
                        check_steps(cx, Some(root), steps.items(), out);
                    }
                }
            }
            if let Some(steps) = root.get_path(&["runs", "steps"]) {
                check_steps(cx, None, steps.items(), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_untrusted_expressions_in_scripts() {
        let w = "on: [issues, pull_request_target]\njobs:\n  triage:\n    steps:\n      - run: |\n          echo \"New issue: ${{ github.event.issue.title }}\"\n          git checkout ${{ github.head_ref }}\n      - uses: actions/github-script@v7\n        with:\n          script: |\n            const body = `${{ github.event.comment.body }}`\n";
        let f = run_rule(&TemplateInjection, &[(".github/workflows/triage.yml", w)]);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(
            (
                f[0].locations[0].span.start.line,
                f[0].locations[0].span.start.col
            ),
            (6, 28)
        );
        assert!(f[1].message.contains("github.head_ref"));
        assert!(f[2].message.contains("github-script"));
    }

    #[test]
    fn flags_payloads_and_string_inputs() {
        let w = "on:\n  repository_dispatch:\n  workflow_dispatch:\n    inputs:\n      tag:\n        description: tag\n      dry:\n        type: boolean\n      env:\n        type: choice\n        options: [a, b]\njobs:\n  a:\n    steps:\n      - run: |\n          echo ${{ github.event.client_payload.ref }}\n          git tag ${{ inputs.tag }} ${{ github.event.inputs.tag }}\n          echo ${{ inputs.dry }} ${{ inputs.env }} ${{ steps.x.outputs.tag }}\n";
        let f = run_rule(&TemplateInjection, &[(".github/workflows/a.yml", w)]);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(
            f[0].message.contains("`github.event.client_payload.ref`"),
            "{}",
            f[0].message
        );
        assert!(f[1].message.contains("`inputs.tag`"));
        assert!(f[2].message.contains("`github.event.inputs.tag`"));
        assert!(f.iter().all(|x| x.severity == Severity::Medium));
        assert_eq!(f[2].locations[0].span.start.line, 17);
    }

    #[test]
    fn reads_workflow_call_input_types() {
        let w = "on:\n  workflow_call:\n    inputs:\n      image:\n        type: string\n      replicas:\n        type: number\njobs:\n  a:\n    steps:\n      - run: deploy ${{ inputs.image }} ${{ inputs.replicas }}\n";
        let f = run_rule(&TemplateInjection, &[(".github/workflows/a.yml", w)]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("`inputs.image`"));
    }

    #[test]
    fn accepts_env_indirection_and_trusted_contexts() {
        let w = "on: issues\njobs:\n  a:\n    steps:\n      - env:\n          TITLE: ${{ github.event.issue.title }}\n        run: echo \"$TITLE\" ${{ github.sha }} ${{ github.event.issue.number }}\n";
        let f = run_rule(&TemplateInjection, &[(".github/workflows/a.yml", w)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
