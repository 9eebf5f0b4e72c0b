//! `--depends-on`: one GET per dependency at startup.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one dependency may take to connect and answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A dependency URL, validated when the flags are parsed.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// The URL as given, for messages.
    pub url: String,
    host: String,
    port: u16,
    authority: String,
    path: String,
}

/// Parses an `http://host[:port][/path]` URL for `--depends-on`.
pub fn parse_dependency(text: &str) -> Result<Dependency, String> {
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{text:?} must be a plain http:// URL (e.g. http://127.0.0.1:8081/health)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{text:?} has no host"))?;
    // Uri keeps the brackets of an IPv6 literal; connect() wants them off.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Dependency {
        url: text.to_string(),
        host,
        port: authority.port_u16().unwrap_or(80),
        authority: authority.as_str().to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
    })
}

/// GETs the dependency once. Any answer below 500 counts as reachable; a
/// refused connection, a timeout or a 5xx answer is an error.
pub async fn check(dep: &Dependency) -> Result<u16, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, get_status(dep)).await {
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(status)) if status >= 500 => Err(format!("it answered HTTP {status}")),
        Ok(Ok(status)) => Ok(status),
    }
}

async fn get_status(dep: &Dependency) -> Result<u16, String> {
    let tcp = TcpStream::connect((dep.host.as_str(), dep.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", dep.host, dep.port))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        // The answer has arrived (or failed) by the time this matters.
        let _ = conn.await;
    });
    let request = Request::get(dep.path.as_str())
        .header(HOST, dep.authority.as_str())
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let d = parse_dependency("http://127.0.0.1:8081/health?x=1").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("127.0.0.1", 8081));
        assert_eq!(d.path, "/health?x=1");
        assert_eq!(d.authority, "127.0.0.1:8081");

        let d = parse_dependency("http://store").unwrap();
        assert_eq!(
            (d.host.as_str(), d.port, d.path.as_str()),
            ("store", 80, "/")
        );

        let d = parse_dependency("http://[::1]:9000/").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("::1", 9000));
    }

    #[test]
    fn rejects_non_http() {
        assert!(parse_dependency("https://x/").is_err());
        assert!(parse_dependency("127.0.0.1:80").is_err());
        assert!(parse_dependency("not a url").is_err());
    }
}
