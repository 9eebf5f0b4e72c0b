//! Dedicated data-plane threads (`ProxyConfig::workers > 0`): one single-threaded tokio runtime
//! per thread, each accepting on its own `SO_REUSEPORT` socket for the same address, so the
//! kernel spreads connections and a request never crosses threads. A TLS listener is spread the
//! same way: each worker accepts on its own socket for the TLS address too.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tracing::warn;

use crate::headers::Scheme;
use crate::server::{LiveToken, Phase, Shared, accept_loop, keep_timers_armed, wait_for_phase};

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The calling thread's worker index (0 outside worker threads).
pub(crate) fn index() -> usize {
    INDEX.with(Cell::get)
}

/// `n` listening sockets on `addr` sharing one port; the first decides it when `addr` has port 0.
pub(crate) fn bind_all(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        // `SO_REUSEPORT` would let this proxy share a port another one (of the same user)
        // already listens on, splitting its traffic: a plain bind finds that out first.
        let probe = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        probe.set_reuseaddr(true)?;
        probe.bind(addr)?;
    }
    let mut listeners = Vec::with_capacity(n);
    let mut bind_to = addr;
    for _ in 0..n {
        let socket = if bind_to.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(bind_to)?;
        let listener = socket.listen(1024)?;
        bind_to = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// A runtime for each listener, built before any thread starts so failures reach the caller.
pub(crate) fn runtimes(n: usize) -> std::io::Result<Vec<Runtime>> {
    (0..n)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect()
}

/// Starts one thread per listener (with the TLS listener of the same index, if any). Each serves
/// until shutdown's grace ends or every connection of the proxy is gone after draining.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    tls_listeners: Vec<std::net::TcpListener>,
    runtimes: Vec<Runtime>,
) -> std::io::Result<()> {
    let mut tls_listeners = tls_listeners.into_iter();
    for (i, (listener, runtime)) in listeners.into_iter().zip(runtimes).enumerate() {
        let shared = shared.clone();
        let token: LiveToken = shared.live.enter();
        let tls = tls_listeners.next().map(|l| (l, shared.live.enter()));
        std::thread::Builder::new()
            .name(format!("orchestra-proxy-{i}"))
            .spawn(move || {
                INDEX.with(|w| w.set(i));
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            warn!(worker = i, error = %e, "worker cannot register its listener");
                            return;
                        }
                    };
                    if let Some((tls, tls_token)) = tls {
                        match TcpListener::from_std(tls) {
                            Ok(l) => {
                                tokio::spawn(accept_loop(shared.clone(), l, Scheme::Https, tls_token));
                            }
                            Err(e) => {
                                warn!(worker = i, error = %e, "worker cannot register its TLS listener");
                            }
                        }
                    }
                    tokio::spawn(keep_timers_armed(shared.clone()));
                    accept_loop(shared.clone(), listener, Scheme::Http, token).await;
                    let mut phase = shared.phase.subscribe();
                    tokio::select! {
                        () = shared.live.wait_all_done() => {}
                        () = wait_for_phase(&mut phase, |p| p == Phase::Stopped) => {}
                    }
                });
            })?;
    }
    Ok(())
}
