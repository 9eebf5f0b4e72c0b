//! HTTP/1.1 conformance: one set of rules whichever server reads a request. Every case runs
//! against both of the proxy's servers, its own front (`fast_http1` on) and hyper's (off),
//! through a real proxy on 127.0.0.1:0 in front of a real upstream, spoken to over raw TCP.
//!
//! Where nginx is installed (`/usr/sbin/nginx` or on `PATH`) the same cases run against it too,
//! set up as a reverse proxy in front of the same kind of upstream with the same limits, as a
//! reference: its answers must have the class (2xx, 4xx, 5xx, or none) of the proxy's, except
//! in the cases whose `nginx` entry says how and why it legitimately differs (and those stay
//! true: nginx's class is checked against the entry). Without nginx that comparison is skipped,
//! saying so, unless `CI=true`, where a missing nginx fails it (scripts/test.sh installs it).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use orchestra_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{route, target};

/// The limits every server under test is given (nginx: the same in its own terms).
const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_BODY: u64 = 32 * 1024;

/// The cases. Each is sent as raw bytes; what comes back is compared with [`Case`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Framing: a body by `Content-Length`, echoed.
    ContentLength,
    /// Framing: a chunked body, echoed.
    Chunked,
    /// Smuggling (CL.TE): both framings, a second request hidden behind the chunked body.
    ChunkedAndContentLength,
    /// Smuggling: two `Content-Length` lines that disagree.
    ConflictingLengths,
    /// Smuggling: `Transfer-Encoding` whose last coding is not `chunked`.
    CodingNotChunkedLast,
    /// A transfer coding the proxy cannot pass on (`gzip, chunked`).
    UnknownCodingBeforeChunked,
    /// Smuggling: a header folded onto the next line (obs-fold).
    ObsFold,
    /// Smuggling: whitespace between a header name and its colon.
    SpaceBeforeColon,
    /// Three requests, one with a body, in one write: answered in order.
    Pipelined,
    /// A 70 KiB header line (past the 64 KiB head limit).
    HugeHeader,
    /// 102 header lines (past the limit of 100).
    TooManyHeaders,
    /// Slow client: a head sent a byte at a time, well within the head timeout.
    HeadByteByByte,
    /// Slow client: a head that never ends, closed at the head timeout.
    HeadNeverFinished,
    /// An idle keep-alive connection outlives the head timeout; a head that then stalls does not.
    IdleThenHeadNeverFinished,
    /// An upstream answer with both framings (and a stale `Content-Length`).
    UpstreamChunkedAndLength,
    /// A chunked body with a bad chunk size.
    BadChunkedBody,
    /// A `Content-Length` past the body limit.
    BodyOverLimit,
    /// A chunked body past the body limit.
    ChunkedBodyOverLimit,
    /// A connection past `max_connections` while another is busy.
    MaxConnections,
}

const ALL: [Kind; 19] = [
    Kind::ContentLength,
    Kind::Chunked,
    Kind::ChunkedAndContentLength,
    Kind::ConflictingLengths,
    Kind::CodingNotChunkedLast,
    Kind::UnknownCodingBeforeChunked,
    Kind::ObsFold,
    Kind::SpaceBeforeColon,
    Kind::Pipelined,
    Kind::HugeHeader,
    Kind::TooManyHeaders,
    Kind::HeadByteByByte,
    Kind::HeadNeverFinished,
    Kind::IdleThenHeadNeverFinished,
    Kind::UpstreamChunkedAndLength,
    Kind::BadChunkedBody,
    Kind::BodyOverLimit,
    Kind::ChunkedBodyOverLimit,
    Kind::MaxConnections,
];

/// What the proxy must answer, on both of its servers.
struct Case {
    /// Its statuses, in order; empty: none at all.
    statuses: &'static [u16],
    /// Whether it must close the connection after them (unchecked: `None`).
    closes: Option<bool>,
    /// nginx's class where it differs, and why that is all right.
    nginx: Option<(&'static str, &'static str)>,
}

