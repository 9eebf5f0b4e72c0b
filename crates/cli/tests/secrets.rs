//! `orchestra secrets` end to end: the real binary, a project in a temp dir, an
//! identity named by ORCHESTRA_AGE_KEY_FILE, and the real `age` CLI (Debian's `age`,
//! which scripts/test.sh installs) for interoperability.
//!
//! The tests that need the `age` CLI fail without it when CI is set; elsewhere they
//! print a SKIP line and return.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const MANIFEST: &str = "\
name: secrets-test
services:
  api:
    command: [\"sleep\", \"100\"]
    secrets: [DB_PASSWORD, API_TOKEN]
  worker:
    command: [\"sleep\", \"100\"]
    secrets: [DB_PASSWORD]
";

/// A project with a manifest and its own key file (not created yet).
struct Proj {
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Proj {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("orch-secrets")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("orchestra.yaml"), MANIFEST).unwrap();
        let key = dir.path().join("home/.config/orchestra/age.key");
        Self { dir, key }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, key: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(common::orchestra_bin());
        c.args(args)
            .current_dir(self.path())
            .env("ORCHESTRA_AGE_KEY_FILE", key)
            .env("HOME", self.path().join("home"))
            .stdin(Stdio::null());
        c
    }

    fn run_with(&self, key: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut c = self.command(key, args);
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&self.key, args, None)
    }

    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let out = self.run_with(&self.key, args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn set(&self, name: &str, value: &[u8]) -> String {
        let out = self.ok(&["secrets", "set", name], Some(value));
        String::from_utf8(out.stdout).unwrap()
    }

    fn get(&self, name: &str) -> Vec<u8> {
        self.ok(&["secrets", "get", name], None).stdout
    }

    fn recipient(&self) -> String {
        let out = self.ok(&["secrets", "init"], None);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the `age` CLI can be used: required under CI, skipped loudly elsewhere.
fn age_cli() -> bool {
    let works = Command::new("age")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the `age` CLI is missing and CI is set: install Debian's `age` package \
         (scripts/test.sh does: apt-get install -y age)"
    );
    eprintln!(
        "SKIP: the `age` CLI is not installed (apt-get install -y age): skipping an age interoperability test"
    );
    false
}

#[test]
fn set_from_stdin_then_get_is_byte_exact() {
    let p = Proj::new();
    // One trailing newline from stdin is dropped (so `echo value |` works)...
    assert_eq!(
        p.set("DB_PASSWORD", b"hunter2\n"),
        "DB_PASSWORD: version 1 stored (default)\n"
    );
    assert_eq!(p.get("DB_PASSWORD"), b"hunter2");
    // ... only one; a value without one is kept as it is.
    let multi =
        b"-----BEGIN KEY-----\nline one\n\n  indented \"quoted\" $HOME\n-----END KEY-----\n\n";
    assert_eq!(
        p.set("DB_PASSWORD", multi),
        "DB_PASSWORD: version 2 stored (default)\n"
    );
    assert_eq!(p.get("DB_PASSWORD"), &multi[..multi.len() - 1]);
    p.set("API_TOKEN", b"no-trailing-newline");
    assert_eq!(p.get("API_TOKEN"), b"no-trailing-newline");
    // --from-file stores the bytes exactly, newline and binary included.
    let bin: Vec<u8> = (0u8..=255).chain(*b"\n").collect();
    std::fs::write(p.path().join("blob"), &bin).unwrap();
    p.ok(&["secrets", "set", "BLOB", "--from-file", "blob"], None);
    assert_eq!(p.get("BLOB"), bin);
    // Old versions stay readable.
    assert_eq!(
        p.ok(&["secrets", "get", "DB_PASSWORD", "--version", "1"], None)
            .stdout,
        b"hunter2"
    );
    // The identity was created on first set, private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&p.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Environments are separate; -f finds the project from elsewhere.
    let other = tempfile::tempdir().unwrap();
    let manifest = p.path().join("orchestra.yaml");
    let mut c = p.command(&p.key, &["secrets", "set", "DB_PASSWORD", "--env", "prod"]);
    c.arg("-f").arg(&manifest).current_dir(other.path());
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"prod-pass").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "DB_PASSWORD: version 1 stored (prod)\n"
    );
    assert_eq!(
        p.ok(&["secrets", "get", "DB_PASSWORD", "--env", "prod"], None)
            .stdout,
        b"prod-pass"
    );
    assert!(p.path().join("secrets/prod/DB_PASSWORD/1.age").is_file());
}

