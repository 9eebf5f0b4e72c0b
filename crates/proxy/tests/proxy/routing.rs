//! Route matching, header rewriting, error answers, table validation, h2c.

use hyper::Request;
use orchestra_proxy::{ProxyConfig, ProxyError, Sticky};

use crate::support::*;

#[tokio::test]
async fn routes_by_host_then_longest_prefix_and_strips() {
    let root = Upstream::start("root").await;
    let api = Upstream::start("api").await;
    let shop = Upstream::start("shop").await;
    let proxy = start_proxy(config()).await;
    let mut api_route = route("api", "/api/", vec![target("api-1", 1, &[api.addr])]);
    api_route.strip_prefix = true;
    let mut shop_route = route("shop", "/", vec![target("shop-1", 1, &[shop.addr])]);
    shop_route.host = Some("Shop.Example".into());
    proxy
        .set_routes(vec![
            route("root", "/", vec![target("root-1", 1, &[root.addr])]),
            api_route,
            shop_route,
        ])
        .unwrap();

    let c = client();
    let r = send(&c, get_req(&proxy, "/x/y?z=1", &[])).await;
    assert_eq!(
        (r.name().as_str(), r.json()["path"].as_str()),
        ("root", Some("/x/y?z=1"))
    );
    let r = send(&c, get_req(&proxy, "/api/users?q=1", &[])).await;
    assert_eq!(
        (r.name().as_str(), r.json()["path"].as_str()),
        ("api", Some("/users?q=1"))
    );
    let r = send(&c, get_req(&proxy, "/api", &[])).await;
    assert_eq!(
        (r.name().as_str(), r.json()["path"].as_str()),
        ("api", Some("/"))
    );
    // Segment boundaries: /apix is not under /api.
    let r = send(&c, get_req(&proxy, "/apix", &[])).await;
    assert_eq!(r.name(), "root");
    // A host route wins over host-less ones, whatever the path; the port is ignored.
    let r = send(
        &c,
        get_req(&proxy, "/api/users", &[("host", "shop.example:8080")]),
    )
    .await;
    assert_eq!(
        (r.name().as_str(), r.json()["path"].as_str()),
        ("shop", Some("/api/users"))
    );
}

#[tokio::test]
async fn unknown_route_is_a_404_with_json_and_request_id() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    // Before any table: everything is a 404.
    assert_eq!(get(&proxy, "/").await.status, 404);
    proxy
        .set_routes(vec![route(
            "api",
            "/api",
            vec![target("v1", 1, &[up.addr])],
        )])
        .unwrap();
    let r = get(&proxy, "/other").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["content-type"], "application/json");
    let j = r.json();
    assert_eq!(j["error"], "no route for this host and path");
    assert_eq!(j["request_id"], r.headers["x-request-id"].to_str().unwrap());
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn forwarded_headers_request_id_and_hop_by_hop() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let c = client();
    let r = send(
        &c,
        get_req(
            &proxy,
            "/",
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-request-id", "req-42"),
                ("connection", "x-private"),
                ("x-private", "secret"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ],
        ),
    )
    .await;
    let seen = &r.json()["headers"];
    // The client is no trusted proxy: its chain is not believed.
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], proxy.local_addr().to_string());
    let port = proxy.local_addr().port().to_string();
    assert_eq!(seen["x-forwarded-port"], port.as_str());
    assert_eq!(
        seen["forwarded"],
        format!("for=127.0.0.1;host=\"{}\";proto=http", proxy.local_addr())
    );
    assert_eq!(seen["host"], proxy.local_addr().to_string());
    assert_eq!(seen["x-request-id"], "req-42");
    assert!(seen.get("x-private").is_none(), "{seen}");
    assert!(seen.get("proxy-authorization").is_none(), "{seen}");
    assert_eq!(r.headers["x-request-id"], "req-42");

    // Without an id, one is generated, sent upstream and returned.
    let r = get(&proxy, "/").await;
    let id = r.headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(r.json()["headers"]["x-request-id"], id.as_str());
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn forwarded_headers_are_replaced_unless_trusted_on_both_servers() {
    let up = Upstream::start("api").await;
    for (fast_http1, trusted) in [(true, false), (false, false), (true, true), (false, true)] {
        let trusted_proxies = if trusted {
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
        } else {
            vec!["10.0.0.0/8".parse().unwrap()]
        };
        let proxy = start_proxy(ProxyConfig {
            trusted_proxies,
            fast_http1,
            ..config()
        })
        .await;
        proxy
            .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
            .unwrap();
        let headers = [
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example"),
            ("x-forwarded-port", "443"),
            ("forwarded", "for=203.0.113.7;proto=https"),
        ];
        let r = send(&client(), get_req(&proxy, "/", &headers)).await;
        let seen = &r.json()["headers"];
        let what = format!("fast_http1: {fast_http1}, trusted: {trusted}: {seen}");
        let own = format!("for=127.0.0.1;host=\"{}\";proto=http", proxy.local_addr());
        if trusted {
            assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1", "{what}");
            assert_eq!(seen["x-forwarded-proto"], "https", "{what}");
            assert_eq!(seen["x-forwarded-host"], "shop.example", "{what}");
            assert_eq!(seen["x-forwarded-port"], "443", "{what}");
            let chain = format!("for=203.0.113.7;proto=https, {own}");
            assert_eq!(seen["forwarded"], chain.as_str(), "{what}");
        } else {
            let port = proxy.local_addr().port().to_string();
            assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{what}");
            assert_eq!(seen["x-forwarded-proto"], "http", "{what}");
            let host = proxy.local_addr().to_string();
            assert_eq!(seen["x-forwarded-host"], host.as_str(), "{what}");
            assert_eq!(seen["x-forwarded-port"], port.as_str(), "{what}");
            assert_eq!(seen["forwarded"], own.as_str(), "{what}");
        }
    }
}

