//! Pinned tool versions against what is on PATH: `.tool-versions`,
//! `mise.toml`, `rust-toolchain.toml`, `requires-python` in `pyproject.toml`,
//! `.python-version`, `.nvmrc`, and the Poetry version Dockerfiles and CI
//! install. Each file counts where it is nearest, from the manifest's
//! directory up to the repository's root, as the version managers read them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orchestra_manifest::{Check as Probe, Workload};

use super::{COMMAND_TIMEOUT, Check, Ctx, Ran, run_command, which};

/// Which file a pin comes from (for the fix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `.tool-versions` (asdf, mise).
    ToolVersions,
    /// `mise.toml`'s `[tools]`.
    Mise,
    /// `rust-toolchain.toml` (or `rust-toolchain`).
    RustToolchain,
    /// `pyproject.toml`: `requires-python` or Poetry's `python` dependency.
    PyProject,
    /// `.python-version` (pyenv, uv).
    PythonVersion,
    /// `.nvmrc`.
    Nvmrc,
    /// `poetry==X` in a Dockerfile or a CI file.
    Poetry,
}

/// What a pin asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Any of these versions (a version matches its own prefix: `20` is any 20.x).
    Versions(Vec<String>),
    /// A requirement such as `>=3.10,<3.13` (PEP 440, and Poetry's `^`/`~`).
    Spec(String),
}

impl std::fmt::Display for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Want::Versions(v) => f.write_str(&v.join(" or ")),
            Want::Spec(s) => f.write_str(s),
        }
    }
}

/// One pinned tool version.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The tool, as named here: `node`, `python`, `rust`, `poetry`, or a name from `.tool-versions`.
    pub tool: String,
    /// The version(s) asked for.
    pub want: Want,
    /// Where, as the user reads it (`.nvmrc`, `Dockerfile:12`).
    pub at: String,
    /// The kind of file.
    pub source: Source,
}

/// The same tool under its usual names.
fn canonical(tool: &str) -> String {
    match tool {
        "nodejs" => "node",
        "golang" => "go",
        "python3" => "python",
        "rustc" => "rust",
        t => t,
    }
    .to_owned()
}

/// The repository root above `dir` (the nearest directory with `.git`).
fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_owned)
}

/// Every pin that applies to the manifest's directory.
pub fn pins(ctx: &Ctx<'_>) -> Vec<Pin> {
    let dir = &ctx.manifest.dir;
    let root = git_root(dir);
    // Nearest first: the manifest's directory up to the repository's root.
    let dirs: Vec<&Path> = match &root {
        Some(r) => dir.ancestors().take_while(|d| d.starts_with(r)).collect(),
        None => vec![dir.as_path()],
    };
    let nearest = |names: &[&str]| -> Option<PathBuf> {
        dirs.iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|p| p.is_file())
    };
    let shown = |p: &Path| ctx.show(p);
    let mut out = Vec::new();
    if let Some(p) = nearest(&[".tool-versions"])
        && let Ok(text) = std::fs::read_to_string(&p)
    {
        out.extend(parse_tool_versions(&text, &shown(&p)));
    }
    if let Some(p) = nearest(&["mise.toml", ".mise.toml"])
        && let Ok(text) = std::fs::read_to_string(&p)
    {
        out.extend(parse_mise(&text, &shown(&p)));
    }
    if let Some(p) = nearest(&["rust-toolchain.toml", "rust-toolchain"])
        && let Ok(text) = std::fs::read_to_string(&p)
        && let Some(channel) = parse_rust_toolchain(&text)
    {
        out.push(Pin {
            tool: "rust".into(),
            want: Want::Versions(vec![channel]),
            at: shown(&p),
            source: Source::RustToolchain,
        });
    }
    if let Some(p) = nearest(&["pyproject.toml"])
        && let Ok(text) = std::fs::read_to_string(&p)
    {
        out.extend(parse_pyproject(&text, &shown(&p)));
    }
    if let Some(p) = nearest(&[".python-version"])
        && let Ok(text) = std::fs::read_to_string(&p)
    {
        let versions: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if !versions.is_empty() {
            out.push(Pin {
                tool: "python".into(),
                want: Want::Versions(versions),
                at: shown(&p),
                source: Source::PythonVersion,
            });
        }
    }
    if let Some(p) = nearest(&[".nvmrc"])
        && let Ok(text) = std::fs::read_to_string(&p)
        && let Some(v) = text.lines().map(str::trim).find(|l| !l.is_empty())
    {
        out.push(Pin {
            tool: "node".into(),
            want: Want::Versions(vec![v.to_owned()]),
            at: shown(&p),
            source: Source::Nvmrc,
        });
    }
    let base = root.as_deref().unwrap_or(dir);
    for (p, line, v) in poetry_pins(ctx, base) {
        if !out
            .iter()
            .any(|o| o.tool == "poetry" && o.want == Want::Versions(vec![v.clone()]))
        {
            out.push(Pin {
                tool: "poetry".into(),
                want: Want::Versions(vec![v]),
                at: format!("{}:{line}", shown(&p)),
                source: Source::Poetry,
            });
        }
    }
    out
}

