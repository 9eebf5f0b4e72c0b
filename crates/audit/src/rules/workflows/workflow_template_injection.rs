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

fn scan(cx: &FileCx<'_>, script: &Node, what: &str, out: &mut Sink) {
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
        if bad.is_empty() {
            continue;
        }
        let span = cx
            .source()
            .find_in(cursor..script.span.end.offset, expr)
            .unwrap_or(script.span);
        cursor = cursor.max(span.end.offset);
        out.report(
            cx.loc(span, "untrusted input"),
            format!("`{}` is expanded into {what}", bad.join("`, `")),
        )
        .emit();
    }
}

fn check_steps(cx: &FileCx<'_>, steps: &[Node], out: &mut Sink) {
    for step in steps {
        if let Some(run) = step.get("run") {
            scan(cx, run, "a `run:` script", out);
        }
        let github_script = step
            .get_str("uses")
            .and_then(ActionRef::parse)
            .is_some_and(|a| a.repo.eq_ignore_ascii_case("actions/github-script"));
        if github_script && let Some(s) = step.get_path(&["with", "script"]) {
            scan(cx, s, "a `github-script` body", out);
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
                        check_steps(cx, steps.items(), out);
                    }
                }
            }
            if let Some(steps) = root.get_path(&["runs", "steps"]) {
                check_steps(cx, steps.items(), out);
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
    fn accepts_env_indirection_and_trusted_contexts() {
        let w = "on: issues\njobs:\n  a:\n    steps:\n      - env:\n          TITLE: ${{ github.event.issue.title }}\n        run: echo \"$TITLE\" ${{ github.sha }} ${{ github.event.issue.number }}\n";
        let f = run_rule(&TemplateInjection, &[(".github/workflows/a.yml", w)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
