//! Drift: one tool, image or action pinned to different versions across files, and
//! `requirements.txt` pins that disagree with the lockfile. All rules here are
//! cross-file ([`crate::rule::Rule::check_repository`]).

pub mod drift_action_version;
pub mod drift_base_image;
pub mod drift_requirements_lock;
pub mod drift_tool_version;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{LazyLock, OnceLock};

use rayon::prelude::*;
use regex::Regex;

use crate::collect::FileKind;
use crate::finding::Location;
use crate::parse::{Document, Node};
use crate::repo::{ParsedFile, Repository};
use crate::rules::scan::{NeedleSet, cmp_numeric, is_prose, numeric_prefix, regex};
use crate::views::{Compose, Workflow};

/// Tools whose versions are compared, with the number of version components that
/// matter (python 3.11, node 20, terraform 1.5, poetry 1.8.2).
pub const TOOLS: &[(&str, usize)] = &[
    ("python", 2),
    ("node", 1),
    ("terraform", 2),
    ("poetry", 3),
    ("pip", 3),
    ("uv", 3),
];

/// Significant components of `tool`'s versions.
#[must_use]
pub fn granularity(tool: &str) -> usize {
    TOOLS
        .iter()
        .find(|(t, _)| *t == tool)
        .map_or(3, |(_, g)| *g)
}

/// One place that fixes (or constrains) a tool's version.
#[derive(Clone, Debug)]
pub struct ToolPin {
    /// `python`, `node`, …
    pub tool: &'static str,
    /// The version as written (`3.11-slim` → `3.11`).
    pub version: String,
    /// Comparable key, cut (or padded) to the tool's granularity.
    pub key: Vec<u64>,
    /// For constraints (`requires-python = ">=3.10"`): the constraint text.
    pub constraint: Option<String>,
    /// Where.
    pub loc: Location,
}

/// A version key cut to `gran` components; versions with fewer than `min(gran, 2)`
/// components (`python:3`) are too vague to compare.
#[must_use]
pub fn version_key(version: &str, gran: usize) -> Option<Vec<u64>> {
    let mut v = numeric_prefix(version);
    if v.is_empty() || v.len() < gran.min(2) {
        return None;
    }
    v.truncate(gran);
    if gran == 3 {
        v.resize(3, 0);
    }
    Some(v)
}

/// Display a key (`[3, 11]` → `3.11`).
#[must_use]
pub fn show(key: &[u64]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(4 * key.len());
    for (i, k) in key.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let _ = write!(out, "{k}");
    }
    out
}

struct TextPattern {
    tool: &'static str,
    pattern: String,
    /// Literal text every match contains (case-sensitive, like the patterns): the regex
    /// runs only on files holding one, and is compiled the first time one does.
    needles: &'static [&'static str],
    re: OnceLock<Regex>,
    label: &'static str,
}

impl TextPattern {
    fn regex(&self) -> &Regex {
        self.re.get_or_init(|| regex(&self.pattern))
    }
}