fn parse_tool_versions(text: &str, at: &str) -> Vec<Pin> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or_default();
            let mut words = l.split_whitespace();
            let tool = words.next()?;
            let versions: Vec<String> = words.map(str::to_owned).collect();
            (!versions.is_empty()).then(|| Pin {
                tool: canonical(tool),
                want: Want::Versions(versions),
                at: at.to_owned(),
                source: Source::ToolVersions,
            })
        })
        .collect()
}

fn parse_mise(text: &str, at: &str) -> Vec<Pin> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(tools) = doc.get("tools").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let one = |v: &toml::Value| -> Option<String> {
        match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Table(t) => t.get("version")?.as_str().map(str::to_owned),
            _ => None,
        }
    };
    tools
        .iter()
        .filter_map(|(tool, v)| {
            let versions: Vec<String> = match v {
                toml::Value::Array(a) => a.iter().filter_map(one).collect(),
                other => one(other).into_iter().collect(),
            };
            // `npm:prettier`, `cargo:ripgrep`...: a package, not a tool on PATH by that name.
            (!versions.is_empty() && !tool.contains(':')).then(|| Pin {
                tool: canonical(tool),
                want: Want::Versions(versions),
                at: at.to_owned(),
                source: Source::Mise,
            })
        })
        .collect()
}

/// The channel of a `rust-toolchain.toml` (or of a legacy one-line `rust-toolchain`).
fn parse_rust_toolchain(text: &str) -> Option<String> {
    if let Ok(doc) = text.parse::<toml::Table>() {
        return doc
            .get("toolchain")?
            .get("channel")?
            .as_str()
            .map(str::to_owned);
    }
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    (!line.contains(['=', '['])).then(|| line.to_owned())
}

fn parse_pyproject(text: &str, at: &str) -> Vec<Pin> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |spec: Option<&str>, field: &str| {
        if let Some(s) = spec {
            out.push(Pin {
                tool: "python".into(),
                want: Want::Spec(s.to_owned()),
                at: format!("{at} ({field})"),
                source: Source::PyProject,
            });
        }
    };
    push(
        doc.get("project")
            .and_then(|p| p.get("requires-python"))
            .and_then(toml::Value::as_str),
        "project.requires-python",
    );
    push(
        doc.get("tool")
            .and_then(|t| t.get("poetry"))
            .and_then(|p| p.get("dependencies"))
            .and_then(|d| d.get("python"))
            .and_then(toml::Value::as_str),
        "tool.poetry.dependencies.python",
    );
    out
}

