//! Deploy hooks: `pre` (migrations, before any traffic moves), `smoke`
//! (against the new revision's own address, in `URL`), `post`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// A hook may run this long.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// Run one hook command; `url` fills `${URL}` in its arguments and the `URL` variable.
pub async fn run(
    argv: &[String],
    dir: &Path,
    env: &BTreeMap<String, String>,
    url: Option<&str>,
) -> Result<(), String> {
    let argv: Vec<String> = argv
        .iter()
        .map(|a| match url {
            Some(u) => a.replace("${URL}", u),
            None => a.clone(),
        })
        .collect();
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty hook command".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(u) = url {
        cmd.env("URL", u);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("`{}` cannot run: {e}", argv.join(" ")))?;
    let out = tokio::time::timeout(HOOK_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "`{}` timed out after {}s",
                argv.join(" "),
                HOOK_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("`{}`: {e}", argv.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(format!(
        "`{}` exited with {}: {}",
        argv.join(" "),
        out.status,
        tail.join(" | ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hooks_get_the_url_and_report_failures() {
        let dir = std::env::temp_dir();
        let env = BTreeMap::new();
        let ok = run(
            &[
                "sh".into(),
                "-c".into(),
                "test \"$URL\" = http://x && test \"$1\" = http://x".into(),
                "sh".into(),
                "${URL}".into(),
            ],
            &dir,
            &env,
            Some("http://x"),
        )
        .await;
        assert_eq!(ok, Ok(()));
        let err = run(
            &[
                "sh".into(),
                "-c".into(),
                "echo migration failed >&2; exit 3".into(),
            ],
            &dir,
            &env,
            None,
        )
        .await
        .unwrap_err();
        assert!(
            err.contains("migration failed") && err.contains("3"),
            "{err}"
        );
        let err = run(&["no-such-hook-cmd".into()], &dir, &env, None)
            .await
            .unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
    }
}
