//! `compose-latest-tag`: a service image without a tag, or tagged `latest`.

use super::interpolate;
use crate::finding::{Confidence, Severity};
use crate::parse::ImageRef;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Compose, ComposeService};

/// Flags `image: redis` and `image: app:${TAG:-latest}`. Images a service also builds
/// (`build:` + `image:` names the result) are skipped.
pub struct LatestTag;

static META: RuleMeta = RuleMeta {
    id: "compose-latest-tag",
    title: "Service image is untagged or uses `latest`",
    family: "compose",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Pin the image to a version tag (redis:7.4-alpine), ideally with its digest, so \
           `docker compose pull` cannot silently change what runs.",
};

impl Rule for LatestTag {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_compose_service(
        &self,
        cx: &FileCx<'_>,
        _compose: &Compose<'_>,
        svc: &ComposeService<'_>,
        out: &mut Sink,
    ) {
        if svc.node.get("build").is_some() {
            return;
        }
        let Some(node) = svc.image() else { return };
        let Some(text) = node.as_str() else { return };
        let Some(resolved) = interpolate(text) else {
            return;
        };
        let image = ImageRef::parse(&resolved);
        if image.digest.is_some() {
            return;
        }
        let message = match image.tag.as_deref() {
            None => format!(
                "service `{}` uses `{}` without a tag, so `latest`",
                svc.name, image.name
            ),
            Some("latest") => format!("service `{}` uses `{}:latest`", svc.name, image.name),
            Some(_) => return,
        };
        out.report(cx.loc(node.span, "unpinned"), message).emit();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_untagged_latest_and_latest_defaults() {
        let f = run_rule(
            &super::LatestTag,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: redis\n  b:\n    image: \"ghcr.io/o/b:latest\"\n  c:\n    image: ghcr.io/o/c:${TAG:-latest}\n",
            )],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(
            (
                f[0].locations[0].span.start.line,
                f[0].locations[0].span.start.col
            ),
            (3, 12)
        );
    }

    #[test]
    fn accepts_pinned_built_and_deploy_time_tags() {
        let f = run_rule(
            &super::LatestTag,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: redis:7.4\n  b:\n    build: .\n    image: myapp\n  c:\n    image: ghcr.io/o/c:${TAG}\n  d:\n    image: alpine@sha256:abc\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
