//! Keep-alive HTTP/1.1 connections to one upstream.
//!
//! A connection is checked out for one exchange and comes back when its response body has been
//! read to the end (see [`crate::guard::RequestGuard`]); one that ended any other way (client
//! gone, error, upgrade) is simply dropped, which closes it. Most recently used first, so a
//! small working set stays warm and the rest ages out after [`IDLE_TIMEOUT`].
//!
//! This replaces hyper-util's pooled client on the request path: no per-request boxing, pool-key
//! hashing or spawned "return to pool" task, and a connect failure is known for what it is,
//! which is what decides whether a retry is safe.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use crate::body::ProxyBody;
use crate::upstream::UpstreamState;

/// Idle connections older than this are closed rather than reused: below the 5 s keep-alive of
/// common servers (Node.js), so the proxy lets go before the upstream does.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Idle connections kept per upstream.
const MAX_IDLE: usize = 1024;

pub(crate) type Sender = SendRequest<ProxyBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

#[derive(Default)]
pub(crate) struct ConnPool {
    /// Oldest at the front, most recently returned at the back.
    idle: Mutex<VecDeque<Idle>>,
}

impl ConnPool {
    fn pop(&self, now: Instant) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(entry) = idle.pop_back() {
            if now.duration_since(entry.since) >= IDLE_TIMEOUT {
                // Everything in front of it is older still.
                idle.clear();
                return None;
            }
            if !entry.sender.is_closed() {
                return Some(entry.sender);
            }
        }
        None
    }

    pub(crate) fn put(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|e| idle.len() >= MAX_IDLE || now.duration_since(e.since) >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        idle.push_back(Idle { sender, since: now });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(std::io::Error),
    #[error("HTTP/1.1 handshake failed: {0}")]
    Handshake(hyper::Error),
}

/// A ready connection to `upstream`: a pooled one if any is alive (`true`), else a new one.
/// `now` is the request's start, close enough for a 4 s idle limit and one clock read fewer.
pub(crate) async fn checkout(
    upstream: &UpstreamState,
    connect_timeout: Duration,
    now: Instant,
) -> Result<(Sender, bool), ConnectError> {
    while let Some(mut sender) = upstream.pool().pop(now) {
        // Returned right after its body ended, a connection may need a moment to be ready.
        if sender.ready().await.is_ok() {
            return Ok((sender, true));
        }
    }
    // Connecting is the rare path: boxed, so the request future stays small.
    Ok((Box::pin(connect(upstream, connect_timeout)).await?, false))
}

/// A new connection to `upstream`, its driver spawned on the current runtime.
pub(crate) async fn connect(
    upstream: &UpstreamState,
    connect_timeout: Duration,
) -> Result<Sender, ConnectError> {
    let connecting = TcpStream::connect(upstream.addr);
    let stream = if connect_timeout.is_zero() {
        connecting.await
    } else {
        tokio::time::timeout(connect_timeout, connecting)
            .await
            .map_err(|_| ConnectError::Timeout)?
    }
    .map_err(ConnectError::Io)?;
    stream.set_nodelay(true).map_err(ConnectError::Io)?;
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    let addr = upstream.addr;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            debug!(upstream = %addr, error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::Breaker;
    use tokio::net::TcpListener;

    async fn upstream_pair() -> (UpstreamState, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (
            UpstreamState::new(addr, Breaker::new(1, Duration::from_secs(1)), 0),
            listener,
        )
    }

    #[tokio::test]
    async fn reuses_returned_connections_and_drops_old_ones() {
        let (up, listener) = upstream_pair().await;
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..2 {
                held.push(listener.accept().await.unwrap().0);
            }
            held
        });
        let (a, reused) = checkout(&up, Duration::from_secs(1), Instant::now())
            .await
            .unwrap();
        assert!(!reused);
        up.pool().put(a);
        assert_eq!(up.pool().len(), 1);
        let (b, reused) = checkout(&up, Duration::from_secs(1), Instant::now())
            .await
            .unwrap();
        assert!(reused);
        up.pool().put(b);
        // An idle connection past the timeout is not handed out again.
        tokio::time::pause();
        tokio::time::advance(IDLE_TIMEOUT).await;
        assert!(up.pool().pop(Instant::now()).is_none());
        assert_eq!(up.pool().len(), 0);
        tokio::time::resume();
        let (_c, reused) = checkout(&up, Duration::from_secs(1), Instant::now())
            .await
            .unwrap();
        assert!(!reused);
        assert_eq!(accept.await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let (up, listener) = upstream_pair().await;
        drop(listener);
        let err = checkout(&up, Duration::from_secs(1), Instant::now())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ConnectError::Io(_)), "{err:?}");
    }
}
