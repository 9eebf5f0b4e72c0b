//! `dockerfile-latest-tag`: a base image without a tag, or tagged `latest`.

use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Dockerfile, Stage};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `FROM python` and `FROM python:latest`.
pub struct LatestTag;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-latest-tag",
    title: "Base image is untagged or uses `latest`",
    family: "dockerfile",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Pin the base image to a version tag (python:3.12-slim), or better a digest \
           (python:3.12-slim@sha256:…), so builds are reproducible.",
};

impl Rule for LatestTag {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_stage(&self, cx: &FileCx<'_>, _df: &Dockerfile, stage: &Stage, out: &mut Sink) {
        let base = &stage.base;
        // Stages built on stages, scratch and unresolved `$VAR` bases are not pulled as-is.
        if stage.base_stage.is_some() || base.is_scratch() || base.has_variables() {
            return;
        }
        let message = match (base.tag.as_deref(), &base.digest) {
            (_, Some(_)) => return,
            (None, None) => format!(
                "base image `{}` has no tag, so it means `latest`",
                base.name
            ),
            (Some("latest"), None) => format!("base image `{}` uses the `latest` tag", base.name),
            _ => return,
        };
        out.report(cx.loc_range(stage.base_range.clone(), "unpinned"), message)
            .emit();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_untagged_and_latest() {
        let f = run_rule(
            &super::LatestTag,
            &[(
                "Dockerfile",
                "FROM python AS build\nFROM nginx:latest\nCOPY --from=build /a /a\n",
            )],
        );
        assert_eq!(f.len(), 2);
        assert_eq!(
            (
                f[0].locations[0].span.start.line,
                f[0].locations[0].span.start.col
            ),
            (1, 6)
        );
        assert!(f[1].message.contains("`latest`"));
    }

    #[test]
    fn accepts_tags_digests_stages_and_scratch() {
        let f = run_rule(
            &super::LatestTag,
            &[(
                "Dockerfile",
                "ARG PY=3.12\nFROM python:${PY}-slim AS build\nFROM build AS test\nFROM alpine@sha256:0123\nFROM scratch\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
