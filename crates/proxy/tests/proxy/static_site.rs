//! Static sites served by the proxy itself: files from a real directory, on the HTTP/1.1
//! front, on hyper's path (h2c, HTTP/1.0), beside a forwarded route.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestra_proxy::{Proxy, Route, StaticSite, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A built single-page application: index, hashed assets, a precompressed bundle, a
/// favicon, a hidden file and a symbolic link that escapes the root.
struct Dist {
    dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

impl Dist {
    fn new() -> Dist {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let w = |rel: &str, bytes: &[u8]| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        w("index.html", b"<!doctype html><h1>home</h1>");
        w("assets/index-3f2a9c1b.js", b"console.log('app')");
        w("assets/index-3f2a9c1b.css", b"body{}");
        w("assets/vendor-8c2e1f0a.js", b"identity bytes");
        w("assets/vendor-8c2e1f0a.js.br", b"brotli bytes");
        w("assets/vendor-8c2e1f0a.js.gz", b"gzip bytes");
        w("favicon.ico", b"ico");
        w("about.html", b"<h1>about</h1>");
        w("docs/index.html", b"<h1>docs</h1>");
        w(".env", b"SECRET=1");
        std::fs::write(outside.path().join("secret.txt"), b"outside").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("leak.txt"),
        )
        .unwrap();
        Dist {
            dir,
            _outside: outside,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// A directory read on every request, and one the proxy may keep in memory (a deploy's
/// snapshot): the rules are the same.
const BOTH: [bool; 2] = [false, true];

fn site_target(revision: &str, weight: u32, root: &Path, spa: bool, immutable: bool) -> Target {
    Target {
        revision: revision.into(),
        weight,
        upstreams: Vec::new(),
        site: Some(StaticSite {
            root: root.to_owned(),
            spa,
            immutable,
        }),
    }
}

fn site_route(root: &Path, spa: bool, immutable: bool) -> Route {
    let mut r = route(
        "web",
        "/",
        vec![site_target("w1", 100, root, spa, immutable)],
    );
    r.strip_prefix = true;
    r
}

async fn serving(routes: Vec<Route>) -> Proxy {
    let proxy = start_proxy(config()).await;
    proxy.set_routes(routes).unwrap();
    proxy
}

async fn get_with(proxy: &Proxy, path: &str, headers: &[(&str, &str)]) -> Resp {
    send(&client(), get_req(proxy, path, headers)).await
}

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// One raw request on a fresh connection; the whole answer, once the proxy closes.
async fn raw(proxy: &Proxy, request: &str) -> String {
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the proxy answers and closes")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn files_are_served_with_their_types_validators_and_cache_rules() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), true, immutable)]).await;

        let index = get(&proxy, "/").await;
        assert_eq!(index.status, 200);
        assert_eq!(index.body, "<!doctype html><h1>home</h1>");
        assert_eq!(header(&index, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&index, "cache-control"), "no-cache");
        assert!(!header(&index, "x-request-id").is_empty());
        let etag = header(&index, "etag").to_owned();
        let modified = header(&index, "last-modified").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(modified.ends_with(" GMT"), "{modified}");
        assert_eq!(get(&proxy, "/index.html").await.body, index.body);

        let js = get(&proxy, "/assets/index-3f2a9c1b.js").await;
        assert_eq!(js.status, 200);
        assert_eq!(js.body, "console.log('app')");
        assert_eq!(
            header(&js, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            header(&js, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let css = get(&proxy, "/assets/index-3f2a9c1b.css").await;
        assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");
        let ico = get(&proxy, "/favicon.ico").await;
        assert_eq!(header(&ico, "content-type"), "image/x-icon");
        assert_eq!(header(&ico, "cache-control"), "no-cache");

        // Revalidation: the same ETag, or a date not before the file's, is a 304 without a body.
        let again = get_with(&proxy, "/", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304);
        assert_eq!(again.body, "");
        assert_eq!(header(&again, "etag"), etag);
        let listed = get_with(
            &proxy,
            "/",
            &[("if-none-match", &format!("\"x\", W/{etag}"))],
        )
        .await;
        assert_eq!(listed.status, 304);
        let other = get_with(&proxy, "/", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(other.status, 200);
        let since = get_with(&proxy, "/", &[("if-modified-since", &modified)]).await;
        assert_eq!(since.status, 304);
        let before = get_with(
            &proxy,
            "/",
            &[("if-modified-since", "Thu, 01 Jan 1970 00:00:01 GMT")],
        )
        .await;
        assert_eq!(before.status, 200);
        // If-None-Match decides when both are sent.
        let both = get_with(
            &proxy,
            "/",
            &[
                ("if-none-match", "\"other\""),
                ("if-modified-since", &modified),
            ],
        )
        .await;
        assert_eq!(both.status, 200);
    }
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), false, immutable)]).await;
        let mut req = get_req(&proxy, "/assets/index-3f2a9c1b.js", &[]);
        *req.method_mut() = hyper::Method::HEAD;
        let head = send(&client(), req).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.body, "");
        assert_eq!(header(&head, "content-length"), "18");
        assert_eq!(
            header(&head, "content-type"),
            "text/javascript; charset=utf-8"
        );
        // On the wire too: the length of the file, and nothing after the head.
        let text = raw(
            &proxy,
            "HEAD /favicon.ico HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("content-length: 3\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    }
}

#[tokio::test]
async fn precompressed_siblings_follow_accept_encoding() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), false, immutable)]).await;
        let path = "/assets/vendor-8c2e1f0a.js";
        let br = get_with(&proxy, path, &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(br.body, "brotli bytes");
        assert_eq!(header(&br, "content-encoding"), "br");
        assert_eq!(
            header(&br, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(header(&br, "vary"), "Accept-Encoding");
        let gz = get_with(&proxy, path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(gz.body, "gzip bytes");
        assert_eq!(header(&gz, "content-encoding"), "gzip");
        let no_br = get_with(&proxy, path, &[("accept-encoding", "br;q=0, gzip")]).await;
        assert_eq!(no_br.body, "gzip bytes");
        let plain = get(&proxy, path).await;
        assert_eq!(plain.body, "identity bytes");
        assert_eq!(header(&plain, "content-encoding"), "");
        assert_eq!(header(&plain, "vary"), "Accept-Encoding");
        // Each representation has its own validator.
        assert_ne!(header(&br, "etag"), header(&plain, "etag"));
        // A file without siblings does not vary.
        let js = get_with(
            &proxy,
            "/assets/index-3f2a9c1b.js",
            &[("accept-encoding", "br")],
        )
        .await;
        assert_eq!(header(&js, "vary"), "");
        assert_eq!(header(&js, "content-encoding"), "");
    }
}

#[tokio::test]
async fn a_single_page_app_gets_index_for_routes_and_404_for_missing_assets() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), true, immutable)]).await;
        for path in ["/users/42", "/settings/profile?tab=1", "/users/"] {
            let r = get(&proxy, path).await;
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.body, "<!doctype html><h1>home</h1>", "{path}");
            assert_eq!(header(&r, "cache-control"), "no-cache");
            assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
        }
        let missing = get(&proxy, "/assets/missing-1a2b3c4d.js").await;
        assert_eq!(missing.status, 404);
        // A client route with a dot is a page when the browser asks for HTML.
        assert_eq!(get(&proxy, "/users/john.doe").await.status, 404);
        let nav = get_with(
            &proxy,
            "/users/john.doe",
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        )
        .await;
        assert_eq!(nav.status, 200);
        assert_eq!(nav.body, "<!doctype html><h1>home</h1>");
        // Clean URLs and directories still win over the fallback.
        assert_eq!(get(&proxy, "/about").await.body, "<h1>about</h1>");
        assert_eq!(get(&proxy, "/docs/").await.body, "<h1>docs</h1>");
        let moved = get(&proxy, "/docs?x=1").await;
        assert_eq!(moved.status, 301);
        assert_eq!(header(&moved, "location"), "/docs/?x=1");
    }
}

