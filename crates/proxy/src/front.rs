//! Client connections, HTTP/1.1, served without hyper for the common case: keep-alive requests
//! whose head and whole body (up to [`MAX_BUFFERED_BODY`]) are in hand. Per request that is one
//! parse with `httparse` into a header map whose values share the read buffer, the same
//! `forward::handle` as every other request, and one write for a small response.
//!
//! Everything else hands the connection, with the bytes read so far, to hyper's server for the
//! rest of its life: HTTP/2 (h2c prior knowledge), HTTP/1.0, upgrades (WebSocket), `Expect`,
//! chunked request bodies and bodies larger than the limit. Those are the cases where hyper's
//! general machinery earns its cost, and it has handled them all along.

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

use crate::body::{ClientBody, ProxyBody};
use crate::forward;
use crate::guard::ConnState;
use crate::h1::parse_decimal;
use crate::server::Shared;

/// Largest request head accepted; a larger one gets a 431.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
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
    let mut front = Front {
        io,
        rbuf: BytesMut::with_capacity(8 * 1024),
        wbuf: Vec::new(),
        scratch: Vec::new(),
    };
    loop {
        if conn.closing() {
            return Outcome::Closed;
        }
        let (req, keep_alive) = match front.next_request().await {
            Next::Request(req, keep_alive) => (req, keep_alive),
            Next::Handoff => return Outcome::Handoff(front.into_prefixed()),
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
                    Ok(Some(next)) => return next,
                    Ok(None) => {}
                    Err(status) => return Next::Reject(status),
                }
            }
            match self.io.read_buf(&mut self.rbuf).await {
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            }
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(8 * 1024);
            }
        }
    }

    /// A complete request off the front of the buffer; `None` until all of it is here.
    fn parse(&mut self) -> Result<Option<Next>, StatusCode> {
        // HTTP/2 with prior knowledge starts with a preface httparse does not take.
        if self.rbuf.starts_with(b"PRI ") {
            return Ok(Some(Next::Handoff));
        }
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut []);
        let status = httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut parsed,
            &self.rbuf,
            &mut slots,
        );
        let head_len = match status {
            Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.rbuf.len() > MAX_HEAD => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Err(httparse::Error::Version) => return Ok(Some(Next::Handoff)),
            Err(_) => return Err(StatusCode::BAD_REQUEST),
        };
        if parsed.version != Some(1) {
            return Ok(Some(Next::Handoff));
        }
        let method = parsed
            .method
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .ok_or(StatusCode::BAD_REQUEST)?;
        let base = self.rbuf.as_ptr() as usize;
        let path = parsed.path.ok_or(StatusCode::BAD_REQUEST)?;
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
        if seen.bad_length {
            return Err(StatusCode::BAD_REQUEST);
        }
        let body_len = usize::try_from(seen.content_length.unwrap_or(0)).unwrap_or(usize::MAX);
        if seen.needs_hyper || body_len > MAX_BUFFERED_BODY {
            return Ok(Some(Next::Handoff));
        }
        if self.rbuf.len() - head_len < body_len {
            // The body is still on its way: wait for it (the head is parsed again then).
            self.rbuf.reserve(head_len + body_len - self.rbuf.len());
            return Ok(None);
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
        Ok(Some(Next::Request(Box::new(req), !seen.close)))
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

    fn into_prefixed(self) -> Prefixed {
        Prefixed {
            prefix: self.rbuf.freeze(),
            io: self.io,
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
}

impl Prefixed {
    pub(crate) fn new(io: TcpStream) -> Self {
        Prefixed {
            prefix: Bytes::new(),
            io,
        }
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
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
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
