//! Secrets family end to end: files on disk, .gitignore, redaction in every format.

use crate::common::{run, run_json, write_files};

fn token() -> String {
    // Built at run time so this source file holds no literal token.
    format!("ghp_{}", "Zq8Lm2Wp0Xv7TnB4kYdHs3Jc6Fg1Ue9Ai5Oo")
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = token();
    write_files(
        dir.path(),
        &[
            (
                "scripts/release.sh",
                &format!("#!/bin/sh\nexport GH_TOKEN={t}\n"),
            ),
            (".env", "DB_PASSWORD=Tz8qLw2xVb9rKeM4\n"),
            (".env.example", "DB_PASSWORD=\n"),
            ("ignored/.env.local", "API_KEY=Tz8qLw2xVb9rKeM4\n"),
            (".gitignore", "ignored/\n"),
        ],
    );
    dir
}

#[test]
fn reports_provider_tokens_and_committed_env_but_not_ignored_files() {
    let dir = repo();
    let (_, report) = run_json(&[dir.path().to_str().unwrap()]);
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with("secret-"))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["locations"][0]["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("secret-committed-file".to_string(), ".env".to_string()),
            ("secret-generic-assignment".to_string(), ".env".to_string()),
            (
                "secret-provider-token".to_string(),
                "scripts/release.sh".to_string()
            ),
        ]
    );
}

#[test]
fn secret_values_never_reach_any_output() {
    let dir = repo();
    let t = token();
    for format in ["text", "json", "sarif"] {
        let (code, out) = run(&[dir.path().to_str().unwrap(), "--format", format]);
        assert_eq!(code, 1, "{format}");
        assert!(out.contains("GitHub token"), "{format}: {out}");
        assert!(!out.contains(&t[8..]), "{format} leaks the token:\n{out}");
        assert!(
            !out.contains("Tz8qLw2xVb9rKeM4"),
            "{format} leaks the password:\n{out}"
        );
    }
}