#[tokio::test]
async fn without_spa_a_miss_is_404_and_the_sites_404_page_is_used() {
    let dist = Dist::new();
    let proxy = serving(vec![site_route(&dist.root(), false, false)]).await;
    let r = get(&proxy, "/users/42").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "not found\n");
    std::fs::write(dist.dir.path().join("404.html"), "<h1>lost</h1>").unwrap();
    let r = get(&proxy, "/users/42").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "<h1>lost</h1>");
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
}

#[tokio::test]
async fn traversal_hidden_files_and_escaping_links_are_refused() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), true, immutable)]).await;
        for (path, want) in [
            ("/../etc/passwd", "400"),
            ("/assets/../../etc/passwd", "400"),
            ("/%2e%2e/%2e%2e/etc/passwd", "400"),
            ("/assets/..%2f..%2fetc%2fpasswd", "400"),
            ("/a%00.js", "400"),
            ("/.env", "404"),
            ("/leak.txt", "404"),
        ] {
            let text = raw(
                &proxy,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(
                text.starts_with(&format!("HTTP/1.1 {want} ")),
                "{path}: {text}"
            );
            assert!(
                !text.contains("outside") && !text.contains("SECRET"),
                "{path}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn methods_other_than_get_and_head_are_405() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), true, immutable)]).await;
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let text = raw(
                &proxy,
                &format!("{method} /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(text.starts_with("HTTP/1.1 405 "), "{method}: {text}");
            assert!(
                text.to_ascii_lowercase().contains("allow: get, head\r\n"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn ranges_are_served_and_bounded() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), false, immutable)]).await;
        let path = "/assets/index-3f2a9c1b.js";
        let r = get_with(&proxy, path, &[("range", "bytes=0-6")]).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, "console");
        assert_eq!(header(&r, "content-range"), "bytes 0-6/18");
        let tail = get_with(&proxy, path, &[("range", "bytes=-5")]).await;
        assert_eq!(tail.body, "app')");
        let past = get_with(&proxy, path, &[("range", "bytes=100-")]).await;
        assert_eq!(past.status, 416);
        assert_eq!(header(&past, "content-range"), "bytes */18");
        // An If-Range that no longer matches gets the whole file.
        let stale = get_with(
            &proxy,
            path,
            &[("range", "bytes=0-6"), ("if-range", "\"old\"")],
        )
        .await;
        assert_eq!(stale.status, 200);
        assert_eq!(stale.body, "console.log('app')");
    }
}