static TEXT_PATTERNS: LazyLock<Vec<TextPattern>> = LazyLock::new(|| {
    let v = r#"["']?\s*[=:]\s*["']?v?([0-9]+(?:\.[0-9]+)*)"#;
    let p = |tool, pattern: &str, needles, label| TextPattern {
        tool,
        pattern: pattern.to_string(),
        needles,
        re: OnceLock::new(),
        label,
    };
    vec![
        p(
            "poetry",
            r"\bpoetry(?:\[[^\]]*\])?==([0-9][0-9.]*)",
            &["poetry"],
            "poetry==",
        ),
        p(
            "poetry",
            &format!(r"\bPOETRY_VERSION{v}"),
            &["POETRY_VERSION"],
            "POETRY_VERSION",
        ),
        p(
            "poetry",
            r"install\.python-poetry\.org[^\n]*--version[= ]+([0-9][0-9.]*)",
            &["install.python-poetry.org"],
            "poetry installer",
        ),
        p("pip", r"\bpip==([0-9][0-9.]*)", &["pip=="], "pip=="),
        p(
            "pip",
            &format!(r"\bPIP_VERSION{v}"),
            &["PIP_VERSION"],
            "PIP_VERSION",
        ),
        p("uv", r"\buv==([0-9][0-9.]*)", &["uv=="], "uv=="),
        p(
            "uv",
            &format!(r"\bUV_VERSION{v}"),
            &["UV_VERSION"],
            "UV_VERSION",
        ),
        p(
            "uv",
            r"ghcr\.io/astral-sh/uv:([0-9][0-9.]*)",
            &["ghcr.io/astral-sh/uv:"],
            "uv image",
        ),
        p(
            "python",
            &format!(r"\bPYTHON_VERSION{v}"),
            &["PYTHON_VERSION"],
            "PYTHON_VERSION",
        ),
        p(
            "node",
            &format!(r"\bNODE_VERSION{v}"),
            &["NODE_VERSION"],
            "NODE_VERSION",
        ),
        p(
            "terraform",
            &format!(r"\b(?:TERRAFORM_VERSION|TF_VERSION){v}"),
            &["TERRAFORM_VERSION", "TF_VERSION"],
            "TERRAFORM_VERSION",
        ),
    ]
});

/// Every needle of [`TEXT_PATTERNS`], and the pattern each belongs to.
static TEXT_NEEDLES: LazyLock<(NeedleSet, Vec<usize>)> = LazyLock::new(|| {
    let mut needles = Vec::new();
    let mut owners = Vec::new();
    for (i, p) in TEXT_PATTERNS.iter().enumerate() {
        for n in p.needles {
            needles.push(*n);
            owners.push(i);
        }
    }
    (NeedleSet::new(&needles), owners)
});

static TF_REQUIRED: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"\brequired_version\s*=\s*"([^"]+)""#));
static POETRY_GENERATED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"@generated by Poetry ([0-9][0-9.]*)"));

/// `with:` inputs of setup actions: `(action, input, tool)`.
const SETUP_INPUTS: &[(&str, &str, &str)] = &[
    ("actions/setup-python", "python-version", "python"),
    ("actions/setup-node", "node-version", "node"),
    (
        "hashicorp/setup-terraform",
        "terraform_version",
        "terraform",
    ),
    ("snok/install-poetry", "version", "poetry"),
    ("abatilo/actions-poetry", "poetry-version", "poetry"),
    ("astral-sh/setup-uv", "version", "uv"),
];

fn tool_name(tool: &str) -> Option<&'static str> {
    TOOLS.iter().find(|(t, _)| *t == tool).map(|(t, _)| *t)
}

struct Collector<'r> {
    file: &'r ParsedFile,
    out: Vec<ToolPin>,
}

impl Collector<'_> {
    fn exact(
        &mut self,
        tool: &'static str,
        version: &str,
        range: std::ops::Range<usize>,
        how: &str,
    ) {
        let Some(key) = version_key(version, granularity(tool)) else {
            return;
        };
        let version = show(&key);
        let label = format!("{tool} {version} ({how})");
        self.out.push(ToolPin {
            tool,
            version,
            key,
            constraint: None,
            loc: Location::new(&self.file.source, self.file.source.span(range), label),
        });
    }

    fn node_exact(&mut self, tool: &'static str, node: &Node, how: &str) {
        let Some(v) = node.as_str() else { return };
        if v.contains("${{") || v.contains('$') {
            return;
        }
        self.node_exact_text(tool, v, node.span, how);
    }

    fn constraint(&mut self, tool: &'static str, text: &str, span: crate::source::Span, how: &str) {
        if constraint_bounds(text, granularity(tool)).is_none() {
            return;
        }
        self.out.push(ToolPin {
            tool,
            version: text.trim().to_string(),
            key: Vec::new(),
            constraint: Some(text.trim().to_string()),
            loc: Location::new(
                &self.file.source,
                span,
                format!("{tool} {} ({how})", text.trim()),
            ),
        });
    }
}

