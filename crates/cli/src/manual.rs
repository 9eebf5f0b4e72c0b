//! `orchestra completions SHELL` and `orchestra man`: both generated from the
//! clap definitions, so they list exactly the commands and flags this binary has.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs, ManArgs};

/// `orchestra completions --help`.
pub const COMPLETIONS_HELP: &str = "\
Install (one of):
  orchestra completions bash > ~/.local/share/bash-completion/completions/orchestra
  orchestra completions zsh  > \"${fpath[1]}/_orchestra\"
  orchestra completions fish > ~/.config/fish/completions/orchestra.fish
Or for this shell only:  source <(orchestra completions bash)";

/// `orchestra man --help`.
pub const MAN_HELP: &str = "\
Examples:
  orchestra man | man -l -
  orchestra man --out ~/.local/share/man/man1   # orchestra.1, orchestra-up.1, ...";

fn command() -> clap::Command {
    Cli::command()
}

/// Write to stdout; a reader that stops early (`| head`) is not an error.
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `orchestra completions SHELL`
pub fn completions(a: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = command();
    // Into memory first: the generator panics on a write error.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "orchestra", &mut script);
    print(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// `orchestra man [--out DIR]`
pub fn man(a: &ManArgs) -> anyhow::Result<ExitCode> {
    match &a.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command()).render(&mut page)?;
            print(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command(), dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            eprintln!("orchestra: man pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