#[tokio::test]
async fn a_large_file_is_streamed_whole_on_both_paths() {
    for immutable in BOTH {
        let dist = Dist::new();
        // Not a multiple of any chunk size, with a pattern that shows a missing or repeated chunk.
        let big: Vec<u8> = (0..3_000_017u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dist.dir.path().join("video.mp4"), &big).unwrap();
        let proxy = serving(vec![site_route(&dist.root(), false, immutable)]).await;
        for c in [client(), h2c_client()] {
            let resp = c.request(get_req(&proxy, "/video.mp4", &[])).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "video/mp4");
            assert_eq!(resp.headers()["content-length"], "3000017");
            use http_body_util::BodyExt;
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert!(body[..] == big[..], "the streamed bytes are the file's");
        }
    }
}

#[tokio::test]
async fn hyper_paths_serve_the_same_answers() {
    for immutable in BOTH {
        let dist = Dist::new();
        let proxy = serving(vec![site_route(&dist.root(), true, immutable)]).await;
        // h2c.
        let r = send(&h2c_client(), get_req(&proxy, "/users/7", &[])).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "<!doctype html><h1>home</h1>");
        let etag = header(&r, "etag").to_owned();
        let r = send(
            &h2c_client(),
            get_req(&proxy, "/", &[("if-none-match", &etag)]),
        )
        .await;
        assert_eq!(r.status, 304);
        // HTTP/1.0 is handed to hyper by the front.
        let text = raw(
            &proxy,
            "GET /assets/index-3f2a9c1b.css HTTP/1.0\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        assert!(text.ends_with("body{}"), "{text}");
        let text = raw(
            &proxy,
            "POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(text.starts_with("HTTP/1.0 405 "), "{text}");
    }
}

#[tokio::test]
async fn a_static_site_and_an_api_share_the_table_by_longest_prefix() {
    for immutable in BOTH {
        let dist = Dist::new();
        let api = Upstream::start("api").await;
        let mut api_route = route("api", "/api", vec![target("a1", 1, &[api.addr])]);
        api_route.strip_prefix = true;
        let proxy = serving(vec![site_route(&dist.root(), true, immutable), api_route]).await;
        let r = get(&proxy, "/api/users/1").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.name(), "api");
        assert_eq!(r.json()["path"], "/users/1");
        assert_eq!(
            get(&proxy, "/users/1").await.body,
            "<!doctype html><h1>home</h1>"
        );
        assert_eq!(
            get(&proxy, "/apix").await.body,
            "<!doctype html><h1>home</h1>"
        );
        assert_eq!(api.hits(), 1);
    }
}

