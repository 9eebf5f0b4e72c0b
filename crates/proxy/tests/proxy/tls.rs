//! TLS termination: real handshakes with certificates made here, ALPN, SNI, reloads, redirects.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use orchestra_proxy::{CertPaths, Proxy, ProxyConfig, ProxyError, TlsConfig, TlsError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::*;

/// A test CA and the leaf certificates it signs.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate: PEM for the proxy's files, DER to compare with what a handshake shows.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

/// Writes a leaf's files as `NAME.pem` and `NAME-key.pem` (replacing them atomically, as a
/// certificate manager does) and returns their paths.
fn write_leaf(dir: &Path, name: &str, leaf: &Leaf) -> CertPaths {
    let paths = CertPaths {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    replace(&paths.key, &leaf.key_pem);
    replace(&paths.cert, &leaf.cert_pem);
    paths
}

fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tls_config(certs: Vec<CertPaths>) -> ProxyConfig {
    let mut tls = TlsConfig::new("127.0.0.1:0", certs);
    tls.reload_interval = Duration::from_millis(50);
    ProxyConfig {
        tls: Some(tls),
        ..config()
    }
}

async fn routed(cfg: ProxyConfig, up: &Upstream) -> Proxy {
    let proxy = start_proxy(cfg).await;
    proxy
        .set_routes(vec![route("api", "/", vec![target("v1", 1, &[up.addr])])])
        .unwrap();
    proxy
}

/// Accepts any server certificate, so a test can look at the one it was given.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
}

