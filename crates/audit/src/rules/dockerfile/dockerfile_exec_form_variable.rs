//! `dockerfile-exec-form-variable`: `$VAR` inside an exec-form (JSON) command.

use crate::finding::{Confidence, Severity};
use crate::parse::dockerfile::{Dockerfile, Form, Instruction, Keyword, Stage};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};

/// Flags `CMD ["uvicorn", "--port", "${PORT}"]`: exec form runs without a shell, so the
/// variable reaches the program literally.
pub struct ExecFormVariable;

static META: RuleMeta = RuleMeta {
    id: "dockerfile-exec-form-variable",
    title: "Variable in an exec-form command will never expand",
    family: "dockerfile",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Exec form (JSON array) runs without a shell, so `$VAR` stays literal. Use the \
           shell form, wrap it as [\"sh\", \"-c\", \"exec app --port ${PORT}\"], or let the \
           program read the environment variable itself.",
};

const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "ash",
    "dash",
    "zsh",
    "pwsh",
    "powershell",
    "cmd",
];

/// Byte offset of the first `$NAME` / `${NAME` in `s`.
fn variable_at(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| {
        b[i] == b'$'
            && (i == 0 || b[i - 1] != b'\\')
            && match b.get(i + 1) {
                Some(b'{') => b
                    .get(i + 2)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_'),
                Some(c) => c.is_ascii_alphabetic() || *c == b'_',
                None => false,
            }
    })
}

impl Rule for ExecFormVariable {
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
        if !matches!(
            inst.keyword,
            Keyword::Cmd | Keyword::Entrypoint | Keyword::Run | Keyword::Healthcheck
        ) {
            return;
        }
        let Form::Exec(words) = &inst.form else {
            return;
        };
        let runs_shell = words.first().is_some_and(|w| {
            let prog = w.text.rsplit(['/', '\\']).next().unwrap_or(&w.text);
            SHELLS.contains(&prog.trim_end_matches(".exe"))
        });
        if runs_shell {
            return;
        }
        for w in words {
            if variable_at(&w.text).is_some() {
                out.report(
                    cx.loc_range(w.range.clone(), "stays literal"),
                    format!(
                        "exec-form {} passes `{}` literally: no shell expands it",
                        inst.keyword.as_str(),
                        w.text
                    ),
                )
                .emit();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_variables_in_exec_form() {
        let f = run_rule(
            &super::ExecFormVariable,
            &[(
                "Dockerfile",
                "FROM x\nCMD [\"uvicorn\", \"app:app\", \"--port\", \"${PORT}\"]\nENTRYPOINT [\"/app\", \"$MODE\"]\n",
            )],
        );
        assert_eq!(f.len(), 2);
        let l = &f[0].locations[0];
        assert_eq!((l.span.start.line, l.span.start.col), (2, 38));
    }

    #[test]
    fn accepts_shell_form_and_shell_wrappers() {
        let f = run_rule(
            &super::ExecFormVariable,
            &[(
                "Dockerfile",
                "FROM x\nCMD uvicorn app:app --port ${PORT}\nCMD [\"sh\", \"-c\", \"exec app --port $PORT\"]\nCMD [\"/bin/bash\", \"-c\", \"$X\"]\nCMD [\"echo\", \"costs $5\"]\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
