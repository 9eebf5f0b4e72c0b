//! `secret-private-key`: a PEM / OpenSSH private key block inside a file.

use std::sync::LazyLock;

use regex::Regex;

use super::pem::{self, KeyBody};
use super::{is_service_account_json, scannable};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;

/// Finds `-----BEGIN … PRIVATE KEY-----` blocks with real key material. A block whose
/// body is not a complete key ([`pem::check`]: truncated, not base64) is reported as info;
/// one whose body is a placeholder (`...`, `MIIE...`) not at all.
pub struct PrivateKey;

static META: RuleMeta = RuleMeta {
    id: "secret-private-key",
    title: "Private key committed",
    family: "secrets",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Treat the key as compromised: revoke or replace it wherever it is trusted \
           (certificate, deploy key, SSH authorized_keys, signing key), remove it from the \
           repository history, and mount the new one at run time from a secret store.",
};

/// Help for a block that is not a complete key.
const SAMPLE_HELP: &str = "Nothing to rotate if this is documentation or a test sample; if it \
                           is part of a real key, treat the whole key as compromised and \
                           replace it. Mark a sample with `# orchestra: ignore[secret-private-key] \
                           sample`, or shorten it to `-----BEGIN PRIVATE KEY-----\\n...`.";

static BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?)PRIVATE KEY(?: BLOCK)?-----")
});

/// Base64 key material right after the header (possibly after `\n` escapes).
static BODY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:\s|\\n|\\r|[A-Za-z-]+: [^\n]*\n)*[A-Za-z0-9+/=]{40,}"));

impl Rule for PrivateKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        // Key files by name are reported by `secret-committed-file`, service-account
        // JSON by `secret-gcp-service-account-key`.
        if cx.file.kind == FileKind::KeyFile || !scannable(cx) {
            return;
        }
        let text = &cx.source().text;
        if !text.contains("PRIVATE KEY") || is_service_account_json(text) {
            return;
        }
        for caps in BEGIN.captures_iter(text) {
            let (Some(all), kind) = (caps.get(0), caps.get(1).map_or("", |m| m.as_str())) else {
                continue;
            };
            let after = &text[all.end()..text.len().min(all.end() + 400)];
            if !BODY.is_match(after) {
                continue; // `-----BEGIN PRIVATE KEY-----\n...` placeholders
            }
            let kind = kind.trim();
            let (what, severity) = match kind {
                "ENCRYPTED" => ("encrypted private key", Severity::Medium),
                "" => ("private key", Severity::High),
                other => (other, Severity::High),
            };
            let what = if what == kind {
                format!("{kind} private key")
            } else {
                what.to_string()
            };
            let loc = cx.loc_range(all.range(), "private key");
            match pem::check(kind, &text[all.end()..]) {
                KeyBody::Placeholder => {}
                KeyBody::Sample(why) => out
                    .report(
                        loc,
                        format!(
                            "{what} block is not a complete key ({why}): a sample or a \
                             truncated copy"
                        ),
                    )
                    .severity(Severity::Info)
                    .confidence(Confidence::Low)
                    .help(SAMPLE_HELP)
                    .redact()
                    .emit(),
                KeyBody::Complete(body) => out
                    .report(loc, format!("{what} block is committed in this file"))
                    .severity(severity)
                    .secret(&body)
                    .redact()
                    .emit(),
                KeyBody::Unknown => out
                    .report(loc, format!("{what} block is committed in this file"))
                    .severity(severity)
                    .redact()
                    .emit(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn pem(kind: &str) -> String {
        crate::testing::fake_private_key(kind, kind.len() as u64 + 1)
    }

    #[test]
    fn finds_key_blocks_in_any_text_file() {
        let yaml = format!(
            "tls:\n  key: |\n    {}",
            pem("RSA ").replace('\n', "\n    ")
        );
        let f = run_rule(
            &PrivateKey,
            &[
                ("deploy/values.yaml", yaml.as_str()),
                (
                    "scripts/setup.sh",
                    &format!("cat > k <<EOF\n{}EOF\n", pem("OPENSSH ")),
                ),
                ("old.txt", &pem("ENCRYPTED ")),
            ],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].locations[0].path, "deploy/values.yaml");
        assert!(f[0].message.starts_with("RSA private key"));
        assert_eq!(f[0].locations[0].span.start.line, 3);
        assert_eq!(f[1].severity, Severity::Medium);
        assert!(f.iter().all(|x| x.locations[0].redact));
    }

    #[test]
    fn ignores_placeholders_public_keys_and_key_files() {
        let f = run_rule(
            &PrivateKey,
            &[
                (
                    "README.md",
                    "Paste it:\n-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
                ),
                (
                    "pub.txt",
                    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1\n",
                ),
                ("certs/tls.key", &pem("")),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn samples_are_info_and_placeholders_are_skipped() {
        let head = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        let f = run_rule(
            &PrivateKey,
            &[
                // Decodes, but is two lines of a ~1.2 KB key.
                (
                    "docs/tls.txt",
                    &format!(
                        "-----BEGIN PRIVATE KEY-----\n{head}\n{head}\n-----END PRIVATE KEY-----\n"
                    ),
                ),
                // Not base64 at all (an odd length).
                (
                    "deploy/values.yaml",
                    &format!(
                        "key: |\n  -----BEGIN RSA PRIVATE KEY-----\n  {head}xyz\n  -----END RSA PRIVATE KEY-----\n"
                    ),
                ),
                // Placeholders: skipped.
                (
                    "README.txt",
                    &format!("-----BEGIN PRIVATE KEY-----\n{head}...\n-----END PRIVATE KEY-----\n"),
                ),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        for x in &f {
            assert_eq!(x.severity, Severity::Info, "{}", x.message);
            assert_eq!(x.confidence, Confidence::Low);
            assert!(x.message.contains("not a complete key"), "{}", x.message);
        }
        // The same key as a complete one is high.
        let f = run_rule(&PrivateKey, &[("docs/tls.txt", &pem(""))]);
        assert_eq!(f[0].severity, Severity::High);
    }

    #[test]
    fn the_same_key_in_two_files_is_one_secret() {
        let key = pem("RSA ");
        let yaml = format!("tls:\n  key: |\n    {}", key.replace('\n', "\n    "));
        let json = format!("{{\"key\": \"{}\"}}\n", key.replace('\n', "\\n"));
        let other = crate::testing::fake_private_key("RSA ", 99);
        let f = run_rule(
            &PrivateKey,
            &[("a.yaml", &yaml), ("b.json", &json), ("c.txt", &other)],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].subject, f[1].subject);
        assert_ne!(f[0].subject, f[2].subject);
        assert!(matches!(f[0].subject, crate::finding::Subject::Secret(_)));
    }
}
