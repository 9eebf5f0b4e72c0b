//! `verify.synthetic`: probe requests sent to a canary's own replicas while
//! live traffic is too thin to judge it, so a quiet service can still be
//! verified. Their outcomes join the live window the verifier judges.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::verify::Window;

/// Outcomes so far: (failed, latency) per request.
#[derive(Default)]
struct Outcomes(Vec<(bool, Duration)>);

/// A running source of synthetic requests; stops when dropped.
pub(super) struct Synthetic {
    outcomes: Arc<Mutex<Outcomes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Synthetic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The most a synthetic request may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response read (the status line is all that matters).
const READ_LIMIT: usize = 64 * 1024;

impl Synthetic {
    /// Send `GET path` at `rate` per second, round robin over `addrs()`
    /// (re-read each time, so replicas that come and go are followed), while
    /// `wanted()` says live traffic is still short.
    pub(super) fn start(
        path: String,
        rate: u32,
        addrs: impl Fn() -> Vec<SocketAddr> + Send + 'static,
        wanted: impl Fn() -> bool + Send + 'static,
    ) -> Synthetic {
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let out = outcomes.clone();
        let every = Duration::from_secs(1) / rate.max(1);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0usize;
            loop {
                tick.tick().await;
                if !wanted() {
                    continue;
                }
                let list = addrs();
                let Some(addr) = list.get(n % list.len().max(1)).copied() else {
                    continue;
                };
                n = n.wrapping_add(1);
                let path = path.clone();
                let out = out.clone();
                // Each request on its own: a slow one must not hold back the rate.
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let ok = tokio::time::timeout(TIMEOUT, get(addr, &path))
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|code| code < 500);
                    out.lock().0.push((!ok, t0.elapsed()));
                });
            }
        });
        Synthetic { outcomes, task }
    }

    /// The figures of the synthetic requests so far.
    pub(super) fn window(&self) -> Window {
        let o = self.outcomes.lock();
        let mut lat: Vec<Duration> = o.0.iter().map(|x| x.1).collect();
        lat.sort_unstable();
        let p99 = if lat.is_empty() {
            Duration::ZERO
        } else {
            lat[((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1]
        };
        Window {
            requests: o.0.len() as u64,
            errors: o.0.iter().filter(|x| x.0).count() as u64,
            p99,
        }
    }
}

/// Live and synthetic figures as one window; the p99 is the worse of the two.
pub(super) fn combined(live: &Window, synthetic: &Window) -> Window {
    Window {
        requests: live.requests + synthetic.requests,
        errors: live.errors + synthetic.errors,
        p99: live.p99.max(synthetic.p99),
    }
}

/// One `GET path` over a fresh connection; the status code.
async fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: orchestra-verify\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() >= READ_LIMIT {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = std::str::from_utf8(buf.get(..buf.len().min(64))?).ok()?;
    head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_combined_window_adds_counts_and_keeps_the_worse_p99() {
        let live = Window {
            requests: 3,
            errors: 0,
            p99: Duration::from_millis(5),
        };
        let syn = Window {
            requests: 30,
            errors: 3,
            p99: Duration::from_millis(40),
        };
        let c = combined(&live, &syn);
        assert_eq!(
            (c.requests, c.errors, c.p99),
            (33, 3, Duration::from_millis(40))
        );
    }

    #[tokio::test]
    async fn requests_reach_a_real_listener_and_their_status_is_read() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for served in 0.. {
                let (mut c, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let code = if served % 2 == 0 { 200 } else { 503 };
                let _ = c
                    .write_all(format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let s = Synthetic::start("/".into(), 200, move || vec![addr], || true);
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.window().requests < 6 {
            assert!(Instant::now() < deadline, "no synthetic request completed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let w = s.window();
        assert!(w.errors > 0, "503s count as failures: {w:?}");
        assert!(w.errors < w.requests, "200s do not: {w:?}");
        drop(s);
        server.abort();
    }
}