/// Every tool version pin and constraint in the repository (files in parallel, results
/// in file order).
#[must_use]
pub fn tool_pins(repo: &Repository) -> Vec<ToolPin> {
    let per_file: Vec<Vec<ToolPin>> = repo
        .files
        .par_iter()
        .map(|file| {
            let mut c = Collector {
                file,
                out: Vec::new(),
            };
            collect_file(&mut c);
            // One entry per (tool, version) per file: counts are "files that say so".
            let mut seen: Vec<(&str, &str)> = Vec::new();
            let mut keep = vec![false; c.out.len()];
            for (i, p) in c.out.iter().enumerate() {
                let id = (p.tool, p.version.as_str());
                if !seen.contains(&id) {
                    seen.push(id);
                    keep[i] = true;
                }
            }
            let mut keep = keep.into_iter();
            c.out.retain(|_| keep.next().unwrap_or(false));
            c.out
        })
        .collect();
    per_file.into_iter().flatten().collect()
}

fn text_kind(file: &ParsedFile) -> bool {
    match file.kind {
        FileKind::Dockerfile
        | FileKind::Workflow
        | FileKind::Action
        | FileKind::Shell
        | FileKind::Compose
        | FileKind::Env
        | FileKind::Requirements => true,
        FileKind::Other => config_like(file.name()),
        _ => false,
    }
}

/// Other files that configure builds rather than hold code or prose: `Makefile`,
/// `Procfile`, `tox.ini`, `.gitlab-ci.yml`, `cloudbuild.yaml`, `*.cfg`, `*.conf`, ….
fn config_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit_once('.') {
        None => true,
        Some(("", _)) => true, // dotfiles such as `.terraform-version`
        Some((_, ext)) => {
            matches!(
                ext,
                "yml" | "yaml" | "toml" | "ini" | "cfg" | "conf" | "mk" | "hcl" | "json"
            ) && !is_prose(&lower)
        }
    }
}

