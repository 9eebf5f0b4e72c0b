//! TLS end to end: the real daemon's proxy terminating TLS in front of a real demo-service,
//! with certificates made by the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A test CA; the client trusts it and nothing else.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Signs a certificate for `names` and writes it (atomically, as a certificate manager
    /// does) to `dir/NAME.pem` and `dir/NAME-key.pem`; returns its DER.
    fn issue(&self, dir: &Path, file: &str, names: &[&str]) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in [
            (format!("{file}-key.pem"), key.serialize_pem()),
            (format!("{file}.pem"), cert.pem()),
        ] {
            let tmp = dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        }
        cert.der().clone()
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(cfg))
    }
}

const MANIFEST: &str = "services:
  api:
    command: [demo-service, --port, \"${PORT}\", --name, api]
    route: { path: /api, strip_prefix: true }
    healthcheck: { http: /health, interval: 200ms, start_period: 5s }
proxy:
  tls:
    listen: 127.0.0.1:0
    cert: certs/shop.pem
    key: certs/shop-key.pem
    certs:
      - { cert: certs/admin.pem, key: certs/admin-key.pem }
    redirect: true
";

/// `up -d` with the plain proxy on a free port: (plain address, TLS address).
fn up(p: &mut Project) -> (String, SocketAddr) {
    let out = p.up_ok(&["--proxy", "127.0.0.1:0"]);
    let after = |marker: &str| {
        out.split(marker)
            .nth(1)
            .and_then(|s| s.split([',', ';', '\n', ' ']).next())
            .unwrap_or_else(|| panic!("no {marker} in {out}"))
            .trim()
            .to_owned()
    };
    (after("proxy http://"), after("https://").parse().unwrap())
}

async fn handshake(
    ca: &Ca,
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    ca.connector(alpn).connect(name, tcp).await
}

fn presented(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

type H1 = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn h1(s: TlsStream<TcpStream>) -> H1 {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// GET over an open HTTP/1.1 connection: (status, JSON body).
async fn get(send: &mut H1, host: &str, path: &str) -> (u16, Value) {
    send.ready().await.unwrap();
    let req = hyper::Request::get(path)
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One plain HTTP/1.1 request; the raw response head, lowercased.
fn plain_head(addr: &str, host: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[test]
fn https_through_the_daemon_negotiates_alpn_picks_certs_by_sni_reloads_them_and_redirects() {
    let ca = Ca::new();
    let mut p = Project::new(MANIFEST);
    let certs = p.path().join("certs");
    let shop = ca.issue(&certs, "shop", &["shop.example"]);
    let admin = ca.issue(&certs, "admin", &["admin.example"]);
    let (plain, tls) = up(&mut p);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    rt.block_on(async {
        // HTTP/1.1 by ALPN, verified against the CA, through to the service.
        let s = handshake(&ca, tls, "shop.example", &[b"http/1.1"])
            .await
            .unwrap();
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert!(presented(&s) == shop);
        let (status, body) = get(&mut h1(s).await, "shop.example", "/api/hello").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["service"], "api");
        assert_eq!(body["path"], "/hello");

        // h2 when offered first.
        let s = handshake(&ca, tls, "shop.example", &[b"h2", b"http/1.1"])
            .await
            .unwrap();
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("https://shop.example/api/h2")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), 200);

        // SNI picks the certificate: each verifies for its own name.
        let s = handshake(&ca, tls, "admin.example", &[]).await.unwrap();
        assert!(presented(&s) == admin);
        assert!(handshake(&ca, tls, "other.example", &[]).await.is_err());
    });

    // Plain HTTP is sent to https, on the TLS listener's port.
    let head = plain_head(&plain, "shop.example", "/api/cart?item=3");
    assert!(head.starts_with("http/1.1 308"), "{head}");
    assert!(
        head.contains(&format!(
            "\r\nlocation: https://shop.example:{}/api/cart?item=3",
            tls.port()
        )),
        "{head}"
    );

    rt.block_on(async {
        let s = handshake(&ca, tls, "shop.example", &[]).await.unwrap();
        let mut open = h1(s).await;
        assert_eq!(get(&mut open, "shop.example", "/api/").await.0, 200);

        // Renewed on disk: new handshakes get the new certificate...
        let renewed = ca.issue(&certs, "shop", &["shop.example"]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let s = handshake(&ca, tls, "shop.example", &[]).await.unwrap();
            if presented(&s) == renewed {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the daemon's proxy still serves the old certificate"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ...and the connection opened before goes on.
        for _ in 0..3 {
            assert_eq!(get(&mut open, "shop.example", "/api/").await.0, 200);
        }
    });
    let out = p.down();
    assert!(out.status.success());
}

#[test]
fn bad_certificate_paths_are_validate_errors_and_start_nothing() {
    let mut p = Project::new(MANIFEST);
    let ca = Ca::new();
    ca.issue(&p.path().join("certs"), "shop", &["shop.example"]);
    // certs/admin.pem is missing.
    let out = p.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("proxy.tls.certs[0].cert: certificate file not found"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}/certs/admin.pem", p.path().display())),
        "{text}"
    );
    assert!(text.contains("orchestra.yaml:12:"), "{text}");

    let out = p.up(&["--proxy", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("proxy.tls.certs[0].cert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(p.daemon_pid().is_none(), "no daemon started");
}

#[test]
fn a_certificate_the_proxy_cannot_use_stops_up_with_the_file_named() {
    let mut p = Project::new(MANIFEST);
    let ca = Ca::new();
    let certs = p.path().join("certs");
    ca.issue(&certs, "shop", &["shop.example"]);
    ca.issue(&certs, "admin", &["admin.example"]);
    // PEM-shaped, so validate passes; the proxy cannot decode it.
    std::fs::write(
        certs.join("admin.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(p.run(&["validate"]).status.success());
    let out = p.up(&["--proxy", "127.0.0.1:0"]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("TLS"), "{text}");
    assert!(
        text.contains(&format!("{}", certs.join("admin.pem").display())),
        "{text}"
    );
}
