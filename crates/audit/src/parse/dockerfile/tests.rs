//! Dockerfile parser tests: continuations, comments, directives, escape, heredocs,
//! forms, flags, stages and substitution — and the exact locations of each.

use super::*;

fn parse(text: &str) -> (SourceFile, Dockerfile) {
    let f = SourceFile::new("Dockerfile", text);
    let df = Dockerfile::parse(&f);
    (f, df)
}

fn at(f: &SourceFile, range: &Range<usize>) -> (u32, u32) {
    let p = f.pos(range.start);
    (p.line, p.col)
}

fn kws(df: &Dockerfile) -> Vec<&'static str> {
    df.instructions.iter().map(|i| i.keyword.as_str()).collect()
}

#[test]
fn simple_file() {
    let (_, df) = parse("FROM alpine:3.20\nRUN echo hi\nCMD [\"sh\"]\n");
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(kws(&df), ["FROM", "RUN", "CMD"]);
    assert_eq!(df.stages.len(), 1);
    assert_eq!(df.stages[0].base.name, "alpine");
    assert_eq!(df.stages[0].base.tag.as_deref(), Some("3.20"));
}

#[test]
fn keywords_are_case_insensitive_and_keep_their_spelling() {
    let (_, df) = parse("from alpine\nrun echo\n");
    assert_eq!(kws(&df), ["FROM", "RUN"]);
    assert_eq!(df.instructions[1].keyword_text(), "run");
}

#[test]
fn continuation_joins_lines_and_skips_comments_and_blank_lines() {
    let text = "FROM debian\nRUN apt-get update \\\n# a comment inside\n    && apt-get install -y \\\n\n      curl\nUSER app\n";
    let (f, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(kws(&df), ["FROM", "RUN", "USER"]);
    let run = &df.instructions[1];
    assert_eq!(
        run.body(),
        "apt-get update     && apt-get install -y       curl"
    );
    let cmds = run.commands();
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[1].program(), Some("apt-get"));
    // `curl` is on line 6, column 7, even though it came through two continuations.
    let curl = cmds[1].words.last().unwrap();
    assert_eq!(curl.text, "curl");
    assert_eq!(at(&f, &curl.range), (6, 7));
    assert_eq!(&text[curl.range.clone()], "curl");
    // The instruction spans lines 2..6.
    assert_eq!(f.pos(run.range.end).line, 6);
}

#[test]
fn continuation_with_trailing_whitespace_after_backslash() {
    let (_, df) = parse("FROM x\nRUN a \\  \n  b\n");
    assert_eq!(df.instructions[1].body(), "a   b");
}

#[test]
fn continuation_at_end_of_file() {
    let (_, df) = parse("FROM x\nRUN a \\");
    assert_eq!(df.instructions.len(), 2);
    assert_eq!(df.instructions[1].body().trim(), "a");
}

#[test]
fn directives_at_the_top_only() {
    let text =
        "# syntax=docker/dockerfile:1.7\n#check=skip=all\n# escape=\\\n\n# escape=`\nFROM x\n";
    let (_, df) = parse(text);
    let names: Vec<&str> = df.directives.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["syntax", "check", "escape"]);
    assert_eq!(df.directives[0].value, "docker/dockerfile:1.7");
    assert_eq!(df.directives[1].value, "skip=all");
    // The backtick after the blank line is a comment, not a directive.
    assert_eq!(df.escape, '\\');
}

#[test]
fn unknown_directive_ends_directive_processing() {
    let (_, df) = parse("# foo=bar\n# escape=`\nFROM x\n");
    assert!(df.directives.is_empty());
    assert_eq!(df.escape, '\\');
}

#[test]
fn escape_backtick_changes_continuations() {
    let text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nRUN dir C:\\ `\n    && echo done\nCOPY a.txt C:\\app\\\n";
    let (_, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(df.escape, '`');
    assert_eq!(kws(&df), ["FROM", "RUN", "COPY"]);
    assert_eq!(df.instructions[1].body(), "dir C:\\     && echo done");
    // A trailing backslash is literal with the backtick escape.
    assert!(df.instructions[2].body().ends_with("C:\\app\\"));
}

