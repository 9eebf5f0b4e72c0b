//! Dockerfile rules, and helpers they share.

pub mod dockerfile_add_instead_of_copy;
pub mod dockerfile_copy_env_without_dockerignore;
pub mod dockerfile_eol_base;
pub mod dockerfile_exec_form_variable;
pub mod dockerfile_latest_tag;
pub mod dockerfile_missing_healthcheck;
pub mod dockerfile_package_cache;
pub mod dockerfile_root_user;
pub mod dockerfile_secret_in_env;
pub mod dockerfile_tls_verification_disabled;

use crate::parse::dockerfile::{Dockerfile, Form, Instruction, Keyword, Stage};

/// The stages whose layers end up in the final image: the last stage and the stages it
/// builds on (`FROM base`), last first.
#[must_use]
pub fn final_image_stages(df: &Dockerfile) -> Vec<&Stage> {
    let mut out = Vec::new();
    let mut current = df.final_stage();
    while let Some(s) = current {
        if out.iter().any(|o: &&Stage| o.index == s.index) {
            break;
        }
        out.push(s);
        current = s.base_stage.and_then(|b| df.stages.get(b));
    }
    out
}

/// The last instruction with `keyword` in the final image (inherited through parent
/// stages).
#[must_use]
pub fn final_instruction(df: &Dockerfile, keyword: Keyword) -> Option<&Instruction> {
    final_image_stages(df).into_iter().find_map(|s| {
        df.stage_instructions(s)
            .filter(|i| i.keyword == keyword)
            .last()
    })
}

/// The command text of a CMD/ENTRYPOINT/RUN (exec words joined, or the shell body).
#[must_use]
pub fn command_text(inst: &Instruction) -> String {
    match &inst.form {
        Form::Exec(words) => words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        Form::Shell => inst.body().to_string(),
    }
}

/// Programs and phrases that mean "this process serves requests".
const SERVER_HINTS: &[&str] = &[
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "daphne",
    "uwsgi",
    "granian",
    "flask run",
    "fastapi run",
    "manage.py runserver",
    "streamlit run",
    "http.server",
    "vllm serve",
    "node server",
    "node dist/server",
    "node build",
    "npm start",
    "npm run start",
    "yarn start",
    "pnpm start",
    "next start",
    "nginx",
    "httpd",
    "apache2",
    "caddy",
    "java -jar",
    "rails server",
    "rails s",
    "puma",
    "php-fpm",
    "serve ",
];

/// Base images that serve by default (their own CMD runs a server).
const SERVER_IMAGES: &[&str] = &["nginx", "httpd", "caddy", "traefik", "haproxy"];

/// Why the final image looks like it serves traffic, if it does: EXPOSE, a server
/// command in CMD/ENTRYPOINT, or a server base image.
#[must_use]
pub fn serving_reason(df: &Dockerfile) -> Option<(String, &Instruction)> {
    if let Some(expose) = final_instruction(df, Keyword::Expose) {
        return Some(("it EXPOSEs a port".to_string(), expose));
    }
    for kw in [Keyword::Entrypoint, Keyword::Cmd] {
        if let Some(inst) = final_instruction(df, kw) {
            let text = command_text(inst).to_ascii_lowercase();
            if let Some(hint) = SERVER_HINTS.iter().find(|h| text.contains(*h)) {
                return Some((format!("it runs `{}`", hint.trim()), inst));
            }
        }
    }
    let stages = final_image_stages(df);
    let root = stages.last()?;
    let name = root.base.short_name();
    if SERVER_IMAGES.contains(&name) {
        let from = df.instructions.get(root.from)?;
        return Some((format!("it is based on `{name}`"), from));
    }
    None
}