fn case(kind: Kind) -> Case {
    let plain = |statuses, closes| Case {
        statuses,
        closes,
        nginx: None,
    };
    match kind {
        Kind::ContentLength | Kind::Chunked | Kind::HeadByteByByte => plain(&[200], None),
        Kind::ChunkedAndContentLength => Case {
            statuses: &[200],
            closes: Some(true),
            nginx: Some((
                "4xx",
                "RFC 9112 §6.1 lets a server either reject a request with both framings or read \
                 it by Transfer-Encoding alone and close the connection after answering. hyper \
                 (and so the proxy) does the latter, and the upstream only ever sees the \
                 proxy's own framing; nginx (since 1.21.1) answers 400. Neither lets the \
                 request behind the body through (checked).",
            )),
        },
        Kind::ConflictingLengths
        | Kind::ObsFold
        | Kind::SpaceBeforeColon
        | Kind::BadChunkedBody => plain(&[400], Some(true)),
        Kind::CodingNotChunkedLast => Case {
            statuses: &[400],
            closes: Some(true),
            nginx: Some((
                "5xx",
                "RFC 9112 §6.3 (4): a request whose final transfer coding is not chunked \
                 MUST be answered 400; nginx answers 501 to any coding it does not implement.",
            )),
        },
        Kind::UnknownCodingBeforeChunked => plain(&[501], None),
        Kind::Pipelined => plain(&[200, 200, 200], Some(false)),
        Kind::HugeHeader => plain(&[431], Some(true)),
        Kind::TooManyHeaders => Case {
            statuses: &[431],
            closes: Some(true),
            nginx: Some((
                "2xx",
                "nginx limits a head by the size of its buffers only, not by how many header \
                 lines it has; the proxy (both servers, as hyper does) also caps the count \
                 (max_headers) and answers 431 (RFC 6585) past it.",
            )),
        },
        Kind::HeadNeverFinished => plain(&[], Some(true)),
        Kind::IdleThenHeadNeverFinished => plain(&[200, 200], Some(true)),
        // RFC 9112 §6.3 (3): the length is dropped and the chunked body read (checked).
        Kind::UpstreamChunkedAndLength => plain(&[200], None),
        Kind::BodyOverLimit | Kind::ChunkedBodyOverLimit => plain(&[413], None),
        Kind::MaxConnections => plain(&[503], Some(true)),
    }
}

/// What a case saw.
struct Outcome {
    statuses: Vec<u16>,
    closed: bool,
    /// What the case's own checks found wrong (for every server, unless they say otherwise).
    problems: Vec<String>,
}

/// A server under test and the upstreams behind it.
struct Env {
    name: &'static str,
    /// Limits as in [`HEAD_TIMEOUT`] and [`MAX_BODY`].
    addr: SocketAddr,
    /// Also allows one client connection at a time.
    limited: SocketAddr,
    up: Arc<Recorder>,
    orchestra: bool,
}

