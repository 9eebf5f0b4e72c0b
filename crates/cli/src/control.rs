//! Which daemon the commands talk to (this project's socket, or a TCP
//! control API given by `--control URL` / `ORCHESTRA_CONTROL`), and
//! `orchestra control token|rotate-token`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Context;
use orchestra_server::auth;
use orchestra_server::client::{Client, ClientError};
use serde_json::Value;

use crate::args::{ControlCommand, RotateTokenArgs};
use crate::project;

/// `orchestra control --help`.
pub const HELP: &str = "\
The control API is served on the project's unix socket (.orchestra/orchestra.sock,
mode 0600: only this user and root may connect). With `control: { listen: ADDR }` in
the manifest, or `up --control ADDR`, it is also served on TCP, where every request
needs `Authorization: Bearer <token>`; refused requests get 401 and are recorded as
`control-refused` events (without the token they presented).

The token is made at the daemon's first start: 32 random bytes, base64url, in
.orchestra/control.token (0600). It stays the same across restarts until rotated.

Examples:
  orchestra control token
  curl -H \"Authorization: Bearer $(orchestra control token)\" http://127.0.0.1:7071/v1/status
  ORCHESTRA_TOKEN=$(orchestra control token) orchestra --control http://127.0.0.1:7071 ps
  orchestra control rotate-token";

/// The TCP control URL, when `--control` or `ORCHESTRA_CONTROL` gives one.
static REMOTE: OnceLock<Option<String>> = OnceLock::new();

/// Remember `--control URL` for every command of this run (set once, in `main`).
pub fn set_remote(url: Option<String>) {
    let _ = REMOTE.set(url.filter(|u| !u.trim().is_empty()));
}

fn remote() -> Option<&'static str> {
    REMOTE.get().and_then(|u| u.as_deref())
}

/// The client for the daemon these commands address: the TCP control API
/// when a URL is set, else this project's socket.
pub fn client(file: Option<&Path>) -> anyhow::Result<Client> {
    match remote() {
        Some(url) => Ok(Client::remote(url, remote_token(file)?)?),
        None => Ok(Client::new(&project::project_paths(file)?.socket)),
    }
}

/// The bearer token for a TCP daemon: ORCHESTRA_TOKEN, else this project's
/// token file when there is a project here, else none (the daemon says 401).
fn remote_token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    if let Ok(t) = std::env::var("ORCHESTRA_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(Some(t.trim().to_owned()));
    }
    let Ok(paths) = project::project_paths(file) else {
        return Ok(None);
    };
    Ok(auth::read_token(&paths.token)?)
}

/// `orchestra control ...`
pub async fn run(file: Option<&Path>, cmd: &ControlCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ControlCommand::Token => token(file),
        ControlCommand::RotateToken(a) => rotate(file, a).await,
    }
}

fn token(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    if remote().is_some() {
        anyhow::bail!(
            "`control token` reads this project's .orchestra/control.token; run it where the daemon runs (without --control)"
        );
    }
    let paths = project::project_paths(file)?;
    paths
        .prepare()
        .with_context(|| format!("cannot create {}", paths.root.display()))?;
    let (t, created) = auth::ensure_token(&paths.token)?;
    if created {
        eprintln!(
            "orchestra: created a control token in {}",
            paths.token.display()
        );
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

async fn rotate(file: Option<&Path>, a: &RotateTokenArgs) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    // A running daemon rotates it, so that the old token stops working at once.
    let answer = match c.post("/v1/control/rotate-token").await {
        Ok(v) => Some(v),
        Err(ClientError::NotRunning { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let (token, where_) = match answer {
        Some(v) => (
            v.get("token")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .context("unexpected rotate-token answer from the daemon")?,
            v.get("file")
                .and_then(Value::as_str)
                .unwrap_or("the daemon's .orchestra/control.token")
                .to_owned(),
        ),
        None => {
            let paths = project::project_paths(file)?;
            paths
                .prepare()
                .with_context(|| format!("cannot create {}", paths.root.display()))?;
            let t = auth::generate_token();
            auth::write_token(&paths.token, &t)?;
            (t, paths.token.display().to_string())
        }
    };
    eprintln!(
        "orchestra: new control token written to {where_}; the previous one is refused from now on"
    );
    if a.print || c.is_remote() {
        // A remote caller cannot read the file: it gets the token here.
        println!("{token}");
    }
    Ok(ExitCode::SUCCESS)
}
