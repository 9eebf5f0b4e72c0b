//! Parser coverage on a directory of real-world files, for `bench/audit/run.sh` with
//! `CORPUS=/path`: how many Dockerfiles and compose files were parsed, and how many of
//! them got a `parse-error` finding (with the first few messages).
//!
//! `cargo run --release -p orchestra-audit --example corpus_stats -- DIR`

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use orchestra_audit::FileKind;
use orchestra_audit::config::{Config, Date};
use orchestra_audit::repo::{Repository, Settings};
use orchestra_audit::runner::audit_repository;

/// Messages shown per kind.
const SHOWN: usize = 10;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: corpus_stats DIR");
        return ExitCode::from(2);
    };
    let settings = Settings {
        today: Date::today(),
        ..Settings::default()
    };
    let start = Instant::now();
    let repo = match Repository::load(dir.as_ref(), false, settings) {
        Ok(repo) => repo,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = audit_repository(&repo, &Config::default(), None);
    let elapsed = start.elapsed();

    // Files with at least one `parse-error` finding, by kind, with their first message.
    let mut failed: BTreeMap<&str, (FileKind, String)> = BTreeMap::new();
    for f in report.findings.iter().filter(|f| f.rule == "parse-error") {
        let Some(loc) = f.primary() else { continue };
        let Some(file) = repo.file(&loc.path) else {
            continue;
        };
        failed.entry(file.path()).or_insert_with(|| {
            (
                file.kind,
                format!("{}:{}: {}", loc.path, loc.span.start.line, f.message),
            )
        });
    }
    println!(
        "corpus: {} files audited in {:.3}s, {} findings",
        report.files_scanned,
        elapsed.as_secs_f64(),
        report.findings.len()
    );
    for (kind, name) in [
        (FileKind::Dockerfile, "Dockerfiles"),
        (FileKind::Compose, "compose files"),
    ] {
        let parsed = repo.files_of(kind).count();
        let errors: Vec<&String> = failed
            .values()
            .filter(|(k, _)| *k == kind)
            .map(|(_, m)| m)
            .collect();
        println!(
            "corpus: {parsed} {name} parsed, {} with a parse-error finding",
            errors.len()
        );
        for m in errors.iter().take(SHOWN) {
            println!("  {m}");
        }
        if errors.len() > SHOWN {
            println!("  … and {} more", errors.len() - SHOWN);
        }
    }
    ExitCode::SUCCESS
}