async fn run(kind: Kind, env: &Env) -> Outcome {
    let mut problems = Vec::new();
    let seen =
        match kind {
            Kind::ContentLength => {
                let seen = talk(
                    env.addr,
                    &[b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"],
                    1,
                )
                .await;
                expect_body(&seen, 0, b"hello", &mut problems);
                seen
            }
            Kind::Chunked => {
                let seen = talk(
                    env.addr,
                    &[
                        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                    ],
                    1,
                )
                .await;
                expect_body(&seen, 0, b"hello world", &mut problems);
                seen
            }
            Kind::ChunkedAndContentLength => {
                // CL.TE smuggling: by Content-Length the body would be `0\r\n\r\nGET /smug`.
                let seen = talk(
                    env.addr,
                    &[b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 14\r\n\
                    Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
                    GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"],
                    usize::MAX,
                )
                .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                if env.up.saw("/smuggled") {
                    problems.push("the request behind the body reached the upstream".into());
                }
                if seen.replies.len() > 1 {
                    problems.push("the request behind the body was answered".into());
                }
                seen
            }
            Kind::ConflictingLengths => {
                talk(
                    env.addr,
                    &[b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\
                    Content-Length: 4\r\n\r\nabcd"],
                    usize::MAX,
                )
                .await
            }
            Kind::CodingNotChunkedLast => talk(
                env.addr,
                &[
                    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n\
                    5\r\nhello\r\n0\r\n\r\n",
                ],
                usize::MAX,
            )
            .await,
            Kind::UnknownCodingBeforeChunked => talk(
                env.addr,
                &[
                    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                    5\r\nhello\r\n0\r\n\r\n",
                ],
                1,
            )
            .await,
            Kind::ObsFold => {
                talk(
                    env.addr,
                    &[b"GET /fold HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n"],
                    usize::MAX,
                )
                .await
            }
            Kind::SpaceBeforeColon => {
                talk(
                    env.addr,
                    &[b"GET /space HTTP/1.1\r\nHost: t\r\nX-Spaced : 1\r\n\r\n"],
                    usize::MAX,
                )
                .await
            }
            Kind::Pipelined => {
                let seen = talk(
                    env.addr,
                    &[b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n\
                    POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\np2\
                    GET /p3 HTTP/1.1\r\nHost: t\r\n\r\n"],
                    3,
                )
                .await;
                expect_body(&seen, 0, b"/p1", &mut problems);
                expect_body(&seen, 1, b"p2", &mut problems);
                expect_body(&seen, 2, b"/p3", &mut problems);
                seen
            }
            Kind::HugeHeader => {
                let head = format!(
                    "GET /huge HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
                    "a".repeat(70 * 1024)
                );
                talk(env.addr, &[head.as_bytes()], usize::MAX).await
            }
            Kind::TooManyHeaders => {
                let mut head = String::from("GET /many HTTP/1.1\r\nHost: t\r\n");
                for i in 0..101 {
                    head.push_str(&format!("X-H{i}: {i}\r\n"));
                }
                head.push_str("\r\n");
                talk(env.addr, &[head.as_bytes()], usize::MAX).await
            }
            Kind::HeadByteByByte => {
                let head = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n\r\n";
                let bytes: Vec<&[u8]> = head.chunks(1).collect();
                let seen = talk_slowly(env.addr, &bytes, Duration::from_millis(2), 1).await;
                expect_body(&seen, 0, b"/slow", &mut problems);
                seen
            }
            Kind::HeadNeverFinished => {
                let seen = talk(
                    env.addr,
                    &[b"GET /never HTTP/1.1\r\nHost: t\r\n"],
                    usize::MAX,
                )
                .await;
                // Closed by the head timeout: not before it, and not long after.
                if seen.closed && !(HEAD_TIMEOUT / 2..HEAD_TIMEOUT * 5).contains(&seen.elapsed) {
                    problems.push(format!("closed after {:?}", seen.elapsed));
                }
                seen
            }
            Kind::IdleThenHeadNeverFinished => {
                // The wait between keep-alive requests is no head's: the connection stays open
                // past the head timeout; the head that then starts and stalls is timed.
                let mut s = connect(env.addr).await;
                let get = b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n";
                send(&mut s, &[get], Duration::ZERO).await;
                let mut seen = read_replies(&mut s, Instant::now(), 1).await;
                tokio::time::sleep(HEAD_TIMEOUT * 3 / 2).await;
                send(&mut s, &[get], Duration::ZERO).await;
                seen.replies
                    .extend(read_replies(&mut s, Instant::now(), 1).await.replies);
                send(&mut s, &[b"GET /never HTTP/1.1\r\n"], Duration::ZERO).await;
                let last = read_replies(&mut s, Instant::now(), usize::MAX).await;
                seen.replies.extend(last.replies);
                seen.closed = last.closed;
                if last.closed && !(HEAD_TIMEOUT / 2..HEAD_TIMEOUT * 5).contains(&last.elapsed) {
                    problems.push(format!("closed {:?} into the head", last.elapsed));
                }
                seen
            }
            Kind::UpstreamChunkedAndLength => {
                let seen = talk(env.addr, &[b"GET /te-cl HTTP/1.1\r\nHost: t\r\n\r\n"], 1).await;
                if seen.replies.first().is_some_and(|r| r.status == 200) {
                    expect_body(&seen, 0, b"hello world", &mut problems);
                }
                seen
            }
            Kind::BadChunkedBody => {
                talk(
                    env.addr,
                    &[
                        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\nzz\r\n\r\n",
                    ],
                    usize::MAX,
                )
                .await
            }
            Kind::BodyOverLimit => {
                let head = format!(
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                    MAX_BODY * 2
                );
                talk(env.addr, &[head.as_bytes()], 1).await
            }
            Kind::ChunkedBodyOverLimit => {
                // To an upstream that reads the whole body before it answers.
                let size = usize::try_from(MAX_BODY).unwrap() + 8 * 1024;
                let request = format!(
                    "POST /drain HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                     {size:x}\r\n{}\r\n0\r\n\r\n",
                    "a".repeat(size)
                );
                talk(env.addr, &[request.as_bytes()], 1).await
            }
            Kind::MaxConnections => max_connections(env, &mut problems).await,
        };
    Outcome {
        statuses: seen.replies.iter().map(|r| r.status).collect(),
        closed: seen.closed,
        problems,
    }
}

/// One connection's request is held upstream; a second connection is refused meanwhile, and
/// a third, once the first is done, is served.
async fn max_connections(env: &Env, problems: &mut Vec<String>) -> Seen {
    let mut first = connect(env.limited).await;
    send(
        &mut first,
        &[b"GET /hold HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"],
        Duration::ZERO,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.up.saw("/hold") {
        if Instant::now() > deadline {
            problems.push("the first connection's request never reached the upstream".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = talk(
        env.limited,
        &[b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n"],
        usize::MAX,
    )
    .await;
    if env.orchestra
        && let Some(r) = refused.replies.first()
        && !r.head.contains("\r\nconnection: close\r\n")
    {
        problems.push(format!("the refusal lacks Connection: close: {}", r.head));
    }
    env.up.release.add_permits(1);
    let held = read_replies(&mut first, Instant::now(), 1).await;
    if held.replies.first().map(|r| r.status) != Some(200) {
        problems.push("the held request was not answered 200".into());
    }
    drop(first);
    // Its place is free again once the proxy has seen the connection close.
    let mut later = Vec::new();
    for _ in 0..100 {
        let seen = talk(
            env.limited,
            &[b"GET /third HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"],
            1,
        )
        .await;
        later = seen.replies.iter().map(|r| r.status).collect();
        if later == [200] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if later != [200] {
        problems.push(format!("a connection after the first closed got {later:?}"));
    }
    refused
}

fn expect_body(seen: &Seen, i: usize, want: &[u8], problems: &mut Vec<String>) {
    match seen.replies.get(i) {
        Some(r) if r.body == want => {}
        Some(r) => problems.push(format!(
            "answer {i}: body {:?}, want {:?}",
            String::from_utf8_lossy(&r.body),
            String::from_utf8_lossy(want)
        )),
        None => problems.push(format!("answer {i} missing")),
    }
}

/// 2xx, 4xx, 5xx for each answer; `none` for none.
fn classes(statuses: &[u16]) -> String {
    if statuses.is_empty() {
        return "none".into();
    }
    let all: Vec<String> = statuses.iter().map(|s| format!("{}xx", s / 100)).collect();
    all.join(",")
}

/// Runs every case against `env`: the proxy's exact answers, or nginx's classes.
async fn run_all(env: &Env) {
    let mut failures = Vec::new();
    for kind in ALL {
        let want = case(kind);
        let got = run(kind, env).await;
        let mut wrong = got.problems;
        if env.orchestra {
            if got.statuses != want.statuses {
                wrong.push(format!(
                    "answered {:?}, want {:?}",
                    got.statuses, want.statuses
                ));
            }
            if let Some(closes) = want.closes
                && got.closed != closes
            {
                wrong.push(format!("closed: {}, want {closes}", got.closed));
            }
        } else {
            let ours = classes(want.statuses);
            let theirs = classes(&got.statuses);
            match want.nginx {
                None if theirs != ours => {
                    wrong.push(format!("nginx answered {theirs} (the proxy: {ours})"));
                }
                Some((documented, _)) if theirs != documented => wrong.push(format!(
                    "nginx answered {theirs}, documented as {documented} (the proxy: {ours})"
                )),
                Some((_, why)) => println!("{kind:?}: nginx {theirs}, the proxy {ours}: {why}"),
                None => println!("{kind:?}: nginx and the proxy both {ours}"),
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{kind:?} on {}: {}", env.name, wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

async fn orchestra(fast_http1: bool) -> (Env, Vec<Proxy>, Arc<Recorder>, TeClUpstream) {
    let up = Recorder::start().await;
    let te_cl = TeClUpstream::start().await;
    let cfg = |max_connections| ProxyConfig {
        listen: "127.0.0.1:0".into(),
        fast_http1,
        head_timeout: HEAD_TIMEOUT,
        max_body_bytes: MAX_BODY,
        max_connections,
        ..ProxyConfig::default()
    };
    let main = Proxy::start(cfg(0)).await.unwrap();
    let limited = Proxy::start(cfg(1)).await.unwrap();
    for proxy in [&main, &limited] {
        proxy
            .set_routes(vec![
                route("te-cl", "/te-cl", vec![target("v1", 1, &[te_cl.addr])]),
                route("app", "/", vec![target("v1", 1, &[up.addr])]),
            ])
            .unwrap();
    }
    let env = Env {
        name: if fast_http1 { "the front" } else { "hyper" },
        addr: main.local_addr(),
        limited: limited.local_addr(),
        up: up.clone(),
        orchestra: true,
    };
    (env, vec![main, limited], up, te_cl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_on_the_front() {
    let (env, _proxies, _up, _te_cl) = orchestra(true).await;
    run_all(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_through_hyper() {
    let (env, _proxies, _up, _te_cl) = orchestra(false).await;
    run_all(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_nginx,
    ignore = "nginx is not installed (apt-get install -y nginx)"
)]
async fn every_case_against_nginx() {
    let Some(binary) = nginx_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nginx is not installed (scripts/test.sh installs it): the differential \
             conformance check cannot run under CI"
        );
        // Straight to stderr, past the test harness's capture, so that the skip shows.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED conformance::every_case_against_nginx: nginx is not installed"
        );
        return;
    };
    let up = Recorder::start().await;
    let te_cl = TeClUpstream::start().await;
    let nginx = Nginx::start(&binary, up.addr, te_cl.addr);
    let env = Env {
        name: "nginx",
        addr: nginx.addr,
        limited: nginx.limited,
        up: up.clone(),
        orchestra: false,
    };
    run_all(&env).await;
    drop(nginx);
}

// ---------------------------------------------------------------------------------------------
// Raw clients.

/// One answer, as read off the wire.
struct Reply {
    status: u16,
    /// The head, lower-cased.
    head: String,
    body: Vec<u8>,
}

/// What a connection saw.
struct Seen {
    /// Final answers (1xx skipped), in order.
    replies: Vec<Reply>,
    /// The server closed (or reset) the connection.
    closed: bool,
    /// From the last byte sent to the close, or to the last answer.
    elapsed: Duration,
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Writes `parts` with `pause` between them; a server that closes early ends the writing.
async fn send(s: &mut TcpStream, parts: &[&[u8]], pause: Duration) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if s.write_all(part).await.is_err() {
            return;
        }
    }
}

/// Sends `parts` on a new connection and reads until `want` answers came, the connection
/// closed, or 10 s passed (with `want` unbounded: 1 s after the first answer).
async fn talk(addr: SocketAddr, parts: &[&[u8]], want: usize) -> Seen {
    talk_slowly(addr, parts, Duration::ZERO, want).await
}

async fn talk_slowly(addr: SocketAddr, parts: &[&[u8]], pause: Duration, want: usize) -> Seen {
    let mut s = connect(addr).await;
    send(&mut s, parts, pause).await;
    read_replies(&mut s, Instant::now(), want).await
}

async fn read_replies(s: &mut TcpStream, since: Instant, want: usize) -> Seen {
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let mut closed = false;
    let mut chunk = vec![0u8; 64 * 1024];
    while replies.len() < want {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed = true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
        while let Some((reply, used)) = parse_reply(&buf, closed) {
            buf.drain(..used);
            if !(100..200).contains(&reply.status) {
                replies.push(reply);
            }
        }
        if closed {
            break;
        }
        if want == usize::MAX && !replies.is_empty() {
            deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    }
    Seen {
        replies,
        closed,
        elapsed: since.elapsed(),
    }
}

/// One response off the front of `buf`, and its length; `None` until all of it is there.
fn parse_reply(buf: &[u8], eof: bool) -> Option<(Reply, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = resp.parse(buf).ok()? else {
        return None;
    };
    let status = resp.code?;
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked");
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
    let rest = &buf[head_len..];
    let (body, used) = if (100..200).contains(&status) || status == 204 || status == 304 {
        (Vec::new(), 0)
    } else if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        (rest.get(..n)?.to_vec(), n)
    } else if eof {
        (rest.to_vec(), rest.len())
    } else {
        return None;
    };
    Some((Reply { status, head, body }, head_len + used))
}

/// A whole chunked body off the front of `buf`: its data and its length on the wire.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
                let blank = end == at;
                at = end + 2;
                if blank {
                    return Some((body, at));
                }
            }
        }
        body.extend_from_slice(buf.get(at..at + size)?);
        at += size + 2;
        if at > buf.len() {
            return None;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Upstreams.

/// An HTTP/1.1 upstream (hyper's server) that records the paths it is asked for. `POST /echo`
/// answers the request body as it streams; `POST /drain` reads all of it, then answers its
/// length; `/hold` waits for a permit of `release`; anything else answers its path.
struct Recorder {
    addr: SocketAddr,
    paths: Mutex<Vec<String>>,
    release: Semaphore,
    tasks: Mutex<JoinSet<()>>,
}

impl Recorder {
    async fn start() -> Arc<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = Arc::new(Recorder {
            addr: listener.local_addr().unwrap(),
            paths: Mutex::new(Vec::new()),
            release: Semaphore::new(0),
            tasks: Mutex::new(JoinSet::new()),
        });
        let weak = Arc::downgrade(&up);
        up.tasks.lock().unwrap().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Some(up) = weak.upgrade() else { return };
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let up = up.clone();
                        async move { Ok::<_, std::convert::Infallible>(up.serve(req).await) }
                    });
                    // Many more headers than the servers under test take.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .max_headers(1000)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        up
    }

    fn saw(&self, path: &str) -> bool {
        self.paths.lock().unwrap().iter().any(|p| p == path)
    }

    async fn serve(
        &self,
        req: Request<Incoming>,
    ) -> Response<http_body_util::combinators::BoxBody<Bytes, hyper::Error>> {
        let path = req.uri().path().to_string();
        self.paths.lock().unwrap().push(path.clone());
        match path.as_str() {
            "/echo" => Response::new(req.into_body().boxed()),
            "/drain" => match req.into_body().collect().await {
                Ok(body) => Response::new(full(body.to_bytes().len().to_string())),
                Err(e) => Response::new(full(e.to_string())),
            },
            "/hold" => {
                if let Ok(permit) = self.release.acquire().await {
                    permit.forget();
                }
                Response::new(full("released"))
            }
            _ => Response::new(full(path)),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.abort_all();
        }
    }
}

fn full(body: impl Into<Bytes>) -> http_body_util::combinators::BoxBody<Bytes, hyper::Error> {
    Full::new(body.into()).map_err(|n| match n {}).boxed()
}

/// An upstream that answers every request with both `Transfer-Encoding: chunked` and a stale
/// `Content-Length: 3`; the chunked body is `hello world`.
struct TeClUpstream {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TeClUpstream {
    async fn start() -> TeClUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\
                                Transfer-Encoding: chunked\r\n\r\n\
                                b\r\nhello world\r\n0\r\n\r\n";
                            if s.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        TeClUpstream { addr, task }
    }
}

impl Drop for TeClUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// nginx, as the reference.

fn nginx_binary() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/sbin/nginx");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// nginx as a reverse proxy in front of the test's upstreams, with a prefix, configuration and
/// pid file of its own in a temporary directory; stopped by its PID when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    limited: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// A port taken between `free_port` and nginx's bind (by another test) is
    /// retried with new ports.
    fn start(binary: &Path, up: SocketAddr, te_cl: SocketAddr) -> Nginx {
        for _ in 0..5 {
            if let Some(n) = Self::try_start(binary, up, te_cl) {
                return n;
            }
        }
        panic!("nginx could not bind free ports five times in a row");
    }

    fn try_start(binary: &Path, up: SocketAddr, te_cl: SocketAddr) -> Option<Nginx> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let addr = free_port();
        let limited = free_port();
        let timeout_ms = HEAD_TIMEOUT.as_millis();
        // The proxy's limits in nginx's terms: the head timeout; the body limit; heads of up to
        // 64 KiB (a line past one buffer is refused); one connection at a time on the second
        // server. One process, in the foreground, so that its PID is the child's.
        let conf = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_header_timeout {timeout_ms}ms;
    client_max_body_size {MAX_BODY};
    large_client_header_buffers 4 64k;
    limit_conn_zone $server_port zone=per_server:1m;
    limit_conn_status 503;
    proxy_http_version 1.1;
    proxy_set_header Connection \"\";
    server {{
        listen {addr};
        location /te-cl {{ proxy_pass http://{te_cl}; }}
        location / {{ proxy_pass http://{up}; }}
    }}
    server {{
        listen {limited};
        limit_conn per_server 1;
        location / {{ proxy_pass http://{up}; }}
    }}
}}
"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut nginx = Nginx {
            child,
            addr,
            limited,
            dir,
        };
        nginx.wait_listening().then_some(nginx)
    }

    /// Whether nginx listens on its ports; false when another process took one first.
    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.log().contains("Address already in use") {
                return false;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", self.log());
            }
            // nginx writes its pid file only once every listening socket is bound, so
            // an answer is nginx's and not another test's listener on a reused port.
            let up = self.dir.path().join("nginx.pid").is_file()
                && [self.addr, self.limited]
                    .iter()
                    .all(|a| std::net::TcpStream::connect(a).is_ok());
            if up {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "nginx never listened:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now, for nginx to take.
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
