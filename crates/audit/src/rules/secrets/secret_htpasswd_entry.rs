//! `secret-htpasswd-entry`: password hashes in a committed `.htpasswd` file.

use super::scannable;
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Reports each `user:hash` entry of a `.htpasswd` file.
pub struct HtpasswdEntry;

static META: RuleMeta = RuleMeta {
    id: "secret-htpasswd-entry",
    title: "Password hash committed in .htpasswd",
    family: "secrets",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Hashes in a repository can be cracked offline. Change these users' passwords, \
           remove the file from the repository and generate it at deploy time from a secret \
           (`htpasswd -Bbn user \"$PASSWORD\"`), using bcrypt (`-B`).",
};

/// The scheme of a hash and whether it is weak (fast to crack or not hashed at all).
fn scheme(hash: &str) -> (&'static str, bool) {
    if hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$") {
        ("bcrypt", false)
    } else if hash.starts_with("$apr1$") {
        ("Apache MD5", true)
    } else if hash.starts_with("$1$") {
        ("MD5-crypt", true)
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        ("SHA-crypt", false)
    } else if hash.starts_with("{SHA}") {
        ("unsalted SHA-1", true)
    } else if hash.len() == 13
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    {
        ("DES crypt", true)
    } else {
        ("plain text", true)
    }
}

impl Rule for HtpasswdEntry {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        if cx.file.kind != FileKind::Htpasswd || !scannable(cx) {
            return;
        }
        let src = cx.source();
        let mut offset = 0;
        for line in src.text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let l = line.trim_end_matches(['\n', '\r']);
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, rest)) = l.split_once(':') else {
                continue;
            };
            let hash = rest.trim();
            if user.trim().is_empty() || hash.is_empty() {
                continue;
            }
            let (name, weak) = scheme(hash);
            let hstart = start + user.len() + 1 + (rest.len() - rest.trim_start().len());
            let range = hstart..hstart + hash.len();
            let severity = if name == "plain text" {
                Severity::High
            } else if weak {
                Severity::Medium
            } else {
                Severity::Low
            };
            out.report(
                cx.loc_range(range, "password hash"),
                format!(
                    "`.htpasswd` entry for user `{}` ({name}) is committed",
                    user.trim()
                ),
            )
            .severity(severity)
            .secret(hash)
            .redact()
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn reports_each_entry_with_its_scheme() {
        let text = "# admins\nalice:$apr1$Zq1x$Vb0kT7oQ9rLp2sN4mX6eY.\nbob:$2y$05$abcdefghijklmnopqrstuu5Kq0t1dMv5o0wq9cZ6Q7u3B2m7n1yC\ncarol:hunter2secret!\n";
        let f = run_rule(&HtpasswdEntry, &[("deploy/nginx/.htpasswd", text)]);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].message.contains("`alice` (Apache MD5)"));
        assert_eq!(
            (
                f[0].locations[0].span.start.line,
                f[0].locations[0].span.start.col
            ),
            (2, 7)
        );
        assert_eq!(f[1].severity, Severity::Low);
        assert_eq!(f[2].severity, Severity::High);
        assert!(!f[2].message.contains("hunter2"));
    }

    #[test]
    fn only_htpasswd_files() {
        let f = run_rule(
            &HtpasswdEntry,
            &[
                ("notes.txt", "alice:$apr1$Zq1x$Vb0kT7oQ9rLp2sN4mX6eY.\n"),
                (".htpasswd", "# empty\n"),
            ],
        );
        assert!(f.is_empty());
    }
}
