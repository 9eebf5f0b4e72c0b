//! `secret-provider-token`: an API token or key in a provider's recognizable format
//! (GitHub, OpenAI, Anthropic, Hugging Face, AWS, Stripe, Google, Slack, Vercel, GitLab,
//! npm, SendGrid).

use std::sync::{LazyLock, OnceLock};

use regex::Regex;

use super::scannable;
use crate::finding::{Confidence, Severity, redact};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::{Prefilter, entropy, is_patterned, is_placeholder, regex};

/// Finds provider-specific tokens in any text file.
pub struct ProviderToken;

static META: RuleMeta = RuleMeta {
    id: "secret-provider-token",
    title: "Provider API token or key committed",
    family: "secrets",
    severity: Severity::Critical,
    confidence: Confidence::High,
    help: "Revoke the token at the provider now (it is in the history even after you \
           delete the line), issue a new one, and load it at run time from a secret store \
           or CI secret instead of the repository.",
};

/// One recognizable token format.
pub(crate) struct Provider {
    /// What it is, for messages ("GitHub token").
    pub name: &'static str,
    /// Prefilter keywords: the regex runs only when one occurs (case-insensitive).
    pub keywords: &'static [&'static str],
    /// The pattern; capture group 1 is the secret.
    pub pattern: &'static str,
    /// Severity of a finding of this kind.
    pub severity: Severity,
    /// Confidence of a finding of this kind.
    pub confidence: Confidence,
    /// How to rotate or remove it.
    pub rotate: &'static str,
}

/// Shared by both Vercel token patterns.
const VERCEL_ROTATE: &str = "Delete the token in Vercel → Account Settings → Tokens, create a \
                             scoped one and pass it as VERCEL_TOKEN from CI secrets.";

