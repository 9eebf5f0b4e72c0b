//! TLS termination ([`ProxyConfig::tls`](crate::ProxyConfig)): a listener beside the plain one
//! whose connections are decrypted with rustls (ring provider) and then served by hyper's auto
//! server, HTTP/1.1 or h2 as ALPN agreed, on the same request path as plain ones.
//!
//! Certificates are chosen per handshake by SNI ([`CertResolver`]): the first that is valid for
//! the name the client asked for, else the first of all. They are read from PEM files at start
//! and again whenever a file changes (polled on tokio time) or [`crate::Proxy::reload_tls`] is
//! called; a new set is swapped in atomically, so handshakes after the swap see it and
//! connections already open keep the session they made. A set that fails to load changes
//! nothing and is logged.
//!
//! With `redirect`, plain-HTTP requests are answered with a 308 to the same URL over https.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, LOCATION};
use hyper::http::uri::Authority;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info};

use crate::body::ProxyBody;
use crate::config::{CertPaths, TlsConfig, bind_address};
use crate::error::ProxyError;
use crate::guard::ConnState;
use crate::headers::Origin;
use crate::server::{Accepted, IdleCheck, LiveToken, Phase, Shared, serve_hyper, wait_for_phase};
use crate::worker;

/// Why a certificate set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No certificate was configured.
    #[error("TLS needs at least one certificate")]
    NoCertificate,
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate file holds no usable PEM certificate.
    #[error("{}: no PEM certificate in it ({detail})", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// A key file holds no usable PEM private key.
    #[error("{}: no usable PEM private key in it ({detail})", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What the PEM parser or the crypto provider said.
        detail: String,
    },
    /// The key does not belong to the certificate, or the certificate cannot be parsed.
    #[error("{} and {} do not go together: {source}", cert.display(), key.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the settings.
    #[error("TLS settings rejected: {0}")]
    Config(rustls::Error),
}

/// A loaded certificate set: the first is the default.
#[derive(Debug)]
struct CertSet {
    keys: Vec<Arc<CertifiedKey>>,
}

/// Picks the certificate for a handshake by SNI; the set behind it is swapped on reload.
#[derive(Debug)]
pub(crate) struct CertResolver {
    current: ArcSwap<CertSet>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.current.load();
        if set.keys.len() > 1
            && let Some(name) = hello.server_name()
            && let Ok(dns) = DnsName::try_from(name)
        {
            let name = ServerName::DnsName(dns);
            // A handful of certificates: a scan costs far less than the handshake itself.
            if let Some(key) = set.keys.iter().find(|k| valid_for(k, &name)) {
                return Some(key.clone());
            }
        }
        set.keys.first().cloned()
    }
}

fn valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.end_entity_cert()
        .and_then(ParsedCertificate::try_from)
        .and_then(|cert| rustls::client::verify_server_name(&cert, name))
        .is_ok()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every pair of `certs`; the set is all or nothing.
fn load(certs: &[CertPaths], provider: &CryptoProvider) -> Result<CertSet, TlsError> {
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let mut keys = Vec::with_capacity(certs.len());
    for pair in certs {
        // A few kilobytes, read at start and on a change only.
        let cert_pem = read(&pair.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Cert {
                path: pair.cert.clone(),
                detail: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Cert {
                path: pair.cert.clone(),
                detail: "no CERTIFICATE block".into(),
            });
        }
        let key_pem = read(&pair.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
            path: pair.key.clone(),
            detail: e.to_string(),
        })?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::Key {
                path: pair.key.clone(),
                detail: e.to_string(),
            })?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(source) => {
                return Err(TlsError::Mismatch {
                    cert: pair.cert.clone(),
                    key: pair.key.clone(),
                    source,
                });
            }
        }
        keys.push(Arc::new(certified));
    }
    Ok(CertSet { keys })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// What the files look like now: a change in any of them means a reload.
type Fingerprint = Vec<Option<(u64, SystemTime, u64)>>;

