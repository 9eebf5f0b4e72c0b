//! HTTP/1.1 to upstreams, written for the proxy's one job: forward a request that hyper's
//! server has already parsed, and stream the upstream's answer back.
//!
//! hyper's client drives each connection from a task of its own and passes requests and
//! responses to it through channels; for a small exchange that hand-off cost about a third of
//! the proxy's user-space instructions per request (callgrind, see bench/proxy/README.md).
//! Here the request's own task writes the head, reads the response head and then the body
//! straight off the socket, and the connection goes back to its pool when the body ends.
//!
//! The framing follows RFC 9112 §6: no body for HEAD, 1xx, 204 and 304; chunked when it is the
//! final transfer coding; else `Content-Length` (every value must agree); else the body runs
//! until the upstream closes. A response with both `Transfer-Encoding` and `Content-Length` is
//! framed by the former and loses the latter (§6.3), and its connection is not reused. Chunk
//! extensions and trailers are read and dropped.

use std::future::Future as _;
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Frame, SizeHint};
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use hyper::http::uri::PathAndQuery;
use hyper::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::{ClientBody, ClientBodyError};
use crate::headers::{self, Added};

/// Largest response head accepted (hyper's client allows about 400 KiB; real heads are < 8 KiB).
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one response head.
const MAX_HEADERS: usize = 128;
/// First read size; doubled while reads fill it, up to [`MAX_READ`].
const MIN_READ: usize = 8 * 1024;
const MAX_READ: usize = 64 * 1024;
/// A chunk-size or trailer line longer than this is not HTTP.
const MAX_LINE: usize = 4096;
/// Request body bytes gathered behind the head before the first write.
const GATHER: usize = 64 * 1024;

/// What went wrong talking to an upstream once connected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    #[error("upstream I/O: {0}")]
    Io(#[from] io::Error),
    #[error("upstream closed the connection before responding")]
    ClosedBeforeResponse,
    #[error("upstream sent a malformed response head: {0}")]
    Head(String),
    #[error("upstream response head is larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("upstream sent a malformed chunked body")]
    Chunked,
    #[error("upstream closed the connection in the middle of the body")]
    Truncated,
    #[error("reading the client's request body: {0}")]
    RequestBody(ClientBodyError),
}

