//! `GET /metrics` on the admin address of a running `orchestra up`: real
//! traffic through the real proxy shows up per revision, deploys show up from
//! state.db, and `promtool check metrics` finds nothing to report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Project, http_get, wait_for};

const SECRET: &str = "hunter2-not-for-metrics";

fn manifest() -> String {
    format!(
        "services:\n  api:\n    command: [demo-service, --port, \"${{PORT}}\", --name, api, --version, \"${{DEMO_VERSION:-v1}}\", --fail-rate, \"${{DEMO_FAIL_RATE:-0}}\"]\n    env: {{ API_TOKEN: {SECRET} }}\n    replicas: 2\n    route: {{ path: /api, strip_prefix: true }}\n    healthcheck: {{ http: /health, interval: 200ms }}\n    deploy:\n      strategy: canary\n      steps: [50, 100]\n      step_interval: 500ms\n      verify: {{ min_requests: 5, max_error_rate: 10%, synthetic: {{ path: /, rate: 40 }} }}\n      keep_warm: 5m\n"
    )
}

/// `up -d` on free ports: (admin address, proxy address).
fn up(p: &mut Project) -> (String, String) {
    let out = p.up_ok(&["--proxy", "127.0.0.1:0"]);
    let after = |marker: &str| {
        out.split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no `{marker}` in {out}"))
            .split(['/', ';', '\n', ' '])
            .next()
            .unwrap()
            .to_owned()
    };
    (after("admin http://"), after("proxy http://"))
}

fn scrape(admin: &str) -> String {
    let (code, body) = http_get(admin, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of the sample `name` whose labels include all of `labels`; `None` if absent.
/// Panics if more than one sample matches.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let set = rest.strip_suffix('}')?;
            let all = labels
                .iter()
                .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            all.then(|| value.parse().unwrap())
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied()
}

fn revision(p: &Project) -> String {
    p.service("api")["revision"].as_str().unwrap().to_owned()
}

/// `promtool check metrics` on the body: nothing to report. Without promtool: a failure under
/// CI, a loud skip elsewhere (false).
fn promtool_check(body: &str) -> bool {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is missing ({e}) and CI is set: install Debian's `prometheus` package \
                 (scripts/test.sh does: apt-get install -y prometheus)"
            );
            eprintln!(
                "SKIP: promtool is not installed (apt-get install -y prometheus): not checking /metrics with it"
            );
            return false;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics reported:\n{said}\non:\n{body}"
    );
    true
}