/// `poetry==1.8.3`, `poetry@1.8.3`, `POETRY_VERSION=1.8.3`, `poetry-version: 1.8.3`
/// in the repository's Dockerfiles and CI files: (file, line, version).
fn poetry_pins(ctx: &Ctx<'_>, root: &Path) -> Vec<(PathBuf, usize, String)> {
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    for dir in [root, ctx.manifest.dir.as_path()] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("Dockerfile")
                    || name.ends_with(".Dockerfile")
                    || name == ".gitlab-ci.yml"
                {
                    files.insert(e.path());
                }
            }
        }
    }
    for s in &ctx.selected {
        if let Workload::Build { build, .. } = &s.workload {
            files.insert(
                build.context.join(
                    build
                        .dockerfile
                        .as_deref()
                        .unwrap_or(Path::new("Dockerfile")),
                ),
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join(".github/workflows")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                files.insert(p);
            }
        }
    }
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(v) = poetry_version_in(line) {
                out.push((f.clone(), i + 1, v));
            }
        }
    }
    out
}

fn poetry_version_in(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    for marker in [
        "poetry==",
        "poetry@",
        "poetry_version=",
        "poetry_version:",
        "poetry-version:",
        "poetry_version ",
    ] {
        if let Some(at) = lower.find(marker) {
            let rest = line[at + marker.len()..].trim_start_matches([' ', '"', '\'', '=']);
            let v: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let v = v.trim_end_matches('.');
            if v.contains('.') {
                return Some(v.to_owned());
            }
        }
    }
    None
}

/// What is on PATH for one tool.
#[derive(Debug, Clone)]
pub enum Found {
    /// No such executable.
    NotOnPath,
    /// It ran and printed this version (`None` when it printed none).
    Version {
        /// The executable.
        path: PathBuf,
        /// The version in its output.
        version: Option<String>,
        /// The first line of its output.
        said: String,
    },
    /// It did not run, failed or timed out.
    Broken {
        /// The executable.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Rust through rustup: the installed toolchains (rustup selects the pinned one).
    Rustup {
        /// The `rustup` executable.
        path: PathBuf,
        /// `1.95.0-x86_64-unknown-linux-gnu`, `stable-...`.
        toolchains: Vec<String>,
    },
}

/// How to ask a tool its version.
fn program_for(tool: &str) -> (Vec<&str>, &'static [&'static str]) {
    match tool {
        "python" => (vec!["python3", "python"], &["--version"]),
        "rust" => (vec!["rustc"], &["--version"]),
        "go" => (vec!["go"], &["version"]),
        "java" => (vec!["java"], &["-version"]),
        other => (vec![other], &["--version"]),
    }
}