/// One keep-alive connection to an upstream.
pub(crate) struct UpstreamConn {
    io: TcpStream,
    /// Read from the socket, not consumed yet.
    rbuf: BytesMut,
    read_size: usize,
    /// The request being written; kept so its allocation is reused.
    wbuf: Vec<u8>,
    /// Header names and value offsets of the head being parsed; kept for the same reason.
    scratch: Vec<(HeaderName, usize, usize)>,
    /// The part of the request body still being written.
    pump: Option<Box<RequestPump>>,
    /// The request timeout's timer, reused from one request to the next (see `forward::send`).
    pub(crate) timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The rest of a request body, written while the response is read (full duplex).
struct RequestPump {
    body: ClientBody,
    chunked: bool,
    out: Vec<u8>,
    written: usize,
    finished: bool,
}

impl RequestPump {
    /// Ready once the whole body has been written.
    fn poll(&mut self, io: &mut TcpStream, cx: &mut Context<'_>) -> Poll<Result<(), H1Error>> {
        loop {
            while self.written < self.out.len() {
                let n = ready!(Pin::new(&mut *io).poll_write(cx, &self.out[self.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                }
                self.written += n;
            }
            if self.finished {
                return Poll::Ready(Ok(()));
            }
            self.out.clear();
            self.written = 0;
            let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
            if !push_frame(&mut self.out, frame, self.chunked)? {
                self.finished = true;
            }
        }
    }
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A response head read from an upstream.
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
    /// `Connection` named headers to drop: `headers` still holds them (and it).
    pub(crate) strip_listed: bool,
}

/// How the request body travels, decided from the client's request.
pub(crate) enum RequestBody {
    None,
    /// Forwarded as is, its length announced by `Content-Length`.
    Sized(ClientBody),
    /// Re-framed as chunked (HTTP/2 requests of unknown length).
    Chunked(ClientBody),
}

impl RequestBody {
    /// Picks the framing for `body`, with the `Content-Length` or `Transfer-Encoding` header
    /// to add when the client's request did not carry one (HTTP/2 requests).
    pub(crate) fn frame(
        body: ClientBody,
        headers: &HeaderMap,
    ) -> (RequestBody, Option<(HeaderName, HeaderValue)>) {
        if body.is_end_stream() {
            return (RequestBody::None, None);
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return (RequestBody::Sized(body), None);
        }
        if let Some(n) = body.size_hint().exact() {
            return (
                RequestBody::Sized(body),
                Some((CONTENT_LENGTH, HeaderValue::from(n))),
            );
        }
        (
            RequestBody::Chunked(body),
            Some((TRANSFER_ENCODING, HeaderValue::from_static("chunked"))),
        )
    }
}

/// Where a failed exchange stopped, which decides whether it may be sent again.
#[derive(Debug)]
pub(crate) struct ExchangeError {
    pub(crate) error: H1Error,
    /// The request head was not fully written: the upstream cannot have acted on it.
    pub(crate) unsent: bool,
    /// No byte of a response arrived.
    pub(crate) no_response: bool,
}

impl UpstreamConn {
    /// Boxed: a connection moves from pool to request to body and back on every request.
    pub(crate) fn new(io: TcpStream) -> Box<Self> {
        Box::new(UpstreamConn {
            io,
            rbuf: BytesMut::new(),
            read_size: MIN_READ,
            wbuf: Vec::new(),
            scratch: Vec::new(),
            pump: None,
            timer: None,
        })
    }

    /// False when the upstream has closed this idle connection (or sent something unasked).
    /// Costs no system call unless the socket has signalled readability since the last read.
    pub(crate) fn looks_alive(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Possibly a stale readiness from the last read: ask the socket itself.
            Poll::Ready(Ok(())) => matches!(
                self.io.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }

    /// Writes the request and reads the response head. 1xx answers other than 101 are skipped.
    pub(crate) async fn exchange(
        &mut self,
        method: &Method,
        target: &PathAndQuery,
        headers: &HeaderMap,
        added: &Added,
        body: RequestBody,
    ) -> Result<ResponseHead, ExchangeError> {
        let failed = |error, unsent, no_response| ExchangeError {
            error,
            unsent,
            no_response,
        };
        encode_head(&mut self.wbuf, method, target, headers, added);
        let (mut body, chunked) = match body {
            RequestBody::None => (None, false),
            RequestBody::Sized(b) => (Some(b), false),
            RequestBody::Chunked(b) => (Some(b), true),
        };
        // Body frames that are already here ride in the same write as the head.
        let mut body_done = body.is_none();
        if let Some(b) = body.as_mut() {
            while self.wbuf.len() < GATHER {
                let polled =
                    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *b).poll_frame(cx))).await;
                let Poll::Ready(frame) = polled else { break };
                if !push_frame(&mut self.wbuf, frame, chunked).map_err(|e| failed(e, true, true))? {
                    body_done = true;
                    break;
                }
            }
        }
        if let Err(e) = self.io.write_all(&self.wbuf).await {
            return Err(failed(e.into(), true, true));
        }
        if !body_done && let Some(b) = body {
            // The rest goes out while the response is read: the upstream may answer (and
            // stream) before the request body has ended.
            self.pump = Some(Box::new(RequestPump {
                body: b,
                chunked,
                out: Vec::new(),
                written: 0,
                finished: false,
            }));
        }
        loop {
            let head = self.read_head(method == Method::HEAD).await.map_err(|e| {
                let nothing = match &e {
                    H1Error::ClosedBeforeResponse => true,
                    H1Error::Io(_) => self.rbuf.is_empty(),
                    _ => false,
                };
                failed(e, false, nothing)
            })?;
            if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                continue;
            }
            return Ok(head);
        }
    }

