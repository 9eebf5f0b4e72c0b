//! Orchestra's proxy as a standalone binary with one catch-all route, for benchmarks and demos.
//!
//! `proxy --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 [--upstream ...] [--workers N]`
//! prints `listening on ADDR` and runs until Ctrl-C or SIGTERM, then drains for 5 s.
//! `--workers N` (default: one per core) runs the data plane on N dedicated threads;
//! `--workers 0 --threads T` runs it on a T-thread tokio runtime instead, as inside the daemon.
//! `--tls-listen ADDR --tls-cert CERT.pem --tls-key KEY.pem` adds a TLS listener (HTTP/1.1 and
//! h2 by ALPN) and prints `tls listening on ADDR` too.

use std::net::SocketAddr;
use std::time::Duration;

use orchestra_proxy::{Balance, CertPaths, Proxy, ProxyConfig, Route, Target, TlsConfig};

// The allocator of the `orchestra` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As in the `orchestra` daemon, which runs this proxy: no transparent huge pages.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen = "127.0.0.1:8080".to_string();
    let mut upstreams: Vec<SocketAddr> = Vec::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut workers = cores;
    let mut threads = cores;
    let (mut tls_listen, mut tls_cert, mut tls_key) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value.clone(),
            "--upstream" => upstreams.push(value.parse()?),
            "--workers" => workers = value.parse()?,
            "--threads" => threads = value.parse()?,
            "--tls-listen" => tls_listen = Some(value.clone()),
            "--tls-cert" => tls_cert = Some(value.into()),
            "--tls-key" => tls_key = Some(value.into()),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if upstreams.is_empty() {
        return Err("at least one --upstream is needed".into());
    }
    let tls = match (tls_listen, tls_cert, tls_key) {
        (Some(listen), Some(cert), Some(key)) => {
            Some(TlsConfig::new(listen, vec![CertPaths { cert, key }]))
        }
        (None, None, None) => None,
        _ => return Err("--tls-listen, --tls-cert and --tls-key go together".into()),
    };
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let proxy = Proxy::start(ProxyConfig {
            listen,
            workers,
            tls,
            ..ProxyConfig::default()
        })
        .await?;
        proxy.set_routes(vec![Route {
            service: "bench".into(),
            host: None,
            path_prefix: "/".into(),
            strip_prefix: false,
            targets: vec![Target {
                revision: "v1".into(),
                weight: 1,
                upstreams,
                site: None,
            }],
            sticky: None,
            balance: Balance::RoundRobin,
            paused: false,
            maintenance: None,
        }])?;
        println!("listening on {}", proxy.local_addr());
        if let Some(addr) = proxy.tls_local_addr() {
            println!("tls listening on {addr}");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        proxy.shutdown(Duration::from_secs(5)).await;
        let s = proxy.stats("v1");
        eprintln!(
            "requests={} errors={} p50={:?} p99={:?}",
            s.requests,
            s.errors,
            s.latency.quantile(0.5),
            s.latency.quantile(0.99)
        );
        Ok(())
    })
}
