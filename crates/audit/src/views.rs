//! Light typed views over YAML trees: compose services, workflow jobs and steps, and the
//! services (compose or Orchestra manifest) that build a Dockerfile.
//!
//! Views borrow the [`Node`] tree, so spans stay exact and nothing is copied.

use crate::collect::FileKind;
use crate::parse::{Document, Node};
use crate::repo::{Repository, join_path};
use crate::source::Span;

/// A compose file.
#[derive(Clone, Debug)]
pub struct Compose<'a> {
    /// The document root.
    pub root: &'a Node,
    /// Services in file order.
    pub services: Vec<ComposeService<'a>>,
}

/// One entry under `services:`.
#[derive(Clone, Debug)]
pub struct ComposeService<'a> {
    /// The service name.
    pub name: &'a str,
    /// The key node (points at the name).
    pub key: &'a Node,
    /// The service mapping.
    pub node: &'a Node,
}

impl<'a> Compose<'a> {
    /// View `root` as a compose file (services may be absent).
    #[must_use]
    pub fn new(root: &'a Node) -> Self {
        let services = root
            .get("services")
            .map(|s| {
                s.entries()
                    .iter()
                    .map(|e| ComposeService {
                        name: e.key_str(),
                        key: &e.key,
                        node: &e.value,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { root, services }
    }
}

impl<'a> ComposeService<'a> {
    /// `image:` value node.
    #[must_use]
    pub fn image(&self) -> Option<&'a Node> {
        self.node.get("image")
    }

    /// The build context and Dockerfile, resolved against the compose file's directory.
    #[must_use]
    pub fn build(&self, compose_dir: &str) -> Option<BuildRef<'a>> {
        let build = self.node.get("build")?;
        build_ref(build, compose_dir)
    }
}

/// Where an image is built from.
#[derive(Clone, Debug)]
pub struct BuildRef<'a> {
    /// The `build:` node.
    pub node: &'a Node,
    /// The node giving the context path.
    pub context_node: &'a Node,
    /// Context directory, repo-relative (`None` if absolute, remote or outside the repo).
    pub context: Option<String>,
    /// The `dockerfile:` node, if given.
    pub dockerfile_node: Option<&'a Node>,
    /// Dockerfile path, repo-relative (default `<context>/Dockerfile`).
    pub dockerfile: Option<String>,
}

fn build_ref<'a>(build: &'a Node, base_dir: &str) -> Option<BuildRef<'a>> {
    let (context_node, dockerfile_node) = if build.as_str().is_some() {
        (build, None)
    } else {
        (
            build.get("context").unwrap_or(build),
            build.get("dockerfile"),
        )
    };
    let ctx_text = context_node.as_str().unwrap_or(".");
    let context = if ctx_text.contains("://") || ctx_text.starts_with("git@") {
        None
    } else {
        join_path(base_dir, ctx_text)
    };
    let dockerfile = context.as_ref().and_then(|c| {
        let name = dockerfile_node
            .and_then(Node::as_str)
            .unwrap_or("Dockerfile");
        join_path(c, name)
    });
    Some(BuildRef {
        node: build,
        context_node,
        context,
        dockerfile_node,
        dockerfile,
    })
}

/// A GitHub Actions workflow.
#[derive(Clone, Debug)]
pub struct Workflow<'a> {
    /// The document root.
    pub root: &'a Node,
    /// Jobs in file order.
    pub jobs: Vec<Job<'a>>,
}

/// One job.
#[derive(Clone, Debug)]
pub struct Job<'a> {
    /// The job id.
    pub id: &'a str,
    /// The key node.
    pub key: &'a Node,
    /// The job mapping.
    pub node: &'a Node,
    /// Its steps (empty for reusable-workflow jobs).
    pub steps: Vec<Step<'a>>,
}

/// One step.
#[derive(Clone, Debug)]
pub struct Step<'a> {
    /// 0-based position in the job.
    pub index: usize,
    /// The step mapping.
    pub node: &'a Node,
}

