//! `dockerfile-missing-healthcheck`: an image that serves traffic without a HEALTHCHECK.

use super::{final_instruction, serving_reason};
use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Dockerfile, Keyword};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags serving images (EXPOSE, a server command, a server base image) with no
/// HEALTHCHECK — unless a compose file or orchestra.yaml that builds the image declares a
/// healthcheck for it.
pub struct MissingHealthcheck;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-missing-healthcheck",
    title: "Serving image has no HEALTHCHECK",
    family: "dockerfile",
    severity: Severity::Low,
    confidence: Confidence::Medium,
    help: "Add a HEALTHCHECK that probes the service (`HEALTHCHECK CMD curl -fsS \
           http://localhost:8000/healthz || exit 1`), or declare one for the service in \
           compose / orchestra.yaml, so orchestrators can tell a hung process from a live one.",
};

impl Rule for MissingHealthcheck {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        if final_instruction(df, Keyword::Healthcheck).is_some() {
            return; // HEALTHCHECK NONE is a decision too.
        }
        let Some((reason, _)) = serving_reason(df) else {
            return;
        };
        let declared_elsewhere = cx.repo.service_builds().iter().any(|b| {
            b.dockerfile == cx.file.path() && b.healthcheck.as_ref().is_some_and(|h| !h.disabled)
        });
        if declared_elsewhere {
            return;
        }
        let Some(from) = df.final_stage().and_then(|s| df.instructions.get(s.from)) else {
            return;
        };
        out.report(
            cx.loc_range(from.range.clone(), "final stage"),
            format!("this image serves traffic ({reason}) but declares no HEALTHCHECK"),
        )
        .emit();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    const SERVING: &str = "FROM python:3.12-slim\nEXPOSE 8000\nCMD [\"uvicorn\", \"app:app\"]\n";

    #[test]
    fn flags_serving_images() {
        let f = run_rule(
            &super::MissingHealthcheck,
            &[
                ("api/Dockerfile", SERVING),
                ("web/Dockerfile", "FROM node:22\nCMD node server.js\n"),
                (
                    "proxy/Dockerfile",
                    "FROM nginx:1.27\nCOPY conf /etc/nginx/conf.d\n",
                ),
            ],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].message.contains("EXPOSE"));
    }

    #[test]
    fn accepts_healthchecks_workers_and_compose_healthchecks() {
        let compose = "services:\n  api:\n    build: ./api\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]\n";
        let f = run_rule(
            &super::MissingHealthcheck,
            &[
                ("api/Dockerfile", SERVING),
                ("docker-compose.yml", compose),
                (
                    "worker/Dockerfile",
                    "FROM python:3.12\nCMD [\"celery\", \"worker\"]\n",
                ),
                (
                    "web/Dockerfile",
                    "FROM node:22 AS base\nHEALTHCHECK CMD curl -f http://localhost/\nFROM base\nEXPOSE 3000\n",
                ),
                ("job/Dockerfile", "FROM nginx:1.27\nHEALTHCHECK NONE\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn orchestra_manifest_healthcheck_counts() {
        let manifest = "services:\n  api:\n    build:\n      context: services/api\n    healthcheck:\n      http: /health\n";
        let f = run_rule(
            &super::MissingHealthcheck,
            &[
                ("services/api/Dockerfile", SERVING),
                ("orchestra.yaml", manifest),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
