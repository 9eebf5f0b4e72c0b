//! Client connections, HTTP/1.1, served without hyper for the common case: keep-alive requests
//! whose head and whole body (up to [`MAX_BUFFERED_BODY`]) are in hand. Per request that is one
//! parse with `httparse` into a header map whose values share the read buffer, the same
//! `forward::handle` as every other request, and one write for a small response.
//!
//! Everything else hands the connection, with the bytes read so far, to hyper's server for the
//! rest of its life: HTTP/2 (h2c prior knowledge), HTTP/1.0, upgrades (WebSocket), `Expect`,
//! chunked request bodies and bodies larger than the limit. Those are the cases where hyper's
//! general machinery earns its cost, and it has handled them all along.
//!
//! Both servers hold requests to the same limits (`ProxyConfig`'s docs list them) and answer a
//! bad request the same way: the front takes every request with `Transfer-Encoding` to hyper,
//! so one parser alone decides how such a body is framed, and refuses what hyper refuses
//! (431 past the head size or header count, 400 for a malformed head or conflicting lengths,
//! 413 past the body limit, 414 past hyper's URI limit). For `head_timeout` hyper's connections
//! are timed here too ([`Prefixed`]), since hyper's own timer would also count the idle wait
//! between keep-alive requests.

use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Frame};
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, DATE, EXPECT, HeaderName, HeaderValue, TRANSFER_ENCODING, UPGRADE,
};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::{ClientBody, ProxyBody};
use crate::forward;
use crate::guard::ConnState;
use crate::h1::parse_decimal;
use crate::server::Shared;

/// Header slots on the stack; a `max_headers` above it costs an allocation per parse.
const STACK_HEADERS: usize = 128;
/// Longest request target hyper takes (its `MAX_URI_LEN`); a longer one gets a 414.
const MAX_URI: usize = (u16::MAX - 1) as usize;
/// Request bodies up to this size are read in full before the request is forwarded.
pub(crate) const MAX_BUFFERED_BODY: usize = 64 * 1024;
/// Response bytes gathered before a write when more frames are ready at once.
const GATHER: usize = 64 * 1024;

/// How a connection left the fast path.
pub(crate) enum Outcome {
    /// Closed (by either side, or after `Connection: close`).
    Closed,
    /// The next request needs hyper: the connection and the bytes already read from it.
    Handoff(Prefixed),
}

/// What the next request on a connection turned out to be.
enum Next {
    Request(Box<Request<ClientBody>>, bool),
    Handoff,
    Closed,
    Reject(StatusCode),
}

/// Serves requests until the connection closes or a request needs hyper. When the proxy
/// drains, the connection's owner marks it closing: the response in progress is the last one.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Arc<ConnState>, io: TcpStream) -> Outcome {
    let cfg = &shared.cfg;
    let head_timeout = cfg.head_timeout;
    let mut front = Front {
        io,
        rbuf: BytesMut::with_capacity(8 * 1024),
        wbuf: Vec::new(),
        scratch: Vec::new(),
        max_head: cfg.head_limit(),
        max_headers: cfg.header_limit(),
        max_body: cfg.max_body_bytes,
        head_timeout,
        // The first head is timed from the connection's start.
        head_deadline: (!head_timeout.is_zero()).then(|| Instant::now() + head_timeout),
        head_timer: None,
    };
    loop {
        if conn.closing() {
            return Outcome::Closed;
        }
        let (req, keep_alive) = match front.next_request().await {
            Next::Request(req, keep_alive) => (req, keep_alive),
            Next::Handoff => return Outcome::Handoff(front.into_prefixed(conn, head_timeout)),
            Next::Closed => return Outcome::Closed,
            Next::Reject(status) => {
                let _ = front.write_reject(status).await;
                return Outcome::Closed;
            }
        };
        let head_request = req.method() == Method::HEAD;
        let resp = forward::handle(shared.clone(), conn.clone(), *req).await;
        let keep_alive = keep_alive && !conn.closing();
        match front.write_response(resp, head_request, keep_alive).await {
            Ok(true) if keep_alive => {}
            _ => return Outcome::Closed,
        }
    }
}

