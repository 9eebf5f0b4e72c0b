//! The one response body type the service uses.
//!
//! An enum rather than a boxed trait object keeps the hot path (small JSON
//! answers) free of allocation beyond the payload itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// A response body: a complete buffer, a Server-Sent Events stream, or the
/// request body echoed back as it arrives.
pub enum Body {
    /// A complete payload, sent with a Content-Length.
    Full(Option<Bytes>),
    /// Timed SSE events, sent chunked and flushed one by one.
    Sse(SseBody),
    /// The request body streamed back frame by frame.
    Echo(Incoming),
}

impl Body {
    /// A complete body from anything that converts into bytes.
    pub fn full(data: impl Into<Bytes>) -> Self {
        Body::Full(Some(data.into()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Body::Sse(sse) => sse
                .poll_event(cx)
                .map(|event| event.map(|d| Ok(Frame::data(d)))),
            Body::Echo(incoming) => Pin::new(incoming).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(data) => data.is_none(),
            Body::Sse(sse) => sse.next >= sse.total,
            Body::Echo(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Sse(_) => SizeHint::default(),
            Body::Echo(incoming) => incoming.size_hint(),
        }
    }
}

/// `total` SSE events, the first at once and the rest `interval` apart.
///
/// Driven by a timer inside the body rather than a spawned task, so a client
/// that disconnects simply drops the stream.
pub struct SseBody {
    next: u64,
    total: u64,
    interval: Duration,
    timer: Pin<Box<Sleep>>,
    version_json: Arc<str>,
}

impl SseBody {
    /// A stream of `total` events; `version_json` is the version already
    /// encoded as a JSON string.
    pub fn new(total: u64, interval: Duration, version_json: Arc<str>) -> Self {
        SseBody {
            next: 0,
            total,
            interval,
            timer: Box::pin(tokio::time::sleep_until(Instant::now() + interval)),
            version_json,
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.next >= self.total {
            return Poll::Ready(None);
        }
        if self.next > 0 {
            ready!(self.timer.as_mut().poll(cx));
            // Schedule from the previous deadline, not from now, so events do
            // not drift when the client reads slowly.
            let deadline = self.timer.deadline() + self.interval;
            self.timer.as_mut().reset(deadline);
        }
        let event = format!(
            "data: {{\"i\":{},\"version\":{}}}\n\n",
            self.next, self.version_json
        );
        self.next += 1;
        Poll::Ready(Some(Bytes::from(event)))
    }
}
