//! A client for the control API: over the project's unix socket, or over TCP
//! with a bearer token (`orchestra --control http://HOST:PORT`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers on the socket.
    #[error(
        "orchestra is not running for this project (no daemon on {socket}); start it with `orchestra up -d`"
    )]
    NotRunning {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The socket exists but this user may not connect to it.
    #[error(
        "permission denied on the control socket {socket}: the daemon runs as another user, and only that user and root may use it"
    )]
    Denied {
        /// The socket tried.
        socket: PathBuf,
    },
    /// Nothing answers at the TCP control address.
    #[error("no orchestra control API answers at {url}: {reason}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The OS error.
        reason: String,
    },
    /// The control URL is not `http://HOST:PORT`.
    #[error(
        "control URL `{url}`: {reason}; expected http://HOST:PORT, such as http://127.0.0.1:7071"
    )]
    BadUrl {
        /// As given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection broke.
    #[error("control API: {0}")]
    Transport(String),
    /// The daemon answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
}

/// A connection factory for one project's daemon.
#[derive(Clone)]
pub struct Client {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Unix(PathBuf),
    Tcp {
        url: String,
        authority: String,
        token: Option<String>,
    },
}

// By hand: the token is never printed.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Unix(p) => f.debug_struct("Client").field("socket", p).finish(),
            Target::Tcp { url, token, .. } => f
                .debug_struct("Client")
                .field("url", url)
                .field("token", &token.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// `HOST:PORT` of a control URL (`http://HOST:PORT`, a trailing `/` allowed,
/// or the bare `HOST:PORT`).
pub fn parse_control_url(url: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "scheme `{scheme}` is not supported (the control API speaks plain HTTP; reach a remote one through an SSH tunnel)"
            )));
        }
        None => url,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad("only a host and port, no path, query or user"));
    }
    let uri: hyper::http::uri::Authority =
        authority.parse().map_err(|_| bad("not a host and port"))?;
    if uri.port_u16().is_none() {
        return Err(bad("no port"));
    }
    Ok(uri.as_str().to_owned())
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Client {
    /// A client for the daemon listening on `socket`.
    pub fn new(socket: &Path) -> Self {
        Self {
            target: Target::Unix(socket.to_owned()),
        }
    }

    /// A client for the TCP control API at `url` (`http://HOST:PORT`),
    /// sending `token` as `Authorization: Bearer`.
    pub fn remote(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let authority = parse_control_url(url)?;
        Ok(Self {
            target: Target::Tcp {
                url: format!("http://{authority}"),
                authority,
                token,
            },
        })
    }

    /// Whether this client talks TCP (not the project's socket).
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Target::Tcp { .. })
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        match &self.target {
            Target::Unix(socket) => {
                let stream = UnixStream::connect(socket).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        ClientError::Denied {
                            socket: socket.clone(),
                        }
                    } else {
                        ClientError::NotRunning {
                            socket: socket.clone(),
                        }
                    }
                })?;
                handshake(stream).await
            }
            Target::Tcp { url, authority, .. } => {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| ClientError::Unreachable {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
                let _ = stream.set_nodelay(true);
                handshake(stream).await
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        self.send_body(method, path, Bytes::new()).await
    }

    async fn send_body(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let mut sender = self.connect().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        req = match &self.target {
            Target::Unix(_) => req.header(hyper::header::HOST, "orchestra"),
            Target::Tcp {
                authority, token, ..
            } => {
                let req = req.header(hyper::header::HOST, authority.as_str());
                match token {
                    Some(t) => req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}")),
                    None => req,
                }
            }
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Whether a daemon answers.
    pub async fn is_running(&self) -> bool {
        self.get("/v1/daemon").await.is_ok()
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path).await
    }

    /// POST without a body; JSON answer.
    pub async fn post(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::POST, path).await
    }

    /// POST a JSON body; JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call_body(Method::POST, path, Bytes::from(body.to_string()))
            .await
    }

    async fn call(&self, method: Method, path: &str) -> Result<Value, ClientError> {
        self.call_body(method, path, Bytes::new()).await
    }

    async fn call_body(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Value, ClientError> {
        let resp = self.send_body(method, path, body).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        if status.is_success() {
            Ok(value)
        } else {
            Err(api_error(status, &value))
        }
    }

    /// GET a streamed NDJSON body, calling `on_line` for each line until it
    /// returns false or the stream ends.
    pub async fn stream_lines(
        &self,
        path: &str,
        mut on_line: impl FnMut(&str) -> bool,
    ) -> Result<(), ClientError> {
        let resp = self.send(Method::GET, path).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?
                .to_bytes();
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(api_error(status, &value));
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    if !on_line(&text) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

async fn handshake<S>(stream: S) -> Result<Sender, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn api_error(status: StatusCode, value: &Value) -> ClientError {
    ClientError::Api {
        status: status.as_u16(),
        message: value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("daemon answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_control_url;

    #[test]
    fn control_urls() {
        assert_eq!(
            parse_control_url("http://127.0.0.1:7071").ok().as_deref(),
            Some("127.0.0.1:7071")
        );
        assert_eq!(
            parse_control_url("http://127.0.0.1:7071/").ok().as_deref(),
            Some("127.0.0.1:7071")
        );
        assert_eq!(
            parse_control_url("localhost:9").ok().as_deref(),
            Some("localhost:9")
        );
        assert_eq!(
            parse_control_url("http://[::1]:7071").ok().as_deref(),
            Some("[::1]:7071")
        );
        for bad in [
            "https://h:1",
            "http://h",
            "http://h:1/v1",
            "",
            "http://",
            "http://u@h:1",
            "h:x",
        ] {
            assert!(parse_control_url(bad).is_err(), "{bad} accepted");
        }
    }
}
