//! `dockerfile-package-cache`: package-manager caches left in the image.

use super::final_image_stages;
use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Command, Dockerfile, Instruction, Keyword};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `apt-get install` without removing `/var/lib/apt/lists`, `pip install` without
/// `--no-cache-dir`, `apk add` without `--no-cache`, `yum`/`dnf install` without
/// `clean all` — in stages that end up in the final image.
pub struct PackageCache;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-package-cache",
    title: "Package manager cache left in the image",
    family: "dockerfile",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Clean the cache in the same RUN that fills it: `apt-get install … && rm -rf \
           /var/lib/apt/lists/*`, `pip install --no-cache-dir`, `apk add --no-cache`, \
           `dnf install … && dnf clean all` — or use a `RUN --mount=type=cache` for it.",
};

/// Is there a `--mount=type=cache` whose target contains one of `targets`?
fn cache_mount(inst: &Instruction, targets: &[&str]) -> bool {
    inst.flags.iter().any(|f| {
        f.name == "mount"
            && f.value
                .as_deref()
                .is_some_and(|v| v.contains("type=cache") && targets.iter().any(|t| v.contains(t)))
    })
}

fn removes(cmds: &[Command], path: &str) -> bool {
    cmds.iter()
        .any(|c| c.program() == Some("rm") && c.args().iter().any(|w| w.text.contains(path)))
}

fn cleans(cmds: &[Command], programs: &[&str]) -> bool {
    cmds.iter()
        .any(|c| c.program().is_some_and(|p| programs.contains(&p)) && c.has_arg("clean"))
}

/// Subcommand position: `apt-get -y install` → `install`.
fn subcommand(c: &Command) -> Option<&str> {
    c.args()
        .iter()
        .map(|w| w.text.as_str())
        .find(|t| !t.starts_with('-'))
}

impl Rule for PackageCache {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        for stage in final_image_stages(df) {
            for inst in df.stage_instructions(stage) {
                if inst.keyword == Keyword::Run {
                    self.check_run(cx, df, inst, out);
                }
            }
        }
    }
}

impl PackageCache {
    fn check_run(&self, cx: &FileCx<'_>, df: &Dockerfile, inst: &Instruction, out: &mut Sink) {
        let cmds = inst.commands();
        let mut report = |c: &Command, message: &str, help: &str| {
            let range = c.words[c.program_index().unwrap_or(0)].range.clone();
            out.report(cx.loc_range(range, "cache kept"), message)
                .help(help)
                .emit();
        };
        for c in cmds {
            let Some(prog) = c.program() else { continue };
            let sub = subcommand(c);
            match prog {
                "apt-get" | "apt" if sub == Some("install") => {
                    if !removes(cmds, "/var/lib/apt/lists")
                        && !cache_mount(inst, &["/var/lib/apt", "/var/cache/apt"])
                    {
                        report(
                            c,
                            "`apt-get install` without `rm -rf /var/lib/apt/lists/*` keeps the \
                             package lists in this layer",
                            "End the same RUN with `&& rm -rf /var/lib/apt/lists/*`.",
                        );
                    }
                }
                "apk" if sub == Some("add") => {
                    if !c.has_arg("--no-cache")
                        && !removes(cmds, "/var/cache/apk")
                        && !cache_mount(inst, &["/var/cache/apk"])
                    {
                        report(
                            c,
                            "`apk add` without `--no-cache` keeps the package index in this layer",
                            "Use `apk add --no-cache …`.",
                        );
                    }
                }
                "yum" | "dnf" | "microdnf" if sub == Some("install") => {
                    if !cleans(cmds, &["yum", "dnf", "microdnf"])
                        && !removes(cmds, "/var/cache/")
                        && !cache_mount(inst, &["/var/cache/"])
                    {
                        report(
                            c,
                            &format!(
                                "`{prog} install` without `{prog} clean all` keeps its cache in this layer"
                            ),
                            &format!("End the same RUN with `&& {prog} clean all`."),
                        );
                    }
                }
                _ => {
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let pip = matches!(prog, "pip" | "pip3") && sub == Some("install")
                        || prog.starts_with("python")
                            && args.len() >= 3
                            && args[0] == "-m"
                            && args[1] == "pip"
                            && args[2] == "install";
                    if pip && !c.has_arg("--no-cache-dir") && !pip_cache_disabled(df, inst) {
                        report(
                            c,
                            "`pip install` without `--no-cache-dir` keeps downloaded wheels in \
                             this layer",
                            "Use `pip install --no-cache-dir …` or set `ENV PIP_NO_CACHE_DIR=1`.",
                        );
                    }
                }
            }
        }
    }
}

fn pip_cache_disabled(df: &Dockerfile, inst: &Instruction) -> bool {
    cache_mount(inst, &[".cache/pip", "/root/.cache"])
        || df
            .vars_at(inst)
            .get("PIP_NO_CACHE_DIR")
            .is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_each_manager() {
        let text = "FROM debian:12\n\
RUN apt-get update && apt-get install -y --no-install-recommends curl\n\
RUN pip install requests\n\
RUN python3 -m pip install flask\n\
RUN apk add git\n\
RUN dnf install -y make\n";
        let f = run_rule(&super::PackageCache, &[("Dockerfile", text)]);
        assert_eq!(f.len(), 5, "{f:?}");
        let loc = &f[0].locations[0];
        assert_eq!((loc.span.start.line, loc.span.start.col), (2, 23));
    }

    #[test]
    fn accepts_cleanups_and_build_stages() {
        let text = "FROM python:3.12 AS build\n\
RUN pip install -r requirements.txt\n\
FROM python:3.12-slim\n\
RUN apt-get update \\\n    && apt-get install -y curl \\\n    && rm -rf /var/lib/apt/lists/*\n\
RUN --mount=type=cache,target=/root/.cache/pip pip install x\n\
RUN pip install --no-cache-dir y\n\
RUN apk add --no-cache git\n\
RUN dnf install -y make && dnf clean all\n\
ENV PIP_NO_CACHE_DIR=1\n\
RUN pip install z\n\
RUN <<EOF\napt-get update\napt-get install -y jq\nrm -rf /var/lib/apt/lists/*\nEOF\n";
        let f = run_rule(&super::PackageCache, &[("Dockerfile", text)]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn sees_heredoc_scripts() {
        let text =
            "FROM debian:12\nRUN <<EOF\nset -e\napt-get update\napt-get install -y jq\nEOF\n";
        let f = run_rule(&super::PackageCache, &[("Dockerfile", text)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].locations[0].span.start.line, 5);
    }
}
