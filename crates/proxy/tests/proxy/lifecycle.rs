//! Stats and in-flight counts, idle connections, shutdown and drain.

use std::time::Duration;

use orchestra_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn stats_and_in_flight_per_revision() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    assert_eq!(proxy.stats("never").requests, 0);
    assert_eq!(proxy.in_flight("v1"), 0);

    let held = {
        let proxy = proxy.clone();
        tokio::spawn(async move { get(&proxy, "/hold").await })
    };
    eventually("held request in flight", || proxy.in_flight("v1") == 1).await;
    // Counted when the response headers arrive, not before.
    assert_eq!(proxy.stats("v1").requests, 0);
    up.release(1);
    assert_eq!(held.await.unwrap().body, "released");
    eventually("request done", || proxy.in_flight("v1") == 0).await;
    let before = proxy.stats("v1");
    assert_eq!(
        (before.requests, before.errors, before.latency.count()),
        (1, 0, 1)
    );

    for code in [200, 404, 500, 503] {
        assert_eq!(get(&proxy, &format!("/status/{code}")).await.status, code);
    }
    let window = proxy.stats("v1").since(&before);
    assert_eq!((window.requests, window.errors), (4, 2));
    assert!((window.error_rate() - 0.5).abs() < 1e-9);
    assert_eq!(window.latency.count(), 4);
    assert!(window.latency.quantile(0.99) < Duration::from_secs(5));

    // A retired revision's stats can be dropped, but not while the table still routes to it.
    assert!(!proxy.forget("v1"));
    proxy
        .set_routes(vec![route("api", "/", vec![target("v2", 1, &[up.addr])])])
        .unwrap();
    assert!(proxy.forget("v1"));
    assert_eq!(proxy.stats("v1").requests, 0);
    assert!(!proxy.forget("v1"));
}

#[tokio::test]
async fn idle_client_connections_are_closed() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(ProxyConfig {
        idle_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the response, then keep reading: the proxy closes the idle connection (EOF).
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("idle connection was not closed")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn shutdown_drains_open_requests_and_refuses_new_ones() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let addr = proxy.local_addr();
    let held = {
        let proxy = proxy.clone();
        tokio::spawn(async move { get(&proxy, "/hold").await })
    };
    eventually("held request in flight", || proxy.in_flight("v1") == 1).await;
    let shutdown = {
        let proxy = proxy.clone();
        tokio::spawn(async move { proxy.shutdown(Duration::from_secs(30)).await })
    };
    // The listener closes first...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...while the open request still completes.
    assert!(!shutdown.is_finished());
    up.release(1);
    assert_eq!(held.await.unwrap().body, "released");
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_grace_ends_stuck_requests() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let stuck = {
        let proxy = proxy.clone();
        tokio::spawn(async move { client().request(get_req(&proxy, "/hold", &[])).await })
    };
    eventually("stuck request in flight", || proxy.in_flight("v1") == 1).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        proxy.shutdown(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    assert!(stuck.await.unwrap().is_err());
    eventually("stuck request released", || proxy.in_flight("v1") == 0).await;
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let c = client();
    for _ in 0..50 {
        assert_eq!(send(&c, get_req(&proxy, "/", &[])).await.status, 200);
    }
    assert_eq!(up.hits(), 50);
    assert_eq!(up.connections(), 1);
}

#[tokio::test]
async fn dedicated_workers_serve_and_shut_down() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(ProxyConfig {
        workers: 2,
        ..config()
    })
    .await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    // Separate clients, separate connections: the kernel spreads them over both workers.
    for _ in 0..20 {
        let r = get(&proxy, "/w").await;
        assert_eq!((r.status, r.json()["path"].as_str()), (200, Some("/w")));
    }
    let held = {
        let proxy = proxy.clone();
        tokio::spawn(async move { get(&proxy, "/hold").await })
    };
    eventually("held request in flight", || proxy.in_flight("v1") == 1).await;
    let shutdown = {
        let proxy = proxy.clone();
        tokio::spawn(async move { proxy.shutdown(Duration::from_secs(30)).await })
    };
    let addr = proxy.local_addr();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    up.release(1);
    assert_eq!(held.await.unwrap().body, "released");
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.stats("v1").requests, 21);
}
