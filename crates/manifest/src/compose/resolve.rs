//! `extends` and `include`: the Compose files an import reads besides the one it was
//! given, resolved into one tree before mapping.
//!
//! Nodes from several files share one tree, so a file's positions are encoded as
//! `line + index * FILE_LINES` (index 0 is the imported file, whose positions are
//! unchanged); [`Files::place`] turns them back into a file and a line for messages.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::merge::{merge_service, strip_marks};
use super::{ImportNote, NoteKind};
use crate::error::Diagnostic;
use crate::model::Location;
use crate::node::{Entry, Kind, Node, OVERRIDE_MARK, Tags, join, parse_with, unmarked};

/// Lines per file in an encoded position (no Compose file is this long).
pub(crate) const FILE_LINES: usize = 100_000_000;

/// The files an import read, in the order they were first read.
#[derive(Debug, Default)]
pub(crate) struct Files {
    paths: Vec<PathBuf>,
}

impl Files {
    /// The file an encoded line is in (`None`: the imported file) and the real line.
    pub(crate) fn place(&self, line: usize) -> (Option<PathBuf>, usize) {
        let index = line / FILE_LINES;
        if index == 0 {
            return (None, line);
        }
        (self.paths.get(index).cloned(), line % FILE_LINES)
    }

    /// A diagnostic with its file and line decoded.
    pub(crate) fn fix(&self, mut d: Diagnostic) -> Diagnostic {
        if let (Some(file), line) = self.place(d.line) {
            d.file = file;
            d.line = line;
        }
        d
    }
}

/// Reads a file; the thin edge where the resolver touches the disk.
pub(crate) type Read<'r> = dyn FnMut(&Path) -> std::io::Result<String> + 'r;

struct Resolver<'r> {
    read: &'r mut Read<'r>,
    files: Files,
    /// Parsed trees by file index.
    trees: Vec<Option<Node>>,
    by_path: HashMap<PathBuf, usize>,
    errors: Vec<Diagnostic>,
    notes: Vec<ImportNote>,
    /// The services of each cycle reported, so that a cycle is reported once.
    cycles: Vec<Vec<(usize, String)>>,
}

/// The tree to map, the files read and the notes on what was followed.
pub(crate) type Resolved = (Node, Files, Vec<ImportNote>);

/// Follows `include` and `extends` in `root` (the parsed imported file). Returns the
/// tree to map, with marks stripped, the files read, and notes on what was followed.
///
/// # Errors
/// Every missing file or service, cycle, duplicate service and syntax error in a read
/// file, each at its position.
pub(crate) fn resolve(
    root: Node,
    file: &Path,
    read: &mut Read<'_>,
) -> Result<Resolved, Vec<Diagnostic>> {
    let mut r = Resolver {
        read,
        files: Files {
            paths: vec![file.to_path_buf()],
        },
        trees: vec![Some(root)],
        by_path: HashMap::from([(normal(file), 0)]),
        errors: Vec::new(),
        notes: Vec::new(),
        cycles: Vec::new(),
    };
    let out = r.file_tree(0, &mut Vec::new());
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok((out, r.files, r.notes))
}

