//! GitHub Actions workflow rules: action pinning, permissions, long-lived cloud keys,
//! template injection, duplicate deploys, tests allowed to fail, deploys without
//! concurrency.

pub mod ci_swallowed_failure;
pub mod workflow_deploy_on_any_branch;
pub mod workflow_deploy_without_concurrency;
pub mod workflow_duplicate_deploy;
pub mod workflow_excessive_permissions;
pub mod workflow_long_lived_cloud_key;
pub mod workflow_missing_permissions;
pub mod workflow_oidc_without_id_token;
pub mod workflow_secret_in_set_env_vars;
pub mod workflow_template_injection;
pub mod workflow_test_continue_on_error;
pub mod workflow_unknown_runner;
pub mod workflow_unpinned_action;

use std::sync::LazyLock;

use regex::Regex;

use crate::parse::Node;
use crate::rules::scan::regex;
use crate::source::Span;
use crate::views::{Job, Workflow};

/// The events a workflow runs on, and its push filters.
#[derive(Clone, Debug, Default)]
pub struct Triggers {
    /// Event names (`push`, `pull_request`, `workflow_dispatch`, …).
    pub events: Vec<String>,
    /// `on.push.branches`; `None` when push runs on every branch (or push is absent).
    pub push_branches: Option<Vec<String>>,
    /// `on.push` has `paths` / `paths-ignore` filters.
    pub push_paths_filtered: bool,
}

impl Triggers {
    /// Read `on:` of a workflow.
    #[must_use]
    pub fn of(wf: &Workflow<'_>) -> Self {
        let mut t = Triggers::default();
        let Some(on) = wf.triggers() else {
            return t;
        };
        if let Some(s) = on.as_str() {
            t.events.push(s.to_string());
        } else if on.is_seq() {
            t.events.extend(
                on.items()
                    .iter()
                    .filter_map(Node::as_str)
                    .map(str::to_string),
            );
        } else {
            for e in on.entries() {
                t.events.push(e.key_str().to_string());
                if e.key_str() == "push" {
                    let branches = e.value.get("branches");
                    t.push_branches = branches.map(|b| {
                        if let Some(s) = b.as_str() {
                            vec![s.to_string()]
                        } else {
                            b.items()
                                .iter()
                                .filter_map(Node::as_str)
                                .map(str::to_string)
                                .collect()
                        }
                    });
                    t.push_paths_filtered =
                        e.value.get("paths").is_some() || e.value.get("paths-ignore").is_some();
                }
            }
        }
        t
    }

    /// Runs on `event`.
    #[must_use]
    pub fn has(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    /// Runs on a pull request (where the code comes from the PR author).
    #[must_use]
    pub fn on_pull_request(&self) -> bool {
        self.has("pull_request") || self.has("pull_request_target")
    }

    /// The branches a push runs on: `Some(["*"])` for every branch, `None` without push.
    #[must_use]
    pub fn push_on(&self) -> Option<Vec<String>> {
        if !self.has("push") {
            return None;
        }
        Some(match &self.push_branches {
            None => vec!["*".to_string()],
            Some(b) => b
                .iter()
                .map(|b| {
                    if b.contains('*') {
                        "*".to_string()
                    } else {
                        b.clone()
                    }
                })
                .collect(),
        })
    }
}

/// What a job deploys to, as a comparable key and a human description.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeployTarget {
    /// Comparable identity (`cloud-run:api`, `environment:production`).
    pub key: String,
    /// For messages (`Cloud Run service \`api\``).
    pub label: String,
    /// Only an `environment:` name (weaker evidence of the same target).
    pub environment_only: bool,
}

/// One deploy found in a job: the target and where it is.
#[derive(Clone, Debug)]
pub struct Deploy {
    /// The target.
    pub target: DeployTarget,
    /// The command, `uses:` or `environment:` that shows it.
    pub span: Span,
}

