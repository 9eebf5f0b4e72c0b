//! `dockerfile-add-instead-of-copy`: ADD used where COPY does the job.

use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Dockerfile, Form, Instruction, Keyword, Stage};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `ADD` of local files that are not archives (ADD's extra powers — URL download
/// and tar extraction — are not used, but they surprise readers and reviewers).
pub struct AddInsteadOfCopy;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-add-instead-of-copy",
    title: "ADD used where COPY fits",
    family: "dockerfile",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Use COPY for local files and directories. Keep ADD only to extract a local tar \
           archive or to fetch a URL with `--checksum`.",
};

const ARCHIVES: &[&str] = &[
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".gz", ".bz2",
    ".xz", ".zst",
];

fn is_remote(src: &str) -> bool {
    src.contains("://") || src.starts_with("git@")
}

impl Rule for AddInsteadOfCopy {
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
        if inst.keyword != Keyword::Add {
            return;
        }
        let words = match &inst.form {
            Form::Exec(w) => w.as_slice(),
            Form::Shell => inst.words(),
        };
        // Sources are every word but the destination.
        let Some((_, sources)) = words.split_last() else {
            return;
        };
        let local_plain = !sources.is_empty()
            && sources.iter().all(|w| {
                let s = w.text.to_ascii_lowercase();
                !is_remote(&s) && !ARCHIVES.iter().any(|a| s.ends_with(a))
            });
        if local_plain {
            out.report(
                cx.loc_range(inst.keyword_range.clone(), "use COPY"),
                "ADD copies local files here; COPY says so without ADD's URL and \
                 archive-extraction behavior",
            )
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_plain_local_add() {
        let f = run_rule(
            &super::AddInsteadOfCopy,
            &[(
                "Dockerfile",
                "FROM x\nADD src/ /app/\nADD [\"a b.txt\", \"/c/\"]\nADD <<EOF /etc/x\nhi\nEOF\n",
            )],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].locations[0].span.start.line, 2);
    }

    #[test]
    fn accepts_archives_urls_and_copy() {
        let f = run_rule(
            &super::AddInsteadOfCopy,
            &[(
                "Dockerfile",
                "FROM x\nADD rootfs.tar.gz /\nADD --checksum=sha256:abc https://example.com/a.bin /a\nADD git@github.com:o/r.git /src\nCOPY . /app\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
