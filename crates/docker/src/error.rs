//! What can go wrong talking to the Docker Engine, each error saying what to
//! do about it.

use std::path::PathBuf;

/// An error from the container driver.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The revision's secret files could not be written to tmpfs.
    #[error("cannot write the secret files of `{0}` to tmpfs: {1}")]
    SecretFiles(String, String),
    /// DOCKER_HOST names something other than a unix socket.
    #[error(
        "DOCKER_HOST={0} is not supported: Orchestra talks to the Docker Engine over its unix socket; set DOCKER_HOST=unix:///path/to/docker.sock"
    )]
    UnsupportedHost(String),
    /// Nothing listens on the socket.
    #[error(
        "the Docker Engine is not running: nothing answers on {}: start it (`scripts/docker.sh` in Orchestra's repository starts one and prints its socket; or start your system's docker service) and point DOCKER_HOST at its socket (`export DOCKER_HOST=unix://SOCKET`)",
        socket.display()
    )]
    EngineNotRunning {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The socket exists but may not be opened by this user.
    #[error(
        "permission denied on the Docker Engine's socket {}: run Orchestra as a user in the `docker` group (`sudo usermod -aG docker $USER`, then log in again) or as root",
        socket.display()
    )]
    PermissionDenied {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The image is not local and could not be pulled.
    #[error(
        "image `{image}` is not present locally and could not be pulled ({why}): build it (give the service a `build:`) or `docker load` it, then run again"
    )]
    ImageMissing {
        /// The image reference.
        image: String,
        /// Why the pull failed.
        why: String,
    },
    /// The build context directory does not exist.
    #[error(
        "build context {} does not exist: fix `build.context` (relative to the manifest's directory)",
        path.display()
    )]
    BuildContextMissing {
        /// The context path.
        path: PathBuf,
    },
    /// The Dockerfile is not in the context.
    #[error(
        "Dockerfile {} does not exist: fix `build.dockerfile` (relative to the build context)",
        path.display()
    )]
    DockerfileMissing {
        /// The Dockerfile path.
        path: PathBuf,
    },
    /// The context could not be read or packed.
    #[error("cannot pack build context {}: {source}", path.display())]
    Context {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The build ran and failed.
    #[error("building image `{tag}` failed at {step}: {message}")]
    BuildFailed {
        /// The tag being built.
        tag: String,
        /// The Dockerfile step that failed (`Step 3/5 : RUN make`), when known.
        step: String,
        /// The builder's message.
        message: String,
    },
    /// A host port to publish is taken.
    #[error(
        "host port {port} is already in use ({detail}): stop what uses it, or change the service's `ports:`"
    )]
    PortTaken {
        /// The port.
        port: String,
        /// The engine's words.
        detail: String,
    },
    /// GPUs were requested from an engine without a GPU runtime.
    #[error(
        "the service asks for {count} GPU(s) but this Docker Engine has no GPU runtime ({detail}): install the NVIDIA Container Toolkit (`nvidia-ctk runtime configure --runtime=docker`) and restart dockerd, or remove `resources.gpus`"
    )]
    NoGpuRuntime {
        /// GPUs requested (`all` for every GPU).
        count: String,
        /// The engine's words.
        detail: String,
    },
    /// A process service was handed to the container driver.
    #[error("service `{0}` runs a `command`, not a container")]
    NotAContainer(String),
    /// Any other refusal from the engine.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The engine's error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl DockerError {
    /// The error in a few words, for a status line; `Display` adds the
    /// details and what to do.
    pub fn headline(&self) -> String {
        match self {
            DockerError::UnsupportedHost(h) => format!("DOCKER_HOST={h} is not supported"),
            DockerError::EngineNotRunning { .. } => "the Docker Engine is not running".into(),
            DockerError::PermissionDenied { .. } => {
                "permission denied on the Docker Engine's socket".into()
            }
            DockerError::ImageMissing { image, .. } => {
                format!("image `{image}` is not present locally")
            }
            DockerError::BuildContextMissing { path } => {
                format!("build context {} does not exist", path.display())
            }
            DockerError::DockerfileMissing { path } => {
                format!("Dockerfile {} does not exist", path.display())
            }
            DockerError::Context { path, .. } => {
                format!("cannot pack build context {}", path.display())
            }
            DockerError::BuildFailed { step, .. } => format!("image build failed at {step}"),
            DockerError::PortTaken { port, .. } => format!("host port {port} is already in use"),
            DockerError::NoGpuRuntime { .. } => "the Docker Engine has no GPU runtime".into(),
            DockerError::NotAContainer(_) | DockerError::SecretFiles(..) => self.to_string(),
            DockerError::Api { action, .. } => action.clone(),
        }
    }

    /// Wrap an engine error with what was being done.
    pub fn api(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        DockerError::Api {
            action: action.into(),
            source,
        }
    }
}

/// The HTTP status of an engine error, when it is one.
pub fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's message of an error (without bollard's prefix).
pub fn message_of(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
