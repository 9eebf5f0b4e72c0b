//! Keeps the registry, the rule files and the docs in sync.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use orchestra_audit::registry;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docs_dir() -> PathBuf {
    crate_dir().join("../../docs/audit")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

#[test]
fn registry_matches_rule_files_and_docs() {
    let rules = registry::all();
    let rules_dir = crate_dir().join("src/rules");
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut expected_files = HashSet::new();
    let index = std::fs::read_to_string(docs_dir().join("README.md")).unwrap();
    for rule in &rules {
        let m = rule.meta();
        if !seen.insert(m.id) {
            problems.push(format!("{}: registered twice", m.id));
        }
        if !is_kebab(m.id) {
            problems.push(format!("{}: id is not kebab-case", m.id));
        }
        if m.help.trim().is_empty() || m.title.trim().is_empty() {
            problems.push(format!("{}: empty title or help", m.id));
        }
        let stem = m.id.replace('-', "_");
        let file = if m.family.is_empty() {
            rules_dir.join(format!("{stem}.rs"))
        } else {
            rules_dir.join(m.family).join(format!("{stem}.rs"))
        };
        if !file.is_file() {
            problems.push(format!("{}: expected rule file {}", m.id, file.display()));
        } else if !std::fs::read_to_string(&file)
            .unwrap()
            .contains(&format!("id: \"{}\"", m.id))
        {
            problems.push(format!(
                "{}: {} does not declare this id",
                m.id,
                file.display()
            ));
        }
        expected_files.insert(file.canonicalize().unwrap_or(file));
        let doc = docs_dir().join("rules").join(format!("{}.md", m.id));
        match std::fs::read_to_string(&doc) {
            Ok(text) if text.starts_with(&format!("# {}\n", m.id)) => {}
            Ok(_) => problems.push(format!(
                "{}: {} must start with `# {}`",
                m.id,
                doc.display(),
                m.id
            )),
            Err(_) => problems.push(format!("{}: missing docs {}", m.id, doc.display())),
        }
        let link = format!("[{0}](rules/{0}.md)", m.id);
        match index.lines().find(|l| l.contains(&link)) {
            None => problems.push(format!("{}: no line in docs/audit/README.md", m.id)),
            Some(line) => {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let family = if m.family.is_empty() {
                    "general"
                } else {
                    m.family
                };
                if cells.get(2) != Some(&family) || cells.get(3) != Some(&m.severity.as_str()) {
                    problems.push(format!(
                        "{}: README row must read `| {link} | {family} | {} | … |`",
                        m.id, m.severity
                    ));
                }
            }
        }
    }
    // Every file that declares a rule is registered (helper modules are fine).
    let mut files = Vec::new();
    rust_files(&rules_dir, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let canon = f.canonicalize().unwrap();
        if text.contains("RuleMeta {") && !expected_files.contains(&canon) {
            problems.push(format!(
                "{} declares a rule that is not registered",
                f.display()
            ));
        }
    }
    // No docs for rules that do not exist.
    for e in std::fs::read_dir(docs_dir().join("rules")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".md")
            && !seen.contains(id)
        {
            problems.push(format!("docs/audit/rules/{name}: no such rule"));
        }
    }
    assert!(
        problems.is_empty(),
        "registry out of sync:\n  {}",
        problems.join("\n  ")
    );
}
