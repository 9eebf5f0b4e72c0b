//! `secret-committed-file`: files that hold secrets by nature — `.env` files with values,
//! private key files and keystores — present in the repository. Terraform state is
//! `committed-terraform-state`'s (one finding per state file).

use super::secret_generic_assignment::is_secret_key;
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Document;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::is_placeholder;

/// Flags sensitive files by name (and, for `.env` and `.pem`, by content).
pub struct CommittedFile;

static META: RuleMeta = RuleMeta {
    id: "secret-committed-file",
    title: "Sensitive file committed",
    family: "secrets",
    severity: Severity::High,
    confidence: Confidence::Medium,
    help: "Remove the file from the repository (`git rm --cached FILE`), add it to \
           .gitignore, rotate every secret it held, and commit a template with empty \
           values (`.env.example`) instead.",
};

/// `.env` variants meant to be committed: templates without real values.
const TEMPLATE_MARKERS: &[&str] = &[
    "example", "sample", "template", "dist", "default", "defaults", "tpl", "stub", "schema",
];

fn is_env_template(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower
        .split(['.', '-', '_'])
        .any(|part| TEMPLATE_MARKERS.contains(&part))
}

/// `(line number, key)` of each assignment with a real-looking value.
fn env_values(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or("").trim();
        if key.trim().is_empty() || key.contains(' ') || is_placeholder(value) {
            continue;
        }
        out.push((i as u32 + 1, key.trim().to_string()));
    }
    out
}

impl Rule for CommittedFile {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        let name = cx.file.name();
        let src = cx.source();
        match cx.file.kind {
            FileKind::Env => {
                if is_env_template(name) {
                    return;
                }
                let values = env_values(&src.text);
                let Some((line, _)) = values.first() else {
                    return;
                };
                let keys: Vec<&str> = values.iter().take(5).map(|(_, k)| k.as_str()).collect();
                let more = if values.len() > 5 { ", …" } else { "" };
                // Only settings (`LOG_LEVEL=info`), no secret-named key: worth knowing,
                // not an incident.
                let secretish = values.iter().any(|(_, k)| is_secret_key(k));
                let (severity, confidence) = if secretish {
                    (Severity::High, Confidence::Medium)
                } else {
                    (Severity::Low, Confidence::Low)
                };
                out.report(
                    cx.loc(src.line_span(*line), "values committed"),
                    format!(
                        "env file `{name}` with {} value(s) is committed ({}{more})",
                        values.len(),
                        keys.join(", ")
                    ),
                )
                .severity(severity)
                .confidence(confidence)
                .help(format!(
                    "Move the values into Orchestra's encrypted secret store and blank them \
                     here: `orchestra secrets import {path} --replace`; then list them under \
                     the services' `secrets:`, `git rm --cached {path}`, add it to \
                     .gitignore and rotate every secret it held (it stays in git history).",
                    path = cx.file.path()
                ))
                .redact()
                .emit();
            }
            FileKind::KeyFile => {
                let lower = name.to_ascii_lowercase();
                let binary = matches!(cx.file.doc, Document::Binary);
                let text = &src.text;
                let keystore = [".p12", ".pfx", ".jks", ".keystore"]
                    .iter()
                    .any(|e| lower.ends_with(e));
                let private = text.contains("PRIVATE KEY");
                let public_only = text.contains("PUBLIC KEY")
                    || text.starts_with("ssh-")
                    || text.contains("BEGIN CERTIFICATE") && !private;
                let placeholder =
                    !binary && (text.trim().is_empty() || is_placeholder(text.trim()));
                let flagged = if keystore {
                    true
                } else if lower.ends_with(".pem") || lower.ends_with(".crt") {
                    private
                } else {
                    private || (!public_only && !placeholder)
                };
                if !flagged {
                    return;
                }
                let what = if keystore {
                    "keystore"
                } else {
                    "private key file"
                };
                let finding = out
                    .report(
                        cx.loc(src.file_span(), what),
                        format!("{what} `{name}` is committed"),
                    )
                    .help(
                        "Revoke or replace the key wherever it is trusted, `git rm --cached` \
                         the file, purge it from history, add the pattern to .gitignore and \
                         mount the new key at run time from a secret store.",
                    )
                    .redact();
                // The same key pasted elsewhere (a values file) is one secret to rotate.
                let key = super::pem::first_key_body(text).or_else(|| {
                    (!binary && !text.trim().is_empty()).then(|| text.trim().to_string())
                });
                match key {
                    Some(key) => finding.secret(&key).emit(),
                    None => finding.emit(),
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ids, run_rule};

    #[test]
    fn reports_env_state_and_keys() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n";
        let f = run_rule(
            &CommittedFile,
            &[
                (
                    ".env",
                    "# local\nDB_HOST=db\nAPI_KEY=q8Zr2LmW0pXv7TnB\nEMPTY=\n",
                ),
                ("deploy/id_rsa", key),
                ("certs/server.pem", key),
                ("android/release.jks", ""),
            ],
        );
        assert_eq!(ids(&f).len(), 4, "{f:?}");
        let env = f.iter().find(|x| x.locations[0].path == ".env").unwrap();
        assert!(env.message.contains("2 value(s)"), "{}", env.message);
        assert!(env.message.contains("DB_HOST, API_KEY"));
        assert!(!env.message.contains("q8Zr"));
        assert_eq!(env.locations[0].span.start.line, 2);
        assert_eq!(env.severity, Severity::High);
        // The fix is the command that moves the values into the secret store.
        assert!(
            env.help.contains("orchestra secrets import .env --replace"),
            "{}",
            env.help
        );
        let f = run_rule(
            &CommittedFile,
            &[(
                "deploy/common.env",
                "LOG_LEVEL=info
TZ=UTC
",
            )],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Low);
    }

    #[test]
    fn ignores_templates_certificates_and_public_keys() {
        let f = run_rule(
            &CommittedFile,
            &[
                (".env.example", "API_KEY=q8Zr2LmW0pXv7TnB\n"),
                (".env.sample", "API_KEY=q8Zr2LmW0pXv7TnB\n"),
                (
                    ".env",
                    "# fill in\nAPI_KEY=\nDB_PASSWORD=changeme\nTOKEN=${TOKEN}\n",
                ),
                (
                    "certs/ca.pem",
                    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                ),
                (
                    "keys/deploy.key",
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host\n",
                ),
                ("README.md", "never commit .env or terraform.tfstate\n"),
                // Terraform state is committed-terraform-state's.
                (
                    "infra/terraform.tfstate",
                    "{\"version\": 4, \"resources\": []}\n",
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
