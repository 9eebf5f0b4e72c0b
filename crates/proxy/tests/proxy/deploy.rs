//! What deploys rely on: weights, sticky clients, atomic swaps under load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use orchestra_proxy::Sticky;

use crate::support::*;

#[tokio::test]
async fn weights_split_traffic_10_90() {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route(
            "api",
            "/",
            vec![
                target("v1", 90, &[stable.addr]),
                target("v2", 10, &[canary.addr]),
            ],
        )])
        .unwrap();
    let c = client();
    for _ in 0..1000 {
        assert_eq!(send(&c, get_req(&proxy, "/", &[])).await.status, 200);
    }
    let (s, k) = (stable.hits(), canary.hits());
    assert_eq!(s + k, 1000);
    assert!((80..=120).contains(&k), "canary got {k} of 1000 at 10%");
    assert_eq!(proxy.stats("v2").requests, k);
    assert_eq!(proxy.stats("v1").requests, s);
}

#[tokio::test]
async fn sticky_cookie_pins_a_client_and_only_moves_it_forward() {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let proxy = start_proxy(config()).await;
    let table = |canary_weight: u32| {
        let mut r = route(
            "api",
            "/",
            vec![
                target("v1", 100 - canary_weight, &[stable.addr]),
                target("v2", canary_weight, &[canary.addr]),
            ],
        );
        r.sticky = Some(Sticky::Cookie("orch".into()));
        if canary_weight == 100 {
            r.targets[0].weight = 0;
        }
        vec![r]
    };
    proxy.set_routes(table(10)).unwrap();
    let c = client();

    // A client without the cookie gets one, and keeps its revision with it.
    let first = send(&c, get_req(&proxy, "/", &[])).await;
    let set_cookie = first.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("orch="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("Path=/"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    for _ in 0..20 {
        let r = send(&c, get_req(&proxy, "/", &[("cookie", &cookie)])).await;
        assert_eq!(r.name(), first.name());
        assert!(r.headers.get("set-cookie").is_none());
    }

    // 300 clients through growing canary weights: never canary → stable.
    let mut on_canary: HashMap<usize, bool> = HashMap::new();
    for weight in [10, 25, 50, 90, 100] {
        proxy.set_routes(table(weight)).unwrap();
        let mut count = 0;
        for client_id in 0..300 {
            let cookie = format!("other=1; orch=client-{client_id}");
            let a = send(&c, get_req(&proxy, "/", &[("cookie", &cookie)]))
                .await
                .name();
            let b = send(&c, get_req(&proxy, "/", &[("cookie", &cookie)]))
                .await
                .name();
            assert_eq!(a, b, "client {client_id} flapped at {weight}%");
            let now = a == "canary";
            let before = on_canary.insert(client_id, now).unwrap_or(false);
            assert!(!before || now, "client {client_id} moved back at {weight}%");
            count += usize::from(now);
        }
        let expected = 300 * weight as usize / 100;
        assert!(
            count.abs_diff(expected) <= 30,
            "{count} of 300 on canary at {weight}%"
        );
    }
}

#[tokio::test]
async fn sticky_header_keeps_a_key_on_one_revision() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let proxy = start_proxy(config()).await;
    let mut r = route(
        "api",
        "/",
        vec![target("v1", 50, &[a.addr]), target("v2", 50, &[b.addr])],
    );
    r.sticky = Some(Sticky::Header("x-user".into()));
    proxy.set_routes(vec![r]).unwrap();
    let c = client();
    let mut names = std::collections::HashSet::new();
    for user in 0..40 {
        let user = format!("user-{user}");
        let first = send(&c, get_req(&proxy, "/", &[("x-user", &user)]))
            .await
            .name();
        for _ in 0..3 {
            let again = send(&c, get_req(&proxy, "/", &[("x-user", &user)]))
                .await
                .name();
            assert_eq!(again, first);
        }
        names.insert(first);
    }
    assert_eq!(names.len(), 2, "40 users all landed on one revision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_routes_under_load_fails_no_request() {
    let blue = Upstream::start("blue").await;
    let green = Upstream::start("green").await;
    let proxy = start_proxy(config()).await;
    let table = |to_green: bool| {
        let (rev, addr) = if to_green {
            ("green", green.addr)
        } else {
            ("blue", blue.addr)
        };
        vec![route("api", "/", vec![target(rev, 1, &[addr])])]
    };
    proxy.set_routes(table(false)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (proxy, stop, done, failed) =
            (proxy.clone(), stop.clone(), done.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::SeqCst) {
                let req = get_req(&proxy, "/", &[]);
                match c.request(req).await {
                    Ok(r) if r.status() == 200 => {
                        use http_body_util::BodyExt;
                        if r.into_body().collect().await.is_err() {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for swap in 0..50 {
        // Let some requests through on each table, so every swap happens under load.
        let mark = done.load(Ordering::SeqCst);
        eventually("requests between swaps", || {
            done.load(Ordering::SeqCst) >= mark + 5
        })
        .await;
        proxy.set_routes(table(swap % 2 == 0)).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(done.load(Ordering::SeqCst) >= 250);
    assert!(blue.hits() > 0 && green.hits() > 0);
    assert_eq!(proxy.stats("blue").errors + proxy.stats("green").errors, 0);
}
