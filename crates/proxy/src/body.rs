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

/// A client's request body: hyper's, or one the HTTP/1.1 front read in full with its head.
pub(crate) enum ClientBody {
    Hyper(Incoming),
    Buffered(Option<Bytes>),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Hyper(body) => Pin::new(body).poll_frame(cx),
            ClientBody::Buffered(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(body) => body.is_end_stream(),
            ClientBody::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(body) => body.size_hint(),
            ClientBody::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