#[test]
#[cfg_attr(
    missing_promtool,
    ignore = "promtool is not installed (apt-get install -y prometheus)"
)]
fn metrics_follow_traffic_replicas_and_deploys_and_pass_promtool() {
    let mut p = Project::new(&manifest());
    let (admin, proxy) = up(&mut p);
    let v1 = revision(&p);
    let rev = |r: &str| -> Vec<(&'static str, String)> {
        vec![("service", "api".into()), ("revision", r.to_owned())]
    };
    let l = |v: &[(&'static str, String)], extra: &[(&'static str, &'static str)]| {
        let mut out: Vec<(&str, String)> = v.to_vec();
        out.extend(extra.iter().map(|(k, x)| (*k, (*x).to_owned())));
        out
    };
    let get = |body: &str, name: &str, labels: &[(&str, String)]| {
        let refs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sample(body, name, &refs)
    };
    let two_xx = l(&rev(&v1), &[("status_class", "2xx")]);

    let before = scrape(&admin);
    let n0 = get(&before, "orchestra_proxy_requests_total", &two_xx).unwrap_or(0.0);
    let h0 = get(
        &before,
        "http_server_request_duration_seconds_count",
        &rev(&v1),
    )
    .unwrap_or(0.0);
    const SENT: usize = 25;
    for _ in 0..SENT {
        let (code, body) = http_get(&proxy, "/api/").unwrap();
        assert_eq!(code, 200, "{body}");
    }
    let after = scrape(&admin);
    assert_eq!(
        get(&after, "orchestra_proxy_requests_total", &two_xx),
        Some(n0 + SENT as f64),
        "{after}"
    );
    assert_eq!(
        get(
            &after,
            "http_server_request_duration_seconds_count",
            &rev(&v1)
        ),
        Some(h0 + SENT as f64)
    );
    let inf = l(&rev(&v1), &[("le", "+Inf")]);
    assert_eq!(
        get(&after, "http_server_request_duration_seconds_bucket", &inf),
        Some(h0 + SENT as f64)
    );
    assert_eq!(
        get(&after, "orchestra_proxy_traffic_weight_ratio", &rev(&v1)),
        Some(1.0)
    );
    assert_eq!(
        get(&after, "orchestra_proxy_breakers_open", &rev(&v1)),
        Some(0.0)
    );
    for replica in ["0", "1"] {
        let r = [
            ("service", "api"),
            ("revision", v1.as_str()),
            ("replica", replica),
        ];
        assert_eq!(sample(&after, "orchestra_replica_healthy", &r), Some(1.0));
        assert!(sample(&after, "orchestra_replica_probes_total", &r).unwrap() >= 1.0);
        assert!(sample(&after, "orchestra_replica_resident_memory_bytes", &r).unwrap() > 1e6);
        assert!(sample(&after, "orchestra_replica_cpu_seconds_total", &r).is_some());
        assert!(sample(&after, "orchestra_replica_probe_duration_seconds", &r).is_some());
    }
    assert_eq!(sample(&after, "orchestra_services_healthy", &[]), Some(1.0));
    assert_eq!(
        sample(
            &after,
            "orchestra_route_info",
            &[("route", "/api"), ("service", "api")]
        ),
        Some(1.0)
    );
    assert!(!after.contains(SECRET), "an env value leaked into /metrics");
    // Nothing deployed yet: no deploy counted, no ratio.
    assert_eq!(
        sample(&after, "orchestra_deploy_change_failure_ratio", &[]),
        None
    );
    let checked = promtool_check(&after);

    // A canary that fails verification: counted, decided, detected, and forgotten by the proxy.
    let out = p
        .command(&["deploy", "api", "--wait"])
        .env("DEMO_VERSION", "v2")
        .env("DEMO_FAIL_RATE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the bad canary passed");
    let history = p.json_list(&["history", "--json"]);
    let failed = history[0]["to_revision"].as_str().unwrap().to_owned();
    let body = wait_for(30, "the failed canary's series to go", || {
        let b = scrape(&admin);
        (!b.contains(&format!("revision=\"{failed}\""))).then_some(b)
    });
    let api = [("service", "api")];
    assert_eq!(
        sample(
            &body,
            "orchestra_deploys_total",
            &[
                ("service", "api"),
                ("strategy", "canary"),
                ("outcome", "failed")
            ]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "orchestra_verify_decision",
            &[("service", "api"), ("decision", "fail")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &body,
            "orchestra_verify_window_requests",
            &[("service", "api"), ("window", "canary")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(sample(&body, "orchestra_canary_detection_seconds", &api).unwrap() > 0.0);
    assert_eq!(
        sample(&body, "orchestra_deploy_change_failure_ratio", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, "orchestra_deploy_time_to_restore_seconds_count", &[]),
        Some(1.0)
    );

    // A good one: live, the old revision warm (counters kept, out of the table).
    let out = p
        .command(&["deploy", "api", "--wait"])
        .env("DEMO_VERSION", "v3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v3 = revision(&p);
    assert_ne!(v3, v1);
    for _ in 0..5 {
        assert_eq!(http_get(&proxy, "/api/").unwrap().0, 200);
    }
    let body = scrape(&admin);
    assert_eq!(
        sample(
            &body,
            "orchestra_deploys_total",
            &[
                ("service", "api"),
                ("strategy", "canary"),
                ("outcome", "live")
            ]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "orchestra_verify_decision",
            &[("service", "api"), ("decision", "pass")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(&body, "orchestra_proxy_requests_total", &two_xx),
        Some(n0 + SENT as f64),
        "the warm revision keeps its count"
    );
    assert_eq!(
        get(&body, "orchestra_proxy_traffic_weight_ratio", &rev(&v1)),
        None
    );
    assert_eq!(
        get(&body, "orchestra_proxy_traffic_weight_ratio", &rev(&v3)),
        Some(1.0)
    );
    assert!(
        get(
            &body,
            "orchestra_proxy_requests_total",
            &l(&rev(&v3), &[("status_class", "2xx")])
        )
        .unwrap()
            >= 5.0
    );
    // Both revisions' replicas run: the warm one for an instant rollback.
    assert!(
        sample(
            &body,
            "orchestra_replica_healthy",
            &[("revision", v1.as_str()), ("replica", "0")]
        )
        .is_some()
    );
    assert!(
        sample(
            &body,
            "orchestra_replica_healthy",
            &[("revision", v3.as_str()), ("replica", "0")]
        )
        .is_some()
    );
    assert!(!body.contains(SECRET));
    if checked {
        promtool_check(&body);
    }
}
