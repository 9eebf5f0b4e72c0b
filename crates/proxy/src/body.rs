//! The one body type the proxy sends both ways: a streamed hyper body passed through frame by
//! frame (never buffered), or a small body the proxy wrote itself. A response body carries the
//! request's guard, so in-flight counts last until the body has ended or been dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::guard::RequestGuard;

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Streamed(Incoming),
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

    pub(crate) fn streamed(body: Incoming, guard: Option<RequestGuard>) -> Self {
        ProxyBody {
            inner: Inner::Streamed(body),
            guard,
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper stops polling once `is_end_stream` says the body is complete, so a body dropped
        // in that state ended cleanly too.
        if let (Inner::Streamed(body), Some(guard)) = (&self.inner, &mut self.guard)
            && body.is_end_stream()
        {
            guard.mark_reusable();
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Empty => Poll::Ready(None),
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Streamed(body) => Pin::new(body).poll_frame(cx),
        };
        // The end of the body (or its failure) ends the request: release counts now rather
        // than when hyper gets around to dropping the body.
        match &polled {
            Poll::Ready(None) => {
                if let Some(guard) = &mut this.guard {
                    guard.mark_reusable();
                }
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
            Inner::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Streamed(body) => body.size_hint(),
        }
    }
}
