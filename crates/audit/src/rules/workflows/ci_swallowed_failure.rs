//! `ci-swallowed-failure`: a test or lint command in a workflow `run:` script whose failure
//! is swallowed (`pytest || true`, `npm run lint || echo ...`, `|| exit 0`, `|| :`, a
//! trailing `; true`, or `set +e` before it), so the step stays green when it fails.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;
use crate::views::{Job, Step, Workflow};

/// Flags test/lint commands whose exit status is thrown away.
pub struct SwallowedFailure;

static META: RuleMeta = RuleMeta {
    id: "ci-swallowed-failure",
    title: "Test or lint failure is swallowed in a CI script",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Let the command fail the step: drop `|| true` / `|| echo …` / `|| exit 0` / \
           `|| :` / `; true`, and `set +e` before it. To report without blocking, run it \
           in its own step and decide explicitly (a separate non-required job, or a \
           `continue-on-error` limited to an experimental matrix entry).",
};

/// Commands that run tests or linters. The shell builtin `test` is deliberately absent.
static CHECK: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:pytest|py\.test|jest|vitest|mocha|tox|nox|rspec|phpunit|nextest|eslint|ruff|flake8|pylint|mypy|pyright|golangci-lint|shellcheck|hadolint|stylelint|rubocop)\b|\bpython3?\s+-m\s+(?:pytest|unittest|mypy|pylint|flake8|ruff)\b|\bcargo\s+(?:test|clippy|nextest)\b|\bgo\s+(?:test|vet)\b|\b(?:npm|yarn|pnpm|bun)\s+(?:run\s+)?(?:test|lint|typecheck|type-check)\b|\bmake\s+(?:test|tests|check|lint)\b|\b(?:black|prettier|isort)\s+[^|;&]*--check\b|\btsc\b[^|;&]*--noEmit\b|\b(?:\./)?gradlew?\s+(?:test|check|lint)\b|\bmvn\s+[^|;&]*\b(?:test|verify)\b|\bplaywright\s+test\b|\bcypress\s+run\b",
    )
});

/// What follows the command: `|| true`, `|| :`, `|| exit 0`, `|| echo …`, or `; true` at the end.
static SWALLOW: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\|\|\s*(?:true\b|:(?:\s|$)|exit\s+0\b|echo\b)|;\s*true\s*$"));

/// Words that mean the command is being installed or fetched, not run.
static NOT_RUN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b(?:install|add|uninstall|remove|which|command\s+-v)\b"));

/// The exit status is inspected after `set +e`, so the failure is handled, not swallowed.
static STATUS_CHECK: LazyLock<Regex> = LazyLock::new(|| regex(r"\$\?|PIPESTATUS|\$\{\?\}"));

/// A logical shell line: the text, and the first physical line it starts on.
struct Line {
    text: String,
    first: String,
}

/// Joins backslash continuations and drops comments and blank lines.
fn logical_lines(script: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur: Option<Line> = None;
    for raw in script.lines() {
        let t = raw.trim();
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (t, false),
        };
        match cur.as_mut() {
            Some(l) => {
                l.text.push(' ');
                l.text.push_str(body);
            }
            None => {
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                cur = Some(Line {
                    text: body.to_owned(),
                    first: t.to_owned(),
                });
            }
        }
        if !cont && let Some(l) = cur.take() {
            out.push(l);
        }
    }
    out.extend(cur);
    out
}

/// The checked command whose failure the line throws away, if any.
fn swallowed_on_line(line: &str) -> Option<String> {
    let m = SWALLOW.find(line)?;
    // Only the command right before the `||`/`;`, not earlier `&&`-chained ones.
    let before = &line[..m.start()];
    let cmd = before
        .rsplit(['|', ';', '&'])
        .find(|s| !s.trim().is_empty())
        .unwrap_or(before)
        .trim();
    let cmd = cmd.trim_start_matches(['(', '{']).trim();
    if NOT_RUN.is_match(cmd) {
        return None;
    }
    CHECK.find(cmd).map(|c| c.as_str().to_owned())
}

/// A finding inside one script: the physical line to point at, and the message.
#[derive(Debug, PartialEq)]
pub(crate) struct Swallow {
    pub(crate) line: String,
    pub(crate) message: String,
}