static GCLOUD_RUN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"gcloud\s+(?:beta\s+|alpha\s+)?run\s+(?:deploy|services\s+replace)\s+([A-Za-z0-9_${}.-]+)",
    )
});
static GCLOUD_APP: LazyLock<Regex> = LazyLock::new(|| regex(r"gcloud\s+app\s+deploy\b"));
static FIREBASE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"firebase\s+deploy\b(?:[^\n]*--only[= ]+([A-Za-z0-9:,_-]+))?"));
static KUBECTL: LazyLock<Regex> =
    LazyLock::new(|| regex(r"kubectl\s+(?:apply|rollout\s+restart|set\s+image)\b"));
static GKE_CREDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"gcloud\s+container\s+clusters\s+get-credentials\s+([A-Za-z0-9_${}.-]+)")
});
static HELM: LazyLock<Regex> =
    LazyLock::new(|| regex(r"helm\s+upgrade\s+(?:--install\s+)?([A-Za-z0-9_${}.-]+)"));
static FLY: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:fly|flyctl)\s+deploy\b"));
static VERCEL: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\bvercel\b[^\n]*(?:--prod\b|deploy\b[^\n]*--prod)"));
static TF_APPLY: LazyLock<Regex> = LazyLock::new(|| regex(r"\bterraform\s+apply\b"));

fn add(out: &mut Vec<Deploy>, key: String, label: String, span: Span) {
    if !out.iter().any(|d| d.target.key == key) {
        out.push(Deploy {
            target: DeployTarget {
                key,
                label,
                environment_only: false,
            },
            span,
        });
    }
}

/// The deploys of one job: commands in `run:`, known deploy actions, `environment:`.
#[must_use]
pub fn deploys(source: &crate::source::SourceFile, job: &Job<'_>) -> Vec<Deploy> {
    let mut out = Vec::new();
    let mut cluster: Option<String> = None;
    for step in &job.steps {
        if let Some(run) = step.run()
            && let Some(script) = run.as_str()
        {
            let at = |r: std::ops::Range<usize>| {
                source
                    .find_in(run.span.range(), &script[r.clone()])
                    .unwrap_or(run.span)
            };
            if let Some(c) = GKE_CREDS.captures(script)
                && let Some(m) = c.get(1)
            {
                cluster = Some(m.as_str().to_string());
            }
            for c in GCLOUD_RUN.captures_iter(script) {
                if let (Some(all), Some(svc)) = (c.get(0), c.get(1)) {
                    let s = svc.as_str();
                    add(
                        &mut out,
                        format!("cloud-run:{s}"),
                        format!("Cloud Run service `{s}`"),
                        at(all.range()),
                    );
                }
            }
            if let Some(m) = GCLOUD_APP.find(script) {
                add(
                    &mut out,
                    "app-engine".into(),
                    "App Engine".into(),
                    at(m.range()),
                );
            }
            if let Some(c) = FIREBASE.captures(script)
                && let Some(all) = c.get(0)
            {
                let only = c.get(1).map(|m| m.as_str().to_string());
                let (key, label) = match only {
                    Some(o) => (format!("firebase:{o}"), format!("Firebase `{o}`")),
                    None => ("firebase".to_string(), "Firebase (everything)".to_string()),
                };
                add(&mut out, key, label, at(all.range()));
            }
            if let Some(m) = KUBECTL.find(script) {
                let (key, label) = match &cluster {
                    Some(c) => (format!("k8s:{c}"), format!("Kubernetes cluster `{c}`")),
                    None => (
                        "k8s".to_string(),
                        "Kubernetes (current context)".to_string(),
                    ),
                };
                add(&mut out, key, label, at(m.range()));
            }
            for c in HELM.captures_iter(script) {
                if let (Some(all), Some(rel)) = (c.get(0), c.get(1)) {
                    let r = rel.as_str();
                    add(
                        &mut out,
                        format!("helm:{r}"),
                        format!("Helm release `{r}`"),
                        at(all.range()),
                    );
                }
            }
            if let Some(m) = FLY.find(script) {
                add(&mut out, "fly".into(), "Fly.io app".into(), at(m.range()));
            }
            if let Some(m) = VERCEL.find(script) {
                add(
                    &mut out,
                    "vercel-prod".into(),
                    "Vercel production".into(),
                    at(m.range()),
                );
            }
            if let Some(m) = TF_APPLY.find(script) {
                let dir = step
                    .node
                    .get_str("working-directory")
                    .or_else(|| {
                        job.node
                            .get_path(&["defaults", "run", "working-directory"])
                            .and_then(Node::as_str)
                    })
                    .unwrap_or(".");
                add(
                    &mut out,
                    format!("terraform:{dir}"),
                    format!("Terraform in `{dir}`"),
                    at(m.range()),
                );
            }
        }
        if let Some(uses) = step.uses().and_then(|u| u.as_str().map(|s| (u, s))) {
            let (node, text) = uses;
            let action = text.split('@').next().unwrap_or("").to_ascii_lowercase();
            let with = |k: &str| step.node.get_path(&["with", k]).and_then(Node::as_str);
            let target = match action.as_str() {
                "google-github-actions/deploy-cloudrun" => with("service")
                    .or_else(|| with("metadata"))
                    .map(|s| (format!("cloud-run:{s}"), format!("Cloud Run service `{s}`"))),
                "google-github-actions/deploy-appengine" => {
                    Some(("app-engine".to_string(), "App Engine".to_string()))
                }
                "firebaseextended/action-hosting-deploy" => {
                    let channel = with("channelId").unwrap_or("preview");
                    (channel == "live").then(|| {
                        (
                            "firebase:hosting".to_string(),
                            "Firebase `hosting`".to_string(),
                        )
                    })
                }
                "azure/webapps-deploy" => with("app-name")
                    .map(|a| (format!("azure-webapp:{a}"), format!("Azure web app `{a}`"))),
                "aws-actions/amazon-ecs-deploy-task-definition" => with("service").map(|s| {
                    let c = with("cluster").unwrap_or("default");
                    (format!("ecs:{c}/{s}"), format!("ECS service `{c}/{s}`"))
                }),
                "amondnet/vercel-action" => {
                    Some(("vercel-prod".to_string(), "Vercel production".to_string()))
                }
                "superfly/flyctl-actions" => Some(("fly".to_string(), "Fly.io app".to_string())),
                _ => None,
            };
            if let Some((key, label)) = target {
                add(&mut out, key, label, node.span);
            }
        }
    }
    if let Some(env) = job.node.get("environment") {
        let name = env.as_str().or_else(|| env.get_str("name"));
        if let Some(name) = name
            && !name.contains("${{")
        {
            let lower = name.to_ascii_lowercase();
            out.push(Deploy {
                target: DeployTarget {
                    key: format!("environment:{lower}"),
                    label: format!("environment `{name}`"),
                    environment_only: true,
                },
                span: env.span,
            });
        }
    }
    out
}

