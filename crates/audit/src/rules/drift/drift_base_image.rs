//! `drift-base-image`: the same image used at different versions across Dockerfiles
//! and compose files (`postgres:15` here, `postgres:16` there).

use std::collections::BTreeMap;

use super::{converge, image_tool, show};
use crate::collect::FileKind;
use crate::finding::{Confidence, Location, Severity};
use crate::parse::{Document, ImageRef};
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};
use crate::rules::scan::numeric_prefix;
use crate::views::Compose;

/// Cross-file: one finding per image repository used at several versions.
pub struct BaseImage;

static META: RuleMeta = RuleMeta {
    id: "drift-base-image",
    title: "Same image used at different versions",
    family: "drift",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Use one version of each image across services and environments (dev compose, \
           CI, production Dockerfiles) so everyone runs what production runs; bump them \
           together.",
};

struct Use {
    version: Vec<u64>,
    tag: String,
    loc: Location,
}

impl Rule for BaseImage {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        let mut by_image: BTreeMap<String, Vec<Use>> = BTreeMap::new();
        // The location is built only for images that are kept (most stages use a python
        // or node image, left to drift-tool-version).
        let mut add = |r: &ImageRef, loc: &dyn Fn() -> Location| {
            // python, node and terraform images are compared with every other pin of
            // their tool by drift-tool-version.
            if r.has_variables() || image_tool(r.hub_name()).is_some() {
                return;
            }
            let Some(tag) = &r.tag else { return };
            let v = numeric_prefix(tag);
            if v.is_empty() {
                return;
            }
            by_image
                .entry(r.hub_name().to_string())
                .or_default()
                .push(Use {
                    version: v,
                    tag: tag.clone(),
                    loc: loc(),
                });
        };
        for file in &repo.files {
            match (&file.doc, file.kind) {
                (Document::Dockerfile(df), _) => {
                    for stage in &df.stages {
                        if stage.base_stage.is_none() {
                            add(&stage.base, &|| {
                                let span = file.source.span(stage.base_range.clone());
                                Location::new(&file.source, span, "FROM")
                            });
                        }
                    }
                }
                (Document::Yaml(docs), FileKind::Compose) => {
                    for root in docs {
                        for svc in Compose::new(root).services {
                            if let Some(img) = svc.image()
                                && let Some(s) = img.as_str()
                            {
                                add(&ImageRef::parse(s), &|| {
                                    Location::new(&file.source, img.span, "image")
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for (image, uses) in &by_image {
            // Compare at the precision every tag has (postgres:15 vs 16.2 → majors).
            let gran = uses
                .iter()
                .map(|u| u.version.len())
                .min()
                .unwrap_or(1)
                .min(2);
            let mut by_key: BTreeMap<Vec<u64>, Vec<&Use>> = BTreeMap::new();
            for u in uses {
                by_key
                    .entry(u.version.iter().copied().take(gran).collect())
                    .or_default()
                    .push(u);
            }
            if by_key.len() < 2 {
                continue;
            }
            let counts: BTreeMap<Vec<u64>, (usize, &str)> = by_key
                .iter()
                .map(|(k, v)| (k.clone(), (v.len(), v[0].tag.as_str())))
                .collect();
            let Some((_, target)) = converge(&counts) else {
                continue;
            };
            let mut parts: Vec<String> = by_key
                .iter()
                .rev()
                .map(|(k, v)| {
                    let files: Vec<&str> = v.iter().map(|u| u.loc.path.as_str()).collect();
                    let mut files = files;
                    files.dedup();
                    format!("{} ({})", show(k), files.join(", "))
                })
                .collect();
            parts.dedup();
            let primary = uses
                .iter()
                .find(|u| u.version.iter().copied().take(gran).collect::<Vec<_>>() != target)
                .unwrap_or(&uses[0]);
            let mut b = out.report(
                primary.loc.clone(),
                format!(
                    "`{image}` is used at {} versions: {}; converge on {image}:{}",
                    by_key.len(),
                    parts.join(", "),
                    show(&target)
                ),
            );
            for u in uses {
                if !std::ptr::eq(u, primary) {
                    b = b.related(u.loc.clone());
                }
            }
            b.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_one_image_at_two_versions() {
        let f = run_rule(
            &BaseImage,
            &[
                (
                    "docker-compose.yml",
                    "services:\n  db:\n    image: postgres:15-alpine\n  cache:\n    image: redis:7.2\n",
                ),
                (
                    "docker-compose.ci.yml",
                    "services:\n  db:\n    image: postgres:16.2\n",
                ),
                ("deploy/db/Dockerfile", "FROM postgres:16\n"),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "`postgres` is used at 2 versions: 16 (deploy/db/Dockerfile, docker-compose.ci.yml), 15 (docker-compose.yml); converge on postgres:16"
        );
        assert_eq!(f[0].locations[0].path, "docker-compose.yml");
        assert_eq!(f[0].locations.len(), 3);
    }

    #[test]
    fn same_versions_tool_images_and_stages_are_fine() {
        let f = run_rule(
            &BaseImage,
            &[
                (
                    "a/Dockerfile",
                    "FROM redis:7.2-alpine AS r\nFROM r\nFROM python:3.10\n",
                ),
                (
                    "b/Dockerfile",
                    "FROM redis:7.2.4\nFROM python:3.12\nFROM nginx:stable\n",
                ),
                ("c/Dockerfile", "FROM nginx:1.27\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