/// Pure decision over one shell script.
pub(crate) fn scan_script(script: &str) -> Vec<Swallow> {
    let lines = logical_lines(script);
    let mut out = Vec::new();
    let mut set_e_off: Option<&Line> = None;
    let mut reported_set = false;
    for (i, l) in lines.iter().enumerate() {
        let t = l.text.trim();
        if t == "set +e" || t.starts_with("set +e ") || t.starts_with("set +e;") {
            set_e_off = Some(l);
            reported_set = false;
            continue;
        }
        if t.starts_with("set -e") || t.contains("set -o errexit") {
            set_e_off = None;
            continue;
        }
        if let Some(cmd) = swallowed_on_line(t) {
            out.push(Swallow {
                line: l.first.clone(),
                message: format!("failure of `{cmd}` is swallowed by `{}`", swallow_of(t)),
            });
            continue;
        }
        if let Some(off) = set_e_off
            && !reported_set
            && !NOT_RUN.is_match(t)
            && let Some(c) = CHECK.find(t)
        {
            // The script's own status check (`$?`, PIPESTATUS) after the command handles it;
            // so does the command being the script's last one (its status is the step's).
            let rest = &lines[i + 1..];
            let handled = rest.iter().any(|r| STATUS_CHECK.is_match(&r.text));
            if !handled && !rest.is_empty() {
                out.push(Swallow {
                    line: off.first.clone(),
                    message: format!(
                        "`set +e` before `{}`: its failure is ignored unless the exit \
                         status is checked",
                        c.as_str()
                    ),
                });
                reported_set = true;
            }
        }
    }
    out
}

fn swallow_of(line: &str) -> String {
    SWALLOW
        .find(line)
        .map(|m| m.as_str().trim().to_owned())
        .unwrap_or_default()
}

impl Rule for SwallowedFailure {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_step(
        &self,
        cx: &FileCx<'_>,
        _wf: &Workflow<'_>,
        job: &Job<'_>,
        step: &Step<'_>,
        out: &mut Sink,
    ) {
        let Some(run) = step.run() else { return };
        let Some(script) = run.as_str() else { return };
        let mut from = run.span.range().start;
        let end = run.span.range().end;
        for s in scan_script(script) {
            let span = cx
                .source()
                .find_in(from..end, &s.line)
                .or_else(|| cx.source().find_in(run.span.range(), &s.line))
                .unwrap_or(run.span);
            from = span.range().end.max(from);
            let what = step.name().map_or_else(
                || format!("step {}", step.index + 1),
                |n| format!("step `{n}`"),
            );
            out.report(
                cx.loc(span, "failure swallowed"),
                format!("{what} of job `{}`: {}", job.id, s.message),
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
    fn flags_swallowed_tests_and_lints_at_their_line() {
        let w = "on: push\njobs:\n  ci:\n    steps:\n      - name: Checks\n        run: |\n          echo start\n          pytest -q tests/ || true\n          npm run lint || echo \"Warning: lint failed\"\n          cargo clippy --all-targets -- -D warnings || exit 0\n          ruff check . || :\n          go test ./... ; true\n";
        let f = run_rule(&SwallowedFailure, &[(".github/workflows/ci.yml", w)]);
        assert_eq!(f.len(), 5, "{f:?}");
        let lines: Vec<u32> = f.iter().map(|x| x.locations[0].span.start.line).collect();
        assert_eq!(lines, vec![8, 9, 10, 11, 12]);
        assert!(f[0].message.contains("`pytest`"), "{}", f[0].message);
        assert!(f[0].message.contains("`|| true`"), "{}", f[0].message);
        assert!(f[1].message.contains("npm run lint"), "{}", f[1].message);
    }

    #[test]
    fn flags_set_plus_e_before_tests() {
        let w = "on: push\njobs:\n  ci:\n    steps:\n      - run: |\n          set +e\n          pytest\n          echo done\n";
        let f = run_rule(&SwallowedFailure, &[(".github/workflows/ci.yml", w)]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].locations[0].span.start.line, 6);
        assert!(f[0].message.contains("set +e"));
    }

    #[test]
    fn accepts_cleanup_installs_and_checked_status() {
        let w = "on: push\njobs:\n  ci:\n    steps:\n      - run: |\n          rm -f out.xml || true\n          docker rm -f db || true\n          test -f .env || echo missing\n          pip install pytest || true\n          pytest\n          npm run lint\n      - run: |\n          set +e\n          pytest\n          status=$?\n          exit $status\n      - run: |\n          set +e\n          pytest\n      - run: |\n          set +e\n          rm -rf build\n          set -e\n          cargo test\n";
        let f = run_rule(&SwallowedFailure, &[(".github/workflows/ci.yml", w)]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn joins_continuation_lines() {
        let s = scan_script("pytest \\\n  -q tests \\\n  || true\n");
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].line, "pytest \\");
    }
}
