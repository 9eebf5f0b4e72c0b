//! Pulumi rules: stacks that workflows deploy without a stack config file, one stack
//! deployed by several workflows, and a local package that shadows the Python SDK.
//!
//! [`stack_uses`] reads every workflow once for the Pulumi commands it runs (`pulumi up
//! --stack X`, `pulumi stack select X`, the `pulumi/actions` action) and resolves the
//! project directory they run in.

pub mod pulumi_duplicate_stack_deploy;
pub mod pulumi_missing_stack_config;
pub mod pulumi_sdk_shadowed;

use std::sync::LazyLock;

use regex::Regex;

use crate::collect::FileKind;
use crate::finding::Location;
use crate::parse::{Document, Node};
use crate::repo::{Repository, join_path};
use crate::rules::scan::regex;
use crate::rules::workflows::Triggers;
use crate::views::Workflow;

/// One Pulumi command of a workflow step on a named stack.
#[derive(Clone, Debug)]
pub struct StackUse {
    /// The workflow file.
    pub workflow: String,
    /// The stack as written (`dev`, `acme/api/dev`).
    pub stack: String,
    /// The command (`up`, `preview`, `refresh`, `destroy`).
    pub command: String,
    /// The project directory (repo-relative, `""` for the root), when a `Pulumi.yaml`
    /// was found there.
    pub project_dir: Option<String>,
    /// The job creates the stack or sets its config at run time (`pulumi stack init`,
    /// `stack select --create`, `pulumi config set`, the action's `upsert` or
    /// `config-map`).
    pub configured_at_run_time: bool,
    /// Branches a push runs the workflow on (`None`: not on push).
    pub push_branches: Option<Vec<String>>,
    /// Where the command is.
    pub loc: Location,
}

impl StackUse {
    /// The stack's short name (`acme/api/dev` → `dev`): what `Pulumi.<stack>.yaml` uses.
    #[must_use]
    pub fn short(&self) -> &str {
        self.stack.rsplit('/').next().unwrap_or(&self.stack)
    }
}

static COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\bpulumi\s+((?:-[-\w]*(?:[= ][^\s-][^\s]*)?\s+)*?)(up|update|preview|refresh|destroy|stack\s+select|stack\s+init|config\s+set)\b([^\n]*)",
    )
});
static STACK_FLAG: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:--stack|-s)(?:=|\s+)["']?([^\s"';&|]+)"#));
static CWD_FLAG: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:--cwd|-C)(?:=|\s+)["']?([^\s"';&|]+)"#));
static CD: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:^|[;&|(]\s*|\n\s*)cd\s+["']?([^\s"';&|)]+)"#));

/// A stack or directory named by a variable or expression cannot be resolved.
fn is_dynamic(s: &str) -> bool {
    s.contains('$') || s.contains("{{") || s.contains('*') || s.contains('`')
}

fn project_file(repo: &Repository, dir: &str) -> Option<String> {
    ["Pulumi.yaml", "Pulumi.yml"].iter().find_map(|n| {
        let p = if dir.is_empty() {
            (*n).to_string()
        } else {
            format!("{dir}/{n}")
        };
        repo.file(&p).map(|_| p)
    })
}

/// Directories holding a `Pulumi.yaml`.
fn project_dirs(repo: &Repository) -> Vec<String> {
    repo.files_of(FileKind::Pulumi)
        .filter(|f| matches!(f.name(), "Pulumi.yaml" | "Pulumi.yml"))
        .map(|f| f.dir().to_string())
        .collect()
}

/// The project a command runs in: `dir` (explicit, resolved), or the only project of
/// the repository when nothing names a directory.
fn resolve_project(repo: &Repository, dir: Option<&str>, projects: &[String]) -> Option<String> {
    match dir {
        Some(d) => {
            let d = join_path("", d)?;
            project_file(repo, &d).map(|_| d)
        }
        None => {
            if project_file(repo, "").is_some() {
                Some(String::new())
            } else if projects.len() == 1 {
                Some(projects[0].clone())
            } else {
                None
            }
        }
    }
}

/// Join a working directory and a relative `cd`/`--cwd`.
fn under(base: Option<&str>, rel: &str) -> Option<String> {
    if is_dynamic(rel) {
        return None;
    }
    join_path(base.unwrap_or(""), rel)
}

/// Every Pulumi command on a named stack in the repository's workflows.
#[must_use]
pub fn stack_uses(repo: &Repository) -> Vec<StackUse> {
    let projects = project_dirs(repo);
    let mut out = Vec::new();
    if projects.is_empty() {
        return out;
    }
    for file in repo.files_of(FileKind::Workflow) {
        let Document::Yaml(docs) = &file.doc else {
            continue;
        };
        let source = &file.source;
        for root in docs {
            let wf = Workflow::new(root);
            let push_branches = Triggers::of(&wf).push_on();
            let wf_dir = root
                .get_path(&["defaults", "run", "working-directory"])
                .and_then(Node::as_str);
            for job in &wf.jobs {
                let job_dir = job
                    .node
                    .get_path(&["defaults", "run", "working-directory"])
                    .and_then(Node::as_str)
                    .or(wf_dir);
                let mut job_uses = Vec::new();
                let mut configured = false;
                let mut selected: Option<String> = None;
                for step in &job.steps {
                    let step_dir = step.node.get_str("working-directory").or(job_dir);
                    if let Some(run) = step.run()
                        && let Some(script) = run.as_str()
                    {
                        let script = script.replace("\\\n", " ");
                        for c in COMMAND.captures_iter(&script) {
                            let (Some(all), Some(cmd)) = (c.get(0), c.get(2)) else {
                                continue;
                            };
                            let cmd = cmd
                                .as_str()
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ");
                            let args = format!(
                                "{} {}",
                                c.get(1).map_or("", |m| m.as_str()),
                                c.get(3).map_or("", |m| m.as_str())
                            );
                            let flag_stack = STACK_FLAG
                                .captures(&args)
                                .and_then(|m| m.get(1))
                                .map(|m| m.as_str().to_string());
                            match cmd.as_str() {
                                "stack init" => {
                                    configured = true;
                                    continue;
                                }
                                "config set" => {
                                    configured = true;
                                    continue;
                                }
                                "stack select" => {
                                    if args.contains("--create")
                                        || args.split_whitespace().any(|a| a == "-c")
                                    {
                                        configured = true;
                                    }
                                    selected = args
                                        .split_whitespace()
                                        .find(|a| !a.starts_with('-'))
                                        .map(str::to_string)
                                        .or(flag_stack);
                                    continue;
                                }
                                _ => {}
                            }
                            let Some(stack) = flag_stack.or_else(|| selected.clone()) else {
                                continue;
                            };
                            if is_dynamic(&stack) {
                                continue;
                            }
                            // `cd infra && pulumi up`: the last `cd` before the command.
                            let cd = CD
                                .captures_iter(&script[..all.start()])
                                .filter_map(|m| m.get(1))
                                .last()
                                .map(|m| m.as_str().to_string());
                            let cwd = CWD_FLAG
                                .captures(&args)
                                .and_then(|m| m.get(1))
                                .map(|m| m.as_str().to_string());
                            let mut dir = step_dir.map(str::to_string);
                            let mut dynamic = step_dir.is_some_and(is_dynamic);
                            for rel in [cd, cwd].into_iter().flatten() {
                                match under(dir.as_deref(), &rel) {
                                    Some(d) => dir = Some(d),
                                    None => dynamic = true,
                                }
                            }
                            if dynamic {
                                continue;
                            }
                            let project_dir = resolve_project(repo, dir.as_deref(), &projects);
                            let text = &script[all.range()];
                            let span = source
                                .find_in(run.span.range(), text.lines().next().unwrap_or(text))
                                .unwrap_or(run.span);
                            job_uses.push(StackUse {
                                workflow: file.path().to_string(),
                                stack,
                                command: if cmd == "update" { "up".into() } else { cmd },
                                project_dir,
                                configured_at_run_time: false,
                                push_branches: push_branches.clone(),
                                loc: Location::new(source, span, "pulumi command"),
                            });
                        }
                    }
                    let Some(uses) = step.uses() else {
                        continue;
                    };
                    let action = uses.as_str().unwrap_or("").split('@').next().unwrap_or("");
                    if !action.eq_ignore_ascii_case("pulumi/actions") {
                        continue;
                    }
                    let with = |k: &str| step.node.get_path(&["with", k]);
                    if with("upsert").and_then(Node::as_bool) == Some(true)
                        || with("config-map").is_some()
                    {
                        configured = true;
                    }
                    let (Some(stack), Some(cmd)) = (
                        with("stack-name").and_then(Node::as_str),
                        with("command").and_then(Node::as_str),
                    ) else {
                        continue;
                    };
                    let work_dir = with("work-dir").and_then(Node::as_str);
                    if is_dynamic(stack) || work_dir.is_some_and(is_dynamic) {
                        continue;
                    }
                    let project_dir = resolve_project(repo, work_dir, &projects);
                    let span = with("stack-name").map_or(uses.span, |n| n.span);
                    job_uses.push(StackUse {
                        workflow: file.path().to_string(),
                        stack: stack.to_string(),
                        command: if cmd == "update" {
                            "up".into()
                        } else {
                            cmd.to_string()
                        },
                        project_dir,
                        configured_at_run_time: false,
                        push_branches: push_branches.clone(),
                        loc: Location::new(source, span, "stack used here"),
                    });
                }
                for mut u in job_uses {
                    u.configured_at_run_time = configured;
                    out.push(u);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Settings;

    fn uses(files: &[(&str, &str)]) -> Vec<StackUse> {
        stack_uses(&Repository::from_memory(files, Settings::default()))
    }

    #[test]
    fn reads_commands_directories_and_the_action() {
        let wf = "on: push\njobs:\n  d:\n    steps:\n      - run: cd infra && pulumi up --yes --stack prod\n      - run: pulumi preview -s acme/api/dev --cwd infra\n      - uses: pulumi/actions@v5\n        with:\n          command: up\n          stack-name: staging\n          work-dir: infra\n      - run: pulumi up -s ${{ inputs.stack }} --cwd infra\n";
        let u = uses(&[
            ("infra/Pulumi.yaml", "name: api\nruntime: python\n"),
            (".github/workflows/d.yml", wf),
        ]);
        let got: Vec<(&str, &str, Option<&str>)> = u
            .iter()
            .map(|x| (x.short(), x.command.as_str(), x.project_dir.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("prod", "up", Some("infra")),
                ("dev", "preview", Some("infra")),
                ("staging", "up", Some("infra")),
            ]
        );
        assert_eq!(u[0].loc.span.start.line, 5);
        assert!(u.iter().all(|x| !x.configured_at_run_time));
    }

    #[test]
    fn stack_select_and_run_time_config() {
        let wf = "on: push\njobs:\n  d:\n    defaults:\n      run:\n        working-directory: infra\n    steps:\n      - run: |\n          pulumi stack select --create dev\n          pulumi config set region eu\n          pulumi up --yes\n";
        let u = uses(&[
            ("infra/Pulumi.yaml", "name: api\nruntime: go\n"),
            ("other/Pulumi.yaml", "name: web\nruntime: go\n"),
            (".github/workflows/d.yml", wf),
        ]);
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!(u[0].stack, "dev");
        assert_eq!(u[0].project_dir.as_deref(), Some("infra"));
        assert!(u[0].configured_at_run_time);
    }
}
