//! `workflow-duplicate-deploy`: several workflows deploy the same target on the same
//! push, so they race and the last one to finish wins.

use std::collections::BTreeMap;

use super::{Triggers, deploys, overlapping, shared_branches};
use crate::collect::FileKind;
use crate::finding::{Confidence, Location, Severity};
use crate::parse::Document;
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};
use crate::views::Workflow;

/// Cross-file: one finding per target deployed by two or more workflows that run on a
/// push to the same branch.
pub struct DuplicateDeploy;

static META: RuleMeta = RuleMeta {
    id: "workflow-duplicate-deploy",
    title: "Several workflows deploy the same target on the same push",
    family: "workflows",
    severity: Severity::High,
    confidence: Confidence::Medium,
    help: "Keep one workflow responsible for each deploy target (delete or merge the \
           others, or give them distinct branches or targets), and give it a \
           `concurrency` group so runs do not race.",
};

struct Hit {
    path: String,
    label: String,
    environment_only: bool,
    branches: Vec<String>,
    paths_filtered: bool,
    loc: Location,
}

impl Rule for DuplicateDeploy {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        let mut by_target: BTreeMap<String, Vec<Hit>> = BTreeMap::new();
        for file in repo.files_of(FileKind::Workflow) {
            let Document::Yaml(docs) = &file.doc else {
                continue;
            };
            for root in docs {
                let wf = Workflow::new(root);
                let t = Triggers::of(&wf);
                let Some(branches) = t.push_on() else {
                    continue;
                };
                for job in &wf.jobs {
                    let found = deploys(&file.source, job);
                    let concrete = found.iter().any(|d| !d.target.environment_only);
                    for d in found {
                        // Targets named by a variable cannot be compared.
                        if (concrete && d.target.environment_only) || d.target.key.contains('$') {
                            continue;
                        }
                        let hits = by_target.entry(d.target.key.clone()).or_default();
                        if hits.iter().any(|h| h.path == file.path()) {
                            continue;
                        }
                        hits.push(Hit {
                            path: file.path().to_string(),
                            label: d.target.label.clone(),
                            environment_only: d.target.environment_only,
                            branches: branches.clone(),
                            paths_filtered: t.push_paths_filtered,
                            loc: Location::new(&file.source, d.span, "deploys here"),
                        });
                    }
                }
            }
        }
        for hits in by_target.values() {
            if hits.len() < 2 {
                continue;
            }
            // Workflows that share a branch with at least one other.
            let (mut involved, shared) = overlapping(
                hits,
                |a, b| {
                    if a.environment_only && (a.paths_filtered || b.paths_filtered) {
                        Vec::new()
                    } else {
                        shared_branches(&a.branches, &b.branches)
                    }
                },
                |x, h| x.path == h.path,
            );
            if involved.len() < 2 {
                continue;
            }
            involved.sort_by(|a, b| a.path.cmp(&b.path));
            let branch_text = if shared.iter().any(|b| b == "*") {
                "any branch".to_string()
            } else {
                shared
                    .iter()
                    .map(|b| format!("`{b}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let paths: Vec<&str> = involved.iter().map(|h| h.path.as_str()).collect();
            let first = involved[0];
            let mut b = out.report(
                first.loc.clone(),
                format!(
                    "{} is deployed by {} workflows on push to {branch_text}: {}",
                    first.label,
                    involved.len(),
                    paths.join(", ")
                ),
            );
            if first.environment_only {
                b = b.confidence(Confidence::Low).severity(Severity::Medium);
            }
            for h in &involved[1..] {
                b = b.related(h.loc.clone());
            }
            b.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    const DEPLOY: &str = "on:\n  push:\n    branches: [main]\njobs:\n  deploy:\n    steps:\n      - run: gcloud run deploy api --region us-central1\n";

    #[test]
    fn one_finding_lists_every_workflow() {
        let release = "on:\n  push:\n    branches: [main, release]\njobs:\n  ship:\n    steps:\n      - uses: google-github-actions/deploy-cloudrun@v2\n        with:\n          service: api\n";
        let any = "on: push\njobs:\n  d:\n    steps:\n      - run: |\n          gcloud auth configure-docker\n          gcloud run deploy api --source .\n";
        let f = run_rule(
            &DuplicateDeploy,
            &[
                (".github/workflows/deploy.yml", DEPLOY),
                (".github/workflows/release.yml", release),
                (".github/workflows/adhoc.yml", any),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        let m = &f[0].message;
        assert!(
            m.starts_with("Cloud Run service `api` is deployed by 3 workflows"),
            "{m}"
        );
        assert_eq!(f[0].locations.len(), 3);
        assert_eq!(f[0].locations[0].path, ".github/workflows/adhoc.yml");
        assert_eq!(f[0].locations[0].span.start.line, 7);
    }

    #[test]
    fn same_environment_only_when_nothing_more_specific() {
        let a = "on:\n  push:\n    branches: [main]\njobs:\n  d:\n    environment: production\n    steps:\n      - run: ./deploy.sh\n";
        let f = run_rule(
            &DuplicateDeploy,
            &[
                (".github/workflows/a.yml", a),
                (".github/workflows/b.yml", a),
            ],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].confidence, Confidence::Low);
    }

    #[test]
    fn different_branches_targets_or_triggers_are_fine() {
        let staging = DEPLOY.replace("[main]", "[staging]");
        let web = DEPLOY.replace("deploy api", "deploy web");
        let manual = DEPLOY.replace("push:\n    branches: [main]", "workflow_dispatch:");
        let env_a = "on:\n  push:\n    branches: [main]\njobs:\n  d:\n    environment: production\n    steps:\n      - run: gcloud run deploy api\n";
        let env_b = "on:\n  push:\n    branches: [main]\njobs:\n  d:\n    environment: production\n    steps:\n      - run: gcloud run deploy web\n";
        let f = run_rule(
            &DuplicateDeploy,
            &[
                (".github/workflows/deploy.yml", DEPLOY),
                (".github/workflows/staging.yml", &staging),
                (".github/workflows/web.yml", &web),
                (".github/workflows/manual.yml", &manual),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
        let f = run_rule(
            &DuplicateDeploy,
            &[
                (".github/workflows/api.yml", env_a),
                (".github/workflows/web.yml", env_b),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
