//! The daemon's proxy as users run it (`orchestra up`, `proxy:` in the manifest):
//! forwarded headers a client cannot spoof, and the connection limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Project, wait_for};
use serde_json::Value;

fn manifest(proxy: &str) -> String {
    format!(
        "proxy: {{ {proxy} }}\nservices:\n  api:\n    command: [demo-service, --port, \"${{PORT}}\"]\n    route: {{ path: /api, strip_prefix: true }}\n    healthcheck: {{ http: /health, interval: 200ms }}\n"
    )
}

fn up(p: &mut Project) -> String {
    let out = p.up_ok(&["--proxy", "127.0.0.1:0"]);
    out.split("proxy http://").nth(1).unwrap().trim().to_owned()
}

/// One raw request on its own connection; the whole answer.
fn request(addr: &str, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// What the service saw of a spoofing client's request.
fn seen_headers(addr: &str) -> Value {
    let answer = request(
        addr,
        "GET /api/headers HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 443\r\nForwarded: for=6.6.6.6;proto=https\r\nConnection: close\r\n\r\n",
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn forwarded_headers_from_an_untrusted_client_are_replaced_and_from_a_trusted_one_extended() {
    let mut p = Project::new(&manifest("workers: 2"));
    let addr = up(&mut p);
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let h = seen_headers(&addr);
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{h}");
    assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    assert_eq!(h["x-forwarded-host"], "app.example", "{h}");
    assert_eq!(h["x-forwarded-port"], port.as_str(), "{h}");
    assert_eq!(
        h["forwarded"], "for=127.0.0.1;host=\"app.example\";proto=http",
        "{h}"
    );
    assert!(p.down().status.success());

    // The same client, now a trusted proxy: its chain is extended, its claims kept.
    let mut p = Project::new(&manifest("trusted_proxies: [127.0.0.0/8]"));
    let addr = up(&mut p);
    let h = seen_headers(&addr);
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1", "{h}");
    assert_eq!(h["x-forwarded-proto"], "https", "{h}");
    assert_eq!(h["x-forwarded-host"], "evil.example", "{h}");
    assert_eq!(h["x-forwarded-port"], "443", "{h}");
    assert_eq!(
        h["forwarded"], "for=6.6.6.6;proto=https, for=127.0.0.1;host=\"app.example\";proto=http",
        "{h}"
    );
}

#[test]
fn beyond_max_connections_a_client_gets_503_and_a_freed_slot_is_reused() {
    let mut p = Project::new(&manifest("max_connections: 2"));
    let addr = up(&mut p);
    // Two keep-alive connections, each with a request answered, held open.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
            s
        })
        .collect();
    let third = request(&addr, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(third.starts_with("HTTP/1.1 503"), "{third}");
    assert!(
        third.to_ascii_lowercase().contains("connection: close"),
        "{third}"
    );
    // One leaves: the next client gets its place.
    drop(held.pop());
    wait_for(10, "a freed connection slot", || {
        let answer = request(
            &addr,
            "GET /api/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        answer.starts_with("HTTP/1.1 200").then_some(())
    });
}

#[test]
fn a_bad_proxy_section_is_named_at_its_line() {
    let p = Project::new(&manifest(
        "trusted_proxies: [10.1.2.3/8], max_connections: 0",
    ));
    let out = p.run(&["validate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orchestra.yaml:1:")
            && err.contains("proxy.trusted_proxies[0]")
            && err.contains("did you mean `10.0.0.0/8`"),
        "{err}"
    );
    assert!(err.contains("proxy.max_connections"), "{err}");
}

#[test]
fn the_daemons_proxy_holds_clients_to_the_http_rules() {
    let mut p = Project::new(&manifest("workers: 1"));
    let addr = up(&mut p);
    // A malformed chunked body is the client's fault: 400, not a 502 from the upstream.
    let bad = request(
        &addr,
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // A head past 64 KiB: 431 on the fast path and on hyper's (HTTP/1.0 goes to hyper).
    let big = "a".repeat(70 * 1024);
    for version in ["1.1", "1.0"] {
        let answer = request(
            &addr,
            &format!("GET /api/ HTTP/{version}\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
        );
        assert!(
            answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.0 431"),
            "HTTP/{version}: {answer}"
        );
    }
    // Smuggling attempt: two different lengths.
    let dup = request(
        &addr,
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(dup.starts_with("HTTP/1.1 400"), "{dup}");
    // And a good request still works after all that.
    let ok = request(
        &addr,
        "GET /api/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