    async fn read_head(&mut self, head_request: bool) -> Result<ResponseHead, H1Error> {
        std::future::poll_fn(|cx| self.poll_head(cx, head_request)).await
    }

    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        head_request: bool,
    ) -> Poll<Result<ResponseHead, H1Error>> {
        self.poll_pump(cx)?;
        loop {
            if !self.rbuf.is_empty()
                && let Some(head) = self.parse_head(head_request)?
            {
                return Poll::Ready(Ok(head));
            }
            if self.rbuf.len() > MAX_HEAD {
                return Poll::Ready(Err(H1Error::HeadTooLarge));
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(if self.rbuf.is_empty() {
                    H1Error::ClosedBeforeResponse
                } else {
                    H1Error::Truncated
                }));
            }
        }
    }

    /// Moves the rest of the request body along, if any is left to send.
    fn poll_pump(&mut self, cx: &mut Context<'_>) -> Result<(), H1Error> {
        if let Some(pump) = self.pump.as_mut() {
            match pump.poll(&mut self.io, cx) {
                Poll::Ready(Ok(())) => self.pump = None,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// Parses a complete head off the front of the read buffer; `None` if it is not all here.
    fn parse_head(&mut self, head_request: bool) -> Result<Option<ResponseHead>, H1Error> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, &self.rbuf, &mut slots)
            .map_err(|e| H1Error::Head(e.to_string()))?;
        let httparse::Status::Complete(len) = parsed else {
            return Ok(None);
        };
        let status = resp
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| H1Error::Head("invalid status code".into()))?;
        let http11 = resp.version == Some(1);
        // Values are sliced out of the head once it is frozen: offsets first, no copies.
        let base = self.rbuf.as_ptr() as usize;
        self.scratch.clear();
        for h in resp.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| H1Error::Head(format!("invalid header name {:?}", h.name)))?;
            let start = h.value.as_ptr() as usize - base;
            self.scratch.push((name, start, start + h.value.len()));
        }
        let raw = self.rbuf.split_to(len).freeze();
        let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
        let mut announced = Announced::default();
        // Room for the headers the proxy adds, so the map never grows on the way out.
        let mut headers = HeaderMap::with_capacity(self.scratch.len() + 2);
        for (name, start, end) in self.scratch.drain(..) {
            announced.add(&name, &raw[start..end])?;
            // Hop-by-hop headers stay behind here, except what an upgrade or a `Connection`
            // that names other headers still needs (see `ResponseHead::strip_listed`).
            let keep = !headers::is_hop_by_hop(&name)
                || (name == CONNECTION && (upgrade || announced.names_headers))
                || (upgrade && name == hyper::header::UPGRADE);
            if !keep {
                continue;
            }
            let value = HeaderValue::from_maybe_shared(raw.slice(start..end))
                .map_err(|_| H1Error::Head(format!("invalid value for header {name}")))?;
            headers.append(name, value);
        }
        // Both framings at once (RFC 9112 §6.3): the transfer coding wins and the length, stale
        // or smuggled, must not reach the client; nor is such a connection trusted again.
        let both = announced.chunked_last.is_some() && announced.length.is_some();
        if both {
            headers.remove(CONTENT_LENGTH);
        }
        let framing = framing(status, &announced, head_request);
        let keep_alive = http11 && framing != Framing::UntilClose && !announced.close && !both;
        Ok(Some(ResponseHead {
            status,
            headers,
            framing,
            keep_alive,
            strip_listed: announced.names_headers,
        }))
    }

    /// Reads once into the spare capacity of the read buffer (no zeroing); 0 at end of stream.
    /// tokio's `poll_read` marks the socket drained after a short read, so the next read waits
    /// for readiness instead of costing a system call that would block.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.rbuf.capacity() - self.rbuf.len() < self.read_size / 2 {
            self.rbuf.reserve(self.read_size);
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let read = self.io.read_buf(&mut self.rbuf);
        let n = ready!(pin!(read).poll(cx))?;
        if n == spare && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }

    /// Up to `left` body bytes, reading if none are buffered; the upstream closing first is
    /// a truncated body.
    fn poll_take(&mut self, cx: &mut Context<'_>, left: u64) -> Poll<Result<Bytes, H1Error>> {
        if self.rbuf.is_empty() && ready!(self.poll_fill(cx))? == 0 {
            return Poll::Ready(Err(H1Error::Truncated));
        }
        let take = self
            .rbuf
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        Poll::Ready(Ok(self.rbuf.split_to(take).freeze()))
    }

    /// Gives up the raw socket and whatever was read past the head (an upgraded protocol).
    pub(crate) fn into_parts(self) -> (TcpStream, Bytes) {
        (self.io, self.rbuf.freeze())
    }
}

