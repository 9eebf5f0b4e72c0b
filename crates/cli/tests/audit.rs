//! `orchestra audit` through the real binary: the exit codes its help promises
//! (0 clean, 1 findings at `--fail-on`, 2 when the audit itself fails) and rule
//! pages served offline by `--explain`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Project;
use serde_json::Value;

const PRIVILEGED: &str = "services:\n  app:\n    image: redis:7.2\n    privileged: true\n";

fn code(p: &Project, args: &[&str]) -> (Option<i32>, String, String) {
    let out = p.run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_are_zero_clean_one_for_findings_two_for_errors() {
    let p = Project::new("services:\n  api:\n    command: [demo-service]\n");
    let (c, out, err) = code(&p, &["audit", "--fail-on", "high"]);
    assert_eq!(c, Some(0), "a clean repository: {out}{err}");

    std::fs::write(p.path().join("compose.yaml"), PRIVILEGED).unwrap();
    let (c, out, _) = code(&p, &["audit"]);
    assert_eq!(
        c,
        Some(1),
        "a high finding fails the default --fail-on: {out}"
    );
    assert!(out.contains("compose-privileged"), "{out}");
    assert_eq!(code(&p, &["audit", "--fail-on", "critical"]).0, Some(0));
    assert_eq!(code(&p, &["audit", "--fail-on", "never"]).0, Some(0));

    // The audit could not run: 2, with the reason.
    let (c, _, err) = code(&p, &["audit", "no-such-dir"]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
    let (c, _, err) = code(&p, &["audit", "--disable", "compose-privilegd"]);
    assert_eq!(c, Some(2));
    assert!(err.contains("did you mean `compose-privileged`"), "{err}");
    std::fs::write(p.path().join("bad.toml"), "fail-on = \"sometimes\"\n").unwrap();
    let (c, _, err) = code(&p, &["audit", "--config", "bad.toml"]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("bad.toml"), "{err}");
    // A usage error is clap's, and also 2.
    assert_eq!(code(&p, &["audit", "--no-such-flag"]).0, Some(2));
}

#[test]
fn explain_prints_the_built_in_page_and_findings_point_at_it() {
    let p = Project::new("services:\n  api:\n    command: [demo-service]\n");
    let (c, page, _) = code(&p, &["audit", "--explain", "compose-privileged"]);
    assert_eq!(c, Some(0));
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/audit/rules/compose-privileged.md"),
    )
    .unwrap();
    assert_eq!(page, on_disk, "the page is the one in docs/audit/rules");
    let (c, _, err) = code(&p, &["audit", "--explain", "compose-privilegd"]);
    assert_eq!(c, Some(2));
    assert!(err.contains("did you mean `compose-privileged`"), "{err}");

    // Reports name no web address that does not exist: text says how to read the page,
    // JSON gives its path in the repository, SARIF carries the page itself.
    std::fs::write(p.path().join("compose.yaml"), PRIVILEGED).unwrap();
    let (_, text, _) = code(&p, &["audit"]);
    assert!(
        text.contains("= docs: orchestra audit --explain compose-privileged"),
        "{text}"
    );
    let (_, json, _) = code(&p, &["audit", "--format", "json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "compose-privileged")
        .unwrap();
    assert_eq!(f["docs"], "docs/audit/rules/compose-privileged.md", "{f}");
    let (_, sarif, _) = code(&p, &["audit", "--format", "sarif"]);
    assert!(!sarif.contains("https://github.com/orchestra"), "{sarif}");
    let v: Value = serde_json::from_str(&sarif).unwrap();
    let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    let rule = rules
        .iter()
        .find(|r| r["id"] == "compose-privileged")
        .unwrap();
    assert_eq!(rule["help"]["markdown"], on_disk.as_str());
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_committed_file_is_audited_even_when_gitignore_matches_it_and_node_modules_is_one_finding() {
    let p = Project::new("services:\n  api:\n    command: [demo-service]\n");
    let dir = p.path();
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join(".gitignore"), "secrets.txt\nnode_modules/\n").unwrap();
    // Built here so this file holds no token itself.
    let token = format!("ghp_{}", "Zq8Lm2Xv9Tr4Nw6Yp1Ks3Hd7Gf5Bj0Ce2Ua9");
    std::fs::write(dir.join("secrets.txt"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    let modules = dir.join("web/node_modules/left-pad");
    std::fs::create_dir_all(&modules).unwrap();
    for i in 0..300 {
        std::fs::write(
            modules.join(format!("f{i}.js")),
            format!("module.exports = {i};\n"),
        )
        .unwrap();
    }
    // An ignored file never committed stays out of the audit.
    std::fs::write(dir.join("local.txt"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    std::fs::write(
        dir.join(".gitignore"),
        "secrets.txt\nnode_modules/\nlocal.txt\n",
    )
    .unwrap();
    git(dir, &["add", "-f", "secrets.txt", "web/node_modules"]);
    git(dir, &["add", ".gitignore", "orchestra.yaml"]);

    let (c, json, err) = code(&p, &["audit", "--format", "json", "--fail-on", "never"]);
    assert_eq!(c, Some(0), "{err}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let at = |rule: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| f["locations"][0]["path"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(at("secret-provider-token"), ["secrets.txt"], "{json}");
    assert_eq!(
        at("committed-dependency-tree"),
        ["web/node_modules/"],
        "{json}"
    );
    let tree = findings
        .iter()
        .find(|f| f["rule"] == "committed-dependency-tree")
        .unwrap();
    assert!(
        tree["message"].as_str().unwrap().contains("300 files"),
        "{tree}"
    );
    // Nothing under node_modules was read as a file of its own.
    assert!(!json.contains("left-pad/f1.js"), "{json}");
    assert!(
        !json.contains("local.txt"),
        "an ignored, uncommitted file: {json}"
    );

    // --no-ignore reads everything on disk, the ignored file included.
    let (_, json, _) = code(
        &p,
        &[
            "audit",
            "--format",
            "json",
            "--no-ignore",
            "--fail-on",
            "never",
        ],
    );
    assert!(json.contains("local.txt"), "{json}");
}

#[test]
fn the_report_starts_with_a_summary_and_lists_a_repeated_secret_once() {
    let p = Project::new("services:\n  api:\n    command: [demo-service]\n");
    // Built at run time so this file holds no token itself.
    let alnum = orchestra_audit::testing::ALNUM;
    let token = format!(
        "ghp_{}",
        orchestra_audit::testing::random_text(alnum, 36, 7)
    );
    std::fs::create_dir_all(p.path().join("ci")).unwrap();
    p.write(
        "release.sh",
        &format!("#!/bin/sh\nexport GH_TOKEN={token}\n"),
    );
    p.write(
        "ci/publish.sh",
        &format!("#!/bin/sh\n\nGITHUB_TOKEN={token}\n"),
    );
    p.write("app.env.sh", &format!("# local\n\n\nTOKEN={token}\n"));
    p.write("compose.yaml", PRIVILEGED);

    let (c, out, err) = code(&p, &["audit"]);
    assert_eq!(c, Some(1), "{err}");
    assert!(!out.contains(&token[4..]), "the token leaks:\n{out}");
    // First the totals, the counts by rule and the secret to rotate, then the findings.
    let first = out.lines().next().unwrap();
    assert!(first.contains("findings (3 critical, 1 high"), "{out}");
    let rotate = out.find("fix these first: 1 secret to rotate").expect(&out);
    let findings = out.find("\ncritical  ").expect(&out);
    assert!(
        out.find("by rule:").unwrap() < rotate && rotate < findings,
        "{out}"
    );
    // One entry for the token, with each of its three locations once.
    let summary = &out[rotate..findings];
    assert_eq!(summary.matches("GitHub token").count(), 1, "{summary}");
    for at in ["app.env.sh:4", "ci/publish.sh:3", "release.sh:2"] {
        assert_eq!(summary.matches(at).count(), 1, "{at}: {summary}");
    }
    // In the findings, critical first: the token once, then the privileged service.
    let body = &out[findings..];
    assert_eq!(
        body.matches("the same secret at 3 locations").count(),
        1,
        "{body}"
    );
    assert!(
        body.find("secret-provider-token").unwrap() < body.find("compose-privileged").unwrap(),
        "{body}"
    );

    // --expand lists each finding; JSON keeps all three and groups them.
    let (_, expanded, _) = code(&p, &["audit", "--expand"]);
    assert_eq!(
        expanded
            .matches("  critical  secret-provider-token  GitHub token")
            .count(),
        3,
        "{expanded}"
    );
    let (_, json, _) = code(&p, &["audit", "--format", "json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let tokens = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "secret-provider-token")
        .count();
    assert_eq!(tokens, 3, "{json}");
    let secret = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "secret")
        .unwrap();
    assert_eq!(secret["count"], 3, "{secret}");
    assert_eq!(secret["locations"].as_array().unwrap().len(), 3, "{secret}");
}
