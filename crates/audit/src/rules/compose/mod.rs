//! Compose file rules, and helpers they share.

pub mod compose_docker_socket;
pub mod compose_healthcheck_mismatch;
pub mod compose_latest_tag;
pub mod compose_missing_healthcheck;
pub mod compose_missing_path;
pub mod compose_missing_resource_limits;
pub mod compose_port_conflict;
pub mod compose_privileged;
pub mod health;
pub mod healthcheck_cannot_fail;
pub mod healthcheck_wrong_port;
pub mod insecure_default;
pub mod placeholder_container;

use std::collections::HashMap;

use crate::parse::Node;
use crate::parse::dockerfile::{Dockerfile, expand_with};
use crate::repo::Repository;
use crate::views::ComposeService;

/// Apply compose interpolation defaults: `${TAG:-1.2}` → `1.2`. Returns `None` when a
/// variable has no default (its value is only known at deploy time).
#[must_use]
pub fn interpolate(text: &str) -> Option<String> {
    if !text.contains('$') {
        return Some(text.to_string());
    }
    // `$$` is a literal dollar in compose.
    let escaped = text.replace("$$", "\u{0}");
    let (out, known) = expand_with(&escaped, &HashMap::new());
    known.then(|| out.replace('\u{0}', "$"))
}

/// The Dockerfile a service builds, when it is in the repository.
#[must_use]
pub fn built_dockerfile<'r>(
    repo: &'r Repository,
    compose_dir: &str,
    svc: &ComposeService<'_>,
) -> Option<(&'r str, &'r Dockerfile)> {
    let path = svc.build(compose_dir)?.dockerfile?;
    let file = repo.file(&path)?;
    Some((file.path(), file.doc.dockerfile()?))
}

/// Items of a node that may be a single scalar or a sequence (`env_file: a` / `[a, b]`).
#[must_use]
pub fn one_or_many(node: &Node) -> Vec<&Node> {
    if node.is_seq() {
        node.items().iter().collect()
    } else {
        vec![node]
    }
}
