//! The rule interface: metadata, hooks from general to specific, and the finding sink.
//!
//! A rule implements only the hooks it cares about. Defaults recurse from general to
//! specific, so overriding a general hook (say [`Rule::check_file`]) replaces the
//! dispatch below it for that rule:
//!
//! ```text
//! check_file ─┬─ check_dockerfile ── check_stage ── check_instruction
//!             ├─ check_yaml ───────┬─ check_compose ── check_compose_service
//!             │                    └─ check_workflow ── check_job ── check_step
//!             ├─ check_json
//!             ├─ check_toml
//!             └─ check_text
//! check_repository   (once per run, after nothing in particular: cross-file rules)
//! ```

use std::borrow::Cow;

use crate::collect::FileKind;
use crate::finding::{Confidence, Finding, Location, Severity, Subject, secret_id};
use crate::parse::dockerfile::{Dockerfile, Instruction, Stage};
use crate::parse::{Document, Node};
use crate::repo::{ParsedFile, Repository};
use crate::source::{SourceFile, Span};
use crate::views::{Compose, ComposeService, Job, Step, Workflow};

/// Static description of a rule. The `id` is stable forever: never rename it.
#[derive(Debug)]
pub struct RuleMeta {
    /// Kebab-case id (`dockerfile-latest-tag`); equals the rule file name with `_`.
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// Family = the directory under `src/rules/` (`""` for top-level rules).
    pub family: &'static str,
    /// Default severity (config may override).
    pub severity: Severity,
    /// Default confidence.
    pub confidence: Confidence,
    /// How to fix it, in one or two sentences.
    pub help: &'static str,
}

/// Where rule pages live in the repository (and are embedded from, for `--explain`).
pub const DOCS_DIR: &str = "docs/audit/rules";

mod pages {
    include!(concat!(env!("OUT_DIR"), "/rule_docs.rs"));
}

/// The page of rule `id` (Markdown), as embedded in the binary.
#[must_use]
pub fn docs_page(id: &str) -> Option<&'static str> {
    pages::PAGES
        .binary_search_by(|(k, _)| (*k).cmp(id))
        .ok()
        .map(|i| pages::PAGES[i].1)
}

/// Every embedded page's rule id.
pub fn documented_ids() -> impl Iterator<Item = &'static str> {
    pages::PAGES.iter().map(|(id, _)| *id)
}

impl RuleMeta {
    /// The rule's page, relative to the repository root.
    #[must_use]
    pub fn docs_path(&self) -> String {
        format!("{DOCS_DIR}/{}.md", self.id)
    }
}

/// What a per-file hook sees: the file and the whole repository.
#[derive(Clone, Copy)]
pub struct FileCx<'a> {
    /// The file being checked.
    pub file: &'a ParsedFile,
    /// Every file, and settings.
    pub repo: &'a Repository,
}

impl<'a> FileCx<'a> {
    /// The file's source.
    #[must_use]
    pub fn source(&self) -> &'a SourceFile {
        &self.file.source
    }

    /// Span of a byte range of this file.
    #[must_use]
    pub fn span(&self, range: std::ops::Range<usize>) -> Span {
        self.file.source.span(range)
    }

    /// A location in this file.
    #[must_use]
    pub fn loc(&self, span: Span, label: impl Into<String>) -> Location {
        Location::new(&self.file.source, span, label)
    }

    /// A location in this file from a byte range.
    #[must_use]
    pub fn loc_range(&self, range: std::ops::Range<usize>, label: impl Into<String>) -> Location {
        self.loc(self.span(range), label)
    }
}

/// Collects one rule's findings; handed to every hook.
pub struct Sink {
    meta: &'static RuleMeta,
    findings: Vec<Finding>,
}

impl Sink {
    /// A sink for `meta`'s findings.
    #[must_use]
    pub fn new(meta: &'static RuleMeta) -> Self {
        Self {
            meta,
            findings: Vec::new(),
        }
    }

    /// Start a finding at `primary`. Call [`FindingBuilder::emit`] to record it.
    pub fn report(&mut self, primary: Location, message: impl Into<String>) -> FindingBuilder<'_> {
        let meta = self.meta;
        FindingBuilder {
            sink: self,
            finding: Finding {
                rule: meta.id,
                severity: meta.severity,
                confidence: meta.confidence,
                message: message.into(),
                help: Cow::Borrowed(meta.help),
                locations: vec![primary],
                fingerprint: String::new(),
                subject: Subject::None,
            },
        }
    }

    /// The findings collected so far.
    #[must_use]
    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    /// The rule this sink collects for.
    #[must_use]
    pub fn meta(&self) -> &'static RuleMeta {
        self.meta
    }
}

/// A finding being built; nothing is recorded until [`FindingBuilder::emit`].
#[must_use = "call .emit() to record the finding"]
pub struct FindingBuilder<'s> {
    sink: &'s mut Sink,
    finding: Finding,
}