impl<'a> Workflow<'a> {
    /// View `root` as a workflow.
    #[must_use]
    pub fn new(root: &'a Node) -> Self {
        let jobs = root
            .get("jobs")
            .map(|j| {
                j.entries()
                    .iter()
                    .map(|e| Job {
                        id: e.key_str(),
                        key: &e.key,
                        node: &e.value,
                        steps: e
                            .value
                            .get("steps")
                            .map(|s| {
                                s.items()
                                    .iter()
                                    .enumerate()
                                    .map(|(index, node)| Step { index, node })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { root, jobs }
    }

    /// The `on:` node (YAML 1.1 parsers read `on` as `true`; saphyr keeps the text).
    #[must_use]
    pub fn triggers(&self) -> Option<&'a Node> {
        self.root.get("on").or_else(|| self.root.get("true"))
    }
}

impl<'a> Step<'a> {
    /// `uses:` value.
    #[must_use]
    pub fn uses(&self) -> Option<&'a Node> {
        self.node.get("uses")
    }

    /// `run:` value.
    #[must_use]
    pub fn run(&self) -> Option<&'a Node> {
        self.node.get("run")
    }

    /// `name:` value.
    #[must_use]
    pub fn name(&self) -> Option<&'a str> {
        self.node.get_str("name")
    }
}

/// A healthcheck declared outside the Dockerfile (compose or Orchestra manifest).
#[derive(Clone, Debug)]
pub struct HealthSpec {
    /// Where it is declared.
    pub span: Span,
    /// `disable: true` or `test: ["NONE"]`.
    pub disabled: bool,
    /// The HTTP path it probes, when one can be read (`/healthz`).
    pub http_path: Option<String>,
    /// The command text, for `test:` / `exec:` checks.
    pub command: Option<String>,
}

/// A service that builds an image from a Dockerfile in the repository.
#[derive(Clone, Debug)]
pub struct ServiceBuild {
    /// The compose file or manifest declaring it.
    pub file: String,
    /// Service name.
    pub service: String,
    /// Span of the service name.
    pub service_span: Span,
    /// Span of the `build:` value.
    pub build_span: Span,
    /// Repo-relative build context directory.
    pub context: String,
    /// Repo-relative Dockerfile path.
    pub dockerfile: String,
    /// Its healthcheck, if declared.
    pub healthcheck: Option<HealthSpec>,
}

/// Collect the builds of every compose file and Orchestra manifest.
pub(crate) fn service_builds(repo: &Repository) -> Vec<ServiceBuild> {
    let mut out = Vec::new();
    for f in &repo.files {
        if !matches!(f.kind, FileKind::Compose | FileKind::OrchestraManifest) {
            continue;
        }
        let Document::Yaml(docs) = &f.doc else {
            continue;
        };
        for root in docs {
            for svc in Compose::new(root).services {
                let Some(b) = svc.build(f.dir()) else {
                    continue;
                };
                let (Some(dockerfile), Some(context)) = (b.dockerfile, b.context) else {
                    continue;
                };
                let healthcheck = svc.node.get("healthcheck").map(health_spec);
                out.push(ServiceBuild {
                    file: f.path().to_string(),
                    service: svc.name.to_string(),
                    service_span: svc.key.span,
                    build_span: b.node.span,
                    context,
                    dockerfile,
                    healthcheck,
                });
            }
        }
    }
    out
}

/// Read a compose (`test:`, `disable:`) or manifest (`http:`, `exec:`) healthcheck.
#[must_use]
pub fn health_spec(h: &Node) -> HealthSpec {
    let mut disabled = h.get("disable").and_then(Node::as_bool) == Some(true);
    let mut command = None;
    let mut http_path = h.get_str("http").map(str::to_string);
    if let Some(test) = h.get("test").or_else(|| h.get("exec")) {
        let text = if let Some(s) = test.as_str() {
            s.to_string()
        } else {
            let parts: Vec<&str> = test.items().iter().filter_map(Node::as_str).collect();
            if parts.first() == Some(&"NONE") {
                disabled = true;
            }
            let skip = usize::from(matches!(parts.first(), Some(&("CMD" | "CMD-SHELL"))));
            parts[skip.min(parts.len())..].join(" ")
        };
        if http_path.is_none() {
            http_path = http_path_in(&text);
        }
        command = Some(text);
    }
    HealthSpec {
        span: h.span,
        disabled,
        http_path,
        command,
    }
}

/// The path of the first `http(s)://host[:port]/path` URL in `text` (`/` if none given).
#[must_use]
pub fn http_path_in(text: &str) -> Option<String> {
    let at = text.find("http://").or_else(|| text.find("https://"))?;
    let rest = &text[at..];
    let after_scheme = &rest[rest.find("//")? + 2..];
    let end = after_scheme
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '|' | ';' | '&' | ')'))
        .unwrap_or(after_scheme.len());
    let url = &after_scheme[..end];
    let path = match url.find('/') {
        Some(i) => &url[i..],
        None => "/",
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Some(if path.is_empty() { "/" } else { path }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_http_paths() {
        assert_eq!(
            http_path_in("curl -fsS http://localhost:8000/healthz || exit 1").as_deref(),
            Some("/healthz")
        );
        assert_eq!(
            http_path_in("wget -qO- http://127.0.0.1").as_deref(),
            Some("/")
        );
        assert_eq!(http_path_in("pg_isready"), None);
    }
}
