//! Stale ids from the CLI and config, and the `fix rename-id` round trip on disk.

use clap::Parser;
use orchestra_audit::cli::{RenameIdArgs, run_rename_id};

use crate::common::{run_json, write_files};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: RenameIdArgs,
}

fn rename(argv: &[&str]) -> (i32, String) {
    let mut full = vec!["rename-id"];
    full.extend_from_slice(argv);
    let args = Cli::try_parse_from(full).unwrap().args;
    let mut out = Vec::new();
    let code = run_rename_id(&args, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

const FILES: &[(&str, &str)] = &[
    (
        ".github/workflows/deploy.yml",
        "env:\n  PROJECT: acme-old\njobs:\n  d:\n    steps:\n      - run: gcloud run deploy api --project acme-old --image gcr.io/acme-old/api\n",
    ),
    (
        "scripts/push.sh",
        "#!/bin/sh\ndocker push gcr.io/acme-old/api\n# acme-old2 and acme_old stay\n",
    ),
    (
        "poetry.lock",
        "# acme-old\n[[package]]\nname = \"x\"\nversion = \"1\"\n",
    ),
    (".orchestra-audit.toml", "stale-ids = [\"acme-old\"]\n"),
    ("ignored/notes.txt", "acme-old\n"),
    (".gitignore", "ignored/\n"),
];

fn stale(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "stale-id")
        .map(|f| {
            format!(
                "{}:{}",
                f["locations"][0]["path"].as_str().unwrap(),
                f["locations"][0]["line"]
            )
        })
        .collect()
}

#[test]
fn stale_ids_from_config_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), FILES);
    let root = dir.path().to_str().unwrap();
    let (_, report) = run_json(&[root]);
    assert_eq!(
        stale(&report),
        vec![
            ".github/workflows/deploy.yml:2",
            ".github/workflows/deploy.yml:6",
            ".github/workflows/deploy.yml:6",
            "poetry.lock:1",
            "scripts/push.sh:2",
        ]
    );
    let (_, report) = run_json(&[root, "--stale-id", "acme_old"]);
    assert_eq!(stale(&report).len(), 6);
}

#[test]
fn rename_id_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), FILES);
    let root = dir.path().to_str().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join("scripts/push.sh");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // Dry run: shows the plan, writes nothing.
    let (code, out) = rename(&["acme-old", "acme-prod", root, "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(".github/workflows/deploy.yml: 3 replacements"),
        "{out}"
    );
    assert!(out.contains("scripts/push.sh: 1 replacement\n"), "{out}");
    assert!(out.contains("- docker push gcr.io/acme-old/api"), "{out}");
    assert!(out.contains("+ docker push gcr.io/acme-prod/api"), "{out}");
    assert!(
        out.contains("skipped lockfile poetry.lock: 1 occurrence"),
        "{out}"
    );
    assert!(out.contains("nothing was written"), "{out}");
    let before = std::fs::read_to_string(dir.path().join("scripts/push.sh")).unwrap();
    assert!(before.contains("acme-old/api"));

    // For real: rewritten atomically, permissions kept, verified.
    let (code, out) = rename(&["acme-old", "acme-prod", root]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("replaced `acme-old` with `acme-prod`: 4 replacements in 2 files"),
        "{out}"
    );
    assert!(
        out.contains("verified: no reference to `acme-old` remains"),
        "{out}"
    );
    let push = std::fs::read_to_string(dir.path().join("scripts/push.sh")).unwrap();
    assert_eq!(
        push,
        "#!/bin/sh\ndocker push gcr.io/acme-prod/api\n# acme-old2 and acme_old stay\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("scripts/push.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    // Lockfile, config and ignored files are untouched; no temp files are left.
    assert!(
        std::fs::read_to_string(dir.path().join("poetry.lock"))
            .unwrap()
            .contains("acme-old")
    );
    assert!(
        std::fs::read_to_string(dir.path().join(".orchestra-audit.toml"))
            .unwrap()
            .contains("acme-old")
    );
    assert!(
        std::fs::read_to_string(dir.path().join("ignored/notes.txt"))
            .unwrap()
            .contains("acme-old")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["push.sh"]);

    // The audit agrees: only the skipped lockfile still mentions the old id.
    let (_, report) = run_json(&[root]);
    assert_eq!(stale(&report), vec!["poetry.lock:1"]);

    // --include-lockfiles finishes the job.
    let (code, out) = rename(&["acme-old", "acme-prod", root, "--include-lockfiles"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("poetry.lock: 1 replacement"), "{out}");
    let (_, report) = run_json(&[root]);
    assert!(stale(&report).is_empty());
}

#[test]
fn rename_id_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut cli = Cli::try_parse_from(["rename-id", "same", "same", root])
        .unwrap()
        .args;
    assert!(run_rename_id(&cli, &mut Vec::new()).is_err());
    cli.old = "has space".into();
    cli.new = "x".into();
    assert!(run_rename_id(&cli, &mut Vec::new()).is_err());
}
