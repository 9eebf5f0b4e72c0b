//! `ProxyConfig::max_connections`: client connections counted over every listener and worker,
//! and the answer a connection beyond the limit gets (a `503`, never a silent drop).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a refused connection is given to send its request head, and then to close after
/// the answer (so that a client still sending gets the answer, not a reset).
const LINGER: Duration = Duration::from_secs(1);
/// Refused connections being answered at once; past that a refused connection is closed
/// without an answer, so a flood costs no more than this many small tasks.
const MAX_REFUSING: usize = 1024;
/// What a refused connection reads of its request at most.
const MAX_READ: usize = 16 * 1024;

const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 37\r\n\
\r\n\
{\"error\":\"too many open connections\"}";

/// Open client connections, against `max` (0: no limit).
pub(crate) struct Connections {
    max: usize,
    open: AtomicUsize,
    refusing: AtomicUsize,
}

/// What a new connection is let in with.
pub(crate) enum Admission {
    /// In, with its place to give back when it closes (none when nothing is counted).
    In(Option<ConnSlot>),
    /// `max` are open: [`Connections::refuse`] it.
    Full,
}

/// One connection's place under the limit, given back on drop.
pub(crate) struct ConnSlot(Arc<Connections>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max,
            open: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
        })
    }

    /// Lets a new connection in, or says the proxy is full. Without a limit nothing is counted.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        if self.max == 0 {
            return Admission::In(None);
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Admission::Full;
        }
        Admission::In(Some(ConnSlot(self.clone())))
    }

    /// Answers a connection the proxy has no room for with a `503` and `Connection: close`,
    /// on a task of its own that ends within about two [`LINGER`]s.
    pub(crate) fn refuse<S>(self: &Arc<Self>, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if self.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            answer_full(io).await;
            this.refusing.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn answer_full<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let mut buf = vec![0u8; MAX_READ];
    // The request head first (an answer before it confuses clients), as far as it comes soon.
    let _ = tokio::time::timeout(LINGER, async {
        let mut read = 0;
        while read < buf.len() {
            match io.read(&mut buf[read..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
            if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    if io.write_all(FULL).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    // Whatever else the client sends is read and dropped until it closes too.
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = io.read(&mut buf).await
            && n > 0
        {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_open_connections() {
        let c = Connections::new(2);
        let a = c.admit();
        let b = c.admit();
        assert!(matches!(a, Admission::In(Some(_))));
        assert!(matches!(b, Admission::In(Some(_))));
        assert!(matches!(c.admit(), Admission::Full));
        drop(a);
        assert!(matches!(c.admit(), Admission::In(Some(_))));
        let unlimited = Connections::new(0);
        assert!(matches!(unlimited.admit(), Admission::In(None)));
    }

    #[test]
    fn the_refusal_is_a_well_formed_503() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("\r\nconnection: close"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
    }
}
