//! One replica address and its live state (breaker, outstanding requests), kept across route
//! swaps so that a breaker opened under one table stays open under the next.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::HeaderValue;

use crate::breaker::Breaker;
use crate::pool::ConnPool;
use crate::worker;

pub(crate) struct UpstreamState {
    pub(crate) addr: SocketAddr,
    /// `addr` as a `Host` value, for the rare request that arrives without one (HTTP/1.0).
    pub(crate) host: HeaderValue,
    pub(crate) breaker: Breaker,
    /// One pool per worker thread, so a connection is only ever used by the thread it lives on.
    pools: Box<[ConnPool]>,
    outstanding: AtomicU64,
}

impl UpstreamState {
    pub(crate) fn new(addr: SocketAddr, breaker: Breaker, pools: usize) -> Self {
        // A socket address always formats as a valid header value; the fallback is never used.
        let host = HeaderValue::try_from(addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("upstream"));
        UpstreamState {
            addr,
            host,
            breaker,
            pools: (0..pools.max(1)).map(|_| ConnPool::default()).collect(),
            outstanding: AtomicU64::new(0),
        }
    }

    /// The calling worker's pool of idle connections to this upstream.
    pub(crate) fn pool(&self) -> &ConnPool {
        &self.pools[worker::index() % self.pools.len()]
    }

    pub(crate) fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn enter(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Address → state; touched only when a table is compiled.
pub(crate) struct UpstreamRegistry {
    breaker_failures: u32,
    breaker_cooldown: Duration,
    workers: usize,
    by_addr: Mutex<HashMap<SocketAddr, Arc<UpstreamState>>>,
}

impl UpstreamRegistry {
    pub(crate) fn new(breaker_failures: u32, breaker_cooldown: Duration, workers: usize) -> Self {
        UpstreamRegistry {
            breaker_failures,
            breaker_cooldown,
            workers,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get_or_create(&self, addr: SocketAddr) -> Arc<UpstreamState> {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(addr)
            .or_insert_with(|| {
                Arc::new(UpstreamState::new(
                    addr,
                    Breaker::new(self.breaker_failures, self.breaker_cooldown),
                    self.workers,
                ))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_shared_per_address() {
        let reg = UpstreamRegistry::new(1, Duration::from_secs(1), 0);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let a = reg.get_or_create(addr);
        a.enter();
        assert_eq!(reg.get_or_create(addr).outstanding(), 1);
        assert_eq!(a.host, "127.0.0.1:9");
        assert_eq!(a.addr, addr);
        a.leave();
        assert_eq!(a.outstanding(), 0);
    }
}
