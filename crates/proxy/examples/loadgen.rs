//! Fixed-rate (open-loop) HTTP/1.1 load generator with latency percentiles, for the proxy
//! benchmark's "latency added at N req/s" figure (Debian has no wrk2).
//!
//! `loadgen --addr 127.0.0.1:8080 [--path /] [--rate 5000] [--duration 10] [--connections 50]`
//!
//! Requests are scheduled evenly: connection `i` of `c` sends at `start + (i + k·c) / rate`.
//! Latency runs from the moment the request was *due* when the connection was still busy with
//! an earlier, late response (so a stall is not hidden: coordinated omission), and from the
//! moment it was sent otherwise (so the timer's own lateness is not blamed on the server).
//! Runs on one thread to leave the cores to what is measured. Prints one `key=value` line.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use orchestra_proxy::Histogram;
use tokio::net::TcpStream;
use tokio::time::Instant;

struct Opts {
    addr: SocketAddr,
    path: String,
    rate: f64,
    duration: Duration,
    connections: usize,
}

fn parse() -> Result<Opts, Box<dyn std::error::Error>> {
    let mut o = Opts {
        addr: "127.0.0.1:8080".parse()?,
        path: "/".into(),
        rate: 5000.0,
        duration: Duration::from_secs(10),
        connections: 50,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => o.addr = v.parse()?,
            "--path" => o.path = v.clone(),
            "--rate" => o.rate = v.parse()?,
            "--duration" => o.duration = Duration::from_secs_f64(v.parse()?),
            "--connections" => o.connections = v.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if o.rate <= 0.0 || o.connections == 0 {
        return Err("--rate and --connections must be positive".into());
    }
    Ok(o)
}

#[derive(Default)]
struct Outcome {
    latency: Histogram,
    errors: u64,
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn one_request(
    sender: &mut Sender,
    addr: SocketAddr,
    path: &str,
) -> Result<bool, Box<dyn std::error::Error>> {
    sender.ready().await?;
    let req = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    Ok(ok)
}

async fn connection(o: &Opts, index: usize, start: Instant) -> Outcome {
    let mut out = Outcome::default();
    let period = Duration::from_secs_f64(o.connections as f64 / o.rate);
    let offset = Duration::from_secs_f64(index as f64 / o.rate);
    let end = start + o.duration;
    let mut sender = None;
    let mut busy_until = start;
    for k in 0u32.. {
        let due = start + offset + period * k;
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        if sender.is_none() {
            sender = connect(o.addr).await.ok();
        }
        let sent = Instant::now();
        let began = if busy_until > due { due } else { sent };
        let ok = match sender.as_mut() {
            Some(s) => one_request(s, o.addr, &o.path).await.unwrap_or(false),
            None => false,
        };
        let done = Instant::now();
        busy_until = done;
        if ok {
            out.latency.record(done - began);
        } else {
            out.errors += 1;
            sender = None;
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (total, elapsed) = runtime.block_on(async {
        let o = std::sync::Arc::new(o);
        let start = Instant::now() + Duration::from_millis(50);
        let tasks: Vec<_> = (0..o.connections)
            .map(|i| {
                let o = o.clone();
                tokio::spawn(async move { connection(&o, i, start).await })
            })
            .collect();
        let mut total = Outcome::default();
        for t in tasks {
            if let Ok(out) = t.await {
                total.latency.merge(&out.latency);
                total.errors += out.errors;
            }
        }
        (total, start.elapsed())
    });
    let ok = total.latency.count();
    let us = |q: f64| total.latency.quantile(q).as_micros();
    println!(
        "requests={} errors={} achieved_rps={:.0} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        ok + total.errors,
        total.errors,
        ok as f64 / elapsed.as_secs_f64(),
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        us(1.0)
    );
    Ok(())
}
