//! `dockerfile-eol-base`: a base image whose upstream support has ended.

use crate::finding::{Confidence, Severity};
use crate::knowledge::end_of_life;
use crate::parse::dockerfile::{Dockerfile, Stage};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `FROM node:16`, `FROM python:3.7-slim`, `FROM python:3.12-buster`, ….
pub struct EolBase;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-eol-base",
    title: "Base image is past its end of life",
    family: "dockerfile",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Move to a supported release of the base image (e.g. python:3.12-slim, \
           node:22-alpine, a bookworm-based tag): end-of-life images get no security fixes.",
};

impl Rule for EolBase {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_stage(&self, cx: &FileCx<'_>, _df: &Dockerfile, stage: &Stage, out: &mut Sink) {
        if stage.base_stage.is_some() || stage.base.has_variables() {
            return;
        }
        if let Some(eol) = end_of_life(&stage.base, cx.repo.settings.today) {
            out.report(
                cx.loc_range(stage.base_range.clone(), "end of life"),
                format!(
                    "base image `{}` is {}, which reached end of life on {}",
                    stage.base.raw, eol.what, eol.since
                ),
            )
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Date;
    use crate::repo::Settings;
    use crate::testing::run_rule_with;

    fn settings() -> Settings {
        Settings {
            today: Date::parse("2026-01-15").unwrap(),
            ..Settings::default()
        }
    }

    #[test]
    fn flags_dead_versions_and_codenames() {
        let f = run_rule_with(
            &super::EolBase,
            &[(
                "Dockerfile",
                "FROM node:16-alpine AS web\nFROM python:3.12-slim-buster\n",
            )],
            settings(),
        );
        assert_eq!(f.len(), 2);
        assert!(f[0].message.contains("node 16"));
        assert!(f[0].message.contains("2023-09-11"));
        assert!(f[1].message.contains("Debian buster"));
    }

    #[test]
    fn accepts_supported_versions() {
        let f = run_rule_with(
            &super::EolBase,
            &[(
                "Dockerfile",
                "ARG PY=3.13\nFROM python:${PY}-slim\nFROM node:22\nFROM node:16 AS x\nFROM x\n",
            )],
            settings(),
        );
        assert_eq!(f.len(), 1, "only node:16 itself: {f:?}");
    }

    #[test]
    fn depends_on_the_date() {
        let mut s = settings();
        s.today = Date::parse("2023-01-01").unwrap();
        let f = run_rule_with(&super::EolBase, &[("Dockerfile", "FROM node:16\n")], s);
        assert!(f.is_empty());
    }
}
