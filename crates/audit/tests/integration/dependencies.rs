//! Known-vulnerable dependencies against the offline OSV fixture (tests/fixtures/osv).

use std::path::PathBuf;

use crate::common::{run_json, write_files};

fn osv_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/osv")
        .to_string_lossy()
        .into_owned()
}

const POETRY_LOCK: &str = "[[package]]\nname = \"jinja2\"\nversion = \"3.1.2\"\n\n[[package]]\nname = \"requests\"\nversion = \"2.32.3\"\n\n[[package]]\nname = \"fastapi\"\nversion = \"0.110.0\"\n";
const PACKAGE_LOCK: &str = r#"{
  "name": "web",
  "lockfileVersion": 3,
  "packages": {
    "": {"name": "web"},
    "node_modules/lodash": {"version": "4.17.20"},
    "node_modules/left-pad": {"version": "1.3.0"}
  }
}
"#;
const CARGO_LOCK: &str = "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"smallvec-local\"\nversion = \"1.0.0\"\n";

fn vulns(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "dependency-known-vulnerability")
        .map(|f| {
            (
                f["locations"][0]["path"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn matches_every_ecosystem_offline() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("api/poetry.lock", POETRY_LOCK),
            ("api/requirements.txt", "requests==2.31.0\njinja2==3.1.3\n"),
            ("web/package-lock.json", PACKAGE_LOCK),
            ("Cargo.lock", CARGO_LOCK),
        ],
    );
    let osv = osv_dir();
    let (_, report) = run_json(&[dir.path().to_str().unwrap(), "--osv-db", &osv]);
    let v = vulns(&report);
    let expected = vec![
        (
            "Cargo.lock",
            "high",
            "crates.io `smallvec` 1.6.0 is affected by TEST-RS-0001: Fictional: buffer overflow in insert_many; no fixed version is published",
        ),
        (
            "api/poetry.lock",
            "medium",
            "PyPI `jinja2` 3.1.2 is affected by TEST-PY-0001 (CVE-2099-0001): Fictional: HTML attribute injection in the xmlattr filter; fixed in 3.1.3",
        ),
        (
            "api/requirements.txt",
            "high",
            "PyPI `requests` 2.31.0 is affected by TEST-PY-0002 (CVE-2099-0002): Fictional: certificate verification stays disabled across requests in a session; fixed in 2.32.0",
        ),
        (
            "web/package-lock.json",
            "high",
            "npm `lodash` 4.17.20 is affected by TEST-NPM-0001 (CVE-2099-1001): Fictional: command injection in template(); fixed in 4.17.21",
        ),
    ];
    let got: Vec<(&str, &str, &str)> = v
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn osv_scanner_cache_layout_and_no_database() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("poetry.lock", POETRY_LOCK)]);
    // osv-scanner's cache: <cache>/osv-scanner/<Ecosystem>/… (unzipped records here).
    let cache = tempfile::tempdir().unwrap();
    let eco = cache.path().join("osv-scanner/PyPI");
    std::fs::create_dir_all(&eco).unwrap();
    let rec =
        std::fs::read_to_string(PathBuf::from(osv_dir()).join("PyPI/TEST-PY-0001.json")).unwrap();
    std::fs::write(eco.join("TEST-PY-0001.json"), rec).unwrap();
    let root = dir.path().to_str().unwrap();
    let (_, report) = run_json(&[root, "--osv-db", cache.path().to_str().unwrap()]);
    assert_eq!(vulns(&report).len(), 1);
    // Without a database the rule is silent (offline by design).
    let (_, report) = run_json(&[
        root,
        "--osv-db",
        dir.path().join("missing").to_str().unwrap(),
    ]);
    assert!(vulns(&report).is_empty());
}