fn fingerprint(certs: &[CertPaths]) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    certs
        .iter()
        .flat_map(|p| [&p.cert, &p.key])
        .map(|path| {
            let m = std::fs::metadata(path).ok()?;
            Some((m.len(), m.modified().ok()?, m.ino()))
        })
        .collect()
}

/// The TLS side of a running proxy.
pub(crate) struct TlsState {
    acceptor: TlsAcceptor,
    resolver: Arc<CertResolver>,
    provider: Arc<CryptoProvider>,
    certs: Vec<CertPaths>,
    handshake_timeout: Duration,
    reload_interval: Duration,
    redirect: bool,
    pub(crate) local_addr: SocketAddr,
}

/// The bound TLS sockets: one on the caller's runtime, or one per worker.
pub(crate) enum TlsListeners {
    Shared(TcpListener),
    PerWorker(Vec<std::net::TcpListener>),
}

/// Loads the certificates and binds the TLS listener(s), before anything starts.
pub(crate) async fn prepare(
    cfg: &TlsConfig,
    workers: usize,
) -> Result<(TlsState, TlsListeners), ProxyError> {
    let provider = provider();
    let set = load(&cfg.certs, &provider)?;
    let resolver = Arc::new(CertResolver {
        current: ArcSwap::from_pointee(set),
    });
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let addr = bind_address(&cfg.listen);
    let bind_error = |source| ProxyError::Bind {
        addr: cfg.listen.clone(),
        source,
    };
    let listeners = if workers == 0 {
        TlsListeners::Shared(TcpListener::bind(&addr).await.map_err(bind_error)?)
    } else {
        let resolved = tokio::net::lookup_host(&addr)
            .await
            .map_err(bind_error)?
            .next()
            .ok_or_else(|| bind_error(std::io::ErrorKind::AddrNotAvailable.into()))?;
        TlsListeners::PerWorker(worker::bind_all(resolved, workers).map_err(bind_error)?)
    };
    let local_addr = match &listeners {
        TlsListeners::Shared(l) => l.local_addr(),
        TlsListeners::PerWorker(ls) => ls.first().map_or_else(
            || Err(std::io::ErrorKind::NotFound.into()),
            |l| l.local_addr(),
        ),
    }
    .map_err(bind_error)?;
    let state = TlsState {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        resolver,
        provider,
        certs: cfg.certs.clone(),
        handshake_timeout: cfg.handshake_timeout,
        reload_interval: cfg.reload_interval,
        redirect: cfg.redirect,
        local_addr,
    };
    Ok((state, listeners))
}

impl TlsState {
    /// Loads the files again and swaps the set in; on error the old set stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let set = load(&self.certs, &self.provider)?;
        self.resolver.current.store(Arc::new(set));
        Ok(())
    }
}

/// Polls the certificate files and reloads them when any changed, until the proxy drains.
pub(crate) async fn watch(shared: Arc<Shared>) {
    let Some(tls) = shared.tls.as_ref() else {
        return;
    };
    if tls.reload_interval.is_zero() {
        return;
    }
    let mut seen = fingerprint(&tls.certs);
    let mut tick = tokio::time::interval(tls.reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut phase = shared.phase.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wait_for_phase(&mut phase, |p| p != Phase::Running) => return,
        }
        let now = fingerprint(&tls.certs);
        if now == seen {
            continue;
        }
        // Taken before the load: a file written during it differs at the next tick.
        seen = now;
        match tls.reload() {
            Ok(()) => info!(certificates = tls.certs.len(), "TLS certificates reloaded"),
            // Half-written files (a cert before its key) usually fix themselves at the next change.
            Err(e) => {
                error!(error = %e, "TLS certificates not reloaded; still serving the previous ones")
            }
        }
    }
}

/// The 503 of a full proxy, said over TLS (in plain text a TLS client reads only a
/// protocol error). The handshake gets a second: refusing must stay cheap.
pub(crate) async fn refuse_tls(shared: Arc<Shared>, stream: tokio::net::TcpStream) {
    let Some(tls) = shared.tls.as_ref() else {
        return;
    };
    let handshake = tls.acceptor.accept(stream);
    if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(1), handshake).await {
        shared.connections.refuse(stream);
    }
}

