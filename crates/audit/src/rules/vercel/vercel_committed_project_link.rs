//! `vercel-committed-project-link`: `.vercel/project.json`, written by `vercel link`, is
//! in the repository.

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags a committed `.vercel/project.json`.
pub struct CommittedProjectLink;

static META: RuleMeta = RuleMeta {
    id: "vercel-committed-project-link",
    title: "`.vercel/` project link committed",
    family: "vercel",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "`git rm -r --cached .vercel` and add `.vercel` to .gitignore; in CI, link with \
           the `VERCEL_ORG_ID` and `VERCEL_PROJECT_ID` environment variables (or \
           `vercel link --yes`) instead.",
};

impl Rule for CommittedProjectLink {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        let path = cx.file.path();
        if cx.file.name() != "project.json" || cx.file.dir().rsplit('/').next() != Some(".vercel") {
            return;
        }
        let src = cx.source();
        out.report(
            cx.loc(src.file_span(), "project link"),
            format!(
                "`{path}` is committed: it pins the Vercel org and project ids of whoever \
                 ran `vercel link`, so every clone deploys to that project; `.vercel` should \
                 be ignored"
            ),
        )
        .emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn reports_the_project_link() {
        let f = run_rule(
            &CommittedProjectLink,
            &[
                (
                    "apps/web/.vercel/project.json",
                    "{\"orgId\": \"team_x\", \"projectId\": \"prj_y\"}\n",
                ),
                (
                    ".vercel/README.txt",
                    "Why do I have a folder named .vercel?\n",
                ),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].locations[0].path, "apps/web/.vercel/project.json");
        assert_eq!(f[0].severity, Severity::Low);
    }

    #[test]
    fn other_project_files_are_fine() {
        let f = run_rule(
            &CommittedProjectLink,
            &[
                ("vercel/project.json", "{}\n"),
                ("project.json", "{}\n"),
                ("docs/vercel.md", "never commit .vercel/project.json\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
