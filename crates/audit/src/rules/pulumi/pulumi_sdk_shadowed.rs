//! `pulumi-sdk-shadowed`: a Python Pulumi project whose program directory holds a
//! `pulumi` package (`pulumi/__init__.py`) or a `pulumi.py` module. The program's
//! directory comes first on `sys.path`, so `import pulumi` there imports the local code
//! instead of the Pulumi SDK.

use super::{project_dirs, project_file};
use crate::finding::{Confidence, Location, Severity};
use crate::parse::Node;
use crate::repo::{Repository, join_path};
use crate::rule::{Rule, RuleMeta, Sink};

/// Cross-file: Python projects against the files beside their program.
pub struct SdkShadowed;

static META: RuleMeta = RuleMeta {
    id: "pulumi-sdk-shadowed",
    title: "Local `pulumi` package shadows the Pulumi Python SDK",
    family: "pulumi",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Rename the local package (`infra_lib/`, `components/`) and update its imports, so \
           that `import pulumi` resolves to the installed SDK.",
};

fn in_dir(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Rule for SdkShadowed {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        for dir in project_dirs(repo) {
            let Some(path) = project_file(repo, &dir) else {
                continue;
            };
            let Some(file) = repo.file(&path) else {
                continue;
            };
            let Some(root) = file.doc.root() else {
                continue;
            };
            let Some(runtime) = root.get("runtime") else {
                continue;
            };
            let name = runtime
                .as_str()
                .or_else(|| runtime.get_str("name"))
                .unwrap_or("");
            if name != "python" {
                continue;
            }
            // `main: src/` (a directory) or `main: app/__main__.py` (its directory).
            let program = root
                .get("main")
                .and_then(Node::as_str)
                .and_then(|m| {
                    let m = if m.ends_with(".py") {
                        m.rsplit_once('/').map_or("", |(d, _)| d)
                    } else {
                        m
                    };
                    join_path(&dir, m)
                })
                .unwrap_or_else(|| dir.clone());
            let shadow = [
                in_dir(&program, "pulumi/__init__.py"),
                in_dir(&program, "pulumi.py"),
            ]
            .into_iter()
            .find(|p| repo.exists(p));
            let Some(shadow) = shadow else {
                continue;
            };
            let what = if shadow.ends_with("__init__.py") {
                format!("package `{}/`", in_dir(&program, "pulumi"))
            } else {
                format!("module `{shadow}`")
            };
            out.report(
                Location::new(&file.source, runtime.span, "Python runtime"),
                format!(
                    "the {what} sits in the program directory of the Python Pulumi project \
                     `{path}`: `import pulumi` imports it instead of the Pulumi SDK"
                ),
            )
            .related(Location::whole_file(shadow, "shadows the SDK"))
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn local_package_or_module_beside_a_python_program() {
        let f = run_rule(
            &SdkShadowed,
            &[
                ("infra/Pulumi.yaml", "name: api\nruntime: python\n"),
                ("infra/__main__.py", "import pulumi\n"),
                ("infra/pulumi/__init__.py", "from .network import vpc\n"),
                (
                    "svc/Pulumi.yaml",
                    "name: svc\nruntime:\n  name: python\n  options:\n    virtualenv: venv\nmain: src/\n",
                ),
                ("svc/src/pulumi.py", "X = 1\n"),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            f[0].message,
            "the package `infra/pulumi/` sits in the program directory of the Python Pulumi \
             project `infra/Pulumi.yaml`: `import pulumi` imports it instead of the Pulumi SDK"
        );
        assert_eq!(f[0].locations[0].span.start.line, 2);
        assert_eq!(f[0].locations[1].path, "infra/pulumi/__init__.py");
        assert!(f[1].message.contains("module `svc/src/pulumi.py`"));
    }

    #[test]
    fn namespace_folders_other_runtimes_and_nested_projects_are_fine() {
        let f = run_rule(
            &SdkShadowed,
            &[
                // No `__init__.py`: a namespace folder loses to the installed SDK.
                ("a/Pulumi.yaml", "name: a\nruntime: python\n"),
                ("a/pulumi/README.md", "notes\n"),
                ("b/Pulumi.yaml", "name: b\nruntime: nodejs\n"),
                ("b/pulumi/__init__.py", "\n"),
                // The project is the `pulumi/` folder itself.
                ("pulumi/Pulumi.yaml", "name: c\nruntime: python\n"),
                ("pulumi/__main__.py", "import pulumi\n"),
                ("pulumi/__init__.py", "\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
