//! `route:` and `deploy:` of a service, and the top-level `proxy:`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::{Ctx, Fields, join};
use crate::model::{
    Balance, CertPair, DEFAULT_TLS_LISTEN, DeploySpec, Hooks, Location, OnInconclusive, ProxySpec,
    RouteSpec, Sticky, Strategy, Synthetic, TlsSpec,
};
use crate::node::{Kind, Node};

const ROUTE_FIELDS: &[&str] = &[
    "path",
    "host",
    "strip_prefix",
    "sticky",
    "balance",
    "static",
    "spa",
];
const STICKY_FIELDS: &[&str] = &["cookie", "header"];
const DEPLOY_FIELDS: &[&str] = &[
    "strategy",
    "steps",
    "step_interval",
    "verify",
    "keep_warm",
    "drain_timeout",
    "hooks",
    "backup_before",
];
const VERIFY_FIELDS: &[&str] = &[
    "max_error_rate",
    "max_p99",
    "min_requests",
    "on_inconclusive",
    "deadline",
    "synthetic",
];
const SYNTHETIC_FIELDS: &[&str] = &["path", "rate"];
const HOOK_FIELDS: &[&str] = &["pre", "smoke", "post"];

/// `route: /api` or `route: { path, host, strip_prefix, sticky, balance, static, spa }`.
pub(super) fn route(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<RouteSpec> {
    let mut spec = RouteSpec {
        path: "/".into(),
        host: None,
        strip_prefix: false,
        sticky: None,
        balance: Balance::RoundRobin,
        spa: false,
    };
    if let Kind::Scalar(_) = node.kind {
        spec.path = route_path(ctx, node, path)?;
        return Some(spec);
    }
    let f = ctx.fields(node, path, ROUTE_FIELDS, &[])?;
    let mut ok = true;
    if let Some(n) = f.get("path") {
        match route_path(ctx, n, &f.path("path")) {
            Some(p) => spec.path = p,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("host") {
        spec.host = ctx
            .nonempty_string(n, &f.path("host"))
            .map(|h| h.to_ascii_lowercase());
        ok &= spec.host.is_some();
    }
    if let Some(n) = f.get("strip_prefix") {
        match boolean(ctx, n, &f.path("strip_prefix")) {
            Some(b) => spec.strip_prefix = b,
            None => ok = false,
        }
    }
    // `static` itself is the workload's (`super::site`).
    if let Some(n) = f.get("spa") {
        match boolean(ctx, n, &f.path("spa")) {
            Some(b) => spec.spa = b,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("sticky") {
        let sp = f.path("sticky");
        if let Some(sf) = ctx.fields(n, &sp, STICKY_FIELDS, &[]) {
            match (sf.get("cookie"), sf.get("header")) {
                (Some(c), None) => {
                    spec.sticky = ctx
                        .nonempty_string(c, &sf.path("cookie"))
                        .map(Sticky::Cookie)
                }
                (None, Some(h)) => {
                    spec.sticky = ctx
                        .nonempty_string(h, &sf.path("header"))
                        .map(Sticky::Header)
                }
                _ => {
                    let d = ctx
                        .diag(
                            n.loc,
                            &sp,
                            "sticky needs exactly one of `cookie` or `header`",
                        )
                        .expected("{ cookie: NAME } or { header: NAME }");
                    ctx.push(d);
                    ok = false;
                }
            }
        }
    }
    if let Some(n) = f.get("balance") {
        let p = f.path("balance");
        match ctx.string(n, &p).as_deref() {
            Some("round-robin") => spec.balance = Balance::RoundRobin,
            Some("least-outstanding") => spec.balance = Balance::LeastOutstanding,
            Some(_) => {
                let d = ctx
                    .diag(n.loc, &p, "unknown balancing")
                    .found(n.describe())
                    .expected("round-robin or least-outstanding");
                ctx.push(d);
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(spec)
}

/// Where a converted route's path prefix is written, for the semantic pass: the `path`
/// value of the long form, else the `route` value itself (short form, or `/` by default).
pub(super) fn route_location(node: &Node, path: &str) -> (Location, String) {
    if let Kind::Map(entries) = &node.kind
        && let Some(e) = entries
            .iter()
            .find(|e| e.key == "path" && e.value.kind != Kind::Null)
    {
        return (e.value.loc, join(path, "path"));
    }
    (node.loc, path.to_owned())
}

fn route_path(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let p = ctx.string(node, path)?;
    if p.starts_with('/') {
        Some(p)
    } else {
        let d = ctx
            .diag(node.loc, path, "invalid route path")
            .found(node.describe())
            .expected("a path prefix starting with `/`");
        ctx.push(d);
        None
    }
}

fn boolean(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<bool> {
    match &node.kind {
        Kind::Scalar(s) if s == "true" => Some(true),
        Kind::Scalar(s) if s == "false" => Some(false),
        _ => {
            ctx.type_error(node, path, "true or false");
            None
        }
    }
}

/// `verify.synthetic: { path, rate }`: both required.
fn synthetic(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Synthetic> {
    let f = ctx.fields(node, path, SYNTHETIC_FIELDS, &[])?;
    for key in SYNTHETIC_FIELDS {
        if f.get(key).is_none() {
            let d = ctx
                .diag(node.loc, path, format!("`{key}` is missing"))
                .hint(Some("write `synthetic: { path: /, rate: 20 }`".to_owned()));
            ctx.push(d);
        }
    }
    let p = f.get("path").and_then(|n| {
        let fp = f.path("path");
        let v = ctx.nonempty_string(n, &fp)?;
        if v.starts_with('/') {
            Some(v)
        } else {
            let d = ctx
                .diag(n.loc, &fp, "a request path starts with `/`")
                .found(n.describe());
            ctx.push(d);
            None
        }
    });
    let rate = f.get("rate").and_then(|n| {
        ctx.uint(
            n,
            &f.path("rate"),
            1,
            1000,
            "requests per second, 1 to 1000",
        )
        .and_then(|v| u32::try_from(v).ok())
    });
    Some(Synthetic {
        path: p?,
        rate: rate?,
    })
}

/// `deploy: { strategy, steps, step_interval, verify, keep_warm, drain_timeout, hooks }`.
pub(super) fn deploy(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    routed: bool,
) -> Option<DeploySpec> {
    let mut spec = DeploySpec::default_for(routed);
    let f = ctx.fields(node, path, DEPLOY_FIELDS, &[])?;
    let mut ok = true;
    if let Some(n) = f.get("strategy") {
        let p = f.path("strategy");
        match ctx.string(n, &p).as_deref() {
            Some("canary") => spec.strategy = Strategy::Canary,
            Some("blue-green") => spec.strategy = Strategy::BlueGreen,
            Some("recreate") => spec.strategy = Strategy::Recreate,
            Some(_) => {
                let d = ctx
                    .diag(n.loc, &p, "unknown strategy")
                    .found(n.describe())
                    .expected("canary, blue-green or recreate");
                ctx.push(d);
                ok = false;
            }
            None => ok = false,
        }
        if spec.strategy != Strategy::Recreate && !routed {
            let d = ctx
                .diag(n.loc, &p, "canary and blue-green shift traffic through the proxy, so the service needs a `route:`")
                .hint(Some("add `route: /PATH`, or use `strategy: recreate`".to_owned()));
            ctx.push(d);
            ok = false;
        }
    }
    if let Some(n) = f.get("steps") {
        let p = f.path("steps");
        match &n.kind {
            Kind::Seq(items) => {
                let mut steps = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let v = match &item.kind {
                        Kind::Scalar(s) => s.trim().trim_end_matches('%').parse::<u32>().ok(),
                        _ => None,
                    };
                    match v {
                        Some(v)
                            if (1..=100).contains(&v) && steps.last().is_none_or(|l| *l < v) =>
                        {
                            steps.push(v)
                        }
                        _ => {
                            let d = ctx
                                .diag(item.loc, &ip, "invalid canary step")
                                .found(item.describe())
                                .expected("increasing percentages between 1 and 100, such as [10, 50, 100]");
                            ctx.push(d);
                            ok = false;
                        }
                    }
                }
                spec.steps = steps;
            }
            _ => {
                ctx.type_error(n, &p, "a list of percentages such as [10, 50, 100]");
                ok = false;
            }
        }
    }
    let dur = |ctx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, into: &mut Duration, ok: &mut bool| {
        if let Some(n) = f.get(key) {
            match ctx.duration(n, &f.path(key), key == "step_interval") {
                Some(d) => *into = d,
                None => *ok = false,
            }
        }
    };
    dur(ctx, &f, "step_interval", &mut spec.step_interval, &mut ok);
    dur(ctx, &f, "keep_warm", &mut spec.keep_warm, &mut ok);
    dur(ctx, &f, "drain_timeout", &mut spec.drain_timeout, &mut ok);
    if let Some(n) = f.get("verify") {
        let vp = f.path("verify");
        match ctx.fields(n, &vp, VERIFY_FIELDS, &[]) {
            Some(vf) => {
                if let Some(r) = vf.get("max_error_rate") {
                    match rate(ctx, r, &vf.path("max_error_rate")) {
                        Some(v) => spec.verify.max_error_rate = v,
                        None => ok = false,
                    }
                }
                if let Some(r) = vf.get("max_p99") {
                    match ctx.duration(r, &vf.path("max_p99"), true) {
                        Some(d) => spec.verify.max_p99 = d,
                        None => ok = false,
                    }
                }
                if let Some(r) = vf.get("min_requests") {
                    match ctx.uint(
                        r,
                        &vf.path("min_requests"),
                        0,
                        u64::from(u32::MAX),
                        "a whole number",
                    ) {
                        Some(v) => spec.verify.min_requests = v,
                        None => ok = false,
                    }
                }
                if let Some(r) = vf.get("on_inconclusive") {
                    let p = vf.path("on_inconclusive");
                    match ctx.string(r, &p).as_deref() {
                        Some("fail") => spec.verify.on_inconclusive = OnInconclusive::Fail,
                        Some("pass") => spec.verify.on_inconclusive = OnInconclusive::Pass,
                        Some(_) => {
                            let d = ctx
                                .diag(r.loc, &p, "unknown on_inconclusive")
                                .found(r.describe())
                                .expected("fail or pass");
                            ctx.push(d);
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                if let Some(r) = vf.get("deadline") {
                    // Zero would decide every step before a single request could arrive.
                    match ctx.duration(r, &vf.path("deadline"), true) {
                        Some(d) => spec.verify.deadline = d,
                        None => ok = false,
                    }
                }
                if let Some(r) = vf.get("synthetic") {
                    match synthetic(ctx, r, &vf.path("synthetic")) {
                        Some(sy) => spec.verify.synthetic = Some(sy),
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if let Some(n) = f.get("hooks") {
        let hp = f.path("hooks");
        match ctx.fields(n, &hp, HOOK_FIELDS, &[]) {
            Some(hf) => {
                let mut hooks = Hooks::default();
                for (key, into) in [
                    ("pre", &mut hooks.pre),
                    ("smoke", &mut hooks.smoke),
                    ("post", &mut hooks.post),
                ] {
                    let Some(list) = hf.get(key) else { continue };
                    let lp = hf.path(key);
                    match &list.kind {
                        Kind::Seq(items) => {
                            for (i, item) in items.iter().enumerate() {
                                match ctx.argv(item, &format!("{lp}[{i}]")) {
                                    Some(a) => into.push(a),
                                    None => ok = false,
                                }
                            }
                        }
                        _ => {
                            ctx.type_error(
                                list,
                                &lp,
                                "a list of commands, each a list such as [migrate, --up]",
                            );
                            ok = false;
                        }
                    }
                }
                spec.hooks = hooks;
            }
            None => ok = false,
        }
    }
    ok.then_some(spec)
}

/// `1%`, `0.5%` or a fraction `0.01`.
fn rate(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<f64> {
    let v = match &node.kind {
        Kind::Scalar(s) => {
            let s = s.trim();
            match s.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().ok().map(|v| v / 100.0),
                None => s.parse::<f64>().ok(),
            }
        }
        _ => None,
    };
    match v {
        Some(v) if (0.0..=1.0).contains(&v) => Some(v),
        _ => {
            let d = ctx
                .diag(node.loc, path, "invalid error rate")
                .found(node.describe())
                .expected("a percentage such as 1% or 0.5%, or a fraction such as 0.01");
            ctx.push(d);
            None
        }
    }
}

const PROXY_FIELDS: &[&str] = &[
    "listen",
    "workers",
    "max_connections",
    "trusted_proxies",
    "tls",
];
const TLS_FIELDS: &[&str] = &["listen", "cert", "key", "certs", "redirect"];
const CERT_FIELDS: &[&str] = &["cert", "key"];
/// More data-plane threads than this is a typo, not a machine.
const MAX_WORKERS: u64 = 1024;

/// Top-level `proxy: { listen, workers, max_connections, trusted_proxies, tls }`.
pub(super) fn proxy(ctx: &mut Ctx<'_>, node: &Node) -> ProxySpec {
    let mut spec = ProxySpec::default();
    let Some(f) = ctx.fields(node, "proxy", PROXY_FIELDS, &[]) else {
        return spec;
    };
    if let Some(l) = f.get("listen") {
        spec.listen = listen(ctx, l, &f.path("listen"), "127.0.0.1:8080");
    }
    if let Some(n) = f.get("workers") {
        spec.workers = ctx
            .uint(
                n,
                &f.path("workers"),
                1,
                MAX_WORKERS,
                "a number of threads from 1 to 1024 (leave `workers` out for one per CPU core)",
            )
            .and_then(|v| u32::try_from(v).ok());
    }
    if let Some(n) = f.get("max_connections") {
        spec.max_connections = ctx.u32_field(
            n,
            &f.path("max_connections"),
            1,
            "a number of connections, at least 1 (leave it out for no limit)",
        );
    }
    if let Some(n) = f.get("trusted_proxies") {
        spec.trusted_proxies = trusted_proxies(ctx, n, &f.path("trusted_proxies"));
    }
    if let Some(n) = f.get("tls") {
        spec.tls = tls(ctx, n, &f.path("tls"), spec.listen.as_deref());
    }
    spec
}

fn listen(ctx: &mut Ctx<'_>, node: &Node, path: &str, example: &str) -> Option<String> {
    let listen = ctx.string(node, path)?;
    if listen.trim().parse::<std::net::SocketAddr>().is_ok() {
        Some(listen.trim().to_owned())
    } else {
        let d = ctx
            .diag(node.loc, path, "invalid listen address")
            .found(node.describe())
            .expected(format!("an IP address and port such as {example}"));
        ctx.push(d);
        None
    }
}

/// `trusted_proxies: [10.0.0.0/8, "::1/128", 192.168.1.7]`.
fn trusted_proxies(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Vec<IpNet> {
    let Kind::Seq(items) = &node.kind else {
        ctx.type_error(
            node,
            path,
            "a list of networks such as [10.0.0.0/8, \"::1/128\"]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(text) = ctx.string(item, &ip) else {
            continue;
        };
        match parse_cidr(text.trim()) {
            Ok(c) => out.push(c),
            Err(CidrError::Syntax) => {
                let d = ctx
                    .diag(item.loc, &ip, "invalid network")
                    .found(item.describe())
                    .expected("an IP network such as 10.0.0.0/8 or ::1/128, or one address");
                ctx.push(d);
            }
            Err(CidrError::Prefix { max }) => {
                let d = ctx
                    .diag(item.loc, &ip, "prefix length out of range")
                    .found(item.describe())
                    .expected(format!("a prefix length from 0 to {max}"));
                ctx.push(d);
            }
            Err(CidrError::HostBits(network)) => {
                let d = ctx
                    .diag(item.loc, &ip, "address has bits set past the prefix")
                    .found(item.describe())
                    .expected("the network's first address before the `/`")
                    .hint(Some(format!("did you mean `{network}`?")));
                ctx.push(d);
            }
        }
    }
    out
}

/// Why a network did not parse.
#[derive(Debug, PartialEq)]
pub(crate) enum CidrError {
    Syntax,
    Prefix {
        max: u8,
    },
    /// Host bits are set; the network it probably means.
    HostBits(IpNet),
}

/// `10.0.0.0/8`, `::1/128`, or a bare address (a network of one). Stricter than
/// `IpNet`'s own parser: host bits past the prefix are an error (with the network it
/// probably means), not silently kept.
pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, CidrError> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| CidrError::Syntax)?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().map_err(|_| CidrError::Prefix { max })?
        }
        Some(_) => return Err(CidrError::Syntax),
    };
    let net = IpNet::new(addr, prefix).map_err(|_| CidrError::Prefix { max })?;
    if net.trunc() == net {
        Ok(net)
    } else {
        Err(CidrError::HostBits(net.trunc()))
    }
}

/// `proxy.tls: { listen, cert, key, certs: [{ cert, key }], redirect }`; `plain` is
/// `proxy.listen`, which the TLS listener cannot share.
fn tls(ctx: &mut Ctx<'_>, node: &Node, path: &str, plain: Option<&str>) -> Option<TlsSpec> {
    let f = ctx.fields(node, path, TLS_FIELDS, &[])?;
    let mut ok = true;
    let listen_addr = match f.get("listen") {
        Some(l) => {
            let p = f.path("listen");
            let v = listen(ctx, l, &p, DEFAULT_TLS_LISTEN);
            if let Some(addr) = v.as_deref()
                && plain == Some(addr)
                && !addr.ends_with(":0")
            {
                let d = ctx
                    .diag(l.loc, &p, "the TLS listener needs an address of its own")
                    .found(l.describe())
                    .expected(format!(
                        "an address other than `proxy.listen`'s, such as {DEFAULT_TLS_LISTEN}"
                    ));
                ctx.push(d);
                ok = false;
            }
            ok &= v.is_some();
            v
        }
        None => Some(DEFAULT_TLS_LISTEN.to_owned()),
    };
    let mut certs = Vec::new();
    match cert_pair(ctx, node, &f, path) {
        Some(pair) => certs.push(pair),
        None => ok = false,
    }
    if let Some(n) = f.get("certs") {
        let cp = f.path("certs");
        match &n.kind {
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{cp}[{i}]");
                    let Some(ef) = ctx.fields(item, &ip, CERT_FIELDS, &[]) else {
                        ok = false;
                        continue;
                    };
                    match cert_pair(ctx, item, &ef, &ip) {
                        Some(pair) => certs.push(pair),
                        None => ok = false,
                    }
                }
            }
            _ => {
                ctx.type_error(n, &cp, "a list of { cert: FILE, key: FILE }");
                ok = false;
            }
        }
    }
    let mut redirect = false;
    if let Some(n) = f.get("redirect") {
        match boolean(ctx, n, &f.path("redirect")) {
            Some(b) => redirect = b,
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    Some(TlsSpec {
        listen: listen_addr?,
        certs,
        redirect,
    })
}

/// The `cert` and `key` of a mapping (both required), each an existing PEM file.
fn cert_pair(ctx: &mut Ctx<'_>, node: &Node, f: &Fields<'_>, path: &str) -> Option<CertPair> {
    let mut files = [None, None];
    for (slot, (key, pem)) in files
        .iter_mut()
        .zip([("cert", Pem::Certificate), ("key", Pem::PrivateKey)])
    {
        match f.get(key) {
            Some(n) => *slot = pem_file(ctx, n, &f.path(key), pem),
            None => {
                let d = ctx
                    .diag(node.loc, path, format!("`{key}` is missing"))
                    .expected("`cert: FILE` and `key: FILE`, PEM files relative to the manifest");
                ctx.push(d);
            }
        }
    }
    let [cert, key] = files;
    Some(CertPair {
        cert: cert?,
        key: key?,
    })
}

#[derive(Clone, Copy)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// A PEM file that exists and holds what it should; the proxy parses it for real at start.
fn pem_file(ctx: &mut Ctx<'_>, node: &Node, path: &str, pem: Pem) -> Option<PathBuf> {
    let name = ctx.nonempty_string(node, path)?;
    let file = ctx.resolve(name.trim());
    let what = match pem {
        Pem::Certificate => "certificate",
        Pem::PrivateKey => "private key",
    };
    let problem = match std::fs::read(&file) {
        Ok(bytes) => pem_problem(pem, &String::from_utf8_lossy(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let d = ctx
                .diag(node.loc, path, format!("{what} file not found"))
                .found(file.display().to_string())
                .hint(Some(
                    "paths are relative to the manifest's directory".to_owned(),
                ));
            ctx.push(d);
            return None;
        }
        Err(e) => {
            let d = ctx
                .diag(node.loc, path, format!("cannot read {what} file: {e}"))
                .found(file.display().to_string());
            ctx.push(d);
            return None;
        }
    };
    match problem {
        None => Some(file),
        Some((message, expected)) => {
            let d = ctx
                .diag(node.loc, path, message)
                .found(file.display().to_string())
                .expected(expected);
            ctx.push(d);
            None
        }
    }
}

/// What is wrong with a PEM file's text, if anything: (message, expected).
fn pem_problem(pem: Pem, text: &str) -> Option<(&'static str, &'static str)> {
    match pem {
        Pem::Certificate if text.contains("-----BEGIN CERTIFICATE-----") => None,
        Pem::Certificate => Some((
            "not a PEM certificate",
            "a file with a `-----BEGIN CERTIFICATE-----` block",
        )),
        Pem::PrivateKey if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") => Some((
            "the private key is encrypted",
            "an unencrypted PEM key (`openssl pkey -in KEY -out KEY.pem` decrypts it)",
        )),
        Pem::PrivateKey
            if text.lines().any(|l| {
                l.starts_with("-----BEGIN ") && l.trim_end().ends_with("PRIVATE KEY-----")
            }) =>
        {
            None
        }
        Pem::PrivateKey => Some((
            "not a PEM private key",
            "a file with a `-----BEGIN PRIVATE KEY-----` block",
        )),
    }
}
