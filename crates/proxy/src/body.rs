//! The body of every response the proxy gives: an upstream's body passed through frame by frame
//! (never buffered), a static site's file streamed off the disk, or a small body the proxy
//! wrote itself. It carries the request's guard, so in-flight counts last until the body has
//! ended or been dropped, and a connection read to the end of its body goes back to its pool.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::guard::RequestGuard;
use crate::h1::{H1Error, UpstreamBody};
use crate::static_files::FileStream;

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
    File(FileStream),
}

pub(crate) struct ProxyBody {
    inner: Inner,
    guard: Option<RequestGuard>,
}

impl ProxyBody {
    pub(crate) fn empty() -> Self {
        ProxyBody {
            inner: Inner::Empty,
            guard: None,
        }
    }

    pub(crate) fn full(bytes: impl Into<Bytes>, guard: Option<RequestGuard>) -> Self {
        ProxyBody {
            inner: Inner::Full(Some(bytes.into())),
            guard,
        }
    }

    pub(crate) fn upstream(body: UpstreamBody, guard: RequestGuard) -> Self {
        ProxyBody {
            inner: Inner::Upstream(body),
            guard: Some(guard),
        }
    }

    pub(crate) fn file(file: FileStream, guard: RequestGuard) -> Self {
        ProxyBody {
            inner: Inner::File(file),
            guard: Some(guard),
        }
    }

    /// Hands a connection whose body has ended back to the guard, for its pool.
    fn release(&mut self) {
        if let (Inner::Upstream(body), Some(guard)) = (&mut self.inner, &mut self.guard)
            && let Some(conn) = body.take_reusable()
        {
            guard.release_conn(conn);
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper stops polling once `is_end_stream` says the body is complete, so a body dropped
        // in that state ended cleanly too.
        self.release();
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Empty => Poll::Ready(None),
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(body) => body.poll_frame(cx),
            Inner::File(file) => file.poll_frame(cx),
        };
        // The end of the body (or its failure) ends the request: release counts now rather
        // than when hyper gets around to dropping the body.
        match &polled {
            Poll::Ready(None) => {
                this.release();
                this.guard = None;
            }
            Poll::Ready(Some(Err(_))) => this.guard = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
            Inner::File(file) => file.left() == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Upstream(body) => body.size_hint(),
            Inner::File(file) => SizeHint::with_exact(file.left()),
        }
    }
}

/// Why a client's request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientBodyError {
    /// Malformed (a bad chunk), or the client went away in the middle of it.
    #[error("{0}")]
    Read(hyper::Error),
    /// Longer than `ProxyConfig::max_body_bytes`.
    #[error("request body is larger than {0} bytes")]
    TooLarge(u64),
}

/// A client's request body: hyper's, or one read in full with its head (by the HTTP/1.1
/// front, or [`read_ahead`]).
pub(crate) enum ClientBody {
    Hyper(Incoming),
    /// hyper's body of unknown length (chunked) after [`read_ahead`]. Boxed: rare, and every
    /// request moves a `ClientBody` around.
    Streamed(Box<Streamed>),
    Buffered(Option<Bytes>),
}

/// What was read ahead of a body first, then the rest as it streams, counted against `max`
/// (0: no limit) and cut off with an error past it.
pub(crate) struct Streamed {
    ahead: Option<Bytes>,
    body: Incoming,
    max: u64,
    left: u64,
}

/// Most of a chunked body [`read_ahead`] holds back.
const AHEAD_BYTES: usize = 64 * 1024;
/// Most frames it waits for (a client may send tiny chunks).
const AHEAD_FRAMES: usize = 64;

/// Reads ahead what is already here of a request body of unknown length (a chunked upload),
/// up to [`AHEAD_BYTES`], before the request goes upstream: a small body read to its end is
/// forwarded with a `Content-Length`, and a malformed one, or one over `max` (0: no limit),
/// is refused before the upstream sees any of it (400 or 413; later, once the upstream may
/// have answered, the exchange can only be cut off). It stops at the first moment no more of
/// the body is ready, after letting hyper decode what it has buffered, so a client that waits
/// for the answer to part of its body (bidirectional streaming) is not held up.
pub(crate) async fn read_ahead(
    mut body: Incoming,
    max: u64,
) -> Result<ClientBody, ClientBodyError> {
    let mut parts: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    let mut yielded = false;
    let mut frames = 0;
    loop {
        let polled =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        match polled {
            Poll::Pending if yielded => break,
            Poll::Pending => {
                // hyper's connection decodes the next frame when it next runs.
                yielded = true;
                tokio::task::yield_now().await;
            }
            Poll::Ready(None) => return Ok(ClientBody::Buffered(Some(concat(parts)))),
            Poll::Ready(Some(Err(e))) => return Err(ClientBodyError::Read(e)),
            Poll::Ready(Some(Ok(frame))) => {
                yielded = false;
                frames += 1;
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    total += data.len() as u64;
                    if max > 0 && total > max {
                        return Err(ClientBodyError::TooLarge(max));
                    }
                    parts.push(data);
                }
                if total >= AHEAD_BYTES as u64 || frames >= AHEAD_FRAMES {
                    break;
                }
            }
        }
    }
    Ok(ClientBody::Streamed(Box::new(Streamed {
        ahead: (!parts.is_empty()).then(|| concat(parts)),
        body,
        max,
        left: max.saturating_sub(total),
    })))
}

fn concat(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut all = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
    for part in parts {
        all.extend_from_slice(&part);
    }
    Bytes::from(all)
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match self.get_mut() {
            ClientBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(ClientBodyError::Read),
            ClientBody::Streamed(streamed) => {
                let Streamed {
                    ahead,
                    body,
                    max,
                    left,
                } = &mut **streamed;
                if let Some(bytes) = ahead.take() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                let polled = Pin::new(body).poll_frame(cx).map_err(ClientBodyError::Read);
                if *max > 0
                    && let Poll::Ready(Some(Ok(frame))) = &polled
                    && let Some(data) = frame.data_ref()
                {
                    let n = data.len() as u64;
                    if n > *left {
                        return Poll::Ready(Some(Err(ClientBodyError::TooLarge(*max))));
                    }
                    *left -= n;
                }
                polled
            }
            ClientBody::Buffered(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(body) => body.is_end_stream(),
            ClientBody::Streamed(s) => s.ahead.is_none() && s.body.is_end_stream(),
            ClientBody::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(body) => body.size_hint(),
            // Of unknown length, so it goes upstream chunked.
            ClientBody::Streamed(_) => SizeHint::default(),
            ClientBody::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
