//! The read-only dashboard the daemon serves at `/` on the admin address:
//! the page and its embedded assets come from the binary, and the summary the
//! page renders names every service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

const MANIFEST: &str = "services:\n  api:\n    command: [demo-service, --port, \"${PORT}\", --name, api]\n    healthcheck: { http: /health, interval: 200ms }\n  worker:\n    command: [sleep, \"100\"]\n";

#[test]
fn the_admin_address_serves_the_dashboard_and_the_summary_it_renders() {
    let mut p = Project::new(MANIFEST);
    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let out = p.run(&["up", "-d", "--admin", &admin, "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "up -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = p.path().join(".orchestra/state.db");
    if let Some((_, pid, _)) = orchestra_state::StateStore::open(&db)
        .ok()
        .and_then(|s| s.last_run().ok().flatten())
    {
        p.set_daemon_pid(pid as i32);
    }

    let (code, page) = http_get(&admin, "/").unwrap();
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("<title>Orchestra dashboard</title>"),
        "{page}"
    );
    assert!(page.contains("/dashboard.js"), "{page}");
    let (code, js) = http_get(&admin, "/dashboard.js").unwrap();
    assert_eq!(code, 200);
    assert!(js.contains("fetch(\"/health\""), "{js}");
    let (code, css) = http_get(&admin, "/dashboard.css").unwrap();
    assert_eq!(code, 200);
    assert!(css.contains("table"), "{css}");

    // The document the page renders lists every service with its state.
    let doc: Value = wait_for(30, "both services in the summary", || {
        let (_, body) = http_get(&admin, "/health")?;
        let doc: Value = serde_json::from_str(&body).ok()?;
        (doc["services"]["api"].is_object() && doc["services"]["worker"].is_object()).then_some(doc)
    });
    assert!(doc["threshold"].is_number(), "{doc}");
    assert!(doc["services"]["api"]["state"].is_string(), "{doc}");
}
