//! The shim: a tiny supervisor-side process that leads each service's process
//! group. It runs the service as its child and, when the daemon's end of its
//! stdin closes — the daemon exited or was SIGKILLed — kills the whole group,
//! so no service process outlives the daemon.
//!
//! Stop signals sent to the group reach the service; the shim catches them
//! and stays to report the service's exit status (128+N for signal N).

use std::io::Read;
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::getpgrp;

/// Exit code when the command was not found (as shells use).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code when the command could not be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;

/// Run `argv` under the shim; returns the exit code for the shim process.
/// With `user` (`UID:GID[:NAME]`) the shim first becomes that user (NAME's
/// supplementary groups, else none), so the service and everything it starts
/// run as that user; the shim can still signal its group, which is the same user.
pub fn run(argv: &[String], user: Option<&str>) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("orchestra shim: no command given");
        return 2;
    };
    if let Some(u) = user
        && let Err(e) = become_user(u)
    {
        eprintln!("orchestra: cannot run as user {u}: {e}");
        return EXIT_CANNOT_EXEC;
    }
    // Caught, not ignored: a caught signal is reset to default in the child
    // by exec, an ignored one would be inherited.
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGQUIT,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
    ] {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Err(e) = signal_hook::flag::register(sig, flag) {
            eprintln!("orchestra shim: cannot catch signal {sig}: {e}");
        }
    }
    // The binary turns transparent huge pages off for itself; the flag is inherited across
    // fork and exec, so the service gets the machine's policy back for its own start.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(false);
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn();
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let (code, what) = match e.kind() {
                std::io::ErrorKind::NotFound => (EXIT_NOT_FOUND, "command not found"),
                std::io::ErrorKind::PermissionDenied => (EXIT_CANNOT_EXEC, "permission denied"),
                _ => (EXIT_CANNOT_EXEC, "cannot execute"),
            };
            eprintln!("orchestra: {what}: {program}: {e}");
            return code;
        }
    };
    std::thread::spawn(|| {
        // Blocks until the daemon's end of the pipe closes.
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = killpg(getpgrp(), Signal::SIGKILL);
    });
    match child.wait() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => c,
                (None, Some(s)) => 128 + s,
                _ => 1,
            }
        }
        Err(e) => {
            eprintln!("orchestra shim: wait failed: {e}");
            1
        }
    }
}

/// The `--user` argument for a resolved user.
#[must_use]
pub fn user_arg(u: &orchestra_manifest::user::ProcessUser) -> String {
    if u.known {
        format!("{}:{}:{}", u.uid, u.gid, u.name)
    } else {
        format!("{}:{}", u.uid, u.gid)
    }
}

/// Groups first (they need root), then the gid, then the uid: after `setuid` nothing
/// more can change.
fn become_user(spec: &str) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, initgroups, setgid, setgroups, setuid};
    let mut parts = spec.splitn(3, ':');
    let uid: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("invalid uid")?;
    let gid: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("invalid gid")?;
    let gid = Gid::from_raw(gid);
    match parts.next() {
        Some(name) => {
            let name = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
            initgroups(&name, gid).map_err(|e| format!("initgroups: {e}"))?;
        }
        None => setgroups(&[gid]).map_err(|e| format!("setgroups: {e}"))?,
    }
    setgid(gid).map_err(|e| format!("setgid: {e}"))?;
    setuid(Uid::from_raw(uid)).map_err(|e| format!("setuid: {e}"))?;
    Ok(())
}
