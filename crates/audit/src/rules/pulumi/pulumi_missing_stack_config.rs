//! `pulumi-missing-stack-config`: a workflow runs a Pulumi command on a stack that has no
//! `Pulumi.<stack>.yaml` in its project (next to `Pulumi.yaml`, or in the project's
//! `stackConfigDir`).

use std::collections::BTreeSet;

use super::stack_uses;
use crate::finding::{Confidence, Location, Severity};
use crate::repo::{Repository, join_path};
use crate::rule::{Rule, RuleMeta, Sink};

/// Cross-file: workflows' stacks against the stack config files of their project.
pub struct MissingStackConfig;

static META: RuleMeta = RuleMeta {
    id: "pulumi-missing-stack-config",
    title: "Workflow deploys a Pulumi stack that has no stack config file",
    family: "pulumi",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "Commit the stack's config (`pulumi config set --stack STACK KEY VALUE` writes \
           `Pulumi.STACK.yaml`; secrets go in with `--secret`, encrypted), or fix the stack \
           name in the workflow.",
};

fn in_dir(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Rule for MissingStackConfig {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        let mut seen = BTreeSet::new();
        for u in stack_uses(repo) {
            let Some(project) = &u.project_dir else {
                continue;
            };
            if u.configured_at_run_time
                || !seen.insert((u.workflow.clone(), project.clone(), u.short().to_string()))
            {
                continue;
            }
            let project_file = ["Pulumi.yaml", "Pulumi.yml"]
                .iter()
                .map(|n| in_dir(project, n))
                .find(|p| repo.file(p).is_some())
                .unwrap_or_else(|| in_dir(project, "Pulumi.yaml"));
            let config_dir = repo
                .file(&project_file)
                .and_then(|f| f.doc.root())
                .and_then(|r| r.get_str("stackConfigDir"))
                .and_then(|d| join_path(project, d))
                .unwrap_or_else(|| project.clone());
            let short = u.short();
            let candidates = [
                in_dir(&config_dir, &format!("Pulumi.{short}.yaml")),
                in_dir(&config_dir, &format!("Pulumi.{short}.yml")),
            ];
            if candidates.iter().any(|c| repo.exists(c)) {
                continue;
            }
            // Other stacks of the project have config files: this one was forgotten or
            // misspelled. None has: the project may need no config at all.
            let others: Vec<String> = repo
                .files
                .iter()
                .filter(|f| f.dir() == config_dir)
                .filter_map(|f| {
                    let n = f.name();
                    let stack = n
                        .strip_prefix("Pulumi.")?
                        .strip_suffix(".yaml")
                        .or_else(|| n.strip_prefix("Pulumi.")?.strip_suffix(".yml"))?;
                    Some(stack.to_string())
                })
                .collect();
            let (context, confidence) = if others.is_empty() {
                (
                    "and the project has no stack config files; fine only if it needs no \
                     configuration"
                        .to_string(),
                    Confidence::Low,
                )
            } else {
                let list: Vec<String> = others.iter().map(|s| format!("`{s}`")).collect();
                (
                    format!("while the project has config for {}", list.join(", ")),
                    Confidence::High,
                )
            };
            out.report(
                u.loc.clone(),
                format!(
                    "`pulumi {}` on stack `{}` in `{}`: `{}` does not exist, {context}",
                    u.command, u.stack, u.workflow, candidates[0]
                ),
            )
            .confidence(confidence)
            .related(Location::whole_file(project_file, "the project"))
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn wf(stack: &str) -> String {
        format!(
            "on: push\njobs:\n  d:\n    steps:\n      - run: pulumi up --yes --stack {stack} --cwd infra\n"
        )
    }

    #[test]
    fn stack_without_its_config_file() {
        let f = run_rule(
            &MissingStackConfig,
            &[
                ("infra/Pulumi.yaml", "name: api\nruntime: python\n"),
                ("infra/Pulumi.prod.yaml", "config: {}\n"),
                (".github/workflows/d.yml", &wf("staging")),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "`pulumi up` on stack `staging` in `.github/workflows/d.yml`: \
             `infra/Pulumi.staging.yaml` does not exist, while the project has config for `prod`"
        );
        assert_eq!(f[0].confidence, Confidence::High);
        assert_eq!(f[0].locations[0].span.start.line, 5);
        assert_eq!(f[0].locations[1].path, "infra/Pulumi.yaml");
    }

    #[test]
    fn project_without_any_stack_file_is_low_confidence() {
        let f = run_rule(
            &MissingStackConfig,
            &[
                ("infra/Pulumi.yaml", "name: api\nruntime: python\n"),
                (".github/workflows/d.yml", &wf("acme/api/dev")),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].confidence, Confidence::Low);
    }

    #[test]
    fn existing_config_config_dir_run_time_config_and_unknown_projects_are_fine() {
        let set = "on: push\njobs:\n  d:\n    steps:\n      - run: |\n          pulumi config set --stack dev region eu --cwd infra\n          pulumi up --stack dev --cwd infra\n";
        let f = run_rule(
            &MissingStackConfig,
            &[
                ("infra/Pulumi.yaml", "name: api\nruntime: python\n"),
                ("infra/Pulumi.prod.yaml", "config: {}\n"),
                ("infra/Pulumi.acme.yml", "config: {}\n"),
                (
                    "web/Pulumi.yaml",
                    "name: web\nruntime: nodejs\nstackConfigDir: stacks\n",
                ),
                ("web/stacks/Pulumi.prod.yaml", "config: {}\n"),
                (".github/workflows/a.yml", &wf("prod")),
                (".github/workflows/b.yml", &wf("org/api/acme")),
                (
                    ".github/workflows/c.yml",
                    "on: push\njobs:\n  d:\n    steps:\n      - uses: pulumi/actions@v5\n        with:\n          command: up\n          stack-name: prod\n          work-dir: web\n",
                ),
                (".github/workflows/d.yml", set),
                (".github/workflows/e.yml", &wf("${{ matrix.stack }}")),
                (
                    ".github/workflows/f.yml",
                    "on: push\njobs:\n  d:\n    steps:\n      - run: pulumi up --stack qa --cwd elsewhere\n",
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