#[tokio::test]
async fn a_new_table_switches_sites_and_a_site_below_a_prefix_strips_it() {
    let v1 = Dist::new();
    let v2 = tempfile::tempdir().unwrap();
    std::fs::write(v2.path().join("index.html"), "v2").unwrap();
    let proxy = serving(vec![site_route(&v1.root(), true, false)]).await;
    assert_eq!(get(&proxy, "/").await.body, "<!doctype html><h1>home</h1>");
    proxy
        .set_routes(vec![route(
            "web",
            "/",
            vec![
                site_target("w1", 0, &v1.root(), true, false),
                site_target("w2", 100, v2.path(), true, false),
            ],
        )])
        .unwrap();
    assert_eq!(get(&proxy, "/").await.body, "v2");
    assert_eq!(get(&proxy, "/deep/link").await.body, "v2");
    // Mounted at /app: `/app/assets/x` is `assets/x` of the directory.
    proxy
        .set_routes(vec![Route {
            path_prefix: "/app".into(),
            ..site_route(&v1.root(), true, false)
        }])
        .unwrap();
    assert_eq!(
        get(&proxy, "/app/assets/index-3f2a9c1b.js").await.body,
        "console.log('app')"
    );
    assert_eq!(
        get(&proxy, "/app").await.body,
        "<!doctype html><h1>home</h1>"
    );
    assert_eq!(get(&proxy, "/elsewhere").await.status, 404);
}

#[tokio::test]
async fn an_immutable_site_answers_from_memory_what_it_has_read() {
    let dist = Dist::new();
    let proxy = serving(vec![site_route(&dist.root(), true, true)]).await;
    let first = get(&proxy, "/favicon.ico").await;
    assert_eq!((first.status, first.body.as_str()), (200, "ico"));
    // Gone from the disk: the snapshot's contract is that this never happens, so the
    // proxy does not look again.
    std::fs::remove_file(dist.dir.path().join("favicon.ico")).unwrap();
    let again = get(&proxy, "/favicon.ico").await;
    assert_eq!((again.status, again.body.as_str()), (200, "ico"));
    assert_eq!(header(&again, "etag"), header(&first, "etag"));
    // Revalidation and ranges are still answered per request.
    let etag = header(&first, "etag").to_owned();
    assert_eq!(
        get_with(&proxy, "/favicon.ico", &[("if-none-match", &etag)])
            .await
            .status,
        304
    );
    assert_eq!(
        get_with(&proxy, "/favicon.ico", &[("range", "bytes=1-")])
            .await
            .body,
        "co"
    );
    // A directory read on every request sees it gone.
    let fresh = serving(vec![site_route(&dist.root(), false, false)]).await;
    assert_eq!(get(&fresh, "/favicon.ico").await.status, 404);
}

#[tokio::test]
async fn a_static_target_with_upstreams_or_a_relative_root_is_refused() {
    let proxy = start_proxy(config()).await;
    let mut t = site_target("w1", 1, Path::new("dist"), false, false);
    t.upstreams.push("127.0.0.1:1".parse().unwrap());
    let err = proxy
        .set_routes(vec![route("web", "/", vec![t])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("targets[0].site"), "{err}");
    assert!(err.contains("absolute"), "{err}");
}
