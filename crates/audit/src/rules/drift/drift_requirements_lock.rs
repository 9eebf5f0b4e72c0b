//! `drift-requirements-lock`: a `requirements*.txt` pin (`name==version`) that disagrees
//! with the version locked in `poetry.lock` (or `uv.lock`) for the same package.

use std::collections::HashMap;

use crate::collect::FileKind;
use crate::finding::{Confidence, Location, Severity};
use crate::parse::{Document, Node};
use crate::repo::{ParsedFile, Repository};
use crate::rule::{Rule, RuleMeta, Sink};
use crate::rules::scan::normalize_pypi_name;

/// Cross-file: each requirements pin whose version differs from the lockfile's.
pub struct RequirementsLock;

static META: RuleMeta = RuleMeta {
    id: "drift-requirements-lock",
    title: "requirements.txt pin disagrees with the lockfile",
    family: "drift",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Regenerate the requirements file from the lockfile (`poetry export -f \
           requirements.txt --output requirements.txt`, or `uv export`) instead of editing \
           it by hand, and check it in CI (`poetry export … | diff - requirements.txt`).",
};

/// A pinned requirement: normalized name, version, and where the version is.
pub(crate) struct Requirement {
    pub name: String,
    pub display: String,
    pub version: String,
    pub range: std::ops::Range<usize>,
}

/// `name==version` pins of a requirements file (extras, markers and hashes allowed).
pub(crate) fn requirements(text: &str) -> Vec<Requirement> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let l = line.split('#').next().unwrap_or("");
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('-') {
            continue;
        }
        let Some(eq) = t.find("==") else { continue };
        if t[eq + 2..].starts_with('=') {
            continue; // `===` arbitrary equality
        }
        let name_part = &t[..eq];
        let name = name_part.split('[').next().unwrap_or("").trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            continue;
        }
        let after = &t[eq + 2..];
        let vlen = after
            .find(|c: char| c.is_whitespace() || matches!(c, ';' | ',' | '\\'))
            .unwrap_or(after.len());
        let version = after[..vlen].trim();
        if version.is_empty() || version.contains('*') {
            continue;
        }
        let vstart = start + (l.len() - t.len()) + eq + 2;
        out.push(Requirement {
            name: normalize_pypi_name(name),
            display: name.to_string(),
            version: version.to_string(),
            range: vstart..vstart + version.len(),
        });
    }
    out
}

/// `[[package]]` entries of a poetry.lock / uv.lock: normalized name → version node.
pub(crate) fn locked(file: &ParsedFile) -> HashMap<String, &Node> {
    let mut out = HashMap::new();
    let Document::Toml(root) = &file.doc else {
        return out;
    };
    for p in root.get("package").map(Node::items).unwrap_or_default() {
        if let (Some(name), Some(v)) = (p.get_str("name"), p.get("version")) {
            out.insert(normalize_pypi_name(name), v);
        }
    }
    out
}

/// The lockfile that governs requirements in `dir`: the nearest poetry.lock / uv.lock in
/// the same directory or a parent.
fn lock_for<'r>(repo: &'r Repository, dir: &str) -> Option<&'r ParsedFile> {
    let mut d = dir.to_string();
    loop {
        for name in ["poetry.lock", "uv.lock"] {
            let p = if d.is_empty() {
                name.to_string()
            } else {
                format!("{d}/{name}")
            };
            if let Some(f) = repo.file(&p) {
                return Some(f);
            }
        }
        if d.is_empty() {
            return None;
        }
        d = d
            .rsplit_once('/')
            .map_or(String::new(), |(p, _)| p.to_string());
    }
}

impl Rule for RequirementsLock {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        for req in repo.files_of(FileKind::Requirements) {
            let dir = req.dir();
            // requirements/base.txt belongs to the project one level up.
            let dir = if req.path().contains("requirements/") {
                dir.rsplit_once('/').map_or("", |(p, _)| p)
            } else {
                dir
            };
            let Some(lock) = lock_for(repo, dir) else {
                continue;
            };
            let versions = locked(lock);
            for r in requirements(&req.source.text) {
                let Some(node) = versions.get(&r.name) else {
                    continue;
                };
                let Some(lv) = node.as_str() else { continue };
                if lv == r.version {
                    continue;
                }
                out.report(
                    Location::new(&req.source, req.source.span(r.range.clone()), "pinned here"),
                    format!(
                        "`{}` is pinned to {} here but {} locks {lv}",
                        r.display,
                        r.version,
                        lock.path()
                    ),
                )
                .related(Location::new(
                    &lock.source,
                    node.span,
                    format!("locked at {lv}"),
                ))
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    const LOCK: &str = "# This file is automatically @generated by Poetry 1.8.2 and should not be changed by hand.\n\n[[package]]\nname = \"fastapi\"\nversion = \"0.110.0\"\n\n[[package]]\nname = \"pydantic_core\"\nversion = \"2.16.3\"\n\n[[package]]\nname = \"uvicorn\"\nversion = \"0.29.0\"\n";

    #[test]
    fn flags_disagreeing_pins() {
        let req = "fastapi==0.109.2 ; python_version >= \"3.10\" \\\n    --hash=sha256:abc\npydantic-core==2.16.3\nuvicorn[standard]==0.27.0\nrequests==2.31.0\n";
        let f = run_rule(
            &RequirementsLock,
            &[
                ("services/api/poetry.lock", LOCK),
                ("services/api/requirements.txt", req),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            f[0].message,
            "`fastapi` is pinned to 0.109.2 here but services/api/poetry.lock locks 0.110.0"
        );
        assert_eq!(
            (
                f[0].locations[0].span.start.line,
                f[0].locations[0].span.start.col
            ),
            (1, 10)
        );
        assert_eq!(f[0].locations[1].span.start.line, 5);
        assert!(f[1].message.starts_with("`uvicorn`"));
    }

    #[test]
    fn matching_pins_and_unrelated_dirs_are_fine() {
        let f = run_rule(
            &RequirementsLock,
            &[
                ("api/poetry.lock", LOCK),
                (
                    "api/requirements/prod.txt",
                    "fastapi==0.110.0\nuvicorn>=0.20\n",
                ),
                ("tools/requirements.txt", "fastapi==0.100.0\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