#[tokio::test]
async fn invalid_tables_are_refused_and_the_running_one_kept() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let mut bad = route("bad", "nope", vec![target("v2", 3, &[])]);
    bad.targets.push(target("v3", 0, &[up.addr]));
    let err = proxy.set_routes(vec![bad]).unwrap_err();
    let ProxyError::InvalidRoutes { issues } = &err else {
        panic!("{err}");
    };
    let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["path_prefix"]);
    assert!(
        err.to_string().contains("routes[0] (bad): path_prefix"),
        "{err}"
    );
    assert_eq!(proxy.routes().len(), 1);
    assert_eq!(proxy.routes()[0].service, "api");
    assert_eq!(get(&proxy, "/").await.name(), "api");
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let c = h2c_client();
    for _ in 0..3 {
        let req = Request::get(format!("http://{}/h2", proxy.local_addr()))
            .body(empty())
            .unwrap();
        let r = send(&c, req).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["path"], "/h2");
        // :authority became Host for the HTTP/1.1 upstream.
        assert_eq!(r.json()["headers"]["host"], proxy.local_addr().to_string());
    }
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let proxy = start_proxy(config()).await;
    let taken = proxy.local_addr().to_string();
    let err = orchestra_proxy::Proxy::start(orchestra_proxy::ProxyConfig {
        listen: taken.clone(),
        ..config()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, ProxyError::Bind { .. }));
    assert!(err.to_string().contains(&taken), "{err}");
}

