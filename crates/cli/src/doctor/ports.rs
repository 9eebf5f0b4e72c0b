//! The addresses `up` binds: free, or held by this project's own daemon.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;

use orchestra_server::client::Client;
use orchestra_server::daemon::{DEFAULT_ADMIN, DEFAULT_PROXY};

use super::{Check, Ctx, ENGINE_TIMEOUT};

/// One address the platform listens on, and the manifest field that sets it.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// `admin.listen`, `services.db.ports[0]`...
    pub field: String,
    /// As written (or the default).
    pub addr: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Not written in the manifest: the default.
    pub default: bool,
    /// The container service that publishes it.
    pub service: Option<String>,
}

/// What binding it said.
#[derive(Debug)]
pub enum Bound {
    /// Free (or port 0: any free one).
    Free,
    /// Something holds it.
    InUse(SocketAddr),
    /// It cannot be bound for another reason (not this machine's address, a privileged port...).
    Other(String),
    /// Not checked, and why.
    Skipped(String),
}

/// The addresses the selected services need, in manifest order.
pub fn wanted(ctx: &Ctx<'_>) -> Vec<Wanted> {
    let m = ctx.manifest;
    let mut out = Vec::new();
    let listen = |field: &str, addr: Option<&str>, default: &str| Wanted {
        field: field.to_owned(),
        addr: addr.unwrap_or(default).to_owned(),
        protocol: "tcp".into(),
        default: addr.is_none(),
        service: None,
    };
    out.push(listen(
        "admin.listen",
        m.admin_listen.as_deref(),
        DEFAULT_ADMIN,
    ));
    if let Some(c) = &m.control_listen {
        out.push(listen("control.listen", Some(c), ""));
    }
    if ctx.routed() {
        out.push(listen(
            "proxy.listen",
            m.proxy.listen.as_deref(),
            DEFAULT_PROXY,
        ));
        if let Some(t) = &m.proxy.tls {
            out.push(listen("proxy.tls.listen", Some(&t.listen), ""));
        }
    }
    for s in ctx.containers() {
        for (i, p) in s.ports.iter().enumerate() {
            if let Some(port) = p.host_port {
                let ip = p.host_ip.as_deref().unwrap_or("0.0.0.0");
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_owned()
                };
                out.push(Wanted {
                    field: format!("services.{}.ports[{i}]", s.name),
                    addr: format!("{host}:{port}"),
                    protocol: p.protocol.clone(),
                    default: false,
                    service: Some(s.name.clone()),
                });
            }
        }
    }
    out
}

/// Try to bind every wanted address (then let go at once).
pub fn bind_all(ctx: &Ctx<'_>) -> Vec<(Wanted, Bound)> {
    wanted(ctx)
        .into_iter()
        .map(|w| {
            let b = bind(&w);
            (w, b)
        })
        .collect()
}

fn bind(w: &Wanted) -> Bound {
    if w.addr == "off" {
        return Bound::Skipped(format!("`{}` is off", w.field));
    }
    // Only literal addresses and localhost: a name to look up would need the network.
    let addr = match w.addr.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => match w
            .addr
            .strip_prefix("localhost:")
            .map(|_| w.addr.to_socket_addrs().ok().and_then(|mut a| a.next()))
        {
            Some(Some(a)) => a,
            _ => {
                return Bound::Skipped(format!(
                    "{} is not an IP address and port, so it is not checked offline",
                    w.addr
                ));
            }
        },
    };
    if addr.port() == 0 {
        return Bound::Free;
    }
    let res = match w.protocol.as_str() {
        "tcp" => TcpListener::bind(addr).map(drop),
        "udp" => UdpSocket::bind(addr).map(drop),
        other => return Bound::Skipped(format!("{other} ports are not checked")),
    };
    match res {
        Ok(()) => Bound::Free,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Bound::InUse(addr),
        Err(e) => Bound::Other(e.to_string()),
    }
}

/// What this project's running daemon holds: its bound addresses and the
/// services it runs.
#[derive(Debug, Default, Clone)]
pub struct Daemon {
    /// A daemon answered.
    pub running: bool,
    /// The addresses it bound (admin, control, proxy, TLS).
    pub addrs: Vec<SocketAddr>,
    /// The services it runs.
    pub services: Vec<String>,
    /// Its PID.
    pub pid: Option<u64>,
}

