//! The HTTP/1.1 front, spoken to byte by byte: what it serves itself, and what it hands to
//! hyper on the same connection (HTTP/1.0, chunked and large uploads, upgrades).

use std::time::Duration;

use orchestra_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

async fn proxy_to(up: &Upstream, cfg: ProxyConfig) -> Proxy {
    let proxy = start_proxy(cfg).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    proxy
}

/// Everything the proxy sends until it closes the connection (10 s at most). A reset after
/// the answer (the proxy closing with request bytes unread) ends it too.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await
            && n > 0
        {
            out.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the proxy closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// One response with a `Content-Length`, read off a connection that stays open.
async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "eof: {buf:?}");
        buf.push(b[0]);
        if buf.ends_with(b"\r\n\r\n") {
            break buf.len();
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

async fn connect(proxy: &Proxy) -> TcpStream {
    TcpStream::connect(proxy.local_addr()).await.unwrap()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(&up, config()).await;
    let mut s = connect(&proxy).await;
    s.write_all(
        b"GET /first HTTP/1.1\r\nHost: app\r\n\r\n\
          GET /second HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let all = read_to_close(&mut s).await;
    assert_eq!(all.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{all}");
    let first = all.find("/first").unwrap();
    let second = all.find("/second").unwrap();
    assert!(first < second, "{all}");
    let last_head = &all[all.rfind("HTTP/1.1 200").unwrap()..];
    assert!(
        last_head.to_ascii_lowercase().contains("connection: close"),
        "{all}"
    );
    // The proxy's headers reach the upstream, and a date reaches the client.
    assert!(all.contains("x-forwarded-for"), "{all}");
    assert!(all.to_ascii_lowercase().contains("\r\ndate: "), "{all}");
}

#[tokio::test]
async fn a_body_that_arrives_after_its_head_is_waited_for() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(&up, config()).await;
    let mut s = connect(&proxy).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 11\r\n\r\nhello")
        .await
        .unwrap();
    // Give the proxy the chance to see the head alone; the answer must not depend on it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.write_all(b" world").await.unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "hello world");
    // The same connection serves the next request.
    s.write_all(b"GET /again HTTP/1.1\r\nHost: app\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = read_response(&mut s).await;
    assert!(body.contains("/again"), "{body}");
}

#[tokio::test]
async fn http_1_0_chunked_and_large_uploads_are_served_by_hyper() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(&up, config()).await;

    let mut s = connect(&proxy).await;
    s.write_all(b"GET /old HTTP/1.0\r\nHost: app\r\n\r\n")
        .await
        .unwrap();
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.0 200"), "{all}");
    assert!(all.contains("/old"), "{all}");

    let mut s = connect(&proxy).await;
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(all.contains("hello") && all.contains(" world"), "{all}");

    // Over the buffered limit: streamed through hyper, byte for byte.
    let big: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut s = connect(&proxy).await;
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let writer = {
        let (mut rd, mut wr) = s.into_split();
        let upload = big.clone();
        let w = tokio::spawn(async move {
            wr.write_all(&upload).await.unwrap();
            wr
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        // Head, then exactly the body (Content-Length comes back from the upstream).
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut body = got.split_off(start);
        while body.len() < big.len() {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "body ended at {} bytes", body.len());
            body.extend_from_slice(&buf[..n]);
        }
        assert_eq!(body, big);
        w
    };
    writer.await.unwrap();
}

#[tokio::test]
async fn a_websocket_after_plain_requests_on_one_connection() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(&up, config()).await;
    let mut s = connect(&proxy).await;
    s.write_all(b"GET /plain HTTP/1.1\r\nHost: app\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.contains("/plain"));
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_response(&mut s).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    s.write_all(&ws_client_frame(b"still here")).await.unwrap();
    let mut frame = vec![0u8; 2 + "still here".len()];
    s.read_exact(&mut frame).await.unwrap();
    assert_eq!(&frame[2..], b"still here");
}

#[tokio::test]
async fn malformed_and_oversized_heads_are_refused() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(&up, config()).await;

    let mut s = connect(&proxy).await;
    s.write_all(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n")
        .await
        .unwrap();
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");

    let mut s = connect(&proxy).await;
    s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
        .await
        .unwrap();
    let all = read_to_close(&mut s).await;
    assert!(
        all.starts_with("HTTP/1.1 400"),
        "conflicting lengths: {all}"
    );

    let mut s = connect(&proxy).await;
    let huge = format!(
        "GET /x HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    // The proxy may close before taking it all; only its answer matters.
    let _ = s.write_all(huge.as_bytes()).await;
    let all = read_to_close(&mut s).await;
    assert!(
        all.starts_with("HTTP/1.1 431"),
        "{}",
        &all[..all.len().min(200)]
    );
    assert_eq!(up.hits(), 0, "nothing malformed reaches the upstream");
}

#[tokio::test]
async fn head_requests_get_the_length_but_no_body() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(&up, config()).await;
    let mut s = connect(&proxy).await;
    s.write_all(b"HEAD /status/200 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(
        all.to_ascii_lowercase().contains("content-length: 10"),
        "{all}"
    );
    assert!(all.ends_with("\r\n\r\n"), "no body after the head: {all:?}");
}

#[tokio::test]
async fn hyper_serves_every_connection_when_the_front_is_off() {
    let up = Upstream::start("api").await;
    let proxy = proxy_to(
        &up,
        ProxyConfig {
            fast_http1: false,
            ..config()
        },
    )
    .await;
    let r = get(&proxy, "/via-hyper").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/via-hyper");
    let mut s = connect(&proxy).await;
    s.write_all(b"GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut s).await.starts_with("HTTP/1.1 200"));
}