pub(crate) async fn serve_tls(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    conn: Accepted,
    _token: LiveToken,
) {
    let Accepted {
        stream,
        peer,
        listening,
        slot,
    } = conn;
    let Some(tls) = shared.tls.as_ref() else {
        return;
    };
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "set_nodelay failed");
    }
    let mut phase = shared.phase.subscribe();
    let handshake = tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = wait_for_phase(&mut phase, |p| p != Phase::Running) => return,
    };
    let origin = Origin::new(peer.ip(), &listening, shared.cfg.trusts(peer.ip()));
    let conn_state = Arc::new(ConnState::new(origin, slot, shared.epoch).over_tls());
    let idle_check = IdleCheck::new(shared.cfg.idle_timeout);
    serve_hyper(
        shared.clone(),
        builder,
        stream,
        peer,
        conn_state,
        phase,
        idle_check,
    )
    .await;
}

/// Whether plain-HTTP requests are redirected (they then skip the fast HTTP/1.1 path).
pub(crate) fn redirects(shared: &Shared) -> bool {
    shared.tls.as_ref().is_some_and(|t| t.redirect)
}

/// The 308 to https for a plain request, when the proxy redirects them.
pub(crate) fn redirect<B>(
    shared: &Shared,
    conn: &ConnState,
    req: &Request<B>,
) -> Option<Response<ProxyBody>> {
    let tls = shared.tls.as_ref().filter(|t| t.redirect && !conn.tls)?;
    Some(redirect_response(req, tls.local_addr.port()))
}

fn redirect_response<B>(req: &Request<B>, tls_port: u16) -> Response<ProxyBody> {
    let authority = match req.headers().get(HOST) {
        Some(h) => h.to_str().ok().and_then(|h| h.parse::<Authority>().ok()),
        None => req.uri().authority().cloned(),
    };
    let location = authority.and_then(|a| {
        let host = a.host();
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let url = if tls_port == 443 {
            format!("https://{host}{path}")
        } else {
            format!("https://{host}:{tls_port}{path}")
        };
        HeaderValue::try_from(url).ok()
    });
    let Some(location) = location else {
        let mut resp = Response::new(ProxyBody::full(
            Bytes::from_static(b"a Host header is needed to redirect to https\n"),
            None,
        ));
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    };
    let mut resp = Response::new(ProxyBody::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(LOCATION, location);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: Option<&str>, uri: &str, port: u16) -> (StatusCode, Option<String>) {
        let mut b = Request::get(uri);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        let resp = redirect_response(&b.body(()).unwrap_or_default(), port);
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (resp.status(), loc)
    }

    #[test]
    fn redirect_keeps_host_path_and_query_and_swaps_the_port() {
        assert_eq!(
            location(Some("shop.example:8080"), "/a/b?x=1", 8443),
            (
                StatusCode::PERMANENT_REDIRECT,
                Some("https://shop.example:8443/a/b?x=1".into())
            )
        );
        assert_eq!(
            location(Some("shop.example"), "/", 443).1.as_deref(),
            Some("https://shop.example/")
        );
        assert_eq!(
            location(Some("[::1]:80"), "/x", 8443).1.as_deref(),
            Some("https://[::1]:8443/x")
        );
        // HTTP/2 carries the host in the URI.
        assert_eq!(
            location(None, "http://h2.example:80/p", 9443).1.as_deref(),
            Some("https://h2.example:9443/p")
        );
    }

    #[test]
    fn redirect_without_a_host_is_a_bad_request() {
        assert_eq!(location(None, "/p", 8443), (StatusCode::BAD_REQUEST, None));
        assert_eq!(
            location(Some("bad host"), "/p", 8443),
            (StatusCode::BAD_REQUEST, None)
        );
    }
}
