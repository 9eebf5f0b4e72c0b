//! Reaching the Docker Engine: the socket from DOCKER_HOST, and a first
//! connection that tells "not running" from "permission denied" before any
//! API call.

use std::path::{Path, PathBuf};

use bollard::Docker;

use crate::error::DockerError;

/// The Engine's default socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Seconds an API call may take to answer (streams may run longer).
const API_TIMEOUT_SECS: u64 = 120;

/// The socket named by `DOCKER_HOST` (`unix://PATH`), else the default.
pub fn socket_from(docker_host: Option<&str>) -> Result<PathBuf, DockerError> {
    match docker_host.map(str::trim) {
        None | Some("") => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(h) => match h.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => Err(DockerError::UnsupportedHost(h.to_owned())),
        },
    }
}

/// Check that something accepts connections on the socket, and say why not.
pub async fn preflight(socket: &Path) -> Result<(), DockerError> {
    match tokio::net::UnixStream::connect(socket).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(DockerError::PermissionDenied {
                socket: socket.to_owned(),
            })
        }
        Err(_) => Err(DockerError::EngineNotRunning {
            socket: socket.to_owned(),
        }),
    }
}

/// Connect and agree on an API version the Engine speaks.
pub async fn connect(socket: &Path) -> Result<Docker, DockerError> {
    preflight(socket).await?;
    let path = socket.to_string_lossy();
    let d = Docker::connect_with_unix(&path, API_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        .map_err(|_| DockerError::EngineNotRunning {
            socket: socket.to_owned(),
        })?;
    d.negotiate_version()
        .await
        .map_err(|e| DockerError::api("cannot agree on an API version with the Docker Engine", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_must_be_a_unix_socket() {
        assert_eq!(socket_from(None).unwrap(), Path::new(DEFAULT_SOCKET));
        assert_eq!(
            socket_from(Some("unix:///tmp/d.sock")).unwrap(),
            Path::new("/tmp/d.sock")
        );
        let e = socket_from(Some("tcp://10.0.0.1:2375")).unwrap_err();
        assert!(e.to_string().contains("unix:///path/to/docker.sock"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_socket_says_the_engine_is_not_running_and_how_to_start_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = preflight(&dir.path().join("docker.sock"))
            .await
            .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("not running") && m.contains("scripts/docker.sh"),
            "{m}"
        );
    }
}
