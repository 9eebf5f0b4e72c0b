//! `route.static`: a service that is a directory of files the proxy serves.
//! Its workload is the directory and a digest of its content; fields that
//! only mean something for what runs are errors.

use super::{Ctx, Fields};
use crate::model::{Location, Workload};
use crate::node::{Entry, Kind, Node, join};
use crate::site::{self, SiteError};

/// Service fields a static site cannot have, and why.
const NOT_FOR_STATIC: &[(&str, &str)] = &[
    ("command", "nothing runs: the proxy serves the directory"),
    ("image", "nothing runs: the proxy serves the directory"),
    ("build", "nothing runs: the proxy serves the directory"),
    ("entrypoint", "nothing runs: the proxy serves the directory"),
    (
        "healthcheck",
        "it is up as soon as its files are snapshotted",
    ),
    ("readiness", "it is up as soon as its files are snapshotted"),
    ("replicas", "the proxy serves it itself"),
    ("port", "it is reached through its route"),
    ("ports", "it is reached through its route"),
    ("env", "nothing runs that would read it"),
    ("env_file", "nothing runs that would read it"),
    ("working_dir", "nothing runs"),
    ("secrets", "nothing runs that would read them"),
    ("restart", "nothing runs"),
    ("stop_signal", "nothing runs"),
    ("stop_grace_period", "nothing runs"),
    ("resources", "nothing runs"),
    ("volumes", "nothing runs"),
    ("user", "nothing runs"),
];

/// A non-null entry of a route mapping.
fn route_entry<'n>(route: &'n Node, key: &str) -> Option<&'n Entry> {
    match &route.kind {
        Kind::Map(entries) => entries
            .iter()
            .find(|e| e.key == key && e.value.kind != Kind::Null),
        _ => None,
    }
}

/// Whether the route declares `static:` (then the service is a static site, even
/// when the value is wrong, so that no "missing workload" error is added).
pub(super) fn declared(route: &Node) -> bool {
    route_entry(route, "static").is_some()
}

/// Whether the route writes `strip_prefix` (a static route strips its prefix unless told).
pub(super) fn writes_strip_prefix(route: &Node) -> bool {
    route_entry(route, "strip_prefix").is_some()
}

/// `spa` without `static` means nothing: say so.
pub(super) fn check_spa_without_static(ctx: &mut Ctx<'_>, route: &Node, route_path: &str) {
    if let Some(e) = route_entry(route, "spa") {
        let d = ctx
            .diag(
                e.key_loc,
                &join(route_path, "spa"),
                "`spa` applies to a static route",
            )
            .hint(Some(
                "add `static: ./dist` to serve a directory, or remove `spa`".to_owned(),
            ));
        ctx.push(d);
    }
}

/// The workload of a static service: its directory, listed and hashed. Every
/// field that makes no sense for it is an error at that field.
pub(super) fn workload(
    ctx: &mut Ctx<'_>,
    f: &Fields<'_>,
    route: &Node,
    route_path: &str,
) -> Option<Workload> {
    for (key, why) in NOT_FOR_STATIC {
        if let Some(e) = f.entry(key).filter(|e| e.value.kind != Kind::Null) {
            let hint = matches!(*key, "command" | "image" | "build" | "entrypoint").then(|| {
                format!("remove `{key}`, or remove `route.static` to route to what `{key}` runs")
            });
            let d = ctx
                .diag(
                    e.key_loc,
                    &f.path(key),
                    format!("`{key}` does not apply to a static site (`route.static`): {why}"),
                )
                .hint(hint);
            ctx.push(d);
        }
    }
    let entry = route_entry(route, "static")?;
    let path = join(route_path, "static");
    let written = ctx.nonempty_string(&entry.value, &path)?;
    let dir = ctx.resolve(&written);
    let listing = match site::scan(&dir) {
        Ok(l) => l,
        Err(e) => {
            push_scan_error(ctx, entry.value.loc, &path, &written, &e);
            return None;
        }
    };
    if let Some(spa) = route_entry(route, "spa")
        && matches!(&spa.value.kind, Kind::Scalar(s) if s == "true")
        && listing.file("index.html").is_none()
    {
        let d = ctx
            .diag(
                spa.value.loc,
                &join(route_path, "spa"),
                "`spa: true` answers client-side routes with the static directory's index.html, and it has none",
            )
            .found(format!("no {}", dir.join("index.html").display()))
            .hint(Some(
                "build the site first, or set `spa: false`".to_owned(),
            ));
        ctx.push(d);
        return None;
    }
    Some(Workload::Static {
        content: listing.digest(),
        dir,
    })
}

fn push_scan_error(ctx: &mut Ctx<'_>, loc: Location, path: &str, written: &str, e: &SiteError) {
    let d = match e {
        SiteError::NotFound(dir) => ctx
            .diag(loc, path, "static directory not found")
            .found(format!("{written:?} ({})", dir.display()))
            .hint(Some(
                "build the site first (e.g. `npm run build`), or fix the path; it is relative to the manifest".to_owned(),
            )),
        SiteError::NotADirectory(dir) => ctx
            .diag(loc, path, "not a directory")
            .found(format!("{written:?} ({})", dir.display()))
            .expected("the directory the site was built into, such as ./dist"),
        other => ctx.diag(loc, path, format!("cannot serve this directory: {other}")),
    };
    ctx.push(d);
}
