//! Static front ends end to end: the real daemon serves a built directory
//! through its real proxy beside a real `demo-service` API; a rebuilt
//! directory deploys as a new revision and rolls back from its snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const MANIFEST: &str = "services:\n  web:\n    route: { path: /, static: ./dist, spa: true }\n    deploy: { keep_warm: 0s }\n  api:\n    command: [demo-service, --port, \"${PORT}\", --name, api]\n    route: { path: /api, strip_prefix: true }\n    healthcheck: { http: /health, interval: 200ms, start_period: 5s }\n";

/// Writes a build of the site into `dist/`, replacing the files in place as
/// a bundler does (the same names are rewritten, stale assets removed).
fn build(dir: &Path, version: &str) {
    let dist = dir.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    for e in std::fs::read_dir(dist.join("assets")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let asset = format!(
        "app-{}.js",
        if version == "v1" {
            "1a2b3c4d"
        } else {
            "5e6f7a8b"
        }
    );
    std::fs::write(
        dist.join("index.html"),
        format!("<!doctype html><title>{version}</title><script src=\"/assets/{asset}\"></script>"),
    )
    .unwrap();
    std::fs::write(
        dist.join("assets").join(asset),
        format!("console.log('{version}')"),
    )
    .unwrap();
    std::fs::write(dist.join("favicon.ico"), "ico").unwrap();
}

/// GET with `Connection: close`: (status, lowercased head, body).
fn fetch(addr: &str, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn title(addr: &str) -> String {
    let (status, _, body) = fetch(addr, "/");
    assert_eq!(status, 200, "{body}");
    body.split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_default()
        .to_owned()
}

fn up(p: &mut Project) -> String {
    let out = p.up_ok(&["--proxy", "127.0.0.1:0"]);
    out.split("proxy http://").nth(1).unwrap().trim().to_owned()
}

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_static_site_serves_beside_an_api_and_deploys_and_rolls_back_by_content() {
    let mut p = Project::new(MANIFEST);
    build(p.path(), "v1");
    ok(&p.run(&["validate"]));
    let addr = up(&mut p);

    // Index, hashed asset, client-side route, missing asset, and the API beside them.
    wait_for(10, "the site to be served", || {
        (title(&addr) == "v1").then_some(())
    });
    let (status, head, body) = fetch(&addr, "/assets/app-1a2b3c4d.js");
    assert_eq!((status, body.as_str()), (200, "console.log('v1')"));
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    let (status, head, body) = fetch(&addr, "/settings/profile");
    assert_eq!(status, 200);
    assert!(body.contains("<title>v1</title>"), "{body}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert_eq!(fetch(&addr, "/assets/gone-1a2b3c4d.js").0, 404);
    let (status, _, body) = fetch(&addr, "/api/");
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["service"], "api", "{api}");

    // `ps` shows the site up, with nothing running for it.
    let web = p.service("web");
    assert_eq!(web["phase"], "healthy", "{web}");
    assert_eq!(web["kind"], "static", "{web}");
    assert!(web["replicas"][0]["pid"].is_null(), "{web}");
    let v1 = web["revision"].as_str().unwrap().to_owned();
    let ps = ok(&p.run(&["ps"]));
    assert!(ps.contains("web"), "{ps}");

    // Unchanged content is no new revision.
    let out = ok(&p.run(&["deploy", "web"]));
    assert!(out.contains("unchanged"), "{out}");

    // Rebuilt in place: a new revision, deployed.
    build(p.path(), "v2");
    let out = ok(&p.run(&["deploy", "web", "--wait"]));
    assert!(out.contains("release"), "{out}");
    wait_for(10, "v2 to be served", || {
        (title(&addr) == "v2").then_some(())
    });
    assert_eq!(
        fetch(&addr, "/assets/app-5e6f7a8b.js").2,
        "console.log('v2')"
    );
    assert_eq!(fetch(&addr, "/assets/app-1a2b3c4d.js").0, 404);
    let v2 = p.service("web")["revision"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    let snapshots = p.path().join(".orchestra/static/web");
    assert!(snapshots.join(&v1).join("index.html").is_file());
    assert!(snapshots.join(&v2).join("index.html").is_file());

    // keep_warm 0s: once the release has succeeded the old revision is not
    // running; the rollback starts it from its snapshot, though dist/ now holds v2.
    wait_for(10, "the old revision to stop", || {
        let done = p.json_list(&["history", "web", "--json"])[0]["status"] == "succeeded";
        let one = p.services().iter().filter(|s| s["name"] == "web").count() == 1;
        (done && one).then_some(())
    });
    let out = ok(&p.run(&["rollback", "web"]));
    assert!(!out.contains("warm"), "a cold rollback: {out}");
    wait_for(10, "v1 to be served again", || {
        (title(&addr) == "v1").then_some(())
    });
    assert_eq!(
        fetch(&addr, "/assets/app-1a2b3c4d.js").2,
        "console.log('v1')"
    );
    assert_eq!(fetch(&addr, "/assets/app-5e6f7a8b.js").0, 404);
    assert!(
        std::fs::read_to_string(p.path().join("dist/index.html"))
            .unwrap()
            .contains("v2")
    );
    assert_eq!(p.service("web")["revision"], v1.as_str());

    // History lists both revisions: the deploy and the rollback.
    let history = p.json_list(&["history", "web", "--json"]);
    let moves: Vec<(String, String, String)> = history
        .iter()
        .map(|r| {
            (
                r["strategy"].as_str().unwrap().to_owned(),
                r["from_revision"].as_str().unwrap_or("-").to_owned(),
                r["to_revision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("rollback".to_owned(), v2.clone(), v1.clone()),
            ("blue-green".to_owned(), v1.clone(), v2.clone()),
        ],
        "{history:#?}"
    );
    let text = ok(&p.run(&["history", "web"]));
    assert!(text.contains(&format!("{v2} -> {v1}")), "{text}");

    // The API never moved.
    assert_eq!(fetch(&addr, "/api/").0, 200);
    let out = p.down();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the proxy stopped with the daemon"
    );
}

#[test]
fn a_missing_build_is_refused_by_validate_and_up_naming_the_field() {
    let mut p = Project::new(MANIFEST);
    for args in [
        &["validate"][..],
        &[
            "up",
            "-d",
            "--proxy",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ],
    ] {
        let out = p.run(args);
        assert!(!out.status.success(), "{args:?}");
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(err.contains("services.web.route.static"), "{args:?}: {err}");
        assert!(
            err.contains("static directory not found"),
            "{args:?}: {err}"
        );
        assert!(err.contains("orchestra.yaml:3:"), "{args:?}: {err}");
    }
    // A build without index.html cannot be a single-page app.
    std::fs::create_dir_all(p.path().join("dist")).unwrap();
    p.write("dist/app.js", "x");
    let out = p.run(&["validate"]);
    assert!(!out.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        err.contains("services.web.route.spa") && err.contains("index.html"),
        "{err}"
    );
    assert!(p.up(&["--proxy", "127.0.0.1:0"]).status.code() == Some(1));
}