impl FindingBuilder<'_> {
    /// Add a secondary location.
    pub fn related(mut self, loc: Location) -> Self {
        self.finding.locations.push(loc);
        self
    }

    /// Override the rule's default severity for this occurrence.
    pub fn severity(mut self, s: Severity) -> Self {
        self.finding.severity = s;
        self
    }

    /// Override the rule's default confidence for this occurrence.
    pub fn confidence(mut self, c: Confidence) -> Self {
        self.finding.confidence = c;
        self
    }

    /// Replace the rule's help with occurrence-specific advice.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.finding.help = Cow::Owned(help.into());
        self
    }

    /// Mask the text of every location in outputs (the finding is about a secret).
    pub fn redact(mut self) -> Self {
        for l in &mut self.finding.locations {
            l.redact = true;
        }
        self
    }

    /// The finding is about this secret value: reports list each distinct secret once,
    /// with every place it occurs. Pass the value in a canonical form (trimmed, a key as
    /// its base64 body); only a hash of it is kept.
    pub fn secret(mut self, value: &str) -> Self {
        self.finding.subject = Subject::Secret(secret_id(value));
        self
    }

    /// The finding is about this named thing (a stale id): repeats in one file are
    /// grouped by it.
    pub fn subject(mut self, name: impl Into<String>) -> Self {
        self.finding.subject = Subject::Name(name.into());
        self
    }

    /// Record the finding.
    pub fn emit(self) {
        self.sink.findings.push(self.finding);
    }
}

/// An audit rule. See the module docs for the hook order.
///
/// Rules must be cheap to call on files they do not care about: the default hooks do
/// nothing, and a rule that scans raw text should check a keyword first.
#[allow(unused_variables)] // default hooks ignore their inputs
pub trait Rule: Send + Sync {
    /// The rule's static metadata.
    fn meta(&self) -> &'static RuleMeta;

    /// Every file, raw. Default: dispatch on the parsed document.
    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        match &cx.file.doc {
            Document::Dockerfile(df) => self.check_dockerfile(cx, df, out),
            Document::Yaml(docs) => self.check_yaml(cx, docs, out),
            Document::Json(root) => self.check_json(cx, root, out),
            Document::Toml(root) => self.check_toml(cx, root, out),
            Document::Text => self.check_text(cx, out),
            Document::Binary | Document::Invalid => {}
        }
    }

    /// A Dockerfile. Default: each stage.
    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        for stage in &df.stages {
            self.check_stage(cx, df, stage, out);
        }
    }

    /// A build stage. Default: each of its instructions (`FROM` included).
    fn check_stage(&self, cx: &FileCx<'_>, df: &Dockerfile, stage: &Stage, out: &mut Sink) {
        for inst in df.stage_instructions(stage) {
            self.check_instruction(cx, df, stage, inst, out);
        }
    }

    /// One instruction of a stage.
    fn check_instruction(
        &self,
        cx: &FileCx<'_>,
        df: &Dockerfile,
        stage: &Stage,
        inst: &Instruction,
        out: &mut Sink,
    ) {
    }

    /// A YAML file (all documents). Default: compose and workflow views.
    fn check_yaml(&self, cx: &FileCx<'_>, docs: &[Node], out: &mut Sink) {
        match cx.file.kind {
            FileKind::Compose => {
                for root in docs {
                    self.check_compose(cx, &Compose::new(root), out);
                }
            }
            FileKind::Workflow => {
                for root in docs {
                    self.check_workflow(cx, &Workflow::new(root), out);
                }
            }
            _ => {}
        }
    }

    /// A compose file. Default: each service.
    fn check_compose(&self, cx: &FileCx<'_>, compose: &Compose<'_>, out: &mut Sink) {
        for svc in &compose.services {
            self.check_compose_service(cx, compose, svc, out);
        }
    }

    /// One compose service.
    fn check_compose_service(
        &self,
        cx: &FileCx<'_>,
        compose: &Compose<'_>,
        service: &ComposeService<'_>,
        out: &mut Sink,
    ) {
    }

    /// A GitHub Actions workflow. Default: each job.
    fn check_workflow(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, out: &mut Sink) {
        for job in &wf.jobs {
            self.check_job(cx, wf, job, out);
        }
    }

    /// One workflow job. Default: each step.
    fn check_job(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, job: &Job<'_>, out: &mut Sink) {
        for step in &job.steps {
            self.check_step(cx, wf, job, step, out);
        }
    }

    /// One workflow step.
    fn check_step(
        &self,
        cx: &FileCx<'_>,
        wf: &Workflow<'_>,
        job: &Job<'_>,
        step: &Step<'_>,
        out: &mut Sink,
    ) {
    }

    /// A JSON/JSONC file (devcontainer, package.json, lockfiles, tfstate).
    fn check_json(&self, cx: &FileCx<'_>, root: &Node, out: &mut Sink) {}

    /// A TOML file (pyproject, poetry.lock, Cargo.lock).
    fn check_toml(&self, cx: &FileCx<'_>, root: &Node, out: &mut Sink) {}

    /// A text file (env, requirements, shell, Terraform, version files, other text).
    fn check_text(&self, cx: &FileCx<'_>, out: &mut Sink) {}

    /// Once per audit, with every file: cross-file rules (drift, duplicates).
    fn check_repository(&self, repo: &Repository, out: &mut Sink) {}
}