struct Front {
    io: TcpStream,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    scratch: Vec<(HeaderName, usize, usize)>,
    max_head: usize,
    max_headers: usize,
    /// 0: no limit.
    max_body: u64,
    /// Zero: heads are not timed.
    head_timeout: Duration,
    /// When the head being read must be complete: set once part of it is here (for the first
    /// head: at the start), cleared once it is whole.
    head_deadline: Option<Instant>,
    /// The timer for `head_deadline`, kept for the connection's life (made only if a head ever
    /// has to be waited for).
    head_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How far the request at the front of the buffer has come.
enum Parsed {
    Done(Next),
    /// Part of its head is here.
    Head,
    /// Its head is whole, part of its body is here.
    Body,
}

/// What the headers of a request say about how to serve it.
#[derive(Default)]
struct Seen {
    content_length: Option<u64>,
    bad_length: bool,
    needs_hyper: bool,
    close: bool,
}

impl Seen {
    fn add(&mut self, name: &HeaderName, value: &[u8]) {
        if name == CONTENT_LENGTH {
            match (parse_decimal(value.trim_ascii()), self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => self.bad_length = true,
            }
        } else if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            self.needs_hyper = true;
        } else if name == CONNECTION {
            self.close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
}

impl Front {
    async fn next_request(&mut self) -> Next {
        loop {
            if !self.rbuf.is_empty() {
                match self.parse() {
                    Ok(Parsed::Done(next)) => {
                        self.head_deadline = None;
                        return next;
                    }
                    Ok(Parsed::Head) => {
                        if self.head_deadline.is_none() && !self.head_timeout.is_zero() {
                            self.head_deadline = Some(Instant::now() + self.head_timeout);
                        }
                    }
                    // The wait for the body is the idle timer's.
                    Ok(Parsed::Body) => self.head_deadline = None,
                    Err(status) => return Next::Reject(status),
                }
            }
            let read = match self.head_deadline {
                None => self.io.read_buf(&mut self.rbuf).await,
                Some(deadline) => {
                    let timer = match &mut self.head_timer {
                        Some(timer) => {
                            if timer.deadline() != deadline {
                                timer.as_mut().reset(deadline);
                            }
                            timer
                        }
                        None => self
                            .head_timer
                            .insert(Box::pin(tokio::time::sleep_until(deadline))),
                    };
                    tokio::select! {
                        biased;
                        read = self.io.read_buf(&mut self.rbuf) => read,
                        // Too slow with its head: closed without an answer, as hyper does.
                        () = timer.as_mut() => return Next::Closed,
                    }
                }
            };
            match read {
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            }
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(8 * 1024);
            }
        }
    }