impl Resolver<'_> {
    fn error(&mut self, loc: Location, path: &str, message: String) {
        let d = Diagnostic::new(&self.files.paths[0], loc, path, message);
        self.errors.push(self.files.fix(d));
    }

    fn where_(&self, loc: Location) -> String {
        let (file, line) = self.files.place(loc.line);
        let file = file.unwrap_or_else(|| self.files.paths[0].clone());
        format!("{}:{line}:{}", file.display(), loc.col)
    }

    /// Reads and parses `path` once; its index.
    fn load(&mut self, path: &Path, loc: Location, field: &str) -> Option<usize> {
        if let Some(&i) = self.by_path.get(&normal(path)) {
            return Some(i);
        }
        let text = match (self.read)(path) {
            Ok(t) => t,
            Err(e) => {
                self.error(loc, field, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        let index = self.files.paths.len();
        self.files.paths.push(path.to_path_buf());
        self.by_path.insert(normal(path), index);
        match parse_with(&text, path, Tags::Compose) {
            Ok(tree) => {
                let tree = tree.map(|mut n| {
                    shift(&mut n, index * FILE_LINES);
                    n
                });
                self.trees.push(tree);
                Some(index)
            }
            Err(diags) => {
                self.errors.extend(diags);
                self.trees.push(None);
                None
            }
        }
    }

    fn dir(&self, index: usize) -> PathBuf {
        self.files.paths[index]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    fn services(&self, index: usize) -> Vec<Entry> {
        let Some(Node {
            kind: Kind::Map(top),
            ..
        }) = &self.trees[index]
        else {
            return Vec::new();
        };
        top.iter()
            .find(|e| e.key == "services")
            .and_then(|e| match &e.value.kind {
                Kind::Map(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The file's tree with its services' `extends` and its `include`s resolved; the
    /// services' paths stay relative to this file's directory.
    fn file_tree(&mut self, index: usize, including: &mut Vec<usize>) -> Node {
        let Some(root) = self.trees[index].clone() else {
            return Node {
                loc: Location { line: 1, col: 1 },
                kind: Kind::Null,
            };
        };
        let Kind::Map(top) = &root.kind else {
            return strip_marks(&root);
        };
        let mut services: Vec<Entry> = Vec::new();
        let mut out: Vec<Entry> = Vec::new();
        for e in top {
            match unmarked(&e.key) {
                "services" => {
                    let Kind::Map(list) = &e.value.kind else {
                        out.push(e.clone());
                        continue;
                    };
                    for s in list {
                        let mut stack = Vec::new();
                        let value = self.service(index, s, &mut stack);
                        services.push(Entry {
                            key: s.key.clone(),
                            key_loc: s.key_loc,
                            value,
                        });
                    }
                }
                "include" => {}
                _ => out.push(Entry {
                    key: e.key.clone(),
                    key_loc: e.key_loc,
                    value: strip_marks(&e.value),
                }),
            }
        }
        if let Some(inc) = top.iter().find(|e| e.key == "include") {
            including.push(index);
            self.includes(index, inc, including, &mut services, &mut out);
            including.pop();
        }
        let services_entry = top
            .iter()
            .find(|e| e.key == "services" && matches!(e.value.kind, Kind::Map(_)));
        if let Some(s) = services_entry {
            let value = Node {
                loc: s.value.loc,
                kind: Kind::Map(services),
            };
            let entry = Entry {
                key: "services".to_owned(),
                key_loc: s.key_loc,
                value,
            };
            out.insert(0, entry);
        } else if !services.is_empty() {
            out.insert(
                0,
                Entry {
                    key: "services".to_owned(),
                    key_loc: root.loc,
                    value: Node {
                        loc: root.loc,
                        kind: Kind::Map(services),
                    },
                },
            );
        }
        Node {
            loc: root.loc,
            kind: Kind::Map(out),
        }
    }

    fn includes(
        &mut self,
        index: usize,
        inc: &Entry,
        including: &mut Vec<usize>,
        services: &mut Vec<Entry>,
        top: &mut Vec<Entry>,
    ) {
        let items: Vec<Node> = match &inc.value.kind {
            Kind::Seq(items) => items.clone(),
            Kind::Null => Vec::new(),
            _ => {
                self.error(
                    inc.value.loc,
                    "include",
                    "`include` must be a list of files".to_owned(),
                );
                return;
            }
        };
        let dir = self.dir(index);
        for (i, item) in items.iter().enumerate() {
            let p = format!("include[{i}]");
            let (paths, project_dir, env_file) = match &item.kind {
                Kind::Scalar(s) => (vec![(s.clone(), item.loc)], None, None),
                Kind::Map(entries) => {
                    let mut paths = Vec::new();
                    let mut project = None;
                    let mut env = None;
                    for e in entries {
                        match (e.key.as_str(), &e.value.kind) {
                            ("path", Kind::Scalar(s)) => paths.push((s.clone(), e.value.loc)),
                            ("path", Kind::Seq(list)) => {
                                for x in list {
                                    if let Kind::Scalar(s) = &x.kind {
                                        paths.push((s.clone(), x.loc));
                                    }
                                }
                            }
                            ("project_directory", Kind::Scalar(s)) => project = Some(s.clone()),
                            ("env_file", _) => env = Some(e.key_loc),
                            _ => self.error(
                                e.key_loc,
                                &join(&p, &e.key),
                                format!(
                                    "invalid `include` entry `{}`: expected `path`, `project_directory` or `env_file`",
                                    e.key
                                ),
                            ),
                        }
                    }
                    (paths, project, env)
                }
                _ => {
                    self.error(
                        item.loc,
                        &p,
                        "an `include` entry must be a path or a mapping with `path`".to_owned(),
                    );
                    continue;
                }
            };
            if paths.is_empty() {
                self.error(
                    item.loc,
                    &p,
                    "this `include` entry has no `path`".to_owned(),
                );
                continue;
            }
            if let Some(loc) = env_file {
                self.note(loc, &format!("{p}.env_file"), NoteKind::Mapped, "variables in the included file are resolved from the environment and the `.env` beside the imported manifest, not from this `env_file`");
            }
            // Several paths: the later files override the first, as Compose's `-f a -f b`.
            let mut merged: Option<(usize, Vec<Entry>, Vec<Entry>)> = None;
            for (path, loc) in paths {
                let target = dir.join(&path);
                let Some(j) = self.load(&target, loc, &p) else {
                    continue;
                };
                if including.contains(&j) {
                    self.error(
                        loc,
                        &p,
                        format!("`include` cycle: {} includes itself", target.display()),
                    );
                    continue;
                }
                let tree = self.file_tree(j, including);
                let Kind::Map(entries) = tree.kind else {
                    continue;
                };
                let (svcs, rest): (Vec<Entry>, Vec<Entry>) =
                    entries.into_iter().partition(|e| e.key == "services");
                let svcs = match svcs.into_iter().next().map(|e| e.value.kind) {
                    Some(Kind::Map(s)) => s,
                    _ => Vec::new(),
                };
                merged = Some(match merged {
                    None => (j, svcs, rest),
                    Some((first, mut acc, mut acc_rest)) => {
                        for s in svcs {
                            match acc.iter_mut().find(|a| a.key == s.key) {
                                Some(a) => a.value = merge_service(&a.value, &s.value),
                                None => acc.push(s),
                            }
                        }
                        add_top(&mut acc_rest, rest);
                        (first, acc, acc_rest)
                    }
                });
            }
            let Some((first, svcs, rest)) = merged else {
                continue;
            };
            // Relative paths in the included file are relative to its project directory.
            let from = match &project_dir {
                Some(d) => dir.join(d),
                None => self.dir(first),
            };
            for mut s in svcs {
                rebase_service(&mut s.value, &from, &dir);
                if let Some(prev) = services.iter().find(|x| x.key == s.key) {
                    let (a, b) = (self.where_(prev.key_loc), self.where_(s.key_loc));
                    self.error(
                        s.key_loc,
                        &join("services", &s.key),
                        format!(
                            "service `{}` is defined twice: at {a} and at {b} (included)",
                            s.key
                        ),
                    );
                    continue;
                }
                services.push(s);
            }
            let mut rest = rest;
            for e in rest
                .iter()
                .filter(|e| matches!(e.key.as_str(), "name" | "version"))
            {
                let message = if e.key == "name" {
                    "an included file's `name` is not used: the including file names the project"
                } else {
                    "`version` is obsolete in Compose and means nothing here"
                };
                self.note(e.key_loc, &e.key, NoteKind::Ignored, message);
            }
            for e in &mut rest {
                if let ("secrets", Kind::Map(list)) = (e.key.as_str(), &mut e.value.kind) {
                    for s in list {
                        rebase_key(&mut s.value, "file", &from, &dir);
                    }
                }
            }
            add_top(top, rest);
        }
    }

    fn note(&mut self, loc: Location, path: &str, kind: NoteKind, message: &str) {
        self.notes.push(ImportNote {
            line: loc.line,
            col: loc.col,
            path: path.to_owned(),
            kind,
            message: message.to_owned(),
            strict: false,
            file: None,
        });
    }

    /// A service of file `index` with its `extends` chain merged in.
    fn service(&mut self, index: usize, s: &Entry, stack: &mut Vec<(usize, String)>) -> Node {
        let path = join("services", &s.key);
        let Kind::Map(entries) = &s.value.kind else {
            return strip_marks(&s.value);
        };
        // `extends: !override ...` is still `extends`; `!reset` on it extends nothing.
        let is_extends =
            |e: &Entry| e.key == "extends" || e.key == format!("{OVERRIDE_MARK}extends");
        let Some(ext) = entries.iter().find(|e| is_extends(e)) else {
            return strip_marks(&s.value);
        };
        let own = Node {
            loc: s.value.loc,
            kind: Kind::Map(
                entries
                    .iter()
                    .filter(|e| !is_extends(e) && unmarked(&e.key) != "extends")
                    .cloned()
                    .collect(),
            ),
        };
        let p = join(&path, "extends");
        let (name, file, name_loc) = match &ext.value.kind {
            Kind::Scalar(n) => (n.clone(), None, ext.value.loc),
            Kind::Map(m) => {
                let get = |k: &str| {
                    m.iter().find_map(|e| match (&e.value.kind, e.key == k) {
                        (Kind::Scalar(v), true) => Some((v.clone(), e.value.loc)),
                        _ => None,
                    })
                };
                let Some((n, l)) = get("service") else {
                    self.error(ext.value.loc, &p, "`extends` needs `service`".to_owned());
                    return strip_marks(&own);
                };
                (n, get("file"), l)
            }
            _ => {
                self.error(
                    ext.value.loc,
                    &p,
                    "`extends` must be a service name or a mapping with `service` (and `file`)"
                        .to_owned(),
                );
                return strip_marks(&own);
            }
        };
        let base_index = match &file {
            Some((f, loc)) => {
                let target = self.dir(index).join(f);
                match self.load(&target, *loc, &join(&p, "file")) {
                    Some(j) => j,
                    None => return strip_marks(&own),
                }
            }
            None => index,
        };
        stack.push((index, s.key.clone()));
        if let Some(start) = stack.iter().position(|x| *x == (base_index, name.clone())) {
            let mut members = stack[start..].to_vec();
            members.sort();
            if self.cycles.contains(&members) {
                stack.pop();
                return strip_marks(&own);
            }
            self.cycles.push(members);
            let mut chain: Vec<String> = stack.iter().map(|(_, n)| format!("`{n}`")).collect();
            chain.push(format!("`{name}`"));
            self.error(
                name_loc,
                &p,
                format!("`extends` cycle: {}", chain.join(" extends ")),
            );
            stack.pop();
            return strip_marks(&own);
        }
        let Some(base) = self
            .services(base_index)
            .into_iter()
            .find(|b| b.key == name)
        else {
            let in_file = self.files.paths[base_index].display().to_string();
            self.error(
                name_loc,
                &p,
                format!("`extends`: there is no service `{name}` in {in_file}"),
            );
            stack.pop();
            return strip_marks(&own);
        };
        let mut base_value = self.service(base_index, &base, stack);
        stack.pop();
        if base_index != index {
            let (from, to) = (self.dir(base_index), self.dir(index));
            rebase_service(&mut base_value, &from, &to);
        }
        merge_service(&base_value, &own)
    }
}

/// Adds top-level entries (volumes, secrets...) of an included file: a new name is
/// added, one already declared is kept.
fn add_top(top: &mut Vec<Entry>, rest: Vec<Entry>) {
    for e in rest {
        if matches!(e.key.as_str(), "name" | "version") {
            continue;
        }
        match top.iter_mut().find(|t| t.key == e.key) {
            Some(t) => {
                if let (Kind::Map(have), Kind::Map(new)) = (&mut t.value.kind, e.value.kind) {
                    for n in new {
                        if !have.iter().any(|h| h.key == n.key) {
                            have.push(n);
                        }
                    }
                }
            }
            None => top.push(e),
        }
    }
}

fn shift(n: &mut Node, by: usize) {
    n.loc.line += by;
    match &mut n.kind {
        Kind::Map(entries) => {
            for e in entries {
                e.key_loc.line += by;
                shift(&mut e.value, by);
            }
        }
        Kind::Seq(items) => {
            for i in items {
                shift(i, by);
            }
        }
        _ => {}
    }
}

/// Rewrites a service's relative paths (build context, `env_file`, bind mounts) from
/// `from` to `to`.
pub(crate) fn rebase_service(svc: &mut Node, from: &Path, to: &Path) {
    if normal(from) == normal(to) {
        return;
    }
    let Kind::Map(entries) = &mut svc.kind else {
        return;
    };
    for e in entries {
        match e.key.as_str() {
            "build" => match &mut e.value.kind {
                Kind::Scalar(s) => *s = rebase(s, from, to),
                Kind::Map(_) => rebase_key(&mut e.value, "context", from, to),
                _ => {}
            },
            "env_file" => match &mut e.value.kind {
                Kind::Scalar(s) => *s = rebase(s, from, to),
                Kind::Seq(items) => {
                    for i in items {
                        match &mut i.kind {
                            Kind::Scalar(s) => *s = rebase(s, from, to),
                            Kind::Map(_) => rebase_key(i, "path", from, to),
                            _ => {}
                        }
                    }
                }
                _ => {}
            },
            "volumes" => {
                if let Kind::Seq(items) = &mut e.value.kind {
                    for i in items {
                        match &mut i.kind {
                            Kind::Scalar(s) if s.starts_with('.') => {
                                let (src, rest) = s.split_once(':').unwrap_or((s.as_str(), ""));
                                let new = rebase(src, from, to);
                                *s = if rest.is_empty() {
                                    new
                                } else {
                                    format!("{new}:{rest}")
                                };
                            }
                            Kind::Map(m) => {
                                let bind = m.iter().any(|x| {
                                    x.key == "type"
                                        && matches!(&x.value.kind, Kind::Scalar(t) if t == "bind")
                                });
                                if bind {
                                    rebase_key(i, "source", from, to);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn rebase_key(node: &mut Node, key: &str, from: &Path, to: &Path) {
    if let Kind::Map(m) = &mut node.kind {
        for e in m {
            if let (true, Kind::Scalar(s)) = (e.key == key, &mut e.value.kind) {
                *s = rebase(s, from, to);
            }
        }
    }
}

/// `p` (relative to `from`) relative to `to`; absolute paths and URLs stay as written.
pub(crate) fn rebase(p: &str, from: &Path, to: &Path) -> String {
    if Path::new(p).is_absolute() || p.contains("://") || p.starts_with('~') || p.starts_with('$') {
        return p.to_owned();
    }
    let target = normal(&from.join(p));
    let base = normal(to);
    let (t, b): (Vec<_>, Vec<_>) = (target.components().collect(), base.components().collect());
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if b[common..]
        .iter()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return target.display().to_string();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    let s = out.display().to_string();
    if s.is_empty() {
        ".".to_owned()
    } else if s.starts_with("..") {
        s
    } else {
        format!("./{s}")
    }
}

/// A path with `.` removed and `..` applied where it can be, without the disk.
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{ImportError, import_with};

    /// Imports `files[0]` reading every file from `files`, not the disk.
    fn import(files: &[(&str, &str)]) -> Result<crate::compose::Import, ImportError> {
        let mut read = |p: &Path| {
            files
                .iter()
                .find(|(n, _)| Path::new(n) == p)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        import_with(files[0].1, Path::new(files[0].0), &mut read)
    }

    fn errors(files: &[(&str, &str)]) -> Vec<String> {
        match import(files) {
            Err(ImportError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn a_cycle_across_files_is_one_error_naming_the_chain() {
        let e = errors(&[
            (
                "c.yaml",
                "services:\n  a:\n    extends: { file: o/b.yaml, service: b }\n",
            ),
            (
                "o/b.yaml",
                "services:\n  b:\n    extends: { file: ../c.yaml, service: a }\n",
            ),
        ]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "o/b.yaml:3:42: services.b.extends: `extends` cycle: `a` extends `b` extends `a`"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn an_include_cycle_is_an_error_at_the_include() {
        let e = errors(&[
            (
                "c.yaml",
                "include: [o.yaml]\nservices:\n  a: { image: x }\n",
            ),
            (
                "o.yaml",
                "include: [c.yaml]\nservices:\n  b: { image: y }\n",
            ),
        ]);
        assert!(
            e.iter()
                .any(|l| l.starts_with("o.yaml:1:11: include[0]: `include` cycle")),
            "{e:?}"
        );
    }

    #[test]
    fn a_later_include_path_overrides_the_first() {
        let out = import(&[
            (
                "c.yaml",
                "include:\n  - path: [a.yaml, b.yaml]\nservices:\n  web: { image: w }\n",
            ),
            (
                "a.yaml",
                "services:\n  db:\n    image: postgres:15\n    environment: { A: '1' }\n",
            ),
            (
                "b.yaml",
                "services:\n  db:\n    image: postgres:16\n    environment: { B: '2' }\n",
            ),
        ])
        .expect("imports");
        assert!(out.yaml.contains("image: postgres:16"), "{}", out.yaml);
        assert!(
            out.yaml.contains("A: \"1\"") && out.yaml.contains("B: \"2\""),
            "{}",
            out.yaml
        );
    }

    #[test]
    fn rebase_rewrites_a_path_from_one_directory_to_another() {
        let (sub, root) = (Path::new("proj/sub"), Path::new("proj"));
        assert_eq!(rebase("./app", sub, root), "./sub/app");
        assert_eq!(rebase("../x", sub, root), "./x");
        assert_eq!(rebase(".", sub, root), "./sub");
        assert_eq!(rebase("./a", root, sub), "../a");
        assert_eq!(rebase("/abs", sub, root), "/abs");
    }
}