/// `uses:` nodes of a workflow's steps and jobs (reusable workflows), or of a composite
/// action's `runs.steps`.
#[must_use]
pub fn uses_nodes(root: &Node) -> Vec<&Node> {
    let mut out = Vec::new();
    if let Some(jobs) = root.get("jobs") {
        for job in jobs.entries() {
            if let Some(u) = job.value.get("uses") {
                out.push(u);
            }
            for step in job.value.get("steps").map(Node::items).unwrap_or_default() {
                if let Some(u) = step.get("uses") {
                    out.push(u);
                }
            }
        }
    }
    if let Some(steps) = root.get_path(&["runs", "steps"]) {
        for step in steps.items() {
            if let Some(u) = step.get("uses") {
                out.push(u);
            }
        }
    }
    out
}

/// A parsed `uses:` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef<'a> {
    /// `owner/repo` (lowercase compares; the text keeps its case).
    pub repo: &'a str,
    /// The full path before `@` (`github/codeql-action/init`).
    pub path: &'a str,
    /// The ref after `@`, if any.
    pub git_ref: Option<&'a str>,
}

impl<'a> ActionRef<'a> {
    /// Parse `owner/repo[/path]@ref`; `None` for local (`./x`) and `docker://` actions.
    #[must_use]
    pub fn parse(uses: &'a str) -> Option<Self> {
        let uses = uses.trim();
        if uses.starts_with("./") || uses.starts_with("docker://") || uses.starts_with('.') {
            return None;
        }
        let (path, git_ref) = match uses.split_once('@') {
            Some((p, r)) => (p, Some(r)),
            None => (uses, None),
        };
        let mut parts = path.splitn(3, '/');
        let owner = parts.next()?;
        let repo = parts.next()?;
        if owner.is_empty() || repo.is_empty() {
            return None;
        }
        Some(Self {
            repo: &path[..owner.len() + 1 + repo.len()],
            path,
            git_ref,
        })
    }

