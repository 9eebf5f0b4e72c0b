//! In-flight accounting that cannot leak: a guard per request, dropped when the response body
//! ends, the client goes away, or an upgraded tunnel closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::h1::UpstreamConn;
use crate::headers::Origin;
use crate::limit::ConnSlot;
use crate::stats::RevisionMetrics;
use crate::upstream::UpstreamState;

/// One client connection: where it comes from (for the forwarded headers), what its idle
/// timer needs, and its place under `max_connections`, held as long as anything (an upgraded
/// tunnel too) still uses the connection.
pub(crate) struct ConnState {
    pub(crate) origin: Arc<Origin>,
    _slot: Option<ConnSlot>,
    /// Requests (HTTP/2: streams) open on this connection.
    active: AtomicU32,
    /// When `active` last dropped to 0, in µs since `epoch`.
    idle_since_us: AtomicU64,
    epoch: Instant,
    /// The proxy is draining: the response in progress is the connection's last.
    closing: AtomicBool,
    /// The client came in over TLS (`X-Forwarded-Proto: https`).
    pub(crate) tls: bool,
}

impl ConnState {
    pub(crate) fn new(origin: Origin, slot: Option<ConnSlot>, epoch: Instant) -> Self {
        ConnState {
            origin: Arc::new(origin),
            _slot: slot,
            active: AtomicU32::new(0),
            idle_since_us: AtomicU64::new(micros_since(epoch)),
            epoch,
            closing: AtomicBool::new(false),
            tls: false,
        }
    }

    /// The same, for a connection that came in over TLS.
    pub(crate) fn over_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub(crate) fn close_after_response(&self) {
        self.closing.store(true, Ordering::Release);
    }

    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// While no request (HTTP/2: stream) is open, when the last one ended (µs since the
    /// epoch; the connection's start before any): a request opened and closed since a
    /// previous look changes it. `None` while requests are open.
    pub(crate) fn idle_mark(&self) -> Option<u64> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.idle_since_us.load(Ordering::Acquire))
    }

    /// When the connection will have been idle for `idle`, or `None` while requests are open.
    pub(crate) fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_micros(self.idle_since_us.load(Ordering::Acquire));
        Some(self.epoch + since + idle)
    }
}

fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(Instant::now().duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

/// Held for the life of one proxied request; releases every count it took when dropped, and
/// gives the upstream connection back to its pool if the exchange ended cleanly.
pub(crate) struct RequestGuard {
    conn: Arc<ConnState>,
    revision: Option<Arc<RevisionMetrics>>,
    upstream: Option<Arc<UpstreamState>>,
    /// An upstream connection whose exchange ended cleanly: back to its pool on drop.
    reusable_conn: Option<Box<UpstreamConn>>,
}

impl RequestGuard {
    pub(crate) fn new(conn: Arc<ConnState>) -> Self {
        conn.active.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            conn,
            revision: None,
            upstream: None,
            reusable_conn: None,
        }
    }

    /// The response has been read to its end on `conn`, which can take another request.
    pub(crate) fn release_conn(&mut self, conn: Box<UpstreamConn>) {
        self.reusable_conn = Some(conn);
    }

    pub(crate) fn conn(&self) -> &ConnState {
        &self.conn
    }

    /// Counts the request in flight on `revision`.
    pub(crate) fn set_revision(&mut self, revision: Arc<RevisionMetrics>) {
        revision.enter();
        if let Some(old) = self.revision.replace(revision) {
            old.leave();
        }
    }

    /// Counts the request outstanding on `upstream` (moving it off a previous, failed one).
    pub(crate) fn set_upstream(&mut self, upstream: Arc<UpstreamState>) {
        upstream.enter();
        if let Some(old) = self.upstream.replace(upstream) {
            old.leave();
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if let Some(u) = self.upstream.take() {
            if let Some(conn) = self.reusable_conn.take() {
                u.pool().put(conn);
            }
            u.leave();
        }
        if let Some(r) = self.revision.take() {
            r.leave();
        }
        if self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Always a new value, even on a clock that stands still (`idle_mark`).
            let last = self.conn.idle_since_us.load(Ordering::Acquire);
            let now = micros_since(self.conn.epoch).max(last + 1);
            self.conn.idle_since_us.store(now, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_deadline_follows_the_last_request() {
        let epoch = Instant::now();
        let listening = crate::headers::Listening::new(crate::headers::Scheme::Http, 80);
        let origin = Origin::new([1, 2, 3, 4].into(), &listening, false);
        let conn = Arc::new(ConnState::new(origin, None, epoch));
        let idle = Duration::from_secs(5);
        assert_eq!(conn.idle_deadline(idle), Some(epoch + idle));
        let guard = RequestGuard::new(conn.clone());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(conn.idle_deadline(idle), None);
        drop(guard);
        assert_eq!(
            conn.idle_deadline(idle),
            Some(epoch + Duration::from_secs(30) + idle)
        );
    }
}
