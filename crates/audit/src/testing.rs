//! Helpers for rule tests: run one rule on in-memory files.
//!
//! ```
//! use orchestra_audit::testing::run_rule;
//! use orchestra_audit::rules::dockerfile::dockerfile_latest_tag::LatestTag;
//!
//! let findings = run_rule(&LatestTag, &[("Dockerfile", "FROM python\n")]);
//! assert_eq!(findings.len(), 1);
//! ```

use crate::config::Config;
use crate::finding::Finding;
use crate::repo::{Repository, Settings};
use crate::rule::Rule;
use crate::runner;

/// Run `rule` (file hooks and repository hook) on `(path, text)` files, applying inline
/// ignores. Findings come back sorted, with fingerprints.
#[must_use]
pub fn run_rule(rule: &dyn Rule, files: &[(&str, &str)]) -> Vec<Finding> {
    run_rule_with(rule, files, Settings::default())
}

/// [`run_rule`] with explicit settings (stale ids, rule options, date, OSV database).
#[must_use]
pub fn run_rule_with(rule: &dyn Rule, files: &[(&str, &str)], settings: Settings) -> Vec<Finding> {
    let repo = Repository::from_memory(files, settings);
    let (raw, notes) = runner::run_rules(&repo, &[rule]);
    assert!(notes.is_empty(), "rule crashed: {notes:?}");
    runner::finish(&repo, raw, &Config::default(), None).findings
}

/// Run `rule` on a repository built by the test (for what files alone cannot say,
/// such as the dependency trees a walk counted).
#[must_use]
pub fn run_repo_rule(rule: &dyn Rule, repo: &Repository) -> Vec<Finding> {
    let (raw, notes) = runner::run_rules(repo, &[rule]);
    assert!(notes.is_empty(), "rule crashed: {notes:?}");
    runner::finish(repo, raw, &Config::default(), None).findings
}

/// Run every registered rule on in-memory files; returns the findings of all rules.
#[must_use]
pub fn run_all(files: &[(&str, &str)]) -> Vec<Finding> {
    let repo = Repository::from_memory(files, Settings::default());
    runner::audit_repository(&repo, &Config::default(), None).findings
}

/// The rule ids of `findings`, in order (handy in assertions).
#[must_use]
pub fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

/// Letters and digits, for [`random_text`].
pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` pseudo-random characters of `alphabet` (xorshift from `seed`): test secrets that
/// look random to the rules (no repeated unit, no runs) without any file holding one.
#[must_use]
pub fn random_text(alphabet: &str, n: usize, seed: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chars[(x % chars.len().max(1) as u64) as usize]
        })
        .collect()
}

/// Standard base64 with padding (for building test key material).
#[must_use]
pub fn encode_base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A PEM block `-----BEGIN {kind}PRIVATE KEY-----` (`kind` is `""`, `"RSA "`, `"EC "`,
/// `"ENCRYPTED "`, `"OPENSSH "`) whose body has a complete key's structure (a DER
/// `SEQUENCE` of the right length, or the `openssh-key-v1` header) filled with
/// pseudo-random bytes from `seed`: the audit treats it as a real key, and it is none.
#[must_use]
pub fn fake_private_key(kind: &str, seed: u64) -> String {
    let filler = random_text(ALNUM, 1190, seed);
    let mut der = Vec::with_capacity(1200);
    if kind.trim() == "OPENSSH" {
        der.extend_from_slice(b"openssh-key-v1\0");
        der.extend_from_slice(filler.as_bytes());
    } else {
        let len = filler.len();
        der.extend_from_slice(&[0x30, 0x82, (len >> 8) as u8, len as u8]);
        der.extend_from_slice(filler.as_bytes());
    }
    let b64 = encode_base64(&der);
    let mut block = format!("-----BEGIN {kind}PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        block.push_str(&String::from_utf8_lossy(line));
        block.push('\n');
    }
    block.push_str(&format!("-----END {kind}PRIVATE KEY-----\n"));
    block
}
