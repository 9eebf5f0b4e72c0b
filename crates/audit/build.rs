//! Embeds every rule page of `docs/audit/rules/` so `orchestra audit --explain RULE`
//! works offline; the registry test checks that pages and rules match.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit/rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut pages: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .filter_map(|p| {
                    let id = p.file_stem()?.to_str()?.to_owned();
                    Some((id, p.canonicalize().ok()?.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    pages.sort();
    let mut code = String::from(
        "/// `(rule id, its docs page)`, sorted by id.\npub(crate) static PAGES: &[(&str, &str)] = &[\n",
    );
    for (id, path) in &pages {
        println!("cargo:rerun-if-changed={path}");
        let _ = writeln!(code, "    ({id:?}, include_str!({path:?})),");
    }
    code.push_str("];\n");
    let out =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("rule_docs.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