#[tokio::test]
async fn apply_routes_serves_the_good_routes_and_reports_the_bad_ones() {
    let api = Upstream::start("api").await;
    let web = Upstream::start("web").await;
    let proxy = start_proxy(config()).await;
    let mut bad = route("bad", "nope", vec![target("b1", 1, &[web.addr])]);
    bad.sticky = Some(Sticky::Cookie("a b".into()));
    let rejected = proxy.apply_routes(vec![
        bad,
        route("api", "/api", vec![target("a1", 1, &[api.addr])]),
        route("web", "/", vec![target("w1", 1, &[web.addr])]),
        // Same prefix once normalized: the first one stays.
        route("api2", "/api/", vec![target("a2", 1, &[web.addr])]),
    ]);
    let got: Vec<_> = rejected
        .iter()
        .map(|r| (r.route, r.service.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                0,
                "bad",
                "path_prefix: must start with '/'; sticky: cookie name must be a non-empty token"
            ),
            (
                3,
                "api2",
                "path_prefix: service `api2` has the same host and path prefix as routes[1] (service `api`)"
            ),
        ]
    );
    assert_eq!(
        rejected[1].to_string(),
        format!("routes[3] (api2) left out: {}", rejected[1].reason)
    );
    let services: Vec<_> = proxy.routes().iter().map(|r| r.service.clone()).collect();
    assert_eq!(services, ["api", "web"]);
    assert_eq!(get(&proxy, "/api/x").await.name(), "api");
    assert_eq!(get(&proxy, "/other").await.name(), "web");
    // set_routes stays all-or-nothing: the same table is refused whole, the running one kept.
    let err = proxy
        .set_routes(vec![
            route("bad", "nope", vec![target("b1", 1, &[web.addr])]),
            route("api", "/", vec![target("a1", 1, &[api.addr])]),
        ])
        .unwrap_err();
    assert!(matches!(err, ProxyError::InvalidRoutes { .. }), "{err}");
    assert_eq!(proxy.routes().len(), 2);
    // A clean table leaves nothing out.
    assert!(
        proxy
            .apply_routes(vec![route("api", "/", vec![target("a1", 1, &[api.addr])])])
            .is_empty()
    );
    assert_eq!(get(&proxy, "/other").await.name(), "api");
}

#[tokio::test]
async fn a_route_without_ready_replicas_answers_503_until_it_has_some() {
    let up = Upstream::start("api").await;
    // Both fronts: the proxy's own HTTP/1.1 one and hyper's.
    for fast_http1 in [true, false] {
        let proxy = start_proxy(orchestra_proxy::ProxyConfig {
            fast_http1,
            ..config()
        })
        .await;
        let rejected = proxy.apply_routes(vec![route("api", "/", vec![target("v1", 1, &[])])]);
        assert!(rejected.is_empty(), "{rejected:?}");
        let r = get(&proxy, "/x").await;
        assert_eq!(r.status, 503, "fast_http1={fast_http1}");
        assert_eq!(r.body, "no ready replica of api (revision v1) yet\n");
        assert_eq!(r.headers["retry-after"], "1");
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        assert!(r.headers.contains_key("x-request-id"));
        // Nothing of v1 ran, so nothing counts against it.
        assert_eq!(proxy.stats("v1").requests, 0);
        // h2c goes through hyper's server as well.
        let req = Request::get(format!("http://{}/x", proxy.local_addr()))
            .body(empty())
            .unwrap();
        assert_eq!(send(&h2c_client(), req).await.status, 503);
        // set_routes takes such a route too.
        proxy
            .set_routes(vec![route("api", "/", vec![target("v1", 1, &[])])])
            .unwrap();
        assert_eq!(get(&proxy, "/x").await.status, 503);
        // Once the replica is ready, the route serves.
        proxy
            .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
            .unwrap();
        let r = get(&proxy, "/x").await;
        assert_eq!((r.status, r.name().as_str()), (200, "api"));
    }
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn a_stable_without_replicas_sends_everything_to_the_canary() {
    let canary = Upstream::start("canary").await;
    let stable = Upstream::start("stable").await;
    let proxy = start_proxy(config()).await;
    let rejected = proxy.apply_routes(vec![route(
        "api",
        "/",
        vec![target("v1", 90, &[]), target("v2", 10, &[canary.addr])],
    )]);
    assert!(rejected.is_empty(), "{rejected:?}");
    let c = client();
    for _ in 0..20 {
        let r = send(&c, get_req(&proxy, "/", &[])).await;
        assert_eq!((r.status, r.name().as_str()), (200, "canary"));
    }
    // Sticky clients too: every key lands on the revision that is up.
    let mut sticky = route(
        "api",
        "/",
        vec![target("v1", 10, &[stable.addr]), target("v2", 90, &[])],
    );
    sticky.sticky = Some(Sticky::Header("x-user".into()));
    assert!(proxy.apply_routes(vec![sticky]).is_empty());
    for i in 0..20 {
        let user = format!("user-{i}");
        let r = send(&c, get_req(&proxy, "/", &[("x-user", user.as_str())])).await;
        assert_eq!((r.status, r.name().as_str()), (200, "stable"), "{user}");
    }
    assert_eq!((canary.hits(), stable.hits()), (20, 20));
}