/// Ask this project's daemon (when its socket exists) what it holds.
pub async fn daemon(socket: PathBuf) -> Daemon {
    if !socket.exists() {
        return Daemon::default();
    }
    let client = Client::new(&socket);
    let ask = async {
        let info = client.get("/v1/daemon").await.ok()?;
        let status = client.get("/v1/status").await.ok();
        Some((info, status))
    };
    let Ok(Some((info, status))) = tokio::time::timeout(ENGINE_TIMEOUT, ask).await else {
        return Daemon::default();
    };
    let addrs = ["admin", "control", "proxy", "proxy_tls"]
        .iter()
        .filter_map(|k| info.get(*k)?.as_str()?.parse().ok())
        .collect();
    let services = status
        .as_ref()
        .and_then(|s| s.get("services")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Some(s.get("name")?.as_str()?.to_owned()))
        .collect();
    Daemon {
        running: true,
        addrs,
        services,
        pid: info.get("pid").and_then(serde_json::Value::as_u64),
    }
}

/// Whether `addr` is one the daemon bound (same port, and the same address
/// or a wildcard on either side).
fn held_by(daemon: &Daemon, addr: &SocketAddr) -> bool {
    daemon.addrs.iter().any(|d| {
        d.port() == addr.port()
            && (d.ip() == addr.ip() || d.ip().is_unspecified() || addr.ip().is_unspecified())
    })
}

/// One check per address.
pub fn checks(ctx: &Ctx<'_>, bound: Vec<(Wanted, Bound)>, daemon: &Daemon) -> Vec<Check> {
    let mut out = Vec::new();
    let daemon_pid = daemon
        .pid
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    for (w, b) in bound {
        let id = format!("port.{}", w.field);
        let what = if w.default {
            format!("{} ({}, the default)", w.addr, w.field)
        } else {
            format!("{} ({})", w.addr, w.field)
        };
        let proto = if w.protocol == "tcp" {
            String::new()
        } else {
            format!("/{}", w.protocol)
        };
        let check = match b {
            Bound::Free if w.addr.ends_with(":0") => Check::pass(
                &id,
                format!("{what}: port 0, a free port is picked at start"),
            ),
            Bound::Free => Check::pass(&id, format!("{what}{proto} is free")),
            Bound::Skipped(why) => Check::skip(&id, why),
            Bound::InUse(addr)
                if held_by(daemon, &addr)
                    || (daemon.running
                        && w.service
                            .as_ref()
                            .is_some_and(|s| daemon.services.contains(s))) =>
            {
                Check::pass(
                    &id,
                    format!("{what}{proto} is in use by this project's daemon{daemon_pid}"),
                )
            }
            Bound::InUse(addr) => {
                let port = addr.port();
                let change = match w.field.as_str() {
                    "admin.listen" => "set `admin.listen` in the manifest to a free address (or `up --admin ADDR|off`)".to_owned(),
                    "proxy.listen" => "set `proxy.listen` in the manifest to a free address (or `up --proxy ADDR`)".to_owned(),
                    f => format!("change `{f}` in the manifest to a free host port"),
                };
                Check::fail(
                    &id,
                    format!("{what}{proto}: port {port} is in use by another process"),
                    format!(
                        "stop what listens on port {port} (`ss -ltnp 'sport = :{port}'` shows it), or {change}"
                    ),
                )
            }
            Bound::Other(e) => Check::fail(
                &id,
                format!("{what}{proto} cannot be bound: {e}"),
                format!(
                    "use an address of this machine and a port this user may bind (below 1024 needs root or CAP_NET_BIND_SERVICE) in `{}`",
                    w.field
                ),
            ),
        };
        out.push(check);
    }
    if !ctx.routed() {
        // After admin.listen, where proxy.listen would be.
        out.insert(
            out.len().min(1),
            Check::skip(
                "port.proxy.listen",
                "no selected service has a `route:`, so the proxy does not start",
            ),
        );
    }
    out
}