    /// A complete request off the front of the buffer, or how far it has come.
    fn parse(&mut self) -> Result<Parsed, StatusCode> {
        // HTTP/2 with prior knowledge starts with a preface httparse does not take.
        if self.rbuf.starts_with(b"PRI ") {
            return Ok(Parsed::Done(Next::Handoff));
        }
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        let mut heap: Vec<MaybeUninit<httparse::Header<'_>>>;
        let slots = if self.max_headers <= STACK_HEADERS {
            &mut stack[..self.max_headers]
        } else {
            heap = (0..self.max_headers)
                .map(|_| MaybeUninit::uninit())
                .collect();
            &mut heap[..]
        };
        let mut parsed = httparse::Request::new(&mut []);
        let status = httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut parsed,
            &self.rbuf,
            slots,
        );
        // Past the limit as hyper counts it: a whole head longer than its read buffer, or a
        // partial one that fills it.
        let head_len = match status {
            Ok(httparse::Status::Complete(n)) if n > self.max_head => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.rbuf.len() >= self.max_head => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Ok(httparse::Status::Partial) => return Ok(Parsed::Head),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Err(httparse::Error::Version) => return Ok(Parsed::Done(Next::Handoff)),
            Err(_) => return Err(StatusCode::BAD_REQUEST),
        };
        if parsed.version != Some(1) {
            return Ok(Parsed::Done(Next::Handoff));
        }
        let method = parsed
            .method
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .ok_or(StatusCode::BAD_REQUEST)?;
        let base = self.rbuf.as_ptr() as usize;
        let path = parsed.path.ok_or(StatusCode::BAD_REQUEST)?;
        if path.len() > MAX_URI {
            return Err(StatusCode::URI_TOO_LONG);
        }
        let path_start = path.as_ptr() as usize - base;
        let path_range = path_start..path_start + path.len();
        let mut seen = Seen::default();
        self.scratch.clear();
        for h in parsed.headers.iter() {
            let name =
                HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| StatusCode::BAD_REQUEST)?;
            seen.add(&name, h.value);
            let start = h.value.as_ptr() as usize - base;
            self.scratch.push((name, start, start + h.value.len()));
        }
        // Before the length checks: with `Transfer-Encoding` hyper alone decides the framing,
        // and what any `Content-Length` lines beside it mean.
        if seen.needs_hyper {
            return Ok(Parsed::Done(Next::Handoff));
        }
        if seen.bad_length {
            return Err(StatusCode::BAD_REQUEST);
        }
        let declared = seen.content_length.unwrap_or(0);
        if self.max_body > 0 && declared > self.max_body {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let body_len = usize::try_from(declared).unwrap_or(usize::MAX);
        if body_len > MAX_BUFFERED_BODY {
            return Ok(Parsed::Done(Next::Handoff));
        }
        if self.rbuf.len() - head_len < body_len {
            // The body is still on its way: wait for it (the head is parsed again then).
            self.rbuf.reserve(head_len + body_len - self.rbuf.len());
            return Ok(Parsed::Body);
        }

        let raw = self.rbuf.split_to(head_len).freeze();
        let uri =
            Uri::from_maybe_shared(raw.slice(path_range)).map_err(|_| StatusCode::BAD_REQUEST)?;
        // Room for the request id the response may carry back.
        let mut headers = HeaderMap::with_capacity(self.scratch.len() + 1);
        for (name, start, end) in self.scratch.drain(..) {
            let value = HeaderValue::from_maybe_shared(raw.slice(start..end))
                .map_err(|_| StatusCode::BAD_REQUEST)?;
            headers.append(name, value);
        }
        let body = (body_len > 0).then(|| self.rbuf.split_to(body_len).freeze());
        let mut req = Request::new(ClientBody::Buffered(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        Ok(Parsed::Done(Next::Request(Box::new(req), !seen.close)))
    }

    /// Writes `resp`; true when the connection can carry another request afterwards.
    async fn write_response(
        &mut self,
        resp: Response<ProxyBody>,
        head_request: bool,
        keep_alive: bool,
    ) -> io::Result<bool> {
        let (parts, mut body) = resp.into_parts();
        let status = parts.status;
        let no_body = head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let buf = &mut self.wbuf;
        buf.clear();
        buf.extend_from_slice(b"HTTP/1.1 ");
        buf.extend_from_slice(status.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        buf.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            push_header(buf, name.as_str().as_bytes(), value.as_bytes());
        }
        if !parts.headers.contains_key(DATE) {
            with_date(|date| push_header(buf, b"date", date));
        }
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| parse_decimal(v.as_bytes().trim_ascii()));
        let framing = if no_body {
            Framing::None
        } else if let Some(n) = declared {
            Framing::Length(n)
        } else if let Some(n) = body.size_hint().exact() {
            push_header(buf, b"content-length", n.to_string().as_bytes());
            Framing::Length(n)
        } else {
            push_header(buf, b"transfer-encoding", b"chunked");
            Framing::Chunked
        };
        if !keep_alive {
            push_header(buf, b"connection", b"close");
        }
        buf.extend_from_slice(b"\r\n");
        if framing == Framing::None {
            drop(body);
            self.io.write_all(&self.wbuf).await?;
            return Ok(true);
        }

        let mut sent: u64 = 0;
        let mut ended = false;
        loop {
            // Frames that are ready now go out together (the head with them); then wait.
            while !ended && self.wbuf.len() < GATHER {
                let polled =
                    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx)))
                        .await;
                let Poll::Ready(frame) = polled else { break };
                ended = !push_body_frame(&mut self.wbuf, frame, framing, &mut sent)?;
            }
            if !self.wbuf.is_empty() {
                self.io.write_all(&self.wbuf).await?;
                self.wbuf.clear();
            }
            if ended {
                break;
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            ended = !push_body_frame(&mut self.wbuf, frame, framing, &mut sent)?;
        }
        // A body shorter than its announced length leaves the client waiting for the rest.
        Ok(!matches!(framing, Framing::Length(n) if n != sent))
    }

    async fn write_reject(&mut self, status: StatusCode) -> io::Result<()> {
        let head = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        );
        self.io.write_all(head.as_bytes()).await
    }

    fn into_prefixed(self, conn: Arc<ConnState>, head_timeout: Duration) -> Prefixed {
        let prefix = self.rbuf.freeze();
        // The front timed the head it hands over; the clock starts again on the next one.
        let mut head = HeadClock::new(conn, head_timeout, false);
        if prefix.starts_with(b"PRI ") {
            head.off = true;
        }
        head.sniffed = true;
        Prefixed {
            prefix,
            io: self.io,
            head,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn push_header(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Appends one response body frame; false once the body has ended. Bytes past an announced
/// length are an error, as is a failed upstream body (the connection is closed either way).
fn push_body_frame(
    buf: &mut Vec<u8>,
    frame: Option<Result<Frame<Bytes>, crate::h1::H1Error>>,
    framing: Framing,
    sent: &mut u64,
) -> io::Result<bool> {
    match frame {
        None => {
            if framing == Framing::Chunked {
                buf.extend_from_slice(b"0\r\n\r\n");
            }
            Ok(false)
        }
        Some(Err(e)) => Err(io::Error::other(e)),
        Some(Ok(frame)) => {
            let Ok(data) = frame.into_data() else {
                return Ok(true);
            };
            if data.is_empty() {
                return Ok(true);
            }
            *sent += data.len() as u64;
            match framing {
                Framing::Length(n) if *sent > n => {
                    return Err(io::Error::other(
                        "response body longer than its Content-Length",
                    ));
                }
                Framing::Chunked => {
                    buf.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    buf.extend_from_slice(&data);
                    buf.extend_from_slice(b"\r\n");
                }
                _ => buf.extend_from_slice(&data),
            }
            Ok(true)
        }
    }
}

thread_local! {
    static CACHED_DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
}

/// The current `Date` value, formatted once a second per thread.
fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    CACHED_DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs || cached.1.is_empty() {
            *cached = (secs, httpdate::fmt_http_date(now).into_bytes());
        }
        f(&cached.1);
    });
}

