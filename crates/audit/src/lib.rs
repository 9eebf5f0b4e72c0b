//! `orchestra audit`: one fast pass over a repository's container, CI and infra files.
//!
//! # How it fits together
//!
//! 1. [`collect`] walks the tree in parallel (`.gitignore`-aware, `.github/` included) and
//!    classifies each path into a [`FileKind`].
//! 2. [`repo::Repository::load`] reads every file once and parses it in parallel into a
//!    [`parse::Document`]: our own Dockerfile AST ([`parse::dockerfile`]), or a [`Node`]
//!    tree with exact spans for YAML (saphyr), JSON/JSONC and TOML, or plain text.
//!    A file that does not parse gets [`parse::ParseIssue`]s, reported by `parse-error`.
//! 3. [`runner`] runs every enabled rule of the [`registry`] on every file (rayon), then
//!    each rule's repository-wide hook once, then applies severity overrides, inline
//!    ignores, config ignores and the baseline, and sorts.
//! 4. [`group`] groups repeats (the same secret value anywhere, one rule in one file, one
//!    stale id in one file); [`output`] renders text (a summary, the secrets to rotate,
//!    then one block per group, most severe first), JSON (versioned; every finding plus
//!    the groups) or SARIF 2.1.0 (one result per finding); [`cli::run_audit`] maps the
//!    highest severity to the exit code with `--fail-on`.
//!
//! # Adding a rule (four small edits, checked by a test)
//!
//! 1. **The file.** `src/rules/<family>/<id_with_underscores>.rs` — the file stem is the
//!    rule id with `-` → `_`, and the directory is `RuleMeta::family` (`""` and
//!    `src/rules/<id>.rs` for family-less rules). Declare the module in the family's
//!    `mod.rs` (create `src/rules/<family>/mod.rs` and add `pub mod <family>;` to
//!    `src/rules/mod.rs` for a new family). Inside:
//!
//!    ```ignore
//!    pub struct LatestTag;
//!    static META: RuleMeta = RuleMeta {
//!        id: "dockerfile-latest-tag",     // stable forever, kebab-case
//!        title: "Base image is untagged or uses `latest`",
//!        family: "dockerfile",
//!        severity: Severity::Medium,
//!        confidence: Confidence::High,
//!        help: "Pin the base image to a version tag …",   // says the fix
//!    };
//!    impl Rule for LatestTag {
//!        fn meta(&self) -> &'static RuleMeta { &META }
//!        fn check_stage(&self, cx: &FileCx<'_>, df: &Dockerfile, stage: &Stage, out: &mut Sink) {
//!            out.report(cx.loc_range(stage.base_range.clone(), "unpinned"), "message")
//!                .emit();
//!        }
//!    }
//!    ```
//!
//!    Override the most specific hook you need ([`Rule`] documents the order:
//!    `check_file` → `check_dockerfile` → `check_stage` → `check_instruction`;
//!    `check_yaml` → `check_compose` → `check_compose_service`, or `check_workflow` →
//!    `check_job` → `check_step`; `check_json`, `check_toml`, `check_text`). Cross-file
//!    rules (drift, duplicate deploys) override [`Rule::check_repository`] and read
//!    `repo.files` / `repo.files_of(kind)`. Raw-text rules (secrets, stale ids) override
//!    `check_file` and must run a cheap prefilter (a keyword / aho-corasick scan) before
//!    any regex. Rule options come from `repo.settings.option(id, key)`
//!    (`[rules.<id>]` in the config); stale ids and the OSV directory are in
//!    `repo.settings`.
//!
//!    Findings: `out.report(primary_location, message)` then optionally
//!    `.related(loc)`, `.severity(..)`, `.confidence(..)`, `.help(..)`, `.redact()`,
//!    `.secret(value)` (a finding about a secret value: reports list each distinct secret
//!    once, with all its locations; only a hash is kept) or `.subject(name)` (repeats of
//!    one named thing group by it), and always `.emit()`. Messages must never hold a secret value (use
//!    [`finding::redact`] and `.redact()` so snippets are masked) nor line numbers
//!    (fingerprints for baselines include the message; use related locations instead).
//! 2. **The registry line.** Append `Box::new(rules::<family>::<file>::<Type>),` to its
//!    family block in [`registry::all`]. Order is output order for ties; never reorder.
//! 3. **The docs.** `docs/audit/rules/<id>.md` (title line `# <id>`, then what, why, how to
//!    fix, an example and how to ignore it) and one line in the table of
//!    `docs/audit/README.md`: `| [<id>](rules/<id>.md) | <family> | <severity> | <title> |`.
//! 4. **Tests.** In the rule file, a `#[cfg(test)] mod tests` with at least one positive
//!    and one negative case, using [`testing::run_rule`] on in-memory files:
//!
//!    ```ignore
//!    let f = run_rule(&LatestTag, &[("Dockerfile", "FROM python\n")]);
//!    assert_eq!(f.len(), 1);
//!    assert_eq!(f[0].locations[0].span.start.line, 1);
//!    ```
//!
//! The test `registry_matches_rule_files_and_docs` (tests/integration/registry.rs) fails when a rule
//! file, registry line or docs entry is missing or misnamed.
//!
//! Locations: lines and columns are 1-based, columns count characters. Use
//! [`rule::FileCx::loc`] with a node's `span` (YAML/JSON/TOML), or
//! [`rule::FileCx::loc_range`] with a byte range (Dockerfile words, flags and
//! instructions carry source byte ranges; `Instruction::src_range` maps ranges of the
//! joined instruction text).

pub mod baseline;
pub mod cli;
pub mod collect;
pub mod config;
mod error;
pub mod finding;
pub mod fix;
pub mod group;
mod heap;
pub mod ignore_comments;
pub mod knowledge;
pub mod osv;
pub mod output;
pub mod parse;
pub mod registry;
pub mod repo;
pub mod rule;
pub mod rules;
pub mod runner;
pub mod source;
pub mod testing;
pub mod views;

pub use collect::FileKind;
pub use error::AuditError;
pub use finding::{Confidence, Finding, Location, Severity};
pub use parse::Node;
pub use repo::{ParsedFile, Repository, Settings};
pub use rule::{FileCx, Rule, RuleMeta, Sink};
pub use runner::{AuditOptions, Report, audit, audit_repository};
pub use source::{Pos, SourceFile, Span};
