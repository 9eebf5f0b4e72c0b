//! `dockerfile-secret-in-env`: secrets in ENV or ARG of the stages that ship.

use super::final_image_stages;
use crate::finding::{Confidence, Severity};
use crate::knowledge::is_secret_name;
use crate::parse::dockerfile::{Dockerfile, Keyword};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::{is_path_like, is_placeholder};

/// Flags `ENV API_TOKEN=…` (stored in the image config), `ENV TOKEN=$TOKEN` (a build arg
/// copied into the image) and `ARG TOKEN` (visible in `docker history`) in the final image.
/// A value that is a path or file name (`/secrets/key.json`, `tls.pem`) says where the
/// secret is mounted, and is not reported.
pub struct SecretInEnv;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-secret-in-env",
    title: "Secret in ENV or ARG of the final image",
    family: "dockerfile",
    severity: Severity::High,
    confidence: Confidence::Medium,
    help: "Pass build-time secrets with `RUN --mount=type=secret,id=token …` (docker build \
           --secret) and runtime secrets through the orchestrator's environment or secret \
           store; never bake them into ENV or ARG.",
};

impl Rule for SecretInEnv {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        for stage in final_image_stages(df) {
            for inst in df.stage_instructions(stage) {
                if !matches!(inst.keyword, Keyword::Env | Keyword::Arg) {
                    continue;
                }
                for kv in inst.key_values() {
                    if !is_secret_name(&kv.key) {
                        continue;
                    }
                    let key = &kv.key;
                    let value = kv.value.as_deref().unwrap_or("");
                    match (inst.keyword, &kv.value) {
                        (Keyword::Arg, _) => {
                            out.report(
                                cx.loc_range(kv.key_range.clone(), "build arg"),
                                format!(
                                    "build arg `{key}` looks like a secret: build args are \
                                     recorded in the image history"
                                ),
                            )
                            .severity(Severity::Medium)
                            .emit();
                        }
                        (_, Some(v)) if v.contains('$') => {
                            out.report(
                                cx.loc_range(kv.value_range.clone(), "copied into the image"),
                                format!(
                                    "ENV `{key}` copies a variable into the image's environment"
                                ),
                            )
                            .emit();
                        }
                        // `GOOGLE_APPLICATION_CREDENTIALS=/secrets/key.json` names where
                        // the secret is mounted at run time: the right way to do it.
                        _ if is_placeholder(value) || is_path_like(value) => {}
                        _ => {
                            out.report(
                                cx.loc_range(kv.value_range.clone(), "secret value"),
                                format!("ENV `{key}` stores a literal secret in the image"),
                            )
                            .confidence(Confidence::High)
                            .secret(value.trim_matches(['"', '\'']))
                            .redact()
                            .emit();
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_env_literal_env_copy_and_arg() {
        let f = run_rule(
            &super::SecretInEnv,
            &[(
                "Dockerfile",
                "FROM python:3.12\nARG GITHUB_TOKEN\nENV GITHUB_TOKEN=$GITHUB_TOKEN\nENV DB_PASSWORD=s3cr3t-Zq8x\n",
            )],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[2].locations[0].redact);
        assert!(!f[2].message.contains("s3cr3t"));
    }

    #[test]
    fn accepts_builder_stages_placeholders_and_non_secrets() {
        let f = run_rule(
            &super::SecretInEnv,
            &[(
                "Dockerfile",
                "FROM python:3.12 AS build\nARG PIP_TOKEN\nRUN --mount=type=secret,id=t pip install x\nFROM python:3.12-slim\nENV DB_PASSWORD=changeme PASSWORD_FILE=/run/secrets/db TOKEN_URL=https://x\nENV APP_ENV=prod\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn paths_to_mounted_secrets_are_not_secrets() {
        let f = run_rule(
            &super::SecretInEnv,
            &[(
                "Dockerfile",
                "FROM python:3.12-slim\n\
ENV GOOGLE_APPLICATION_CREDENTIALS=/secrets/key.json\n\
ENV TLS_PRIVATE_KEY=./certs/server.pem DB_PASSWORD=/run/secrets/db\n\
ENV SA_CREDENTIALS=sa-key.json AWS_CREDENTIALS=~/.aws/credentials\n\
ENV API_TOKEN=/Xq7vL2mZ9pK4RtB8nW3q\n",
            )],
        );
        // Only the last: a base64-looking value that happens to start with `/`.
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].locations[0].span.start.line, 5);
    }
}
