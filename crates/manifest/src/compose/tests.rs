//! Unit tests of the emitter's quoting: every string reads back as itself.

use std::path::Path;

use super::emit::{Out, document, scalar};
use crate::node::{Kind, parse};

fn read_back(yaml: &str) -> crate::node::Node {
    match parse(yaml, Path::new("t.yaml")) {
        Ok(Some(n)) => n,
        other => panic!("{yaml:?} did not parse: {other:?}"),
    }
}

const TRICKY: &[&str] = &[
    "",
    " ",
    " lead",
    "trail ",
    "true",
    "False",
    "yes",
    "NO",
    "on",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "~",
    "1",
    "-1",
    "+1",
    "1.10",
    ".5",
    "-.5",
    "1e3",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    "-.Inf",
    ".NaN",
    "8080:80",
    "127.0.0.1:8080:80",
    "1:30",
    "redis:7",
    "a: b",
    "a #b",
    "a#b",
    "#x",
    "- x",
    "-",
    "-c",
    "--port",
    "?",
    "? x",
    ":x",
    "x:",
    "[a]",
    "{a}",
    "a,b",
    "*alias",
    "&anchor",
    "!tag",
    "|",
    ">",
    "'q'",
    "\"q\"",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "%percent",
    "@at",
    "`tick`",
    "${VAR:-default}",
    "$$HOME",
    "$HOME",
    "line\nbreak",
    "tab\there",
    "bell\u{7}",
    "<<",
    "---",
    "...",
    "ünïcödé",
    "CMD-SHELL",
    "pg_isready -U postgres",
    "echo 'a' && echo \"b\"",
    "a: b # c",
];

#[test]
fn scalars_read_back_as_written_in_block_and_flow_context() {
    for s in TRICKY {
        let block = format!("k: {}\n", scalar(s, false));
        let node = read_back(&block);
        let Kind::Map(entries) = &node.kind else {
            panic!("{block:?}")
        };
        assert_eq!(
            entries[0].value.kind,
            Kind::Scalar((*s).to_owned()),
            "{block:?}"
        );

        let flow = format!("k: [{}, x]\n", scalar(s, true));
        let node = read_back(&flow);
        let Kind::Map(entries) = &node.kind else {
            panic!("{flow:?}")
        };
        let Kind::Seq(items) = &entries[0].value.kind else {
            panic!("{flow:?}")
        };
        assert_eq!(items[0].kind, Kind::Scalar((*s).to_owned()), "{flow:?}");

        if !s.is_empty() {
            let key = format!("{}: v\n", scalar(s, false));
            let node = read_back(&key);
            let Kind::Map(entries) = &node.kind else {
                panic!("{key:?}")
            };
            assert_eq!(entries[0].key, *s, "{key:?}");
        }
    }
}

#[test]
fn plain_strings_stay_plain() {
    for s in [
        "redis:7",
        "-c",
        "--port",
        "/health",
        "./data:/var/lib/data",
        "api",
    ] {
        assert_eq!(scalar(s, false), s);
    }
    // Anything starting like a number is quoted; numbers and durations the importer has
    // checked are written with `Out::Plain` instead.
    assert_eq!(scalar("30s", false), "\"30s\"");
    assert_eq!(scalar("8080:80", false), "\"8080:80\"");
    assert_eq!(scalar("${A}", false), "\"${A}\"");
    assert_eq!(scalar("a\\b: c", false), "'a\\b: c'");
}

#[test]
fn long_flow_lists_fall_back_to_block_style() {
    let long: Vec<Out> = (0..30).map(|i| Out::str(format!("argument-{i}"))).collect();
    let doc = vec![
        (
            "short".to_owned(),
            Out::flow_list(vec![Out::str("a"), Out::str("b c")]),
        ),
        ("long".to_owned(), Out::flow_list(long)),
        (
            "maps".to_owned(),
            Out::Seq(
                vec![Out::Map(
                    vec![("a".to_owned(), Out::str("1")), ("b".to_owned(), Out::Null)],
                    false,
                )],
                false,
            ),
        ),
    ];
    let text = document(&doc);
    assert!(
        text.starts_with("short: [a, \"b c\"]\n\nlong:\n  - argument-0\n"),
        "{text}"
    );
    assert!(text.ends_with("maps:\n  - a: \"1\"\n    b:\n"), "{text}");
    read_back(&text);
}
