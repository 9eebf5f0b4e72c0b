//! The report a team acts on: a summary first, each secret to rotate once with every
//! location, repeats grouped in severity order; JSON adds `groups` and keeps every
//! finding; SARIF keeps one result per finding.

use serde_json::Value;

use crate::common::{run, run_json, write_files};
use orchestra_audit::testing::{ALNUM, random_text};

/// A repository with one token in three files, another token once, one stale id
/// repeated in a file and a rule firing twice in one file.
fn repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    // Built at run time so this source file holds no literal token.
    let token = format!("ghp_{}", random_text(ALNUM, 36, 41));
    let other = format!("ghp_{}", random_text(ALNUM, 36, 42));
    write_files(
        dir.path(),
        &[
            (
                "scripts/release.sh",
                &format!("#!/bin/sh\nexport GH_TOKEN={token}\n"),
            ),
            (
                "ci/publish.sh",
                &format!("#!/bin/sh\n\n\nexport GITHUB_TOKEN={token}\n"),
            ),
            (
                "config/app.env.sh",
                &format!("TOKEN={token}\nOTHER={other}\n"),
            ),
            (
                "deploy/x.yaml",
                "project: old-project\nbucket: gs://old-project-assets\nimage: gcr.io/old-project/api\n",
            ),
            (
                "compose.yaml",
                "services:\n  a:\n    image: redis\n  b:\n    image: postgres\n",
            ),
        ],
    );
    (dir, token)
}

#[test]
fn text_starts_with_a_summary_and_lists_a_repeated_secret_once() {
    let (dir, token) = repo();
    let root = dir.path().to_str().unwrap();
    let (_, out) = run(&[root, "--stale-id", "old-project", "--fail-on", "never"]);
    assert!(!out.contains(&token[4..]), "leaks the token:\n{out}");
    // The summary comes first: totals, counts by rule, then the secrets to rotate.
    assert!(
        out.starts_with("13 findings (") || out.lines().next().unwrap().contains(" findings ("),
        "{out}"
    );
    let by_rule = out.find("by rule:\n").expect("counts by rule");
    let rotate = out
        .find("fix these first: 2 secrets to rotate\n")
        .expect(&out);
    let first_finding = out.find("\ncritical  secret-provider-token").expect(&out);
    assert!(by_rule < rotate && rotate < first_finding, "{out}");
    assert!(out.contains("  critical  secret-provider-token"), "{out}");
    // The repeated token is one entry with its three locations, the other token another.
    let summary = &out[rotate..first_finding];
    assert_eq!(summary.matches("GitHub token").count(), 2, "{summary}");
    for at in [
        "ci/publish.sh:4",
        "config/app.env.sh:1",
        "scripts/release.sh:2",
    ] {
        assert_eq!(summary.matches(at).count(), 1, "{at} in {summary}");
    }
    assert!(summary.contains("config/app.env.sh:2"), "{summary}");
    // Findings in severity order: critical secrets, then the medium stale id, then low.
    let body = &out[first_finding..];
    assert!(
        body.contains("critical  secret-provider-token: the same secret at 3 locations"),
        "{body}"
    );
    let stale = body
        .find("medium  stale-id: `old-project` 3 times in deploy/x.yaml (lines 1, 2, 3)")
        .expect(body);
    let latest = body
        .find("compose-latest-tag: 2 times in compose.yaml (lines 3, 5)")
        .expect(body);
    let low = body.find("\nlow  ").expect(body);
    assert!(stale < low && latest < low, "{body}");
    // The totals close the report too.
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("findings ("),
        "{out}"
    );
}

#[test]
fn expand_lists_every_finding() {
    let (dir, _) = repo();
    let root = dir.path().to_str().unwrap();
    let (_, out) = run(&[
        root,
        "--stale-id",
        "old-project",
        "--fail-on",
        "never",
        "--expand",
    ]);
    assert!(
        out.contains("fix these first: 2 secrets to rotate"),
        "{out}"
    );
    assert_eq!(
        out.matches("  medium  stale-id  stale identifier").count(),
        3,
        "{out}"
    );
    assert!(out.contains("\ndeploy/x.yaml\n"), "by file: {out}");
    assert!(!out.contains("3 times in"), "{out}");
}

#[test]
fn json_keeps_every_finding_and_adds_groups() {
    let (dir, token) = repo();
    let root = dir.path().to_str().unwrap();
    let (_, r) = run_json(&[root, "--stale-id", "old-project", "--fail-on", "never"]);
    let text = r.to_string();
    assert!(!text.contains(&token[4..]), "leaks the token");
    let findings = r["findings"].as_array().unwrap();
    let groups = r["groups"].as_array().unwrap();
    // Every finding is in exactly one group, by index.
    let mut seen = vec![0; findings.len()];
    for g in groups {
        let idx = g["findings"].as_array().unwrap();
        assert_eq!(g["count"].as_u64().unwrap() as usize, idx.len(), "{g}");
        for i in idx {
            let i = i.as_u64().unwrap() as usize;
            seen[i] += 1;
            assert!(
                g["rules"]
                    .as_array()
                    .unwrap()
                    .contains(&findings[i]["rule"]),
                "{g}"
            );
        }
    }
    assert!(seen.iter().all(|n| *n == 1), "{seen:?}");
    let secrets: Vec<&Value> = groups.iter().filter(|g| g["kind"] == "secret").collect();
    assert_eq!(secrets.len(), 2, "{groups:?}");
    assert_eq!(secrets[0]["count"], 3);
    assert_eq!(secrets[0]["severity"], "critical");
    let mut at: Vec<String> = secrets[0]["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}:{}", l["path"].as_str().unwrap(), l["line"]))
        .collect();
    at.sort();
    assert_eq!(
        at,
        [
            "ci/publish.sh:4",
            "config/app.env.sh:1",
            "scripts/release.sh:2"
        ]
    );
    let stale = groups.iter().find(|g| g["kind"] == "name").unwrap();
    assert_eq!(stale["name"], "old-project");
    assert_eq!(stale["path"], "deploy/x.yaml");
    assert_eq!(stale["count"], 3);
    // Most severe first.
    let order = ["info", "low", "medium", "high", "critical"];
    let ranks: Vec<usize> = groups
        .iter()
        .map(|g| order.iter().position(|s| g["severity"] == *s).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    // The JSON report is still a baseline: nothing is new against itself.
    let elsewhere = tempfile::tempdir().unwrap();
    let baseline = elsewhere.path().join("baseline.json");
    std::fs::write(&baseline, serde_json::to_string(&r).unwrap()).unwrap();
    let (_, again) = run_json(&[
        root,
        "--stale-id",
        "old-project",
        "--baseline",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(again["findings"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["groups"].as_array().unwrap().len(), 0);
}

#[test]
fn sarif_keeps_one_result_per_location() {
    let (dir, _) = repo();
    let root = dir.path().to_str().unwrap();
    let (_, r) = run_json(&[root, "--stale-id", "old-project", "--fail-on", "never"]);
    let (_, sarif) = run(&[
        root,
        "--stale-id",
        "old-project",
        "--format",
        "sarif",
        "--fail-on",
        "never",
    ]);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), r["findings"].as_array().unwrap().len());
    let tokens = results
        .iter()
        .filter(|x| x["ruleId"] == "secret-provider-token")
        .count();
    assert_eq!(tokens, 4);
}