#[test]
fn list_and_history_show_metadata_and_usage_never_values() {
    let p = Proj::new();
    p.set("DB_PASSWORD", b"VALUE-ONE-SECRET");
    p.set("DB_PASSWORD", b"VALUE-TWO-SECRET");
    p.set("UNUSED", b"VALUE-THREE-SECRET");
    let out = p.ok(&["secrets", "list", "--json"], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("SECRET\""), "{text}");
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    let by_name = |n: &str| list.iter().find(|s| s["name"] == n).unwrap().clone();
    let db = by_name("DB_PASSWORD");
    assert_eq!(db["versions"], 2);
    assert_eq!(db["latest"], 2);
    assert_eq!(db["used_by"], serde_json::json!(["api", "worker"]));
    assert!(db["updated_at_ms"].as_i64().unwrap() > 0);
    assert_eq!(by_name("UNUSED")["used_by"], serde_json::json!([]));
    // Referenced by the manifest, not stored.
    let missing = by_name("API_TOKEN");
    assert_eq!(missing["stored"], false);
    assert_eq!(missing["versions"], 0);

    let table = String::from_utf8(p.ok(&["secrets", "list"], None).stdout).unwrap();
    assert!(
        table.contains("DB_PASSWORD") && table.contains("api, worker"),
        "{table}"
    );
    assert!(table.contains("missing"), "{table}");
    assert!(!table.contains("VALUE-"), "{table}");

    let out = p.ok(&["secrets", "history", "DB_PASSWORD", "--json"], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("VALUE-"), "{text}");
    let h: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["version"], 1);
    assert_eq!(h[1]["latest"], true);
    assert!(h[0]["created_by"]["user"].is_string());
    assert!(h[0]["created_by"]["uid"].is_u64());

    // rm: latest no longer reads, old versions do.
    let out = p.ok(&["secrets", "rm", "DB_PASSWORD"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed"));
    let out = p.run(&["secrets", "get", "DB_PASSWORD"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("was removed"), "{}", stderr(&out));
    assert_eq!(
        p.ok(&["secrets", "get", "DB_PASSWORD", "--version", "1"], None)
            .stdout,
        b"VALUE-ONE-SECRET"
    );
}

#[test]
#[cfg_attr(
    missing_age,
    ignore = "the age CLI is not installed (apt-get install -y age)"
)]
fn age_cli_reads_what_orchestra_wrote_and_the_reverse() {
    if !age_cli() {
        return;
    }
    let p = Proj::new();
    let value = b"interop value\nwith two lines";
    p.set("API_TOKEN", value);
    // orchestra -> age CLI
    let file = p.path().join("secrets/default/API_TOKEN/1.age");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&p.key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "age -d failed: {}", stderr(&out));
    assert_eq!(out.stdout, value);

    // age CLI -> orchestra: encrypted to the recipient, placed as the next version.
    let recipient = p.recipient();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let next = p.path().join("secrets/default/API_TOKEN/2.age");
    let mut child = Command::new("age")
        .arg("-r")
        .arg(&recipient)
        .arg("-o")
        .arg(&next)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"written by the age CLI")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(p.get("API_TOKEN"), b"written by the age CLI");
    assert_eq!(
        p.ok(&["secrets", "get", "API_TOKEN", "--version", "1"], None)
            .stdout,
        value
    );
    // The store's recipients file is one `age -R` reads.
    let mut child = Command::new("age")
        .arg("-R")
        .arg(p.path().join("secrets/recipients.txt"))
        .arg("-o")
        .arg(p.path().join("secrets/default/API_TOKEN/3.age"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"via -R").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(p.get("API_TOKEN"), b"via -R");
    // And `set` continues after the hand-placed versions.
    assert_eq!(
        p.set("API_TOKEN", b"four"),
        "API_TOKEN: version 4 stored (default)\n"
    );

    // A key made by age-keygen works as the identity, and recipients add re-encrypts.
    let keygen = p.path().join("teammate.key");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&keygen)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mate = String::from_utf8(
        Command::new("age-keygen")
            .arg("-y")
            .arg(&keygen)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let denied = p.run_with(&keygen, &["secrets", "get", "API_TOKEN"], None);
    assert_eq!(denied.status.code(), Some(1));
    let out = p.ok(&["secrets", "recipients", "add", &mate], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-encrypted 4 files"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let got = p.run_with(
        &keygen,
        &["secrets", "get", "API_TOKEN", "--version", "2"],
        None,
    );
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(got.stdout, b"written by the age CLI");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&keygen)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.stdout, value);
    let list: Vec<Value> = serde_json::from_slice(
        &p.ok(&["secrets", "recipients", "list", "--json"], None)
            .stdout,
    )
    .unwrap();
    assert_eq!(list.len(), 2);
    p.ok(&["secrets", "recipients", "rm", &mate], None);
    let denied = p.run_with(&keygen, &["secrets", "get", "API_TOKEN"], None);
    assert!(stderr(&denied).contains("wrong key"), "{}", stderr(&denied));
}