/// Ask every pinned tool its version, all at once, each within the timeout.
pub async fn probe(dir: PathBuf, tools: BTreeSet<String>) -> BTreeMap<String, Found> {
    let mut set = tokio::task::JoinSet::new();
    for tool in tools {
        let dir = dir.clone();
        set.spawn(async move {
            let found = probe_one(&tool, &dir).await;
            (tool, found)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        if let Ok((tool, found)) = r {
            out.insert(tool, found);
        }
    }
    out
}

async fn probe_one(tool: &str, dir: &Path) -> Found {
    if tool == "rust"
        && let Some(rustup) = which("rustup")
    {
        // Listing is local; running `rustc` here could make rustup download the pin.
        return match run_command(&rustup, &["toolchain", "list"], dir, &[]).await {
            Ran::Ok(out) => Found::Rustup {
                path: rustup,
                toolchains: out
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_owned)
                    .collect(),
            },
            other => Found::Broken {
                path: rustup,
                why: why(&other, "rustup toolchain list"),
            },
        };
    }
    let (names, args) = program_for(tool);
    let Some(path) = names.iter().find_map(|n| which(n)) else {
        return Found::NotOnPath;
    };
    let ran = run_command(&path, args, dir, &[("RUSTUP_AUTO_INSTALL", "0")]).await;
    match ran {
        Ran::Ok(out) => Found::Version {
            version: version_in(&out),
            said: out.lines().next().unwrap_or_default().trim().to_owned(),
            path,
        },
        other => {
            let shown = format!(
                "{} {}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                args.join(" ")
            );
            Found::Broken {
                why: why(&other, &shown),
                path,
            }
        }
    }
}

fn why(ran: &Ran, what: &str) -> String {
    match ran {
        Ran::Ok(_) => String::new(),
        Ran::Failed(out) => format!(
            "`{what}` failed: {}",
            out.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no output")
        ),
        Ran::TimedOut => format!(
            "`{what}` did not answer within {}s",
            COMMAND_TIMEOUT.as_secs()
        ),
        Ran::NotStarted(e) => format!("`{what}` cannot run: {e}"),
    }
}

/// The first version number in a tool's output: `Python 3.12.1`, `v20.11.0`,
/// `go1.22.1`, `Poetry (version 1.8.3)`.
pub fn version_in(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts =
            b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.'));
        if starts {
            let end = b[i..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                .map_or(b.len(), |n| i + n);
            let v = text[i..end].trim_end_matches('.');
            if v.contains('.') {
                return Some(v.to_owned());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    None
}

/// The numeric components a version starts with: `v20.11.0` → [20, 11, 0],
/// `3.11-dev` → [3, 11]; `None` for `latest`, `system`, `lts/*`, `stable`.
fn numbers(v: &str) -> Option<Vec<u64>> {
    let v = v.trim().trim_start_matches(['v', 'V']);
    let v = v.strip_prefix("python-").unwrap_or(v);
    let mut out = Vec::new();
    for part in v.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        out.push(digits.parse().ok()?);
        if digits.len() != part.len() {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn cmp(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn prefix(pin: &[u64], have: &[u64]) -> bool {
    pin.len() <= have.len() && pin.iter().zip(have).all(|(a, b)| a == b)
}

/// Whether `have` satisfies `want`; `None` when `want` is not a version
/// (`latest`, `lts/*`, `system`) or cannot be read.
pub fn satisfies(want: &Want, have: &str) -> Option<bool> {
    let have = numbers(have)?;
    match want {
        Want::Versions(list) => {
            let pins: Vec<Vec<u64>> = list.iter().filter_map(|v| numbers(v)).collect();
            if pins.is_empty() {
                return None;
            }
            Some(pins.iter().any(|p| prefix(p, &have)))
        }
        Want::Spec(spec) => {
            let mut all = true;
            for clause in spec.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                all &= clause_holds(clause, &have)?;
            }
            Some(all)
        }
    }
}

fn clause_holds(clause: &str, have: &[u64]) -> Option<bool> {
    let ops = ["===", "~=", "==", "!=", "<=", ">=", "<", ">", "^", "~", "="];
    let (op, rest) = ops
        .iter()
        .find_map(|op| clause.strip_prefix(op).map(|r| (*op, r.trim())))
        .unwrap_or(("==", clause));
    let wildcard = rest.ends_with(".*") || rest == "*";
    if rest == "*" {
        return Some(true);
    }
    let v = numbers(rest.trim_end_matches(".*"))?;
    let o = cmp(have, &v);
    Some(match op {
        "==" | "===" | "=" if wildcard => prefix(&v, have),
        "==" | "===" | "=" => o == Ordering::Equal,
        "!=" if wildcard => !prefix(&v, have),
        "!=" => o != Ordering::Equal,
        "<=" => o != Ordering::Greater,
        ">=" => o != Ordering::Less,
        "<" => o == Ordering::Less,
        ">" => o == Ordering::Greater,
        "~=" => o != Ordering::Less && v.len() >= 2 && prefix(&v[..v.len() - 1], have),
        // Poetry: ^1.2.3 is >=1.2.3,<2.0.0 (the first non-zero component is kept); ~1.2 is >=1.2,<1.3.
        "^" => {
            let keep = v.iter().position(|n| *n != 0).unwrap_or(v.len() - 1) + 1;
            o != Ordering::Less && prefix(&v[..keep.min(v.len())], have)
        }
        "~" => {
            let keep = if v.len() >= 2 { 2 } else { 1 };
            o != Ordering::Less && prefix(&v[..keep], have)
        }
        _ => return None,
    })
}

/// The tool a command runs, as pins name it.
fn tool_of_command(argv0: &str) -> String {
    let base = Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tool = match base.as_str() {
        "npm" | "npx" => "node",
        "cargo" => "rust",
        "pip" | "pip3" => "python",
        b if b.starts_with("python") => "python",
        b => b,
    };
    canonical(tool)
}

/// The fields whose commands run `tool` (process services, their hooks and exec probes).
fn needed_by(ctx: &Ctx<'_>, tool: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in &ctx.selected {
        let Workload::Process { command } = &s.workload else {
            continue;
        };
        let mut cmds: Vec<(String, &Vec<String>)> =
            vec![(format!("services.{}.command", s.name), command)];
        for (kind, hooks) in [
            ("pre", &s.deploy.hooks.pre),
            ("smoke", &s.deploy.hooks.smoke),
            ("post", &s.deploy.hooks.post),
        ] {
            for (i, h) in hooks.iter().enumerate() {
                cmds.push((format!("services.{}.deploy.hooks.{kind}[{i}]", s.name), h));
            }
        }
        for (field, probe) in [("healthcheck", &s.healthcheck), ("readiness", &s.readiness)] {
            if let Some(p) = probe
                && let Probe::Exec { command } = &p.check
            {
                cmds.push((format!("services.{}.{field}", s.name), command));
            }
        }
        for (field, argv) in cmds {
            if argv.first().is_some_and(|a| tool_of_command(a) == tool) {
                out.push(field);
            }
        }
    }
    out
}

/// Whether rustup has `channel` installed: it names a toolchain `CHANNEL-HOST`
/// (`1.89.0-x86_64-unknown-linux-gnu`, `nightly-2025-01-01-...`), and downloads
/// a pinned channel it lacks on first use.
fn rustup_has(toolchains: &[String], channel: &str) -> bool {
    toolchains
        .iter()
        .any(|t| t == channel || t.starts_with(&format!("{channel}-")))
}

fn install_hint(pin: &Pin) -> String {
    let want = &pin.want;
    if pin.tool == "rust" && pin.source != Source::RustToolchain {
        return format!(
            "`rustup toolchain install {want}` (or `mise install`); or change rust's line in {}",
            pin.at
        );
    }
    match pin.source {
        Source::ToolVersions => format!(
            "`mise install` (or `asdf install`) installs {} {want}; or change its line in {}",
            pin.tool, pin.at
        ),
        Source::Mise => format!(
            "`mise install` installs {} {want}; or change tools.{} in {}",
            pin.tool, pin.tool, pin.at
        ),
        Source::RustToolchain => format!(
            "`rustup toolchain install {want}`; or change toolchain.channel in {}",
            pin.at
        ),
        Source::PyProject => format!(
            "use a Python that satisfies `{want}` (`pyenv install`, `uv python install`); or change {}",
            pin.at
        ),
        Source::PythonVersion => format!("`pyenv install {want}`; or change {}", pin.at),
        Source::Nvmrc => format!("`nvm install` (reads {}); or change it", pin.at),
        Source::Poetry => format!(
            "`pipx install poetry=={want}` (the version {} installs)",
            pin.at
        ),
    }
}

/// One check per pinned tool.
pub fn checks(ctx: &Ctx<'_>, pins: &[Pin], found: &BTreeMap<String, Found>) -> Vec<Check> {
    if pins.is_empty() {
        return vec![Check::skip(
            "tools",
            "no pinned tool versions (.tool-versions, mise.toml, rust-toolchain.toml, pyproject.toml, .python-version, .nvmrc, poetry in Dockerfiles or CI)",
        )];
    }
    let mut tools: Vec<&str> = Vec::new();
    for p in pins {
        if !tools.contains(&p.tool.as_str()) {
            tools.push(&p.tool);
        }
    }
    tools
        .into_iter()
        .map(|tool| {
            let mine: Vec<&Pin> = pins.iter().filter(|p| p.tool == tool).collect();
            tool_check(ctx, tool, &mine, found.get(tool))
        })
        .collect()
}

fn tool_check(ctx: &Ctx<'_>, tool: &str, pins: &[&Pin], found: Option<&Found>) -> Check {
    let id = format!("tool.{tool}");
    let needed = needed_by(ctx, tool);
    let pinned = pins
        .iter()
        .map(|p| format!("{} ({})", p.at, p.want))
        .collect::<Vec<_>>()
        .join(", ");
    let bad = |summary: String, fix: String| {
        if needed.is_empty() {
            Check::warn(&id, summary, fix)
        } else {
            Check::fail(
                &id,
                format!(
                    "{summary}; {} run{} it",
                    needed.join(", "),
                    if needed.len() == 1 { "s" } else { "" }
                ),
                fix,
            )
        }
    };
    let fixes = |ps: &[&Pin]| {
        ps.iter()
            .map(|p| install_hint(p))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match found {
        None | Some(Found::NotOnPath) => bad(
            format!("{tool} is not on PATH; pinned by {pinned}"),
            fixes(pins),
        ),
        Some(Found::Broken { path, why }) => bad(
            format!(
                "{tool} at {} does not tell its version: {why}; pinned by {pinned}",
                path.display()
            ),
            fixes(pins),
        ),
        Some(Found::Version {
            path,
            version: None,
            said,
        }) => bad(
            format!(
                "{tool} at {} printed no version (`{said}`); pinned by {pinned}",
                path.display()
            ),
            fixes(pins),
        ),
        Some(Found::Version {
            path,
            version: Some(v),
            ..
        }) => {
            let wrong: Vec<&Pin> = pins
                .iter()
                .copied()
                .filter(|p| satisfies(&p.want, v) == Some(false))
                .collect();
            let have = format!("{tool} {v} ({})", path.display());
            if wrong.is_empty() {
                Check::pass(&id, format!("{have} matches {pinned}"))
            } else {
                let wanted = wrong
                    .iter()
                    .map(|p| format!("{} ({})", p.at, p.want))
                    .collect::<Vec<_>>()
                    .join(", ");
                bad(format!("{have} does not match {wanted}"), fixes(&wrong))
            }
        }
        Some(Found::Rustup { path, toolchains }) => {
            let wrong: Vec<&Pin> = pins
                .iter()
                .copied()
                .filter(|p| {
                    let Want::Versions(list) = &p.want else {
                        return false;
                    };
                    !list.iter().any(|channel| rustup_has(toolchains, channel))
                })
                .collect();
            if wrong.is_empty() {
                Check::pass(
                    &id,
                    format!(
                        "rustup ({}) has the pinned toolchain installed: {pinned}",
                        path.display()
                    ),
                )
            } else {
                bad(
                    format!(
                        "rustup ({}) has no toolchain {} (installed: {})",
                        path.display(),
                        wrong
                            .iter()
                            .map(|p| format!("{} as {} pins", p.want, p.at))
                            .collect::<Vec<_>>()
                            .join(", "),
                        if toolchains.is_empty() {
                            "none".to_owned()
                        } else {
                            toolchains.join(", ")
                        }
                    ),
                    fixes(&wrong),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Want {
        Want::Versions(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn versions_are_found_in_what_tools_print() {
        assert_eq!(version_in("Python 3.12.1\n").as_deref(), Some("3.12.1"));
        assert_eq!(version_in("v20.11.0").as_deref(), Some("20.11.0"));
        assert_eq!(
            version_in("go version go1.22.1 linux/amd64").as_deref(),
            Some("1.22.1")
        );
        assert_eq!(
            version_in("Poetry (version 1.8.3)").as_deref(),
            Some("1.8.3")
        );
        assert_eq!(
            version_in("rustc 1.95.0 (abcdef 2025-01-01)").as_deref(),
            Some("1.95.0")
        );
        assert_eq!(version_in("x86_64 build 7"), None);
    }

    #[test]
    fn a_pin_matches_its_own_prefix_only() {
        assert_eq!(satisfies(&v(&["20"]), "20.11.0"), Some(true));
        assert_eq!(satisfies(&v(&["v20.11"]), "20.11.0"), Some(true));
        assert_eq!(satisfies(&v(&["20.11.1"]), "20.11.0"), Some(false));
        assert_eq!(satisfies(&v(&["3.10", "3.11.4"]), "3.11.4"), Some(true));
        assert_eq!(satisfies(&v(&["2"]), "20.1"), Some(false));
        assert_eq!(satisfies(&v(&["lts/*"]), "20.1.0"), None);
        assert_eq!(satisfies(&v(&["system"]), "3.1"), None);
    }

    #[test]
    fn python_requirements_follow_pep_440_and_poetry() {
        let s = |x: &str| Want::Spec(x.to_owned());
        assert_eq!(satisfies(&s(">=3.10"), "3.12.1"), Some(true));
        assert_eq!(satisfies(&s(">=3.10,<3.12"), "3.12.1"), Some(false));
        assert_eq!(satisfies(&s("==3.11.*"), "3.11.9"), Some(true));
        assert_eq!(satisfies(&s("!=3.11.*"), "3.11.9"), Some(false));
        assert_eq!(satisfies(&s("~=3.10"), "3.13.0"), Some(true));
        assert_eq!(satisfies(&s("~=3.10.2"), "3.11.0"), Some(false));
        assert_eq!(satisfies(&s("^3.11"), "3.12.0"), Some(true));
        assert_eq!(satisfies(&s("^3.11"), "4.0.0"), Some(false));
        assert_eq!(satisfies(&s("~3.11"), "3.12.0"), Some(false));
        assert_eq!(satisfies(&s(">= 3.9"), "3.8.10"), Some(false));
    }

    #[test]
    fn pin_files_are_read() {
        let p = parse_tool_versions(
            "nodejs 20.11.0 # lts\n\npython 3.11.4 3.10.0\nbad\n",
            ".tool-versions",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].tool, "node");
        assert_eq!(p[1].want, v(&["3.11.4", "3.10.0"]));
        let m = parse_mise(
            "[tools]\nnode = \"20\"\npython = [\"3.12\", \"3.11\"]\ngo = { version = \"1.22\" }\n\"npm:prettier\" = \"3\"\n",
            "mise.toml",
        );
        let names: Vec<&str> = m.iter().map(|p| p.tool.as_str()).collect();
        assert_eq!(names, ["go", "node", "python"]);
        assert_eq!(
            parse_rust_toolchain("[toolchain]\nchannel = \"1.89\"\n").as_deref(),
            Some("1.89")
        );
        assert_eq!(parse_rust_toolchain("1.80.0\n").as_deref(), Some("1.80.0"));
        let py = parse_pyproject(
            "[project]\nrequires-python = \">=3.10\"\n[tool.poetry.dependencies]\npython = \"^3.10\"\n",
            "pyproject.toml",
        );
        assert_eq!(py.len(), 2);
        assert_eq!(py[1].want, Want::Spec("^3.10".into()));
        assert_eq!(
            poetry_version_in("RUN pip install \"poetry==1.8.3\"").as_deref(),
            Some("1.8.3")
        );
        assert_eq!(
            poetry_version_in("ENV POETRY_VERSION=1.7.1 \\").as_deref(),
            Some("1.7.1")
        );
        assert_eq!(
            poetry_version_in("          poetry-version: '1.8.2'").as_deref(),
            Some("1.8.2")
        );
        assert_eq!(poetry_version_in("RUN poetry install"), None);
    }

    #[test]
    fn a_rustup_channel_is_installed_only_under_its_own_name() {
        let installed = [
            "stable-x86_64-unknown-linux-gnu".to_owned(),
            "1.95.0-x86_64-unknown-linux-gnu".to_owned(),
        ];
        assert!(rustup_has(&installed, "1.95.0"));
        assert!(rustup_has(&installed, "stable"));
        // `1.95` is its own channel (the latest 1.95.x), which rustup would download.
        assert!(!rustup_has(&installed, "1.95"));
        assert!(!rustup_has(&installed, "nightly"));
    }

    #[test]
    fn commands_name_their_tools() {
        assert_eq!(tool_of_command("/usr/bin/python3.12"), "python");
        assert_eq!(tool_of_command("npx"), "node");
        assert_eq!(tool_of_command("cargo"), "rust");
        assert_eq!(tool_of_command("./bin/mytool"), "mytool");
    }
}