    /// The owner (`actions`).
    #[must_use]
    pub fn owner(&self) -> &'a str {
        self.repo.split('/').next().unwrap_or("")
    }
}

/// A full 40-hex commit SHA.
#[must_use]
pub fn is_full_sha(r: &str) -> bool {
    r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A version tag (`v4`, `v4.1.2`, `1.2`, `v2-beta`).
#[must_use]
pub fn is_version_tag(r: &str) -> bool {
    let r = r
        .strip_prefix('v')
        .or_else(|| r.strip_prefix('V'))
        .unwrap_or(r);
    let core = r.split(['-', '+']).next().unwrap_or("");
    !core.is_empty()
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The major version a ref names: from the ref, or from a `# v4.1.0` comment after a
/// SHA on the same line.
#[must_use]
pub fn major_of(git_ref: &str, line: &str) -> Option<u64> {
    let from = |s: &str| {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if is_version_tag(git_ref) {
        return from(git_ref);
    }
    if is_full_sha(git_ref)
        && let Some((_, comment)) = line.split_once('#')
    {
        let c = comment.trim();
        let c = c
            .strip_prefix("tag=")
            .or_else(|| c.strip_prefix("tag:"))
            .unwrap_or(c)
            .trim();
        if is_version_tag(c) {
            return from(c);
        }
    }
    None
}

/// Expressions of untrusted input (`github.event.issue.title`, `github.head_ref`, …)
/// inside a `${{ }}`: the names found.
#[must_use]
pub fn untrusted_contexts(expr: &str) -> Vec<&'static str> {
    const UNTRUSTED: &[&str] = &[
        "github.event.issue.title",
        "github.event.issue.body",
        "github.event.pull_request.title",
        "github.event.pull_request.body",
        "github.event.pull_request.head.ref",
        "github.event.pull_request.head.label",
        "github.event.pull_request.head.repo.default_branch",
        "github.event.comment.body",
        "github.event.review.body",
        "github.event.review_comment.body",
        "github.event.discussion.title",
        "github.event.discussion.body",
        "github.event.head_commit.message",
        "github.event.head_commit.author.email",
        "github.event.head_commit.author.name",
        "github.event.commits",
        "github.event.pages",
        "github.event.workflow_run.head_branch",
        "github.event.workflow_run.head_commit.message",
        "github.event.workflow_run.head_commit.author.email",
        "github.event.workflow_run.head_commit.author.name",
        "github.event.workflow_run.display_title",
        "github.head_ref",
    ];
    let lower = expr.to_ascii_lowercase();
    UNTRUSTED
        .iter()
        .copied()
        .filter(|u| lower.contains(u))
        .collect()
}

/// The push branches two filters both fire on (`*` stands for any branch).
pub(crate) fn shared_branches(a: &[String], b: &[String]) -> Vec<String> {
    if a.iter().any(|x| x == "*") {
        return b.to_vec();
    }
    if b.iter().any(|x| x == "*") {
        return a.to_vec();
    }
    a.iter().filter(|x| b.contains(x)).cloned().collect()
}

/// Of `hits` (deploys of one target), those that share a branch with at least one other,
/// each once by `same`, and every branch shared. `shared` gives two hits' common branches.
pub(crate) fn overlapping<H>(
    hits: &[H],
    shared: impl Fn(&H, &H) -> Vec<String>,
    same: impl Fn(&H, &H) -> bool,
) -> (Vec<&H>, Vec<String>) {
    let mut involved: Vec<&H> = Vec::new();
    let mut branches: Vec<String> = Vec::new();
    for (i, a) in hits.iter().enumerate() {
        for b in &hits[i + 1..] {
            let common = shared(a, b);
            if common.is_empty() {
                continue;
            }
            for c in common {
                if !branches.contains(&c) {
                    branches.push(c);
                }
            }
            for h in [a, b] {
                if !involved.iter().any(|x| same(x, h)) {
                    involved.push(h);
                }
            }
        }
    }
    (involved, branches)
}
