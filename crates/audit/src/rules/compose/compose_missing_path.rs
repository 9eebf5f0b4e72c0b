//! `compose-missing-path`: a build context, Dockerfile, env file or bind mount that does
//! not exist.

use super::{interpolate, one_or_many};
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::repo::join_path;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Compose, ComposeService};

/// Checks relative paths in `build`, `env_file` and bind-mount `volumes` against the
/// repository (and the disk, for ignored files such as `.env`).
pub struct MissingPath;

static META: RuleMeta = RuleMeta {
    id: "compose-missing-path",
    title: "Path referenced by a service does not exist",
    family: "compose",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Fix the path (it is relative to the compose file's directory) or create the file; \
           mark optional env files with `required: false`.",
};

impl MissingPath {
    /// Report `node` (a path relative to `base`) when it does not exist; returns whether
    /// it exists (or cannot be checked).
    fn check(
        &self,
        cx: &FileCx<'_>,
        node: &Node,
        what: &str,
        svc: &str,
        base: &str,
        out: &mut Sink,
    ) -> bool {
        let Some(text) = node.as_str() else {
            return true;
        };
        let Some(text) = interpolate(text) else {
            return true;
        };
        if text.starts_with('/') || text.starts_with('~') || text.contains("://") {
            return true; // host paths and remote contexts cannot be checked here
        }
        let resolved = join_path(base, &text);
        let exists = resolved.as_deref().is_some_and(|p| cx.repo.exists(p));
        if !exists {
            out.report(
                cx.loc(node.span, "not found"),
                format!("{what} `{text}` of service `{svc}` does not exist"),
            )
            .emit();
        }
        exists
    }
}

impl Rule for MissingPath {
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
        let dir = cx.file.dir();
        if let Some(build) = svc.node.get("build") {
            let context = if build.is_map() {
                build.get("context")
            } else {
                Some(build)
            };
            let context_ok = match context {
                Some(ctx) => self.check(cx, ctx, "build context", svc.name, dir, out),
                None => true,
            };
            // A missing context already explains a missing Dockerfile.
            if context_ok
                && let (Some(df), Some(ctx_text)) = (
                    build.get("dockerfile"),
                    context.and_then(Node::as_str).or(Some(".")),
                )
                && !ctx_text.contains("://")
                && let Some(ctx_dir) = join_path(dir, ctx_text)
            {
                let _ = self.check(cx, df, "dockerfile", svc.name, &ctx_dir, out);
            }
        }
        if let Some(env) = svc.node.get("env_file") {
            for item in one_or_many(env) {
                let (node, required) = if item.is_map() {
                    (
                        item.get("path"),
                        item.get("required").and_then(Node::as_bool) != Some(false),
                    )
                } else {
                    (Some(item), true)
                };
                if let (Some(node), true) = (node, required) {
                    let _ = self.check(cx, node, "env_file", svc.name, dir, out);
                }
            }
        }
        if let Some(volumes) = svc.node.get("volumes") {
            for v in volumes.items() {
                if let Some(s) = v.as_str() {
                    let source = s.split(':').next().unwrap_or("");
                    if source.starts_with("./") || source.starts_with("../") || source == "." {
                        // Point at the whole entry; the source is its first part.
                        let node = Node::scalar(source, false, v.span);
                        let _ = self.check(cx, &node, "bind mount", svc.name, dir, out);
                    }
                } else if v.get_str("type") == Some("bind")
                    && let Some(src) = v.get("source")
                    && v.get("bind")
                        .and_then(|b| b.get("create_host_path"))
                        .and_then(Node::as_bool)
                        != Some(true)
                {
                    let _ = self.check(cx, src, "bind mount", svc.name, dir, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    const COMPOSE: &str = "services:\n  api:\n    build:\n      context: ./api\n      dockerfile: Dockerfile.prod\n    env_file:\n      - .env.api\n      - path: .env.optional\n        required: false\n    volumes:\n      - ./data:/data\n      - ../outside:/x\n      - cache:/cache\n      - /var/log:/host-log\n  web:\n    build: ./web\n    env_file: web.env\n";

    #[test]
    fn flags_missing_paths() {
        let f = run_rule(&super::MissingPath, &[("deploy/compose.yml", COMPOSE)]);
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(f.len(), 6, "{msgs:#?}");
        assert!(msgs.iter().any(|m| m.contains("build context `./api`")));
        assert!(msgs.iter().any(|m| m.contains("bind mount `../outside`")));
        assert!(msgs.iter().any(|m| m.contains("env_file `.env.api`")));
        assert!(msgs.iter().any(|m| m.contains("bind mount `./data`")));
        assert!(msgs.iter().any(|m| m.contains("build context `./web`")));
        assert!(msgs.iter().any(|m| m.contains("env_file `web.env`")));
    }

    #[test]
    fn flags_missing_dockerfile_in_existing_context() {
        let f = run_rule(
            &super::MissingPath,
            &[
                (
                    "compose.yml",
                    "services:\n  api:\n    build:\n      context: api\n      dockerfile: Dockerfile.prod\n",
                ),
                ("api/Dockerfile", "FROM x\n"),
            ],
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("dockerfile `Dockerfile.prod`"));
    }

    #[test]
    fn accepts_existing_paths() {
        let f = run_rule(
            &super::MissingPath,
            &[
                ("deploy/compose.yml", COMPOSE),
                ("deploy/api/Dockerfile.prod", "FROM x\n"),
                ("deploy/.env.api", "A=1\n"),
                ("deploy/data/.keep", ""),
                ("outside/.keep", ""),
                ("deploy/web/Dockerfile", "FROM x\n"),
                ("deploy/web.env", "A=1\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
