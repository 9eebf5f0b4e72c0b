//! `parse-error`: a file that cannot be parsed is a finding of its own, never silence.

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Reports every parse issue of every file.
pub struct ParseError;

static META: RuleMeta = RuleMeta {
    id: "parse-error",
    title: "File cannot be parsed",
    family: "",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Fix the syntax error: the tools that read this file will fail too, and no other \
           rule could check it.",
};

impl Rule for ParseError {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    // Overrides the general hook: issues exist for every format.
    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        for issue in &cx.file.issues {
            out.report(cx.loc(issue.span, "here"), issue.message.clone())
                .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn reports_broken_yaml_and_not_valid_yaml() {
        let f = run_rule(
            &super::ParseError,
            &[
                ("docker-compose.yml", "services:\n  a: [\n"),
                ("compose.yaml", "services: {}\n"),
            ],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].locations[0].path, "docker-compose.yml");
    }

    #[test]
    fn reports_unknown_dockerfile_instruction() {
        let f = run_rule(&super::ParseError, &[("Dockerfile", "FROM x\nFOO bar\n")]);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("unknown instruction `FOO`"));
        assert_eq!(f[0].locations[0].span.start.line, 2);
    }
}
