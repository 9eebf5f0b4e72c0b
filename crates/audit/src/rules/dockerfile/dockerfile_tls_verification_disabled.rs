//! `dockerfile-tls-verification-disabled`: downloads with certificate checks turned off.

use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Command, Dockerfile, Instruction, Keyword, Stage};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `curl -k`/`--insecure`, `wget --no-check-certificate`, `pip --trusted-host`,
/// `npm`/`yarn config set strict-ssl false`, `git config http.sslVerify false`, and
/// `GIT_SSL_NO_VERIFY`, `NODE_TLS_REJECT_UNAUTHORIZED=0`, `PYTHONHTTPSVERIFY=0` in ENV/ARG
/// or RUN — in any stage, since a tampered download poisons the build either way.
pub struct TlsVerificationDisabled;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-tls-verification-disabled",
    title: "TLS certificate verification disabled",
    family: "dockerfile",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Keep certificate checks on. If a private CA is the reason, install its \
           certificate (COPY ca.crt /usr/local/share/ca-certificates/ && \
           update-ca-certificates) instead of disabling verification.",
};

/// Environment variables that turn verification off when set (to the given values).
const ENV_SWITCHES: &[(&str, &[&str])] = &[
    ("GIT_SSL_NO_VERIFY", &[]),
    ("NODE_TLS_REJECT_UNAUTHORIZED", &["0"]),
    ("PYTHONHTTPSVERIFY", &["0"]),
    ("CURL_INSECURE", &[]),
    ("PIP_TRUSTED_HOST", &[]),
    ("NPM_CONFIG_STRICT_SSL", &["false", "0"]),
];

fn env_switch(key: &str, value: &str) -> bool {
    ENV_SWITCHES.iter().any(|(k, vals)| {
        key.eq_ignore_ascii_case(k) && (vals.is_empty() || vals.contains(&value.trim()))
    })
}

/// The offending word of a command, with a description.
fn insecure_word(c: &Command) -> Option<(usize, String)> {
    let prog = c.program()?;
    let start = c.program_index()? + 1;
    let words = &c.words[start..];
    let find =
        |pred: &dyn Fn(&str) -> bool| words.iter().position(|w| pred(&w.text)).map(|i| i + start);
    match prog {
        "curl" => find(&|t| {
            t == "--insecure"
                || t == "-k"
                || (t.starts_with('-')
                    && !t.starts_with("--")
                    && t.len() > 2
                    && t[1..].chars().all(|c| c.is_ascii_alphabetic())
                    && t.contains('k'))
        })
        .map(|i| (i, "curl without certificate checks".to_string())),
        "wget" => find(&|t| t == "--no-check-certificate")
            .map(|i| (i, "wget --no-check-certificate".to_string())),
        "pip" | "pip3" | "uv" | "poetry" => {
            find(&|t| t == "--trusted-host" || t.starts_with("--trusted-host=")).map(|i| {
                (
                    i,
                    format!("{prog} --trusted-host skips certificate checks for that host"),
                )
            })
        }
        "npm" | "yarn" | "pnpm" => {
            let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            let at = texts.iter().position(|t| *t == "strict-ssl")?;
            matches!(texts.get(at + 1), Some(&"false"))
                .then(|| (at + start, format!("{prog} strict-ssl false")))
        }
        "git" => {
            let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            let at = texts.iter().position(|t| {
                t.eq_ignore_ascii_case("http.sslverify")
                    || t.eq_ignore_ascii_case("http.sslVerify=false")
            })?;
            let off =
                texts[at].contains("=false") || matches!(texts.get(at + 1), Some(&("false" | "0")));
            off.then(|| (at + start, "git http.sslVerify false".to_string()))
        }
        "apt-get" | "apt" => {
            find(&|t| t.contains("Verify-Peer=false") || t.contains("Verify-Host=false"))
                .map(|i| (i, "apt peer verification off".to_string()))
        }
        _ => None,
    }
}

impl Rule for TlsVerificationDisabled {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_instruction(
        &self,
        cx: &FileCx<'_>,
        _df: &Dockerfile,
        _stage: &Stage,
        inst: &Instruction,
        out: &mut Sink,
    ) {
        match inst.keyword {
            Keyword::Env | Keyword::Arg => {
                for kv in inst.key_values() {
                    if env_switch(&kv.key, kv.value.as_deref().unwrap_or("")) {
                        out.report(
                            cx.loc_range(kv.key_range.clone(), "verification off"),
                            format!(
                                "{} `{}` turns certificate verification off",
                                inst.keyword.as_str(),
                                kv.key
                            ),
                        )
                        .emit();
                    }
                }
            }
            Keyword::Run => {
                for c in inst.commands() {
                    // `GIT_SSL_NO_VERIFY=1 git clone …`
                    for w in &c.words[..c.program_index().unwrap_or(c.words.len())] {
                        if let Some((k, v)) = w.text.split_once('=')
                            && env_switch(k, v)
                        {
                            out.report(
                                cx.loc_range(w.range.clone(), "verification off"),
                                format!("`{k}` turns certificate verification off"),
                            )
                            .emit();
                        }
                    }
                    if let Some((i, what)) = insecure_word(c) {
                        out.report(
                            cx.loc_range(c.words[i].range.clone(), "verification off"),
                            format!("{what}: a tampered download would go unnoticed"),
                        )
                        .emit();
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_every_switch() {
        let text = "FROM x\n\
RUN curl -fsSLk https://x/install.sh | sh\n\
RUN curl --insecure -o a https://x/a\n\
RUN wget --no-check-certificate https://x/b\n\
RUN pip install --trusted-host pypi.internal -r req.txt\n\
RUN npm config set strict-ssl false\n\
RUN git config --global http.sslVerify false\n\
ENV GIT_SSL_NO_VERIFY=1\n\
ENV NODE_TLS_REJECT_UNAUTHORIZED=0\n\
RUN PYTHONHTTPSVERIFY=0 python fetch.py\n";
        let f = run_rule(&super::TlsVerificationDisabled, &[("Dockerfile", text)]);
        assert_eq!(f.len(), 9, "{f:#?}");
        let l = &f[0].locations[0];
        assert_eq!((l.span.start.line, l.span.start.col), (2, 10));
    }

    #[test]
    fn accepts_verified_downloads() {
        let text = "FROM x\n\
RUN curl -fsSL https://x/a -o /a && wget -q https://x/b\n\
RUN pip install --index-url https://pypi.internal/simple x\n\
RUN npm config set strict-ssl true\n\
ENV NODE_TLS_REJECT_UNAUTHORIZED=1\n\
RUN curl -H 'k: v' https://x\n";
        let f = run_rule(&super::TlsVerificationDisabled, &[("Dockerfile", text)]);
        assert!(f.is_empty(), "{f:#?}");
    }
}