pub(crate) static PROVIDERS: &[Provider] = &[
    Provider {
        name: "GitHub token",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        pattern: r"\b(gh[pousr]_[A-Za-z0-9]{36,251})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Revoke it under GitHub Settings → Developer settings → Personal access tokens \
                 (or the OAuth/GitHub App that issued it), check the security log for use, \
                 and in workflows use the built-in GITHUB_TOKEN or a GitHub App token stored \
                 as an Actions secret.",
    },
    Provider {
        name: "GitHub fine-grained token",
        keywords: &["github_pat_"],
        pattern: r"\b(github_pat_[A-Za-z0-9_]{50,251})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Revoke it under GitHub Settings → Developer settings → Fine-grained tokens, \
                 review the security log, and store the replacement as an Actions secret.",
    },
    Provider {
        name: "Anthropic API key",
        keywords: &["sk-ant-"],
        pattern: r"\b(sk-ant-[A-Za-z0-9_-]{32,})",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Delete the key in the Anthropic Console (Settings → API keys), create a new \
                 one and read it from ANTHROPIC_API_KEY set by your secret store.",
    },
    Provider {
        name: "OpenAI API key",
        keywords: &["sk-proj-", "sk-svcacct-", "sk-admin-"],
        pattern: r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32,})",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Revoke the key on the OpenAI platform (API keys page of the project), create \
                 a new one and read it from OPENAI_API_KEY set by your secret store.",
    },
    Provider {
        name: "OpenAI API key",
        keywords: &["sk-"],
        pattern: r"\b(sk-[A-Za-z0-9]{32,})\b",
        severity: Severity::Critical,
        confidence: Confidence::Medium,
        rotate: "Revoke the key on the OpenAI platform (API keys page), create a new one and \
                 read it from OPENAI_API_KEY set by your secret store.",
    },
    Provider {
        name: "Hugging Face token",
        keywords: &["hf_"],
        pattern: r"\b(hf_[A-Za-z0-9]{30,})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Invalidate it at huggingface.co → Settings → Access Tokens, create a \
                 fine-grained replacement and read it from HF_TOKEN at run time.",
    },
    Provider {
        name: "AWS access key id",
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        pattern: r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Deactivate and delete the access key in IAM (aws iam update-access-key \
                 --status Inactive, then delete-access-key), check CloudTrail for its use, \
                 and use IAM roles or GitHub OIDC instead of long-lived keys.",
    },
    Provider {
        name: "AWS secret access key",
        keywords: &["secret_access_key", "secretaccesskey", "aws_secret"],
        pattern: r#"(?i)aws_?secret(?:_?access)?_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Deactivate and delete the access key pair in IAM, check CloudTrail for its \
                 use, and use IAM roles or GitHub OIDC instead of long-lived keys.",
    },
    Provider {
        name: "Stripe live secret key",
        keywords: &["sk_live_", "rk_live_"],
        pattern: r"\b((?:sk|rk)_live_[A-Za-z0-9]{20,})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Roll the key in the Stripe Dashboard (Developers → API keys → Roll key) and \
                 load the new one from your secret store.",
    },
    Provider {
        name: "Google API key",
        keywords: &["AIza"],
        pattern: r"\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        severity: Severity::High,
        confidence: Confidence::Medium,
        rotate: "Delete or regenerate the key in Google Cloud Console → APIs & Services → \
                 Credentials; if it must ship to browsers (Firebase), restrict it by HTTP \
                 referrer and API.",
    },
    Provider {
        name: "Slack token",
        keywords: &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xapp-"],
        pattern: r"\b((?:xox[baprs]|xapp)-[A-Za-z0-9-]{10,})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Revoke it in the Slack app's settings (OAuth & Permissions → Revoke tokens / \
                 rotate), reinstall the app to get a new one and keep it in a secret store.",
    },
    Provider {
        name: "Slack webhook URL",
        keywords: &["hooks.slack.com"],
        pattern: r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,})",
        severity: Severity::High,
        confidence: Confidence::High,
        rotate: "Remove the webhook in the Slack app's Incoming Webhooks page, create a new \
                 one and pass it as a CI secret.",
    },
    Provider {
        name: "Vercel token",
        keywords: &["vercel"],
        pattern: r#"(?i)vercel[a-z_-]*(?:token|key)["']?\s*[:=]\s*["']?([A-Za-z0-9]{24})\b"#,
        severity: Severity::Critical,
        confidence: Confidence::Medium,
        rotate: VERCEL_ROTATE,
    },
    Provider {
        name: "Vercel token",
        keywords: &["vercel"],
        pattern: r#"(?i)\bvercel\b[^\n]*--token[= ]+["']?([A-Za-z0-9]{24})\b"#,
        severity: Severity::Critical,
        confidence: Confidence::Medium,
        rotate: VERCEL_ROTATE,
    },
    Provider {
        name: "GitLab token",
        keywords: &["glpat-"],
        pattern: r"\b(glpat-[A-Za-z0-9_-]{20,})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Revoke it in GitLab → User settings → Access tokens and store the \
                 replacement as a CI/CD variable.",
    },
    Provider {
        name: "npm token",
        keywords: &["npm_"],
        pattern: r"\b(npm_[A-Za-z0-9]{36})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Revoke it with `npm token revoke` (or on npmjs.com → Access Tokens) and use \
                 a granular token from CI secrets, or trusted publishing.",
    },
    Provider {
        name: "SendGrid API key",
        keywords: &["SG."],
        pattern: r"\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})\b",
        severity: Severity::Critical,
        confidence: Confidence::High,
        rotate: "Delete the key in SendGrid → Settings → API Keys and create a restricted one.",
    },
];

struct Compiled {
    /// For each provider, the indices of its keywords in `keywords`.
    owners: Vec<Vec<usize>>,
    prefilter: Prefilter,
    /// Each provider's regex, compiled the first time its keywords occur (most runs
    /// need none or few of them, and compiling all costs more than scanning a repo).
    regexes: Vec<OnceLock<Regex>>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let mut keywords: Vec<&'static str> = Vec::new();
    let mut owners = Vec::new();
    for p in PROVIDERS {
        let mut mine = Vec::new();
        for k in p.keywords {
            let i = match keywords.iter().position(|x| x == k) {
                Some(i) => i,
                None => {
                    keywords.push(k);
                    keywords.len() - 1
                }
            };
            mine.push(i);
        }
        owners.push(mine);
    }
    Compiled {
        prefilter: Prefilter::new(&keywords),
        owners,
        regexes: PROVIDERS.iter().map(|_| OnceLock::new()).collect(),
    }
});

/// A 40-character AWS secret standing alone (only looked for near an access key id).
static AWS_SECRET_NEAR: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"));

