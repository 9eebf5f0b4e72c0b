//! A client for the control API over the project's unix socket.

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
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Client {
    /// A client for the daemon listening on `socket`.
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
        }
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|_| ClientError::NotRunning {
                    socket: self.socket.clone(),
                })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
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
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "orchestra")
            .header(hyper::header::CONTENT_TYPE, "application/json")
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
