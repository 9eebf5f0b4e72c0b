//! `compose-missing-healthcheck`: a service without a healthcheck.

use super::built_dockerfile;
use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::Keyword;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::dockerfile::final_instruction;
use crate::views::{Compose, ComposeService};

/// Flags services with no `healthcheck:` whose image (when built here) has no
/// HEALTHCHECK either.
pub struct MissingHealthcheck;

static META: RuleMeta = RuleMeta {
    id: "compose-missing-healthcheck",
    title: "Service has no healthcheck",
    family: "compose",
    severity: Severity::Low,
    confidence: Confidence::Medium,
    help: "Add a `healthcheck:` (e.g. `test: [\"CMD\", \"curl\", \"-fsS\", \
           \"http://localhost:8000/healthz\"]`) so `depends_on: condition: service_healthy` \
           and restarts work; use `disable: true` to say a service has none on purpose.",
};

impl Rule for MissingHealthcheck {
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
        if !svc.node.is_map() || svc.node.get("healthcheck").is_some() {
            return;
        }
        // One-shot jobs (migrations, seeders) say so with their restart policy.
        let restart = svc.node.get_str("restart").unwrap_or("");
        let deploy_restart = svc
            .node
            .get_path(&["deploy", "restart_policy", "condition"])
            .and_then(crate::parse::Node::as_str)
            .unwrap_or("");
        if matches!(restart, "no" | "on-failure")
            || restart.starts_with("on-failure:")
            || matches!(deploy_restart, "none" | "on-failure")
        {
            return;
        }
        if let Some((_, df)) = built_dockerfile(cx.repo, cx.file.dir(), svc)
            && final_instruction(df, Keyword::Healthcheck).is_some()
        {
            return;
        }
        out.report(
            cx.loc(svc.key.span, "no healthcheck"),
            format!("service `{}` has no healthcheck", svc.name),
        )
        .emit();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_services_without_healthcheck() {
        let f = run_rule(
            &super::MissingHealthcheck,
            &[(
                "docker-compose.yml",
                "services:\n  db:\n    image: postgres:16\n  api:\n    build: .\n",
            )],
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].locations[0].span.start.line, 2);
    }

    #[test]
    fn accepts_declared_disabled_or_image_healthchecks() {
        let f = run_rule(
            &super::MissingHealthcheck,
            &[
                (
                    "compose.yaml",
                    "x-hc: &hc\n  healthcheck:\n    test: [\"CMD\", \"true\"]\nservices:\n  db:\n    <<: *hc\n    image: postgres:16\n  job:\n    image: busybox\n    healthcheck:\n      disable: true\n  migrate:\n    image: app:1\n    restart: \"no\"\n  api:\n    build: ./api\n",
                ),
                (
                    "api/Dockerfile",
                    "FROM x\nHEALTHCHECK CMD curl -f http://localhost/\n",
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