/// Every provider-token match in `text`: `(provider index, byte range of the secret)`.
/// Used by this rule and by `secret-generic-assignment` (to avoid double reports).
pub(crate) fn find_tokens(text: &str) -> Vec<(usize, std::ops::Range<usize>)> {
    let c = &*COMPILED;
    let hits = c.prefilter.hits(text);
    if !hits.iter().any(|h| *h) {
        return Vec::new();
    }
    let mut out: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for (i, slot) in c.regexes.iter().enumerate() {
        if !c.owners[i].iter().any(|&k| hits[k]) {
            continue;
        }
        let re = slot.get_or_init(|| regex(PROVIDERS[i].pattern));
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(1) else { continue };
            if is_placeholder(m.as_str())
                || is_patterned(token_body(&PROVIDERS[i], m.as_str()))
                || out.iter().any(|(_, r)| overlaps(r, &m.range()))
            {
                continue;
            }
            out.push((i, m.range()));
        }
    }
    // AWS secret keys without a telling variable name: a 40-character random string
    // within three lines of an access key id.
    let aws_id = PROVIDERS.iter().position(|p| p.name == "AWS access key id");
    let aws_secret = PROVIDERS
        .iter()
        .position(|p| p.name == "AWS secret access key");
    if let (Some(id), Some(secret)) = (aws_id, aws_secret) {
        let ids: Vec<std::ops::Range<usize>> = out
            .iter()
            .filter(|(p, _)| *p == id)
            .map(|(_, r)| r.clone())
            .collect();
        for r in ids {
            let (lo, hi) = around_lines(text, r.start, 3);
            for caps in AWS_SECRET_NEAR.captures_iter(&text[lo..hi]) {
                let Some(m) = caps.get(1) else { continue };
                let range = lo + m.start()..lo + m.end();
                let s = m.as_str();
                let classes = [
                    s.bytes().any(|b| b.is_ascii_lowercase()),
                    s.bytes().any(|b| b.is_ascii_uppercase()),
                    s.bytes().any(|b| b.is_ascii_digit()),
                ];
                if classes.iter().all(|c| *c)
                    && entropy(s) > 4.0
                    && !is_placeholder(s)
                    && !is_patterned(s)
                    && !out.iter().any(|(_, o)| overlaps(o, &range))
                {
                    out.push((secret, range));
                }
            }
        }
    }
    out.sort_by_key(|(_, r)| r.start);
    out
}

/// The part of a token after its provider's literal prefix (`ghp_`, `AKIA`, `sk-`): the
/// part that must be random in a real token.
fn token_body<'t>(p: &Provider, token: &'t str) -> &'t str {
    p.keywords
        .iter()
        .filter_map(|k| token.strip_prefix(k))
        .min_by_key(|rest| rest.len())
        .unwrap_or(token)
}

