//! `dockerfile-copy-env-without-dockerignore`: `COPY . .` ships `.env` files into the image.

use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Dockerfile, Form, Keyword};
use crate::repo::join_path;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `COPY . .` (the whole build context) when the context has no `.dockerignore` and
/// holds `.env` files — which `.gitignore` does not keep out of a Docker build.
pub struct CopyEnvWithoutDockerignore;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-copy-env-without-dockerignore",
    title: "`COPY . .` with .env files and no .dockerignore",
    family: "dockerfile",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Add a .dockerignore next to the build context root listing `.env*` (and .git, \
           node_modules, …), or copy only what the image needs (`COPY src/ ./src/`).",
};

/// Common env file names checked on disk too: they are usually gitignored, so the walk
/// does not see them, but `docker build` still sends them.
const ENV_NAMES: &[&str] = &[
    ".env",
    ".env.local",
    ".env.production",
    ".env.prod",
    ".env.development",
];

fn is_template(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["example", "sample", "template", "dist", "defaults"]
        .iter()
        .any(|t| n.ends_with(t))
}

impl Rule for CopyEnvWithoutDockerignore {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        let copies_all = df.instructions.iter().filter(|i| {
            matches!(i.keyword, Keyword::Copy | Keyword::Add) && i.flag("from").is_none() && {
                let words = match &i.form {
                    Form::Exec(w) => w.as_slice(),
                    Form::Shell => i.words(),
                };
                words.split_last().is_some_and(|(_, srcs)| {
                    srcs.iter()
                        .any(|w| matches!(w.text.as_str(), "." | "./" | "./."))
                })
            }
        });
        let copies_all: Vec<_> = copies_all.collect();
        if copies_all.is_empty() {
            return;
        }
        let repo = cx.repo;
        let path = cx.file.path();
        let mut contexts: Vec<String> = repo
            .service_builds()
            .iter()
            .filter(|b| b.dockerfile == path)
            .map(|b| b.context.clone())
            .collect();
        if contexts.is_empty() {
            contexts.push(cx.file.dir().to_string());
        }
        contexts.sort();
        contexts.dedup();
        for ctx in contexts {
            let ignore_file = join_path(&ctx, ".dockerignore").unwrap_or_default();
            if repo.exists(&ignore_file) || repo.exists(&format!("{path}.dockerignore")) {
                continue;
            }
            let prefix = if ctx.is_empty() {
                String::new()
            } else {
                format!("{ctx}/")
            };
            let mut envs: Vec<String> = repo
                .files_of(FileKind::Env)
                .filter(|f| f.path().starts_with(&prefix) && !is_template(f.name()))
                .map(|f| f.path().to_string())
                .collect();
            for name in ENV_NAMES {
                let p = format!("{prefix}{name}");
                if !envs.contains(&p) && repo.exists(&p) {
                    envs.push(p);
                }
            }
            if envs.is_empty() {
                continue;
            }
            envs.sort();
            let shown: Vec<&str> = envs.iter().take(3).map(String::as_str).collect();
            let more = if envs.len() > 3 {
                format!(" and {} more", envs.len() - 3)
            } else {
                String::new()
            };
            let where_ = if ctx.is_empty() {
                "the repository root".to_string()
            } else {
                format!("`{ctx}`")
            };
            for inst in &copies_all {
                out.report(
                    cx.loc_range(inst.range.clone(), "copies the whole context"),
                    format!(
                        "copies the whole build context ({where_}), which has no .dockerignore \
                         and contains {}{more}",
                        shown.join(", ")
                    ),
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
    fn flags_copy_all_with_env_files() {
        let f = run_rule(
            &super::CopyEnvWithoutDockerignore,
            &[
                ("Dockerfile", "FROM node:22\nCOPY . .\n"),
                (".env", "TOKEN=x\n"),
                (".env.example", "TOKEN=\n"),
            ],
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains(".env"));
        assert!(!f[0].message.contains(".env.example"));
        assert_eq!(f[0].locations[0].span.start.line, 2);
    }

    #[test]
    fn uses_compose_build_context() {
        let f = run_rule(
            &super::CopyEnvWithoutDockerignore,
            &[
                ("docker/api.Dockerfile", "FROM node:22\nCOPY ./ /app\n"),
                (
                    "compose.yaml",
                    "services:\n  api:\n    build:\n      context: .\n      dockerfile: docker/api.Dockerfile\n",
                ),
                (".env.production", "TOKEN=x\n"),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn accepts_dockerignore_or_no_env_or_narrow_copy() {
        let f = run_rule(
            &super::CopyEnvWithoutDockerignore,
            &[
                ("a/Dockerfile", "FROM node:22\nCOPY . .\n"),
                ("a/.dockerignore", ".env*\n"),
                ("a/.env", "T=1\n"),
                ("b/Dockerfile", "FROM node:22\nCOPY . .\n"),
                (
                    "c/Dockerfile",
                    "FROM node:22\nCOPY src/ ./src/\nCOPY --from=build . .\n",
                ),
                ("c/.env", "T=1\n"),
                ("d/Dockerfile", "FROM node:22\nCOPY . .\n"),
                ("d/Dockerfile.dockerignore", ".env\n"),
                ("d/.env", "T=1\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
