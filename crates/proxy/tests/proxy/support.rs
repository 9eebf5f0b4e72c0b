//! Real upstream servers, a real client, and the real proxy, all on 127.0.0.1 inside the test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use orchestra_proxy::{Balance, Proxy, ProxyConfig, Route, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinSet;

/// A body fed by a channel: each message is one frame, sent as soon as it arrives.
pub struct ChannelBody(pub mpsc::UnboundedReceiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

type UpBody = BoxBody<Bytes, hyper::Error>;

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<UpBody> {
    let mut r = Response::new(Full::new(body.into()).map_err(|n| match n {}).boxed());
    *r.status_mut() = status;
    r
}

struct UpState {
    name: String,
    fail_all: bool,
    hits: AtomicU64,
    connections: AtomicU64,
    release: Semaphore,
    streams: mpsc::UnboundedSender<mpsc::UnboundedSender<Bytes>>,
}

/// A small HTTP/1.1 upstream. Paths:
/// `/hold` waits for [`Upstream::release`]; `/sse` streams what the test sends through
/// [`Upstream::next_stream`]; `POST /echo` streams the request body back; `/status/N` answers N;
/// `/ws` upgrades and echoes WebSocket frames; anything else answers JSON with the upstream's
/// name, the path it saw and the request headers.
pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<UpState>,
    streams: Mutex<mpsc::UnboundedReceiver<mpsc::UnboundedSender<Bytes>>>,
    tasks: JoinSet<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        Self::start_with(name, false).await
    }

    /// An upstream that answers 500 to everything.
    pub async fn failing(name: &str) -> Upstream {
        Self::start_with(name, true).await
    }

    async fn start_with(name: &str, fail_all: bool) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(UpState {
            name: name.to_string(),
            fail_all,
            hits: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            release: Semaphore::new(0),
            streams: tx,
        });
        let mut tasks = JoinSet::new();
        let st = state.clone();
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                st.connections.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(serve(st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Upstream {
            addr,
            state,
            streams: Mutex::new(rx),
            tasks,
        }
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Lets `n` held `/hold` requests answer.
    pub fn release(&self, n: usize) {
        self.state.release.add_permits(n);
    }

    /// The sender behind the next `/sse` request that reaches this upstream.
    pub async fn next_stream(&self) -> mpsc::UnboundedSender<Bytes> {
        let mut rx = self.streams.lock().await;
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no /sse request reached the upstream")
            .unwrap()
    }
}

async fn serve(st: Arc<UpState>, mut req: Request<Incoming>) -> Response<UpBody> {
    st.hits.fetch_add(1, Ordering::SeqCst);
    if st.fail_all {
        return full(StatusCode::INTERNAL_SERVER_ERROR, "boom");
    }
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/hold" => {
            st.release.acquire().await.unwrap().forget();
            full(StatusCode::OK, "released")
        }
        "/sse" => {
            let (tx, rx) = mpsc::unbounded_channel();
            st.streams.send(tx).unwrap();
            let mut r = Response::new(ChannelBody(rx).map_err(|n| match n {}).boxed());
            r.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            r
        }
        "/echo" => Response::new(req.into_body().boxed()),
        "/ws" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    ws_echo(TokioIo::new(upgraded)).await;
                }
            });
            let mut r = full(StatusCode::SWITCHING_PROTOCOLS, "");
            r.headers_mut()
                .insert("upgrade", "websocket".parse().unwrap());
            r.headers_mut()
                .insert("connection", "Upgrade".parse().unwrap());
            r
        }
        p if p.starts_with("/status/") => {
            let code: u16 = p["/status/".len()..].parse().unwrap();
            full(
                StatusCode::from_u16(code).unwrap(),
                format!("status {code}"),
            )
        }
        _ => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                .collect();
            let body = serde_json::json!({
                "name": st.name,
                "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
                "headers": headers,
            });
            full(StatusCode::OK, body.to_string())
        }
    }
}

/// Echoes WebSocket frames (payloads under 126 bytes) until a close frame or EOF.
async fn ws_echo<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut io: S) {
    loop {
        let mut head = [0u8; 2];
        if io.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = usize::from(head[1] & 0x7f);
        let mut mask = [0u8; 4];
        if head[1] & 0x80 != 0 && io.read_exact(&mut mask).await.is_err() {
            return;
        }
        let mut payload = vec![0u8; len];
        if io.read_exact(&mut payload).await.is_err() {
            return;
        }
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        let opcode = head[0] & 0x0f;
        let mut frame = vec![0x80 | opcode, len as u8];
        frame.extend_from_slice(&payload);
        if io.write_all(&frame).await.is_err() || opcode == 0x8 {
            return;
        }
    }
}

/// A masked client WebSocket frame (text).
pub fn ws_client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An address nothing listens on.
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub fn config() -> ProxyConfig {
    ProxyConfig {
        listen: "127.0.0.1:0".into(),
        ..ProxyConfig::default()
    }
}

pub async fn start_proxy(cfg: ProxyConfig) -> Proxy {
    Proxy::start(cfg).await.unwrap()
}

pub fn target(revision: &str, weight: u32, upstreams: &[SocketAddr]) -> Target {
    Target {
        revision: revision.into(),
        weight,
        upstreams: upstreams.to_vec(),
        site: None,
    }
}

pub fn route(service: &str, prefix: &str, targets: Vec<Target>) -> Route {
    Route {
        service: service.into(),
        host: None,
        path_prefix: prefix.into(),
        strip_prefix: false,
        targets,
        sticky: None,
        balance: Balance::RoundRobin,
        paused: false,
        maintenance: None,
    }
}

pub type ClientBody = BoxBody<Bytes, Infallible>;

pub fn client() -> Client<HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub fn h2c_client() -> Client<HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new())
}

pub fn empty() -> ClientBody {
    Full::new(Bytes::new()).boxed()
}

/// A buffered response, for assertions.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The upstream's name (from its JSON answer).
    pub fn name(&self) -> String {
        self.json()["name"].as_str().unwrap_or("").to_string()
    }
}

pub async fn send(client: &Client<HttpConnector, ClientBody>, req: Request<ClientBody>) -> Resp {
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn get_req(proxy: &Proxy, path: &str, headers: &[(&str, &str)]) -> Request<ClientBody> {
    let mut b = Request::get(format!("http://{}{path}", proxy.local_addr()));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(empty()).unwrap()
}

pub async fn get(proxy: &Proxy, path: &str) -> Resp {
    send(&client(), get_req(proxy, path, &[])).await
}

/// Polls `cond` every few milliseconds until it holds, failing after 10 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