fn overlaps(a: &std::ops::Range<usize>, b: &std::ops::Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Byte bounds of the `n` lines before and after the line holding `at`.
fn around_lines(text: &str, at: usize, n: usize) -> (usize, usize) {
    let mut lo = at;
    for _ in 0..=n {
        match text[..lo].rfind('\n') {
            Some(i) => lo = i,
            None => {
                lo = 0;
                break;
            }
        }
    }
    let mut hi = at;
    for _ in 0..=n {
        match text[hi..].find('\n') {
            Some(i) => hi += i + 1,
            None => {
                hi = text.len();
                break;
            }
        }
    }
    (lo, hi.min(text.len()))
}

impl Rule for ProviderToken {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        if !scannable(cx) {
            return;
        }
        let text = &cx.source().text;
        for (i, range) in find_tokens(text) {
            let p = &PROVIDERS[i];
            let value = &text[range.clone()];
            out.report(
                cx.loc_range(range, p.name),
                format!("{} `{}` is committed in plain text", p.name, redact(value)),
            )
            .severity(p.severity)
            .confidence(p.confidence)
            .help(p.rotate)
            .secret(value)
            .redact()
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    use crate::testing::{ALNUM, random_text};

    /// Tokens are assembled at run time so this file holds no literal token: `prefix`
    /// and `n` random letters and digits.
    fn tok(prefix: &str, n: usize) -> String {
        format!(
            "{prefix}{}",
            random_text(ALNUM, n, (prefix.len() * 1000 + n) as u64)
        )
    }

    const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    #[test]
    fn finds_each_provider() {
        let cases = [
            (tok("ghp_", 36), "GitHub token"),
            (tok("github_pat_", 82), "GitHub fine-grained token"),
            (tok("sk-ant-api03-", 90), "Anthropic API key"),
            (tok("sk-proj-", 100), "OpenAI API key"),
            (tok("sk-", 48), "OpenAI API key"),
            (tok("hf_", 34), "Hugging Face token"),
            (
                format!("AKIA{}", random_text(UPPER_DIGITS, 16, 7)),
                "AWS access key id",
            ),
            (tok("sk_live_", 24), "Stripe live secret key"),
            (tok("AIza", 35), "Google API key"),
            (
                format!(
                    "xoxb-{}-{}-{}",
                    random_text("0123456789", 12, 1),
                    random_text("0123456789", 13, 2),
                    random_text(ALNUM, 24, 3)
                ),
                "Slack token",
            ),
            (
                format!(
                    "https://hooks.slack.com/services/T0{}/B0{}/{}",
                    "1A2B3C4D",
                    "5E6F7G8H",
                    tok("", 24)
                ),
                "Slack webhook URL",
            ),
            (tok("glpat-", 20), "GitLab token"),
            (tok("npm_", 36), "npm token"),
        ];
        for (token, provider) in cases {
            let text = format!("KEY=\"{token}\"\n");
            let f = run_rule(&ProviderToken, &[("config/app.env.sh", &text)]);
            assert_eq!(f.len(), 1, "{provider}: {f:?}");
            assert!(f[0].message.starts_with(provider), "{}", f[0].message);
            assert!(
                !f[0].message.contains(&token[token.len() - 8..]),
                "leaks: {}",
                f[0].message
            );
            assert!(f[0].locations[0].redact);
            assert_eq!(f[0].locations[0].span.start.col, 6);
        }
    }

    #[test]
    fn finds_aws_secret_next_to_key_id() {
        let id = format!("AKIA{}", random_text(UPPER_DIGITS, 16, 7));
        let secret = random_text(ALNUM, 40, 11);
        let text = format!("[default]\naws_access_key_id = {id}\nsecret = {secret}\n");
        let f = run_rule(&ProviderToken, &[("credentials", &text)]);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[1].message.starts_with("AWS secret access key"));
        let text = format!("AWS_SECRET_ACCESS_KEY={secret}\n");
        let f = run_rule(&ProviderToken, &[("ci.sh", &text)]);
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn vercel_needs_context() {
        let t = tok("", 24);
        let f = run_rule(
            &ProviderToken,
            &[(
                "deploy.sh",
                &format!("npx vercel deploy --prod --token={t}\n"),
            )],
        );
        assert_eq!(f.len(), 1);
        let f = run_rule(&ProviderToken, &[("x.txt", &format!("id={t}\n"))]);
        assert!(f.is_empty());
    }

    #[test]
    fn ignores_placeholders_and_references() {
        let text = "\
GITHUB_TOKEN=${{ secrets.GITHUB_TOKEN }}
OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
HF_TOKEN=hf_your_token_here_replace_me_later_ok
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
STRIPE=sk_test_abcdefghijklmnopqrstuvwx
ANTHROPIC_API_KEY=<your-key>
token: sk-short
";
        let f = run_rule(&ProviderToken, &[(".env.example", text)]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn repeated_and_sequential_values_are_not_tokens() {
        // Each has a provider's shape, but its body repeats a unit, counts up, or
        // repeats one character: an example, not a live key.
        let unit = "abcdef123456";
        let cases = [
            format!("sk-{}", "1234567890abcdef".repeat(2)),
            format!("AKIA{}", "X".repeat(16)),
            format!("AKIA{}", "0123456789ABCDEF"),
            format!("ghp_{}", unit.repeat(3)),
            format!("ghp_{}", "a".repeat(36)),
            format!("github_pat_{}", "11AABBCC22_".repeat(6)),
            format!("npm_{}", "0123456789abcdefghijklmnopqrstuvwxyz"),
            format!("xoxb-{}", "1234567890-".repeat(4)),
        ];
        for token in &cases {
            let f = run_rule(
                &ProviderToken,
                &[("config/app.env.sh", &format!("KEY={token}\n"))],
            );
            assert!(f.is_empty(), "{token}: {f:?}");
        }
        // The same shapes with random bodies are reported.
        for token in [tok("sk-", 32), tok("ghp_", 36)] {
            let f = run_rule(
                &ProviderToken,
                &[("config/app.env.sh", &format!("KEY={token}\n"))],
            );
            assert_eq!(f.len(), 1, "{token}");
        }
    }
}
