//! `dockerfile-root-user`: the final stage runs as root (no USER, or USER root).

use super::final_image_stages;
use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::Dockerfile;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags images whose processes run as root.
pub struct RootUser;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-root-user",
    title: "Final stage runs as root",
    family: "dockerfile",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Create an unprivileged user and switch to it at the end of the final stage \
           (`RUN useradd --system --uid 10001 app` then `USER 10001`), so a compromised \
           process cannot own the container.",
};

/// Base images known to default to a non-root user.
fn base_is_non_root(name: &str, tag: Option<&str>) -> bool {
    tag.is_some_and(|t| t.contains("nonroot") || t.contains("rootless"))
        || name.starts_with("cgr.dev/chainguard/")
        || name.starts_with("bitnami/")
        || name.contains("/bitnami/")
}

fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user).trim();
    name == "root" || name == "0"
}

impl Rule for RootUser {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        let Some(last) = df.final_stage() else {
            return;
        };
        match df.effective_user(last) {
            Some((inst, user)) if is_root(&user) => {
                out.report(
                    cx.loc_range(inst.range.clone(), "switches to root"),
                    format!("the final stage runs as `{user}`"),
                )
                .confidence(Confidence::High)
                .emit();
            }
            Some(_) => {}
            None => {
                let root = final_image_stages(df).last().copied().unwrap_or(last);
                if root.base.is_scratch() && root.index != last.index {
                    return;
                }
                if base_is_non_root(&root.base.name, root.base.tag.as_deref()) {
                    return;
                }
                let from = df
                    .instructions
                    .get(last.from)
                    .map_or(0..0, |i| i.range.clone());
                out.report(
                    cx.loc_range(from, "final stage has no USER"),
                    "the final stage has no USER, so it runs as the base image's user \
                     (root for most images)",
                )
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_missing_user_and_user_root() {
        let f = run_rule(
            &super::RootUser,
            &[
                (
                    "a/Dockerfile",
                    "FROM python:3.12\nUSER app\nFROM python:3.12-slim\nCMD [\"app\"]\n",
                ),
                (
                    "b/Dockerfile",
                    "FROM python:3.12\nUSER app\nRUN x\nUSER root\n",
                ),
            ],
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].locations[0].path, "a/Dockerfile");
        assert_eq!(f[0].locations[0].span.start.line, 3);
        assert!(f[1].message.contains("`root`"));
        assert_eq!(f[1].locations[0].span.start.line, 4);
    }

    #[test]
    fn accepts_user_inherited_or_nonroot_bases() {
        let f = run_rule(
            &super::RootUser,
            &[
                (
                    "a/Dockerfile",
                    "FROM node:22 AS base\nUSER node\nFROM base\nCMD [\"node\"]\n",
                ),
                (
                    "b/Dockerfile",
                    "FROM gcr.io/distroless/static:nonroot\nCOPY app /app\n",
                ),
                ("c/Dockerfile", "FROM alpine\nUSER 10001:10001\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
