//! Failures upstream: retries, breakers, timeouts; routes paused or in maintenance.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use orchestra_proxy::ProxyConfig;

use crate::support::*;

#[tokio::test]
async fn connect_failures_are_retried_on_another_replica() {
    let live = Upstream::start("live").await;
    let dead = dead_addr().await;
    // Breaker off, so every round-robin turn really tries the dead replica.
    let proxy = start_proxy(ProxyConfig {
        breaker_failures: 0,
        ..config()
    })
    .await;
    proxy
        .set_routes(vec![route(
            "api",
            "/",
            vec![target("v1", 1, &[dead, live.addr])],
        )])
        .unwrap();
    let c = client();
    for _ in 0..40 {
        let r = send(&c, get_req(&proxy, "/", &[])).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(live.hits(), 40);
    let stats = proxy.stats("v1");
    assert_eq!((stats.requests, stats.errors), (40, 0));

    // A request with a body is not retried: one of two round-robin turns hits the dead replica.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let req = Request::post(format!("http://{}/echo", proxy.local_addr()))
            .body(Full::new(Bytes::from_static(b"payload")).boxed())
            .unwrap();
        let r = send(&c, req).await;
        if r.status == 502 {
            assert_eq!(r.json()["error"], "could not connect to upstream");
        }
        statuses.push(r.status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 502]);
    assert_eq!(proxy.stats("v1").errors, 1);
}

#[tokio::test]
async fn breaker_opens_on_consecutive_5xx_and_skips_the_replica() {
    let bad = Upstream::failing("bad").await;
    let good = Upstream::start("good").await;
    let proxy = start_proxy(ProxyConfig {
        breaker_failures: 3,
        breaker_cooldown: Duration::from_secs(600),
        ..config()
    })
    .await;
    proxy
        .set_routes(vec![route(
            "api",
            "/",
            vec![target("v1", 1, &[bad.addr, good.addr])],
        )])
        .unwrap();
    let c = client();
    let mut server_errors = 0;
    for _ in 0..30 {
        let r = send(&c, get_req(&proxy, "/", &[])).await;
        if r.status == 500 {
            server_errors += 1;
        } else {
            assert_eq!(r.status, 200);
        }
    }
    assert_eq!(bad.hits(), 3);
    assert_eq!(server_errors, 3);
    assert_eq!(good.hits(), 27);
    assert_eq!(proxy.stats("v1").errors, 3);
}

#[tokio::test]
async fn breaker_probes_after_cooldown_and_closes_on_success() {
    let flaky = Upstream::start("flaky").await;
    let proxy = start_proxy(ProxyConfig {
        breaker_failures: 2,
        breaker_cooldown: Duration::from_millis(200),
        ..config()
    })
    .await;
    proxy
        .set_routes(vec![route(
            "api",
            "/",
            vec![target("v1", 1, &[flaky.addr])],
        )])
        .unwrap();
    // Two 5xx open the breaker; the only replica is out, so the proxy answers 503 itself.
    assert_eq!(get(&proxy, "/status/500").await.status, 500);
    assert_eq!(get(&proxy, "/status/503").await.status, 503);
    let r = get(&proxy, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["error"],
        "no healthy upstream (circuit breakers open)"
    );
    assert_eq!(flaky.hits(), 2);
    // After the cooldown one probe goes through; it succeeds and the breaker closes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(&proxy, "/").await;
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "breaker never probed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&proxy, "/").await.status, 200);
    assert_eq!(flaky.hits(), 4);
}

#[tokio::test]
async fn slow_upstreams_time_out_with_504_and_dead_ones_502() {
    let slow = Upstream::start("slow").await;
    let proxy = start_proxy(ProxyConfig {
        request_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    let dead = dead_addr().await;
    let mut dead_route = route("dead", "/dead", vec![target("v2", 1, &[dead])]);
    dead_route.strip_prefix = true;
    proxy
        .set_routes(vec![
            route("api", "/", vec![target("v1", 1, &[slow.addr])]),
            dead_route,
        ])
        .unwrap();
    let r = get(&proxy, "/hold").await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "upstream did not answer in time");
    assert_eq!(
        r.json()["request_id"],
        r.headers["x-request-id"].to_str().unwrap()
    );
    let s = proxy.stats("v1");
    assert_eq!((s.requests, s.errors), (1, 1));
    eventually("timed-out request leaves in_flight", || {
        proxy.in_flight("v1") == 0
    })
    .await;

    let r = get(&proxy, "/dead").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "could not connect to upstream");
    assert_eq!(proxy.stats("v2").errors, 1);
    slow.release(1);
}

#[tokio::test]
async fn paused_routes_hold_requests_until_unpaused() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    let table = |paused: bool| {
        let mut r = route("api", "/", vec![target("v1", 1, &[up.addr])]);
        r.paused = paused;
        vec![r]
    };
    proxy.set_routes(table(true)).unwrap();
    let pending = {
        let proxy = proxy.clone();
        tokio::spawn(async move { get(&proxy, "/").await })
    };
    eventually("request held", || proxy.held() == 1).await;
    assert_eq!(up.hits(), 0);
    proxy.set_routes(table(false)).unwrap();
    let r = pending.await.unwrap();
    assert_eq!((r.status, r.name().as_str()), (200, "api"));
    assert_eq!(proxy.held(), 0);
}

#[tokio::test]
async fn paused_routes_give_up_after_pause_timeout() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(ProxyConfig {
        pause_timeout: Duration::from_millis(150),
        ..config()
    })
    .await;
    let mut r = route("api", "/", vec![target("v1", 1, &[up.addr])]);
    r.paused = true;
    proxy.set_routes(vec![r]).unwrap();
    let started = tokio::time::Instant::now();
    let r = get(&proxy, "/").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["error"],
        "route paused; timed out waiting for it to resume"
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn maintenance_answers_503_with_the_page() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    let mut r = route("api", "/", vec![target("v1", 1, &[up.addr])]);
    r.maintenance = Some("<h1>Back at 10:00</h1>".into());
    proxy.set_routes(vec![r]).unwrap();
    let r = get(&proxy, "/anything").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "<h1>Back at 10:00</h1>");
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn upstreams_that_close_connections_do_not_fail_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that answers one request per connection and says so (`Connection: close`).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[addr])])])
        .unwrap();
    let c = client();
    for _ in 0..10 {
        let r = send(&c, get_req(&proxy, "/", &[])).await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 10);
    assert_eq!(proxy.stats("v1").errors, 0);
    server.abort();
}
