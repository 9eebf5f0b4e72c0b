//! `committed-dependency-tree`: a `node_modules/`, `__pycache__/` or `site-packages/`
//! directory in the tree. One finding per directory, with its size: the files are
//! counted by the walk and never read, so a committed SDK costs no parsing.

use crate::finding::{Confidence, Location, Severity};
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};
use crate::source::Span;

/// Reports each dependency directory the walk counted.
pub struct CommittedDependencyTree;

static META: RuleMeta = RuleMeta {
    id: "committed-dependency-tree",
    title: "Installed dependencies or bytecode committed",
    family: "hygiene",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Remove the directory from the repository (`git rm -r --cached DIR`), add it to \
           .gitignore, and install it in CI and images from the lockfile instead.",
};

fn size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        format!("{:.1} MiB", bytes as f64 / MB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

impl Rule for CommittedDependencyTree {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        for t in &repo.dependency_trees {
            let what = if t.dir.ends_with("__pycache__") {
                "Python bytecode"
            } else {
                "installed dependencies"
            };
            let loc = Location {
                path: format!("{}/", t.dir),
                span: Span::default(),
                label: format!("{} files", t.files),
                redact: false,
            };
            let files = if t.files == 1 { "file" } else { "files" };
            out.report(
                loc,
                format!(
                    "`{}/` holds {what} in the tree: {} {files}, {}",
                    t.dir,
                    t.files,
                    size(t.bytes)
                ),
            )
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::DependencyTree;
    use crate::repo::Settings;

    #[test]
    fn one_finding_per_tree_with_its_size() {
        let mut repo = Repository::from_memory(&[("a.txt", "x")], Settings::default());
        assert!(crate::testing::run_repo_rule(&CommittedDependencyTree, &repo).is_empty());
        repo.dependency_trees = vec![
            DependencyTree {
                dir: "web/node_modules".into(),
                files: 11_396,
                bytes: 48 * 1024 * 1024,
            },
            DependencyTree {
                dir: "app/__pycache__".into(),
                files: 1,
                bytes: 2048,
            },
        ];
        let f = crate::testing::run_repo_rule(&CommittedDependencyTree, &repo);
        assert_eq!(f.len(), 2);
        // Sorted by path, as every report is.
        assert!(f[0].message.contains("Python bytecode") && f[0].message.contains("1 file,"));
        assert_eq!(
            f[1].message,
            "`web/node_modules/` holds installed dependencies in the tree: 11396 files, 48.0 MiB"
        );
        assert_eq!(f[1].locations[0].path, "web/node_modules/");
    }
}
