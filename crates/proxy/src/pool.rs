//! Keep-alive HTTP/1.1 connections to one upstream.
//!
//! A connection is checked out for one exchange and comes back when its response body has been
//! read to the end (see [`crate::guard::RequestGuard`]); one that ended any other way (client
//! gone, error, upgrade) is simply dropped, which closes it. Most recently used first, so a
//! small working set stays warm and the rest ages out after [`IDLE_TIMEOUT`]. A connect failure
//! is known for what it is, which is what decides whether a retry is safe.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::h1::UpstreamConn;
use crate::upstream::UpstreamState;

/// Idle connections older than this are closed rather than reused: below the 5 s keep-alive of
/// common servers (Node.js), so the proxy lets go before the upstream does.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Idle connections kept per upstream.
const MAX_IDLE: usize = 1024;

struct Idle {
    conn: Box<UpstreamConn>,
    since: Instant,
}

#[derive(Default)]
pub(crate) struct ConnPool {
    /// Oldest at the front, most recently returned at the back.
    idle: Mutex<VecDeque<Idle>>,
}

impl ConnPool {
    fn pop(&self, now: Instant) -> Option<Box<UpstreamConn>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut entry) = idle.pop_back() {
            if now.duration_since(entry.since) >= IDLE_TIMEOUT {
                // Everything in front of it is older still.
                idle.clear();
                return None;
            }
            if entry.conn.looks_alive() {
                return Some(entry.conn);
            }
        }
        None
    }

    pub(crate) fn put(&self, conn: Box<UpstreamConn>) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|e| idle.len() >= MAX_IDLE || now.duration_since(e.since) >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: now });
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
}

/// A ready connection to `upstream`: a pooled one if any is alive (`true`), else a new one.
/// `now` is the request's start, close enough for a 4 s idle limit and one clock read fewer.
pub(crate) async fn checkout(
    upstream: &UpstreamState,
    connect_timeout: Duration,
    now: Instant,
) -> Result<(Box<UpstreamConn>, bool), ConnectError> {
    if let Some(conn) = upstream.pool().pop(now) {
        return Ok((conn, true));
    }
    // Connecting is the rare path: boxed, so the request future stays small.
    Ok((Box::pin(connect(upstream, connect_timeout)).await?, false))
}

/// A new connection to `upstream`.
pub(crate) async fn connect(
    upstream: &UpstreamState,
    connect_timeout: Duration,
) -> Result<Box<UpstreamConn>, ConnectError> {
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
    Ok(UpstreamConn::new(stream))
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
