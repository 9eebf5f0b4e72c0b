//! Route matching, header rewriting, error answers, table validation, h2c.

use hyper::Request;
use orchestra_proxy::ProxyError;

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
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], proxy.local_addr().to_string());
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
    assert_eq!(fields, ["path_prefix", "targets[0].upstreams"]);
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
