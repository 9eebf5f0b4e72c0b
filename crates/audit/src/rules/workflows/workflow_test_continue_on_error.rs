//! `workflow-test-continue-on-error`: a test step or job with `continue-on-error: true`,
//! so failing tests never fail the build.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;
use crate::views::{Job, Workflow};

/// Flags `continue-on-error: true` on steps/jobs that run tests.
pub struct TestContinueOnError;

static META: RuleMeta = RuleMeta {
    id: "workflow-test-continue-on-error",
    title: "Test failures are ignored (continue-on-error)",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Remove `continue-on-error: true` so failing tests fail the check. For known \
           flaky tests, quarantine them explicitly (a marker or skip list) instead of \
           ignoring the whole suite; for an experimental matrix entry use \
           `continue-on-error: ${{ matrix.experimental }}`.",
};

static TEST: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\btests?\b|\bpytest\b|\bjest\b|\bvitest\b|\bmocha\b|\btox\b|\bnox\b|\brspec\b|\bunittest\b|\bnextest\b|\bcargo\s+test\b|\bgo\s+test\b|\bnpm\s+(?:run\s+)?test|\bplaywright\s+test\b|\bcypress\s+run\b",
    )
});

fn is_true(n: &Node) -> bool {
    n.as_bool() == Some(true) || n.as_str() == Some("true")
}

fn mentions_tests(texts: &[Option<&str>]) -> bool {
    texts.iter().flatten().any(|t| TEST.is_match(t))
}

impl Rule for TestContinueOnError {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_job(&self, cx: &FileCx<'_>, _wf: &Workflow<'_>, job: &Job<'_>, out: &mut Sink) {
        if let Some(e) = job.node.entry("continue-on-error")
            && is_true(&e.value)
            && mentions_tests(&[Some(job.id), job.node.get_str("name")])
        {
            out.report(
                cx.loc(e.key.span, "failures ignored"),
                format!("test job `{}` has `continue-on-error: true`", job.id),
            )
            .emit();
        }
        for step in &job.steps {
            let Some(e) = step.node.entry("continue-on-error") else {
                continue;
            };
            if !is_true(&e.value)
                || !mentions_tests(&[step.name(), step.run().and_then(Node::as_str)])
            {
                continue;
            }
            let what = step.name().map_or_else(
                || format!("step {}", step.index + 1),
                |n| format!("step `{n}`"),
            );
            out.report(
                cx.loc(e.key.span, "failures ignored"),
                format!(
                    "{what} of job `{}` runs tests with `continue-on-error: true`",
                    job.id
                ),
            )
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_ignored_test_failures() {
        let w = "on: push\njobs:\n  unit:\n    steps:\n      - name: Run tests\n        run: pytest -q\n        continue-on-error: true\n      - run: cargo test --workspace\n        continue-on-error: true\n  e2e-tests:\n    continue-on-error: true\n    steps: []\n";
        let f = run_rule(&TestContinueOnError, &[(".github/workflows/ci.yml", w)]);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].message.contains("step `Run tests`"));
        assert_eq!(f[0].locations[0].span.start.line, 7);
        assert!(f[1].message.contains("step 2"));
        assert!(f[2].message.contains("test job `e2e-tests`"));
    }

    #[test]
    fn accepts_other_steps_and_matrix_expressions() {
        let w = "on: push\njobs:\n  build:\n    steps:\n      - name: Upload coverage\n        run: codecov\n        continue-on-error: true\n      - run: pytest\n        continue-on-error: ${{ matrix.experimental }}\n      - run: pytest\n        continue-on-error: false\n";
        let f = run_rule(&TestContinueOnError, &[(".github/workflows/ci.yml", w)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