#[test]
fn repeated_or_invalid_directive_is_an_issue() {
    let (_, df) = parse("# escape=x\nFROM x\n");
    assert_eq!(df.issues.len(), 1);
    assert!(df.issues[0].message.contains("invalid escape"));
    let (_, df) = parse("# syntax=a\n# syntax=b\nFROM x\n");
    assert!(df.issues[0].message.contains("repeated"));
}

#[test]
fn heredoc_basic() {
    let text = "FROM x\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nUSER app\n";
    let (f, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(kws(&df), ["FROM", "RUN", "USER"]);
    let run = &df.instructions[1];
    assert_eq!(run.heredocs.len(), 1);
    let h = &run.heredocs[0];
    assert_eq!(h.name, "EOF");
    assert!(!h.quoted && !h.chomp && h.terminated);
    assert_eq!(h.body, "apt-get update\napt-get install -y curl\n");
    assert_eq!(
        &text[h.body_range.clone()],
        "apt-get update\napt-get install -y curl"
    );
    assert_eq!(at(&f, &h.marker_range), (2, 5));
    // The script's commands are the RUN's commands, located in the body.
    let cmds = run.commands();
    assert_eq!(cmds.len(), 2);
    let curl = cmds[1].words.last().unwrap();
    assert_eq!(at(&f, &curl.range), (4, 20));
    assert_eq!(f.pos(run.range.end).line, 5);
}

#[test]
fn heredoc_chomp_and_quoted() {
    let text = "FROM x\nRUN <<-'EOT' bash\n\techo $HOME\n\tEOT\nCOPY <<\"CONF\" /etc/app.conf\nkey=${VALUE}\nCONF\n";
    let (f, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(kws(&df), ["FROM", "RUN", "COPY"]);
    let h = &df.instructions[1].heredocs[0];
    assert_eq!(h.name, "EOT");
    assert!(h.chomp && h.quoted);
    assert_eq!(h.body, "echo $HOME\n");
    let cmds = df.instructions[1].commands();
    let echo = cmds.iter().find(|c| c.program() == Some("echo")).unwrap();
    // Tabs were stripped from the body but the location is still the source's.
    assert_eq!(at(&f, &echo.words[0].range), (3, 2));
    let c = &df.instructions[2].heredocs[0];
    assert_eq!(c.name, "CONF");
    assert!(c.quoted);
    assert_eq!(c.body, "key=${VALUE}\n");
    // COPY heredocs are file contents, not commands.
    assert!(
        df.instructions[2]
            .commands()
            .iter()
            .all(|c| c.program() != Some("key=${VALUE}"))
    );
}

#[test]
fn several_heredocs_on_one_line() {
    let text = "FROM x\nCOPY <<A <<B /dest/\nfirst\nA\nsecond\nB\nRUN true\n";
    let (_, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    let copy = &df.instructions[1];
    let names: Vec<&str> = copy.heredocs.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(copy.heredocs[0].body, "first\n");
    assert_eq!(copy.heredocs[1].body, "second\n");
    assert_eq!(kws(&df), ["FROM", "COPY", "RUN"]);
}

#[test]
fn comment_right_after_a_heredoc() {
    let text = "FROM x\nRUN <<EOF\necho hi\nEOF\n# a comment after the terminator\nRUN echo next\n";
    let (_, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(kws(&df), ["FROM", "RUN", "RUN"]);
    assert_eq!(df.instructions[1].heredocs[0].body, "echo hi\n");
}

#[test]
fn comment_lines_inside_a_heredoc_are_body() {
    let text = "FROM x\nRUN <<EOF\n# not a Dockerfile comment\nEOF\n";
    let (_, df) = parse(text);
    assert_eq!(
        df.instructions[1].heredocs[0].body,
        "# not a Dockerfile comment\n"
    );
}

#[test]
fn unterminated_heredoc_is_an_issue() {
    let (_, df) = parse("FROM x\nRUN <<EOF\necho hi\n");
    assert_eq!(df.issues.len(), 1);
    assert!(df.issues[0].message.contains("never terminated"));
    assert!(!df.instructions[1].heredocs[0].terminated);
}

#[test]
fn here_strings_and_quoted_markers_are_not_heredocs() {
    let (_, df) = parse("FROM x\nRUN cat <<< hello\nRUN echo '<<EOF'\n");
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert!(df.instructions[1].heredocs.is_empty());
    assert!(df.instructions[2].heredocs.is_empty());
}

#[test]
fn heredoc_marker_with_redirect_and_python() {
    let text = "FROM x\nRUN python3 <<PY > /out.txt\nprint('apt-get install x')\nPY\n";
    let (_, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    let run = &df.instructions[1];
    assert_eq!(run.heredocs[0].name, "PY");
    // Python bodies are not shell commands.
    assert!(
        run.commands()
            .iter()
            .all(|c| c.program() != Some("print('apt-get"))
    );
    assert_eq!(run.commands().len(), 1);
}

#[test]
fn json_and_shell_forms() {
    let text = "FROM x\nCMD [\"python\", \"-m\", \"app\"]\nENTRYPOINT exec app --port $PORT\nRUN [ -f /x ] && echo\nCMD [\"bad\" \"json\"]\n";
    let (f, df) = parse(text);
    let Form::Exec(words) = &df.instructions[1].form else {
        panic!("exec form expected");
    };
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(texts, ["python", "-m", "app"]);
    assert_eq!(at(&f, &words[1].range), (2, 16));
    assert_eq!(&text[words[1].range.clone()], "\"-m\"");
    assert_eq!(df.instructions[2].form, Form::Shell);
    // `[ -f /x ]` is the test command, not JSON.
    assert_eq!(df.instructions[3].form, Form::Shell);
    // Invalid JSON falls back to the shell form, like BuildKit.
    assert_eq!(df.instructions[4].form, Form::Shell);
}

#[test]
fn json_form_across_continuations() {
    let text = "FROM x\nCMD [\"a\", \\\n     \"b\"]\n";
    let (f, df) = parse(text);
    let Form::Exec(words) = &df.instructions[1].form else {
        panic!("exec form expected");
    };
    assert_eq!(words.len(), 2);
    assert_eq!(at(&f, &words[1].range), (3, 6));
}

#[test]
fn flags_are_parsed_and_located() {
    let text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nRUN --mount=type=cache,target=/root/.cache/go-build --network=none go build\nCOPY --from=build --chown=app:app --link /out /app\n";
    let (f, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    let from = &df.instructions[0];
    assert_eq!(
        from.flag("platform").unwrap().value.as_deref(),
        Some("$BUILDPLATFORM")
    );
    assert_eq!(df.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(df.stages[0].base.name, "golang");
    assert_eq!(at(&f, &df.stages[0].base_range), (1, 32));
    let run = &df.instructions[1];
    assert_eq!(run.flags.len(), 2);
    assert_eq!(
        run.flag("mount").unwrap().value.as_deref(),
        Some("type=cache,target=/root/.cache/go-build")
    );
    assert_eq!(run.body(), "go build");
    let copy = &df.instructions[2];
    assert_eq!(copy.flag("from").unwrap().value.as_deref(), Some("build"));
    assert_eq!(copy.flag("link").unwrap().value, None);
    assert_eq!(at(&f, &copy.flag("chown").unwrap().range), (3, 19));
    assert_eq!(copy.body(), "/out /app");
}

#[test]
fn stages_and_copy_from() {
    let text = "FROM node:20 AS Deps\nRUN npm ci\nFROM deps AS build\nRUN npm run build\nFROM nginx:1.27\nCOPY --from=build /app/dist /usr/share/nginx/html\nCOPY --from=0 /x /y\n";
    let (_, df) = parse(text);
    assert_eq!(df.stages.len(), 3);
    assert_eq!(df.stages[0].name.as_deref(), Some("deps"));
    assert_eq!(df.stages[1].base_stage, Some(0));
    assert_eq!(df.stages[2].base_stage, None);
    assert_eq!(df.stages[2].instructions.len(), 3);
    assert_eq!(df.final_stage().unwrap().base.name, "nginx");
    assert_eq!(df.stage_by_name("BUILD").unwrap().index, 1);
    assert_eq!(df.stage_by_name("0").unwrap().index, 0);
    assert_eq!(df.instructions[5].stage, Some(2));
}

#[test]
fn global_args_substitute_into_from() {
    let text = "ARG PY=3.12\nARG VARIANT=slim\nARG REG\nFROM python:${PY}-${VARIANT:-bookworm} AS base\nFROM ${REG}/app:1\nFROM python:$PY\n";
    let (_, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(df.stages[0].base.raw, "python:3.12-slim");
    assert_eq!(df.stages[0].base.tag.as_deref(), Some("3.12-slim"));
    assert_eq!(df.stages[1].base.raw, "/app:1");
    assert_eq!(df.stages[2].base.raw, "python:3.12");
    assert_eq!(df.instructions[0].stage, None);
}

#[test]
fn stage_scope_args_and_env() {
    let text = "ARG VERSION=1.0\nFROM alpine\nARG VERSION\nENV APP_HOME=/opt/app PATH=$APP_HOME/bin:$PATH\nENV LEGACY value with spaces\nRUN echo ${VERSION} ${APP_HOME} ${MISSING:-dflt} ${UNSET}\nFROM alpine AS other\nRUN echo $VERSION\n";
    let (_, df) = parse(text);
    let run = &df.instructions[5];
    let (expanded, known) = df.expand(run, run.body());
    assert_eq!(expanded, "echo 1.0 /opt/app dflt ");
    assert!(!known);
    let vars = df.vars_at(run);
    assert_eq!(vars["LEGACY"], "value with spaces");
    assert_eq!(vars["PATH"], "/opt/app/bin:");
    // ARG is per stage: the second stage did not redeclare VERSION.
    let run2 = &df.instructions[7];
    assert_eq!(df.expand(run2, "$VERSION").0, "");
}

#[test]
fn env_inherits_from_parent_stage() {
    let text = "FROM alpine AS base\nENV A=1\nFROM base\nRUN echo $A\n";
    let (_, df) = parse(text);
    let run = &df.instructions[3];
    assert_eq!(df.expand(run, "$A"), ("1".to_string(), true));
}

#[test]
fn expansion_forms() {
    let vars: HashMap<String, String> = [
        ("A".to_string(), "x".to_string()),
        ("E".to_string(), String::new()),
    ]
    .into_iter()
    .collect();
    let e = |s: &str| expand_with(s, &vars).0;
    assert_eq!(e("${A}-$A"), "x-x");
    assert_eq!(e("${E:-d}|${E-d}|${U-d}"), "d||d");
    assert_eq!(e("${A:+alt}|${E:+alt}|${E+alt}|${U+alt}"), "alt||alt|");
    assert_eq!(e("\\$A costs $5"), "$A costs $5");
    assert_eq!(e("${A"), "${A");
}

#[test]
fn key_values_with_quotes_and_locations() {
    let text = "FROM x\nENV A=1 B=\"two words\" \\\n    C='3'\nARG TOKEN\nLABEL org.opencontainers.image.source=\"https://x\"\n";
    let (f, df) = parse(text);
    let kv = df.instructions[1].key_values();
    let pairs: Vec<(&str, Option<&str>)> = kv
        .iter()
        .map(|k| (k.key.as_str(), k.value.as_deref()))
        .collect();
    assert_eq!(
        pairs,
        [("A", Some("1")), ("B", Some("two words")), ("C", Some("3"))]
    );
    assert_eq!(at(&f, &kv[2].key_range), (3, 5));
    assert_eq!(&text[kv[1].value_range.clone()], "\"two words\"");
    let arg = df.instructions[2].key_values();
    assert_eq!(arg[0].key, "TOKEN");
    assert_eq!(arg[0].value, None);
    let label = df.instructions[3].key_values();
    assert_eq!(label[0].value.as_deref(), Some("https://x"));
}

#[test]
fn healthcheck_forms() {
    let text = "FROM x\nHEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8000/health || exit 1\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"/bin/check\"]\n";
    let (_, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    let h = &df.instructions[1];
    assert_eq!(h.flags.len(), 2);
    assert_eq!(h.body(), "curl -f http://localhost:8000/health || exit 1");
    assert_eq!(h.commands()[0].program(), Some("curl"));
    assert_eq!(df.instructions[2].body(), "NONE");
    assert!(matches!(df.instructions[3].form, Form::Exec(_)));
}

#[test]
fn commands_split_on_operators() {
    let (_, df) = parse("FROM x\nRUN a 1 && b 2 || c; d | e & f $(g h) `i j` 2>&1\n");
    let cmds = df.instructions[1].commands();
    let progs: Vec<&str> = cmds.iter().filter_map(|c| c.program()).collect();
    assert_eq!(progs, ["a", "b", "c", "d", "e", "f"]);
    let last = &cmds[5];
    assert_eq!(last.words[1].text, "$(g h)");
    assert_eq!(last.words[3].text, "2>&1");
}

#[test]
fn program_skips_prefixes() {
    let (_, df) = parse(
        "FROM x\nRUN sudo -E DEBIAN_FRONTEND=noninteractive apt-get install -y x\nRUN /usr/local/bin/pip install y\n",
    );
    let c = &df.instructions[1].commands()[0];
    assert_eq!(c.program(), Some("apt-get"));
    assert!(c.has_arg("-y"));
    assert_eq!(df.instructions[2].commands()[0].program(), Some("pip"));
}

#[test]
fn effective_user_follows_parent_stages() {
    let text = "FROM x AS base\nUSER 1000\nFROM base\nRUN id\nFROM y\n";
    let (_, df) = parse(text);
    assert_eq!(
        df.effective_user(&df.stages[1]).map(|u| u.1),
        Some("1000".to_string())
    );
    assert!(df.effective_user(&df.stages[2]).is_none());
}

#[test]
fn issues_unknown_missing_args_no_from() {
    let (f, df) = parse("FROM x\nRUNN y\nRUN\n");
    let msgs: Vec<&str> = df.issues.iter().map(|i| i.message.as_str()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("unknown instruction `RUNN`"));
    assert_eq!(df.issues[0].span.start.line, 2);
    assert!(msgs[1].contains("RUN requires"));
    let _ = f;
    let (_, df) = parse("# only a comment\n");
    assert!(df.issues[0].message.contains("no FROM"));
    let (_, df) = parse("RUN x\nFROM y\n");
    assert!(df.issues[0].message.contains("before the first FROM"));
}

#[test]
fn crlf_and_bom_and_indentation() {
    let text = "\u{feff}FROM x\r\n  RUN a \\\r\n    b\r\n";
    let (f, df) = parse(text);
    assert!(df.issues.is_empty(), "{:?}", df.issues);
    assert_eq!(df.instructions[1].body(), "a     b");
    assert_eq!(at(&f, &df.instructions[1].keyword_range), (2, 3));
    let (_, df) = parse("FROM x\r\nRUN <<EOF\r\necho\r\nEOF\r\n");
    assert!(df.instructions[1].heredocs[0].terminated);
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "",
        "\\",
        "FROM",
        "FROM x\nRUN <<",
        "FROM x\nRUN <<-\n",
        "FROM x\nCMD [\"\\u12\"]\n",
        "FROM x\nRUN \"unterminated\n",
        "FROM x\nENV =\n",
        "FROM x\nRUN $(\n",
        "FROM x AS\n",
        "FROM ${\n",
        "\u{0}\u{1}",
        "FROM x\nRUN é \\\nü\n",
    ] {
        let _ = parse(text);
    }
}