fn collect_file(c: &mut Collector<'_>) {
    let file = c.file;
    let text = &file.source.text;
    if text.is_empty() {
        return;
    }
    if text_kind(file) {
        // One scan for the needles of every pattern; a pattern runs only if one occurs.
        let (set, owners) = &*TEXT_NEEDLES;
        let mut may = vec![false; TEXT_PATTERNS.len()];
        for (k, hit) in set.hits(text).into_iter().enumerate() {
            if hit {
                may[owners[k]] = true;
            }
        }
        for (i, p) in TEXT_PATTERNS.iter().enumerate() {
            if !may[i] {
                continue;
            }
            for caps in p.regex().captures_iter(text) {
                if let Some(m) = caps.get(1) {
                    c.exact(p.tool, m.as_str(), m.range(), p.label);
                }
            }
        }
    }
    match (&file.doc, file.kind) {
        (Document::Dockerfile(df), _) => {
            for stage in &df.stages {
                if stage.base_stage.is_some() || stage.base.has_variables() {
                    continue;
                }
                if let Some(tool) = image_tool(stage.base.hub_name())
                    && let Some(tag) = &stage.base.tag
                {
                    c.exact(tool, tag, stage.base_range.clone(), "FROM");
                }
            }
        }
        (Document::Yaml(docs), FileKind::Workflow | FileKind::Action) => {
            for root in docs {
                for step in workflow_steps(root) {
                    let Some(uses) = step.get_str("uses") else {
                        continue;
                    };
                    let action = uses.split('@').next().unwrap_or("").to_ascii_lowercase();
                    for (a, input, tool) in SETUP_INPUTS {
                        if action == *a
                            && let Some(v) = step.get_path(&["with", input])
                            && let Some(tool) = tool_name(tool)
                        {
                            c.node_exact(tool, v, a);
                        }
                    }
                }
            }
        }
        (Document::Yaml(docs), FileKind::Compose) => {
            for root in docs {
                for svc in Compose::new(root).services {
                    let Some(img) = svc.image() else { continue };
                    let Some(s) = img.as_str() else { continue };
                    let r = crate::parse::ImageRef::parse(s);
                    if r.has_variables() {
                        continue;
                    }
                    if let (Some(tool), Some(tag)) = (image_tool(r.hub_name()), &r.tag) {
                        c.node_exact_text(tool, tag, img.span, "compose image");
                    }
                }
            }
        }
        (Document::Toml(root), FileKind::PyProject) => {
            if let Some(n) = root.get_path(&["project", "requires-python"])
                && let Some(s) = n.as_str()
            {
                c.constraint("python", s, n.span, "requires-python");
            }
            if let Some(n) = root.get_path(&["tool", "poetry", "dependencies", "python"])
                && let Some(s) = n.as_str()
            {
                c.constraint("python", s, n.span, "tool.poetry.dependencies");
            }
        }
        (Document::Json(root), FileKind::PackageJson) => {
            if let Some(n) = root.get_path(&["engines", "node"])
                && let Some(s) = n.as_str()
            {
                c.constraint("node", s, n.span, "engines.node");
            }
        }
        (_, FileKind::Terraform) => {
            for caps in TF_REQUIRED.captures_iter(text) {
                if let Some(m) = caps.get(1) {
                    let span = file.source.span(m.range());
                    c.constraint("terraform", m.as_str(), span, "required_version");
                }
            }
        }
        (_, FileKind::PoetryLock) => {
            if let Some(caps) = POETRY_GENERATED.captures(text)
                && let Some(m) = caps.get(1)
            {
                c.exact("poetry", m.as_str(), m.range(), "poetry.lock generated by");
            }
        }
        (_, FileKind::PythonVersion) => version_file(c, "python", ".python-version"),
        (_, FileKind::NodeVersion) => version_file(c, "node", file.name()),
        (_, FileKind::ToolVersions) => {
            let mut offset = 0;
            for line in text.split_inclusive('\n') {
                let start = offset;
                offset += line.len();
                let mut words = line.split_whitespace();
                let (Some(name), Some(ver)) = (words.next(), words.next()) else {
                    continue;
                };
                let tool = match name {
                    "python" => "python",
                    "nodejs" | "node" => "node",
                    "terraform" => "terraform",
                    "poetry" => "poetry",
                    "uv" => "uv",
                    _ => continue,
                };
                let Some(i) = line.find(ver) else { continue };
                c.exact(
                    tool,
                    ver,
                    start + i..start + i + ver.len(),
                    ".tool-versions",
                );
            }
        }
        _ if file.name() == ".terraform-version" => {
            version_file(c, "terraform", ".terraform-version");
        }
        _ => {}
    }
}

impl Collector<'_> {
    fn node_exact_text(
        &mut self,
        tool: &'static str,
        v: &str,
        span: crate::source::Span,
        how: &str,
    ) {
        let Some(key) = version_key(v, granularity(tool)) else {
            return;
        };
        let version = show(&key);
        let label = format!("{tool} {version} ({how})");
        self.out.push(ToolPin {
            tool,
            version,
            key,
            constraint: None,
            loc: Location::new(&self.file.source, span, label),
        });
    }
}

fn version_file(c: &mut Collector<'_>, tool: &'static str, how: &str) {
    let text = &c.file.source.text;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        c.exact(tool, t, start + lead..start + lead + t.len(), how);
        break;
    }
}

/// Which tool an official image carries (`python:3.11-slim` → python).
#[must_use]
pub fn image_tool(hub_name: &str) -> Option<&'static str> {
    match hub_name {
        "python" => Some("python"),
        "node" => Some("node"),
        "hashicorp/terraform" => Some("terraform"),
        _ => None,
    }
}