/// A client connection handed to hyper: what was read already comes first.
pub(crate) struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
    head: HeadClock,
}

impl Prefixed {
    /// A connection hyper serves from its start (`fast_http1` off).
    pub(crate) fn new(io: TcpStream, conn: Arc<ConnState>, head_timeout: Duration) -> Self {
        Prefixed {
            prefix: Bytes::new(),
            io,
            head: HeadClock::new(conn, head_timeout, true),
        }
    }
}

/// `head_timeout` for the HTTP/1 requests hyper reads, kept by watching the bytes it reads: a
/// head starts when bytes arrive while no request is open (a new connection's first one: at
/// the start), and has ended once a request has opened since. A head still unfinished at its
/// deadline fails hyper's read, which closes the connection without an answer. HTTP/2
/// connections are not timed (their frames flow while no stream is open). Bytes that arrive
/// while a request is open are not told apart from its body, so the rest of a head pipelined
/// behind it is left to `idle_timeout` (hyper closes an idle connection with a partial head).
struct HeadClock {
    conn: Arc<ConnState>,
    timeout: Duration,
    /// The connection's idle mark (`ConnState::idle_mark`) when the head being timed started.
    started: Option<u64>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the first bytes have been looked at for the HTTP/2 preface.
    sniffed: bool,
    off: bool,
}

impl HeadClock {
    fn new(conn: Arc<ConnState>, timeout: Duration, from_now: bool) -> Self {
        let mut clock = HeadClock {
            started: None,
            conn,
            timeout,
            timer: None,
            sniffed: false,
            off: timeout.is_zero(),
        };
        if from_now && !clock.off {
            clock.start();
        }
        clock
    }

    fn start(&mut self) {
        self.started = self.conn.idle_mark();
        if self.started.is_none() {
            return;
        }
        let deadline = Instant::now() + self.timeout;
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Whether the head being timed is still the one waited for.
    fn still_waiting(&mut self) -> bool {
        if self.started.is_some() && self.conn.idle_mark() != self.started {
            self.started = None;
        }
        self.started.is_some()
    }

    fn on_read(&mut self, bytes: &[u8]) {
        if self.off || bytes.is_empty() {
            return;
        }
        if !self.sniffed {
            self.sniffed = true;
            if bytes.starts_with(b"PRI ") {
                self.off = true;
                return;
            }
        }
        if !self.still_waiting() {
            self.start();
        }
    }

    /// On a read that must wait: whether the head's time is up.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.off || !self.still_waiting() {
            return false;
        }
        self.timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            let bytes = this.prefix.split_to(n);
            this.head.on_read(&bytes);
            buf.put_slice(&bytes);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.head.on_read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.head.poll_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete within head_timeout",
            ))),
            other => other,
        }
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
