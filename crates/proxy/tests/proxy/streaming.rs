//! Bodies flow without buffering both ways; streams and WebSockets outlive route swaps.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::*;

/// The next data frame of a streamed body, as text.
async fn next_chunk(body: &mut Incoming) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("no frame within 10 s")?
            .unwrap();
        if let Ok(data) = frame.into_data() {
            return Some(String::from_utf8(data.to_vec()).unwrap());
        }
    }
}

#[tokio::test]
async fn sse_flows_event_by_event() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let resp = client()
        .request(get_req(&proxy, "/sse", &[]))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = up.next_stream().await;
    let mut body = resp.into_body();
    // Each event reaches the client before the upstream sends the next one.
    for i in 0..5 {
        events.send(Bytes::from(format!("data: {i}\n\n"))).unwrap();
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            format!("data: {i}\n\n")
        );
        assert_eq!(proxy.in_flight("v1"), 1);
    }
    drop(events);
    assert_eq!(next_chunk(&mut body).await, None);
    eventually("stream leaves in_flight", || proxy.in_flight("v1") == 0).await;
    assert_eq!(proxy.stats("v1").requests, 1);
}

#[tokio::test]
async fn a_stream_opened_before_a_swap_finishes_on_its_upstream() {
    let old = Upstream::start("old").await;
    let new = Upstream::start("new").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[old.addr])])])
        .unwrap();
    let resp = client()
        .request(get_req(&proxy, "/sse", &[]))
        .await
        .unwrap();
    let events = old.next_stream().await;
    let mut body = resp.into_body();
    events
        .send(Bytes::from_static(b"data: before\n\n"))
        .unwrap();
    assert_eq!(next_chunk(&mut body).await.unwrap(), "data: before\n\n");

    proxy
        .set_routes(vec![route("api", "/", vec![target("v2", 1, &[new.addr])])])
        .unwrap();
    assert_eq!(get(&proxy, "/").await.name(), "new");
    // The old revision still counts the stream while it runs.
    assert_eq!(proxy.in_flight("v1"), 1);
    for i in 0..3 {
        events
            .send(Bytes::from(format!("data: after {i}\n\n")))
            .unwrap();
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            format!("data: after {i}\n\n")
        );
    }
    drop(events);
    assert_eq!(next_chunk(&mut body).await, None);
    eventually("old revision drained", || proxy.in_flight("v1") == 0).await;
}

#[tokio::test]
async fn request_and_response_bodies_stream_both_ways() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let req = Request::post(format!("http://{}/echo", proxy.local_addr()))
        .body(ChannelBody(rx).boxed())
        .unwrap();
    tx.send(Bytes::from_static(b"first")).unwrap();
    let resp = client().request(req).await.unwrap();
    let mut body = resp.into_body();
    // The echo of each chunk comes back while the request body is still open.
    assert_eq!(next_chunk(&mut body).await.unwrap(), "first");
    tx.send(Bytes::from_static(b"second")).unwrap();
    assert_eq!(next_chunk(&mut body).await.unwrap(), "second");
    drop(tx);
    assert_eq!(next_chunk(&mut body).await, None);
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "eof in head: {head:?}");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let up = Upstream::start("api").await;
    let proxy = start_proxy(config()).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");

    for msg in ["hello", "through the proxy"] {
        s.write_all(&ws_client_frame(msg.as_bytes())).await.unwrap();
        let mut frame = vec![0u8; 2 + msg.len()];
        s.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame[0], 0x81);
        assert_eq!(&frame[2..], msg.as_bytes());
    }
    // Open WebSockets count as in flight on their revision until closed.
    assert_eq!(proxy.in_flight("v1"), 1);
    drop(s);
    eventually("websocket leaves in_flight", || proxy.in_flight("v1") == 0).await;
}
