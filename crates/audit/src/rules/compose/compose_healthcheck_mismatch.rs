//! `compose-healthcheck-mismatch`: the compose healthcheck probes another path than the
//! image's own HEALTHCHECK.

use super::built_dockerfile;
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::parse::dockerfile::Keyword;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::dockerfile::{command_text, final_instruction};
use crate::views::{Compose, ComposeService, health_spec, http_path_in};

/// Flags a service whose `healthcheck` URL path differs from the HEALTHCHECK of the
/// Dockerfile it builds — one of the two is probably stale.
pub struct HealthcheckMismatch;

static META: RuleMeta = RuleMeta {
    id: "compose-healthcheck-mismatch",
    title: "Compose healthcheck disagrees with the image's HEALTHCHECK",
    family: "compose",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Make both probe the same endpoint (or drop one): the compose healthcheck overrides \
           the image's, so the Dockerfile's is dead code — or the compose one is stale.",
};

fn normalize(p: &str) -> &str {
    if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    }
}

impl Rule for HealthcheckMismatch {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    // orchestra.yaml services have the same `services.<name>.build|healthcheck` shape
    // (with `http: /path` probes), so both file kinds are checked.
    fn check_yaml(&self, cx: &FileCx<'_>, docs: &[Node], out: &mut Sink) {
        if matches!(
            cx.file.kind,
            FileKind::Compose | FileKind::OrchestraManifest
        ) {
            for root in docs {
                let compose = Compose::new(root);
                for svc in &compose.services {
                    self.check_compose_service(cx, &compose, svc, out);
                }
            }
        }
    }

    fn check_compose_service(
        &self,
        cx: &FileCx<'_>,
        _compose: &Compose<'_>,
        svc: &ComposeService<'_>,
        out: &mut Sink,
    ) {
        let Some(hc) = svc.node.get("healthcheck") else {
            return;
        };
        let spec = health_spec(hc);
        let Some(compose_path) = spec.http_path.as_deref() else {
            return;
        };
        if spec.disabled {
            return;
        }
        let Some((df_path, df)) = built_dockerfile(cx.repo, cx.file.dir(), svc) else {
            return;
        };
        let Some(inst) = final_instruction(df, Keyword::Healthcheck) else {
            return;
        };
        let Some(image_path) = http_path_in(&command_text(inst)) else {
            return;
        };
        if normalize(&image_path) == normalize(compose_path) {
            return;
        }
        let at = hc.get("test").unwrap_or(hc);
        let mut related = crate::finding::Location::whole_file(df_path, "");
        if let Some(file) = cx.repo.file(df_path) {
            related = crate::finding::Location::new(
                &file.source,
                file.source.span(inst.range.clone()),
                format!("image probes `{image_path}`"),
            );
        }
        out.report(
            cx.loc(at.span, format!("probes `{compose_path}`")),
            format!(
                "service `{}` probes `{compose_path}` but its image's HEALTHCHECK probes `{image_path}`",
                svc.name
            ),
        )
        .related(related)
        .emit();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    const DOCKERFILE: &str =
        "FROM python:3.12\nHEALTHCHECK CMD curl -fsS http://localhost:8000/healthz || exit 1\n";

    #[test]
    fn flags_different_paths() {
        let f = run_rule(
            &super::HealthcheckMismatch,
            &[
                ("api/Dockerfile", DOCKERFILE),
                (
                    "compose.yml",
                    "services:\n  api:\n    build: ./api\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]\n",
                ),
            ],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].locations[1].path, "api/Dockerfile");
        assert_eq!(f[0].locations[1].span.start.line, 2);
    }

    #[test]
    fn checks_orchestra_manifests_too() {
        let f = run_rule(
            &super::HealthcheckMismatch,
            &[
                ("api/Dockerfile", DOCKERFILE),
                (
                    "orchestra.yaml",
                    "services:\n  api:\n    build: api\n    healthcheck:\n      http: /ready\n",
                ),
            ],
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("`/ready`"));
    }

    #[test]
    fn accepts_same_path_or_no_http() {
        let f = run_rule(
            &super::HealthcheckMismatch,
            &[
                ("api/Dockerfile", DOCKERFILE),
                (
                    "compose.yml",
                    "services:\n  api:\n    build: ./api\n    healthcheck:\n      test: curl -f http://127.0.0.1:8000/healthz/\n  api2:\n    build: ./api\n    healthcheck:\n      test: [\"CMD\", \"pg_isready\"]\n",
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