/// Steps of every job of a workflow, or of a composite action.
pub(crate) fn workflow_steps(root: &Node) -> Vec<&Node> {
    let mut out = Vec::new();
    for job in Workflow::new(root).jobs {
        out.extend(job.steps.iter().map(|s| s.node));
    }
    if let Some(steps) = root.get_path(&["runs", "steps"]) {
        out.extend(steps.items());
    }
    out
}

/// One alternative of a constraint: lower bound (inclusive), upper bound, and whether
/// the upper bound is inclusive.
pub type Bounds = (Option<Vec<u64>>, Option<Vec<u64>>, bool);

/// Lower (inclusive) and upper (exclusive) bounds of a version constraint, at `gran`
/// components, as a list of alternatives (`||`). `None` when it cannot be read.
#[must_use]
pub fn constraint_bounds(text: &str, gran: usize) -> Option<Vec<Bounds>> {
    let mut alts = Vec::new();
    for alt in text.split("||") {
        let mut lo: Option<Vec<u64>> = None;
        let mut hi: Option<Vec<u64>> = None;
        let mut hi_inclusive = false;
        let mut any = false;
        // `>=3.10,<3.13`, `>=18 <21`, `~> 1.5`
        let normalized = alt
            .replace(", ", ",")
            .replace("~> ", "~>")
            .replace(">= ", ">=")
            .replace("<= ", "<=")
            .replace("> ", ">")
            .replace("< ", "<")
            .replace("== ", "==")
            .replace("= ", "=")
            .replace("^ ", "^")
            .replace("~ ", "~");
        for clause in normalized
            .split([',', ' '])
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            any = true;
            let (op, ver) = split_op(clause);
            if ver == "*" || ver.eq_ignore_ascii_case("x") {
                continue;
            }
            let v = numeric_prefix(ver);
            if v.is_empty() {
                return None;
            }
            let cut = |mut v: Vec<u64>| {
                v.truncate(gran);
                v
            };
            let bump = |v: &[u64], at: usize| {
                let mut b: Vec<u64> = v[..=at.min(v.len() - 1)].to_vec();
                if let Some(last) = b.last_mut() {
                    *last += 1;
                }
                b
            };
            match op {
                ">=" => lo = Some(cut(v)),
                ">" => lo = Some(cut(v)),
                "<" => hi = Some(cut(v)),
                "<=" => {
                    hi = Some(cut(v));
                    hi_inclusive = true;
                }
                "!=" => {}
                "^" => {
                    let first_nonzero = v.iter().position(|x| *x != 0).unwrap_or(v.len() - 1);
                    hi = Some(bump(&v, first_nonzero));
                    lo = Some(cut(v));
                }
                "~" => {
                    hi = Some(bump(&v, if v.len() >= 2 { 1 } else { 0 }));
                    lo = Some(cut(v));
                }
                "~=" | "~>" => {
                    hi = Some(bump(&v, v.len().saturating_sub(2)));
                    lo = Some(cut(v));
                }
                _ => {
                    // `==3.11`, `=1.5.7`, `3.11.*`, `20.x`, bare `1.5.7`: an exact prefix.
                    let exact: Vec<u64> = cut(v);
                    lo = Some(exact.clone());
                    hi = Some(exact);
                    hi_inclusive = true;
                }
            }
        }
        if any {
            alts.push((lo, hi, hi_inclusive));
        }
    }
    (!alts.is_empty()).then_some(alts)
}

fn split_op(clause: &str) -> (&str, &str) {
    for op in [">=", "<=", "==", "!=", "~=", "~>", ">", "<", "^", "~", "="] {
        if let Some(rest) = clause.strip_prefix(op) {
            return (op, rest.trim());
        }
    }
    ("", clause)
}