#[test]
fn key_file_problems_are_clear_errors_naming_the_file() {
    let p = Proj::new();
    p.set("DB_PASSWORD", b"v");
    let file = p.path().join("secrets/default/DB_PASSWORD/1.age");

    // Another identity: wrong key, naming the version file and the key file.
    let other = p.path().join("other/age.key");
    let init = p.run_with(&other, &["secrets", "init"], None);
    assert!(init.status.success(), "{}", stderr(&init));
    let out = p.run_with(&other, &["secrets", "get", "DB_PASSWORD"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("wrong key"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains(&other.display().to_string()), "{err}");
    assert!(out.stdout.is_empty());
    // Writing with an identity that is not a recipient is refused (it could not read it).
    let out = p.run_with(&other, &["secrets", "set", "X"], Some(b"v"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("recipients add"), "{}", stderr(&out));

    // Missing and malformed key files.
    let missing = p.path().join("nope.key");
    let out = p.run_with(&missing, &["secrets", "get", "DB_PASSWORD"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&missing.display().to_string()),
        "{}",
        stderr(&out)
    );
    let bad = p.path().join("bad.key");
    std::fs::write(&bad, "not a key\n").unwrap();
    let out = p.run_with(&bad, &["secrets", "get", "DB_PASSWORD"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.key") && err.contains("not a valid age identity"),
        "{err}"
    );

    // A tampered file: corrupt, not "wrong key".
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();
    let out = p.run(&["secrets", "get", "DB_PASSWORD"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("tampered") && err.contains("1.age"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Init never overwrites the key.
    let before = std::fs::read(&p.key).unwrap();
    p.ok(&["secrets", "init"], None);
    assert_eq!(std::fs::read(&p.key).unwrap(), before);
}

#[test]
fn invalid_names_and_unknown_secrets_exit_1() {
    let p = Proj::new();
    for args in [
        &["secrets", "set", "1ST"][..],
        &["secrets", "set", "A-B"],
        &["secrets", "get", "NOPE"],
        &["secrets", "history", "NOPE"],
        &["secrets", "rm", "NOPE"],
        &["secrets", "list", "--env", "../x"],
    ] {
        let out = p.run_with(&p.key, args, Some(b"v"));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = p.run(&["secrets", "set", "A-B"]);
    assert!(
        stderr(&out).contains("environment variable name"),
        "{}",
        stderr(&out)
    );
    // No value argument exists.
    let out = p.run(&["secrets", "set", "NAME", "value"]);
    assert_ne!(out.status.code(), Some(0));
    // Help teaches, with examples.
    let help = String::from_utf8(p.ok(&["secrets", "--help"], None).stdout).unwrap();
    assert!(
        help.contains("Examples:") && help.contains("secrets set"),
        "{help}"
    );
}

#[test]
fn import_a_dotenv_file_then_get_each() {
    let p = Proj::new();
    let env = "\
# database
export DB_PASSWORD='p@ss $not-interpolated'
API_TOKEN=\"tok\\\"en\\nsecond\"   # a comment
TLS_KEY=\"-----BEGIN KEY-----
abc
-----END KEY-----\"
EMPTY=
PLAIN = spaced value
1st=1
INTERP=${HOME}/x
";
    let path = p.path().join(".env");
    std::fs::write(&path, env).unwrap();
    let out = p.ok(&["secrets", "import", ".env"], None);
    let err = stderr(&out);
    assert!(err.contains(".env:9:") && err.contains("1st"), "{err}");
    assert!(
        err.contains(".env:10:") && err.contains("interpolation"),
        "{err}"
    );
    assert!(err.contains("--replace"), "{err}");
    assert!(!err.contains("${HOME}/x"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        env,
        "unchanged without --replace"
    );
    for (name, want) in [
        ("DB_PASSWORD", &b"p@ss $not-interpolated"[..]),
        ("API_TOKEN", b"tok\"en\nsecond"),
        ("TLS_KEY", b"-----BEGIN KEY-----\nabc\n-----END KEY-----"),
        ("EMPTY", b""),
        ("PLAIN", b"spaced value"),
    ] {
        assert_eq!(p.get(name), want, "{name}");
    }
    assert_eq!(p.run(&["secrets", "get", "INTERP"]).status.code(), Some(1));

    // Again, with --replace: unchanged values make no new version; the file becomes a template.
    let out = p.ok(&["secrets", "import", ".env", "--replace"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DB_PASSWORD: unchanged (version 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# database\nexport DB_PASSWORD=\nAPI_TOKEN=\nTLS_KEY=\nEMPTY=\nPLAIN=\n1st=1\nINTERP=${HOME}/x\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