/// A handshake with `addr` asking for `sni` and offering `alpn`; `roots`: verify against them,
/// else accept any certificate.
async fn connect(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
    roots: Option<RootCertStore>,
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let mut cfg = match roots {
        Some(roots) => client_builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        None => client_builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await
}

/// The leaf certificate the server presented.
fn presented(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn negotiated(s: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    s.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// An HTTP/1.1 connection over `s`, driven in the background.
async fn h1(s: TlsStream<TcpStream>) -> Sender {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn h1_get(send: &mut Sender, host: &str, path: &str) -> Resp {
    send.ready().await.unwrap();
    let req = Request::get(path)
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    buffered(resp).await
}

async fn buffered(resp: hyper::Response<hyper::body::Incoming>) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[tokio::test]
async fn https_reaches_the_upstream_over_http1_and_h2_by_alpn() {
    let up = Upstream::start("api").await;
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let leaf = ca.leaf(&["shop.example"]);
    let proxy = routed(tls_config(vec![write_leaf(dir.path(), "shop", &leaf)]), &up).await;
    let addr = proxy.tls_local_addr().unwrap();
    assert_ne!(addr, proxy.local_addr());

    // HTTP/1.1, the certificate verified against the CA for the name asked for.
    let s = connect(addr, "shop.example", &[b"http/1.1"], Some(ca.roots()))
        .await
        .unwrap();
    assert_eq!(negotiated(&s).as_deref(), Some(&b"http/1.1"[..]));
    let mut send = h1(s).await;
    let r = h1_get(&mut send, "shop.example", "/a?b=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json();
    assert_eq!(seen["path"], "/a?b=1");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(seen["headers"]["x-forwarded-host"], "shop.example");

    // h2 when the client offers it first.
    let s = connect(
        addr,
        "shop.example",
        &[b"h2", b"http/1.1"],
        Some(ca.roots()),
    )
    .await
    .unwrap();
    assert_eq!(negotiated(&s).as_deref(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("https://shop.example/h2")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let r = buffered(resp).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/h2");
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");

    // The plain listener still serves plain HTTP, and says so upstream.
    let r = get(&proxy, "/plain").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "http");

    // A name the certificate is not for fails verification.
    assert!(
        connect(addr, "other.example", &[], Some(ca.roots()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sni_picks_the_certificate_and_the_first_is_the_default() {
    let up = Upstream::start("api").await;
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example", "*.b.example"]);
    let proxy = routed(
        tls_config(vec![
            write_leaf(dir.path(), "a", &a),
            write_leaf(dir.path(), "b", &b),
        ]),
        &up,
    )
    .await;
    let addr = proxy.tls_local_addr().unwrap();

    for (sni, want, name) in [
        ("a.example", &a.der, "a"),
        ("b.example", &b.der, "b"),
        ("api.b.example", &b.der, "b (wildcard)"),
        ("unknown.example", &a.der, "a (the default)"),
    ] {
        let s = connect(addr, sni, &[], None).await.unwrap();
        assert!(presented(&s) == *want, "SNI {sni} should get {name}");
    }
    // Verified for real with the CA too.
    let s = connect(addr, "api.b.example", &[], Some(ca.roots()))
        .await
        .unwrap();
    let r = h1_get(&mut h1(s).await, "api.b.example", "/").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn replaced_certificates_serve_new_handshakes_while_open_connections_keep_working() {
    let up = Upstream::start("api").await;
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let old = ca.leaf(&["shop.example"]);
    let paths = write_leaf(dir.path(), "shop", &old);
    let proxy = routed(tls_config(vec![paths.clone()]), &up).await;
    let addr = proxy.tls_local_addr().unwrap();

    let s = connect(addr, "shop.example", &[], None).await.unwrap();
    assert!(presented(&s) == old.der);
    let mut open = h1(s).await;
    assert_eq!(h1_get(&mut open, "shop.example", "/").await.status, 200);

    // Replaced on disk: the watcher picks it up.
    let new = ca.leaf(&["shop.example"]);
    write_leaf(dir.path(), "shop", &new);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = connect(addr, "shop.example", &[], None).await.unwrap();
        if presented(&s) == new.der {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "new handshakes still get the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection opened before the swap goes on with its session.
    for _ in 0..3 {
        assert_eq!(h1_get(&mut open, "shop.example", "/").await.status, 200);
    }

    // A broken replacement is refused and the certificate in use stays.
    replace(
        &paths.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    let err = proxy.reload_tls().unwrap_err();
    assert!(
        matches!(&err, ProxyError::Tls(TlsError::Cert { path, .. }) if *path == paths.cert),
        "{err}"
    );
    // A key that belongs to another certificate is refused too.
    let other = ca.leaf(&["shop.example"]);
    replace(&paths.cert, &new.cert_pem);
    replace(&paths.key, &other.key_pem);
    let err = proxy.reload_tls().unwrap_err();
    assert!(
        matches!(err, ProxyError::Tls(TlsError::Mismatch { .. })),
        "{err}"
    );
    let s = connect(addr, "shop.example", &[], None).await.unwrap();
    assert!(presented(&s) == new.der);
    assert_eq!(
        h1_get(&mut h1(s).await, "shop.example", "/").await.status,
        200
    );
    assert_eq!(h1_get(&mut open, "shop.example", "/").await.status, 200);
}

#[tokio::test]
async fn redirect_sends_plain_http_to_https_with_a_308() {
    let up = Upstream::start("api").await;
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tls_config(vec![write_leaf(
        dir.path(),
        "shop",
        &ca.leaf(&["shop.example"]),
    )]);
    if let Some(tls) = cfg.tls.as_mut() {
        tls.redirect = true;
    }
    let proxy = routed(cfg, &up).await;
    let tls_port = proxy.tls_local_addr().unwrap().port();

    let r = send(
        &client(),
        get_req(&proxy, "/cart?item=3", &[("host", "shop.example:8080")]),
    )
    .await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("https://shop.example:{tls_port}/cart?item=3").as_str()
    );
    // h2c too, and nothing reached the upstream.
    let r = send(&h2c_client(), get_req(&proxy, "/x", &[])).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("https://127.0.0.1:{tls_port}/x").as_str()
    );
    assert_eq!(up.hits(), 0);

    // Over TLS the same request is served.
    let s = connect(proxy.tls_local_addr().unwrap(), "shop.example", &[], None)
        .await
        .unwrap();
    let r = h1_get(&mut h1(s).await, "shop.example", "/cart").await;
    assert_eq!(r.status, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_dropped() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tls_config(vec![write_leaf(
        dir.path(),
        "shop",
        &ca.leaf(&["shop.example"]),
    )]);
    if let Some(tls) = cfg.tls.as_mut() {
        tls.handshake_timeout = Duration::from_millis(200);
    }
    let proxy = start_proxy(cfg).await;
    let mut s = TcpStream::connect(proxy.tls_local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the proxy closes a connection that sends no ClientHello")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn tls_works_on_dedicated_workers() {
    let up = Upstream::start("api").await;
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tls_config(vec![write_leaf(
        dir.path(),
        "shop",
        &ca.leaf(&["shop.example"]),
    )]);
    cfg.workers = 2;
    let proxy = routed(cfg, &up).await;
    let addr = proxy.tls_local_addr().unwrap();
    // Connections spread over both workers' sockets; every one is served.
    for i in 0..8 {
        let s = connect(
            addr,
            "shop.example",
            &[b"h2", b"http/1.1"],
            Some(ca.roots()),
        )
        .await
        .unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get(format!("https://shop.example/{i}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let r = buffered(send.send_request(req).await.unwrap()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["path"], format!("/{i}"));
    }
    proxy.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn bad_certificate_files_keep_the_proxy_from_starting_and_name_the_file() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let good = write_leaf(dir.path(), "shop", &ca.leaf(&["shop.example"]));
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();

    let start = |certs: Vec<CertPaths>| Proxy::start(tls_config(certs));
    let err = start(vec![CertPaths {
        cert: missing.clone(),
        key: good.key.clone(),
    }])
    .await
    .err()
    .unwrap();
    assert!(matches!(&err, ProxyError::Tls(TlsError::Read { path, .. }) if *path == missing));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let err = start(vec![CertPaths {
        cert: not_pem.clone(),
        key: good.key.clone(),
    }])
    .await
    .err()
    .unwrap();
    assert!(matches!(&err, ProxyError::Tls(TlsError::Cert { path, .. }) if *path == not_pem));

    let err = start(vec![CertPaths {
        cert: good.cert.clone(),
        key: not_pem.clone(),
    }])
    .await
    .err()
    .unwrap();
    assert!(matches!(&err, ProxyError::Tls(TlsError::Key { path, .. }) if *path == not_pem));

    let err = start(vec![]).await.err().unwrap();
    assert!(matches!(err, ProxyError::Tls(TlsError::NoCertificate)));

    // With dedicated workers too (their runtimes are not built yet when the files are read).
    let mut cfg = tls_config(vec![CertPaths {
        cert: not_pem.clone(),
        key: good.key.clone(),
    }]);
    cfg.workers = 2;
    let err = Proxy::start(cfg).await.err().unwrap();
    assert!(matches!(&err, ProxyError::Tls(TlsError::Cert { path, .. }) if *path == not_pem));
}

#[tokio::test]
async fn ports_already_taken_are_refused_with_dedicated_workers_too() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let certs = vec![write_leaf(dir.path(), "shop", &ca.leaf(&["shop.example"]))];
    let mut cfg = tls_config(certs.clone());
    cfg.workers = 2;
    let first = start_proxy(cfg).await;
    let plain = first.local_addr().to_string();
    let tls = first.tls_local_addr().unwrap().to_string();

    // `SO_REUSEPORT` alone would let a second proxy share (and split) the first one's ports.
    let mut cfg = tls_config(certs.clone());
    cfg.workers = 2;
    cfg.listen = plain.clone();
    let err = Proxy::start(cfg).await.err().unwrap();
    assert!(
        matches!(&err, ProxyError::Bind { addr, .. } if *addr == plain),
        "{err}"
    );

    let mut cfg = tls_config(certs);
    cfg.workers = 2;
    if let Some(t) = cfg.tls.as_mut() {
        t.listen = tls.clone();
    }
    let err = Proxy::start(cfg).await.err().unwrap();
    assert!(
        matches!(&err, ProxyError::Bind { addr, .. } if *addr == tls),
        "{err}"
    );
    first.shutdown(Duration::from_secs(5)).await;
}