/// The request line, the client's headers that go on as they came, then the proxy's own.
fn encode_head(
    buf: &mut Vec<u8>,
    method: &Method,
    target: &PathAndQuery,
    headers: &HeaderMap,
    added: &Added,
) {
    buf.clear();
    buf.extend_from_slice(method.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(target.as_str().as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers.iter().filter(|(name, _)| added.passes(name)) {
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    added.write(buf, headers);
    buf.extend_from_slice(b"\r\n");
}

/// Appends one request body frame (chunk-framed if asked); false once the body has ended.
fn push_frame(
    buf: &mut Vec<u8>,
    frame: Option<Result<Frame<Bytes>, ClientBodyError>>,
    chunked: bool,
) -> Result<bool, H1Error> {
    match frame {
        None => {
            if chunked {
                buf.extend_from_slice(b"0\r\n\r\n");
            }
            Ok(false)
        }
        Some(Err(e)) => Err(H1Error::RequestBody(e)),
        Some(Ok(frame)) => {
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                if chunked {
                    buf.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    buf.extend_from_slice(&data);
                    buf.extend_from_slice(b"\r\n");
                } else {
                    buf.extend_from_slice(&data);
                }
            }
            Ok(true)
        }
    }
}

/// What a response head says about its body and connection, gathered header by header.
#[derive(Default)]
struct Announced {
    /// Whether the final transfer coding is chunked, if `Transfer-Encoding` was sent.
    chunked_last: Option<bool>,
    length: Option<u64>,
    close: bool,
    /// `Connection` names headers of its own, to be removed with it.
    names_headers: bool,
}

impl Announced {
    fn add(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), H1Error> {
        let tokens = || value.split(|&b| b == b',').map(<[u8]>::trim_ascii);
        if name == TRANSFER_ENCODING {
            if let Some(last) = tokens().rfind(|t| !t.is_empty()) {
                self.chunked_last = Some(last.eq_ignore_ascii_case(b"chunked"));
            } else {
                self.chunked_last.get_or_insert(false);
            }
        } else if name == CONTENT_LENGTH {
            for part in tokens() {
                let n = parse_decimal(part)
                    .ok_or_else(|| H1Error::Head("invalid Content-Length".into()))?;
                if self.length.is_some_and(|l| l != n) {
                    return Err(H1Error::Head("conflicting Content-Length values".into()));
                }
                self.length = Some(n);
            }
        } else if name == CONNECTION {
            for t in tokens().filter(|t| !t.is_empty()) {
                if t.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if !t.eq_ignore_ascii_case(b"keep-alive")
                    && !t.eq_ignore_ascii_case(b"upgrade")
                {
                    self.names_headers = true;
                }
            }
        }
        Ok(())
    }
}

fn framing(status: StatusCode, announced: &Announced, head_request: bool) -> Framing {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Framing::Empty;
    }
    match (announced.chunked_last, announced.length) {
        (Some(true), _) => Framing::Chunked,
        (Some(false), _) | (None, None) => Framing::UntilClose,
        (None, Some(0)) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
    }
}

/// A `Content-Length` number: ASCII digits only (no sign, no spaces).
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Where a chunked body's reader is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// A response body read straight off its upstream connection.
pub(crate) struct UpstreamBody {
    conn: Option<Box<UpstreamConn>>,
    state: State,
    keep_alive: bool,
}

impl UpstreamBody {
    /// The body that follows `head` on `conn`.
    pub(crate) fn new(conn: Box<UpstreamConn>, head: &ResponseHead) -> Self {
        let state = match head.framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        UpstreamBody {
            conn: Some(conn),
            state,
            keep_alive: head.keep_alive,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// The connection, once the body has been read to its end and the upstream keeps it open
    /// with nothing unread behind it.
    pub(crate) fn take_reusable(&mut self) -> Option<Box<UpstreamConn>> {
        if self.state != State::Done || !self.keep_alive {
            return None;
        }
        self.conn
            .take()
            .filter(|c| c.rbuf.is_empty() && c.pump.is_none())
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Err(e) = conn.poll_pump(cx) {
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) => {
                    let data = ready!(conn.poll_take(cx, left))?;
                    let left = left - data.len() as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose => {
                    if conn.rbuf.is_empty() && ready!(conn.poll_fill(cx))? == 0 {
                        self.state = State::Done;
                        return Poll::Ready(None);
                    }
                    let all = conn.rbuf.len();
                    return Poll::Ready(Some(Ok(Frame::data(conn.rbuf.split_to(all).freeze()))));
                }
                State::Chunked(chunk) => match chunk {
                    Chunk::Size | Chunk::Trailers => {
                        let Some(end) = conn.rbuf.windows(2).position(|w| w == b"\r\n") else {
                            if conn.rbuf.len() > MAX_LINE {
                                return Poll::Ready(Some(Err(H1Error::Chunked)));
                            }
                            if ready!(conn.poll_fill(cx))? == 0 {
                                return Poll::Ready(Some(Err(H1Error::Truncated)));
                            }
                            continue;
                        };
                        let line = conn.rbuf.split_to(end + 2);
                        let line = &line[..end];
                        self.state = if chunk == Chunk::Trailers {
                            if line.is_empty() {
                                State::Done
                            } else {
                                State::Chunked(Chunk::Trailers)
                            }
                        } else {
                            match chunk_size(line).ok_or(H1Error::Chunked)? {
                                0 => State::Chunked(Chunk::Trailers),
                                n => State::Chunked(Chunk::Data(n)),
                            }
                        };
                    }
                    Chunk::Data(left) => {
                        let data = ready!(conn.poll_take(cx, left))?;
                        let left = left - data.len() as u64;
                        self.state = State::Chunked(if left == 0 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left)
                        });
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Chunk::DataEnd => {
                        if conn.rbuf.len() < 2 {
                            if ready!(conn.poll_fill(cx))? == 0 {
                                return Poll::Ready(Some(Err(H1Error::Truncated)));
                            }
                            continue;
                        }
                        if &conn.rbuf[..2] != b"\r\n" {
                            return Poll::Ready(Some(Err(H1Error::Chunked)));
                        }
                        let _ = conn.rbuf.split_to(2);
                        self.state = State::Chunked(Chunk::Size);
                    }
                },
            }
        }
    }
}

/// The size on a chunk-size line, extensions ignored.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .map(<[u8]>::trim_ascii)
        .filter(|d| !d.is_empty() && d.len() <= 15)?;
    digits.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n * 16 + u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::tests::map;

    fn framing_of(
        status: StatusCode,
        pairs: &[(&'static str, &'static str)],
        head: bool,
    ) -> Result<Framing, H1Error> {
        let mut announced = Announced::default();
        for (name, value) in pairs {
            announced.add(&HeaderName::from_static(name), value.as_bytes())?;
        }
        Ok(framing(status, &announced, head))
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let ok = StatusCode::OK;
        assert_eq!(
            framing_of(ok, &[("content-length", "12")], false).unwrap(),
            Framing::Length(12)
        );
        assert_eq!(
            framing_of(ok, &[("content-length", "12")], true).unwrap(),
            Framing::Empty
        );
        assert_eq!(
            framing_of(StatusCode::NO_CONTENT, &[], false).unwrap(),
            Framing::Empty
        );
        assert_eq!(
            framing_of(StatusCode::NOT_MODIFIED, &[("content-length", "5")], false).unwrap(),
            Framing::Empty
        );
        assert_eq!(framing_of(ok, &[], false).unwrap(), Framing::UntilClose);
        assert_eq!(
            framing_of(ok, &[("content-length", "0")], false).unwrap(),
            Framing::Empty
        );
        // Chunked wins over Content-Length, and only as the final coding.
        assert_eq!(
            framing_of(
                ok,
                &[
                    ("transfer-encoding", "gzip, chunked"),
                    ("content-length", "3")
                ],
                false
            )
            .unwrap(),
            Framing::Chunked
        );
        assert_eq!(
            framing_of(ok, &[("transfer-encoding", "chunked, gzip")], false).unwrap(),
            Framing::UntilClose
        );
        assert_eq!(
            framing_of(
                ok,
                &[
                    ("transfer-encoding", "gzip"),
                    ("transfer-encoding", "chunked")
                ],
                false
            )
            .unwrap(),
            Framing::Chunked
        );
        // Repeated lengths must agree.
        assert_eq!(
            framing_of(ok, &[("content-length", "7, 7")], false).unwrap(),
            Framing::Length(7)
        );
        assert!(
            framing_of(
                ok,
                &[("content-length", "7"), ("content-length", "8")],
                false
            )
            .is_err()
        );
        assert!(framing_of(ok, &[("content-length", "-1")], false).is_err());
        assert!(framing_of(ok, &[("content-length", "")], false).is_err());
    }

    #[tokio::test]
    async fn hop_by_hop_headers_stay_behind_unless_an_upgrade_needs_them() {
        let mut conn = conn_with(&[b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\ntransfer-encoding: chunked\r\nx-app: 1\r\n\r\n0\r\n\r\n"]).await;
        let head = conn.read_head(false).await.unwrap();
        assert_eq!(head.headers.len(), 1, "{:?}", head.headers);
        assert!(!head.strip_listed);
        let mut conn = conn_with(&[
            b"HTTP/1.1 200 OK\r\nconnection: x-secret\r\nx-secret: 1\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let head = conn.read_head(false).await.unwrap();
        assert!(
            head.strip_listed,
            "a Connection naming headers is kept for strip_hop_by_hop"
        );
        assert!(head.headers.contains_key("connection"));
        let mut conn = conn_with(&[b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"]).await;
        let head = conn.read_head(false).await.unwrap();
        assert_eq!(head.headers["upgrade"], "websocket");
        assert_eq!(head.headers["connection"], "upgrade");
    }

    #[test]
    fn chunk_sizes_are_hex_with_extensions_ignored() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"A;name=value"), Some(10));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"xyz"), None);
        assert_eq!(chunk_size(b"ffffffffffffffffff"), None);
    }

    #[test]
    fn request_heads_carry_every_header() {
        let mut buf = Vec::new();
        let target = PathAndQuery::from_static("/v1/x?y=1");
        let client = map(&[
            ("host", "a"),
            ("x-b", "1"),
            ("connection", "keep-alive"),
            ("x-forwarded-for", "9.9.9.9"),
            ("x-b", "2"),
        ]);
        let listening = headers::Listening::new(headers::Scheme::Http, 80);
        let origin =
            std::sync::Arc::new(headers::Origin::new([1, 2, 3, 4].into(), &listening, true));
        let added = Added::forwarded(&client, &origin, None);
        encode_head(&mut buf, &Method::POST, &target, &client, &added);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "POST /v1/x?y=1 HTTP/1.1\r\nhost: a\r\nx-b: 1\r\nx-b: 2\r\n\
             x-forwarded-for: 9.9.9.9, 1.2.3.4\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: a\r\nx-forwarded-port: 80\r\n\
             forwarded: for=1.2.3.4;host=\"a\";proto=http\r\n\r\n"
        );
    }

    #[test]
    fn request_body_frames_are_chunk_encoded_when_asked() {
        let encode = |data: &'static [u8], chunked: bool| {
            let mut buf = Vec::new();
            let frame = Some(Ok(Frame::data(Bytes::from_static(data))));
            assert!(push_frame(&mut buf, frame, chunked).unwrap());
            assert!(!push_frame(&mut buf, None, chunked).unwrap());
            buf
        };
        assert_eq!(
            encode(b"hello world!", true),
            b"c\r\nhello world!\r\n0\r\n\r\n"
        );
        assert_eq!(encode(b"raw", false), b"raw");
    }

    /// A real socket pair: `server` writes what the test scripts, the body reader reads it.
    async fn conn_with(script: &'static [&'static [u8]]) -> Box<UpstreamConn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for part in script {
                s.write_all(part).await.unwrap();
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        UpstreamConn::new(TcpStream::connect(addr).await.unwrap())
    }

    async fn read_all(
        conn: Box<UpstreamConn>,
        head_request: bool,
    ) -> (ResponseHead, Vec<u8>, Option<Box<UpstreamConn>>) {
        let mut conn = conn;
        let head = conn.read_head(head_request).await.unwrap();
        let mut body = UpstreamBody::new(conn, &head);
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| body.poll_frame(cx)).await {
            out.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        let reusable = body.take_reusable();
        (head, out, reusable)
    }

    #[tokio::test]
    async fn chunked_bodies_split_anywhere_are_reassembled() {
        let conn = conn_with(&[
            b"HTTP/1.1 200 OK\r\ntransfer-",
            b"encoding: chunked\r\nx-a: 1\r\n\r\n5\r",
            b"\nhello\r\n6;ext=1\r\n wor",
            b"ld\r\n0\r\nx-trailer: t\r\n\r\n",
        ])
        .await;
        let (head, body, reusable) = read_all(conn, false).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers["x-a"], "1");
        assert_eq!(body, b"hello world");
        assert!(
            reusable.is_some(),
            "a chunked body read to its end leaves the connection reusable"
        );
    }

    #[tokio::test]
    async fn length_bodies_stop_at_their_length_and_close_keeps_nothing() {
        let conn = conn_with(&[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel", b"lo"]).await;
        let (_, body, reusable) = read_all(conn, false).await;
        assert_eq!(body, b"hello");
        assert!(reusable.is_some());

        let conn =
            conn_with(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"])
                .await;
        let (_, body, reusable) = read_all(conn, false).await;
        assert_eq!(body, b"ok");
        assert!(reusable.is_none(), "Connection: close is honoured");

        let conn = conn_with(&[b"HTTP/1.0 200 OK\r\n\r\nuntil ", b"close"]).await;
        let (_, body, reusable) = read_all(conn, false).await;
        assert_eq!(body, b"until close");
        assert!(reusable.is_none());
    }

    #[tokio::test]
    async fn a_response_with_both_framings_loses_its_length() {
        let conn = conn_with(&[
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n\
              b\r\nhello world\r\n0\r\n\r\n",
        ])
        .await;
        let (head, body, reusable) = read_all(conn, false).await;
        assert!(
            !head.headers.contains_key("content-length"),
            "{:?}",
            head.headers
        );
        assert_eq!(body, b"hello world");
        assert!(reusable.is_none(), "an ambiguous connection is not reused");
    }

    #[tokio::test]
    async fn a_head_answer_has_no_body_whatever_it_announces() {
        let conn = conn_with(&[b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"]).await;
        let (head, body, reusable) = read_all(conn, true).await;
        assert_eq!(head.headers["content-length"], "100");
        assert!(body.is_empty());
        assert!(reusable.is_some());
    }

    #[tokio::test]
    async fn truncated_bodies_and_heads_are_errors() {
        let mut conn = conn_with(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]).await;
        let head = conn.read_head(false).await.unwrap();
        let mut body = UpstreamBody::new(conn, &head);
        let first = std::future::poll_fn(|cx| body.poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), "short");
        let second = std::future::poll_fn(|cx| body.poll_frame(cx))
            .await
            .unwrap();
        assert!(matches!(second, Err(H1Error::Truncated)), "{second:?}");

        let mut conn = conn_with(&[b"HTTP/1.1 200 OK\r\ncontent-le"]).await;
        assert!(matches!(
            conn.read_head(false).await,
            Err(H1Error::Truncated)
        ));
        let mut conn = conn_with(&[]).await;
        assert!(matches!(
            conn.read_head(false).await,
            Err(H1Error::ClosedBeforeResponse)
        ));
        let mut conn = conn_with(&[b"NOT HTTP\r\n\r\n"]).await;
        assert!(matches!(conn.read_head(false).await, Err(H1Error::Head(_))));
    }

    #[tokio::test]
    async fn an_idle_connection_the_upstream_closed_is_not_reused() {
        let mut conn = conn_with(&[]).await;
        // The scripted server closes at once; wait until the socket says so.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while conn.looks_alive() {
            assert!(tokio::time::Instant::now() < deadline, "close never seen");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