/// Does the exact version `key` satisfy `constraint` (compared at the key's length)?
/// `None` when the constraint cannot be read.
#[must_use]
pub fn satisfies(constraint: &str, key: &[u64], gran: usize) -> Option<bool> {
    let alts = constraint_bounds(constraint, gran)?;
    let n = key.len();
    let cmp = |a: &[u64], b: &[u64]| {
        let a: Vec<u64> = a.iter().copied().take(n).collect();
        let b: Vec<u64> = b.iter().copied().take(n).collect();
        cmp_numeric(&a, &b)
    };
    Some(alts.iter().any(|(lo, hi, incl)| {
        let lo_ok = lo.as_ref().is_none_or(|l| cmp(key, l) != Ordering::Less);
        let hi_ok = hi.as_ref().is_none_or(|h| {
            let o = cmp(key, h);
            o == Ordering::Less || (*incl && o == Ordering::Equal)
        });
        lo_ok && hi_ok
    }))
}

/// Pick the value to converge on: most common, ties → newest.
#[must_use]
pub fn converge<'a>(counts: &BTreeMap<Vec<u64>, (usize, &'a str)>) -> Option<(&'a str, Vec<u64>)> {
    counts
        .iter()
        .max_by(|(ka, (ca, _)), (kb, (cb, _))| ca.cmp(cb).then_with(|| cmp_numeric(ka, kb)))
        .map(|(k, (_, v))| (*v, k.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_constraints() {
        assert_eq!(satisfies(">=3.10", &[3, 9], 2), Some(false));
        assert_eq!(satisfies(">=3.10,<3.13", &[3, 12], 2), Some(true));
        assert_eq!(satisfies(">=3.10,<3.13", &[3, 13], 2), Some(false));
        assert_eq!(satisfies("^3.10", &[3, 12], 2), Some(true));
        assert_eq!(satisfies("~3.10", &[3, 11], 2), Some(false));
        assert_eq!(satisfies("~=3.10", &[3, 12], 2), Some(true));
        assert_eq!(satisfies("~> 1.5", &[1, 9], 2), Some(true));
        assert_eq!(satisfies("~> 1.5.0", &[1, 6], 2), Some(false));
        assert_eq!(satisfies("= 1.5.7", &[1, 5], 2), Some(true));
        assert_eq!(satisfies(">=18 <21", &[20], 1), Some(true));
        assert_eq!(satisfies("18.x || 20.x", &[20], 1), Some(true));
        assert_eq!(satisfies("18.x || 20.x", &[22], 1), Some(false));
        assert_eq!(satisfies("3.11.*", &[3, 11], 2), Some(true));
        assert_eq!(satisfies("lts", &[3, 11], 2), None);
    }

    #[test]
    fn pins_come_from_config_files_not_code_or_prose() {
        let repo = Repository::from_memory(
            &[
                ("Makefile", "setup:\n\tpip install poetry==1.5.0\n"),
                ("tools/gen.py", "POETRY_VERSION = \"1.0.0\"\n"),
                ("docs/setup.md", "pip install poetry==1.1.0\n"),
                (".terraform-version", "1.6.2\n"),
                (
                    "services/api/poetry.lock",
                    "# This file is automatically @generated by Poetry 1.8.2 and should not be changed by hand.\n",
                ),
            ],
            crate::repo::Settings::default(),
        );
        let got: Vec<(&str, String, String)> = tool_pins(&repo)
            .into_iter()
            .map(|p| (p.tool, p.version, p.loc.path))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "terraform",
                    "1.6".to_string(),
                    ".terraform-version".to_string()
                ),
                ("poetry", "1.5.0".to_string(), "Makefile".to_string()),
                (
                    "poetry",
                    "1.8.2".to_string(),
                    "services/api/poetry.lock".to_string()
                ),
            ]
        );
    }

    #[test]
    fn keys() {
        assert_eq!(version_key("3.11-slim", 2), Some(vec![3, 11]));
        assert_eq!(version_key("3", 2), None);
        assert_eq!(version_key("v20.11.1", 1), Some(vec![20]));
        assert_eq!(version_key("1.8", 3), Some(vec![1, 8, 0]));
    }
}
