//! Identifiers: stale ids that must disappear (`--stale-id`, config `stale-ids`), and
//! several cloud project ids or regions used for the same purpose. `orchestra fix
//! rename-id` ([`crate::fix::rename_id`]) rewrites them.

pub mod mixed_cloud_projects;
pub mod mixed_cloud_regions;
pub mod stale_id;

use std::collections::BTreeMap;

use crate::collect::FileKind;
use crate::finding::Location;
use crate::repo::{ParsedFile, Repository};
use crate::rules::scan::{GatedRegex, Prefilter, is_prose};

/// Files where deploy configuration lives (not lockfiles, not prose).
pub(crate) fn config_file(file: &ParsedFile) -> bool {
    match file.kind {
        FileKind::Dockerfile
        | FileKind::Compose
        | FileKind::Workflow
        | FileKind::Action
        | FileKind::OrchestraManifest
        | FileKind::Env
        | FileKind::Shell
        | FileKind::Terraform
        | FileKind::Pulumi
        | FileKind::DevContainer
        | FileKind::PyProject
        | FileKind::PackageJson
        | FileKind::VercelJson => true,
        FileKind::Other => !is_prose(file.path()),
        _ => false,
    }
}

/// The config files in which `prefilter` finds a keyword, in path order: the only files
/// [`occurrences`] needs to search (and, when there are none, no regex is compiled).
pub(crate) fn candidates<'r>(repo: &'r Repository, prefilter: &Prefilter) -> Vec<&'r ParsedFile> {
    repo.files
        .iter()
        .filter(|f| config_file(f) && prefilter.any(&f.source.text))
        .collect()
}

/// Every value captured by group 1 of `patterns` in `files` (from [`candidates`]), with
/// where it occurs (each byte range once).
pub(crate) fn occurrences(
    files: &[&ParsedFile],
    patterns: &[GatedRegex],
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, Vec<Location>> {
    let mut out: BTreeMap<String, Vec<Location>> = BTreeMap::new();
    for file in files {
        let text = &file.source.text;
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for p in patterns {
            if !p.may_match(text) {
                continue;
            }
            for caps in p.regex().captures_iter(text) {
                let Some(m) = caps.get(1) else { continue };
                if ranges.contains(&m.range()) || !keep(m.as_str()) {
                    continue;
                }
                ranges.push(m.range());
                out.entry(m.as_str().to_string())
                    .or_default()
                    .push(Location::new(
                        &file.source,
                        file.source.span(m.range()),
                        m.as_str().to_string(),
                    ));
            }
        }
    }
    out
}

/// Render `value (count)` lists, most used first, marking the odd one out.
pub(crate) fn summary(values: &[(&String, usize)], odd: Option<&str>) -> String {
    values
        .iter()
        .map(|(v, n)| {
            let uses = if *n == 1 {
                "1 use".to_string()
            } else {
                format!("{n} uses")
            };
            if odd == Some(v.as_str()) {
                format!("`{v}` ({uses}, the odd one out)")
            } else {
                format!("`{v}` ({uses})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
