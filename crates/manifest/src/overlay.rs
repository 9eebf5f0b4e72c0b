//! Pass 3 (overlay): removes top-level `env:` and deep-merges the selected overlay.

use std::path::Path;

use crate::error::Diagnostic;
use crate::model::Location;
use crate::node::{Entry, Kind, Node, join};
use crate::suggest::did_you_mean;

/// Removes the top-level `env:` overlays from `root` and, when `environment` is set,
/// deep-merges `env.<environment>` onto what is left.
pub(crate) fn apply_overlay(
    root: &mut Node,
    environment: Option<&str>,
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    let Kind::Map(entries) = &mut root.kind else {
        // Not a mapping: the conversion pass reports it.
        return;
    };
    let env = entries
        .iter()
        .position(|e| e.key == "env")
        .map(|i| entries.remove(i));
    let env_key_loc = env.as_ref().map(|e| e.key_loc);

    let overlays: Vec<Entry> = match env {
        None => Vec::new(),
        Some(Entry {
            value:
                Node {
                    kind: Kind::Map(overlays),
                    ..
                },
            ..
        }) => overlays,
        Some(Entry {
            value: Node {
                kind: Kind::Null, ..
            },
            ..
        }) => Vec::new(),
        Some(other) => {
            diags.push(
                Diagnostic::new(file, other.value.loc, "env", "wrong type")
                    .found(other.value.describe())
                    .expected("a mapping of environment name to overlay")
                    .hint("top-level `env:` holds overlays such as `env: { prod: { ... } }`; service variables go under `services.<name>.env`".to_owned()),
            );
            Vec::new()
        }
    };
    for o in &overlays {
        if !matches!(o.value.kind, Kind::Map(_) | Kind::Null) {
            diags.push(
                Diagnostic::new(file, o.value.loc, join("env", &o.key), "wrong type")
                    .found(o.value.describe())
                    .expected("a mapping (a partial manifest)"),
            );
        }
    }

    let Some(name) = environment else {
        return;
    };
    let known: Vec<&str> = overlays.iter().map(|o| o.key.as_str()).collect();
    match overlays.iter().find(|o| o.key == name) {
        // `prod:` with nothing under it changes nothing.
        Some(o) if o.value.kind == Kind::Null => {}
        Some(o) => merge(root, o.value.clone()),
        None => {
            let loc = env_key_loc.unwrap_or(Location { line: 1, col: 1 });
            let d = Diagnostic::new(file, loc, "env", format!("unknown environment `{name}`"));
            let d = if known.is_empty() {
                d.expected("an environment defined under top-level `env:`")
                    .hint("this manifest defines no environments".to_owned())
            } else {
                d.expected(format!("one of {}", quoted_list(&known)))
                    .hint(did_you_mean(name, known.iter().copied()))
            };
            diags.push(d);
        }
    }
}

/// "`a`, `b`".
pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mappings merge key by key; anything else (scalars, sequences, null) replaces.
fn merge(base: &mut Node, over: Node) {
    match (&mut base.kind, over.kind) {
        (Kind::Map(base_entries), Kind::Map(over_entries)) => {
            for o in over_entries {
                match base_entries.iter_mut().find(|b| b.key == o.key) {
                    Some(b) => merge(&mut b.value, o.value),
                    None => base_entries.push(o),
                }
            }
        }
        (_, kind) => {
            *base = Node {
                loc: over.loc,
                kind,
            }
        }
    }
}
